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

#endif
