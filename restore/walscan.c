#include "walscan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define PIECE (1u << 20)

struct seg {
	uint32_t tli;
	uint64_t log, seg, segno;
	char name[25];
};

struct scan {
	int64_t stop_us;
	const char *stop_name;
	int stopped;
	struct restore_tblspc_hit *hit;
};

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;
	if (x->segno != y->segno)
		return x->segno < y->segno ? -1 : 1;
	return x->tli < y->tli ? -1 : x->tli > y->tli;
}

/* recovery stops before the first transaction end after the target time */
static void on_xact(void *ctx, const struct walread_xact *x)
{
	struct scan *s = ctx;
	if (s->stop_us && x->lsn >= s->hit->start_lsn && x->time_us > s->stop_us)
		s->stopped = 1;
}

/* ... or at the named restore point */
static void on_rp(void *ctx, const struct walread_restore_point *rp)
{
	struct scan *s = ctx;
	if (s->stop_name && *s->stop_name && rp->lsn >= s->hit->start_lsn && !strcmp(rp->name, s->stop_name))
		s->stopped = 1;
}

static void on_ts(void *ctx, const struct walread_tablespace *t)
{
	struct scan *s = ctx;
	if (!s->stopped && !s->hit->found && t->lsn >= s->hit->start_lsn && t->path[0]) {
		s->hit->found = 1;
		s->hit->t = *t;
	}
}

static void on_params(void *ctx, const struct walread_params *p)
{
	struct scan *s = ctx;
	struct walread_params *m = &s->hit->params;
	if (s->stopped || p->lsn < s->hit->start_lsn)
		return;
	if (!s->hit->params_seen) {
		*m = *p;
		s->hit->params_seen = 1;
		return;
	}
	m->lsn = p->lsn;
	m->max_connections = p->max_connections > m->max_connections ? p->max_connections : m->max_connections;
	m->max_worker_processes =
		p->max_worker_processes > m->max_worker_processes ? p->max_worker_processes : m->max_worker_processes;
	m->max_wal_senders = p->max_wal_senders > m->max_wal_senders ? p->max_wal_senders : m->max_wal_senders;
	m->max_prepared_xacts = p->max_prepared_xacts > m->max_prepared_xacts ? p->max_prepared_xacts : m->max_prepared_xacts;
	m->max_locks_per_xact = p->max_locks_per_xact > m->max_locks_per_xact ? p->max_locks_per_xact : m->max_locks_per_xact;
}

static int start_lsn_of(const char *dir, uint64_t *lsn, struct err *e)
{
	char path[4200];
	uint8_t *buf;
	size_t len;
	unsigned hi, lo;
	const char *p;
	*lsn = 0;
	snprintf(path, sizeof path, "%s/backup_label", dir);
	if (util_read_small(path, 65536, &buf, &len, NULL) < 0)
		return 0; /* a snapshot of a stopped server: every record in pg_wal/ counts */
	p = strstr((const char *)buf, "START WAL LOCATION: ");
	if (!p || sscanf(p + 20, "%X/%X", &hi, &lo) != 2) {
		free(buf);
		return err_set(e, ERR_NOTFOUND, "%s: backup_label has no START WAL LOCATION", dir);
	}
	free(buf);
	*lsn = (uint64_t)hi << 32 | lo;
	return 0;
}

