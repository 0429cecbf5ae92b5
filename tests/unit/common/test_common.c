/*
 * test_common.c: common/ (err, util, timefmt, config, pool, json).
 */
#include "../unit.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/err.h"
#include "common/json.h"
#include "common/pool.h"
#include "common/timefmt.h"
#include "common/util.h"

/* --- err --- */

static void test_err(void **state)
{
	struct err e;
	(void)state;
	err_clear(&e);
	assert_int_equal(e.code, 0);
	assert_string_equal(e.msg, "");
	assert_int_equal(err_set(&e, ERR_CORRUPT, "pack %s is %d bytes", "ab", 3), ERR_CORRUPT);
	assert_int_equal(e.code, ERR_CORRUPT);
	assert_string_equal(e.msg, "pack ab is 3 bytes");
	err_prefix(&e, "zone %d", 2);
	assert_string_equal(e.msg, "zone 2: pack ab is 3 bytes");
	err_hint(&e, "run %s", "repair");
	assert_string_equal(e.hint, "run repair");

	errno = ENOENT;
	assert_int_equal(err_sys(&e, ERR_IO, "cannot open %s", "x"), ERR_IO);
	assert_int_equal(e.sys_errno, ENOENT);
	assert_non_null(strstr(e.msg, "cannot open x: "));
	assert_string_equal(e.hint, ""); /* a new error drops the old hint */

	errno = ENOSPC;
	assert_int_equal(err_sys(&e, ERR_IO, "cannot write"), ERR_NOSPC);
	assert_int_equal(e.code, ERR_NOSPC);
	assert_true(strlen(e.hint) > 0);

	/* NULL is fine everywhere and still returns the code */
	err_clear(NULL);
	assert_int_equal(err_set(NULL, ERR_AUTH, "x"), ERR_AUTH);
	errno = EDQUOT;
	assert_int_equal(err_sys(NULL, ERR_IO, "x"), ERR_NOSPC);
	err_prefix(NULL, "x");
	err_hint(NULL, "x");

	/* a very long message is cut, not overflowed */
	{
		char big[3000];
		memset(big, 'a', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		err_set(&e, ERR_IO, "%s", big);
		assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
		err_prefix(&e, "%s", big);
		assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
	}

	assert_string_equal(err_name(ERR_OK), "ok");
	assert_string_equal(err_name(ERR_CORRUPT), "corrupt");
	assert_string_equal(err_name(ERR_AUTH), "auth");
	assert_string_equal(err_name(ERR_INTERNAL), "internal");
	assert_string_equal(err_name(-999), "unknown");
	for (int c = ERR_INTERNAL; c <= ERR_OK; c++)
		assert_string_not_equal(err_name(c), "unknown");
}

/* --- util --- */

static void test_hex(void **state)
{
	const uint8_t in[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0x7f, 0x80, 0xff};
	uint8_t out[8];
	char hex[17];
	(void)state;
	hex_encode(in, sizeof in, hex);
	assert_string_equal(hex, "0001abcdef7f80ff");
	assert_int_equal(hex_decode(hex, out, sizeof out), 0);
	assert_memory_equal(in, out, sizeof in);
	assert_int_equal(hex_decode("0001ABCDEF7F80FF", out, sizeof out), 0); /* upper case too */
	assert_memory_equal(in, out, sizeof in);
	hex_encode(in, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(hex_decode("", out, 0), 0);
	/* bad digits and lengths */
	assert_int_equal(hex_decode("0g", out, 1), -1);
	assert_int_equal(hex_decode("g0", out, 1), -1);
	assert_int_equal(hex_decode(" 0", out, 1), -1);
	assert_int_equal(hex_decode("000", out, 1), -1);
	assert_int_equal(hex_decode("0", out, 1), -1);
	assert_int_equal(hex_decode("0000", out, 1), -1);
	assert_int_equal(hex_decode("00", out, 2), -1);
}

static void test_le(void **state)
{
	uint8_t b[8];
	(void)state;
	put_le32(b, 0x11223344);
	assert_int_equal(b[0], 0x44);
	assert_int_equal(b[3], 0x11);
	assert_int_equal(get_le32(b), 0x11223344);
	put_le64(b, 0x0102030405060708ull);
	assert_int_equal(b[0], 0x08);
	assert_int_equal(b[7], 0x01);
	assert_true(get_le64(b) == 0x0102030405060708ull);
	put_le64(b, UINT64_MAX);
	assert_true(get_le64(b) == UINT64_MAX);
}

static void test_human_bytes(void **state)
{
	char out[32];
	(void)state;
	util_human_bytes(0, out, sizeof out);
	assert_string_equal(out, "0 B");
	util_human_bytes(1023, out, sizeof out);
	assert_string_equal(out, "1023 B");
	util_human_bytes(1024, out, sizeof out);
	assert_string_equal(out, "1.0 KiB");
	util_human_bytes(12897485, out, sizeof out);
	assert_string_equal(out, "12.3 MiB");
	util_human_bytes(UINT64_MAX, out, sizeof out);
	assert_string_equal(out, "16384.0 PiB");
}

static int count_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, ".tmp-", 5);
	closedir(d);
	return n;
}

