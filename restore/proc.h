/*
 * proc.h: running the PostgreSQL programs a restore needs (postgres --version, pg_config,
 * pg_ctl) and the OS user that owns the restored data directories.
 *
 * restore_user_pick chooses who will own and run the restored servers: the invoking user,
 * or `postgres` when run as root (PostgreSQL refuses to run as root). restore_proc_run runs
 * an argv (no shell) with stdin from /dev/null, optionally as that user, in directory "/",
 * and gives its exit status and up to cap-1 bytes of its output (stdout and stderr mixed).
 * Thread-safe (fork + exec only; no locks held across fork).
 */
#ifndef PGTIMEFS_RESTORE_PROC_H
#define PGTIMEFS_RESTORE_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

struct restore_user {
	uid_t uid;
	gid_t gid;
	char name[64];
	int switch_to; /* we run as root: children switch to uid/gid */
};

/* The invoking user, or `postgres` when root (ERR_CONFIG with a hint when there is none). */
int restore_user_pick(struct restore_user *u, struct err *e);

/* Switches the calling process to u (setgroups, setgid, setuid); for a forked child. */
int restore_user_become(const struct restore_user *u, struct err *e);

/*
 * Runs argv[0] (a path) with argv; as: NULL or a user to switch to. out/cap: the output
 * (NUL-terminated, truncated), or NULL to discard it; it holds stdout and stderr mixed, or
 * with stdout_only stdout alone (stderr discarded). *status: the exit status, or -1 when the
 * program died of a signal. Returns 0 when the program ran (whatever its status), ERR_IO
 * when it could not be started. Fork only from a process that runs no other thread.
 */
int restore_proc_run(char *const argv[], const struct restore_user *as, int stdout_only, char *out, size_t cap,
		     int *status, struct err *e);

#endif
