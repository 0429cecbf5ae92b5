#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

struct slot {
	pool_fn fn;
	void *job;
	int state; /* 0 queued, 1 running, 2 done */
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t work;  /* a job was queued, or stopping */
	pthread_cond_t done;  /* a job finished */
	pthread_cond_t space; /* a slot was taken back */
	struct slot *slots;
	size_t depth;
	size_t next_run; /* absolute index of the next job to start */
	size_t submitted; /* absolute index of the next job to submit */
	size_t taken;	/* absolute index of the oldest not taken */
	size_t wake_at; /* while the owner waits: the job whose end it waits for */
	int waiting;	/* the owner waits on `done` */
	int stop;
	int nthreads;
	pthread_t *threads;
};

struct worker_arg {
	pool *p;
	int index;
};

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	pool *p = wa->p;
	int index = wa->index;
	free(wa);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct slot *s;
		size_t at;
		while (!p->stop && p->next_run == p->submitted)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->next_run == p->submitted && p->stop)
			break;
		at = p->next_run++;
		s = &p->slots[at % p->depth];
		s->state = 1;
		pthread_mutex_unlock(&p->mu);
		s->fn(s->job, index);
		pthread_mutex_lock(&p->mu);
		s->state = 2;
		/* wake the owner only for a job it waits for (or a later one): no wakeup per job */
		if (p->waiting && at >= p->wake_at)
			pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int pool_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

pool *pool_new(int nthreads, size_t depth)
{
	pool *p = xcalloc(1, sizeof *p);
	if (nthreads < 1)
		nthreads = 1;
	if (depth < 1)
		depth = 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	pthread_cond_init(&p->space, NULL);
	p->depth = depth;
	p->slots = xcalloc(depth, sizeof *p->slots);
	p->nthreads = nthreads;
	p->threads = xcalloc((size_t)nthreads, sizeof *p->threads);
	for (int i = 0; i < nthreads; i++) {
		struct worker_arg *wa = xmalloc(sizeof *wa);
		wa->p = p;
		wa->index = i;
		if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0)
			abort();
	}
	return p;
}

void pool_free(pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->space);
	free(p->threads);
	free(p->slots);
	free(p);
}

void pool_submit(pool *p, pool_fn fn, void *job)
{
	struct slot *s;
	pthread_mutex_lock(&p->mu);
	while (p->submitted - p->taken == p->depth)
		pthread_cond_wait(&p->space, &p->mu);
	s = &p->slots[p->submitted % p->depth];
	s->fn = fn;
	s->job = job;
	s->state = 0;
	p->submitted++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

static void *take_locked(pool *p, int block)
{
	struct slot *s;
	void *job;
	if (p->taken == p->submitted)
		return NULL;
	s = &p->slots[p->taken % p->depth];
	while (s->state != 2) {
		if (!block)
			return NULL;
		p->waiting = 1;
		p->wake_at = p->taken;
		pthread_cond_wait(&p->done, &p->mu);
		p->waiting = 0;
	}
	job = s->job;
	p->taken++;
	pthread_cond_signal(&p->space);
	return job;
}

void *pool_take(pool *p)
{
	void *job;
	pthread_mutex_lock(&p->mu);
	job = take_locked(p, 1);
	pthread_mutex_unlock(&p->mu);
	return job;
}

void pool_wait(pool *p, size_t n)
{
	pthread_mutex_lock(&p->mu);
	if (n > p->submitted - p->taken)
		n = p->submitted - p->taken;
	/* the newest of the n first: the older ones are then done too, nearly always */
	for (size_t i = p->taken + n; i-- > p->taken;) {
		struct slot *s = &p->slots[i % p->depth];
		while (s->state != 2) {
			p->waiting = 1;
			p->wake_at = i;
			pthread_cond_wait(&p->done, &p->mu);
			p->waiting = 0;
		}
	}
	pthread_mutex_unlock(&p->mu);
}

void *pool_try_take(pool *p)
{
	void *job;
	pthread_mutex_lock(&p->mu);
	job = take_locked(p, 0);
	pthread_mutex_unlock(&p->mu);
	return job;
}

size_t pool_inflight(const pool *p)
{
	size_t n;
	pthread_mutex_lock((pthread_mutex_t *)&p->mu);
	n = p->submitted - p->taken;
	pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
	return n;
}

int pool_full(const pool *p)
{
	return pool_inflight(p) == p->depth;
}

int pool_threads(const pool *p)
{
	return p->nthreads;
}
