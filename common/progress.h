/*
 * progress.h: a one-line progress bar on stderr for long work.
 *
 * Draws only when stderr is a terminal and the caller did not ask for quiet or JSON output;
 * otherwise every call is a cheap no-op. Redraws at most ten times a second. Not
 * thread-safe: one thread owns a bar.
 */
#ifndef PGTIMEFS_COMMON_PROGRESS_H
#define PGTIMEFS_COMMON_PROGRESS_H

#include <stdint.h>

struct progress {
	int on;		 /* drawing at all */
	const char *what;	 /* "snapshot", "check", ... */
	uint64_t total;	 /* bytes expected, 0 when unknown */
	uint64_t done;	 /* bytes so far */
	double started;	 /* monotonic seconds */
	double last_draw;
};

/* Starts a bar; enabled = 0 silences it (for --quiet, --json). */
void progress_start(struct progress *p, const char *what, uint64_t total, int enabled);
/* Adds n bytes done and redraws when due. */
void progress_add(struct progress *p, uint64_t n);
/* Clears the line. */
void progress_end(struct progress *p);

#endif
