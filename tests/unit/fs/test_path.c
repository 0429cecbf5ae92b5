/*
 * test_path.c: fs/path.h, the path model of the mount and of `ls`/`cat`.
 *
 * Each test builds, in its own scratch directory, a small catalog through the
 * public catalog API only:
 *
 *   alpha/2023-11-14T22:13:25Z/n1/                     one snapshot, an empty
 * node tree empty/                                             a cluster
 * without snapshots prod/2023-11-14T22:13:20Z/n1/etc/a                 S1
 *   prod/2023-11-15T22:13:20Z/n1/v2                    S2
 *   prod/2023-11-16T22:13:20Z/n1/...                   S3 (the newest:
 * `latest`), below prod/2023-11-16T22:13:20Z/n2/only-n2
 *
 *   S3/n1: base/ (0700 26:26)  base/PG_VERSION  base/sparse (holes)
 * base/allhole  base/empty base/deep/deeper/file.txt  big/ (200 files
 * f000..f199, added in shuffled order) link -> base/PG_VERSION  dev (a
 * character device)  old (mtime before 1970)
 *
 * Content lists point at made-up chunk rows (nothing is read here); the sparse
 * file's list has hole pieces (catalog_content_add with chunk 0).
 */
#include "../unit.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "fs/path.h"

/* 2023-11-14T22:13:20Z */
#define T0   1700000000000000ll
#define DAY  86400000000ll
#define T1   (T0 + 123456)
#define T2   (T0 + DAY + 250000)
#define T3   (T0 + 2 * DAY + 987654)
#define TA   (T0 + 5000000)
#define NBIG 200

/* the sparse file: [0, 8192) data | [8192, 1 MiB) hole | [1 MiB, 1 MiB + 100)
 * data */
#define SPARSE_SIZE  (1048576ull + 100)
#define SPARSE_HOLES (1048576ull - 8192)

struct tree {
	int64_t prod, alpha, empty, node1, node2, anode;
	int64_t s1, s2, s3, sa;
	char n1[48], n2[48], n3[48], na[48];
	int64_t nb1, nb2, nb3a, nb3b, nba;
	/* S3 entries */
	int64_t root3a, root3b, base, pgv, sparse, allhole, emptyf, deep, deeper, filetxt, big, link, dev, old, only;
	int64_t bigid[NBIG];
	int64_t pgv_content, sparse_content, allhole_content;
};

struct fixture {
	char dir[256];
	char state[300];
	char db[400];
	catalog *c;
	struct tree t;
};


/* --- building the catalog --- */

static void entry_init(struct catalog_entry *en, int64_t parent, const char *name, uint32_t mode)
{
	memset(en, 0, sizeof *en);
	en->parent = parent;
	snprintf(en->name, sizeof en->name, "%s", name);
	en->mode = mode;
	en->mtime_ns = en->ctime_ns = T0 * 1000;
}

static int64_t add_dir(catalog *c, int64_t nb, int64_t parent, const char *name, uint32_t perm)
{
	struct catalog_entry en;
	entry_init(&en, parent, name, S_IFDIR | perm);
	check_ok(catalog_entry_add(c, nb, &en, E));
	assert_true(en.id > 0);
	return en.id;
}

static int64_t add_file(catalog *c, int64_t nb, int64_t parent, const char *name, uint32_t perm, uint64_t size,
			int64_t content, int64_t mtime_ns)
{
	struct catalog_entry en;
	entry_init(&en, parent, name, S_IFREG | perm);
	en.uid = 26;
	en.gid = 26;
	en.size = size;
	en.content = content;
	en.mtime_ns = mtime_ns;
	en.ctime_ns = mtime_ns + 1;
	check_ok(catalog_entry_add(c, nb, &en, E));
	assert_true(en.id > 0);
	return en.id;
}

/* A node backup of snap for node with a root directory; *root gets the root's
 * entry. */
static int64_t add_nb(catalog *c, int64_t snap, int64_t node, int64_t *root)
{
	int64_t nb = 0;
	check_ok(catalog_node_backup_begin(c, snap, node, "/src", &nb, E));
	*root = add_dir(c, nb, 0, "", 0755);
	return nb;
}

static void finish_nb(catalog *c, int64_t nb, int64_t root)
{
	struct nb_totals tot = {1, 100, 10, 5};
	check_ok(catalog_node_backup_finish(c, nb, root, &tot, E));
}

/* A content list of pieces {off, len, has_data}; chunk rows are made up in a
 * pack of their own. */
struct piece {
	uint64_t off;
	uint32_t len;
	int data;
};

static int64_t add_content(catalog *c, const struct piece *p, size_t n, uint64_t size, uint8_t tag)
{
	int64_t pack, content, final = 0;
	uint8_t hash[32];
	check_ok(catalog_pack_begin(c, &pack, E));
	memset(hash, tag, sizeof hash);
	check_ok(catalog_pack_finish(c, pack, hash, 1 << 20, E));
	check_ok(catalog_content_begin(c, &content, E));
	for (size_t i = 0; i < n; i++) {
		int64_t chunk = 0;
		if (p[i].data) {
			uint8_t id[32];
			memset(id, tag, sizeof id);
			id[31] = (uint8_t)i;
			check_ok(catalog_chunk_add(c, id, pack, 16 * (uint32_t)(i + 1), p[i].len / 2 + 1, p[i].len,
						   &chunk, E));
		}
		check_ok(catalog_content_add(c, content, p[i].off, p[i].len, chunk, E));
	}
	check_ok(catalog_content_finish(c, content, hash, size, (int64_t)n, &final, E));
	assert_int_equal(final, content);
	return content;
}

