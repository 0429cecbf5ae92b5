/*
 * test_cache.c: store/cache.h.
 *
 * The byte budget, least-recently-used eviction, references that keep entries alive,
 * duplicate inserts, the hit/miss counters, entries passed whole by in-order readers going
 * first, and a multithreaded stress run (ASan and the content checks catch an entry freed or
 * overwritten under a reader).
 */
#include "../unit.h"

#include <pthread.h>

#include "store/cache.h"

static uint8_t *filled(size_t len, uint8_t v)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	memset(p, v, len);
	return p;
}

/* Inserts key with len bytes of value v and releases the reference at once. */
static void put_released(chunk_cache *c, int64_t key, size_t len, uint8_t v)
{
	cache_ref *r = cache_put(c, key, filled(len, v), len);
	assert_non_null(r);
	cache_release(c, r);
}

static int present(chunk_cache *c, int64_t key)
{
	cache_ref *r = cache_get(c, key);
	cache_release(c, r);
	return r != NULL;
}

static void test_put_get(void **state)
{
	chunk_cache *c = cache_new(1 << 20);
	cache_ref *r;
	const uint8_t *d;
	size_t len;
	(void)state;
	assert_null(cache_get(c, 5));
	r = cache_put(c, 5, filled(100, 0xab), 100);
	d = cache_data(r, &len);
	assert_int_equal(len, 100);
	assert_int_equal(d[0], 0xab);
	assert_int_equal(d[99], 0xab);
	cache_release(c, r);
	r = cache_get(c, 5);
	assert_non_null(r);
	d = cache_data(r, &len);
	assert_int_equal(len, 100);
	assert_int_equal(d[50], 0xab);
	cache_release(c, r);
	cache_release(c, NULL);
	assert_int_equal(cache_bytes(c), 100);
	/* negative and large keys are keys like any other */
	put_released(c, -1, 10, 1);
	put_released(c, INT64_MAX, 10, 2);
	put_released(c, INT64_MIN, 10, 3);
	assert_true(present(c, -1) && present(c, INT64_MAX) && present(c, INT64_MIN));
	/* an empty entry */
	put_released(c, 77, 0, 0);
	assert_true(present(c, 77));
	cache_free(c);
	cache_free(NULL);
}

static void test_budget(void **state)
{
	const size_t budget = 1000;
	chunk_cache *c = cache_new(budget);
	(void)state;
	for (int64_t k = 0; k < 200; k++) {
		put_released(c, k, 30 + (size_t)(k % 7) * 20, (uint8_t)k);
		assert_true(cache_bytes(c) <= budget);
	}
	/* the newest entries are the ones kept */
	assert_true(present(c, 199));
	assert_false(present(c, 0));
	/* an entry larger than the whole budget does not stay once released */
	put_released(c, 1000, 5000, 9);
	assert_true(cache_bytes(c) <= budget);
	cache_free(c);
}

static void test_lru_order(void **state)
{
	chunk_cache *c = cache_new(300);
	(void)state;
	put_released(c, 1, 100, 1);
	put_released(c, 2, 100, 2);
	put_released(c, 3, 100, 3);
	assert_int_equal(cache_bytes(c), 300);
	assert_true(present(c, 1)); /* 1 is now the most recent; 2 the least */
	put_released(c, 4, 100, 4);
	assert_false(present(c, 2));
	assert_true(present(c, 1));
	assert_true(present(c, 3));
	assert_true(present(c, 4));
	/* order now, oldest first: 1, 3, 4 (present() touched them in that order) */
	put_released(c, 5, 100, 5);
	assert_false(present(c, 1));
	put_released(c, 6, 200, 6); /* needs two entries' room: 3 and 4 go */
	assert_false(present(c, 3));
	assert_false(present(c, 4));
	assert_true(present(c, 5));
	assert_true(present(c, 6));
	assert_int_equal(cache_bytes(c), 300);
	cache_free(c);
}