static void test_write_durable_read_small(void **state)
{
	char dir[256], path[512], sub[512];
	uint8_t data[5000], *buf = NULL;
	size_t len = 0;
	uint64_t seed = 1;
	struct err e;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/file", dir);
	unit_rand_fill(&seed, data, sizeof data);

	assert_int_equal(util_write_durable(path, data, sizeof data, 1, &e), 0);
	assert_int_equal(util_read_small(path, sizeof data, &buf, &len, &e), 0);
	assert_int_equal(len, sizeof data);
	assert_memory_equal(buf, data, sizeof data);
	assert_int_equal(buf[len], 0); /* NUL-terminated */
	free(buf);
	{
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}

	/* overwrite with something shorter, without the directory fsync */
	assert_int_equal(util_write_durable(path, "hello", 5, 0, &e), 0);
	assert_int_equal(util_read_small(path, 100, &buf, &len, &e), 0);
	assert_int_equal(len, 5);
	assert_string_equal((char *)buf, "hello");
	free(buf);

	/* empty file */
	assert_int_equal(util_write_durable(path, "", 0, 1, &e), 0);
	assert_int_equal(util_read_small(path, 0, &buf, &len, &e), 0);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], 0);
	free(buf);
	assert_int_equal(count_tmp_files(dir), 0);

	/* a file larger than max is refused */
	assert_int_equal(util_write_durable(path, data, sizeof data, 1, &e), 0);
	assert_int_equal(util_read_small(path, sizeof data - 1, &buf, &len, &e), ERR_CORRUPT);
	/* missing file, directory */
	snprintf(sub, sizeof sub, "%s/missing", dir);
	assert_int_equal(util_read_small(sub, 100, &buf, &len, &e), ERR_NOTFOUND);
	assert_int_equal(e.sys_errno, ENOENT);
	assert_int_equal(util_read_small(dir, 100, &buf, &len, &e), ERR_CORRUPT);

	/* writing into a missing directory fails and creates nothing */
	snprintf(sub, sizeof sub, "%s/nodir/file", dir);
	assert_int_equal(util_write_durable(sub, "x", 1, 1, &e), ERR_IO);
	assert_non_null(strstr(e.msg, "nodir"));
	/* renaming over a non-empty directory fails; the temporary file is removed again */
	snprintf(sub, sizeof sub, "%s/adir/inner", dir);
	assert_int_equal(util_mkdir_p(sub, 0700, &e), 0);
	snprintf(sub, sizeof sub, "%s/adir", dir);
	assert_int_not_equal(util_write_durable(sub, "x", 1, 1, &e), 0);
	assert_int_equal(count_tmp_files(dir), 0);
	/* the first file is untouched by all that */
	assert_int_equal(util_read_small(path, sizeof data, &buf, &len, &e), 0);
	assert_memory_equal(buf, data, sizeof data);
	free(buf);
	unit_rmdir(dir);
}

