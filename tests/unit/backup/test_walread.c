/* test_walread.c: the WAL reader (backup/walread.c) on WAL written here page by page as
 * PostgreSQL 15 lays it out, on damaged and arbitrary bytes, and on a real server's segments
 * against pg_waldump. */
#include "../unit.h"

#include <time.h>
#include <unistd.h>

#include "backup/walread.h"

/* ---- a WAL writer: records laid into pages and segments as XLogInsert does ---- */

struct ev {
	int kind; /* walread_xact_kind, or 9 for a restore point */
	uint64_t lsn;
	int64_t time_us;
	char name[65];
	uint64_t segno; /* where it was reported */
};

struct gen {
	uint8_t *buf;
	size_t len, cap;
	uint32_t seg_size, page_size, tli;
	uint64_t start_lsn, prev, pos;
	struct ev ev[256];
	int nev;
};

static void put(struct gen *g, const void *p, size_t n)
{
	if (g->len + n > g->cap) {
		g->cap = (g->len + n) * 2;
		g->buf = realloc(g->buf, g->cap);
		assert_non_null(g->buf);
	}
	memcpy(g->buf + g->len, p, n);
	g->len += n;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v), put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }

/* a page header at g->len (a page start); rem is the continuation it announces */
static void page_header(struct gen *g, uint32_t rem)
{
	uint8_t h[40] = {0};
	int lng = g->len % g->seg_size == 0;
	put16(h, 0xD110);
	put16(h + 2, (uint16_t)((rem ? 1 : 0) | (lng ? 2 : 0)));
	put32(h + 4, g->tli);
	put64(h + 8, g->start_lsn + g->len);
	put32(h + 16, rem);
	if (lng) {
		put64(h + 24, 7000000000000000001ull);
		put32(h + 32, g->seg_size);
		put32(h + 36, g->page_size);
	}
	put(g, h, lng ? 40 : 24);
}

static void gen_init(struct gen *g, uint32_t seg_size, uint32_t page_size, uint64_t segno)
{
	memset(g, 0, sizeof *g);
	g->seg_size = seg_size, g->page_size = page_size, g->tli = 1;
	g->start_lsn = segno * seg_size;
}

/* appends a record (body = everything after the 24-byte header); returns its LSN */
static uint64_t gen_record(struct gen *g, uint8_t rmid, uint8_t info, const uint8_t *body, size_t blen, int bad_crc)
{
	uint8_t h[24] = {0};
	uint32_t tot = (uint32_t)(24 + blen), crc;
	size_t done = 0;
	uint64_t lsn;
	while (g->len % 8)
		put(g, "\0", 1);
	if (g->len % g->page_size == 0)
		page_header(g, 0);
	lsn = g->start_lsn + g->len;
	put32(h, tot);
	put32(h + 4, 700);
	put64(h + 8, g->prev);
	h[16] = info, h[17] = rmid;
	crc = walread_crc32c(0, body, blen);
	crc = walread_crc32c(crc, h, 20);
	put32(h + 20, crc ^ (bad_crc ? 1u : 0u));
	while (done < tot) {
		size_t room, k;
		if (g->len % g->page_size == 0)
			page_header(g, tot - (uint32_t)done);
		room = g->page_size - g->len % g->page_size;
		k = tot - done < room ? tot - done : room;
		for (size_t i = 0; i < k; i++, done++)
			put(g, done < 24 ? h + done : body + done - 24, 1);
	}
	g->prev = lsn;
	return lsn;
}

/* pads with initialised empty pages up to the end of the segment */
static void gen_finish(struct gen *g)
{
	while (g->len % g->page_size)
		put(g, "\0", 1);
	while (g->len % g->seg_size) {
		page_header(g, 0);
		while (g->len % g->page_size)
			put(g, "\0", 1);
	}
}

static size_t main_data(uint8_t *b, const uint8_t *data, uint32_t n)
{
	size_t at = 0;
	if (n < 256) {
		b[at++] = 255, b[at++] = (uint8_t)n;
	} else {
		b[at++] = 254, put32(b + at, n), at += 4;
	}
	memcpy(b + at, data, n);
	return at + n;
}

