#include "path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timefmt.h"
#include "common/util.h"
#include "view.h"

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

static const char *synth_name(int s)
{
	return s == FS_SYNTH_JSON ? "restore.json" : s == FS_SYNTH_CONF ? "postgresql.auto.conf" : "recovery.signal";
}

/* a view's node below dir (NULL when the view is gone: never, views live as long as the process) */
static const struct fs_view_node *view_node(const struct fs_loc *l, const struct fs_view **vp)
{
	const struct fs_view *v = fs_view_by_id(l->view);
	if (vp)
		*vp = v;
	if (!v || l->vnode < 0 || l->vnode >= v->nnodes)
		return NULL;
	return &v->nodes[l->vnode];
}

/* a view node's directory (root or pg_wal) as a location */
static int view_dir_loc(catalog *c, const struct fs_loc *dir, int vnode, enum fs_kind k, struct fs_loc *out, struct err *e)
{
	const struct fs_view *v = fs_view_by_id(dir->view);
	const struct fs_view_node *vn = &v->nodes[vnode];
	int rc;
	*out = *dir;
	out->kind = k;
	out->vnode = vnode;
	out->nb = vn->run.nb.nb;
	if ((rc = catalog_entry_get(c, k == FS_AT_NODE ? vn->root.id : vn->pgwal.id, &out->entry, e)) < 0)
		return rc;
	if (k == FS_AT_NODE)
		snprintf(out->entry.name, sizeof out->entry.name, "%s", vn->name);
	return 0;
}

/* the archived WAL file shown as name in a view node's pg_wal (ERR_NOTFOUND: none) */
static int view_wal_loc(catalog *c, const struct fs_loc *dir, const char *name, struct fs_loc *out)
{
	const struct fs_view_node *vn = view_node(dir, NULL);
	char stored[64];
	if (!vn || !fs_view_wal_name(vn, name, stored))
		return ERR_NOTFOUND;
	*out = *dir;
	if (vn->last_partial.id && !strcmp(stored, vn->last_partial.name))
		out->wal = vn->last_partial; /* as it was when the view was made */
	else if (catalog_wal_find(c, vn->node, stored, &out->wal, NULL) < 0)
		return ERR_NOTFOUND;
	out->kind = FS_WALFILE;
	out->node = vn->node;
	snprintf(out->shown, sizeof out->shown, "%s", name);
	return 0;
}

