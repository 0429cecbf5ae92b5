/*
 * test_zones_repo.c: store/zones.h, store/repo.h and store/reader.h together.
 *
 * Each test works in its own scratch directory with three zones (z1, z2, z3). Key files use
 * scrypt N = 2^10 so the suite stays fast. Tests run as root, so a zone is made unwritable by
 * turning its path into a regular file, or by pointing it below a directory that does not exist
 * (permission bits would not stop root).
 */
#include "../unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/pack.h"
#include "store/reader.h"
#include "store/repo.h"
#include "store/zones.h"

#define PASS "correct horse battery staple"
#define NZ 3

struct fixture {
	char dir[256];
	char zpath[NZ][512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	unit_tmpdir(f->dir, sizeof f->dir);
	for (int i = 0; i < NZ; i++)
		snprintf(f->zpath[i], sizeof f->zpath[i], "%s/z%d", f->dir, i + 1);
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

static zones *mkzones(const struct fixture *f)
{
	const char *paths[NZ] = {f->zpath[0], f->zpath[1], f->zpath[2]};
	zones *z = zones_new(paths, NZ);
	assert_non_null(z);
	assert_int_equal(zones_count(z), NZ);
	return z;
}

static void small_config(struct repo_config *cfg)
{
	assert_int_equal(repo_config_default(cfg, NULL), 0);
	cfg->kdf.log2n = 10;
}

/* A repository in the fixture's zones, created with PASS. */
static void init_repo(const struct fixture *f, struct repo_config *cfg)
{
	zones *z = mkzones(f);
	struct err e;
	small_config(cfg);
	err_clear(&e);
	if (repo_init(z, cfg, PASS, strlen(PASS), &e) != 0)
		print_error("repo_init: %s\n", e.msg);
	assert_int_equal(e.code, 0);
	zones_free(z);
}

static struct repo *open_repo(const struct fixture *f, const char *pass)
{
	zones *z = mkzones(f);
	struct repo *r = NULL;
	struct err e;
	err_clear(&e);
	if (repo_open(z, pass, strlen(pass), &r, &e) != 0)
		print_error("repo_open: %s\n", e.msg);
	assert_int_equal(e.code, 0);
	assert_non_null(r);
	assert_ptr_equal(r->z, z);
	return r;
}

static int open_rc(const struct fixture *f, const char *pass, struct err *e)
{
	zones *z = mkzones(f);
	struct repo *r = (struct repo *)1;
	int rc = repo_open(z, pass, strlen(pass), &r, e);
	if (rc == 0) {
		repo_close(r);
	} else {
		assert_null(r);
		zones_free(z); /* the caller keeps z on failure */
	}
	return rc;
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int zone_has(const struct fixture *f, int i, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", f->zpath[i], rel);
	return exists(p);
}

static void flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x04;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void make_file(const char *path)
{
	assert_int_equal(util_write_durable(path, "not a directory", 15, 0, NULL), 0);
}

/* --- repository config --- */

static void same_config(const struct repo_config *a, const struct repo_config *b)
{
	assert_int_equal(a->format, b->format);
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->chunk.block_size, b->chunk.block_size);
	assert_int_equal(a->chunk.cdc_min, b->chunk.cdc_min);
	assert_int_equal(a->chunk.cdc_avg, b->chunk.cdc_avg);
	assert_int_equal(a->chunk.cdc_max, b->chunk.cdc_max);
	assert_true(a->chunk.seed == b->chunk.seed);
	assert_int_equal(a->zstd_level, b->zstd_level);
	assert_int_equal(a->pack_size, b->pack_size);
	assert_int_equal(a->kdf.log2n, b->kdf.log2n);
	assert_int_equal(a->kdf.r, b->kdf.r);
	assert_int_equal(a->kdf.p, b->kdf.p);
}

static void test_config_default(void **state)
{
	struct repo_config a, b;
	uint8_t id[32];
	(void)state;
	assert_int_equal(repo_config_default(&a, NULL), 0);
	assert_int_equal(repo_config_default(&b, NULL), 0);
	assert_int_equal(a.format, REPO_FORMAT);
	assert_int_equal(strlen(a.id), 64);
	assert_int_equal(hex_decode(a.id, id, 32), 0);
	assert_string_not_equal(a.id, b.id); /* fresh random id */
	assert_true(a.chunk.seed != b.chunk.seed); /* and gear seed */
	assert_true(chunker_params_valid(&a.chunk));
	assert_int_equal(a.zstd_level, -1);
	assert_int_equal(a.pack_size, 16u << 20);
	assert_int_equal(a.kdf.log2n, 15);
}

static void test_config_round_trip(void **state)
{
	struct repo_config cfg, back;
	char text[2048];
	struct err e;
	(void)state;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(repo_config_default(&cfg, NULL), 0);
		if (i == 1)
			cfg.chunk.seed = 0;
		if (i == 2)
			cfg.chunk.seed = UINT64_MAX;
		if (i == 3) {
			cfg.zstd_level = 19;
			cfg.pack_size = 1u << 16;
			cfg.kdf.log2n = 22;
			cfg.kdf.r = 32;
			cfg.kdf.p = 16;
			cfg.chunk.block_size = 8u << 20;
			cfg.chunk.cdc_min = 64;
			cfg.chunk.cdc_avg = 128;
			cfg.chunk.cdc_max = 8u << 20;
		}
		repo_config_format(&cfg, text, sizeof text);
		assert_null(strstr(text, "(null)"));
		err_clear(&e);
		if (repo_config_parse(text, strlen(text), &back, &e) != 0)
			print_error("%s\n%s\n", e.msg, text);
		assert_int_equal(e.code, 0);
		same_config(&cfg, &back);
	}
}

/* Replaces the line that starts with key in text by repl (or drops it when repl is ""). */
static void replace_line(const char *text, const char *key, const char *repl, char *out, size_t cap)
{
	const char *at = text, *eol;
	while (strncmp(at, key, strlen(key))) {
		at = strchr(at, '\n');
		assert_non_null(at);
		at++;
	}
	eol = strchr(at, '\n');
	assert_non_null(eol);
	snprintf(out, cap, "%.*s%s%s", (int)(at - text), text, repl, eol + (*repl ? 0 : 1));
}

static void expect_bad_config(const char *text, size_t len, const char *what)
{
	struct repo_config cfg;
	struct err e;
	int rc;
	err_clear(&e);
	rc = repo_config_parse(text, len, &cfg, &e);
	if (rc != ERR_CORRUPT)
		print_error("%s: expected ERR_CORRUPT, got %d (%s)\n", what, rc, e.msg);
	assert_int_equal(rc, ERR_CORRUPT);
	assert_true(strlen(e.msg) > 0);
	assert_int_equal(repo_config_parse(text, len, &cfg, NULL), ERR_CORRUPT);
}

static void test_config_garbage(void **state)
{
	static const struct {
		const char *key, *repl;
	} edits[] = {
		{"format", "format = 2"},
		{"format", "format = 0"},
		{"format", "format = 1x"},
		{"format", "format ="},
		{"format", ""},
		{"id", "id = abc"},
		{"id", ""},
		{"block-size", "block-size = 4096"},
		{"block-size", "block-size = 10000"},
		{"block-size", "block-size = -65536"},
		{"cdc-min", "cdc-min = 65536"},
		{"cdc-avg", "cdc-avg = 60000"},
		{"cdc-max", "cdc-max = 99999999999"},
		{"cdc-seed", "cdc-seed = zz"},
		{"cdc-seed", ""},
		{"zstd-level", "zstd-level = 20"},
		{"zstd-level", "zstd-level = -8"},
		{"pack-size", "pack-size = 4294967296"},
		{"pack-size", "pack-size = 16M"},
		{"kdf-log2n", "kdf-log2n = 9"},
		{"kdf-log2n", "kdf-log2n = 23"},
		{"kdf-r", "kdf-r = 0"},
		{"kdf-p", "kdf-p = 17"},
		{"kdf-p", "kdf-p = 1 ; comment\nkdf-p = 2"},
		{"[repository]", "[other]"},
		{"[repository]", "oops"},
	};
	struct repo_config cfg;
	char good[2048], text[4096];
	uint64_t seed = 8;
	(void)state;
	assert_int_equal(repo_config_default(&cfg, NULL), 0);
	repo_config_format(&cfg, good, sizeof good);
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		replace_line(good, edits[i].key, edits[i].repl, text, sizeof text);
		expect_bad_config(text, strlen(text), edits[i].repl);
	}
	expect_bad_config("", 0, "empty");
	expect_bad_config("[repository]\n", 14, "empty section");
	expect_bad_config("hello world\n", 12, "not ini");
	expect_bad_config("[repository]\nformat = 1\0junk", 29, "NUL byte");
	for (int i = 0; i < 50; i++) {
		uint8_t rnd[600];
		unit_rand_fill(&seed, rnd, sizeof rnd);
		expect_bad_config((const char *)rnd, sizeof rnd, "random bytes");
	}
}

