/* test_pagecheck.c: PostgreSQL page checksums (backup/pagecheck.c) against a real page, and the streaming checker. */
#include "../unit.h"

#include <unistd.h>

#include "backup/pagecheck.h"
#include "backup/tar.h"

/* block 2 of base/1/1259 (pg_class) from `initdb -k` of PostgreSQL 15: a real page and its stored checksum */
static uint8_t *real_page(void)
{
	uint8_t *p = malloc(PAGECHECK_BLCKSZ);
	FILE *f = fopen(PGT_TEST_DATA "/page_1259_blk2.bin", "rb");
	assert_non_null(p);
	assert_non_null(f);
	assert_int_equal(fread(p, 1, PAGECHECK_BLCKSZ, f), PAGECHECK_BLCKSZ);
	fclose(f);
	return p;
}

static void test_real_page(void **state)
{
	uint8_t *p = real_page();
	uint16_t stored = (uint16_t)(p[8] | p[9] << 8);
	(void)state;
	assert_int_equal(pagecheck_checksum(p, 2), stored);
	assert_int_not_equal(pagecheck_checksum(p, 3), stored); /* the block number is part of it */
	p[4000] ^= 1;
	assert_int_not_equal(pagecheck_checksum(p, 2), stored);
	p[4000] ^= 1;
	p[8] ^= 0xff; /* the checksum field itself does not count */
	assert_int_equal(pagecheck_checksum(p, 2), stored);
	free(p);
}

struct bad {
	uint32_t blocks[16];
	int n;
};

static void on_bad(void *ctx, uint32_t blkno)
{
	struct bad *b = ctx;
	if (b->n < 16)
		b->blocks[b->n++] = blkno;
}

/* a file of 6 pages: copies of the real page with checksums set for their block numbers */
static uint8_t *make_file(uint32_t first_block)
{
	uint8_t *page = real_page(), *f = malloc(6 * PAGECHECK_BLCKSZ);
	assert_non_null(f);
	for (uint32_t i = 0; i < 6; i++) {
		uint16_t c;
		memcpy(f + i * PAGECHECK_BLCKSZ, page, PAGECHECK_BLCKSZ);
		c = pagecheck_checksum(f + i * PAGECHECK_BLCKSZ, first_block + i);
		f[i * PAGECHECK_BLCKSZ + 8] = (uint8_t)c;
		f[i * PAGECHECK_BLCKSZ + 9] = (uint8_t)(c >> 8);
	}
	free(page);
	return f;
}

/* a damaged page is read once more from the file: sound now, new, written since, or gone */
static void test_recheck(void **state)
{
	char path[] = "/tmp/pgt-recheck-XXXXXX";
	uint8_t *f = make_file(131072 * 2 + 10); /* segment 2, blocks 10..15 */
	uint64_t lsn = ((uint64_t)(f[0] | f[1] << 8 | f[2] << 16 | (uint32_t)f[3] << 24) << 32) |
		       (uint32_t)(f[4] | f[5] << 8 | f[6] << 16 | (uint32_t)f[7] << 24);
	int fd = mkstemp(path);
	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	/* a segment file starts at block 2 * 131072: these pages sit at its blocks 10..15 */
	assert_int_equal(pwrite(fd, f, 6 * PAGECHECK_BLCKSZ, 10 * PAGECHECK_BLCKSZ), 6 * PAGECHECK_BLCKSZ);
	/* sound on disk: the streamed damage was a torn read */
	assert_int_equal(pagecheck_recheck(fd, 2, 131072 * 2 + 12, lsn + 1), 1);
	/* damaged on disk too, and older than the backup's start: damaged */
	f[3 * PAGECHECK_BLCKSZ + 5000] ^= 1;
	assert_int_equal(pwrite(fd, f + 3 * PAGECHECK_BLCKSZ, PAGECHECK_BLCKSZ, 13 * PAGECHECK_BLCKSZ),
			 PAGECHECK_BLCKSZ);
	assert_int_equal(pagecheck_recheck(fd, 2, 131072 * 2 + 13, lsn + 1), 0);
	/* the same page written since the start: WAL replay's, not damage */
	assert_int_equal(pagecheck_recheck(fd, 2, 131072 * 2 + 13, lsn), 1);
	/* the file no longer reaches the block (truncated since) */
	assert_int_equal(ftruncate(fd, 12 * PAGECHECK_BLCKSZ), 0);
	assert_int_equal(pagecheck_recheck(fd, 2, 131072 * 2 + 13, lsn + 1), 1);
	close(fd);
	free(f);
}

static void test_stream_splits(void **state)
{
	static const size_t splits[] = {1, 7, 512, 8191, 8192, 8193, 20000, 6 * 8192};
	(void)state;
	for (size_t s = 0; s < sizeof splits / sizeof *splits; s++) {
		uint8_t *f = make_file(PAGECHECK_RELSEG_BLOCKS); /* segment 1 */
		struct bad b = {{0}, 0};
		pagecheck *pc = pagecheck_new(1, UINT64_MAX, on_bad, &b);
		f[4 * PAGECHECK_BLCKSZ + 100] ^= 0x55; /* damage block 4 of the segment */
		for (size_t off = 0; off < 6 * PAGECHECK_BLCKSZ; off += splits[s]) {
			size_t n = 6 * PAGECHECK_BLCKSZ - off < splits[s] ? 6 * PAGECHECK_BLCKSZ - off : splits[s];
			pagecheck_feed(pc, off, f + off, n);
		}
		assert_int_equal(pagecheck_pages(pc), 6);
		assert_int_equal(b.n, 1);
		assert_int_equal(b.blocks[0], PAGECHECK_RELSEG_BLOCKS + 4);
		pagecheck_free(pc);
		free(f);
	}
}

