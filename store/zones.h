/*
 * zones.h: the N directories (zones) that each hold a full copy of the repository.
 *
 * Writes go to every zone and succeed only when every zone has the file durably: each copy
 * is written under a temporary name, fsynced and renamed; the directories touched are
 * fsynced by zones_sync() before the caller records anything that depends on them (the
 * catalog commit). A zone that fails makes the write fail with a message naming the zone;
 * copies already made elsewhere are removed again. Reads try the zones in order.
 * Zones are untrusted: callers authenticate what they read.
 *
 * Thread-safety: zones_put/zones_sync are for one writer thread; reads are thread-safe.
 */
#ifndef PGTIMEFS_STORE_ZONES_H
#define PGTIMEFS_STORE_ZONES_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ZONES_MAX 8

typedef struct zones zones;

/* Takes the zone paths (copied); they need not exist yet. */
zones *zones_new(const char *const *paths, int n);
void zones_free(zones *z);
int zones_count(const zones *z);
const char *zones_path(const zones *z, int i);

/* Full path of relpath in zone i, into out (PATH_MAX bytes). */
void zones_file(const zones *z, int i, const char *relpath, char *out, size_t cap);

/* Creates every zone directory (and packs/, keys/, catalog/ inside). */
int zones_create(zones *z, struct err *e);

/*
 * Writes data as relpath in every zone (temporary name, fsync, rename); the containing
 * directory is remembered for zones_sync(). On failure nothing is left in any zone.
 */
int zones_put(zones *z, const char *relpath, const void *data, size_t len, struct err *e);
/*
 * Like zones_put, for a large local file: streams local_path (any size, bounded memory) to
 * relpath in every zone, but each zone on its own: a zone that cannot be written fails the
 * call (the first failure is reported, naming its zone) and the others still get the file.
 * written (may be NULL) gets a bit (1 << zone) per zone that has it.
 */
int zones_put_file(zones *z, const char *relpath, const char *local_path, unsigned *written, struct err *e);
/*
 * Like zones_put, writing with O_DIRECT so the copies bypass the page cache (no kernel copy,
 * no eviction of the database's cache). data must be 4 KiB aligned and readable up to the
 * next multiple of 4 KiB past len. Where a filesystem refuses O_DIRECT (tmpfs, ...), the
 * copy is written through the page cache as zones_put does.
 */
int zones_put_direct(zones *z, const char *relpath, const void *data, size_t len, struct err *e);
/* Same, but only in zone i (repair). */
int zones_put_one(zones *z, int i, const char *relpath, const void *data, size_t len, struct err *e);
/*
 * A file written to every zone in pieces as it is made (a pack while it fills, so that little
 * is left to write when it is complete): zones_stream_open creates a temporary file in reldir
 * of every zone; zones_stream_write appends to every copy (O_DIRECT where the piece and the
 * file offset are 4 KiB aligned and the filesystem takes it, as zones_put_direct); and
 * zones_stream_finish appends the last piece (tail, len bytes; readable up to the next
 * multiple of 4 KiB), fsyncs every copy and renames it to relpath (same filesystem as
 * reldir), with zones_put's guarantees: on failure nothing is left in any zone. finish and
 * abort free the stream (abort removes the copies). One thread at a time, as zones_put, by
 * a process that holds the writer lock: the first open also removes reldir's temporaries
 * of processes that are gone (a writer killed while its pack filled).
 */
typedef struct zones_stream zones_stream;
int zones_stream_open(zones *z, const char *reldir, zones_stream **out, struct err *e);
int zones_stream_write(zones_stream *s, const void *data, size_t len, struct err *e);
int zones_stream_finish(zones_stream *s, const void *tail, size_t len, const char *relpath, struct err *e);
void zones_stream_abort(zones_stream *s); /* NULL ok */
/* fsyncs every directory written since the last call. */
int zones_sync(zones *z, struct err *e);
/* Removes relpath from every zone (missing is fine). */
int zones_remove(zones *z, const char *relpath, struct err *e);

/*
 * Reads a small file (at most max bytes) from the first zone that has it; *zone gets its
 * index. ERR_NOTFOUND when no zone has it.
 */
int zones_get_small(const zones *z, const char *relpath, size_t max, uint8_t **out, size_t *len, int *zone,
		    struct err *e);

/* pread of len bytes at off from relpath in zone i. ERR_NOTFOUND if the file is missing. */
int zones_pread(const zones *z, int i, const char *relpath, void *buf, size_t len, uint64_t off, struct err *e);

/*
 * Removes reldir/.tmp-<pid>-* files of processes that are gone, in every zone: what a writer
 * killed while writing (kill -9, a power cut) left. Called by the next writer, which holds the
 * writer lock, so no other writer of this repository runs here; a live pid is left alone.
 */
void zones_sweep_stale(zones *z, const char *reldir);

/* Names in directory reldir of zone i, sorted, without dot files; *names freed by caller. */
int zones_list(const zones *z, int i, const char *reldir, char ***names, size_t *n, struct err *e);
void zones_list_free(char **names, size_t n);

#endif