static void build(catalog *c, struct tree *t)
{
	struct catalog_entry en;
	int64_t root, etc;
	memset(t, 0, sizeof *t);
	check_ok(catalog_begin(c, E));
	check_ok(catalog_cluster_ensure(c, "prod", &t->prod, E));
	check_ok(catalog_cluster_ensure(c, "alpha", &t->alpha, E));
	check_ok(catalog_cluster_ensure(c, "empty", &t->empty, E));
	check_ok(catalog_node_ensure(c, t->prod, "n1", &t->node1, E));
	check_ok(catalog_node_ensure(c, t->prod, "n2", &t->node2, E));
	check_ok(catalog_node_ensure(c, t->alpha, "n1", &t->anode, E));

	/* S1: n1/etc/a */
	check_ok(catalog_snapshot_begin(c, t->prod, "offline", &t->s1, E));
	t->nb1 = add_nb(c, t->s1, t->node1, &root);
	etc = add_dir(c, t->nb1, root, "etc", 0755);
	(void)add_file(c, t->nb1, etc, "a", 0644, 0, 0, T0 * 1000);
	finish_nb(c, t->nb1, root);
	check_ok(catalog_snapshot_finish(c, t->s1, T1, t->n1, E));

	/* S2: n1/v2 */
	check_ok(catalog_snapshot_begin(c, t->prod, "offline", &t->s2, E));
	t->nb2 = add_nb(c, t->s2, t->node1, &root);
	(void)add_file(c, t->nb2, root, "v2", 0644, 0, 0, T0 * 1000);
	finish_nb(c, t->nb2, root);
	check_ok(catalog_snapshot_finish(c, t->s2, T2, t->n2, E));

	/* alpha: one snapshot, empty tree */
	check_ok(catalog_snapshot_begin(c, t->alpha, "offline", &t->sa, E));
	t->nba = add_nb(c, t->sa, t->anode, &root);
	finish_nb(c, t->nba, root);
	check_ok(catalog_snapshot_finish(c, t->sa, TA, t->na, E));

	/* S3: the big tree on n1, a small one on n2 */
	check_ok(catalog_snapshot_begin(c, t->prod, "offline", &t->s3, E));
	t->nb3a = add_nb(c, t->s3, t->node1, &t->root3a);
	t->base = add_dir(c, t->nb3a, t->root3a, "base", 0700);
	{
		struct piece pv[] = {{0, 3, 1}};
		struct piece sp[] = {{0, 8192, 1}, {8192, 1048576 - 8192, 0}, {1048576, 100, 1}};
		struct piece ah[] = {{0, 65536, 0}};
		t->pgv_content = add_content(c, pv, 1, 3, 0x31);
		t->sparse_content = add_content(c, sp, 3, SPARSE_SIZE, 0x32);
		t->allhole_content = add_content(c, ah, 1, 65536, 0x33);
	}
	t->pgv = add_file(c, t->nb3a, t->base, "PG_VERSION", 0600, 3, t->pgv_content, T0 * 1000 + 999999999);
	t->sparse = add_file(c, t->nb3a, t->base, "sparse", 0640, SPARSE_SIZE, t->sparse_content, T0 * 1000 + 1);
	t->allhole = add_file(c, t->nb3a, t->base, "allhole", 0640, 65536, t->allhole_content, T0 * 1000 + 2);
	t->emptyf = add_file(c, t->nb3a, t->base, "empty", 0644, 0, 0, T0 * 1000 + 3);
	t->deep = add_dir(c, t->nb3a, t->base, "deep", 0755);
	t->deeper = add_dir(c, t->nb3a, t->deep, "deeper", 0755);
	t->filetxt = add_file(c, t->nb3a, t->deeper, "file.txt", 0644, 3, t->pgv_content, T0 * 1000 + 4);
	t->big = add_dir(c, t->nb3a, t->root3a, "big", 0755);
	for (int k = 0; k < NBIG; k++) {
		int i = (k * 37) % NBIG; /* shuffled: listing must sort, not follow insertion */
		char name[16];
		struct catalog_entry f;
		snprintf(name, sizeof name, "f%03d", i);
		entry_init(&f, t->big, name, S_IFREG | (i % 2 ? 0600u : 0644u));
		f.uid = 1000 + (uint32_t)i;
		f.gid = 2000 + (uint32_t)i;
		f.size = (uint64_t)i;
		f.mtime_ns = T0 * 1000 + i;
		check_ok(catalog_entry_add(c, t->nb3a, &f, E));
		t->bigid[i] = f.id;
	}
	entry_init(&en, t->root3a, "link", S_IFLNK | 0777);
	snprintf(en.target, sizeof en.target, "base/PG_VERSION");
	en.size = strlen(en.target);
	en.uid = 26;
	check_ok(catalog_entry_add(c, t->nb3a, &en, E));
	t->link = en.id;
	entry_init(&en, t->root3a, "dev", S_IFCHR | 0600);
	en.rdev = makedev(1, 3);
	check_ok(catalog_entry_add(c, t->nb3a, &en, E));
	t->dev = en.id;
	/* 1969-12-31T23:59:58.5Z */
	t->old = add_file(c, t->nb3a, t->root3a, "old", 0644, 0, 0, -1500000000ll);
	finish_nb(c, t->nb3a, t->root3a);
	t->nb3b = add_nb(c, t->s3, t->node2, &t->root3b);
	t->only = add_file(c, t->nb3b, t->root3b, "only-n2", 0644, 0, 0, T0 * 1000);
	finish_nb(c, t->nb3b, t->root3b);
	check_ok(catalog_snapshot_finish(c, t->s3, T3, t->n3, E));
	check_ok(catalog_commit(c, E));

	assert_string_equal(t->n1, "2023-11-14T22:13:20Z");
	assert_string_equal(t->n2, "2023-11-15T22:13:20Z");
	assert_string_equal(t->n3, "2023-11-16T22:13:20Z");
	assert_string_equal(t->na, "2023-11-14T22:13:25Z");
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	unit_tmpdir(f->dir, sizeof f->dir);
	snprintf(f->state, sizeof f->state, "%s/state", f->dir);
	snprintf(f->db, sizeof f->db, "%s/catalog.db", f->state);
	assert_int_equal(mkdir(f->state, 0700), 0);
	check_ok(catalog_open(f->db, 0, &f->c, E));
	build(f->c, &f->t);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	catalog_close(f->c);
	unit_rmdir(f->dir);
	free(f);
	return 0;
}

/* --- helpers --- */

static struct fs_loc resolve(catalog *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static struct fs_loc resolve(catalog *c, const char *fmt, ...)
{
	char path[1024];
	struct fs_loc l;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof path, fmt, ap);
	va_end(ap);
	{
		struct err e_;
		int rc_;
		err_clear(&e_);
		rc_ = fs_resolve(c, path, &l, &e_);
		if (rc_ != 0)
			print_error("fs_resolve(\"%s\"): %d %s\n", path, rc_, e_.msg);
		assert_int_equal(rc_, 0);
	}
	return l;
}

/* fs_resolve of path fails with ERR_NOTFOUND and a message that names the path.
 */
static void resolve_missing(catalog *c, const char *path)
{
	struct fs_loc l;
	struct err e;
	int rc;
	err_clear(&e);
	rc = fs_resolve(c, path, &l, &e);
	if (rc != ERR_NOTFOUND || !strstr(e.msg, path))
		print_error("fs_resolve(\"%s\"): %d \"%s\"\n", path, rc, e.msg);
	assert_int_equal(rc, ERR_NOTFOUND);
	assert_int_equal(e.code, ERR_NOTFOUND);
	assert_non_null(strstr(e.msg, path));
}

/* paths a and b resolve to one place (the same inode number and kind) */
static void same_place(catalog *c, const char *a, const char *b)
{
	struct fs_loc la = resolve(c, "%s", a), lb = resolve(c, "%s", b);
	if (fs_ino(&la) != fs_ino(&lb) || la.kind != lb.kind)
		print_error("%s and %s resolve to different places\n", a, b);
	assert_int_equal(fs_ino(&la), fs_ino(&lb));
	assert_int_equal(la.kind, lb.kind);
}

/* resolve_missing, and the message holds msg and the hint hint (either NULL: not checked) */
static void resolve_missing_says(catalog *c, const char *path, const char *msg, const char *hint)
{
	struct fs_loc l;
	struct err e;
	err_clear(&e);
	assert_int_equal(fs_resolve(c, path, &l, &e), ERR_NOTFOUND);
	if ((msg && !strstr(e.msg, msg)) || (hint && !strstr(e.hint, hint)))
		print_error("fs_resolve(\"%s\"): \"%s\" (hint \"%s\")\n", path, e.msg, e.hint);
	assert_non_null(strstr(e.msg, path));
	if (msg)
		assert_non_null(strstr(e.msg, msg));
	if (hint)
		assert_non_null(strstr(e.hint, hint));
}