static int view_lookup(catalog *c, const struct fs_loc *dir, const char *name, struct fs_loc *out, struct err *e)
{
	const struct fs_view *v;
	const struct fs_view_node *vn;
	int rc;
	switch (dir->kind) {
	case FS_WALDIR:
		*out = *dir;
		if ((rc = catalog_node_find(c, dir->cluster, name, &out->node, e)) < 0)
			return rc;
		out->kind = FS_WALNODE;
		snprintf(out->node_name, sizeof out->node_name, "%s", name);
		return 0;
	case FS_WALNODE:
		*out = *dir;
		if ((rc = catalog_wal_find(c, dir->node, name, &out->wal, e)) < 0)
			return rc;
		out->kind = FS_WALFILE;
		snprintf(out->shown, sizeof out->shown, "%s", name);
		return 0;
	case FS_ATDIR: {
		int64_t t;
		struct catalog_snapshot sn;
		/* a spelling is kept whole in its view (fs_view.spelling): a longer one (digits
		 * without end) would never match its view again and make a new one each time */
		if (strlen(name) >= sizeof ((struct fs_view *)0)->spelling || timefmt_parse(name, &t) < 0)
			return err_set(e, ERR_NOTFOUND, "'%s' is not a time (UTC ISO-8601, like 2026-11-25T03:00:00Z)", name);
		/* a snapshot's own name means its exact time (the name is cut to the second, the
		 * window starts at the snapshot's microsecond) */
		if (catalog_snapshot_by_name(c, dir->cluster, name, &sn, NULL) == 0)
			t = sn.time_us;
		if ((rc = fs_view_get(c, dir->cluster, dir->cluster_name, t, name, &v, e)) < 0)
			return rc;
		*out = *dir;
		out->kind = FS_AT;
		out->view = v->id;
		out->snapshot_time_us = t;
		return 0;
	}
	case FS_AT:
		if (!(v = fs_view_by_id(dir->view)))
			break;
		if (!strcmp(name, "restore.json")) {
			*out = *dir;
			out->kind = FS_AT_FILE;
			out->synth = FS_SYNTH_JSON;
			out->vnode = -1;
			return 0;
		}
		for (int i = 0; i < v->nnodes; i++)
			if (!strcmp(v->nodes[i].name, name))
				return view_dir_loc(c, dir, i, FS_AT_NODE, out, e);
		break;
	case FS_AT_NODE:
		if (!(vn = view_node(dir, NULL)))
			break;
		for (int s = FS_SYNTH_CONF; s <= FS_SYNTH_SIGNAL; s++)
			if (!strcmp(name, synth_name(s))) {
				*out = *dir;
				out->kind = FS_AT_FILE;
				out->synth = s;
				return 0;
			}
		if (!strcmp(name, "pg_wal") && vn->pgwal.id)
			return view_dir_loc(c, dir, dir->vnode, FS_AT_PGWAL, out, e);
		if (!strcmp(name, "standby.signal")) /* a standby's: it would outrank recovery.signal */
			return err_set(e, ERR_NOTFOUND, "a view hides standby.signal");
		*out = *dir; /* the snapshot's entry, seen through the view (view kept: fs_ino) */
		out->kind = FS_ENTRY;
		return catalog_entry_lookup(c, dir->nb, dir->entry.id, name, &out->entry, e);
	case FS_AT_PGWAL:
		if (view_wal_loc(c, dir, name, out) == 0)
			return 0;
		*out = *dir;
		out->kind = FS_ENTRY;
		return catalog_entry_lookup(c, dir->nb, dir->entry.id, name, &out->entry, e);
	default:
		break;
	}
	return err_set(e, ERR_NOTFOUND, "no '%s' here", name);
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
		if (!strcmp(name, "wal") || !strcmp(name, "at")) {
			out->kind = name[0] == 'w' ? FS_WALDIR : FS_ATDIR;
			return 0;
		}
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
	default:
		return view_lookup(c, dir, name, out, e);
	}
	return err_set(e, ERR_INTERNAL, "bad location");
}

