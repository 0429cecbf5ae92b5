/*
 * walread.h: a streaming reader of PostgreSQL 15 WAL segments, for the time index.
 *
 * A walread object follows a run of consecutive WAL segments fed as bytes in order, in pieces
 * of any size (a segment arriving off the network or read from a file). It checks every page
 * header (magic 0xD110, flags, page address; page and segment size from the first long page
 * header), reassembles the records that span pages and segments, and reports through callbacks
 * every transaction end (commit, abort, commit prepared, abort prepared) with its timestamp,
 * every restore point and every tablespace creation, each with the LSN where its record starts. A record is reported only when
 * its CRC-32C is right; it counts in the summary of the segment where it ends (the segment a
 * restore needs to replay it). At every segment end (and at walread_end) a summary of that
 * segment goes to a callback.
 *
 * Untrusted input: arbitrary bytes never crash the reader or make it allocate. Its memory is
 * the object alone (one page and a few KiB): of a record it keeps only the header section and the
 * first bytes of the main data, and only for the records it reports; all other record bodies
 * (up to 1 GiB each) are skipped as they stream past. A bad page or record loses at most the
 * records up to the next page that can be resynchronised on.
 *
 * Not thread-safe: one object per stream. Callbacks run inside walread_feed / walread_end.
 */
#ifndef PGTIMEFS_BACKUP_WALREAD_H
#define PGTIMEFS_BACKUP_WALREAD_H

#include <stddef.h>
#include <stdint.h>

/* Unix microseconds of PostgreSQL's epoch (2000-01-01 00:00:00 UTC). */
#define WALREAD_PG_EPOCH_US INT64_C(946684800000000)

enum walread_xact_kind {
	WALREAD_COMMIT = 0,
	WALREAD_ABORT = 1,
	WALREAD_COMMIT_PREPARED = 2,
	WALREAD_ABORT_PREPARED = 3,
};

/* A transaction end. */
struct walread_xact {
	enum walread_xact_kind kind;
	uint64_t lsn;     /* start of the record */
	uint64_t end_lsn; /* just past the record */
	uint32_t xid;     /* xl_xid of the record */
	int64_t time_us;  /* xact_time as Unix microseconds */
};

/* A restore point (pg_create_restore_point). */
struct walread_restore_point {
	uint64_t lsn;
	uint64_t end_lsn;
	int64_t time_us; /* rp_time as Unix microseconds */
	char name[65];   /* NUL-terminated */
};

/* A tablespace created (CREATE TABLESPACE: XLOG_TBLSPC_CREATE). Replaying it makes
 * pg_tblspc/<oid> a symlink to path (an in-place tablespace when path is empty). */
#define WALREAD_TBLSPC_PATH 1024 /* MAXPGPATH: a longer path is cut */
struct walread_tablespace {
	uint64_t lsn;
	uint64_t end_lsn;
	uint32_t oid;
	char path[WALREAD_TBLSPC_PATH + 1]; /* NUL-terminated */
};

/* A change of the settings a standby must match (XLOG_PARAMETER_CHANGE: a restart with new values) */
struct walread_params {
	uint64_t lsn;
	int32_t max_connections, max_worker_processes, max_wal_senders, max_prepared_xacts, max_locks_per_xact;
};

/* One segment as read. Times are 0 when the segment has no transaction end. */
struct walread_segment {
	uint32_t tli;           /* from walread_new, else the first page header */
	uint64_t segno;
	uint64_t bytes;         /* bytes of the segment that were fed */
	int64_t first_xact_us;  /* earliest and latest commit / abort timestamps */
	int64_t last_xact_us;
	uint64_t commits;       /* commits and commits prepared */
	uint64_t aborts;        /* aborts and aborts prepared */
	uint64_t restore_points;
	uint64_t records;       /* records ending in this segment (all kinds) */
	uint64_t bad_crc;       /* records of the reported kinds skipped for a wrong CRC */
	uint64_t bad_records;   /* records dropped: bad length, xl_prev, header section, broken continuation */
	uint64_t bad_pages;     /* pages with an invalid header (zero pages after the end of WAL included) */
	uint64_t end_lsn;       /* just past the last whole record ending in the segment, 0 if none */
	int ends_in_record;     /* a record continues past the end of the segment (or of what was fed) */
	int switched;           /* ended by an XLOG_SWITCH record */
};

struct walread_cb {
	void (*xact)(void *ctx, const struct walread_xact *x);
	void (*restore_point)(void *ctx, const struct walread_restore_point *rp);
	void (*segment)(void *ctx, const struct walread_segment *s);
	void *ctx;
	void (*tablespace)(void *ctx, const struct walread_tablespace *t); /* last: older initializers leave it NULL */
	void (*params)(void *ctx, const struct walread_params *p);	  /* likewise */
};

typedef struct walread walread;

/* A reader whose first byte is the start of segment segno of timeline tli. tli 0 means
 * unknown: the timeline and segment number are then taken from the first page header. Returns
 * NULL only when out of memory. */
walread *walread_new(uint32_t tli, uint64_t segno);
/* A reader whose first byte is at offset (a multiple of page_size) of segment segno of timeline
 * tli, with those sizes (no long page header is seen first): the tail of a segment, fed before
 * the next segment so that a record spanning the two is read. NULL for sizes PostgreSQL does
 * not allow, an offset not on a page or past the segment, or when out of memory. */
walread *walread_new_at(uint32_t tli, uint64_t segno, uint32_t seg_size, uint32_t page_size, uint64_t offset);
/* The next len bytes of the stream; callbacks in cb (any may be NULL) are called for what
 * they complete. Never fails: what cannot be read is counted in the segment summaries. */
void walread_feed(walread *r, const uint8_t *buf, size_t len, const struct walread_cb *cb);
/* End of the stream: reads a trailing partial page and reports the summary of the segment in
 * progress (if any byte of it was fed). Feeding after walread_end is ignored. */
void walread_end(walread *r, const struct walread_cb *cb);
/* The summary of the segment in progress so far. */
void walread_current(const walread *r, struct walread_segment *out);
/* 1 when a record whose start was read goes on past what was fed (its end is still to come);
 * 0 otherwise, also while skipping the rest of a record begun before the stream. */
int walread_in_record(const walread *r);
/* Segment size and WAL page size in use (defaults until a long page header is read). */
uint32_t walread_seg_size(const walread *r);
uint32_t walread_page_size(const walread *r);
/* A copy of r in its current state (NULL when out of memory): ending the copy (walread_end)
 * reports what r has been fed so far, a trailing partial page included, while r goes on. */
walread *walread_dup(const walread *r);
/* NULL ok. */
void walread_free(walread *r);

/* PostgreSQL's CRC-32C (Castagnoli, reflected), continued from crc; start with 0. */
uint32_t walread_crc32c(uint32_t crc, const void *data, size_t len);

#endif