/* Error codes must not depend on whether the caller passed a struct err. */
static void test_read_small_code_without_err(void **state)
{
	char dir[256], path[512];
	uint8_t *buf;
	size_t len;
	int rc;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/f", dir);
	assert_int_equal(util_write_durable(path, "0123456789", 10, 0, NULL), 0);
	rc = util_read_small(path, 5, &buf, &len, NULL);
	unit_rmdir(dir);
	assert_true(rc < 0);
	known_bug(rc == ERR_CORRUPT, "util_read_small returns ERR_IO instead of ERR_CORRUPT when e is NULL");
}

static void test_mkdir_p_rm_rf(void **state)
{
	char dir[256], p[512];
	struct stat st;
	FILE *f;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	snprintf(p, sizeof p, "%s/a/b/c/d", dir);
	assert_int_equal(util_mkdir_p(p, 0700, NULL), 0);
	assert_int_equal(util_mkdir_p(p, 0700, NULL), 0); /* existing is fine */
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(p, sizeof p, "%s/a/b/file", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	/* a file in the way */
	snprintf(p, sizeof p, "%s/a/b/file/x", dir);
	assert_int_equal(util_mkdir_p(p, 0700, NULL), ERR_IO);
	snprintf(p, sizeof p, "%s/a", dir);
	assert_int_equal(util_rm_rf(p, NULL), 0);
	assert_int_equal(stat(p, &st), -1);
	assert_int_equal(util_rm_rf(p, NULL), 0); /* missing is fine */
	unit_rmdir(dir);
}

static void test_clocks(void **state)
{
	int64_t now = util_now_us();
	double m1 = util_mono(), m2;
	(void)state;
	assert_true(now > (int64_t)1700000000 * 1000000);
	assert_true(llabs(now / 1000000 - (int64_t)time(NULL)) <= 2);
	m2 = util_mono();
	assert_true(m2 >= m1);
}

/* --- timefmt --- */

static int64_t parse_ok(const char *s)
{
	int64_t us = 0;
	if (timefmt_parse(s, &us) != 0)
		print_error("timefmt_parse rejected \"%s\"\n", s);
	assert_int_equal(timefmt_parse(s, &us), 0);
	return us;
}

#define SEC(s) ((int64_t)(s) * 1000000)

static void test_timefmt_print(void **state)
{
	char out[TIMEFMT_MAX];
	(void)state;
	timefmt_print(0, 0, out);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	timefmt_print(SEC(1795575600), 0, out);
	assert_string_equal(out, "2026-11-25T03:00:00Z");
	timefmt_print(SEC(1795575600) + 123456, 1, out);
	assert_string_equal(out, "2026-11-25T03:00:00.123456Z");
	timefmt_print(SEC(1795575600) + 999999, 0, out); /* second precision truncates */
	assert_string_equal(out, "2026-11-25T03:00:00Z");
	timefmt_print(SEC(951827696) + 7, 1, out);
	assert_string_equal(out, "2000-02-29T12:34:56.000007Z");
	timefmt_print(-1, 1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
	timefmt_print(-1, 0, out);
	assert_string_equal(out, "1969-12-31T23:59:59Z");
	timefmt_print(SEC(2147483648), 0, out); /* past 2038 */
	assert_string_equal(out, "2038-01-19T03:14:08Z");
}

static void test_timefmt_round_trip(void **state)
{
	static const int64_t values[] = {0,
					 1,
					 999999,
					 1000000,
					 SEC(951827696),
					 SEC(1795575600),
					 SEC(1795575600) + 123456,
					 SEC(1795575600) + 999999,
					 SEC(2147483648) + 5,
					 SEC(4107542400),
					 -1,
					 -SEC(86400) - 1};
	uint64_t seed = 9;
	char out[TIMEFMT_MAX];
	(void)state;
	for (size_t i = 0; i < sizeof values / sizeof values[0] + 1000; i++) {
		int64_t v = i < sizeof values / sizeof values[0]
				    ? values[i]
				    : (int64_t)(unit_rand_next(&seed) % (uint64_t)SEC(4102444800)); /* to 2100 */
		int64_t floor_s = v >= 0 ? v / 1000000 * 1000000 : -((-v + 999999) / 1000000) * 1000000;
		timefmt_print(v, 1, out);
		assert_int_equal(parse_ok(out), v);
		timefmt_print(v, 0, out);
		assert_int_equal(parse_ok(out), floor_s);
	}
}

static void test_timefmt_parse_forms(void **state)
{
	const int64_t t = SEC(1795575600); /* 2026-11-25T03:00:00Z */
	int64_t us;
	(void)state;
	assert_int_equal(parse_ok("2026-11-25T03:00:00Z"), t);
	assert_int_equal(parse_ok("2026-11-25t03:00:00z"), t);
	assert_int_equal(parse_ok("2026-11-25T03:00:00"), t); /* no Z: UTC */
	assert_int_equal(parse_ok("2026-11-25 03:00:00Z"), t);
	assert_int_equal(parse_ok("2026-11-25 03:00"), t); /* no seconds */
	assert_int_equal(parse_ok("2026-11-25T05:00:00+02:00"), t);
	assert_int_equal(parse_ok("2026-11-25T05:00:00+0200"), t);
	assert_int_equal(parse_ok("2026-11-25T05:00:00+02"), t);
	assert_int_equal(parse_ok("2026-11-24T21:30:00-0530"), t);
	assert_int_equal(parse_ok("2026-11-24T21:30:00-05:30"), t);
	assert_int_equal(parse_ok("2026-11-25T03:00:00+00:00"), t);
	assert_int_equal(parse_ok("2026-11-25T03:00:00.5Z"), t + 500000);
	assert_int_equal(parse_ok("2026-11-25T03:00:00,25Z"), t + 250000);
	assert_int_equal(parse_ok("2026-11-25T03:00:00.000001Z"), t + 1);
	assert_int_equal(parse_ok("2026-11-25T03:00:00.1234569Z"), t + 123456); /* beyond us: cut */
	assert_int_equal(parse_ok("2026-11-25T05:00:00.75+02:00"), t + 750000);
	assert_int_equal(parse_ok("2026-11-25"), SEC(1795564800)); /* bare date: midnight UTC */
	assert_int_equal(parse_ok("2000-02-29"), SEC(951782400));
	assert_int_equal(parse_ok("1970-01-01"), 0);
	assert_int_equal(parse_ok("2026-12-31T23:59:60Z"), SEC(1798761600)); /* leap second */

	{
		static const char *bad[] = {
			"",
			"yesterday",
			"now",
			"2026",
			"2026-11",
			"2026-13-01",
			"2026-00-10",
			"2026-02-31",
			"2026-02-29", /* not a leap year */
			"2100-02-29",
			"2026-04-31",
			"2026-11-00",
			"2026-11-32",
			"2026-1-01",
			"26-11-25",
			"2026/11/25",
			"2026-11-25T",
			"2026-11-25T3:00:00Z",
			"2026-11-25T24:00:00Z",
			"2026-11-25T03:60:00Z",
			"2026-11-25T03:00:61Z",
			"2026-11-25T03:00:00.Z",
			"2026-11-25T03:00:00ZZ",
			"2026-11-25T03:00:00Z ",
			" 2026-11-25T03:00:00Z",
			"2026-11-25T03:00:00+24:00",
			"2026-11-25T03:00:00+02:60",
			"2026-11-25T03:00:00+2:00",
			"2026-11-25T03:00:00+",
			"2026-11-25T03:00:00 +02:00",
			"2026-11-25X03:00:00",
			"2026-11-25T03:00:00junk",
		};
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			us = 12345;
			if (timefmt_parse(bad[i], &us) != -1)
				print_error("timefmt_parse accepted \"%s\"\n", bad[i]);
			assert_int_equal(timefmt_parse(bad[i], &us), -1);
		}
	}
}

/* The leap-second exception must not let impossible dates through. */
static void test_timefmt_leap_second_bad_date(void **state)
{
	int64_t us;
	(void)state;
	known_bug(timefmt_parse("2026-02-31T12:00:60Z", &us) == -1,
		  "timefmt_parse skips the day check when seconds == 60 and accepts 2026-02-31T12:00:60Z");
}

/* --- config --- */

static void test_config_parse(void **state)
{
	static const char text[] = "; pgtimefs configuration\n"
				   "# another comment\n"
				   "\n"
				   "[repository]\n"
				   "zones = /a, /b\n"
				   "passphrase-file=/etc/pgtimefs/pass   \n"
				   "  name = \"  spaced value  \"\n"
				   "path = /srv/x ; trailing comment\n"
				   "url = http://h/#frag\n"
				   "empty =\n"
				   "\r\n"
				   "[cluster   prod]\r\n"
				   "\thost = db1\r\n"
				   "zones = other\n"
				   "[node prod/worker1]\n"
				   "Key = upper\n"
				   "key = lower";
	struct config *c = (struct config *)1;
	struct err e;
	(void)state;
	assert_int_equal(config_parse(text, strlen(text), "test.conf", &c, &e), 0);
	assert_non_null(c);
	assert_int_equal(config_nsections(c), 3);
	assert_string_equal(config_section(c, 0), "repository");
	assert_string_equal(config_section(c, 1), "cluster prod");
	assert_string_equal(config_section(c, 2), "node prod/worker1");
	assert_null(config_section(c, 3));
	assert_true(config_has_section(c, "cluster prod"));
	assert_false(config_has_section(c, "cluster"));
	assert_string_equal(config_get(c, "repository", "zones"), "/a, /b");
	assert_string_equal(config_get(c, "repository", "passphrase-file"), "/etc/pgtimefs/pass");
	assert_string_equal(config_get(c, "repository", "name"), "  spaced value  ");
	assert_string_equal(config_get(c, "repository", "path"), "/srv/x");
	assert_string_equal(config_get(c, "repository", "url"), "http://h/#frag");
	assert_string_equal(config_get(c, "repository", "empty"), "");
	assert_string_equal(config_get(c, "cluster prod", "host"), "db1");
	assert_string_equal(config_get(c, "cluster prod", "zones"), "other"); /* same key, other section */
	assert_string_equal(config_get(c, "node prod/worker1", "Key"), "upper"); /* case-sensitive */
	assert_string_equal(config_get(c, "node prod/worker1", "key"), "lower"); /* no final newline */
	assert_null(config_get(c, "repository", "host"));
	assert_null(config_get(c, "nope", "zones"));
	config_free(c);
	config_free(NULL);

	/* empty text and comments only: no sections */
	assert_int_equal(config_parse("", 0, "empty", &c, &e), 0);
	assert_int_equal(config_nsections(c), 0);
	config_free(c);
	assert_int_equal(config_parse("# x\n; y\n\n", 9, "c", &c, &e), 0);
	assert_int_equal(config_nsections(c), 0);
	config_free(c);
}

static void expect_config_error(const char *text, size_t len, const char *want_in_msg)
{
	struct config *c = (struct config *)1;
	struct err e;
	err_clear(&e);
	assert_int_equal(config_parse(text, len, "my.conf", &c, &e), ERR_CONFIG);
	assert_null(c);
	assert_int_equal(e.code, ERR_CONFIG);
	if (!strstr(e.msg, want_in_msg))
		print_error("message \"%s\" lacks \"%s\"\n", e.msg, want_in_msg);
	assert_non_null(strstr(e.msg, want_in_msg));
	assert_non_null(strstr(e.msg, "my.conf")); /* names the file */
	/* and the same without a struct err */
	c = (struct config *)1;
	assert_int_equal(config_parse(text, len, "my.conf", &c, NULL), ERR_CONFIG);
	assert_null(c);
}

#define CONFIG_ERR(text, want) expect_config_error((text), sizeof(text) - 1, (want))

static void test_config_errors(void **state)
{
	(void)state;
	CONFIG_ERR("[a]\nx = 1\ny = 2\nx = 3\n", "line 4");
	CONFIG_ERR("[a]\nx = 1\ny = 2\nx = 3\n", "'x' is set twice");
	CONFIG_ERR("[a]\nx = 1\nthis is not valid\n", "line 3");
	CONFIG_ERR("# c\n\n[a]\nx = 1\n\ngarbage\n", "line 6");
	CONFIG_ERR("x = 1\n[a]\n", "before any [section]");
	CONFIG_ERR("x = 1\n[a]\n", "line 1");
	CONFIG_ERR("[a]\nx = 1\0y\n", "NUL byte");
	CONFIG_ERR("[a]\nx = 1\n\0", "line 3");
	CONFIG_ERR("[a]\nx = \x01\n", "control character");
	CONFIG_ERR("[a\nx = 1\n", "line 1");
	CONFIG_ERR("[a] junk\n", "line 1");
	CONFIG_ERR("[]\n", "empty section name");
	CONFIG_ERR("[ ]\n", "empty section name");
	CONFIG_ERR("[a]\n[b]\n[a]\n", "line 3");
	CONFIG_ERR("[a]\n = 1\n", "missing key");
}

static void test_config_load(void **state)
{
	char dir[256], path[512];
	struct config *c;
	struct err e;
	(void)state;
	unit_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/pgtimefs.conf", dir);
	assert_int_equal(util_write_durable(path, "[s]\nk = v\n", 10, 0, NULL), 0);
	assert_int_equal(config_load(path, &c, &e), 0);
	assert_string_equal(config_get(c, "s", "k"), "v");
	config_free(c);
	assert_int_equal(util_write_durable(path, "[s]\nk v\n", 8, 0, NULL), 0);
	assert_int_equal(config_load(path, &c, &e), ERR_CONFIG);
	assert_non_null(strstr(e.msg, path));
	assert_non_null(strstr(e.msg, "line 2"));
	snprintf(path, sizeof path, "%s/missing.conf", dir);
	assert_int_equal(config_load(path, &c, &e), ERR_CONFIG);
	assert_true(strlen(e.hint) > 0);
	unit_rmdir(dir);
}

static void test_config_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{"0", 0},
		{"4096", 4096},
		{"1K", 1024},
		{"2k", 2048},
		{"1KiB", 1024},
		{"1KB", 1024},
		{"64M", 64ull << 20},
		{"64 M", 64ull << 20},
		{"64mib", 64ull << 20},
		{"1G", 1ull << 30},
		{"1GiB", 1ull << 30},
		{"3GB", 3ull << 30},
		{"2T", 2ull << 40},
		{"16777215T", 16777215ull << 40},
		{"18446744073709551615", UINT64_MAX},
	};
	static const char *bad[] = {"", "M", "abc", "-1", "+1", " 1", "1.5G", "12X", "1MiBx", "1Mi", "1iB",
				    "1B", "1 GiB ", "16777216T", "99999999999999999999T", "1KK"};
	uint64_t v;
	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		v = 1;
		if (config_parse_size(good[i].s, &v) != 0)
			print_error("config_parse_size rejected \"%s\"\n", good[i].s);
		assert_int_equal(config_parse_size(good[i].s, &v), 0);
		assert_true(v == good[i].v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 7;
		if (config_parse_size(bad[i], &v) != -1)
			print_error("config_parse_size accepted \"%s\"\n", bad[i]);
		assert_int_equal(config_parse_size(bad[i], &v), -1);
		assert_true(v == 7); /* untouched on error */
	}
}

