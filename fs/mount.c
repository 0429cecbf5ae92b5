#define FUSE_USE_VERSION 312
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/pool.h"
#include "common/util.h"
#include "file.h"
#include "path.h"
#include "prefetch.h"

/* what never changes is cached by the kernel this long; the rest for a second */
#define LONG_TIMEOUT 86400.0
#define SHORT_TIMEOUT 1.0
/* read-ahead handed to the workers when a file is read in order */
#define AHEAD_BYTES (4u << 20)
/* a read this close to where the last one ended still counts as in order (the kernel's
 * read-ahead requests run on several threads and arrive out of order): SEQ_SLACK, or four
 * times the mount's read-ahead if more (mnt.seq_slack) */
#define SEQ_SLACK (8u << 20)
/* A handle that read more than STREAM_MIN bytes of a file in order is a stream: the file's
 * pages more than the drop lag behind the reader are dropped from the kernel's cache in steps
 * of DROP_STEP, and the rest when the handle is released. The lag (mnt.drop_lag) is DROP_LAG,
 * or the slack plus twice the read-ahead if more, so that nothing still to be read is
 * dropped. The inodes streamed so far are remembered (STREAMED slots, by a hash of the
 * number): a file opened again keeps its pages. */
#define STREAM_MIN (8u << 20)
#define DROP_LAG (16u << 20)
#define DROP_STEP (4u << 20)
#define DROP_QUEUE 64
#define STREAMED 1024

/*
 * Open file and directory handles are on a list of the mount, so that those the kernel never
 * releases (a lazy unmount, a signal) are freed when the session ends.
 */
struct hlink {
	struct hlink *prev, *next;
	void *owned; /* freed with the handle (NULL: nothing) */
	int file;    /* a struct fileh (else a struct dirh) */
};

/* packs whose zone fallback was logged (each once; the oldest forgotten first) */
#define FALLBACK_SEEN 64

struct mnt {
	struct repo *r;
	/* zone fallbacks logged: the first 16 hex digits of each pack's name; under fb_mu */
	pthread_mutex_t fb_mu;
	char fb_seen[FALLBACK_SEEN][17];
	int fb_next;
	char catalog_file[PATH_MAX];
	const struct fs_mount_opts *o;
	chunk_cache *cache;
	fs_prefetch *prefetch;
	pthread_key_t key;
	struct fuse_session *se;
	/* the watcher: stop is guarded by mu */
	pthread_t watcher;
	int watcher_started, stop;
	char dev[64]; /* the mount's device ("major:minor"), for fusectl */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* open handles: guarded by hmu (a leaf lock) */
	pthread_mutex_t hmu;
	struct hlink handles;
	/* inodes streamed once (streamed_slot), and how many handles that keep the pages read
	 * each since (streamed_reading): guarded by hmu */
	struct streamed {
		uint64_t ino;
		uint64_t reopened;
	} streamed[STREAMED];
	uint64_t seq_slack; /* how far a read may be from the last one and still be in order */
	uint64_t drop_lag;  /* how far behind a stream's reader its pages are dropped */
	/* page ranges to drop, handed to the watcher: guarded by mu */
	struct drop {
		fuse_ino_t ino;
		uint64_t off, len;
	} drops[DROP_QUEUE];
	int ndrops;
};

/* what each session thread owns */
struct tls {
	catalog *c;
	fs_reader *rd;
	struct fs_vec vec;
	uint8_t *buf;
	size_t cap;
};

struct dirh {
	struct hlink link; /* first: a handle is freed through it; link.owned: the window */
	struct fs_loc loc;
	off_t next_off;	 /* the offset after the last entry returned */
	char last[256]; /* that entry's resume key (fs_resume_key: its name, or a snapshot's time and name) */
	/* the window: the children of the last reply that had any, their names one after another
	 * (each NUL-terminated) in link.owned; the first's next offset is win_first, and each
	 * next one's is one more. A read resumed inside that reply (the caller's buffer filled
	 * before the kernel used all of it) goes on after the name, as after next_off */
	off_t win_first;
	int win_n;
	/* the kernel sends one readdir of an open directory at a time, but an interrupted one
	 * may still run here when the next comes: the window is only touched under mu (a
	 * default mutex, so freeing the handle needs no destroy) */
	pthread_mutex_t mu;
};

struct fileh {
	struct hlink link; /* first */
	int64_t content;
	uint64_t size;
	uint8_t *synth; /* a synthesized file (at/ views): its bytes, made at open */
	uint64_t next;	/* where the last read ended (atomic) */
	uint64_t ahead; /* read-ahead was asked for up to here (atomic) */
	uint64_t dropped; /* the pages before this were dropped from the kernel's cache (atomic) */
	uint64_t hi;	  /* the furthest end of a read (atomic) */
	uint64_t inorder; /* bytes read in order, each once: past hi as it was (atomic) */
	uint64_t reopened; /* the file's reopen count (streamed_open) when this handle opened it */
	int again;	   /* kept as streamed before: 1 until its first read, then 2 (atomic) */
	int keep;	  /* keep the pages: asked for, or the file was streamed before */
	int no_drop;	  /* read out of order once, or a drop found the queue full: its pages stay (atomic) */
	fuse_ino_t ino;
	struct stat st; /* the attributes at open: a getattr of a file whose snapshot went since */
};

static void handle_add(struct mnt *m, struct hlink *l)
{
	pthread_mutex_lock(&m->hmu);
	l->next = m->handles.next;
	l->prev = &m->handles;
	m->handles.next->prev = l;
	m->handles.next = l;
	pthread_mutex_unlock(&m->hmu);
}

/* unlinks and frees a handle made by xcalloc with the link first */
static void handle_free(struct mnt *m, struct hlink *l)
{
	pthread_mutex_lock(&m->hmu);
	l->prev->next = l->next;
	l->next->prev = l->prev;
	pthread_mutex_unlock(&m->hmu);
	free(l->owned);
	free(l);
}

