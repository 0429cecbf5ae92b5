/*
 * test_keyfile.c: crypto/keyfile.h.
 *
 * Key files are read from zones, which are untrusted: every malformed input must give
 * ERR_CORRUPT (or ERR_AUTH when only the sealed part is wrong) and never crash. Buffers are
 * allocated at their exact length so ASan catches any read past the end.
 */
#include "../unit.h"

#include "common/util.h"
#include "crypto/keyfile.h"

static const struct keyfile_kdf small_kdf = {10, 8, 1};

/* Layout offsets (docs/format.md): magic 0, version 8, log2n 12, r 16, p 20, created 24, salt 32. */
enum { OFF_VERSION = 8, OFF_LOG2N = 12, OFF_R = 16, OFF_P = 20, OFF_CREATED = 24, OFF_SALT = 32 };

static uint8_t *dup_exact(const uint8_t *buf, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	if (len)
		memcpy(p, buf, len);
	return p;
}

static void same_ids(const crypto_key *a, const crypto_key *b)
{
	uint8_t ia[32], ib[32];
	crypto_blob_id(a, "some chunk", 10, ia);
	crypto_blob_id(b, "some chunk", 10, ib);
	assert_memory_equal(ia, ib, 32);
}

static void test_kdf_default(void **state)
{
	struct keyfile_kdf kdf;
	(void)state;
	keyfile_kdf_default(&kdf);
	assert_int_equal(kdf.log2n, 15);
	assert_int_equal(kdf.r, 8);
	assert_int_equal(kdf.p, 1);
}

static void test_create_open_round_trip(void **state)
{
	uint8_t kf[KEYFILE_LEN], kf2[KEYFILE_LEN], raw[CRYPTO_MASTER_LEN], raw2[CRYPTO_MASTER_LEN];
	crypto_key *k = crypto_key_new_random(NULL), *opened = NULL;
	struct err e;
	(void)state;
	assert_non_null(k);
	assert_int_equal(keyfile_create(k, "correct horse", 13, &small_kdf, 1790000000, kf, &e), 0);
	assert_memory_equal(kf, KEYFILE_MAGIC, 8);
	assert_int_equal(get_le32(kf + OFF_LOG2N), 10);

	assert_int_equal(keyfile_open(kf, sizeof kf, "correct horse", 13, &opened, &e), 0);
	assert_non_null(opened);
	crypto_key_raw(k, raw);
	crypto_key_raw(opened, raw2);
	assert_memory_equal(raw, raw2, sizeof raw);
	same_ids(k, opened);
	crypto_key_free(opened);

	/* a second file for the same key has another salt, so other bytes, and opens the same key */
	assert_int_equal(keyfile_create(k, "correct horse", 13, &small_kdf, 1790000000, kf2, &e), 0);
	assert_memory_not_equal(kf, kf2, sizeof kf);
	assert_int_equal(keyfile_open(kf2, sizeof kf2, "correct horse", 13, &opened, &e), 0);
	same_ids(k, opened);
	crypto_key_free(opened);

	/* passphrases are bytes: an embedded NUL counts, an empty one works */
	assert_int_equal(keyfile_create(k, "a\0b", 3, &small_kdf, 1, kf, &e), 0);
	assert_int_equal(keyfile_open(kf, sizeof kf, "a", 1, &opened, &e), ERR_AUTH);
	assert_null(opened);
	assert_int_equal(keyfile_open(kf, sizeof kf, "a\0b", 3, &opened, &e), 0);
	crypto_key_free(opened);
	assert_int_equal(keyfile_create(k, "", 0, &small_kdf, 1, kf, &e), 0);
	assert_int_equal(keyfile_open(kf, sizeof kf, "", 0, &opened, &e), 0);
	same_ids(k, opened);
	crypto_key_free(opened);
	crypto_key_free(k);
}

static void test_wrong_passphrase(void **state)
{
	uint8_t kf[KEYFILE_LEN];
	crypto_key *k = crypto_key_new_random(NULL), *opened = (crypto_key *)1;
	struct err e;
	(void)state;
	assert_int_equal(keyfile_create(k, "secret", 6, &small_kdf, 5, kf, NULL), 0);
	err_clear(&e);
	assert_int_equal(keyfile_open(kf, sizeof kf, "Secret", 6, &opened, &e), ERR_AUTH);
	assert_null(opened);
	assert_int_equal(e.code, ERR_AUTH);
	assert_non_null(strstr(e.msg, "passphrase"));
	assert_int_equal(keyfile_open(kf, sizeof kf, "secret ", 7, &opened, &e), ERR_AUTH);
	assert_int_equal(keyfile_open(kf, sizeof kf, "secre", 5, &opened, NULL), ERR_AUTH);
	crypto_key_free(k);
}