static void gen_xact(struct gen *g, int kind, int64_t unix_us, size_t extra, int with_image, int bad_crc)
{
	static const uint8_t ops[] = {0x00, 0x20, 0x30, 0x40};
	uint8_t *b = calloc(1, 20000 + extra), *md = calloc(1, 8 + extra);
	size_t at = 0;
	uint32_t mlen = (uint32_t)(8 + extra);
	put64(md, (uint64_t)(unix_us - WALREAD_PG_EPOCH_US));
	if (with_image) { /* block 0 with a 6000-byte image with a hole and 50 bytes of data */
		b[at++] = 0, b[at++] = 0x10 | 0x20, put16(b + at, 50), at += 2;
		put16(b + at, 6000), put16(b + at + 2, 100), b[at + 4] = 0x01, at += 5;
		memset(b + at, 3, 12), at += 12;
		put32(b + at, 77), at += 4;
	}
	if (mlen < 256) {
		b[at++] = 255, b[at++] = (uint8_t)mlen;
	} else {
		b[at++] = 254, put32(b + at, mlen), at += 4;
	}
	if (with_image)
		memset(b + at, 0xAB, 6050), at += 6050;
	memcpy(b + at, md, mlen), at += mlen;
	{
		uint64_t lsn = gen_record(g, 1, (uint8_t)(ops[kind] | (extra ? 0x80 : 0)), b, at, bad_crc);
		if (!bad_crc) {
			struct ev *e = &g->ev[g->nev++];
			memset(e, 0, sizeof *e);
			e->kind = kind, e->lsn = lsn, e->time_us = unix_us;
		}
	}
	free(b);
	free(md);
}

static void gen_rp(struct gen *g, int64_t unix_us, const char *name)
{
	uint8_t md[72] = {0}, b[80];
	struct ev *e = &g->ev[g->nev++];
	assert_true(strlen(name) <= 64);
	put64(md, (uint64_t)(unix_us - WALREAD_PG_EPOCH_US));
	memcpy(md + 8, name, strlen(name));
	memset(e, 0, sizeof *e);
	e->kind = 9, e->time_us = unix_us;
	strcpy(e->name, name);
	e->lsn = gen_record(g, 0, 0x70, b, main_data(b, md, 72), 0);
}

/* a record of another resource manager with main data of n bytes (not kept by the reader) */
static void gen_other(struct gen *g, uint8_t rmid, uint32_t n)
{
	uint8_t *b = malloc(n + 5), *d = malloc(n);
	memset(d, 0x5A, n);
	gen_record(g, rmid, 0, b, main_data(b, d, n), 0);
	free(b);
	free(d);
}

/* ---- collecting what the reader says ---- */

struct got {
	struct ev ev[4096];
	int nev;
	struct walread_segment seg[64];
	int nseg;
	uint64_t cur_segno;
};

static void on_xact(void *ctx, const struct walread_xact *x)
{
	struct got *g = ctx;
	if (g->nev < 4096) {
		struct ev *e = &g->ev[g->nev++];
		memset(e, 0, sizeof *e);
		e->kind = (int)x->kind, e->lsn = x->lsn, e->time_us = x->time_us;
	}
}

static void on_rp(void *ctx, const struct walread_restore_point *rp)
{
	struct got *g = ctx;
	if (g->nev < 4096) {
		struct ev *e = &g->ev[g->nev++];
		memset(e, 0, sizeof *e);
		e->kind = 9, e->lsn = rp->lsn, e->time_us = rp->time_us;
		memcpy(e->name, rp->name, sizeof e->name);
	}
}

static void on_seg(void *ctx, const struct walread_segment *s)
{
	struct got *g = ctx;
	/* events reported so far and not yet attributed belong to this segment */
	for (int i = 0; i < g->nev; i++)
		if (!g->ev[i].segno)
			g->ev[i].segno = s->segno + 1; /* +1: 0 means "not yet" */
	if (g->nseg < 64)
		g->seg[g->nseg++] = *s;
}

static const struct walread_cb CB = {on_xact, on_rp, on_seg, NULL};

/* feeds buf in pieces of random sizes (1..maxpiece) */
static void read_stream(struct got *got, uint32_t tli, uint64_t segno, const uint8_t *buf, size_t len,
			size_t maxpiece, uint64_t seed)
{
	walread *r = walread_new(tli, segno);
	struct walread_cb cb = CB;
	cb.ctx = got;
	assert_non_null(r);
	memset(got, 0, sizeof *got);
	for (size_t off = 0; off < len;) {
		size_t n = maxpiece <= 1 ? 1 : 1 + unit_rand_next(&seed) % maxpiece;
		if (n > len - off)
			n = len - off;
		walread_feed(r, buf + off, n, &cb);
		off += n;
	}
	walread_end(r, &cb);
	walread_end(r, &cb); /* twice is harmless */
	walread_free(r);
}

/* pg_waldump does not print a restore point's time: 0 there matches any */
static int quiet;

