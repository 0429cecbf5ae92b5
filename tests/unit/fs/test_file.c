/*
 * test_file.c: fs/file.h (reading stored files) and fs/prefetch.h (read-ahead
 * workers).
 *
 * Each test makes, in its own scratch directory, a real repository in three
 * zones
 * (<dir>/z1..z3, scrypt N = 2^10, small chunks and 1 MiB packs so files span
 * many chunks and several packs) and stores real files in it through
 * backup/ingest.h, in one catalog transaction as backup/walk.c does:
 *
 *   random      5 MiB + 12345 bytes of random data (content-defined chunks;
 * more pieces than fs_read/fs_seek/fs_copy_to_fd ask the catalog for at once)
 *   sparse      made with ftruncate + writes: data, holes, a trailing hole
 * (fixed blocks) sparse_cdc  a leading hole, one data region in the middle, a
 * trailing hole small       100 bytes empty       0 bytes (no content list)
 *   big_sparse  9 MiB + 5000 bytes (fixed blocks), large enough to be read with
 * O_DIRECT (backup/ingest.c, region_direct): data from 0, a hole, data from a
 * block boundary, a hole, data from inside a block to the end (read the
 * ordinary way)
 *
 * The source files stay in <dir>/src: their bytes are the reference for every
 * read, and lseek on them is the reference for fs_seek.
 */
#include "../unit.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "backup/ingest.h"
#include "common/util.h"
#include "backup/walarchive.h"
#include "catalog/catalog.h"
#include "fs/file.h"
#include "fs/prefetch.h"
#include "store/cache.h"
#include "store/repo.h"
#include "store/zones.h"

#define PASS "correct horse battery staple"
#define NZ   3
#define MIB  (1u << 20)

enum { F_RANDOM, F_SPARSE, F_SPARSE_CDC, F_SMALL, F_EMPTY, F_BIG_SPARSE, NFILES };

struct file {
	const char *name;
	int paged;
	char path[512];
	uint8_t *data; /* the source's bytes, holes as zeros */
	uint64_t size;
	int64_t content;
};

struct fixture {
	char dir[256];
	char db[400];
	struct repo *r;
	catalog *c;
	struct file f[NFILES];
};


/* --- the repository and its files --- */

static zones *mkzones(const char *dir)
{
	char p[NZ][512];
	const char *paths[NZ];
	zones *z;
	for (int i = 0; i < NZ; i++) {
		snprintf(p[i], sizeof p[i], "%s/z%d", dir, i + 1);
		paths[i] = p[i];
	}
	z = zones_new(paths, NZ);
	assert_non_null(z);
	return z;
}

static struct repo *make_repo(const char *dir)
{
	struct repo_config cfg;
	struct repo *r = NULL;
	zones *z = mkzones(dir);
	check_ok(repo_config_default(&cfg, E));
	cfg.kdf.log2n = 10;
	cfg.chunk.block_size = 16384;
	cfg.chunk.cdc_min = 4096;
	cfg.chunk.cdc_avg = 16384;
	cfg.chunk.cdc_max = 65536;
	cfg.pack_size = MIB;
	check_ok(repo_init(z, &cfg, PASS, strlen(PASS), E));
	zones_free(z);
	check_ok(repo_open(mkzones(dir), PASS, strlen(PASS), &r, E));
	assert_non_null(r);
	return r;
}

static void pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
}

/* Writes len random bytes at off. */
static void write_random(int fd, uint64_t *seed, uint64_t off, size_t len)
{
	uint8_t *b = malloc(len);
	assert_non_null(b);
	unit_rand_fill(seed, b, len);
	for (size_t i = 0; i < len; i += 4096)
		b[i] |= 1; /* no block of the data is all zeros */
	pwrite_all(fd, b, len, off);
	free(b);
}

/* Creates the source file of f (by its name) and reads its bytes back as the
 * reference. */
static void make_source(struct file *f, uint64_t *seed)
{
	int fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct stat st;
	assert_true(fd >= 0);
	if (!strcmp(f->name, "random")) {
		write_random(fd, seed, 0, 5 * MIB + 12345);
	} else if (!strcmp(f->name, "sparse")) {
		assert_int_equal(ftruncate(fd, 3 * MIB + 777), 0);
		write_random(fd, seed, 0, 70000);
		write_random(fd, seed, MIB + 12345, 200000);
		write_random(fd, seed, 2 * MIB + 5 * 4096, 8192);
	} else if (!strcmp(f->name, "sparse_cdc")) {
		assert_int_equal(ftruncate(fd, MIB + 1), 0);
		write_random(fd, seed, 512 * 1024 + 100, 300000);
	} else if (!strcmp(f->name, "small")) {
		write_random(fd, seed, 0, 100);
	} else if (!strcmp(f->name, "big_sparse")) {
		assert_int_equal(ftruncate(fd, 9 * MIB + 5000), 0);
		write_random(fd, seed, 0, 3 * MIB + 100000);
		write_random(fd, seed, 5 * MIB, MIB + 4096);
		write_random(fd, seed, 8 * MIB + 8192, MIB + 5000 - 8192);
	}
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(fstat(fd, &st), 0);
	f->size = (uint64_t)st.st_size;
	f->data = malloc(f->size ? f->size : 1);
	assert_non_null(f->data);
	assert_int_equal(util_pread_all(fd, f->data, f->size, 0), 0);
	close(fd);
}

static int setup(void **state)
{
	static const struct {
		const char *name;
		int paged;
	} files[NFILES] = {{"random", 0},    {"sparse", 1}, {"sparse_cdc", 0},
			   {"small", 0},     {"empty", 0},  {"big_sparse", 1}};
	struct fixture *fx = calloc(1, sizeof *fx);
	char src[400];
	uint64_t seed = 20261125;
	ingest *g = NULL;
	assert_non_null(fx);
	unit_tmpdir(fx->dir, sizeof fx->dir);
	snprintf(fx->db, sizeof fx->db, "%s/catalog.db", fx->dir);
	snprintf(src, sizeof src, "%s/src", fx->dir);
	assert_int_equal(mkdir(src, 0700), 0);
	fx->r = make_repo(fx->dir);
	check_ok(catalog_open(fx->db, 0, &fx->c, E));

	check_ok(ingest_new(fx->r, fx->c, fx->db, NULL, &g, E));
	assert_true(ingest_reads_direct(g, 1, 9 * MIB)); /* big_sparse goes through the O_DIRECT path */
	assert_false(ingest_reads_direct(g, 0, 9 * MIB));
	assert_false(ingest_reads_direct(g, 1, 3 * MIB + 777));
	check_ok(catalog_begin(fx->c, E));
	for (int i = 0; i < NFILES; i++) {
		struct file *f = &fx->f[i];
		uint64_t size = 0;
		int fd;
		f->name = files[i].name;
		f->paged = files[i].paged;
		snprintf(f->path, sizeof f->path, "%s/%s", src, f->name);
		make_source(f, &seed);
		fd = open(f->path, O_RDONLY);
		assert_true(fd >= 0);
		check_ok(ingest_file(g, fd, f->paged, &f->content, &size, E));
		close(fd);
		assert_int_equal(size, f->size);
		assert_true(f->size == 0 ? f->content == 0 : f->content > 0);
	}
	check_ok(ingest_flush(g, E));
	check_ok(catalog_commit(fx->c, E));
	ingest_committed(g);
	ingest_free(g);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	for (int i = 0; i < NFILES; i++)
		free(fx->f[i].data);
	catalog_close(fx->c);
	repo_close(fx->r);
	unit_rmdir(fx->dir);
	free(fx);
	return 0;
}

