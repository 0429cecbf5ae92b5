/*
 * window.h: the restorable window of a cluster, computed from the catalog.
 *
 * A node can be restored to time T when one of its complete node backups, whose snapshot time
 * S is <= T, is followed by a contiguous run of archived WAL segments that reaches T:
 * - the run starts at the segment holding the node backup's start LSN, on its timeline;
 * - it goes on segment by segment while the next segment number is archived, on the current
 *   timeline or on a higher one whose `.history` file is archived (a promotion: the run follows
 *   the newest such timeline, as recovery_target_timeline = 'latest' does) and descends from
 *   the current one: its history's lines (catalog_wal_history_of) name the current timeline,
 *   left at or after the start of that segment and the backup's stop LSN, and it begins by
 *   the end of that segment (a timeline without recorded lines is followed unchecked);
 * - a missing segment ends it; a `.partial` ends it too (it is the last segment shown);
 * - its end time is the last commit (or abort) time found in its segments, at least S.
 * The node backup gives the interval [S, end]. A node's window is the union of the intervals
 * of its node backups (merged when they touch or overlap); the gaps are what lies between.
 * A node without archived WAL has the instants of its snapshots as its window.
 * The cluster's window is the intersection of the windows of its nodes (those with at least
 * one complete node backup).
 *
 * Memory: segments are streamed through one ordered query per run (never loaded); a run that
 * starts inside the previous run of the same node, on the timeline that run ends on, is not
 * walked again. The interval lists kept
 * are one entry per snapshot at most.
 *
 * Uses the caller's catalog handle (one thread per handle); nothing is written.
 */
#ifndef PGTIMEFS_CATALOG_WINDOW_H
#define PGTIMEFS_CATALOG_WINDOW_H

#include <stdint.h>

#include "catalog.h"

/* timeline switches a run follows (more end the run) */
#define WINDOW_TLI_MAX 16

struct window_interval {
	int64_t from_us, to_us; /* both restorable, from_us <= to_us */
};

/* The run of archived segments after one node backup. */
struct window_run {
	struct catalog_nb_pos nb;
	uint32_t seg_size;	  /* 0: no start segment (no archived WAL, or no start LSN): empty run */
	int64_t start_segno;	  /* the segment of the start LSN */
	int64_t last_segno;	  /* the last segment of the run; -1: empty run */
	int last_partial;	  /* the last segment is a .partial (name in last_name) */
	char last_name[64];	  /* the stored name of the last segment */
	int64_t last_id;	  /* and its wal row (a .partial's is replaced as it grows) */
	int64_t last_commit_us;	  /* newest commit/abort time in the run's segments, 0: none */
	int64_t end_us;		  /* max(snapshot time, last_commit_us) */
	int reaches;		  /* window_run with a target: cut at the first segment with a commit after it */
	int ntl;		  /* timelines the run is on, in order: tl[i] from segment tl_from[i] */
	int64_t tl[WINDOW_TLI_MAX], tl_from[WINDOW_TLI_MAX];
};

/* "0/2000028" -> LSN; -1 when it is not one. */
int64_t window_parse_lsn(const char *s);

/*
 * The run after node backup nb of node. target_us: INT64_MAX for the whole run; otherwise the
 * walk stops after the first segment that has a commit later than target_us (out->reaches = 1),
 * which is the last segment a recovery to target_us needs.
 */
int window_run(catalog *c, const struct catalog_nb_pos *nb, int64_t target_us, struct window_run *out, struct err *e);
/* The timeline the run is on at segment segno (the start timeline before the run). */
int64_t window_run_tli(const struct window_run *r, int64_t segno);

/*
 * The window of a node: its intervals in time order, merged, through cb (non-zero stops).
 * *runs (may be NULL) gets how many node backups it has.
 */
int window_node(catalog *c, int64_t node, int (*cb)(void *ctx, const struct window_interval *iv), void *ctx,
		int *runs, struct err *e);

/*
 * Who was in a cluster when, loaded once (two queries). At a time T the members are:
 * - the nodes of the newest online snapshot (a cluster backup: every configured node) at or
 *   before T, and of the offline snapshots after it up to T;
 * - and each node with an online backup after T whose archived WAL began at or before T: it
 *   was archiving for the cluster then, though a snapshot that showed it may have been deleted.
 * window_members_at gives them (ascending, malloc'd); n = 0 when no online snapshot is that
 * old: then every node with a backup counts. window_members_changes: the times at which the
 * answer can change, ascending (every snapshot's time, each node's WAL start).
 */
struct window_members;
int window_members_load(catalog *c, int64_t cluster, struct window_members **out, struct err *e);
void window_members_at(const struct window_members *m, int64_t t_us, int64_t **ids, size_t *n);
void window_members_changes(const struct window_members *m, int64_t **times, size_t *n);
void window_members_free(struct window_members *m);

/* The window of a cluster: the intersection of its members' windows, in time order. */
int window_cluster(catalog *c, int64_t cluster, int (*cb)(void *ctx, const struct window_interval *iv), void *ctx,
		   struct err *e);

/*
 * Per node, the newest node backup whose run covers t_us (snapshot time <= t_us <= run end),
 * with its run cut at t_us (window_run with target t_us). ERR_NOTFOUND when no node backup of
 * node covers t_us.
 */
int window_node_at(catalog *c, int64_t node, int64_t t_us, struct window_run *out, struct err *e);

#endif