/* The header is the associated data: changing any header byte that still parses is ERR_AUTH. */
static void test_header_is_authenticated(void **state)
{
	uint8_t kf[KEYFILE_LEN];
	crypto_key *k = crypto_key_new_random(NULL), *opened;
	(void)state;
	assert_int_equal(keyfile_create(k, "pw", 2, &small_kdf, 1234, kf, NULL), 0);
	/* created time and salt: still a key file, but the seal no longer opens */
	for (size_t i = OFF_CREATED; i < 64; i += 5) {
		kf[i] ^= 0x01;
		assert_int_equal(keyfile_open(kf, sizeof kf, "pw", 2, &opened, NULL), ERR_AUTH);
		assert_null(opened);
		kf[i] ^= 0x01;
	}
	/* the sealed key itself */
	for (size_t i = 64; i < KEYFILE_LEN; i += 7) {
		kf[i] ^= 0x40;
		assert_int_equal(keyfile_open(kf, sizeof kf, "pw", 2, &opened, NULL), ERR_AUTH);
		kf[i] ^= 0x40;
	}
	/* r changed but in range: another derived key, so it does not open either */
	put_le32(kf + OFF_R, 4);
	assert_int_equal(keyfile_open(kf, sizeof kf, "pw", 2, &opened, NULL), ERR_AUTH);
	put_le32(kf + OFF_R, 8);
	assert_int_equal(keyfile_open(kf, sizeof kf, "pw", 2, &opened, NULL), 0);
	crypto_key_free(opened);
	crypto_key_free(k);
}

static void expect_corrupt(const uint8_t *buf, size_t len, const char *what)
{
	uint8_t *copy = dup_exact(buf, len);
	crypto_key *opened = (crypto_key *)1;
	struct err e;
	int rc;
	err_clear(&e);
	rc = keyfile_open(copy, len, "pw", 2, &opened, &e);
	if (rc != ERR_CORRUPT)
		print_error("%s: expected ERR_CORRUPT, got %d (%s)\n", what, rc, e.msg);
	assert_int_equal(rc, ERR_CORRUPT);
	assert_int_equal(e.code, ERR_CORRUPT);
	assert_null(opened);
	assert_int_equal(keyfile_open(copy, len, "pw", 2, &opened, NULL), ERR_CORRUPT);
	free(copy);
}

static void test_garbage_is_corrupt(void **state)
{
	uint8_t kf[KEYFILE_LEN], bad[KEYFILE_LEN], big[KEYFILE_LEN + 64];
	uint64_t seed = 99;
	crypto_key *k = crypto_key_new_random(NULL);
	(void)state;
	assert_int_equal(keyfile_create(k, "pw", 2, &small_kdf, 77, kf, NULL), 0);

	/* random bytes of the right length */
	for (int i = 0; i < 100; i++) {
		unit_rand_fill(&seed, bad, sizeof bad);
		expect_corrupt(bad, sizeof bad, "random bytes");
	}
	/* all zeros, all ones */
	memset(bad, 0, sizeof bad);
	expect_corrupt(bad, sizeof bad, "zeros");
	memset(bad, 0xff, sizeof bad);
	expect_corrupt(bad, sizeof bad, "ones");

	/* truncated at every length, and too long */
	for (size_t n = 0; n < KEYFILE_LEN; n++)
		expect_corrupt(kf, n, "truncated");
	memcpy(big, kf, sizeof kf);
	memset(big + sizeof kf, 0, sizeof big - sizeof kf);
	expect_corrupt(big, sizeof kf + 1, "one byte too long");
	expect_corrupt(big, sizeof big, "too long");

	/* wrong magic, wrong version */
	for (int i = 0; i < 8; i++) {
		memcpy(bad, kf, sizeof kf);
		bad[i] ^= 0x20;
		expect_corrupt(bad, sizeof bad, "magic");
	}
	memcpy(bad, kf, sizeof kf);
	put_le32(bad + OFF_VERSION, 2);
	expect_corrupt(bad, sizeof bad, "version 2");
	put_le32(bad + OFF_VERSION, 0);
	expect_corrupt(bad, sizeof bad, "version 0");

	/* scrypt parameters out of range: never run a KDF with them */
	{
		static const struct {
			int off;
			uint32_t v;
		} params[] = {
			{OFF_LOG2N, 0},	 {OFF_LOG2N, 9},	  {OFF_LOG2N, 23}, {OFF_LOG2N, 63},
			{OFF_LOG2N, 64}, {OFF_LOG2N, 0xffffffff}, {OFF_R, 0},	   {OFF_R, 33},
			{OFF_R, 0xffffffff}, {OFF_P, 0},	  {OFF_P, 17},	   {OFF_P, 0xffffffff},
		};
		for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
			memcpy(bad, kf, sizeof kf);
			put_le32(bad + params[i].off, params[i].v);
			expect_corrupt(bad, sizeof bad, "parameters out of range");
		}
	}

	/* a well-formed header over random sealed bytes: parses, does not authenticate */
	for (int i = 0; i < 10; i++) {
		crypto_key *opened;
		memcpy(bad, kf, 64);
		unit_rand_fill(&seed, bad + 64, sizeof bad - 64);
		assert_int_equal(keyfile_open(bad, sizeof bad, "pw", 2, &opened, NULL), ERR_AUTH);
		assert_null(opened);
	}
	crypto_key_free(k);
}