/* The pieces of a content list, all of them (caller frees). */
static struct content_piece *pieces_of(catalog *c, int64_t content, size_t *n)
{
	size_t cap = 64, got;
	struct content_piece *p = malloc(cap * sizeof *p);
	uint64_t from = 0;
	assert_non_null(p);
	*n = 0;
	for (;;) {
		if (*n + 64 > cap) {
			cap *= 2;
			p = realloc(p, cap * sizeof *p);
			assert_non_null(p);
		}
		check_ok(catalog_content_pieces(c, content, from, p + *n, 64, &got, E));
		if (*n && got && p[*n].off == p[*n - 1].off) /* the one covering `from` comes again */
			memmove(p + *n, p + *n + 1, --got * sizeof *p);
		*n += got;
		if (got == 0)
			break;
		from = p[*n - 1].off + p[*n - 1].len;
	}
	return p;
}

static size_t count_data_pieces(const struct content_piece *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += p[i].chunk != 0;
	return k;
}

/*
 * fs_read of [off, off+len) of f gives exactly the source's bytes (len clipped
 * at the end). Reports the first differing byte.
 */
static void check_read(fs_reader *rd, const struct file *f, uint64_t off, size_t len, uint64_t ahead)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t want = off >= f->size ? 0 : (len < f->size - off ? len : (size_t)(f->size - off));
	struct err e;
	ssize_t got;
	assert_non_null(buf);
	memset(buf, 0xee, len);
	err_clear(&e);
	got = fs_read(rd, f->content, f->size, off, buf, len, ahead, &e);
	if (got != (ssize_t)want)
		print_error("%s: fs_read(off %llu, len %zu): %zd, want %zu (%s)\n", f->name, (unsigned long long)off,
			    len, got, want, e.msg);
	assert_int_equal(got, want);
	if (want && memcmp(buf, f->data + off, want)) {
		size_t i = 0;
		while (buf[i] == f->data[off + i])
			i++;
		print_error("%s: fs_read(off %llu, len %zu) differs at byte %llu\n", f->name, (unsigned long long)off,
			    len, (unsigned long long)(off + i));
		fail();
	}
	free(buf);
}

/* Reads of every kind over f: boundaries of its pieces, holes, random spans,
 * the end. */
static void check_reads(catalog *c, fs_reader *rd, const struct file *f, uint64_t seed, uint64_t ahead)
{
	static const size_t lens[] = {1, 2, 100, 4095, 4096, 16384, 65537, 200000};
	size_t n;
	struct content_piece *p = pieces_of(c, f->content, &n);
	uint64_t s = seed;
	/* across every boundary between pieces (chunk|chunk, chunk|hole, hole|chunk)
	 */
	for (size_t i = 0; i < n; i++) {
		uint64_t b = p[i].off;
		for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
			if (b >= 1)
				check_read(rd, f, b - 1, lens[k] < 2 ? 2 : lens[k], ahead);
			if (b >= lens[k] / 2)
				check_read(rd, f, b - lens[k] / 2, lens[k], ahead);
			check_read(rd, f, b, lens[k], ahead);
		}
		/* inside the piece (inside a hole for hole pieces) */
		check_read(rd, f, p[i].off + p[i].len / 3, p[i].len / 3 + 1, ahead);
	}
	/* random spans */
	for (int i = 0; i < 150 && f->size; i++) {
		uint64_t off = unit_rand_next(&s) % f->size;
		size_t len = (size_t)(unit_rand_next(&s) % (300 * 1024)) + 1;
		check_read(rd, f, off, len, ahead);
	}
	/* the whole file, and past its end */
	check_read(rd, f, 0, (size_t)f->size + 1000, ahead);
	check_read(rd, f, f->size, 100, ahead);
	check_read(rd, f, f->size + 4096, 100, ahead);
	if (f->size >= 5)
		check_read(rd, f, f->size - 5, 100, ahead);
	check_read(rd, f, 0, 0, ahead);
	free(p);
}

/* --- fs_read --- */

static void test_read(void **state)
{
	struct fixture *fx = *state;
	size_t n;
	struct content_piece *p = pieces_of(fx->c, fx->f[F_RANDOM].content, &n);
	/* the files are what the header says they are */
	assert_true(n > 256); /* more than one query's worth of pieces */
	assert_int_equal(count_data_pieces(p, n), n);
	free(p);
	p = pieces_of(fx->c, fx->f[F_SPARSE].content, &n);
	assert_true(count_data_pieces(p, n) < n);
	assert_true(p[n - 1].chunk == 0); /* a trailing hole */
	free(p);
	p = pieces_of(fx->c, fx->f[F_SPARSE_CDC].content, &n);
	assert_true(p[0].chunk == 0); /* a leading hole */
	free(p);
	/*
	 * big_sparse, read partly with O_DIRECT, has the blocks an ordinary read cuts: no data
	 * piece crosses a block boundary, and each ends on one unless a hole or the end follows
	 */
	p = pieces_of(fx->c, fx->f[F_BIG_SPARSE].content, &n);
	assert_true(count_data_pieces(p, n) > 4 * MIB / 16384);
	assert_true(count_data_pieces(p, n) < n);
	for (size_t i = 0; i < n; i++) {
		if (!p[i].chunk)
			continue;
		assert_true(p[i].off % 16384 + p[i].len <= 16384);
		assert_true((p[i].off + p[i].len) % 16384 == 0 || i + 1 == n || p[i + 1].chunk == 0);
	}
	assert_int_equal(p[n - 1].off + p[n - 1].len, fx->f[F_BIG_SPARSE].size);
	free(p);

	/* without a cache */
	{
		fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);
		for (int i = 0; i < NFILES; i++)
			check_reads(fx->c, rd, &fx->f[i], 1 + (uint64_t)i, 0);
		fs_reader_free(rd);
	}
	/* with a cache (small: entries come and go) */
	{
		chunk_cache *cache = cache_new(512 * 1024);
		fs_reader *rd = fs_reader_new(fx->r, fx->c, cache);
		uint64_t hits, misses;
		for (int i = 0; i < NFILES; i++)
			check_reads(fx->c, rd, &fx->f[i], 10 + (uint64_t)i, 0);
		cache_stats(cache, &hits, &misses);
		assert_true(hits > 0);
		assert_true(misses > 0);
		fs_reader_free(rd);
		cache_free(cache);
	}
}