static int64_t ts_us(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

struct listing {
	size_t n, stop_after; /* stop_after 0: never stop */
	char names[NBIG + 8][256];
	struct fs_loc locs[16]; /* the first 16 children */
};

static int collect(void *ctx, const struct fs_loc *child)
{
	struct listing *ls = ctx;
	assert_true(ls->n < NBIG + 8);
	snprintf(ls->names[ls->n], sizeof ls->names[0], "%s", fs_name(child));
	if (ls->n < 16)
		ls->locs[ls->n] = *child;
	ls->n++;
	return ls->stop_after && ls->n >= ls->stop_after;
}

static struct listing *list(catalog *c, const struct fs_loc *dir, const char *after, size_t stop_after)
{
	struct listing *ls = calloc(1, sizeof *ls);
	assert_non_null(ls);
	ls->stop_after = stop_after;
	check_ok(fs_list(c, dir, after, collect, ls, E));
	return ls;
}

/* --- fs_resolve --- */

static void test_resolve(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc l;
	char p[512];

	/* the root, however written */
	static const char *roots[] = {"", "/", "//", "."};
	for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
		l = resolve(c, "%s", roots[i]);
		assert_int_equal(l.kind, FS_ROOT);
	}

	/* clusters */
	l = resolve(c, "prod");
	assert_int_equal(l.kind, FS_CLUSTER);
	assert_int_equal(l.cluster, t->prod);
	assert_string_equal(l.cluster_name, "prod");
	l = resolve(c, "//alpha/");
	assert_int_equal(l.kind, FS_CLUSTER);
	assert_int_equal(l.cluster, t->alpha);
	l = resolve(c, "empty");
	assert_int_equal(l.kind, FS_CLUSTER);
	assert_int_equal(l.cluster, t->empty);

	/* snapshots by name */
	l = resolve(c, "prod/%s", t->n2);
	assert_int_equal(l.kind, FS_SNAPSHOT);
	assert_int_equal(l.cluster, t->prod);
	assert_int_equal(l.snapshot, t->s2);
	assert_string_equal(l.snapshot_name, t->n2);
	assert_int_equal(l.snapshot_time_us, T2);
	l = resolve(c, "/prod/%s/", t->n1);
	assert_int_equal(l.kind, FS_SNAPSHOT);
	assert_int_equal(l.snapshot, t->s1);

	/* latest as the last component: the symlink itself */
	l = resolve(c, "prod/latest");
	assert_int_equal(l.kind, FS_LATEST);
	assert_int_equal(l.cluster, t->prod);
	assert_int_equal(l.snapshot, t->s3);
	assert_string_equal(l.snapshot_name, t->n3);
	l = resolve(c, "alpha/latest/");
	assert_int_equal(l.kind, FS_LATEST);
	assert_int_equal(l.snapshot, t->sa);

	/* latest in the middle: followed */
	l = resolve(c, "prod/latest/n1");
	assert_int_equal(l.kind, FS_ENTRY);
	assert_int_equal(l.snapshot, t->s3);
	assert_int_equal(l.nb, t->nb3a);
	assert_int_equal(l.entry.id, t->root3a);
	assert_string_equal(l.entry.name, "n1"); /* a node's root shows the node's name */
	assert_true(S_ISDIR(l.entry.mode));
	l = resolve(c, "prod/latest/n2/only-n2");
	assert_int_equal(l.kind, FS_ENTRY);
	assert_int_equal(l.nb, t->nb3b);
	assert_int_equal(l.entry.id, t->only);
	l = resolve(c, "prod/latest/./n1/.");
	assert_int_equal(l.entry.id, t->root3a);

	/* nodes through the snapshot's name */
	l = resolve(c, "prod/%s/n2", t->n3);
	assert_int_equal(l.kind, FS_ENTRY);
	assert_int_equal(l.nb, t->nb3b);
	assert_int_equal(l.entry.id, t->root3b);
	assert_string_equal(l.entry.name, "n2");
	l = resolve(c, "prod/%s/n1/etc/a", t->n1);
	assert_int_equal(l.kind, FS_ENTRY);
	assert_int_equal(l.nb, t->nb1);
	assert_string_equal(l.entry.name, "a");
	assert_true(S_ISREG(l.entry.mode));

	/* deep entries */
	l = resolve(c, "prod/latest/n1/base/deep/deeper/file.txt");
	assert_int_equal(l.kind, FS_ENTRY);
	assert_int_equal(l.entry.id, t->filetxt);
	assert_int_equal(l.entry.parent, t->deeper);
	assert_int_equal(l.entry.size, 3);
	assert_int_equal(l.entry.content, t->pgv_content);
	assert_int_equal(l.nb, t->nb3a);
	l = resolve(c, "/prod//%s/n1/base//deep/deeper/", t->n3);
	assert_int_equal(l.entry.id, t->deeper);
	l = resolve(c, "prod/latest/n1/big/f123");
	assert_int_equal(l.entry.id, t->bigid[123]);
	assert_int_equal(l.entry.size, 123);
	assert_int_equal(l.entry.uid, 1123);
	l = resolve(c, "prod/latest/n1/link"); /* a symlink is not followed */
	assert_int_equal(l.entry.id, t->link);
	assert_true(S_ISLNK(l.entry.mode));
	assert_string_equal(l.entry.target, "base/PG_VERSION");

	/* fs_lookup: one step, "latest" not followed */
	{
		struct fs_loc cl = resolve(c, "prod"), lt;
		check_ok(fs_lookup(c, &cl, "latest", &lt, E));
		assert_int_equal(lt.kind, FS_LATEST);
		assert_int_equal(lt.snapshot, t->s3);
		check_ok(fs_lookup(c, &cl, t->n1, &lt, E));
		assert_int_equal(lt.kind, FS_SNAPSHOT);
		assert_int_equal(lt.snapshot, t->s1);
	}

	/* missing names: ERR_NOTFOUND, and the message names the path */
	resolve_missing(c, "nope");
	resolve_missing(c, "/nope/latest");
	resolve_missing(c, "prod/2000-01-01T00:00:00Z");
	resolve_missing(c, "prod/2000-01-01T00:00:00Z/n1");
	resolve_missing(c, "prod/latest/n3");
	resolve_missing(c, "prod/latest/n1/base/missing");
	resolve_missing(c, "prod/latest/n1/base/deep/deeper/file.txt/x"); /* a file is not a
									     directory */
	resolve_missing(c, "prod/latest/n1/big/f200");
	resolve_missing(c, "prod/latest/n2/base"); /* base is on n1 only */
	resolve_missing(c, "alpha/latest/n2");
	resolve_missing(c, "alpha/latest/n1/base");
	resolve_missing(c, "empty/latest"); /* no snapshot: no latest */
	/* what the lookup found missing, and what to do */
	resolve_missing_says(c, "nope/latest", "nope", "'pgtimefs list' shows the clusters");
	resolve_missing_says(c, "prod/2000-01-01T00:00:00+00:00/n1", "2000-01-01T00:00:00+00:00", "prod/at/TIME");
	resolve_missing_says(c, "prod/snapshot-one", "snapshot-one", "'pgtimefs ls prod' lists its snapshots");
	resolve_missing_says(c, "prod/latest/n3", "no node 'n3'", NULL);
	resolve_missing_says(c, "prod/latest/n1/base/deep/deeper/file.txt/x", "is not a directory", NULL);
	resolve_missing_says(c, "prod/latest/n1/base/deep/deeper/file.txt/", "not a directory", NULL);
	/* ".." as the kernel takes it in the mount */
	same_place(c, "prod/latest/n1/base/..", "prod/latest/n1");
	{
		char snap[128]; /* latest is a symlink: latest/n1/.. is the snapshot it points to */
		snprintf(snap, sizeof snap, "prod/%s", t->n3);
		same_place(c, "prod/latest/n1/..", snap);
	}
	same_place(c, "prod/latest/..", "prod");
	same_place(c, "../../prod/./latest/n1/base/../base", "prod/latest/n1/base");
	resolve_missing(c, "empty/latest/n1");
	snprintf(p, sizeof p, "prod/%s/n1/big", t->n2); /* big is in S3 only */
	resolve_missing(c, p);
	snprintf(p, sizeof p, "alpha/%s", t->n3); /* another cluster's snapshot */
	resolve_missing(c, p);
}

