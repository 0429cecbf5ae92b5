/*
 * copy.h: copying one node's tree out of the mount into a new data directory.
 *
 * restore_copy_tree copies src (a directory) to dst (which must not exist, or be an empty
 * directory with root_exists) like `cp -a`
 * with sparse files: directories, regular files, symlinks and fifos, with their modes,
 * mtimes and (when chown is set) the given owner; other file types are skipped. Regular
 * files are read in 128 KiB reads, extent by extent with SEEK_DATA/SEEK_HOLE, so holes stay
 * holes; each file's writeback is started once it is written (sync_file_range), but nothing
 * is fsynced here: the caller makes the whole target durable at once (syncfs), which costs
 * far less than an fsync per file. The file named by hold_back
 * (relative, e.g. "global/pg_control") is written under its name + RESTORE_HELD_SUFFIX, so
 * the copy is not a startable data directory until the caller renames it.
 *
 * Progress and cancellation are shared with the caller through atomics: *done grows by
 * the bytes handled (holes included), and a non-zero *stop makes the copy return
 * ERR_INTERNAL "stopped" at the next block. One tree per thread; threads may copy
 * different trees at once.
 */
#ifndef PGTIMEFS_RESTORE_COPY_H
#define PGTIMEFS_RESTORE_COPY_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define RESTORE_HELD_SUFFIX ".pgtimefs-incomplete"

struct restore_copy_opts {
	int chown;		/* set owner uid/gid on everything */
	uid_t uid;
	gid_t gid;
	const char *hold_back;	/* relative path written under a held name, or NULL */
	int root_exists;	/* dst is an existing empty directory (made by the caller) */
	_Atomic uint64_t *done; /* bytes handled, may be NULL */
	atomic_int *stop;	/* set by another thread to stop, may be NULL */
};

struct restore_tree_stats {
	uint64_t bytes;	    /* sum of regular file sizes */
	uint64_t allocated; /* the same without holes (what the copy writes) */
	uint64_t files, dirs, links;
};

/* Walks src and adds up what a copy would write. */
int restore_tree_size(const char *src, struct restore_tree_stats *st, struct err *e);

/* Copies src to the new directory dst; st (may be NULL) receives what was copied. */
int restore_copy_tree(const char *src, const char *dst, const struct restore_copy_opts *o,
		      struct restore_tree_stats *st, struct err *e);

#endif
