/*
 * test_window.c: catalog/window.h on synthetic catalog rows.
 *
 * Each test builds a catalog with snapshots (node backups with a start LSN and timeline) and
 * `wal` rows (16 MiB segments with a last commit time), then checks the intervals a node and
 * the cluster get: a contiguous run, a gap, two snapshots merging, a timeline switch (with
 * and without its .history), a node without WAL, and the cut of a run at a target time.
 */
#include "../unit.h"

#include <sys/stat.h>

#include "catalog/catalog.h"
#include "catalog/window.h"
#include "common/timefmt.h"

#define SEG (16u << 20)
#define S(x) (1700000000000000ll + (int64_t)(x) * 1000000) /* T0 + x seconds */

struct fx {
	char dir[256], db[300];
	catalog *c;
	int64_t cl;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	unit_tmpdir(f->dir, sizeof f->dir);
	snprintf(f->db, sizeof f->db, "%s/catalog.db", f->dir);
	check_ok(catalog_open(f->db, 0, &f->c, E));
	check_ok(catalog_cluster_ensure(f->c, "c1", &f->cl, E));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	catalog_close(f->c);
	unit_rmdir(f->dir);
	free(f);
	return 0;
}

static int64_t node(struct fx *f, const char *name)
{
	int64_t id;
	check_ok(catalog_node_ensure(f->c, f->cl, name, &id, E));
	return id;
}

/* a complete snapshot at time t holding one node backup of each node in nodes[] (0-ended),
 * started at segment segno of timeline tli (segno < 0: an offline snapshot, no LSN) and
 * stopped in segment stop_segno (at the start LSN when that is not later) */
static void backup_to(struct fx *f, const int64_t *nodes, int64_t t, int64_t tli, int64_t segno, int64_t stop_segno)
{
	struct nb_totals tot = {1, 1, 1, 1};
	char name[48], lsn[32], stop[32];
	int64_t snap, nb;
	check_ok(catalog_begin(f->c, E));
	check_ok(catalog_snapshot_begin(f->c, f->cl, segno < 0 ? "offline" : "online", &snap, E));
	for (const int64_t *n = nodes; *n; n++) {
		struct catalog_entry en;
		struct catalog_pg_info pg;
		memset(&en, 0, sizeof en);
		en.mode = S_IFDIR | 0700;
		check_ok(catalog_node_backup_begin(f->c, snap, *n, "/src", &nb, E));
		check_ok(catalog_entry_add(f->c, nb, &en, E));
		if (segno >= 0) {
			uint64_t l = (uint64_t)segno * SEG + 0x28;
			snprintf(lsn, sizeof lsn, "%X/%X", (unsigned)(l >> 32), (unsigned)l);
			memset(&pg, 0, sizeof pg);
			pg.start_lsn = lsn;
			l = (uint64_t)stop_segno * SEG + 0x200;
			snprintf(stop, sizeof stop, "%X/%X", (unsigned)(l >> 32), (unsigned)l);
			pg.stop_lsn = stop_segno > segno ? stop : lsn;
			pg.timeline = tli;
			pg.pg_version = "15.4";
			check_ok(catalog_node_backup_set_pg(f->c, nb, &pg, E));
		}
		check_ok(catalog_node_backup_finish(f->c, nb, en.id, &tot, E));
	}
	check_ok(catalog_snapshot_finish(f->c, snap, t, name, E));
	check_ok(catalog_commit(f->c, E));
}

static void backup(struct fx *f, const int64_t *nodes, int64_t t, int64_t tli, int64_t segno)
{
	backup_to(f, nodes, t, tli, segno, segno);
}

/* an archived segment (partial: its .partial) whose last commit is at t (0: none) */
static void seg(struct fx *f, int64_t nd, int64_t tli, int64_t segno, int64_t t, int partial)
{
	struct catalog_wal w;
	memset(&w, 0, sizeof w);
	w.node = nd;
	snprintf(w.name, sizeof w.name, "%08X%08X%08X%s", (unsigned)tli, (unsigned)(segno / 256), (unsigned)(segno % 256),
		 partial ? ".partial" : "");
	w.timeline = tli;
	w.segno = segno;
	w.size = SEG;
	w.stored_us = t;
	w.first_commit_us = t;
	w.last_commit_us = t;
	check_ok(catalog_wal_add(f->c, &w, E));
}

