/*
 * fuzz_catalog_copy.c: catalog_copy_decode (catalog/copy.h) on an untrusted copy file, read
 * from a memfd and decoded into /dev/null with the fixed key.
 *
 * Input: one mode byte, then
 *   mode even: the bytes of a copy file as a zone could hold them;
 *   mode odd:  u8 generation | frames until the input ends, each
 *              u8 control | u16 length | length bytes of payload,
 *              control bit 0: mark the frame as the last one; bit 1: the payload is file data
 *              to compress with zstd (otherwise it is taken as the compressed frame itself);
 *              bit 2: seal under the wrong frame index; bit 3: write 1..8 junk bytes after
 *              the frame. The target writes the header and seals every frame with the key, so
 *              the frame order, last-frame, zstd and trailing-bytes logic behind the
 *              authentication is fuzzed too.
 * The decoder must return 0 or ERR_CORRUPT (ERR_IO only for the output, which cannot fail
 * here), set the struct err to match, and not crash or leak.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "catalog/copy.h"
#include "fuzz_common.h"

#define HDR_LEN 32
#define FRAME_RAW (4u << 20)

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* A copy file built from the structured input (mode odd). */
static void build(struct fuzz_in *in, struct buf *out)
{
	uint8_t hdr[HDR_LEN], ad[HDR_LEN + 9], lenbuf[4];
	uint64_t idx = 0;
	memset(hdr, 0, sizeof hdr);
	memcpy(hdr, CATALOG_COPY_MAGIC, 8);
	put_le32(hdr + 8, 1);
	put_le32(hdr + 12, FRAME_RAW);
	put_le64(hdr + 16, fuzz_u8(in));
	put(out, hdr, sizeof hdr);
	while (in->n) {
		uint8_t ctl = fuzz_u8(in), *z, *sealed;
		size_t plen, zl;
		const uint8_t *pl = fuzz_take(in, fuzz_u16(in), &plen);
		if (ctl & 2) {
			size_t bound = ZSTD_compressBound(plen);
			z = malloc(bound);
			if (!z)
				abort();
			zl = ZSTD_compress(z, bound, pl, plen, 1);
			if (ZSTD_isError(zl))
				abort();
		} else {
			z = malloc(plen ? plen : 1);
			if (!z)
				abort();
			memcpy(z, pl, plen);
			zl = plen;
		}
		sealed = malloc(zl + CRYPTO_SEAL_OVERHEAD);
		if (!sealed)
			abort();
		memcpy(ad, hdr, HDR_LEN);
		put_le64(ad + HDR_LEN, (ctl & 4) ? idx + 1 : idx);
		ad[HDR_LEN + 8] = (uint8_t)(ctl & 1);
		if (crypto_seal(fuzz_key(), ad, sizeof ad, z, zl, sealed, NULL) < 0)
			abort();
		put_le32(lenbuf, (uint32_t)(zl + CRYPTO_SEAL_OVERHEAD));
		put(out, lenbuf, 4);
		put(out, sealed, zl + CRYPTO_SEAL_OVERHEAD);
		if (ctl & 8) {
			static const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
			put(out, junk, 1 + (ctl >> 5));
		}
		free(z);
		free(sealed);
		idx++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	struct fuzz_in in = {data, size};
	struct buf b = {0};
	struct repo r;
	uint64_t gen = 0;
	struct err e;
	int fd, rc;
	if (devnull < 0 && (devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		abort();
	memset(&r, 0, sizeof r);
	r.key = (crypto_key *)fuzz_key();
	if (fuzz_u8(&in) & 1) {
		build(&in, &b);
		fd = fuzz_memfd(b.p, b.len);
	} else {
		fd = fuzz_memfd(in.p, in.n);
	}
	err_clear(&e);
	rc = catalog_copy_decode(&r, fd, devnull, &gen, &e);
	fuzz_require(rc == 0 || rc == ERR_CORRUPT);
	fuzz_require(e.code == rc);
	fuzz_require(rc == 0 || e.msg[0]);
	close(fd);
	free(b.p);
	return 0;
}