static void logmsg(const struct mnt *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logmsg(const struct mnt *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (m->o->foreground) {
		fputs("pgtimefs mount: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(LOG_ERR, fmt, ap);
	}
	va_end(ap);
}

static void tls_free(void *p)
{
	struct tls *t = p;
	fs_reader_free(t->rd);
	catalog_close(t->c);
	free(t->buf);
	free(t);
}

static struct tls *tls_get(struct mnt *m)
{
	struct tls *t = pthread_getspecific(m->key);
	struct err e;
	catalog *c;
	if (t)
		return t;
	err_clear(&e);
	if (catalog_open(m->catalog_file, 1, &c, &e) < 0) {
		logmsg(m, "cannot open the catalog: %s", e.msg);
		return NULL;
	}
	t = xcalloc(1, sizeof *t);
	t->c = c;
	t->rd = fs_reader_new(m->r, c, m->cache);
	fs_reader_set_prefetch(t->rd, m->prefetch);
	pthread_setspecific(m->key, t);
	return t;
}

/* the errno for an error: a missing thing is ENOENT, anything else is logged and EIO */
static int errno_of(struct mnt *m, int rc, const struct err *e)
{
	if (rc == ERR_NOTFOUND)
		return ENOENT;
	logmsg(m, "%s", e->msg);
	if (rc == ERR_NOSPC) /* the table of at/ views is full (fs/view.h): the log says to remount */
		return ENOSPC;
	return EIO;
}

static struct mnt *mnt_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* the location of ino for this request's thread; on failure the request is answered */
/* the location of ino for this thread (*t): 0, or an ERR_ code with its message in e */
static int find_loc(struct mnt *m, fuse_ino_t ino, struct tls **t, struct fs_loc *l, struct err *e)
{
	err_clear(e);
	if (!(*t = tls_get(m)))
		return err_set(e, ERR_IO, "no catalog connection for this thread (see above)");
	return fs_loc_of_ino((*t)->c, ino, l, e);
}

/* the location of ino for this request's thread; on failure the request is answered */
static struct tls *locate(fuse_req_t req, fuse_ino_t ino, struct fs_loc *l)
{
	struct mnt *m = mnt_of(req);
	struct tls *t;
	struct err e;
	int rc;
	if ((rc = find_loc(m, ino, &t, l, &e)) < 0) {
		fuse_reply_err(req, errno_of(m, rc, &e));
		return NULL;
	}
	return t;
}

static void entry_of(catalog *c, const struct fs_loc *dir, const struct fs_loc *l, struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof *ep);
	ep->ino = fs_ino(l);
	/* entry numbers of a deleted snapshot may come back in a later one: a new generation
	 * makes the kernel drop an inode it still holds under that number */
	ep->generation = l->kind == FS_ENTRY ? (uint64_t)l->nb : 1;
	/* a .partial replaced as it grows may get its old row's number: its content tells them apart */
	if (l->kind == FS_WALFILE && l->wal.content > 0)
		ep->generation = (uint64_t)l->wal.content;
	fs_stat_full(c, l, &ep->attr);
	ep->attr.st_ino = ep->ino;
	ep->attr_timeout = fs_immutable(l) ? LONG_TIMEOUT : SHORT_TIMEOUT;
	ep->entry_timeout = fs_immutable(dir) ? LONG_TIMEOUT : SHORT_TIMEOUT;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	const struct mnt *m = userdata;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* always readdirplus: `ls -l`, `cp -a` and `diff -r` stat everything they list */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	/* the kernel keeps symlink targets: `ls -l` through `latest` would ask for its target
	 * on every path otherwise; the watcher drops it when `latest` moves */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* contents never change: no need to compare mtimes to drop pages */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	/* the kernel keeps the bdi's read-ahead (set_readahead) under this */
	conn->max_readahead = m->o->readahead_kb > 1024 ? m->o->readahead_kb << 10 : 1u << 20;
}

static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mnt *m = mnt_of(req);
	struct fs_loc dir, child;
	struct fuse_entry_param ep;
	struct tls *t;
	struct err e;
	int rc;
	if (!(t = locate(req, parent, &dir)))
		return;
	err_clear(&e);
	if (!fs_is_dir(&dir)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if ((rc = fs_lookup(t->c, &dir, name, &child, &e)) < 0) {
		fuse_reply_err(req, errno_of(m, rc, &e));
		return;
	}
	entry_of(t->c, &dir, &child, &ep);
	fuse_reply_entry(req, &ep);
}

/* handle l as the file handle of ino, or NULL (a directory's, or another file's) */
static const struct fileh *file_of(const struct hlink *l, fuse_ino_t ino)
{
	return l && l->file && ((const struct fileh *)l)->ino == ino ? (const struct fileh *)l : NULL;
}

/* the attributes at open of an open file ino (fi's handle, or any handle of it): 1 and *st */
static int open_attr(struct mnt *m, catalog *c, fuse_ino_t ino, const struct fuse_file_info *fi, struct stat *st)
{
	const struct fileh *h = fi ? file_of((const struct hlink *)(uintptr_t)fi->fh, ino) : NULL;
	int64_t content = 0;
	uint64_t holes;
	int found = 0, locked = !h;
	/* fi's handle lives through this request; another is read under the lock (a release frees it) */
	if (locked) {
		pthread_mutex_lock(&m->hmu);
		for (const struct hlink *l = m->handles.next; !h && l != &m->handles; l = l->next)
			h = file_of(l, ino);
	}
	if (h) {
		*st = h->st;
		content = h->synth ? 0 : h->content;
		found = 1;
	}
	if (locked)
		pthread_mutex_unlock(&m->hmu);
	/* as fs_stat_full makes it: the content list stays while the file is open */
	if (found && content && catalog_content_holes(c, content, &holes, NULL) == 0 && holes <= (uint64_t)st->st_size)
		st->st_blocks = (blkcnt_t)(((uint64_t)st->st_size - holes + 511) / 512);
	return found;
}

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	struct fs_loc l;
	struct stat st;
	struct tls *t;
	struct err e;
	int rc;
	if ((rc = find_loc(m, ino, &t, &l, &e)) < 0) {
		/* a file of a snapshot deleted since it was opened: its reads go on from the content
		 * list (kept while open), and so does its size (a read up to the end asks for it) */
		if (rc == ERR_NOTFOUND && open_attr(m, t->c, ino, fi, &st))
			fuse_reply_attr(req, &st, SHORT_TIMEOUT);
		else
			fuse_reply_err(req, errno_of(m, rc, &e));
		return;
	}
	fs_stat_full(t->c, &l, &st);
	st.st_ino = ino;
	fuse_reply_attr(req, &st, fs_immutable(&l) ? LONG_TIMEOUT : SHORT_TIMEOUT);
}

static void fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_loc l;
	const char *target;
	if (!locate(req, ino, &l))
		return;
	if (!(target = fs_link_target(&l)))
		fuse_reply_err(req, EINVAL);
	else
		fuse_reply_readlink(req, target);
}

static void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_loc l;
	struct dirh *d;
	if (!locate(req, ino, &l))
		return;
	if (!fs_is_dir(&l)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	d = xcalloc(1, sizeof *d);
	d->loc = l;
	pthread_mutex_init(&d->mu, NULL);
	handle_add(mnt_of(req), &d->link);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fs_immutable(&l)) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	if (fuse_reply_open(req, fi) != 0)
		handle_free(mnt_of(req), &d->link);
}

