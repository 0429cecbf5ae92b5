/*
 * node.h: the online backup of one PostgreSQL node, run on a thread of its own.
 *
 * Two paths, both ending in the same tree of entries under the node backup:
 * - streaming (no data_dir): a replication connection, a temporary physical slot that holds
 *   WAL from before the start, then BASE_BACKUP (fast checkpoint, WAL included, no manifest,
 *   server-side checksum checks off): the tar archives are parsed as they arrive and each
 *   member is chunked straight into the store (ingest streams), never spooled.
 * - local (data_dir on this host): one session runs pg_backup_start/pg_backup_stop with a
 *   temporary slot holding WAL; the data directory and its tablespaces are walked with
 *   PostgreSQL's exclusion rules, unchanged files reused; backup_label from the stop call and
 *   the WAL from start to stop (read from pg_wal, kept by the slot) complete the tree.
 * Relation pages are verified against their checksums on the way when the node has them.
 *
 * Threads: network and file reading run unlocked; every use of the catalog and the ingest
 * goes through the shared writer's mutex (one SQLite connection, one ingest). A node that
 * fails sets writer->failed; the others stop at their next step.
 */
#ifndef PGTIMEFS_BACKUP_NODE_H
#define PGTIMEFS_BACKUP_NODE_H

#include <pthread.h>
#include <stdint.h>

#include "backup/ingest.h"
#include "backup/pg.h"
#include "catalog/catalog.h"

struct backup_writer {
	pthread_mutex_t mu; /* guards c, g and failed */
	catalog *c;
	ingest *g;
	int failed;
};

/* With mu held: commits the step when enough was written (flush, COMMIT, BEGIN); fails when
 * another node failed. */
int backup_writer_checkpoint(struct backup_writer *w, struct err *e);

struct backup_damaged_page {
	char path[256]; /* relative to the data directory */
	uint32_t block; /* absolute block number in the relation fork */
};

struct backup_node {
	/* set by the caller */
	const char *name, *conninfo, *data_dir; /* data_dir NULL: streaming */
	struct backup_writer *w;
	int64_t nb;			   /* its node backup row */
	int64_t prev_nb, prev_root;	   /* the previous node backup (reuse, delta blocks), 0: none */
	int64_t prev_started_ns;
	int full, index;
	int stall_s;			   /* streaming: silence that fails the node; local: the longest statement (0: none) */
	const char *label;		   /* backup label text */
	/* results */
	int rc, stopped;		   /* stopped: gave up because another node failed */
	struct err err;
	struct ingest_stats st;
	int64_t root;
	uint32_t owner_uid, owner_gid; /* the data directory's owner (stream: the first tar member's) */
	int owner_known;
	struct pg_node_info info;
	uint64_t start_lsn, stop_lsn;
	uint32_t timeline;
	char *backup_label, *tablespace_map;
	struct backup_damaged_page *damaged;
	size_t ndamaged;
	uint64_t pages_checked, dirs, links, skipped;
	double seconds;
};

/* Thread main: backs up one node (arg is a struct backup_node); result in its fields. */
void *backup_node_run(void *arg);
/* Frees what the results own. */
void backup_node_release(struct backup_node *n);

#endif
