/*
 * walk.h: snapshot of a directory tree (the offline snapshot: a stopped server's data
 * directory, or any tree).
 *
 * Walks the tree in name order, storing regular files through ingest (holes kept),
 * directories, symlinks and special files with mode, owner, size and mtime. A file whose
 * size, mtime, ctime and inode equal those of the same path in the node's previous snapshot,
 * and whose mtime is older than that snapshot's start, is reused without being read
 * (unless full is set). Commits in steps so a crash loses at most the current step; the
 * snapshot becomes visible only when complete, then a catalog copy goes to every zone.
 * The caller holds the writer lock. One thread (plus ingest's workers).
 */
#ifndef PGTIMEFS_BACKUP_WALK_H
#define PGTIMEFS_BACKUP_WALK_H

#include "catalog/catalog.h"
#include "ingest.h"
#include "store/repo.h"

struct walk_opts {
	int full;	   /* read every file, reuse nothing */
	int progress;	   /* draw a progress bar on a terminal */
	const char *state_dir;
	const char *catalog_file;
};

struct walk_result {
	char name[48];	  /* the snapshot's directory name */
	int64_t snapshot; /* catalog number */
	struct ingest_stats st;
	uint64_t dirs, links, others, skipped;
	double seconds;
	uint64_t generation; /* catalog copy generation written */
};

int backup_snapshot_dir(struct repo *r, catalog *c, const char *cluster, const char *node, const char *dir,
			const struct walk_opts *o, struct walk_result *res, struct err *e);

/* --- the tree walk alone, for online backups of a live data directory (backup/pgnode.c) --- */

#include <sys/stat.h>

enum walk_verdict {
	WALK_KEEP = 0,	    /* store the entry (and a directory's contents) */
	WALK_SKIP = 1,	    /* leave it out */
	WALK_EMPTY_DIR = 2, /* store the directory, not what is in it */
	WALK_FOLLOW = 3	    /* a symlink to a directory: store it as that directory (tablespaces) */
};

/*
 * Hooks, all optional. filter sees each entry's path relative to the root and its lstat.
 * file_begin may fill an observer for a regular file about to be read (return non-zero to use
 * it) and file_end follows the read. lock/unlock bracket every use of the catalog and the
 * ingest (callers that share them between threads). checkpoint replaces the walk's own
 * commit-in-steps; it runs with the lock held, between entries.
 */
struct walk_hooks {
	void *ctx;
	int (*filter)(void *ctx, const char *rel, const struct stat *st);
	int (*file_begin)(void *ctx, const char *rel, struct ingest_observer *ob);
	void (*file_end)(void *ctx);
	void (*lock)(void *ctx);
	void (*unlock)(void *ctx);
	int (*checkpoint)(void *ctx, struct err *e);
};

struct walk_tree {
	const char *dir;		 /* absolute path of the tree */
	int64_t nb, root;		 /* node backup, and the entry of dir (already added) */
	int64_t prev_nb, prev_root;	 /* the previous node backup and its root (0: none) */
	int64_t prev_started_ns;	 /* files modified after this are always read */
	int full;			 /* reuse nothing */
	struct progress *progress;	 /* NULL: none */
};

/* Stores everything below t->dir (not dir itself) under t->root; counts into res. */
int backup_walk_tree(catalog *c, ingest *g, const struct walk_tree *t, const struct walk_hooks *h,
		     struct walk_result *res, struct err *e);
/* An entry for a file of the given stat (no link target, no content). */
void backup_walk_entry(struct catalog_entry *en, const struct stat *st, int64_t parent, const char *name);

#endif
