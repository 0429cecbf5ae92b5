/*
 * start.h: starting the restored nodes and checking they reached their target.
 *
 * restore_start_nodes runs as the OS user that owns the data directories (the caller
 * switches user first, in a child process when run as root). It starts every node with
 * pg_ctl (all at once, so they recover in parallel), waits for each to leave recovery
 * (pg_is_in_recovery() false) while its postmaster lives, repoints the Citus metadata of
 * the coordinator (citus_update_node: every primary of pg_dist_node to the restored node of
 * the same group, by socket directory and port), and checks that every node answers a
 * query. A node that fails gets its error and the last lines of its log in its result, and
 * every node started is then stopped, as on an interrupt (cancel): a failed start leaves no
 * server running. Not thread-safe (one call at a time).
 */
#ifndef PGTIMEFS_RESTORE_START_H
#define PGTIMEFS_RESTORE_START_H

#include <stdatomic.h>

#include "common/err.h"
#include "pgsetup.h"

struct restore_start_node {
	/* in */
	const char *name;
	const char *dir;	/* the data directory */
	const char *log;	/* pg_ctl -l */
	const char *socket_dir;
	int port;
	int citus;
	/* out */
	int started, promoted, answered;
	char reached[40];	/* pg_last_xact_replay_timestamp() in UTC ISO-8601, "" for none */
	char error[1024];	/* what went wrong, "" when nothing */
	char log_tail[2048];	/* the last lines of the server log when it failed */
};

/* Called with a line of news ("node w1: promoted"); may be NULL. */
typedef void (*restore_note_fn)(const char *line);

/*
 * Starts and checks nodes[0..n); returns 0 when every node promoted and answered, else
 * ERR_IO with e naming the first failed node (details in each node's result). cancel (may be
 * NULL) is looked at while the nodes recover: once set, every started node is stopped and the
 * call fails with "interrupted".
 */
int restore_start_nodes(const struct restore_pg *pg, struct restore_start_node *nodes, int n, restore_note_fn note,
			const atomic_int *cancel, struct err *e);

#endif