int fs_resolve(catalog *c, const char *path, struct fs_loc *out, struct err *e)
{
	char *copy = xstrdup(path), *save = NULL, *tok;
	struct fs_loc *up = NULL; /* the directories passed, for ".." */
	size_t depth = 0, cap = 0, plen = strlen(path);
	int rc = 0;
	memset(out, 0, sizeof *out);
	out->kind = FS_ROOT;
	for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		struct fs_loc next;
		if (!strcmp(tok, "..")) { /* as the kernel does in the mount ("/.." is "/") */
			if (depth)
				*out = up[--depth];
			continue;
		}
		if (out->kind == FS_LATEST)
			out->kind = FS_SNAPSHOT; /* follow it when more comes */
		if ((rc = fs_lookup(c, out, tok, &next, e)) < 0) {
			if (rc == ERR_NOTFOUND && out->kind == FS_ATDIR) {
				err_prefix(e, "%s: no such file or directory", path);
				err_hint(e, "'pgtimefs list %s' shows the restorable window", out->cluster_name);
			} else if (rc == ERR_NOTFOUND) {
				/* what the lookup said (which cluster, snapshot, node or name), and where */
				int64_t us;
				err_prefix(e, "%s: no such file or directory (at '%s')", path, tok);
				if (out->kind == FS_ROOT)
					err_hint(e, "'pgtimefs list' shows the clusters");
				else if (out->kind == FS_CLUSTER && timefmt_parse(tok, &us) == 0)
					err_hint(e, "a snapshot's directory has the exact name 'pgtimefs ls %s' shows; "
						    "any time in the restorable window is %s/at/TIME",
						 out->cluster_name, out->cluster_name);
				else if (out->kind == FS_CLUSTER)
					err_hint(e, "'pgtimefs ls %s' lists its snapshots", out->cluster_name);
			}
			break;
		}
		if (strcmp(tok, ".")) {
			if (depth == cap)
				up = xrealloc(up, (cap = cap ? 2 * cap : 8) * sizeof *up);
			up[depth++] = *out;
		}
		*out = next;
	}
	/* "FILE/" names a directory that is not there, as in the mount */
	if (rc == 0 && plen && path[plen - 1] == '/' && !fs_is_dir(out) && out->kind != FS_LATEST)
		rc = err_set(e, ERR_NOTFOUND, "%s: not a directory", path);
	free(up);
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
	case FS_AT_NODE:
	case FS_AT_PGWAL:
		st->st_mode = l->entry.mode;
		st->st_uid = l->entry.uid;
		st->st_gid = l->entry.gid;
		st->st_nlink = 2;
		st->st_mtim = ts_of_ns(l->entry.mtime_ns);
		break;
	case FS_WALDIR:
	case FS_WALNODE:
	case FS_ATDIR:
	case FS_AT:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_mtim = ts_of_ns(l->snapshot_time_us * 1000);
		break;
	case FS_WALFILE: {
		const struct fs_view_node *vn = l->view ? view_node(l, NULL) : NULL;
		/* WAL holds every change the server made, full-page images of its 0600 files
		 * included: in wal/NODE readable by root only (0400, root's), in a view's pg_wal
		 * owned like the server's own files */
		st->st_mode = S_IFREG | (vn ? 0600 : 0400);
		if (vn) {
			st->st_uid = vn->pgwal.id ? vn->pgwal.uid : vn->root.uid;
			st->st_gid = vn->pgwal.id ? vn->pgwal.gid : vn->root.gid;
		}
		st->st_size = (off_t)l->wal.size;
		st->st_blocks = (blkcnt_t)((l->wal.size + 511) / 512);
		st->st_mtim = ts_of_ns(l->wal.stored_us * 1000);
		break;
	}
	case FS_AT_FILE: {
		const struct fs_view *v;
		const struct fs_view_node *vn = view_node(l, &v);
		st->st_mode = S_IFREG | 0444;
		st->st_mtim = ts_of_ns(l->snapshot_time_us * 1000);
		if (!v)
			break;
		st->st_size = (off_t)fs_view_synth_size(v, vn, (enum fs_synth)l->synth);
		if (vn) {
			st->st_mode = S_IFREG | 0600;
			st->st_uid = vn->root.uid;
			st->st_gid = vn->root.gid;
			if (l->synth == FS_SYNTH_CONF && vn->conf.id) {
				st->st_mode = vn->conf.mode;
				st->st_uid = vn->conf.uid;
				st->st_gid = vn->conf.gid;
			}
		}
		st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
		break;
	}
	}
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/*
 * ino = catalog number << 3 | tag; tag 0 is never used, so no number but the root's is 1.
 * TAG_WAL: (number << 2 | sub) << 3: sub 0 CLUSTER/wal (cluster number), 1 wal/NODE (node),
 * 2 wal/NODE/FILE (wal row), 3 CLUSTER/at (cluster).
 * TAG_AT: ((x << 3 | sub) << 12 | view) << 3, view 1..4095 (fs/view.h), sub 0 at/T (x 0),
 * 1 restore.json (x 0), 2 NODE (x: the node's index in the view), 3 its postgresql.auto.conf,
 * 4 its recovery.signal, 5 its pg_wal, 6 an archived file in that pg_wal (x: wal row), 7 a
 * directory of the snapshot's tree seen through the view (x: entry). Files of the tree keep
 * their TAG_ENTRY numbers (one inode, two names, like a hard link); directories get their
 * own per view, because the kernel allows a directory inode one parent only.
 */
