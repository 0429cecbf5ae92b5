/*
 * cluster.h: an online snapshot of every node of a cluster, then a cluster-wide restore point.
 *
 * backup_cluster records a 'running' snapshot with one node backup per node, runs one thread
 * per node (backup/node.h) that share one catalog transaction and one ingest through a
 * mutex, commits in steps, and once every node is done creates the restore point
 * (citus_create_restore_point on the coordinator where Citus is installed, with a
 * lock_timeout; pg_create_restore_point on every node otherwise). The snapshot is then named
 * after the restore point's time and becomes visible; a catalog copy goes to every zone. If
 * any node fails, the whole snapshot is abandoned: nothing is listed, its entries are
 * deleted, chunks already durable stay as garbage for pruning. The caller holds the writer
 * lock. Called from one thread.
 */
#ifndef PGTIMEFS_BACKUP_CLUSTER_H
#define PGTIMEFS_BACKUP_CLUSTER_H

#include "backup/node.h"
#include "store/repo.h"

struct backup_node_spec {
	const char *name;
	const char *conninfo;
	const char *data_dir; /* NULL: back up over the network (streaming) */
};

struct backup_opts {
	int full;	       /* local path: read every file */
	int progress;	       /* progress bar on a terminal */
	int lock_timeout_ms;   /* for citus_create_restore_point */
	int stall_s;	       /* a streaming node silent this long fails the backup (0: never) */
	const char *state_dir;
	const char *catalog_file;
};

struct backup_result {
	char name[48];		   /* the snapshot's directory name */
	int64_t snapshot, time_us;
	char restore_point[96];
	struct ingest_stats st;	   /* the whole run */
	int nnodes;
	struct backup_node *nodes; /* per node: positions, versions, totals, damaged pages */
	double seconds;
	uint64_t generation;
};

int backup_cluster(struct repo *r, catalog *c, const char *cluster, const struct backup_node_spec *specs, int n,
		   const struct backup_opts *o, struct backup_result *res, struct err *e);
void backup_result_release(struct backup_result *res);

/*
 * Creates a cluster-wide restore point named name (NULL: "pgtimefs-<time>") on the nodes and
 * records it in the catalog (c may be NULL: not recorded; snap: the snapshot it closes, or
 * 0). *name_out and *time_us get what was created.
 */
int backup_restore_point(catalog *c, const char *cluster, const struct backup_node_spec *specs, int n,
			 const char *name, int lock_timeout_ms, int64_t snap, char name_out[96], int64_t *time_us,
			 struct err *e);

#endif
