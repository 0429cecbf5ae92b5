/*
 * test_chunker.c: store/chunker.h.
 *
 * Which files get fixed blocks, and the FastCDC properties dedup depends on: cuts are a
 * function of the content (same seed, same cuts), sizes stay in [min, max], the average is
 * near cdc_avg, and an insert near the start of a file moves only the boundaries near it.
 */
#include "../unit.h"

#include "crypto/crypto.h"
#include "store/chunker.h"

#define MIB (1u << 20)

/* --- which files are paged --- */

static void test_is_paged(void **state)
{
	static const char *paged[] = {
		"base/1/16384",
		"base/1/16384.2",
		"base/1/16384_fsm",
		"base/1/16384_vm",
		"base/1/16384_init",
		"base/1/16384_fsm.1",
		"global/1262_vm",
		"global/1262",
		"pg_tblspc/16385/PG_16_202307071/16384/16390",
		"pg_wal/000000010000000000000001",
		"pg_wal/00000001000000000000000A",
		"pg_wal/00000001000000A0000000ff",
		"16384",
	};
	static const char *not_paged[] = {
		"PG_VERSION",
		"postgresql.conf",
		"base/1/pg_filenode.map",
		"base/1/PG_VERSION",
		"16384.x",
		"16384.",
		"16384_fsm.",
		"16384_foo",
		"16384_vmx",
		"16384_",
		"global/pg_control",
		"pg_wal/000000010000000000000001.partial",
		"pg_wal/00000002.history",
		"pg_wal/00000001000000000000000G",
		"pg_wal/archive_status/000000010000000000000001.done",
		"backup_label",
		"base/1/",
		"",
	};
	(void)state;
	for (size_t i = 0; i < sizeof paged / sizeof paged[0]; i++) {
		if (!chunker_is_paged(paged[i]))
			print_error("\"%s\" should be paged\n", paged[i]);
		assert_true(chunker_is_paged(paged[i]));
	}
	for (size_t i = 0; i < sizeof not_paged / sizeof not_paged[0]; i++) {
		if (chunker_is_paged(not_paged[i]))
			print_error("\"%s\" should not be paged\n", not_paged[i]);
		assert_false(chunker_is_paged(not_paged[i]));
	}
}

/* --- parameters --- */

static void test_params(void **state)
{
	struct chunker_params p, q;
	chunker *c;
	(void)state;
	chunker_params_default(&p);
	assert_true(chunker_params_valid(&p));
	assert_int_equal(p.block_size % 8192, 0);
	assert_true(p.cdc_min < p.cdc_avg && p.cdc_avg < p.cdc_max);
	c = chunker_new(&p);
	assert_int_equal(chunker_block_size(c), p.block_size);
	assert_int_equal(chunker_max(c), p.cdc_max > p.block_size ? p.cdc_max : p.block_size);
	chunker_free(c);

	q = p;
	q.block_size = 1u << 20; /* blocks larger than cdc_max */
	c = chunker_new(&q);
	assert_int_equal(chunker_max(c), 1u << 20);
	chunker_free(c);
	chunker_free(NULL);

	q = p;
	q.cdc_avg = 60000;
	assert_false(chunker_params_valid(&q)); /* not a power of two */
	q = p;
	q.cdc_min = q.cdc_avg;
	assert_false(chunker_params_valid(&q));
	q = p;
	q.cdc_max = q.cdc_avg;
	assert_false(chunker_params_valid(&q));
	q = p;
	q.block_size = 10000;
	assert_false(chunker_params_valid(&q));
	q = p;
	q.block_size = 0;
	assert_false(chunker_params_valid(&q));
	q = p;
	q.cdc_min = 32;
	assert_false(chunker_params_valid(&q));
	q = p;
	q.cdc_max = 16u << 20;
	assert_false(chunker_params_valid(&q));
}

/* --- FastCDC --- */

/* Cuts buf into chunks; returns the count and their lengths in *lens (malloc'ed). */
static size_t chunk_all(const chunker *c, const uint8_t *buf, size_t len, size_t **lens)
{
	size_t n = 0, cap = 64, pos = 0;
	*lens = malloc(cap * sizeof **lens);
	assert_non_null(*lens);
	while (pos < len) {
		size_t cut = chunker_cdc_cut(c, buf + pos, len - pos);
		assert_true(cut > 0);
		assert_true(cut <= len - pos);
		if (n == cap) {
			cap *= 2;
			*lens = realloc(*lens, cap * sizeof **lens);
			assert_non_null(*lens);
		}
		(*lens)[n++] = cut;
		pos += cut;
	}
	return n;
}