static void test_referenced_survive(void **state)
{
	chunk_cache *c = cache_new(200);
	cache_ref *held, *many[5];
	const uint8_t *d;
	size_t len;
	(void)state;
	held = cache_put(c, 1, filled(100, 0x11), 100);
	for (int64_t k = 2; k < 50; k++)
		put_released(c, k, 100, (uint8_t)k);
	/* the held entry is the oldest by far but was never evicted */
	d = cache_data(held, &len);
	assert_int_equal(len, 100);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(d[i], 0x11);
	assert_true(cache_bytes(c) <= 200);
	assert_true(present(c, 1));
	cache_release(c, held);

	/* everything referenced: over budget for now, back under it when released */
	for (int i = 0; i < 5; i++)
		many[i] = cache_put(c, 100 + i, filled(100, (uint8_t)i), 100);
	assert_true(cache_bytes(c) >= 500);
	for (int i = 0; i < 5; i++) {
		d = cache_data(many[i], &len);
		assert_int_equal(d[0], i);
	}
	for (int i = 0; i < 5; i++)
		cache_release(c, many[i]);
	assert_true(cache_bytes(c) <= 200);

	/* two references to one entry: it stays until both are gone */
	held = cache_put(c, 500, filled(150, 5), 150);
	assert_ptr_equal(cache_get(c, 500), held);
	cache_release(c, held);
	for (int64_t k = 600; k < 610; k++)
		put_released(c, k, 100, 0);
	d = cache_data(held, &len);
	assert_int_equal(d[149], 5);
	cache_release(c, held);
	cache_free(c);
}

static void test_duplicate_put(void **state)
{
	chunk_cache *c = cache_new(10000);
	cache_ref *a, *b;
	const uint8_t *d;
	size_t len;
	(void)state;
	a = cache_put(c, 7, filled(100, 0xaa), 100);
	b = cache_put(c, 7, filled(300, 0xbb), 300); /* freed by the cache (ASan checks) */
	assert_ptr_equal(a, b);
	d = cache_data(b, &len);
	assert_int_equal(len, 100);
	assert_int_equal(d[0], 0xaa);
	assert_int_equal(cache_bytes(c), 100);
	cache_release(c, a);
	cache_release(c, b);
	assert_true(present(c, 7));
	cache_free(c);
}

static void test_stats(void **state)
{
	chunk_cache *c = cache_new(10000);
	uint64_t hits = 99, misses = 99;
	(void)state;
	cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 0);
	assert_int_equal(misses, 0);
	assert_false(present(c, 1)); /* miss */
	put_released(c, 1, 10, 1);
	assert_true(present(c, 1)); /* hit */
	assert_true(present(c, 1)); /* hit */
	assert_false(present(c, 2)); /* miss */
	cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 2);
	assert_int_equal(misses, 2);
	cache_free(c);
}

/* --- stress --- */

enum { THREADS = 4, OPS = 10000, KEYS = 600 };

/* Inserts key (len bytes) and releases it as passed over these parts. */
static void put_passed(chunk_cache *c, int64_t key, size_t len, unsigned parts)
{
	cache_ref *r = cache_put(c, key, filled(len, (uint8_t)key), len);
	assert_non_null(r);
	cache_release_passed(c, r, parts);
}

/* Looks key up and releases it as passed over these parts; 0 when it was not there. */
static int pass(chunk_cache *c, int64_t key, unsigned parts)
{
	cache_ref *r = cache_get(c, key);
	cache_release_passed(c, r, parts);
	return r != NULL;
}

static void test_passed_go_first(void **state)
{
	chunk_cache *c = cache_new(1000);
	(void)state;
	put_released(c, 1, 100, 1); /* the least recently used */
	put_passed(c, 2, 100, CACHE_PASSED_WHOLE);
	for (int64_t k = 3; k <= 10; k++)
		put_released(c, k, 100, (uint8_t)k);
	assert_int_equal(cache_bytes(c), 1000);
	put_released(c, 11, 100, 11); /* over budget: the passed entry goes, not the oldest */
	assert_int_equal(cache_bytes(c), 1000);
	assert_true(present(c, 1));
	assert_false(present(c, 2));
	cache_free(c);
}