enum { TAG_CLUSTER = 1, TAG_SNAPSHOT = 2, TAG_LATEST = 3, TAG_ENTRY = 4, TAG_WAL = 5, TAG_AT = 6 };
enum { WSUB_DIR, WSUB_NODE, WSUB_FILE, WSUB_AT };
enum { ASUB_AT, ASUB_JSON, ASUB_NODE, ASUB_CONF, ASUB_SIGNAL, ASUB_PGWAL, ASUB_WAL, ASUB_DIR };

static uint64_t ino_wal(int sub, int64_t id)
{
	return ((uint64_t)id << 2 | (uint64_t)sub) << 3 | TAG_WAL;
}

static uint64_t ino_at(int view, int sub, int64_t x)
{
	return (((uint64_t)x << 3 | (uint64_t)sub) << 12 | (uint64_t)view) << 3 | TAG_AT;
}

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
	case FS_WALDIR:
		return ino_wal(WSUB_DIR, id);
	case FS_WALNODE:
		return ino_wal(WSUB_NODE, id);
	case FS_WALFILE:
		return ino_wal(WSUB_FILE, id);
	case FS_ATDIR:
		return ino_wal(WSUB_AT, id);
	default:
		break;
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
		if (l->view && S_ISDIR(l->entry.mode))
			return ino_at(l->view, ASUB_DIR, l->entry.id);
		return fs_ino_of(l->kind, l->entry.id);
	case FS_WALDIR:
	case FS_ATDIR:
		return fs_ino_of(l->kind, l->cluster);
	case FS_WALNODE:
		return fs_ino_of(l->kind, l->node);
	case FS_WALFILE:
		return l->view ? ino_at(l->view, ASUB_WAL, l->wal.id) : fs_ino_of(l->kind, l->wal.id);
	case FS_AT:
		return ino_at(l->view, ASUB_AT, 0);
	case FS_AT_NODE:
		return ino_at(l->view, ASUB_NODE, l->vnode);
	case FS_AT_PGWAL:
		return ino_at(l->view, ASUB_PGWAL, l->vnode);
	case FS_AT_FILE:
		return l->synth == FS_SYNTH_JSON ? ino_at(l->view, ASUB_JSON, 0)
						 : ino_at(l->view, l->synth == FS_SYNTH_CONF ? ASUB_CONF : ASUB_SIGNAL, l->vnode);
	}
	return 0;
}

/* a cluster's location (name and time) by its number */
static void cluster_loc(catalog *c, int64_t cluster, struct fs_loc *out)
{
	struct catalog_snapshot s;
	out->cluster = cluster;
	if (catalog_snapshot_latest(c, cluster, &s, NULL) == 0) {
		snprintf(out->cluster_name, sizeof out->cluster_name, "%s", s.cluster_name);
		out->snapshot_time_us = s.time_us;
	}
}

static int wal_loc_of_ino(catalog *c, uint64_t p, struct fs_loc *out, struct err *e)
{
	int64_t id = (int64_t)(p >> 2), cluster;
	int rc;
	if (id <= 0)
		return err_set(e, ERR_NOTFOUND, "no such inode");
	switch (p & 3) {
	case WSUB_DIR:
	case WSUB_AT:
		cluster_loc(c, id, out);
		out->kind = (p & 3) == WSUB_DIR ? FS_WALDIR : FS_ATDIR;
		return 0;
	case WSUB_NODE:
		if ((rc = catalog_node_get(c, id, &cluster, out->node_name, e)) < 0)
			return rc;
		cluster_loc(c, cluster, out);
		out->kind = FS_WALNODE;
		out->node = id;
		return 0;
	case WSUB_FILE:
		if ((rc = catalog_wal_get(c, id, &out->wal, e)) < 0)
			return rc;
		out->kind = FS_WALFILE;
		out->node = out->wal.node;
		snprintf(out->shown, sizeof out->shown, "%s", out->wal.name);
		return 0;
	}
	return err_set(e, ERR_NOTFOUND, "no such inode");
}

