#include "walread.h"

#include <stdlib.h>
#include <string.h>

/*
 * States of the record in progress, changed only by the functions named:
 *
 *   IDLE --begin_record--> HDR --on_header--> BODY --end_record--> IDLE
 *     ^                     |                  |                  \--> SWITCH (XLOG_SWITCH)
 *     |                     \---on_header------+--> RESYNC (zero length, bad header section,
 *     |                          drop_record        bad xl_prev, page without continuation)
 *     \---- process_page: a new page without a record in progress (RESYNC and IDLE), skipping
 *           the continuation it announces; a new segment ends SWITCH.
 *
 * HDR and BODY carry on across pages (and segments) when the next page announces exactly the
 * rest of the record (XLP_FIRST_IS_CONTRECORD, xlp_rem_len).
 */
enum rstate { R_IDLE, R_HDR, R_BODY, R_RESYNC, R_SWITCH };

#define PG_MAGIC 0xD110
#define XLP_FIRST_IS_CONTRECORD 0x0001
#define XLP_LONG_HEADER 0x0002
#define XLP_FIRST_IS_OVERWRITE_CONTRECORD 0x0008
#define XLP_ALL_FLAGS 0x000F
#define SHORT_PHD 24 /* MAXALIGN(sizeof(XLogPageHeaderData)) */
#define LONG_PHD 40  /* MAXALIGN(sizeof(XLogLongPageHeaderData)) */
#define REC_HDR 24   /* SizeOfXLogRecord */
#define REC_CRC_OFF 20
#define MAX_PAGE 65536
#define MAX_RECORD 0x40000000u /* PostgreSQL's MaxAllocSize is 1 GiB - 1 */
#define DEFAULT_SEG (16u << 20)
#define DEFAULT_PAGE 8192u

#define RM_XLOG_ID 0
#define RM_XACT_ID 1
#define RM_TBLSPC_ID 5
#define XLOG_TBLSPC_CREATE 0x00
#define XLOG_SWITCH 0x40
#define XLOG_RESTORE_POINT 0x70
#define XLOG_PARAMETER_CHANGE 0x60
#define XLOG_XACT_OPMASK 0x70
#define XLOG_XACT_COMMIT 0x00
#define XLOG_XACT_ABORT 0x20
#define XLOG_XACT_COMMIT_PREPARED 0x30
#define XLOG_XACT_ABORT_PREPARED 0x40

#define XLR_BLOCK_ID_DATA_SHORT 255
#define XLR_BLOCK_ID_DATA_LONG 254
#define XLR_BLOCK_ID_ORIGIN 253
#define XLR_BLOCK_ID_TOPLEVEL_XID 252
#define XLR_MAX_BLOCK_ID 32
#define BKPBLOCK_HAS_IMAGE 0x10
#define BKPBLOCK_HAS_DATA 0x20
#define BKPBLOCK_SAME_REL 0x80
#define BKPIMAGE_HAS_HOLE 0x01
#define BKPIMAGE_COMPRESSED 0x1C /* PGLZ 0x04, LZ4 0x08, ZSTD 0x10 */

#define PREFIX 2048 /* header section kept of a reported record (33 block headers need < 1 KiB) */
#define CAP (4 + WALREAD_TBLSPC_PATH) /* main data kept: xl_tblspc_create_rec is the largest we read */
#define RP_NAME 64  /* MAXFNAMELEN */

struct walread {
	/* where the stream is */
	uint32_t tli;
	uint64_t segno;     /* of the first segment */
	uint64_t start_lsn; /* LSN of the stream's first byte */
	int addr_known;
	uint32_t seg_size, page_size;
	int sizes_known;
	uint64_t sysid;
	int sysid_known;
	uint64_t page_off; /* stream offset of the page being filled */
	uint8_t page[MAX_PAGE];
	size_t fill;
	int ended;

