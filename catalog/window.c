#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int64_t window_parse_lsn(const char *s)
{
	unsigned long long hi, lo;
	char tail;
	if (!s || sscanf(s, "%llx/%llx%c", &hi, &lo, &tail) != 2 || hi > 0xffffffffull || lo > 0xffffffffull)
		return -1;
	return (int64_t)(hi << 32 | lo);
}

int64_t window_run_tli(const struct window_run *r, int64_t segno)
{
	int64_t tli = r->nb.timeline;
	for (int i = 0; i < r->ntl; i++)
		if (segno >= r->tl_from[i])
			tli = r->tl[i];
	return tli;
}

/* the segment size of a node's archive: the size of its first segment row (0: none) */
static int first_seg_cb(void *ctx, const struct catalog_wal *w)
{
	*(uint64_t *)ctx = w->size;
	return 1;
}

struct walk {
	catalog *c;
	struct window_run *r;
	int64_t target_us;
	int64_t expect; /* the segment number the run needs next */
	int64_t tli;	/* the timeline the run is on */
	int have;	/* best holds a candidate for segment expect */
	struct catalog_wal best;
	int64_t min_lsn; /* the backup's stop LSN (else its start): a fork before it is refused */
	int64_t hist_tli; /* last timeline whose .history was looked up, and the answer */
	int hist_ok;
	int64_t anc_tli, anc_from; /* last timeline whose ancestry was looked up, from which one */
	struct catalog_tli_line anc;
	int stopped;
	struct err *e;
	int rc;
};

static int history_archived(struct walk *k, int64_t tli)
{
	char name[32];
	struct catalog_wal w;
	if (k->hist_tli != tli) {
		snprintf(name, sizeof name, "%08llX.history", (unsigned long long)tli);
		k->hist_tli = tli;
		k->hist_ok = catalog_wal_find(k->c, k->r->nb.node, name, &w, NULL) == 0;
	}
	return k->hist_ok;
}

/*
 * Whether the run, on timeline k->tli up to segment expect, may go on on timeline tli there:
 * tli's history says it left k->tli (or a timeline between them) at or after the start of
 * segment expect and at or after the backup's stop LSN (PostgreSQL refuses a timeline that
 * forked off before the backup's checkpoint, or before its end: "requested timeline is not a
 * child of this server's history", "WAL ends before end of online backup"), and tli begins
 * in segment expect or before (PostgreSQL reads a segment from the newest timeline that has
 * begun by then). A timeline whose ancestry is not recorded (a history archived before schema
 * 9, not yet read back) is followed as before: as a descendant. One PostgreSQL cannot read is
 * recorded as CATALOG_TLI_UNREADABLE and followed from nowhere.
 * 1 yes, 0 no, < 0 an error (k->rc).
 */
static int descends(struct walk *k, int64_t tli)
{
	int64_t seg = k->r->seg_size, lo = k->expect * seg;
	if (k->anc_tli != tli || k->anc_from != k->tli) {
		if ((k->rc = catalog_wal_history_of(k->c, k->r->nb.node, tli, k->tli, &k->anc, k->e)) < 0)
			return k->rc;
		k->anc_tli = tli;
		k->anc_from = k->tli;
	}
	if (!k->anc.lines)
		return 1;
	if (lo < k->min_lsn)
		lo = k->min_lsn;
	return k->anc.end_lsn >= lo && k->anc.begin_lsn < (k->expect + 1) * seg;
}

