/*
 * crypto.h: the repository's master key, sealing, blob ids and the primitives under them.
 *
 * A master key is 64 random bytes: a 32-byte AES-256-GCM encryption key and a 32-byte
 * HMAC-SHA256 id key. It lives only inside a crypto_key object, is wiped with
 * OPENSSL_cleanse when freed, and never reaches a log line.
 *
 * Sealed form of n plaintext bytes: nonce (12 random bytes) | ciphertext (n) | tag (16), with
 * caller-chosen associated data (the blob id for blobs), so a blob cannot be moved under
 * another id unnoticed. Blob id = HMAC-SHA256(id key, plaintext): equal content gives equal
 * ids (dedup) and ids say nothing of content without the key. WAL blobs have encoded ids
 * instead: HMAC-SHA256 over the blob's encoding (flag byte and payload, pack.h) under a key
 * of their own, derived from the id key (docs/format.md, "Blob ids").
 *
 * Thread-safety: a crypto_key is immutable after creation and may be shared by all threads;
 * a crypto_hasher is per thread.
 */
#ifndef PGTIMEFS_CRYPTO_CRYPTO_H
#define PGTIMEFS_CRYPTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CRYPTO_MASTER_LEN 64
#define CRYPTO_ID_LEN 32
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16
#define CRYPTO_SEAL_OVERHEAD (CRYPTO_NONCE_LEN + CRYPTO_TAG_LEN)

typedef struct crypto_key crypto_key;

/*
 * Called once at the start of the program: OpenSSL then skips its clean-up at exit, about
 * 1 ms of every run (it frees memory the exit returns anyway; keys are wiped by
 * crypto_key_free, not by it).
 */
void crypto_process_init(void);
/* 1 when k's key material is locked in memory (and left out of core dumps) */
int crypto_key_secure(const crypto_key *k);
/*
 * OpenSSL builds its tables of algorithms at the first use of each kind (about 2.5 ms of CPU
 * in all): crypto_warm_up has a thread do that now, while the caller does other work (a
 * wal-push maps its file and reads its configuration meanwhile); crypto_warm_up_wait joins
 * it. Optional: everything works without it. Once per process, from one thread.
 */
void crypto_warm_up(void);
void crypto_warm_up_wait(void);
typedef struct crypto_hasher crypto_hasher;

/* --- life cycle --- */

/* A new random master key, or NULL with e set. */
crypto_key *crypto_key_new_random(struct err *e);
/* A key from 64 raw bytes (encryption key then id key). */
crypto_key *crypto_key_from_raw(const uint8_t raw[CRYPTO_MASTER_LEN], struct err *e);
/* Copies the 64 raw bytes out (only the key file module should need this). */
void crypto_key_raw(const crypto_key *k, uint8_t raw[CRYPTO_MASTER_LEN]);
/* Wipes and frees; NULL ok. */
void crypto_key_free(crypto_key *k);

/* --- sealing (AES-256-GCM, random nonce) --- */

/* Seals len bytes of pt into out (len + CRYPTO_SEAL_OVERHEAD bytes). Thread-safe. */
int crypto_seal(const crypto_key *k, const uint8_t *ad, size_t adlen, const void *pt, size_t len,
		uint8_t *out, struct err *e);
/*
 * Opens a sealed buffer of inlen bytes into out (inlen - CRYPTO_SEAL_OVERHEAD bytes).
 * Returns ERR_CORRUPT when the tag does not verify (wrong key, wrong ad, damaged bytes).
 */
int crypto_open(const crypto_key *k, const uint8_t *ad, size_t adlen, const uint8_t *in, size_t inlen,
		uint8_t *out, struct err *e);

/* --- blob ids (HMAC-SHA256 with the id key) --- */

/* A reusable per-thread hasher for blob ids. */
crypto_hasher *crypto_hasher_new(const crypto_key *k);
/*
 * The same for encoded ids, keyed with the encoded-id key: HMAC-SHA256 with CRYPTO_EID_LABEL
 * (28 ASCII bytes without a NUL) as the key and the id key as the message (HKDF-Extract with
 * the label as salt). A key of its own keeps the two kinds of id apart: no plaintext can have
 * the id of another blob's encoding. And the derivation is not itself an HMAC under the id
 * key, so no chunk's plain id can be the encoded-id key (a chunk holding the label would be).
 */
#define CRYPTO_EID_LABEL "pgtimefs encoded-blob id key"
crypto_hasher *crypto_hasher_new_encoded(const crypto_key *k);
void crypto_hasher_free(crypto_hasher *h);
void crypto_hasher_id(crypto_hasher *h, const void *data, size_t len, uint8_t out[CRYPTO_ID_LEN]);
/* One-shot blob id (slower: sets up a context each call). */
void crypto_blob_id(const crypto_key *k, const void *data, size_t len, uint8_t out[CRYPTO_ID_LEN]);

/*
 * The MAC of the repository config: HMAC-SHA256 under the config-MAC key, which is derived
 * like the encoded-id key, with its own label: HMAC-SHA256 with CRYPTO_CONFIG_MAC_LABEL (34
 * ASCII bytes without a NUL) as the key and the id key as the message. Not the id key itself:
 * a chunk whose plaintext were a config's MAC input would have that MAC as its plain id, and
 * the local catalog keeps plain ids in clear.
 */
#define CRYPTO_CONFIG_MAC_LABEL "pgtimefs repository config MAC key"
void crypto_config_mac(const crypto_key *k, const void *data, size_t len, uint8_t out[32]);

/* --- primitives (exposed for key files, pack ids and known-answer tests) --- */

/* Fills buf with n bytes from the OS-seeded CSPRNG. */
int crypto_random(void *buf, size_t n, struct err *e);
void crypto_sha256(const void *data, size_t len, uint8_t out[32]);
void crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len, uint8_t out[32]);
/* scrypt (RFC 7914) through OpenSSL's EVP_KDF; maxmem is raised to what N and r need. */
int crypto_scrypt(const char *pass, size_t passlen, const uint8_t *salt, size_t saltlen, uint64_t n,
		  uint32_t r, uint32_t p, uint8_t *out, size_t outlen, struct err *e);
/* AES-256-GCM with a caller-given 96-bit IV (for known-answer tests only: never reuse an IV). */
int crypto_gcm_encrypt_iv(const uint8_t key[32], const uint8_t iv[12], const uint8_t *ad, size_t adlen,
			  const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[16], struct err *e);

/* Incremental SHA-256 (pack ids are hashed as packs are built). */
typedef struct crypto_sha crypto_sha;
crypto_sha *crypto_sha_new(void);
void crypto_sha_update(crypto_sha *s, const void *data, size_t len);
void crypto_sha_final(crypto_sha *s, uint8_t out[32]); /* also resets for reuse */
void crypto_sha_free(crypto_sha *s);

#endif
