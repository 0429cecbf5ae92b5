/*
 * test_view.c: the wal/ and at/ views of fs/path.h and fs/view.h on synthetic catalog rows.
 *
 * One online snapshot of node n1 (root with PG_VERSION, postgresql.auto.conf, pg_wal holding a
 * segment and archive_status), archived segments 2..4 with commit times and a restore point.
 * Checks: lookups and listings of wal/ and at/T/ (the pg_wal overlay, the synthesized files,
 * the snapshot's own files), the recovery block (target time or end), restore.json, inode
 * numbers going back to the same locations, and T outside the window being ERR_NOTFOUND.
 */
#include "../unit.h"

#include <sys/stat.h>

#include "catalog/catalog.h"
#include "common/timefmt.h"
#include "fs/path.h"
#include "fs/view.h"

#define SEG (16u << 20)
#define S(x) (1700000000000000ll + (int64_t)(x) * 1000000)

struct fx {
	char dir[256], db[300];
	catalog *c;
};

static void add_entry(catalog *c, int64_t nb, int64_t parent, const char *name, uint32_t mode, int64_t *id)
{
	struct catalog_entry en;
	memset(&en, 0, sizeof en);
	en.parent = parent;
	snprintf(en.name, sizeof en.name, "%s", name);
	en.mode = mode;
	en.uid = 70;
	en.gid = 71;
	check_ok(catalog_entry_add(c, nb, &en, E));
	if (id)
		*id = en.id;
}

/* a WAL row of segment segno on timeline 1, its one commit at t: the segment (suffix "") or a
 * streamed ".partial" of it, stored at stored */
static void wal_row(catalog *c, int64_t nd, int64_t segno, int64_t t, const char *suffix, int64_t stored)
{
	struct catalog_wal w;
	memset(&w, 0, sizeof w);
	w.node = nd;
	snprintf(w.name, sizeof w.name, "00000001%08X%08X%s", (unsigned)(segno / 256), (unsigned)(segno % 256), suffix);
	w.timeline = 1;
	w.segno = segno;
	w.size = SEG;
	w.stored_us = stored;
	w.first_commit_us = w.last_commit_us = t;
	check_ok(catalog_wal_add(c, &w, E));
}

static void seg(catalog *c, int64_t nd, int64_t segno, int64_t t)
{
	wal_row(c, nd, segno, t, "", t);
}

/* in an open transaction: cluster cname with node n1, an online snapshot of it begun, its node
 * backup nb begun with a root directory (root) holding PG_VERSION */
static void begin_backup(catalog *c, const char *cname, int64_t *nd, int64_t *snap, int64_t *nb, int64_t *root)
{
	int64_t cl;
	check_ok(catalog_cluster_ensure(c, cname, &cl, E));
	check_ok(catalog_node_ensure(c, cl, "n1", nd, E));
	check_ok(catalog_snapshot_begin(c, cl, "online", snap, E));
	check_ok(catalog_node_backup_begin(c, *snap, *nd, "/src", nb, E));
	add_entry(c, *nb, 0, "", S_IFDIR | 0700, root);
	add_entry(c, *nb, *root, "PG_VERSION", S_IFREG | 0600, NULL);
}

/* node backup nb of snapshot snap (root: its tree) finished as an online backup at S(10) with
 * system id sysid, and segments 2 and 3 archived */
