/*
 * cache.h: a bounded, thread-safe cache of decoded chunks, shared by all readers.
 *
 * Entries are keyed by the chunk's catalog number and hold its plaintext. The cache holds no
 * more than its byte budget plus the entries readers hold references to at that moment; the
 * least recently used unreferenced entries go first. Lookups return a reference that the caller releases: an entry in use is
 * never freed under a reader. One mutex guards the table (lock order: it is a leaf lock).
 *
 * Entries that readers going through a file in order have passed whole (cache_release_passed)
 * go before all others, and are kept only within a small allowance (a 16th of the budget, at
 * least 1 MiB): their bytes are in the kernel's page cache now. So a long copy cycles a few
 * MiB of warm buffers through the decoder instead of the whole budget of cold ones.
 */
#ifndef PGTIMEFS_STORE_CACHE_H
#define PGTIMEFS_STORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct chunk_cache chunk_cache;
typedef struct cache_ref cache_ref;

chunk_cache *cache_new(size_t budget_bytes);
void cache_free(chunk_cache *c);

/* A referenced entry for key, or NULL. */
cache_ref *cache_get(chunk_cache *c, int64_t key);
/*
 * Inserts data (takes ownership of the malloc'ed buffer) and returns a reference to the
 * entry; if key is already present the given buffer is freed and the existing entry returned.
 */
cache_ref *cache_put(chunk_cache *c, int64_t key, uint8_t *data, size_t len);
const uint8_t *cache_data(const cache_ref *r, size_t *len);
void cache_release(chunk_cache *c, cache_ref *r);

/*
 * cache_release, from a reader going through a file in order, which has passed these parts of
 * the chunk: its first byte (CACHE_PASSED_HEAD), its last (CACHE_PASSED_TAIL). Once both are
 * passed (by one read or two: CACHE_PASSED_WHOLE) and no one holds it, the entry goes
 * first. A later lookup makes it an ordinary entry again.
 */
#define CACHE_PASSED_HEAD 1u
#define CACHE_PASSED_TAIL 2u
#define CACHE_PASSED_WHOLE (CACHE_PASSED_HEAD | CACHE_PASSED_TAIL)
void cache_release_passed(chunk_cache *c, cache_ref *r, unsigned parts);

/* Bytes held now, and hit/miss counters. */
size_t cache_bytes(chunk_cache *c);
void cache_stats(chunk_cache *c, uint64_t *hits, uint64_t *misses);

#endif