static int same_ev(const struct ev *a, const struct ev *b)
{
	int same = a->kind == b->kind && a->lsn == b->lsn && !strcmp(a->name, b->name) &&
		   (a->time_us == b->time_us || (a->kind == 9 && !b->time_us));
	if (!same && !quiet)
		fprintf(stderr, "events differ: kind %d/%d lsn %llX/%llX time %lld/%lld name '%s'/'%s'\n", a->kind, b->kind,
			(unsigned long long)a->lsn, (unsigned long long)b->lsn, (long long)a->time_us, (long long)b->time_us,
			a->name, b->name);
	return same;
}

/* three 1 MiB segments: small records, a commit with a page image (main data past the kept
 * header section), a record spanning all of segment 1, a commit prepared right after it,
 * a record with a wrong CRC */
static void make_stream(struct gen *g)
{
	int64_t t = INT64_C(1795615200123456); /* 2026-11-25 14:00:00.123456 UTC */
	gen_init(g, 1 << 20, 8192, 5);
	gen_other(g, 10, 100);
	gen_xact(g, WALREAD_COMMIT, t, 0, 0, 0);
	gen_xact(g, WALREAD_ABORT, t + 1, 0, 0, 0);
	gen_rp(g, t + 2, "before-big");
	gen_xact(g, WALREAD_COMMIT, t + 3, 3000, 1, 0); /* spans pages, main data at > 6 KiB */
	gen_xact(g, WALREAD_COMMIT, t + 4, 0, 0, 1);    /* wrong CRC: not reported */
	gen_other(g, 21, 2200000);                      /* over all of segment 6 into 7 */
	gen_xact(g, WALREAD_COMMIT_PREPARED, t + 5, 0, 0, 0);
	for (int i = 0; i < 40; i++) /* a few pages of small records, so some headers split */
		gen_other(g, 10, (uint32_t)(37 + i * 13));
	gen_xact(g, WALREAD_ABORT_PREPARED, t + 6, 0, 0, 0);
	gen_other(g, 21, 300000);
	gen_rp(g, t + 7, "a-name-of-exactly-sixty-four-bytes-" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	gen_xact(g, WALREAD_COMMIT, t + 8, 0, 0, 0);
	gen_finish(g);
}

static void check_all(const struct gen *g, const struct got *got)
{
	assert_int_equal(got->nev, g->nev);
	for (int i = 0; i < g->nev; i++)
		assert_true(same_ev(&got->ev[i], &g->ev[i]));
}

static void test_synthetic(void **state)
{
	static const size_t pieces[] = {1, 7, 100, 8191, 8192, 8193, 65536, 1 << 22};
	struct gen g;
	struct got *got = malloc(sizeof *got);
	(void)state;
	make_stream(&g);
	assert_int_equal(g.len, 3u << 20);
	for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
		read_stream(got, 1, 5, g.buf, g.len, pieces[p], p);
		check_all(&g, got);
		assert_int_equal(got->nseg, 3);
		assert_int_equal(got->seg[0].segno, 5);
		assert_int_equal(got->seg[0].commits, 2);
		assert_int_equal(got->seg[0].aborts, 1);
		assert_int_equal(got->seg[0].restore_points, 1);
		assert_int_equal(got->seg[0].bad_crc, 1);
		assert_int_equal(got->seg[0].first_xact_us, g.ev[0].time_us);
		assert_int_equal(got->seg[0].last_xact_us, g.ev[3].time_us);
		assert_true(got->seg[0].ends_in_record);
		assert_true(got->seg[1].ends_in_record);
		assert_int_equal(got->seg[1].records, 0); /* nothing ends in the middle segment */
		assert_int_equal(got->seg[2].commits, 2); /* commit prepared, commit */
		assert_int_equal(got->seg[2].aborts, 1);
		assert_int_equal(got->seg[2].restore_points, 1);
		assert_false(got->seg[2].ends_in_record);
		assert_int_equal(got->seg[2].bad_pages, 0);
		assert_int_equal(got->seg[2].bad_records, 0);
		assert_string_equal(got->ev[got->nev - 2].name, g.ev[g.nev - 2].name);
		/* unknown start: timeline and segment number from the first page */
		read_stream(got, 0, 0, g.buf, g.len, pieces[p], p + 100);
		check_all(&g, got);
		assert_int_equal(got->seg[2].segno, 7);
		assert_int_equal(got->seg[2].tli, 1);
	}
	free(g.buf);
	free(got);
}

/* commits reach the WAL out of time order (concurrent sessions): a segment's first and last
 * transaction times are the earliest and the latest, not the first and last records */
