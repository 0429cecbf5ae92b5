#include "zones.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define FIX_ZONE_HINT "fix the zone (space, permissions, mount), then retry; nothing was recorded"

struct zones {
	int n;
	int swept; /* stale stream temporaries removed (zones_stream_open, once) */
	char *paths[ZONES_MAX];
	char **dirty; /* directories to fsync (full paths) */
	size_t ndirty, capdirty;
};

zones *zones_new(const char *const *paths, int n)
{
	zones *z = xcalloc(1, sizeof *z);
	z->n = n > ZONES_MAX ? ZONES_MAX : n;
	for (int i = 0; i < z->n; i++) {
		size_t len = strlen(paths[i]);
		z->paths[i] = xstrdup(paths[i]);
		while (len > 1 && z->paths[i][len - 1] == '/')
			z->paths[i][--len] = '\0';
	}
	return z;
}

void zones_free(zones *z)
{
	if (!z)
		return;
	for (int i = 0; i < z->n; i++)
		free(z->paths[i]);
	for (size_t i = 0; i < z->ndirty; i++)
		free(z->dirty[i]);
	free(z->dirty);
	free(z);
}

int zones_count(const zones *z)
{
	return z->n;
}

const char *zones_path(const zones *z, int i)
{
	return z->paths[i];
}

void zones_file(const zones *z, int i, const char *relpath, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", z->paths[i], relpath);
}

int zones_create(zones *z, struct err *e)
{
	static const char *subs[] = {"packs", "keys", "catalog"};
	char p[PATH_MAX];
	for (int i = 0; i < z->n; i++) {
		for (size_t s = 0; s < 3; s++) {
			zones_file(z, i, subs[s], p, sizeof p);
			if (util_mkdir_p(p, 0700, e) < 0) {
				err_prefix(e, "zone %d (%s)", i + 1, z->paths[i]);
				return e ? e->code : ERR_IO;
			}
		}
	}
	return 0;
}

static void add_dirty(zones *z, const char *dir)
{
	for (size_t i = 0; i < z->ndirty; i++)
		if (!strcmp(z->dirty[i], dir))
			return;
	if (z->ndirty == z->capdirty) {
		z->capdirty = z->capdirty ? z->capdirty * 2 : 16;
		z->dirty = xrealloc(z->dirty, z->capdirty * sizeof *z->dirty);
	}
	z->dirty[z->ndirty++] = xstrdup(dir);
}

/*
 * Fills full (relpath in zone i) and dir (its directory) and makes dir when it is missing
 * (its parent is then remembered for zones_sync: a new directory's own entry must be durable
 * too). -1 on an error, which names the zone.
 */
static int zone_dir(zones *z, int i, const char *relpath, char *full, char *dir, struct err *e)
{
	struct stat st;
	char *slash;
	zones_file(z, i, relpath, full, PATH_MAX);
	snprintf(dir, PATH_MAX, "%s", full);
	slash = strrchr(dir, '/');
	*slash = '\0';
	if (stat(z->paths[i], &st) < 0) {
		err_sys(e, ERR_IO, "zone %d (%s) is not there", i + 1, z->paths[i]);
		err_hint(e, "mount or recreate the zone directory, then run 'pgtimefs repair' and retry");
		return -1;
	}
	if (stat(dir, &st) < 0) {
		char parent[PATH_MAX], *ps;
		if (util_mkdir_p(dir, 0700, e) < 0) {
			err_prefix(e, "zone %d (%s)", i + 1, z->paths[i]);
			return -1;
		}
		snprintf(parent, sizeof parent, "%s", dir);
		if ((ps = strrchr(parent, '/'))) {
			*ps = '\0';
			add_dirty(z, parent);
		}
	}
	return 0;
}

/* Opens a temporary file beside relpath in zone i; fills full, tmp and dir. */
static int open_tmp(zones *z, int i, const char *relpath, char *full, char *tmp, char *dir, struct err *e)
{
	int fd;
	if (zone_dir(z, i, relpath, full, dir, e) < 0)
		return -1;
	fd = util_open_tmp(dir, tmp, PATH_MAX + 40);
	if (fd < 0) {
		err_sys(e, ERR_IO, "cannot create %s", tmp);
		err_prefix(e, "zone %d (%s)", i + 1, z->paths[i]);
		return -1;
	}
	return fd;
}

#define DIRECT_ALIGN 4096

