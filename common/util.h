/*
 * util.h: small helpers shared by every folder: hex encoding, little-endian integers,
 * checked allocation, whole-file I/O for small files (configs, key files), durable
 * writes (temporary name, fsync, rename, fsync of the directory) and mkdir -p.
 *
 * Only small files go through util_read_small(): it refuses anything over max bytes, so
 * no caller reads a large file whole by accident. All functions are thread-safe.
 */
#ifndef PGTIMEFS_COMMON_UTIL_H
#define PGTIMEFS_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Writes 2*n lowercase hex digits and a NUL to out (which holds 2*n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Parses exactly 2*n hex digits; returns 0 or -1 on a bad digit or length. */
int hex_decode(const char *in, uint8_t *out, size_t n);

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* malloc/calloc/realloc/strdup that abort with a message on failure (tiny sizes only). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Reads a whole file of at most max bytes into a new NUL-terminated buffer (*out, *len). */
int util_read_small(const char *path, size_t max, uint8_t **out, size_t *len, struct err *e);

/* Writes all of buf to fd, retrying on EINTR and short writes. Returns 0 or -1 with errno. */
int util_write_all(int fd, const void *buf, size_t len);
/* pwrite of all len bytes at off (retried on EINTR and short writes); 0 or -1 with errno. */
int util_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* pread of exactly len bytes; returns 0, or -1 with errno (EIO-like ENODATA on short read). */
int util_pread_all(int fd, void *buf, size_t len, uint64_t off);

/*
 * Durably writes buf as path: writes dir/.tmp-<random>, fsyncs it, renames it over path and,
 * when sync_dir is set, fsyncs the directory. On failure the temporary file is removed and
 * path is untouched.
 */
/*
 * Creates and opens (O_WRONLY, O_EXCL, 0600) a new temporary file in dir named
 * .tmp-<pid>-<random>, its path in tmp (cap bytes). The random part comes from getrandom(2),
 * so a leftover of an earlier process with the same pid (a service started at boot) is not
 * met again; a name met anyway is passed over. -1 with errno on failure (tmp names the last try).
 */
int util_open_tmp(const char *dir, char *tmp, size_t cap);
int util_write_durable(const char *path, const void *buf, size_t len, int sync_dir, struct err *e);

/* fsyncs a directory. */
int util_fsync_dir(const char *dir, struct err *e);
/*
 * Asks the kernel to read [off, off+len) of fd into the page cache in the background
 * (POSIX_FADV_WILLNEED, in steps: one request reads at most the device's read-ahead window).
 * A hint: errors are ignored.
 */
void util_readahead_fd(int fd, uint64_t off, uint64_t len);
/* The same for the first max bytes of the file at path (nothing if it cannot be opened). */
void util_readahead(const char *path, uint64_t max);

/* mkdir -p with the given mode. */
int util_mkdir_p(const char *path, unsigned mode, struct err *e);

/* Removes a tree (rm -rf); missing is fine. */
int util_rm_rf(const char *path, struct err *e);

/* Wall clock in microseconds since the epoch, and a monotonic clock in seconds. */
int64_t util_now_us(void);
double util_mono(void);
/* CPU seconds used so far by the calling thread, and by the whole process. */
double util_thread_cpu(void);
double util_process_cpu(void);

/* Formats a byte count as "12.3 MiB" into out (at least 16 bytes). */
void util_human_bytes(uint64_t n, char *out, size_t cap);

#endif