/* The segments of dir/pg_wal in WAL order, the highest timeline's for each number. */
static int list_segments(const char *waldir, struct seg **out, size_t *n, struct err *e)
{
	DIR *d = opendir(waldir);
	struct dirent *de;
	struct seg *v = NULL;
	size_t k = 0, cap = 0;
	uint64_t seg_size = 0;
	*out = NULL;
	*n = 0;
	if (!d)
		return err_sys(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot list %s", waldir);
	while ((de = readdir(d))) {
		char part[9] = {0};
		struct seg s = {0};
		if (strlen(de->d_name) != 24 || strspn(de->d_name, "0123456789ABCDEF") != 24)
			continue;
		if (!seg_size) {
			char full[4300];
			struct stat st;
			snprintf(full, sizeof full, "%s/%s", waldir, de->d_name);
			if (stat(full, &st) < 0 || st.st_size < (1 << 20) || st.st_size > (1 << 30) ||
			    (st.st_size & (st.st_size - 1)))
				continue;
			seg_size = (uint64_t)st.st_size;
		}
		memcpy(part, de->d_name, 8);
		s.tli = (uint32_t)strtoul(part, NULL, 16);
		memcpy(part, de->d_name + 8, 8);
		s.log = strtoull(part, NULL, 16);
		memcpy(part, de->d_name + 16, 8);
		s.seg = strtoull(part, NULL, 16);
		snprintf(s.name, sizeof s.name, "%s", de->d_name);
		if (k == cap) {
			cap = cap ? 2 * cap : 64;
			v = xrealloc(v, cap * sizeof *v);
		}
		v[k++] = s;
	}
	closedir(d);
	for (size_t i = 0; i < k; i++)
		v[i].segno = v[i].log * (seg_size ? (UINT64_C(1) << 32) / seg_size : 256) + v[i].seg;
	if (k)
		qsort(v, k, sizeof *v, seg_cmp);
	{
		size_t w = 0; /* for a number on several timelines, the highest (sorted last) */
		for (size_t i = 0; i < k; i++) {
			if (w && v[w - 1].segno == v[i].segno)
				w--;
			v[w++] = v[i];
		}
		k = w;
	}
	*out = v;
	*n = k;
	return 0;
}

static int cancelled(const atomic_int *cancel)
{
	return cancel && atomic_load(cancel);
}

int restore_wal_tablespaces(const char *dir, int64_t stop_us, const char *stop_name, const atomic_int *cancel,
			    struct restore_tblspc_hit *hit, struct err *e)
{
	struct scan s = {stop_us, stop_name, 0, hit};
	struct walread_cb cb = {on_xact, on_rp, NULL, &s, on_ts, on_params};
	char waldir[4200];
	struct seg *v = NULL;
	uint8_t *buf = NULL;
	walread *r = NULL;
	size_t n = 0;
	int rc;
	memset(hit, 0, sizeof *hit);
	if ((rc = start_lsn_of(dir, &hit->start_lsn, e)) < 0)
		return rc;
	snprintf(waldir, sizeof waldir, "%s/pg_wal", dir);
	if ((rc = list_segments(waldir, &v, &n, e)) < 0)
		return rc;
	buf = xmalloc(PIECE);
	for (size_t i = 0; i < n && !s.stopped; i++) { /* on past a tablespace: the settings too */
		char full[4300];
		int fd;
		ssize_t got = 0;
		if (!r || v[i].segno != v[i - 1].segno + 1 || v[i].tli != v[i - 1].tli) {
			if (r) {
				walread_end(r, &cb);
				walread_free(r);
			}
			if (!(r = walread_new(v[i].tli, v[i].segno))) {
				rc = err_set(e, ERR_INTERNAL, "out of memory");
				goto out;
			}
		}
		snprintf(full, sizeof full, "%s/%s", waldir, v[i].name);
		if ((fd = open(full, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = err_sys(e, ERR_IO, "cannot open %s", full);
			goto out;
		}
		while (!s.stopped && !cancelled(cancel) && (got = read(fd, buf, PIECE)) > 0)
			walread_feed(r, buf, (size_t)got, &cb);
		if (cancelled(cancel)) {
			rc = err_set(e, ERR_INTERNAL, "interrupted while reading the WAL in %s", waldir);
			close(fd);
			goto out;
		}
		if (got < 0 && !s.stopped) {
			rc = err_sys(e, ERR_IO, "cannot read %s", full);
			close(fd);
			goto out;
		}
		close(fd);
	}
	if (r && !s.stopped)
		walread_end(r, &cb);
	rc = 0;
out:
	walread_free(r);
	free(buf);
	free(v);
	return rc;
}
