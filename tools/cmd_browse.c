/* cmd_browse.c: list, ls and cat: the backups as the mount shows them, read without FUSE. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/timefmt.h"
#include "catalog/window.h"
#include "common/util.h"
#include "fs/file.h"
#include "fs/path.h"
#include "tools.h"

struct list_out {
	struct ctx *x;
	struct json j;
	int n;
};

static int list_node_cb(void *p, const struct catalog_node_info *n)
{
	struct list_out *o = p;
	if (o->x->json) {
		struct json *j = &o->j;
		json_obj(j);
		json_key(j, "node");
		json_str(j, n->node);
		json_key(j, "source");
		json_str(j, n->source);
		json_key(j, "start_lsn");
		json_str(j, n->start_lsn[0] ? n->start_lsn : NULL);
		json_key(j, "stop_lsn");
		json_str(j, n->stop_lsn[0] ? n->stop_lsn : NULL);
		json_key(j, "timeline");
		json_int(j, n->timeline);
		json_key(j, "system_id");
		json_str(j, n->system_id[0] ? n->system_id : NULL);
		json_key(j, "pg_version");
		json_str(j, n->pg_version[0] ? n->pg_version : NULL);
		json_key(j, "citus_version");
		json_str(j, n->citus_version[0] ? n->citus_version : NULL);
		json_key(j, "damaged_pages");
		json_int(j, n->damaged_pages);
		json_key(j, "files");
		json_int(j, n->files);
		json_key(j, "bytes");
		json_int(j, n->bytes);
		json_obj_end(j);
	} else {
		char b[24];
		util_human_bytes((uint64_t)n->bytes, b, sizeof b);
		printf("    %-20s %s..%s tli %lld, PostgreSQL %s%s%s, %s%s\n", n->node, n->start_lsn, n->stop_lsn,
		       (long long)n->timeline, n->pg_version, n->citus_version[0] ? ", Citus " : "", n->citus_version, b,
		       n->damaged_pages ? ", DAMAGED PAGES" : "");
	}
	return 0;
}

static int list_cb(void *p, const struct catalog_snapshot *s)
{
	struct list_out *o = p;
	double secs = (double)(s->finished_us - s->started_us) / 1e6;
	if (o->x->json) {
		struct json *j = &o->j;
		json_obj(j);
		json_key(j, "cluster");
		json_str(j, s->cluster_name);
		json_key(j, "snapshot");
		json_str(j, s->name);
		json_key(j, "time_us");
		json_int(j, s->time_us);
		json_key(j, "kind");
		json_str(j, s->kind);
		json_key(j, "nodes");
		json_int(j, s->nodes);
		json_key(j, "files");
		json_int(j, s->files);
		json_key(j, "bytes");
		json_int(j, s->bytes);
		json_key(j, "new_bytes");
		json_int(j, s->new_bytes);
		json_key(j, "stored_bytes");
		json_int(j, s->stored_bytes);
		json_key(j, "duration_ms");
		json_int(j, (int64_t)(secs * 1000));
		json_key(j, "node_backups");
		json_arr(j);
		catalog_snapshot_node_info(o->x->cat, s->id, list_node_cb, o, NULL);
		json_arr_end(j);
		json_obj_end(j);
	} else {
		char b[24], nb[24], sb[24];
		if (!o->n)
			printf("%-16s %-28s %5s %8s %11s %11s %11s %9s\n", "CLUSTER", "SNAPSHOT", "NODES", "FILES", "SIZE", "NEW",
			       "STORED", "DURATION");
		util_human_bytes((uint64_t)s->bytes, b, sizeof b);
		util_human_bytes((uint64_t)s->new_bytes, nb, sizeof nb);
		util_human_bytes((uint64_t)s->stored_bytes, sb, sizeof sb);
		printf("%-16s %-28s %5lld %8lld %11s %11s %11s %8.1fs\n", s->cluster_name, s->name, (long long)s->nodes,
		       (long long)s->files, b, nb, sb, secs);
		if (!strcmp(s->kind, "online"))
			catalog_snapshot_node_info(o->x->cat, s->id, list_node_cb, o, NULL);
	}
	o->n++;
	return 0;
}

/* --- the restorable window (list CLUSTER) --- */

