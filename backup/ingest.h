/*
 * ingest.h: file data into the store and the catalog, on all cores.
 *
 * The owner thread feeds files; a pool of workers cuts nothing but computes blob ids,
 * looks them up in the catalog (a read-only connection per worker), and compresses and
 * seals the chunks that are new. Results come back in order to the owner thread, which
 * appends new blobs to the open pack and records chunk rows and the file's content list.
 * Full packs are written to every zone by a background thread while the next one fills.
 *
 * Transactions are the caller's: it opens one on the catalog, feeds files, and before it
 * commits calls ingest_flush(), which writes the open pack and fsyncs the zones' directories,
 * so a commit only ever records data that is durable in every zone. If anything fails the
 * caller rolls back: packs already written are then unreferenced garbage, never half
 * recorded. Memory is bounded by the pool depth and two packs. One thread at a time calls
 * into an ingest (the owner, or callers serializing with a lock of their own).
 */
#ifndef PGTIMEFS_BACKUP_INGEST_H
#define PGTIMEFS_BACKUP_INGEST_H

#include <stdint.h>

#include "catalog/catalog.h"
#include "common/progress.h"
#include "store/repo.h"

struct ingest_stats {
	uint64_t files;	       /* files stored (read or reused) */
	uint64_t files_reused; /* unchanged files not read at all */
	uint64_t bytes;	       /* logical bytes of the files */
	uint64_t bytes_read;   /* bytes read from disk */
	uint64_t chunks, new_chunks;
	uint64_t new_bytes;    /* raw bytes of new chunks */
	uint64_t stored_bytes; /* sealed bytes appended to packs (per zone) */
	uint64_t packs;
	uint64_t delta_chunks; /* new chunks stored as deltas against a previous version */
};

typedef struct ingest ingest;

/*
 * Starts the workers. catalog_file is the catalog's path (workers open it read-only); c is
 * the owner's writable handle. progress may be NULL.
 */
int ingest_new(struct repo *r, catalog *c, const char *catalog_file, struct progress *progress, ingest **out,
	       struct err *e);
/* Stops the workers; a pack still open is dropped (not recorded). NULL ok. */
void ingest_free(ingest *g);

/*
 * Stores the file open at fd as it reads (holes found with SEEK_HOLE are kept as holes). paged selects fixed page-aligned blocks. *content gets the content list (0 for
 * an empty file) and *size the bytes actually stored (a file that grows or shrinks while
 * read is stored as read).
 */
int ingest_file(ingest *g, int fd, int paged, int64_t *content, uint64_t *size, struct err *e);

/* Sees every block of file data as ingest_file_observed reads it (e.g. page checksums). */
struct ingest_observer {
	void (*fn)(void *ctx, uint64_t off, const uint8_t *data, size_t len);
	void *ctx;
};
/*
 * ingest_file, showing what it reads to ob (NULL: none). base (0: none) is the content list
 * of the file's previous version: with delta blocks on (repository config) and a paged file,
 * a changed block is stored as a delta against the same block of base where that is much
 * smaller (docs/design-notes.md, "Delta blocks").
 */
int ingest_file_observed(ingest *g, int fd, int paged, const struct ingest_observer *ob, int64_t base,
			 int64_t *content, uint64_t *size, struct err *e);

/*
 * Whether ingest_file reads a file of this size with O_DIRECT (large relation and WAL files,
 * when the kernel has Linux AIO): such a file gains nothing from the page cache's
 * read-ahead (see docs/design-notes.md, "Measured choices in the write path").
 */
int ingest_reads_direct(const ingest *g, int paged, uint64_t size);

/*
 * Streams: a file whose bytes are pushed as they arrive (a tar member read off the network),
 * never spooled. Buffers at most two maximal chunks per stream. Several streams may be open
 * at once (one per node), interleaved with ingest_file calls, as long as every call on the
 * ingest comes from one thread at a time (the caller serializes). _end gives what
 * ingest_file gives; _end and _abort free the stream.
 */
typedef struct ingest_stream ingest_stream;
int ingest_stream_begin(ingest *g, int paged, ingest_stream **out, struct err *e);
int ingest_stream_write(ingest_stream *s, const void *data, size_t len, struct err *e);
/*
 * Like ingest_stream_write, but whole blocks of a paged stream go to the workers without a
 * copy: data must stay valid and unchanged until ingest_stream_end or ingest_stream_abort
 * returns (both wait for every job). A partial block is buffered as usual.
 */
int ingest_stream_write_borrowed(ingest_stream *s, const void *data, size_t len, struct err *e);
int ingest_stream_end(ingest_stream *s, int64_t *content, uint64_t *size, struct err *e);
/* Adds one piece (len bytes; id NULL for a hole) to a content hash (docs/format.md). */
void ingest_content_hash_piece(crypto_sha *sha, uint64_t len, const uint8_t *id);
/* Ends a content hash with the content's total size; sha is reset. */
void ingest_content_hash_end(crypto_sha *sha, uint64_t total, uint8_t out[32]);
/* ingest_stream_end that also gives the content hash (docs/format.md) of a non-empty stream. */
int ingest_stream_end_hash(ingest_stream *s, int64_t *content, uint64_t *size, uint8_t hash[32], struct err *e);
void ingest_stream_abort(ingest_stream *s); /* NULL ok */
/* The previous version's content list for delta blocks (see ingest_file_observed); before any write. */
void ingest_stream_set_base(ingest_stream *s, int64_t base);
/*
 * Before any write: the stream holds WAL, data that rarely repeats and compresses well. Its
 * chunks get encoded ids (pack_blob_encode_eid, docs/format.md "Blob ids"), so each is
 * compressed before it is looked up (a chunk stored already costs its compression), and no
 * deltas. A paged stream is cut in blocks of the largest chunk size (a multiple of the block
 * size, 256 KiB by default): a quarter of the blobs, rows and handovers of 64 KiB blocks
 * (docs/design-notes.md, "wal-push: encoded ids and larger blocks").
 */
void ingest_stream_set_wal(ingest_stream *s);

/*
 * Totals of files begun from now on are also added to *acct (NULL: only the run's totals),
 * so callers that feed several sources into one ingest can tell them apart.
 */
void ingest_account(ingest *g, struct ingest_stats *acct);

/*
 * Finishes every chunk in flight, writes the open pack to every zone, waits for all pack
 * writes and fsyncs directories. Content lists of open streams stay unfinished (no hash):
 * a commit then may hold them, and the cleanup of a crashed run deletes them.
 */
int ingest_flush(ingest *g, struct err *e);
/* Forgets chunks recorded in the transaction just committed (call after each commit). */
void ingest_committed(ingest *g);
/* Non-zero when enough has been written since the last commit that the caller should commit. */
int ingest_due(const ingest *g);

const struct ingest_stats *ingest_stats(const ingest *g);
/* Counts a file that was reused without reading. */
void ingest_count_reused(ingest *g, uint64_t size);

#endif
