#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* the key material (see crypto_key) */
struct key_secret {
	uint8_t enc[32];
	uint8_t id[32];
	uint8_t eid[32];  /* HMAC-SHA256(key CRYPTO_EID_LABEL, id): the key of encoded-blob ids */
	uint8_t cmac[32]; /* HMAC-SHA256(key CRYPTO_CONFIG_MAC_LABEL, id): the key of the config's MAC */
};

/*
 * The key material lives on a page of its own, locked in memory (never swapped) and left out of
 * core dumps, where the system allows (RLIMIT_MEMLOCK); else on the ordinary heap. Not OpenSSL's
 * secure heap: OpenSSL keeps each thread's random generator there too, and a fixed-size heap
 * runs out on a host with hundreds of threads.
 */
struct crypto_key {
	struct key_secret *s;
	int mapped, locked; /* s is a page of its own; that page is locked */
	EVP_CIPHER *gcm; /* fetched once: implicit fetches per call are slow */
	EVP_MAC *hmac;
};

struct crypto_hasher {
	EVP_MAC_CTX *base; /* keyed once; duplicated per id */
	EVP_MAC_CTX *work;
};

struct crypto_sha {
	EVP_MD_CTX *ctx;
	EVP_MD *md;
};

void crypto_process_init(void)
{
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);

}

static pthread_t warm_thread;
static int warm_started;

static void *warm_run(void *arg)
{
	(void)arg;
	EVP_CIPHER_free(EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL));
	EVP_MAC_free(EVP_MAC_fetch(NULL, "HMAC", NULL));
	EVP_MD_free(EVP_MD_fetch(NULL, "SHA256", NULL));
	EVP_KDF_free(EVP_KDF_fetch(NULL, "SCRYPT", NULL));
	return NULL;
}

void crypto_warm_up(void)
{
	if (!warm_started && pthread_create(&warm_thread, NULL, warm_run, NULL) == 0)
		warm_started = 1;
}

void crypto_warm_up_wait(void)
{
	if (warm_started) {
		pthread_join(warm_thread, NULL);
		warm_started = 0;
	}
}

static int ossl_fail(struct err *e, const char *what)
{
	unsigned long code = ERR_get_error();
	char buf[256];
	ERR_error_string_n(code, buf, sizeof buf);
	ERR_clear_error();
	return err_set(e, ERR_CRYPTO, "%s failed in OpenSSL: %s", what, code ? buf : "unknown error");
}

crypto_key *crypto_key_from_raw(const uint8_t raw[CRYPTO_MASTER_LEN], struct err *e)
{
	crypto_key *k = calloc(1, sizeof *k);
	if (k) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		void *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			(void)madvise(p, pg, MADV_DONTDUMP);
			k->locked = mlock(p, pg) == 0;
			k->mapped = 1;
			k->s = p;
		} else {
			k->s = calloc(1, sizeof *k->s);
		}
	}
	if (!k || !k->s) {
		free(k);
		err_set(e, ERR_NOMEM, "out of memory for a key");
		return NULL;
	}
	memcpy(k->s->enc, raw, 32);
	memcpy(k->s->id, raw + 32, 32);
	/* keyed by the label, not by the id key: no plain blob id (HMAC under the id key) can be it */
	crypto_hmac_sha256((const uint8_t *)CRYPTO_EID_LABEL, sizeof CRYPTO_EID_LABEL - 1, k->s->id, 32, k->s->eid);
	crypto_hmac_sha256((const uint8_t *)CRYPTO_CONFIG_MAC_LABEL, sizeof CRYPTO_CONFIG_MAC_LABEL - 1, k->s->id, 32,
			   k->s->cmac);
	k->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	k->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!k->gcm || !k->hmac) {
		ossl_fail(e, "fetching AES-256-GCM and HMAC");
		crypto_key_free(k);
		return NULL;
	}
	return k;
}