static void test_read_prefetch(void **state)
{
	struct fixture *fx = *state;
	const struct file *f = &fx->f[F_RANDOM];
	chunk_cache *cache = cache_new(64 * MIB);
	fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 2, 64);
	fs_reader *rd = fs_reader_new(fx->r, fx->c, cache);
	uint64_t decoded, dropped, hits0, hits1, misses0, misses1;
	size_t n;
	struct content_piece *p = pieces_of(fx->c, f->content, &n);
	assert_non_null(pf);
	fs_reader_set_prefetch(rd, pf);

	/* in order, 128 KiB at a time, with 1 MiB of read-ahead: the same bytes */
	for (uint64_t off = 0; off < f->size; off += 128 * 1024)
		check_read(rd, f, off, 128 * 1024, MIB);
	fs_prefetch_stats(pf, &decoded, &dropped);
	if (decoded == 0)
		print_error("read-ahead decoded nothing (dropped %llu)\n", (unsigned long long)dropped);
	assert_true(decoded > 0);
	assert_true(decoded <= n);

	/* again: every chunk now comes from the cache (64 MiB holds the whole file)
	 */
	cache_stats(cache, &hits0, &misses0);
	for (uint64_t off = 0; off < f->size; off += 128 * 1024)
		check_read(rd, f, off, 128 * 1024, 0);
	cache_stats(cache, &hits1, &misses1);
	assert_true(hits1 >= hits0 + n);
	assert_int_equal(misses1, misses0);

	/* every other kind of read, with read-ahead, over every file: the same bytes
	 */
	for (int i = 0; i < NFILES; i++)
		check_reads(fx->c, rd, &fx->f[i], 20 + (uint64_t)i, 4 * MIB);

	fs_reader_free(rd);
	fs_prefetch_free(pf);
	cache_free(cache);
	free(p);
}

/* Read-ahead into a cache too small for it: bytes stay right. */
static void test_read_prefetch_small_cache(void **state)
{
	struct fixture *fx = *state;
	const struct file *f = &fx->f[F_RANDOM];
	chunk_cache *cache = cache_new(128 * 1024);
	fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 4, 256);
	fs_reader *rd = fs_reader_new(fx->r, fx->c, cache);
	assert_non_null(pf);
	fs_reader_set_prefetch(rd, pf);
	for (uint64_t off = 0; off < f->size; off += 64 * 1024)
		check_read(rd, f, off, 64 * 1024, 2 * MIB);
	fs_reader_free(rd);
	fs_prefetch_free(pf);
	cache_free(cache);
}

/* A thread that waits on a chunk another reader claimed (test_read_prefetch_claim). */
struct claim_waiter {
	fs_prefetch *pf;
	int64_t chunk;
	int rc, returned;
};

static void *claim_wait(void *arg)
{
	struct claim_waiter *w = arg;
	w->rc = fs_prefetch_wait(w->pf, w->chunk);
	__atomic_store_n(&w->returned, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A reader takes a chunk still waiting in the read-ahead queue and decodes it at once;
 * other readers of it wait for it; with no worker at all, reads with read-ahead still end. */
static void test_read_prefetch_claim(void **state)
{
	struct fixture *fx = *state;
	const struct file *f = &fx->f[F_RANDOM];
	chunk_cache *cache = cache_new(64 * MIB);
	fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 0, 64); /* no workers: jobs stay queued */
	size_t n;
	struct content_piece *p = pieces_of(fx->c, f->content, &n);
	struct claim_waiter w = {.pf = pf};
	pthread_t th;
	int queued, claimed, waiting;
	assert_non_null(pf);
	assert_true(n > 4);
	w.chunk = p[1].chunk;
	assert_int_equal(fs_prefetch_wait(pf, 0), FS_PREFETCH_NONE); /* a hole: never queued */

	assert_int_equal(fs_prefetch_wait(pf, p[1].chunk), FS_PREFETCH_NONE); /* not queued */
	fs_prefetch_add(pf, p[0].chunk, &p[0].loc);
	fs_prefetch_add(pf, p[1].chunk, &p[1].loc);
	/* queued behind p[0], which no worker takes: claimed, not waited for */
	assert_int_equal(fs_prefetch_wait(pf, p[1].chunk), FS_PREFETCH_CLAIMED);
	fs_prefetch_state(pf, &queued, &claimed, &waiting);
	assert_int_equal(queued, 1);
	assert_int_equal(claimed, 1);
	/* a second reader of it waits until the claim ends */
	assert_int_equal(pthread_create(&th, NULL, claim_wait, &w), 0);
	for (int i = 0; i < 3000 && (fs_prefetch_state(pf, &queued, &claimed, &waiting), waiting == 0); i++)
		usleep(10 * 1000);
	assert_int_equal(waiting, 1);
	assert_int_equal(__atomic_load_n(&w.returned, __ATOMIC_SEQ_CST), 0);
	fs_prefetch_add(pf, p[1].chunk, &p[1].loc); /* claimed: not queued again */
	fs_prefetch_state(pf, &queued, &claimed, &waiting);
	assert_int_equal(queued + claimed, 2);
	fs_prefetch_done(pf, p[1].chunk);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, FS_PREFETCH_WAITED);
	assert_int_equal(fs_prefetch_wait(pf, p[1].chunk), FS_PREFETCH_NONE); /* done: gone */
	fs_prefetch_done(pf, p[1].chunk);					/* no claim: no effect */
	assert_int_equal(fs_prefetch_wait(pf, p[0].chunk), FS_PREFETCH_CLAIMED);
	fs_prefetch_done(pf, p[0].chunk);

	/* reads with read-ahead and no worker: every queued chunk is claimed by the read that
	 * needs it (before, such a read waited for a worker that never came) */
	{
		fs_reader *rd = fs_reader_new(fx->r, fx->c, cache);
		uint64_t decoded, dropped;
		fs_reader_set_prefetch(rd, pf);
		for (uint64_t off = 0; off < f->size; off += 128 * 1024)
			check_read(rd, f, off, 128 * 1024, MIB);
		for (int i = 0; i < NFILES; i++)
			check_reads(fx->c, rd, &fx->f[i], 30 + (uint64_t)i, 4 * MIB);
		fs_prefetch_stats(pf, &decoded, &dropped);
		assert_int_equal(decoded, 0);
		/* every claim ended (a read that kept one would leave its chunk's readers waiting) */
		fs_prefetch_state(pf, &queued, &claimed, &waiting);
		assert_int_equal(claimed, 0);
		assert_int_equal(waiting, 0);
		fs_reader_free(rd);
	}
	fs_prefetch_free(pf);
	cache_free(cache);
	free(p);
}

/* --- fs_seek --- */

/* fs_seek gives what lseek gives on the source file (ENXIO: ERR_NOTFOUND). */
static void check_seek(fs_reader *rd, const struct file *f, int fd, uint64_t off)
{
	for (int hole = 0; hole <= 1; hole++) {
		off_t want = lseek(fd, (off_t)off, hole ? SEEK_HOLE : SEEK_DATA);
		int want_errno = want < 0 ? errno : 0;
		uint64_t got = 0xdeadbeef;
		struct err e;
		int rc;
		err_clear(&e);
		rc = fs_seek(rd, f->content, f->size, off, hole, &got, &e);
		if ((want < 0) != (rc < 0) || (rc == 0 && got != (uint64_t)want))
			print_error("%s: %s from %llu: fs_seek %d/%llu (%s), lseek %lld (%s)\n", f->name,
				    hole ? "SEEK_HOLE" : "SEEK_DATA", (unsigned long long)off, rc,
				    (unsigned long long)got, e.msg, (long long)want, strerror(want_errno));
		if (want < 0) {
			assert_int_equal(want_errno, ENXIO);
			assert_int_equal(rc, ERR_NOTFOUND);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(got, (uint64_t)want);
		}
	}
}