static void finish_backup(catalog *c, int64_t nd, int64_t snap, int64_t nb, int64_t root, const char *sysid)
{
	struct nb_totals tot = {1, 1, 1, 1};
	struct catalog_pg_info pg;
	char name[48];
	memset(&pg, 0, sizeof pg);
	pg.start_lsn = "0/2000028";
	pg.stop_lsn = "0/2000100";
	pg.timeline = 1;
	pg.pg_version = "15.4";
	pg.system_id = sysid;
	check_ok(catalog_node_backup_set_pg(c, nb, &pg, E));
	check_ok(catalog_node_backup_finish(c, nb, root, &tot, E));
	check_ok(catalog_snapshot_finish(c, snap, S(10), name, E));
	seg(c, nd, 2, S(5));
	seg(c, nd, 3, S(20));
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	int64_t nd, snap, nb, root, pgwal;
	assert_non_null(f);
	unit_tmpdir(f->dir, sizeof f->dir);
	snprintf(f->db, sizeof f->db, "%s/catalog.db", f->dir);
	check_ok(catalog_open(f->db, 0, &f->c, E));
	check_ok(catalog_begin(f->c, E));
	begin_backup(f->c, "c", &nd, &snap, &nb, &root);
	add_entry(f->c, nb, root, "postgresql.auto.conf", S_IFREG | 0600, NULL);
	add_entry(f->c, nb, root, "standby.signal", S_IFREG | 0600, NULL); /* taken of a standby */
	add_entry(f->c, nb, root, "pg_wal", S_IFDIR | 0700, &pgwal);
	add_entry(f->c, nb, pgwal, "000000010000000000000002", S_IFREG | 0600, NULL);
	add_entry(f->c, nb, pgwal, "archive_status", S_IFDIR | 0700, NULL);
	finish_backup(f->c, nd, snap, nb, root, "7300000000000000001");
	seg(f->c, nd, 4, S(30));
	check_ok(catalog_wal_restore_point_add(f->c, nd, "000000010000000000000003", "rp1", S(18), 0x3000100, E));
	check_ok(catalog_commit(f->c, E));
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

struct names {
	int n;
	char name[16][64];
	struct fs_loc loc[16];
};

static int collect(void *ctx, const struct fs_loc *l)
{
	struct names *x = ctx;
	if (x->n < 16) {
		snprintf(x->name[x->n], 64, "%s", fs_name(l));
		x->loc[x->n] = *l;
	}
	x->n++;
	return 0;
}

static struct names list_of(catalog *c, const char *path, const char *after)
{
	struct fs_loc l;
	struct names x;
	memset(&x, 0, sizeof x);
	check_ok(fs_resolve(c, path, &l, E));
	check_ok(fs_list(c, &l, after, collect, &x, E));
	return x;
}

/* every location comes back from its inode number as the same kind, name and attributes */
static void roundtrip(catalog *c, const struct fs_loc *l)
{
	struct fs_loc back;
	struct stat a, b;
	check_ok(fs_loc_of_ino(c, fs_ino(l), &back, E));
	assert_int_equal(back.kind, l->kind);
	assert_string_equal(fs_name(&back), fs_name(l));
	assert_int_equal(fs_ino(&back), fs_ino(l));
	fs_stat(l, &a);
	fs_stat(&back, &b);
	assert_int_equal(a.st_mode, b.st_mode);
	assert_int_equal(a.st_size, b.st_size);
	assert_int_equal(a.st_uid, b.st_uid);
}

static void test_wal_dir(void **state)
{
	struct fx *f = *state;
	struct names x = list_of(f->c, "c/wal", "");
	struct fs_loc l;
	struct stat st;
	assert_int_equal(x.n, 1);
	assert_string_equal(x.name[0], "n1");
	x = list_of(f->c, "c/wal/n1", "");
	assert_int_equal(x.n, 3);
	assert_string_equal(x.name[0], "000000010000000000000002");
	assert_string_equal(x.name[2], "000000010000000000000004");
	x = list_of(f->c, "c/wal/n1", "000000010000000000000002");
	assert_int_equal(x.n, 2);
	check_ok(fs_resolve(f->c, "c/wal/n1/000000010000000000000003", &l, E));
	assert_int_equal(l.kind, FS_WALFILE);
	fs_stat(&l, &st);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, SEG);
	roundtrip(f->c, &l);
	check_ok(fs_resolve(f->c, "c/wal/n1", &l, E));
	roundtrip(f->c, &l);
	check_ok(fs_resolve(f->c, "c/wal", &l, E));
	roundtrip(f->c, &l);
	assert_int_equal(fs_resolve(f->c, "c/wal/n1/000000010000000000000009", &l, NULL), ERR_NOTFOUND);
	assert_int_equal(fs_resolve(f->c, "c/wal/n9", &l, NULL), ERR_NOTFOUND);
}