/* Numbers that do not fit are refused, not clamped to the largest value. */
static void test_config_seed_overflow(void **state)
{
	struct repo_config cfg, back;
	char good[2048], text[4096];
	(void)state;
	assert_int_equal(repo_config_default(&cfg, NULL), 0);
	repo_config_format(&cfg, good, sizeof good);
	replace_line(good, "cdc-seed", "cdc-seed = 1ffffffffffffffff", text, sizeof text);
	known_bug(repo_config_parse(text, strlen(text), &back, NULL) == ERR_CORRUPT,
		  "repo_config_parse (get_u64) accepts cdc-seed = 1ffffffffffffffff as UINT64_MAX: ERANGE unchecked");
}

/* The code in the struct err matches the code returned. */
static void test_config_err_code(void **state)
{
	struct repo_config cfg;
	struct err e;
	(void)state;
	err_clear(&e);
	assert_int_equal(repo_config_parse("hello world\n", 12, &cfg, &e), ERR_CORRUPT);
	known_bug(e.code == ERR_CORRUPT,
		  "repo_config_parse returns ERR_CORRUPT but leaves e->code = ERR_CONFIG when the INI does not parse");
}

/* The struct says the id is 64 hex digits; anything else is not a repository config. */
static void test_config_id_not_hex(void **state)
{
	struct repo_config cfg, back;
	char good[2048], text[4096], line[128];
	(void)state;
	assert_int_equal(repo_config_default(&cfg, NULL), 0);
	repo_config_format(&cfg, good, sizeof good);
	snprintf(line, sizeof line, "id = %s", "zz0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd");
	replace_line(good, "id", line, text, sizeof text);
	known_bug(repo_config_parse(text, strlen(text), &back, NULL) == ERR_CORRUPT,
		  "repo_config_parse accepts an id that is 64 characters but not hex");
}

/* --- repo_init / repo_open --- */

static void test_init(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg, back;
	char first_key[64] = "";
	zones *z;
	struct err e;
	init_repo(f, &cfg);
	z = mkzones(f);
	for (int i = 0; i < NZ; i++) {
		char **ids, p[PATH_MAX];
		size_t n;
		uint8_t *text;
		size_t len;
		struct stat st;
		assert_true(zone_has(f, i, "config"));
		assert_true(zone_has(f, i, "packs"));
		assert_true(zone_has(f, i, "catalog"));
		assert_int_equal(zones_list(z, i, "keys", &ids, &n, &e), 0);
		assert_int_equal(n, 1);
		assert_int_equal(strlen(ids[0]), 16);
		if (i == 0)
			snprintf(first_key, sizeof first_key, "%s", ids[0]);
		assert_string_equal(ids[0], first_key); /* the same key file in every zone */
		snprintf(p, sizeof p, "%s/keys/%s", f->zpath[i], ids[0]);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, KEYFILE_LEN);
		zones_list_free(ids, n);
		/* the config in the zone is the one given */
		snprintf(p, sizeof p, "%s/config", f->zpath[i]);
		assert_int_equal(util_read_small(p, 65536, &text, &len, &e), 0);
		assert_int_equal(repo_config_parse((const char *)text, len, &back, &e), 0);
		same_config(&cfg, &back);
		free(text);
	}
	/* a second init fails, whichever zone holds a config */
	err_clear(&e);
	assert_int_equal(repo_init(z, &cfg, PASS, strlen(PASS), &e), ERR_EXISTS);
	assert_int_equal(e.code, ERR_EXISTS);
	{
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/config", f->zpath[0]);
		assert_int_equal(unlink(p), 0);
		snprintf(p, sizeof p, "%s/config", f->zpath[1]);
		assert_int_equal(unlink(p), 0);
	}
	assert_int_equal(repo_init(z, &cfg, PASS, strlen(PASS), &e), ERR_EXISTS);
	assert_non_null(strstr(e.msg, "zone 3"));
	/* and it left the keys alone */
	{
		char **ids;
		size_t n;
		assert_int_equal(zones_list(z, 0, "keys", &ids, &n, &e), 0);
		assert_int_equal(n, 1);
		zones_list_free(ids, n);
	}
	zones_free(z);
}