static void test_seek(void **state)
{
	struct fixture *fx = *state;
	fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);
	for (int i = 0; i < NFILES; i++) {
		const struct file *f = &fx->f[i];
		int fd = open(f->path, O_RDONLY);
		size_t n;
		struct content_piece *p = pieces_of(fx->c, f->content, &n);
		uint64_t s = 99 + (uint64_t)i;
		assert_true(fd >= 0);
		for (size_t k = 0; k < n; k++) {
			uint64_t b = p[k].off;
			if (b)
				check_seek(rd, f, fd, b - 1);
			check_seek(rd, f, fd, b);
			check_seek(rd, f, fd, b + 1);
			check_seek(rd, f, fd, b + p[k].len / 2);
		}
		for (uint64_t off = 0; off < f->size + 8192; off += 4096)
			check_seek(rd, f, fd, off);
		for (int k = 0; k < 100 && f->size; k++)
			check_seek(rd, f, fd, unit_rand_next(&s) % f->size);
		if (f->size)
			check_seek(rd, f, fd, f->size - 1);
		check_seek(rd, f, fd, f->size);
		check_seek(rd, f, fd, f->size + 1);
		close(fd);
		free(p);
	}
	/* the sparse file really has holes where it was not written (block-rounded),
	 * and past its last data only the end of the file counts as a hole */
	{
		const struct file *f = &fx->f[F_SPARSE];
		uint64_t hole, data, last = 2 * MIB + 5 * 4096 + 8192;
		check_ok(fs_seek(rd, f->content, f->size, 0, 1, &hole, E));
		assert_true(hole >= 70000 && hole < MIB);
		check_ok(fs_seek(rd, f->content, f->size, hole, 0, &data, E));
		assert_true(data > hole && data <= MIB + 12345);
		check_ok(fs_seek(rd, f->content, f->size, 3 * MIB, 1, &hole, E));
		assert_int_equal(hole, 3 * MIB);
		assert_true(last < 3 * MIB);
		assert_int_equal(fs_seek(rd, f->content, f->size, 3 * MIB, 0, &data, NULL), ERR_NOTFOUND);
		assert_int_equal(fs_seek(rd, f->content, f->size, f->size, 1, &hole, NULL), ERR_NOTFOUND);
		assert_int_equal(fs_seek(rd, f->content, f->size, f->size + 1, 0, &data, NULL), ERR_NOTFOUND);
	}
	fs_reader_free(rd);
}

/* A file whose recorded size runs past its content (a damaged catalog): reads and seeks past
 * the last piece fail as damage, instead of asking the catalog again forever */
static void test_short_content(void **state)
{
	struct fixture *fx = *state;
	fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);
	for (int i = 0; i < NFILES; i++) {
		const struct file *f = &fx->f[i];
		uint64_t big = f->size + 3 * MIB, out;
		uint8_t buf[8192];
		if (!f->content)
			continue;
		assert_int_equal(fs_read(rd, f->content, big, f->size + MIB, buf, sizeof buf, 0, NULL), ERR_CORRUPT);
		assert_int_equal(fs_seek(rd, f->content, big, f->size + MIB, 0, &out, NULL), ERR_CORRUPT);
		if (f->size) /* the bytes it has still read */
			assert_int_equal(fs_read(rd, f->content, big, 0, buf, 1, 0, NULL), 1);
	}
	fs_reader_free(rd);
}

/* --- fs_copy_to_fd --- */

static void check_copy(fs_reader *rd, const struct fixture *fx, const struct file *f)
{
	char path[512];
	uint8_t *back = NULL;
	size_t len = 0;
	int fd;
	snprintf(path, sizeof path, "%s/copy-%s", fx->dir, f->name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	check_ok(fs_copy_to_fd(rd, f->content, f->size, fd, E));
	close(fd);
	check_ok(util_read_small(path, 64 * MIB, &back, &len, E));
	assert_int_equal(len, f->size);
	if (len && memcmp(back, f->data, len)) {
		size_t i = 0;
		while (back[i] == f->data[i])
			i++;
		print_error("%s: the copy differs at byte %zu\n", f->name, i);
		fail();
	}
	free(back);
	unlink(path);
}

static void test_copy(void **state)
{
	struct fixture *fx = *state;
	fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);
	for (int i = 0; i < NFILES; i++)
		check_copy(rd, fx, &fx->f[i]);
	/* a second round with the same reader (its decoders are made once) */
	for (int i = 0; i < NFILES; i++)
		check_copy(rd, fx, &fx->f[i]);
	fs_reader_free(rd);
}

/* --- failover and damage --- */

static void pack_file(const struct repo *r, int zone, const uint8_t pack[32], char *out, size_t cap)
{
	char hex[65], rel[160];
	hex_encode(pack, 32, hex);
	snprintf(rel, sizeof rel, "packs/%.2s/%s", hex, hex);
	zones_file(r->z, zone, rel, out, cap);
}

static void flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void test_failover(void **state)
{
	struct fixture *fx = *state;
	char pattern[600];
	glob_t gl;
	/* zone 1 loses every pack */
	snprintf(pattern, sizeof pattern, "%s/packs/*/*", zones_path(fx->r->z, 0));
	assert_int_equal(glob(pattern, 0, NULL, &gl), 0);
	assert_true(gl.gl_pathc >= 5); /* 1 MiB packs */
	for (size_t i = 0; i < gl.gl_pathc; i++)
		assert_int_equal(unlink(gl.gl_pathv[i]), 0);
	globfree(&gl);

	{
		fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);
		for (int i = 0; i < NFILES; i++) {
			const struct file *f = &fx->f[i];
			check_read(rd, f, 0, (size_t)f->size, 0);
			check_read(rd, f, f->size / 3, 100000, 0);
			check_copy(rd, fx, f);
		}
		fs_reader_free(rd);
	}
	{
		chunk_cache *cache = cache_new(8 * MIB);
		fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 2, 32);
		fs_reader *rd = fs_reader_new(fx->r, fx->c, cache);
		uint64_t decoded, dropped;
		const struct file *f = &fx->f[F_RANDOM];
		fs_reader_set_prefetch(rd, pf);
		for (uint64_t off = 0; off < f->size; off += 100000)
			check_read(rd, f, off, 100000, MIB);
		fs_prefetch_stats(pf, &decoded, &dropped);
		assert_true(decoded > 0);
		fs_reader_free(rd);
		fs_prefetch_free(pf);
		cache_free(cache);
	}
}