static void test_skips(void **state)
{
	uint8_t *f = make_file(0);
	struct bad b = {{0}, 0};
	uint64_t lsn = ((uint64_t)get_le32(f) << 32) | get_le32(f + 4);
	pagecheck *pc;
	(void)state;
	/* pages written at or after the backup start are not judged (WAL replay fixes them) */
	f[100] ^= 1;
	pc = pagecheck_new(0, lsn, on_bad, &b);
	pagecheck_feed(pc, 0, f, 6 * PAGECHECK_BLCKSZ);
	assert_int_equal(pagecheck_pages(pc), 0);
	assert_int_equal(b.n, 0);
	pagecheck_free(pc);
	/* new pages (pd_upper 0) are skipped; a gap (hole) drops the partial page */
	memset(f, 0, PAGECHECK_BLCKSZ);
	pc = pagecheck_new(0, UINT64_MAX, on_bad, &b);
	pagecheck_feed(pc, 0, f, PAGECHECK_BLCKSZ + 100);
	pagecheck_feed(pc, 3 * PAGECHECK_BLCKSZ, f + 3 * PAGECHECK_BLCKSZ, 3 * PAGECHECK_BLCKSZ);
	assert_int_equal(pagecheck_pages(pc), 3);
	assert_int_equal(b.n, 0);
	pagecheck_free(pc);
	free(f);
}

static void test_is_relation(void **state)
{
	uint32_t seg;
	(void)state;
	assert_true(pagecheck_is_relation("base/5/16384", &seg) && seg == 0);
	assert_true(pagecheck_is_relation("base/5/16384.3", &seg) && seg == 3);
	assert_true(pagecheck_is_relation("global/1262_vm", &seg) && seg == 0);
	assert_true(pagecheck_is_relation("pg_tblspc/16390/PG_15_202209061/5/16391_fsm.1", &seg) && seg == 1);
	assert_false(pagecheck_is_relation("global/pg_control", &seg));
	assert_false(pagecheck_is_relation("base/5/pg_filenode.map", &seg));
	assert_false(pagecheck_is_relation("base/5/PG_VERSION", &seg));
	assert_false(pagecheck_is_relation("base/5/t3_16400", &seg));
	assert_false(pagecheck_is_relation("pg_wal/000000010000000000000001", &seg));
	assert_false(pagecheck_is_relation("pg_xact/0000", &seg));
	assert_false(pagecheck_is_relation("base/5/16384.", &seg));
}

/* ---------- tar ---------- */

struct tar_log {
	char text[4096];
	size_t bytes;
};

static int t_member(void *ctx, const struct tar_member *m, struct err *e)
{
	struct tar_log *l = ctx;
	(void)e;
	snprintf(l->text + strlen(l->text), sizeof l->text - strlen(l->text), "[%c %s %o %llu%s%s]", m->type, m->path,
		 m->mode, (unsigned long long)m->size, m->link[0] ? " -> " : "", m->link);
	return 0;
}

static int t_data(void *ctx, const uint8_t *p, size_t n, struct err *e)
{
	struct tar_log *l = ctx;
	(void)p;
	(void)e;
	l->bytes += n;
	return 0;
}

static void tar_header(uint8_t *h, const char *name, char type, uint64_t size, const char *link)
{
	unsigned sum = 0;
	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0600);
	snprintf((char *)h + 108, 8, "%07o", 26);
	snprintf((char *)h + 116, 8, "%07o", 26);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 1700000000);
	h[156] = (uint8_t)type;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar\0" "00", 8);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

static void test_tar(void **state)
{
	uint8_t arc[512 * 8];
	struct tar_log l;
	struct tar_callbacks cb = {.ctx = &l, .member = t_member, .data = t_data};
	tar_parser *t = tar_new(&cb);
	struct err e;
	(void)state;
	memset(arc, 0, sizeof arc);
	memset(&l, 0, sizeof l);
	tar_header(arc, "base/", '5', 0, NULL);
	tar_header(arc + 512, "base/1/16384", '0', 700, NULL);
	memset(arc + 1024, 'x', 700);
	tar_header(arc + 2048, "pg_tblspc/16390/", '2', 0, "/srv/ts");
	/* fed one byte at a time, then in one piece */
	for (int pass = 0; pass < 2; pass++) {
		memset(&l, 0, sizeof l);
		tar_reset(t);
		if (pass == 0)
			for (size_t i = 0; i < sizeof arc; i++)
				assert_int_equal(tar_feed(t, arc + i, 1, &e), 0);
		else
			assert_int_equal(tar_feed(t, arc, sizeof arc, &e), 0);
		assert_int_equal(tar_finish(t, &e), 0);
		assert_string_equal(l.text, "[5 base 600 0][0 base/1/16384 600 700][2 pg_tblspc/16390 600 0 -> /srv/ts]");
		assert_int_equal(l.bytes, 700);
	}
	/* a damaged header and a truncated archive are refused */
	tar_reset(t);
	arc[512 + 5] ^= 1;
	assert_int_equal(tar_feed(t, arc, sizeof arc, &e), ERR_CORRUPT);
	arc[512 + 5] ^= 1;
	tar_reset(t);
	assert_int_equal(tar_feed(t, arc, 1024 + 100, &e), 0);
	assert_int_equal(tar_finish(t, &e), ERR_CORRUPT);
	tar_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_page),   cmocka_unit_test(test_recheck),
		cmocka_unit_test(test_stream_splits), cmocka_unit_test(test_skips),
		cmocka_unit_test(test_is_relation), cmocka_unit_test(test_tar),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
