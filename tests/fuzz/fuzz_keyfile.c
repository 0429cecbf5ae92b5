/*
 * fuzz_keyfile.c: keyfile_open and keyfile_created (crypto/keyfile.h) on untrusted bytes.
 *
 * Input: the key file bytes, tried with the passphrase FUZZ_PASS. scrypt is what makes key
 * files slow on purpose; to keep each run in milliseconds, a header whose parameters are in
 * the accepted range but costly is patched down before the call (log2n 11..22 -> 10,
 * r 9..32 -> 8, p 2..16 -> 1). Values outside the range are left alone, so the rejection
 * paths are still fuzzed. The seed from make_seeds is a real key file for FUZZ_PASS that
 * opens to the fixed key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keyfile.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	crypto_key *k = (crypto_key *)1;
	struct err e;
	int rc;
	if (!buf)
		abort();
	memcpy(buf, data, size);
	if (size >= 24) {
		uint32_t log2n = get_le32(buf + 12), r = get_le32(buf + 16), p = get_le32(buf + 20);
		if (log2n > 10 && log2n <= 22)
			put_le32(buf + 12, 10);
		if (r > 8 && r <= 32)
			put_le32(buf + 16, 8);
		if (p > 1 && p <= 16)
			put_le32(buf + 20, 1);
	}
	(void)keyfile_created(buf, size);
	err_clear(&e);
	rc = keyfile_open(buf, size, FUZZ_PASS, strlen(FUZZ_PASS), &k, &e);
	if (rc == 0) {
		uint8_t raw[CRYPTO_MASTER_LEN], want[CRYPTO_MASTER_LEN];
		fuzz_require(k != NULL);
		crypto_key_raw(k, raw);
		crypto_key_raw(fuzz_key(), want);
		/* only make_seeds' key file (or a copy of it) opens, and it holds the fixed key */
		fuzz_require(memcmp(raw, want, sizeof raw) == 0);
		crypto_key_free(k);
	} else {
		fuzz_require(k == NULL);
		fuzz_require(rc == ERR_CORRUPT || rc == ERR_AUTH);
		fuzz_require(e.code == rc && e.msg[0]);
	}
	free(buf);
	return 0;
}