static void test_at_view(void **state)
{
	struct fx *f = *state;
	char t[TIMEFMT_MAX], p[256];
	struct names x;
	struct fs_loc l, snapwal;
	uint8_t *buf;
	size_t len;
	timefmt_print(S(15), 0, t);
	/* at/ lists nothing; T outside the window is not found */
	x = list_of(f->c, "c/at", "");
	assert_int_equal(x.n, 0);
	assert_int_equal(fs_resolve(f->c, "c/at/2023-11-14T22:13:29Z", &l, NULL), ERR_NOTFOUND); /* before S(10) */
	assert_int_equal(fs_resolve(f->c, "c/at/2023-11-14T22:13:51Z", &l, NULL), ERR_NOTFOUND); /* after S(30) */
	assert_int_equal(fs_resolve(f->c, "c/at/yesterday", &l, NULL), ERR_NOTFOUND);

	snprintf(p, sizeof p, "c/at/%s", t);
	x = list_of(f->c, p, "");
	assert_int_equal(x.n, 2);
	assert_string_equal(x.name[0], "n1");
	assert_string_equal(x.name[1], "restore.json");
	roundtrip(f->c, &x.loc[0]);
	roundtrip(f->c, &x.loc[1]);
	check_ok(fs_loc_synth(NULL, &x.loc[1], &buf, &len, E));
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	assert_non_null(strstr((char *)buf, "\"target\":\"time\""));
	assert_non_null(strstr((char *)buf, "\"snapshot\":\"2023-11-14T22:13:30Z\""));
	assert_non_null(strstr((char *)buf, "\"restore_point\":null")); /* rp1 is after T */
	assert_non_null(strstr((char *)buf, "\"pg_version\":\"15.4\""));
	free(buf);

	/* the node: the snapshot's files, pg_wal of the view, the synthesized files */
	snprintf(p, sizeof p, "c/at/%s/n1", t);
	x = list_of(f->c, p, "");
	assert_int_equal(x.n, 4);
	assert_string_equal(x.name[0], "PG_VERSION");
	assert_string_equal(x.name[1], "pg_wal");
	assert_int_equal(x.loc[1].kind, FS_AT_PGWAL);
	assert_string_equal(x.name[2], "postgresql.auto.conf");
	assert_int_equal(x.loc[2].kind, FS_AT_FILE);
	assert_string_equal(x.name[3], "recovery.signal");
	for (int i = 0; i < 4; i++)
		roundtrip(f->c, &x.loc[i]);
	check_ok(fs_loc_synth(NULL, &x.loc[2], &buf, &len, E));
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	assert_non_null(strstr((char *)buf, "# pgtimefs recovery (at/2023-11-14T22:13:35Z)\n"));
	assert_non_null(strstr((char *)buf, "recovery_target_time = '2023-11-14 22:13:35.000000+00'\n"));
	assert_non_null(strstr((char *)buf, "recovery_target_action = 'promote'\n"));
	free(buf);
	x = list_of(f->c, p, "pg_wal");
	assert_int_equal(x.n, 2);
	assert_string_equal(x.name[0], "postgresql.auto.conf");

	/* pg_wal: the archived segments up to the one with a commit after T, overlaying the
	 * snapshot's own; archive_status stays */
	snprintf(p, sizeof p, "c/at/%s/n1/pg_wal", t);
	x = list_of(f->c, p, "");
	assert_int_equal(x.n, 3);
	assert_string_equal(x.name[0], "000000010000000000000002");
	assert_int_equal(x.loc[0].kind, FS_WALFILE);
	assert_string_equal(x.name[1], "000000010000000000000003");
	assert_int_equal(x.loc[1].kind, FS_WALFILE);
	assert_string_equal(x.name[2], "archive_status");
	assert_int_equal(x.loc[2].kind, FS_ENTRY);
	for (int i = 0; i < 3; i++)
		roundtrip(f->c, &x.loc[i]);
	x = list_of(f->c, p, "000000010000000000000002");
	assert_int_equal(x.n, 2);
	assert_string_equal(x.name[0], "000000010000000000000003");
	snprintf(p, sizeof p, "c/at/%s/n1/pg_wal/000000010000000000000004", t);
	assert_int_equal(fs_resolve(f->c, p, &l, NULL), ERR_NOTFOUND);
	/* a directory of the tree has a number of its own in the view; the snapshot's is another */
	snprintf(p, sizeof p, "c/at/%s/n1/pg_wal/archive_status", t);
	check_ok(fs_resolve(f->c, p, &l, E));
	check_ok(fs_resolve(f->c, "c/2023-11-14T22:13:30Z/n1/pg_wal/archive_status", &snapwal, E));
	assert_int_equal(l.entry.id, snapwal.entry.id);
	assert_true(fs_ino(&l) != fs_ino(&snapwal));
	roundtrip(f->c, &l);
	/* the same time spelled another way is the same moment, but a directory of its own (the
	 * kernel moves a directory it knows under two names); the same spelling again is the
	 * same view */
	{
		struct fs_loc a, b, c2;
		snprintf(p, sizeof p, "c/at/%s", t);
		check_ok(fs_resolve(f->c, p, &a, E));
		check_ok(fs_resolve(f->c, "c/at/2023-11-14T23:13:35+01:00", &b, E));
		check_ok(fs_resolve(f->c, p, &c2, E));
		assert_true(fs_ino(&a) != fs_ino(&b));
		assert_int_equal(fs_ino(&a), fs_ino(&c2));
		assert_int_equal(a.snapshot_time_us, b.snapshot_time_us);
		roundtrip(f->c, &b);
		/* a spelling too long to keep whole (digits without end) is no name here: it would
		 * make a new view at every lookup */
		assert_int_equal(fs_resolve(f->c, "c/at/2023-11-14T22:13:35.0000000000000000000000000000000000000000000000000Z", &b,
					    NULL),
				 ERR_NOTFOUND);
	}
}