/* --- inode numbers --- */

static void test_ino_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	enum { N = 17 };
	struct fs_loc l[N], back;
	uint64_t ino[N];
	size_t n = 0;
	struct err e;

	l[n++] = resolve(c, "/");
	l[n++] = resolve(c, "prod");
	l[n++] = resolve(c, "alpha");
	l[n++] = resolve(c, "empty");
	l[n++] = resolve(c, "prod/%s", t->n1);
	l[n++] = resolve(c, "prod/%s", t->n3);
	l[n++] = resolve(c, "alpha/%s", t->na);
	l[n++] = resolve(c, "prod/latest");
	l[n++] = resolve(c, "alpha/latest");
	l[n++] = resolve(c, "prod/latest/n1");
	l[n++] = resolve(c, "prod/latest/n2");
	l[n++] = resolve(c, "prod/latest/n1/base");
	l[n++] = resolve(c, "prod/latest/n1/base/PG_VERSION");
	l[n++] = resolve(c, "prod/latest/n1/base/sparse");
	l[n++] = resolve(c, "prod/latest/n1/link");
	l[n++] = resolve(c, "prod/latest/n1/big/f123");
	l[n++] = resolve(c, "prod/latest/n1/dev");
	assert_int_equal(n, N);

	assert_int_equal(fs_ino(&l[0]), 1);
	for (size_t i = 0; i < n; i++) {
		ino[i] = fs_ino(&l[i]);
		assert_true(ino[i] != 0);
		for (size_t j = 0; j < i; j++) {
			if (ino[i] == ino[j])
				print_error("%s and %s share inode %llu\n", fs_name(&l[i]), fs_name(&l[j]),
					    (unsigned long long)ino[i]);
			assert_true(ino[i] != ino[j]);
		}
	}

	for (size_t i = 0; i < n; i++) {
		check_ok(fs_loc_of_ino(c, ino[i], &back, E));
		assert_int_equal(back.kind, l[i].kind);
		assert_int_equal(fs_ino(&back), ino[i]);
		assert_int_equal(fs_immutable(&back), fs_immutable(&l[i]));
		switch (l[i].kind) {
		case FS_ROOT:
			break;
		case FS_CLUSTER:
			assert_int_equal(back.cluster, l[i].cluster);
			/* the folder's time is its newest snapshot's */
			assert_int_equal(back.snapshot_time_us, l[i].snapshot_time_us);
			break;
		case FS_SNAPSHOT:
			assert_int_equal(back.cluster, l[i].cluster);
			assert_string_equal(back.cluster_name, l[i].cluster_name);
			assert_int_equal(back.snapshot, l[i].snapshot);
			assert_string_equal(back.snapshot_name, l[i].snapshot_name);
			assert_int_equal(back.snapshot_time_us, l[i].snapshot_time_us);
			break;
		case FS_LATEST:
			assert_int_equal(back.cluster, l[i].cluster);
			assert_int_equal(back.snapshot, l[i].snapshot);
			assert_string_equal(back.snapshot_name, l[i].snapshot_name);
			assert_string_equal(fs_link_target(&back), fs_link_target(&l[i]));
			break;
		case FS_ENTRY:
			assert_int_equal(back.entry.id, l[i].entry.id);
			assert_int_equal(back.entry.mode, l[i].entry.mode);
			assert_int_equal(back.entry.uid, l[i].entry.uid);
			assert_int_equal(back.entry.gid, l[i].entry.gid);
			assert_int_equal(back.entry.size, l[i].entry.size);
			assert_int_equal(back.entry.content, l[i].entry.content);
			assert_int_equal(back.entry.mtime_ns, l[i].entry.mtime_ns);
			assert_int_equal(back.entry.rdev, l[i].entry.rdev);
			assert_string_equal(back.entry.target, l[i].entry.target);
			assert_int_equal(back.nb, l[i].nb);
			break;
		default: /* the wal/ and at/ views: the name and the attributes come back */
			{
				struct stat s1, s2;
				fs_stat(&l[i], &s1);
				fs_stat(&back, &s2);
				assert_string_equal(fs_name(&back), fs_name(&l[i]));
				assert_int_equal(s1.st_mode, s2.st_mode);
				assert_int_equal(s1.st_size, s2.st_size);
			}
			break;
		}
	}
	/* the clusters' and snapshots' numbers: tied to their catalog numbers */
	assert_int_equal(fs_ino(&l[1]) >> 3, t->prod);
	assert_int_equal(fs_ino(&l[5]) >> 3, t->s3);

	/* every one of the 200 files has a number of its own, which leads back to it
	 */
	{
		uint64_t seen[NBIG];
		struct fs_loc big = resolve(c, "prod/latest/n1/big");
		struct listing *ls = list(c, &big, "", 0);
		assert_int_equal(ls->n, NBIG);
		for (int i = 0; i < NBIG; i++) {
			struct fs_loc fl = resolve(c, "prod/latest/n1/big/%s", ls->names[i]);
			seen[i] = fs_ino(&fl);
			for (size_t j = 0; j < n; j++)
				if (l[j].kind != FS_ENTRY || l[j].entry.id != t->bigid[i]) /* f123 is among them */
					assert_true(seen[i] != ino[j]);
			for (int k = 0; k < i; k++)
				assert_true(seen[i] != seen[k]);
			check_ok(fs_loc_of_ino(c, seen[i], &back, E));
			assert_int_equal(back.entry.id, t->bigid[i]);
			assert_int_equal(back.nb, t->nb3a);
			assert_int_equal(back.entry.size, (uint64_t)i);
		}
		free(ls);
	}

	/* numbers that name nothing */
	{
		static const uint64_t bad[] = {
			0, 8, 5, 6, 7, (uint64_t)999999 << 3 | 2, (uint64_t)999999 << 3 | 4, (uint64_t)999999 << 3 | 3};
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			err_clear(&e);
			if (fs_loc_of_ino(c, bad[i], &back, &e) != ERR_NOTFOUND)
				print_error("inode %llu: expected ERR_NOTFOUND\n", (unsigned long long)bad[i]);
			assert_int_equal(fs_loc_of_ino(c, bad[i], &back, NULL), ERR_NOTFOUND);
		}
	}
	/* latest of a cluster without snapshots */
	{
		struct fs_loc lt = l[3];
		lt.kind = FS_LATEST;
		assert_int_equal(fs_loc_of_ino(c, fs_ino(&lt), &back, NULL), ERR_NOTFOUND);
	}
}

