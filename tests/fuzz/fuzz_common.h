/*
 * fuzz_common.h: helpers shared by the libFuzzer targets (header-only, static functions).
 *
 * - the fixed master key every target and the seed generator use (bytes 0..63), so seeds
 *   sealed by make_seeds open in the targets;
 * - a little reader that cuts fuzz input into fields (structure-aware modes);
 * - a memfd holding bytes, for parsers that read from a file descriptor.
 *
 * Targets abort() when a property that must hold does not (libFuzzer reports it as a crash).
 * One thread; the key is created once and kept for the life of the process.
 */
#ifndef PGTIMEFS_TESTS_FUZZ_COMMON_H
#define PGTIMEFS_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "crypto/crypto.h"

#define FUZZ_PASS "fuzz"

/* The fixed master key (64 bytes 0, 1, ..., 63). */
static inline const crypto_key *fuzz_key(void)
{
	static crypto_key *k;
	if (!k) {
		uint8_t raw[CRYPTO_MASTER_LEN];
		for (int i = 0; i < CRYPTO_MASTER_LEN; i++)
			raw[i] = (uint8_t)i;
		k = crypto_key_from_raw(raw, NULL);
		if (!k)
			abort();
	}
	return k;
}

/* Fails the run (a "crash" for libFuzzer) with a message. */
#define fuzz_require(cond)                                                                     \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: property does not hold: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                               \
		}                                                                              \
	} while (0)

/* A cursor over the fuzz input; reads past the end give zeros / empty slices. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;
	if (in->n) {
		v = in->p[0];
		in->p++;
		in->n--;
	}
	return v;
}

static inline uint32_t fuzz_u16(struct fuzz_in *in)
{
	uint32_t lo = fuzz_u8(in);
	return lo | (uint32_t)fuzz_u8(in) << 8;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t lo = fuzz_u16(in);
	return lo | fuzz_u16(in) << 16;
}

/* Up to want bytes from the input (*got gets how many). */
static inline const uint8_t *fuzz_take(struct fuzz_in *in, size_t want, size_t *got)
{
	const uint8_t *p = in->p;
	*got = want < in->n ? want : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/* A memfd holding len bytes of buf, positioned at 0 (abort on failure). */
static inline int fuzz_memfd(const uint8_t *buf, size_t len)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0 || (len && util_write_all(fd, buf, len) < 0) || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

#endif
