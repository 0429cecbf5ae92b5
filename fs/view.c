#include "view.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/json.h"
#include "common/timefmt.h"
#include "common/util.h"

/* the process-wide table: views[1..nviews]; a slot once set never changes */
static const struct fs_view *views[FS_VIEW_MAX + 1];
/* views made of a node backup deleted since: looked up no more (a new view is made for their
 * spelling); they keep their numbers for what is open in them */
static unsigned char stale[FS_VIEW_MAX + 1];
static int nviews;
static pthread_mutex_t views_mu = PTHREAD_MUTEX_INITIALIZER;

const struct fs_view *fs_view_by_id(int id)
{
	const struct fs_view *v = NULL;
	if (id < 1 || id > FS_VIEW_MAX)
		return NULL;
	pthread_mutex_lock(&views_mu);
	if (id <= nviews)
		v = views[id];
	pthread_mutex_unlock(&views_mu);
	return v;
}

int fs_view_node_index(const struct fs_view *v, int64_t node)
{
	for (int i = 0; i < v->nnodes; i++)
		if (v->nodes[i].node == node)
			return i;
	return -1;
}

/* --- which WAL files a view node shows --- */

static int hex_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

static int64_t hex8(const char *s)
{
	char b[9];
	memcpy(b, s, 8);
	b[8] = 0;
	return (int64_t)strtoll(b, NULL, 16);
}

/* a segment name (24 hex digits, an optional .partial after them) -> timeline and segno */
static int seg_of_name(const char *name, uint32_t seg_size, int64_t *tli, int64_t *segno)
{
	size_t n = strlen(name);
	if (!seg_size || n < 24 || !hex_upper(name, 24) || (n != 24 && strcmp(name + 24, ".partial")))
		return 0;
	*tli = hex8(name);
	*segno = hex8(name + 8) * (int64_t)(0x100000000ull / seg_size) + hex8(name + 16);
	return 1;
}

static int history_tli(const char *name, int64_t *tli)
{
	if (strlen(name) != 16 || !hex_upper(name, 8) || strcmp(name + 8, ".history"))
		return 0;
	*tli = hex8(name);
	return 1;
}

/*
 * Every history file up to the run's last timeline is shown, not only those of the timelines
 * the run is on: PostgreSQL looks for newer timelines one number at a time, so a run that goes
 * from timeline 1 to 3 (two promotions in one segment) needs 00000002.history too, or replay
 * stays on timeline 1 and ends early. One above the run would send it to a later timeline.
 */
static int run_shows_tli(const struct window_run *r, int64_t tli)
{
	int64_t last = r->ntl ? r->tl[r->ntl - 1] : r->nb.timeline;
	return tli <= last;
}

int fs_view_wal_shown(const struct fs_view_node *vn, const struct catalog_wal *w, char shown[64])
{
	const struct window_run *r = &vn->run;
	int64_t tli, segno;
	if (r->last_segno < 0)
		return 0;
	if (history_tli(w->name, &tli)) {
		if (tli <= 1 || !run_shows_tli(r, tli))
			return 0;
		snprintf(shown, 64, "%s", w->name);
		return 1;
	}
	if (!seg_of_name(w->name, r->seg_size, &tli, &segno) || w->size != r->seg_size)
		return 0;
	if (segno < r->start_segno || segno > r->last_segno || tli != window_run_tli(r, segno))
		return 0;
	if (segno == r->last_segno && vn->last_partial.id && w->id) {
		if (w->id != vn->last_partial.id)
			return 0; /* a later version of the partial, or the complete segment: after T */
	} else if (segno == r->last_segno && r->last_partial != (strlen(w->name) != 24)) {
		return 0; /* the run ends in the other one */
	}
	if (segno != r->last_segno && strlen(w->name) != 24)
		return 0;
	snprintf(shown, 64, "%.24s", w->name);
	return 1;
}

int fs_view_wal_name(const struct fs_view_node *vn, const char *shown, char name[64])
{
	const struct window_run *r = &vn->run;
	int64_t tli, segno;
	if (r->last_segno < 0)
		return 0;
	if (history_tli(shown, &tli)) {
		if (tli <= 1 || !run_shows_tli(r, tli))
			return 0;
		snprintf(name, 64, "%s", shown);
		return 1;
	}
	if (strlen(shown) != 24 || !seg_of_name(shown, r->seg_size, &tli, &segno))
		return 0;
	if (segno < r->start_segno || segno > r->last_segno || tli != window_run_tli(r, segno))
		return 0;
	snprintf(name, 64, "%s", segno == r->last_segno ? r->last_name : shown);
	return 1;
}