crypto_key *crypto_key_new_random(struct err *e)
{
	uint8_t raw[CRYPTO_MASTER_LEN];
	crypto_key *k;
	if (crypto_random(raw, sizeof raw, e) < 0)
		return NULL;
	k = crypto_key_from_raw(raw, e);
	OPENSSL_cleanse(raw, sizeof raw);
	return k;
}

void crypto_key_raw(const crypto_key *k, uint8_t raw[CRYPTO_MASTER_LEN])
{
	memcpy(raw, k->s->enc, 32);
	memcpy(raw + 32, k->s->id, 32);
}

int crypto_key_secure(const crypto_key *k)
{
	return k->locked;
}

void crypto_key_free(crypto_key *k)
{
	if (!k)
		return;
	EVP_CIPHER_free(k->gcm);
	EVP_MAC_free(k->hmac);
	OPENSSL_cleanse(k->s, sizeof *k->s);
	if (k->mapped) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		if (k->locked)
			munlock(k->s, pg);
		munmap(k->s, pg);
	} else {
		free(k->s);
	}
	free(k);
}

int crypto_random(void *buf, size_t n, struct err *e)
{
	if (n > INT32_MAX || RAND_bytes(buf, (int)n) != 1)
		return ossl_fail(e, "random bytes");
	return 0;
}

static int gcm_run(const EVP_CIPHER *c, int enc, const uint8_t key[32], const uint8_t iv[12],
		   const uint8_t *ad, size_t adlen, const uint8_t *in, size_t len, uint8_t *out,
		   uint8_t tag[16], struct err *e)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, rc = 0;
	const size_t step = 1u << 30;
	if (!ctx)
		return err_set(e, ERR_NOMEM, "out of memory for a cipher context");
	if (EVP_CipherInit_ex2(ctx, c, key, iv, enc, NULL) != 1) {
		rc = ossl_fail(e, "AES-256-GCM setup");
		goto out;
	}
	if (adlen && EVP_CipherUpdate(ctx, NULL, &outl, ad, (int)adlen) != 1) {
		rc = ossl_fail(e, "AES-256-GCM associated data");
		goto out;
	}
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		if (EVP_CipherUpdate(ctx, out + off, &outl, in + off, (int)n) != 1) {
			rc = ossl_fail(e, "AES-256-GCM");
			goto out;
		}
	}
	if (enc) {
		if (EVP_CipherFinal_ex(ctx, out + len, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
			rc = ossl_fail(e, "AES-256-GCM tag");
	} else {
		if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1) {
			rc = ossl_fail(e, "AES-256-GCM tag");
			goto out;
		}
		if (EVP_CipherFinal_ex(ctx, out + len, &outl) != 1) {
			ERR_clear_error();
			rc = err_set(e, ERR_CORRUPT, "authentication failed (damaged bytes or wrong key)");
		}
	}
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int crypto_seal(const crypto_key *k, const uint8_t *ad, size_t adlen, const void *pt, size_t len,
		uint8_t *out, struct err *e)
{
	int rc;
	if (crypto_random(out, CRYPTO_NONCE_LEN, e) < 0)
		return e ? e->code : ERR_CRYPTO;
	rc = gcm_run(k->gcm, 1, k->s->enc, out, ad, adlen, pt, len, out + CRYPTO_NONCE_LEN,
		     out + CRYPTO_NONCE_LEN + len, e);
	return rc;
}

int crypto_open(const crypto_key *k, const uint8_t *ad, size_t adlen, const uint8_t *in, size_t inlen,
		uint8_t *out, struct err *e)
{
	uint8_t tag[16];
	size_t len;
	if (inlen < CRYPTO_SEAL_OVERHEAD)
		return err_set(e, ERR_CORRUPT, "sealed data too short (%zu bytes)", inlen);
	len = inlen - CRYPTO_SEAL_OVERHEAD;
	memcpy(tag, in + CRYPTO_NONCE_LEN + len, 16);
	return gcm_run(k->gcm, 0, k->s->enc, in, ad, adlen, in + CRYPTO_NONCE_LEN, len, out, tag, e);
}

int crypto_gcm_encrypt_iv(const uint8_t key[32], const uint8_t iv[12], const uint8_t *ad, size_t adlen,
			  const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[16], struct err *e)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	int rc;
	if (!c)
		return ossl_fail(e, "fetching AES-256-GCM");
	rc = gcm_run(c, 1, key, iv, ad, adlen, pt, len, ct, tag, e);
	EVP_CIPHER_free(c);
	return rc;
}