/* --- listings --- */

static void test_list_dir(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc big = resolve(c, "prod/latest/n1/big");
	struct listing *ls;
	char want[16];

	/* all 200, in name order, each a child of big in the same node backup */
	ls = list(c, &big, "", 0);
	assert_int_equal(ls->n, NBIG);
	for (int i = 0; i < NBIG; i++) {
		snprintf(want, sizeof want, "f%03d", i);
		assert_string_equal(ls->names[i], want);
	}
	for (int i = 0; i < 16; i++) {
		assert_int_equal(ls->locs[i].kind, FS_ENTRY);
		assert_int_equal(ls->locs[i].nb, t->nb3a);
		assert_int_equal(ls->locs[i].entry.parent, t->big);
		assert_int_equal(ls->locs[i].entry.id, t->bigid[i]);
		assert_int_equal(ls->locs[i].entry.uid, 1000 + i);
	}
	free(ls);
	/* NULL after: from the start */
	ls = list(c, &big, NULL, 0);
	assert_int_equal(ls->n, NBIG);
	free(ls);

	/* resume after a name: on, before and after the 64-entry page boundaries */
	{
		static const int at[] = {0, 62, 63, 64, 65, 127, 128, 150, 198};
		for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
			char after[16];
			snprintf(after, sizeof after, "f%03d", at[k]);
			ls = list(c, &big, after, 0);
			assert_int_equal(ls->n, NBIG - 1 - at[k]);
			for (size_t i = 0; i < ls->n; i++) {
				snprintf(want, sizeof want, "f%03d", at[k] + 1 + (int)i);
				assert_string_equal(ls->names[i], want);
			}
			free(ls);
		}
	}
	ls = list(c, &big, "f199", 0);
	assert_int_equal(ls->n, 0);
	free(ls);
	ls = list(c, &big, "f0995", 0); /* not a name: resumes after where it would sort */
	assert_int_equal(ls->n, NBIG - 100);
	assert_string_equal(ls->names[0], "f100");
	free(ls);

	/* stop early: the callback's non-zero ends the listing at once */
	{
		static const size_t stops[] = {1, 10, 63, 64, 65, 128, 199};
		for (size_t k = 0; k < sizeof stops / sizeof stops[0]; k++) {
			ls = list(c, &big, "", stops[k]);
			assert_int_equal(ls->n, stops[k]);
			snprintf(want, sizeof want, "f%03zu", stops[k] - 1);
			assert_string_equal(ls->names[ls->n - 1], want);
			free(ls);
		}
	}

	/* pages of 7, each resumed after the last name seen (as the mount's readdir
	 * does) */
	{
		char after[256] = "";
		int total = 0;
		for (;;) {
			ls = list(c, &big, after, 7);
			for (size_t i = 0; i < ls->n; i++) {
				snprintf(want, sizeof want, "f%03d", total + (int)i);
				assert_string_equal(ls->names[i], want);
			}
			total += (int)ls->n;
			if (ls->n == 0) {
				free(ls);
				break;
			}
			snprintf(after, sizeof after, "%s", ls->names[ls->n - 1]);
			free(ls);
		}
		assert_int_equal(total, NBIG);
	}

	/* a node's root and a small directory */
	{
		struct fs_loc root = resolve(c, "prod/latest/n1"), base = resolve(c, "prod/latest/n1/base");
		static const char *rootw[] = {"base", "big", "dev", "link", "old"};
		static const char *basew[] = {"PG_VERSION", "allhole", "deep", "empty", "sparse"};
		ls = list(c, &root, "", 0);
		assert_int_equal(ls->n, 5);
		for (size_t i = 0; i < 5; i++)
			assert_string_equal(ls->names[i], rootw[i]);
		free(ls);
		ls = list(c, &base, "", 0);
		assert_int_equal(ls->n, 5);
		for (size_t i = 0; i < 5; i++)
			assert_string_equal(ls->names[i], basew[i]);
		free(ls);
	}

	/* a file is not a directory */
	{
		struct fs_loc file = resolve(c, "prod/latest/n1/base/PG_VERSION");
		struct listing dummy;
		memset(&dummy, 0, sizeof dummy);
		assert_true(fs_list(c, &file, "", collect, &dummy, NULL) < 0);
		assert_int_equal(dummy.n, 0);
	}
}

static void test_list_upper(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc root = resolve(c, "%s", ""), prod = resolve(c, "prod"), s3 = resolve(c, "prod/%s", t->n3);
	struct fs_loc lt = resolve(c, "prod/latest"), empty = resolve(c, "empty");
	struct listing *ls;

	/* the root: clusters by name */
	ls = list(c, &root, "", 0);
	assert_int_equal(ls->n, 3);
	assert_string_equal(ls->names[0], "alpha");
	assert_string_equal(ls->names[1], "empty");
	assert_string_equal(ls->names[2], "prod");
	assert_int_equal(ls->locs[0].kind, FS_CLUSTER);
	assert_int_equal(ls->locs[0].cluster, t->alpha);
	assert_int_equal(ls->locs[2].cluster, t->prod);
	assert_int_equal(ls->locs[2].snapshot_time_us, T3); /* the newest snapshot's time */
	assert_int_equal(ls->locs[0].snapshot_time_us, TA);
	free(ls);
	ls = list(c, &root, "alpha", 0);
	assert_int_equal(ls->n, 2);
	assert_string_equal(ls->names[0], "empty");
	free(ls);
	ls = list(c, &root, "", 1);
	assert_int_equal(ls->n, 1);
	free(ls);

	/* a cluster: snapshots oldest first, then latest, at and wal */
	ls = list(c, &prod, "", 0);
	assert_int_equal(ls->n, 6);
	assert_string_equal(ls->names[4], "at");
	assert_string_equal(ls->names[5], "wal");
	assert_int_equal(ls->locs[4].kind, FS_ATDIR);
	assert_int_equal(ls->locs[5].kind, FS_WALDIR);
	assert_string_equal(ls->names[0], t->n1);
	assert_string_equal(ls->names[1], t->n2);
	assert_string_equal(ls->names[2], t->n3);
	assert_string_equal(ls->names[3], "latest");
	assert_int_equal(ls->locs[0].kind, FS_SNAPSHOT);
	assert_int_equal(ls->locs[0].snapshot, t->s1);
	assert_int_equal(ls->locs[0].snapshot_time_us, T1);
	assert_int_equal(ls->locs[2].snapshot, t->s3);
	assert_int_equal(ls->locs[3].kind, FS_LATEST);
	assert_int_equal(ls->locs[3].snapshot, t->s3);
	assert_int_equal(ls->locs[3].cluster, t->prod);
	free(ls);
	ls = list(c, &prod, t->n1, 0);
	assert_int_equal(ls->n, 5);
	assert_string_equal(ls->names[0], t->n2);
	assert_string_equal(ls->names[2], "latest");
	free(ls);
	ls = list(c, &prod, t->n3, 0);
	assert_int_equal(ls->n, 3);
	free(ls);
	ls = list(c, &prod, "latest", 0);
	assert_int_equal(ls->n, 2);
	assert_string_equal(ls->names[0], "at");
	free(ls);
	ls = list(c, &prod, "at", 0);
	assert_int_equal(ls->n, 1);
	assert_string_equal(ls->names[0], "wal");
	free(ls);
	ls = list(c, &prod, "wal", 0);
	assert_int_equal(ls->n, 0);
	free(ls);
	ls = list(c, &prod, "", 1); /* stopped: no latest either */
	assert_int_equal(ls->n, 1);
	assert_string_equal(ls->names[0], t->n1);
	free(ls);
	ls = list(c, &prod, "", 3);
	assert_int_equal(ls->n, 3);
	free(ls);
	/* a cluster without snapshots has no latest: at and wal only */
	ls = list(c, &empty, "", 0);
	assert_int_equal(ls->n, 2);
	free(ls);

	/* a snapshot (or latest): its nodes by name */
	ls = list(c, &s3, "", 0);
	assert_int_equal(ls->n, 2);
	assert_string_equal(ls->names[0], "n1");
	assert_string_equal(ls->names[1], "n2");
	assert_int_equal(ls->locs[0].kind, FS_ENTRY);
	assert_int_equal(ls->locs[0].nb, t->nb3a);
	assert_int_equal(ls->locs[0].entry.id, t->root3a);
	assert_int_equal(ls->locs[1].nb, t->nb3b);
	free(ls);
	ls = list(c, &s3, "n1", 0);
	assert_int_equal(ls->n, 1);
	assert_string_equal(ls->names[0], "n2");
	free(ls);
	ls = list(c, &s3, "", 1);
	assert_int_equal(ls->n, 1);
	free(ls);
	ls = list(c, &lt, "", 0);
	assert_int_equal(ls->n, 2);
	assert_string_equal(ls->names[1], "n2");
	free(ls);
}