static void test_xact_times_out_of_order(void **state)
{
	int64_t t = INT64_C(1795615200123456);
	struct gen g;
	struct got *got = malloc(sizeof *got);
	(void)state;
	gen_init(&g, 1 << 20, 8192, 5);
	gen_xact(&g, WALREAD_COMMIT, t + 10, 0, 0, 0);
	gen_xact(&g, WALREAD_COMMIT, t + 30, 0, 0, 0); /* the latest, not the last */
	gen_xact(&g, WALREAD_COMMIT, t + 5, 0, 0, 0);  /* the earliest, not the first */
	gen_xact(&g, WALREAD_COMMIT, t + 20, 0, 0, 0);
	gen_finish(&g);
	read_stream(got, 1, 5, g.buf, g.len, 8192, 0);
	assert_int_equal(got->seg[0].commits, 4);
	assert_int_equal(got->seg[0].first_xact_us, t + 5);
	assert_int_equal(got->seg[0].last_xact_us, t + 30);
	free(g.buf);
	free(got);
}

static void on_params(void *ctx, const struct walread_params *p)
{
	*(struct walread_params *)ctx = *p;
}

/* a parameter change (a restart with new values): the five settings a standby must match */
static void test_parameter_change(void **state)
{
	struct gen g;
	uint8_t md[28] = {0}, b[40];
	struct walread_params got;
	struct walread_cb cb = {NULL, NULL, NULL, &got, NULL, on_params};
	walread *r;
	uint64_t lsn;
	(void)state;
	memset(&got, 0, sizeof got);
	gen_init(&g, 1 << 20, 8192, 5);
	gen_other(&g, 10, 100);
	put32(md, 150), put32(md + 4, 9), put32(md + 8, 11), put32(md + 12, 5), put32(md + 16, 77);
	put32(md + 20, 1); /* wal_level, then two bools */
	lsn = gen_record(&g, 0, 0x60, b, main_data(b, md, 26), 0);
	gen_finish(&g);
	assert_non_null(r = walread_new(1, 5));
	walread_feed(r, g.buf, g.len, &cb);
	walread_end(r, &cb);
	walread_free(r);
	assert_int_equal(got.lsn, lsn);
	assert_int_equal(got.max_connections, 150);
	assert_int_equal(got.max_worker_processes, 9);
	assert_int_equal(got.max_wal_senders, 11);
	assert_int_equal(got.max_prepared_xacts, 5);
	assert_int_equal(got.max_locks_per_xact, 77);
	free(g.buf);
}

/* a segment read alone (segment 7 begins inside a record) reports the records starting in it */
static void test_segment_alone(void **state)
{
	struct gen g;
	struct got *got = malloc(sizeof *got);
	int n = 0;
	(void)state;
	make_stream(&g);
	read_stream(got, 1, 7, g.buf + (2u << 20), 1u << 20, 4096, 1);
	for (int i = 0; i < g.nev; i++)
		if (g.ev[i].lsn >= 7u << 20) {
			assert_true(n < got->nev);
			assert_true(same_ev(&got->ev[n], &g.ev[i]));
			n++;
		}
	assert_int_equal(n, 4);
	assert_int_equal(got->nev, 4);
	assert_int_equal(got->nseg, 1);
	assert_int_equal(got->seg[0].bad_records, 0);
	/* segment 6 alone: all continuation, nothing to report, ends inside a record */
	read_stream(got, 1, 6, g.buf + (1u << 20), 1u << 20, 100000, 2);
	assert_int_equal(got->nev, 0);
	assert_true(got->seg[0].ends_in_record);
	assert_int_equal(got->seg[0].bad_pages, 0);
	/* a wrong segment number: every page address is wrong */
	read_stream(got, 1, 8, g.buf + (2u << 20), 1u << 20, 4096, 1);
	assert_int_equal(got->nev, 0);
	assert_int_equal(got->seg[0].bad_pages, 128);
	free(g.buf);
	free(got);
}

/*
 * A commit record that begins in segment 5 and ends in segment 6: segment 6 read alone misses
 * it; a reader made with walread_new_at on segment 5's last 64 KiB (fed with no callbacks)
 * and then fed segment 6 reports it, and reports segment 6 alone.
 */
