#include "file.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/pool.h"
#include "common/util.h"
#include "prefetch.h"
#include "store/reader.h"

#define PIECES 256

struct fs_reader {
	const struct repo *r;
	catalog *c;
	chunk_cache *cache;
	pack_codec *codec;
	struct content_piece *pieces;
	fs_prefetch *prefetch; /* may be NULL */
	/* for fs_copy_to_fd */
	pool *pool;
	pack_codec **codecs;
	int nworkers;
};

fs_reader *fs_reader_new(const struct repo *r, catalog *c, chunk_cache *cache)
{
	fs_reader *rd = xcalloc(1, sizeof *rd);
	rd->r = r;
	rd->c = c;
	rd->cache = cache;
	rd->codec = pack_codec_new(1);
	rd->pieces = xmalloc(PIECES * sizeof *rd->pieces);
	return rd;
}

void fs_reader_free(fs_reader *rd)
{
	if (!rd)
		return;
	pool_free(rd->pool);
	for (int i = 0; i < rd->nworkers; i++)
		pack_codec_free(rd->codecs[i]);
	free(rd->codecs);
	pack_codec_free(rd->codec);
	free(rd->pieces);
	free(rd);
}

void fs_reader_set_prefetch(fs_reader *rd, fs_prefetch *p)
{
	rd->prefetch = p;
}

