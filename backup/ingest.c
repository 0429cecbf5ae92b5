#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/pool.h"
#include "common/util.h"
#include "store/chunker.h"
#include "store/pack.h"
#include "store/reader.h"

#define POOL_DEPTH_BYTES (16u << 20) /* data in flight in the worker pool */
#define COMMIT_EVERY (512ull << 20) /* sealed bytes between commits */
#define READ_BLOCK (4u << 20)
#define DIRECT_MIN (8ull << 20) /* paged files this large are read with O_DIRECT */
#define DIRECT_BUFS 8		 /* reads in flight */
#define DIRECT_BUF (1u << 20)	 /* bytes per read (a multiple of the block size) */
#define DIRECT_ALIGN 4096

struct file_state {
	int64_t content;
	crypto_sha *sha;
	int64_t nchunks;
	struct ingest_stats *acct; /* the caller's per-source totals, or NULL */
	int64_t base;		   /* the previous version's content list for delta blocks, or 0 */
	int encoded;		   /* blob ids over the encoding (ingest_stream_set_wal) */
};

struct job {
	struct file_state *fs; /* the file this chunk belongs to */
	uint8_t *data;
	int borrowed; /* data is the caller's (ingest_stream_write_borrowed), not ours to free */
	uint32_t len;
	uint64_t off; /* in the file */
	uint8_t id[CRYPTO_ID_LEN];
	int64_t known; /* chunk number if the catalog has it */
	int64_t base;  /* stored as a delta against this chunk (0: self-contained) */
	uint8_t *sealed;
	size_t sealed_len;
	int rc;
	struct err err;
	ingest *g;
};

/* id -> chunk number for chunks recorded in the open transaction */
struct pending {
	uint8_t (*ids)[CRYPTO_ID_LEN];
	int64_t *nums;
	size_t cap, n;
};

/*
 * The pack writer: a thread that writes packs to the zones while the owner fills the next.
 * A pack is written in one of two ways. Whole (FL_PACK): the sealed builder is handed over and
 * written with zones_put_direct. Streamed: while the pack fills and the writer is idle, the
 * owner hands it the bytes added since (FL_RANGE, whole 4 KiB pages, at least STREAM_STEP),
 * which it appends to every zone's temporary copy (zones_stream) and to the pack's SHA-256;
 * at the seal only the rest is hashed, and the writer appends it, fsyncs and renames
 * (FL_FINISH). So a pack's bytes reach the zones while the workers still compress, and the
 * seal of the last pack of a wal-push has about a page left to write and hash instead of the
 * whole pack (docs/design-notes.md, "wal-push latency"). The builder's buffer never moves
 * while a range of it is being written (finish_job waits for the writer first).
 */
enum { FL_PACK = 1, FL_RANGE, FL_FINISH };
#define STREAM_STEP (256u << 10)

struct flusher {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int kind;	   /* of the job handed over: FL_PACK, FL_RANGE or FL_FINISH; 0 none */
	pack_builder *job; /* FL_PACK: the pack to write */
	const uint8_t *rdata; /* FL_RANGE, FL_FINISH: bytes rdata[0, rlen) of the streamed pack, */
	size_t rlen, roff;    /* which start at byte roff of the pack */
	uint8_t pack_id[32];
	int busy, stop, rc;
	struct err err;
	zones *z;
	zones_stream *stream; /* the streamed pack's copies (the writer's; NULL when none) */
	size_t soff;	      /* bytes of it written so far */
	crypto_sha *sha;      /* SHA-256 of the bytes streamed so far */
};

struct ingest {
	struct repo *r;
	catalog *c;
	pool *pool;
	size_t batch; /* finished jobs taken at once when the pool is full */
	int nworkers;
	crypto_hasher **hashers;
	crypto_hasher **ehashers; /* per worker: encoded ids */
	pack_codec **codecs;
	catalog **readers;
	uint8_t **basebuf; /* per worker: a base's plaintext (delta blocks) */
	chunker *ck;
	pack_builder *open, *spare;
	int64_t open_pack; /* catalog number of the open pack, 0 if none */
	size_t streamed;   /* bytes of the open pack handed to the writer as FL_RANGE jobs */
	struct pending pend;
	struct flusher fl;
	struct ingest_stats st;
	uint64_t since_commit;
	struct progress *progress;
	uint8_t *buf; /* read buffer */
	size_t bufcap;
	aio_context_t aio;		      /* direct reads, set up at the first (aio_state 1) */
	int aio_state;			      /* 0 not yet, 1 set up, -1 not available */
	uint8_t *dbuf[DIRECT_BUFS];	      /* their buffers, DIRECT_ALIGN aligned */
	struct ingest_stats *acct; /* totals of the current source (ingest_account) */
};

/* Adds n to a counter of the whole run and of the file's source. */
#define COUNT(g, fs, field, n)                                                                                     \
	do {                                                                                                       \
		(g)->st.field += (n);                                                                              \
		if ((fs)->acct)                                                                                    \
			(fs)->acct->field += (n);                                                                  \
	} while (0)

/* ---------- pending set ---------- */

static size_t pend_slot(const struct pending *p, const uint8_t *id)
{
	uint64_t h;
	memcpy(&h, id, sizeof h);
	return (size_t)(h & (p->cap - 1));
}

static void pend_grow(struct pending *p);

