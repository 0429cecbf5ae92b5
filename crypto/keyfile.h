/*
 * keyfile.h: key files, the master key sealed under a passphrase.
 *
 * A key file is KEYFILE_LEN bytes: a header (magic, version, scrypt parameters, creation
 * time, 32-byte random salt) and the 64-byte master key sealed with AES-256-GCM under
 * scrypt(passphrase, salt), the header as associated data. Several key files may hold the
 * same master key under different passphrases (rotation). The exact layout is in
 * docs/format.md. Parsing never trusts the bytes: bad magic, length or parameters are
 * ERR_CORRUPT; a tag that does not verify is ERR_AUTH (wrong passphrase). Thread-safe.
 */
#ifndef PGTIMEFS_CRYPTO_KEYFILE_H
#define PGTIMEFS_CRYPTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define KEYFILE_LEN 156
#define KEYFILE_MAGIC "PGTFKEY1"

struct keyfile_kdf {
	uint32_t log2n; /* scrypt N = 2^log2n, 10..22 */
	uint32_t r;	/* 1..32 */
	uint32_t p;	/* 1..16 */
};

/* The default: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s). */
void keyfile_kdf_default(struct keyfile_kdf *kdf);

/*
 * For a generated secret (KEYFILE_SECRET_LEN random bytes, `key add --generate`): the floor
 * of the accepted range, N = 2^10, r = 1, p = 1 (128 KiB, under a millisecond). Stretching protects a
 * passphrase a person chose; a 256-bit random secret cannot be guessed however cheap one try
 * is, and a process per archived WAL segment should not pay 0.1 s for it.
 */
void keyfile_kdf_generated(struct keyfile_kdf *kdf);
#define KEYFILE_SECRET_LEN 32

/*
 * The work one try of this key file's KDF costs (128 x r x 2^log2n x p, scrypt's memory times
 * its passes), from the header alone; UINT64_MAX when the header is not a valid key file.
 * repo_open tries the cheapest key files first.
 */
uint64_t keyfile_cost(const uint8_t *buf, size_t len);

/* Seals k under pass into out (KEYFILE_LEN bytes). */
int keyfile_create(const crypto_key *k, const char *pass, size_t passlen, const struct keyfile_kdf *kdf,
		   int64_t created, uint8_t out[KEYFILE_LEN], struct err *e);

/* Opens a key file; on success *out holds the master key (free with crypto_key_free). */
int keyfile_open(const uint8_t *buf, size_t len, const char *pass, size_t passlen, crypto_key **out,
		 struct err *e);

/* Reads the creation time from a key file's header without the passphrase (0 if garbage). */
int64_t keyfile_created(const uint8_t *buf, size_t len);

#endif
