/* copy.c: a node's tree out of the mount into a new data directory (cp -a with holes). */
#include "copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* 128 KiB, as cp: the buffer stays in the CPU cache between the read from the mount and the
 * write; 1 MiB made the same copy 1.5x slower (dd from the mount to ext4, 640 MB: 1.46-1.59 s
 * at 1M, 0.85-1.04 s at 128K; design notes, "Measured: restore") */
#define COPY_BLOCK (128u << 10)
#define PATH_CAP 4096
/* a file at least this large is copied by two threads, one half each (a data directory's
 * bytes sit mostly in a few large relation files; one reader of the mount leaves a core idle) */
#define SPLIT_MIN (64ull << 20)

struct copier {
	const struct restore_copy_opts *o;
	struct restore_tree_stats *st;
	uint8_t *buf;
	char src[PATH_CAP], dst[PATH_CAP + 32];
	size_t src_len, dst_len, root_len; /* root_len: length of the source root, for relative names */
};

static int stopped(const struct copier *c, struct err *e)
{
	if (c->o->stop && atomic_load(c->o->stop))
		return err_set(e, ERR_INTERNAL, "stopped");
	return 0;
}

static void add_done(const struct copier *c, uint64_t n)
{
	if (c->o->done)
		atomic_fetch_add(c->o->done, n);
}

