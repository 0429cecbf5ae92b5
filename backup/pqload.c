#define PGT_PQLOAD_NO_MACROS
#include "pqload.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pgt_pq pq;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *need(void *lib, const char *name)
{
	void *f = dlsym(lib, name);
	if (!f) {
		fprintf(stderr, "pgtimefs: %s has no function %s: %s\nHINT: install a libpq of PostgreSQL 10 or "
				"later (Debian: apt-get install libpq5)\n",
			PGT_LIBPQ_SONAME, name, dlerror());
		exit(1);
	}
	return f;
}

static void load(void)
{
	void *lib = dlopen(PGT_LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "pgtimefs: cannot load libpq, the PostgreSQL client library: %s\nHINT: install it "
				"(Debian: apt-get install libpq5)\n",
			dlerror());
		exit(1);
	}
	/* dlsym gives an object pointer; POSIX guarantees it holds the function's address */
#define PGT_PQ_LOAD(f)                                                                                       \
	{                                                                                                    \
		void *p_ = need(lib, #f);                                                                    \
		memcpy(&pq.f, &p_, sizeof p_);                                                               \
	}
	PGT_PQ_FUNCS(PGT_PQ_LOAD)
#undef PGT_PQ_LOAD
}

const struct pgt_pq *pgt_pq(void)
{
	pthread_once(&once, load);
	return &pq;
}