static void test_create_rejects_bad_kdf(void **state)
{
	static const struct keyfile_kdf bad[] = {{9, 8, 1}, {23, 8, 1}, {10, 0, 1}, {10, 33, 1}, {10, 8, 0}, {10, 8, 17}};
	uint8_t kf[KEYFILE_LEN];
	crypto_key *k = crypto_key_new_random(NULL);
	struct err e;
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err_clear(&e);
		assert_int_equal(keyfile_create(k, "pw", 2, &bad[i], 0, kf, &e), ERR_CONFIG);
		assert_int_equal(e.code, ERR_CONFIG);
	}
	crypto_key_free(k);
}

static void test_created(void **state)
{
	uint8_t kf[KEYFILE_LEN], rnd[KEYFILE_LEN];
	uint64_t seed = 5;
	crypto_key *k = crypto_key_new_random(NULL);
	(void)state;
	assert_int_equal(keyfile_create(k, "pw", 2, &small_kdf, 1790012345, kf, NULL), 0);
	assert_int_equal(keyfile_created(kf, sizeof kf), 1790012345);
	/* garbage gives 0 */
	unit_rand_fill(&seed, rnd, sizeof rnd);
	assert_int_equal(keyfile_created(rnd, sizeof rnd), 0);
	for (size_t n = 0; n < KEYFILE_LEN; n += 13) {
		uint8_t *copy = dup_exact(kf, n);
		assert_int_equal(keyfile_created(copy, n), 0);
		free(copy);
	}
	kf[0] ^= 1;
	assert_int_equal(keyfile_created(kf, sizeof kf), 0);
	crypto_key_free(k);
}

/* keyfile_cost reads the work of one try from the header; garbage costs UINT64_MAX. */
static void test_cost(void **state)
{
	static const struct keyfile_kdf big = {12, 4, 3};
	struct keyfile_kdf gen;
	uint8_t kf[KEYFILE_LEN];
	crypto_key *k = crypto_key_new_random(NULL);
	(void)state;
	keyfile_kdf_generated(&gen);
	assert_int_equal(gen.log2n, 10);
	assert_int_equal(gen.r, 1);
	assert_int_equal(gen.p, 1);
	assert_int_equal(keyfile_create(k, "pw", 2, &small_kdf, 1790012345, kf, NULL), 0);
	assert_int_equal(keyfile_cost(kf, sizeof kf), (uint64_t)128 * 8 * 1024);
	assert_int_equal(keyfile_create(k, "pw", 2, &big, 1790012345, kf, NULL), 0);
	assert_int_equal(keyfile_cost(kf, sizeof kf), (uint64_t)128 * 4 * 4096 * 3);
	assert_true(keyfile_cost(kf, sizeof kf - 1) == UINT64_MAX);
	put_le32(kf + 12, 30); /* log2n out of range */
	assert_true(keyfile_cost(kf, sizeof kf) == UINT64_MAX);
	kf[12] = 12;
	kf[0] ^= 1;
	assert_true(keyfile_cost(kf, sizeof kf) == UINT64_MAX);
	crypto_key_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kdf_default),
		cmocka_unit_test(test_create_open_round_trip),
		cmocka_unit_test(test_wrong_passphrase),
		cmocka_unit_test(test_header_is_authenticated),
		cmocka_unit_test(test_garbage_is_corrupt),
		cmocka_unit_test(test_create_rejects_bad_kdf),
		cmocka_unit_test(test_created),
		cmocka_unit_test(test_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
