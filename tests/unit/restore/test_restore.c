/*
 * test_restore.c: restore/ without a server: restore.json (manifest), the tree copy (holes,
 * modes, mtimes, owners' absence of change, symlinks, the held-back file, stopping) and the
 * configuration files of a restored node (pgsetup).
 */
#include "../unit.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore/copy.h"
#include "restore/manifest.h"
#include "restore/pgsetup.h"
#include "restore/walscan.h"

/* --- manifest --- */

static const char good_json[] =
	"{\"cluster\": \"prod\", \"time\": \"2026-11-25T03:00:00Z\", \"time_us\": 1795575600000000,\n"
	" \"snapshot\": \"2026-11-25T02:00:00Z\", \"target\": \"time\", \"extra\": [1, {\"a\": null}],\n"
	" \"restore_point\": {\"name\": \"rp \\\"1\\\" \\u00e9\\ud83d\\ude00\", \"time\": \"2026-11-25T02:59:00Z\", "
	"\"time_us\": 1795575540000000},\n"
	" \"nodes\": [{\"name\": \"coord\", \"pg_version\": \"15.4\", \"citus_version\": \"11.3-1\", \"system_id\": "
	"\"7300000000000000001\", \"timeline\": 2},\n"
	"            {\"name\": \"w1\", \"pg_version\": \"15.4\", \"citus_version\": null, \"system_id\": \"7\", "
	"\"timeline\": 1}]}\n";

static void test_manifest_good(void **state)
{
	struct restore_manifest m;
	struct err e;
	(void)state;
	assert_int_equal(restore_manifest_parse(good_json, strlen(good_json), &m, &e), 0);
	assert_string_equal(m.cluster, "prod");
	assert_string_equal(m.time, "2026-11-25T03:00:00Z");
	assert_true(m.time_us == 1795575600000000LL);
	assert_string_equal(m.target, "time");
	assert_string_equal(m.rp_name, "rp \"1\" \xc3\xa9\xf0\x9f\x98\x80");
	assert_true(m.rp_time_us == 1795575540000000LL);
	assert_int_equal(m.nnodes, 2);
	assert_string_equal(m.nodes[0].name, "coord");
	assert_int_equal(m.nodes[0].pg_major, 15);
	assert_string_equal(m.nodes[0].citus_version, "11.3-1");
	assert_int_equal(m.nodes[0].timeline, 2);
	assert_null(m.nodes[1].citus_version);
	restore_manifest_free(&m);
	restore_manifest_free(NULL);

	/* a restore point name that was not UTF-8, as common/json.c writes it: the bytes come back */
	{
		const char *j = "{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":1,\"target\":\"end\",\"restore_point\":"
				"{\"name\":\"caf\\udce9\",\"time_us\":2},\"nodes\":[{\"name\":\"n\",\"pg_version\":\"15.4\"}]}";
		assert_int_equal(restore_manifest_parse(j, strlen(j), &m, &e), 0);
		assert_string_equal(m.rp_name, "caf\xe9");
		restore_manifest_free(&m);
	}

	/* no restore point */
	{
		const char *j = "{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":1,\"target\":\"end\",\"restore_point\":null,"
				"\"nodes\":[{\"name\":\"n\",\"pg_version\":\"16.1\"}]}";
		assert_int_equal(restore_manifest_parse(j, strlen(j), &m, &e), 0);
		assert_null(m.rp_name);
		assert_int_equal(m.nodes[0].pg_major, 16);
		restore_manifest_free(&m);
	}
}

static void test_manifest_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"cluster\":\"c\"}",
		"{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":1,\"target\":\"end\",\"nodes\":[]}",
		"{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":1,\"target\":\"later\",\"nodes\":[{\"name\":\"n\",\"pg_version\":\"15\"}]}",
		"{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":\"1\",\"target\":\"end\",\"nodes\":[{\"name\":\"n\",\"pg_version\":\"15\"}]}",
		"{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":1,\"target\":\"end\",\"nodes\":[{\"name\":\"../x\",\"pg_version\":\"15\"}]}",
		"{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":1,\"target\":\"end\",\"nodes\":[{\"name\":\"n\",\"pg_version\":\"15\"},"
		"{\"name\":\"n\",\"pg_version\":\"15\"}]}",
		"{\"cluster\":\"c\",\"time\":\"t\",\"time_us\":1,\"target\":\"end\",\"nodes\":[{\"name\":\"n\",\"pg_version\":\"15\"}]} x",
		"{\"cluster\":\"c\",}",
		"{\"cluster\":\"\\ud800\"}",
		"{\"cluster\":\"\\udc41\"}", /* a lone low surrogate that stands for no byte >= 0x80 */
		"{\"cluster\":\"a\\u0000b\"}",
		"{\"cluster\":\"unterminated}",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct restore_manifest m;
		struct err e;
		err_clear(&e);
		assert_int_equal(restore_manifest_parse(bad[i], strlen(bad[i]), &m, &e), ERR_CORRUPT);
		assert_true(e.msg[0] != 0);
		assert_null(m.cluster);
		assert_null(m.nodes);
	}
}