/* A number past UINT64_MAX must be refused, not clamped. */
static void test_config_parse_size_overflow(void **state)
{
	uint64_t v = 0;
	(void)state;
	known_bug(config_parse_size("18446744073709551616", &v) == -1,
		  "config_parse_size accepts 18446744073709551616 (strtoull ERANGE is not checked)");
}

/* --- pool --- */

struct job {
	int index;
	uint64_t in, out;
	int worker;
	int runs;
};

static void job_square(void *p, int worker)
{
	struct job *j = p;
	/* uneven durations so that jobs finish out of order */
	struct timespec ts = {0, (long)(j->index * 7919 % 13) * 20000};
	if (ts.tv_nsec)
		nanosleep(&ts, NULL);
	j->out = j->in * j->in + 1;
	j->worker = worker;
	j->runs++;
}

static void test_pool_order(void **state)
{
	enum { N = 1000, THREADS = 4, DEPTH = 8 };
	struct job *jobs = calloc(N, sizeof *jobs);
	pool *p = pool_new(THREADS, DEPTH);
	int next = 0, used[THREADS] = {0};
	struct job *j;
	(void)state;
	assert_non_null(jobs);
	assert_int_equal(pool_threads(p), THREADS);
	assert_int_equal(pool_inflight(p), 0);
	assert_null(pool_take(p)); /* nothing in flight: NULL, no blocking */
	assert_null(pool_try_take(p));
	for (int i = 0; i < N; i++) {
		jobs[i].index = i;
		jobs[i].in = (uint64_t)i * 3 + 1;
		jobs[i].worker = -1;
		while (pool_full(p)) {
			j = pool_take(p);
			assert_ptr_equal(j, &jobs[next]);
			next++;
		}
		if (i % 3 == 0) {
			while ((j = pool_try_take(p))) {
				assert_ptr_equal(j, &jobs[next]);
				next++;
			}
		}
		assert_true(pool_inflight(p) < DEPTH);
		pool_submit(p, job_square, &jobs[i]);
		assert_true(pool_inflight(p) <= DEPTH);
	}
	while ((j = pool_take(p))) {
		assert_ptr_equal(j, &jobs[next]);
		next++;
	}
	assert_int_equal(next, N);
	assert_int_equal(pool_inflight(p), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].runs, 1);
		assert_true(jobs[i].out == jobs[i].in * jobs[i].in + 1);
		assert_in_range(jobs[i].worker, 0, THREADS - 1);
		used[jobs[i].worker]++;
	}
	/* with sleeping jobs and 8 in flight, more than one worker took part */
	assert_true(used[0] + used[1] + used[2] + used[3] == N);
	assert_true(used[0] < N && used[1] < N && used[2] < N && used[3] < N);
	pool_free(p);
	free(jobs);
}