struct fill {
	fuse_req_t req;
	catalog *c;
	struct dirh *d;
	int plus;
	char *buf;
	size_t size, used;
	off_t off;   /* the offset of the next entry */
	off_t skip;  /* entries to pass over first (a seek to an offset we did not just return) */
	int full;
	/* this reply's window (see struct dirh) */
	char *win;
	size_t win_len, win_cap;
	off_t win_first;
	int win_n;
};

/* adds the resume key of the entry just put in the reply with next offset next to f's window */
static void window_add(struct fill *f, const char *name, off_t next)
{
	size_t n = strlen(name) + 1;
	if (!f->win_n)
		f->win_first = next;
	if (f->win_len + n > f->win_cap) {
		f->win_cap = f->win_cap ? 2 * f->win_cap + n : 4096 + n;
		f->win = xrealloc(f->win, f->win_cap);
	}
	memcpy(f->win + f->win_len, name, n);
	f->win_len += n;
	f->win_n++;
}

/* the resume key in d's window whose next offset is off, or NULL */
static const char *window_name(const struct dirh *d, off_t off)
{
	const char *p = d->link.owned;
	if (!p || off < d->win_first || off >= d->win_first + d->win_n)
		return NULL;
	for (off_t i = d->win_first; i < off; i++)
		p += strlen(p) + 1;
	return p;
}

static int fill_cb(void *ctx, const struct fs_loc *child)
{
	struct fill *f = ctx;
	const char *name = fs_name(child);
	char keybuf[FS_RESUME_KEY_MAX];
	const char *key = fs_resume_key(child, keybuf, sizeof keybuf); /* what a resumed listing goes on after */
	size_t n;
	if (f->skip > 0) {
		f->skip--;
		f->off++;
		snprintf(f->d->last, sizeof f->d->last, "%s", key);
		return 0;
	}
	if (f->plus) {
		struct fuse_entry_param ep;
		entry_of(f->c, &f->d->loc, child, &ep);
		n = fuse_add_direntry_plus(f->req, f->buf + f->used, f->size - f->used, name, &ep, f->off + 1);
	} else {
		struct stat st;
		memset(&st, 0, sizeof st);
		fs_stat(child, &st);
		st.st_ino = fs_ino(child);
		n = fuse_add_direntry(f->req, f->buf + f->used, f->size - f->used, name, &st, f->off + 1);
	}
	if (n > f->size - f->used) {
		f->full = 1;
		return 1;
	}
	f->used += n;
	f->off++;
	snprintf(f->d->last, sizeof f->d->last, "%s", key);
	window_add(f, key, f->off);
	return 0;
}

/*
 * The reply to a readdir of d, built under d->mu: 0 and *buf (*used bytes, the caller frees and
 * replies) or an errno. Replying is the caller's, after unlocking: once the kernel has the
 * last reply, the program may close the directory, and the RELEASEDIR frees d.
 */
static int readdir_locked(fuse_req_t req, size_t size, off_t off, struct dirh *d, int plus, char **buf, size_t *used)
{
	struct mnt *m = mnt_of(req);
	struct tls *t = tls_get(m);
	struct fill f;
	char after[256], last[256];
	const char *resume;
	struct err e;
	int rc;
	if (!t)
		return EIO;
	memset(&f, 0, sizeof f);
	f.req = req;
	f.c = t->c;
	f.d = d;
	f.plus = plus;
	f.size = size;
	f.buf = xmalloc(size);
	/* "." and ".." come first (next offsets 1 and 2), then the children (3, 4, ...) */
	for (; off < 2; off++) {
		struct fuse_entry_param ep;
		const char *dot = off == 0 ? "." : "..";
		size_t n;
		memset(&ep, 0, sizeof ep); /* the kernel makes no inode of a dot entry */
		ep.attr.st_mode = S_IFDIR;
		ep.attr.st_ino = off == 0 ? fs_ino(&d->loc) : 1; /* a parent's number is not at hand */
		n = plus ? fuse_add_direntry_plus(req, f.buf + f.used, size - f.used, dot, &ep, off + 1)
			 : fuse_add_direntry(req, f.buf + f.used, size - f.used, dot, &ep.attr, off + 1);
		if (n > size - f.used) {
			*buf = f.buf;
			*used = f.used;
			return 0;
		}
		f.used += n;
	}
	if (off > 2 && off == d->next_off) {
		/* the common case: go on after the last name returned, one indexed query */
		snprintf(after, sizeof after, "%s", d->last);
		f.off = off;
	} else if (off > 2 && (resume = window_name(d, off))) {
		/* resumed inside the last reply: after the name given there, one query too */
		snprintf(after, sizeof after, "%s", resume);
		f.off = off;
	} else {
		/* from the start, or a seek: count entries up to off */
		after[0] = 0;
		f.off = 2;
		f.skip = off - 2;
	}
	err_clear(&e);
	snprintf(last, sizeof last, "%s", d->last);
	rc = fs_list(t->c, &d->loc, after, fill_cb, &f, &e);
	if (rc < 0) {
		/* nothing of this reply reaches the kernel: a retry at the same offset goes on from
		 * the same name */
		snprintf(d->last, sizeof d->last, "%s", last);
		free(f.buf);
		free(f.win);
		return errno_of(m, rc, &e);
	}
	if (!f.full) {
		/* the end of the listing, or of a directory deleted (a snapshot's) while it was open:
		 * that one must not look complete */
		struct fs_loc still;
		err_clear(&e);
		if ((rc = fs_loc_of_ino(t->c, fs_ino(&d->loc), &still, &e)) < 0) {
			snprintf(d->last, sizeof d->last, "%s", last);
			free(f.buf);
			free(f.win);
			return rc == ERR_NOTFOUND ? EIO : errno_of(m, rc, &e);
		}
	}
	d->next_off = f.off;
	if (f.win_n) {
		free(d->link.owned);
		d->link.owned = f.win;
		d->win_first = f.win_first;
		d->win_n = f.win_n;
	}
	*buf = f.buf;
	*used = f.used;
	return 0;
}

static void readdir_common(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, int plus)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	char *buf = NULL;
	size_t used = 0;
	int rc;
	pthread_mutex_lock(&d->mu);
	rc = readdir_locked(req, size, off, d, plus, &buf, &used);
	pthread_mutex_unlock(&d->mu);
	/* d may be freed from here on */
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, 0);
}

static void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, 1);
}

static void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	handle_free(mnt_of(req), &((struct dirh *)(uintptr_t)fi->fh)->link);
	fuse_reply_err(req, 0);
}

/* --- streams: the pages behind a reader of a file in order are dropped --- */

/* the slot of ino in m->streamed: a multiplicative hash (an inode number's low bits are
 * its kind's tag, and an at/ view's file numbers differ only in high bits) */
static size_t streamed_slot(fuse_ino_t ino)
{
	return (size_t)(((uint64_t)ino * 0x9E3779B97F4A7C15ull) >> 54) % STREAMED;
}

