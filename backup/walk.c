#include "walk.h"

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/copy.h"
#include "common/util.h"
#include "store/chunker.h"

struct walker {
	catalog *c;
	ingest *g;
	int full;
	struct walk_result *res;
	int64_t nb, prev_nb;
	int64_t prev_started_ns; /* files modified after this are always read */
	struct progress *prog;	 /* NULL: none */
	const struct walk_hooks *h; /* NULL: a plain tree */
	char path[PATH_MAX];	 /* absolute path being visited */
	size_t root_len;	 /* length of the root prefix in path */
};

static void w_lock(struct walker *w)
{
	if (w->h && w->h->lock)
		w->h->lock(w->h->ctx);
}

static void w_unlock(struct walker *w)
{
	if (w->h && w->h->unlock)
		w->h->unlock(w->h->ctx);
}

/* The path relative to the root ("" for the root itself). */
static const char *w_rel(const struct walker *w)
{
	return w->path[w->root_len] == '/' ? w->path + w->root_len + 1 : w->path + w->root_len;
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void fill_entry(struct catalog_entry *en, const struct stat *st, int64_t parent, const char *name)
{
	memset(en, 0, offsetof(struct catalog_entry, target) + 1);
	en->parent = parent;
	snprintf(en->name, sizeof en->name, "%s", name);
	en->mode = st->st_mode;
	en->uid = st->st_uid;
	en->gid = st->st_gid;
	en->size = S_ISREG(st->st_mode) || S_ISLNK(st->st_mode) ? (uint64_t)st->st_size : 0;
	en->mtime_ns = ts_ns(st->st_mtim);
	en->ctime_ns = ts_ns(st->st_ctim);
	en->src_ino = st->st_ino;
	en->rdev = S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? st->st_rdev : 0;
	en->content = 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int checkpoint(struct walker *w, struct err *e)
{
	int rc;
	if (w->h && w->h->checkpoint)
		return w->h->checkpoint(w->h->ctx, e);
	if (!ingest_due(w->g))
		return 0;
	if ((rc = ingest_flush(w->g, e)) < 0 || (rc = catalog_commit(w->c, e)) < 0)
		return rc;
	ingest_committed(w->g);
	return catalog_begin(w->c, e);
}

/*
 * Whether the regular file en can point at its previous version's content list without being
 * read (1: en->content is set), or must be read (0: *base is the previous version's content
 * list, or 0).
 */
static int reusable(struct walker *w, struct catalog_entry *en, int64_t prev_parent, int64_t *base)
{
	struct catalog_entry prev;
	*base = 0;
	if (!w->prev_nb || !prev_parent || catalog_entry_lookup(w->c, w->prev_nb, prev_parent, en->name, &prev, NULL) != 0 ||
	    !S_ISREG(prev.mode))
		return 0;
	if (!w->full && prev.size == en->size && prev.mtime_ns == en->mtime_ns && prev.ctime_ns == en->ctime_ns &&
	    prev.src_ino == en->src_ino && en->mtime_ns < w->prev_started_ns && (prev.content || prev.size == 0)) {
		en->content = prev.content;
		return 1;
	}
	*base = prev.content; /* changed: its blocks may be stored as deltas against this version */
	return 0;
}

/*
 * Read-ahead across files. The ingest pipeline reads one file at a time and waits for all of
 * its chunks at its end, so the first read of every file would wait for the disk with the
 * workers idle. Before a file is read, the next files of the same directory that will be read
 * too (kept by the filter, regular, not reusable) are handed to the kernel's read-ahead
 * (POSIX_FADV_WILLNEED), up to PREFETCH_BYTES and PREFETCH_FILES beyond the file being read.
 * Reusable files are never asked for: their data would be read for nothing. A hint only: any
 * failure is ignored, and a file that changes in between is read as it is then.
 */
#define PREFETCH_BYTES (32ull << 20)
#define PREFETCH_FILES 64

struct prefetch {
	char **names;
	size_t n;
	uint64_t *asked; /* bytes asked for names[i] (0: none or not yet) */
	size_t next;	 /* the first entry not looked at yet */
	size_t done;	 /* the first entry whose bytes still count as ahead */
	uint64_t ahead;	 /* bytes asked beyond the current entry */
	size_t files;	 /* files asked beyond the current entry */
	int64_t dir_id, prev_dir;
};

/* Called before entry i (a file about to be read) is read. */
static void prefetch_ahead(struct walker *w, struct prefetch *pf, size_t i)
{
	char path[PATH_MAX];
	const char *slash = strrchr(w->path, '/');
	size_t dlen;
	if (!slash)
		return;
	dlen = (size_t)(slash - w->path); /* w->path is the directory plus "/names[i]" */
	for (; pf->done <= i && pf->done < pf->n; pf->done++) { /* entries reached: no longer ahead */
		if (pf->asked[pf->done]) {
			pf->ahead -= pf->asked[pf->done];
			pf->files--;
		}
	}
	if (pf->next <= i)
		pf->next = i + 1;
	while (pf->next < pf->n && pf->ahead < PREFETCH_BYTES && pf->files < PREFETCH_FILES) {
		size_t j = pf->next++;
		struct catalog_entry en;
		struct stat st;
		int64_t prev_base;
		uint64_t want;
		int fd;
		if (dlen + 1 + strlen(pf->names[j]) >= sizeof path)
			continue;
		snprintf(path, sizeof path, "%.*s/%s", (int)dlen, w->path, pf->names[j]);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
			continue;
		if (w->h && w->h->filter) {
			const char *rel = path[w->root_len] == '/' ? path + w->root_len + 1 : path + w->root_len;
			if (w->h->filter(w->h->ctx, rel, &st) != WALK_KEEP)
				continue;
		}
		fill_entry(&en, &st, pf->dir_id, pf->names[j]);
		if (reusable(w, &en, pf->prev_dir, &prev_base) ||
		    ingest_reads_direct(w->g, chunker_is_paged(path + w->root_len), (uint64_t)st.st_size))
			continue;
		want = (uint64_t)st.st_size;
		if (want > PREFETCH_BYTES - pf->ahead)
			want = PREFETCH_BYTES - pf->ahead;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
		if (fd < 0 && errno == EPERM)
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		util_readahead_fd(fd, 0, want);
		close(fd);
		pf->asked[j] = want;
		pf->ahead += want;
		pf->files++;
	}
}

static int store_file(struct walker *w, struct catalog_entry *en, int64_t prev_parent, struct prefetch *pf,
		      size_t i, struct err *e)
{
	uint64_t size;
	struct ingest_observer ob, *obp = NULL;
	int64_t base = 0;
	int fd, rc;
	if (reusable(w, en, prev_parent, &base)) {
		ingest_count_reused(w->g, en->size);
		if (w->prog)
			progress_add(w->prog, en->size);
		return 0;
	}
	prefetch_ahead(w, pf, i);
	fd = open(w->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(w->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1; /* vanished: skip */
		return err_sys(e, ERR_IO, "cannot open %s", w->path);
	}
	if (w->h && w->h->file_begin && w->h->file_begin(w->h->ctx, w_rel(w), &ob))
		obp = &ob;
	rc = ingest_file_observed(w->g, fd, chunker_is_paged(w->path + w->root_len), obp, base, &en->content, &size,
				  e);
	if (obp && w->h->file_end)
		w->h->file_end(w->h->ctx);
	close(fd);
	if (rc < 0) {
		err_prefix(e, "%s", w->path);
		return rc;
	}
	en->size = size;
	return 0;
}

/* Visits the directory at w->path whose entry is dir_id; prev_dir is its entry in the previous snapshot. */
static int visit_dir(struct walker *w, int64_t dir_id, int64_t prev_dir, struct err *e)
{
	DIR *d = opendir(w->path);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, base = strlen(w->path);
	struct prefetch pf = {0};
	int rc = 0;
	if (!d)
		return err_sys(e, ERR_IO, "cannot open directory %s", w->path);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof *names);
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_name);
	pf.names = names;
	pf.n = n;
	pf.asked = xcalloc(n ? n : 1, sizeof *pf.asked);
	pf.dir_id = dir_id;
	pf.prev_dir = prev_dir;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct catalog_entry *en = xmalloc(sizeof *en);
		struct stat st;
		int64_t prev_child = 0;
		int verdict = WALK_KEEP, locked = 0;
		if (base + 1 + strlen(names[i]) >= sizeof w->path) {
			rc = err_set(e, ERR_IO, "path too long under %s", w->path);
			free(en);
			break;
		}
		snprintf(w->path + base, sizeof w->path - base, "/%s", names[i]);
		if (lstat(w->path, &st) < 0) {
			if (errno == ENOENT) {
				w->res->skipped++;
				goto next;
			}
			rc = err_sys(e, ERR_IO, "cannot stat %s", w->path);
			goto next;
		}
		if (w->h && w->h->filter)
			verdict = w->h->filter(w->h->ctx, w_rel(w), &st);
		if (verdict == WALK_SKIP)
			goto next;
		if (verdict == WALK_FOLLOW && (stat(w->path, &st) < 0 || !S_ISDIR(st.st_mode))) {
			rc = err_sys(e, ERR_IO, "cannot follow %s to a directory", w->path);
			goto next;
		}
		fill_entry(en, &st, dir_id, names[i]);
		w_lock(w);
		locked = 1;
		if (S_ISREG(st.st_mode)) {
			int s = store_file(w, en, prev_dir, &pf, i, e);
			if (s < 0) {
				rc = s;
				goto next;
			}
			if (s == 1) {
				w->res->skipped++;
				goto next;
			}
		} else if (S_ISLNK(st.st_mode)) {
			ssize_t l = readlink(w->path, en->target, sizeof en->target - 1);
			if (l < 0) {
				rc = err_sys(e, ERR_IO, "cannot read link %s", w->path);
				goto next;
			}
			en->target[l] = '\0';
			en->size = (uint64_t)l;
			w->res->links++;
		} else if (!S_ISDIR(st.st_mode)) {
			w->res->others++;
		}
		if ((rc = catalog_entry_add(w->c, w->nb, en, e)) < 0)
			goto next;
		if (S_ISDIR(st.st_mode)) {
			struct catalog_entry prev;
			w->res->dirs++;
			if (w->prev_nb && prev_dir &&
			    catalog_entry_lookup(w->c, w->prev_nb, prev_dir, names[i], &prev, NULL) == 0 &&
			    S_ISDIR(prev.mode))
				prev_child = prev.id;
		}
		if ((rc = checkpoint(w, e)) < 0)
			goto next;
		w_unlock(w);
		locked = 0;
		if (S_ISDIR(st.st_mode) && verdict != WALK_EMPTY_DIR)
			rc = visit_dir(w, en->id, prev_child, e);
	next:
		if (locked)
			w_unlock(w);
		w->path[base] = '\0';
		free(en);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(pf.asked);
	return rc;
}

static uint64_t count_bytes(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	uint64_t total = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
		if (lstat(sub, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			total += count_bytes(sub);
		else if (S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

int backup_walk_tree(catalog *c, ingest *g, const struct walk_tree *t, const struct walk_hooks *h,
		     struct walk_result *res, struct err *e)
{
	struct walker *w = xcalloc(1, sizeof *w);
	int rc;
	w->c = c;
	w->g = g;
	w->full = t->full;
	w->res = res;
	w->nb = t->nb;
	w->prev_nb = t->prev_nb;
	w->prev_started_ns = t->prev_started_ns;
	w->prog = t->progress;
	w->h = h;
	if (strlen(t->dir) >= sizeof w->path) {
		free(w);
		return err_set(e, ERR_IO, "path too long: %s", t->dir);
	}
	snprintf(w->path, sizeof w->path, "%s", t->dir);
	w->root_len = strlen(t->dir);
	rc = visit_dir(w, t->root, t->prev_root, e);
	free(w);
	return rc;
}

void backup_walk_entry(struct catalog_entry *en, const struct stat *st, int64_t parent, const char *name)
{
	fill_entry(en, st, parent, name);
	en->target[0] = '\0';
}

int backup_snapshot_dir(struct repo *r, catalog *c, const char *cluster, const char *node, const char *dir,
			const struct walk_opts *o, struct walk_result *res, struct err *e)
{
	struct walk_tree t;
	struct progress prog;
	ingest *g = NULL;
	struct catalog_entry root;
	struct stat st;
	struct nb_totals tot;
	int64_t cl, nd, snap = 0, nb = 0, prev_nb;
	double t0 = util_mono();
	int rc, stale, in_tx = 0;
	char real[PATH_MAX];
	memset(&t, 0, sizeof t);
	memset(&prog, 0, sizeof prog);
	memset(res, 0, sizeof *res);
	if (!realpath(dir, real) || stat(real, &st) < 0)
		return err_sys(e, ERR_NOTFOUND, "cannot snapshot %s", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ERR_USAGE, "%s is not a directory", dir);
	if ((rc = catalog_cleanup_stale(c, &stale, e)) < 0)
		return rc;
	if (stale)
		fprintf(stderr, "pgtimefs: removed %d unfinished snapshot%s left by an interrupted run\n", stale,
			stale == 1 ? "" : "s");
	/* record the running snapshot first: a crash leaves a 'running' row that the next run cleans */
	if ((rc = catalog_begin(c, e)) < 0)
		return rc;
	in_tx = 1;
	if ((rc = catalog_cluster_ensure(c, cluster, &cl, e)) < 0 || (rc = catalog_node_ensure(c, cl, node, &nd, e)) < 0)
		goto fail;
	prev_nb = o->full ? 0 : catalog_prev_node_backup(c, nd);
	if ((rc = catalog_snapshot_begin(c, cl, "offline", &snap, e)) < 0 ||
	    (rc = catalog_node_backup_begin(c, snap, nd, real, &nb, e)) < 0)
		goto fail;
	{
		/* meta: which repository this catalog belongs to (checked on recovery) */
		char id[80];
		if (catalog_meta_get(c, "repository", id, sizeof id) < 0 &&
		    (rc = catalog_meta_set(c, "repository", r->cfg.id, e)) < 0)
			goto fail;
	}
	if ((rc = catalog_commit(c, e)) < 0)
		goto fail;
	in_tx = 0;
	if (prev_nb)
		t.prev_started_ns = catalog_node_backup_started_us(c, prev_nb) * 1000 - 1000000000ll;
	if (o->progress)
		progress_start(&prog, "snapshot", count_bytes(real), 1);
	if ((rc = ingest_new(r, c, o->catalog_file, o->progress ? &prog : NULL, &g, e)) < 0)
		goto fail;
	if ((rc = catalog_begin(c, e)) < 0)
		goto fail;
	in_tx = 1;
	backup_walk_entry(&root, &st, 0, "");
	if ((rc = catalog_entry_add(c, nb, &root, e)) < 0)
		goto fail;
	t.dir = real;
	t.nb = nb;
	t.root = root.id;
	t.prev_nb = prev_nb;
	t.prev_root = prev_nb ? catalog_node_backup_root(c, prev_nb) : 0;
	t.full = o->full;
	t.progress = o->progress ? &prog : NULL;
	if ((rc = backup_walk_tree(c, g, &t, NULL, res, e)) < 0)
		goto fail;
	if ((rc = ingest_flush(g, e)) < 0)
		goto fail;
	res->st = *ingest_stats(g);
	tot.files = (int64_t)res->st.files;
	tot.bytes = (int64_t)res->st.bytes;
	tot.new_bytes = (int64_t)res->st.new_bytes;
	tot.stored_bytes = (int64_t)res->st.stored_bytes;
	if ((rc = catalog_node_backup_finish(c, nb, root.id, &tot, e)) < 0 ||
	    (rc = catalog_snapshot_finish(c, snap, util_now_us(), res->name, e)) < 0 || (rc = catalog_commit(c, e)) < 0)
		goto fail;
	in_tx = 0;
	ingest_free(g);
	g = NULL;
	progress_end(&prog);
	res->snapshot = snap;
	if ((rc = catalog_copy_push(c, r, o->state_dir, &res->generation, e)) < 0) {
		err_prefix(e, "snapshot %s is complete, but its catalog copy failed", res->name);
		if (rc != ERR_CONFIG) /* ERR_CONFIG: this catalog is behind the zones; its own hint says why */
			err_hint(e, "the snapshot is recorded in the local catalog; fix the zone (space, permissions, "
				    "mount), then run 'pgtimefs repair' to push the copy (do not take the snapshot again)");
		return rc;
	}
	res->seconds = util_mono() - t0;
	return 0;
fail:
	progress_end(&prog);
	if (in_tx)
		catalog_rollback(c);
	ingest_free(g);
	if (snap) {
		struct err ignore;
		if (catalog_begin(c, &ignore) == 0) {
			if (catalog_snapshot_abandon(c, snap, &ignore) == 0)
				catalog_commit(c, &ignore);
			else
				catalog_rollback(c);
		}
	}
	return rc;
}