static void test_pool_wait(void **state)
{
	enum { N = 300, THREADS = 2, DEPTH = 16, BATCH = 5 };
	struct job *jobs = calloc(N, sizeof *jobs);
	pool *p = pool_new(THREADS, DEPTH);
	int next = 0;
	struct job *j;
	(void)state;
	assert_non_null(jobs);
	pool_wait(p, BATCH); /* nothing in flight: returns at once */
	for (int i = 0; i < N; i++) {
		jobs[i].index = i;
		jobs[i].in = (uint64_t)i + 7;
		if (pool_full(p)) {
			pool_wait(p, BATCH);
			/* the BATCH oldest are done: taken without blocking, in order */
			for (int k = 0; k < BATCH; k++) {
				assert_int_equal(jobs[next].runs, 1);
				j = pool_try_take(p);
				assert_ptr_equal(j, &jobs[next]);
				next++;
			}
		}
		pool_submit(p, job_square, &jobs[i]);
	}
	pool_wait(p, 10 * DEPTH); /* more than in flight: all of them */
	while ((j = pool_try_take(p))) {
		assert_ptr_equal(j, &jobs[next]);
		next++;
	}
	assert_int_equal(next, N);
	assert_int_equal(pool_inflight(p), 0);
	for (int i = 0; i < N; i++)
		assert_true(jobs[i].runs == 1 && jobs[i].out == jobs[i].in * jobs[i].in + 1);
	pool_free(p);
	free(jobs);
}

