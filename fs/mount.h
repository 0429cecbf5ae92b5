/*
 * mount.h: the read-only FUSE filesystem (libfuse3 low-level API).
 *
 * Shows the path model of path.h under a mountpoint. Inode numbers are derived from catalog
 * numbers (path.h: fs_ino), so the filesystem keeps no inode table and forgets are free.
 * Each session thread opens its own read-only catalog connection and reader on first use; the
 * decoded-chunk cache and the read-ahead workers are shared. What lies inside a snapshot never
 * changes, so its entries, attributes, directory listings and file pages are cached by the
 * kernel for a long time; the root and cluster folders are cached for a second, and a watcher
 * thread tells the kernel to drop the names of snapshots deleted while mounted. Every
 * write-type request is answered EROFS.
 *
 * Threads: the FUSE session loop (up to `threads` workers), the read-ahead workers and the
 * watcher. fs_mount_run blocks until the filesystem is unmounted (fusermount3 -u, SIGINT,
 * SIGTERM, SIGHUP); unless foreground, it forks into the background once mounted, and then
 * only the child returns from it.
 */
#ifndef PGTIMEFS_FS_MOUNT_H
#define PGTIMEFS_FS_MOUNT_H

#include <stddef.h>

#include "common/err.h"
#include "store/repo.h"

struct fs_mount_opts {
	const char *mountpoint;
	int foreground;	      /* stay in the foreground (else daemonize once mounted) */
	int debug;	      /* libfuse's debug output (implies foreground) */
	const char *fuse_opts; /* extra -o options for the kernel/libfuse (allow_other, ...) */
	size_t cache_bytes;   /* budget of the decoded-chunk cache */
	int threads;	      /* most session threads */
	unsigned readahead_kb; /* kernel read-ahead of the mount (0: leave the kernel's) */
	int keep_streams;     /* keep the pages of files read in order (else dropped behind the reader) */
	/* called once mounted, before going to the background (may be NULL) */
	void (*on_mounted)(const char *mountpoint);
};

/*
 * Mounts and serves until unmounted. Fails before mounting (with a message and a hint) when
 * the mountpoint is missing, not a directory or already a mount, or /dev/fuse is absent.
 * catalog_file is opened read-only by each thread. r stays owned by the caller.
 */
int fs_mount_run(struct repo *r, const char *catalog_file, const struct fs_mount_opts *o, struct err *e);

/*
 * ERR_USAGE when the mountpoint is one of paths[0..n) or a directory above one (the state
 * directory, the zones: the mount would read through itself and hang); what[i] names
 * paths[i] in the message. Paths that do not resolve are skipped.
 */
int fs_mount_check_hides(const char *mountpoint, const char *const *what, const char *const *paths, int n,
			 struct err *e);

/* Checks the mountpoint before mounting (the same checks fs_mount_run makes). */
int fs_mount_check(const char *mountpoint, struct err *e);

#endif