static void small_params(struct chunker_params *p)
{
	chunker_params_default(p);
	p->cdc_min = 2048;
	p->cdc_avg = 8192;
	p->cdc_max = 65536;
	p->seed = 0x5eed5eed12345678ull;
	assert_true(chunker_params_valid(p));
}

static void test_cdc_bounds_and_average(void **state)
{
	const size_t len = 16 * MIB;
	uint8_t *buf = malloc(len);
	uint64_t seed = 2026;
	struct chunker_params params[2];
	(void)state;
	assert_non_null(buf);
	unit_rand_fill(&seed, buf, len);
	chunker_params_default(&params[0]);
	params[0].seed = 0xabcdef;
	small_params(&params[1]);
	for (int k = 0; k < 2; k++) {
		const struct chunker_params *p = &params[k];
		chunker *c = chunker_new(p);
		size_t *lens, n = chunk_all(c, buf, len, &lens), total = 0;
		double avg;
		for (size_t i = 0; i < n; i++) {
			if (i + 1 < n) {
				assert_in_range(lens[i], p->cdc_min, p->cdc_max);
			} else {
				assert_true(lens[i] <= p->cdc_max);
			}
			total += lens[i];
		}
		assert_int_equal(total, len);
		avg = (double)len / (double)n;
		print_message("cdc_avg %u: %zu chunks, average %.0f bytes\n", p->cdc_avg, n, avg);
		assert_true(avg >= 0.5 * p->cdc_avg && avg <= 2.0 * p->cdc_avg);
		free(lens);
		chunker_free(c);
	}
	free(buf);
}

/* Chunks of a buffer that does not look random: zeros, a short repeating pattern. */
static void test_cdc_low_entropy(void **state)
{
	const size_t len = 2 * MIB;
	uint8_t *buf = malloc(len);
	struct chunker_params p;
	chunker *c;
	(void)state;
	small_params(&p);
	c = chunker_new(&p);
	for (int pattern = 0; pattern < 2; pattern++) {
		size_t *lens, n, total = 0;
		for (size_t i = 0; i < len; i++)
			buf[i] = pattern ? (uint8_t)(i % 7) : 0;
		n = chunk_all(c, buf, len, &lens);
		for (size_t i = 0; i < n; i++) {
			if (i + 1 < n)
				assert_in_range(lens[i], p.cdc_min, p.cdc_max);
			total += lens[i];
		}
		assert_int_equal(total, len);
		free(lens);
	}
	chunker_free(c);
	free(buf);
}

static void test_cdc_short_input(void **state)
{
	struct chunker_params p;
	uint8_t buf[4096];
	uint64_t seed = 1;
	chunker *c;
	(void)state;
	small_params(&p);
	c = chunker_new(&p);
	unit_rand_fill(&seed, buf, sizeof buf);
	/* at EOF, anything up to cdc_min is one chunk */
	assert_int_equal(chunker_cdc_cut(c, buf, 0), 0);
	assert_int_equal(chunker_cdc_cut(c, buf, 1), 1);
	assert_int_equal(chunker_cdc_cut(c, buf, p.cdc_min), p.cdc_min);
	assert_true(chunker_cdc_cut(c, buf, sizeof buf) <= sizeof buf);
	chunker_free(c);
}

static void test_cdc_deterministic(void **state)
{
	const size_t len = 4 * MIB;
	uint8_t *buf = malloc(len);
	uint64_t seed = 77;
	struct chunker_params p, other;
	chunker *c1, *c2, *c3;
	size_t *l1, *l2, *l3, n1, n2, n3, same = 0;
	(void)state;
	unit_rand_fill(&seed, buf, len);
	small_params(&p);
	other = p;
	other.seed ^= 1;
	c1 = chunker_new(&p);
	c2 = chunker_new(&p);
	c3 = chunker_new(&other);
	n1 = chunk_all(c1, buf, len, &l1);
	n2 = chunk_all(c2, buf, len, &l2);
	n3 = chunk_all(c3, buf, len, &l3);
	assert_int_equal(n1, n2);
	assert_memory_equal(l1, l2, n1 * sizeof *l1);
	/* another seed cuts elsewhere */
	for (size_t i = 0; i < n1 && i < n3; i++)
		same += l1[i] == l3[i];
	assert_true(n1 != n3 || same < n1 / 2);

	/* the cut depends only on the first cdc_max bytes: a longer buffer does not move it */
	for (size_t pos = 0, i = 0; i < 50; pos += l1[i], i++) {
		size_t cut = chunker_cdc_cut(c1, buf + pos, p.cdc_max);
		assert_int_equal(cut, l1[i]);
	}
	free(l1);
	free(l2);
	free(l3);
	chunker_free(c1);
	chunker_free(c2);
	chunker_free(c3);
	free(buf);
}