static void test_open(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg;
	struct repo *r;
	struct err e;
	char **ids;
	size_t n;

	/* nothing there yet */
	err_clear(&e);
	assert_int_equal(open_rc(f, PASS, &e), ERR_NOTFOUND);
	assert_true(strlen(e.hint) > 0);

	init_repo(f, &cfg);
	r = open_repo(f, PASS);
	same_config(&cfg, &r->cfg);
	assert_non_null(r->key);
	assert_int_equal(repo_key_ids(r, &ids, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(r->key_id, ids[0]);
	zones_list_free(ids, n);
	repo_close(r);
	repo_close(NULL);

	err_clear(&e);
	assert_int_equal(open_rc(f, "wrong", &e), ERR_AUTH);
	assert_int_equal(e.code, ERR_AUTH);
	assert_true(strlen(e.hint) > 0);
	assert_int_equal(open_rc(f, "", NULL), ERR_AUTH);
	assert_int_equal(open_rc(f, PASS " ", NULL), ERR_AUTH);
}

static void test_open_one_zone_left(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg;
	struct repo *r;
	uint8_t id1[32], id2[32];
	init_repo(f, &cfg);
	r = open_repo(f, PASS);
	crypto_blob_id(r->key, "x", 1, id1);
	repo_close(r);

	assert_int_equal(util_rm_rf(f->zpath[0], NULL), 0);
	assert_int_equal(util_rm_rf(f->zpath[1], NULL), 0);
	r = open_repo(f, PASS);
	same_config(&cfg, &r->cfg);
	crypto_blob_id(r->key, "x", 1, id2);
	assert_memory_equal(id1, id2, 32); /* the same master key */
	repo_close(r);
	assert_int_equal(open_rc(f, "wrong", NULL), ERR_AUTH);

	/* zone 3 keeps its config but loses its keys: nothing to open with */
	{
		char p[PATH_MAX];
		struct err e;
		snprintf(p, sizeof p, "%s/keys", f->zpath[2]);
		assert_int_equal(util_rm_rf(p, NULL), 0);
		assert_int_equal(open_rc(f, PASS, &e), ERR_NOTFOUND);
		assert_non_null(strstr(e.msg, "key"));
	}
	/* no zone at all */
	assert_int_equal(util_rm_rf(f->zpath[2], NULL), 0);
	assert_int_equal(open_rc(f, PASS, NULL), ERR_NOTFOUND);
}

/* A damaged key file: the passphrase cannot be tried, which is not "wrong passphrase". */
static void test_open_damaged_keys(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg;
	zones *z;
	char **ids;
	size_t n;
	struct err e;
	init_repo(f, &cfg);
	z = mkzones(f);
	assert_int_equal(zones_list(z, 0, "keys", &ids, &n, NULL), 0);
	for (int i = 0; i < NZ; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/keys/%s", f->zpath[i], ids[0]);
		flip_byte(p, 0); /* the magic */
	}
	err_clear(&e);
	assert_int_equal(open_rc(f, PASS, &e), ERR_CORRUPT);
	assert_true(strlen(e.hint) > 0);
	/* one good copy is enough */
	{
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/keys/%s", f->zpath[1], ids[0]);
		flip_byte(p, 0);
	}
	assert_int_equal(open_rc(f, PASS, NULL), 0);
	zones_list_free(ids, n);
	zones_free(z);

	/* garbage configs are ERR_CORRUPT, and the message names a zone */
	for (int i = 0; i < NZ; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/config", f->zpath[i]);
		assert_int_equal(util_write_durable(p, "garbage\n", 8, 0, NULL), 0);
	}
	assert_int_equal(open_rc(f, PASS, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "zone"));
}

/* Zone i's file rel, whole (NULL when missing; caller frees). */
static char *zone_text(const struct fixture *f, int i, const char *rel)
{
	char path[700];
	uint8_t *buf = NULL;
	size_t len;
	char *text;
	snprintf(path, sizeof path, "%s/%s", f->zpath[i], rel);
	if (util_read_small(path, 4096, &buf, &len, NULL) < 0)
		return NULL;
	text = strndup((const char *)buf, len);
	free(buf);
	return text;
}

/* Zone i's config file, whole (caller frees); it must be there. */
static char *read_config(const struct fixture *f, int i, size_t *len)
{
	char *text = zone_text(f, i, "config");
	assert_non_null(text);
	*len = strlen(text);
	return text;
}

static void write_config(const struct fixture *f, int i, const char *text)
{
	char path[600];
	FILE *fp;
	snprintf(path, sizeof path, "%s/config", f->zpath[i]);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* A copy of text with the first occurrence of from replaced by to (caller frees). */
static char *replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;
	assert_non_null(at);
	out = malloc(strlen(text) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(at - text));
	strcpy(out + (at - text), to);
	strcat(out, at + strlen(from));
	return out;
}

/* orig (a sealed config) with its MAC line made as an older pgtimefs made it: HMAC-SHA256
 * under the id key; caller frees */
static char *old_sealed(const struct repo *r, const char *orig)
{
	size_t plen = strlen(REPO_CONFIG_MAC_PREFIX), n = (size_t)(strstr(orig, "\nmac = ") + 1 - orig);
	char *buf = malloc(plen + n), *out = malloc(n + 6 + 64 + 2);
	uint8_t mac[32];
	assert_non_null(buf);
	assert_non_null(out);
	memcpy(buf, REPO_CONFIG_MAC_PREFIX, plen);
	memcpy(buf + plen, orig, n);
	crypto_blob_id(r->key, buf, plen + n, mac);
	memcpy(out, orig, n);
	memcpy(out + n, "mac = ", 6);
	hex_encode(mac, 32, out + n + 6);
	strcpy(out + n + 6 + 64, "\n");
	free(buf);
	return out;
}

/* Opens the repository and checks how its config was taken: flags, zone, and the level. */
static void open_expect(struct fixture *f, int unsealed, int old_mac, int zone)
{
	struct repo *r = open_repo(f, PASS);
	assert_int_equal(r->config_unsealed, unsealed);
	assert_int_equal(r->config_old_mac, old_mac);
	assert_int_equal(r->config_zone, zone);
	assert_int_equal(r->cfg.zstd_level, -1);
	repo_close(r);
}

/*
 * The config's MAC: init seals it; an altered zone's config is passed over for the next one
 * that verifies; every zone altered is ERR_CORRUPT; a config without a MAC line (an older
 * pgtimefs) is still used, flagged unsealed.
 */
static void test_config_mac(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg;
	struct repo *r;
	struct err e;
	char *orig, *altered, *bare;
	size_t len;
	init_repo(f, &cfg);
	orig = read_config(f, 0, &len);
	assert_non_null(strstr(orig, "\nmac = "));
	r = open_repo(f, PASS);
	assert_int_equal(repo_config_verify(r->key, orig, len), 0);
	assert_int_equal(r->config_zone, 0);
	assert_int_equal(r->config_unsealed, 0);
	/* one byte of the body changed, or of the MAC, or no newline at the end */
	altered = replaced(orig, "zstd-level = -1", "zstd-level = 19");
	assert_int_equal(repo_config_verify(r->key, altered, strlen(altered)), ERR_AUTH);
	assert_int_equal(repo_config_verify(r->key, orig, len - 1), 0);
	bare = strndup(orig, (size_t)(strstr(orig, "\nmac = ") + 1 - orig));
	assert_non_null(bare);
	assert_int_equal(repo_config_verify(r->key, bare, strlen(bare)), ERR_NOTFOUND);
	{
		char *m = strdup(orig);
		char *at = strstr(m, "mac = ") + 6;
		at[0] = at[0] == '0' ? '1' : '0';
		assert_int_equal(repo_config_verify(r->key, m, len), ERR_AUTH);
		free(m);
	}
	repo_close(r);

	/* zone 1 altered: zone 2's config is used, with the original level */
	write_config(f, 0, altered);
	r = open_repo(f, PASS);
	assert_int_equal(r->config_zone, 1);
	assert_int_equal(r->cfg.zstd_level, -1);
	repo_close(r);

	/* every zone altered: refused */
	for (int i = 1; i < NZ; i++)
		write_config(f, i, altered);
	err_clear(&e);
	assert_int_equal(open_rc(f, PASS, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "altered"));

	/* no MAC anywhere (an older pgtimefs): used, flagged */
	for (int i = 0; i < NZ; i++)
		write_config(f, i, bare);
	open_expect(f, 1, 0, 0);
	/* a sealed config in any zone wins over unsealed ones */
	write_config(f, 2, orig);
	open_expect(f, 0, 0, 2);
	/* sealed as an older pgtimefs sealed it (under the id key): still opens, flagged, and a
	 * config sealed with the current key in any zone wins over it */
	{
		char *old;
		r = open_repo(f, PASS);
		old = old_sealed(r, orig);
		assert_int_equal(repo_config_verify(r->key, old, strlen(old)), REPO_CONFIG_OLD_MAC);
		repo_close(r);
		for (int i = 0; i < NZ; i++)
			write_config(f, i, old);
		open_expect(f, 0, 1, 0);
		write_config(f, 1, orig);
		open_expect(f, 0, 0, 1);
		free(old);
	}
	free(orig);
	free(altered);
	free(bare);
}

/*
 * The config's MAC, computed here from the primitives for a known master key: HMAC-SHA256
 * under HMAC-SHA256(key = CRYPTO_CONFIG_MAC_LABEL, message = id key) of the prefix and the
 * body; distinct from the id key's HMAC of the same bytes (a plain blob id), which an older
 * pgtimefs wrote and which still verifies as REPO_CONFIG_OLD_MAC.
 */
static void test_config_mac_key(void **state)
{
	uint8_t raw[CRYPTO_MASTER_LEN], ckey[32], want[32], asid[32];
	char text[2048], hex[66], *body; /* 64 digits, a newline */
	size_t plen = strlen(REPO_CONFIG_MAC_PREFIX), n;
	struct repo_config cfg;
	crypto_key *k;
	(void)state;
	for (size_t i = 0; i < sizeof raw; i++)
		raw[i] = (uint8_t)(i * 7 + 1);
	assert_non_null(k = crypto_key_from_raw(raw, NULL));
	assert_int_equal(repo_config_default(&cfg, NULL), 0);
	repo_config_seal(&cfg, k, text, sizeof text);
	n = (size_t)(strstr(text, "\nmac = ") + 1 - text);
	body = malloc(plen + n);
	assert_non_null(body);
	memcpy(body, REPO_CONFIG_MAC_PREFIX, plen);
	memcpy(body + plen, text, n);
	crypto_hmac_sha256((const uint8_t *)CRYPTO_CONFIG_MAC_LABEL, strlen(CRYPTO_CONFIG_MAC_LABEL), raw + 32, 32, ckey);
	crypto_hmac_sha256(ckey, 32, body, plen + n, want);
	hex_encode(want, 32, hex);
	assert_string_equal(text + n + 6, strcat(hex, "\n"));
	crypto_blob_id(k, body, plen + n, asid);
	assert_memory_not_equal(asid, want, 32);
	assert_int_equal(repo_config_verify(k, text, strlen(text)), 0);
	free(body);
	crypto_key_free(k);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * repo_open tries the key files cheapest KDF first: beside a key file whose scrypt costs a
 * lot (2^18 x 8: 256 MiB), a generated-style key (2^10) opens at once, while the expensive
 * passphrase still opens too. (Relative timing, with a wide margin: the cheap open must take
 * under half of what one try of the expensive key file takes.)
 */
static void test_keys_cheapest_first(void **state)
{
	static const struct keyfile_kdf slow = {18, 8, 1};
	struct fixture *f = *state;
	struct repo_config cfg;
	struct keyfile_kdf fast;
	struct repo *r;
	char slow_id[17], fast_id[17];
	double t0, t_slow, t_fast;
	struct err e;
	init_repo(f, &cfg);
	keyfile_kdf_generated(&fast);
	r = open_repo(f, PASS);
	err_clear(&e);
	assert_int_equal(repo_key_add(r, "slow pass", 9, &slow, slow_id, &e), 0);
	assert_int_equal(repo_key_add(r, "fast pass", 9, &fast, fast_id, &e), 0);
	repo_close(r);
	t0 = now_s();
	r = open_repo(f, "slow pass");
	t_slow = now_s() - t0;
	assert_string_equal(r->key_id, slow_id);
	repo_close(r);
	t0 = now_s();
	r = open_repo(f, "fast pass");
	t_fast = now_s() - t0;
	assert_string_equal(r->key_id, fast_id);
	repo_close(r);
	if (!(t_fast < t_slow / 2))
		print_error("the cheap key took %.3f s, the expensive one %.3f s\n", t_fast, t_slow);
	assert_true(t_fast < t_slow / 2);
	/* a wrong passphrase tries each distinct key file once (copies in three zones are one) */
	err_clear(&e);
	{
		zones *z = mkzones(f);
		assert_int_equal(repo_open(z, "nope", 4, &r, &e), ERR_AUTH);
		assert_non_null(strstr(e.msg, "none of the 3 key files"));
		zones_free(z);
	}
}

static void test_keys(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg;
	struct repo *r;
	char first[17], second[17], **ids;
	size_t n;
	uint8_t id1[32], id2[32];
	struct err e;
	init_repo(f, &cfg);
	r = open_repo(f, PASS);
	snprintf(first, sizeof first, "%s", r->key_id);
	crypto_blob_id(r->key, "chunk", 5, id1);
	assert_int_equal(repo_key_add(r, "second pass", 11, NULL, second, &e), 0);
	assert_int_equal(strlen(second), 16);
	assert_string_not_equal(first, second);
	assert_int_equal(repo_key_ids(r, &ids, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_true(!strcmp(ids[0], first) || !strcmp(ids[1], first));
	assert_true(!strcmp(ids[0], second) || !strcmp(ids[1], second));
	assert_true(strcmp(ids[0], ids[1]) < 0); /* sorted */
	zones_list_free(ids, n);
	for (int i = 0; i < NZ; i++) {
		char rel[64];
		snprintf(rel, sizeof rel, "keys/%s", second);
		assert_true(zone_has(f, i, rel));
	}
	repo_close(r);

	/* the new passphrase opens the same master key */
	r = open_repo(f, "second pass");
	assert_string_equal(r->key_id, second);
	crypto_blob_id(r->key, "chunk", 5, id2);
	assert_memory_equal(id1, id2, 32);

	/* unknown id */
	err_clear(&e);
	assert_int_equal(repo_key_remove(r, "0123456789abcdef", &e), ERR_NOTFOUND);
	/* remove the first key: then only the second passphrase works */
	assert_int_equal(repo_key_remove(r, first, &e), 0);
	for (int i = 0; i < NZ; i++) {
		char rel[64];
		snprintf(rel, sizeof rel, "keys/%s", first);
		assert_false(zone_has(f, i, rel));
	}
	/* the last key is never removed */
	err_clear(&e);
	assert_int_equal(repo_key_remove(r, second, &e), ERR_USAGE);
	assert_non_null(strstr(e.msg, "last key"));
	assert_int_equal(repo_key_ids(r, &ids, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], second);
	zones_list_free(ids, n);
	repo_close(r);

	assert_int_equal(open_rc(f, PASS, NULL), ERR_AUTH);
	assert_int_equal(open_rc(f, "second pass", NULL), 0);
}

/* --- zones --- */

static void test_zones_basic(void **state)
{
	struct fixture *f = *state;
	zones *z = mkzones(f);
	uint8_t *buf, pbuf[4];
	size_t len, n;
	int zone = -1;
	char **names, p[PATH_MAX];
	struct err e;
	assert_int_equal(zones_create(z, &e), 0);
	assert_string_equal(zones_path(z, 1), f->zpath[1]);
	zones_file(z, 2, "packs/ab/cd", p, sizeof p);
	assert_true(strstr(p, "/z3/packs/ab/cd") != NULL);

	assert_int_equal(zones_put(z, "packs/ab/abcd", "0123456789", 10, &e), 0);
	assert_int_equal(zones_put(z, "packs/ab/abce", "x", 1, &e), 0);
	assert_int_equal(zones_put(z, "packs/ab/.hidden", "x", 1, &e), 0);
	assert_int_equal(zones_sync(z, &e), 0);
	assert_int_equal(zones_sync(z, &e), 0); /* nothing left to sync */
	for (int i = 0; i < NZ; i++)
		assert_true(zone_has(f, i, "packs/ab/abcd"));

	assert_int_equal(zones_get_small(z, "packs/ab/abcd", 100, &buf, &len, &zone, &e), 0);
	assert_int_equal(zone, 0);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, "0123456789", 10);
	free(buf);
	assert_int_equal(zones_pread(z, 2, "packs/ab/abcd", pbuf, 4, 3, &e), 0);
	assert_memory_equal(pbuf, "3456", 4);
	/* a read past the end is a short read, not garbage */
	assert_int_not_equal(zones_pread(z, 2, "packs/ab/abcd", pbuf, 4, 8, &e), 0);

	assert_int_equal(zones_list(z, 1, "packs/ab", &names, &n, &e), 0);
	assert_int_equal(n, 2); /* dot files are not listed */
	assert_string_equal(names[0], "abcd");
	assert_string_equal(names[1], "abce");
	zones_list_free(names, n);
	assert_int_equal(zones_list(z, 1, "nope", &names, &n, &e), ERR_NOTFOUND);

	/* reads fall through to the next zone */
	snprintf(p, sizeof p, "%s/packs/ab/abcd", f->zpath[0]);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(zones_get_small(z, "packs/ab/abcd", 100, &buf, &len, &zone, &e), 0);
	assert_int_equal(zone, 1);
	free(buf);
	assert_int_equal(zones_pread(z, 0, "packs/ab/abcd", pbuf, 4, 0, &e), ERR_NOTFOUND);
	/* repair one zone */
	assert_int_equal(zones_put_one(z, 0, "packs/ab/abcd", "0123456789", 10, &e), 0);
	assert_true(zone_has(f, 0, "packs/ab/abcd"));

	assert_int_equal(zones_remove(z, "packs/ab/abcd", &e), 0);
	assert_int_equal(zones_remove(z, "packs/ab/abcd", &e), 0); /* missing is fine */
	for (int i = 0; i < NZ; i++)
		assert_false(zone_has(f, i, "packs/ab/abcd"));
	assert_int_equal(zones_get_small(z, "packs/ab/abcd", 100, &buf, &len, &zone, &e), ERR_NOTFOUND);
	zones_free(z);
	zones_free(NULL);
}

static int tmp_seen;

static int tmp_visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	tmp_seen += !strncmp(path + ftw->base, ".tmp-", 5);
	return 0;
}

/* Temporary files left anywhere below dir (zones_list hides dot files, so walk the tree). */
static int count_tmp(const char *dir)
{
	tmp_seen = 0;
	assert_int_equal(nftw(dir, tmp_visit, 16, FTW_PHYS), 0);
	return tmp_seen;
}

/*
 * zones_put_file: every zone gets the local file's bytes (more than the 1 MiB copy buffer,
 * so the copy loops), durable once zones_sync has run.
 */
static void test_zones_put_file(void **state)
{
	struct fixture *f = *state;
	zones *z = mkzones(f);
	size_t big = (5u << 19) + 123, len;
	unsigned written = 0;
	uint8_t *data = malloc(big), *got;
	uint64_t seed = 7;
	char local[PATH_MAX];
	struct err e;
	assert_non_null(data);
	unit_rand_fill(&seed, data, big);
	snprintf(local, sizeof local, "%s/local-copy", f->dir);
	assert_int_equal(util_write_durable(local, data, big, 0, NULL), 0);
	assert_int_equal(zones_create(z, &e), 0);
	assert_int_equal(zones_put_file(z, "catalog/00000000000000000001", local, &written, &e), 0);
	assert_int_equal(written, (1u << NZ) - 1);
	assert_int_equal(zones_sync(z, &e), 0);
	for (int i = 0; i < NZ; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/catalog/00000000000000000001", f->zpath[i]);
		assert_int_equal(util_read_small(p, big + 1, &got, &len, NULL), 0);
		assert_int_equal(len, big);
		assert_memory_equal(got, data, big);
		free(got);
	}
	assert_int_equal(count_tmp(f->dir), 0);
	/* a missing local file is an error, and nothing is written */
	snprintf(local, sizeof local, "%s/no-such-file", f->dir);
	assert_int_not_equal(zones_put_file(z, "catalog/00000000000000000002", local, &written, &e), 0);
	assert_int_equal(written, 0);
	for (int i = 0; i < NZ; i++)
		assert_false(zone_has(f, i, "catalog/00000000000000000002"));
	free(data);
	zones_free(z);
}

/*
 * zones_put (or zones_put_file) with zone `bad` unwritable: fails and names the zone; zones_put
 * leaves the file in no zone, zones_put_file in every other zone (each zone on its own).
 */
static void put_fails(struct fixture *f, int bad, int missing_parent, int from_file)
{
	zones *z;
	struct err e;
	char saved[512];
	for (int i = 0; i < NZ; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/packs", f->zpath[i]);
		assert_int_equal(util_mkdir_p(p, 0700, NULL), 0);
	}
	snprintf(saved, sizeof saved, "%s", f->zpath[bad]);
	if (missing_parent) {
		char elsewhere[512];
		snprintf(elsewhere, sizeof elsewhere, "%s/missing/parent/z%d", f->dir, bad + 1);
		memcpy(f->zpath[bad], elsewhere, sizeof elsewhere);
	} else {
		assert_int_equal(util_rm_rf(f->zpath[bad], NULL), 0);
		make_file(f->zpath[bad]);
	}
	z = mkzones(f);
	err_clear(&e);
	if (from_file) {
		char local[PATH_MAX];
		snprintf(local, sizeof local, "%s/local-payload", f->dir);
		assert_int_equal(util_write_durable(local, "payload", 7, 0, NULL), 0);
		unsigned written = 0;
		assert_int_not_equal(zones_put_file(z, "packs/ab/abcdef", local, &written, &e), 0);
		assert_int_equal(written, ((1u << NZ) - 1) & ~(1u << bad));
		assert_int_equal(unlink(local), 0);
	} else {
		assert_int_not_equal(zones_put(z, "packs/ab/abcdef", "payload", 7, &e), 0);
	}
	{
		char zname[32];
		snprintf(zname, sizeof zname, "zone %d", bad + 1);
		if (!strstr(e.msg, zname))
			print_error("message \"%s\" does not name %s\n", e.msg, zname);
		assert_non_null(strstr(e.msg, zname));
	}
	assert_true(e.code < 0);
	assert_true(strlen(e.hint) > 0);
	for (int i = 0; i < NZ; i++) {
		char p[PATH_MAX];
		if (i == bad)
			continue;
		assert_int_equal(zone_has(f, i, "packs/ab/abcdef"), from_file);
		snprintf(p, sizeof p, "%s/packs/ab/abcdef", f->zpath[i]);
		unlink(p); /* the next round starts with none */
	}
	if (missing_parent) {
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/missing", f->dir);
		assert_false(exists(p)); /* no zone is made up where none was */
	}
	assert_int_equal(count_tmp(f->dir), 0);
	zones_free(z);
	/* back to a good zone for the next round */
	if (!missing_parent)
		assert_int_equal(unlink(f->zpath[bad]), 0);
	snprintf(f->zpath[bad], sizeof f->zpath[bad], "%s", saved);
}

static void test_zones_put_failure(void **state)
{
	struct fixture *f = *state;
	for (int bad = 0; bad < NZ; bad++) {
		put_fails(f, bad, 0, 0);
		put_fails(f, bad, 1, 0);
		put_fails(f, bad, 0, 1);
		put_fails(f, bad, 1, 1);
	}
}

/*
 * zones_stream: a file written to every zone in pieces (aligned pieces take the O_DIRECT path,
 * an unaligned one the page cache), finished under its final name in a directory made on
 * the way, byte for byte in every zone, no temporary left; an aborted stream leaves nothing;
 * a stream whose zone went away fails naming it, with nothing left in any zone.
 */
static void test_zones_stream(void **state)
{
	struct fixture *f = *state;
	const size_t n = 3u << 20;
	uint8_t *data, *back;
	zones *z = mkzones(f);
	zones_stream *s;
	struct err e;
	err_clear(&e);
	assert_int_equal(zones_create(z, &e), 0);
	assert_int_equal(posix_memalign((void **)&data, 4096, n + 4096), 0);
	for (size_t i = 0; i < n + 4096; i++)
		data[i] = (uint8_t)(i * 131 + i / 4096);
	assert_int_equal(zones_stream_open(z, "packs", &s, &e), 0);
	assert_int_equal(count_tmp(f->dir), NZ);
	assert_int_equal(zones_stream_write(s, data, 1u << 20, &e), 0);		 /* aligned */
	assert_int_equal(zones_stream_write(s, data + (1u << 20), 12345, &e), 0); /* not */
	assert_int_equal(zones_stream_write(s, data + (1u << 20) + 12345, 8192, &e), 0);
	assert_int_equal(zones_stream_finish(s, data + (1u << 20) + 12345 + 8192, n - (1u << 20) - 12345 - 8192,
					     "packs/5e/5eed", &e),
			 0);
	assert_int_equal(zones_sync(z, &e), 0);
	assert_int_equal(count_tmp(f->dir), 0);
	back = malloc(n);
	assert_non_null(back);
	for (int i = 0; i < NZ; i++) {
		char p[PATH_MAX];
		struct stat st;
		zones_file(z, i, "packs/5e/5eed", p, sizeof p);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, n);
		memset(back, 0, n);
		assert_int_equal(zones_pread(z, i, "packs/5e/5eed", back, n, 0, &e), 0);
		assert_memory_equal(back, data, n);
	}
	free(back);

	/* aborted: nothing left */
	assert_int_equal(zones_stream_open(z, "packs", &s, &e), 0);
	assert_int_equal(zones_stream_write(s, data, 4096, &e), 0);
	zones_stream_abort(s);
	zones_stream_abort(NULL);
	assert_int_equal(count_tmp(f->dir), 0);

	/* zone 2 gone before the end: the finish fails naming it, no zone has the file */
	assert_int_equal(zones_stream_open(z, "packs", &s, &e), 0);
	assert_int_equal(zones_stream_write(s, data, 8192, &e), 0);
	assert_int_equal(util_rm_rf(f->zpath[1], NULL), 0);
	err_clear(&e);
	assert_true(zones_stream_finish(s, data + 8192, 100, "packs/77/7777", &e) < 0);
	assert_non_null(strstr(e.msg, "zone 2"));
	assert_true(strlen(e.hint) > 0);
	for (int i = 0; i < NZ; i++)
		assert_false(zone_has(f, i, "packs/77/7777"));
	assert_int_equal(count_tmp(f->dir), 0);
	/* and a stream cannot start without it */
	err_clear(&e);
	assert_true(zones_stream_open(z, "packs", &s, &e) < 0);
	assert_non_null(strstr(e.msg, "zone 2"));
	assert_int_equal(count_tmp(f->dir), 0);
	free(data);
	zones_free(z);
}

/*
 * The first stream of a writer removes the stream temporaries of processes that are gone
 * (packs/.tmp-<pid>-*), in every zone, and leaves those of live processes and its own.
 */
static void test_zones_stream_sweep(void **state)
{
	struct fixture *f = *state;
	zones *z = mkzones(f);
	zones_stream *s;
	struct err e;
	char dead[64], live[64], mine[64], other[64];
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, NULL, 0), child); /* its pid is now free */
	err_clear(&e);
	assert_int_equal(zones_create(z, &e), 0);
	snprintf(dead, sizeof dead, "packs/.tmp-%ld-1a2b", (long)child);
	snprintf(live, sizeof live, "packs/.tmp-%ld-1a2b", (long)getppid());
	snprintf(mine, sizeof mine, "packs/.tmp-%ld-77", (long)getpid());
	snprintf(other, sizeof other, "packs/.tmpfile");
	for (int i = 0; i < NZ; i++) {
		char p[PATH_MAX];
		const char *names[] = {dead, live, mine, other};
		for (int k = 0; k < 4; k++) {
			snprintf(p, sizeof p, "%s/%s", f->zpath[i], names[k]);
			make_file(p);
		}
	}
	assert_int_equal(zones_stream_open(z, "packs", &s, &e), 0);
	zones_stream_abort(s);
	for (int i = 0; i < NZ; i++) {
		assert_false(zone_has(f, i, dead));
		assert_true(zone_has(f, i, live));
		assert_true(zone_has(f, i, mine));
		assert_true(zone_has(f, i, other));
	}
	zones_free(z);
}

