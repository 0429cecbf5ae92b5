/*
 * walarchive.h: WAL files archived one at a time (archive_command), stored like any file.
 *
 * backup_wal_push stores one file a server hands to its archive_command: it reads the whole
 * file (a 16 MiB segment, a .history, .backup or .partial file) and either finds it recorded
 * already for that node (same bytes: nothing to do; other bytes: ERR_EXISTS, never
 * overwritten) or stores it through an ingest (fixed page blocks for
 * segments), flushes every zone and commits its catalog row. It returns 0 only once the bytes
 * are durable in every zone and recorded. The caller holds the writer lock and passes a
 * writable catalog outside any transaction. Not thread-safe (one catalog handle).
 */
#ifndef PGTIMEFS_BACKUP_WALARCHIVE_H
#define PGTIMEFS_BACKUP_WALARCHIVE_H

#include <stdint.h>

#include "backup/walread.h"
#include "catalog/catalog.h"
#include "store/repo.h"

/* The kinds of file names an archive holds. */
enum wal_kind {
	WAL_SEGMENT = 1, /* 000000010000000000000003 */
	WAL_PARTIAL,	 /* 000000010000000000000003.partial */
	WAL_HISTORY,	 /* 00000002.history */
	WAL_BACKUP	 /* 000000010000000000000003.00000028.backup */
};

/*
 * The kind of a WAL file name (a base name, no directory) and its timeline; 0 when name is
 * none of the kinds above.
 */
int backup_wal_name_kind(const char *name, int64_t *timeline);

struct wal_push_result {
	int already;	   /* 1: the same bytes were recorded before: nothing stored */
	uint64_t size;	   /* bytes of the file */
	uint64_t new_bytes, stored_bytes;
	double seconds;
	double cpu_seconds;	   /* CPU time of the process (all threads) while storing */
	double index_seconds;	   /* of that, CPU time reading the WAL for the time index */
	int64_t first_commit_us, last_commit_us; /* as recorded (0: none) */
};

/* One WAL file's bytes for backup_wal_store. */
struct wal_store_req {
	const char *name;	  /* its WAL file name (no directory) */
	const uint8_t *data;
	size_t len;
	int times_given;	  /* 1: the commit times below are the caller's (a stream's reader that
				   * follows the WAL across segments); 0: the segment is read alone */
	int64_t first_commit_us, last_commit_us;
	const struct walread_restore_point *rps; /* with times_given: the restore points the caller's
						  * reader found in these bytes (recorded with them) */
	size_t nrps;
	int no_index;		  /* 1: do not read the WAL at all (benchmarks of the reader's cost) */
	int stream;		  /* a streamed file: a .partial replaces the node's earlier partials of its
				   * timeline (same name included); a segment removes them, in its transaction */
};

/*
 * Stores q->data as the WAL file q->name of cluster/node: the one store path of wal-push and
 * wal-stream. Same rules as backup_wal_push (idempotent for the same bytes, ERR_EXISTS for
 * other bytes, except a streamed .partial, which is replaced); durable in every zone before
 * its row is committed.
 */
int backup_wal_store(struct repo *r, catalog *c, const char *catalog_file, const char *cluster, const char *node,
		     const struct wal_store_req *q, struct wal_push_result *res, struct err *e);

/*
 * Where the bytes of the stored WAL file w end: one past its last non-zero byte (0 when it is
 * all zeros). A streamed .partial is a whole segment, zeros after what was received.
 */
int backup_wal_extent(const struct repo *r, catalog *c, const struct catalog_wal *w, uint64_t *extent, struct err *e);

/*
 * Whether data holds the bytes recorded for the WAL file w (a row of catalog c): 1 yes, 0 no,
 * < 0 on an error (a damaged content list, a stored blob no zone can give). A row with
 * WAL_DIGEST_CONTENT or WAL_DIGEST_ENCODED is checked piece by piece along its own content
 * list, so the answer does not depend on the repository's current block size: holes must be
 * zeros; a chunk's blob id is recomputed from the bytes with r's key (WAL_DIGEST_CONTENT), or
 * the stored blob is decoded and compared with them (WAL_DIGEST_ENCODED); and the list must
 * hash to the row's digest.
 */
int backup_wal_same_bytes(const struct repo *r, catalog *c, const struct catalog_wal *w, const uint8_t *data,
			  size_t len, struct err *e);

/*
 * The lines of the history file of timeline tli, in PostgreSQL's format: "parent<TAB>X/X<TAB>
 * reason" per ancestor, oldest first; blank lines and '#' comments are skipped. cb gets each
 * ancestor and the LSN where the timeline left it (a non-zero return stops: -2). Returns the
 * number of lines, or -1 when one is not of that form, the ancestors do not increase, or one
 * is not below tli (PostgreSQL refuses such a file too; it reads a line as fgets() does into
 * 1024 bytes, so a longer line goes on as a line of its own, here too).
 */
int backup_wal_history_parse(const uint8_t *data, size_t len, int64_t tli,
			     int (*cb)(void *ctx, int64_t parent, uint64_t end_lsn), void *ctx);

/*
 * Records, in the caller's transaction, the lines of the history file w (its bytes data) in the
 * catalog: the window follows a timeline only from one of its ancestors. A file PostgreSQL
 * cannot read (recovery would stop on it), an empty one included, gets one line with parent 0
 * and CATALOG_TLI_UNREADABLE, so the window never follows its timeline, and a warning naming
 * where ("cluster/node").
 */
int backup_wal_history_record(catalog *c, const struct catalog_wal *w, const uint8_t *data, size_t len,
			      const char *where, struct err *e);

/*
 * The lines of the timeline histories archived before catalog schema 9, read back from the
 * store and recorded, once per catalog (meta key "history-lines", set when all are read): the
 * first writer calls it, in a transaction of its own. A history whose blob cannot be read
 * leaves a warning and is tried again by the next writer; its timeline is followed unchecked
 * until then.
 */
int backup_wal_history_backfill(const struct repo *r, catalog *c, struct err *e);

/* A WAL file to push, mapped (read-only, populated). */
struct wal_file {
	const char *name; /* its base name: a WAL file name */
	void *data;
	size_t len;
};
/*
 * Maps the file at path (ERR_USAGE when its base name is not a WAL file name, ERR_NOTFOUND
 * when it is missing). Done before the repository is opened: the kernel populates the
 * mapping while OpenSSL warms up (crypto_warm_up). backup_wal_close unmaps.
 */
int backup_wal_open(const char *path, struct wal_file *f, struct err *e);
void backup_wal_close(struct wal_file *f);

/*
 * Stores f as the WAL file of its name for cluster/node (both created in the catalog when
 * new). ERR_EXISTS (with a hint) when that name is recorded with other bytes. A page of the
 * mapping that cannot be read (SIGBUS) ends the process with a message and status 1,
 * nothing recorded.
 */
int backup_wal_push(struct repo *r, catalog *c, const char *catalog_file, const char *cluster, const char *node,
		    const struct wal_file *f, struct wal_push_result *res, struct err *e);

#endif