static void pend_put(struct pending *p, const uint8_t *id, int64_t num)
{
	size_t i;
	if ((p->n + 1) * 2 > p->cap)
		pend_grow(p);
	for (i = pend_slot(p, id); p->nums[i]; i = (i + 1) & (p->cap - 1))
		;
	memcpy(p->ids[i], id, CRYPTO_ID_LEN);
	p->nums[i] = num;
	p->n++;
}

static void pend_grow(struct pending *p)
{
	struct pending old = *p;
	p->cap = old.cap ? old.cap * 2 : 4096;
	p->ids = xcalloc(p->cap, CRYPTO_ID_LEN);
	p->nums = xcalloc(p->cap, sizeof *p->nums);
	p->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.nums[i])
			pend_put(p, old.ids[i], old.nums[i]);
	free(old.ids);
	free(old.nums);
}

static int64_t pend_get(const struct pending *p, const uint8_t *id)
{
	if (!p->cap)
		return 0;
	for (size_t i = pend_slot(p, id); p->nums[i]; i = (i + 1) & (p->cap - 1))
		if (!memcmp(p->ids[i], id, CRYPTO_ID_LEN))
			return p->nums[i];
	return 0;
}

static void pend_clear(struct pending *p)
{
	if (p->n) {
		memset(p->nums, 0, p->cap * sizeof *p->nums);
		p->n = 0;
	}
}

/* ---------- pack writer thread ---------- */

/* One job of the writer (outside its lock); 0 or an error in *err. */
static int flusher_run(struct flusher *f, int kind, pack_builder *b, const uint8_t *data, size_t len, size_t off,
		       struct err *err)
{
	char rel[80];
	int rc = 0;
	switch (kind) {
	case FL_PACK:
		pack_relpath(f->pack_id, rel);
		data = pack_builder_data(b, &len);
		return zones_put_direct(f->z, rel, data, len, err);
	case FL_RANGE:
		/* a pack whose copies failed (its error already reported) is never restarted midway */
		if (f->stream ? off != f->soff : off != 0)
			return err_set(err, ERR_INTERNAL, "a streamed pack lost its copies at byte %zu", off);
		if (!f->stream) {
			uint8_t none[32];
			crypto_sha_final(f->sha, none); /* a new pack's hash starts empty */
			if ((rc = zones_stream_open(f->z, "packs", &f->stream, err)) < 0)
				return rc;
			f->soff = 0;
		}
		crypto_sha_update(f->sha, data, len);
		if ((rc = zones_stream_write(f->stream, data, len, err)) < 0) {
			zones_stream_abort(f->stream);
			f->stream = NULL;
			return rc;
		}
		f->soff += len;
		return 0;
	case FL_FINISH:
		if (!f->stream || off != f->soff) {
			zones_stream_abort(f->stream);
			f->stream = NULL;
			return err_set(err, ERR_INTERNAL, "a streamed pack was sealed without all of its copies");
		}
		pack_relpath(f->pack_id, rel);
		rc = zones_stream_finish(f->stream, data, len, rel, err);
		f->stream = NULL;
		return rc;
	}
	return 0;
}