/*
 * A rename that fails in zone 2 (its name is taken by a non-empty directory) undoes the
 * write: a new file is removed again from zone 1, where it was already renamed; a file that
 * replaced an existing one stays in zone 1 (the old one is gone, the new one is whole);
 * zone 3 keeps what it had, with no temporary left.
 */
static void test_zones_put_rename_failure(void **state)
{
	struct fixture *f = *state;
	zones *z = mkzones(f);
	char path[700], *t;
	struct err e;
	assert_int_equal(zones_create(z, NULL), 0);
	assert_int_equal(zones_put(z, "f", "old", 3, NULL), 0);
	for (int i = 0; i < NZ; i++) {
		snprintf(path, sizeof path, "%s/f", f->zpath[i]);
		if (i == 1) {
			assert_int_equal(unlink(path), 0);
			assert_int_equal(mkdir(path, 0700), 0);
			snprintf(path, sizeof path, "%s/f/x", f->zpath[i]);
			assert_int_equal(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
			snprintf(path, sizeof path, "%s/g", f->zpath[i]);
			assert_int_equal(mkdir(path, 0700), 0);
			snprintf(path, sizeof path, "%s/g/x", f->zpath[i]);
			assert_int_equal(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
		}
	}
	err_clear(&e);
	assert_true(zones_put(z, "f", "new", 3, &e) < 0);
	assert_non_null(strstr(e.msg, "zone 2"));
	t = zone_text(f, 0, "f");
	assert_non_null(t); /* replaced, then kept: never missing */
	assert_string_equal(t, "new");
	free(t);
	t = zone_text(f, 2, "f");
	assert_non_null(t);
	assert_string_equal(t, "old");
	free(t);
	err_clear(&e);
	assert_true(zones_put(z, "g", "new", 3, &e) < 0);
	assert_null(zone_text(f, 0, "g")); /* a new file: removed again */
	assert_null(zone_text(f, 2, "g"));
	for (int i = 0; i < NZ; i++) { /* no temporaries */
		DIR *d = opendir(f->zpath[i]);
		struct dirent *de;
		assert_non_null(d);
		while ((de = readdir(d)))
			assert_true(strncmp(de->d_name, ".tmp-", 5) != 0);
		closedir(d);
	}
	zones_free(z);
}

/* --- store_read_blob --- */

struct built {
	uint8_t pack_id[32];
	char rel[80];
	uint8_t *bytes;
	size_t len;
	struct blob_loc loc[3];
	uint8_t *data[3];
};

static void build_pack(struct repo *r, struct built *bp)
{
	static const size_t sizes[3] = {20000, 10000, 100}; /* text, random, random */
	pack_codec *codec = pack_codec_new(r->cfg.zstd_level);
	pack_builder *b = pack_builder_new();
	uint64_t seed = 2;
	const struct pack_entry *en;
	const uint8_t *data;
	size_t n;
	memset(bp, 0, sizeof *bp); /* locations of blobs that are not deltas (base_chunk 0) */
	for (int i = 0; i < 3; i++) {
		uint8_t *sealed = malloc(pack_blob_bound(sizes[i])), id[32];
		size_t slen;
		bp->data[i] = malloc(sizes[i]);
		if (i == 0)
			for (size_t k = 0; k < sizes[i]; k++)
				bp->data[i][k] = (uint8_t)"abcdefgh\n"[k % 9];
		else
			unit_rand_fill(&seed, bp->data[i], sizes[i]);
		crypto_blob_id(r->key, bp->data[i], sizes[i], id);
		assert_int_equal(pack_blob_encode(codec, r->key, id, bp->data[i], sizes[i], sealed, &slen, NULL), 0);
		pack_builder_add(b, id, PACK_BLOB_DATA, (uint32_t)sizes[i], sealed, slen);
		free(sealed);
	}
	assert_int_equal(pack_builder_finish(b, r->key, bp->pack_id, NULL), 0);
	data = pack_builder_data(b, &bp->len);
	bp->bytes = malloc(bp->len);
	memcpy(bp->bytes, data, bp->len);
	en = pack_builder_entries(b, &n);
	for (int i = 0; i < 3; i++) {
		memcpy(bp->loc[i].id, en[i].id, 32);
		memcpy(bp->loc[i].pack, bp->pack_id, 32);
		bp->loc[i].offset = en[i].offset;
		bp->loc[i].length = en[i].length;
		bp->loc[i].raw = en[i].raw;
	}
	assert_true(bp->loc[1].length > 4096); /* read through a heap buffer, not the stack one */
	pack_relpath(bp->pack_id, bp->rel);
	pack_builder_free(b);
	pack_codec_free(codec);
}

static void free_built(struct built *bp)
{
	for (int i = 0; i < 3; i++)
		free(bp->data[i]);
	free(bp->bytes);
}

/* Reads blob i; returns the code and sets *bad. On success checks the bytes. */
static int read_blob(struct repo *r, pack_codec *codec, const struct built *bp, int i, unsigned *bad,
		     struct err *e)
{
	uint8_t *out = malloc(bp->loc[i].raw);
	int rc;
	*bad = 0xdead;
	err_clear(e);
	rc = store_read_blob(r, codec, &bp->loc[i], out, bad, e);
	if (rc == 0)
		assert_memory_equal(out, bp->data[i], bp->loc[i].raw);
	free(out);
	return rc;
}

static void test_read_blob_failover(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg;
	struct repo *r;
	struct built bp;
	pack_codec *codec;
	unsigned bad;
	char path[NZ][PATH_MAX], hex[65];
	struct err e;
	init_repo(f, &cfg);
	r = open_repo(f, PASS);
	codec = pack_codec_new(1);
	build_pack(r, &bp);
	assert_int_equal(zones_put(r->z, bp.rel, bp.bytes, bp.len, &e), 0);
	assert_int_equal(zones_sync(r->z, &e), 0);
	for (int i = 0; i < NZ; i++)
		zones_file(r->z, i, bp.rel, path[i], sizeof path[i]);

	/* all zones good */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(read_blob(r, codec, &bp, i, &bad, &e), 0);
		assert_int_equal(bad, 0);
	}
	assert_int_equal(store_read_blob(r, codec, &bp.loc[0], bp.data[0], NULL, NULL), 0); /* NULLs ok */

	/* pack gone from zone 1 */
	assert_int_equal(unlink(path[0]), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(read_blob(r, codec, &bp, i, &bad, &e), 0);
		assert_int_equal(bad, 1);
	}

	/* back in zone 1, but a byte of blob 1 flipped there */
	assert_int_equal(zones_put_one(r->z, 0, bp.rel, bp.bytes, bp.len, &e), 0);
	flip_byte(path[0], bp.loc[1].offset + bp.loc[1].length / 2);
	assert_int_equal(read_blob(r, codec, &bp, 1, &bad, &e), 0);
	assert_int_equal(bad, 1);
	assert_int_equal(read_blob(r, codec, &bp, 0, &bad, &e), 0); /* other blobs are fine there */
	assert_int_equal(bad, 0);
	/* and in zone 2 */
	flip_byte(path[1], bp.loc[1].offset);
	assert_int_equal(read_blob(r, codec, &bp, 1, &bad, &e), 0);
	assert_int_equal(bad, 3);

	/* truncated in zone 3 too: no good copy left */
	assert_int_equal(truncate(path[2], bp.loc[1].offset + 10), 0);
	assert_int_equal(read_blob(r, codec, &bp, 1, &bad, &e), ERR_CORRUPT);
	assert_int_equal(bad, 7);
	assert_int_equal(e.code, ERR_CORRUPT);
	pack_name(bp.pack_id, hex);
	hex[16] = '\0';
	assert_non_null(strstr(e.msg, hex)); /* names the pack */
	assert_non_null(strstr(e.msg, "zone 1"));
	assert_non_null(strstr(e.msg, "zone 2"));
	assert_non_null(strstr(e.msg, "zone 3"));
	assert_true(strlen(e.hint) > 0);

	/* gone from every zone */
	assert_int_equal(zones_remove(r->z, bp.rel, &e), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(read_blob(r, codec, &bp, i, &bad, &e), ERR_NOTFOUND);
		assert_int_equal(bad, 7);
		assert_non_null(strstr(e.msg, hex));
	}

	/* whole again; a location with the wrong id authenticates nowhere */
	assert_int_equal(zones_put(r->z, bp.rel, bp.bytes, bp.len, &e), 0);
	memcpy(bp.loc[2].id, bp.loc[0].id, 32);
	assert_int_equal(read_blob(r, codec, &bp, 2, &bad, &e), ERR_CORRUPT);
	assert_int_equal(bad, 7);

	/* a location whose length no blob can have: refused before anything is read */
	{
		struct blob_loc big = bp.loc[0];
		big.length = 0xFFFFFFF0u;
		err_clear(&e);
		assert_int_equal(store_read_blob(r, codec, &big, bp.data[0], &bad, &e), ERR_CORRUPT);
		assert_non_null(strstr(e.msg, "impossible length"));
	}

	/* no zone can be read at all (a directory where the pack was; root reads through any mode):
	 * an I/O error whose hint is about the zones, not damage */
	assert_int_equal(zones_remove(r->z, bp.rel, &e), 0);
	for (int i = 0; i < NZ; i++)
		assert_int_equal(mkdir(path[i], 0700), 0);
	assert_int_equal(read_blob(r, codec, &bp, 0, &bad, &e), ERR_IO);
	assert_int_equal(bad, 7);
	assert_non_null(strstr(e.hint, "readable"));
	/* one damaged copy among unreadable ones: damage */
	assert_int_equal(rmdir(path[0]), 0);
	assert_int_equal(zones_put_one(r->z, 0, bp.rel, bp.bytes, bp.len, &e), 0);
	flip_byte(path[0], bp.loc[0].offset + 20);
	assert_int_equal(read_blob(r, codec, &bp, 0, &bad, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.hint, "check --read-data"));
	for (int i = 1; i < NZ; i++)
		assert_int_equal(rmdir(path[i]), 0);

	free_built(&bp);
	pack_codec_free(codec);
	repo_close(r);
}

/* Every zone has a damaged copy except the last, which is missing: the blob is damaged. */
static void test_read_blob_mixed_failures(void **state)
{
	struct fixture *f = *state;
	struct repo_config cfg;
	struct repo *r;
	struct built bp;
	pack_codec *codec;
	unsigned bad;
	char path[PATH_MAX];
	struct err e;
	int rc;
	init_repo(f, &cfg);
	r = open_repo(f, PASS);
	codec = pack_codec_new(1);
	build_pack(r, &bp);
	assert_int_equal(zones_put(r->z, bp.rel, bp.bytes, bp.len, &e), 0);
	for (int i = 0; i < 2; i++) {
		zones_file(r->z, i, bp.rel, path, sizeof path);
		flip_byte(path, bp.loc[0].offset + 20);
	}
	zones_file(r->z, 2, bp.rel, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	rc = read_blob(r, codec, &bp, 0, &bad, &e);
	free_built(&bp);
	pack_codec_free(codec);
	repo_close(r);
	assert_true(rc < 0);
	assert_int_equal(bad, 7);
	known_bug(rc == ERR_CORRUPT,
		  "store_read_blob reports ERR_NOTFOUND when zones 1-2 hold damaged copies and zone 3 none");
}

/* One blob in a pack of its own, written to every zone; *loc gets where it lives. */
static void put_one_blob(struct repo *r, pack_codec *codec, const uint8_t *data, size_t len, const uint8_t *base_id,
			 const uint8_t *base, size_t base_len, struct blob_loc *loc, char rel[80])
{
	pack_builder *b = pack_builder_new();
	uint8_t *sealed = malloc(pack_blob_bound(len));
	const struct pack_entry *en;
	const uint8_t *bytes;
	size_t slen, n, plen;
	int delta = 0;
	struct err e;
	memset(loc, 0, sizeof *loc);
	crypto_blob_id(r->key, data, len, loc->id);
	assert_int_equal(pack_blob_encode_delta(codec, r->key, loc->id, data, len, base_id, base, base_len, 0, sealed, &slen,
						&delta, NULL),
			 0);
	assert_int_equal(delta, base != NULL);
	pack_builder_add(b, loc->id, PACK_BLOB_DATA, (uint32_t)len, sealed, slen);
	assert_int_equal(pack_builder_finish(b, r->key, loc->pack, NULL), 0);
	en = pack_builder_entries(b, &n);
	loc->offset = en[0].offset;
	loc->length = en[0].length;
	loc->raw = en[0].raw;
	pack_relpath(loc->pack, rel);
	bytes = pack_builder_data(b, &plen);
	assert_int_equal(zones_put(r->z, rel, bytes, plen, &e), 0);
	assert_int_equal(zones_sync(r->z, &e), 0);
	pack_builder_free(b);
	free(sealed);
}

/*
 * A delta blob reads back through its base: with the base's pack gone from zone 1 and
 * damaged in zone 2 (failover to zone 3), through a cache that then holds the base, and
 * not at all once no zone has a good copy of the base (the message says it was the base).
 */
static void test_read_delta_base_failover(void **state)
{
	enum { N = 65536 };
	struct fixture *f = *state;
	struct repo_config cfg;
	struct repo *r;
	pack_codec *codec;
	struct blob_loc bl, dl;
	char brel[80], drel[80], path[PATH_MAX];
	uint8_t *base = malloc(N), *data = malloc(N), *out = malloc(N);
	uint64_t seed = 5;
	unsigned bad;
	chunk_cache *cache = cache_new(1 << 20);
	cache_ref *ref;
	struct err e;
	init_repo(f, &cfg);
	r = open_repo(f, PASS);
	codec = pack_codec_new(1);
	for (size_t k = 0; k < N; k += 64) { /* rows: 8 random bytes, then filler */
		unit_rand_fill(&seed, base + k, 8);
		memset(base + k + 8, 'x', 56);
	}
	memcpy(data, base, N);
	for (int i = 0; i < 20; i++)
		unit_rand_fill(&seed, data + (unit_rand_next(&seed) % (N / 64)) * 64, 8);
	put_one_blob(r, codec, base, N, NULL, NULL, 0, &bl, brel);
	put_one_blob(r, codec, data, N, bl.id, base, N, &dl, drel);
	assert_true(dl.length * 4 < bl.length);
	dl.base_chunk = 7; /* the base's catalog number */
	memcpy(dl.base_id, bl.id, 32);
	memcpy(dl.base_pack, bl.pack, 32);
	dl.base_offset = bl.offset;
	dl.base_length = bl.length;
	dl.base_raw = bl.raw;

	assert_int_equal(store_read_blob(r, codec, &dl, out, &bad, &e), 0);
	assert_memory_equal(out, data, N);
	assert_int_equal(bad, 0);
	/* without its base location the delta does not decode */
	{
		struct blob_loc nob = dl;
		nob.base_chunk = 0;
		assert_int_equal(store_read_blob(r, codec, &nob, out, &bad, &e), ERR_CORRUPT);
	}

	/* the base's pack: gone from zone 1, damaged in zone 2 */
	zones_file(r->z, 0, brel, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	zones_file(r->z, 1, brel, path, sizeof path);
	flip_byte(path, bl.offset + bl.length / 2);
	memset(out, 0, N);
	assert_int_equal(store_read_blob(r, codec, &dl, out, &bad, &e), 0);
	assert_memory_equal(out, data, N);
	assert_int_equal(bad, 0); /* the delta itself was fine in zone 1 */

	/* through the cache: the base is decoded once and kept under its number */
	memset(out, 0, N);
	assert_int_equal(store_read_blob_cached(r, codec, cache, &dl, out, 0, &e), 0);
	assert_memory_equal(out, data, N);
	assert_non_null(ref = cache_get(cache, 7));
	{
		size_t len;
		assert_memory_equal(cache_data(ref, &len), base, N);
		assert_int_equal(len, N);
	}
	cache_release(cache, ref);
	memset(out, 0, N);
	assert_int_equal(store_read_blob_cached(r, codec, cache, &dl, out, 0, &e), 0);
	assert_memory_equal(out, data, N);
	/* read by a reader going through the snapshot in order: the base is passed whole, and
	 * goes before older entries when the cache is over budget */
	{
		chunk_cache *small = cache_new(1 << 20);
		memset(out, 0, N);
		cache_release(small, cache_put(small, 100, calloc(1, N), N)); /* the oldest entry */
		assert_int_equal(store_read_blob_cached(r, codec, small, &dl, out,
							CACHE_PASSED_WHOLE, &e), 0);
		assert_memory_equal(out, data, N);
		for (int64_t k = 101; k < 101 + (1 << 20) / N - 2; k++) /* with 100 and the base: full */
			cache_release(small, cache_put(small, k, calloc(1, N), N));
		assert_int_equal(cache_bytes(small), 1 << 20);
		cache_release(small, cache_put(small, 200, calloc(1, N), N));
		assert_null(ref = cache_get(small, 7));
		assert_non_null(ref = cache_get(small, 100));
		cache_release(small, ref);
		cache_free(small);
	}

	/* no good copy of the base anywhere: the delta cannot be read, and the error says why */
	zones_file(r->z, 2, brel, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_read_blob(r, codec, &dl, out, &bad, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "base"));
	assert_true(strlen(e.hint) > 0);

	cache_free(cache);
	free(base);
	free(data);
	free(out);
	pack_codec_free(codec);
	repo_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_default),
		cmocka_unit_test(test_config_round_trip),
		cmocka_unit_test(test_config_garbage),
		cmocka_unit_test(test_config_seed_overflow),
		cmocka_unit_test(test_config_err_code),
		cmocka_unit_test(test_config_id_not_hex),
		cmocka_unit_test_setup_teardown(test_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_one_zone_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_damaged_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zones_put_rename_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_cheapest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_mac, setup, teardown),
		cmocka_unit_test(test_config_mac_key),
		cmocka_unit_test_setup_teardown(test_zones_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zones_put_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zones_put_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zones_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zones_stream_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_blob_failover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_blob_mixed_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_delta_base_failover, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