/* Sets owner, mode and times of the path in c->dst (symlink: owner and times only). */
static int set_meta(const struct copier *c, int fd, const struct stat *st, struct err *e)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (S_ISLNK(st->st_mode)) {
		if (c->o->chown && lchown(c->dst, c->o->uid, c->o->gid) < 0)
			return err_sys(e, ERR_IO, "cannot chown %s", c->dst);
		if (utimensat(AT_FDCWD, c->dst, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return err_sys(e, ERR_IO, "cannot set the times of %s", c->dst);
		return 0;
	}
	if (fd >= 0) {
		if (c->o->chown && fchown(fd, c->o->uid, c->o->gid) < 0)
			return err_sys(e, ERR_IO, "cannot chown %s", c->dst);
		if (fchmod(fd, st->st_mode & 07777) < 0)
			return err_sys(e, ERR_IO, "cannot chmod %s", c->dst);
		if (futimens(fd, ts) < 0)
			return err_sys(e, ERR_IO, "cannot set the times of %s", c->dst);
		return 0;
	}
	if (c->o->chown && lchown(c->dst, c->o->uid, c->o->gid) < 0)
		return err_sys(e, ERR_IO, "cannot chown %s", c->dst);
	if (chmod(c->dst, st->st_mode & 07777) < 0)
		return err_sys(e, ERR_IO, "cannot chmod %s", c->dst);
	if (utimensat(AT_FDCWD, c->dst, ts, 0) < 0)
		return err_sys(e, ERR_IO, "cannot set the times of %s", c->dst);
	return 0;
}

/* Copies bytes [off, end) of in to out. */
static int copy_range(struct copier *c, int in, int out, uint64_t off, uint64_t end, struct err *e)
{
	while (off < end) {
		size_t want = end - off < COPY_BLOCK ? (size_t)(end - off) : COPY_BLOCK;
		ssize_t r;
		int rc;
		if ((rc = stopped(c, e)) < 0)
			return rc;
		r = pread(in, c->buf, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_sys(e, ERR_IO, "cannot read %s", c->src);
		if (r == 0)
			return err_set(e, ERR_IO, "%s is shorter than its size (changed while copied?)", c->src);
		for (ssize_t w = 0; w < r;) {
			ssize_t k = pwrite(out, c->buf + w, (size_t)(r - w), (off_t)(off + (uint64_t)w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return err_sys(e, ERR_IO, "cannot write %s", c->dst);
			w += k;
		}
		off += (uint64_t)r;
		add_done(c, (uint64_t)r);
	}
	return 0;
}

/* Copies the data extents of [off, end) of in to out (SEEK_DATA/SEEK_HOLE: holes stay holes). */
static int copy_extents(struct copier *c, int in, int out, uint64_t off, uint64_t end, struct err *e)
{
	int rc;
	posix_fadvise(in, (off_t)off, (off_t)(end - off), POSIX_FADV_SEQUENTIAL);
	while (off < end) {
		off_t data = lseek(in, (off_t)off, SEEK_DATA), hole;
		if ((data < 0 && errno == ENXIO) || (data >= 0 && (uint64_t)data >= end)) { /* only a hole is left */
			add_done(c, end - off);
			break;
		}
		if (data < 0) { /* no SEEK_DATA here: everything is data */
			data = (off_t)off;
			hole = (off_t)end;
		} else {
			hole = lseek(in, data, SEEK_HOLE);
			if (hole < 0 || (uint64_t)hole > end)
				hole = (off_t)end;
		}
		add_done(c, (uint64_t)data - off);
		if ((rc = copy_range(c, in, out, (uint64_t)data, (uint64_t)hole, e)) < 0)
			return rc;
		off = (uint64_t)hole;
	}
	return 0;
}

/* The second half of a split file, on its own thread with its own buffer and descriptor. */
struct half {
	struct copier c;
	int in, out;
	uint64_t from, to;
	struct err e;
	int rc;
};

static void *half_main(void *arg)
{
	struct half *h = arg;
	h->rc = copy_extents(&h->c, h->in, h->out, h->from, h->to, &h->e);
	return NULL;
}

/* Copies a large file with two threads: this one the first half, a helper the second. */
static int copy_split(struct copier *c, int in, int out, uint64_t size, struct err *e)
{
	struct half h;
	pthread_t t;
	int rc;
	memset(&h, 0, sizeof h);
	h.c = *c;
	h.out = out;
	h.from = size / 2 & ~((uint64_t)COPY_BLOCK - 1);
	h.to = size;
	h.in = open(c->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC); /* its own sequential stream */
	if (h.in < 0)
		return copy_extents(c, in, out, 0, size, e);
	h.c.buf = xmalloc(COPY_BLOCK);
	if (pthread_create(&t, NULL, half_main, &h) != 0) {
		free(h.c.buf);
		close(h.in);
		return copy_extents(c, in, out, 0, size, e);
	}
	rc = copy_extents(c, in, out, 0, h.from, e);
	pthread_join(t, NULL);
	free(h.c.buf);
	close(h.in);
	if (rc == 0 && h.rc < 0) {
		if (e)
			*e = h.e;
		rc = h.rc;
	}
	return rc;
}

static int copy_file(struct copier *c, const struct stat *st, struct err *e)
{
	int in = -1, out = -1, rc;
	uint64_t size = (uint64_t)st->st_size;
	const char *rel = c->src + c->root_len + 1;
	if (c->o->hold_back && c->src_len > c->root_len && !strcmp(rel, c->o->hold_back))
		strcat(c->dst, RESTORE_HELD_SUFFIX); /* room reserved in dst */
	in = open(c->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		rc = err_sys(e, ERR_IO, "cannot open %s", c->src);
		goto out;
	}
	out = open(c->dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = err_sys(e, ERR_IO, "cannot create %s", c->dst);
		goto out;
	}
	if (size >= SPLIT_MIN)
		rc = copy_split(c, in, out, size, e);
	else
		rc = copy_extents(c, in, out, 0, size, e);
	if (rc < 0)
		goto out;
	if (ftruncate(out, (off_t)size) < 0) {
		rc = err_sys(e, ERR_IO, "cannot set the size of %s", c->dst);
		goto out;
	}
	if ((rc = set_meta(c, out, st, e)) < 0)
		goto out;
	/* writeback starts now; the caller makes the whole target durable
	 * at once (syncfs); reading the next files overlaps the disk writing this one */
	if (size > 0)
		(void)sync_file_range(out, 0, 0, SYNC_FILE_RANGE_WRITE);
	c->st->files++;
	c->st->bytes += size;
	c->st->allocated += (uint64_t)st->st_blocks * 512 < size ? (uint64_t)st->st_blocks * 512 : size;
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = err_sys(e, ERR_IO, "cannot close %s", c->dst);
	return rc;
}

static int copy_dir(struct copier *c, const struct stat *st, struct err *e);

/* Copies the entry at c->src (already lstat'ed into st) to c->dst. */
static int copy_entry(struct copier *c, const struct stat *st, struct err *e)
{
	int rc;
	if ((rc = stopped(c, e)) < 0)
		return rc;
	if (S_ISDIR(st->st_mode))
		return copy_dir(c, st, e);
	if (S_ISREG(st->st_mode))
		return copy_file(c, st, e);
	if (S_ISLNK(st->st_mode)) {
		char target[PATH_CAP];
		ssize_t n = readlink(c->src, target, sizeof target - 1);
		if (n < 0)
			return err_sys(e, ERR_IO, "cannot read the symlink %s", c->src);
		target[n] = 0;
		if (symlink(target, c->dst) < 0)
			return err_sys(e, ERR_IO, "cannot create the symlink %s", c->dst);
		c->st->links++;
		return set_meta(c, -1, st, e);
	}
	if (S_ISFIFO(st->st_mode)) {
		if (mkfifo(c->dst, 0600) < 0)
			return err_sys(e, ERR_IO, "cannot create the fifo %s", c->dst);
		return set_meta(c, -1, st, e);
	}
	return 0; /* sockets and devices have no place in a data directory */
}

static int copy_dir(struct copier *c, const struct stat *st, struct err *e)
{
	DIR *d = NULL;
	struct dirent *de;
	int rc = 0, fd = -1;
	size_t sl = c->src_len, dl = c->dst_len;
	if (mkdir(c->dst, 0700) < 0 && !(errno == EEXIST && c->o->root_exists && c->src_len == c->root_len))
		return err_sys(e, ERR_IO, "cannot create the directory %s", c->dst);
	if (!(d = opendir(c->src)))
		return err_sys(e, ERR_IO, "cannot open the directory %s", c->src);
	for (;;) {
		struct stat cst;
		size_t nl;
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				rc = err_sys(e, ERR_IO, "cannot read the directory %s", c->src);
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		nl = strlen(de->d_name);
		if (sl + nl + 2 > sizeof c->src || dl + nl + 2 + sizeof RESTORE_HELD_SUFFIX > sizeof c->dst) {
			rc = err_set(e, ERR_IO, "path too long: %s/%s", c->src, de->d_name);
			break;
		}
		c->src[sl] = '/';
		memcpy(c->src + sl + 1, de->d_name, nl + 1);
		c->dst[dl] = '/';
		memcpy(c->dst + dl + 1, de->d_name, nl + 1);
		c->src_len = sl + 1 + nl;
		c->dst_len = dl + 1 + nl;
		if (lstat(c->src, &cst) < 0)
			rc = err_sys(e, ERR_IO, "cannot stat %s", c->src);
		else
			rc = copy_entry(c, &cst, e);
		c->src[sl] = 0;
		c->dst[dl] = 0;
		c->src_len = sl;
		c->dst_len = dl;
		if (rc < 0)
			break;
	}
	closedir(d);
	if (rc < 0)
		return rc;
	/* owner, mode and mtime last: the copy above changed the mtime, and a 0500 dir takes no files */
	fd = open(c->dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, ERR_IO, "cannot open the directory %s", c->dst);
	rc = set_meta(c, fd, st, e);
	close(fd);
	c->st->dirs++;
	return rc;
}

int restore_copy_tree(const char *src, const char *dst, const struct restore_copy_opts *o,
		      struct restore_tree_stats *st, struct err *e)
{
	struct copier c;
	struct restore_tree_stats local;
	struct stat sst;
	int rc;
	memset(&c, 0, sizeof c);
	memset(&local, 0, sizeof local);
	c.o = o;
	c.st = st ? st : &local;
	memset(c.st, 0, sizeof *c.st);
	if (strlen(src) + 2 > sizeof c.src || strlen(dst) + 2 > PATH_CAP)
		return err_set(e, ERR_IO, "path too long: %s", strlen(src) + 2 > sizeof c.src ? src : dst);
	snprintf(c.src, sizeof c.src, "%s", src);
	snprintf(c.dst, sizeof c.dst, "%s", dst);
	c.src_len = c.root_len = strlen(c.src);
	c.dst_len = strlen(c.dst);
	if (stat(src, &sst) < 0)
		return err_sys(e, ERR_IO, "cannot stat %s", src);
	if (!S_ISDIR(sst.st_mode))
		return err_set(e, ERR_IO, "%s is not a directory", src);
	c.buf = xmalloc(COPY_BLOCK);
	rc = copy_dir(&c, &sst, e);
	free(c.buf);
	return rc;
}

static int size_walk(char *path, size_t len, size_t cap, struct restore_tree_stats *st, struct err *e)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int rc = 0;
	if (!d)
		return err_sys(e, ERR_IO, "cannot open the directory %s", path);
	st->dirs++;
	while ((errno = 0, de = readdir(d))) {
		struct stat s;
		size_t nl = strlen(de->d_name);
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len + nl + 2 > cap) {
			rc = err_set(e, ERR_IO, "path too long: %s/%s", path, de->d_name);
			break;
		}
		path[len] = '/';
		memcpy(path + len + 1, de->d_name, nl + 1);
		if (lstat(path, &s) < 0) {
			rc = err_sys(e, ERR_IO, "cannot stat %s", path);
		} else if (S_ISDIR(s.st_mode)) {
			rc = size_walk(path, len + 1 + nl, cap, st, e);
		} else if (S_ISREG(s.st_mode)) {
			uint64_t a = (uint64_t)s.st_blocks * 512;
			st->files++;
			st->bytes += (uint64_t)s.st_size;
			st->allocated += a < (uint64_t)s.st_size ? a : (uint64_t)s.st_size;
		} else if (S_ISLNK(s.st_mode)) {
			st->links++;
		}
		path[len] = 0;
		if (rc < 0)
			break;
	}
	if (rc == 0 && errno)
		rc = err_sys(e, ERR_IO, "cannot read the directory %s", path);
	closedir(d);
	return rc;
}

int restore_tree_size(const char *src, struct restore_tree_stats *st, struct err *e)
{
	char path[PATH_CAP];
	memset(st, 0, sizeof *st);
	if (strlen(src) + 2 > sizeof path)
		return err_set(e, ERR_IO, "path too long: %s", src);
	snprintf(path, sizeof path, "%s", src);
	return size_walk(path, strlen(path), sizeof path, st, e);
}