struct ivs {
	struct window_interval *v;
	size_t n, cap;
};

static int ivs_add(void *ctx, const struct window_interval *iv)
{
	struct ivs *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = *iv;
	return 0;
}

static void json_time(struct json *j, const char *key, int64_t us)
{
	char t[TIMEFMT_MAX], k[64];
	timefmt_print(us, 1, t);
	json_key(j, key);
	json_str(j, t);
	snprintf(k, sizeof k, "%s_us", key);
	json_key(j, k);
	json_int(j, us);
}

/* a window as JSON: earliest, latest, intervals and the gaps between them */
static void json_window(struct json *j, const struct ivs *w)
{
	json_obj(j);
	if (w->n) {
		json_time(j, "earliest", w->v[0].from_us);
		json_time(j, "latest", w->v[w->n - 1].to_us);
	} else {
		json_key(j, "earliest");
		json_str(j, NULL);
		json_key(j, "latest");
		json_str(j, NULL);
	}
	json_key(j, "intervals");
	json_arr(j);
	for (size_t i = 0; i < w->n; i++) {
		json_obj(j);
		json_time(j, "from", w->v[i].from_us);
		json_time(j, "to", w->v[i].to_us);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "gaps");
	json_arr(j);
	for (size_t i = 1; i < w->n; i++) {
		json_obj(j);
		json_time(j, "from", w->v[i - 1].to_us);
		json_time(j, "to", w->v[i].from_us);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void print_window(const char *what, const struct ivs *w, const char *extra)
{
	char a[TIMEFMT_MAX], b[TIMEFMT_MAX];
	if (!w->n) {
		printf("  %-22s none%s\n", what, extra);
		return;
	}
	timefmt_print(w->v[0].from_us, 1, a);
	timefmt_print(w->v[w->n - 1].to_us, 1, b);
	printf("  %-22s %s .. %s%s\n", what, a, b, extra);
	for (size_t i = 1; i < w->n; i++) {
		timefmt_print(w->v[i - 1].to_us, 1, a);
		timefmt_print(w->v[i].from_us, 1, b);
		printf("  %-22s   gap: nothing restorable after %s until %s\n", "", a, b);
	}
}

struct node_list {
	struct catalog_node_row *v;
	size_t n, cap;
};

static int node_row_cb(void *ctx, const struct catalog_node_row *r)
{
	struct node_list *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = *r;
	return 0;
}

struct rp_out {
	struct ctx *x;
	struct json *j;
	int n;
};

static int rp_cb(void *ctx, const struct catalog_wal_rp *rp)
{
	struct rp_out *o = ctx;
	char t[TIMEFMT_MAX], lsn[32];
	timefmt_print(rp->time_us, 1, t);
	snprintf(lsn, sizeof lsn, "%X/%X", (unsigned)(rp->lsn >> 32), (unsigned)rp->lsn);
	if (o->j) {
		json_obj(o->j);
		json_key(o->j, "name");
		json_str(o->j, rp->name);
		json_time(o->j, "time", rp->time_us);
		json_key(o->j, "node");
		json_str(o->j, rp->node_name);
		json_key(o->j, "lsn");
		json_str(o->j, lsn);
		json_key(o->j, "wal");
		json_str(o->j, rp->wal);
		json_obj_end(o->j);
	} else {
		if (!o->n)
			printf("restore points found in WAL:\n");
		printf("  %-28s %-28s %-16s %s\n", rp->name, t, rp->node_name, lsn);
	}
	o->n++;
	return 0;
}

/* the window part of `list CLUSTER`: per node and for the cluster, then the restore points */
static int list_window(struct ctx *x, int64_t cluster, const char *name, struct json *j, struct err *e)
{
	struct node_list nodes = {0};
	struct ivs cw = {0}, nw = {0};
	struct rp_out ro = {x, j, 0};
	int rc;
	if ((rc = catalog_cluster_nodes(x->cat, cluster, node_row_cb, &nodes, e)) < 0 ||
	    (rc = window_cluster(x->cat, cluster, ivs_add, &cw, e)) < 0)
		goto out;
	if (j) {
		json_key(j, "window");
		json_window(j, &cw);
		json_key(j, "nodes");
		json_arr(j);
	} else {
		printf("\nrestorable window of %s (UTC):\n", name);
		print_window("cluster", &cw, "");
	}
	for (size_t i = 0; i < nodes.n; i++) {
		nw.n = 0;
		if ((rc = window_node(x->cat, nodes.v[i].id, ivs_add, &nw, NULL, e)) < 0)
			goto out;
		if (j) {
			json_obj(j);
			json_key(j, "node");
			json_str(j, nodes.v[i].name);
			json_key(j, "backups");
			json_int(j, nodes.v[i].backups);
			json_key(j, "wal_files");
			json_int(j, nodes.v[i].wal_files);
			json_key(j, "wal_bytes");
			json_int(j, nodes.v[i].wal_bytes);
			json_key(j, "window");
			json_window(j, &nw);
			json_obj_end(j);
		} else {
			char what[160], extra[96], b[24];
			util_human_bytes((uint64_t)nodes.v[i].wal_bytes, b, sizeof b);
			snprintf(what, sizeof what, "node %s", nodes.v[i].name);
			snprintf(extra, sizeof extra, "   (%lld backups, WAL: %lld files, %s)", (long long)nodes.v[i].backups,
				 (long long)nodes.v[i].wal_files, b);
			print_window(what, &nw, extra);
		}
	}
	if (j) {
		json_arr_end(j);
		json_key(j, "restore_points");
		json_arr(j);
	}
	rc = catalog_wal_restore_points(x->cat, cluster, INT64_MIN, INT64_MAX, 0, rp_cb, &ro, e);
	if (j)
		json_arr_end(j);
	else if (!ro.n && rc == 0)
		printf("no restore points found in WAL\n");
out:
	free(nodes.v);
	free(cw.v);
	free(nw.v);
	return rc;
}

int cmd_list(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct list_out o;
	int64_t cluster = 0;
	int rc;
	err_clear(&e);
	if (argc > 2)
		return usage_error("usage: pgtimefs list [CLUSTER]");
	if ((rc = setup_catalog(x, 0, &e)) < 0)
		return report(&e);
	if (argc == 2 && (rc = catalog_cluster_find(x->cat, argv[1], &cluster, &e)) < 0)
		return report(&e);
	memset(&o, 0, sizeof o);
	o.x = x;
	if (x->json) {
		json_init(&o.j, stdout);
		if (cluster) {
			/* one cluster: an object with its snapshots, window and restore points */
			json_obj(&o.j);
			json_key(&o.j, "cluster");
			json_str(&o.j, argv[1]);
			json_key(&o.j, "snapshots");
		}
		json_arr(&o.j);
	}
	rc = catalog_snapshots(x->cat, cluster, list_cb, &o, &e);
	if (x->json)
		json_arr_end(&o.j);
	else if (!o.n && rc == 0)
		printf("no snapshots yet\n");
	if (rc == 0 && cluster)
		rc = list_window(x, cluster, argv[1], x->json ? &o.j : NULL, &e);
	if (x->json) {
		if (cluster)
			json_obj_end(&o.j);
		json_end(&o.j);
	}
	if (!x->json && rc == 0)
		config_list_clusters(x, argc == 2 ? argv[1] : NULL);
	return rc < 0 ? report(&e) : 0;
}

static const char *kind_name(mode_t m)
{
	return S_ISDIR(m) ? "dir" : S_ISREG(m) ? "file" : S_ISLNK(m) ? "symlink" : S_ISFIFO(m) ? "fifo" : S_ISSOCK(m) ? "socket" : S_ISCHR(m) ? "chardev" : S_ISBLK(m) ? "blockdev" : "other";
}

static void mode_string(mode_t m, char out[11])
{
	const char *rwx = "rwxrwxrwx";
	out[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's' : S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : '-';
	for (int i = 0; i < 9; i++)
		out[1 + i] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = (m & S_IXUSR) ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = (m & S_IXGRP) ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = (m & S_IXOTH) ? 't' : 'T';
	out[10] = '\0';
}

struct ls_out {
	struct ctx *x;
	struct json j;
};

/* a name on a line of its own: control characters and backslashes as \ooo (as ls -b), so a
 * newline cannot split the row nor an escape sequence reach the terminal */
static void put_name(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			printf("\\%03o", *p);
		else
			putchar(*p);
}

static int ls_cb(void *p, const struct fs_loc *l)
{
	struct ls_out *o = p;
	struct stat st;
	const char *target = fs_link_target(l);
	char when[TIMEFMT_MAX];
	fs_stat(l, &st);
	timefmt_print((int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000, 1, when);
	if (o->x->json) {
		struct json *j = &o->j;
		json_obj(j);
		json_key(j, "name");
		json_str(j, fs_name(l));
		json_key(j, "type");
		json_str(j, kind_name(st.st_mode));
		json_key(j, "mode");
		json_int(j, st.st_mode & 07777);
		json_key(j, "uid");
		json_int(j, st.st_uid);
		json_key(j, "gid");
		json_int(j, st.st_gid);
		json_key(j, "size");
		json_int(j, (int64_t)st.st_size);
		json_key(j, "mtime");
		json_str(j, when);
		json_key(j, "mtime_ns");
		json_int(j, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
		if (target) {
			json_key(j, "target");
			json_str(j, target);
		}
		json_obj_end(j);
	} else {
		char m[11];
		mode_string(st.st_mode, m);
		printf("%s %6u %6u %12lld %s ", m, (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size, when);
		put_name(fs_name(l));
		if (target) {
			fputs(" -> ", stdout);
			put_name(target);
		}
		putchar('\n');
	}
	return 0;
}

int cmd_ls(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct fs_loc l;
	struct ls_out o;
	int rc;
	err_clear(&e);
	if (argc > 2)
		return usage_error("usage: pgtimefs ls [PATH]");
	if ((rc = setup_catalog(x, 0, &e)) < 0 || (rc = fs_resolve(x->cat, argc == 2 ? argv[1] : "", &l, &e)) < 0)
		return report(&e);
	memset(&o, 0, sizeof o);
	o.x = x;
	if (x->json) {
		json_init(&o.j, stdout);
		json_arr(&o.j);
	}
	if (!fs_is_dir(&l) && l.kind != FS_LATEST)
		ls_cb(&o, &l); /* like ls: a file lists itself (latest is followed, as ls does) */
	else if ((rc = fs_list(x->cat, &l, "", ls_cb, &o, &e)) < 0)
		return report(&e);
	if (x->json) {
		json_arr_end(&o.j);
		json_end(&o.j);
	}
	if (l.kind == FS_ATDIR && !x->quiet) /* listed empty: its directories are made when named */
		fprintf(stderr, "pgtimefs: %s/at/ has a directory for any time in the restorable window, made when it is "
				"named: 'pgtimefs ls %s/at/TIME' (the window: 'pgtimefs list %s')\n",
			l.cluster_name, l.cluster_name, l.cluster_name);
	return 0;
}

int cmd_cat(struct ctx *x, int argc, char **argv)
{
	struct err e;
	fs_reader *rd;
	int rc = 0;
	err_clear(&e);
	if (argc < 2)
		return usage_error("usage: pgtimefs cat PATH...");
	if ((rc = setup_catalog(x, 0, &e)) < 0)
		return report(&e);
	rd = fs_reader_new(x->repo, x->cat, NULL);
	for (int i = 1; i < argc && rc == 0; i++) {
		struct fs_loc l;
		int64_t content;
		uint64_t size;
		if ((rc = fs_resolve(x->cat, argv[i], &l, &e)) < 0)
			break;
		if (!fs_is_file(&l, &content, &size)) {
			rc = err_set(&e, ERR_USAGE, "%s is not a regular file", argv[i]);
			break;
		}
		if (l.kind == FS_AT_FILE) {
			uint8_t *buf;
			size_t len;
			if ((rc = fs_loc_synth(rd, &l, &buf, &len, &e)) == 0) {
				if (util_write_all(STDOUT_FILENO, buf, len) < 0)
					rc = err_sys(&e, ERR_IO, "writing to stdout");
				free(buf);
			}
		} else if (size) {
			rc = fs_copy_to_fd(rd, content, size, STDOUT_FILENO, &e);
		}
		if (rc < 0 && e.sys_errno == EPIPE) { /* the reader has read enough (`| head`): done */
			rc = 0;
			break;
		}
		if (rc < 0)
			err_prefix(&e, "%s", argv[i]);
	}
	fs_reader_free(rd);
	return rc < 0 ? report(&e) : 0;
}
