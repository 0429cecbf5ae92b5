/*
 * timefmt.h: UTC ISO-8601 times, as the command line and the mount show them.
 *
 * Times are int64 microseconds since the Unix epoch. Output is always UTC with a Z:
 * "2026-11-25T03:00:00Z", or with microseconds "2026-11-25T03:00:00.123456Z" where two
 * snapshots share a second. Input also takes an offset (+02:00, +0200), a space for the T,
 * a missing Z (taken as UTC), fractional seconds, and a bare date (midnight UTC).
 * Thread-safe.
 */
#ifndef PGTIMEFS_COMMON_TIMEFMT_H
#define PGTIMEFS_COMMON_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TIMEFMT_MAX 40

/* Writes the time with second precision (frac = 0) or microseconds (frac = 1). */
void timefmt_print(int64_t us, int frac, char out[TIMEFMT_MAX]);

/* Parses s; returns 0 and sets *us, or -1 when s is not a time this module accepts. */
int timefmt_parse(const char *s, int64_t *us);

#endif
