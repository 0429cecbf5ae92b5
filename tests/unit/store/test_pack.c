/*
 * test_pack.c: store/pack.h.
 *
 * A pack of 50 blobs (compressible and random) built, parsed and decoded again; then damage:
 * any byte of the trailer or header makes pack_parse fail with ERR_CORRUPT, a damaged blob
 * fails to decode, and truncated or random bytes are refused without crashing. Packs under
 * test are copied into buffers of their exact length so ASan sees any read past the end.
 */
#include "../unit.h"

#include "crypto/crypto.h"
#include "store/pack.h"

#define NBLOBS 50

struct fixture {
	crypto_key *key;
	pack_codec *codec;
	pack_builder *b;
	uint8_t *data[NBLOBS];
	size_t len[NBLOBS];
	uint8_t id[NBLOBS][CRYPTO_ID_LEN];
	uint8_t pack_id[32];
	const uint8_t *pack; /* owned by b */
	size_t pack_len;
};

/* Blob i: even ones compress (text-like), odd ones are random; a few edge sizes. */
static void make_blob(int i, uint64_t *seed, uint8_t **data, size_t *len)
{
	static const size_t edge[] = {0, 1, 17, 65536, 262144};
	size_t n = i < 5 ? edge[i] : (size_t)(unit_rand_next(seed) % 100000) + 1;
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	if (i % 2 == 0) {
		static const char text[] = "INSERT INTO t VALUES (42, 'pgtimefs keeps every snapshot');\n";
		for (size_t k = 0; k < n; k++)
			p[k] = (uint8_t)text[(k + (size_t)i) % (sizeof text - 1)];
	} else {
		unit_rand_fill(seed, p, n);
	}
	*data = p;
	*len = n;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	uint64_t seed = 123;
	struct err e;
	assert_non_null(f);
	f->key = crypto_key_new_random(NULL);
	f->codec = pack_codec_new(3);
	f->b = pack_builder_new();
	assert_non_null(f->key);
	assert_int_equal(pack_builder_size(f->b), PACK_HEADER_LEN);
	assert_int_equal(pack_builder_count(f->b), 0);
	for (int i = 0; i < NBLOBS; i++) {
		uint8_t *sealed;
		size_t slen = 0;
		uint32_t off;
		make_blob(i, &seed, &f->data[i], &f->len[i]);
		crypto_blob_id(f->key, f->data[i], f->len[i], f->id[i]);
		sealed = malloc(pack_blob_bound(f->len[i]));
		assert_non_null(sealed);
		assert_int_equal(pack_blob_encode(f->codec, f->key, f->id[i], f->data[i], f->len[i], sealed, &slen, &e),
				 0);
		assert_true(slen <= pack_blob_bound(f->len[i]));
		if (i % 2 == 0 && f->len[i] > 1000) /* text compresses */
			assert_true(slen < f->len[i] / 4);
		if (i % 2 == 1) /* random data is stored raw: flag byte + seal overhead */
			assert_int_equal(slen, f->len[i] + 1 + CRYPTO_SEAL_OVERHEAD);
		off = pack_builder_add(f->b, f->id[i], PACK_BLOB_DATA, (uint32_t)f->len[i], sealed, slen);
		assert_int_equal(off + slen, pack_builder_size(f->b));
		free(sealed);
	}
	assert_int_equal(pack_builder_count(f->b), NBLOBS);
	assert_int_equal(pack_builder_finish(f->b, f->key, f->pack_id, &e), 0);
	f->pack = pack_builder_data(f->b, &f->pack_len);
	assert_int_equal(f->pack_len, pack_builder_size(f->b));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < NBLOBS; i++)
		free(f->data[i]);
	pack_builder_free(f->b);
	pack_codec_free(f->codec);
	crypto_key_free(f->key);
	free(f);
	return 0;
}

static uint8_t *dup_exact(const uint8_t *buf, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	if (len)
		memcpy(p, buf, len);
	return p;
}