static atomic_int gate;

static void job_gated(void *p, int worker)
{
	struct job *j = p;
	(void)worker;
	while (!atomic_load(&gate)) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	j->runs++;
}

static void test_pool_try_take_and_free(void **state)
{
	struct job jobs[5];
	pool *p = pool_new(2, 4);
	(void)state;
	memset(jobs, 0, sizeof jobs);
	atomic_store(&gate, 0);
	pool_submit(p, job_gated, &jobs[0]);
	assert_int_equal(pool_inflight(p), 1);
	assert_false(pool_full(p));
	assert_null(pool_try_take(p)); /* not done yet: no blocking */
	atomic_store(&gate, 1);
	assert_ptr_equal(pool_take(p), &jobs[0]);
	assert_int_equal(jobs[0].runs, 1);

	/* pool_free waits for jobs not taken */
	atomic_store(&gate, 0);
	for (int i = 1; i < 5; i++)
		pool_submit(p, job_gated, &jobs[i]);
	assert_true(pool_full(p));
	atomic_store(&gate, 1);
	pool_free(p);
	for (int i = 1; i < 5; i++)
		assert_int_equal(jobs[i].runs, 1);
	pool_free(NULL);

	/* out-of-range sizes become 1 */
	p = pool_new(0, 0);
	assert_int_equal(pool_threads(p), 1);
	jobs[0].runs = 0;
	pool_submit(p, job_gated, &jobs[0]);
	assert_true(pool_full(p));
	assert_ptr_equal(pool_take(p), &jobs[0]);
	pool_free(p);
	assert_true(pool_cpus() >= 1);
}