/*
 * Writes len bytes of data at off, then makes the file size bytes long. With direct, data
 * aligned and off aligned, the write is O_DIRECT (len rounded up to DIRECT_ALIGN: data must be
 * readable that far) where the filesystem takes it; otherwise, and where the filesystem
 * refuses the flag or the write (tmpfs, ...), through the page cache. 0 or -1 with errno.
 */
static int write_copy(int fd, const void *data, size_t len, uint64_t off, uint64_t size, int direct)
{
	size_t padded = (len + DIRECT_ALIGN - 1) & ~(size_t)(DIRECT_ALIGN - 1);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	direct = direct && off % DIRECT_ALIGN == 0 && (uintptr_t)data % DIRECT_ALIGN == 0;
	if (direct && ((fl & O_DIRECT) || fcntl(fd, F_SETFL, fl | O_DIRECT) == 0)) {
		if (util_pwrite_all(fd, data, padded, off) == 0)
			return padded == len && size == off + len ? 0 : ftruncate(fd, (off_t)size);
		if (errno != EINVAL)
			return -1;
		/* the filesystem took the flag but not the write: again through the cache */
		if (fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0 || ftruncate(fd, (off_t)off) < 0)
			return -1;
	} else if ((fl & O_DIRECT) && fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0) {
		return -1;
	}
	if (util_pwrite_all(fd, data, len, off) < 0)
		return -1;
	return size == off + len ? 0 : ftruncate(fd, (off_t)size);
}

/* One zone's copy: written, fsynced and closed, on a thread of its own when there are several. */
struct copy_job {
	int fd, direct, rc, err; /* rc -1: err is errno; what names the step that failed */
	const void *data;
	size_t len;
	uint64_t off, size; /* data goes at off; the file ends up size bytes long */
	const char *what;
	pthread_t thread;
	int started;
};

static void *copy_run(void *arg)
{
	struct copy_job *c = arg;
	c->rc = 0;
	if (write_copy(c->fd, c->data, c->len, c->off, c->size, c->direct) < 0)
		c->what = "write";
	else if (fsync(c->fd) < 0)
		c->what = "fsync";
	if (c->what) {
		c->rc = -1;
		c->err = errno;
	}
	if (close(c->fd) < 0 && !c->what) {
		c->what = "close";
		c->rc = -1;
		c->err = errno;
	}
	c->fd = -1;
	return NULL;
}

/*
 * The zones' copies are written and fsynced in parallel (zones are often separate devices or
 * network mounts, and one zone's fsync need not wait for another's write), then renamed in
 * zone order; any failure removes every copy made. cj[i] for i in [first, last) with made[i]
 * is zone i's open temporary tmp[i], to become full[i] in directory dir[i]; rc < 0 (an open
 * that failed, e set) only closes and removes them.
 */
static int run_copies(zones *z, int first, int last, const char *relpath, struct copy_job *cj,
		      char (*tmp)[PATH_MAX + 40], char (*full)[PATH_MAX], char (*dir)[PATH_MAX], const int *made, int rc,
		      struct err *e)
{
	int existed[ZONES_MAX], renamed = first, i;
	for (i = 0; i < z->n; i++)
		existed[i] = 0;
	if (rc < 0) {
		for (i = first; i < last; i++)
			if (made[i])
				close(cj[i].fd);
	} else {
		/* the first copy is written on this thread, the others each on a thread of its own */
		for (i = first + 1; i < last; i++)
			if (pthread_create(&cj[i].thread, NULL, copy_run, &cj[i]) == 0)
				cj[i].started = 1;
			else
				copy_run(&cj[i]);
		copy_run(&cj[first]);
	}
	for (i = first; i < last && made[i]; i++) {
		if (cj[i].started)
			pthread_join(cj[i].thread, NULL);
		if (cj[i].rc < 0 && rc == 0) {
			errno = cj[i].err;
			err_sys(e, ERR_IO, "zone %d (%s): cannot %s %s", i + 1, z->paths[i], cj[i].what, relpath);
			rc = e ? e->code : ERR_IO;
		}
	}
	for (i = first; i < last && rc == 0; i++) {
		existed[i] = access(full[i], F_OK) == 0;
		if (rename(tmp[i], full[i]) < 0) {
			err_sys(e, ERR_IO, "zone %d (%s): cannot rename into %s", i + 1, z->paths[i], relpath);
			rc = e ? e->code : ERR_IO;
			break;
		}
		renamed = i + 1;
		add_dirty(z, dir[i]);
	}
	if (rc < 0) {
		/* undone: temporaries removed, and a renamed copy too unless it replaced a file (the
		 * old one is gone then; the new one is whole and durable, so it stays) */
		for (i = first; i < last; i++) {
			if (!made[i] || (i < renamed && existed[i]))
				continue;
			unlink(i < renamed ? full[i] : tmp[i]);
		}
		if (e && !e->hint[0])
			err_hint(e, FIX_ZONE_HINT);
	}
	return rc;
}