/* fs_read over [off, off+len) fails with ERR_CORRUPT. */
static void check_corrupt(fs_reader *rd, const struct file *f, uint64_t off, size_t len, uint64_t ahead)
{
	uint8_t *buf = malloc(len);
	struct err e;
	ssize_t got;
	assert_non_null(buf);
	err_clear(&e);
	got = fs_read(rd, f->content, f->size, off, buf, len, ahead, &e);
	if (got != ERR_CORRUPT)
		print_error("%s: fs_read(off %llu, len %zu) over a damaged chunk: %zd (%s)\n", f->name,
			    (unsigned long long)off, len, got, e.msg);
	assert_int_equal(got, ERR_CORRUPT);
	assert_int_equal(e.code, ERR_CORRUPT);
	free(buf);
}

static void test_damage(void **state)
{
	struct fixture *fx = *state;
	const struct file *f = &fx->f[F_RANDOM];
	size_t n;
	struct content_piece *p = pieces_of(fx->c, f->content, &n);
	const struct content_piece *a = &p[n / 3], *b = &p[2 * n / 3];
	char path[1024];
	fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);

	/* chunk a damaged in zones 1 and 2 only: read from zone 3, right */
	for (int z = 0; z < 2; z++) {
		pack_file(fx->r, z, a->loc.pack, path, sizeof path);
		flip_byte(path, a->loc.offset + a->loc.length / 2);
	}
	check_read(rd, f, a->off, a->len, 0);
	check_read(rd, f, a->off - 10, a->len + 20, 0);

	/* chunk b damaged in every zone: an error, never other bytes */
	for (int z = 0; z < NZ; z++) {
		pack_file(fx->r, z, b->loc.pack, path, sizeof path);
		flip_byte(path, b->loc.offset + b->loc.length / 2);
	}
	check_corrupt(rd, f, b->off, b->len, 0);
	check_corrupt(rd, f, b->off + b->len - 1, 1, 0);
	check_corrupt(rd, f, b->off - 1000, 2000, 0);
	check_corrupt(rd, f, 0, (size_t)f->size, 0);
	check_read(rd, f, p[0].off, (size_t)(b->off - p[0].off), 0); /* up to it: fine */
	check_read(rd, f, b->off + b->len, 100000, 0);		     /* after it: fine */
	{
		char out[512];
		int fd, rc;
		struct err e;
		snprintf(out, sizeof out, "%s/copy-damaged", fx->dir);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		err_clear(&e);
		rc = fs_copy_to_fd(rd, f->content, f->size, fd, &e);
		close(fd);
		assert_int_equal(rc, ERR_CORRUPT);
		/* what was written is the file's bytes up to the damaged chunk at most: the chunks
		 * decoded after it are not written in its place */
		{
			size_t len = 0;
			uint8_t *got = NULL;
			assert_int_equal(util_read_small(out, (size_t)f->size, &got, &len, NULL), 0);
			assert_true(len <= b->off);
			assert_memory_equal(got, f->data, len);
			free(got);
		}
	}
	fs_reader_free(rd);

	/* through a cache and read-ahead workers (which fail on it and leave it to
	 * the reader) */
	{
		chunk_cache *cache = cache_new(64 * MIB);
		fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 2, 64);
		uint64_t off;
		rd = fs_reader_new(fx->r, fx->c, cache);
		fs_reader_set_prefetch(rd, pf);
		for (off = 0; off + 64 * 1024 <= b->off; off += 64 * 1024)
			check_read(rd, f, off, 64 * 1024, MIB);
		check_corrupt(rd, f, off, 64 * 1024, MIB);
		check_corrupt(rd, f, b->off, b->len, MIB); /* again: nothing wrong was cached */
		check_read(rd, f, b->off + b->len, 64 * 1024, MIB);
		fs_reader_free(rd);
		fs_prefetch_free(pf);
		cache_free(cache);
	}

	/* read-ahead with no worker: the read that needs the damaged chunk claims it, fails on
	 * it, and still ends its claim */
	{
		chunk_cache *cache = cache_new(64 * MIB);
		fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 0, 64);
		int queued, claimed, waiting;
		rd = fs_reader_new(fx->r, fx->c, cache);
		fs_reader_set_prefetch(rd, pf);
		fs_read_ahead(rd, f->content, b->off, b->off + b->len);
		fs_prefetch_state(pf, &queued, &claimed, &waiting);
		assert_int_equal(queued, 1);
		check_corrupt(rd, f, b->off, b->len, 0);
		fs_prefetch_state(pf, &queued, &claimed, &waiting);
		assert_int_equal(queued + claimed, 0);
		assert_int_equal(fs_prefetch_wait(pf, b->chunk), FS_PREFETCH_NONE);
		fs_reader_free(rd);
		fs_prefetch_free(pf);
		cache_free(cache);
	}
	free(p);
}

/* --- prefetch --- */

static int cached(chunk_cache *cache, const struct content_piece *p, const struct file *f)
{
	cache_ref *ref = cache_get(cache, p->chunk);
	const uint8_t *data;
	size_t len;
	if (!ref)
		return 0;
	data = cache_data(ref, &len);
	assert_int_equal(len, p->len);
	assert_memory_equal(data, f->data + p->off, len);
	cache_release(cache, ref);
	return 1;
}

