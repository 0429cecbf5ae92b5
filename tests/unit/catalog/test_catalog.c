/*
 * test_catalog.c: catalog/catalog.h and catalog/copy.h.
 *
 * Each test works in its own scratch directory: the catalog is <dir>/state/catalog.db, the
 * writer lock lives in <dir>/state, and tests that need a repository (catalog copies) create
 * one in <dir>/z1..z3 with scrypt N = 2^10 so the suite stays fast. Some checks look at the
 * tables directly through a second SQLite connection (WAL mode lets it read beside the
 * catalog's own), and the consistency test damages the catalog the same way.
 */
#include "../unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/resource.h>
#include <signal.h>

#include "catalog/catalog.h"
#include "catalog/copy.h"
#include "store/repo.h"
#include "store/zones.h"

#define PASS "correct horse battery staple"
#define NZ 3
/* 2023-11-14T22:13:20Z */
#define T0 1700000000000000ll

struct fixture {
	char dir[256];
	char state[300];
	char db[400];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	unit_tmpdir(f->dir, sizeof f->dir);
	snprintf(f->state, sizeof f->state, "%s/state", f->dir);
	snprintf(f->db, sizeof f->db, "%s/catalog.db", f->state);
	assert_int_equal(mkdir(f->state, 0700), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unit_rmdir(f->dir);
	free(f);
	return 0;
}


static catalog *open_cat(const char *path)
{
	catalog *c = NULL;
	check_ok(catalog_open(path, 0, &c, E));
	assert_non_null(c);
	return c;
}

/* The single integer that sql returns, read through a second connection to the file. */
static int64_t q1(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		print_error("%s: %s\n", sql, sqlite3_errmsg(db));
	assert_non_null(s);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Runs sql on a second read-write connection (to damage the catalog behind its back). */
static void exec2(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		print_error("%s: %s\n", sql, msg ? msg : "?");
	assert_null(msg);
	sqlite3_close(db);
}

static int64_t qf(const char *path, const char *fmt, long long a)
{
	char sql[512];
	snprintf(sql, sizeof sql, fmt, a);
	return q1(path, sql);
}

static void dir_entry(struct catalog_entry *en, int64_t parent, const char *name)
{
	memset(en, 0, sizeof *en);
	en->parent = parent;
	snprintf(en->name, sizeof en->name, "%s", name);
	en->mode = 040755;
	en->mtime_ns = en->ctime_ns = T0 * 1000;
}

static void file_entry(struct catalog_entry *en, int64_t parent, const char *name, uint64_t size, int64_t content)
{
	memset(en, 0, sizeof *en);
	en->parent = parent;
	snprintf(en->name, sizeof en->name, "%s", name);
	en->mode = 0100644;
	en->uid = 26;
	en->gid = 26;
	en->size = size;
	en->mtime_ns = en->ctime_ns = T0 * 1000 + 7;
	en->src_ino = 4242;
	en->content = content;
}

/* A running snapshot with one node backup and a root directory; *nb and *root get theirs. */
static int64_t begin_snapshot(catalog *c, int64_t cl, int64_t node, int64_t *nb, int64_t *root)
{
	struct catalog_entry en;
	int64_t snap = 0;
	check_ok(catalog_snapshot_begin(c, cl, "offline", &snap, E));
	check_ok(catalog_node_backup_begin(c, snap, node, "/src", nb, E));
	dir_entry(&en, 0, "");
	check_ok(catalog_entry_add(c, *nb, &en, E));
	*root = en.id;
	return snap;
}

/* A complete snapshot of node at time_us (one transaction); name gets its name. */
static int64_t make_snapshot(catalog *c, int64_t cl, int64_t node, int64_t time_us, char name[48])
{
	struct nb_totals t = {3, 300, 100, 50};
	int64_t snap, nb, root;
	check_ok(catalog_begin(c, E));
	snap = begin_snapshot(c, cl, node, &nb, &root);
	check_ok(catalog_node_backup_finish(c, nb, root, &t, E));
	check_ok(catalog_snapshot_finish(c, snap, time_us, name, E));
	check_ok(catalog_commit(c, E));
	return snap;
}

struct snaps {
	size_t n;
	struct catalog_snapshot s[16];
};

static int collect_snap(void *ctx, const struct catalog_snapshot *s)
{
	struct snaps *x = ctx;
	if (x->n < 16)
		x->s[x->n] = *s;
	x->n++;
	return 0;
}

static void list_snaps(catalog *c, int64_t cluster, struct snaps *out)
{
	memset(out, 0, sizeof *out);
	check_ok(catalog_snapshots(c, cluster, collect_snap, out, E));
}

/* --- life cycle --- */

static void test_open_migrate(void **state)
{
	struct fixture *f = *state;
	catalog *c, *ro = (catalog *)1;
	char val[64], missing[512];
	struct err e;
	c = open_cat(f->db);
	assert_string_equal(catalog_path(c), f->db);
	assert_int_equal(q1(f->db, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'snapshots'"), 1);
	assert_int_equal(catalog_meta_get(c, "repository", val, sizeof val), ERR_NOTFOUND);
	check_ok(catalog_meta_set(c, "repository", "abc", E));
	check_ok(catalog_meta_set(c, "repository", "def", E)); /* overwrite */
	catalog_close(c);

	/* reopen: migrations do not run twice, data stays */
	c = open_cat(f->db);
	assert_int_equal(q1(f->db, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
	assert_int_equal(catalog_meta_get(c, "repository", val, sizeof val), 0);
	assert_string_equal(val, "def");
	catalog_close(c);

	/* readonly reopen works and refuses writes */
	ro = NULL;
	check_ok(catalog_open(f->db, 1, &ro, E));
	assert_int_equal(catalog_meta_get(ro, "repository", val, sizeof val), 0);
	assert_string_equal(val, "def");
	err_clear(&e);
	assert_true(catalog_meta_set(ro, "x", "y", &e) < 0);
	assert_true(strlen(e.msg) > 0);
	catalog_close(ro);

	/* readonly open of a missing file: ERR_NOTFOUND, nothing created */
	snprintf(missing, sizeof missing, "%s/nope.db", f->dir);
	ro = (catalog *)1;
	err_clear(&e);
	assert_int_equal(catalog_open(missing, 1, &ro, &e), ERR_NOTFOUND);
	assert_int_equal(e.code, ERR_NOTFOUND);
	assert_null(ro);
	assert_int_not_equal(access(missing, F_OK), 0);
	assert_int_equal(catalog_open(missing, 1, &ro, NULL), ERR_NOTFOUND);

	/* a catalog from a newer pgtimefs is refused, read-write and readonly */
	exec2(f->db, "PRAGMA user_version = 99");
	err_clear(&e);
	assert_true(catalog_open(f->db, 0, &c, &e) < 0);
	assert_null(c);
	assert_non_null(strstr(e.msg, "schema version"));
	assert_true(catalog_open(f->db, 1, &ro, NULL) < 0);
	assert_null(ro);
	catalog_close(NULL);
}

/*
 * Migration 7 on a catalog of schema 6 that holds a WAL row: the row keeps its SHA-256 and
 * reads back as WAL_DIGEST_SHA256 (what wal.sha256 meant before 7).
 */
static void test_migrate_wal_digest(void **state)
{
	struct fixture *f = *state;
	struct catalog_wal got;
	catalog *c = open_cat(f->db);
	int64_t cl, node;
	check_ok(catalog_begin(c, E));
	check_ok(catalog_cluster_ensure(c, "c", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "n", &node, E));
	check_ok(catalog_commit(c, E));
	catalog_close(c);
	exec2(f->db, "ALTER TABLE wal DROP COLUMN digest");
	exec2(f->db, "DROP TABLE wal_history");
	exec2(f->db, "PRAGMA user_version = 6");
	exec2(f->db, "INSERT INTO wal(node, name, timeline, segno, size, sha256, stored_us)"
		     " VALUES (1, '00000001.history', 1, NULL, 0, zeroblob(32), 5)");
	c = open_cat(f->db);
	assert_int_equal(q1(f->db, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
	memset(&got, 0xff, sizeof got);
	check_ok(catalog_wal_find(c, node, "00000001.history", &got, E));
	assert_int_equal(got.digest, WAL_DIGEST_SHA256);
	assert_int_equal(got.stored_us, 5);
	catalog_close(c);
}

static void test_open_not_a_database(void **state)
{
	struct fixture *f = *state;
	catalog *c = (catalog *)1;
	struct err e;
	{
		static const char junk[] = "this is not an SQLite file, not at all, no no no";
		assert_int_equal(util_write_durable(f->db, junk, sizeof junk - 1, 0, NULL), 0);
	}
	err_clear(&e);
	assert_true(catalog_open(f->db, 0, &c, &e) < 0);
	assert_null(c);
	assert_true(e.code < 0);
	assert_true(strlen(e.msg) > 0);
	c = (catalog *)1;
	assert_true(catalog_open(f->db, 1, &c, NULL) < 0);
	assert_null(c);
}

/* --- clusters, nodes --- */

static int collect_cluster(void *ctx, int64_t id, const char *name)
{
	char *out = ctx;
	(void)id;
	strcat(out, name);
	strcat(out, ",");
	return 0;
}

static void test_clusters_nodes(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t a = 0, a2 = 0, b = 0, found = 0, n1 = 0, n1b = 0, n2 = 0, nb1 = 0;
	char names[256] = "";
	struct err e;
	err_clear(&e);
	assert_int_equal(catalog_cluster_find(c, "prod", &found, &e), ERR_NOTFOUND);
	assert_non_null(strstr(e.msg, "prod"));
	check_ok(catalog_cluster_ensure(c, "prod", &a, E));
	check_ok(catalog_cluster_ensure(c, "prod", &a2, E));
	assert_true(a > 0);
	assert_int_equal(a, a2);
	check_ok(catalog_cluster_ensure(c, "dev", &b, E));
	assert_int_not_equal(a, b);
	check_ok(catalog_cluster_find(c, "prod", &found, E));
	assert_int_equal(found, a);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM clusters"), 2);
	check_ok(catalog_clusters(c, collect_cluster, names, E));
	assert_string_equal(names, "dev,prod,");

	check_ok(catalog_node_ensure(c, a, "worker1", &n1, E));
	check_ok(catalog_node_ensure(c, a, "worker1", &n1b, E));
	assert_int_equal(n1, n1b);
	check_ok(catalog_node_ensure(c, b, "worker1", &nb1, E)); /* same name, other cluster */
	assert_int_not_equal(n1, nb1);
	check_ok(catalog_node_ensure(c, a, "worker2", &n2, E));
	assert_int_not_equal(n1, n2);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM nodes"), 3);
	catalog_close(c);
}

/* --- snapshots --- */

struct nodes_seen {
	int n;
	char name[64];
	int64_t nb, root;
};

static int collect_node(void *ctx, const char *node, int64_t nb, int64_t root)
{
	struct nodes_seen *x = ctx;
	x->n++;
	snprintf(x->name, sizeof x->name, "%s", node);
	x->nb = nb;
	x->root = root;
	return 0;
}

static void test_snapshot_finish(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, node, snap, nb, root, snap2;
	struct nb_totals t = {7, 7000, 700, 70};
	struct snaps sl;
	struct catalog_snapshot one;
	struct nodes_seen ns = {0};
	char name[48], name2[48];
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	assert_int_equal(catalog_prev_node_backup(c, node), 0);

	check_ok(catalog_begin(c, E));
	snap = begin_snapshot(c, cl, node, &nb, &root);
	check_ok(catalog_commit(c, E));
	/* running: not visible */
	list_snaps(c, 0, &sl);
	assert_int_equal(sl.n, 0);
	assert_int_equal(catalog_snapshot_latest(c, cl, &one, NULL), ERR_NOTFOUND);
	assert_int_equal(catalog_prev_node_backup(c, node), 0);
	assert_true(catalog_node_backup_started_us(c, nb) > 0);

	check_ok(catalog_begin(c, E));
	check_ok(catalog_node_backup_finish(c, nb, root, &t, E));
	check_ok(catalog_snapshot_finish(c, snap, T0 + 123456, name, E));
	check_ok(catalog_commit(c, E));
	assert_string_equal(name, "2023-11-14T22:13:20Z");
	assert_int_equal(catalog_node_backup_root(c, nb), root);

	list_snaps(c, 0, &sl);
	assert_int_equal(sl.n, 1);
	assert_int_equal(sl.s[0].id, snap);
	assert_int_equal(sl.s[0].cluster, cl);
	assert_string_equal(sl.s[0].cluster_name, "prod");
	assert_string_equal(sl.s[0].name, "2023-11-14T22:13:20Z");
	assert_int_equal(sl.s[0].time_us, T0 + 123456);
	assert_string_equal(sl.s[0].kind, "offline");
	assert_int_equal(sl.s[0].nodes, 1);
	assert_int_equal(sl.s[0].files, 7);
	assert_int_equal(sl.s[0].bytes, 7000);
	assert_int_equal(sl.s[0].new_bytes, 700);
	assert_int_equal(sl.s[0].stored_bytes, 70);
	assert_true(sl.s[0].finished_us >= sl.s[0].started_us);
	list_snaps(c, cl, &sl);
	assert_int_equal(sl.n, 1);
	list_snaps(c, cl + 100, &sl);
	assert_int_equal(sl.n, 0);

	check_ok(catalog_snapshot_by_name(c, cl, "2023-11-14T22:13:20Z", &one, E));
	assert_int_equal(one.id, snap);
	assert_int_equal(catalog_snapshot_by_name(c, cl, "2023-11-14T22:13:21Z", &one, NULL), ERR_NOTFOUND);
	check_ok(catalog_snapshot_latest(c, cl, &one, E));
	assert_int_equal(one.id, snap);
	check_ok(catalog_snapshot_nodes(c, snap, collect_node, &ns, E));
	assert_int_equal(ns.n, 1);
	assert_string_equal(ns.name, "coord");
	assert_int_equal(ns.nb, nb);
	assert_int_equal(ns.root, root);
	assert_int_equal(catalog_prev_node_backup(c, node), nb);

	/* a later snapshot becomes the latest and the previous node backup */
	snap2 = make_snapshot(c, cl, node, T0 + 3600ll * 1000000, name2);
	assert_string_equal(name2, "2023-11-14T23:13:20Z");
	check_ok(catalog_snapshot_latest(c, cl, &one, E));
	assert_int_equal(one.id, snap2);
	list_snaps(c, cl, &sl);
	assert_int_equal(sl.n, 2);
	assert_int_equal(sl.s[0].id, snap); /* oldest first */
	assert_int_equal(sl.s[1].id, snap2);
	assert_int_not_equal(catalog_prev_node_backup(c, node), nb);
	catalog_close(c);
}

static void test_snapshot_same_second(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, cl2, node, node2, s1, s2, s3;
	struct snaps sl;
	char n1[48], n2[48], n3[48];
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_cluster_ensure(c, "dev", &cl2, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	check_ok(catalog_node_ensure(c, cl2, "coord", &node2, E));
	s1 = make_snapshot(c, cl, node, T0 + 1000, n1);
	s2 = make_snapshot(c, cl, node, T0 + 500000, n2);
	assert_int_not_equal(s1, s2);
	assert_string_equal(n1, "2023-11-14T22:13:20Z");
	assert_string_equal(n2, "2023-11-14T22:13:20.500000Z");
	/* another cluster's snapshot in the same second keeps the short name */
	s3 = make_snapshot(c, cl2, node2, T0 + 700000, n3);
	assert_string_equal(n3, "2023-11-14T22:13:20Z");
	list_snaps(c, cl, &sl);
	assert_int_equal(sl.n, 2);
	assert_string_not_equal(sl.s[0].name, sl.s[1].name);
	assert_string_equal(sl.s[0].name, n1);
	assert_string_equal(sl.s[1].name, n2);
	list_snaps(c, 0, &sl);
	assert_int_equal(sl.n, 3);
	assert_int_equal(q1(f->db, "SELECT count(DISTINCT name) FROM snapshots WHERE cluster = 1"), 2);
	(void)s3;
	catalog_close(c);
}

static void test_snapshot_abandon(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, node, snap, nb, root, keep, keep_nb;
	struct catalog_entry en, got;
	struct snaps sl;
	char name[48];
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	keep = make_snapshot(c, cl, node, T0, name);
	keep_nb = catalog_prev_node_backup(c, node);
	assert_true(keep_nb > 0);

	check_ok(catalog_begin(c, E));
	snap = begin_snapshot(c, cl, node, &nb, &root);
	for (int i = 0; i < 10; i++) {
		char n[16];
		snprintf(n, sizeof n, "f%d", i);
		file_entry(&en, root, n, 0, 0);
		check_ok(catalog_entry_add(c, nb, &en, E));
	}
	check_ok(catalog_commit(c, E));
	assert_int_equal(qf(f->db, "SELECT count(*) FROM entries WHERE nb = %lld", (long long)nb), 11);
	check_ok(catalog_entry_lookup(c, nb, root, "f3", &got, E));

	check_ok(catalog_snapshot_abandon(c, snap, E));
	assert_int_equal(qf(f->db, "SELECT count(*) FROM snapshots WHERE id = %lld", (long long)snap), 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM node_backups WHERE snapshot = %lld", (long long)snap), 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM entries WHERE nb = %lld", (long long)nb), 0);
	assert_int_equal(catalog_entry_lookup(c, nb, root, "f3", &got, NULL), ERR_NOTFOUND);
	assert_int_equal(catalog_entry_get(c, root, &got, NULL), ERR_NOTFOUND);

	/* the complete snapshot is untouched */
	list_snaps(c, cl, &sl);
	assert_int_equal(sl.n, 1);
	assert_int_equal(sl.s[0].id, keep);
	assert_int_equal(sl.s[0].nodes, 1);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM entries WHERE nb = %lld", (long long)keep_nb), 1);
	catalog_close(c);
}

/* Abandoning is for snapshots that did not complete: a complete one must stay whole. */
static void test_snapshot_abandon_complete(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, node, snap, nb;
	struct snaps sl;
	char name[48];
	int whole;
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	snap = make_snapshot(c, cl, node, T0, name);
	nb = catalog_prev_node_backup(c, node);
	(void)catalog_snapshot_abandon(c, snap, NULL);
	list_snaps(c, cl, &sl);
	assert_int_equal(sl.n, 1); /* the snapshot row is guarded by state = 'running' */
	whole = sl.s[0].nodes == 1 && qf(f->db, "SELECT count(*) FROM entries WHERE nb = %lld", (long long)nb) == 1;
	catalog_close(c);
	known_bug(whole, "catalog_snapshot_abandon deletes the node backups and entries of a complete snapshot "
			 "(only the snapshots row is guarded by state = 'running')");
}

/* in an open transaction: a finished content list (hash all fill, *final its id) and an unfinished one */
static void two_contents(catalog *c, int fill, int64_t *done, int64_t *final, int64_t *open)
{
	uint8_t hash[32];
	check_ok(catalog_content_begin(c, done, E));
	check_ok(catalog_content_add(c, *done, 0, 10, 0, E));
	memset(hash, fill, sizeof hash);
	check_ok(catalog_content_finish(c, *done, hash, 10, 1, final, E));
	check_ok(catalog_content_begin(c, open, E));
	check_ok(catalog_content_add(c, *open, 0, 10, 0, E));
}

static void test_cleanup_stale(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, node, keep, snap, nb, root, done_content, open_content, final;
	struct catalog_entry en;
	char name[48];
	int n = -1;
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));

	/* nothing to do on a clean catalog */
	check_ok(catalog_cleanup_stale(c, &n, E));
	assert_int_equal(n, 0);

	keep = make_snapshot(c, cl, node, T0, name);
	check_ok(catalog_begin(c, E));
	/* a finished content list (shared, stays) and an unfinished one (dropped) */
	two_contents(c, 0xaa, &done_content, &final, &open_content);
	check_ok(catalog_content_add(c, open_content, 10, 10, 0, E));
	snap = begin_snapshot(c, cl, node, &nb, &root);
	file_entry(&en, root, "half", 20, open_content);
	check_ok(catalog_entry_add(c, nb, &en, E));
	check_ok(catalog_commit(c, E));
	{
		/* a second one, as if from another interrupted run */
		int64_t nb2, root2;
		check_ok(catalog_begin(c, E));
		(void)begin_snapshot(c, cl, node, &nb2, &root2);
		check_ok(catalog_commit(c, E));
	}
	assert_int_equal(q1(f->db, "SELECT count(*) FROM snapshots WHERE state = 'running'"), 2);

	check_ok(catalog_cleanup_stale(c, &n, E));
	assert_int_equal(n, 2);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM snapshots WHERE state = 'running'"), 0);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM snapshots"), 1);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM snapshots WHERE id = %lld", (long long)keep), 1);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM entries WHERE nb = %lld", (long long)nb), 0);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM contents WHERE hash IS NULL"), 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM content_chunks WHERE content = %lld", (long long)open_content),
			 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM contents WHERE id = %lld", (long long)done_content), 1);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM content_chunks WHERE content = %lld", (long long)done_content),
			 1);
	(void)snap;

	/* idempotent */
	check_ok(catalog_cleanup_stale(c, &n, E));
	assert_int_equal(n, 0);
	catalog_close(c);
}

