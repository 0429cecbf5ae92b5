#include "keyfile.h"

#include <openssl/crypto.h>
#include <string.h>

#include "common/util.h"

#define HDR_LEN 64

void keyfile_kdf_default(struct keyfile_kdf *kdf)
{
	kdf->log2n = 15;
	kdf->r = 8;
	kdf->p = 1;
}

void keyfile_kdf_generated(struct keyfile_kdf *kdf)
{
	kdf->log2n = 10;
	kdf->r = 1;
	kdf->p = 1;
}

static int kdf_ok(const struct keyfile_kdf *kdf)
{
	/* a key file comes from an untrusted zone: cap scrypt's memory (128 * r * N) at 1 GiB */
	return kdf->log2n >= 10 && kdf->log2n <= 22 && kdf->r >= 1 && kdf->r <= 32 && kdf->p >= 1 && kdf->p <= 16 &&
	       ((uint64_t)128 * kdf->r << kdf->log2n) <= (1ull << 30);
}

static int derive(const uint8_t *hdr, const char *pass, size_t passlen, const struct keyfile_kdf *kdf,
		  uint8_t out[32], struct err *e)
{
	return crypto_scrypt(pass, passlen, hdr + 32, 32, (uint64_t)1 << kdf->log2n, kdf->r, kdf->p, out, 32, e);
}

int keyfile_create(const crypto_key *k, const char *pass, size_t passlen, const struct keyfile_kdf *kdf,
		   int64_t created, uint8_t out[KEYFILE_LEN], struct err *e)
{
	uint8_t wrap[32 + 32], raw[CRYPTO_MASTER_LEN];
	crypto_key *wk = NULL;
	int rc;
	if (!kdf_ok(kdf))
		return err_set(e, ERR_CONFIG, "scrypt parameters out of range (log2n 10..22, r 1..32, p 1..16)");
	memset(out, 0, KEYFILE_LEN);
	memcpy(out, KEYFILE_MAGIC, 8);
	put_le32(out + 8, 1);
	put_le32(out + 12, kdf->log2n);
	put_le32(out + 16, kdf->r);
	put_le32(out + 20, kdf->p);
	put_le64(out + 24, (uint64_t)created);
	if ((rc = crypto_random(out + 32, 32, e)) < 0)
		return rc;
	/* the wrapping key uses only the encryption half of a crypto_key */
	memset(wrap, 0, sizeof wrap);
	if ((rc = derive(out, pass, passlen, kdf, wrap, e)) < 0)
		goto out;
	if (!(wk = crypto_key_from_raw(wrap, e))) {
		rc = e ? e->code : ERR_CRYPTO;
		goto out;
	}
	crypto_key_raw(k, raw);
	rc = crypto_seal(wk, out, HDR_LEN, raw, sizeof raw, out + HDR_LEN, e);
out:
	OPENSSL_cleanse(wrap, sizeof wrap);
	OPENSSL_cleanse(raw, sizeof raw);
	crypto_key_free(wk);
	return rc;
}

int keyfile_open(const uint8_t *buf, size_t len, const char *pass, size_t passlen, crypto_key **out,
		 struct err *e)
{
	struct keyfile_kdf kdf;
	uint8_t wrap[64], raw[CRYPTO_MASTER_LEN];
	crypto_key *wk = NULL;
	int rc;
	*out = NULL;
	if (len != KEYFILE_LEN || memcmp(buf, KEYFILE_MAGIC, 8) || get_le32(buf + 8) != 1)
		return err_set(e, ERR_CORRUPT, "not a pgtimefs key file (bad length, magic or version)");
	kdf.log2n = get_le32(buf + 12);
	kdf.r = get_le32(buf + 16);
	kdf.p = get_le32(buf + 20);
	if (!kdf_ok(&kdf))
		return err_set(e, ERR_CORRUPT, "key file has scrypt parameters out of range");
	memset(wrap, 0, sizeof wrap);
	if ((rc = derive(buf, pass, passlen, &kdf, wrap, e)) < 0)
		goto out;
	if (!(wk = crypto_key_from_raw(wrap, e))) {
		rc = e ? e->code : ERR_CRYPTO;
		goto out;
	}
	if (crypto_open(wk, buf, HDR_LEN, buf + HDR_LEN, KEYFILE_LEN - HDR_LEN, raw, NULL) < 0) {
		rc = err_set(e, ERR_AUTH, "wrong passphrase for this key file");
		goto out;
	}
	*out = crypto_key_from_raw(raw, e);
	rc = *out ? 0 : (e ? e->code : ERR_CRYPTO);
out:
	OPENSSL_cleanse(wrap, sizeof wrap);
	OPENSSL_cleanse(raw, sizeof raw);
	crypto_key_free(wk);
	return rc;
}

int64_t keyfile_created(const uint8_t *buf, size_t len)
{
	if (len != KEYFILE_LEN || memcmp(buf, KEYFILE_MAGIC, 8))
		return 0;
	return (int64_t)get_le64(buf + 24);
}

uint64_t keyfile_cost(const uint8_t *buf, size_t len)
{
	struct keyfile_kdf kdf;
	if (len != KEYFILE_LEN || memcmp(buf, KEYFILE_MAGIC, 8) || get_le32(buf + 8) != 1)
		return UINT64_MAX;
	kdf.log2n = get_le32(buf + 12);
	kdf.r = get_le32(buf + 16);
	kdf.p = get_le32(buf + 20);
	if (!kdf_ok(&kdf))
		return UINT64_MAX;
	return ((uint64_t)128 * kdf.r << kdf.log2n) * kdf.p;
}