static void test_prefetch(void **state)
{
	struct fixture *fx = *state;
	const struct file *f = &fx->f[F_RANDOM];
	size_t n;
	struct content_piece *p = pieces_of(fx->c, f->content, &n);
	uint64_t decoded, dropped;

	/* the same chunk twice: decoded once, into the cache */
	{
		chunk_cache *cache = cache_new(64 * MIB);
		fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 1, 8);
		assert_non_null(pf);
		fs_prefetch_add(pf, p[5].chunk, &p[5].loc);
		fs_prefetch_add(pf, p[5].chunk, &p[5].loc);
		/* let the worker take it (a reader asking first would claim it, see
		 * test_read_prefetch_claim), then wait for its job to end */
		for (int i = 0; i < 1000; i++) {
			fs_prefetch_stats(pf, &decoded, &dropped);
			if (decoded)
				break;
			usleep(10 * 1000);
		}
		assert_int_not_equal(fs_prefetch_wait(pf, p[5].chunk), FS_PREFETCH_CLAIMED);
		assert_true(cached(cache, &p[5], f));
		fs_prefetch_add(pf, p[5].chunk, &p[5].loc); /* cached now: not queued */
		assert_int_equal(fs_prefetch_wait(pf, p[5].chunk), 0);
		fs_prefetch_stats(pf, &decoded, &dropped);
		assert_int_equal(decoded, 1);
		assert_int_equal(dropped, 0);
		/* chunk 0 (a hole) and NULL prefetchers are ignored */
		fs_prefetch_add(pf, 0, &p[6].loc);
		fs_prefetch_add(NULL, p[6].chunk, &p[6].loc);
		assert_int_equal(fs_prefetch_wait(NULL, p[6].chunk), 0);
		/* a chunk never queued: no wait */
		assert_int_equal(fs_prefetch_wait(pf, p[7].chunk), 0);
		assert_int_equal(fs_prefetch_wait(pf, 987654321), 0);
		fs_prefetch_stats(pf, &decoded, &dropped);
		assert_int_equal(decoded, 1);
		assert_int_equal(dropped, 0);
		assert_false(cached(cache, &p[6], f));
		fs_prefetch_free(pf);
		cache_free(cache);
	}

	/* no workers: the queue only fills, so it can be counted exactly */
	{
		chunk_cache *cache = cache_new(64 * MIB);
		fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 0, 2);
		assert_non_null(pf);
		fs_prefetch_add(pf, p[1].chunk, &p[1].loc);
		fs_prefetch_add(pf, p[1].chunk, &p[1].loc); /* queued once... */
		fs_prefetch_add(pf, p[2].chunk, &p[2].loc); /* ...so there is room for this one */
		fs_prefetch_stats(pf, &decoded, &dropped);
		assert_int_equal(dropped, 0);
		fs_prefetch_add(pf, p[3].chunk, &p[3].loc); /* full */
		fs_prefetch_add(pf, p[2].chunk, &p[2].loc); /* queued already: not a drop */
		fs_prefetch_stats(pf, &decoded, &dropped);
		assert_int_equal(dropped, 1);
		assert_int_equal(decoded, 0);
		fs_prefetch_free(pf); /* with work queued and nobody to do it */
		cache_free(cache);
	}

	/* depth 1 and many requests at once: most are dropped, the rest decoded right
	 */
	{
		chunk_cache *cache = cache_new(64 * MIB);
		fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 1, 1);
		size_t k, in_cache = 0, claimed = 0;
		assert_non_null(pf);
		for (k = 0; k < n; k++)
			fs_prefetch_add(pf, p[k].chunk, &p[k].loc);
		for (k = 0; k < n; k++)
			if (fs_prefetch_wait(pf, p[k].chunk) == FS_PREFETCH_CLAIMED) {
				claimed++; /* still queued: this test, as a reader, gives it up */
				fs_prefetch_done(pf, p[k].chunk);
			}
		fs_prefetch_stats(pf, &decoded, &dropped);
		for (k = 0; k < n; k++)
			in_cache += (size_t)cached(cache, &p[k], f);
		if (dropped == 0)
			print_error("depth 1, %zu requests: none dropped (decoded %llu)\n", n,
				    (unsigned long long)decoded);
		assert_true(dropped > 0);
		assert_true(decoded + claimed >= 1);
		assert_int_equal(decoded + dropped + claimed, n);
		assert_int_equal(in_cache, decoded);
		fs_prefetch_free(pf);
		cache_free(cache);
	}

	/* freed with a full queue and workers busy: returns, and soon */
	{
		chunk_cache *cache = cache_new(64 * MIB);
		fs_prefetch *pf = fs_prefetch_new(fx->r, cache, 2, 512);
		double t0;
		assert_non_null(pf);
		for (size_t k = 0; k < n; k++)
			fs_prefetch_add(pf, p[k].chunk, &p[k].loc);
		t0 = util_mono();
		fs_prefetch_free(pf);
		assert_true(util_mono() - t0 < 5.0);
		cache_free(cache);
	}
	fs_prefetch_free(NULL);
	free(p);
}

/*
 * ingest_stream_write_borrowed (whole blocks handed to the workers without a copy, the
 * wal-push path) stores the same chunks as a plain stream of the same bytes: the two content
 * lists are one (content lists are shared by hash), whatever the piece sizes, and the bytes
 * read back. The pieces start off a block boundary (a buffered head), cross boundaries and
 * end with a partial block.
 */
static void test_stream_borrowed(void **state)
{
	struct fixture *fx = *state;
	struct file f = fx->f[F_RANDOM];
	size_t cuts[] = {1000, 2 * MIB + 5, 123, 65536, 0};
	int64_t plain = 0, borrowed = 0, copy = 0;
	uint64_t size = 0;
	ingest_stream *s;
	ingest *g;
	size_t off = 0;
	check_ok(ingest_new(fx->r, fx->c, fx->db, NULL, &g, E));
	check_ok(catalog_begin(fx->c, E));
	check_ok(ingest_stream_begin(g, 1, &s, E));
	check_ok(ingest_stream_write(s, f.data, f.size, E));
	check_ok(ingest_stream_end(s, &plain, &size, E));
	assert_int_equal(size, f.size);
	check_ok(ingest_stream_begin(g, 1, &s, E));
	check_ok(ingest_stream_write(s, f.data, cuts[0], E)); /* buffered: off a block boundary */
	off = cuts[0];
	for (int i = 1; cuts[i]; i++) {
		check_ok(ingest_stream_write_borrowed(s, f.data + off, cuts[i], E));
		off += cuts[i];
	}
	check_ok(ingest_stream_write_borrowed(s, f.data + off, f.size - off, E)); /* the rest */
	check_ok(ingest_stream_end(s, &borrowed, &size, E));
	assert_int_equal(size, f.size);
	/* borrowed from the first byte on (block-aligned from the start) */
	check_ok(ingest_stream_begin(g, 1, &s, E));
	check_ok(ingest_stream_write_borrowed(s, f.data, f.size, E));
	check_ok(ingest_stream_end(s, &copy, &size, E));
	check_ok(ingest_flush(g, E));
	check_ok(catalog_commit(fx->c, E));
	ingest_committed(g);
	ingest_free(g);
	assert_true(plain > 0);
	assert_int_equal(borrowed, plain);
	assert_int_equal(copy, plain);
	{
		fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);
		f.content = borrowed;
		check_read(rd, &f, 0, (size_t)f.size, 0);
		check_read(rd, &f, 65536 - 7, 3 * 65536, 0);
		fs_reader_free(rd);
	}
}

/*
 * A WAL stream (ingest_stream_set_wal): cut in blocks of the largest chunk size, encoded ids.
 * The same bytes stored again, in the next transaction, are found by those ids (no new chunk,
 * the same content list), and a stream that shares only its first blocks with them (a
 * partial segment and its complete segment) stores only the blocks that differ. The bytes
 * read back.
 */