static void history(struct fx *f, int64_t nd, int64_t tli)
{
	struct catalog_wal w;
	memset(&w, 0, sizeof w);
	w.node = nd;
	snprintf(w.name, sizeof w.name, "%08X.history", (unsigned)tli);
	w.timeline = tli;
	w.segno = -1;
	w.size = 42;
	check_ok(catalog_wal_add(f->c, &w, E));
}

struct ivs {
	size_t n;
	struct window_interval v[8];
};

static int collect(void *ctx, const struct window_interval *iv)
{
	struct ivs *x = ctx;
	if (x->n < 8)
		x->v[x->n] = *iv;
	x->n++;
	return 0;
}

static struct ivs node_window(struct fx *f, int64_t nd)
{
	struct ivs x = {0};
	check_ok(window_node(f->c, nd, collect, &x, NULL, E));
	return x;
}

#define assert_iv(x, i, a, b)                                                                              \
	do {                                                                                               \
		assert_int_equal((x).v[i].from_us, (a));                                                   \
		assert_int_equal((x).v[i].to_us, (b));                                                     \
	} while (0)

static void test_lsn(void **state)
{
	(void)state;
	assert_int_equal(window_parse_lsn("0/2000028"), 0x2000028);
	assert_int_equal(window_parse_lsn("1A/FF"), (0x1All << 32) | 0xff);
	assert_int_equal(window_parse_lsn("junk"), -1);
	assert_int_equal(window_parse_lsn("0/1 "), -1);
	assert_int_equal(window_parse_lsn(""), -1);
}

/* a run 2..5: the interval runs from the snapshot to the last commit of segment 5 */
static void test_contiguous(void **state)
{
	struct fx *f = *state;
	int64_t n = node(f, "n1"), nodes[] = {n, 0};
	struct ivs x;
	struct window_run r;
	check_ok(catalog_begin(f->c, E));
	seg(f, n, 1, 1, S(1), 0); /* before the backup: not part of the run */
	seg(f, n, 1, 2, S(5), 0);
	seg(f, n, 1, 3, S(20), 0);
	seg(f, n, 1, 4, 0, 0); /* no commit in it: the run goes on */
	seg(f, n, 1, 5, S(40), 0);
	check_ok(catalog_commit(f->c, E));
	backup(f, nodes, S(10), 1, 2);
	x = node_window(f, n);
	assert_int_equal(x.n, 1);
	assert_iv(x, 0, S(10), S(40));
	/* the cut at a target: the first segment with a commit after it is the last one */
	check_ok(window_node_at(f->c, n, S(15), &r, E));
	assert_int_equal(r.start_segno, 2);
	assert_int_equal(r.last_segno, 3);
	assert_int_equal(r.reaches, 1);
	check_ok(window_node_at(f->c, n, S(40), &r, E));
	assert_int_equal(r.last_segno, 5);
	assert_int_equal(r.reaches, 0);
	assert_int_equal(window_node_at(f->c, n, S(41), &r, NULL), ERR_NOTFOUND);
	assert_int_equal(window_node_at(f->c, n, S(9), &r, NULL), ERR_NOTFOUND);
}

/* a missing segment ends the run: a gap until the next snapshot, which starts a new interval */
static void test_gap_two_snapshots(void **state)
{
	struct fx *f = *state;
	int64_t n = node(f, "n1"), nodes[] = {n, 0};
	struct ivs x;
	check_ok(catalog_begin(f->c, E));
	seg(f, n, 1, 2, S(5), 0);
	seg(f, n, 1, 3, S(20), 0);
	/* 4 is missing */
	seg(f, n, 1, 5, S(45), 0);
	seg(f, n, 1, 6, S(60), 0);
	seg(f, n, 1, 7, S(70), 0);
	check_ok(catalog_commit(f->c, E));
	backup(f, nodes, S(10), 1, 2);
	backup(f, nodes, S(50), 1, 6);
	backup(f, nodes, S(65), 1, 7); /* inside the second run: merges with it */
	x = node_window(f, n);
	assert_int_equal(x.n, 2);
	assert_iv(x, 0, S(10), S(20));
	assert_iv(x, 1, S(50), S(70));
}

