#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void oom(void)
{
	fputs("pgtimefs: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

int util_read_small(const char *path, size_t max, uint8_t **out, size_t *len, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int rc;
	if (fd < 0)
		return err_sys(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot open %s", path);
	if (fstat(fd, &st) < 0) {
		rc = err_sys(e, ERR_IO, "cannot stat %s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		rc = err_set(e, ERR_CORRUPT, "%s is not a regular file of at most %zu bytes", path, max);
		goto fail;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_sys(e, ERR_IO, "cannot read %s", path);
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	close(fd);
	*out = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	close(fd);
	return rc;
}

int util_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int util_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

int util_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ENODATA;
			return -1;
		}
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

void util_readahead_fd(int fd, uint64_t off, uint64_t len)
{
	const uint64_t step = 2u << 20;
	for (uint64_t at = 0; at < len; at += step)
		posix_fadvise(fd, (off_t)(off + at), (off_t)(len - at < step ? len - at : step), POSIX_FADV_WILLNEED);
}

void util_readahead(const char *path, uint64_t max)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > 0)
		util_readahead_fd(fd, 0, (uint64_t)st.st_size < max ? (uint64_t)st.st_size : max);
	close(fd);
}

int util_fsync_dir(const char *dir, struct err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, ERR_IO, "cannot open directory %s", dir);
	if (fsync(fd) < 0) {
		int rc = err_sys(e, ERR_IO, "cannot fsync directory %s", dir);
		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

int util_open_tmp(const char *dir, char *tmp, size_t cap)
{
	static _Atomic uint64_t counter;
	for (int tries = 0;; tries++) {
		uint64_t r;
		int fd;
		if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
			r = (uint64_t)util_now_us() ^ ((uint64_t)getpid() << 40);
		r ^= counter++;
		snprintf(tmp, cap, "%s/.tmp-%ld-%016" PRIx64, dir, (long)getpid(), r);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST || tries == 8)
			return fd;
	}
}

int util_write_durable(const char *path, const void *buf, size_t len, int sync_dir, struct err *e)
{
	char tmp[4096], dir[4096];
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) : 1;
	int fd, rc;
	if (strlen(path) + 48 > sizeof tmp)
		return err_set(e, ERR_IO, "path too long: %s", path);
	if (slash) {
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	} else {
		strcpy(dir, ".");
	}
	fd = util_open_tmp(dir, tmp, sizeof tmp);
	if (fd < 0)
		return err_sys(e, ERR_IO, "cannot create %s", tmp);
	if (util_write_all(fd, buf, len) < 0) {
		rc = err_sys(e, ERR_IO, "cannot write %s", tmp);
		goto fail;
	}
	if (fsync(fd) < 0) {
		rc = err_sys(e, ERR_IO, "cannot fsync %s", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = err_sys(e, ERR_IO, "cannot close %s", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = err_sys(e, ERR_IO, "cannot rename %s to %s", tmp, path);
		goto fail;
	}
	if (sync_dir)
		return util_fsync_dir(dir, e);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int util_mkdir_p(const char *path, unsigned mode, struct err *e)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n >= sizeof buf)
		return err_set(e, ERR_IO, "path too long: %s", path);
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];
			buf[i] = '\0';
			if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
				return err_sys(e, ERR_IO, "cannot create directory %s", buf);
			buf[i] = c;
		}
	}
	return 0;
}

int util_rm_rf(const char *path, struct err *e)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_sys(e, ERR_IO, "cannot stat %s", path);
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		if (!d)
			return err_sys(e, ERR_IO, "cannot open %s", path);
		while ((de = readdir(d))) {
			char sub[4096];
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
			if (util_rm_rf(sub, e) < 0) {
				closedir(d);
				return e ? e->code : ERR_IO;
			}
		}
		closedir(d);
		if (rmdir(path) < 0)
			return err_sys(e, ERR_IO, "cannot remove %s", path);
		return 0;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return err_sys(e, ERR_IO, "cannot remove %s", path);
	return 0;
}

int64_t util_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double util_thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double util_process_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double util_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void util_human_bytes(uint64_t n, char *out, size_t cap)
{
	static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int i = 0;
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, cap, "%llu B", (unsigned long long)n);
	else
		snprintf(out, cap, "%.1f %s", v, u[i]);
}