static int put_range(zones *z, int first, int last, const char *relpath, const void *data, size_t len, int direct,
		     struct err *e)
{
	char full[ZONES_MAX][PATH_MAX], tmp[ZONES_MAX][PATH_MAX + 40], dir[ZONES_MAX][PATH_MAX];
	struct copy_job cj[ZONES_MAX];
	int made[ZONES_MAX], i, rc = 0;
	memset(cj, 0, sizeof cj);
	for (i = 0; i < z->n; i++)
		made[i] = 0;
	for (i = first; i < last && rc == 0; i++) {
		cj[i].fd = open_tmp(z, i, relpath, full[i], tmp[i], dir[i], e);
		if (cj[i].fd < 0) {
			rc = e ? e->code : ERR_IO;
			break;
		}
		made[i] = 1;
		cj[i].data = data;
		cj[i].len = len;
		cj[i].size = len;
		cj[i].direct = direct;
	}
	return run_copies(z, first, last, relpath, cj, tmp, full, dir, made, rc, e);
}

int zones_put(zones *z, const char *relpath, const void *data, size_t len, struct err *e)
{
	return put_range(z, 0, z->n, relpath, data, len, 0, e);
}

int zones_put_direct(zones *z, const char *relpath, const void *data, size_t len, struct err *e)
{
	return put_range(z, 0, z->n, relpath, data, len, ((uintptr_t)data & (DIRECT_ALIGN - 1)) == 0, e);
}

int zones_put_one(zones *z, int i, const char *relpath, const void *data, size_t len, struct err *e)
{
	return put_range(z, i, i + 1, relpath, data, len, 0, e);
}

/* The directories of one zones_sync, fsynced by several threads: each takes the next. */
struct dir_sync {
	pthread_mutex_t mu;
	char **dirs;
	size_t n, next;
	int rc;
	struct err err; /* the first failure */
};

static void *dir_sync_run(void *arg)
{
	struct dir_sync *d = arg;
	for (;;) {
		struct err e;
		size_t i;
		int rc;
		pthread_mutex_lock(&d->mu);
		i = d->next++;
		pthread_mutex_unlock(&d->mu);
		if (i >= d->n)
			return NULL;
		err_clear(&e);
		if ((rc = util_fsync_dir(d->dirs[i], &e)) < 0) {
			pthread_mutex_lock(&d->mu);
			if (!d->rc) {
				d->rc = rc;
				d->err = e;
			}
			pthread_mutex_unlock(&d->mu);
		}
	}
}

#define DIR_SYNC_THREADS 8

/*
 * The dirty directories are fsynced in parallel: they are one per zone at least (a pack goes
 * to every zone), and one zone's fsync need not wait for another's.
 */
int zones_sync(zones *z, struct err *e)
{
	struct dir_sync d;
	pthread_t th[DIR_SYNC_THREADS];
	size_t started = 0;
	memset(&d, 0, sizeof d);
	pthread_mutex_init(&d.mu, NULL);
	d.dirs = z->dirty;
	d.n = z->ndirty;
	while (started + 1 < d.n && started < DIR_SYNC_THREADS &&
	       pthread_create(&th[started], NULL, dir_sync_run, &d) == 0)
		started++;
	dir_sync_run(&d);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&d.mu);
	for (size_t i = 0; i < z->ndirty; i++)
		free(z->dirty[i]);
	z->ndirty = 0;
	if (d.rc < 0 && e)
		*e = d.err;
	return d.rc;
}

int zones_remove(zones *z, const char *relpath, struct err *e)
{
	for (int i = 0; i < z->n; i++) {
		char full[PATH_MAX];
		char *slash;
		zones_file(z, i, relpath, full, sizeof full);
		if (unlink(full) < 0) {
			if (errno == ENOENT)
				continue;
			return err_sys(e, ERR_IO, "cannot remove %s", full);
		}
		/* the removal is durable only with its directory (a removed key must stay removed) */
		if ((slash = strrchr(full, '/')))
			*slash = '\0';
		if (util_fsync_dir(full, e) < 0)
			return e ? e->code : ERR_IO;
	}
	return 0;
}

