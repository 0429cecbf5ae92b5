#include "path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

static void snapshot_loc(struct fs_loc *o, const struct catalog_snapshot *s)
{
	o->kind = FS_SNAPSHOT;
	o->snapshot = s->id;
	snprintf(o->snapshot_name, sizeof o->snapshot_name, "%s", s->name);
	o->snapshot_time_us = s->time_us;
}

/* a cluster's folder shows the time of its newest snapshot */
static void cluster_time(catalog *c, struct fs_loc *l)
{
	struct catalog_snapshot s;
	if (catalog_snapshot_latest(c, l->cluster, &s, NULL) == 0)
		l->snapshot_time_us = s.time_us;
}

struct node_find {
	const char *name;
	int64_t nb, root;
};

static int node_cb(void *ctx, const char *node, int64_t nb, int64_t root)
{
	struct node_find *f = ctx;
	if (strcmp(node, f->name))
		return 0;
	f->nb = nb;
	f->root = root;
	return 1;
}

int fs_lookup(catalog *c, const struct fs_loc *dir, const char *name, struct fs_loc *out, struct err *e)
{
	int rc;
	if (!strcmp(name, ".")) {
		*out = *dir;
		return 0;
	}
	switch (dir->kind) {
	case FS_ROOT:
		memset(out, 0, sizeof *out);
		if ((rc = catalog_cluster_find(c, name, &out->cluster, e)) < 0)
			return rc;
		out->kind = FS_CLUSTER;
		snprintf(out->cluster_name, sizeof out->cluster_name, "%s", name);
		cluster_time(c, out);
		return 0;
	case FS_CLUSTER: {
		struct catalog_snapshot s;
		*out = *dir;
		if (!strcmp(name, "latest")) {
			if ((rc = catalog_snapshot_latest(c, dir->cluster, &s, e)) < 0)
				return rc;
			snapshot_loc(out, &s);
			out->kind = FS_LATEST;
			return 0;
		}
		if ((rc = catalog_snapshot_by_name(c, dir->cluster, name, &s, e)) < 0)
			return rc;
		snapshot_loc(out, &s);
		return 0;
	}
	case FS_LATEST:
	case FS_SNAPSHOT: {
		struct node_find f = {name, 0, 0};
		*out = *dir;
		if ((rc = catalog_snapshot_nodes(c, dir->snapshot, node_cb, &f, e)) < 0)
			return rc;
		if (!f.nb || !f.root)
			return err_set(e, ERR_NOTFOUND, "no node '%s' in snapshot %s", name, dir->snapshot_name);
		if ((rc = catalog_entry_get(c, f.root, &out->entry, e)) < 0)
			return rc;
		out->kind = FS_ENTRY;
		out->nb = f.nb;
		snprintf(out->entry.name, sizeof out->entry.name, "%s", name);
		return 0;
	}
	case FS_ENTRY:
		if (!S_ISDIR(dir->entry.mode))
			return err_set(e, ERR_NOTFOUND, "'%s' is not a directory", dir->entry.name);
		*out = *dir;
		return catalog_entry_lookup(c, dir->nb, dir->entry.id, name, &out->entry, e);
	}
	return err_set(e, ERR_INTERNAL, "bad location");
}

int fs_resolve(catalog *c, const char *path, struct fs_loc *out, struct err *e)
{
	char *copy = xstrdup(path), *save = NULL, *tok;
	int rc = 0;
	memset(out, 0, sizeof *out);
	out->kind = FS_ROOT;
	for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		struct fs_loc next;
		if (out->kind == FS_LATEST)
			out->kind = FS_SNAPSHOT; /* follow it when more comes */
		if ((rc = fs_lookup(c, out, tok, &next, e)) < 0) {
			if (rc == ERR_NOTFOUND)
				err_set(e, ERR_NOTFOUND, "%s: no such file or directory (at '%s')", path, tok);
			break;
		}
		*out = next;
	}
	free(copy);
	return rc;
}

/* nanoseconds since the epoch as a timespec, rounding down (times before 1970 too) */
static struct timespec ts_of_ns(int64_t ns)
{
	struct timespec ts;
	int64_t sec = ns / 1000000000, rem = ns % 1000000000;
	if (rem < 0) {
		rem += 1000000000;
		sec--;
	}
	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = (long)rem;
	return ts;
}