static void test_tail_then_segment(void **state)
{
	struct gen g;
	struct got *got = malloc(sizeof *got);
	struct walread_cb cb = CB;
	int64_t t = INT64_C(1795615200123456);
	walread *r;
	(void)state;
	gen_init(&g, 1 << 20, 8192, 5);
	while (g.len < (1u << 20) - 400)
		gen_other(&g, 10, 100);
	gen_xact(&g, WALREAD_COMMIT, t, 3000, 0, 0); /* about 3 KB: across the boundary */
	for (int i = 0; i < 10; i++)
		gen_other(&g, 10, 100);
	gen_xact(&g, WALREAD_ABORT, t + 1, 0, 0, 0);
	gen_finish(&g);
	assert_true(g.ev[0].lsn < (6u << 20) && g.len == (2u << 20));
	/* alone: the abort only */
	read_stream(got, 1, 6, g.buf + (1u << 20), 1u << 20, 1u << 20, 1);
	assert_int_equal(got->nev, 1);
	assert_true(same_ev(&got->ev[0], &g.ev[1]));
	/* after the tail: both, and one segment summary (6) */
	memset(got, 0, sizeof *got);
	cb.ctx = got;
	r = walread_new_at(1, 5, 1u << 20, 8192, (1u << 20) - (64u << 10));
	assert_non_null(r);
	walread_feed(r, g.buf + (1u << 20) - (64u << 10), 64u << 10, NULL);
	assert_int_equal(walread_in_record(r), 1); /* the commit's start was in the tail */
	walread_feed(r, g.buf + (1u << 20), 1u << 20, &cb);
	walread_end(r, &cb);
	walread_free(r);
	assert_int_equal(got->nev, 2);
	assert_true(same_ev(&got->ev[0], &g.ev[0]));
	assert_true(same_ev(&got->ev[1], &g.ev[1]));
	assert_int_equal(got->nseg, 1);
	assert_int_equal(got->seg[0].segno, 6);
	assert_int_equal(got->seg[0].first_xact_us, t);
	assert_int_equal(got->seg[0].bad_pages, 0);
	assert_int_equal(walread_in_record(r = walread_new(1, 5)), 0);
	walread_free(r);
	/* what walread_new_at refuses */
	assert_null(walread_new_at(1, 5, 1u << 20, 8192, 100));	    /* not on a page */
	assert_null(walread_new_at(1, 5, 1u << 20, 8192, 1u << 20)); /* past the segment */
	assert_null(walread_new_at(1, 5, 3u << 20, 8192, 0));	    /* not a power of two */
	assert_null(walread_new_at(1, 5, 1u << 20, 100, 0));
	free(g.buf);
	free(got);
}

/* a commit of 100 KB that begins 90 KB before the boundary: a 64 KiB tail holds only its middle
 * (walread_in_record 0, what wal-push then reads more of), the whole segment holds its start */
static void test_long_record_tail(void **state)
{
	struct gen g;
	struct got *got = calloc(1, sizeof *got);
	struct walread_cb cb = CB;
	int64_t t = INT64_C(1795615200123456);
	walread *r;
	(void)state;
	gen_init(&g, 1 << 20, 8192, 5);
	while (g.len < (1u << 20) - (90u << 10))
		gen_other(&g, 10, 100);
	gen_xact(&g, WALREAD_COMMIT, t, 100000, 0, 0);
	gen_xact(&g, WALREAD_ABORT, t + 1, 0, 0, 0);
	gen_finish(&g);
	assert_true(g.ev[0].lsn < (5u << 20) + (1u << 20) - (64u << 10) && g.len == (2u << 20));
	r = walread_new_at(1, 5, 1u << 20, 8192, (1u << 20) - (64u << 10));
	walread_feed(r, g.buf + (1u << 20) - (64u << 10), 64u << 10, NULL);
	assert_int_equal(walread_in_record(r), 0);
	walread_free(r);
	cb.ctx = got;
	r = walread_new_at(1, 5, 1u << 20, 8192, 0);
	walread_feed(r, g.buf, 1u << 20, NULL);
	assert_int_equal(walread_in_record(r), 1);
	walread_feed(r, g.buf + (1u << 20), 1u << 20, &cb);
	walread_end(r, &cb);
	walread_free(r);
	assert_int_equal(got->nev, 2);
	assert_true(same_ev(&got->ev[0], &g.ev[0]));
	assert_int_equal(got->seg[0].first_xact_us, t);
	free(g.buf);
	free(got);
}

/* damaged input: whatever is reported is exactly a record that was written */
static void check_subset(const struct gen *g, const struct got *got)
{
	for (int i = 0; i < got->nev; i++) {
		int found = 0;
		quiet = 1;
		for (int j = 0; j < g->nev && !found; j++)
			found = same_ev(&got->ev[i], &g->ev[j]);
		quiet = 0;
		if (!found)
			fprintf(stderr, "reported but never written: kind %d lsn %llX\n", got->ev[i].kind,
				(unsigned long long)got->ev[i].lsn);
		assert_true(found);
	}
}