/* --- making a view --- */

/* a lookup's result as 1 (found), 0 (absent: e cleared) or the error */
static int present(int rc, struct err *e)
{
	if (rc == ERR_NOTFOUND)
		err_clear(e);
	return rc == 0 ? 1 : rc == ERR_NOTFOUND ? 0 : rc;
}

/* PostgreSQL's timestamptz input: 2026-11-25 03:00:00.123456+00 */
static void pg_time(int64_t us, char out[48])
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, 48, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

static void view_entry(const struct catalog_entry *en, struct fs_view_entry *out)
{
	out->id = en->id;
	out->content = en->content;
	out->size = en->size;
	out->mode = en->mode;
	out->uid = en->uid;
	out->gid = en->gid;
	out->mtime_ns = en->mtime_ns;
}

struct node_ids {
	struct catalog_node_row *v;
	int n, cap;
};

static int node_ids_cb(void *ctx, const struct catalog_node_row *r)
{
	struct node_ids *l = ctx;
	if (!r->backups)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
	}
	l->v[l->n++] = *r;
	return 0;
}

/* the restore points found between the oldest snapshot of the view and T, newest first */
#define RP_MAX 4096
struct rps {
	struct catalog_wal_rp *v;
	int n;
};

static int rps_cb(void *ctx, const struct catalog_wal_rp *rp)
{
	struct rps *l = ctx;
	if (l->n == RP_MAX)
		return 1;
	l->v[l->n++] = *rp;
	return 0;
}

/*
 * A restore point row usable by node vn: its record in the WAL shown, after the end of the
 * node backup (where recovery is consistent; without a stop LSN: at or after the snapshot's
 * time). The snapshot's own restore point qualifies, though its rp_time is a little earlier
 * than the time the snapshot took from the server just after.
 */
static int rp_usable(const struct fs_view_node *vn, const struct catalog_wal_rp *rp)
{
	struct catalog_wal w;
	char shown[64];
	int64_t tli, stop = window_parse_lsn(vn->run.nb.stop_lsn);
	if (rp->node != vn->node || (stop >= 0 ? (int64_t)rp->lsn < stop : rp->time_us < vn->run.nb.time_us))
		return 0;
	memset(&w, 0, sizeof w);
	snprintf(w.name, sizeof w.name, "%s", rp->wal);
	w.size = vn->run.seg_size;
	if (!seg_of_name(w.name, vn->run.seg_size, &tli, &w.segno))
		return 0;
	w.timeline = tli;
	return fs_view_wal_shown(vn, &w, shown);
}

/*
 * The newest restore point every node of the view can stop at: *idx in l, time in *t. A name
 * that a node's replay meets twice is passed over: recovery_target_name stops at the first
 * record of that name, which would not be the point chosen here.
 */
static int pick_restore_point(const struct fs_view *v, const struct rps *l, int64_t *t)
{
	for (int i = 0; i < l->n; i++) {
		int dup = 0, all = 1;
		int64_t newest = 0;
		for (int j = 0; j < i && !dup; j++)
			dup = !strcmp(l->v[j].name, l->v[i].name);
		if (dup)
			continue;
		for (int k = 0; k < v->nnodes && all; k++) {
			int found = 0;
			for (int j = 0; j < l->n && found < 2; j++)
				if (!strcmp(l->v[j].name, l->v[i].name) && rp_usable(&v->nodes[k], &l->v[j])) {
					found++;
					if (l->v[j].time_us > newest)
						newest = l->v[j].time_us;
				}
			all = found == 1;
		}
		if (all) {
			*t = newest;
			return i;
		}
	}
	return -1;
}

static void json_time(struct json *j, const char *key, int64_t us)
{
	char t[TIMEFMT_MAX], k[64];
	timefmt_print(us, us % 1000000 != 0, t);
	json_key(j, key);
	json_str(j, t);
	snprintf(k, sizeof k, "%s_us", key);
	json_key(j, k);
	json_int(j, us);
}