void fs_read_ahead(fs_reader *rd, int64_t content, uint64_t from, uint64_t until)
{
	size_t n, want;
	if (!rd->prefetch || until <= from)
		return;
	want = (size_t)((until - from) >> 16) + 1;
	if (want > PIECES)
		want = PIECES;
	if (catalog_content_pieces(rd->c, content, from, rd->pieces, want, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (rd->pieces[i].chunk && rd->pieces[i].off + rd->pieces[i].len > from && rd->pieces[i].off < until &&
		    rd->pieces[i].loc.raw == rd->pieces[i].len) /* else the read refuses the row (a worker would
								 * allocate what it says first) */
			fs_prefetch_add(rd->prefetch, rd->pieces[i].chunk, &rd->pieces[i].loc);
}

/* the decoded chunk of piece p: from the cache, from a read-ahead worker, or decoded here */
static int piece_data(fs_reader *rd, const struct content_piece *p, cache_ref **ref, uint8_t **plain, struct err *e)
{
	int rc, pf = FS_PREFETCH_NONE;
	*ref = NULL;
	*plain = NULL;
	if (rd->cache && (*ref = cache_get(rd->cache, p->chunk)))
		return 0;
	if (rd->cache && (pf = fs_prefetch_wait(rd->prefetch, p->chunk)) == FS_PREFETCH_WAITED &&
	    (*ref = cache_get(rd->cache, p->chunk)))
		return 0;
	*plain = xmalloc(p->loc.raw ? p->loc.raw : 1);
	if ((rc = store_read_blob_cached(rd->r, rd->codec, rd->cache, &p->loc, *plain, 0, e)) < 0) {
		free(*plain);
		*plain = NULL;
	} else if (rd->cache) {
		*ref = cache_put(rd->cache, p->chunk, *plain, p->loc.raw);
		*plain = NULL;
	}
	if (pf == FS_PREFETCH_CLAIMED)
		fs_prefetch_done(rd->prefetch, p->chunk); /* after cache_put: its waiters look there */
	return rc < 0 ? rc : 0;
}

static const uint8_t zeros[65536];

/* appends base[0..len) to v, holding ref (parts of its chunk) / owning own; 0 when v is full */
static int vec_add(struct fs_vec *v, const uint8_t *base, size_t len, cache_ref *ref, unsigned parts, uint8_t *own)
{
	if (v->n == FS_VEC_MAX)
		return 0;
	v->iov[v->n].iov_base = (void *)(uintptr_t)base;
	v->iov[v->n].iov_len = len;
	v->ref[v->n] = ref;
	v->parts[v->n] = (unsigned char)parts;
	v->own[v->n] = own;
	v->n++;
	return 1;
}

void fs_vec_release(fs_reader *rd, struct fs_vec *v, int passed)
{
	for (int i = 0; i < v->n; i++) {
		if (v->ref[i])
			cache_release_passed(rd->cache, v->ref[i], passed ? v->parts[i] : 0);
		free(v->own[i]);
	}
	v->n = 0;
}

ssize_t fs_read_vec(fs_reader *rd, int64_t content, uint64_t size, uint64_t off, size_t len, struct fs_vec *v,
		    struct err *e)
{
	size_t done = 0, want;
	int rc = 0;
	v->n = 0;
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	/* enough pieces for the read in one query, at 64 KiB a piece */
	want = (size_t)(len >> 16) + 2;
	if (want > PIECES)
		want = PIECES;
	while (done < len && rc == 0) {
		size_t n;
		if ((rc = catalog_content_pieces(rd->c, content, off + done, rd->pieces, want, &n, e)) < 0)
			break;
		if (n == 0) {
			rc = err_set(e, ERR_CORRUPT, "content %lld ends before its size", (long long)content);
			break;
		}
		for (size_t i = 0; i < n && done < len && rc == 0; i++) {
			const struct content_piece *p = &rd->pieces[i];
			uint64_t pos = off + done;
			size_t skip, take;
			if (p->off + p->len <= pos)
				continue;
			if (p->off > pos) {
				rc = err_set(e, ERR_CORRUPT, "content %lld has a gap at %llu", (long long)content,
					     (unsigned long long)pos);
				break;
			}
			skip = (size_t)(pos - p->off);
			take = p->len - skip;
			if (take > len - done)
				take = len - done;
			if (p->chunk && (p->loc.raw != p->len || skip + take > p->loc.raw)) {
				rc = err_set(e, ERR_CORRUPT, "catalog: chunk length mismatch in content %lld",
					     (long long)content);
				break;
			}
			if (!p->chunk) {
				/* a hole: as many pages of zeros as it takes */
				while (take) {
					size_t k = take < sizeof zeros ? take : sizeof zeros;
					if (!vec_add(v, zeros, k, NULL, 0, NULL))
						return (ssize_t)done;
					done += k;
					take -= k;
				}
				continue;
			} else {
				cache_ref *ref;
				uint8_t *plain;
				size_t dl;
				if (v->n == FS_VEC_MAX)
					return (ssize_t)done;
				if ((rc = piece_data(rd, p, &ref, &plain, e)) < 0)
					break;
				vec_add(v, (ref ? cache_data(ref, &dl) : plain) + skip, take, ref,
					(skip == 0 ? CACHE_PASSED_HEAD : 0) | (skip + take == p->len ? CACHE_PASSED_TAIL : 0),
					plain);
			}
			done += take;
		}
	}
	if (rc < 0) {
		fs_vec_release(rd, v, 0);
		return rc;
	}
	return (ssize_t)done;
}

ssize_t fs_read(fs_reader *rd, int64_t content, uint64_t size, uint64_t off, void *buf, size_t len, uint64_t ahead,
		struct err *e)
{
	struct fs_vec *v = xmalloc(sizeof *v);
	uint8_t *out = buf;
	size_t done = 0;
	if (ahead && off < size)
		fs_read_ahead(rd, content, off + len, off + len + ahead);
	while (done < len) {
		ssize_t n = fs_read_vec(rd, content, size, off + done, len - done, v, e);
		if (n < 0) {
			free(v);
			return n;
		}
		for (int i = 0; i < v->n; i++) {
			memcpy(out + done, v->iov[i].iov_base, v->iov[i].iov_len);
			done += v->iov[i].iov_len;
		}
		fs_vec_release(rd, v, 0);
		if (n == 0)
			break;
	}
	free(v);
	return (ssize_t)done;
}

int fs_seek(fs_reader *rd, int64_t content, uint64_t size, uint64_t off, int hole, uint64_t *out, struct err *e)
{
	uint64_t pos = off;
	if (off >= size)
		return err_set(e, ERR_NOTFOUND, "offset past the end");
	while (pos < size) {
		size_t n;
		int rc;
		if ((rc = catalog_content_pieces(rd->c, content, pos, rd->pieces, PIECES, &n, e)) < 0)
			return rc;
		if (n == 0) /* the pieces cover the whole size, holes included */
			return err_set(e, ERR_CORRUPT, "content %lld ends before its size", (long long)content);
		for (size_t i = 0; i < n; i++) {
			const struct content_piece *p = &rd->pieces[i];
			if (p->off + p->len <= pos)
				continue;
			if ((p->chunk == 0) == (hole != 0)) {
				*out = p->off > off ? p->off : off;
				return 0;
			}
			pos = p->off + p->len;
		}
	}
	if (hole) {
		*out = size; /* the end of a file counts as a hole */
		return 0;
	}
	return err_set(e, ERR_NOTFOUND, "no data after the offset");
}

struct dec_job {
	const struct repo *r;
	fs_reader *rd;
	struct content_piece p;
	uint8_t *data;
	int rc;
	struct err err;
};

static void dec_run(void *arg, int worker)
{
	struct dec_job *j = arg;
	j->data = xmalloc(j->p.loc.raw ? j->p.loc.raw : 1);
	j->rc = store_read_blob(j->r, j->rd->codecs[worker], &j->p.loc, j->data, NULL, &j->err);
}

static int write_out(int fd, const void *buf, size_t len, struct err *e)
{
	if (util_write_all(fd, buf, len) < 0) {
		int rc = err_sys(e, ERR_IO, "cannot write the output");
		if (errno == ENOSPC)
			err_hint(e, "free space where the output goes, then run the command again");
		return rc;
	}
	return 0;
}

static int write_zeros(int fd, uint64_t len, struct err *e)
{
	static const uint8_t zero[65536];
	while (len) {
		size_t n = len > sizeof zero ? sizeof zero : (size_t)len;
		int rc;
		if ((rc = write_out(fd, zero, n, e)) < 0)
			return rc;
		len -= n;
	}
	return 0;
}

/* the oldest job in flight: its bytes written to fd, or, with discard (after an error: the bytes
 * after a piece not written must not take its place), dropped */
static int take_one(fs_reader *rd, int fd, struct err *e, int discard)
{
	struct dec_job *j = pool_take(rd->pool);
	int rc = j->rc;
	if (rc < 0) {
		if (e)
			*e = j->err;
	} else if (!discard) {
		rc = write_out(fd, j->data, j->p.loc.raw, e);
	}
	free(j->data);
	free(j);
	return rc;
}

int fs_copy_to_fd(fs_reader *rd, int64_t content, uint64_t size, int fd, struct err *e)
{
	uint64_t pos = 0;
	int rc = 0;
	if (!rd->pool) {
		rd->nworkers = pool_cpus();
		rd->codecs = xcalloc((size_t)rd->nworkers, sizeof *rd->codecs);
		for (int i = 0; i < rd->nworkers; i++)
			rd->codecs[i] = pack_codec_new(1);
		rd->pool = pool_new(rd->nworkers, 64);
	}
	while (pos < size && rc == 0) {
		size_t n;
		if ((rc = catalog_content_pieces(rd->c, content, pos, rd->pieces, PIECES, &n, e)) < 0)
			break;
		if (n == 0) {
			rc = err_set(e, ERR_CORRUPT, "content %lld ends before its size", (long long)content);
			break;
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			const struct content_piece *p = &rd->pieces[i];
			if (p->off != pos) {
				rc = err_set(e, ERR_CORRUPT, "content %lld is not contiguous at %llu", (long long)content,
					     (unsigned long long)pos);
				break;
			}
			if (!p->chunk) {
				while (pool_inflight(rd->pool) && rc == 0)
					rc = take_one(rd, fd, e, 0);
				if (rc == 0)
					rc = write_zeros(fd, p->len, e);
			} else {
				struct dec_job *j = xcalloc(1, sizeof *j);
				if (p->loc.raw != p->len) {
					free(j);
					rc = err_set(e, ERR_CORRUPT, "catalog: chunk length mismatch in content %lld",
						     (long long)content);
					break;
				}
				j->r = rd->r;
				j->rd = rd;
				j->p = *p;
				while (pool_full(rd->pool) && rc == 0)
					rc = take_one(rd, fd, e, 0);
				if (rc < 0) {
					free(j);
					break;
				}
				pool_submit(rd->pool, dec_run, j);
			}
			pos += p->len;
		}
	}
	while (pool_inflight(rd->pool)) {
		int r2 = take_one(rd, fd, rc == 0 ? e : NULL, rc != 0);
		if (rc == 0)
			rc = r2;
	}
	if (rc == 0 && pos != size)
		rc = err_set(e, ERR_CORRUPT, "content %lld holds %llu bytes, the entry says %llu", (long long)content,
			     (unsigned long long)pos, (unsigned long long)size);
	return rc;
}