/* a run that fails (not one that dies) abandons its snapshot: its unfinished lists go with it */
static void test_abandon_drops_unfinished(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, node, snap, nb, root, done_content, open_content, final;
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	check_ok(catalog_begin(c, E));
	two_contents(c, 0xbb, &done_content, &final, &open_content);
	snap = begin_snapshot(c, cl, node, &nb, &root);
	check_ok(catalog_commit(c, E)); /* a step commit of the run */
	check_ok(catalog_begin(c, E));
	check_ok(catalog_snapshot_abandon(c, snap, E));
	check_ok(catalog_commit(c, E));
	assert_int_equal(q1(f->db, "SELECT count(*) FROM contents WHERE hash IS NULL"), 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM content_chunks WHERE content = %lld", (long long)open_content),
			 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM contents WHERE id = %lld", (long long)final), 1);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM snapshots"), 0);
	catalog_close(c);
}

/* "Abandons every 'running' snapshot", however many there are. */
static void test_cleanup_stale_many(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, snap;
	int n = -1, all;
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_begin(c, E));
	for (int i = 0; i < 70; i++)
		check_ok(catalog_snapshot_begin(c, cl, "offline", &snap, E));
	check_ok(catalog_commit(c, E));
	check_ok(catalog_cleanup_stale(c, &n, E));
	all = n == 70 && q1(f->db, "SELECT count(*) FROM snapshots") == 0;
	catalog_close(c);
	known_bug(all, "catalog_cleanup_stale abandons at most 64 running snapshots per call (LIMIT 64)");
}

