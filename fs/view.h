/*
 * view.h: the point-in-time views CLUSTER/at/T/ of the path model: what each one shows.
 *
 * A view is made the first time a path names CLUSTER/at/T with T inside the cluster's
 * restorable window (catalog/window.h). For each node of the cluster it holds the newest node
 * backup whose run of archived WAL reaches T, the run cut at the first segment with a commit
 * after T, the tree entries it overlays (the root, pg_wal, postgresql.auto.conf), the
 * recovery block appended to postgresql.auto.conf, and the text of restore.json.
 *
 * Views live in a process-wide table, numbered from 1 in the order they are made, at most
 * FS_VIEW_MAX of them, never changed or freed while the process runs: the inode numbers of
 * the at/ view are made of these numbers (path.c), and stay valid for the life of the mount.
 * A view is fixed when it is made: WAL archived later does not change it (a remount does).
 * The table is keyed by (cluster number, T): one catalog per process.
 * Thread-safe: the table is guarded by a mutex; a view, once returned, is read-only.
 */
#ifndef PGTIMEFS_FS_VIEW_H
#define PGTIMEFS_FS_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "catalog/window.h"
#include "file.h"

#define FS_VIEW_MAX 4095

/* An entry of a snapshot's tree the view shows or changes (id 0: the snapshot has none). */
struct fs_view_entry {
	int64_t id, content;
	uint64_t size;
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
};

struct fs_view_node {
	int64_t node;
	char name[128];
	struct window_run run;	   /* its node backup and the segments shown */
	struct fs_view_entry root; /* the snapshot's root directory of the node */
	struct fs_view_entry pgwal, conf;
	int target_time;	   /* 1: recovery_target_time = T; 0: replay to the end of the WAL shown */
	int tablespaces;	   /* 1: pg_tblspc/ holds a tablespace (a directory) */
	char block[512];	   /* appended to postgresql.auto.conf */
	size_t block_len;
	/* the run's last segment when it is a .partial: its row as the view was made (id 0:
	 * none). wal-stream replaces that row as the segment grows and deletes it once the
	 * segment is complete; the view keeps these bytes, which end where they ended at T */
	struct catalog_wal last_partial;
};

struct fs_view {
	int id; /* 1..FS_VIEW_MAX */
	int64_t cluster;
	char cluster_name[128];
	int64_t t_us;
	char name[48];	   /* T as UTC ISO-8601 */
	char spelling[64]; /* the name in at/ it was looked up by (each spelling of T is a view of
			    * its own: a directory has one parent, so one name) */
	int nnodes;
	struct fs_view_node *nodes;
	char *json; /* restore.json */
	size_t json_len;
};

/*
 * The view of cluster at t_us looked up in at/ as spelling (a snapshot's name, the time with
 * microseconds, with an offset...), made when new: each spelling has its own view, and so its
 * own inode numbers, since a directory the kernel knows under two names is moved between
 * them. ERR_NOTFOUND when t_us is outside the cluster's restorable window (or the cluster has
 * no node backup); ERR_NOSPC when the table is full (remount).
 */
int fs_view_get(catalog *c, int64_t cluster, const char *cluster_name, int64_t t_us, const char *spelling,
		const struct fs_view **out, struct err *e);
/* A view by its number; NULL when there is none. */
const struct fs_view *fs_view_by_id(int id);
/* The index in v->nodes of node, or -1. */
int fs_view_node_index(const struct fs_view *v, int64_t node);

/*
 * Whether the WAL row w (of the view node vn) is shown in its pg_wal: a segment of the run on
 * the run's timeline (the .partial that ends a run under its segment name: the row
 * vn->last_partial only, when w has an id), or the .history file of a timeline the run is on
 * above 1. shown gets the name it has there.
 */
int fs_view_wal_shown(const struct fs_view_node *vn, const struct catalog_wal *w, char shown[64]);
/* The stored name of the WAL file shown as `shown` in the view node's pg_wal, if one is. */
int fs_view_wal_name(const struct fs_view_node *vn, const char *shown, char name[64]);

enum fs_synth { FS_SYNTH_JSON = 1, FS_SYNTH_CONF, FS_SYNTH_SIGNAL };
/* Size of a synthesized file of view node vn (vn NULL for restore.json). */
uint64_t fs_view_synth_size(const struct fs_view *v, const struct fs_view_node *vn, enum fs_synth s);
/* Its bytes (malloc'd into *buf): the stored postgresql.auto.conf is read through rd. */
int fs_view_synth(fs_reader *rd, const struct fs_view *v, const struct fs_view_node *vn, enum fs_synth s,
		  uint8_t **buf, size_t *len, struct err *e);

#endif