static int at_loc_of_ino(catalog *c, uint64_t p, struct fs_loc *out, struct err *e)
{
	int view = (int)(p & 4095), sub = (int)(p >> 12 & 7);
	int64_t x = (int64_t)(p >> 15);
	const struct fs_view *v = fs_view_by_id(view);
	struct fs_loc at;
	char name[64];
	if (!v)
		return err_set(e, ERR_NOTFOUND, "no view %d", view);
	memset(&at, 0, sizeof at);
	at.kind = FS_AT;
	at.cluster = v->cluster;
	snprintf(at.cluster_name, sizeof at.cluster_name, "%s", v->cluster_name);
	at.view = view;
	at.snapshot_time_us = v->t_us;
	at.vnode = -1;
	*out = at;
	switch (sub) {
	case ASUB_AT:
		return 0;
	case ASUB_JSON:
		out->kind = FS_AT_FILE;
		out->synth = FS_SYNTH_JSON;
		return 0;
	case ASUB_WAL: {
		struct catalog_wal w;
		int rc = 1, i;
		for (i = 0; i < v->nnodes && rc; i++)
			if (v->nodes[i].last_partial.id == x) {
				w = v->nodes[i].last_partial; /* it may be gone from the catalog */
				rc = 0;
			}
		if (rc && (rc = catalog_wal_get(c, x, &w, e)) < 0)
			return rc;
		if ((i = fs_view_node_index(v, w.node)) < 0 || !fs_view_wal_shown(&v->nodes[i], &w, name))
			return err_set(e, ERR_NOTFOUND, "WAL file %s is not in view %s", w.name, v->name);
		out->kind = FS_WALFILE;
		out->vnode = i;
		out->node = w.node;
		out->wal = w;
		snprintf(out->shown, sizeof out->shown, "%s", name);
		return 0;
	}
	case ASUB_DIR: {
		int rc;
		if ((rc = catalog_entry_get(c, x, &out->entry, e)) < 0)
			return rc;
		out->kind = FS_ENTRY;
		out->nb = catalog_entry_nb(c, x);
		out->vnode = -1;
		for (int i = 0; i < v->nnodes; i++)
			if (v->nodes[i].run.nb.nb == out->nb)
				out->vnode = i;
		if (out->vnode < 0 || !S_ISDIR(out->entry.mode))
			return err_set(e, ERR_NOTFOUND, "entry %lld is not in view %s", (long long)x, v->name);
		return 0;
	}
	default:
		break;
	}
	if (x < 0 || x >= v->nnodes)
		return err_set(e, ERR_NOTFOUND, "no node %lld in view %s", (long long)x, v->name);
	switch (sub) {
	case ASUB_NODE:
	case ASUB_PGWAL:
		return view_dir_loc(c, &at, (int)x, sub == ASUB_NODE ? FS_AT_NODE : FS_AT_PGWAL, out, e);
	case ASUB_CONF:
	case ASUB_SIGNAL:
		out->kind = FS_AT_FILE;
		out->vnode = (int)x;
		out->nb = v->nodes[x].run.nb.nb;
		out->synth = sub == ASUB_CONF ? FS_SYNTH_CONF : FS_SYNTH_SIGNAL;
		return 0;
	}
	return err_set(e, ERR_NOTFOUND, "no such inode");
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
	case TAG_WAL:
		return wal_loc_of_ino(c, ino >> 3, out, e);
	case TAG_AT:
		return at_loc_of_ino(c, ino >> 3, out, e);
	}
	return err_set(e, ERR_NOTFOUND, "no inode %llu", (unsigned long long)ino);
}

int fs_immutable(const struct fs_loc *l)
{
	/* a view is fixed when it is made, an archived WAL file never changes; but a streamed
	 * .partial in CLUSTER/wal/NODE is replaced as it grows (a view keeps the one it took) */
	if (l->kind == FS_WALFILE && !l->view) {
		size_t n = strlen(l->wal.name);
		return n < 8 || strcmp(l->wal.name + n - 8, ".partial") != 0;
	}
	return l->kind == FS_SNAPSHOT || l->kind == FS_ENTRY || l->kind == FS_WALFILE || l->kind == FS_AT ||
	       l->kind == FS_AT_NODE || l->kind == FS_AT_PGWAL || l->kind == FS_AT_FILE;
}