/* --- packs, chunks, contents --- */

struct store_fixture {
	int64_t pack;
	uint8_t pack_hash[32];
	int64_t chunk[4];
	uint8_t chunk_id[4][32];
};

/* One completed pack with four chunks (ids 0x11.., 0x22.., ...). */
static void add_chunks(catalog *c, struct store_fixture *s)
{
	memset(s, 0, sizeof *s);
	check_ok(catalog_pack_begin(c, &s->pack, E));
	memset(s->pack_hash, 0x5a, sizeof s->pack_hash);
	check_ok(catalog_pack_finish(c, s->pack, s->pack_hash, 4096, E));
	for (int i = 0; i < 4; i++) {
		memset(s->chunk_id[i], 0x11 * (i + 1), 32);
		check_ok(catalog_chunk_add(c, s->chunk_id[i], s->pack, 16 + 100u * (uint32_t)i, 100, 1000, &s->chunk[i],
					   E));
		assert_true(s->chunk[i] > 0);
	}
}

static void test_chunks(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	struct store_fixture s;
	uint8_t other[32];
	int64_t dup;
	check_ok(catalog_begin(c, E));
	add_chunks(c, &s);
	check_ok(catalog_commit(c, E));
	for (int i = 0; i < 4; i++)
		assert_int_equal(catalog_chunk_find(c, s.chunk_id[i]), s.chunk[i]);
	memset(other, 0x99, sizeof other);
	assert_int_equal(catalog_chunk_find(c, other), 0);
	/* a blob id is recorded once */
	assert_true(catalog_chunk_add(c, s.chunk_id[0], s.pack, 16, 100, 1000, &dup, NULL) < 0);
	catalog_close(c);
}

static void test_content_dedup(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	struct store_fixture s;
	int64_t a, b, fa, fb, d, fd2;
	uint8_t h1[32], h2[32];
	memset(h1, 0x01, sizeof h1);
	memset(h2, 0x02, sizeof h2);
	check_ok(catalog_begin(c, E));
	add_chunks(c, &s);
	check_ok(catalog_content_begin(c, &a, E));
	check_ok(catalog_content_add(c, a, 0, 1000, s.chunk[0], E));
	check_ok(catalog_content_add(c, a, 1000, 1000, s.chunk[1], E));
	check_ok(catalog_content_finish(c, a, h1, 2000, 2, &fa, E));
	assert_int_equal(fa, a);

	/* same hash: the new list is dropped, the old one is returned */
	check_ok(catalog_content_begin(c, &b, E));
	assert_int_not_equal(a, b);
	check_ok(catalog_content_add(c, b, 0, 1000, s.chunk[0], E));
	check_ok(catalog_content_add(c, b, 1000, 1000, s.chunk[1], E));
	check_ok(catalog_content_finish(c, b, h1, 2000, 2, &fb, E));
	assert_int_equal(fb, a);
	check_ok(catalog_commit(c, E));
	assert_int_equal(qf(f->db, "SELECT count(*) FROM contents WHERE id = %lld", (long long)b), 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM content_chunks WHERE content = %lld", (long long)b), 0);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM content_chunks WHERE content = %lld", (long long)a), 2);
	assert_int_equal(qf(f->db, "SELECT size FROM contents WHERE id = %lld", (long long)a), 2000);
	assert_int_equal(qf(f->db, "SELECT nchunks FROM contents WHERE id = %lld", (long long)a), 2);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM contents"), 1);

	/* another hash: a new list (it may reuse the dropped list's number) */
	check_ok(catalog_begin(c, E));
	check_ok(catalog_content_begin(c, &d, E));
	check_ok(catalog_content_add(c, d, 0, 1000, s.chunk[2], E));
	check_ok(catalog_content_finish(c, d, h2, 1000, 1, &fd2, E));
	assert_int_equal(fd2, d);
	assert_int_not_equal(d, a);
	check_ok(catalog_commit(c, E));
	assert_int_equal(q1(f->db, "SELECT count(*) FROM contents"), 2);
	assert_int_equal(qf(f->db, "SELECT count(*) FROM content_chunks WHERE content = %lld", (long long)d), 1);
	catalog_close(c);
}

