#include "cache.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/util.h"

/* the least allowance for passed entries: a chunk passed whole by one read while an earlier
 * read, served later by another thread, still wants its start */
#define PASSED_MIN (1u << 20)

struct cache_ref {
	int64_t key;
	uint8_t *data;
	size_t len;
	int refs;	  /* readers holding it */
	int linked;	  /* still in the table */
	unsigned passed;  /* CACHE_PASSED_* parts an in-order reader has passed */
	int in_passed;	  /* on the passed list (then refs is 0), not the LRU list */
	struct cache_ref *hnext;	/* hash chain */
	struct cache_ref *prev, *next; /* its list, newest first */
};

struct list {
	struct cache_ref *head, *tail;
};

struct chunk_cache {
	pthread_mutex_t mu;
	size_t budget, bytes;
	size_t passed_cap, passed_bytes; /* the allowance for passed entries, and what they hold */
	struct cache_ref **table;
	size_t nbuckets;
	struct list lru;    /* most recently used first */
	struct list passed; /* entries passed whole, most recently passed first; they go first */
	uint64_t hits, misses;
};

chunk_cache *cache_new(size_t budget_bytes)
{
	chunk_cache *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	c->budget = budget_bytes;
	c->passed_cap = budget_bytes / 16 > PASSED_MIN ? budget_bytes / 16 : PASSED_MIN;
	c->nbuckets = 4096;
	c->table = xcalloc(c->nbuckets, sizeof *c->table);
	return c;
}

static void entry_free(struct cache_ref *r)
{
	free(r->data);
	free(r);
}

void cache_free(chunk_cache *c)
{
	if (!c)
		return;
	for (struct cache_ref *r = c->lru.head, *n; r; r = n) {
		n = r->next;
		entry_free(r);
	}
	for (struct cache_ref *r = c->passed.head, *n; r; r = n) {
		n = r->next;
		entry_free(r);
	}
	free(c->table);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static size_t bucket(const chunk_cache *c, int64_t key)
{
	uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 20) % c->nbuckets;
}

static void list_unlink(struct list *l, struct cache_ref *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
}

static void list_front(struct list *l, struct cache_ref *r)
{
	r->prev = NULL;
	r->next = l->head;
	if (l->head)
		l->head->prev = r;
	l->head = r;
	if (!l->tail)
		l->tail = r;
}

/* takes r off whichever list holds it */
static void unlink_entry(chunk_cache *c, struct cache_ref *r)
{
	if (r->in_passed) {
		list_unlink(&c->passed, r);
		c->passed_bytes -= r->len;
		r->in_passed = 0;
	} else {
		list_unlink(&c->lru, r);
	}
}

static void table_remove(chunk_cache *c, struct cache_ref *r)
{
	struct cache_ref **pp = &c->table[bucket(c, r->key)];
	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
	r->linked = 0;
	unlink_entry(c, r);
	c->bytes -= r->len;
}

/* a new reference to r: it becomes the most recently used; one passed whole before is
 * wanted again, so it has to be passed anew (the parts of a chunk split between two reads
 * still add up: neither read alone passes it whole) */
static void touch(chunk_cache *c, struct cache_ref *r)
{
	r->refs++;
	unlink_entry(c, r);
	if (r->passed == CACHE_PASSED_WHOLE)
		r->passed = 0;
	list_front(&c->lru, r);
}

static void evict(chunk_cache *c)
{
	struct cache_ref *r;
	/* passed entries (none referenced) first: beyond their allowance, or while over budget */
	while ((r = c->passed.tail) && (c->passed_bytes > c->passed_cap || c->bytes > c->budget)) {
		table_remove(c, r);
		entry_free(r);
	}
	r = c->lru.tail;
	while (c->bytes > c->budget && r) {
		struct cache_ref *prev = r->prev;
		if (r->refs == 0) {
			table_remove(c, r);
			entry_free(r);
		}
		r = prev;
	}
}

cache_ref *cache_get(chunk_cache *c, int64_t key)
{
	struct cache_ref *r;
	pthread_mutex_lock(&c->mu);
	for (r = c->table[bucket(c, key)]; r; r = r->hnext)
		if (r->key == key)
			break;
	if (r) {
		touch(c, r);
		c->hits++;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

cache_ref *cache_put(chunk_cache *c, int64_t key, uint8_t *data, size_t len)
{
	struct cache_ref *r;
	size_t b;
	pthread_mutex_lock(&c->mu);
	b = bucket(c, key);
	for (r = c->table[b]; r; r = r->hnext)
		if (r->key == key)
			break;
	if (r) {
		free(data);
		touch(c, r);
		pthread_mutex_unlock(&c->mu);
		return r;
	}
	r = xcalloc(1, sizeof *r);
	r->key = key;
	r->data = data;
	r->len = len;
	r->refs = 1;
	r->linked = 1;
	r->hnext = c->table[b];
	c->table[b] = r;
	list_front(&c->lru, r);
	c->bytes += len;
	evict(c);
	pthread_mutex_unlock(&c->mu);
	return r;
}

const uint8_t *cache_data(const cache_ref *r, size_t *len)
{
	*len = r->len;
	return r->data;
}

void cache_release(chunk_cache *c, cache_ref *r)
{
	cache_release_passed(c, r, 0);
}

void cache_release_passed(chunk_cache *c, cache_ref *r, unsigned parts)
{
	if (!r)
		return;
	pthread_mutex_lock(&c->mu);
	r->refs--;
	r->passed |= parts;
	if (r->linked && r->refs == 0 && r->passed == CACHE_PASSED_WHOLE && !r->in_passed) {
		list_unlink(&c->lru, r);
		list_front(&c->passed, r);
		r->in_passed = 1;
		c->passed_bytes += r->len;
	}
	if (r->linked)
		evict(c);
	pthread_mutex_unlock(&c->mu);
}

size_t cache_bytes(chunk_cache *c)
{
	size_t n;
	pthread_mutex_lock(&c->mu);
	n = c->bytes;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void cache_stats(chunk_cache *c, uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock(&c->mu);
	*hits = c->hits;
	*misses = c->misses;
	pthread_mutex_unlock(&c->mu);
}