static void test_damaged(void **state)
{
	struct gen g;
	struct got *got = malloc(sizeof *got);
	uint64_t seed = 42;
	uint8_t *copy;
	(void)state;
	make_stream(&g);
	copy = malloc(g.len);
	/* truncated anywhere */
	for (int i = 0; i < 30; i++) {
		size_t n = unit_rand_next(&seed) % g.len;
		read_stream(got, 1, 5, g.buf, n, 50000, seed);
		check_subset(&g, got);
	}
	/* bit flips, concentrated on the first pages where the small records are */
	for (int i = 0; i < 200; i++) {
		int flips = 1 + (int)(unit_rand_next(&seed) % 8);
		memcpy(copy, g.buf, g.len);
		for (int f = 0; f < flips; f++) {
			size_t at = unit_rand_next(&seed) % (i % 2 ? 40000 : g.len);
			if (i % 4 == 3)
				at = (2u << 20) + at % 40000; /* segment 7's small records */
			copy[at] ^= (uint8_t)(1u << (unit_rand_next(&seed) % 8));
		}
		read_stream(got, 1, 5, copy, g.len, 70000, seed);
		check_subset(&g, got);
	}
	free(copy);
	free(g.buf);
	free(got);
}

/* arbitrary bytes, and valid page headers around garbage records */
static void test_garbage(void **state)
{
	struct got *got = malloc(sizeof *got);
	uint64_t seed = 7;
	size_t len = 3u << 20;
	uint8_t *buf = malloc(len);
	(void)state;
	for (int i = 0; i < 6; i++) {
		unit_rand_fill(&seed, buf, len);
		read_stream(got, (uint32_t)i, (uint64_t)i * 0x1234567ull, buf, len - (size_t)i * 1000, 1 + (size_t)i * 30000, seed);
		assert_int_equal(got->nev, 0);
	}
	/* valid page headers with random record bytes after them: lengths, xl_prev, block headers */
	for (int i = 0; i < 6; i++) {
		struct gen g;
		gen_init(&g, 1 << 20, 1024, 1);
		{
			/* random records of rmgr 1/0 with random lengths */
			for (int k = 0; k < 2000; k++) {
				uint8_t b[600];
				size_t n = unit_rand_next(&seed) % sizeof b;
				unit_rand_fill(&seed, b, n);
				if (n && i % 2)
					b[0] = (uint8_t)(250 + unit_rand_next(&seed) % 6);
				gen_record(&g, (uint8_t)(unit_rand_next(&seed) % 2), (uint8_t)(unit_rand_next(&seed) % 8 << 4), b, n,
					   (int)(unit_rand_next(&seed) % 2));
			}
			gen_finish(&g);
			read_stream(got, 1, 1, g.buf, g.len, 3000, seed);
			/* no crash; every reported record had a right CRC and a whole header section */
			for (int e = 0; e < got->nev; e++)
				assert_true(got->ev[e].lsn >= (1u << 20) && got->ev[e].lsn < (1u << 20) + g.len);
		}
		free(g.buf);
	}
	/* lengths that would overflow: a record claiming 0xFFFFFFF8 bytes, and 1 GiB */
	{
		struct gen g;
		uint8_t b[16] = {255, 8};
		gen_init(&g, 1 << 20, 8192, 1);
		gen_record(&g, 1, 0, b, 10, 0);
		put32(g.buf + 40, 0xFFFFFFF8u);
		gen_finish(&g);
		read_stream(got, 1, 1, g.buf, g.len, 5000, 1);
		assert_int_equal(got->nev, 0);
		assert_int_equal(got->seg[0].bad_records, 1);
		put32(g.buf + 40, 0x40000000u);
		read_stream(got, 1, 1, g.buf, g.len, 5000, 1);
		assert_int_equal(got->nev, 0);
		assert_int_equal(got->seg[0].bad_records, 1); /* 1 GiB is allowed, but the next page does not continue it */
		free(g.buf);
	}
	/* empty and tiny streams */
	read_stream(got, 1, 1, buf, 0, 1, 1);
	assert_int_equal(got->nseg, 0);
	read_stream(got, 1, 1, buf, 39, 1, 1);
	assert_int_equal(got->nseg, 1);
	assert_int_equal(got->seg[0].bad_pages, 1);
	free(buf);
	free(got);
}

/* ---- tablespace creations ---- */

struct tsgot {
	int n;
	struct walread_tablespace t[4];
};

static void on_ts(void *ctx, const struct walread_tablespace *t)
{
	struct tsgot *g = ctx;
	if (g->n < 4)
		g->t[g->n++] = *t;
}