/* at the last commit: no target time, the whole run, the restore point inside it */
static void test_at_end(void **state)
{
	struct fx *f = *state;
	struct names x;
	uint8_t *buf;
	size_t len;
	x = list_of(f->c, "c/at/2023-11-14T22:13:50Z/n1/pg_wal", "");
	assert_int_equal(x.n, 4);
	assert_string_equal(x.name[2], "000000010000000000000004");
	x = list_of(f->c, "c/at/2023-11-14T22:13:50Z/n1", "");
	check_ok(fs_loc_synth(NULL, &x.loc[2], &buf, &len, E));
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	assert_null(strstr((char *)buf, "recovery_target_time"));
	assert_non_null(strstr((char *)buf, "recovery_target_action = 'promote'\n"));
	free(buf);
	x = list_of(f->c, "c/at/2023-11-14T22:13:50Z", "");
	check_ok(fs_loc_synth(NULL, &x.loc[1], &buf, &len, E));
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	assert_non_null(strstr((char *)buf, "\"target\":\"end\""));
	assert_non_null(strstr((char *)buf, "\"restore_point\":{\"name\":\"rp1\""));
	free(buf);
}

/* A view looked up, then a snapshot it is made of deleted: the same spelling is made anew from
 * the snapshot left (the old view, kept in the table, said "no entry" until a remount) */
static void test_view_after_delete(void **state)
{
	struct fx *f = *state;
	int64_t nd, snap2, nb2, root2;
	struct nb_totals tot = {1, 1, 1, 1};
	struct catalog_pg_info pg;
	char name[48];
	struct names x;
	struct fs_loc l;
	const char *p = "c/at/2023-11-14T22:13:48Z/n1"; /* S(28) */
	check_ok(catalog_begin(f->c, E));
	begin_backup(f->c, "c", &nd, &snap2, &nb2, &root2);
	memset(&pg, 0, sizeof pg);
	pg.start_lsn = "0/3000028";
	pg.stop_lsn = "0/3000100";
	pg.timeline = 1;
	pg.pg_version = "15.4";
	pg.system_id = "7300000000000000001";
	check_ok(catalog_node_backup_set_pg(f->c, nb2, &pg, E));
	check_ok(catalog_node_backup_finish(f->c, nb2, root2, &tot, E));
	check_ok(catalog_snapshot_finish(f->c, snap2, S(25), name, E));
	check_ok(catalog_commit(f->c, E));
	x = list_of(f->c, "c/at/2023-11-14T22:13:48Z", "");
	{
		uint8_t *buf;
		size_t len;
		check_ok(fs_loc_synth(NULL, &x.loc[1], &buf, &len, E));
		buf = realloc(buf, len + 1);
		buf[len] = 0;
		assert_non_null(strstr((char *)buf, name)); /* made of the second snapshot */
		free(buf);
	}
	x = list_of(f->c, p, "");
	assert_int_equal(x.n, 3); /* PG_VERSION, pg_wal, recovery.signal: no postgresql.auto.conf there */
	check_ok(catalog_snapshot_delete(f->c, snap2, E));
	check_ok(fs_resolve(f->c, p, &l, E));
	x = list_of(f->c, p, "");
	assert_int_equal(x.n, 4);
	assert_string_equal(x.name[0], "PG_VERSION");
	{
		uint8_t *buf;
		size_t len;
		x = list_of(f->c, "c/at/2023-11-14T22:13:48Z", "");
		check_ok(fs_loc_synth(NULL, &x.loc[1], &buf, &len, E));
		buf = realloc(buf, len + 1);
		buf[len] = 0;
		assert_non_null(strstr((char *)buf, "\"snapshot\":\"2023-11-14T22:13:30Z\"")); /* the first one */
		free(buf);
	}
}