/* An open: whether ino was streamed before (the new handle then keeps its pages); *reopened
 * is the file's count of such handles that read, as the open found it (0: none). */
static int streamed_open(struct mnt *m, fuse_ino_t ino, uint64_t *reopened)
{
	const struct streamed *sl = &m->streamed[streamed_slot(ino)];
	int seen;
	pthread_mutex_lock(&m->hmu);
	seen = sl->ino == (uint64_t)ino;
	*reopened = seen ? sl->reopened : 0;
	pthread_mutex_unlock(&m->hmu);
	return seen;
}

/* Marks ino as streamed once (a handle that opened it when the count was at reopened
 * streams it). Returns whether a handle that keeps the pages has read it since. */
static int streamed_mark(struct mnt *m, fuse_ino_t ino, uint64_t reopened)
{
	struct streamed *sl = &m->streamed[streamed_slot(ino)];
	int again;
	pthread_mutex_lock(&m->hmu);
	if (sl->ino != (uint64_t)ino) {
		sl->ino = (uint64_t)ino;
		sl->reopened = 0;
	}
	again = sl->reopened > reopened;
	pthread_mutex_unlock(&m->hmu);
	return again;
}

/* takes the drops of ino off the queue: a handle that keeps its pages reads it again */
static void drop_cancel(struct mnt *m, fuse_ino_t ino)
{
	int k = 0;
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < m->ndrops; i++)
		if (m->drops[i].ino != ino)
			m->drops[k++] = m->drops[i];
	m->ndrops = k;
	pthread_mutex_unlock(&m->mu);
}

/* the first read of a handle that keeps the pages of a file streamed before: the count goes
 * up, and the drops still queued for the file go (they would take this reader's pages) */
static void streamed_reading(struct mnt *m, fuse_ino_t ino)
{
	struct streamed *sl = &m->streamed[streamed_slot(ino)];
	pthread_mutex_lock(&m->hmu);
	if (sl->ino == (uint64_t)ino)
		sl->reopened++;
	pthread_mutex_unlock(&m->hmu);
	drop_cancel(m, ino);
}

/* hands [off, off + len) of ino to the watcher to drop; 0 when the queue is full (the pages
 * then stay, as any cached page may) */
static int drop_queue(struct mnt *m, fuse_ino_t ino, uint64_t off, uint64_t len)
{
	int queued = 0;
	pthread_mutex_lock(&m->mu);
	if (m->ndrops < DROP_QUEUE && !m->stop) {
		m->drops[m->ndrops++] = (struct drop){ino, off, len};
		pthread_cond_signal(&m->cv);
		queued = 1;
	}
	pthread_mutex_unlock(&m->mu);
	return queued;
}

