/*
 * pool.h: a fixed set of worker threads that run jobs and hand them back in submission order.
 *
 * The owner thread submits jobs (pool_submit) and takes them back, done, in the order it
 * submitted them (pool_take); workers run them in any order on all cores. At most `depth`
 * jobs are in flight; pool_submit blocks while the pool is full, which bounds memory.
 * Only the owner thread may call submit/take; jobs run on worker threads and receive their
 * worker index (0..nthreads-1) so they can use per-worker state without locks.
 */
#ifndef PGTIMEFS_COMMON_POOL_H
#define PGTIMEFS_COMMON_POOL_H

#include <stddef.h>

typedef struct pool pool;
typedef void (*pool_fn)(void *job, int worker);

/* Starts nthreads workers (at least 1) with room for depth jobs (at least 1). */
pool *pool_new(int nthreads, size_t depth);
/* Waits for every job, stops the workers and frees the pool (jobs not taken are dropped). NULL ok. */
void pool_free(pool *p);

/* Queues fn(job); blocks while depth jobs are in flight. */
void pool_submit(pool *p, pool_fn fn, void *job);
/* The oldest job once done, blocking for it; NULL when nothing is in flight. */
void *pool_take(pool *p);
/*
 * Blocks until the n oldest jobs not taken (or all in flight, if fewer) are done; takes none.
 * The owner is woken once for them, not once per job: pool_try_take then takes them without
 * blocking. Used to take finished jobs in batches.
 */
void pool_wait(pool *p, size_t n);
/* The oldest job if it is already done, else NULL (never blocks). */
void *pool_try_take(pool *p);
/* Jobs submitted and not yet taken. */
size_t pool_inflight(const pool *p);
/* Non-zero when a submit would block. */
int pool_full(const pool *p);
/* Number of worker threads. */
int pool_threads(const pool *p);

/* The number of online CPUs (at least 1). */
int pool_cpus(void);

#endif