int fs_is_dir(const struct fs_loc *l)
{
	switch (l->kind) {
	case FS_LATEST:
	case FS_WALFILE:
	case FS_AT_FILE:
		return 0;
	case FS_ENTRY:
		return S_ISDIR(l->entry.mode);
	default:
		return 1;
	}
}

int fs_is_file(const struct fs_loc *l, int64_t *content, uint64_t *size)
{
	*content = 0;
	*size = 0;
	switch (l->kind) {
	case FS_ENTRY:
		if (!S_ISREG(l->entry.mode))
			return 0;
		*content = l->entry.content;
		*size = l->entry.size;
		return 1;
	case FS_WALFILE:
		*content = l->wal.content;
		*size = l->wal.size;
		return 1;
	case FS_AT_FILE:
		return 1;
	default:
		return 0;
	}
}

int fs_loc_synth(fs_reader *rd, const struct fs_loc *l, uint8_t **buf, size_t *len, struct err *e)
{
	const struct fs_view *v;
	const struct fs_view_node *vn = view_node(l, &v);
	if (l->kind != FS_AT_FILE || !v)
		return err_set(e, ERR_INTERNAL, "not a synthesized file");
	return fs_view_synth(rd, v, vn, (enum fs_synth)l->synth, buf, len, e);
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
	case FS_AT_NODE:
	case FS_AT_PGWAL:
		return l->entry.name;
	case FS_WALDIR:
		return "wal";
	case FS_ATDIR:
		return "at";
	case FS_WALNODE:
		return l->node_name;
	case FS_WALFILE:
		return l->shown;
	case FS_AT: {
		const struct fs_view *v = fs_view_by_id(l->view);
		return v ? v->name : "?";
	}
	case FS_AT_FILE:
		return synth_name(l->synth);
	}
	return "?";
}