/* A restore point name met twice in a node's replay is not chosen: PostgreSQL would stop at
 * the first of the two */
static void test_ambiguous_restore_point(void **state)
{
	struct fx *f = *state;
	struct names x;
	uint8_t *buf;
	size_t len;
	int64_t cl, nd;
	check_ok(catalog_cluster_find(f->c, "c", &cl, E));
	check_ok(catalog_node_find(f->c, cl, "n1", &nd, E));
	check_ok(catalog_begin(f->c, E));
	check_ok(catalog_wal_restore_point_add(f->c, nd, "000000010000000000000003", "rp1", S(17), 0x3000080, E));
	check_ok(catalog_commit(f->c, E));
	x = list_of(f->c, "c/at/2023-11-14T22:13:49Z", ""); /* a time no other test caches a view for */
	check_ok(fs_loc_synth(NULL, &x.loc[1], &buf, &len, E));
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	assert_non_null(strstr((char *)buf, "\"restore_point\":null"));
	free(buf);
}

static void partial(catalog *c, int64_t nd, int64_t segno, int64_t t, int64_t stored)
{
	wal_row(c, nd, segno, t, ".partial", stored);
}

/* how often name is in x */
static int count_of(const struct names *x, const char *name)
{
	int k = 0;
	for (int i = 0; i < x->n; i++)
		k += !strcmp(x->name[i], name);
	return k;
}

/*
 * A view whose run ends in a streamed .partial keeps that partial as it was at T: a later
 * version of it (with commits after T) and then the complete segment, both stored by
 * wal-stream after the view was made, change nothing in the view's pg_wal.
 */