/* a promotion: tli 2 goes on from segment 4 when 00000002.history is archived */
static void test_timeline_switch(void **state)
{
	struct fx *f = *state;
	int64_t n = node(f, "n1"), m = node(f, "n2"), nodes[] = {n, m, 0};
	struct ivs x;
	struct window_run r;
	check_ok(catalog_begin(f->c, E));
	for (int64_t nd = n; nd; nd = nd == n ? m : 0) {
		seg(f, nd, 1, 2, S(5), 0);
		seg(f, nd, 1, 3, S(20), 0);
		seg(f, nd, 1, 4, S(25), 1); /* the old timeline's last segment, archived as .partial */
		seg(f, nd, 2, 4, S(30), 0);
		seg(f, nd, 2, 5, S(40), 0);
	}
	history(f, n, 2); /* n2 has no history file: it cannot follow tli 2 */
	check_ok(catalog_commit(f->c, E));
	backup(f, nodes, S(10), 1, 2);
	x = node_window(f, n);
	assert_int_equal(x.n, 1);
	assert_iv(x, 0, S(10), S(40));
	check_ok(window_node_at(f->c, n, S(35), &r, E));
	assert_int_equal(r.last_segno, 5);
	assert_int_equal(r.ntl, 1);
	assert_int_equal(r.tl[0], 2);
	assert_int_equal(r.tl_from[0], 4);
	assert_int_equal(window_run_tli(&r, 3), 1);
	assert_int_equal(window_run_tli(&r, 5), 2);
	/* without the history: the .partial of tli 1 is the last segment */
	x = node_window(f, m);
	assert_int_equal(x.n, 1);
	assert_iv(x, 0, S(10), S(25));
	check_ok(window_node_at(f->c, m, S(22), &r, E));
	assert_int_equal(r.last_segno, 4);
	assert_int_equal(r.last_partial, 1);
	assert_string_equal(r.last_name, "000000010000000000000004.partial");
	/* the cluster: the intersection */
	x.n = 0;
	check_ok(window_cluster(f->c, f->cl, collect, &x, E));
	assert_int_equal(x.n, 1);
	assert_iv(x, 0, S(10), S(25));
}

/* one line of timeline tli's history file: it left parent at segment segno, byte off */
static void line(struct fx *f, int64_t nd, int64_t tli, int64_t parent, int64_t segno, uint64_t off)
{
	check_ok(catalog_wal_history_add(f->c, nd, tli, parent, (uint64_t)segno * SEG + off, E));
}

/*
 * Timeline ancestry. Timeline 2 left 1 in segment 4; timeline 3 left 1 earlier, in segment 3
 * (an old copy promoted from the same archive). A run on timeline 2 must not go on on 3, which
 * does not descend from it, though 3 is newer and its segments are archived; a run on 1 that
 * begins before 3's fork follows 3 (the newest descendant, as 'latest' does); one that begins
 * after that fork, in the same segment, follows 2. A history without recorded lines (archived
 * before schema 9) is followed as before.
 */