static uint64_t gen_tblspc(struct gen *g, uint8_t info, uint32_t oid, const char *path)
{
	size_t pl = strlen(path) + 1, n = 4 + pl;
	uint8_t *md = malloc(n), *b = malloc(n + 8);
	uint64_t lsn;
	put32(md, oid);
	memcpy(md + 4, path, pl);
	lsn = gen_record(g, 5, info, b, main_data(b, md, (uint32_t)n), 0);
	free(md);
	free(b);
	return lsn;
}

/*
 * XLOG_TBLSPC_CREATE records are reported with their oid, path and LSN (an in-place one with
 * an empty path; a path longer than MAXPGPATH cut there); XLOG_TBLSPC_DROP is not; pieces of
 * any size give the same.
 */
static void test_tablespace(void **state)
{
	static const size_t pieces[] = {1, 100, 8192, 1 << 20};
	char longpath[1200];
	struct gen g;
	uint64_t l1, l2, l3;
	(void)state;
	memset(longpath, 'p', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	gen_init(&g, 1u << 20, 8192, 3);
	gen_other(&g, 2, 300);
	l1 = gen_tblspc(&g, 0x00, 16384, "/srv/pg/ts1");
	gen_xact(&g, 0, INT64_C(1790000000000000), 0, 0, 0);
	gen_tblspc(&g, 0x10, 16384, ""); /* a drop: not reported */
	l2 = gen_tblspc(&g, 0x00, 16390, "");
	l3 = gen_tblspc(&g, 0x00, 16391, longpath);
	gen_finish(&g);
	for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
		struct tsgot got = {0};
		struct walread_cb cb = {NULL, NULL, NULL, &got, on_ts};
		walread *r = walread_new(1, 3);
		for (size_t off = 0; off < g.len; off += pieces[p])
			walread_feed(r, g.buf + off, g.len - off < pieces[p] ? g.len - off : pieces[p], &cb);
		walread_end(r, &cb);
		walread_free(r);
		assert_int_equal(got.n, 3);
		assert_int_equal(got.t[0].oid, 16384);
		assert_string_equal(got.t[0].path, "/srv/pg/ts1");
		assert_int_equal(got.t[0].lsn, l1);
		assert_int_equal(got.t[1].oid, 16390);
		assert_string_equal(got.t[1].path, "");
		assert_int_equal(got.t[1].lsn, l2);
		assert_int_equal(got.t[2].oid, 16391);
		assert_int_equal(strlen(got.t[2].path), WALREAD_TBLSPC_PATH);
		assert_memory_equal(got.t[2].path, longpath, WALREAD_TBLSPC_PATH);
		assert_int_equal(got.t[2].lsn, l3);
	}
	free(g.buf);
}