static void test_view_keeps_partial(void **state)
{
	struct fx *f = *state;
	const char *dir = "c/at/2023-11-14T22:14:00Z/n1/pg_wal"; /* S(40): no other test's view */
	const char *p = "c/at/2023-11-14T22:14:00Z/n1/pg_wal/000000010000000000000005";
	struct names x;
	struct fs_loc l, l2;
	int64_t cl, nd, id;
	uint64_t ino;
	check_ok(catalog_cluster_find(f->c, "c", &cl, E));
	check_ok(catalog_node_find(f->c, cl, "n1", &nd, E));
	check_ok(catalog_begin(f->c, E));
	partial(f->c, nd, 5, S(40), 111);
	check_ok(catalog_commit(f->c, E));
	x = list_of(f->c, dir, "");
	assert_int_equal(count_of(&x, "000000010000000000000005"), 1);
	check_ok(fs_resolve(f->c, p, &l, E));
	assert_int_equal(l.kind, FS_WALFILE);
	assert_string_equal(l.wal.name, "000000010000000000000005.partial");
	assert_int_equal(l.wal.stored_us, 111);
	id = l.wal.id;
	ino = fs_ino(&l);

	/* the stream stores a newer partial, with a commit after T */
	check_ok(catalog_begin(f->c, E));
	check_ok(catalog_wal_drop_partials(f->c, nd, 1, 5, NULL, E));
	seg(f->c, nd, 9, S(41));
	partial(f->c, nd, 5, S(60), 222);
	check_ok(catalog_commit(f->c, E));
	check_ok(fs_resolve(f->c, p, &l2, E));
	assert_int_equal(l2.wal.id, id);
	assert_int_equal(l2.wal.stored_us, 111);
	assert_int_equal(l2.wal.last_commit_us, S(40));
	check_ok(fs_loc_of_ino(f->c, ino, &l2, E));
	assert_int_equal(l2.wal.id, id);
	x = list_of(f->c, dir, "");
	assert_int_equal(count_of(&x, "000000010000000000000005"), 1);
	for (int i = 0; i < x.n; i++)
		if (!strcmp(x.name[i], "000000010000000000000005"))
			assert_int_equal(x.loc[i].wal.id, id);

	/* the complete segment arrives and the partial's row goes */
	check_ok(catalog_begin(f->c, E));
	check_ok(catalog_wal_drop_partials(f->c, nd, 1, 5, NULL, E));
	seg(f->c, nd, 5, S(60));
	check_ok(catalog_commit(f->c, E));
	check_ok(fs_resolve(f->c, p, &l2, E));
	assert_int_equal(l2.wal.id, id);
	check_ok(fs_loc_of_ino(f->c, ino, &l2, E));
	assert_int_equal(l2.wal.id, id);
	x = list_of(f->c, dir, "");
	assert_int_equal(count_of(&x, "000000010000000000000005"), 1);
	assert_int_equal(count_of(&x, "000000010000000000000004"), 1);
	for (int i = 0; i < x.n; i++)
		if (!strcmp(x.name[i], "000000010000000000000005"))
			assert_int_equal(x.loc[i].wal.id, id);
	/* resumed after the segment before it: the partial still comes, once */
	x = list_of(f->c, dir, "000000010000000000000004");
	assert_int_equal(count_of(&x, "000000010000000000000005"), 1);
	x = list_of(f->c, dir, "000000010000000000000005");
	assert_int_equal(count_of(&x, "000000010000000000000005"), 0);

	/* the snapshot was taken of a standby: its standby.signal is in the snapshot, never in a
	 * view (it would start a standby instead of the view's recovery) */
	check_ok(fs_resolve(f->c, "c/2023-11-14T22:13:30Z/n1/standby.signal", &l2, E));
	x = list_of(f->c, "c/at/2023-11-14T22:14:00Z/n1", "");
	assert_int_equal(count_of(&x, "standby.signal"), 0);
	assert_int_equal(count_of(&x, "recovery.signal"), 1);
	assert_int_equal(count_of(&x, "PG_VERSION"), 1);
	x = list_of(f->c, "c/at/2023-11-14T22:14:00Z/n1", "recovery.signal");
	assert_int_equal(count_of(&x, "standby.signal"), 0);
	assert_int_equal(fs_resolve(f->c, "c/at/2023-11-14T22:14:00Z/n1/standby.signal", &l2, NULL), ERR_NOTFOUND);
}

/* A snapshot whose pg_wal is a symlink (taken by an older pgtimefs of a server with its WAL
 * elsewhere) gives no view: the link points at the original server's WAL directory */
static void test_view_refuses_pgwal_link(void **state)
{
	struct fx *f = *state;
	struct catalog_entry en;
	struct fs_loc l;
	struct err e;
	int64_t nd, snap, nb, root;
	check_ok(catalog_begin(f->c, E));
	begin_backup(f->c, "old", &nd, &snap, &nb, &root);
	memset(&en, 0, sizeof en);
	en.parent = root;
	snprintf(en.name, sizeof en.name, "pg_wal");
	en.mode = S_IFLNK | 0777;
	snprintf(en.target, sizeof en.target, "/var/lib/pgwal");
	check_ok(catalog_entry_add(f->c, nb, &en, E));
	finish_backup(f->c, nd, snap, nb, root, "7300000000000000002");
	check_ok(catalog_commit(f->c, E));
	err_clear(&e);
	assert_int_equal(fs_resolve(f->c, "old/at/2023-11-14T22:13:36Z", &l, &e), ERR_NOTFOUND);
	assert_non_null(strstr(e.msg, "pg_wal as a symlink"));
	check_ok(fs_resolve(f->c, "old/2023-11-14T22:13:30Z/n1/pg_wal", &l, E)); /* the snapshot shows it */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_view_keeps_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_view_refuses_pgwal_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_at_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_at_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_view_after_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ambiguous_restore_point, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
