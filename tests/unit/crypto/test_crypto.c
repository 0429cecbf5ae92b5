/*
 * test_crypto.c: crypto/crypto.h.
 *
 * Known-answer vectors are typed in from their published sources:
 * - AES-256-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", appendix B,
 *   test cases 13..16 (the 256-bit keys);
 * - HMAC-SHA256: RFC 4231 section 4, test cases 1, 2, 3, 4, 6, 7 (5 is truncated output);
 * - scrypt: RFC 7914 section 12, the first three vectors (the fourth needs 1 GiB);
 * - SHA-256: FIPS 180-2 appendix B.1 ("abc").
 * Then the properties the rest of the store relies on: seal/open round trips, any change to a
 * sealed buffer, its associated data or the key is ERR_CORRUPT, and blob ids are keyed HMACs.
 */
#include "../unit.h"

#include <sys/resource.h>
#include <unistd.h>

#include "crypto/crypto.h"

/* --- AES-256-GCM (GCM spec, appendix B) --- */

struct gcm_vector {
	const char *name, *key, *iv, *aad, *pt, *ct, *tag;
};

static const struct gcm_vector gcm_vectors[] = {
	{"test case 13", "0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
	{"test case 14", "0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
	 "d0d1c8a799996bf0265b98b5d48ab919"},
	{"test case 15", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	 "cafebabefacedbaddecaf888", "",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	 "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	 "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
	 "b094dac5d93471bdec1a502270e3cc6c"},
	{"test case 16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	 "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	 "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	 "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	 "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void test_gcm_known_answers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof gcm_vectors / sizeof gcm_vectors[0]; i++) {
		const struct gcm_vector *v = &gcm_vectors[i];
		size_t klen, ivlen, adlen, ptlen;
		uint8_t *key = unit_hex(v->key, &klen), *iv = unit_hex(v->iv, &ivlen);
		uint8_t *ad = unit_hex(v->aad, &adlen), *pt = unit_hex(v->pt, &ptlen);
		uint8_t *ct = malloc(ptlen + 1), tag[16];
		struct err e;
		print_message("GCM %s\n", v->name);
		assert_int_equal(klen, 32);
		assert_int_equal(ivlen, 12);
		assert_int_equal(crypto_gcm_encrypt_iv(key, iv, adlen ? ad : NULL, adlen, pt, ptlen, ct, tag, &e), 0);
		assert_hex_equal(ct, ptlen, v->ct);
		assert_hex_equal(tag, 16, v->tag);
		free(key);
		free(iv);
		free(ad);
		free(pt);
		free(ct);
	}
}

/* The sealed format is nonce | ciphertext | tag: the GCM vector opens through crypto_open. */
static void test_gcm_vector_opens_as_sealed(void **state)
{
	const struct gcm_vector *v = &gcm_vectors[3];
	size_t klen, ivlen, adlen, ptlen, ctlen, taglen;
	uint8_t *key = unit_hex(v->key, &klen), *iv = unit_hex(v->iv, &ivlen), *ad = unit_hex(v->aad, &adlen);
	uint8_t *pt = unit_hex(v->pt, &ptlen), *ct = unit_hex(v->ct, &ctlen), *tag = unit_hex(v->tag, &taglen);
	uint8_t raw[CRYPTO_MASTER_LEN], sealed[12 + 60 + 16], out[60];
	crypto_key *k;
	(void)state;
	assert_int_equal(ctlen, 60);
	memset(raw, 0x5a, sizeof raw);
	memcpy(raw, key, 32);
	k = crypto_key_from_raw(raw, NULL);
	assert_non_null(k);
	memcpy(sealed, iv, 12);
	memcpy(sealed + 12, ct, 60);
	memcpy(sealed + 72, tag, 16);
	assert_int_equal(crypto_open(k, ad, adlen, sealed, sizeof sealed, out, NULL), 0);
	assert_memory_equal(out, pt, 60);
	crypto_key_free(k);
	free(key);
	free(iv);
	free(ad);
	free(pt);
	free(ct);
	free(tag);
}

/* --- HMAC-SHA256 (RFC 4231) --- */

static void test_hmac_rfc4231(void **state)
{
	static const char data7[] = "This is a test using a larger than block-size key and a larger than block-size data. "
				    "The key needs to be hashed before being used by the HMAC algorithm.";
	static const char data6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	uint8_t key[131], data[50], mac[32];
	(void)state;

	/* test case 1 */
	memset(key, 0x0b, 20);
	crypto_hmac_sha256(key, 20, "Hi There", 8, mac);
	assert_hex_equal(mac, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	/* test case 2 */
	crypto_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, mac);
	assert_hex_equal(mac, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	/* test case 3 */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	crypto_hmac_sha256(key, 20, data, 50, mac);
	assert_hex_equal(mac, 32, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

	/* test case 4 */
	for (int i = 0; i < 25; i++)
		key[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	crypto_hmac_sha256(key, 25, data, 50, mac);
	assert_hex_equal(mac, 32, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

	/* test case 6 */
	memset(key, 0xaa, 131);
	crypto_hmac_sha256(key, 131, data6, strlen(data6), mac);
	assert_hex_equal(mac, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

	/* test case 7 */
	crypto_hmac_sha256(key, 131, data7, strlen(data7), mac);
	assert_hex_equal(mac, 32, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* --- scrypt (RFC 7914, section 12) --- */

static void test_scrypt_rfc7914(void **state)
{
	uint8_t out[64];
	struct err e;
	(void)state;
	assert_int_equal(crypto_scrypt("", 0, (const uint8_t *)"", 0, 16, 1, 1, out, 64, &e), 0);
	assert_hex_equal(out, 64,
			 "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
			 "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");

	assert_int_equal(crypto_scrypt("password", 8, (const uint8_t *)"NaCl", 4, 1024, 8, 16, out, 64, &e), 0);
	assert_hex_equal(out, 64,
			 "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
			 "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");

	assert_int_equal(crypto_scrypt("pleaseletmein", 13, (const uint8_t *)"SodiumChloride", 14, 16384, 8, 1, out,
				       64, &e),
			 0);
	assert_hex_equal(out, 64,
			 "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
			 "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887");
}

/* N must be a power of two greater than 1: a bad N is an error, not a crash. */
static void test_scrypt_bad_params(void **state)
{
	uint8_t out[32];
	struct err e;
	(void)state;
	err_clear(&e);
	assert_int_equal(crypto_scrypt("x", 1, (const uint8_t *)"y", 1, 1000, 1, 1, out, 32, &e), ERR_CRYPTO);
	assert_int_equal(e.code, ERR_CRYPTO);
	assert_true(strlen(e.msg) > 0);
}

/* --- SHA-256 (FIPS 180-2) --- */

static void test_sha256_abc(void **state)
{
	uint8_t out[32];
	(void)state;
	crypto_sha256("abc", 3, out);
	assert_hex_equal(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* FIPS 180-2 B.2, the two-block message */
	crypto_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
	assert_hex_equal(out, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha_incremental(void **state)
{
	static uint8_t buf[100000];
	uint64_t seed = 1;
	uint8_t one[32], inc[32];
	crypto_sha *s = crypto_sha_new();
	(void)state;
	unit_rand_fill(&seed, buf, sizeof buf);
	crypto_sha256(buf, sizeof buf, one);
	/* uneven pieces, including empty ones */
	for (size_t off = 0, step = 0; off < sizeof buf; step = (step * 7 + 13) % 5000) {
		size_t n = step < sizeof buf - off ? step : sizeof buf - off;
		crypto_sha_update(s, buf + off, n);
		off += n;
	}
	crypto_sha_final(s, inc);
	assert_memory_equal(one, inc, 32);
	/* final resets: the same object hashes "abc" next */
	crypto_sha_update(s, "ab", 2);
	crypto_sha_update(s, "c", 1);
	crypto_sha_final(s, inc);
	assert_hex_equal(inc, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* and the empty message */
	crypto_sha_final(s, inc);
	assert_hex_equal(inc, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	crypto_sha_free(s);
	crypto_sha_free(NULL);
}

/* --- keys, sealing --- */

static void test_key_raw_round_trip(void **state)
{
	uint8_t raw[CRYPTO_MASTER_LEN], back[CRYPTO_MASTER_LEN];
	uint64_t seed = 7;
	crypto_key *k;
	(void)state;
	unit_rand_fill(&seed, raw, sizeof raw);
	k = crypto_key_from_raw(raw, NULL);
	assert_non_null(k);
	crypto_key_raw(k, back);
	assert_memory_equal(raw, back, sizeof raw);
	crypto_key_free(k);
	crypto_key_free(NULL);
}

/* key material is on a locked page of its own where RLIMIT_MEMLOCK allows a page */
static void test_key_locked(void **state)
{
	uint8_t raw[CRYPTO_MASTER_LEN] = {1}, back[CRYPTO_MASTER_LEN];
	struct rlimit rl;
	crypto_key *k;
	(void)state;
	k = crypto_key_from_raw(raw, NULL);
	assert_non_null(k);
	crypto_key_raw(k, back);
	assert_memory_equal(raw, back, sizeof raw);
	getrlimit(RLIMIT_MEMLOCK, &rl);
	if (rl.rlim_cur >= (rlim_t)sysconf(_SC_PAGESIZE) || geteuid() == 0)
		assert_true(crypto_key_secure(k));
	else
		fprintf(stderr, "SKIP part: RLIMIT_MEMLOCK %llu: keys cannot be locked here\n",
			(unsigned long long)rl.rlim_cur);
	crypto_key_free(k);
}

static void test_random_differs(void **state)
{
	uint8_t a[32], b[32];
	(void)state;
	assert_int_equal(crypto_random(a, sizeof a, NULL), 0);
	assert_int_equal(crypto_random(b, sizeof b, NULL), 0);
	assert_memory_not_equal(a, b, sizeof a);
}

static void test_seal_open_round_trip(void **state)
{
	static const size_t sizes[] = {0, 1, 15, 16, 17, 1000, 65536, 300001};
	const uint8_t ad[] = "blob id or header";
	crypto_key *k = crypto_key_new_random(NULL);
	uint64_t seed = 42;
	(void)state;
	assert_non_null(k);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		uint8_t *pt = malloc(n + 1), *sealed = malloc(n + CRYPTO_SEAL_OVERHEAD), *sealed2;
		uint8_t *out = malloc(n + 1);
		struct err e;
		unit_rand_fill(&seed, pt, n);
		assert_int_equal(crypto_seal(k, ad, sizeof ad, pt, n, sealed, &e), 0);
		assert_int_equal(crypto_open(k, ad, sizeof ad, sealed, n + CRYPTO_SEAL_OVERHEAD, out, &e), 0);
		assert_memory_equal(pt, out, n);
		if (n >= 16) /* really encrypted: the plaintext is not in the sealed bytes */
			assert_memory_not_equal(pt, sealed + CRYPTO_NONCE_LEN, n);
		/* a fresh nonce every time: sealing again gives other bytes */
		sealed2 = malloc(n + CRYPTO_SEAL_OVERHEAD);
		assert_int_equal(crypto_seal(k, ad, sizeof ad, pt, n, sealed2, &e), 0);
		assert_memory_not_equal(sealed, sealed2, CRYPTO_NONCE_LEN);
		free(pt);
		free(sealed);
		free(sealed2);
		free(out);
	}
	crypto_key_free(k);
}

static void test_open_rejects_any_change(void **state)
{
	uint8_t pt[100], sealed[100 + CRYPTO_SEAL_OVERHEAD], out[100], ad[32];
	uint64_t seed = 3;
	crypto_key *k = crypto_key_new_random(NULL), *other = crypto_key_new_random(NULL);
	struct err e;
	(void)state;
	assert_non_null(k);
	assert_non_null(other);
	unit_rand_fill(&seed, pt, sizeof pt);
	unit_rand_fill(&seed, ad, sizeof ad);
	assert_int_equal(crypto_seal(k, ad, sizeof ad, pt, sizeof pt, sealed, NULL), 0);

	/* every byte: nonce, ciphertext and tag */
	for (size_t i = 0; i < sizeof sealed; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			sealed[i] ^= (uint8_t)(1u << bit);
			err_clear(&e);
			assert_int_equal(crypto_open(k, ad, sizeof ad, sealed, sizeof sealed, out, &e), ERR_CORRUPT);
			assert_int_equal(e.code, ERR_CORRUPT);
			sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(crypto_open(k, ad, sizeof ad, sealed, sizeof sealed, out, NULL), 0);

	/* other associated data: one byte changed, shorter, none */
	ad[5] ^= 1;
	assert_int_equal(crypto_open(k, ad, sizeof ad, sealed, sizeof sealed, out, &e), ERR_CORRUPT);
	ad[5] ^= 1;
	assert_int_equal(crypto_open(k, ad, sizeof ad - 1, sealed, sizeof sealed, out, &e), ERR_CORRUPT);
	assert_int_equal(crypto_open(k, NULL, 0, sealed, sizeof sealed, out, &e), ERR_CORRUPT);

	/* another key */
	assert_int_equal(crypto_open(other, ad, sizeof ad, sealed, sizeof sealed, out, &e), ERR_CORRUPT);

	/* truncated: cut tag bytes, or shorter than the overhead */
	assert_int_equal(crypto_open(k, ad, sizeof ad, sealed, sizeof sealed - 1, out, &e), ERR_CORRUPT);
	for (size_t n = 0; n < CRYPTO_SEAL_OVERHEAD; n++)
		assert_int_equal(crypto_open(k, ad, sizeof ad, sealed, n, out, &e), ERR_CORRUPT);

	/* an error without a struct err still returns the code */
	sealed[20] ^= 0x80;
	assert_int_equal(crypto_open(k, ad, sizeof ad, sealed, sizeof sealed, out, NULL), ERR_CORRUPT);
	crypto_key_free(k);
	crypto_key_free(other);
}

/* --- blob ids --- */

static void test_blob_ids(void **state)
{
	static uint8_t data[70000];
	uint8_t raw[CRYPTO_MASTER_LEN], id1[32], id2[32], id3[32], mac[32];
	uint64_t seed = 11;
	crypto_key *k, *other;
	crypto_hasher *h;
	(void)state;
	unit_rand_fill(&seed, raw, sizeof raw);
	unit_rand_fill(&seed, data, sizeof data);
	k = crypto_key_from_raw(raw, NULL);
	other = crypto_key_new_random(NULL);
	assert_non_null(k);
	assert_non_null(other);

	crypto_blob_id(k, data, sizeof data, id1);
	crypto_blob_id(k, data, sizeof data, id2);
	assert_memory_equal(id1, id2, 32); /* deterministic */

	/* it is HMAC-SHA256 under the id half of the master key */
	crypto_hmac_sha256(raw + 32, 32, data, sizeof data, mac);
	assert_memory_equal(id1, mac, 32);

	crypto_blob_id(other, data, sizeof data, id3);
	assert_memory_not_equal(id1, id3, 32); /* keyed */

	data[12345] ^= 1;
	crypto_blob_id(k, data, sizeof data, id3);
	assert_memory_not_equal(id1, id3, 32);
	data[12345] ^= 1;

	/* the reusable hasher agrees with the one-shot id, call after call */
	h = crypto_hasher_new(k);
	for (size_t n = 0; n <= sizeof data; n += 6999) {
		crypto_hasher_id(h, data, n, id2);
		crypto_blob_id(k, data, n, id3);
		assert_memory_equal(id2, id3, 32);
	}
	crypto_hasher_id(h, data, sizeof data, id2);
	assert_memory_equal(id1, id2, 32);
	crypto_hasher_free(h);
	crypto_hasher_free(NULL);
	crypto_key_free(k);
	crypto_key_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcm_known_answers),
		cmocka_unit_test(test_gcm_vector_opens_as_sealed),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_scrypt_rfc7914),
		cmocka_unit_test(test_scrypt_bad_params),
		cmocka_unit_test(test_sha256_abc),
		cmocka_unit_test(test_sha_incremental),
		cmocka_unit_test(test_key_raw_round_trip),
		cmocka_unit_test(test_key_locked),
		cmocka_unit_test(test_random_differs),
		cmocka_unit_test(test_seal_open_round_trip),
		cmocka_unit_test(test_open_rejects_any_change),
		cmocka_unit_test(test_blob_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