static void test_passed_parts(void **state)
{
	chunk_cache *c = cache_new(1000);
	cache_ref *held, *other;
	(void)state;
	/* 4: the least recently used; 2: passed at its head only (ordinary); 3: passed whole while
	 * another reader holds it (moves at that reader's release); 1: head and tail passed by two
	 * reads (a chunk two reads split), after 3 */
	put_released(c, 4, 100, 4);
	put_passed(c, 2, 100, CACHE_PASSED_HEAD);
	held = cache_put(c, 3, filled(100, 3), 100);
	put_passed(c, 1, 100, CACHE_PASSED_HEAD);
	assert_true(pass(c, 3, CACHE_PASSED_WHOLE));
	assert_true(pass(c, 1, CACHE_PASSED_TAIL));
	for (int64_t k = 5; k <= 10; k++)
		put_released(c, k, 100, (uint8_t)k);
	assert_int_equal(cache_bytes(c), 1000);
	/* over budget: 1 goes (not 3, still held, nor 2, nor the least recently used, 4) */
	put_released(c, 11, 100, 11);
	assert_int_equal(cache_bytes(c), 1000);
	assert_false(present(c, 1));
	cache_release(c, held); /* now 3 is passed whole and held by no one: it goes next */
	put_released(c, 12, 100, 12);
	assert_false(present(c, 3));
	put_released(c, 13, 100, 13); /* no passed entry left: the least recently used, 4 */
	assert_false(present(c, 4));
	assert_true(present(c, 2));
	assert_int_equal(cache_bytes(c), 1000);

	/* passed whole while held, then looked up by another reader before the holder lets go:
	 * wanted again, so an ordinary entry, not one that goes first at the holder's release */
	held = cache_put(c, 20, filled(100, 20), 100);
	assert_true(pass(c, 20, CACHE_PASSED_WHOLE));
	other = cache_get(c, 20);
	assert_non_null(other);
	cache_release(c, other);
	cache_release(c, held);
	put_released(c, 21, 100, 21); /* over budget: the least recently used goes, not 20 */
	assert_true(present(c, 20));
	cache_free(c);
}

static void test_passed_allowance(void **state)
{
	/* budget 32 MiB: passed entries are held up to 2 MiB, oldest passed first to go */
	const size_t mib = 1u << 20, len = 256 * 1024;
	chunk_cache *c = cache_new(32 * mib);
	(void)state;
	for (int64_t k = 100; k < 110; k++)
		put_released(c, k, len, (uint8_t)k);
	for (int64_t k = 0; k < 12; k++)
		put_passed(c, k, len, CACHE_PASSED_WHOLE);
	/* 10 ordinary entries and 8 passed ones (2 MiB) */
	assert_int_equal(cache_bytes(c), 18 * len);
	/* looked up again, a passed entry is an ordinary one: it stays beyond the allowance */
	assert_true(pass(c, 11, 0));
	for (int64_t k = 12; k < 20; k++)
		put_passed(c, k, len, CACHE_PASSED_WHOLE);
	assert_int_equal(cache_bytes(c), 19 * len);
	for (int64_t k = 100; k < 110; k++)
		assert_true(present(c, k));
	assert_true(present(c, 11));
	assert_false(present(c, 10));
	assert_false(present(c, 0));
	assert_true(present(c, 19));
	cache_free(c);
}

struct worker {
	chunk_cache *c;
	size_t scale; /* entry lengths times this */
	uint64_t seed;
	long errors, gets, puts;
};

static size_t key_len(int64_t key, size_t scale)
{
	return (64 + (size_t)(key * 37 % 1000)) * scale;
}