/* the group of segment `expect` is complete: take its best row into the run (0) or end it (1) */
static int take(struct walk *k)
{
	struct window_run *r = k->r;
	if (!k->have)
		return 1;
	k->have = 0;
	if (k->best.timeline != k->tli) {
		if (r->ntl == WINDOW_TLI_MAX)
			return 1;
		r->tl[r->ntl] = k->best.timeline;
		r->tl_from[r->ntl++] = k->best.segno;
		k->tli = k->best.timeline;
	}
	r->last_segno = k->best.segno;
	snprintf(r->last_name, sizeof r->last_name, "%s", k->best.name);
	r->last_id = k->best.id;
	r->last_partial = strlen(k->best.name) != 24;
	if (k->best.last_commit_us > r->last_commit_us)
		r->last_commit_us = k->best.last_commit_us;
	k->expect++;
	if (k->best.last_commit_us > k->target_us) {
		r->reaches = 1;
		return 1;
	}
	return r->last_partial; /* a .partial is the last segment there is */
}

static int walk_cb(void *ctx, const struct catalog_wal *w)
{
	struct walk *k = ctx;
	int full = strlen(w->name) == 24;
	if (w->segno != k->expect) {
		/* the rows of segment expect are all seen: take the best one and go on with w */
		if (take(k) || w->segno != k->expect)
			return (k->stopped = 1);
	}
	if (w->size != k->r->seg_size || w->timeline < k->tli)
		return 0;
	if (w->timeline > k->tli) {
		int d;
		if (!history_archived(k, w->timeline))
			return 0;
		if ((d = descends(k, w->timeline)) < 0)
			return (k->stopped = 1);
		if (!d)
			return 0;
	}
	/* rows come by timeline, then name ("X" before "X.partial"): a higher timeline wins, and
	 * the complete segment wins over a .partial of the same timeline */
	if (!k->have || w->timeline > k->best.timeline || (w->timeline == k->best.timeline && full)) {
		k->best = *w;
		k->have = 1;
	}
	return 0;
}

int window_run(catalog *c, const struct catalog_nb_pos *nb, int64_t target_us, struct window_run *out, struct err *e)
{
	struct walk k;
	uint64_t seg_size = 0;
	int64_t lsn = window_parse_lsn(nb->start_lsn);
	int rc;
	memset(out, 0, sizeof *out);
	out->nb = *nb;
	out->last_segno = -1;
	out->end_us = nb->time_us;
	out->start_segno = -1;
	if (lsn < 0 || nb->timeline <= 0)
		return 0; /* an offline snapshot: no position to replay WAL from */
	if ((rc = catalog_wal_segments(c, nb->node, 0, first_seg_cb, &seg_size, e)) < 0)
		return rc;
	if (seg_size < (1u << 20) || seg_size > (1u << 30) || (seg_size & (seg_size - 1)))
		return 0;
	out->seg_size = (uint32_t)seg_size;
	out->start_segno = lsn / (int64_t)seg_size;
	memset(&k, 0, sizeof k);
	k.c = c;
	k.r = out;
	k.target_us = target_us;
	k.expect = out->start_segno;
	k.tli = nb->timeline;
	k.min_lsn = window_parse_lsn(nb->stop_lsn);
	if (k.min_lsn < lsn)
		k.min_lsn = lsn;
	k.e = e;
	if ((rc = catalog_wal_segments(c, nb->node, out->start_segno, walk_cb, &k, e)) < 0)
		return rc;
	if (k.rc < 0)
		return k.rc;
	if (!k.stopped)
		take(&k); /* the last group */
	if (out->last_commit_us > out->end_us)
		out->end_us = out->last_commit_us;
	return 0;
}

/* --- a node's window --- */

struct node_walk {
	catalog *c;
	int (*cb)(void *ctx, const struct window_interval *iv);
	void *ctx;
	struct window_run prev; /* the last run walked */
	int have_prev, have_iv, runs, stopped;
	struct window_interval iv; /* the interval being merged */
	struct err *e;
	int rc;
};