int zones_get_small(const zones *z, const char *relpath, size_t max, uint8_t **out, size_t *len, int *zone,
		    struct err *e)
{
	int rc = ERR_NOTFOUND;
	for (int i = 0; i < z->n; i++) {
		char full[PATH_MAX];
		zones_file(z, i, relpath, full, sizeof full);
		rc = util_read_small(full, max, out, len, NULL);
		if (rc == 0) {
			if (zone)
				*zone = i;
			return 0;
		}
	}
	return err_set(e, ERR_NOTFOUND, "%s is in no zone", relpath);
}

int zones_pread(const zones *z, int i, const char *relpath, void *buf, size_t len, uint64_t off, struct err *e)
{
	char full[PATH_MAX];
	int fd;
	zones_file(z, i, relpath, full, sizeof full);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "zone %d: cannot open %s", i + 1, relpath);
	if (util_pread_all(fd, buf, len, off) < 0) {
		err_sys(e, errno == ENODATA ? ERR_CORRUPT : ERR_IO, "zone %d: cannot read %s", i + 1, relpath);
		close(fd);
		return e ? e->code : ERR_IO;
	}
	close(fd);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int zones_list(const zones *z, int i, const char *reldir, char ***names, size_t *n, struct err *e)
{
	char full[PATH_MAX];
	DIR *d;
	struct dirent *de;
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	zones_file(z, i, reldir, full, sizeof full);
	d = opendir(full);
	if (!d)
		return err_sys(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "zone %d: cannot list %s", i + 1, reldir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*names = xrealloc(*names, cap * sizeof **names);
		}
		(*names)[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof **names, cmp_str);
	return 0;
}