/* Sorted chunk hashes of buf, for counting what two versions share. */
static size_t chunk_hashes(const chunker *c, const uint8_t *buf, size_t len, uint8_t (**hashes)[32])
{
	size_t *lens, n = chunk_all(c, buf, len, &lens), pos = 0;
	*hashes = malloc(n * sizeof **hashes);
	assert_non_null(*hashes);
	for (size_t i = 0; i < n; i++) {
		crypto_sha256(buf + pos, lens[i], (*hashes)[i]);
		pos += lens[i];
	}
	free(lens);
	return n;
}

static int cmp_hash(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static void boundary_shift(const struct chunker_params *p, size_t at, size_t insert)
{
	const size_t len = 4 * MIB;
	uint8_t *a = malloc(len), *b = malloc(len + insert);
	uint8_t (*ha)[32], (*hb)[32];
	uint64_t seed = 4242;
	size_t na, nb, shared = 0;
	chunker *c = chunker_new(p);
	unit_rand_fill(&seed, a, len);
	memcpy(b, a, at);
	unit_rand_fill(&seed, b + at, insert);
	memcpy(b + at + insert, a + at, len - at);
	na = chunk_hashes(c, a, len, &ha);
	nb = chunk_hashes(c, b, len + insert, &hb);
	qsort(hb, nb, 32, cmp_hash);
	for (size_t i = 0; i < na; i++)
		shared += bsearch(ha[i], hb, nb, 32, cmp_hash) != NULL;
	print_message("cdc_avg %u, %zu bytes inserted at %zu: %zu of %zu chunks shared\n", p->cdc_avg, insert, at,
		      shared, na);
	assert_true(na >= 10);
	assert_true(shared * 100 >= na * 80);
	/* only the chunks near the insert change: all but a few */
	assert_true(na - shared <= 4);
	free(ha);
	free(hb);
	free(a);
	free(b);
	chunker_free(c);
}

static void test_cdc_boundary_shift(void **state)
{
	struct chunker_params p;
	(void)state;
	small_params(&p);
	boundary_shift(&p, 100, 100);
	boundary_shift(&p, 5000, 100);
	boundary_shift(&p, 5000, 1);
	boundary_shift(&p, 2 * MIB, 7777);
	chunker_params_default(&p);
	p.seed = 99;
	boundary_shift(&p, 1000, 100);
}

/* A delete works the same way as an insert. */
static void test_cdc_delete(void **state)
{
	const size_t len = 4 * MIB;
	struct chunker_params p;
	uint8_t *a = malloc(len), *b = malloc(len);
	uint8_t (*ha)[32], (*hb)[32];
	uint64_t seed = 31337;
	size_t na, nb, shared = 0;
	chunker *c;
	(void)state;
	small_params(&p);
	c = chunker_new(&p);
	unit_rand_fill(&seed, a, len);
	memcpy(b, a, 3000);
	memcpy(b + 3000, a + 3100, len - 3100); /* 100 bytes gone */
	na = chunk_hashes(c, a, len, &ha);
	nb = chunk_hashes(c, b, len - 100, &hb);
	qsort(hb, nb, 32, cmp_hash);
	for (size_t i = 0; i < na; i++)
		shared += bsearch(ha[i], hb, nb, 32, cmp_hash) != NULL;
	assert_true(shared * 100 >= na * 80);
	free(ha);
	free(hb);
	free(a);
	free(b);
	chunker_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_paged),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_cdc_bounds_and_average),
		cmocka_unit_test(test_cdc_low_entropy),
		cmocka_unit_test(test_cdc_short_input),
		cmocka_unit_test(test_cdc_deterministic),
		cmocka_unit_test(test_cdc_boundary_shift),
		cmocka_unit_test(test_cdc_delete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