static void test_content_pieces(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	struct store_fixture s;
	struct content_piece p[8];
	int64_t ct, fin;
	uint8_t h[32];
	size_t n;
	/* 0..1000 chunk0 | 1000..1500 hole | 1500..2500 chunk1 | 2500..2600 chunk2 */
	memset(h, 0x03, sizeof h);
	check_ok(catalog_begin(c, E));
	add_chunks(c, &s);
	check_ok(catalog_content_begin(c, &ct, E));
	check_ok(catalog_content_add(c, ct, 0, 1000, s.chunk[0], E));
	check_ok(catalog_content_add(c, ct, 1000, 500, 0, E));
	check_ok(catalog_content_add(c, ct, 1500, 1000, s.chunk[1], E));
	check_ok(catalog_content_add(c, ct, 2500, 100, s.chunk[2], E));
	check_ok(catalog_content_finish(c, ct, h, 2600, 4, &fin, E));
	check_ok(catalog_commit(c, E));

	check_ok(catalog_content_pieces(c, ct, 0, p, 8, &n, E));
	assert_int_equal(n, 4);
	assert_int_equal(p[0].off, 0);
	assert_int_equal(p[0].len, 1000);
	assert_int_equal(p[0].chunk, s.chunk[0]);
	assert_memory_equal(p[0].loc.id, s.chunk_id[0], 32);
	assert_memory_equal(p[0].loc.pack, s.pack_hash, 32);
	assert_int_equal(p[0].loc.offset, 16);
	assert_int_equal(p[0].loc.length, 100);
	assert_int_equal(p[0].loc.raw, 1000);
	assert_int_equal(p[1].off, 1000);
	assert_int_equal(p[1].len, 500);
	assert_int_equal(p[1].chunk, 0); /* hole */
	assert_int_equal(p[2].off, 1500);
	assert_memory_equal(p[2].loc.id, s.chunk_id[1], 32);
	assert_int_equal(p[2].loc.offset, 116);
	assert_int_equal(p[3].off, 2500);
	assert_int_equal(p[3].len, 100);

	/* the first piece returned is the one covering the offset */
	{
		static const struct {
			uint64_t from, first;
			size_t n;
		} cases[] = {{1, 0, 4},	      {999, 0, 4},     {1000, 1000, 3}, {1001, 1000, 3},
			     {1499, 1000, 3}, {1500, 1500, 2}, {2499, 1500, 2}, {2500, 2500, 1},
			     {2599, 2500, 1}};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			check_ok(catalog_content_pieces(c, ct, cases[i].from, p, 8, &n, E));
			if (n != cases[i].n || p[0].off != cases[i].first)
				print_error("from %llu: got %zu pieces from %llu\n", (unsigned long long)cases[i].from, n,
					    (unsigned long long)p[0].off);
			assert_int_equal(n, cases[i].n);
			assert_int_equal(p[0].off, cases[i].first);
		}
	}
	/* at or past the end: nothing (no piece covers it) */
	check_ok(catalog_content_pieces(c, ct, 2600, p, 8, &n, E));
	assert_int_equal(n, 0);
	check_ok(catalog_content_pieces(c, ct, 1u << 30, p, 8, &n, E));
	assert_int_equal(n, 0);
	/* max bounds the answer */
	check_ok(catalog_content_pieces(c, ct, 1200, p, 2, &n, E));
	assert_int_equal(n, 2);
	assert_int_equal(p[0].off, 1000);
	assert_int_equal(p[1].off, 1500);
	/* unknown content: nothing */
	check_ok(catalog_content_pieces(c, ct + 100, 0, p, 8, &n, E));
	assert_int_equal(n, 0);

	/* a chunk whose pack row went missing is corruption, not a hole */
	exec2(f->db, "DELETE FROM packs");
	assert_int_equal(catalog_content_pieces(c, ct, 0, p, 8, &n, NULL), ERR_CORRUPT);
	catalog_close(c);
}

/* --- tree entries --- */

static void test_entries(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, node, snap, nb, root;
	struct catalog_entry en, got;
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	check_ok(catalog_begin(c, E));
	snap = begin_snapshot(c, cl, node, &nb, &root);
	file_entry(&en, root, "PG_VERSION", 3, 0);
	en.rdev = 77;
	check_ok(catalog_entry_add(c, nb, &en, E));
	assert_true(en.id > root);
	memset(&en, 0, sizeof en);
	en.parent = root;
	snprintf(en.name, sizeof en.name, "link");
	en.mode = 0120777;
	snprintf(en.target, sizeof en.target, "/data/pg_wal");
	check_ok(catalog_entry_add(c, nb, &en, E));
	/* a name is unique within its directory */
	file_entry(&got, root, "link", 0, 0);
	assert_true(catalog_entry_add(c, nb, &got, NULL) < 0);
	check_ok(catalog_commit(c, E));

	check_ok(catalog_entry_lookup(c, nb, root, "PG_VERSION", &got, E));
	assert_string_equal(got.name, "PG_VERSION");
	assert_int_equal(got.parent, root);
	assert_int_equal(got.mode, 0100644);
	assert_int_equal(got.uid, 26);
	assert_int_equal(got.size, 3);
	assert_int_equal(got.mtime_ns, T0 * 1000 + 7);
	assert_int_equal(got.src_ino, 4242);
	assert_int_equal(got.rdev, 77);
	assert_int_equal(got.content, 0);
	assert_string_equal(got.target, "");
	check_ok(catalog_entry_lookup(c, nb, root, "link", &got, E));
	assert_string_equal(got.target, "/data/pg_wal");
	check_ok(catalog_entry_get(c, en.id, &got, E));
	assert_string_equal(got.name, "link");
	assert_int_equal(catalog_entry_nb(c, en.id), nb);
	assert_int_equal(catalog_entry_nb(c, en.id + 1000), 0);
	assert_int_equal(catalog_entry_lookup(c, nb, root, "nope", &got, NULL), ERR_NOTFOUND);
	assert_int_equal(catalog_entry_lookup(c, nb + 1, root, "link", &got, NULL), ERR_NOTFOUND);
	(void)snap;
	catalog_close(c);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_dir_page(void **state)
{
	enum { N = 1000, PAGE = 64 };
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	int64_t cl, node, snap, nb, root, sub, nb2, root2;
	struct catalog_entry en, *page = calloc(PAGE, sizeof *page);
	char *names[N], after[256] = "";
	size_t got = 0, pages = 0, n;
	uint64_t seed = 42;
	int order[N];
	assert_non_null(page);
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));

	/* names of varied shape: digits, upper/lower case, UTF-8, prefixes of each other */
	for (int i = 0; i < N; i++) {
		char buf[64];
		switch (i % 5) {
		case 0: snprintf(buf, sizeof buf, "%d", i); break;
		case 1: snprintf(buf, sizeof buf, "File_%04d", i); break;
		case 2: snprintf(buf, sizeof buf, "file_%d.tmp", i); break;
		case 3: snprintf(buf, sizeof buf, "\xc3\xa9t\xc3\xa9-%d", i); break;
		default: snprintf(buf, sizeof buf, "%d%d", i, i); break;
		}
		names[i] = strdup(buf);
		assert_non_null(names[i]);
		order[i] = i;
	}
	for (int i = N - 1; i > 0; i--) { /* insert in random order */
		int j = (int)(unit_rand_next(&seed) % (uint64_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	check_ok(catalog_begin(c, E));
	snap = begin_snapshot(c, cl, node, &nb, &root);
	dir_entry(&en, root, "sub");
	check_ok(catalog_entry_add(c, nb, &en, E));
	sub = en.id;
	for (int i = 0; i < N; i++) {
		file_entry(&en, root, names[order[i]], (uint64_t)order[i], 0);
		check_ok(catalog_entry_add(c, nb, &en, E));
	}
	/* neighbours that must not show up: another directory, another node backup */
	for (int i = 0; i < 10; i++) {
		char buf[32];
		snprintf(buf, sizeof buf, "inner%d", i);
		file_entry(&en, sub, buf, 0, 0);
		check_ok(catalog_entry_add(c, nb, &en, E));
	}
	/* a second node backup in the same snapshot */
	check_ok(catalog_node_ensure(c, cl, "worker", &node, E));
	check_ok(catalog_node_backup_begin(c, snap, node, "/w", &nb2, E));
	dir_entry(&en, 0, "");
	check_ok(catalog_entry_add(c, nb2, &en, E));
	root2 = en.id;
	file_entry(&en, root2, "other", 0, 0);
	check_ok(catalog_entry_add(c, nb2, &en, E));
	check_ok(catalog_commit(c, E));

	qsort(names, N, sizeof names[0], cmp_str);
	for (;;) {
		check_ok(catalog_dir_page(c, nb, root, after, page, PAGE, &n, E));
		assert_true(n <= PAGE);
		if (n == 0)
			break;
		pages++;
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(page[i].name, "sub"))
				continue;
			assert_true(got < N);
			if (strcmp(page[i].name, names[got]))
				print_error("entry %zu: got '%s', want '%s'\n", got, page[i].name, names[got]);
			assert_string_equal(page[i].name, names[got]);
			assert_int_equal(page[i].parent, root);
			got++;
		}
		for (size_t i = 1; i < n; i++)
			assert_true(strcmp(page[i - 1].name, page[i].name) < 0);
		assert_true(strcmp(after, page[0].name) < 0);
		snprintf(after, sizeof after, "%s", page[n - 1].name);
		if (n < PAGE)
			break;
	}
	assert_int_equal(got, N);
	assert_int_equal(pages, (N + 1 + PAGE - 1) / PAGE); /* + "sub" */

	check_ok(catalog_dir_page(c, nb, sub, "", page, PAGE, &n, E));
	assert_int_equal(n, 10);
	check_ok(catalog_dir_page(c, nb2, root2, "", page, PAGE, &n, E));
	assert_int_equal(n, 1);
	assert_string_equal(page[0].name, "other");
	check_ok(catalog_dir_page(c, nb, root, "\xff", page, PAGE, &n, E));
	assert_int_equal(n, 0);

	for (int i = 0; i < N; i++)
		free(names[i]);
	free(page);
	catalog_close(c);
}

/* --- consistency --- */

struct msgs {
	int n;
	char all[2048];
};