void zones_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Copies src into fd (a zone's temporary file) and starts its write-back. */
static int copy_into(int fd, int src, uint8_t *buf, const char *tmp, struct err *e)
{
	for (uint64_t off = 0;;) {
		ssize_t r = pread(src, buf, 1 << 20, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_sys(e, ERR_IO, "cannot read the local copy");
		if (r == 0)
			break;
		if (util_write_all(fd, buf, (size_t)r) < 0)
			return err_sys(e, ERR_IO, "cannot write %s", tmp);
		off += (uint64_t)r;
	}
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* the zones' disks write in parallel */
	return 0;
}

/*
 * Every zone's copy is written first, then each is fsynced, closed and renamed: the fsyncs
 * wait for writes already under way in all zones, not for one zone after the other. Each zone
 * on its own: one that fails is cleaned up and reported, the others go on.
 */
int zones_put_file(zones *z, const char *relpath, const char *local_path, unsigned *written, struct err *e)
{
	char full[ZONES_MAX][PATH_MAX], tmp[ZONES_MAX][PATH_MAX + 40], dir[ZONES_MAX][PATH_MAX];
	struct err ze[ZONES_MAX];
	int fd[ZONES_MAX], zrc[ZONES_MAX], rc = 0, i;
	uint8_t *buf;
	int src = open(local_path, O_RDONLY | O_CLOEXEC);
	if (written)
		*written = 0;
	if (src < 0)
		return err_sys(e, ERR_IO, "cannot open %s", local_path);
	buf = xmalloc(1 << 20);
	for (i = 0; i < z->n; i++) {
		err_clear(&ze[i]);
		zrc[i] = 0;
		if ((fd[i] = open_tmp(z, i, relpath, full[i], tmp[i], dir[i], &ze[i])) < 0) /* it names the zone */
			zrc[i] = ze[i].code ? ze[i].code : ERR_IO;
		else if (copy_into(fd[i], src, buf, tmp[i], &ze[i]) < 0)
			zrc[i] = ze[i].code ? ze[i].code : ERR_IO;
	}
	for (i = 0; i < z->n; i++) {
		if (fd[i] < 0)
			continue;
		if (zrc[i] == 0 && fsync(fd[i]) < 0)
			zrc[i] = err_sys(&ze[i], ERR_IO, "cannot fsync %s", tmp[i]);
		if (close(fd[i]) < 0 && zrc[i] == 0)
			zrc[i] = err_sys(&ze[i], ERR_IO, "cannot close %s", tmp[i]);
		if (zrc[i] == 0 && rename(tmp[i], full[i]) < 0)
			zrc[i] = err_sys(&ze[i], ERR_IO, "cannot rename %s", tmp[i]);
		if (zrc[i] < 0) {
			unlink(tmp[i]);
			err_prefix(&ze[i], "zone %d (%s)", i + 1, z->paths[i]);
		}
	}
	for (i = 0; i < z->n; i++) {
		if (zrc[i] == 0) {
			add_dirty(z, dir[i]);
			if (written)
				*written |= 1u << i;
		} else if (rc == 0) { /* the first failure is the one reported */
			rc = zrc[i];
			if (e)
				*e = ze[i];
			if (e && !e->hint[0])
				err_hint(e, FIX_ZONE_HINT);
		}
	}
	free(buf);
	close(src);
	return rc;
}

/* ---------- files written in pieces ---------- */

struct zones_stream {
	zones *z;
	int fd[ZONES_MAX];
	char tmp[ZONES_MAX][PATH_MAX + 40];
	uint64_t off; /* bytes written to every copy */
};

/* zones.h; a streamed pack keeps its temporaries for as long as it fills, so a push or
 * snapshot killed meanwhile (kill -9, SIGBUS, a power cut) leaves them */
void zones_sweep_stale(zones *z, const char *reldir)
{
	for (int i = 0; i < z->n; i++) {
		char dir[PATH_MAX];
		struct dirent *de;
		DIR *d;
		zones_file(z, i, reldir, dir, sizeof dir);
		if (!(d = opendir(dir)))
			continue;
		while ((de = readdir(d))) {
			char *end, full[PATH_MAX + 300];
			long pid;
			if (strncmp(de->d_name, ".tmp-", 5))
				continue;
			pid = strtol(de->d_name + 5, &end, 10);
			if (end == de->d_name + 5 || *end != '-' || pid <= 0 || pid == (long)getpid())
				continue;
			if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
				continue;
			snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
			unlink(full);
		}
		closedir(d);
	}
}

int zones_stream_open(zones *z, const char *reldir, zones_stream **out, struct err *e)
{
	zones_stream *s = xcalloc(1, sizeof *s);
	char rel[PATH_MAX], full[PATH_MAX], dir[PATH_MAX];
	*out = NULL;
	if (!z->swept) {
		zones_sweep_stale(z, reldir);
		z->swept = 1;
	}
	s->z = z;
	for (int i = 0; i < z->n; i++)
		s->fd[i] = -1;
	snprintf(rel, sizeof rel, "%s/x", reldir);
	for (int i = 0; i < z->n; i++) {
		if ((s->fd[i] = open_tmp(z, i, rel, full, s->tmp[i], dir, e)) < 0) {
			zones_stream_abort(s);
			if (e && !e->hint[0])
				err_hint(e, FIX_ZONE_HINT);
			return e ? e->code : ERR_IO;
		}
	}
	*out = s;
	return 0;
}

int zones_stream_write(zones_stream *s, const void *data, size_t len, struct err *e)
{
	for (int i = 0; i < s->z->n; i++)
		if (write_copy(s->fd[i], data, len, s->off, s->off + len, 1) < 0) {
			err_sys(e, ERR_IO, "zone %d (%s): cannot write a pack", i + 1, s->z->paths[i]);
			err_hint(e, FIX_ZONE_HINT);
			return e ? e->code : ERR_IO;
		}
	s->off += len;
	return 0;
}

int zones_stream_finish(zones_stream *s, const void *tail, size_t len, const char *relpath, struct err *e)
{
	zones *z = s->z;
	char full[ZONES_MAX][PATH_MAX], dir[ZONES_MAX][PATH_MAX];
	struct copy_job cj[ZONES_MAX];
	int made[ZONES_MAX], i, rc = 0;
	memset(cj, 0, sizeof cj);
	for (i = 0; i < z->n; i++) {
		made[i] = 1;
		cj[i].fd = s->fd[i];
		s->fd[i] = -1; /* closed by run_copies */
		cj[i].data = tail;
		cj[i].len = len;
		cj[i].off = s->off;
		cj[i].size = s->off + len;
		cj[i].direct = 1;
		if (rc == 0 && zone_dir(z, i, relpath, full[i], dir[i], e) < 0)
			rc = e ? e->code : ERR_IO;
	}
	rc = run_copies(z, 0, z->n, relpath, cj, s->tmp, full, dir, made, rc, e);
	free(s);
	return rc;
}

void zones_stream_abort(zones_stream *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->z->n; i++)
		if (s->fd[i] >= 0) {
			close(s->fd[i]);
			unlink(s->tmp[i]);
		}
	free(s);
}