static int node_nb_cb(void *ctx, const struct catalog_nb_pos *p)
{
	struct node_walk *w = ctx;
	struct window_run r;
	int64_t lsn = window_parse_lsn(p->start_lsn), end;
	w->runs++;
	if (w->have_prev && w->prev.seg_size && lsn >= 0 && w->prev.last_segno >= 0 &&
	    lsn / (int64_t)w->prev.seg_size >= w->prev.start_segno && lsn / (int64_t)w->prev.seg_size <= w->prev.last_segno &&
	    window_run_tli(&w->prev, lsn / (int64_t)w->prev.seg_size) == p->timeline &&
	    window_run_tli(&w->prev, w->prev.last_segno) == p->timeline) {
		/* it starts inside the previous run, which switches timeline no more: it ends where
		 * that one ends (past a switch it may not follow: one that forked off before its stop) */
		end = w->prev.last_commit_us > p->time_us ? w->prev.last_commit_us : p->time_us;
	} else {
		if ((w->rc = window_run(w->c, p, INT64_MAX, &r, w->e)) < 0)
			return 1;
		w->prev = r;
		w->have_prev = 1;
		end = r.end_us;
	}
	if (w->have_iv && p->time_us <= w->iv.to_us) {
		if (end > w->iv.to_us)
			w->iv.to_us = end;
		return 0;
	}
	if (w->have_iv && w->cb(w->ctx, &w->iv))
		return (w->stopped = 1);
	w->iv.from_us = p->time_us;
	w->iv.to_us = end;
	w->have_iv = 1;
	return 0;
}

int window_node(catalog *c, int64_t node, int (*cb)(void *ctx, const struct window_interval *iv), void *ctx,
		int *runs, struct err *e)
{
	struct node_walk w;
	int rc;
	memset(&w, 0, sizeof w);
	w.c = c;
	w.cb = cb;
	w.ctx = ctx;
	w.e = e;
	rc = catalog_node_backups_of(c, node, INT64_MAX, 0, node_nb_cb, &w, e);
	if (w.rc < 0)
		rc = w.rc;
	if (rc < 0)
		return rc;
	if (w.have_iv && !w.stopped)
		cb(ctx, &w.iv);
	if (runs)
		*runs = w.runs;
	return 0;
}

/* --- a cluster's window --- */

struct ivlist {
	struct window_interval *v;
	size_t n, cap;
};

static int ivlist_add(void *ctx, const struct window_interval *iv)
{
	struct ivlist *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = *iv;
	return 0;
}

struct idlist {
	int64_t *v;
	size_t n, cap;
};

static int node_id_cb(void *ctx, const struct catalog_node_row *n)
{
	struct idlist *l = ctx;
	if (!n->backups)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = n->id;
	return 0;
}

/* a = a ∩ b (both sorted, disjoint) */
static void intersect(struct ivlist *a, const struct ivlist *b)
{
	struct ivlist out = {0};
	size_t i = 0, j = 0;
	while (i < a->n && j < b->n) {
		int64_t from = a->v[i].from_us > b->v[j].from_us ? a->v[i].from_us : b->v[j].from_us;
		int64_t to = a->v[i].to_us < b->v[j].to_us ? a->v[i].to_us : b->v[j].to_us;
		if (from <= to) {
			struct window_interval iv = {from, to};
			ivlist_add(&out, &iv);
		}
		if (a->v[i].to_us < b->v[j].to_us)
			i++;
		else
			j++;
	}
	free(a->v);
	*a = out;
}

struct mrow {
	int64_t snap, time_us, node;
	int online;
};

struct mnode {
	int64_t node, since_us, last_online_us; /* INT64_MAX: no WAL; INT64_MIN: no online backup */
};

struct window_members {
	struct mrow *rows; /* by snapshot time, then id */
	size_t nrows, caprows;
	struct mnode *nodes;
	size_t nnodes, capnodes;
};

static struct mnode *mnode_of(struct window_members *m, int64_t node)
{
	for (size_t i = 0; i < m->nnodes; i++)
		if (m->nodes[i].node == node)
			return &m->nodes[i];
	if (m->nnodes == m->capnodes) {
		m->capnodes = m->capnodes ? m->capnodes * 2 : 8;
		m->nodes = xrealloc(m->nodes, m->capnodes * sizeof *m->nodes);
	}
	m->nodes[m->nnodes] = (struct mnode){node, INT64_MAX, INT64_MIN};
	return &m->nodes[m->nnodes++];
}