static uint8_t key_byte(int64_t key, size_t i)
{
	return (uint8_t)(key * 131 + (int64_t)i);
}

static int check_entry(const cache_ref *r, int64_t key, size_t scale)
{
	size_t len;
	const uint8_t *d = cache_data(r, &len);
	if (len != key_len(key, scale))
		return 0;
	for (size_t i = 0; i < len; i += 61)
		if (d[i] != key_byte(key, i))
			return 0;
	return d[len - 1] == key_byte(key, len - 1);
}

/* No cmocka assertions here: this runs off the test's thread. */
static void *stress(void *arg)
{
	struct worker *w = arg;
	cache_ref *held[4] = {NULL};
	int64_t held_key[4] = {0};
	for (int op = 0; op < OPS; op++) {
		int64_t key = (int64_t)(unit_rand_next(&w->seed) % KEYS);
		cache_ref *r = cache_get(w->c, key);
		int slot = op % 4;
		w->gets++;
		if (!r) {
			size_t len = key_len(key, w->scale);
			uint8_t *d = malloc(len);
			if (!d) {
				w->errors++;
				continue;
			}
			for (size_t i = 0; i < len; i++)
				d[i] = key_byte(key, i);
			r = cache_put(w->c, key, d, len);
			w->puts++;
		}
		if (!r || !check_entry(r, key, w->scale)) {
			w->errors++;
			cache_release(w->c, r);
			continue;
		}
		/* keep a few references for a while, so eviction meets entries in use */
		if (held[slot]) {
			if (!check_entry(held[slot], held_key[slot], w->scale))
				w->errors++;
			/* some pass the entry's head, some its tail, some both: entries move between
			 * the lists while others hold them */
			cache_release_passed(w->c, held[slot], (unsigned)op & 3u);
		}
		held[slot] = r;
		held_key[slot] = key;
	}
	for (int i = 0; i < 4; i++) {
		if (held[i] && !check_entry(held[i], held_key[i], w->scale))
			w->errors++;
		cache_release(w->c, held[i]);
	}
	return NULL;
}

/* THREADS workers on one cache of budget bytes, entries scale times as long */
static void stress_run(size_t budget, size_t scale)
{
	chunk_cache *c = cache_new(budget);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	uint64_t hits, misses;
	long gets = 0, puts = 0;
	for (int i = 0; i < THREADS; i++) {
		w[i].c = c;
		w[i].scale = scale;
		w[i].seed = 1000 + (uint64_t)i;
		w[i].errors = w[i].gets = w[i].puts = 0;
		assert_int_equal(pthread_create(&t[i], NULL, stress, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].errors, 0);
		gets += w[i].gets;
		puts += w[i].puts;
	}
	cache_stats(c, &hits, &misses);
	assert_int_equal(hits + misses, (uint64_t)gets);
	assert_int_equal(misses, (uint64_t)puts);
	assert_true(hits > 0 && misses > 0);
	assert_true(cache_bytes(c) <= budget); /* nothing is referenced any more */
	print_message("budget %zu: %ld gets, %llu hits, %llu misses, %zu bytes held\n", budget, gets,
		      (unsigned long long)hits, (unsigned long long)misses, cache_bytes(c));
	cache_free(c);
}

static void test_stress_threads(void **state)
{
	(void)state;
	/* about 1/5 of the key space: many evictions; the passed allowance (1 MiB at least) is
	 * above the budget, so passed entries go only when over budget */
	stress_run(64 * 1024, 1);
	/* entries of 4-68 KiB (as chunks are) under 16 MiB: the passed entries also go beyond
	 * their allowance (1 MiB), below the budget */
	stress_run(16u << 20, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_referenced_survive),
		cmocka_unit_test(test_duplicate_put),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_passed_go_first),
		cmocka_unit_test(test_passed_parts),
		cmocka_unit_test(test_passed_allowance),
		cmocka_unit_test(test_stress_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
