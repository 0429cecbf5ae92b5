/*
 * err.h: the project-wide error type.
 *
 * Functions that can fail return int: 0 on success or a negative ERR_* code, and fill an
 * optional struct err (NULL is allowed everywhere) with a message that says what failed
 * first, lowercase, no trailing period, and optionally a hint that tells the operator what
 * to do next. The struct is plain data: no allocation, safe to copy, one per thread.
 */
#ifndef PGTIMEFS_COMMON_ERR_H
#define PGTIMEFS_COMMON_ERR_H

#include <stddef.h>

enum err_code {
	ERR_OK = 0,
	ERR_IO = -1,	   /* an I/O call failed (see sys_errno) */
	ERR_NOMEM = -2,	   /* out of memory */
	ERR_CORRUPT = -3,  /* bytes failed authentication or do not parse */
	ERR_AUTH = -4,	   /* wrong passphrase: no key file opens */
	ERR_NOTFOUND = -5, /* no such cluster, snapshot, path, pack, ... */
	ERR_EXISTS = -6,   /* already there (repository, key, name) */
	ERR_CONFIG = -7,   /* configuration is missing or does not parse */
	ERR_USAGE = -8,	   /* bad command-line use */
	ERR_LOCKED = -9,   /* another process holds the lock */
	ERR_NOSPC = -10,   /* a zone or the state directory is full */
	ERR_DB = -11,	   /* the SQLite catalog failed */
	ERR_CRYPTO = -12,  /* OpenSSL failed (not an authentication failure) */
	ERR_INTERNAL = -13 /* a bug: an invariant did not hold */
};

#define ERR_MSG_MAX 1024
#define ERR_HINT_MAX 512

struct err {
	int code;	       /* one of enum err_code */
	int sys_errno;	       /* errno at the time of failure, or 0 */
	char msg[ERR_MSG_MAX]; /* what failed, lowercase, no period */
	char hint[ERR_HINT_MAX];
};

/* Resets e to "no error". e may be NULL. */
void err_clear(struct err *e);

/* Records code and a formatted message in e (may be NULL); returns code. */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Like err_set, but appends ": strerror(errno)" and records errno. When errno is ENOSPC or
 * EDQUOT the code becomes ERR_NOSPC. Returns the code recorded.
 */
int err_sys(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Puts "context: " in front of the message already in e. No-op when e is NULL. */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets the hint line of e (kept apart from the message). No-op when e is NULL. */
void err_hint(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A short stable name for a code ("io", "corrupt", ...). */
const char *err_name(int code);

#endif