static void test_layout(void **state)
{
	struct fixture *f = *state;
	uint8_t sha[32];
	char hex[65], rel[80], want[80];
	uint32_t slen;
	assert_memory_equal(f->pack, PACK_MAGIC, 8);
	assert_int_equal(get_le32(f->pack + 8), 1);
	assert_int_equal(get_le32(f->pack + 12), 0);
	/* the trailer: count x 45-byte entries + 4-byte count, sealed, then its u32 length */
	slen = get_le32(f->pack + f->pack_len - 4);
	assert_int_equal(slen, 4 + NBLOBS * PACK_ENTRY_LEN + CRYPTO_SEAL_OVERHEAD);
	/* the pack id is SHA-256 of every byte */
	crypto_sha256(f->pack, f->pack_len, sha);
	assert_memory_equal(sha, f->pack_id, 32);
	pack_name(f->pack_id, hex);
	assert_int_equal(strlen(hex), 64);
	pack_relpath(f->pack_id, rel);
	snprintf(want, sizeof want, "packs/%.2s/%s", hex, hex);
	assert_string_equal(rel, want);
}

static void test_parse_and_decode(void **state)
{
	struct fixture *f = *state;
	uint8_t *pack = dup_exact(f->pack, f->pack_len);
	struct pack_entry *entries = NULL;
	const struct pack_entry *built;
	size_t n = 0, nbuilt;
	struct err e;
	built = pack_builder_entries(f->b, &nbuilt);
	assert_int_equal(nbuilt, NBLOBS);
	assert_int_equal(pack_parse(f->key, pack, f->pack_len, &entries, &n, &e), 0);
	assert_int_equal(n, NBLOBS);
	for (size_t i = 0; i < n; i++) {
		uint8_t *out = malloc(entries[i].raw + 1);
		assert_memory_equal(entries[i].id, built[i].id, CRYPTO_ID_LEN);
		assert_memory_equal(entries[i].id, f->id[i], CRYPTO_ID_LEN);
		assert_int_equal(entries[i].type, PACK_BLOB_DATA);
		assert_int_equal(entries[i].offset, built[i].offset);
		assert_int_equal(entries[i].length, built[i].length);
		assert_int_equal(entries[i].raw, f->len[i]);
		if (i > 0)
			assert_int_equal(entries[i].offset, entries[i - 1].offset + entries[i - 1].length);
		else
			assert_int_equal(entries[i].offset, PACK_HEADER_LEN);
		assert_int_equal(pack_blob_decode(f->codec, f->key, entries[i].id, pack + entries[i].offset,
						  entries[i].length, out, entries[i].raw, &e),
				 0);
		assert_memory_equal(out, f->data[i], f->len[i]);
		free(out);
	}
	free(entries);
	free(pack);
}

/* Blobs decode with a codec other than the one that encoded them (another thread's). */
static void test_decode_other_codec(void **state)
{
	struct fixture *f = *state;
	const struct pack_entry *en;
	size_t n;
	pack_codec *c = pack_codec_new(19);
	en = pack_builder_entries(f->b, &n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *out = malloc(en[i].raw + 1);
		assert_int_equal(
			pack_blob_decode(c, f->key, en[i].id, f->pack + en[i].offset, en[i].length, out, en[i].raw, NULL), 0);
		assert_memory_equal(out, f->data[i], en[i].raw);
		free(out);
	}
	pack_codec_free(c);
	pack_codec_free(NULL);
}