/* a read in order at off: drops what lies the drop lag behind it, in steps of DROP_STEP */
static void drop_behind(struct mnt *m, fuse_ino_t ino, struct fileh *h, uint64_t off)
{
	uint64_t upto, from;
	if (h->keep || off < m->drop_lag || __atomic_load_n(&h->no_drop, __ATOMIC_RELAXED))
		return;
	upto = (off - m->drop_lag) & ~(uint64_t)(DROP_STEP - 1);
	from = __atomic_load_n(&h->dropped, __ATOMIC_RELAXED);
	if (upto < from + DROP_STEP)
		return;
	/* one thread takes the range; the others' reads of the same step go on */
	if (!__atomic_compare_exchange_n(&h->dropped, &from, upto, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	if (!from)
		streamed_mark(m, ino, h->reopened);
	if (!drop_queue(m, ino, from, upto - from))
		__atomic_store_n(&h->no_drop, 1, __ATOMIC_RELAXED); /* stop here; nothing more is dropped */
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_loc l;
	struct fileh *h;
	struct tls *t;
	int64_t content;
	uint64_t size;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!(t = locate(req, ino, &l)))
		return;
	if (!fs_is_file(&l, &content, &size)) {
		fuse_reply_err(req, fs_is_dir(&l) ? EISDIR : EINVAL);
		return;
	}
	if (l.kind == FS_AT_FILE) {
		/* a few KiB at most: kept in the handle itself, so a handle freed at the end of the
		 * session (never released) frees them too */
		struct err e;
		uint8_t *buf;
		size_t len;
		int rc;
		err_clear(&e);
		if ((rc = fs_loc_synth(t->rd, &l, &buf, &len, &e)) < 0) {
			/* the file is there (listed, looked up): what is missing is what it is made from
			 * (a pack no zone has), which is EIO and logged, as on any read */
			logmsg(mnt_of(req), "open of inode %llu: %s", (unsigned long long)ino, e.msg);
			fuse_reply_err(req, rc == ERR_NOSPC ? ENOSPC : EIO);
			return;
		}
		h = xcalloc(1, sizeof *h + len + 1);
		h->synth = (uint8_t *)(h + 1);
		memcpy(h->synth, buf, len);
		free(buf);
		size = len;
	} else {
		h = xcalloc(1, sizeof *h);
	}
	h->content = content;
	h->size = size;
	h->link.file = 1;
	h->ino = ino;
	fs_stat(&l, &h->st); /* no query: st_blocks is made when it is asked for (open_attr) */
	h->st.st_ino = ino;
	h->st.st_size = (off_t)size;
	handle_add(mnt_of(req), &h->link);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = fs_immutable(&l); /* the bytes never change: keep the pages between opens */
	h->keep = !fi->keep_cache || mnt_of(req)->o->keep_streams;
	if (!h->keep && streamed_open(mnt_of(req), ino, &h->reopened))
		h->keep = h->again = 1; /* an open alone (fincore, a stat tool) drops no drops */
	if (fuse_reply_open(req, fi) != 0)
		handle_free(mnt_of(req), &h->link);
}

static void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	struct fileh *h = (struct fileh *)(uintptr_t)fi->fh;
	struct tls *t;
	uint64_t next;
	struct err e;
	ssize_t n;
	int in_order = 0;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((!h->content && !h->synth) || (uint64_t)off >= h->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (!(t = tls_get(m))) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (h->synth) {
		/* replied from the thread's buffer: the kernel may send the release (which frees h)
		 * as soon as it has the reply, while writev has not returned yet */
		size_t left = (size_t)(h->size - (uint64_t)off);
		if (left > size)
			left = size;
		if (t->cap < left) {
			free(t->buf);
			t->buf = xmalloc(left);
			t->cap = left;
		}
		memcpy(t->buf, h->synth + off, left);
		fuse_reply_buf(req, (const char *)t->buf, left);
		return;
	}
	{
		int one = 1;
		if (__atomic_load_n(&h->again, __ATOMIC_RELAXED) == 1 &&
		    __atomic_compare_exchange_n(&h->again, &one, 2, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			streamed_reading(m, ino);
	}
	next = __atomic_load_n(&h->next, __ATOMIC_RELAXED);
	__atomic_store_n(&h->next, (uint64_t)off + size, __ATOMIC_RELAXED);
	if ((uint64_t)off + m->seq_slack >= next && (uint64_t)off <= next + m->seq_slack) {
		/* read in order: keep the workers AHEAD_BYTES ahead, asking in steps of a quarter */
		uint64_t end = (uint64_t)off + size, mark = __atomic_load_n(&h->ahead, __ATOMIC_RELAXED);
		uint64_t from = mark > end && mark <= end + AHEAD_BYTES ? mark : end, until = end + AHEAD_BYTES;
		in_order = 1;
		if (until > h->size)
			until = h->size;
		if (until > from && (until - from >= AHEAD_BYTES / 4 || until == h->size)) {
			__atomic_store_n(&h->ahead, until, __ATOMIC_RELAXED);
			fs_read_ahead(t->rd, h->content, from, until);
		}
		/* only bytes past the furthest read count as read in order: a reader going
		 * backwards within the slack is no stream */
		uint64_t hi = __atomic_load_n(&h->hi, __ATOMIC_RELAXED);
		while (end > hi && !__atomic_compare_exchange_n(&h->hi, &hi, end, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
		if (end > hi && __atomic_add_fetch(&h->inorder, end - (hi > (uint64_t)off ? hi : (uint64_t)off),
						   __ATOMIC_RELAXED) > STREAM_MIN)
			drop_behind(m, ino, h, (uint64_t)off);
	} else {
		__atomic_store_n(&h->no_drop, 1, __ATOMIC_RELAXED);
	}
	err_clear(&e);
	/* the common case: reply straight from the cached chunks, no copy */
	n = fs_read_vec(t->rd, h->content, h->size, (uint64_t)off, size, &t->vec, &e);
	if (n >= 0 && ((size_t)n == size || (uint64_t)off + (uint64_t)n >= h->size)) {
		fuse_reply_iov(req, t->vec.iov, t->vec.n);
		/* the kernel's page cache has these bytes now: chunks read past in order go first */
		fs_vec_release(t->rd, &t->vec, in_order);
		return;
	}
	fs_vec_release(t->rd, &t->vec, 0);
	/* more pieces than one vector holds: copy into a buffer */
	if (t->cap < size) {
		free(t->buf);
		t->buf = xmalloc(size);
		t->cap = size;
	}
	if (n >= 0)
		n = fs_read(t->rd, h->content, h->size, (uint64_t)off, t->buf, size, 0, &e);
	if (n < 0) {
		logmsg(m, "read of inode %llu at %lld: %s", (unsigned long long)ino, (long long)off, e.msg);
		fuse_reply_err(req, EIO);
		return;
	}
	fuse_reply_buf(req, (const char *)t->buf, (size_t)n);
}

static void fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	struct fileh *h = (struct fileh *)(uintptr_t)fi->fh;
	struct tls *t;
	struct err e;
	uint64_t out;
	int rc;
	(void)ino;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0 || (uint64_t)off >= h->size) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	if (!(t = tls_get(m))) {
		fuse_reply_err(req, EIO);
		return;
	}
	err_clear(&e);
	if (h->synth) { /* a synthesized file is all data */
		fuse_reply_lseek(req, whence == SEEK_HOLE ? (off_t)h->size : off);
		return;
	}
	if (!h->content) { /* an empty file has no data; a file of zeros only is one hole */
		fuse_reply_lseek(req, whence == SEEK_HOLE ? (off_t)h->size : off);
		return;
	}
	rc = fs_seek(t->rd, h->content, h->size, (uint64_t)off, whence == SEEK_HOLE, &out, &e);
	if (rc == ERR_NOTFOUND)
		fuse_reply_err(req, ENXIO);
	else if (rc < 0)
		fuse_reply_err(req, errno_of(m, rc, &e));
	else
		fuse_reply_lseek(req, (off_t)out);
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fileh *h = (struct fileh *)(uintptr_t)fi->fh;
	struct mnt *m = mnt_of(req);
	uint64_t dropped = __atomic_load_n(&h->dropped, __ATOMIC_RELAXED), inorder = __atomic_load_n(&h->inorder, __ATOMIC_RELAXED);
	/* a stream's last pages go when it ends, unless the file was opened again meanwhile
	 * (the kernel may send this release after the next open: those pages are its reader's) */
	if (!h->keep && inorder > STREAM_MIN && dropped < h->size && !__atomic_load_n(&h->no_drop, __ATOMIC_RELAXED)) {
		if (!streamed_mark(m, ino, h->reopened))
			drop_queue(m, ino, dropped, h->size - dropped);
	}
	handle_free(m, &h->link);
	fuse_reply_err(req, 0);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	(void)ino;
	memset(&sv, 0, sizeof sv);
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* every write-type request: the backups are read-only */
static void rofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}
static void fs_op_setattr(fuse_req_t req, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *fi)
{
	(void)i, (void)a, (void)s, (void)fi;
	rofs(req);
}
static void fs_op_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t md, dev_t r)
{
	(void)p, (void)n, (void)md, (void)r;
	rofs(req);
}
static void fs_op_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t md)
{
	(void)p, (void)n, (void)md;
	rofs(req);
}
static void fs_op_unlink(fuse_req_t req, fuse_ino_t p, const char *n)
{
	(void)p, (void)n;
	rofs(req);
}
static void fs_op_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{
	(void)l, (void)p, (void)n;
	rofs(req);
}
static void fs_op_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned f)
{
	(void)p, (void)n, (void)np, (void)nn, (void)f;
	rofs(req);
}
static void fs_op_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn)
{
	(void)i, (void)np, (void)nn;
	rofs(req);
}
static void fs_op_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *fi)
{
	(void)i, (void)b, (void)s, (void)o, (void)fi;
	rofs(req);
}
static void fs_op_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t md, struct fuse_file_info *fi)
{
	(void)p, (void)n, (void)md, (void)fi;
	rofs(req);
}
static void fs_op_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{
	(void)i, (void)n, (void)v, (void)s, (void)f;
	rofs(req);
}
static void fs_op_removexattr(fuse_req_t req, fuse_ino_t i, const char *n)
{
	(void)i, (void)n;
	rofs(req);
}
static void fs_op_fallocate(fuse_req_t req, fuse_ino_t i, int md, off_t o, off_t l, struct fuse_file_info *fi)
{
	(void)i, (void)md, (void)o, (void)l, (void)fi;
	rofs(req);
}