static int collect_msg(void *ctx, const char *msg)
{
	struct msgs *m = ctx;
	size_t l = strlen(m->all);
	m->n++;
	snprintf(m->all + l, sizeof m->all - l, "%s\n", msg);
	return 0;
}

/* A small consistent catalog: one complete snapshot with a file that has content. */
static void fill_consistent(catalog *c, int64_t *content_out)
{
	struct store_fixture s;
	struct catalog_entry en;
	struct nb_totals t = {1, 2000, 2000, 200};
	int64_t cl, node, snap, nb, root, ct, fin;
	uint8_t h[32];
	char name[48];
	memset(h, 0x07, sizeof h);
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	check_ok(catalog_begin(c, E));
	add_chunks(c, &s);
	check_ok(catalog_content_begin(c, &ct, E));
	check_ok(catalog_content_add(c, ct, 0, 1000, s.chunk[0], E));
	check_ok(catalog_content_add(c, ct, 1000, 1000, s.chunk[1], E));
	check_ok(catalog_content_finish(c, ct, h, 2000, 2, &fin, E));
	snap = begin_snapshot(c, cl, node, &nb, &root);
	file_entry(&en, root, "base", 2000, fin);
	check_ok(catalog_entry_add(c, nb, &en, E));
	check_ok(catalog_node_backup_finish(c, nb, root, &t, E));
	check_ok(catalog_snapshot_finish(c, snap, T0, name, E));
	check_ok(catalog_commit(c, E));
	if (content_out)
		*content_out = fin;
}

static void test_verify(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	struct msgs m;
	int64_t ct;
	int problems = -1;
	char sql[256];
	fill_consistent(c, &ct);
	memset(&m, 0, sizeof m);
	check_ok(catalog_verify(c, collect_msg, &m, &problems, E));
	if (problems)
		print_error("%s", m.all);
	assert_int_equal(problems, 0);
	assert_int_equal(m.n, 0);
	check_ok(catalog_verify(c, NULL, NULL, &problems, E));
	assert_int_equal(problems, 0);

	/* a content list entry that points at a chunk the catalog does not have */
	snprintf(sql, sizeof sql, "INSERT INTO content_chunks(content, off, len, chunk) VALUES (%lld, 5000, 10, 424242)",
		 (long long)ct);
	exec2(f->db, sql);
	memset(&m, 0, sizeof m);
	check_ok(catalog_verify(c, collect_msg, &m, &problems, E));
	assert_true(problems > 0);
	assert_int_equal(m.n, problems);
	assert_non_null(strstr(m.all, "chunks the catalog does not have"));

	/* and a file whose size differs from its content list */
	exec2(f->db, "UPDATE entries SET size = 1 WHERE name = 'base'");
	memset(&m, 0, sizeof m);
	check_ok(catalog_verify(c, collect_msg, &m, &problems, E));
	assert_int_equal(problems, 2);
	assert_non_null(strstr(m.all, "size differs"));
	catalog_close(c);
}

/* --- archived WAL files --- */

static void test_wal(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	struct catalog_wal w, got;
	struct msgs m;
	int64_t ct, cl, node, n2 = 0;
	int problems = -1;
	struct err e;
	err_clear(&e);
	fill_consistent(c, &ct); /* ct: a complete content list of 2000 bytes */
	check_ok(catalog_cluster_find(c, "prod", &cl, E));
	assert_int_equal(catalog_node_find(c, cl, "nosuch", &n2, &e), ERR_NOTFOUND);
	assert_non_null(strstr(e.msg, "nosuch"));
	check_ok(catalog_node_find(c, cl, "coord", &node, E));

	memset(&w, 0, sizeof w);
	w.node = node;
	snprintf(w.name, sizeof w.name, "000000010000000000000003");
	w.timeline = 1;
	w.segno = 3;
	w.size = 2000;
	w.content = ct;
	memset(w.sha256, 0xab, 32);
	w.digest = WAL_DIGEST_CONTENT;
	w.stored_us = T0;
	check_ok(catalog_begin(c, E));
	check_ok(catalog_wal_add(c, &w, E));
	assert_true(w.id > 0);
	/* a history file: no segment number, no content (empty) */
	memset(&got, 0, sizeof got);
	snprintf(got.name, sizeof got.name, "00000002.history");
	got.node = node;
	got.timeline = 2;
	got.segno = -1;
	got.stored_us = T0;
	check_ok(catalog_wal_add(c, &got, E));
	/* names are unique per node */
	assert_true(catalog_wal_add(c, &w, NULL) < 0);
	check_ok(catalog_commit(c, E));

	memset(&got, 0, sizeof got);
	check_ok(catalog_wal_find(c, node, "000000010000000000000003", &got, E));
	assert_int_equal(got.id, w.id);
	assert_int_equal(got.timeline, 1);
	assert_int_equal(got.segno, 3);
	assert_int_equal(got.size, 2000);
	assert_int_equal(got.content, ct);
	assert_memory_equal(got.sha256, w.sha256, 32);
	assert_int_equal(got.digest, WAL_DIGEST_CONTENT);
	assert_int_equal(got.first_commit_us, 0); /* time index not filled yet: NULL */
	check_ok(catalog_wal_find(c, node, "00000002.history", &got, E));
	assert_int_equal(got.digest, WAL_DIGEST_SHA256); /* the column's default */
	assert_int_equal(got.segno, -1);
	assert_int_equal(got.content, 0);
	assert_int_equal(catalog_wal_find(c, node, "000000010000000000000004", &got, &e), ERR_NOTFOUND);
	assert_int_equal(q1(f->db, "SELECT count(*) FROM wal WHERE first_commit_us IS NULL AND segno IS NULL"), 1);

	memset(&m, 0, sizeof m);
	check_ok(catalog_verify(c, collect_msg, &m, &problems, E));
	assert_int_equal(problems, 0);
	/* a WAL file whose content list is missing is a problem check reports */
	exec2(f->db, "UPDATE wal SET content = 424242 WHERE segno = 3");
	memset(&m, 0, sizeof m);
	check_ok(catalog_verify(c, collect_msg, &m, &problems, E));
	assert_int_equal(problems, 1);
	assert_non_null(strstr(m.all, "WAL files"));
	catalog_close(c);
}

/* wal-stream's partial rows: dropped per node and timeline up to a segment; the last segment */
static void test_wal_partials(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	struct catalog_wal w, got;
	int64_t ct, cl, node, other;
	int n = -1;
	struct err e;
	static const struct {
		const char *name;
		int64_t tli, segno;
		int on_other;
	} rows[] = {
		{"000000010000000000000003", 1, 3, 0},	       {"000000010000000000000004", 1, 4, 0},
		{"000000010000000000000005.partial", 1, 5, 0}, {"000000010000000000000006.partial", 1, 6, 0},
		{"000000020000000000000002", 2, 2, 0},	       {"000000020000000000000003.partial", 2, 3, 0},
		{"00000002.history", 2, -1, 0},		       {"000000010000000000000005.partial", 1, 5, 1},
		{"000000010000000000000009", 1, 9, 1},
	};
	err_clear(&e);
	fill_consistent(c, &ct);
	check_ok(catalog_cluster_find(c, "prod", &cl, E));
	check_ok(catalog_node_find(c, cl, "coord", &node, E));
	check_ok(catalog_begin(c, E));
	check_ok(catalog_node_ensure(c, cl, "worker9", &other, E));
	assert_int_equal(catalog_wal_last_segment(c, node, &got, &e), ERR_NOTFOUND);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		memset(&w, 0, sizeof w);
		w.node = rows[i].on_other ? other : node;
		snprintf(w.name, sizeof w.name, "%s", rows[i].name);
		w.timeline = rows[i].tli;
		w.segno = rows[i].segno;
		w.size = 2000;
		w.content = ct;
		w.stored_us = T0;
		check_ok(catalog_wal_add(c, &w, E));
	}
	/* the highest timeline first, then segment number; partials and history files do not count */
	check_ok(catalog_wal_last_segment(c, node, &got, E));
	assert_string_equal(got.name, "000000020000000000000002");
	check_ok(catalog_wal_last_segment(c, other, &got, E));
	assert_string_equal(got.name, "000000010000000000000009");
	/* up to segment 5 of timeline 1: one partial of this node, no segment, no other timeline */
	check_ok(catalog_wal_drop_partials(c, node, 1, 5, &n, E));
	assert_int_equal(n, 1);
	assert_int_equal(catalog_wal_find(c, node, "000000010000000000000005.partial", &got, NULL), ERR_NOTFOUND);
	check_ok(catalog_wal_find(c, node, "000000010000000000000006.partial", &got, E));
	check_ok(catalog_wal_find(c, node, "000000010000000000000004", &got, E));
	check_ok(catalog_wal_find(c, node, "000000020000000000000003.partial", &got, E));
	check_ok(catalog_wal_find(c, other, "000000010000000000000005.partial", &got, E));
	check_ok(catalog_wal_drop_partials(c, node, 1, 100, &n, E));
	assert_int_equal(n, 1);
	check_ok(catalog_wal_drop_partials(c, node, 1, 100, NULL, E));
	check_ok(catalog_commit(c, E));
	assert_int_equal(q1(f->db, "SELECT count(*) FROM wal"), 7);
	catalog_close(c);
}

/* --- writer lock --- */