static void test_crc32c(void **state)
{
	(void)state;
	/* the check value of CRC-32C */
	assert_int_equal(walread_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(walread_crc32c(walread_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

/* ---- a real server's WAL against pg_waldump ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* "2026-11-25 14:00:00.123456 UTC" */
static int64_t parse_time(const char *s)
{
	struct tm tm = {0};
	int us = 0;
	assert_int_equal(sscanf(s, "%d-%d-%d %d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
				&tm.tm_sec, &us),
			 7);
	assert_non_null(strstr(s, " UTC"));
	tm.tm_year -= 1900, tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000000 + us;
}

/* the commits, aborts and restore points pg_waldump printed, in order */
static int parse_waldump(const char *path, struct ev *ev, int max)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int n = 0;
	assert_non_null(f);
	while (fgets(line, sizeof line, f)) {
		char *lsn = strstr(line, "lsn: "), *desc = strstr(line, "desc: ");
		unsigned hi, lo;
		struct ev e;
		memset(&e, 0, sizeof e);
		if (!lsn || !desc || sscanf(lsn, "lsn: %X/%X", &hi, &lo) != 2)
			continue;
		e.lsn = (uint64_t)hi << 32 | lo;
		desc += 6;
		line[strcspn(line, "\n")] = '\0';
		if (strstr(line, "rmgr: Transaction ")) {
			char *t = strchr(desc, ' ');
			if (!strncmp(desc, "COMMIT_PREPARED ", 16))
				e.kind = WALREAD_COMMIT_PREPARED;
			else if (!strncmp(desc, "ABORT_PREPARED ", 15))
				e.kind = WALREAD_ABORT_PREPARED;
			else if (!strncmp(desc, "COMMIT ", 7))
				e.kind = WALREAD_COMMIT;
			else if (!strncmp(desc, "ABORT ", 6))
				e.kind = WALREAD_ABORT;
			else
				continue;
			if (e.kind == WALREAD_COMMIT_PREPARED || e.kind == WALREAD_ABORT_PREPARED)
				t = strchr(t + 1, ' '); /* past "737:" */
			e.time_us = parse_time(t + 1);
		} else if (strstr(line, "rmgr: XLOG ") && !strncmp(desc, "RESTORE_POINT ", 14)) {
			e.kind = 9;
			snprintf(e.name, sizeof e.name, "%s", desc + 14);
		} else {
			continue;
		}
		assert_true(n < max);
		ev[n++] = e;
	}
	fclose(f);
	return n;
}

static void test_real_server(void **state)
{
	char dir[] = "/tmp/pgt-walread.XXXXXX", cmd[1024], path[1024];
	struct got *got = malloc(sizeof *got), *alone = malloc(sizeof *alone);
	struct ev *ref = calloc(4096, sizeof *ref);
	uint8_t *stream = NULL;
	size_t len = 0;
	unsigned first, last;
	int rc, nref, kinds[10] = {0}, ends_in = 0, tested_alone = 0;
	FILE *f;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof cmd, "bash %s %s", PGT_WALREAD_GEN, dir);
	rc = system(cmd);
	if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
		fprintf(stderr, "SKIP: no PostgreSQL 15 server to compare with pg_waldump (see above)\n");
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
		free(got), free(alone), free(ref);
		skip();
	}
	assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
	snprintf(path, sizeof path, "%s/segs", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%u %u", &first, &last), 2);
	fclose(f);
	for (unsigned s = first; s <= last; s++) {
		size_t n;
		uint8_t *b;
		snprintf(path, sizeof path, "%s/wal/%08X%08X%08X", dir, 1, 0, s);
		b = slurp(path, &n);
		assert_int_equal(n, 16u << 20);
		stream = realloc(stream, len + n);
		memcpy(stream + len, b, n);
		len += n;
		free(b);
	}
	snprintf(path, sizeof path, "%s/waldump.txt", dir);
	nref = parse_waldump(path, ref, 4096);

	read_stream(got, 1, first, stream, len, 1 << 20, 99);
	fprintf(stderr, "walread: %u segments, pg_waldump lists %d commits/aborts/restore points, the reader %d\n",
		last - first + 1, nref, got->nev);
	assert_int_equal(got->nev, nref);
	for (int i = 0; i < nref; i++) {
		assert_true(same_ev(&got->ev[i], &ref[i]));
		kinds[ref[i].kind]++;
	}
	fprintf(stderr, "walread: %d commits, %d aborts, %d commits prepared, %d aborts prepared, %d restore points agree\n",
		kinds[0], kinds[1], kinds[2], kinds[3], kinds[9]);
	assert_true(kinds[0] >= 10 && kinds[1] >= 1 && kinds[2] >= 1 && kinds[3] >= 1 && kinds[9] >= 2);
	assert_int_equal(got->nseg, (int)(last - first + 1));
	for (int s = 0; s < got->nseg; s++) {
		assert_int_equal(got->seg[s].bad_crc, 0);
		assert_int_equal(got->seg[s].bad_records, 0);
		ends_in += got->seg[s].ends_in_record;
	}
	assert_true(got->seg[got->nseg - 1].switched);
	assert_true(ends_in >= 2); /* the big messages cross segment boundaries */

	/* each segment that begins inside a record, read alone: the records that start and end in it */
	for (unsigned s = first; s <= last; s++) {
		const uint8_t *seg = stream + (size_t)(s - first) * (16u << 20);
		int n = 0;
		if (!(seg[2] & 1))
			continue;
		tested_alone++;
		read_stream(alone, 1, s, seg, 16u << 20, 300000, s);
		for (int i = 0; i < got->nev; i++)
			if (got->ev[i].segno == s + 1 && got->ev[i].lsn >= (uint64_t)s << 24) {
				assert_true(n < alone->nev);
				assert_true(same_ev(&alone->ev[n], &got->ev[i]));
				n++;
			}
		assert_int_equal(n, alone->nev);
	}
	fprintf(stderr, "walread: %d segments beginning inside a record read alone\n", tested_alone);
	assert_true(tested_alone >= 1);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(stream), free(got), free(alone), free(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),       cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_xact_times_out_of_order), cmocka_unit_test(test_parameter_change),
		cmocka_unit_test(test_segment_alone),  cmocka_unit_test(test_tail_then_segment), cmocka_unit_test(test_long_record_tail),
		cmocka_unit_test(test_damaged),      cmocka_unit_test(test_garbage),   cmocka_unit_test(test_real_server),
		cmocka_unit_test(test_tablespace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