/* --- copy --- */

static void write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(util_write_all(fd, buf, n), 0);
	close(fd);
}

/* the files at p and q hold the same bytes; *qst gets q's stat */
static void same_bytes(const char *p, const char *q, struct stat *qst)
{
	int f1 = open(p, O_RDONLY), f2 = open(q, O_RDONLY);
	static uint8_t x[1 << 20], y[1 << 20];
	ssize_t r1, r2;
	assert_true(f1 >= 0 && f2 >= 0);
	do {
		r1 = read(f1, x, sizeof x);
		r2 = read(f2, y, sizeof y);
		assert_int_equal(r1, r2);
		assert_memory_equal(x, y, (size_t)r1);
	} while (r1 > 0);
	assert_int_equal(fstat(f2, qst), 0);
	close(f1);
	close(f2);
}

static void test_copy_tree(void **state)
{
	char dir[512], src[600], dst[600], p[800], q[800];
	uint8_t buf[65536];
	uint64_t seed = 7;
	struct stat a, b;
	struct restore_copy_opts o;
	struct restore_tree_stats sz, st;
	_Atomic uint64_t done = 0;
	atomic_int stop = 0;
	struct err e;
	int fd;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	snprintf(src, sizeof src, "%s/src", dir);
	snprintf(dst, sizeof dst, "%s/dst", dir);
	snprintf(p, sizeof p, "%s/global", src);
	assert_int_equal(util_mkdir_p(p, 0700, NULL), 0);
	snprintf(p, sizeof p, "%s/base/1", src);
	assert_int_equal(util_mkdir_p(p, 0700, NULL), 0);
	unit_rand_fill(&seed, buf, sizeof buf);
	snprintf(p, sizeof p, "%s/global/pg_control", src);
	write_file(p, buf, 8192);
	snprintf(p, sizeof p, "%s/base/1/1259", src);
	write_file(p, buf, sizeof buf);
	/* sparse: 64 KiB data, a 40 MiB hole, 64 KiB data, a 1 MiB hole at the end */
	snprintf(p, sizeof p, "%s/base/1/sparse", src);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	assert_int_equal(pwrite(fd, buf, sizeof buf, 40 << 20), (ssize_t)sizeof buf);
	assert_int_equal(ftruncate(fd, (41 << 20) + (off_t)sizeof buf), 0);
	close(fd);
	snprintf(p, sizeof p, "%s/empty", src);
	write_file(p, "", 0);
	chmod(p, 0640);
	snprintf(p, sizeof p, "%s/link", src);
	assert_int_equal(symlink("base/1/1259", p), 0);
	snprintf(p, sizeof p, "%s/fifo", src);
	assert_int_equal(mkfifo(p, 0600), 0);
	snprintf(p, sizeof p, "%s/base", src);
	chmod(p, 0750);
	{
		struct timespec ts[2] = {{1000000000, 5}, {1000000000, 123456789}};
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}

	assert_int_equal(restore_tree_size(src, &sz, &e), 0);
	assert_int_equal(sz.files, 4);
	assert_int_equal(sz.links, 1);
	assert_true(sz.bytes == 8192 + sizeof buf + (41u << 20) + sizeof buf);
	assert_true(sz.allocated < 1u << 20); /* the hole is not counted */

	memset(&o, 0, sizeof o);
	o.hold_back = "global/pg_control";
	o.done = &done;
	o.stop = &stop;
	assert_int_equal(restore_copy_tree(src, dst, &o, &st, &e), 0);
	assert_int_equal(st.files, 4);
	assert_true(st.bytes == sz.bytes);
	assert_true(atomic_load(&done) == sz.bytes); /* holes count as done */

	/* the held-back file is under its other name */
	snprintf(p, sizeof p, "%s/global/pg_control", dst);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof p, "%s/global/pg_control" RESTORE_HELD_SUFFIX, dst);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(a.st_size, 8192);
	/* bytes, holes */
	snprintf(p, sizeof p, "%s/base/1/sparse", src);
	snprintf(q, sizeof q, "%s/base/1/sparse", dst);
	same_bytes(p, q, &b);
	assert_true((uint64_t)b.st_blocks * 512 < 1u << 20); /* the 40 MiB hole stayed a hole */
	assert_int_equal(b.st_size, (41 << 20) + (off_t)sizeof buf);
	/* modes, mtime of a directory, symlink, fifo */
	snprintf(p, sizeof p, "%s/base", dst);
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(b.st_mode & 07777, 0750);
	assert_int_equal(b.st_mtim.tv_sec, 1000000000);
	assert_int_equal(b.st_mtim.tv_nsec, 123456789);
	snprintf(p, sizeof p, "%s/empty", dst);
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(b.st_mode & 07777, 0640);
	snprintf(p, sizeof p, "%s/link", dst);
	{
		char t[64];
		ssize_t n = readlink(p, t, sizeof t - 1);
		assert_int_equal(n, 11);
		t[n] = 0;
		assert_string_equal(t, "base/1/1259");
	}
	snprintf(p, sizeof p, "%s/fifo", dst);
	assert_int_equal(lstat(p, &b), 0);
	assert_true(S_ISFIFO(b.st_mode));

	/* an existing destination is refused; a stop request stops */
	assert_int_equal(restore_copy_tree(src, dst, &o, NULL, &e), ERR_IO);
	snprintf(q, sizeof q, "%s/dst2", dir);
	atomic_store(&stop, 1);
	assert_int_equal(restore_copy_tree(src, q, &o, NULL, &e), ERR_INTERNAL);
	assert_string_equal(e.msg, "stopped");
	unit_rmdir(dir);
}