static void test_writer_lock(void **state)
{
	struct fixture *f = *state;
	int fd1 = -1, fd2 = -1;
	char lockpath[512], want[64];
	uint8_t *buf;
	size_t len;
	struct err e;
	double t;
	check_ok(catalog_writer_lock(f->state, 0, &fd1, E));
	assert_true(fd1 >= 0);
	snprintf(lockpath, sizeof lockpath, "%s/writer.lock", f->state);
	assert_int_equal(util_read_small(lockpath, 100, &buf, &len, NULL), 0);
	snprintf(want, sizeof want, "%ld\n", (long)getpid());
	assert_string_equal((char *)buf, want);
	free(buf);

	/* a second open file description conflicts, even in the same process */
	err_clear(&e);
	fd2 = -1;
	assert_int_equal(catalog_writer_lock(f->state, 0, &fd2, &e), ERR_LOCKED);
	assert_int_equal(e.code, ERR_LOCKED);
	assert_int_equal(fd2, -1);
	snprintf(want, sizeof want, "pid %ld", (long)getpid());
	assert_non_null(strstr(e.msg, want));
	assert_true(strlen(e.hint) > 0);

	/* waiting gives up after the time asked for */
	t = util_mono();
	assert_int_equal(catalog_writer_lock(f->state, 1, &fd2, NULL), ERR_LOCKED);
	assert_true(util_mono() - t >= 0.9);

	/* a child process is refused too */
	{
		pid_t pid = fork();
		int status = 0;
		assert_true(pid >= 0);
		if (pid == 0) {
			int fd = -1;
			_exit(catalog_writer_lock(f->state, 0, &fd, NULL) == ERR_LOCKED ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}

	catalog_writer_unlock(fd1);
	check_ok(catalog_writer_lock(f->state, 0, &fd2, E));
	assert_true(fd2 >= 0);
	catalog_writer_unlock(fd2);
	catalog_writer_unlock(-1);

	/* a state directory that does not exist */
	{
		char missing[512];
		int fd = -1;
		snprintf(missing, sizeof missing, "%s/nope", f->dir);
		err_clear(&e);
		assert_int_equal(catalog_writer_lock(missing, 0, &fd, &e), ERR_IO);
		assert_int_equal(fd, -1);
	}
}

/* --- catalog copies --- */

static zones *mkzones(const char *dir, const char *prefix)
{
	char p[NZ][512];
	const char *paths[NZ];
	zones *z;
	for (int i = 0; i < NZ; i++) {
		snprintf(p[i], sizeof p[i], "%s/%s%d", dir, prefix, i + 1);
		paths[i] = p[i];
	}
	z = zones_new(paths, NZ);
	assert_non_null(z);
	return z;
}

/* A new repository in <dir>/<prefix>1..3, opened. */
static struct repo *make_repo(const char *dir, const char *prefix)
{
	struct repo_config cfg;
	struct repo *r = NULL;
	zones *z = mkzones(dir, prefix);
	check_ok(repo_config_default(&cfg, E));
	cfg.kdf.log2n = 10;
	check_ok(repo_init(z, &cfg, PASS, strlen(PASS), E));
	zones_free(z);
	z = mkzones(dir, prefix);
	check_ok(repo_open(z, PASS, strlen(PASS), &r, E));
	assert_non_null(r);
	return r;
}

static void copy_path(const struct repo *r, int zone, uint64_t gen, char *out, size_t cap)
{
	char rel[64];
	snprintf(rel, sizeof rel, "catalog/%020llu", (unsigned long long)gen);
	zones_file(r->z, zone, rel, out, cap);
}

static void read_file(const char *path, uint8_t **buf, size_t *len)
{
	assert_int_equal(util_read_small(path, 64u << 20, buf, len, NULL), 0);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(util_write_all(fd, buf, len), 0);
	close(fd);
}

/* catalog_copy_decode of len bytes of buf (through a file) into /dev/null. */
static int decode_bytes(const struct fixture *f, const struct repo *r, const uint8_t *buf, size_t len,
			uint64_t *gen, struct err *e)
{
	char path[512];
	int in, out, rc;
	snprintf(path, sizeof path, "%s/decode-me", f->dir);
	write_file(path, buf, len);
	in = open(path, O_RDONLY);
	out = open("/dev/null", O_WRONLY);
	assert_true(in >= 0 && out >= 0);
	rc = catalog_copy_decode(r, in, out, gen, e);
	close(in);
	close(out);
	return rc;
}

/* A catalog of this repository with two snapshots (names into n1, n2). */
static catalog *catalog_for(const struct fixture *f, const struct repo *r, char n1[48], char n2[48])
{
	catalog *c = open_cat(f->db);
	int64_t cl, node;
	check_ok(catalog_meta_set(c, "repository", r->cfg.id, E));
	fill_consistent(c, NULL);
	check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
	check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
	(void)make_snapshot(c, cl, node, T0 + 1000, n1); /* same second as fill_consistent's */
	(void)make_snapshot(c, cl, node, T0 + 86400ll * 1000000, n2);
	return c;
}

static void same_snapshots(catalog *a, catalog *b)
{
	struct snaps sa, sb;
	list_snaps(a, 0, &sa);
	list_snaps(b, 0, &sb);
	assert_int_equal(sa.n, sb.n);
	for (size_t i = 0; i < sa.n; i++) {
		assert_int_equal(sa.s[i].id, sb.s[i].id);
		assert_string_equal(sa.s[i].name, sb.s[i].name);
		assert_string_equal(sa.s[i].cluster_name, sb.s[i].cluster_name);
		assert_int_equal(sa.s[i].time_us, sb.s[i].time_us);
		assert_int_equal(sa.s[i].nodes, sb.s[i].nodes);
		assert_int_equal(sa.s[i].files, sb.s[i].files);
	}
}

static void test_copy_push_recover(void **state)
{
	struct fixture *f = *state;
	struct repo *r = make_repo(f->dir, "z");
	char n1[48], n2[48], dest[512], p[PATH_MAX];
	catalog *c = catalog_for(f, r, n1, n2), *back;
	uint64_t gen = 0, got_gen = 0;
	int zone = -1, problems = -1;
	struct snaps sl;
	struct err e;
	assert_string_equal(n1, "2023-11-14T22:13:20.001000Z");
	assert_string_equal(n2, "2023-11-15T22:13:20Z");

	/* nothing to recover yet */
	snprintf(dest, sizeof dest, "%s/recovered.db", f->dir);
	err_clear(&e);
	assert_int_equal(catalog_copy_recover(r, dest, &got_gen, &zone, NULL, 0, &e), ERR_NOTFOUND);
	assert_int_not_equal(access(dest, F_OK), 0);

	check_ok(catalog_copy_push(c, r, f->state, &gen, E));
	assert_int_equal(gen, 1);
	for (int i = 0; i < NZ; i++) {
		copy_path(r, i, 1, p, sizeof p);
		assert_int_equal(access(p, F_OK), 0);
	}
	/* the temporary files in the state directory are gone */
	snprintf(p, sizeof p, "%s/catalog-copy.db", f->state);
	assert_int_not_equal(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/catalog-copy.sealed", f->state);
	assert_int_not_equal(access(p, F_OK), 0);

	check_ok(catalog_copy_recover(r, dest, &got_gen, &zone, NULL, 0, E));
	assert_int_equal(got_gen, 1);
	assert_int_equal(zone, 0);
	back = open_cat(dest);
	same_snapshots(c, back);
	list_snaps(back, 0, &sl);
	assert_int_equal(sl.n, 3);
	check_ok(catalog_verify(back, NULL, NULL, &problems, E));
	assert_int_equal(problems, 0);
	catalog_close(back);

	/* dest must not exist */
	err_clear(&e);
	assert_int_equal(catalog_copy_recover(r, dest, NULL, NULL, NULL, 0, &e), ERR_EXISTS);

	/* more generations: the newest is recovered, only CATALOG_COPY_KEEP are kept; a file in
	 * zone 1's catalog/ that is no copy is neither counted nor removed */
	zones_file(r->z, 0, "catalog/notes", p, sizeof p);
	write_file(p, (const uint8_t *)"x", 1);
	for (int i = 0; i < 4; i++) {
		int64_t cl, node;
		char nm[48];
		check_ok(catalog_cluster_ensure(c, "prod", &cl, E));
		check_ok(catalog_node_ensure(c, cl, "coord", &node, E));
		(void)make_snapshot(c, cl, node, T0 + (int64_t)(i + 2) * 86400 * 1000000, nm);
		check_ok(catalog_copy_push(c, r, f->state, &gen, E));
		assert_int_equal(gen, 2 + (uint64_t)i);
	}
	for (int i = 0; i < NZ; i++) {
		char **names;
		size_t n;
		check_ok(zones_list(r->z, i, "catalog", &names, &n, E));
		assert_int_equal(n, CATALOG_COPY_KEEP + (i == 0));
		if (i == 0)
			assert_string_equal(names[n - 1], "notes");
		assert_string_equal(names[CATALOG_COPY_KEEP - 1], "00000000000000000005");
		assert_string_equal(names[0], "00000000000000000003");
		zones_list_free(names, n);
	}
	assert_int_equal(unlink(p), 0);
	assert_int_equal(unlink(dest), 0);
	check_ok(catalog_copy_recover(r, dest, &got_gen, &zone, NULL, 0, E));
	assert_int_equal(got_gen, 5);
	back = open_cat(dest);
	same_snapshots(c, back);
	list_snaps(back, 0, &sl);
	assert_int_equal(sl.n, 7);
	catalog_close(back);

	/* generation 5 damaged in zone 1: zone 2's copy is used */
	{
		uint8_t *buf;
		size_t len;
		copy_path(r, 0, 5, p, sizeof p);
		read_file(p, &buf, &len);
		buf[len / 2] ^= 0x10;
		write_file(p, buf, len);
		free(buf);
	}
	assert_int_equal(unlink(dest), 0);
	check_ok(catalog_copy_recover(r, dest, &got_gen, &zone, NULL, 0, E));
	assert_int_equal(got_gen, 5);
	assert_int_equal(zone, 1);

	/* generation 5 gone everywhere else: the newest good one (4) */
	for (int i = 1; i < NZ; i++) {
		copy_path(r, i, 5, p, sizeof p);
		assert_int_equal(unlink(p), 0);
	}
	assert_int_equal(unlink(dest), 0);
	check_ok(catalog_copy_recover(r, dest, &got_gen, &zone, NULL, 0, E));
	assert_int_equal(got_gen, 4);
	assert_int_equal(zone, 0);
	back = open_cat(dest);
	list_snaps(back, 0, &sl);
	assert_int_equal(sl.n, 6);
	catalog_close(back);

	/* the recovered catalog (4, with 5 damaged in zone 1 passed over) counts from 5, so that
	 * its own copies are not refused as behind the zones */
	{
		char val[32];
		back = open_cat(dest);
		check_ok(catalog_meta_get(back, "generation", val, sizeof val));
		assert_string_equal(val, "5");
		catalog_close(back);
	}

	/* a catalog whose count went back (its state directory restored from an old backup, or
	 * a second catalog writing to the repository): its push is refused and nothing is
	 * written, so its copies never push the newer ones out */
	check_ok(catalog_meta_set(c, "generation", "1", E));
	err_clear(&e);
	assert_int_equal(catalog_copy_push(c, r, f->state, &gen, &e), ERR_CONFIG);
	assert_non_null(strstr(e.msg, "zone 1 holds catalog copy generation 5, newer than this catalog's last (1)"));
	assert_non_null(strstr(e.hint, "init --recover"));
	for (int i = 0; i < NZ; i++) {
		copy_path(r, i, 6, p, sizeof p);
		assert_int_not_equal(access(p, F_OK), 0);
		copy_path(r, i, 2, p, sizeof p);
		assert_int_not_equal(access(p, F_OK), 0);
	}
	/* counted from the zones' newest again, the next copy is numbered after it */
	check_ok(catalog_meta_set(c, "generation", "5", E));
	check_ok(catalog_copy_push(c, r, f->state, &gen, E));
	assert_int_equal(gen, 6);
	for (int i = 0; i < NZ; i++) {
		copy_path(r, i, 6, p, sizeof p);
		assert_int_equal(access(p, F_OK), 0);
	}
	assert_int_equal(unlink(dest), 0);
	check_ok(catalog_copy_recover(r, dest, &got_gen, &zone, NULL, 0, E));
	assert_int_equal(got_gen, 6);

	/* generation 6 damaged everywhere: 4 is installed (5 is damaged too), and the newer
	 * generations passed over are named */
	for (int i = 0; i < NZ; i++) {
		uint8_t *buf;
		size_t len;
		copy_path(r, i, 6, p, sizeof p);
		read_file(p, &buf, &len);
		buf[len / 2] ^= 0x10;
		write_file(p, buf, len);
		free(buf);
	}
	{
		char skipped[1024];
		assert_int_equal(unlink(dest), 0);
		check_ok(catalog_copy_recover(r, dest, &got_gen, &zone, skipped, sizeof skipped, E));
		assert_int_equal(got_gen, 4);
		assert_non_null(strstr(skipped, "zone 1 generation 6"));
		assert_non_null(strstr(skipped, "zone 3 generation 6"));
		assert_non_null(strstr(skipped, "zone 1 generation 5"));
		assert_null(strstr(skipped, "generation 4"));
		assert_non_null(strstr(skipped, "does not authenticate"));
	}

	/* this side cannot write the recovered file (a file size limit, as a full disk would):
	 * recovery stops with nothing installed instead of going on to an older copy */
	{
		struct rlimit old_lim, lim;
		void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
		assert_int_equal(unlink(dest), 0);
		assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
		lim = old_lim;
		lim.rlim_cur = 8192;
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
		err_clear(&e);
		assert_int_equal(catalog_copy_recover(r, dest, &got_gen, &zone, NULL, 0, &e), ERR_IO);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
		signal(SIGXFSZ, old_sig);
		assert_non_null(strstr(e.msg, "recovering generation 4 from zone 1"));
		assert_non_null(strstr(e.hint, "nothing was installed"));
		assert_int_not_equal(access(dest, F_OK), 0);
	}

	/* a push killed midway left a catalog-sized temporary in every zone: the next push sweeps
	 * it, and leaves one of a live process alone */
	{
		char dead[PATH_MAX], live[PATH_MAX], rel[64];
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(0);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		for (int i = 0; i < NZ; i++) {
			snprintf(rel, sizeof rel, "catalog/.tmp-%ld-dead", (long)pid);
			zones_file(r->z, i, rel, dead, sizeof dead);
			write_file(dead, (const uint8_t *)"x", 1);
			snprintf(rel, sizeof rel, "catalog/.tmp-%ld-live", (long)getppid());
			zones_file(r->z, i, rel, live, sizeof live);
			write_file(live, (const uint8_t *)"x", 1);
		}
		check_ok(catalog_copy_push(c, r, f->state, &gen, E));
		for (int i = 0; i < NZ; i++) {
			snprintf(rel, sizeof rel, "catalog/.tmp-%ld-dead", (long)pid);
			zones_file(r->z, i, rel, dead, sizeof dead);
			assert_int_not_equal(access(dead, F_OK), 0);
			snprintf(rel, sizeof rel, "catalog/.tmp-%ld-live", (long)getppid());
			zones_file(r->z, i, rel, live, sizeof live);
			assert_int_equal(access(live, F_OK), 0);
			assert_int_equal(unlink(live), 0);
		}
	}

	catalog_close(c);
	repo_close(r);
}

static void test_copy_damage(void **state)
{
	struct fixture *f = *state;
	struct repo *r = make_repo(f->dir, "z");
	char n1[48], n2[48], p[PATH_MAX];
	catalog *c = catalog_for(f, r, n1, n2);
	uint8_t *buf, *bad;
	size_t len;
	uint64_t gen = 0, got = 0;
	struct err e;
	int rc;
	check_ok(catalog_copy_push(c, r, f->state, &gen, E));
	check_ok(catalog_copy_push(c, r, f->state, &gen, E));
	assert_int_equal(gen, 2);
	copy_path(r, 0, 2, p, sizeof p);
	read_file(p, &buf, &len);
	assert_true(len > 32 + 4 + 28);
	assert_memory_equal(buf, CATALOG_COPY_MAGIC, 8);

	/* intact */
	check_ok(decode_bytes(f, r, buf, len, &got, E));
	assert_int_equal(got, 2);

	/* truncated anywhere */
	{
		size_t cuts[] = {0, 1, 8, 31, 32, 33, 35, 36, 37, 36 + 12, len / 2, len - 17, len - 16, len - 1};
		for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
			err_clear(&e);
			rc = decode_bytes(f, r, buf, cuts[i], NULL, &e);
			if (rc != ERR_CORRUPT)
				print_error("truncated to %zu of %zu: got %d (%s)\n", cuts[i], len, rc, e.msg);
			assert_int_equal(rc, ERR_CORRUPT);
			assert_true(strlen(e.msg) > 0);
		}
	}

	/* one byte flipped anywhere (every byte of the header and the frame length, a spread elsewhere) */
	bad = malloc(len + 1);
	assert_non_null(bad);
	{
		size_t step = len / 300 + 1;
		for (size_t i = 0; i < len; i += (i < 40 ? 1 : step)) {
			for (int bit = 0; bit < 8; bit += (i < 40 ? 1 : 7)) {
				memcpy(bad, buf, len);
				bad[i] ^= (uint8_t)(1u << bit);
				err_clear(&e);
				rc = decode_bytes(f, r, bad, len, NULL, &e);
				if (rc != ERR_CORRUPT)
					print_error("bit %d of byte %zu flipped: got %d (%s)\n", bit, i, rc, e.msg);
				assert_int_equal(rc, ERR_CORRUPT);
			}
		}
	}

	/* a byte appended */
	memcpy(bad, buf, len);
	bad[len] = 0;
	err_clear(&e);
	assert_int_equal(decode_bytes(f, r, bad, len + 1, NULL, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "after its last frame"));

	/* recovery skips a damaged copy and says why when none is left */
	for (int i = 0; i < NZ; i++) {
		for (uint64_t g = 1; g <= 2; g++) {
			copy_path(r, i, g, p, sizeof p);
			memcpy(bad, buf, len);
			bad[len - 1] ^= 1;
			write_file(p, bad, len);
		}
	}
	{
		char dest[512];
		snprintf(dest, sizeof dest, "%s/recovered.db", f->dir);
		err_clear(&e);
		assert_int_equal(catalog_copy_recover(r, dest, NULL, NULL, NULL, 0, &e), ERR_CORRUPT);
		assert_non_null(strstr(e.msg, "generation 2"));
		assert_non_null(strstr(e.msg, "generation 1"));
		assert_int_not_equal(access(dest, F_OK), 0);
		snprintf(p, sizeof p, "%s.recover", dest);
		assert_int_not_equal(access(p, F_OK), 0);
	}
	free(bad);
	free(buf);
	catalog_close(c);
	repo_close(r);
}

/* A copy renamed to a newer generation is not taken for that generation. */
static void test_copy_renamed(void **state)
{
	struct fixture *f = *state;
	struct repo *r = make_repo(f->dir, "z");
	char n1[48], n2[48], p[PATH_MAX], dest[512];
	catalog *c = catalog_for(f, r, n1, n2);
	uint8_t *buf;
	size_t len;
	uint64_t gen = 0, got = 0;
	int zone = -1;
	check_ok(catalog_copy_push(c, r, f->state, &gen, E));
	assert_int_equal(gen, 1);
	catalog_close(c);
	copy_path(r, 0, 1, p, sizeof p);
	read_file(p, &buf, &len);
	copy_path(r, 0, 9, p, sizeof p);
	write_file(p, buf, len);
	free(buf);
	snprintf(dest, sizeof dest, "%s/recovered.db", f->dir);
	check_ok(catalog_copy_recover(r, dest, &got, &zone, NULL, 0, E));
	assert_int_equal(got, 1);
	assert_int_equal(zone, 0);
	repo_close(r);
}

static void test_copy_foreign(void **state)
{
	struct fixture *f = *state;
	struct repo *r = make_repo(f->dir, "z"), *other = make_repo(f->dir, "y");
	char n1[48], n2[48], p[PATH_MAX], dest[512];
	catalog *c;
	uint8_t *buf;
	size_t len;
	uint64_t gen = 0;
	struct err e;
	assert_string_not_equal(r->cfg.id, other->cfg.id);

	/* another repository's copy (another key) does not decode */
	c = catalog_for(f, other, n1, n2);
	check_ok(catalog_copy_push(c, other, f->state, &gen, E));
	catalog_close(c);
	copy_path(other, 0, gen, p, sizeof p);
	read_file(p, &buf, &len);
	check_ok(decode_bytes(f, other, buf, len, NULL, E));
	err_clear(&e);
	assert_int_equal(decode_bytes(f, r, buf, len, NULL, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "authenticate"));

	/* and is not recovered from even when it sits in this repository's zones */
	for (int i = 0; i < NZ; i++) {
		copy_path(r, i, 7, p, sizeof p);
		write_file(p, buf, len);
	}
	free(buf);
	snprintf(dest, sizeof dest, "%s/recovered.db", f->dir);
	err_clear(&e);
	assert_int_equal(catalog_copy_recover(r, dest, NULL, NULL, NULL, 0, &e), ERR_CORRUPT);
	assert_int_not_equal(access(dest, F_OK), 0);
	for (int i = 0; i < NZ; i++) {
		copy_path(r, i, 7, p, sizeof p);
		assert_int_equal(unlink(p), 0);
	}

	/* same key, but the catalog names another repository id: decodes, is not recovered */
	assert_int_equal(unlink(f->db), 0);
	{
		char wal[512];
		snprintf(wal, sizeof wal, "%s-wal", f->db);
		unlink(wal);
		snprintf(wal, sizeof wal, "%s-shm", f->db);
		unlink(wal);
	}
	c = catalog_for(f, r, n1, n2);
	check_ok(catalog_meta_set(c, "repository", other->cfg.id, E));
	check_ok(catalog_copy_push(c, r, f->state, &gen, E));
	catalog_close(c);
	copy_path(r, 0, gen, p, sizeof p);
	read_file(p, &buf, &len);
	check_ok(decode_bytes(f, r, buf, len, NULL, E));
	free(buf);
	err_clear(&e);
	assert_int_equal(catalog_copy_recover(r, dest, NULL, NULL, NULL, 0, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "another repository"));
	assert_int_not_equal(access(dest, F_OK), 0);

	repo_close(other);
	repo_close(r);
}

static void count_range(void *ctx, const uint8_t pack[32], uint64_t off, uint64_t end, uint64_t bytes)
{
	uint64_t *r = ctx;
	(void)pack;
	r[0]++;
	r[1] = off;
	r[2] = end;
	r[3] = bytes;
}

/*
 * Delta chunks: the base for a new version of a block is the chunk at that offset of the
 * previous list, or its base when that chunk is a delta (never a chain); pieces carry the
 * base's location; verify reports a delta whose base is missing or is itself a delta.
 */
static void test_delta_bases(void **state)
{
	struct fixture *f = *state;
	catalog *c = open_cat(f->db);
	struct store_fixture s;
	struct content_piece pc[4];
	struct blob_loc bl;
	struct msgs m;
	uint8_t id[32], h[32];
	int64_t d1, d2, list, fin;
	uint64_t r[4] = {0};
	size_t n;
	int problems = -1;
	check_ok(catalog_begin(c, E));
	add_chunks(c, &s);
	memset(id, 0xd1, sizeof id);
	check_ok(catalog_chunk_add_delta(c, id, s.pack, 500, 30, 1000, s.chunk[1], &d1, E)); /* delta of chunk 1 */
	memset(id, 0xd2, sizeof id);
	check_ok(catalog_chunk_add_delta(c, id, s.pack, 530, 30, 1000, s.chunk[2], &d2, E));
	/* a list: chunk 0 at 0, delta d1 at 1000, a hole at 2000, delta d2 at 3000 */
	check_ok(catalog_content_begin(c, &list, E));
	check_ok(catalog_content_add(c, list, 0, 1000, s.chunk[0], E));
	check_ok(catalog_content_add(c, list, 1000, 1000, d1, E));
	check_ok(catalog_content_add(c, list, 2000, 1000, 0, E));
	check_ok(catalog_content_add(c, list, 3000, 1000, d2, E));
	memset(h, 0x3c, sizeof h);
	check_ok(catalog_content_finish(c, list, h, 4000, 4, &fin, E));
	check_ok(catalog_commit(c, E));

	assert_int_equal(catalog_chunk_base_at(c, fin, 0, &bl), s.chunk[0]); /* a plain chunk: itself */
	assert_memory_equal(bl.id, s.chunk_id[0], 32);
	assert_int_equal(bl.offset, 16);
	assert_int_equal(bl.base_chunk, 0);
	assert_int_equal(catalog_chunk_base_at(c, fin, 1000, &bl), s.chunk[1]); /* a delta: its base */
	assert_memory_equal(bl.id, s.chunk_id[1], 32);
	assert_memory_equal(bl.pack, s.pack_hash, 32);
	assert_int_equal(bl.offset, 116);
	assert_int_equal(bl.length, 100);
	assert_int_equal(bl.raw, 1000);
	assert_int_equal(catalog_chunk_base_at(c, fin, 2000, &bl), 0); /* a hole */
	assert_int_equal(catalog_chunk_base_at(c, fin, 1500, &bl), 0); /* not a block start */
	assert_int_equal(catalog_chunk_base_at(c, fin, 9000, &bl), 0); /* past the end */

	check_ok(catalog_content_pieces(c, fin, 0, pc, 4, &n, E));
	assert_int_equal(n, 4);
	assert_int_equal(pc[0].loc.base_chunk, 0);
	assert_int_equal(pc[1].loc.base_chunk, s.chunk[1]);
	assert_memory_equal(pc[1].loc.base_id, s.chunk_id[1], 32);
	assert_memory_equal(pc[1].loc.base_pack, s.pack_hash, 32);
	assert_int_equal(pc[1].loc.base_offset, 116);
	assert_int_equal(pc[1].loc.base_length, 100);
	assert_int_equal(pc[1].loc.base_raw, 1000);
	assert_int_equal(pc[1].loc.offset, 500);
	assert_int_equal(pc[3].loc.base_chunk, s.chunk[2]);

	/* read-ahead ranges: one pack, the bases of chunk 0, 1 and 2 (16..316) */
	check_ok(catalog_content_base_ranges(c, fin, count_range, r));
	assert_int_equal(r[0], 1);
	assert_int_equal(r[1], 16);
	assert_int_equal(r[2], 316);
	assert_int_equal(r[3], 300);

	check_ok(catalog_verify(c, NULL, NULL, &problems, E));
	assert_int_equal(problems, 0);
	/* a delta of a delta, then a delta whose base is gone */
	exec2(f->db, "UPDATE chunks SET base = (SELECT id FROM chunks WHERE off = 500) WHERE off = 530");
	memset(&m, 0, sizeof m);
	check_ok(catalog_verify(c, collect_msg, &m, &problems, E));
	assert_int_equal(problems, 1);
	assert_non_null(strstr(m.all, "delta chunks whose base"));
	exec2(f->db, "UPDATE chunks SET base = 999999 WHERE off = 530");
	memset(&m, 0, sizeof m);
	check_ok(catalog_verify(c, collect_msg, &m, &problems, E));
	assert_int_equal(problems, 1);
	assert_int_equal(catalog_content_pieces(c, fin, 3000, pc, 1, &n, NULL), ERR_CORRUPT);
	catalog_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_migrate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_wal_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_not_a_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clusters_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_same_second, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_abandon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_abandon_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_stale_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandon_drops_unfinished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_partials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_push_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_bases, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