/*
 * Two snapshots in one second: the first is named to the second ("...:20Z"),
 * the next gets microseconds ("...:20.623456Z"), which sorts *before* it by
 * name although it is newer. A listing resumed after the first (what readdir
 * does when a page ends there) must still show the second.
 */
static void test_list_same_second(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc prod = resolve(c, "prod");
	struct listing *ls;
	int64_t snap, nb, root;
	char name[48], after[256] = "";
	int seen_new = 0, total = 0;
	size_t n;

	check_ok(catalog_begin(c, E));
	check_ok(catalog_snapshot_begin(c, t->prod, "offline", &snap, E));
	nb = add_nb(c, snap, t->node1, &root);
	finish_nb(c, nb, root);
	check_ok(catalog_snapshot_finish(c, snap, T1 + 500000, name, E));
	check_ok(catalog_commit(c, E));
	assert_string_equal(name, "2023-11-14T22:13:20.623456Z");

	ls = list(c, &prod, "", 0);
	assert_int_equal(ls->n, 7); /* S1, the new one, S2, S3, latest, at, wal */
	free(ls);

	/* one name per call, resumed after the last: every snapshot once */
	for (;;) {
		ls = list(c, &prod, after, 1);
		if (ls->n == 0) {
			free(ls);
			break;
		}
		if (!strcmp(ls->names[0], name))
			seen_new++;
		total++;
		snprintf(after, sizeof after, "%s", ls->names[0]);
		free(ls);
		assert_true(total <= 10);
	}
	if (seen_new != 1 || total != 7)
		print_error("paged listing of prod: %d names, snapshot %s seen %d times\n", total, name, seen_new);
	ls = list(c, &prod, t->n1, 0);
	n = ls->n;
	if (n != 6)
		print_error("listing prod after %s gave %zu names, the first %s\n", t->n1, n, ls->names[0]);
	free(ls);
	assert_int_equal(n, 6);
	assert_int_equal(seen_new, 1);
	assert_int_equal(total, 7);
}

/*
 * Two snapshots of the same microsecond (the second gets its microseconds in its name, which
 * sorts before the first's): a listing paged one name at a time shows each once, and latest
 * is the one whose name sorts last, every time.
 */
static void test_list_same_microsecond(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc prod = resolve(c, "prod"), latest;
	struct listing *ls;
	int64_t snap, nb, root;
	char name[48], after[256] = "";
	int seen_new = 0, seen_old = 0, total = 0;

	check_ok(catalog_begin(c, E));
	check_ok(catalog_snapshot_begin(c, t->prod, "offline", &snap, E));
	nb = add_nb(c, snap, t->node1, &root);
	finish_nb(c, nb, root);
	check_ok(catalog_snapshot_finish(c, snap, T1, name, E));
	check_ok(catalog_commit(c, E));
	assert_string_not_equal(name, t->n1);
	for (;;) {
		ls = list(c, &prod, after, 1);
		if (ls->n == 0) {
			free(ls);
			break;
		}
		seen_new += !strcmp(ls->names[0], name);
		seen_old += !strcmp(ls->names[0], t->n1);
		total++;
		snprintf(after, sizeof after, "%s", ls->names[0]);
		free(ls);
		assert_true(total <= 10);
	}
	assert_int_equal(seen_new, 1);
	assert_int_equal(seen_old, 1);
	assert_int_equal(total, 7); /* S1, the new one, S2, S3, latest, at, wal */
	/* latest: the newest time, and of one time the name that sorts last */
	check_ok(fs_resolve(c, "prod/latest", &latest, E));
	assert_int_equal(latest.snapshot_time_us, T3);
}

/* --- deleting a snapshot --- */