static const struct fuse_lowlevel_ops ops = {
	.init = fs_init,
	.lookup = fs_op_lookup,
	.getattr = fs_op_getattr,
	.readlink = fs_op_readlink,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.open = fs_op_open,
	.read = fs_op_read,
	.release = fs_op_release,
	.lseek = fs_op_lseek,
	.statfs = fs_op_statfs,
	.setattr = fs_op_setattr,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_unlink,
	.symlink = fs_op_symlink,
	.rename = fs_op_rename,
	.link = fs_op_link,
	.write = fs_op_write,
	.create = fs_op_create,
	.setxattr = fs_op_setxattr,
	.removexattr = fs_op_removexattr,
	.fallocate = fs_op_fallocate,
};

/* --- the watcher: names of deleted snapshots are dropped from the kernel's cache --- */

struct snapname {
	int64_t cluster, id;
	char name[48];
};

struct snapset {
	struct snapname *v;
	size_t n, cap;
	int64_t *ids, *clusters; /* sorted (snapset_index), for lookups in O(log n): a pass runs on
				  * every catalog change, and a cluster may have thousands */
	size_t nclusters;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void snapset_index(struct snapset *s)
{
	s->ids = xrealloc(s->ids, (s->n ? s->n : 1) * sizeof *s->ids);
	s->clusters = xrealloc(s->clusters, (s->n ? s->n : 1) * sizeof *s->clusters);
	for (size_t i = 0; i < s->n; i++) {
		s->ids[i] = s->v[i].id;
		s->clusters[i] = s->v[i].cluster;
	}
	qsort(s->ids, s->n, sizeof *s->ids, cmp_i64);
	qsort(s->clusters, s->n, sizeof *s->clusters, cmp_i64);
	s->nclusters = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!s->nclusters || s->clusters[s->nclusters - 1] != s->clusters[i])
			s->clusters[s->nclusters++] = s->clusters[i];
}

static void snapset_free(struct snapset *s)
{
	free(s->v);
	free(s->ids);
	free(s->clusters);
}

static int snapset_cb(void *ctx, const struct catalog_snapshot *s)
{
	struct snapset *set = ctx;
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 64;
		set->v = xrealloc(set->v, set->cap * sizeof *set->v);
	}
	set->v[set->n].cluster = s->cluster;
	set->v[set->n].id = s->id;
	snprintf(set->v[set->n].name, sizeof set->v[set->n].name, "%s", s->name);
	set->n++;
	return 0;
}

static int snapset_has(const struct snapset *s, int64_t id)
{
	return s->n && bsearch(&id, s->ids, s->n, sizeof *s->ids, cmp_i64) != NULL;
}

static int snapset_has_cluster(const struct snapset *s, int64_t cluster)
{
	return s->nclusters && bsearch(&cluster, s->clusters, s->nclusters, sizeof *s->clusters, cmp_i64) != NULL;
}

static void *watcher(void *arg)
{
	struct mnt *m = arg;
	struct snapset old = {0}, cur = {0};
	catalog *c = NULL;
	int64_t version = -1;
	struct timespec due;
	struct err e;
	err_clear(&e);
	if (catalog_open(m->catalog_file, 1, &c, &e) < 0) {
		logmsg(m, "watcher: %s", e.msg);
		return NULL;
	}
	catalog_snapshots(c, 0, snapset_cb, &old, NULL);
	snapset_index(&old);
	version = catalog_data_version(c);
	pthread_mutex_lock(&m->mu);
	clock_gettime(CLOCK_MONOTONIC, &due);
	due.tv_nsec += 500 * 1000000L;
	while (!m->stop) {
		struct timespec now;
		int64_t v;
		if (due.tv_nsec >= 1000000000L) {
			due.tv_sec++;
			due.tv_nsec -= 1000000000L;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec < due.tv_sec || (now.tv_sec == due.tv_sec && now.tv_nsec < due.tv_nsec)) {
			/* between two looks at the catalog: drop what streams left behind, the oldest
			 * first (the kernel may wait for a page still being read, which a session
			 * thread answers), or nap */
			if (!m->ndrops) {
				pthread_cond_timedwait(&m->cv, &m->mu, &due);
				continue;
			}
			struct drop d = m->drops[0];
			memmove(m->drops, m->drops + 1, (size_t)--m->ndrops * sizeof *m->drops);
			pthread_mutex_unlock(&m->mu);
			fuse_lowlevel_notify_inval_inode(m->se, d.ino, (off_t)d.off, (off_t)d.len);
			pthread_mutex_lock(&m->mu);
			continue;
		}
		/* twice a second, however many drops come */
		due = now;
		due.tv_nsec += 500 * 1000000L;
		pthread_mutex_unlock(&m->mu);
		v = catalog_data_version(c);
		if (v != version) {
			version = v;
			cur.n = 0;
			if (catalog_snapshots(c, 0, snapset_cb, &cur, NULL) == 0) {
				snapset_index(&cur);
				for (size_t i = 0; i < old.n && !__atomic_load_n(&m->stop, __ATOMIC_RELAXED); i++) {
					if (snapset_has(&cur, old.v[i].id))
						continue;
					fuse_lowlevel_notify_inval_entry(m->se, (fuse_ino_t)fs_ino_of(FS_CLUSTER, old.v[i].cluster),
									 old.v[i].name, strlen(old.v[i].name));
				}
				{
					/* "latest" may point elsewhere now (even with the same set of snapshots:
					 * one may have come and gone between two looks): drop its name and its
					 * cached target, once per cluster of either set (each set is grouped by
					 * cluster, so a cluster repeats only right after itself) */
					for (int pass = 0; pass < 2 && !__atomic_load_n(&m->stop, __ATOMIC_RELAXED); pass++) {
						const struct snapset *set = pass ? &old : &cur;
						for (size_t i = 0; i < set->n; i++) {
							int64_t cl = set->v[i].cluster;
							if ((i > 0 && set->v[i - 1].cluster == cl) ||
							    (pass && snapset_has_cluster(&cur, cl)))
								continue;
							fuse_lowlevel_notify_inval_entry(m->se, (fuse_ino_t)fs_ino_of(FS_CLUSTER, cl),
											 "latest", 6);
							fuse_lowlevel_notify_inval_inode(m->se, (fuse_ino_t)fs_ino_of(FS_LATEST, cl),
											 0, 0);
						}
					}
				}
				struct snapset tmp = old;
				old = cur;
				cur = tmp;
			}
		}
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	snapset_free(&old);
	snapset_free(&cur);
	catalog_close(c);
	return NULL;
}

/* --- mounting --- */

/* the device numbers ("maj:min") of the top mount at path, from /proc/self/mountinfo */
static int mount_dev(const char *path, char *dev, size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	dev[0] = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		char d[64], mp[PATH_MAX], *o, *w;
		if (sscanf(line, "%*d %*d %63s %*s %4095s", d, mp) != 2)
			continue;
		/* mountinfo escapes space, tab, newline and backslash as \ooo */
		for (o = w = mp; *o; w++) {
			if (o[0] == '\\' && o[1] >= '0' && o[1] <= '3' && o[2] && o[3]) {
				*w = (char)((o[1] - '0') * 64 + (o[2] - '0') * 8 + (o[3] - '0'));
				o += 4;
			} else {
				*w = *o++;
			}
		}
		*w = 0;
		if (!strcmp(mp, path))
			snprintf(dev, cap, "%s", d); /* the last match is the top mount */
	}
	fclose(f);
	return dev[0] != 0;
}

