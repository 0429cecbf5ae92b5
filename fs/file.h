/*
 * file.h: reading a stored file's bytes, shared by the mount and by `pgtimefs cat`.
 *
 * fs_read serves random reads through the shared chunk cache (the mount's path).
 * fs_copy_to_fd streams a whole file in order, decoding the next chunks on all cores
 * ahead of the writer (the cat path; bounded read-ahead). Holes read as zeros. The mount
 * adds read-ahead workers (prefetch.h) that fill the cache before fs_read asks. A reader
 * belongs to one thread; the cache may be shared.
 */
#ifndef PGTIMEFS_FS_FILE_H
#define PGTIMEFS_FS_FILE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "catalog/catalog.h"
#include "prefetch.h"
#include "store/cache.h"
#include "store/repo.h"

typedef struct fs_reader fs_reader;

/* cache may be NULL (no caching). */
fs_reader *fs_reader_new(const struct repo *r, catalog *c, chunk_cache *cache);
void fs_reader_free(fs_reader *rd);

/*
 * Read-ahead workers for fs_read (NULL: none). The reader must have a cache: workers decode
 * into it. The caller keeps p alive while rd uses it.
 */
void fs_reader_set_prefetch(fs_reader *rd, fs_prefetch *p);

/*
 * Reads up to len bytes at off of content (a file of size bytes); returns bytes read or <0.
 * ahead > 0 (a file read in order): the chunks in the next ahead bytes go to the read-ahead
 * workers, if set.
 */
ssize_t fs_read(fs_reader *rd, int64_t content, uint64_t size, uint64_t off, void *buf, size_t len, uint64_t ahead,
		struct err *e);

/*
 * A read served without copying: iov[0..n) point into cached chunks (held until
 * fs_vec_release), into buffers it owns (no cache), or into a static page of zeros (holes).
 */
#define FS_VEC_MAX 160
struct fs_vec {
	struct iovec iov[FS_VEC_MAX];
	int n;
	cache_ref *ref[FS_VEC_MAX]; /* per iov: the cache entry it points into, or NULL */
	unsigned char parts[FS_VEC_MAX]; /* per iov: CACHE_PASSED_* parts of the chunk it covers */
	uint8_t *own[FS_VEC_MAX];   /* per iov: a buffer to free, or NULL */
};

/*
 * Like fs_read (without read-ahead), into v instead of a buffer. Returns the bytes v covers: fewer than asked
 * (but more than 0) when v is full before the end; 0 at or past the end; <0 on error (v is
 * then empty). The caller calls fs_vec_release when done with the bytes.
 */
ssize_t fs_read_vec(fs_reader *rd, int64_t content, uint64_t size, uint64_t off, size_t len, struct fs_vec *v,
		    struct err *e);

/*
 * Hands the chunks of content in [from, until) to the read-ahead workers (none set: nothing).
 * A hint: errors are ignored, the read that needs the bytes reports them.
 */
void fs_read_ahead(fs_reader *rd, int64_t content, uint64_t from, uint64_t until);
/*
 * passed: the bytes were read by a reader going through the file in order, so the chunks it
 * covered whole (over one read or two) go first from the cache (cache_release_passed).
 */
void fs_vec_release(fs_reader *rd, struct fs_vec *v, int passed);

/*
 * lseek's SEEK_DATA (hole 0) or SEEK_HOLE (hole 1) from off in content (size bytes): the
 * offset found, or ERR_NOTFOUND when there is no data at or after off (ENXIO).
 */
int fs_seek(fs_reader *rd, int64_t content, uint64_t size, uint64_t off, int hole, uint64_t *out, struct err *e);

/* Writes the whole content to fd (bytes size), decoding ahead on all cores. */
int fs_copy_to_fd(fs_reader *rd, int64_t content, uint64_t size, int fd, struct err *e);

#endif