static void test_timeline_ancestry(void **state)
{
	struct fx *f = *state;
	int64_t a = node(f, "a"), b = node(f, "b"), c = node(f, "c"), d = node(f, "d"), all[] = {a, b, c, d};
	int64_t only_a[] = {a, 0}, only_b[] = {b, 0}, only_c[] = {c, 0}, only_d[] = {d, 0};
	struct window_run r;
	struct ivs x;
	check_ok(catalog_begin(f->c, E));
	for (int i = 0; i < 4; i++) {
		int64_t nd = all[i];
		seg(f, nd, 1, 2, S(5), 0);
		seg(f, nd, 1, 3, S(10), 0);
		seg(f, nd, 1, 4, S(12), 1);
		for (int64_t g = 4; g <= 7; g++)
			seg(f, nd, 2, g, S(20 + g), 0);
		for (int64_t g = 3; g <= 9; g++)
			seg(f, nd, 3, g, S(100 + g), 0);
		history(f, nd, 2);
		history(f, nd, 3);
		if (nd != d) {
			line(f, nd, 2, 1, 4, 0x100);
			line(f, nd, 3, 1, 3, nd == c ? 0x10 : 0x80);
		}
	}
	check_ok(catalog_commit(f->c, E));
	backup(f, only_a, S(25), 2, 5);
	backup(f, only_d, S(25), 2, 5);
	backup(f, only_b, S(6), 1, 2);
	backup(f, only_c, S(11), 1, 3);

	/* a: on timeline 2 to its end; timeline 3's later segments are not its */
	x = node_window(f, a);
	assert_int_equal(x.n, 1);
	assert_iv(x, 0, S(25), S(27));
	check_ok(window_node_at(f->c, a, S(26), &r, E));
	assert_int_equal(r.last_segno, 7);
	assert_int_equal(r.ntl, 0);
	assert_int_equal(window_run_tli(&r, 7), 2);
	assert_int_equal(window_node_at(f->c, a, S(50), &r, NULL), ERR_NOTFOUND);

	/* d: the same archive without recorded lines follows timeline 3, as before schema 9 */
	x = node_window(f, d);
	assert_iv(x, 0, S(25), S(109));

	/* b: begins on 1 before 3's fork: from segment 3 on timeline 3 */
	x = node_window(f, b);
	assert_iv(x, 0, S(6), S(109));
	check_ok(window_node_at(f->c, b, S(108), &r, E));
	assert_int_equal(r.ntl, 1);
	assert_int_equal(r.tl[0], 3);
	assert_int_equal(r.tl_from[0], 3);

	/* c: begins on 1 after 3 left it (both in segment 3): goes on on 2, not on the newer 3 */
	x = node_window(f, c);
	assert_iv(x, 0, S(11), S(27));
	check_ok(window_node_at(f->c, c, S(26), &r, E));
	assert_int_equal(r.ntl, 1);
	assert_int_equal(r.tl[0], 2);
	assert_int_equal(r.tl_from[0], 4);
	assert_int_equal(r.last_segno, 7);
}

/*
 * More ancestry. e: timeline 3's history has two lines (it left 1 in segment 3, then 2 in
 * segment 5), and a stray segment of 3 sits in segment 3, before 3 begins: the run goes 1 -> 2
 * in segment 3 and 2 -> 3 in segment 5 (the lookup is per timeline and ancestor, and a
 * timeline begins at its last line). f: timeline 2 left 1 exactly at a segment start: followed
 * there. g: timeline 2 forked off 1 during the backup (after its start, before its stop): not
 * followed. h: a history PostgreSQL cannot read: never followed.
 */
