/*
 * unit.h: helpers shared by the cmocka unit tests (header-only, static functions).
 *
 * - the includes cmocka needs, in the order it needs them;
 * - a seeded PRNG (splitmix64) so "random" test data is the same on every run;
 * - hex helpers for known-answer vectors typed in from their published sources;
 * - scratch directories below $TMPDIR (or /tmp), removed at the end of each test;
 * - known_bug(): a check for a bug found by these tests and since fixed; it now fails the test
 *   (a regression), naming the bug.
 *
 * cmocka's assertions longjmp out of the test: call them only from the thread running the
 * test, never from worker threads (count failures there and assert afterwards).
 */
#ifndef PGTIMEFS_TESTS_UNIT_H
#define PGTIMEFS_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

static inline uint64_t unit_rand_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Fills buf with n pseudo-random bytes from the state *s. */
static inline void unit_rand_fill(uint64_t *s, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		uint64_t v = unit_rand_next(s);
		size_t k = n < 8 ? n : 8;
		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

/* A new buffer of n bytes decoded from a hex string of exactly 2n digits (test vectors). */
static inline uint8_t *unit_hex(const char *hex, size_t *n)
{
	size_t len = strlen(hex) / 2;
	uint8_t *out = malloc(len ? len : 1);
	assert_non_null(out);
	assert_int_equal(strlen(hex), 2 * len);
	assert_int_equal(hex_decode(hex, out, len), 0);
	if (n)
		*n = len;
	return out;
}

/* Asserts that the n bytes at got equal the hex string want (message shows both in hex). */
#define assert_hex_equal(got, n, want) unit_assert_hex((got), (n), (want), __FILE__, __LINE__)

static inline void unit_assert_hex(const uint8_t *got, size_t n, const char *want, const char *file, int line)
{
	char *hex = malloc(2 * n + 1);
	int same;
	assert_non_null(hex);
	hex_encode(got, n, hex);
	same = !strcmp(hex, want);
	if (!same)
		print_error("%s:%d: bytes differ\n  got:  %s\n  want: %s\n", file, line, hex, want);
	free(hex);
	if (!same)
		fail();
}

/* A new empty scratch directory; its path goes into dir (at least 256 bytes). */
static inline void unit_tmpdir(char *dir, size_t cap)
{
	const char *base = getenv("TMPDIR");
	snprintf(dir, cap, "%s/pgtimefs-unit-XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(dir));
}

static inline void unit_rmdir(const char *dir)
{
	if (dir && *dir)
		assert_int_equal(util_rm_rf(dir, NULL), 0);
}

/*
 * known_bug(ok, what): ok is the correct behaviour. When it does not hold, the test fails here
 * and says which (fixed) bug came back.
 */
#define known_bug(ok, what)                                                                     \
	do {                                                                                     \
		if (!(ok)) {                                                                     \
			fail_msg("regression of a fixed bug at %s:%d: %s", __FILE__, __LINE__, (what)); \
		}                                                                                \
	} while (0)

/* check_ok(call): fails the test with the error's message when call does not return 0. */
#define check_ok(call)                                                                     \
	do {                                                                               \
		struct err e_;                                                             \
		int rc_;                                                                   \
		(void)e_;                                                                  \
		err_clear(&e_);                                                            \
		rc_ = (call);                                                              \
		if (rc_ != 0)                                                              \
			print_error("%s:%d: %s: %d %s\n", __FILE__, __LINE__, #call, rc_, e_.msg); \
		assert_int_equal(rc_, 0);                                                  \
	} while (0)
/* for use inside check_ok: the struct err it provides */
#define E (&e_)

#endif