static void test_trailer_damage(void **state)
{
	struct fixture *f = *state;
	uint8_t *pack = dup_exact(f->pack, f->pack_len);
	uint32_t slen = get_le32(pack + f->pack_len - 4);
	size_t start = f->pack_len - 4 - slen;
	struct pack_entry *entries = (struct pack_entry *)1;
	size_t n = 99;
	struct err e;
	/* every byte of the sealed trailer and of its length */
	for (size_t i = start; i < f->pack_len; i++) {
		pack[i] ^= 0x01;
		err_clear(&e);
		assert_int_equal(pack_parse(f->key, pack, f->pack_len, &entries, &n, &e), ERR_CORRUPT);
		assert_null(entries);
		assert_int_equal(n, 0);
		assert_int_equal(e.code, ERR_CORRUPT);
		pack[i] ^= 0x01;
		entries = (struct pack_entry *)1;
	}
	/* the header is covered too (magic, version, reserved word) */
	for (size_t i = 0; i < PACK_HEADER_LEN; i++) {
		pack[i] ^= 0x80;
		assert_int_equal(pack_parse(f->key, pack, f->pack_len, &entries, &n, NULL), ERR_CORRUPT);
		pack[i] ^= 0x80;
	}
	/* the trailer length pointing elsewhere, big or small */
	{
		static const uint32_t lens[] = {0, 1, 27, 28, 31, 32, 33, 100, 0x7fffffff, 0xffffffff};
		for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
			put_le32(pack + f->pack_len - 4, lens[i]);
			assert_int_equal(pack_parse(f->key, pack, f->pack_len, &entries, &n, NULL), ERR_CORRUPT);
		}
		put_le32(pack + f->pack_len - 4, (uint32_t)(f->pack_len - PACK_HEADER_LEN - 4));
		assert_int_equal(pack_parse(f->key, pack, f->pack_len, &entries, &n, NULL), ERR_CORRUPT);
		put_le32(pack + f->pack_len - 4, (uint32_t)(f->pack_len - PACK_HEADER_LEN - 3));
		assert_int_equal(pack_parse(f->key, pack, f->pack_len, &entries, &n, NULL), ERR_CORRUPT);
		put_le32(pack + f->pack_len - 4, slen);
	}
	/* another key cannot open the trailer */
	{
		crypto_key *other = crypto_key_new_random(NULL);
		assert_int_equal(pack_parse(other, pack, f->pack_len, &entries, &n, NULL), ERR_CORRUPT);
		crypto_key_free(other);
	}
	/* undamaged again: parses */
	assert_int_equal(pack_parse(f->key, pack, f->pack_len, &entries, &n, NULL), 0);
	assert_int_equal(n, NBLOBS);
	free(entries);
	free(pack);
}

/* Blob bytes are not covered by the trailer: the pack parses, the damaged blob does not decode. */
static void test_blob_damage(void **state)
{
	struct fixture *f = *state;
	uint8_t *pack = dup_exact(f->pack, f->pack_len);
	const struct pack_entry *en;
	size_t n, nparsed;
	struct pack_entry *parsed;
	en = pack_builder_entries(f->b, &n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *out = malloc(en[i].raw + 1);
		size_t where[3] = {en[i].offset, en[i].offset + en[i].length / 2, en[i].offset + en[i].length - 1};
		for (int w = 0; w < 3; w++) {
			struct err e;
			pack[where[w]] ^= 0x10;
			assert_int_equal(pack_parse(f->key, pack, f->pack_len, &parsed, &nparsed, NULL), 0);
			free(parsed);
			err_clear(&e);
			assert_int_equal(pack_blob_decode(f->codec, f->key, en[i].id, pack + en[i].offset, en[i].length,
							  out, en[i].raw, &e),
					 ERR_CORRUPT);
			assert_int_equal(e.code, ERR_CORRUPT);
			pack[where[w]] ^= 0x10;
		}
		/* the wrong id (a blob moved under another id), the wrong length */
		if (i > 0)
			assert_int_equal(pack_blob_decode(f->codec, f->key, en[i - 1].id, pack + en[i].offset,
							  en[i].length, out, en[i].raw, NULL),
					 ERR_CORRUPT);
		assert_int_equal(pack_blob_decode(f->codec, f->key, en[i].id, pack + en[i].offset, en[i].length - 1,
						  out, en[i].raw, NULL),
				 ERR_CORRUPT);
		if (en[i].raw > 0)
			assert_int_equal(pack_blob_decode(f->codec, f->key, en[i].id, pack + en[i].offset, en[i].length,
							  out, en[i].raw - 1, NULL),
					 ERR_CORRUPT);
		free(out);
	}
	/* impossible lengths */
	{
		uint8_t out[16];
		for (size_t len = 0; len <= CRYPTO_SEAL_OVERHEAD; len++)
			assert_int_equal(pack_blob_decode(f->codec, f->key, en[0].id, pack + PACK_HEADER_LEN, len, out, 0, NULL),
					 ERR_CORRUPT);
	}
	free(pack);
}