static void test_snapshot_delete(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc s3 = resolve(c, "prod/%s", t->n3), lt = resolve(c, "prod/latest"), back;
	struct fs_loc ents[6];
	struct listing *ls;
	struct stat st;
	uint64_t lt_ino = fs_ino(&lt);
	ents[0] = resolve(c, "prod/latest/n1");
	ents[1] = resolve(c, "prod/latest/n2");
	ents[2] = resolve(c, "prod/latest/n1/base");
	ents[3] = resolve(c, "prod/latest/n1/base/PG_VERSION");
	ents[4] = resolve(c, "prod/latest/n1/big/f007");
	ents[5] = resolve(c, "prod/latest/n2/only-n2");

	check_ok(catalog_begin(c, E));
	check_ok(catalog_snapshot_delete(c, t->s3, E));
	check_ok(catalog_commit(c, E));

	/* its numbers lead nowhere */
	assert_int_equal(fs_loc_of_ino(c, fs_ino(&s3), &back, NULL), ERR_NOTFOUND);
	for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
		assert_int_equal(fs_loc_of_ino(c, fs_ino(&ents[i]), &back, NULL), ERR_NOTFOUND);
	for (int i = 0; i < NBIG; i += 17) {
		struct fs_loc fl = ents[4];
		fl.entry.id = t->bigid[i];
		assert_int_equal(fs_loc_of_ino(c, fs_ino(&fl), &back, NULL), ERR_NOTFOUND);
	}
	/* its names too */
	{
		char p[256];
		snprintf(p, sizeof p, "prod/%s", t->n3);
		resolve_missing(c, p);
		snprintf(p, sizeof p, "prod/%s/n1/base", t->n3);
		resolve_missing(c, p);
		resolve_missing(c, "prod/latest/n1/big");
		resolve_missing(c, "prod/latest/n2");
	}

	/* the cluster's listing no longer shows it; latest moved to S2 */
	{
		struct fs_loc prod = resolve(c, "prod");
		ls = list(c, &prod, "", 0);
		assert_int_equal(ls->n, 5);
		assert_string_equal(ls->names[0], t->n1);
		assert_string_equal(ls->names[1], t->n2);
		assert_string_equal(ls->names[2], "latest");
		assert_int_equal(ls->locs[2].snapshot, t->s2);
		assert_string_equal(fs_link_target(&ls->locs[2]), t->n2);
		free(ls);
		/* and its folder shows S2's time now */
		assert_int_equal(prod.snapshot_time_us, T2);
		fs_stat(&prod, &st);
		assert_int_equal(ts_us(st.st_mtim), T2);
	}
	lt = resolve(c, "prod/latest");
	assert_int_equal(lt.kind, FS_LATEST);
	assert_int_equal(lt.snapshot, t->s2);
	assert_string_equal(fs_link_target(&lt), t->n2);
	assert_int_equal(fs_ino(&lt), lt_ino); /* the same symlink, pointing elsewhere */
	check_ok(fs_loc_of_ino(c, lt_ino, &back, E));
	assert_int_equal(back.kind, FS_LATEST);
	assert_int_equal(back.snapshot, t->s2);
	assert_string_equal(fs_link_target(&back), t->n2);
	back = resolve(c, "prod/latest/n1/v2");
	assert_int_equal(back.nb, t->nb2);

	/* the others are untouched */
	back = resolve(c, "prod/%s/n1/etc/a", t->n1);
	assert_int_equal(back.nb, t->nb1);
	back = resolve(c, "alpha/latest/n1");
	assert_int_equal(back.nb, t->nba);

	/* deleting it again: not found */
	check_ok(catalog_begin(c, E));
	assert_int_equal(catalog_snapshot_delete(c, t->s3, NULL), ERR_NOTFOUND);
	/* the last ones: the cluster stays, empty, without latest */
	check_ok(catalog_snapshot_delete(c, t->s2, E));
	check_ok(catalog_snapshot_delete(c, t->s1, E));
	check_ok(catalog_commit(c, E));
	resolve_missing(c, "prod/latest");
	assert_int_equal(fs_loc_of_ino(c, lt_ino, &back, NULL), ERR_NOTFOUND);
	{
		struct fs_loc prod = resolve(c, "prod");
		ls = list(c, &prod, "", 0);
		assert_int_equal(ls->n, 2); /* at and wal only */
		free(ls);
	}
}

/*
 * After the newest snapshot is deleted, a new one must not show its files under
 * the numbers (inode, generation) the deleted files had: the kernel may still
 * hold those inodes, with their cached pages and listings (one-day timeouts,
 * keep_cache, cache_readdir). The mount uses the node backup number as the
 * generation of an entry and 1 for everything else.
 */
static void test_ino_not_reused(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc s3 = resolve(c, "prod/%s", t->n3), fl;
	uint64_t old_ino[8], old_gen[8];
	size_t nold = 0;
	int64_t snap, nb, root, base;
	char name[48];
	int same = 0;
	const char *paths[] = {"prod/latest/n1", "prod/latest/n1/base", "prod/latest/n1/base/PG_VERSION",
			       "prod/latest/n1/base/sparse", "prod/latest/n1/base/allhole"};

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		fl = resolve(c, "%s", paths[i]);
		old_ino[nold] = fs_ino(&fl);
		old_gen[nold++] = (uint64_t)fl.nb;
	}
	check_ok(catalog_begin(c, E));
	check_ok(catalog_snapshot_delete(c, t->s3, E));
	check_ok(catalog_commit(c, E));

	/* a new snapshot of n1 with a tree of the same shape */
	check_ok(catalog_begin(c, E));
	check_ok(catalog_snapshot_begin(c, t->prod, "offline", &snap, E));
	nb = add_nb(c, snap, t->node1, &root);
	base = add_dir(c, nb, root, "base", 0700);
	(void)add_file(c, nb, base, "PG_VERSION", 0600, 3, t->pgv_content, T0 * 1000);
	(void)add_file(c, nb, base, "sparse", 0600, 3, t->pgv_content, T0 * 1000);
	(void)add_file(c, nb, base, "allhole", 0600, 3, t->pgv_content, T0 * 1000);
	finish_nb(c, nb, root);
	check_ok(catalog_snapshot_finish(c, snap, T3 + DAY, name, E));
	check_ok(catalog_commit(c, E));

	{
		struct fs_loc s4 = resolve(c, "prod/%s", name);
		if (fs_ino(&s4) == fs_ino(&s3)) {
			print_error("snapshot %s has inode %llu, as deleted %s had\n", name,
				    (unsigned long long)fs_ino(&s4), t->n3);
			same++;
		}
	}
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		fl = resolve(c, "%s", paths[i]);
		for (size_t j = 0; j < nold; j++) {
			if (fs_ino(&fl) == old_ino[j] && (uint64_t)fl.nb == old_gen[j]) {
				print_error("%s: inode %llu generation %llu, as a deleted file had\n", paths[i],
					    (unsigned long long)old_ino[j], (unsigned long long)old_gen[j]);
				same++;
			}
		}
	}
	assert_int_equal(same, 0);
}

/* --- stat --- */