int fs_mount_check(const char *mountpoint, struct err *e)
{
	struct stat st;
	char real[PATH_MAX], dev[64] = "";
	int fd, rc;
	if (stat(mountpoint, &st) < 0) {
		if (errno == ENOTCONN || errno == ECONNABORTED) { /* the latter while the kernel tears it down */
			rc = err_sys(e, ERR_IO, "mountpoint %s: a dead mount is left there", mountpoint);
			err_hint(e, "unmount it first: fusermount3 -u %s", mountpoint);
		} else if (errno == ENOENT) {
			rc = err_set(e, ERR_USAGE, "mountpoint %s does not exist", mountpoint);
			err_hint(e, "create it first: mkdir -p %s", mountpoint);
		} else {
			rc = err_sys(e, ERR_IO, "mountpoint %s", mountpoint);
		}
		return rc;
	}
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ERR_USAGE, "mountpoint %s is not a directory", mountpoint);
	if (realpath(mountpoint, real) && mount_dev(real, dev, sizeof dev)) {
		rc = err_set(e, ERR_LOCKED, "mountpoint %s is busy: something is mounted there already", mountpoint);
		err_hint(e, "unmount it first (fusermount3 -u %s), or choose another directory", mountpoint);
		return rc;
	}
	if ((fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			rc = err_set(e, ERR_IO, "/dev/fuse is absent: this system cannot mount FUSE filesystems");
			err_hint(e, "load the module (modprobe fuse); in a container, pass the device "
				    "(docker run --device /dev/fuse --cap-add SYS_ADMIN)");
		} else {
			rc = err_sys(e, ERR_IO, "cannot open /dev/fuse");
			err_hint(e, "run as root, or install fuse3 so that fusermount3 can mount for you");
		}
		return rc;
	}
	close(fd);
	return 0;
}

int fs_mount_check_hides(const char *mountpoint, const char *const *what, const char *const *paths, int n,
			 struct err *e)
{
	char mp[PATH_MAX], p[PATH_MAX];
	size_t len;
	if (!realpath(mountpoint, mp))
		return 0; /* fs_mount_check reports it */
	len = strlen(mp);
	for (int i = 0; i < n; i++) {
		if (!paths[i] || !realpath(paths[i], p))
			continue;
		/* the mountpoint is the directory or one above it ("/" is above everything) */
		if (!strcmp(mp, p) || (!strncmp(mp, p, len) && (p[len] == '/' || (len == 1 && mp[0] == '/')))) {
			int rc = err_set(e, ERR_USAGE,
					 "mountpoint %s would hide %s (%s): the mount reads its catalog and packs from "
					 "there, and would wait on itself for ever",
					 mountpoint, what[i], paths[i]);
			err_hint(e, "choose a mountpoint outside the state directory and the zones, e.g. an empty "
				    "directory under /mnt");
			return rc;
		}
	}
	return 0;
}

/*
 * Ends the mount's FUSE connection through fusectl (/sys/fs/fuse/connections/<dev>/abort):
 * every request waiting in the kernel fails. 1 when done.
 */
static int abort_connection(struct mnt *m)
{
	unsigned maj, min;
	char path[128];
	int fd, done = 0;
	if (sscanf(m->dev, "%u:%u", &maj, &min) != 2)
		return 0;
	/* the directory is named after the superblock's dev_t as the kernel encodes it */
	snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/abort", (maj << 20) | min);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 && errno == ENOENT && geteuid() == 0 &&
	    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0) /* where systemd puts it */
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		done = write(fd, "1", 1) == 1;
		close(fd);
	}
	logmsg(m, done ? "the catalog watcher did not stop within 2 s (an invalidation waits in the kernel): ended the FUSE "
			 "connection"
		       : "the catalog watcher did not stop within 2 s (an invalidation waits in the kernel) and %s cannot be "
			 "written: the mount ends when the lookups that hold it are killed",
	       path);
	return done;
}