void fs_stat_full(catalog *c, const struct fs_loc *l, struct stat *st)
{
	uint64_t holes;
	int64_t content;
	uint64_t size;
	fs_stat(l, st);
	if (l->kind != FS_AT_FILE && fs_is_file(l, &content, &size) && content &&
	    catalog_content_holes(c, content, &holes, NULL) == 0 && holes <= size)
		st->st_blocks = (blkcnt_t)((size - holes + 511) / 512);
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

/* --- listings of the wal/ and at/ directories --- */

struct names {
	const struct fs_loc *dir;
	const char *after;
	int (*cb)(void *ctx, const struct fs_loc *child);
	void *ctx;
	int stopped;
};

static int wal_node_list_cb(void *p, const struct catalog_node_row *n)
{
	struct names *x = p;
	struct fs_loc l = *x->dir;
	if (strcmp(n->name, x->after) <= 0)
		return 0;
	l.kind = FS_WALNODE;
	l.node = n->id;
	snprintf(l.node_name, sizeof l.node_name, "%s", n->name);
	return (x->stopped = x->cb(x->ctx, &l));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Merges a directory of the snapshot's tree (FS_AT_NODE, FS_AT_PGWAL) with what the view puts
 * in it, in name order: both sides are read in pages, a name on both shows the view's.
 * Root: postgresql.auto.conf, recovery.signal (synthesized), pg_wal (the view's). pg_wal: the
 * archived files of the run.
 */
#define PAGE 64
static int view_merge(catalog *c, const struct fs_loc *dir, const char *after,
		      int (*cb)(void *ctx, const struct fs_loc *child), void *ctx, struct err *e)
{
	const struct fs_view_node *vn = view_node(dir, NULL);
	struct catalog_entry *ents = xmalloc(PAGE * sizeof *ents);
	struct catalog_wal *wals = dir->kind == FS_AT_PGWAL ? xmalloc(PAGE * sizeof *wals) : NULL;
	char a_last[256], b_last[64], shown[64], pin_shown[64] = "";
	size_t an = 0, ai = 0, bn = 0, bi = 0;
	int a_end = 0, b_end = 0, rc = 0, synth_next = FS_SYNTH_CONF, pin_pending = 0;
	if (!vn) {
		rc = err_set(e, ERR_NOTFOUND, "no such view");
		goto out;
	}
	snprintf(a_last, sizeof a_last, "%s", after);
	snprintf(b_last, sizeof b_last, "%s", after);
	b_end = !wals;
	/* the partial the view took is listed from the view, in its place, whether or not the
	 * catalog still has its row (the catalog's row of it is passed over below) */
	if (wals && vn->last_partial.id) {
		snprintf(pin_shown, sizeof pin_shown, "%.24s", vn->last_partial.name);
		pin_pending = strcmp(pin_shown, after) > 0;
	}
	for (;;) {
		struct fs_loc l = *dir;
		const char *aname = NULL, *bname = NULL;
		int take_a;
		/* the next snapshot entry */
		if (ai == an && !a_end) {
			if ((rc = catalog_dir_page(c, dir->nb, dir->entry.id, a_last, ents, PAGE, &an, e)) < 0)
				goto out;
			ai = 0;
			a_end = an < PAGE;
			if (an)
				snprintf(a_last, sizeof a_last, "%s", ents[an - 1].name);
		}
		if (ai < an)
			aname = ents[ai].name;
		if (aname && dir->kind == FS_AT_NODE && !strcmp(aname, "standby.signal")) {
			ai++; /* a snapshot of a standby: the view starts a recovery, never a standby */
			continue;
		}
		/* the next name the view adds */
		int from_pin = 0;
		if (wals) {
			while (!bname && !(bi == bn && b_end)) {
				if (bi == bn) {
					if ((rc = catalog_wal_page(c, vn->node, b_last, wals, PAGE, &bn, e)) < 0)
						goto out;
					bi = 0;
					b_end = bn < PAGE;
					if (bn)
						snprintf(b_last, sizeof b_last, "%s", wals[bn - 1].name);
					continue;
				}
				if (wals[bi].id != vn->last_partial.id && fs_view_wal_shown(vn, &wals[bi], shown) &&
				    strcmp(shown, after) > 0)
					bname = shown;
				else
					bi++;
			}
			if (pin_pending && (!bname || strcmp(pin_shown, bname) < 0)) {
				bname = pin_shown;
				from_pin = 1;
			}
		} else {
			while (synth_next <= FS_SYNTH_SIGNAL && strcmp(synth_name(synth_next), after) <= 0)
				synth_next++;
			if (synth_next <= FS_SYNTH_SIGNAL)
				bname = synth_name(synth_next);
		}
		if (!aname && !bname)
			break;
		take_a = aname && (!bname || strcmp(aname, bname) < 0);
		if (take_a) {
			l.entry = ents[ai++];
			l.kind = FS_ENTRY;
			if (!wals && !strcmp(l.entry.name, "pg_wal") && vn->pgwal.id == l.entry.id)
				l.kind = FS_AT_PGWAL;
		} else {
			if (aname && !strcmp(aname, bname))
				ai++; /* the view's file replaces the snapshot's */
			if (from_pin) {
				l.kind = FS_WALFILE;
				l.wal = vn->last_partial;
				pin_pending = 0;
				l.node = vn->node;
				snprintf(l.shown, sizeof l.shown, "%s", bname);
			} else if (wals) {
				l.kind = FS_WALFILE;
				l.wal = wals[bi++];
				l.node = vn->node;
				snprintf(l.shown, sizeof l.shown, "%s", bname);
			} else {
				l.kind = FS_AT_FILE;
				l.synth = synth_next++;
			}
		}
		if (cb(ctx, &l))
			break;
	}
out:
	free(ents);
	free(wals);
	return rc;
}

static int view_list(catalog *c, const struct fs_loc *dir, const char *after,
		     int (*cb)(void *ctx, const struct fs_loc *child), void *ctx, struct err *e)
{
	struct names x = {dir, after, cb, ctx, 0};
	int rc;
	switch (dir->kind) {
	case FS_WALDIR:
		rc = catalog_cluster_nodes(c, dir->cluster, wal_node_list_cb, &x, e);
		return rc < 0 ? rc : 0;
	case FS_WALNODE: {
		struct catalog_wal *page = xmalloc(PAGE * sizeof *page);
		char last[64];
		size_t n;
		snprintf(last, sizeof last, "%s", after);
		for (;;) {
			if ((rc = catalog_wal_page(c, dir->node, last, page, PAGE, &n, e)) < 0)
				break;
			for (size_t i = 0; i < n; i++) {
				struct fs_loc l = *dir;
				l.kind = FS_WALFILE;
				l.wal = page[i];
				snprintf(l.shown, sizeof l.shown, "%s", page[i].name);
				if (cb(ctx, &l)) {
					n = 0;
					break;
				}
			}
			if (n < PAGE)
				break;
			snprintf(last, sizeof last, "%s", page[n - 1].name);
		}
		free(page);
		return rc < 0 ? rc : 0;
	}
	case FS_ATDIR:
		return 0; /* any time of the window can be looked up; none is listed */
	case FS_AT: {
		const struct fs_view *v = fs_view_by_id(dir->view);
		const char **names;
		int n = 0;
		if (!v)
			return err_set(e, ERR_NOTFOUND, "no such view");
		names = xmalloc((size_t)(v->nnodes + 1) * sizeof *names);
		names[n++] = "restore.json";
		for (int i = 0; i < v->nnodes; i++)
			names[n++] = v->nodes[i].name;
		qsort(names, (size_t)n, sizeof *names, cmp_str);
		rc = 0;
		for (int i = 0; i < n; i++) {
			struct fs_loc l;
			if (strcmp(names[i], after) <= 0)
				continue;
			if ((rc = view_lookup(c, dir, names[i], &l, e)) < 0 || cb(ctx, &l))
				break;
		}
		free(names);
		return rc < 0 ? rc : 0;
	}
	case FS_AT_NODE:
	case FS_AT_PGWAL:
		return view_merge(c, dir, after, cb, ctx, e);
	default:
		return 0;
	}
}

const char *fs_resume_key(const struct fs_loc *child, char *buf, size_t cap)
{
	if (child->kind != FS_SNAPSHOT)
		return fs_name(child);
	snprintf(buf, cap, "%lld/%s", (long long)child->snapshot_time_us, child->snapshot_name);
	return buf;
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
		/* snapshots oldest first, then "latest", "at" and "wal" */
		int tail = !strcmp(lc.after, "latest") ? 1 : !strcmp(lc.after, "at") ? 2 : !strcmp(lc.after, "wal") ? 3 : 0;
		if (!tail) {
			const char *slash = strchr(lc.after, '/');
			if (slash) /* a resume key (fs_resume_key): the snapshot's time, then its name */
				lc.after_us = strtoll(lc.after, NULL, 10), lc.after = slash + 1;
			else if (*lc.after && catalog_snapshot_by_name(c, dir->cluster, lc.after, &s, NULL) == 0)
				lc.after_us = s.time_us;
			rc = catalog_snapshots(c, dir->cluster, list_snapshot_cb, &lc, e);
			if (rc < 0)
				return rc;
			if (!lc.stopped && catalog_snapshot_latest(c, dir->cluster, &s, NULL) == 0) {
				struct fs_loc l = *dir;
				snapshot_loc(&l, &s);
				l.kind = FS_LATEST;
				lc.stopped = cb(ctx, &l);
			}
		}
		for (int k = tail < 2 ? 0 : tail - 1; k < 2 && !lc.stopped; k++) {
			struct fs_loc l = *dir;
			l.kind = k == 0 ? FS_ATDIR : FS_WALDIR;
			lc.stopped = cb(ctx, &l);
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
	case FS_WALDIR:
	case FS_WALNODE:
	case FS_ATDIR:
	case FS_AT:
	case FS_AT_NODE:
	case FS_AT_PGWAL:
		return view_list(c, dir, lc.after, cb, ctx, e);
	case FS_WALFILE:
	case FS_AT_FILE:
		return err_set(e, ERR_USAGE, "'%s' is not a directory", fs_name(dir));
	}
	return 0;
}