static void test_stream_wal(void **state)
{
	struct fixture *fx = *state;
	struct file f = fx->f[F_RANDOM];
	const size_t len = 2 * MIB, block = 65536;
	int64_t first = 0, again = 0, grown = 0;
	uint64_t size = 0, before;
	uint8_t *other = malloc(len);
	ingest_stream *s;
	ingest *g;
	assert_non_null(other);
	assert_true(f.size >= len);
	check_ok(ingest_new(fx->r, fx->c, fx->db, NULL, &g, E));
	for (int round = 0; round < 3; round++) {
		const uint8_t *data = f.data;
		if (round == 2) { /* the first MiB the same, the rest changed */
			memcpy(other, f.data, len);
			for (size_t i = MIB; i < len; i += 4096)
				other[i] ^= 0x5a;
			data = other;
		}
		before = ingest_stats(g)->new_chunks;
		check_ok(catalog_begin(fx->c, E));
		check_ok(ingest_stream_begin(g, 1, &s, E));
		ingest_stream_set_wal(s);
		if (round == 0) { /* unaligned pieces, copied and borrowed: still cut in whole blocks */
			for (size_t off = 0, i = 0; off < len; i++) {
				size_t n = len - off < 100000 ? len - off : 100000;
				if (i % 2)
					check_ok(ingest_stream_write(s, data + off, n, E));
				else
					check_ok(ingest_stream_write_borrowed(s, data + off, n, E));
				off += n;
			}
		} else {
			check_ok(ingest_stream_write_borrowed(s, data, len, E));
		}
		check_ok(ingest_stream_end(s, round == 0 ? &first : round == 1 ? &again : &grown, &size, E));
		assert_int_equal(size, len);
		check_ok(ingest_flush(g, E));
		check_ok(catalog_commit(fx->c, E));
		ingest_committed(g);
		if (round == 0)
			assert_int_equal(ingest_stats(g)->new_chunks - before, len / block);
		else if (round == 1)
			assert_int_equal(ingest_stats(g)->new_chunks - before, 0);
		else
			assert_int_equal(ingest_stats(g)->new_chunks - before, (len - MIB) / block);
	}
	ingest_free(g);
	assert_int_equal(again, first);
	assert_true(grown != first);
	{
		size_t n = 0;
		struct content_piece *p = pieces_of(fx->c, first, &n);
		assert_int_equal(n, len / block); /* the repository's blocks are 16 KiB: these are cdc-max */
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(p[i].off, i * block);
			assert_int_equal(p[i].len, block);
		}
		free(p);
	}
	{
		fs_reader *rd = fs_reader_new(fx->r, fx->c, NULL);
		uint8_t *out = malloc(len);
		assert_non_null(out);
		assert_int_equal(fs_read(rd, first, len, 0, out, len, 0, NULL), (ssize_t)len);
		assert_memory_equal(out, f.data, len);
		assert_int_equal(fs_read(rd, grown, len, 0, out, len, 0, NULL), (ssize_t)len);
		assert_memory_equal(out, other, len);
		free(out);
		fs_reader_free(rd);
	}
	free(other);
}

/* Files in dir and below whose names start with prefix. */
static int count_named(const char *dir, const char *prefix)
{
	char cmd[1024];
	FILE *p;
	int n = -1;
	snprintf(cmd, sizeof cmd, "find '%s' -name '%s*' | wc -l", dir, prefix);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/*
 * A zone that goes away while packs are being streamed to it: the ingest fails with an
 * error naming the zone, and neither a pack nor a temporary is left in the other zones
 * (the packs that were streaming are never restarted midway after the failure).
 */
static void test_stream_zone_lost(void **state)
{
	struct fixture *fx = *state;
	struct file f = fx->f[F_RANDOM];
	char z1[400], z2[400], z3[400];
	int before1, before3, rc;
	int64_t content = 0;
	uint64_t size = 0;
	ingest_stream *s;
	ingest *g;
	struct err e2;
	snprintf(z1, sizeof z1, "%s/z1/packs", fx->dir);
	snprintf(z2, sizeof z2, "%s/z2", fx->dir);
	snprintf(z3, sizeof z3, "%s/z3/packs", fx->dir);
	before1 = count_named(z1, "");
	before3 = count_named(z3, "");
	check_ok(ingest_new(fx->r, fx->c, fx->db, NULL, &g, E));
	check_ok(catalog_begin(fx->c, E));
	check_ok(ingest_stream_begin(g, 1, &s, E));
	assert_int_equal(util_rm_rf(z2, NULL), 0);
	err_clear(&e2);
	/* 5 MiB of new data: several 1 MiB packs, each streamed in 256 KiB steps */
	rc = ingest_stream_write(s, f.data, f.size, &e2);
	if (rc == 0)
		rc = ingest_stream_end(s, &content, &size, &e2);
	else
		ingest_stream_abort(s);
	if (rc == 0)
		rc = ingest_flush(g, &e2);
	assert_true(rc < 0);
	assert_non_null(strstr(e2.msg, "zone 2"));
	catalog_rollback(fx->c);
	ingest_free(g);
	assert_int_equal(count_named(z1, ".tmp-"), 0);
	assert_int_equal(count_named(z3, ".tmp-"), 0);
	assert_int_equal(count_named(z1, ""), before1); /* no new pack either */
	assert_int_equal(count_named(z3, ""), before3);
}

/* contents.hash of a content list, read with SQL (independent of the code under test) */
static void content_hash_sql(const char *db, int64_t content, uint8_t out[32])
{
	sqlite3 *h;
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT hash FROM contents WHERE id = ?", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, content);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(s, 0), 32);
	memcpy(out, sqlite3_column_blob(s, 0), 32);
	sqlite3_finalize(s);
	sqlite3_close(h);
}

/* A WAL row of schema 7 (WAL_DIGEST_CONTENT, plain ids) standing for the file f's content list. */
static void row_of_file(const char *db, const struct file *f, const char *name, struct catalog_wal *w)
{
	memset(w, 0, sizeof *w);
	w->size = f->size;
	w->content = f->content;
	w->digest = WAL_DIGEST_CONTENT;
	snprintf(w->name, sizeof w->name, "%s", name);
	content_hash_sql(db, f->content, w->sha256);
}

/*
 * The WAL digest (catalog WAL_DIGEST_ENCODED): a segment stored by backup_wal_store records
 * its content list's hash, not a SHA-256 of its bytes, and the list's chunks are blocks of the
 * largest chunk size with encoded ids (not the plain ids of the same bytes);
 * backup_wal_same_bytes recognises the same bytes (a second push is "already archived") and
 * refuses any other (one flipped byte, one byte fewer: ERR_EXISTS at a push). Rows written by
 * older catalogs are still checked: WAL_DIGEST_CONTENT (plain ids recomputed from the bytes)
 * and WAL_DIGEST_SHA256. A content list with holes: a hole must be zeros. A row whose digest
 * does not name its list is reported as damage, not as "different bytes".
 */
static void test_wal_digest(void **state)
{
	struct fixture *fx = *state;
	const size_t len = MIB; /* the smallest WAL segment size */
	struct wal_store_req q;
	struct wal_push_result res;
	struct catalog_wal w;
	struct err e2;
	uint8_t *buf = malloc(len), want[32];
	int64_t cl, nd;
	err_clear(&e2);
	assert_non_null(buf);
	assert_true(fx->f[F_RANDOM].size >= len);
	memcpy(buf, fx->f[F_RANDOM].data, len);
	memset(&q, 0, sizeof q);
	q.name = "000000010000000000000001";
	q.data = buf;
	q.len = len;
	q.no_index = 1; /* random bytes, not WAL records */
	check_ok(backup_wal_store(fx->r, fx->c, fx->db, "c", "n", &q, &res, E));
	assert_false(res.already);
	check_ok(catalog_cluster_ensure(fx->c, "c", &cl, E));
	check_ok(catalog_node_ensure(fx->c, cl, "n", &nd, E));
	check_ok(catalog_wal_find(fx->c, nd, q.name, &w, E));
	assert_int_equal(w.digest, WAL_DIGEST_ENCODED);
	assert_int_equal(w.size, len);
	content_hash_sql(fx->db, w.content, want);
	assert_memory_equal(w.sha256, want, 32);
	{
		size_t n = 0;
		struct content_piece *p = pieces_of(fx->c, w.content, &n);
		uint8_t plain[32];
		assert_int_equal(n, len / 65536); /* cdc-max of this repository, 4 blocks of 16 KiB */
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(p[i].len, 65536);
			assert_true(p[i].chunk > 0);
			crypto_blob_id(fx->r->key, buf + p[i].off, p[i].len, plain);
			assert_memory_not_equal(p[i].loc.id, plain, 32);
		}
		free(p);
	}

	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2), 1);
	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len - 1, &e2), 0);
	buf[len / 2 + 7] ^= 0x40;
	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2), 0);
	err_clear(&e2);
	assert_int_equal(backup_wal_store(fx->r, fx->c, fx->db, "c", "n", &q, &res, &e2), ERR_EXISTS);
	buf[len / 2 + 7] ^= 0x40;
	check_ok(backup_wal_store(fx->r, fx->c, fx->db, "c", "n", &q, &res, E));
	assert_true(res.already);

	/* a damaged row: its digest is not its list's hash */
	w.sha256[0] ^= 1;
	err_clear(&e2);
	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2), ERR_CORRUPT);
	assert_non_null(strstr(e2.msg, "does not have the hash"));
	w.sha256[0] ^= 1;

	/* a row of schema 7: WAL_DIGEST_CONTENT, plain ids (a file's list stands in for it) */
	{
		struct file *f = &fx->f[F_RANDOM];
		struct catalog_wal old;
		row_of_file(fx->db, f, "random", &old);
		assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &old, f->data, f->size, &e2), 1);
		f->data[f->size / 3] ^= 0x10;
		assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &old, f->data, f->size, &e2), 0);
		f->data[f->size / 3] ^= 0x10;
	}

	/* a row of an older catalog: SHA-256 of the bytes */
	w.digest = WAL_DIGEST_SHA256;
	crypto_sha256(buf, len, w.sha256);
	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2), 1);
	buf[3] ^= 1;
	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2), 0);
	buf[3] ^= 1;

	/* holes: the sparse file's list, with zeros in its holes */
	{
		struct file *f = &fx->f[F_SPARSE];
		size_t n = 0, i;
		struct content_piece *p = pieces_of(fx->c, f->content, &n);
		row_of_file(fx->db, f, "sparse", &w);
		for (i = 0; i < n && p[i].chunk; i++)
			;
		assert_true(i < n); /* it has a hole */
		assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, f->data, f->size, &e2), 1);
		f->data[p[i].off + p[i].len / 2] = 1; /* a byte in the hole */
		assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, f->data, f->size, &e2), 0);
		f->data[p[i].off + p[i].len / 2] = 0;
		free(p);
	}
	free(buf);
}