/* a file large enough to be copied in two halves by two threads: data across the middle,
 * holes in both halves, a hole at the end; bytes, holes and progress as for any file */
static void test_copy_split(void **state)
{
	char dir[512], src[600], dst[600], p[800], q[800];
	static uint8_t big[3 << 20];
	uint64_t seed = 11;
	const off_t size = (100 << 20) + 65536;
	struct restore_copy_opts o;
	struct restore_tree_stats st;
	_Atomic uint64_t done = 0;
	struct stat b;
	struct err e;
	int fd;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	snprintf(src, sizeof src, "%s/src", dir);
	snprintf(dst, sizeof dst, "%s/dst", dir);
	assert_int_equal(util_mkdir_p(src, 0700, NULL), 0);
	unit_rand_fill(&seed, big, sizeof big);
	snprintf(p, sizeof p, "%s/16384", src);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, big, 1 << 20, 0), 1 << 20);
	assert_int_equal(pwrite(fd, big, sizeof big, 49 << 20), (ssize_t)sizeof big); /* across the middle */
	assert_int_equal(pwrite(fd, big + 4096, 65536, 90 << 20), 65536);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
	memset(&o, 0, sizeof o);
	o.done = &done;
	assert_int_equal(restore_copy_tree(src, dst, &o, &st, &e), 0);
	assert_int_equal(st.files, 1);
	assert_true(atomic_load(&done) == (uint64_t)size);
	snprintf(q, sizeof q, "%s/16384", dst);
	same_bytes(p, q, &b);
	assert_int_equal(b.st_size, size);
	assert_true((uint64_t)b.st_blocks * 512 < 8u << 20); /* the holes stayed holes */
	unit_rmdir(dir);
}

/* --- pgsetup: the recovery block and the files of a restored node --- */

static char *slurp(const char *path)
{
	uint8_t *b = NULL;
	size_t n;
	assert_int_equal(util_read_small(path, 1 << 20, &b, &n, NULL), 0);
	return (char *)b;
}

