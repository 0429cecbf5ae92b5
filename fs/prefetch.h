/*
 * prefetch.h: read-ahead for the mount: decodes chunks a reader is about to ask for on
 * worker threads, into the shared chunk cache.
 *
 * A reader that sees a file being read in order hands the chunks after its read to
 * fs_prefetch_add; a worker reads, authenticates and decompresses each one and puts it in the
 * cache. A chunk already cached, queued or being decoded is not queued twice, and a full queue
 * drops the request (read-ahead is a hint, never a debt). A reader that misses the cache on a
 * chunk a worker is decoding waits for it (fs_prefetch_wait) instead of decoding it twice; on
 * a chunk still waiting in the queue it takes the job and decodes it at once, so a reader
 * never waits behind the chunks queued before the one it needs.
 * Memory: the queue is bounded; decoded chunks live in the cache under its budget.
 * Thread-safe; one mutex (a leaf lock, taken before none other but the cache's).
 */
#ifndef PGTIMEFS_FS_PREFETCH_H
#define PGTIMEFS_FS_PREFETCH_H

#include <stdint.h>

#include "store/cache.h"
#include "store/reader.h"
#include "store/repo.h"

typedef struct fs_prefetch fs_prefetch;

/* Starts threads workers with a queue of depth chunks. NULL on failure to start a thread. */
fs_prefetch *fs_prefetch_new(const struct repo *r, chunk_cache *cache, int threads, int depth);
/* Stops the workers (queued work is dropped). NULL ok. */
void fs_prefetch_free(fs_prefetch *p);

/* Queues chunk (catalog number) at loc for decoding unless cached, queued or full. */
void fs_prefetch_add(fs_prefetch *p, int64_t chunk, const struct blob_loc *loc);
/* What fs_prefetch_wait did: */
enum {
	FS_PREFETCH_NONE = 0,	 /* chunk was not queued: decode it yourself */
	FS_PREFETCH_WAITED = 1,	 /* another thread decoded it meanwhile: look in the cache */
	FS_PREFETCH_CLAIMED = 2, /* it was queued: decode it yourself, then fs_prefetch_done */
};
/*
 * For a reader about to decode chunk (p may be NULL: NONE). A chunk being decoded by a worker,
 * or by a reader that claimed it, is waited for (WAITED). A chunk waiting in the queue is
 * claimed by the caller (CLAIMED): no worker takes it, other readers of it wait, and the
 * caller must call fs_prefetch_done once it has decoded it (or failed to).
 */
int fs_prefetch_wait(fs_prefetch *p, int64_t chunk);
/* Ends the claim on chunk (fs_prefetch_wait returned CLAIMED) and wakes its waiters. */
void fs_prefetch_done(fs_prefetch *p, int64_t chunk);

/* Jobs queued and not taken, jobs claimed by readers, and readers waiting (for tests). */
void fs_prefetch_state(fs_prefetch *p, int *queued, int *claimed, int *waiting);
/* Chunks decoded by the workers so far, and requests dropped because the queue was full. */
void fs_prefetch_stats(fs_prefetch *p, uint64_t *decoded, uint64_t *dropped);

#endif