/* Adds delta to the recorded raw size of content's first chunk (SQL, beside the code under test). */
static void first_chunk_raw_add(const char *db, int64_t content, int delta)
{
	sqlite3 *h;
	char sql[300];
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	snprintf(sql, sizeof sql,
		 "UPDATE chunks SET raw = raw + %d WHERE id = (SELECT chunk FROM content_chunks WHERE content = %lld"
		 " ORDER BY off LIMIT 1)",
		 delta, (long long)content);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

/*
 * WAL rows whose stored bytes cannot be compared. A row of encoded ids (WAL_DIGEST_ENCODED) is
 * compared by reading its blobs back: with every zone's packs gone, backup_wal_same_bytes
 * fails (< 0, naming what it could not read) rather than saying "same" or "different", and a
 * second push of the name fails the same way (never "already archived"); but a streamed
 * .partial, which is replaced as it grows, is replaced all the same. A chunk whose recorded
 * raw size is not its piece's length is catalog damage (ERR_CORRUPT), not "different bytes".
 */
static void test_wal_unreadable(void **state)
{
	struct fixture *fx = *state;
	const size_t len = MIB;
	struct wal_store_req q;
	struct wal_push_result res;
	struct catalog_wal w, part;
	struct err e2;
	uint8_t *buf = malloc(len);
	int64_t cl, nd;
	char cmd[600];
	assert_non_null(buf);
	memcpy(buf, fx->f[F_RANDOM].data, len);
	memset(&q, 0, sizeof q);
	q.data = buf;
	q.len = len;
	q.no_index = 1;
	q.name = "000000010000000000000001";
	check_ok(backup_wal_store(fx->r, fx->c, fx->db, "c", "n", &q, &res, E));
	q.name = "000000010000000000000002.partial";
	q.stream = 1;
	check_ok(backup_wal_store(fx->r, fx->c, fx->db, "c", "n", &q, &res, E));
	check_ok(catalog_cluster_ensure(fx->c, "c", &cl, E));
	check_ok(catalog_node_ensure(fx->c, cl, "n", &nd, E));
	check_ok(catalog_wal_find(fx->c, nd, "000000010000000000000001", &w, E));
	check_ok(catalog_wal_find(fx->c, nd, "000000010000000000000002.partial", &part, E));
	assert_int_equal(w.digest, WAL_DIGEST_ENCODED);

	/* a chunk's raw size that does not match its piece: damage */
	first_chunk_raw_add(fx->db, w.content, -1);
	err_clear(&e2);
	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2), ERR_CORRUPT);
	assert_non_null(strstr(e2.msg, "stands for a piece"));
	first_chunk_raw_add(fx->db, w.content, 1);
	assert_int_equal(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2), 1);

	/* every zone's packs gone */
	for (int z = 1; z <= 3; z++) {
		snprintf(cmd, sizeof cmd, "%s/z%d/packs", fx->dir, z);
		assert_int_equal(util_rm_rf(cmd, NULL), 0);
	}
	err_clear(&e2);
	assert_true(backup_wal_same_bytes(fx->r, fx->c, &w, buf, len, &e2) < 0);
	assert_true(e2.msg[0] != '\0');
	q.name = "000000010000000000000001";
	q.stream = 0;
	err_clear(&e2);
	assert_true(backup_wal_store(fx->r, fx->c, fx->db, "c", "n", &q, &res, &e2) < 0);
	assert_false(res.already);
	assert_non_null(strstr(e2.msg, "is archived already for c/n, and its stored bytes cannot be compared"));
	assert_non_null(strstr(e2.msg, "no zone has a good copy"));
	assert_non_null(strstr(e2.hint, "check --read-data"));
	/* the streamed partial grew: replaced although the old one cannot be read */
	buf[len - 1] ^= 1;
	q.name = "000000010000000000000002.partial";
	q.stream = 1;
	check_ok(backup_wal_store(fx->r, fx->c, fx->db, "c", "n", &q, &res, E));
	assert_false(res.already);
	{
		struct catalog_wal now;
		check_ok(catalog_wal_find(fx->c, nd, q.name, &now, E));
		assert_true(now.content != part.content);
		assert_memory_not_equal(now.sha256, part.sha256, 32);
		/* (its unchanged blocks are the ones whose packs are gone: found by id in the catalog,
		 * which 'check --read-data' and 'repair' deal with; not read here) */
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_prefetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_prefetch_small_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_prefetch_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seek, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_borrowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_zone_lost, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
