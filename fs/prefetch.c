#include "prefetch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct job {
	int64_t chunk;
	struct blob_loc loc;
	int busy; /* taken: 1 by a worker, 2 by a reader (fs_prefetch_wait) */
};

struct fs_prefetch {
	const struct repo *r;
	chunk_cache *cache;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	/* the queue: a ring of depth slots; jobs[head..head+count) are queued or being decoded */
	struct job *jobs;
	int depth, head, count;
	int stop;
	int waiting; /* readers in fs_prefetch_wait's cond_wait */
	pthread_t *threads;
	int nthreads;
	uint64_t decoded, dropped;
};

/* index of chunk in the ring, or -1; called with mu held */
static int find(const fs_prefetch *p, int64_t chunk)
{
	for (int i = 0; i < p->count; i++) {
		int k = (p->head + i) % p->depth;
		if (p->jobs[k].chunk == chunk)
			return k;
	}
	return -1;
}

/* drops finished jobs (chunk 0) from the head of the ring; called with mu held */
static void trim(fs_prefetch *p)
{
	while (p->count && p->jobs[p->head].chunk == 0) {
		p->head = (p->head + 1) % p->depth;
		p->count--;
	}
}

static void *worker(void *arg)
{
	fs_prefetch *p = arg;
	pack_codec *codec = pack_codec_new(1);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		int k = -1;
		for (int i = 0; i < p->count && k < 0; i++) {
			int j = (p->head + i) % p->depth;
			if (p->jobs[j].chunk && !p->jobs[j].busy)
				k = j;
		}
		if (p->stop)
			break;
		if (k < 0) {
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		struct job jb = p->jobs[k];
		p->jobs[k].busy = 1;
		pthread_mutex_unlock(&p->mu);

		cache_ref *ref = cache_get(p->cache, jb.chunk);
		if (ref) {
			cache_release(p->cache, ref);
		} else {
			uint8_t *plain = xmalloc(jb.loc.raw ? jb.loc.raw : 1);
			/* a failure is left for the reader, which reports it on its own read; the
			 * workers read ahead of readers going through a file in order, which will not
			 * want a delta's base again (the next snapshots' deltas of the block would) */
			if (store_read_blob_cached(p->r, codec, p->cache, &jb.loc, plain, CACHE_PASSED_WHOLE, NULL) == 0) {
				cache_release(p->cache, cache_put(p->cache, jb.chunk, plain, jb.loc.raw));
				__atomic_add_fetch(&p->decoded, 1, __ATOMIC_RELAXED);
			} else {
				free(plain);
			}
		}

		pthread_mutex_lock(&p->mu);
		p->jobs[k].chunk = 0;
		p->jobs[k].busy = 0;
		trim(p);
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	pack_codec_free(codec);
	return NULL;
}

fs_prefetch *fs_prefetch_new(const struct repo *r, chunk_cache *cache, int threads, int depth)
{
	fs_prefetch *p = xcalloc(1, sizeof *p);
	p->r = r;
	p->cache = cache;
	p->depth = depth > 0 ? depth : 1;
	p->jobs = xcalloc((size_t)p->depth, sizeof *p->jobs);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = xcalloc((size_t)(threads > 0 ? threads : 1), sizeof *p->threads);
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			fs_prefetch_free(p);
			return NULL;
		}
		p->nthreads++;
	}
	return p;
}

void fs_prefetch_free(fs_prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->jobs);
	free(p);
}

void fs_prefetch_add(fs_prefetch *p, int64_t chunk, const struct blob_loc *loc)
{
	cache_ref *ref;
	if (!p || chunk <= 0)
		return;
	if ((ref = cache_get(p->cache, chunk))) {
		cache_release(p->cache, ref);
		return;
	}
	pthread_mutex_lock(&p->mu);
	trim(p);
	if (find(p, chunk) >= 0) {
		/* already coming */
	} else if (p->count == p->depth) {
		p->dropped++;
	} else {
		struct job *j = &p->jobs[(p->head + p->count) % p->depth];
		j->chunk = chunk;
		j->loc = *loc;
		j->busy = 0;
		p->count++;
		pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->mu);
}

int fs_prefetch_wait(fs_prefetch *p, int64_t chunk)
{
	int k, rc = FS_PREFETCH_NONE;
	if (!p || chunk <= 0)
		return rc;
	pthread_mutex_lock(&p->mu);
	while (!p->stop && (k = find(p, chunk)) >= 0) {
		if (!p->jobs[k].busy) {
			p->jobs[k].busy = 2;
			rc = FS_PREFETCH_CLAIMED;
			break;
		}
		rc = FS_PREFETCH_WAITED;
		p->waiting++;
		pthread_cond_wait(&p->done, &p->mu);
		p->waiting--;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void fs_prefetch_done(fs_prefetch *p, int64_t chunk)
{
	int k;
	if (!p || chunk <= 0)
		return;
	pthread_mutex_lock(&p->mu);
	if ((k = find(p, chunk)) >= 0 && p->jobs[k].busy == 2) {
		p->jobs[k].chunk = 0;
		p->jobs[k].busy = 0;
		trim(p);
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
}

void fs_prefetch_state(fs_prefetch *p, int *queued, int *claimed, int *waiting)
{
	pthread_mutex_lock(&p->mu);
	*queued = *claimed = 0;
	for (int i = 0; i < p->count; i++) {
		const struct job *j = &p->jobs[(p->head + i) % p->depth];
		*queued += j->chunk && !j->busy;
		*claimed += j->chunk && j->busy == 2;
	}
	*waiting = p->waiting;
	pthread_mutex_unlock(&p->mu);
}

void fs_prefetch_stats(fs_prefetch *p, uint64_t *decoded, uint64_t *dropped)
{
	pthread_mutex_lock(&p->mu);
	*decoded = __atomic_load_n(&p->decoded, __ATOMIC_RELAXED);
	*dropped = p->dropped;
	pthread_mutex_unlock(&p->mu);
}