static void test_timeline_ancestry_lines(void **state)
{
	struct fx *f = *state;
	int64_t e = node(f, "e"), g1 = node(f, "f"), g = node(f, "g"), h = node(f, "h");
	int64_t only_e[] = {e, 0}, only_f[] = {g1, 0}, only_g[] = {g, 0}, only_h[] = {h, 0};
	struct window_run r;
	check_ok(catalog_begin(f->c, E));
	/* e */
	seg(f, e, 1, 2, S(2), 0);
	seg(f, e, 1, 3, S(3), 0);
	for (int64_t k = 3; k <= 6; k++)
		seg(f, e, 2, k, S(20 + k), 0);
	seg(f, e, 3, 3, S(33), 0); /* before timeline 3 begins: never read */
	for (int64_t k = 5; k <= 7; k++)
		seg(f, e, 3, k, S(30 + k), 0);
	history(f, e, 2);
	history(f, e, 3);
	line(f, e, 2, 1, 3, 0x80);
	line(f, e, 3, 1, 3, 0x80);
	line(f, e, 3, 2, 5, 0x100);
	/* f */
	seg(f, g1, 1, 2, S(2), 0);
	seg(f, g1, 1, 3, S(3), 0);
	seg(f, g1, 2, 4, S(4), 0);
	seg(f, g1, 2, 5, S(5), 0);
	history(f, g1, 2);
	line(f, g1, 2, 1, 4, 0);
	/* g and h: timeline 1 to segment 5, timeline 2 from segment 3 */
	for (int i = 0; i < 2; i++) {
		int64_t nd = i ? h : g;
		for (int64_t k = 2; k <= 5; k++)
			seg(f, nd, 1, k, S(k), 0);
		for (int64_t k = 3; k <= 6; k++)
			seg(f, nd, 2, k, S(10 + k), 0);
		history(f, nd, 2);
	}
	line(f, g, 2, 1, 3, 0x80);
	check_ok(catalog_wal_history_add(f->c, h, 2, 0, CATALOG_TLI_UNREADABLE, E));
	check_ok(catalog_commit(f->c, E));
	backup(f, only_e, S(2), 1, 2);
	backup(f, only_f, S(2) + 1, 1, 2);
	backup_to(f, only_g, S(2) + 2, 1, 2, 4);
	backup(f, only_h, S(2) + 3, 1, 2);

	check_ok(window_node_at(f->c, e, S(36), &r, E));
	assert_int_equal(r.ntl, 2);
	assert_int_equal(r.tl[0], 2);
	assert_int_equal(r.tl_from[0], 3);
	assert_int_equal(r.tl[1], 3);
	assert_int_equal(r.tl_from[1], 5);
	assert_int_equal(r.last_segno, 7);

	check_ok(window_node_at(f->c, g1, S(5), &r, E));
	assert_int_equal(r.ntl, 1);
	assert_int_equal(r.tl_from[0], 4);
	assert_int_equal(r.last_segno, 5);

	for (int i = 0; i < 2; i++) {
		check_ok(window_node_at(f->c, i ? h : g, S(5), &r, E));
		assert_int_equal(r.ntl, 0);
		assert_int_equal(r.last_segno, 5);
		assert_int_equal(window_node_at(f->c, i ? h : g, S(14), &r, NULL), ERR_NOTFOUND);
	}
}

/*
 * Two backups inside one run that switches timeline: the later one (on timeline 1, its stop
 * after timeline 2 forked off in segment 5: a backup of the old primary) may not follow the
 * switch the earlier one's run followed. Its interval is its own run on timeline 1, not the
 * end of the earlier run.
 */
static void test_backup_inside_switching_run(void **state)
{
	struct fx *f = *state;
	int64_t n = node(f, "n"), only[] = {n, 0};
	struct ivs x;
	check_ok(catalog_begin(f->c, E));
	for (int64_t k = 2; k <= 7; k++)
		seg(f, n, 1, k, k < 5 ? S(k) : S(30 + k), 0);
	for (int64_t k = 5; k <= 7; k++)
		seg(f, n, 2, k, S(16 + k), 0);
	history(f, n, 2);
	line(f, n, 2, 1, 5, 0x80);
	check_ok(catalog_commit(f->c, E));
	backup(f, only, S(2), 1, 2);
	backup_to(f, only, S(25), 1, 4, 6);
	x = node_window(f, n);
	assert_int_equal(x.n, 2);
	assert_iv(x, 0, S(2), S(23));
	assert_iv(x, 1, S(25), S(37));
}

/* membership when the snapshot that showed a node joining is deleted: the node's archived WAL
 * says it was in the cluster from then on, so it must reach those times (and cannot before
 * its next backup); before its WAL began the other node alone is the cluster */