/* --- json --- */

static char *json_capture(void (*write)(struct json *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;
	assert_non_null(f);
	json_init(&j, f);
	write(&j);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void write_nested(struct json *j)
{
	json_obj(j);
	json_key(j, "name");
	json_str(j, "prod \"main\"\n\tdb\\");
	json_key(j, "size");
	json_int(j, 1234567890123);
	json_key(j, "delta");
	json_int(j, -42);
	json_key(j, "min");
	json_int(j, INT64_MIN);
	json_key(j, "ok");
	json_bool(j, 1);
	json_key(j, "bad");
	json_bool(j, 0);
	json_key(j, "none");
	json_str(j, NULL);
	json_key(j, "ctl");
	json_str(j, "\x01\x1f\r\x7f");
	json_key(j, "utf8");
	json_str(j, "caf\xc3\xa9");
	json_key(j, "bytes"); /* not UTF-8: a lone byte, a cut sequence, an overlong '/', a surrogate */
	json_str(j, "a\xff" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80" "e\xf0\x9f\x98\x80");
	json_key(j, "snapshots");
	json_arr(j);
	json_obj(j);
	json_key(j, "id");
	json_int(j, 1);
	json_key(j, "tags");
	json_arr(j);
	json_str(j, "a");
	json_str(j, "b");
	json_arr_end(j);
	json_obj_end(j);
	json_obj(j);
	json_obj_end(j);
	json_arr(j);
	json_arr_end(j);
	json_int(j, 3);
	json_arr_end(j);
	json_key(j, "empty");
	json_obj(j);
	json_obj_end(j);
	json_key(j, "last");
	json_str(j, "");
	json_obj_end(j);
	json_end(j);
}

static void write_top_array(struct json *j)
{
	json_arr(j);
	json_int(j, 0);
	json_obj(j);
	json_key(j, "k");
	json_arr(j);
	json_arr_end(j);
	json_obj_end(j);
	json_arr_end(j);
	json_end(j);
}

static void test_json(void **state)
{
	char *out;
	(void)state;
	out = json_capture(write_nested);
	assert_string_equal(out, "{\"name\":\"prod \\\"main\\\"\\n\\tdb\\\\\",\"size\":1234567890123,\"delta\":-42,"
				 "\"min\":-9223372036854775808,\"ok\":true,\"bad\":false,\"none\":null,"
				 "\"ctl\":\"\\u0001\\u001f\\r\x7f\",\"utf8\":\"caf\xc3\xa9\","
				 "\"bytes\":\"a\\udcffb\\udcc3c\\udcc0\\udcafd\\udced\\udca0\\udc80e\xf0\x9f\x98\x80\","
				 "\"snapshots\":[{\"id\":1,\"tags\":[\"a\",\"b\"]},{},[],3],\"empty\":{},\"last\":\"\"}\n");
	free(out);
	out = json_capture(write_top_array);
	assert_string_equal(out, "[0,{\"k\":[]}]\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_le),
		cmocka_unit_test(test_human_bytes),
		cmocka_unit_test(test_write_durable_read_small),
		cmocka_unit_test(test_read_small_code_without_err),
		cmocka_unit_test(test_mkdir_p_rm_rf),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_timefmt_print),
		cmocka_unit_test(test_timefmt_round_trip),
		cmocka_unit_test(test_timefmt_parse_forms),
		cmocka_unit_test(test_timefmt_leap_second_bad_date),
		cmocka_unit_test(test_config_parse),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_load),
		cmocka_unit_test(test_config_parse_size),
		cmocka_unit_test(test_config_parse_size_overflow),
		cmocka_unit_test(test_pool_order),
		cmocka_unit_test(test_pool_try_take_and_free),
		cmocka_unit_test(test_pool_wait),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
