#include "cache.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/util.h"

struct cache_ref {
	int64_t key;
	uint8_t *data;
	size_t len;
	int refs;	  /* readers holding it */
	int linked;	  /* still in the table */
	struct cache_ref *hnext;	/* hash chain */
	struct cache_ref *prev, *next; /* LRU list, most recent first */
};

struct chunk_cache {
	pthread_mutex_t mu;
	size_t budget, bytes;
	struct cache_ref **table;
	size_t nbuckets;
	struct cache_ref *head, *tail;
	uint64_t hits, misses;
};

chunk_cache *cache_new(size_t budget_bytes)
{
	chunk_cache *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	c->budget = budget_bytes;
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
	for (struct cache_ref *r = c->head, *n; r; r = n) {
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

static void lru_unlink(chunk_cache *c, struct cache_ref *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		c->tail = r->prev;
	r->prev = r->next = NULL;
}

static void lru_front(chunk_cache *c, struct cache_ref *r)
{
	r->prev = NULL;
	r->next = c->head;
	if (c->head)
		c->head->prev = r;
	c->head = r;
	if (!c->tail)
		c->tail = r;
}

static void table_remove(chunk_cache *c, struct cache_ref *r)
{
	struct cache_ref **pp = &c->table[bucket(c, r->key)];
	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
	r->linked = 0;
	lru_unlink(c, r);
	c->bytes -= r->len;
}

static void evict(chunk_cache *c)
{
	struct cache_ref *r = c->tail;
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
		r->refs++;
		lru_unlink(c, r);
		lru_front(c, r);
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
		r->refs++;
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
	lru_front(c, r);
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
	if (!r)
		return;
	pthread_mutex_lock(&c->mu);
	r->refs--;
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