	/* the record in progress */
	enum rstate st;
	uint8_t hdr[REC_HDR];
	uint32_t have; /* bytes of it seen, header included */
	uint32_t tot_len;
	uint64_t rec_lsn;
	uint64_t prev_lsn; /* start of the last whole record, when prev_known */
	int prev_known;
	int no_prev_check; /* first record after an overwritten continuation */
	int in_cont;       /* RESYNC: skipping the continuation of a record begun before the stream */
	int want;          /* a kind we report: CRC, header section and main data kept */
	int parsed;
	uint32_t crc;
	uint32_t main_off, main_len;
	uint8_t prefix[PREFIX]; /* record bytes [REC_HDR, REC_HDR + PREFIX) */
	uint8_t cap[CAP];       /* main data bytes [0, CAP) */

	/* the segment in progress */
	struct walread_segment seg;
	int seg_open;
};

static const uint32_t crc_table[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
	0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
	0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
	0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
	0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
	0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
	0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
	0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927, 0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
	0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
	0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
	0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
	0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
	0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
	0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
	0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
	0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
	0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
	0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
	0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
	0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
	0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
	0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e, 0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t walread_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int pow2_between(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

walread *walread_dup(const walread *r)
{
	walread *d = malloc(sizeof *d);
	if (d)
		memcpy(d, r, sizeof *d); /* the object holds no pointers */
	return d;
}

walread *walread_new(uint32_t tli, uint64_t segno)
{
	walread *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->tli = tli;
	r->segno = segno;
	r->seg_size = DEFAULT_SEG;
	r->page_size = DEFAULT_PAGE;
	r->st = R_IDLE;
	/* the start LSN is only known once the segment size is: see learn_sizes() */
	return r;
}

walread *walread_new_at(uint32_t tli, uint64_t segno, uint32_t seg_size, uint32_t page_size, uint64_t offset)
{
	walread *r;
	if (!pow2_between(seg_size, 1u << 20, 1u << 30) || !pow2_between(page_size, 1024, MAX_PAGE) ||
	    offset % page_size || offset >= seg_size)
		return NULL;
	if (!(r = walread_new(tli, segno)))
		return NULL;
	r->seg_size = seg_size;
	r->page_size = page_size;
	r->sizes_known = 1;
	r->start_lsn = segno * seg_size; /* page LSNs are start_lsn + page_off, as from a segment start */
	r->addr_known = 1;
	r->page_off = offset;
	return r;
}

void walread_free(walread *r)
{
	free(r);
}

uint32_t walread_seg_size(const walread *r)
{
	return r->seg_size;
}

uint32_t walread_page_size(const walread *r)
{
	return r->page_size;
}

void walread_current(const walread *r, struct walread_segment *out)
{
	*out = r->seg;
	out->tli = r->tli;
	out->ends_in_record = r->st == R_HDR || r->st == R_BODY || (r->st == R_RESYNC && r->in_cont);
}

int walread_in_record(const walread *r)
{
	return r->st == R_HDR || r->st == R_BODY;
}

/* The first long page header of the stream fixes the segment and page sizes; without one the
 * defaults stay (and the pages will not validate). */
static void learn_sizes(walread *r, const uint8_t *p)
{
	if (le16(p) == PG_MAGIC && (le16(p + 2) & XLP_LONG_HEADER) && pow2_between(le32(p + 32), 1u << 20, 1u << 30) &&
	    pow2_between(le32(p + 36), 1024, MAX_PAGE)) {
		r->seg_size = le32(p + 32);
		r->page_size = le32(p + 36);
	}
	r->sizes_known = 1;
	if (r->tli)
		r->start_lsn = r->segno * r->seg_size, r->addr_known = 1;
}

static void open_segment(walread *r)
{
	memset(&r->seg, 0, sizeof r->seg);
	r->seg.segno = r->segno + r->page_off / r->seg_size;
	r->seg_open = 1;
}

static void close_segment(walread *r, const struct walread_cb *cb)
{
	if (!r->seg_open)
		return;
	walread_current(r, &r->seg);
	if (cb && cb->segment)
		cb->segment(cb->ctx, &r->seg);
	r->seg_open = 0;
}

static void drop_record(walread *r)
{
	if (r->st == R_HDR || r->st == R_BODY) {
		r->seg.bad_records++;
		r->prev_known = 0;
	}
	r->st = R_RESYNC;
	r->in_cont = 0;
}

/* The header section of a reported record, from prefix: finds the main data (its last bytes). */
static int parse_headers(walread *r)
{
	const uint8_t *p = r->prefix;
	uint32_t avail = r->tot_len - REC_HDR < PREFIX ? r->tot_len - REC_HDR : PREFIX;
	uint32_t remaining = r->tot_len - REC_HDR, datatotal = 0, main_len = 0, at = 0;
	int max_block = -1, have_rel = 0;
#define TAKE(n)                                                                                                    \
	do {                                                                                                       \
		if (at + (n) > avail || remaining < (n))                                                           \
			return -1;                                                                                 \
		at += (n);                                                                                         \
		remaining -= (n);                                                                                  \
	} while (0)
	while (remaining > datatotal) {
		uint8_t id = p[at];
		TAKE(1);
		if (id == XLR_BLOCK_ID_DATA_SHORT) {
			TAKE(1);
			main_len = p[at - 1];
			datatotal += main_len;
			break;
		} else if (id == XLR_BLOCK_ID_DATA_LONG) {
			TAKE(4);
			main_len = le32(p + at - 4);
			if (main_len > MAX_RECORD)
				return -1;
			datatotal += main_len;
			break;
		} else if (id == XLR_BLOCK_ID_ORIGIN) {
			TAKE(2);
		} else if (id == XLR_BLOCK_ID_TOPLEVEL_XID) {
			TAKE(4);
		} else if (id <= XLR_MAX_BLOCK_ID) {
			uint8_t fork_flags;
			uint16_t data_len;
			if ((int)id <= max_block)
				return -1;
			max_block = id;
			TAKE(3);
			fork_flags = p[at - 3];
			data_len = le16(p + at - 2);
			if (!(fork_flags & BKPBLOCK_HAS_DATA) != !data_len)
				return -1;
			datatotal += data_len;
			if (fork_flags & BKPBLOCK_HAS_IMAGE) {
				uint8_t bimg_info;
				TAKE(5);
				datatotal += le16(p + at - 5);
				bimg_info = p[at - 1];
				if ((bimg_info & BKPIMAGE_HAS_HOLE) && (bimg_info & BKPIMAGE_COMPRESSED))
					TAKE(2);
			}
			if (!(fork_flags & BKPBLOCK_SAME_REL)) {
				TAKE(12); /* RelFileNode */
				have_rel = 1;
			} else if (!have_rel) {
				return -1; /* the same relation as no block before */
			}
			TAKE(4); /* BlockNumber */
		} else {
			return -1;
		}
	}
#undef TAKE
	if (remaining != datatotal || main_len > remaining)
		return -1;
	r->main_len = main_len;
	r->main_off = r->tot_len - main_len;
	return 0;
}

/* Copies what of record bytes [off, off+n) falls in the first CAP bytes of the main data. */
static void capture(walread *r, uint32_t off, const uint8_t *p, uint32_t n)
{
	uint32_t lo = r->main_off, hi = r->main_off + (r->main_len < CAP ? r->main_len : CAP);
	uint32_t a = off > lo ? off : lo, b = off + n < hi ? off + n : hi;
	if (a < b)
		memcpy(r->cap + (a - lo), p + (a - off), b - a);
}

/* Body bytes of a reported record: CRC, header section, main data. */
static void take_body(walread *r, const uint8_t *p, uint32_t n)
{
	while (n) {
		uint32_t k = n, off = r->have;
		uint32_t limit = r->tot_len < REC_HDR + PREFIX ? r->tot_len : REC_HDR + PREFIX;
		if (!r->parsed && off < limit && k > limit - off)
			k = limit - off; /* stop at the end of the prefix to parse there */
		r->crc = walread_crc32c(r->crc, p, k);
		if (off < REC_HDR + PREFIX) {
			uint32_t c = REC_HDR + PREFIX - off < k ? REC_HDR + PREFIX - off : k;
			memcpy(r->prefix + (off - REC_HDR), p, c);
		}
		if (r->parsed > 0)
			capture(r, off, p, k);
		r->have += k;
		if (!r->parsed && r->have == limit) {
			if (parse_headers(r) < 0) {
				r->parsed = -1;
			} else {
				r->parsed = 1;
				capture(r, REC_HDR, r->prefix, r->have - REC_HDR);
			}
		}
		p += k;
		n -= k;
	}
}

static void report(walread *r, uint64_t end_lsn, const struct walread_cb *cb)
{
	uint8_t rmid = r->hdr[17], info = r->hdr[16];
	if (rmid == RM_XACT_ID) {
		struct walread_xact x;
		uint8_t op = info & XLOG_XACT_OPMASK;
		if (r->main_len < 8) {
			r->seg.bad_records++;
			return;
		}
		x.kind = op == XLOG_XACT_COMMIT   ? WALREAD_COMMIT
			 : op == XLOG_XACT_ABORT  ? WALREAD_ABORT
			 : op == XLOG_XACT_COMMIT_PREPARED ? WALREAD_COMMIT_PREPARED
						       : WALREAD_ABORT_PREPARED;
		x.lsn = r->rec_lsn;
		x.end_lsn = end_lsn;
		x.xid = le32(r->hdr + 4);
		x.time_us = (int64_t)le64(r->cap);
		/* a TimestampTz far out of range would overflow: saturate (garbage with a good CRC) */
		x.time_us = x.time_us > INT64_MAX - WALREAD_PG_EPOCH_US ? INT64_MAX : x.time_us + WALREAD_PG_EPOCH_US;
		if (x.kind == WALREAD_COMMIT || x.kind == WALREAD_COMMIT_PREPARED)
			r->seg.commits++;
		else
			r->seg.aborts++;
		/* the earliest and the latest time: concurrent commits reach the WAL out of time
		 * order, and "replay to the end" must not take in a commit after the latest seen */
		if (!r->seg.first_xact_us || x.time_us < r->seg.first_xact_us)
			r->seg.first_xact_us = x.time_us;
		if (x.time_us > r->seg.last_xact_us)
			r->seg.last_xact_us = x.time_us;
		if (cb && cb->xact)
			cb->xact(cb->ctx, &x);
	} else if (rmid == RM_TBLSPC_ID) {
		struct walread_tablespace t;
		size_t n;
		if (r->main_len < 5) {
			r->seg.bad_records++;
			return;
		}
		t.lsn = r->rec_lsn;
		t.end_lsn = end_lsn;
		t.oid = le32(r->cap);
		n = r->main_len - 4 < WALREAD_TBLSPC_PATH ? r->main_len - 4 : WALREAD_TBLSPC_PATH;
		memcpy(t.path, r->cap + 4, n);
		t.path[n] = '\0'; /* the record's own NUL ends it sooner */
		if (cb && cb->tablespace)
			cb->tablespace(cb->ctx, &t);
	} else if ((info & 0xF0) == XLOG_PARAMETER_CHANGE) {
		/* xl_parameter_change: MaxConnections, max_worker_processes, max_wal_senders,
		 * max_prepared_xacts, max_locks_per_xact (int32 each), then more */
		struct walread_params pc;
		if (r->main_len < 20) {
			r->seg.bad_records++;
			return;
		}
		pc.lsn = r->rec_lsn;
		pc.max_connections = (int32_t)le32(r->cap);
		pc.max_worker_processes = (int32_t)le32(r->cap + 4);
		pc.max_wal_senders = (int32_t)le32(r->cap + 8);
		pc.max_prepared_xacts = (int32_t)le32(r->cap + 12);
		pc.max_locks_per_xact = (int32_t)le32(r->cap + 16);
		if (cb && cb->params)
			cb->params(cb->ctx, &pc);
	} else {
		struct walread_restore_point rp;
		int64_t t;
		if (r->main_len < 8 + RP_NAME) {
			r->seg.bad_records++;
			return;
		}
		rp.lsn = r->rec_lsn;
		rp.end_lsn = end_lsn;
		t = (int64_t)le64(r->cap);
		rp.time_us = t > INT64_MAX - WALREAD_PG_EPOCH_US ? INT64_MAX : t + WALREAD_PG_EPOCH_US;
		memcpy(rp.name, r->cap + 8, RP_NAME);
		rp.name[RP_NAME] = '\0';
		r->seg.restore_points++;
		if (cb && cb->restore_point)
			cb->restore_point(cb->ctx, &rp);
	}
}

/* The record is whole; end_lsn is just past its last byte. */
static void end_record(walread *r, uint64_t end_lsn, const struct walread_cb *cb)
{
	r->seg.records++;
	r->seg.end_lsn = end_lsn;
	r->prev_lsn = r->rec_lsn;
	r->prev_known = 1;
	r->st = R_IDLE;
	if (r->hdr[17] == RM_XLOG_ID && (r->hdr[16] & 0xF0) == XLOG_SWITCH)
		r->st = R_SWITCH, r->seg.switched = 1; /* the rest of the segment is padding */
	if (!r->want)
		return;
	r->crc = walread_crc32c(r->crc, r->hdr, REC_CRC_OFF);
	if (r->crc != le32(r->hdr + REC_CRC_OFF)) {
		r->seg.bad_crc++;
		return;
	}
	if (r->parsed < 0) {
		r->seg.bad_records++;
		return;
	}
	report(r, end_lsn, cb);
}

/* The header is whole: check it, decide whether the record is one we report. */
static void on_header(walread *r)
{
	uint32_t tot = le32(r->hdr);
	uint64_t prev = le64(r->hdr + 8);
	uint8_t info = r->hdr[16], rmid = r->hdr[17];
	if (tot == 0) { /* zeros: the end of the WAL written so far */
		r->st = R_RESYNC;
		return;
	}
	if (tot < REC_HDR || tot > MAX_RECORD || (r->addr_known && prev >= r->rec_lsn) ||
	    (r->prev_known && !r->no_prev_check && prev != r->prev_lsn)) {
		drop_record(r);
		return;
	}
	r->no_prev_check = 0;
	r->tot_len = tot;
	r->want = 0;
	if (rmid == RM_XACT_ID) {
		uint8_t op = info & XLOG_XACT_OPMASK;
		r->want = op == XLOG_XACT_COMMIT || op == XLOG_XACT_ABORT || op == XLOG_XACT_COMMIT_PREPARED ||
			  op == XLOG_XACT_ABORT_PREPARED;
	} else if (rmid == RM_XLOG_ID) {
		r->want = (info & 0xF0) == XLOG_RESTORE_POINT || (info & 0xF0) == XLOG_PARAMETER_CHANGE;
	} else if (rmid == RM_TBLSPC_ID) {
		r->want = (info & 0xF0) == XLOG_TBLSPC_CREATE;
	}
	r->crc = 0;
	r->parsed = 0;
	r->main_off = r->main_len = 0;
	r->st = R_BODY;
}

/* One page (n < page_size only for the last bytes of the stream) at stream offset page_off. */
static void process_page(walread *r, const uint8_t *pg, size_t n, const struct walread_cb *cb)
{
	uint64_t in_seg = r->page_off % r->seg_size;
	int long_hdr = in_seg == 0;
	size_t hsize = long_hdr ? LONG_PHD : SHORT_PHD, off;
	uint16_t info;
	uint32_t rem_len;
	uint64_t page_lsn;
	int valid;

	if (!r->seg_open)
		open_segment(r);
	r->seg.bytes += n;
	if (long_hdr && r->st == R_SWITCH)
		r->st = R_IDLE;
	if (r->st == R_SWITCH)
		goto out;

	valid = n >= hsize && le16(pg) == PG_MAGIC && !(le16(pg + 2) & ~XLP_ALL_FLAGS) &&
		!(le16(pg + 2) & XLP_LONG_HEADER) == !long_hdr;
	if (valid && long_hdr) {
		valid = le32(pg + 32) == r->seg_size && le32(pg + 36) == r->page_size &&
			(!r->sysid_known || le64(pg + 24) == r->sysid);
		if (valid && !r->sysid_known)
			r->sysid = le64(pg + 24), r->sysid_known = 1;
	}
	if (valid) {
		uint64_t addr = le64(pg + 8);
		if (!r->addr_known) {
			if (addr % r->page_size || (addr - r->page_off) % r->seg_size) {
				valid = 0;
			} else {
				r->start_lsn = addr - r->page_off;
				r->segno = r->start_lsn / r->seg_size;
				r->seg.segno = addr / r->seg_size;
				r->addr_known = 1;
			}
		} else if (addr != r->start_lsn + r->page_off) {
			valid = 0;
		}
	}
	if (!valid) {
		r->seg.bad_pages++;
		drop_record(r);
		goto out;
	}
	if (!r->tli)
		r->tli = le32(pg + 4);
	info = le16(pg + 2);
	rem_len = le32(pg + 16);
	page_lsn = r->start_lsn + r->page_off;
	off = hsize;

	if (r->st == R_HDR || r->st == R_BODY) {
		if (!(info & XLP_FIRST_IS_CONTRECORD) || rem_len == 0 ||
		    (r->st == R_BODY && rem_len != r->tot_len - r->have))
			drop_record(r); /* and start afresh below */
	}
	if (r->st == R_IDLE || r->st == R_RESYNC) {
		/* no record in progress: skip the continuation of one that started before */
		if (r->st == R_RESYNC)
			r->prev_known = 0;
		r->no_prev_check = !!(info & XLP_FIRST_IS_OVERWRITE_CONTRECORD);
		r->st = R_IDLE;
		r->in_cont = 0;
		if (info & XLP_FIRST_IS_CONTRECORD) {
			uint64_t skip = ((uint64_t)rem_len + 7) & ~(uint64_t)7;
			r->prev_known = 0;
			if (skip > r->page_size - hsize) {
				r->st = R_RESYNC, r->in_cont = 1; /* it goes on past this page */
				goto out;
			}
			off += (size_t)skip;
		}
	}

	while (off < n) {
		switch (r->st) {
		case R_IDLE:
			off = (off + 7) & ~(size_t)7;
			if (off >= n)
				break;
			r->rec_lsn = page_lsn + off;
			r->have = 0;
			r->st = R_HDR;
			break;
		case R_HDR: {
			size_t k = REC_HDR - r->have < n - off ? REC_HDR - r->have : n - off;
			memcpy(r->hdr + r->have, pg + off, k);
			r->have += (uint32_t)k;
			off += k;
			if (r->have == REC_HDR) {
				on_header(r);
				if (r->st == R_BODY && r->have == r->tot_len)
					end_record(r, page_lsn + off, cb);
			}
			break;
		}
		case R_BODY: {
			size_t k = r->tot_len - r->have < n - off ? r->tot_len - r->have : n - off;
			if (r->want)
				take_body(r, pg + off, (uint32_t)k);
			else
				r->have += (uint32_t)k;
			off += k;
			if (r->have == r->tot_len)
				end_record(r, page_lsn + off, cb);
			break;
		}
		case R_RESYNC:
		case R_SWITCH:
			off = n;
			break;
		}
	}
out:
	r->page_off += n;
	if (r->page_off % r->seg_size == 0)
		close_segment(r, cb);
}

void walread_feed(walread *r, const uint8_t *buf, size_t len, const struct walread_cb *cb)
{
	if (r->ended)
		return;
	while (len > 0) {
		size_t need = r->sizes_known ? r->page_size : LONG_PHD, take;
		if (r->fill == 0 && r->sizes_known && len >= r->page_size) {
			process_page(r, buf, r->page_size, cb);
			buf += r->page_size;
			len -= r->page_size;
			continue;
		}
		take = need - r->fill < len ? need - r->fill : len;
		memcpy(r->page + r->fill, buf, take);
		r->fill += take;
		buf += take;
		len -= take;
		if (!r->sizes_known && r->fill == LONG_PHD)
			learn_sizes(r, r->page);
		else if (r->sizes_known && r->fill == r->page_size) {
			process_page(r, r->page, r->fill, cb);
			r->fill = 0;
		}
	}
}

void walread_end(walread *r, const struct walread_cb *cb)
{
	if (r->ended)
		return;
	if (r->fill > 0) {
		if (!r->sizes_known)
			learn_sizes(r, r->page); /* too short to hold one: defaults */
		process_page(r, r->page, r->fill, cb);
		r->fill = 0;
	}
	close_segment(r, cb);
	r->ended = 1;
}
