/*
 * restore.h: `pgtimefs restore`: a cluster at time T, from the mount's at/T view, as new
 * data directories one per node, with default server parameters and the door shut.
 *
 * The steps and the target's states:
 *
 *   checks (mount, cluster, at/T, restore.json, local PostgreSQL/Citus, empty target, room)
 *     -> DIR/RESTORE-INCOMPLETE written; DIR/<node>/ made, each with RESTORE-INCOMPLETE
 *     -> copy of every node in parallel (global/pg_control held back under another name,
 *        so no node directory can start)
 *     -> every node's pg_wal/ read: a tablespace its replay would create outside the new
 *        cluster stops the restore here (walscan.h; unless allow_tablespace_links)
 *     -> configuration rewritten per node, DIR/pgtimefs-cluster.conf written, syncfs
 *     -> pg_control put in place in every node
 *     -> [--start: nodes started, promoted, Citus repointed, checked]
 *     -> the markers removed: the restore is complete.
 *
 * Any failure, or *cancel set during the copy, stops there and leaves the markers (with the error appended to
 * DIR/RESTORE-INCOMPLETE): a failed or interrupted restore never looks whole. The restore
 * reads only the mount (plus the local PostgreSQL installation); it writes no catalog.
 * Threads: one copy thread per node, joined before restore_run returns; the start phase runs
 * in a child process as the servers' OS user. Call from a single-threaded program.
 */
#ifndef PGTIMEFS_RESTORE_RESTORE_H
#define PGTIMEFS_RESTORE_RESTORE_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/err.h"
#include "start.h"

struct restore_opts {
	const char *mount;	/* MOUNT */
	const char *cluster;	/* C */
	const char *time;	/* T as typed */
	const char *target;	/* DIR */
	const char *name;	/* the new cluster's name; NULL: C-restored-<T compact> */
	const char *pg_bin;	/* NULL: /usr/lib/postgresql/<major>/bin, then pg_config */
	const char *socket_dir; /* NULL: the server's default */
	int port;		/* first port; 0: the first free run from 5433 */
	int consistent, start;
	int allow_tablespace_links; /* restore even when the WAL creates a tablespace outside (walscan.h) */
	int progress;		/* draw a progress bar (a terminal, not --json/--quiet) */
	restore_note_fn note;	/* news lines, may be NULL */
	atomic_int *cancel;	/* set (e.g. by a signal handler) to stop the copy; may be NULL */
};

struct restore_node_result {
	char name[256];
	char dir[RESTORE_PATH_MAX];
	int port;
	uint64_t bytes, files;
	char reached[40];  /* with --start: the last replayed transaction's time */
	char error[1024];
	char log_tail[2048];
};

struct restore_result {
	char cluster[256];
	char name[256];		/* the new cluster */
	char time[40];		/* T normalized */
	char snapshot[64];
	char target_kind[16];	/* "time", "end" or "restore-point" */
	char target_time[40];	/* T, or the restore point's time */
	char restore_point[256];/* with --consistent */
	char pg_version[64], citus_version[64];
	char socket_dir[RESTORE_PATH_MAX];
	char conf[RESTORE_PATH_MAX + 32]; /* DIR/pgtimefs-cluster.conf */
	char user[64];
	uint64_t bytes;
	double seconds;
	int started;
	struct restore_node_result *nodes;
	int nnodes;
};

/* Runs the restore; r is filled as far as it got (free with restore_result_free). */
int restore_run(const struct restore_opts *o, struct restore_result *r, struct err *e);

void restore_result_free(struct restore_result *r);

#endif