void fs_stat(const struct fs_loc *l, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_nlink = 1;
	switch (l->kind) {
	case FS_ROOT:
	case FS_CLUSTER:
	case FS_SNAPSHOT:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_mtim = ts_of_ns(l->snapshot_time_us * 1000);
		break;
	case FS_LATEST:
		st->st_mode = S_IFLNK | 0777;
		st->st_size = (off_t)strlen(l->snapshot_name);
		st->st_mtim = ts_of_ns(l->snapshot_time_us * 1000);
		break;
	case FS_ENTRY:
		st->st_mode = l->entry.mode;
		st->st_uid = l->entry.uid;
		st->st_gid = l->entry.gid;
		st->st_size = (off_t)l->entry.size;
		st->st_rdev = (dev_t)l->entry.rdev;
		st->st_nlink = S_ISDIR(l->entry.mode) ? 2 : 1;
		st->st_mtim = ts_of_ns(l->entry.mtime_ns);
		st->st_blocks = (blkcnt_t)((l->entry.size + 511) / 512);
		break;
	}
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/* ino = catalog number << 3 | tag; tag 0 is never used, so no number but the root's is 1 */
enum { TAG_CLUSTER = 1, TAG_SNAPSHOT = 2, TAG_LATEST = 3, TAG_ENTRY = 4 };

uint64_t fs_ino_of(enum fs_kind k, int64_t id)
{
	switch (k) {
	case FS_ROOT:
		return 1;
	case FS_CLUSTER:
		return (uint64_t)id << 3 | TAG_CLUSTER;
	case FS_SNAPSHOT:
		return (uint64_t)id << 3 | TAG_SNAPSHOT;
	case FS_LATEST:
		return (uint64_t)id << 3 | TAG_LATEST;
	case FS_ENTRY:
		return (uint64_t)id << 3 | TAG_ENTRY;
	}
	return 0;
}

uint64_t fs_ino(const struct fs_loc *l)
{
	switch (l->kind) {
	case FS_ROOT:
		return 1;
	case FS_CLUSTER:
	case FS_LATEST:
		return fs_ino_of(l->kind, l->cluster);
	case FS_SNAPSHOT:
		return fs_ino_of(l->kind, l->snapshot);
	case FS_ENTRY:
		return fs_ino_of(l->kind, l->entry.id);
	}
	return 0;
}

int fs_loc_of_ino(catalog *c, uint64_t ino, struct fs_loc *out, struct err *e)
{
	int64_t id = (int64_t)(ino >> 3);
	struct catalog_snapshot s;
	int rc;
	memset(out, 0, sizeof *out);
	if (ino == 1) {
		out->kind = FS_ROOT;
		return 0;
	}
	switch (ino & 7) {
	case TAG_CLUSTER:
		out->kind = FS_CLUSTER;
		out->cluster = id;
		cluster_time(c, out);
		return 0;
	case TAG_SNAPSHOT:
		if ((rc = catalog_snapshot_get(c, id, &s, e)) < 0)
			return rc;
		out->cluster = s.cluster;
		snprintf(out->cluster_name, sizeof out->cluster_name, "%s", s.cluster_name);
		snapshot_loc(out, &s);
		return 0;
	case TAG_LATEST:
		if ((rc = catalog_snapshot_latest(c, id, &s, e)) < 0)
			return rc;
		out->cluster = id;
		snapshot_loc(out, &s);
		out->kind = FS_LATEST;
		return 0;
	case TAG_ENTRY:
		if ((rc = catalog_entry_get(c, id, &out->entry, e)) < 0)
			return rc;
		out->kind = FS_ENTRY;
		out->nb = catalog_entry_nb(c, id);
		return 0;
	}
	return err_set(e, ERR_NOTFOUND, "no inode %llu", (unsigned long long)ino);
}

int fs_immutable(const struct fs_loc *l)
{
	return l->kind == FS_SNAPSHOT || l->kind == FS_ENTRY;
}

const char *fs_name(const struct fs_loc *l)
{
	switch (l->kind) {
	case FS_ROOT:
		return "/";
	case FS_CLUSTER:
		return l->cluster_name;
	case FS_SNAPSHOT:
		return l->snapshot_name;
	case FS_LATEST:
		return "latest";
	case FS_ENTRY:
		return l->entry.name;
	}
	return "?";
}

void fs_stat_full(catalog *c, const struct fs_loc *l, struct stat *st)
{
	uint64_t holes;
	fs_stat(l, st);
	if (l->kind == FS_ENTRY && S_ISREG(l->entry.mode) && l->entry.content &&
	    catalog_content_holes(c, l->entry.content, &holes, NULL) == 0 && holes <= l->entry.size)
		st->st_blocks = (blkcnt_t)((l->entry.size - holes + 511) / 512);
}

const char *fs_link_target(const struct fs_loc *l)
{
	if (l->kind == FS_LATEST)
		return l->snapshot_name;
	if (l->kind == FS_ENTRY && S_ISLNK(l->entry.mode))
		return l->entry.target;
	return NULL;
}

struct list_ctx {
	const struct fs_loc *dir;
	const char *after;
	int64_t after_us; /* FS_CLUSTER: the time of the snapshot named after (-1: unknown) */
	int (*cb)(void *ctx, const struct fs_loc *child);
	void *ctx;
	catalog *c;
	int stopped;
};

static int list_cluster_cb(void *p, int64_t id, const char *name)
{
	struct list_ctx *lc = p;
	struct fs_loc l;
	if (strcmp(name, lc->after) <= 0)
		return 0;
	memset(&l, 0, sizeof l);
	l.kind = FS_CLUSTER;
	l.cluster = id;
	snprintf(l.cluster_name, sizeof l.cluster_name, "%s", name);
	cluster_time(lc->c, &l);
	return (lc->stopped = lc->cb(lc->ctx, &l));
}

static int list_snapshot_cb(void *p, const struct catalog_snapshot *s)
{
	struct list_ctx *lc = p;
	struct fs_loc l = *lc->dir;
	/* snapshots come oldest first, and "…20.5Z" sorts before "…20Z" by name: resume by time */
	if (lc->after_us >= 0 ? s->time_us < lc->after_us || (s->time_us == lc->after_us && strcmp(s->name, lc->after) <= 0)
			      : strcmp(s->name, lc->after) <= 0)
		return 0;
	snapshot_loc(&l, s);
	return (lc->stopped = lc->cb(lc->ctx, &l));
}

static int list_node_cb(void *p, const char *node, int64_t nb, int64_t root)
{
	struct list_ctx *lc = p;
	struct fs_loc l = *lc->dir;
	if (strcmp(node, lc->after) <= 0 || !root)
		return 0;
	if (catalog_entry_get(lc->c, root, &l.entry, NULL) < 0)
		return 0;
	l.kind = FS_ENTRY;
	l.nb = nb;
	snprintf(l.entry.name, sizeof l.entry.name, "%s", node);
	return (lc->stopped = lc->cb(lc->ctx, &l));
}

int fs_list(catalog *c, const struct fs_loc *dir, const char *after, int (*cb)(void *ctx, const struct fs_loc *child),
	    void *ctx, struct err *e)
{
	struct list_ctx lc = {dir, after ? after : "", -1, cb, ctx, c, 0};
	int rc;
	switch (dir->kind) {
	case FS_ROOT:
		rc = catalog_clusters(c, list_cluster_cb, &lc, e);
		return rc < 0 ? rc : 0;
	case FS_CLUSTER: {
		struct catalog_snapshot s;
		if (!strcmp(lc.after, "latest"))
			return 0; /* it comes last */
		if (*lc.after && catalog_snapshot_by_name(c, dir->cluster, lc.after, &s, NULL) == 0)
			lc.after_us = s.time_us;
		rc = catalog_snapshots(c, dir->cluster, list_snapshot_cb, &lc, e);
		if (rc < 0)
			return rc;
		/* "latest" comes last */
		if (!lc.stopped && strcmp("latest", lc.after) > 0 && catalog_snapshot_latest(c, dir->cluster, &s, NULL) == 0) {
			struct fs_loc l = *dir;
			snapshot_loc(&l, &s);
			l.kind = FS_LATEST;
			cb(ctx, &l);
		}
		return 0;
	}
	case FS_LATEST:
	case FS_SNAPSHOT:
		rc = catalog_snapshot_nodes(c, dir->snapshot, list_node_cb, &lc, e);
		return rc < 0 ? rc : 0;
	case FS_ENTRY: {
		struct catalog_entry *page;
		char last[256];
		size_t n;
		if (!S_ISDIR(dir->entry.mode))
			return err_set(e, ERR_USAGE, "'%s' is not a directory", dir->entry.name);
		page = xmalloc(64 * sizeof *page);
		snprintf(last, sizeof last, "%s", lc.after);
		for (;;) {
			if ((rc = catalog_dir_page(c, dir->nb, dir->entry.id, last, page, 64, &n, e)) < 0)
				break;
			for (size_t i = 0; i < n; i++) {
				struct fs_loc l = *dir;
				l.entry = page[i];
				if (cb(ctx, &l)) {
					n = 0;
					lc.stopped = 1;
					break;
				}
			}
			if (n < 64)
				break;
			snprintf(last, sizeof last, "%s", page[n - 1].name);
		}
		free(page);
		return rc < 0 ? rc : 0;
	}
	}
	return 0;
}