/* A catalog that claims more raw bytes than the blob holds must not make decode overrun out. */
static void test_decode_raw_larger(void **state)
{
	struct fixture *f = *state;
	const struct pack_entry *en;
	size_t n;
	en = pack_builder_entries(f->b, &n);
	for (size_t i = 5; i < 9; i++) { /* one compressed and one raw blob at least */
		size_t raw = en[i].raw + 100;
		uint8_t *out = malloc(raw);
		assert_int_equal(pack_blob_decode(f->codec, f->key, en[i].id, f->pack + en[i].offset, en[i].length, out,
						  raw, NULL),
				 ERR_CORRUPT);
		free(out);
	}
}

static void test_truncated_and_garbage(void **state)
{
	struct fixture *f = *state;
	struct pack_entry *entries;
	size_t n, small_len;
	uint64_t seed = 555;
	pack_builder *b = pack_builder_new();
	const uint8_t *small;
	uint8_t pid[32];

	/* a small pack cut at every length */
	for (int i = 5; i < 10; i++) {
		uint8_t sealed[256];
		size_t slen;
		assert_true(f->len[i] >= 100);
		assert_int_equal(pack_blob_encode(f->codec, f->key, f->id[i], f->data[i], 100, sealed, &slen, NULL), 0);
		pack_builder_add(b, f->id[i], PACK_BLOB_DATA, 100, sealed, slen);
	}
	assert_int_equal(pack_builder_finish(b, f->key, pid, NULL), 0);
	small = pack_builder_data(b, &small_len);
	for (size_t len = 0; len < small_len; len++) {
		uint8_t *pack = dup_exact(small, len);
		assert_int_equal(pack_parse(f->key, pack, len, &entries, &n, NULL), ERR_CORRUPT);
		free(pack);
	}
	/* the big one: a few cuts near both ends and in the middle */
	{
		static const size_t cuts[] = {0, 1, 15, 16, 17, 19, 20, 47, 48, 49, 1000};
		for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
			uint8_t *pack = dup_exact(f->pack, cuts[i]);
			assert_int_equal(pack_parse(f->key, pack, cuts[i], &entries, &n, NULL), ERR_CORRUPT);
			free(pack);
		}
		for (size_t k = 1; k < 8; k++) {
			size_t len = k < 6 ? f->pack_len - k : f->pack_len / k;
			uint8_t *pack = dup_exact(f->pack, len);
			assert_int_equal(pack_parse(f->key, pack, len, &entries, &n, NULL), ERR_CORRUPT);
			free(pack);
		}
	}
	/* random bytes, with and without a valid header and a trailer length that fits */
	for (int i = 0; i < 300; i++) {
		size_t len = (size_t)(unit_rand_next(&seed) % 5000);
		uint8_t *pack = malloc(len ? len : 1);
		unit_rand_fill(&seed, pack, len);
		if (i % 2 && len >= PACK_HEADER_LEN)
			memcpy(pack, f->pack, PACK_HEADER_LEN);
		if (i % 4 == 3 && len >= PACK_HEADER_LEN + 4)
			put_le32(pack + len - 4, (uint32_t)(unit_rand_next(&seed) % (len - PACK_HEADER_LEN - 3)));
		assert_int_equal(pack_parse(f->key, pack, len, &entries, &n, NULL), ERR_CORRUPT);
		free(pack);
	}
	pack_builder_free(b);
}