static void test_pgsetup(void **state)
{
	char dir[512], node[600], p[800];
	struct restore_pg pg;
	struct restore_recovery rec;
	struct restore_node_conf c;
	struct err e;
	char *s;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	memset(&pg, 0, sizeof pg);
	pg.major = 15;
	snprintf(pg.sharedir, sizeof pg.sharedir, "%s/share", dir);
	assert_int_equal(util_mkdir_p(pg.sharedir, 0755, NULL), 0);
	snprintf(p, sizeof p, "%s/postgresql.conf.sample", pg.sharedir);
	write_file(p, "#shared_buffers = 128MB\n", 24);
	snprintf(node, sizeof node, "%s/node", dir);
	assert_int_equal(util_mkdir_p(node, 0700, NULL), 0);

	/* no block: refused; a block: its target time (the snapshot's own settings before it ignored) */
	snprintf(p, sizeof p, "%s/postgresql.auto.conf", node);
	write_file(p, "work_mem = '7MB'\n", 17);
	assert_int_equal(restore_pg_read_recovery(node, &rec, &e), ERR_CORRUPT);
	s = "work_mem = '7MB'\nrecovery_target_time = '1999-01-01 00:00:00+00'\n"
	    "# pgtimefs recovery (at/2026-11-25T03:00:00Z)\n"
	    "recovery_target_time = '2026-11-25 03:00:00+00'\nrecovery_target_action = 'promote'\nrestore_command = ''\n";
	write_file(p, s, strlen(s));
	assert_int_equal(restore_pg_read_recovery(node, &rec, &e), 0);
	assert_string_equal(rec.target_time, "2026-11-25 03:00:00+00");
	assert_string_equal(rec.target_name, "");

	snprintf(p, sizeof p, "%s/standby.signal", node);
	write_file(p, "", 0);
	snprintf(p, sizeof p, "%s/postmaster.pid", node);
	write_file(p, "123\n", 4);
	memset(&c, 0, sizeof c);
	c.port = 5999;
	c.citus = 1;
	c.user = "postgres";
	c.rec = &rec;
	c.header = "restored from test";
	snprintf(rec.target_name, sizeof rec.target_name, "it's a\\b");
	assert_int_equal(restore_pg_configure(node, &pg, &c, 0, 0, 0, &e), 0);
	snprintf(p, sizeof p, "%s/postgresql.conf", node);
	s = slurp(p);
	assert_string_equal(s, "#shared_buffers = 128MB\n");
	free(s);
	snprintf(p, sizeof p, "%s/postgresql.auto.conf", node);
	s = slurp(p);
	assert_non_null(strstr(s, "\nport = '5999'\n"));
	assert_non_null(strstr(s, "\nshared_preload_libraries = 'citus'\n"));
	/* a name wins over the time; quote doubled, backslash escaped (as the server reads them) */
	assert_non_null(strstr(s, "\nrecovery_target_name = 'it''s a\\\\b'\n"));
	assert_non_null(strstr(s, "\nmax_logical_replication_workers = '0'\n"));
	assert_null(strstr(s, "recovery_target_time"));
	assert_null(strstr(s, "work_mem"));
	assert_non_null(strstr(s, "\nrecovery_target_action = 'promote'\n"));
	assert_non_null(strstr(s, "\nrestore_command = 'false'\n"));
	free(s);
	snprintf(p, sizeof p, "%s/pg_hba.conf", node);
	s = slurp(p);
	assert_non_null(strstr(s, "\nlocal   all          all              peer map=pgtimefs\n"));
	assert_non_null(strstr(s, "\nlocal   replication  all              peer map=pgtimefs\n"));
	assert_non_null(strstr(s, "\nhost    all          all   0.0.0.0/0  reject\n"));
	assert_non_null(strstr(s, "\nhost    all          all   ::/0       reject\n"));
	assert_null(strstr(s, " trust"));
	free(s);
	snprintf(p, sizeof p, "%s/pg_ident.conf", node);
	s = slurp(p);
	assert_non_null(strstr(s, "\npgtimefs        postgres        postgres\n"));
	assert_null(strstr(s, "pgtimefs        postgres        postgres\npgtimefs")); /* no second line for postgres */
	free(s);
	/* another OS user: its own role or postgres */
	c.user = "alice";
	assert_int_equal(restore_pg_configure(node, &pg, &c, 0, 0, 0, &e), 0);
	s = slurp(p);
	assert_non_null(strstr(s, "\npgtimefs        alice        alice\npgtimefs        alice        postgres\n"));
	free(s);
	snprintf(p, sizeof p, "%s/recovery.signal", node);
	assert_int_equal(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/standby.signal", node);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof p, "%s/postmaster.pid", node);
	assert_int_equal(access(p, F_OK), -1);
	unit_rmdir(dir);
}

/* The WAL scan stops with "interrupted" once cancel is set, and reads on while it is not. */
static void test_walscan_cancel(void **state)
{
	char dir[512], p[700];
	struct restore_tblspc_hit hit;
	struct err e;
	atomic_int cancel = 0;
	int fd;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	snprintf(p, sizeof p, "%s/pg_wal", dir);
	assert_int_equal(util_mkdir_p(p, 0700, NULL), 0);
	/* two segments of 16 MiB of zeros: no record in them, and read to their end */
	for (int i = 1; i <= 2; i++) {
		snprintf(p, sizeof p, "%s/pg_wal/00000001000000000000000%d", dir, i);
		assert_true((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
		assert_int_equal(ftruncate(fd, 16 << 20), 0);
		close(fd);
	}
	err_clear(&e);
	assert_int_equal(restore_wal_tablespaces(dir, 0, NULL, &cancel, &hit, &e), 0);
	assert_int_equal(hit.found, 0);
	assert_int_equal(restore_wal_tablespaces(dir, 0, NULL, NULL, &hit, &e), 0);
	atomic_store(&cancel, 1);
	assert_int_equal(restore_wal_tablespaces(dir, 0, NULL, &cancel, &hit, &e), ERR_INTERNAL);
	assert_non_null(strstr(e.msg, "interrupted"));
	assert_int_equal(hit.found, 0);
	unit_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_good),
		cmocka_unit_test(test_manifest_bad),
		cmocka_unit_test(test_copy_tree),
		cmocka_unit_test(test_copy_split),
		cmocka_unit_test(test_pgsetup),
		cmocka_unit_test(test_walscan_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