static int mrow_cb(void *ctx, int64_t snap, int64_t time_us, int online, int64_t node)
{
	struct window_members *m = ctx;
	struct mnode *mn = mnode_of(m, node);
	if (m->nrows == m->caprows) {
		m->caprows = m->caprows ? m->caprows * 2 : 64;
		m->rows = xrealloc(m->rows, m->caprows * sizeof *m->rows);
	}
	m->rows[m->nrows++] = (struct mrow){snap, time_us, node, online};
	if (online && time_us > mn->last_online_us)
		mn->last_online_us = time_us;
	return 0;
}

static int since_cb(void *ctx, int64_t node, int64_t since_us)
{
	mnode_of(ctx, node)->since_us = since_us;
	return 0;
}

int window_members_load(catalog *c, int64_t cluster, struct window_members **out, struct err *e)
{
	struct window_members *m = xcalloc(1, sizeof *m);
	int rc;
	if ((rc = catalog_cluster_snapshot_nodes(c, cluster, mrow_cb, m, e)) < 0 ||
	    (rc = catalog_cluster_wal_since(c, cluster, since_cb, m, e)) < 0) {
		window_members_free(m);
		m = NULL;
	}
	*out = m;
	return rc;
}

void window_members_free(struct window_members *m)
{
	if (!m)
		return;
	free(m->rows);
	free(m->nodes);
	free(m);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* sorts v[0..n) and drops repeats; the new count */
static size_t sort_unique(int64_t *v, size_t n)
{
	size_t k = 0;
	if (n)
		qsort(v, n, sizeof *v, cmp_i64);
	for (size_t i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}

void window_members_at(const struct window_members *m, int64_t t_us, int64_t **ids, size_t *n)
{
	const struct mrow *last = NULL;
	size_t k = 0;
	*ids = NULL;
	*n = 0;
	for (size_t i = 0; i < m->nrows && m->rows[i].time_us <= t_us; i++)
		if (m->rows[i].online)
			last = &m->rows[i];
	if (!last)
		return;
	*ids = xmalloc((m->nrows + m->nnodes) * sizeof **ids);
	for (size_t i = 0; i < m->nrows && m->rows[i].time_us <= t_us; i++)
		if (m->rows[i].snap == last->snap || (!m->rows[i].online && m->rows[i].time_us > last->time_us))
			(*ids)[k++] = m->rows[i].node;
	for (size_t i = 0; i < m->nnodes; i++)
		if (m->nodes[i].last_online_us > t_us && m->nodes[i].since_us <= t_us)
			(*ids)[k++] = m->nodes[i].node;
	*n = sort_unique(*ids, k);
}

void window_members_changes(const struct window_members *m, int64_t **times, size_t *n)
{
	size_t k = 0;
	*times = xmalloc((m->nrows + m->nnodes + 1) * sizeof **times);
	for (size_t i = 0; i < m->nrows; i++)
		(*times)[k++] = m->rows[i].time_us;
	for (size_t i = 0; i < m->nnodes; i++)
		if (m->nodes[i].since_us != INT64_MAX)
			(*times)[k++] = m->nodes[i].since_us;
	*n = sort_unique(*times, k);
}

/* out += [from, to] ∩ the windows of the nodes in set (wins[k]: the window of all.v[k]) */
static void window_of_set(const struct idlist *all, const struct ivlist *wins, const struct idlist *set, int64_t from,
			  int64_t to, struct ivlist *out)
{
	struct ivlist acc = {0};
	struct window_interval span = {from, to};
	if (from > to)
		return;
	ivlist_add(&acc, &span);
	for (size_t i = 0; i < set->n && acc.n; i++) {
		size_t k = 0;
		while (k < all->n && all->v[k] != set->v[i])
			k++;
		if (k == all->n) { /* a member without a backup of its own: nothing reaches it */
			acc.n = 0;
			break;
		}
		intersect(&acc, &wins[k]);
	}
	for (size_t i = 0; i < acc.n; i++) {
		/* joined to the last when they touch: two epochs are one stretch where both hold */
		int64_t last = out->n ? out->v[out->n - 1].to_us : 0;
		if (out->n && (acc.v[i].from_us <= last || (last < INT64_MAX && acc.v[i].from_us == last + 1))) {
			if (acc.v[i].to_us > out->v[out->n - 1].to_us)
				out->v[out->n - 1].to_us = acc.v[i].to_us;
		} else {
			ivlist_add(out, &acc.v[i]);
		}
	}
	free(acc.v);
}

/*
 * Who must reach a time T is who was in the cluster at T (window_members_at): a node removed
 * from the cluster (or added to it) no longer holds the window of the times it was not in. The
 * window is built stretch by stretch between the times membership can change.
 */
int window_cluster(catalog *c, int64_t cluster, int (*cb)(void *ctx, const struct window_interval *iv), void *ctx,
		   struct err *e)
{
	struct idlist nodes = {0}, set = {0};
	struct ivlist *wins = NULL, out = {0};
	struct window_members *m = NULL;
	int64_t *tv = NULL;
	size_t ntv = 0;
	int rc;
	if ((rc = catalog_cluster_nodes(c, cluster, node_id_cb, &nodes, e)) < 0 ||
	    (rc = window_members_load(c, cluster, &m, e)) < 0)
		goto out;
	window_members_changes(m, &tv, &ntv);
	wins = xcalloc(nodes.n ? nodes.n : 1, sizeof *wins);
	for (size_t i = 0; i < nodes.n; i++)
		if ((rc = window_node(c, nodes.v[i], ivlist_add, &wins[i], NULL, e)) < 0)
			goto out;
	if (nodes.n)
		window_of_set(&nodes, wins, &nodes, INT64_MIN, ntv ? tv[0] - 1 : INT64_MAX, &out);
	for (size_t k = 0; k < ntv; k++) {
		int64_t *ids;
		size_t n;
		window_members_at(m, tv[k], &ids, &n);
		set.v = ids;
		set.n = n;
		window_of_set(&nodes, wins, n ? &set : &nodes, tv[k], k + 1 < ntv ? tv[k + 1] - 1 : INT64_MAX, &out);
		free(ids);
	}
	for (size_t i = 0; i < out.n; i++)
		if (cb(ctx, &out.v[i]))
			break;
out:
	for (size_t i = 0; wins && i < nodes.n; i++)
		free(wins[i].v);
	window_members_free(m);
	free(tv);
	free(wins);
	free(nodes.v);
	free(out.v);
	return rc;
}

/* --- the node backup that covers a time --- */

struct at_walk {
	catalog *c;
	int64_t t_us;
	struct window_run *out;
	int found;
	struct err *e;
	int rc;
};

static int at_nb_cb(void *ctx, const struct catalog_nb_pos *p)
{
	struct at_walk *w = ctx;
	struct window_run r;
	if ((w->rc = window_run(w->c, p, w->t_us, &r, w->e)) < 0)
		return 1;
	if (w->t_us > r.end_us)
		return 0; /* an older node backup may still reach it (through another run) */
	*w->out = r;
	w->found = 1;
	return 1;
}

int window_node_at(catalog *c, int64_t node, int64_t t_us, struct window_run *out, struct err *e)
{
	struct at_walk w = {c, t_us, out, 0, e, 0};
	int rc = catalog_node_backups_of(c, node, t_us, 1, at_nb_cb, &w, e);
	if (w.rc < 0)
		return w.rc;
	if (rc < 0)
		return rc;
	if (!w.found)
		return err_set(e, ERR_NOTFOUND, "no backup of this node reaches that time");
	return 0;
}