/* A trailer that authenticates but lists entries outside the blob area is refused. */
static void test_entries_outside(void **state)
{
	struct fixture *f = *state;
	static const uint8_t sealed_dummy[64];
	uint8_t id[CRYPTO_ID_LEN] = {1}, pid[32];
	pack_builder *b = pack_builder_new();
	struct pack_entry *entries;
	size_t n, len;
	const uint8_t *data;
	struct err e;
	/* a lying builder entry: add() records what it is told; make the length overrun */
	pack_builder_add(b, id, PACK_BLOB_DATA, 10, sealed_dummy, sizeof sealed_dummy);
	{
		size_t ne;
		struct pack_entry *en = (struct pack_entry *)pack_builder_entries(b, &ne);
		en[0].length = 1000; /* past the blob area */
	}
	assert_int_equal(pack_builder_finish(b, f->key, pid, &e), 0);
	data = pack_builder_data(b, &len);
	assert_int_equal(pack_parse(f->key, data, len, &entries, &n, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "outside"));

	/* an offset inside the header */
	pack_builder_reset(b);
	pack_builder_add(b, id, PACK_BLOB_DATA, 10, sealed_dummy, sizeof sealed_dummy);
	{
		size_t ne;
		struct pack_entry *en = (struct pack_entry *)pack_builder_entries(b, &ne);
		en[0].offset = 3;
	}
	assert_int_equal(pack_builder_finish(b, f->key, pid, &e), 0);
	data = pack_builder_data(b, &len);
	assert_int_equal(pack_parse(f->key, data, len, &entries, &n, &e), ERR_CORRUPT);
	pack_builder_free(b);
}

