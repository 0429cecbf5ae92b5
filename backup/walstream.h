/*
 * walstream.h: continuous WAL archiving over the replication protocol (pgtimefs wal-stream),
 * what pg_receivewal does, into the repository.
 *
 * One thread per node. Each keeps a physical replication slot on its server (created when
 * missing), streams from where the catalog says the node's archive ends (the start of the
 * segment after its last complete one; else the slot's restart_lsn; else the server's
 * position; a server whose system identifier is not the archive's is refused), and stores:
 * - each complete segment, through backup_wal_store (the store path of wal-push), durable in
 *   every zone and recorded before its end is confirmed to the server as flushed (so the slot
 *   releases it), with the commit times of a WAL reader fed continuously across segments;
 * - the segment in progress every partial_interval seconds as <segment>.partial (full segment
 *   size, zero after the bytes received, as pg_receivewal writes it), one row per node and
 *   timeline, replaced as it grows and dropped in the transaction of its complete segment;
 * - at a timeline switch (the server ends the timeline: a promotion), the old timeline's last
 *   segment as its final .partial and the new timeline's .history file, then streams on.
 * A server on a newer timeline than the archive's resumes where its history says: a server
 * whose history does not name the archive's timeline is refused; an archive that went past
 * the server's switch point streams again from that point's segment (walstream_resume_point).
 * Connections that break are reopened with a backoff (1 s doubling to 30 s) and resume from
 * the catalog. The writer lock is taken for each store only, so a backup can run: the stream
 * then waits (keeping its connection alive), its slot holding the WAL meanwhile.
 *
 * Memory: one segment buffer per node. The catalog handle and the repository are shared by
 * the node threads through one mutex.
 */
#ifndef PGTIMEFS_BACKUP_WALSTREAM_H
#define PGTIMEFS_BACKUP_WALSTREAM_H

#include <signal.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "common/err.h"
#include "store/repo.h"

struct walstream_node {
	const char *name;
	const char *conninfo; /* opened with replication=true */
	const char *slot;     /* NULL or "": pgtimefs_<node> (see walstream_slot_name) */
};

/* What was stored (reported to on_store with the writer lock held). */
struct walstream_event {
	const char *node;
	const char *file;	/* the WAL file name stored */
	int kind;		/* enum wal_kind (walarchive.h) */
	int final;		/* a .partial that ends a timeline: it will not grow */
	uint64_t size;		/* bytes stored */
	uint64_t received;	/* bytes of WAL in it (a partial: received so far) */
	uint64_t end_lsn;	/* just past its last byte received */
	uint64_t new_bytes;	/* bytes new to the repository */
	int already;		/* recorded before with the same bytes */
	int64_t received_us;	/* when its last byte arrived (Unix us) */
	int64_t stored_us;	/* when it was durable and recorded */
	int64_t first_commit_us, last_commit_us;
	double seconds;		/* time to store */
};

struct walstream_opts {
	const char *cluster;
	const char *state_dir;	   /* of the writer lock */
	const char *catalog_file;
	double partial_interval;   /* seconds between partial stores; <= 0: none */
	uint64_t until_lsn;	   /* > 0: a node stops once everything before it is stored */
	double duration;	   /* > 0: stop after that many seconds */
	int no_index;		   /* do not read the WAL for commit times (benchmarks) */
	volatile sig_atomic_t *stop; /* set (by a signal handler) to stop cleanly; may be NULL */
	void (*on_store)(void *ctx, const struct walstream_event *ev); /* may be NULL */
	void (*on_log)(void *ctx, const char *node, const char *msg);  /* may be NULL: stderr */
	void *ctx;
};

/*
 * Where a stream resumes on a server on timeline server_tli, whose history file (the answer
 * to TIMELINE_HISTORY) is hist, when the archive (or the slot) ends at *start, a segment
 * start, on the older timeline *tli. Returns:
 *   0: *tli becomes the timeline of the server's history that holds *start. When that
 *      timeline went on in the archive past the point where the server's history left it
 *      (WAL the server never had: an old primary's last writes, archived after a failover),
 *      *start first moves back to the segment start of that switch point, which *fork gets
 *      (else 0): the new timeline is then stored from its first segment, and the window can
 *      follow it there. With keep_start (the server no longer has that segment) *start stays,
 *      *fork is still set, and *tli is the timeline that holds *start: a gap, but progress;
 *   1: *tli is not one of the server's ancestors (another history: refuse);
 *  -1: hist is not a history file.
 * Nothing changes when *tli >= server_tli.
 */
int walstream_resume_point(const char *hist, size_t len, uint32_t server_tli, uint32_t seg_size, int keep_start,
			   uint32_t *tli, uint64_t *start, uint64_t *fork);

/* The default slot name of a node: "pgtimefs_" + the node name lowercased, every character
 * outside [a-z0-9_] as '_', at most 63 characters. */
void walstream_slot_name(const char *node, char out[64]);

/*
 * Streams every node until stopped (o->stop, o->duration, o->until_lsn reached on every
 * node). Returns 0 after a clean stop (every partial flushed), or the error of the first node
 * that failed for a reason a retry cannot fix (other bytes under an archived name, a refused
 * connection, a server whose system identifier changed); a failed node stops them all.
 * c is a writable catalog; the caller does not hold the writer lock.
 */
int backup_walstream(struct repo *r, catalog *c, const struct walstream_node *nodes, int n,
		     const struct walstream_opts *o, struct err *e);

#endif