static void test_members_after_delete(void **state)
{
	struct fx *f = *state;
	int64_t a = node(f, "a"), b = node(f, "b"), only_a[] = {a, 0}, both[] = {a, b, 0}, *ids;
	size_t n;
	struct window_members *wm;
	struct ivs x;
	struct catalog_snapshot s;
	check_ok(catalog_begin(f->c, E));
	seg(f, a, 1, 2, S(12), 0);
	seg(f, a, 1, 3, S(22), 0);
	seg(f, a, 1, 4, S(32), 0);
	seg(f, a, 1, 5, S(50), 0);
	seg(f, b, 1, 2, S(15), 0); /* b archives from S(15) on */
	seg(f, b, 1, 3, S(21), 0);
	seg(f, b, 1, 4, S(31), 0);
	seg(f, b, 1, 5, S(50), 0);
	check_ok(catalog_commit(f->c, E));
	backup(f, only_a, S(10), 1, 2);
	backup(f, both, S(20), 1, 3);
	backup(f, both, S(30), 1, 4);
	{
		char name[48];
		timefmt_print(S(20), 0, name);
		check_ok(catalog_snapshot_by_name(f->c, f->cl, name, &s, E));
	}
	check_ok(catalog_begin(f->c, E));
	check_ok(catalog_snapshot_delete(f->c, s.id, E));
	check_ok(catalog_commit(f->c, E));
	check_ok(window_members_load(f->c, f->cl, &wm, E));
	window_members_at(wm, S(25), &ids, &n);
	assert_int_equal(n, 2); /* b: its WAL reaches back past S(25), its backup comes after */
	free(ids);
	window_members_at(wm, S(12), &ids, &n);
	assert_int_equal(n, 1); /* before b's WAL began: a alone */
	assert_int_equal(ids[0], a);
	free(ids);
	window_members_at(wm, S(5), &ids, &n);
	assert_int_equal(n, 0); /* before any online snapshot: every node with a backup */
	free(ids);
	window_members_free(wm);
	x.n = 0;
	check_ok(window_cluster(f->c, f->cl, collect, &x, E));
	assert_int_equal(x.n, 2);
	assert_iv(x, 0, S(10), S(15) - 1);
	assert_iv(x, 1, S(30), S(50));
}

/* a node without WAL: its window is the instants of its snapshots; the cluster's too */
static void test_node_without_wal(void **state)
{
	struct fx *f = *state;
	int64_t n = node(f, "n1"), m = node(f, "n2"), nodes[] = {n, m, 0}, only_n[] = {n, 0};
	struct ivs x;
	struct window_run r;
	check_ok(catalog_begin(f->c, E));
	seg(f, n, 1, 2, S(5), 0);
	seg(f, n, 1, 3, S(30), 0);
	check_ok(catalog_commit(f->c, E));
	backup(f, nodes, S(10), 1, 2);
	backup(f, only_n, S(20), 1, 3);
	backup(f, nodes, S(40), -1, -1); /* offline: no LSN */
	x = node_window(f, m);
	assert_int_equal(x.n, 2);
	assert_iv(x, 0, S(10), S(10));
	assert_iv(x, 1, S(40), S(40));
	x = node_window(f, n);
	assert_int_equal(x.n, 2);
	assert_iv(x, 0, S(10), S(30));
	assert_iv(x, 1, S(40), S(40));
	/* the cluster: at S(10) both nodes were in it; the online backup at S(20) was of n alone,
	 * so from then on only n must reach a time (m left the cluster) */
	x.n = 0;
	check_ok(window_cluster(f->c, f->cl, collect, &x, E));
	assert_int_equal(x.n, 3);
	assert_iv(x, 0, S(10), S(10));
	assert_iv(x, 1, S(20), S(30));
	assert_iv(x, 2, S(40), S(40));
	check_ok(window_node_at(f->c, m, S(10), &r, E));
	assert_int_equal(r.last_segno, -1);
	assert_int_equal(r.end_us, S(10));
	assert_int_equal(window_node_at(f->c, m, S(11), &r, NULL), ERR_NOTFOUND);
	/* no snapshot at all: an empty window */
	{
		int64_t lone = node(f, "n3");
		x = node_window(f, lone);
		assert_int_equal(x.n, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lsn),
		cmocka_unit_test_setup_teardown(test_contiguous, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_two_snapshots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_ancestry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_ancestry_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup_inside_switching_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_without_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_members_after_delete, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
