#include "pagecheck.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

#define N_SUMS 32
#define FNV_PRIME 16777619u

/* PostgreSQL's src/include/storage/checksum_impl.h */
static const uint32_t base_offsets[N_SUMS] = {
	0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
	0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
	0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
	0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
};

#define COMP(sum, value)                                                                                           \
	do {                                                                                                       \
		uint32_t t_ = (sum) ^ (value);                                                                     \
		(sum) = t_ * FNV_PRIME ^ (t_ >> 17);                                                               \
	} while (0)

uint16_t pagecheck_checksum(const uint8_t *page, uint32_t blkno)
{
	uint32_t sums[N_SUMS], words[PAGECHECK_BLCKSZ / 4], result = 0;
	memcpy(words, page, PAGECHECK_BLCKSZ);
	/* pd_checksum (bytes 8..9) counts as zero */
	{
		uint8_t *w = (uint8_t *)words;
		w[8] = w[9] = 0;
	}
	memcpy(sums, base_offsets, sizeof sums);
	for (uint32_t i = 0; i < PAGECHECK_BLCKSZ / (4 * N_SUMS); i++)
		for (uint32_t j = 0; j < N_SUMS; j++)
			COMP(sums[j], words[i * N_SUMS + j]);
	for (int i = 0; i < 2; i++)
		for (uint32_t j = 0; j < N_SUMS; j++)
			COMP(sums[j], 0);
	for (uint32_t i = 0; i < N_SUMS; i++)
		result ^= sums[i];
	result ^= blkno;
	return (uint16_t)((result % 65535) + 1);
}

int pagecheck_is_relation(const char *relpath, uint32_t *segno)
{
	const char *base = strrchr(relpath, '/');
	const char *p;
	base = base ? base + 1 : relpath;
	*segno = 0;
	/* global/, base/DB/, pg_tblspc/OID/PG_x/DB/ (PostgreSQL's is_checksummed_file) */
	if (strncmp(relpath, "global/", 7) && strncmp(relpath, "base/", 5) && strncmp(relpath, "pg_tblspc/", 10))
		return 0;
	p = base;
	if (*p < '0' || *p > '9')
		return 0; /* also leaves out pg_control, pg_filenode.map, PG_VERSION, t123_456 temp files */
	while (*p >= '0' && *p <= '9')
		p++;
	if (!strncmp(p, "_fsm", 4) || !strncmp(p, "_vm", 3) || !strncmp(p, "_init", 5))
		p += p[1] == 'f' ? 4 : p[1] == 'v' ? 3 : 5;
	if (*p == '.') {
		uint32_t s = 0;
		p++;
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			s = s * 10 + (uint32_t)(*p++ - '0');
		*segno = s;
	}
	return *p == '\0';
}

struct pagecheck {
	uint32_t segno;
	uint64_t start_lsn;
	pagecheck_bad_fn bad;
	void *ctx;
	uint8_t page[PAGECHECK_BLCKSZ];
	size_t have;   /* bytes of the page being assembled */
	uint64_t next; /* file offset expected next */
	uint64_t pages, damaged;
};

pagecheck *pagecheck_new(uint32_t segno, uint64_t start_lsn, pagecheck_bad_fn bad, void *ctx)
{
	pagecheck *p = xcalloc(1, sizeof *p);
	p->segno = segno;
	p->start_lsn = start_lsn;
	p->bad = bad;
	p->ctx = ctx;
	return p;
}

/* 1 when page pg is to be verified: neither new nor written since start_lsn */
static int page_counts(const uint8_t *pg, uint64_t start_lsn)
{
	uint64_t lsn = ((uint64_t)get_le32(pg) << 32) | get_le32(pg + 4);
	uint16_t upper = (uint16_t)(pg[14] | pg[15] << 8);
	return upper != 0 && lsn < start_lsn; /* else new, or written during the backup */
}

static int page_sound(const uint8_t *pg, uint32_t blkno)
{
	return pagecheck_checksum(pg, blkno) == (uint16_t)(pg[8] | pg[9] << 8);
}

int pagecheck_recheck(int fd, uint32_t segno, uint32_t blkno, uint64_t start_lsn)
{
	uint8_t pg[PAGECHECK_BLCKSZ];
	uint64_t off = (uint64_t)(blkno - segno * PAGECHECK_RELSEG_BLOCKS) * PAGECHECK_BLCKSZ;
	size_t got = 0;
	while (got < sizeof pg) {
		ssize_t r = pread(fd, pg + got, sizeof pg - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 0; /* unreadable now: the first reading stands */
		if (r == 0)
			return 1; /* truncated since (a relation shrunk by VACUUM): nothing to restore */
		got += (size_t)r;
	}
	return !page_counts(pg, start_lsn) || page_sound(pg, blkno);
}

static void check_page(pagecheck *p, const uint8_t *pg, uint64_t off)
{
	uint32_t blkno = p->segno * PAGECHECK_RELSEG_BLOCKS + (uint32_t)(off / PAGECHECK_BLCKSZ);
	if (!page_counts(pg, p->start_lsn))
		return;
	p->pages++;
	if (!page_sound(pg, blkno)) {
		p->damaged++;
		if (p->bad)
			p->bad(p->ctx, blkno);
	}
}

void pagecheck_feed(pagecheck *p, uint64_t off, const uint8_t *data, size_t len)
{
	if (off != p->next) { /* a hole: pages there are zero, that is new */
		p->have = 0;
		if (off % PAGECHECK_BLCKSZ) {
			size_t skip = PAGECHECK_BLCKSZ - (size_t)(off % PAGECHECK_BLCKSZ);
			if (skip >= len) {
				p->next = off + len;
				return;
			}
			data += skip;
			len -= skip;
			off += skip;
		}
	}
	p->next = off + len;
	if (p->have) {
		size_t n = PAGECHECK_BLCKSZ - p->have;
		if (n > len)
			n = len;
		memcpy(p->page + p->have, data, n);
		p->have += n;
		data += n;
		len -= n;
		off += n;
		if (p->have < PAGECHECK_BLCKSZ)
			return;
		check_page(p, p->page, off - PAGECHECK_BLCKSZ);
		p->have = 0;
	}
	while (len >= PAGECHECK_BLCKSZ) {
		check_page(p, data, off);
		data += PAGECHECK_BLCKSZ;
		len -= PAGECHECK_BLCKSZ;
		off += PAGECHECK_BLCKSZ;
	}
	if (len) {
		memcpy(p->page, data, len);
		p->have = len;
	}
}

uint64_t pagecheck_pages(const pagecheck *p)
{
	return p->pages;
}

uint64_t pagecheck_damaged(const pagecheck *p)
{
	return p->damaged;
}

void pagecheck_free(pagecheck *p)
{
	free(p);
}
