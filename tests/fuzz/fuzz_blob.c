/*
 * fuzz_blob.c: pack_blob_decode (store/pack.h), the per-chunk decoder, with the fixed key.
 *
 * Input: mode byte | u32 raw (the plaintext length the catalog claims, taken modulo 1 MiB + 1)
 * | payload. By mode % 3:
 *   0: payload is a sealed blob as a zone could hold it (nearly always fails to open);
 *   1: payload is the blob's plaintext (flag byte | raw bytes or a zstd frame): the target
 *      seals it under the blob id first, so the flag and zstd paths behind the authentication
 *      are fuzzed with hostile frames, into an output buffer of exactly raw bytes;
 *   2: payload is file data: encode then decode must give the same bytes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "store/pack.h"

#define RAW_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pack_codec *codec;
	struct fuzz_in in = {data, size};
	uint8_t id[CRYPTO_ID_LEN], *sealed = NULL, *out;
	unsigned mode = fuzz_u8(&in) % 3;
	size_t raw = fuzz_u32(&in) % (RAW_MAX + 1), slen;
	struct err e;
	int rc;
	if (!codec)
		codec = pack_codec_new(3);
	memset(id, 0x42, sizeof id);
	if (mode == 2) {
		if (in.n > RAW_MAX)
			return 0;
		crypto_blob_id(fuzz_key(), in.p, in.n, id);
		sealed = malloc(pack_blob_bound(in.n));
		out = malloc(in.n ? in.n : 1);
		if (!sealed || !out)
			abort();
		fuzz_require(pack_blob_encode(codec, fuzz_key(), id, in.p, in.n, sealed, &slen, NULL) == 0);
		fuzz_require(slen <= pack_blob_bound(in.n));
		fuzz_require(pack_blob_decode(codec, fuzz_key(), id, sealed, slen, out, in.n, NULL) == 0);
		fuzz_require(in.n == 0 || memcmp(out, in.p, in.n) == 0);
		/* the same blob under another id does not open */
		id[0] ^= 1;
		fuzz_require(pack_blob_decode(codec, fuzz_key(), id, sealed, slen, out, in.n, NULL) == ERR_CORRUPT);
		free(sealed);
		free(out);
		return 0;
	}
	if (mode == 1) {
		sealed = malloc(in.n + CRYPTO_SEAL_OVERHEAD);
		if (!sealed)
			abort();
		fuzz_require(crypto_seal(fuzz_key(), id, sizeof id, in.p, in.n, sealed, NULL) == 0);
		slen = in.n + CRYPTO_SEAL_OVERHEAD;
	} else {
		slen = in.n;
	}
	out = malloc(raw ? raw : 1);
	if (!out)
		abort();
	err_clear(&e);
	rc = pack_blob_decode(codec, fuzz_key(), id, sealed ? sealed : in.p, slen, out, raw, &e);
	fuzz_require(rc == 0 || (rc == ERR_CORRUPT && e.code == rc && e.msg[0]));
	if (rc == 0 && mode == 1 && in.n && in.p[0] == 0)
		fuzz_require(in.n - 1 == raw && memcmp(out, in.p + 1, raw) == 0);
	free(out);
	free(sealed);
	return 0;
}