static crypto_hasher *hasher_new(const crypto_key *k, const uint8_t key[32])
{
	crypto_hasher *h = xcalloc(1, sizeof *h);
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
			       OSSL_PARAM_construct_end()};
	h->base = EVP_MAC_CTX_new(k->hmac);
	if (!h->base || EVP_MAC_init(h->base, key, 32, params) != 1)
		abort(); /* OpenSSL without HMAC-SHA256 cannot run this program at all */
	return h;
}

crypto_hasher *crypto_hasher_new(const crypto_key *k)
{
	return hasher_new(k, k->s->id);
}

crypto_hasher *crypto_hasher_new_encoded(const crypto_key *k)
{
	return hasher_new(k, k->s->eid);
}

void crypto_hasher_free(crypto_hasher *h)
{
	if (!h)
		return;
	EVP_MAC_CTX_free(h->base);
	EVP_MAC_CTX_free(h->work);
	free(h);
}

void crypto_hasher_id(crypto_hasher *h, const void *data, size_t len, uint8_t out[CRYPTO_ID_LEN])
{
	size_t outl = 0;
	EVP_MAC_CTX_free(h->work);
	h->work = EVP_MAC_CTX_dup(h->base);
	if (!h->work || EVP_MAC_update(h->work, data, len) != 1 || EVP_MAC_final(h->work, out, &outl, 32) != 1)
		abort();
}

void crypto_blob_id(const crypto_key *k, const void *data, size_t len, uint8_t out[CRYPTO_ID_LEN])
{
	crypto_hasher *h = crypto_hasher_new(k);
	crypto_hasher_id(h, data, len, out);
	crypto_hasher_free(h);
}

void crypto_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		abort();
}

void crypto_config_mac(const crypto_key *k, const void *data, size_t len, uint8_t out[32])
{
	crypto_hmac_sha256(k->s->cmac, sizeof k->s->cmac, data, len, out);
}

void crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len, uint8_t out[32])
{
	size_t outl = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, data, len, out, 32, &outl))
		abort();
}

int crypto_scrypt(const char *pass, size_t passlen, const uint8_t *salt, size_t saltlen, uint64_t n,
		  uint32_t r, uint32_t p, uint8_t *out, size_t outlen, struct err *e)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = NULL;
	uint64_t maxmem = 128 * (uint64_t)r * (n + (uint64_t)p + 2) + (1u << 20);
	OSSL_PARAM params[7];
	int rc = 0;
	if (!kdf)
		return ossl_fail(e, "fetching scrypt");
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx) {
		rc = ossl_fail(e, "scrypt context");
		goto out;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, passlen);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
		rc = ossl_fail(e, "scrypt key derivation");
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

crypto_sha *crypto_sha_new(void)
{
	crypto_sha *s = xcalloc(1, sizeof *s);
	s->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	s->ctx = EVP_MD_CTX_new();
	if (!s->md || !s->ctx || EVP_DigestInit_ex2(s->ctx, s->md, NULL) != 1)
		abort();
	return s;
}

void crypto_sha_update(crypto_sha *s, const void *data, size_t len)
{
	if (EVP_DigestUpdate(s->ctx, data, len) != 1)
		abort();
}

void crypto_sha_final(crypto_sha *s, uint8_t out[32])
{
	unsigned int n = 32;
	if (EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || EVP_DigestInit_ex2(s->ctx, s->md, NULL) != 1)
		abort();
}

void crypto_sha_free(crypto_sha *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->ctx);
	EVP_MD_free(s->md);
	free(s);
}
