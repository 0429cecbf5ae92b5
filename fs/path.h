/*
 * path.h: the path model of the backups, shared by the mount and by `pgtimefs ls/cat`.
 *
 *   ""                          the root: one directory per cluster
 *   CLUSTER                     one directory per complete snapshot, plus "latest"
 *   CLUSTER/latest              a symlink to the newest snapshot's name
 *   CLUSTER/TIME                one directory per node of that snapshot
 *   CLUSTER/TIME/NODE/...       the node's tree as stored
 *   CLUSTER/wal/NODE/FILE       the WAL files archived for a node (wal-push, wal-stream)
 *   CLUSTER/at/T/               a point-in-time view (fs/view.h), for T inside the window:
 *   CLUSTER/at/T/restore.json   what the view holds
 *   CLUSTER/at/T/NODE/...       the node's newest snapshot tree reaching T, with the archived
 *                               segments up to T in pg_wal/, recovery.signal, and
 *                               postgresql.auto.conf ending in a recovery block
 * "latest" is followed when it is not the last component. Lookups are single indexed
 * queries; listings are paged, so a directory of any size is never loaded whole.
 * Uses the caller's catalog handle: one thread per handle.
 */
#ifndef PGTIMEFS_FS_PATH_H
#define PGTIMEFS_FS_PATH_H

#include <stdint.h>
#include <sys/stat.h>

#include "catalog/catalog.h"
#include "file.h"

enum fs_kind {
	FS_ROOT,
	FS_CLUSTER,
	FS_SNAPSHOT,
	FS_LATEST,
	FS_ENTRY,
	FS_WALDIR,   /* CLUSTER/wal */
	FS_WALNODE,  /* CLUSTER/wal/NODE */
	FS_WALFILE,  /* CLUSTER/wal/NODE/FILE, or (view set) an archived file in at/T/NODE/pg_wal */
	FS_ATDIR,    /* CLUSTER/at (lists nothing) */
	FS_AT,	     /* CLUSTER/at/T */
	FS_AT_NODE,  /* CLUSTER/at/T/NODE: entry is the snapshot's root (named NODE) */
	FS_AT_PGWAL, /* CLUSTER/at/T/NODE/pg_wal: entry is the snapshot's pg_wal */
	FS_AT_FILE   /* restore.json, NODE/postgresql.auto.conf, NODE/recovery.signal (synth) */
};

struct fs_loc {
	enum fs_kind kind;
	int64_t cluster;
	char cluster_name[128];
	int64_t snapshot;
	char snapshot_name[48];
	int64_t snapshot_time_us;
	int64_t nb;		    /* FS_ENTRY: the node backup */
	struct catalog_entry entry; /* FS_ENTRY (a node's root shows the node's name) */
	int64_t node;		    /* FS_WALNODE, FS_WALFILE */
	char node_name[128];	    /* FS_WALNODE */
	struct catalog_wal wal;	    /* FS_WALFILE */
	char shown[64];		    /* FS_WALFILE in a view: its name there (a .partial as its segment) */
	int view;		    /* the at/ kinds: the view's number (fs/view.h); 0: none */
	int vnode;		    /* below a view's node: its index in the view */
	int synth;		    /* FS_AT_FILE: enum fs_synth */
};

/* Resolves a path ("/" separated; leading, trailing and double slashes ignored). */
int fs_resolve(catalog *c, const char *path, struct fs_loc *out, struct err *e);
/* Resolves name inside the directory dir (one step; "latest" is not followed). */
int fs_lookup(catalog *c, const struct fs_loc *dir, const char *name, struct fs_loc *out, struct err *e);
/* stat of a location: directories above the nodes are 0555 root-owned, times = snapshot time. */
void fs_stat(const struct fs_loc *l, struct stat *st);
/*
 * Inode numbers: a location's kind and catalog number, so the same file has the same number
 * for the life of a mount (and across remounts) without a table. The root is 1.
 */
uint64_t fs_ino(const struct fs_loc *l);
/* The inode number of a location of kind k whose catalog number is id (a cluster's for FS_LATEST). */
uint64_t fs_ino_of(enum fs_kind k, int64_t id);
/* The location of an inode number; ERR_NOTFOUND once its snapshot is gone. */
int fs_loc_of_ino(catalog *c, uint64_t ino, struct fs_loc *out, struct err *e);
/* Non-zero when the location never changes (a snapshot and everything inside it). */
int fs_immutable(const struct fs_loc *l);

/* The name a location has in its directory ("/" for the root). */
const char *fs_name(const struct fs_loc *l);
/* Like fs_stat, and st_blocks counts only the bytes that are not holes (a query). */
void fs_stat_full(catalog *c, const struct fs_loc *l, struct stat *st);
/* Non-zero for the kinds that are directories. */
int fs_is_dir(const struct fs_loc *l);
/* Non-zero for a regular file; *content and *size get its stored bytes (content 0 and size
 * too for a synthesized FS_AT_FILE: read it with fs_loc_synth). */
int fs_is_file(const struct fs_loc *l, int64_t *content, uint64_t *size);
/* The bytes of a synthesized file (FS_AT_FILE), malloc'd into *buf. */
int fs_loc_synth(fs_reader *rd, const struct fs_loc *l, uint8_t **buf, size_t *len, struct err *e);
/* Target of a FS_LATEST or symlink entry. */
const char *fs_link_target(const struct fs_loc *l);

/*
 * Lists a directory in name order (a cluster's snapshots oldest first, then "latest"),
 * calling cb for each child; cb returns non-zero to stop. after: resume after this name, or
 * after the child whose fs_resume_key this is ("" from the start).
 */
int fs_list(catalog *c, const struct fs_loc *dir, const char *after, int (*cb)(void *ctx, const struct fs_loc *child),
	    void *ctx, struct err *e);

/*
 * The key to resume a listing after child: its name, or for a snapshot its time and name
 * ("<time_us>/<name>"), so that a listing resumed after a snapshot deleted meanwhile goes on
 * in time order (a name alone would have to be looked up, and names do not sort by time:
 * "...20.5Z" sorts before "...20Z"). buf: at least FS_RESUME_KEY_MAX bytes.
 */
#define FS_RESUME_KEY_MAX 80
const char *fs_resume_key(const struct fs_loc *child, char *buf, size_t cap);

#endif