static void make_json(struct fs_view *v, const char *cluster_name, const struct catalog_wal_rp *rp, int64_t rp_us)
{
	struct json j;
	FILE *f;
	int any_time = 0, newest = 0;
	size_t len = 0;
	for (int i = 0; i < v->nnodes; i++) {
		any_time |= v->nodes[i].target_time;
		if (v->nodes[i].run.nb.time_us > v->nodes[newest].run.nb.time_us)
			newest = i;
	}
	f = open_memstream(&v->json, &len);
	if (!f)
		abort();
	json_init(&j, f);
	json_obj(&j);
	json_key(&j, "cluster");
	json_str(&j, cluster_name);
	json_time(&j, "time", v->t_us);
	json_key(&j, "snapshot");
	json_str(&j, v->nnodes ? v->nodes[newest].run.nb.snapshot_name : NULL);
	json_key(&j, "target");
	json_str(&j, any_time ? "time" : "end");
	json_key(&j, "restore_point");
	if (rp) {
		json_obj(&j);
		json_key(&j, "name");
		json_str(&j, rp->name);
		json_time(&j, "time", rp_us);
		json_obj_end(&j);
	} else {
		json_str(&j, NULL);
	}
	json_key(&j, "nodes");
	json_arr(&j);
	for (int i = 0; i < v->nnodes; i++) {
		const struct fs_view_node *vn = &v->nodes[i];
		const struct window_run *r = &vn->run;
		json_obj(&j);
		json_key(&j, "name");
		json_str(&j, vn->name);
		json_key(&j, "pg_version");
		json_str(&j, r->nb.pg_version[0] ? r->nb.pg_version : NULL);
		json_key(&j, "citus_version");
		json_str(&j, r->nb.citus_version[0] ? r->nb.citus_version : NULL);
		json_key(&j, "system_id");
		json_str(&j, r->nb.system_id[0] ? r->nb.system_id : NULL);
		json_key(&j, "timeline");
		json_int(&j, r->last_segno >= 0 ? window_run_tli(r, r->last_segno) : r->nb.timeline);
		json_key(&j, "snapshot");
		json_str(&j, r->nb.snapshot_name);
		json_key(&j, "target");
		json_str(&j, vn->target_time ? "time" : "end");
		json_key(&j, "wal_segments");
		json_int(&j, r->last_segno >= 0 ? r->last_segno - r->start_segno + 1 : 0);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end(&j);
	fclose(f);
	v->json_len = len;
}

/* the recovery block of a node: recovery_target_time only when the WAL shown has a commit after T */
#define RESTORE_COMMAND "'false'"

/* Tablespaces are directories in pg_tblspc/ (docs/design-notes.md): PostgreSQL 15 PANICs on
 * them when recovery reaches consistency (CheckTablespaceDirectory) unless this is on. */
#define IN_PLACE "allow_in_place_tablespaces = 'on'\n"

static void make_block(struct fs_view *v, struct fs_view_node *vn)
{
	char pt[48];
	int n;
	pg_time(v->t_us, pt);
	if (vn->target_time)
		n = snprintf(vn->block, sizeof vn->block,
			     "# pgtimefs recovery (at/%s)\nrecovery_target_time = '%s'\nrecovery_target_action = 'promote'\n"
			     "restore_command = " RESTORE_COMMAND "\n%s",
			     v->name, pt, vn->tablespaces ? IN_PLACE : "");
	else
		n = snprintf(vn->block, sizeof vn->block,
			     "# pgtimefs recovery (at/%s)\nrecovery_target_action = 'promote'\nrestore_command = " RESTORE_COMMAND
			     "\n%s",
			     v->name, vn->tablespaces ? IN_PLACE : "");
	vn->block_len = (size_t)n;
}

static void view_free(struct fs_view *v)
{
	if (!v)
		return;
	free(v->nodes);
	free(v->json);
	free(v);
}

static int view_make(catalog *c, int64_t cluster, const char *cluster_name, int64_t t_us, struct fs_view **out,
		     struct err *e)
{
	struct node_ids ids = {0};
	struct rps rps = {0};
	struct fs_view *v = xcalloc(1, sizeof *v);
	int64_t oldest = INT64_MAX, rp_us = 0;
	int rc, pick;
	*out = NULL;
	v->cluster = cluster;
	snprintf(v->cluster_name, sizeof v->cluster_name, "%s", cluster_name);
	v->t_us = t_us;
	timefmt_print(t_us, t_us % 1000000 != 0, v->name);
	if ((rc = catalog_cluster_nodes(c, cluster, node_ids_cb, &ids, e)) < 0)
		goto out;
	{
		/* only the nodes in the cluster at T (the newest online snapshot's): one removed since
		 * is not asked to reach T, one added later is not in the view */
		struct window_members *wm;
		int64_t *members;
		size_t nm;
		int k = 0;
		if ((rc = window_members_load(c, cluster, &wm, e)) < 0)
			goto out;
		window_members_at(wm, t_us, &members, &nm);
		window_members_free(wm);
		for (int i = 0; nm && i < ids.n; i++) {
			int in = 0;
			for (size_t j = 0; j < nm && !in; j++)
				in = members[j] == ids.v[i].id;
			if (in)
				ids.v[k++] = ids.v[i];
		}
		if (nm)
			ids.n = k;
		free(members);
	}
	if (!ids.n) {
		rc = err_set(e, ERR_NOTFOUND, "cluster %s has no backup", cluster_name);
		goto out;
	}
	v->nodes = xcalloc((size_t)ids.n, sizeof *v->nodes);
	v->nnodes = ids.n;
	for (int i = 0; i < ids.n; i++) {
		struct fs_view_node *vn = &v->nodes[i];
		struct catalog_entry *en = xmalloc(sizeof *en);
		vn->node = ids.v[i].id;
		snprintf(vn->name, sizeof vn->name, "%s", ids.v[i].name);
		rc = window_node_at(c, vn->node, t_us, &vn->run, e);
		if (rc == ERR_NOTFOUND)
			err_set(e, ERR_NOTFOUND, "%s is outside the restorable window of %s (node %s)", v->name, cluster_name,
				vn->name);
		/* the very row the run ended in (by id: a newer partial may have replaced it since) */
		if (rc == 0 && vn->run.last_partial &&
		    (rc = catalog_wal_get(c, vn->run.last_id, &vn->last_partial, e)) == ERR_NOTFOUND)
			err_prefix(e, "the WAL of node %s moved on while view %s was made: look again", vn->name, v->name);
		if (rc == 0 && (rc = catalog_entry_get(c, vn->run.nb.root, en, e)) == 0)
			view_entry(en, &vn->root);
		/* each of these may be absent; any other failure (a busy or damaged catalog) fails
		 * the view rather than leave it cached with a part missing */
		if (rc == 0 && (rc = present(catalog_entry_lookup(c, vn->run.nb.nb, vn->root.id, "pg_wal", en, e), e)) > 0) {
			rc = 0;
			if (S_ISDIR(en->mode))
				view_entry(en, &vn->pgwal);
			else if (S_ISLNK(en->mode))
				rc = err_set(e, ERR_NOTFOUND,
					     "node %s's snapshot has pg_wal as a symlink to the original server's WAL "
					     "directory (taken by an older pgtimefs): it cannot be viewed or restored at %s",
					     vn->name, v->name);
		}
		if (rc == 0 &&
		    (rc = present(catalog_entry_lookup(c, vn->run.nb.nb, vn->root.id, "postgresql.auto.conf", en, e), e)) > 0) {
			rc = 0;
			if (S_ISREG(en->mode))
				view_entry(en, &vn->conf);
		}
		if (rc == 0 && (rc = present(catalog_entry_lookup(c, vn->run.nb.nb, vn->root.id, "pg_tblspc", en, e), e)) > 0) {
			rc = 0;
			if (S_ISDIR(en->mode)) {
				size_t got = 0;
				rc = catalog_dir_page(c, vn->run.nb.nb, en->id, "", en, 1, &got, e);
				vn->tablespaces = rc == 0 && got > 0;
			}
		}
		free(en);
		if (rc < 0)
			goto out;
		vn->target_time = vn->run.reaches;
		make_block(v, vn);
		if (vn->run.nb.time_us < oldest)
			oldest = vn->run.nb.time_us;
	}
	rps.v = xmalloc(RP_MAX * sizeof *rps.v);
	/* from a minute before the oldest snapshot: rp_usable decides by LSN */
	if ((rc = catalog_wal_restore_points(c, cluster, oldest - 60000000, t_us, 1, rps_cb, &rps, e)) < 0)
		goto out;
	pick = pick_restore_point(v, &rps, &rp_us);
	make_json(v, cluster_name, pick >= 0 ? &rps.v[pick] : NULL, rp_us);
	*out = v;
	v = NULL;
	rc = 0;
out:
	free(ids.v);
	free(rps.v);
	view_free(v);
	return rc;
}

/* the newest view of cluster at t_us under spelling that is not stale, or NULL; under views_mu */
static const struct fs_view *view_find(int64_t cluster, int64_t t_us, const char *spelling)
{
	for (int i = nviews; i >= 1; i--)
		if (!stale[i] && views[i]->cluster == cluster && views[i]->t_us == t_us &&
		    !strcmp(views[i]->spelling, spelling))
			return views[i];
	return NULL;
}

/* 1 when every node backup v is made of is still in the catalog (a snapshot deleted since takes
 * its entries with it); read outside views_mu */
static int view_whole(catalog *c, const struct fs_view *v)
{
	struct catalog_entry *en = xmalloc(sizeof *en);
	int whole = 1;
	for (int i = 0; i < v->nnodes && whole; i++)
		whole = catalog_entry_get(c, v->nodes[i].root.id, en, NULL) == 0;
	free(en);
	return whole;
}

int fs_view_get(catalog *c, int64_t cluster, const char *cluster_name, int64_t t_us, const char *spelling,
		const struct fs_view **out, struct err *e)
{
	const struct fs_view *old;
	struct fs_view *v;
	int rc;
	pthread_mutex_lock(&views_mu);
	old = view_find(cluster, t_us, spelling);
	pthread_mutex_unlock(&views_mu);
	if (old && view_whole(c, old)) {
		*out = old;
		return 0;
	}
	if (old) {
		/* made of a snapshot deleted since: the time may still be restorable from another */
		pthread_mutex_lock(&views_mu);
		stale[old->id] = 1;
		pthread_mutex_unlock(&views_mu);
	}
	/* made outside the lock (it reads the catalog); a thread that made the same view first wins */
	if ((rc = view_make(c, cluster, cluster_name, t_us, &v, e)) < 0)
		return rc;
	pthread_mutex_lock(&views_mu);
	{
		const struct fs_view *first = view_find(cluster, t_us, spelling);
		if (first) {
			*out = first;
			pthread_mutex_unlock(&views_mu);
			view_free(v);
			return 0;
		}
	}
	if (nviews == FS_VIEW_MAX) {
		pthread_mutex_unlock(&views_mu);
		view_free(v);
		rc = err_set(e, ERR_NOSPC, "this mount has made %d point-in-time views already", FS_VIEW_MAX);
		err_hint(e, "remount to start a new table of views");
		return rc;
	}
	v->id = ++nviews;
	snprintf(v->spelling, sizeof v->spelling, "%s", spelling);
	views[v->id] = v;
	*out = v;
	pthread_mutex_unlock(&views_mu);
	return 0;
}

/* --- synthesized files --- */

uint64_t fs_view_synth_size(const struct fs_view *v, const struct fs_view_node *vn, enum fs_synth s)
{
	switch (s) {
	case FS_SYNTH_JSON:
		return v->json_len;
	case FS_SYNTH_CONF:
		return vn->conf.size + vn->block_len;
	case FS_SYNTH_SIGNAL:
		return 0;
	}
	return 0;
}

int fs_view_synth(fs_reader *rd, const struct fs_view *v, const struct fs_view_node *vn, enum fs_synth s,
		  uint8_t **buf, size_t *len, struct err *e)
{
	size_t n = (size_t)fs_view_synth_size(v, vn, s);
	uint8_t *b = xmalloc(n + 1);
	*buf = NULL;
	*len = 0;
	if (s == FS_SYNTH_JSON) {
		memcpy(b, v->json, n);
	} else if (s == FS_SYNTH_CONF) {
		size_t got = 0;
		while (got < vn->conf.size) {
			ssize_t r = fs_read(rd, vn->conf.content, vn->conf.size, got, b + got, vn->conf.size - got, 0, e);
			if (r <= 0) {
				free(b);
				return r < 0 ? (int)r : err_set(e, ERR_CORRUPT, "postgresql.auto.conf is short");
			}
			got += (size_t)r;
		}
		memcpy(b + vn->conf.size, vn->block, vn->block_len);
	}
	*buf = b;
	*len = n;
	return 0;
}