/* An empty pack, and a builder reused after reset. */
static void test_empty_and_reset(void **state)
{
	struct fixture *f = *state;
	pack_builder *b = pack_builder_new();
	uint8_t pid[32], pid2[32], sealed[64];
	struct pack_entry *entries;
	size_t n, len, slen;
	const uint8_t *data;
	assert_int_equal(pack_builder_finish(b, f->key, pid, NULL), 0);
	data = pack_builder_data(b, &len);
	assert_int_equal(len, PACK_HEADER_LEN + 4 + CRYPTO_SEAL_OVERHEAD + 4);
	assert_int_equal(pack_parse(f->key, data, len, &entries, &n, NULL), 0);
	assert_int_equal(n, 0);
	free(entries);

	pack_builder_reset(b);
	assert_int_equal(pack_builder_size(b), PACK_HEADER_LEN);
	assert_int_equal(pack_builder_count(b), 0);
	assert_int_equal(pack_blob_encode(f->codec, f->key, f->id[2], f->data[2], f->len[2], sealed, &slen, NULL), 0);
	pack_builder_add(b, f->id[2], PACK_BLOB_DATA, (uint32_t)f->len[2], sealed, slen);
	assert_int_equal(pack_builder_finish(b, f->key, pid2, NULL), 0);
	assert_memory_not_equal(pid, pid2, 32);
	data = pack_builder_data(b, &len);
	assert_int_equal(pack_parse(f->key, data, len, &entries, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(entries[0].raw, f->len[2]);
	free(entries);
	pack_builder_free(b);
	pack_builder_free(NULL);
}

/* A 64 KiB block of 8 KiB pages of rows (numbers that do not compress away, blank filler). */
static void make_page_block(uint64_t *seed, uint8_t *p, size_t n)
{
	for (size_t k = 0; k + 100 <= n; k += 100) {
		snprintf((char *)p + k, 101, "%020llu|%-78s", (unsigned long long)unit_rand_next(seed), "row");
		p[k + 99] = '\n';
	}
	memset(p + n - n % 100, 0, n % 100);
}

/*
 * Delta blobs: a block with a few rows changed against its previous version is stored as a
 * delta (flag 2, naming its base) far smaller than its plain form, and decodes back only
 * with that base: not without one, not with another base id, not with damaged base bytes.
 * Unrelated data is stored plain even when a base is offered.
 */
static void test_delta(void **state)
{
	enum { N = 65536 };
	struct fixture *f = *state;
	uint8_t *base = malloc(N), *data = malloc(N), *out = malloc(N), *bad = malloc(N);
	uint8_t *sealed = malloc(pack_blob_bound(N)), *plain = malloc(pack_blob_bound(N));
	uint8_t id[32], base_id[32], named[32];
	uint64_t seed = 99;
	size_t slen, plen;
	int delta = -1;
	struct err e;
	assert_non_null(base);
	make_page_block(&seed, base, N);
	memcpy(data, base, N);
	for (int i = 0; i < 40; i++) { /* 40 rows get a new value */
		size_t row = (size_t)(unit_rand_next(&seed) % (N / 100));
		snprintf((char *)data + row * 100, 21, "%020llu", (unsigned long long)unit_rand_next(&seed));
		data[row * 100 + 20] = '|';
	}
	crypto_blob_id(f->key, base, N, base_id);
	crypto_blob_id(f->key, data, N, id);

	assert_int_equal(pack_blob_encode(f->codec, f->key, id, data, N, plain, &plen, NULL), 0);
	assert_int_equal(pack_blob_encode_delta(f->codec, f->key, id, data, N, base_id, base, N, 0, sealed, &slen, &delta, &e),
			 0);
	assert_int_equal(delta, 1);
	assert_true(slen * 4 < plen); /* a few rows cost far less than the block */
	assert_int_equal(pack_blob_flag(f->codec, f->key, id, sealed, slen, named, NULL), PACK_FLAG_DELTA);
	assert_memory_equal(named, base_id, 32);
	assert_int_equal(pack_blob_flag(f->codec, f->key, id, plain, plen, NULL, NULL), PACK_FLAG_ZSTD);

	memset(out, 0, N);
	assert_int_equal(pack_blob_decode_delta(f->codec, f->key, id, sealed, slen, base_id, base, N, out, N, &e), 0);
	assert_memory_equal(out, data, N);
	/* a plain blob decodes whether or not a base is offered */
	assert_int_equal(pack_blob_decode_delta(f->codec, f->key, id, plain, plen, base_id, base, N, out, N, NULL), 0);
	assert_memory_equal(out, data, N);

	/* no base, another base id, damaged base bytes, a base cut short: corrupt, never wrong bytes */
	assert_int_equal(pack_blob_decode(f->codec, f->key, id, sealed, slen, out, N, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "delta"));
	assert_int_equal(pack_blob_decode_delta(f->codec, f->key, id, sealed, slen, id, base, N, out, N, &e), ERR_CORRUPT);
	memcpy(bad, base, N);
	bad[12345] ^= 1;
	assert_int_equal(pack_blob_decode_delta(f->codec, f->key, id, sealed, slen, base_id, bad, N, out, N, &e),
			 ERR_CORRUPT);
	assert_int_equal(pack_blob_decode_delta(f->codec, f->key, id, sealed, slen, base_id, base, N / 2, out, N, &e),
			 ERR_CORRUPT);
	/* the codec is not left holding a prefix: the next plain blob decodes */
	assert_int_equal(pack_blob_decode(f->codec, f->key, id, plain, plen, out, N, NULL), 0);
	assert_memory_equal(out, data, N);
	/* and still decodes the delta with the right base */
	assert_int_equal(pack_blob_decode_delta(f->codec, f->key, id, sealed, slen, base_id, base, N, out, N, NULL), 0);
	assert_memory_equal(out, data, N);

	/* unrelated data: the base does not help, the blob is stored on its own */
	unit_rand_fill(&seed, bad, N);
	crypto_blob_id(f->key, bad, N, id);
	assert_int_equal(pack_blob_encode_delta(f->codec, f->key, id, bad, N, base_id, base, N, 0, sealed, &slen, &delta, NULL),
			 0);
	assert_int_equal(delta, 0);
	assert_int_equal(pack_blob_flag(f->codec, f->key, id, sealed, slen, NULL, NULL), PACK_FLAG_RAW);
	assert_int_equal(pack_blob_decode(f->codec, f->key, id, sealed, slen, out, N, NULL), 0);
	assert_memory_equal(out, bad, N);
	/* the expected plain size decides without a second compression: a large hint keeps a
	 * delta (it still decodes) as long as it fits the blob's bound; a hint of 1 falls back to
	 * comparing with the plain blob */
	assert_int_equal(pack_blob_encode_delta(f->codec, f->key, id, data, N, base_id, base, N, 4 * N, sealed, &slen,
						&delta, NULL),
			 0);
	assert_int_equal(delta, 1);
	assert_int_equal(pack_blob_decode_delta(f->codec, f->key, id, sealed, slen, base_id, base, N, out, N, NULL), 0);
	assert_memory_equal(out, data, N);
	assert_int_equal(pack_blob_encode_delta(f->codec, f->key, id, bad, N, base_id, base, N, 4 * N, sealed, &slen,
						&delta, NULL),
			 0);
	assert_int_equal(delta, 0); /* random bytes: the delta is larger than the raw chunk */
	assert_true(slen <= pack_blob_bound(N));
	assert_int_equal(pack_blob_encode_delta(f->codec, f->key, id, bad, N, base_id, base, N, 1, sealed, &slen, &delta,
						NULL),
			 0);
	assert_int_equal(delta, 0);
	/* and a plain encode after a delta attempt carries no prefix: decodes without a base */
	assert_int_equal(pack_blob_encode_delta(f->codec, f->key, id, data, N, NULL, NULL, 0, 0, sealed, &slen, &delta, NULL),
			 0);
	assert_int_equal(delta, 0);
	assert_int_equal(pack_blob_decode(f->codec, f->key, id, sealed, slen, out, N, NULL), 0);
	assert_memory_equal(out, data, N);
	free(base);
	free(data);
	free(out);
	free(bad);
	free(sealed);
	free(plain);
}

/*
 * Encoded ids (pack_blob_encode_eid, pack_blob_seal_encoded): the id is HMAC-SHA256 under the
 * encoded-id key over the blob's opened plaintext (flag and payload), for a compressed and a
 * raw blob alike; the same data always get the same id (the nonce differs, the id does not),
 * from this codec after a delta and from a fresh codec alike; other data another id; the id
 * is neither the plain blob id nor the encoded-id HMAC of the raw data; the encoded-id key is
 * HMAC-SHA256(key = CRYPTO_EID_LABEL, message = id key), computed here from the raw master
 * key, and is not the plain id of a chunk holding the label; the blob decodes like any other.
 * A seal without an encoding left in the codec is refused.
 */
static void test_encoded_id(void **state)
{
	enum { N = 65536 };
	struct fixture *f = *state;
	uint8_t *text = malloc(N), *rnd = malloc(N), *out = malloc(N), *opened = malloc(pack_blob_bound(N));
	uint8_t *s1 = malloc(pack_blob_bound(N)), *s2 = malloc(pack_blob_bound(N));
	uint8_t id1[32], id2[32], want[32], plain_id[32], master[CRYPTO_MASTER_LEN], eid_key[32];
	crypto_hasher *h = crypto_hasher_new_encoded(f->key), *plain = crypto_hasher_new(f->key);
	pack_codec *fresh = pack_codec_new(3);
	uint64_t seed = 7;
	size_t l1, l2;
	struct err e;
	assert_non_null(opened);
	make_page_block(&seed, text, N);
	unit_rand_fill(&seed, rnd, N);
	crypto_key_raw(f->key, master);
	crypto_hmac_sha256((const uint8_t *)CRYPTO_EID_LABEL, strlen(CRYPTO_EID_LABEL), master + 32, 32, eid_key);
	crypto_blob_id(f->key, CRYPTO_EID_LABEL, strlen(CRYPTO_EID_LABEL), want);
	assert_memory_not_equal(eid_key, want, 32);
	for (int k = 0; k < 2; k++) {
		const uint8_t *data = k ? rnd : text;
		pack_blob_encode_eid(f->codec, h, data, N, id1);
		assert_int_equal(pack_blob_seal_encoded(f->codec, f->key, id1, s1, &l1, &e), 0);
		assert_true(l1 <= pack_blob_bound(N));
		assert_int_equal(pack_blob_seal_encoded(f->codec, f->key, id1, s2, &l2, &e), ERR_INTERNAL);
		/* the id is the HMAC of the opened plaintext under the derived key */
		assert_int_equal(crypto_open(f->key, id1, 32, s1, l1, opened, &e), 0);
		assert_int_equal(opened[0], k ? PACK_FLAG_RAW : PACK_FLAG_ZSTD);
		crypto_hmac_sha256(eid_key, 32, opened, l1 - CRYPTO_SEAL_OVERHEAD, want);
		assert_memory_equal(id1, want, 32);
		if (!k)
			assert_true(l1 < N / 2);
		else
			assert_int_equal(l1, N + 1 + CRYPTO_SEAL_OVERHEAD);
		/* deterministic: after this codec made a delta, and from a fresh codec */
		crypto_blob_id(f->key, data, N, plain_id);
		assert_int_equal(pack_blob_encode_delta(f->codec, f->key, plain_id, data, N, plain_id, text, N, 0, s2, &l2, NULL,
							NULL),
				 0);
		pack_blob_encode_eid(f->codec, h, data, N, id2);
		assert_memory_equal(id1, id2, 32);
		pack_blob_encode_eid(fresh, h, data, N, id2);
		assert_memory_equal(id1, id2, 32);
		assert_int_equal(pack_blob_seal_encoded(fresh, f->key, id2, s2, &l2, &e), 0);
		assert_int_equal(l1, l2);
		assert_memory_not_equal(s1, s2, l1); /* a fresh nonce */
		/* neither the plain id nor the encoded-id HMAC of the raw bytes */
		assert_memory_not_equal(id1, plain_id, 32);
		crypto_hasher_id(plain, data, N, want);
		assert_memory_equal(want, plain_id, 32);
		crypto_hasher_id(h, data, N, want);
		assert_memory_not_equal(id1, want, 32);
		/* decodes like any blob; another id as AAD does not open it */
		assert_int_equal(pack_blob_decode(f->codec, f->key, id1, s1, l1, out, N, &e), 0);
		assert_memory_equal(out, data, N);
		assert_int_equal(pack_blob_decode(f->codec, f->key, plain_id, s1, l1, out, N, &e), ERR_CORRUPT);
	}
	/* other data, another id */
	pack_blob_encode_eid(f->codec, h, text, N, id1);
	text[N / 2] ^= 1;
	pack_blob_encode_eid(f->codec, h, text, N, id2);
	assert_memory_not_equal(id1, id2, 32);
	pack_codec_free(fresh);
	crypto_hasher_free(h);
	crypto_hasher_free(plain);
	free(text);
	free(rnd);
	free(out);
	free(opened);
	free(s1);
	free(s2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_parse_and_decode),
		cmocka_unit_test(test_decode_other_codec),
		cmocka_unit_test(test_trailer_damage),
		cmocka_unit_test(test_blob_damage),
		cmocka_unit_test(test_decode_raw_larger),
		cmocka_unit_test(test_truncated_and_garbage),
		cmocka_unit_test(test_entries_outside),
		cmocka_unit_test(test_empty_and_reset),
		cmocka_unit_test(test_delta),
		cmocka_unit_test(test_encoded_id),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