/* Detaches an ended mount from mountpoint (libfuse leaves a connection ended by fusectl mounted). */
static void detach(const char *mountpoint)
{
	pid_t pid;
	if (geteuid() == 0) {
		umount2(mountpoint, MNT_DETACH);
		return;
	}
	if ((pid = fork()) == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", mountpoint, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* a larger kernel read-ahead for the mount (best effort: the bdi knob needs root) */
static void set_readahead(const struct mnt *m, const char *real)
{
	char dev[64] = "", path[128], val[32];
	int fd;
	if (!m->o->readahead_kb || !mount_dev(real, dev, sizeof dev))
		return;
	snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb", dev);
	snprintf(val, sizeof val, "%u\n", m->o->readahead_kb);
	/* said once at the start: without it the kernel reads ahead less (128 KiB by default) */
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		logmsg(m, "cannot set the read-ahead to %u KiB (%s: %s; it takes root): the kernel's default is used",
		       m->o->readahead_kb, path, strerror(errno));
		return;
	}
	if (write(fd, val, strlen(val)) < 0)
		logmsg(m, "cannot set the read-ahead to %u KiB (%s: %s): the kernel's default is used",
		       m->o->readahead_kb, path, strerror(errno));
	close(fd);
}

/* store_read_blob read a blob from a later zone (repo.h): logged once per pack, so that a
 * damaged or emptied zone is seen while the mount goes on reading from the others */
static void mount_fallback(void *ctx, const char *pack_hex, unsigned bad, int zone, const char *why)
{
	struct mnt *m = ctx;
	char zones_s[64] = "";
	int seen = 0;
	pthread_mutex_lock(&m->fb_mu);
	for (int i = 0; i < FALLBACK_SEEN && !seen; i++)
		seen = strncmp(m->fb_seen[i], pack_hex, 16) == 0;
	if (!seen) {
		snprintf(m->fb_seen[m->fb_next], sizeof m->fb_seen[m->fb_next], "%.16s", pack_hex);
		m->fb_next = (m->fb_next + 1) % FALLBACK_SEEN;
	}
	pthread_mutex_unlock(&m->fb_mu);
	if (seen)
		return;
	for (int i = 0; i < 32; i++)
		if (bad & (1u << i)) {
			size_t n = strlen(zones_s);
			snprintf(zones_s + n, sizeof zones_s - n, "%s%d", n ? ", " : "", i + 1);
		}
	logmsg(m, "zone %s: no good copy of a blob of pack %.16s (%s); read from zone %d instead. The bytes read are "
		  "right, but that zone lost its copy: run 'pgtimefs check --read-data' and restore the pack there",
	       zones_s, pack_hex, why, zone + 1);
}

int fs_mount_run(struct repo *r, const char *catalog_file, const struct fs_mount_opts *o, struct err *e)
{
	struct mnt m;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	char real[PATH_MAX], opts[2048];
	int rc = 0, mounted = 0, handlers = 0, aborted = 0, loop;

	if ((rc = fs_mount_check(o->mountpoint, e)) < 0)
		return rc;
	if (!realpath(o->mountpoint, real))
		return err_sys(e, ERR_IO, "mountpoint %s", o->mountpoint);
	memset(&m, 0, sizeof m);
	m.r = r;
	m.o = o;
	m.seq_slack = (uint64_t)o->readahead_kb << 12 > SEQ_SLACK ? (uint64_t)o->readahead_kb << 12 : SEQ_SLACK;
	m.drop_lag = m.seq_slack + ((uint64_t)o->readahead_kb << 11);
	if (m.drop_lag < DROP_LAG)
		m.drop_lag = DROP_LAG;
	if (!realpath(catalog_file, m.catalog_file)) {
		rc = err_sys(e, ERR_IO, "catalog %s", catalog_file);
		err_hint(e, "run `pgtimefs init` first");
		return rc;
	}
	pthread_mutex_init(&m.mu, NULL);
	pthread_mutex_init(&m.fb_mu, NULL);
	r->fallback = mount_fallback;
	r->fallback_ctx = &m;
	{
		/* the watcher's naps are timed on the monotonic clock: a wall clock stepped back
		 * must not put it to sleep that long */
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&m.cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&m.hmu, NULL);
	m.handles.next = m.handles.prev = &m.handles;
	pthread_key_create(&m.key, tls_free);

	/* ours last: where libfuse meets a key twice, the last one counts */
	if ((size_t)snprintf(opts, sizeof opts, "%s%sro,default_permissions,fsname=pgtimefs,subtype=pgtimefs",
			     o->fuse_opts ? o->fuse_opts : "", o->fuse_opts && *o->fuse_opts ? "," : "") >= sizeof opts) {
		rc = err_set(e, ERR_USAGE, "the mount options are too long (%zu characters at most)", sizeof opts - 1);
		goto out;
	}
	fuse_opt_add_arg(&args, "pgtimefs");
	fuse_opt_add_arg(&args, "-o");
	fuse_opt_add_arg(&args, opts);
	if (o->debug)
		fuse_opt_add_arg(&args, "-d");
	m.se = fuse_session_new(&args, &ops, sizeof ops, &m);
	if (!m.se) {
		rc = err_set(e, ERR_USAGE, "cannot start the FUSE session (options: %s)", opts);
		err_hint(e, "libfuse printed the reason above; check the -o options");
		goto out;
	}
	/* before mounting: a SIGINT or SIGTERM from here on ends the session loop at once and the
	 * mount is taken down as usual, where the default action would leave a dead mount (the
	 * handlers survive the fork into the background) */
	if (fuse_set_signal_handlers(m.se) != 0) {
		rc = err_set(e, ERR_IO, "cannot install signal handlers");
		goto out;
	}
	handlers = 1;
	if (fuse_session_mount(m.se, real) != 0) {
		rc = err_set(e, ERR_IO, "cannot mount on %s", real);
		err_hint(e, "libfuse printed the reason above; allow_other for non-root users needs user_allow_other "
			    "in /etc/fuse.conf");
		goto out;
	}
	mounted = 1;
	mount_dev(real, m.dev, sizeof m.dev);
	set_readahead(&m, real);
	if (o->on_mounted)
		o->on_mounted(real);
	/* fork before any thread starts: threads do not survive fork */
	if (fuse_daemonize(o->foreground || o->debug) != 0) {
		rc = err_set(e, ERR_IO, "cannot go to the background");
		goto out;
	}
	/* with an arena per thread, each keeps its own freed chunk buffers: two arenas keep
	 * RSS closer to the cache budget when many threads read at once */
	mallopt(M_ARENA_MAX, 2);
	/* decoded chunks come and go all the time: keep freed buffers for the next ones instead
	 * of handing them back to the kernel, whose fresh pages then fault in one by one (on a
	 * VM, each also on the host); this raises no peak, the budget bounds what is held */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	m.cache = cache_new(o->cache_bytes);
	m.prefetch = fs_prefetch_new(r, m.cache, pool_cpus(), 64);
	if (pthread_create(&m.watcher, NULL, watcher, &m) == 0)
		m.watcher_started = 1;

	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)(o->threads > 0 ? o->threads : 8));
	fuse_loop_cfg_set_idle_threads(cfg, (unsigned)(o->threads > 0 ? o->threads : 8));
	/* 0 after fusermount3 -u, the signal number after SIGINT/SIGTERM/SIGHUP: both are a
	 * clean end; a negative errno is a failure */
	loop = fuse_session_loop_mt(m.se, cfg);
	if (loop < 0) {
		errno = -loop;
		rc = err_sys(e, ERR_IO, "the FUSE session failed");
	}
out:
	if (m.watcher_started) {
		struct timespec ts;
		pthread_mutex_lock(&m.mu);
		__atomic_store_n(&m.stop, 1, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&m.cv);
		pthread_mutex_unlock(&m.mu);
		/* The session threads are gone. An invalidation the watcher sends can wait in the
		 * kernel for a directory's lock, held by a lookup that waits for a reply no thread
		 * will send (or, dropping a stream's pages, for a page locked for such a read): then
		 * the connection is ended through fusectl (the kernel fails what waits), and the
		 * mount is detached here, since libfuse leaves an ended one alone. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(m.watcher, NULL, &ts) != 0) {
			aborted = abort_connection(&m);
			pthread_join(m.watcher, NULL);
		}
	}
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	if (handlers)
		fuse_remove_signal_handlers(m.se);
	if (mounted) {
		fuse_session_unmount(m.se);
		if (aborted)
			detach(real);
	}
	if (m.se)
		fuse_session_destroy(m.se);
	fuse_opt_free_args(&args);
	fs_prefetch_free(m.prefetch);
	cache_free(m.cache);
	pthread_key_delete(m.key);
	while (m.handles.next != &m.handles) /* never released: the session ended first */
		handle_free(&m, m.handles.next);
	pthread_mutex_destroy(&m.hmu);
	pthread_cond_destroy(&m.cv);
	pthread_mutex_destroy(&m.mu);
	r->fallback = NULL;
	r->fallback_ctx = NULL;
	pthread_mutex_destroy(&m.fb_mu);
	return rc;
}