static void test_stat(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc l;
	struct stat st, full;

	/* above the nodes: directories 0555 owned by root, with the snapshot's time
	 */
	l = resolve(c, "%s", "");
	fs_stat(&l, &st);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0555);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(st.st_nlink, 2);

	l = resolve(c, "prod");
	fs_stat(&l, &st);
	assert_int_equal(st.st_mode, S_IFDIR | 0555);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(ts_us(st.st_mtim), T3); /* its newest snapshot */
	assert_int_equal(st.st_mtim.tv_nsec, 987654000);

	l = resolve(c, "prod/%s", t->n2);
	fs_stat(&l, &st);
	assert_int_equal(st.st_mode, S_IFDIR | 0555);
	assert_int_equal(st.st_mtim.tv_sec, T2 / 1000000);
	assert_int_equal(st.st_mtim.tv_nsec, 250000000);
	assert_int_equal(st.st_ctim.tv_sec, T2 / 1000000);

	l = resolve(c, "prod/latest");
	fs_stat(&l, &st);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_size, strlen(t->n3));
	assert_int_equal(st.st_mtim.tv_sec, T3 / 1000000);

	/* entries: as stored */
	l = resolve(c, "prod/latest/n1/base");
	fs_stat(&l, &st);
	assert_int_equal(st.st_mode, S_IFDIR | 0700);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_mtim.tv_sec, T0 / 1000000);

	l = resolve(c, "prod/latest/n1/base/PG_VERSION");
	fs_stat(&l, &st);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(st.st_uid, 26);
	assert_int_equal(st.st_gid, 26);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_mtim.tv_sec, T0 / 1000000);
	assert_int_equal(st.st_mtim.tv_nsec, 999999999);
	assert_int_equal(st.st_blocks, 1);
	fs_stat_full(c, &l, &full);
	assert_int_equal(full.st_blocks, 1);
	assert_int_equal(full.st_size, 3);

	l = resolve(c, "prod/latest/n1/big/f077");
	fs_stat(&l, &st);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(st.st_uid, 1077);
	assert_int_equal(st.st_gid, 2077);
	assert_int_equal(st.st_size, 77);
	assert_int_equal(st.st_mtim.tv_nsec, 77);

	/* the sparse file: fs_stat counts every byte, fs_stat_full only the data */
	l = resolve(c, "prod/latest/n1/base/sparse");
	fs_stat(&l, &st);
	assert_int_equal(st.st_size, SPARSE_SIZE);
	assert_int_equal(st.st_blocks, (SPARSE_SIZE + 511) / 512);
	assert_int_equal(st.st_mtim.tv_nsec, 1);
	fs_stat_full(c, &l, &full);
	assert_int_equal(full.st_size, SPARSE_SIZE);
	assert_int_equal(full.st_mode, S_IFREG | 0640);
	assert_int_equal(full.st_blocks, (SPARSE_SIZE - SPARSE_HOLES + 511) / 512);
	assert_int_equal(full.st_blocks, 17);
	assert_int_equal(full.st_mtim.tv_nsec, 1);

	/* a file that is one hole takes no blocks; an empty file neither */
	l = resolve(c, "prod/latest/n1/base/allhole");
	fs_stat_full(c, &l, &full);
	assert_int_equal(full.st_size, 65536);
	assert_int_equal(full.st_blocks, 0);
	l = resolve(c, "prod/latest/n1/base/empty");
	fs_stat_full(c, &l, &full);
	assert_int_equal(full.st_size, 0);
	assert_int_equal(full.st_blocks, 0);

	/* a symlink's size is its target's length; a device keeps its number */
	l = resolve(c, "prod/latest/n1/link");
	fs_stat_full(c, &l, &full);
	assert_true(S_ISLNK(full.st_mode));
	assert_int_equal(full.st_size, strlen("base/PG_VERSION"));
	l = resolve(c, "prod/latest/n1/dev");
	fs_stat_full(c, &l, &full);
	assert_true(S_ISCHR(full.st_mode));
	assert_int_equal(full.st_rdev, makedev(1, 3));

	/* fs_stat_full of what is not a regular file: fs_stat */
	{
		static const char *paths[] = {"", "prod", "prod/latest", "prod/latest/n1", "prod/latest/n1/base"};
		for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
			l = resolve(c, "%s", paths[i]);
			fs_stat(&l, &st);
			fs_stat_full(c, &l, &full);
			assert_int_equal(st.st_mode, full.st_mode);
			assert_int_equal(st.st_size, full.st_size);
			assert_int_equal(st.st_blocks, full.st_blocks);
			assert_int_equal(st.st_mtim.tv_sec, full.st_mtim.tv_sec);
			assert_int_equal(st.st_mtim.tv_nsec, full.st_mtim.tv_nsec);
		}
	}
}

/* `latest` shows the time of the snapshot it points at, like that snapshot's
 * folder. */
static void test_stat_latest_time(void **state)
{
	struct fixture *f = *state;
	struct fs_loc lt = resolve(f->c, "prod/latest"), s3 = resolve(f->c, "prod/%s", f->t.n3);
	struct stat a, b;
	fs_stat(&lt, &a);
	fs_stat(&s3, &b);
	assert_int_equal(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
	if (a.st_mtim.tv_nsec != b.st_mtim.tv_nsec)
		print_error("latest: mtime nsec %ld, its snapshot %ld\n", (long)a.st_mtim.tv_nsec,
			    (long)b.st_mtim.tv_nsec);
	assert_int_equal(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
}

/* A file modified before 1970 (mtime_ns < 0): st_mtim must be a valid timespec.
 */
static void test_stat_before_1970(void **state)
{
	struct fixture *f = *state;
	struct fs_loc l = resolve(f->c, "prod/latest/n1/old");
	struct stat st;
	assert_int_equal(l.entry.mtime_ns, -1500000000ll);
	fs_stat(&l, &st);
	if (st.st_mtim.tv_sec != -2 || st.st_mtim.tv_nsec != 500000000)
		print_error("mtime_ns -1500000000 gave st_mtim {%lld, %ld}, want {-2, 500000000}\n",
			    (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
	assert_true(st.st_mtim.tv_nsec >= 0 && st.st_mtim.tv_nsec < 1000000000);
	assert_int_equal(st.st_mtim.tv_sec, -2);
	assert_int_equal(st.st_mtim.tv_nsec, 500000000);
}

/* --- names, link targets, immutability --- */

static void test_names_links(void **state)
{
	struct fixture *f = *state;
	struct tree *t = &f->t;
	catalog *c = f->c;
	struct fs_loc l;

	l = resolve(c, "/");
	assert_string_equal(fs_name(&l), "/");
	assert_null(fs_link_target(&l));
	assert_false(fs_immutable(&l));

	l = resolve(c, "prod");
	assert_string_equal(fs_name(&l), "prod");
	assert_null(fs_link_target(&l));
	assert_false(fs_immutable(&l)); /* snapshots come and go */

	l = resolve(c, "prod/%s", t->n2);
	assert_string_equal(fs_name(&l), t->n2);
	assert_null(fs_link_target(&l));
	assert_true(fs_immutable(&l));

	l = resolve(c, "prod/latest");
	assert_string_equal(fs_name(&l), "latest");
	assert_string_equal(fs_link_target(&l), t->n3);
	assert_false(fs_immutable(&l)); /* it moves */

	l = resolve(c, "prod/latest/n2");
	assert_string_equal(fs_name(&l), "n2");
	assert_null(fs_link_target(&l));
	assert_true(fs_immutable(&l));

	l = resolve(c, "prod/latest/n1/base/PG_VERSION");
	assert_string_equal(fs_name(&l), "PG_VERSION");
	assert_null(fs_link_target(&l));
	assert_true(fs_immutable(&l));

	l = resolve(c, "prod/latest/n1/big");
	assert_string_equal(fs_name(&l), "big");
	assert_null(fs_link_target(&l));

	l = resolve(c, "prod/latest/n1/link");
	assert_string_equal(fs_name(&l), "link");
	assert_string_equal(fs_link_target(&l), "base/PG_VERSION");
	assert_true(fs_immutable(&l));

	/* fs_lookup of "." is the directory itself */
	{
		struct fs_loc dir = resolve(c, "prod/latest/n1/base"), same;
		check_ok(fs_lookup(c, &dir, ".", &same, E));
		assert_int_equal(same.entry.id, t->base);
		assert_string_equal(fs_name(&same), "base");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ino_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_upper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_same_second, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_same_microsecond, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ino_not_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_latest_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_before_1970, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_links, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