static void *flusher_main(void *arg)
{
	struct flusher *f = arg;
	pthread_mutex_lock(&f->mu);
	for (;;) {
		struct err err;
		int rc, kind;
		while (!f->kind && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		if (!f->kind)
			break;
		kind = f->kind;
		pthread_mutex_unlock(&f->mu);
		err_clear(&err);
		rc = flusher_run(f, kind, f->job, f->rdata, f->rlen, f->roff, &err);
		pthread_mutex_lock(&f->mu);
		if (rc < 0 && f->rc == 0) {
			f->rc = rc;
			f->err = err;
		}
		f->job = NULL;
		f->kind = 0;
		f->busy = 0;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* Hands the writer a job (it is idle: the caller waited, or checked busy under the lock). */
static void flusher_give(struct flusher *f, int kind, pack_builder *b, const uint8_t *data, size_t len, size_t off)
{
	f->kind = kind;
	f->job = b;
	f->rdata = data;
	f->rlen = len;
	f->roff = off;
	f->busy = 1;
	pthread_cond_broadcast(&f->cv);
}

/* Waits until the writer is idle; returns its first error (and clears it). */
static int flusher_wait(struct flusher *f, struct err *e)
{
	int rc;
	pthread_mutex_lock(&f->mu);
	while (f->busy)
		pthread_cond_wait(&f->cv, &f->mu);
	rc = f->rc;
	if (rc < 0 && e)
		*e = f->err;
	f->rc = 0;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* ---------- workers ---------- */

/*
 * The base for the block of job j: the same block of the file's previous version (or that
 * block's own base), decoded into the worker's buffer. 0 when there is none or it cannot be
 * read (the block is then stored on its own: a delta against a base that fails to read would
 * be unreadable too).
 */
static int64_t job_base(ingest *g, struct job *j, int worker, struct blob_loc *base)
{
	int64_t num;
	if (!j->fs->base || !g->r->cfg.delta_blocks)
		return 0;
	num = catalog_chunk_base_at(g->readers[worker], j->fs->base, j->off, base);
	if (!num || base->raw > chunker_max(g->ck))
		return 0;
	if (store_read_blob(g->r, g->codecs[worker], base, g->basebuf[worker], NULL, NULL) < 0)
		return 0;
	return num;
}

/* job_run for a file with encoded ids: the id is known once the blob is encoded, sealed if new */
static void job_run_encoded(struct job *j, int worker)
{
	ingest *g = j->g;
	pack_blob_encode_eid(g->codecs[worker], g->ehashers[worker], j->data, j->len, j->id);
	j->known = catalog_chunk_find(g->readers[worker], j->id);
	if (j->known)
		return;
	j->sealed = xmalloc(pack_blob_bound(j->len));
	j->rc = pack_blob_seal_encoded(g->codecs[worker], g->r->key, j->id, j->sealed, &j->sealed_len, &j->err);
}

static void job_run(void *p, int worker)
{
	struct job *j = p;
	ingest *g = j->g;
	struct blob_loc base;
	int64_t bnum;
	int delta = 0;
	if (j->fs->encoded) {
		job_run_encoded(j, worker);
		return;
	}
	crypto_hasher_id(g->hashers[worker], j->data, j->len, j->id);
	j->known = catalog_chunk_find(g->readers[worker], j->id);
	if (j->known)
		return;
	j->sealed = xmalloc(pack_blob_bound(j->len));
	bnum = job_base(g, j, worker, &base);
	j->rc = pack_blob_encode_delta(g->codecs[worker], g->r->key, j->id, j->data, j->len, bnum ? base.id : NULL,
				       bnum ? g->basebuf[worker] : NULL, bnum ? base.raw : 0,
				       bnum ? base.length - CRYPTO_SEAL_OVERHEAD : 0, j->sealed, &j->sealed_len, &delta,
				       &j->err);
	if (delta)
		j->base = bnum;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (!j->borrowed)
		free(j->data);
	free(j->sealed);
	free(j);
}

/* ---------- life cycle ---------- */

int ingest_new(struct repo *r, catalog *c, const char *catalog_file, struct progress *progress, ingest **out,
	       struct err *e)
{
	ingest *g = xcalloc(1, sizeof *g);
	size_t depth;
	*out = NULL;
	g->r = r;
	g->c = c;
	g->progress = progress;
	g->nworkers = pool_cpus();
	g->ck = chunker_new(&r->cfg.chunk);
	depth = POOL_DEPTH_BYTES / chunker_max(g->ck);
	if (depth < 2 * (size_t)g->nworkers)
		depth = 2 * (size_t)g->nworkers;
	g->hashers = xcalloc((size_t)g->nworkers, sizeof *g->hashers);
	g->ehashers = xcalloc((size_t)g->nworkers, sizeof *g->ehashers);
	g->codecs = xcalloc((size_t)g->nworkers, sizeof *g->codecs);
	g->readers = xcalloc((size_t)g->nworkers, sizeof *g->readers);
	g->basebuf = xcalloc((size_t)g->nworkers, sizeof *g->basebuf);
	for (int i = 0; i < g->nworkers; i++) {
		int rc;
		g->hashers[i] = crypto_hasher_new(r->key);
		g->ehashers[i] = crypto_hasher_new_encoded(r->key);
		if (r->cfg.delta_blocks)
			g->basebuf[i] = xmalloc(chunker_max(g->ck));
		g->codecs[i] = pack_codec_new(r->cfg.zstd_level);
		if ((rc = catalog_open(catalog_file, 1, &g->readers[i], e)) < 0) {
			ingest_free(g);
			return rc;
		}
	}
	g->open = pack_builder_new();
	g->spare = pack_builder_new();
	/* a pack is sealed once it reaches pack_size: room for one more chunk and the trailer */
	pack_builder_reserve(g->open, r->cfg.pack_size + 2 * chunker_max(g->ck) + (1u << 20));
	pack_builder_reserve(g->spare, r->cfg.pack_size + 2 * chunker_max(g->ck) + (1u << 20));
	g->bufcap = READ_BLOCK + chunker_max(g->ck);
	g->buf = xmalloc(g->bufcap);
	g->aio_state = DIRECT_BUF % chunker_block_size(g->ck) == 0 ? 0 : -1;
	g->fl.z = r->z;
	g->fl.sha = crypto_sha_new();
	pthread_mutex_init(&g->fl.mu, NULL);
	pthread_cond_init(&g->fl.cv, NULL);
	if (pthread_create(&g->fl.thread, NULL, flusher_main, &g->fl) != 0)
		abort();
	g->pool = pool_new(g->nworkers, depth);
	g->batch = depth / 8 ? depth / 8 : 1;
	*out = g;
	return 0;
}

void ingest_free(ingest *g)
{
	if (!g)
		return;
	if (g->pool) {
		struct job *j;
		while ((j = pool_take(g->pool)))
			job_free(j);
		pool_free(g->pool);
	}
	if (g->fl.z) {
		pthread_mutex_lock(&g->fl.mu);
		while (g->fl.busy)
			pthread_cond_wait(&g->fl.cv, &g->fl.mu);
		g->fl.stop = 1;
		pthread_cond_broadcast(&g->fl.cv);
		pthread_mutex_unlock(&g->fl.mu);
		pthread_join(g->fl.thread, NULL);
		pthread_mutex_destroy(&g->fl.mu);
		pthread_cond_destroy(&g->fl.cv);
		zones_stream_abort(g->fl.stream); /* a pack never sealed (an error, or dropped) */
		crypto_sha_free(g->fl.sha);
	}
	for (int i = 0; i < g->nworkers; i++) {
		crypto_hasher_free(g->hashers[i]);
		crypto_hasher_free(g->ehashers[i]);
		pack_codec_free(g->codecs[i]);
		catalog_close(g->readers[i]);
		if (g->basebuf)
			free(g->basebuf[i]);
	}
	free(g->basebuf);
	free(g->hashers);
	free(g->ehashers);
	free(g->codecs);
	free(g->readers);
	pack_builder_free(g->open);
	pack_builder_free(g->spare);
	chunker_free(g->ck);
	free(g->pend.ids);
	free(g->pend.nums);
	free(g->buf);
	if (g->aio)
		syscall(SYS_io_destroy, g->aio);
	for (int i = 0; i < DIRECT_BUFS; i++)
		free(g->dbuf[i]);
	free(g);
}

/* ---------- packs ---------- */

static int seal_open_pack(ingest *g, struct err *e)
{
	uint8_t id[32];
	pack_builder *b = g->open;
	const uint8_t *data;
	size_t len;
	int rc;
	if (!g->open_pack)
		return 0;
	if (g->streamed) {
		/* the writer is done with every range it was given before the builder changes */
		if ((rc = flusher_wait(&g->fl, e)) < 0)
			return rc;
		rc = pack_builder_finish_from(b, g->r->key, g->fl.sha, g->streamed, id, e);
	} else {
		rc = pack_builder_finish(b, g->r->key, id, e); /* while the writer may still write the previous pack */
	}
	if (rc < 0)
		return rc;
	data = pack_builder_data(b, &len);
	if ((rc = catalog_pack_finish(g->c, g->open_pack, id, len, e)) < 0)
		return rc;
	if (!g->streamed && (rc = flusher_wait(&g->fl, e)) < 0)
		return rc;
	/* hand the sealed pack (or the rest of a streamed one) to the writer; take its previous builder back */
	pthread_mutex_lock(&g->fl.mu);
	memcpy(g->fl.pack_id, id, 32);
	if (g->streamed)
		flusher_give(&g->fl, FL_FINISH, NULL, data + g->streamed, len - g->streamed, g->streamed);
	else
		flusher_give(&g->fl, FL_PACK, b, NULL, 0, 0);
	pthread_mutex_unlock(&g->fl.mu);
	g->open = g->spare;
	g->spare = b;
	pack_builder_reset(g->open);
	g->open_pack = 0;
	g->streamed = 0;
	g->st.packs++;
	return 0;
}

/*
 * After a blob is added to the open pack: when the writer is idle, it gets the whole pages
 * added since the last range, if they are STREAM_STEP or more.
 */
static void stream_some(ingest *g)
{
	size_t len, to;
	const uint8_t *data = pack_builder_data(g->open, &len);
	to = len & ~(size_t)(DIRECT_ALIGN - 1);
	if (to < g->streamed + STREAM_STEP)
		return;
	pthread_mutex_lock(&g->fl.mu);
	if (!g->fl.busy && g->fl.rc == 0) {
		flusher_give(&g->fl, FL_RANGE, NULL, data + g->streamed, to - g->streamed, g->streamed);
		g->streamed = to;
	}
	pthread_mutex_unlock(&g->fl.mu);
}

static int drain(ingest *g, int all, struct err *e);

int ingest_flush(ingest *g, struct err *e)
{
	int rc;
	if ((rc = drain(g, 1, e)) < 0) /* streams may have chunks in flight */
		return rc;
	if ((rc = seal_open_pack(g, e)) < 0)
		return rc;
	if ((rc = flusher_wait(&g->fl, e)) < 0)
		return rc;
	return zones_sync(g->r->z, e);
}

void ingest_committed(ingest *g)
{
	pend_clear(&g->pend);
	g->since_commit = 0;
}

int ingest_due(const ingest *g)
{
	return g->since_commit >= COMMIT_EVERY;
}

const struct ingest_stats *ingest_stats(const ingest *g)
{
	return &g->st;
}

void ingest_count_reused(ingest *g, uint64_t size)
{
	struct file_state fs = {.acct = g->acct};
	COUNT(g, &fs, files, 1);
	COUNT(g, &fs, files_reused, 1);
	COUNT(g, &fs, bytes, size);
}

void ingest_account(ingest *g, struct ingest_stats *acct)
{
	g->acct = acct;
}

/* ---------- files ---------- */

void ingest_content_hash_piece(crypto_sha *sha, uint64_t len, const uint8_t *id)
{
	static const uint8_t zero[CRYPTO_ID_LEN];
	uint8_t l[8];
	put_le64(l, len);
	crypto_sha_update(sha, l, 8);
	crypto_sha_update(sha, id ? id : zero, CRYPTO_ID_LEN);
}

void ingest_content_hash_end(crypto_sha *sha, uint64_t total, uint8_t out[32])
{
	uint8_t l[8];
	put_le64(l, total);
	crypto_sha_update(sha, l, 8);
	crypto_sha_final(sha, out);
}

/* Takes one finished job (in order) and records it. */
static int finish_job(ingest *g, struct job *j, struct err *e)
{
	struct file_state *fs = j->fs;
	int64_t num = j->known;
	int rc;
	if (j->rc < 0) {
		if (e)
			*e = j->err;
		return j->rc;
	}
	if (!num)
		num = pend_get(&g->pend, j->id);
	if (!num) {
		uint32_t off;
		if (!g->open_pack && (rc = catalog_pack_begin(g->c, &g->open_pack, e)) < 0)
			return rc;
		/* the buffer may move: not while the writer reads a range of it */
		if (g->streamed && pack_builder_room(g->open) < j->sealed_len + DIRECT_ALIGN &&
		    (rc = flusher_wait(&g->fl, e)) < 0)
			return rc;
		off = pack_builder_add(g->open, j->id, PACK_BLOB_DATA, j->len, j->sealed, j->sealed_len);
		stream_some(g);
		if ((rc = catalog_chunk_add_delta(g->c, j->id, g->open_pack, off, (uint32_t)j->sealed_len, j->len,
						  j->base, &num, e)) < 0)
			return rc;
		pend_put(&g->pend, j->id, num);
		COUNT(g, fs, new_chunks, 1);
		if (j->base)
			COUNT(g, fs, delta_chunks, 1);
		COUNT(g, fs, new_bytes, j->len);
		COUNT(g, fs, stored_bytes, j->sealed_len);
		g->since_commit += j->sealed_len;
		if (pack_builder_size(g->open) >= g->r->cfg.pack_size && (rc = seal_open_pack(g, e)) < 0)
			return rc;
	}
	COUNT(g, fs, chunks, 1);
	fs->nchunks++;
	ingest_content_hash_piece(fs->sha, j->len, j->id);
	return catalog_content_add(g->c, fs->content, j->off, j->len, num, e);
}

static int drain(ingest *g, int all, struct err *e)
{
	struct job *j;
	int rc = 0;
	while ((j = all ? pool_take(g->pool) : pool_try_take(g->pool))) {
		if (rc == 0)
			rc = finish_job(g, j, e);
		job_free(j);
	}
	return rc;
}

static int submit_job(ingest *g, struct file_state *fs, const uint8_t *data, size_t len, uint64_t off, int borrow,
		      struct err *e)
{
	struct job *j = xcalloc(1, sizeof *j);
	int rc;
	if (borrow) {
		j->data = (uint8_t *)data;
		j->borrowed = 1;
	} else {
		j->data = xmalloc(len);
		memcpy(j->data, data, len);
	}
	j->len = (uint32_t)len;
	j->off = off;
	j->g = g;
	j->fs = fs;
	if (pool_full(g->pool)) {
		/* take finished jobs in batches: one wakeup per batch, not per chunk */
		pool_wait(g->pool, g->batch);
		if ((rc = drain(g, 0, e)) < 0) {
			job_free(j);
			return rc;
		}
	}
	pool_submit(g->pool, job_run, j);
	return drain(g, 0, e);
}

static int submit(ingest *g, struct file_state *fs, const uint8_t *data, size_t len, uint64_t off, struct err *e)
{
	return submit_job(g, fs, data, len, off, 0, e);
}

static int hole(ingest *g, struct file_state *fs, uint64_t off, uint64_t len, struct err *e)
{
	/* holes are recorded in pieces that fit a u32 length */
	while (len) {
		uint32_t n = len > (1u << 30) ? (1u << 30) : (uint32_t)len;
		int rc;
		if ((rc = drain(g, 1, e)) < 0)
			return rc;
		ingest_content_hash_piece(fs->sha, n, NULL);
		fs->nchunks++;
		if ((rc = catalog_content_add(g->c, fs->content, off, n, 0, e)) < 0)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

/* Reads the data region [start, end) (end may be UINT64_MAX: to EOF); *stop at EOF. */
static int region(ingest *g, struct file_state *fs, int fd, int paged, uint64_t start, uint64_t end, uint64_t *pos,
		  const struct ingest_observer *ob, struct err *e)
{
	uint32_t block = chunker_block_size(g->ck);
	size_t head = 0, have = 0, maxc = chunker_max(g->ck); /* unchunked bytes are buf[head..have) */
	uint64_t off = start;				      /* file offset of buf[head] */
	int eof = 0, rc;
	while (!eof || have > head) {
		if (!eof && have - head < maxc) {
			/* compact once per refill, not once per chunk */
			memmove(g->buf, g->buf + head, have - head);
			have -= head;
			head = 0;
		}
		while (!eof && have < maxc) {
			size_t want = g->bufcap - have;
			ssize_t r;
			if (end != UINT64_MAX && off + have + want > end)
				want = (size_t)(end - off - have);
			if (want == 0) {
				eof = 1;
				break;
			}
			r = pread(fd, g->buf + have, want, (off_t)(off + have));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return err_sys(e, ERR_IO, "read failed");
			if (r == 0) {
				eof = 1;
				break;
			}
			if (ob)
				ob->fn(ob->ctx, off + have, g->buf + have, (size_t)r);
			have += (size_t)r;
			COUNT(g, fs, bytes_read, (uint64_t)r);
			if (g->progress)
				progress_add(g->progress, (uint64_t)r);
		}
		while (have > head && (eof || have - head >= maxc)) {
			size_t cut, avail = have - head;
			if (paged) {
				cut = block - (size_t)(off % block); /* keep blocks aligned to the file */
				if (cut > avail)
					cut = avail;
			} else {
				cut = chunker_cdc_cut(g->ck, g->buf + head, avail);
			}
			if ((rc = submit(g, fs, g->buf + head, cut, off, e)) < 0)
				return rc;
			head += cut;
			off += cut;
		}
	}
	*pos = off;
	return 0;
}

/*
 * Direct reads (issue 2). A large relation or WAL file is read with O_DIRECT, DIRECT_BUFS
 * reads of DIRECT_BUF in flight through Linux AIO: the disk writes into our buffers, and the
 * kernel's copy out of the page cache (the largest cost of a first snapshot after hashing and
 * compressing, and the one that grows most when other work shares the machine) is gone. The
 * chunks are the same as region() cuts: blocks at multiples of the block size in the file,
 * since a region read this way starts on a block boundary and every read is a whole number of
 * blocks. Returns 1 when the file cannot be read this way (nothing consumed: the caller reads
 * it the ordinary way).
 */
int ingest_reads_direct(const ingest *g, int paged, uint64_t size)
{
	return g->aio_state >= 0 && paged && size >= DIRECT_MIN;
}

/* Sets up Linux AIO and the buffers at the first direct read (streams never pay for them). */
static int direct_ready(ingest *g)
{
	if (g->aio_state)
		return g->aio_state > 0;
	g->aio_state = -1;
	if (syscall(SYS_io_setup, DIRECT_BUFS, &g->aio) < 0) {
		g->aio = 0;
		return 0;
	}
	for (int i = 0; i < DIRECT_BUFS; i++)
		if (posix_memalign((void **)&g->dbuf[i], DIRECT_ALIGN, DIRECT_BUF))
			abort();
	g->aio_state = 1;
	return 1;
}

struct dslot {
	uint64_t off; /* file offset of the read */
	int64_t res;  /* bytes read, or -errno; only once done */
	int busy, done;
};

/* Waits until slot i's read is done (others that finish meanwhile are recorded too). */
static int dwait(ingest *g, struct dslot *sl, int i)
{
	while (!sl[i].done) {
		struct io_event ev[DIRECT_BUFS];
		long n = syscall(SYS_io_getevents, g->aio, 1, DIRECT_BUFS, ev, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (long k = 0; k < n; k++) {
			int j = (int)ev[k].data;
			sl[j].res = ev[k].res;
			sl[j].done = 1;
		}
	}
	return 0;
}

static int dsubmit(ingest *g, int fd, struct dslot *sl, int i, uint64_t off, uint64_t end)
{
	struct iocb cb, *cbp = &cb;
	uint64_t len = DIRECT_BUF;
	if (end != UINT64_MAX && end - off < len)
		len = (end - off + DIRECT_ALIGN - 1) & ~(uint64_t)(DIRECT_ALIGN - 1);
	memset(&cb, 0, sizeof cb);
	cb.aio_data = (uint64_t)i;
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_buf = (uint64_t)(uintptr_t)g->dbuf[i];
	cb.aio_nbytes = len;
	cb.aio_offset = (int64_t)off;
	for (;;) {
		long n = syscall(SYS_io_submit, g->aio, 1, &cbp);
		if (n == 1)
			break;
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return n < 0 ? -errno : -EIO;
	}
	sl[i].off = off;
	sl[i].busy = 1;
	sl[i].done = 0;
	return 0;
}

static int region(ingest *g, struct file_state *fs, int fd, int paged, uint64_t start, uint64_t end, uint64_t *pos,
		  const struct ingest_observer *ob, struct err *e);

static void direct_off(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_DIRECT))
		fcntl(fd, F_SETFL, fl & ~O_DIRECT);
}

static int region_direct(ingest *g, struct file_state *fs, int fd, uint64_t start, uint64_t end, uint64_t *pos,
			 const struct ingest_observer *ob, struct err *e)
{
	uint32_t block = chunker_block_size(g->ck);
	struct dslot sl[DIRECT_BUFS];
	uint64_t next = start, off = start; /* next read to submit; next byte to consume */
	int cur = 0, eof = 0, sys = 0, rc = 0, rest = 0;
	if (start % block)
		return 1;
	memset(sl, 0, sizeof sl);
	for (int i = 0; i < DIRECT_BUFS && next < end; i++, next += DIRECT_BUF)
		if ((sys = dsubmit(g, fd, sl, i, next, end)) < 0)
			goto out;
	while (!eof && sl[cur].busy) {
		size_t n;
		const uint8_t *p;
		if ((sys = dwait(g, sl, cur)) < 0)
			goto out;
		sl[cur].busy = 0;
		if (sl[cur].res < 0) {
			sys = (int)sl[cur].res;
			goto out;
		}
		n = (size_t)sl[cur].res;
		if (end != UINT64_MAX && n > end - off)
			n = (size_t)(end - off);
		if (n < DIRECT_BUF) {
			/* a short read ends the file, or the region; anything else is read the ordinary way */
			struct stat st;
			eof = 1;
			rest = n % DIRECT_ALIGN == 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size > off + n &&
			       (end == UINT64_MAX || end > off + n);
		}
		p = g->dbuf[cur];
		if (n) {
			if (ob)
				ob->fn(ob->ctx, off, p, n);
			COUNT(g, fs, bytes_read, (uint64_t)n);
			if (g->progress)
				progress_add(g->progress, (uint64_t)n);
		}
		for (size_t head = 0; head < n;) {
			size_t cut = n - head < block ? n - head : block;
			if ((rc = submit(g, fs, p + head, cut, off + head, e)) < 0)
				goto out;
			head += cut;
		}
		off += n;
		if (!eof && next < end) {
			if ((sys = dsubmit(g, fd, sl, cur, next, end)) < 0)
				goto out;
			next += DIRECT_BUF;
		}
		cur = (cur + 1) % DIRECT_BUFS;
	}
out:
	/* reads still in flight write into our buffers: wait for them all */
	for (int i = 0; i < DIRECT_BUFS; i++)
		if (sl[i].busy && dwait(g, sl, i) < 0)
			abort();
	if (sys == -EINVAL && off == start)
		return 1; /* refused before any byte was used: the caller reads it the ordinary way */
	if (sys < 0) {
		errno = -sys;
		return err_sys(e, ERR_IO, "read failed");
	}
	if (rc < 0)
		return rc;
	if (rest) {
		direct_off(fd);
		return region(g, fs, fd, 1, off, end, pos, ob, e);
	}
	*pos = off;
	return 0;
}

/*
 * Asks the kernel to read ahead the pack ranges that hold the bases of a file's blocks (zone
 * 1, where reads go first): packs are written with O_DIRECT, so a base is never in the page
 * cache, and one small synchronous read per block would leave the workers waiting on the
 * disk. Only ranges where the bases fill a quarter of the bytes or more: a hint, never a debt.
 */
static void base_range(void *ctx, const uint8_t pack[32], uint64_t off, uint64_t end, uint64_t bytes)
{
	ingest *g = ctx;
	char rel[80], full[PATH_MAX];
	int fd;
	if (end <= off || end - off > 4 * bytes)
		return;
	pack_relpath(pack, rel);
	zones_file(g->r->z, 0, rel, full, sizeof full);
	if ((fd = open(full, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	posix_fadvise(fd, (off_t)off, (off_t)(end - off), POSIX_FADV_WILLNEED);
	close(fd);
}

static void base_readahead(ingest *g, int64_t base)
{
	if (base && g->r->cfg.delta_blocks)
		catalog_content_base_ranges(g->c, base, base_range, g);
}

int ingest_file(ingest *g, int fd, int paged, int64_t *content, uint64_t *size, struct err *e)
{
	return ingest_file_observed(g, fd, paged, NULL, 0, content, size, e);
}

int ingest_file_observed(ingest *g, int fd, int paged, const struct ingest_observer *ob, int64_t base,
			 int64_t *content, uint64_t *size, struct err *e)
{
	struct file_state fs;
	uint8_t hash[32];
	uint64_t pos = 0;
	int rc, direct;
	memset(&fs, 0, sizeof fs);
	fs.acct = g->acct;
	fs.base = paged ? base : 0;
	base_readahead(g, fs.base);
	*content = 0;
	*size = 0;
	if ((rc = catalog_content_begin(g->c, &fs.content, e)) < 0)
		return rc;
	fs.sha = crypto_sha_new();
	{
		struct stat st;
		int fl;
		direct = fstat(fd, &st) == 0 && ingest_reads_direct(g, paged, (uint64_t)st.st_size) && direct_ready(g) &&
			 (fl = fcntl(fd, F_GETFL)) >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
	}
	if (!direct)
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* larger kernel read-ahead */
	for (;;) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		off_t holeat;
		if (data < 0) {
			if (errno != ENXIO) { /* no SEEK_DATA here: read it all */
				if (direct) {
					direct_off(fd);
					direct = 0;
				}
				rc = region(g, &fs, fd, paged, pos, UINT64_MAX, &pos, ob, e);
				break;
			}
			/* trailing hole: up to the size */
			{
				off_t endp = lseek(fd, 0, SEEK_END);
				/* bytes appended since SEEK_DATA looked are data, not a hole */
				if (endp > (off_t)pos && lseek(fd, (off_t)pos, SEEK_DATA) >= 0)
					continue;
				if (endp > (off_t)pos && (rc = hole(g, &fs, pos, (uint64_t)endp - pos, e)) < 0)
					goto out;
				if (endp > (off_t)pos)
					pos = (uint64_t)endp;
			}
			rc = 0;
			break;
		}
		if ((uint64_t)data > pos && (rc = hole(g, &fs, pos, (uint64_t)data - pos, e)) < 0)
			goto out;
		holeat = lseek(fd, data, SEEK_HOLE);
		if (holeat < 0) {
			rc = err_sys(e, ERR_IO, "SEEK_HOLE failed");
			goto out;
		}
		rc = direct ? region_direct(g, &fs, fd, (uint64_t)data, (uint64_t)holeat, &pos, ob, e) : 1;
		if (rc == 1) { /* not (or no longer) read directly */
			if (direct) {
				direct_off(fd);
				direct = 0;
			}
			rc = region(g, &fs, fd, paged, (uint64_t)data, (uint64_t)holeat, &pos, ob, e);
		} else if (direct && !(fcntl(fd, F_GETFL) & O_DIRECT)) {
			direct = 0; /* region_direct fell back for the rest: so do the next regions */
		}
		if (rc < 0)
			goto out;
		if (pos < (uint64_t)holeat) { /* shrank under us */
			break;
		}
	}
	if (rc < 0)
		goto out;
	if ((rc = drain(g, 1, e)) < 0)
		goto out;
	ingest_content_hash_end(fs.sha, pos, hash);
	COUNT(g, &fs, files, 1);
	COUNT(g, &fs, bytes, pos);
	*size = pos;
	if (pos == 0 && fs.nchunks == 0) { /* an empty file has no content list */
		rc = catalog_content_drop(g->c, fs.content, e);
		goto out;
	}
	rc = catalog_content_finish(g->c, fs.content, hash, pos, fs.nchunks, content, e);
out:
	if (rc < 0)
		drain(g, 1, NULL);
	if (direct)
		direct_off(fd);
	crypto_sha_free(fs.sha);
	return rc;
}

/* ---------- streams ---------- */

struct ingest_stream {
	ingest *g;
	struct file_state fs;
	int paged;
	uint32_t block; /* a paged stream's blocks: the repository's, or larger (ingest_stream_set_wal) */
	uint8_t *buf; /* unchunked bytes: buf[0..have) at file offset off */
	size_t have, cap;
	uint64_t off;
};

int ingest_stream_begin(ingest *g, int paged, ingest_stream **out, struct err *e)
{
	ingest_stream *s = xcalloc(1, sizeof *s);
	int rc;
	*out = NULL;
	s->g = g;
	s->paged = paged;
	s->block = chunker_block_size(g->ck);
	s->fs.acct = g->acct;
	if ((rc = catalog_content_begin(g->c, &s->fs.content, e)) < 0) {
		free(s);
		return rc;
	}
	s->fs.sha = crypto_sha_new();
	s->cap = 2 * (size_t)chunker_max(g->ck);
	s->buf = xmalloc(s->cap);
	*out = s;
	return 0;
}

/* Cuts chunks from the buffer while at least a maximal chunk is buffered (or all at the end). */
static int stream_cut(ingest_stream *s, int at_end, struct err *e)
{
	ingest *g = s->g;
	uint32_t block = s->block;
	size_t head = 0, maxc = chunker_max(g->ck);
	int rc = 0;
	while (s->have > head && (at_end || s->have - head >= maxc)) {
		size_t cut, avail = s->have - head;
		if (s->paged) {
			cut = block - (size_t)(s->off % block);
			if (cut > avail)
				cut = avail;
		} else {
			cut = chunker_cdc_cut(g->ck, s->buf + head, avail);
		}
		if ((rc = submit(g, &s->fs, s->buf + head, cut, s->off, e)) < 0)
			break;
		head += cut;
		s->off += cut;
	}
	memmove(s->buf, s->buf + head, s->have - head);
	s->have -= head;
	return rc;
}

int ingest_stream_write(ingest_stream *s, const void *data, size_t len, struct err *e)
{
	const uint8_t *p = data;
	int rc;
	COUNT(s->g, &s->fs, bytes_read, len);
	if (s->g->progress)
		progress_add(s->g->progress, len);
	while (len) {
		size_t n = s->cap - s->have;
		if (n > len)
			n = len;
		memcpy(s->buf + s->have, p, n);
		s->have += n;
		p += n;
		len -= n;
		if (s->have == s->cap && (rc = stream_cut(s, 0, e)) < 0)
			return rc;
	}
	return 0;
}

int ingest_stream_write_borrowed(ingest_stream *s, const void *data, size_t len, struct err *e)
{
	ingest *g = s->g;
	const uint8_t *p = data;
	uint32_t block = s->block;
	int rc;
	if (!s->paged)
		return ingest_stream_write(s, data, len, e); /* content-defined cuts need the buffer */
	if (s->have || s->off % block) {
		/* buffered bytes first, up to a block boundary, all of them cut and handed on */
		size_t to = (size_t)(block - (s->off + s->have) % block) % block;
		if (to > len)
			to = len;
		if ((rc = ingest_stream_write(s, p, to, e)) < 0)
			return rc;
		p += to;
		len -= to;
		if ((s->off + s->have) % block)
			return 0; /* all of data went into the buffer, short of the boundary */
		if ((rc = stream_cut(s, 1, e)) < 0)
			return rc;
	}
	COUNT(g, &s->fs, bytes_read, len - len % block);
	if (g->progress)
		progress_add(g->progress, len - len % block);
	for (; len >= block; p += block, len -= block, s->off += block)
		if ((rc = submit_job(g, &s->fs, p, block, s->off, 1, e)) < 0)
			return rc;
	return len ? ingest_stream_write(s, p, len, e) : 0;
}

static void stream_free(ingest_stream *s)
{
	crypto_sha_free(s->fs.sha);
	free(s->buf);
	free(s);
}

int ingest_stream_end(ingest_stream *s, int64_t *content, uint64_t *size, struct err *e)
{
	uint8_t hash[32];
	return ingest_stream_end_hash(s, content, size, hash, e);
}

int ingest_stream_end_hash(ingest_stream *s, int64_t *content, uint64_t *size, uint8_t hash[32], struct err *e)
{
	ingest *g = s->g;
	uint64_t total;
	int rc;
	*content = 0;
	*size = 0;
	if ((rc = stream_cut(s, 1, e)) < 0 || (rc = drain(g, 1, e)) < 0)
		goto out;
	total = s->off;
	ingest_content_hash_end(s->fs.sha, total, hash);
	COUNT(g, &s->fs, files, 1);
	COUNT(g, &s->fs, bytes, total);
	*size = total;
	if (total == 0) {
		rc = catalog_content_drop(g->c, s->fs.content, e);
		goto out;
	}
	rc = catalog_content_finish(g->c, s->fs.content, hash, total, s->fs.nchunks, content, e);
out:
	if (rc < 0)
		drain(g, 1, NULL);
	stream_free(s);
	return rc;
}

void ingest_stream_set_wal(ingest_stream *s)
{
	uint32_t page = chunker_block_size(s->g->ck);
	s->fs.encoded = 1; /* job_run_encoded: never a delta */
	s->block = chunker_max(s->g->ck) / page * page;
}

void ingest_stream_set_base(ingest_stream *s, int64_t base)
{
	s->fs.base = s->paged ? base : 0;
	base_readahead(s->g, s->fs.base);
}

void ingest_stream_abort(ingest_stream *s)
{
	if (!s)
		return;
	drain(s->g, 1, NULL); /* no job may point at the state freed below */
	stream_free(s);
}
