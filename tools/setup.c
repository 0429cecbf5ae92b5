/* setup.c: configuration, passphrase, repository and catalog for the commands. */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/walarchive.h"
#include "common/util.h"
#include "catalog/copy.h"
#include "tools.h"

int report(const struct err *e)
{
	fprintf(stderr, "pgtimefs: %s\n", e->msg[0] ? e->msg : err_name(e->code));
	if (e->hint[0])
		fprintf(stderr, "HINT: %s\n", e->hint);
	return e->code == ERR_USAGE ? 2 : 1;
}

/* a cluster or node name of any length: not empty, no '/' or control character, not a name
 * the mount gives its own entries */
static int name_ok(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || !strcmp(s, "latest") || !strcmp(s, "at") ||
	    !strcmp(s, "wal") || !strcmp(s, "restore.json"))
		return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

int tools_valid_name(const char *s)
{
	return strlen(s) <= 100 && name_ok(s);
}

int tools_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;
	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int tools_parse_seconds(const char *s, double min, double max, double *out)
{
	char *end;
	double v, mul = 1;
	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s)
		return -1;
	if (*end == 's' || *end == 'm' || *end == 'h') {
		mul = *end == 'h' ? 3600 : *end == 'm' ? 60 : 1;
		end++;
	}
	v *= mul;
	if (*end || !(v >= min && v <= max)) /* NaN fails too */
		return -1;
	*out = v;
	return 0;
}

int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("pgtimefs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	return 2;
}

static int load_config(struct ctx *x, struct err *e);

int setup_config(struct ctx *x, struct err *e)
{
	int rc;
	if (x->cfg)
		return 0;
	if ((rc = load_config(x, e)) < 0) {
		/* nothing of a config that failed stays: the next caller loads it again and is told
		 * the same (setup_catalog calls this first for its read-ahead, ignoring a failure) */
		for (int i = 0; i < x->nzones; i++)
			free(x->zone_paths[i]);
		x->nzones = 0;
		config_free(x->cfg);
		x->cfg = NULL;
	}
	return rc;
}

/*
 * The sections and keys pgtimefs reads. Others are a typo until shown otherwise: an unknown
 * section is a fault (check_shape: a [Node ...] would leave a node out of every backup); an
 * unknown key is a warning (the design's keys for later work, retention-days and the like, are
 * known).
 */
static const char *const repository_keys[] = {"zones",	    "passphrase-file", "state-dir",
					      "kdf-log2n",  "zstd-level",      "block-size",
					      "delta-blocks", "wal-catalog-copy-interval", "backup-stall-timeout",
					      NULL};
static const char *const mount_keys[] = {"cache-size", NULL};
static const char *const cluster_keys[] = {"wal-partial-interval", "retention-days", "backup-at", "restore-point-every",
					   NULL};
static const char *const node_keys[] = {"conninfo", "data-dir", "slot", NULL};

static int known(const char *const *keys, const char *key)
{
	for (; *keys; keys++)
		if (!strcmp(*keys, key))
			return 1;
	return 0;
}

/* a name a section may give a cluster or node: of any length (restore names its clusters
 * "<cluster>-restored-<time>"), without a space at either end ("[node prod /n3]" is a typo) */
static int section_name_ok(const char *s)
{
	size_t n = strlen(s);
	return name_ok(s) && s[0] != ' ' && s[n - 1] != ' ';
}

/* the keys of a section: NULL when the section is none pgtimefs knows (e names why) */
static const char *const *section_keys(const struct config *c, const char *path, const char *sec, struct err *e)
{
	const char *a, *slash, *dd;
	if (!strcmp(sec, "repository"))
		return repository_keys;
	if (!strcmp(sec, "mount"))
		return mount_keys;
	if (!strncmp(sec, "cluster ", 8)) {
		if (!section_name_ok(sec + 8)) {
			err_set(e, ERR_CONFIG, "%s: [%s]: '%s' cannot name a cluster", path, sec, sec + 8);
			err_hint(e, "a name has no '/' or control characters, no space at either end, and is not 'latest', "
				    "'at', 'wal', 'restore.json', '.' or '..'");
			return NULL;
		}
		return cluster_keys;
	}
	if (!strncmp(sec, "node ", 5)) {
		char cl[512];
		a = sec + 5;
		slash = strchr(a, '/');
		if (!slash || (size_t)(slash - a) >= sizeof cl || strchr(slash + 1, '/')) {
			err_set(e, ERR_CONFIG, "%s: [%s] is not [node CLUSTER/NAME]", path, sec);
			err_hint(e, "a node section is [node CLUSTER/NAME], e.g. [node prod/worker1]");
			return NULL;
		}
		snprintf(cl, sizeof cl, "%.*s", (int)(slash - a), a);
		if (!section_name_ok(cl) || !section_name_ok(slash + 1)) {
			err_set(e, ERR_CONFIG, "%s: [%s]: '%s' cannot name a %s", path, sec,
				section_name_ok(cl) ? slash + 1 : cl, section_name_ok(cl) ? "node" : "cluster");
			err_hint(e, "a name has no '/' or control characters, no space at either end, and is not 'latest', "
				    "'at', 'wal', 'restore.json', '.' or '..'");
			return NULL;
		}
		if (c && (dd = config_get(c, sec, "data-dir")) && *dd && dd[0] != '/') {
			/* backup runs from anywhere: a relative path would name another directory */
			err_set(e, ERR_CONFIG, "%s: [%s] data-dir '%s' is not an absolute path", path, sec, dd);
			err_hint(e, "give the node's data directory as an absolute path");
			return NULL;
		}
		return node_keys;
	}
	err_set(e, ERR_CONFIG, "%s: unknown section [%s]", path, sec);
	err_hint(e, "the sections are [repository], [mount], [cluster NAME] and [node CLUSTER/NAME] (lowercase)");
	return NULL;
}

/*
 * Sections that cannot be used are counted (the commands that read node sections refuse to run
 * with any: config_cluster_nodes) and named in a warning, as unknown keys are: wal-push, run by
 * archive_command, must not stop archiving over a typo elsewhere in the file.
 */
static int check_shape(const char *path, const struct config *c, int quiet)
{
	int faults = 0;
	for (size_t i = 0; i < config_nsections(c); i++) {
		struct err se;
		err_clear(&se);
		if (section_keys(c, path, config_section(c, i), &se))
			continue;
		faults++;
		if (!quiet)
			fprintf(stderr, "pgtimefs: warning: %s (%s)\n", se.msg, se.hint);
	}
	for (size_t i = 0; i < config_nentries(c); i++) {
		const char *sec, *key = config_entry(c, i, &sec);
		const char *const *keys = section_keys(NULL, path, sec, NULL);
		if (keys && !known(keys, key) && !quiet)
			fprintf(stderr, "pgtimefs: warning: %s: unknown key '%s' in [%s]: not used (a typo?)\n", path, key,
				sec);
	}
	return faults;
}

static int load_config(struct ctx *x, struct err *e)
{
	const char *path = x->config_path;
	const char *zlist, *state;
	char *copy, *save = NULL, *tok;
	int rc;
	if (!path)
		path = getenv("PGTIMEFS_CONFIG");
	if (!path || !*path)
		path = "/etc/pgtimefs/pgtimefs.conf";
	x->config_path = path;
	if ((rc = config_load(path, &x->cfg, e)) < 0)
		return rc;
	x->config_faults = check_shape(path, x->cfg, x->quiet);
	zlist = config_get(x->cfg, "repository", "zones");
	if (!zlist || !*zlist) {
		err_set(e, ERR_CONFIG, "%s: [repository] has no 'zones' (the zone directories, space-separated)", path);
		return ERR_CONFIG;
	}
	copy = xstrdup(zlist);
	for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (x->nzones == ZONES_MAX) {
			free(copy);
			return err_set(e, ERR_CONFIG, "%s: at most %d zones", path, ZONES_MAX);
		}
		if (tok[0] != '/') {
			free(copy);
			return err_set(e, ERR_CONFIG, "%s: zone '%s' must be an absolute path", path, tok);
		}
		x->zone_paths[x->nzones++] = xstrdup(tok);
	}
	free(copy);
	if (!x->nzones)
		return err_set(e, ERR_CONFIG, "%s: [repository] zones is empty", path);
	/* one directory named twice (another spelling, a symlink, a bind mount) would be counted
	 * as two copies of everything */
	for (int i = 0; i < x->nzones; i++)
		for (int j = i + 1; j < x->nzones; j++) {
			struct stat a, b;
			size_t la = strlen(x->zone_paths[i]), lb = strlen(x->zone_paths[j]);
			while (la > 1 && x->zone_paths[i][la - 1] == '/')
				la--;
			while (lb > 1 && x->zone_paths[j][lb - 1] == '/')
				lb--;
			if ((stat(x->zone_paths[i], &a) == 0 && stat(x->zone_paths[j], &b) == 0)
				    ? a.st_dev == b.st_dev && a.st_ino == b.st_ino
				    : la == lb && !strncmp(x->zone_paths[i], x->zone_paths[j], la)) {
				err_set(e, ERR_CONFIG, "%s: zones %d and %d (%s, %s) are one directory", path, i + 1, j + 1,
					x->zone_paths[i], x->zone_paths[j]);
				err_hint(e, "give each zone a place of its own: a copy in one directory is no second copy");
				return ERR_CONFIG;
			}
		}
	state = config_get(x->cfg, "repository", "state-dir");
	if (!state || state[0] != '/')
		return err_set(e, ERR_CONFIG, "%s: [repository] needs an absolute 'state-dir' (catalog, locks)", path);
	snprintf(x->state_dir, sizeof x->state_dir, "%s", state);
	snprintf(x->catalog_file, sizeof x->catalog_file, "%s/catalog.db", state);
	{
		/* read from wherever pgtimefs runs (archive_command runs in the data directory): a
		 * relative path works in one place only. A warning, not a refusal: a setup where it
		 * works (wal-push from the data directory) must keep archiving */
		const char *pf = config_get(x->cfg, "repository", "passphrase-file");
		if (pf && *pf && pf[0] != '/' && !x->quiet)
			fprintf(stderr,
				"pgtimefs: warning: %s: [repository] passphrase-file '%s' is not an absolute path: it is read "
				"from the current directory\n",
				path, pf);
	}
	return 0;
}

int read_secret(const char *file, const char *env, const char *what, char **out, size_t *len, struct err *e)
{
	*out = NULL;
	*len = 0;
	if (file && *file) {
		uint8_t *buf;
		if (util_read_small(file, 4096, &buf, len, e) < 0) {
			err_prefix(e, "%s", what);
			return ERR_CONFIG;
		}
		while (*len && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r'))
			buf[--*len] = '\0';
		*out = (char *)buf;
	} else if (env) {
		*out = xstrdup(env);
		*len = strlen(env);
	} else {
		return err_set(e, ERR_CONFIG, "no %s", what);
	}
	if (!*len) {
		free(*out);
		*out = NULL;
		return err_set(e, ERR_CONFIG, "the %s is empty", what);
	}
	return 0;
}

int setup_passphrase(struct ctx *x, struct err *e)
{
	int rc;
	if (x->pass)
		return 0;
	if ((rc = setup_config(x, e)) < 0)
		return rc;
	rc = read_secret(config_get(x->cfg, "repository", "passphrase-file"), getenv("PGTIMEFS_PASSPHRASE"),
			 "passphrase", &x->pass, &x->passlen, e);
	if (rc < 0 && !x->pass && e && !e->hint[0])
		err_hint(e, "set passphrase-file in [repository] or PGTIMEFS_PASSPHRASE");
	return rc;
}

int setup_repo(struct ctx *x, struct err *e)
{
	zones *z;
	int rc;
	if (x->repo)
		return 0;
	if ((rc = setup_passphrase(x, e)) < 0)
		return rc;
	z = zones_new((const char *const *)x->zone_paths, x->nzones);
	if ((rc = repo_open(z, x->pass, x->passlen, &x->repo, e)) < 0) {
		zones_free(z);
		return rc;
	}
	if (x->repo->config_unsealed)
		fprintf(stderr, "pgtimefs: warning: the repository config (zone %d) carries no MAC: it was written by an "
				"older pgtimefs, or someone removed it\nHINT: the next command that writes (a backup, "
				"'pgtimefs repair') seals it in every zone\n",
			x->repo->config_zone + 1);
	return 0;
}

#define CATALOG_READAHEAD (64ull << 20)

/*
 * wal-push (x->catalog_first), when it finds the writer lock free, takes it and opens the
 * catalog before the key: OpenSSL meanwhile builds its tables on another thread
 * (crypto_warm_up, about 2 ms that the key's unwrapping waits for). When the lock is taken,
 * or anything here fails, setup_catalog goes the usual way (the key first, so that a wrong
 * passphrase is said at once, then the wait for the lock), which also reports what failed.
 * Only wal-push: other writers would hold the lock through a passphrase's scrypt (0.1 s and
 * more) while pushes wait, to save 1 ms.
 */
static void open_catalog_early(struct ctx *x)
{
	if (x->lock_fd >= 0 || x->cat || util_mkdir_p(x->state_dir, 0700, NULL) < 0 ||
	    catalog_writer_lock(x->state_dir, 0, &x->lock_fd, NULL) < 0)
		return;
	if (access(x->catalog_file, F_OK) == 0 && catalog_open(x->catalog_file, 0, &x->cat, NULL) < 0)
		x->cat = NULL;
}

/*
 * The catalog remembers how the config was sealed (meta config-sealed): 1 once a config with
 * a MAC was seen, 2 once one sealed with the derived config-MAC key was; it never goes down,
 * and a value this pgtimefs does not know counts as the strictest. A config sealed less well
 * than that is refused: someone removed or replaced it. A writer reseals, with the current
 * key, every zone that holds the config in use sealed the old way or not at all (a zone that
 * cannot be written is warned about, and the next writer tries again); when that raises the
 * level, the catalog records it and a catalog copy carries it to the zones at once, so that
 * `init --recover` does not bring the old level back.
 */
static int config_seal_state(struct ctx *x, int writable, struct err *e)
{
	struct repo *r = x->repo;
	char v[32];
	long before = 0;
	int now = r->config_unsealed ? 0 : r->config_old_mac ? 1 : 2, resealed, failed, unpushed, rc;
	struct err we;
	if (catalog_meta_get(x->cat, "config-sealed", v, sizeof v) == 0) {
		char *end;
		errno = 0;
		before = strtol(v, &end, 10);
		if (end == v || *end || errno || before < 0)
			before = LONG_MAX;
	}
	if (now < before) {
		if (before > 2)
			err_set(e, ERR_CORRUPT, "this repository's catalog records a config seal this pgtimefs does not know "
						"(config-sealed = %s): a newer pgtimefs wrote it", v);
		else if (now == 0)
			err_set(e, ERR_CORRUPT, "the repository config (zone %d) has no MAC, but this repository's config had "
						"one: it was removed", r->config_zone + 1);
		else
			err_set(e, ERR_CORRUPT, "the repository config (zone %d) is sealed with the old key (the id key), and "
						"no zone holds one sealed with the current key, as this repository's config "
						"has been: it was replaced, or the zones that held the current seal were lost",
				r->config_zone + 1);
		err_hint(e, before > 2 ? "use the pgtimefs that wrote this catalog"
				       : "copy the config file from a zone or a backup you trust into every zone, then run "
					 "'pgtimefs check'");
		return ERR_CORRUPT;
	}
	if (!writable)
		return 0;
	err_clear(&we);
	resealed = failed = 0;
	if (r->config_stale && repo_config_reseal(r, &resealed, &failed, &we) < 0)
		fprintf(stderr, "pgtimefs: warning: resealing the repository config with the current key failed in %d zone%s: "
				"%s\nHINT: the next backup tries again; 'pgtimefs repair' once every zone is writable\n",
			failed, failed == 1 ? "" : "s", we.msg);
	if (resealed) {
		r->config_stale = failed;
		if (now < 2) {
			r->config_old_mac = r->config_unsealed = 0;
			now = 2;
		}
	}
	/* a raised level goes to the zones in a catalog copy at once (init's first copy is the
	 * first snapshot's); until one has, config-sealed-pushed is 0 and every writer tries */
	unpushed = catalog_meta_get(x->cat, "config-sealed-pushed", v, sizeof v) == 0 && !strcmp(v, "0");
	if (now > before) {
		snprintf(v, sizeof v, "%d", now);
		if ((rc = catalog_meta_set(x->cat, "config-sealed", v, e)) < 0)
			return rc;
		unpushed = writable != 2;
	}
	if (unpushed && writable == 3) {
		/* repair pushes its copy after its checks: until a copy carries the level, every
		 * writer tries */
		if ((rc = catalog_meta_set(x->cat, "config-sealed-pushed", "0", e)) < 0)
			return rc;
	} else if (unpushed) {
		err_clear(&we);
		if (catalog_copy_push(x->cat, r, x->state_dir, NULL, &we) < 0) {
			fprintf(stderr, "pgtimefs: warning: the catalog copy that records the config's seal failed: %s\n"
					"HINT: the next command that writes tries again\n",
				we.msg);
			if ((rc = catalog_meta_set(x->cat, "config-sealed-pushed", "0", e)) < 0)
				return rc;
		} else if ((rc = catalog_meta_set(x->cat, "config-sealed-pushed", "1", e)) < 0) {
			return rc;
		}
	}
	return 0;
}

int setup_writer_zones(struct ctx *x, int repair, struct err *e)
{
	const struct repo *r = x->repo;
	if (r->foreign_zone >= 0) {
		/* a writer would put this repository's packs, keys and catalog copies into another's
		 * zone, and prune that one's copies */
		int f = r->foreign_zone;
		err_set(e, ERR_CONFIG, "zone %d (%s) holds another repository: nothing is written while a zone of this "
				       "repository's is another's",
			f + 1, zones_path(r->z, f));
		err_hint(e, "correct 'zones' in the configuration (each zone is this repository's own directory); "
			    "'pgtimefs check' reads and names what it finds meanwhile");
		return ERR_CONFIG;
	}
	if (r->bare_zone >= 0 && !repair) {
		/* an unmounted zone's mount point, or an emptied zone: what a writer put there would
		 * not be in the zone (or fill the filesystem under it) while it counted as stored */
		int b = r->bare_zone;
		struct stat st;
		if (stat(zones_path(r->z, b), &st) < 0) {
			err_sys(e, ERR_IO, "zone %d (%s) is not there: nothing is written while a zone is missing", b + 1,
				zones_path(r->z, b));
			err_hint(e, "mount or recreate the zone directory, then run 'pgtimefs repair' and retry");
		} else {
			err_set(e, ERR_IO, "zone %d (%s): %s: nothing is written to it", b + 1, zones_path(r->z, b),
				r->bare_why);
			err_hint(e, "if the zone is a filesystem that is not mounted, mount it; if the zone was lost, "
				    "'pgtimefs repair' refills it from the others; then retry");
		}
		return ERR_IO;
	}
	return 0;
}

int setup_catalog(struct ctx *x, int writable, struct err *e)
{
	char id[80];
	int rc;
	/* the kernel reads the catalog while the key is derived (scrypt: about 0.1 s of CPU) */
	if (!x->repo && setup_config(x, e) == 0) {
		util_readahead(x->catalog_file, CATALOG_READAHEAD);
		if (writable == 1 && x->catalog_first)
			open_catalog_early(x);
	}
	if ((rc = setup_repo(x, e)) < 0)
		return rc;
	if (writable && (rc = setup_writer_zones(x, writable == 3, e)) < 0)
		return rc;
	if (writable && x->lock_fd < 0) {
		if ((rc = util_mkdir_p(x->state_dir, 0700, e)) < 0)
			return rc;
		if ((rc = catalog_writer_lock(x->state_dir, x->wait_s, &x->lock_fd, e)) < 0)
			return rc;
	}
	if (writable != 2 && access(x->catalog_file, F_OK) != 0) {
		err_set(e, ERR_NOTFOUND, "no catalog at %s", x->catalog_file);
		err_hint(e, "run 'pgtimefs init --recover' to rebuild it from the newest copy in the zones");
		return ERR_NOTFOUND;
	}
	if (!writable) {
		/* a reader of a catalog left by an older pgtimefs upgrades it first, as a writer */
		int v = catalog_schema_version(x->catalog_file);
		if (v >= 0 && v < CATALOG_SCHEMA_VERSION) {
			int fd;
			catalog *up;
			if ((rc = catalog_writer_lock(x->state_dir, x->wait_s, &fd, e)) < 0)
				return rc;
			rc = catalog_open(x->catalog_file, 0, &up, e);
			catalog_close(up);
			catalog_writer_unlock(fd);
			if (rc < 0)
				return rc;
		}
	}
	if (!x->cat && (rc = catalog_open(x->catalog_file, !writable, &x->cat, e)) < 0)
		return rc;
	if (catalog_meta_get(x->cat, "repository", id, sizeof id) == 0 && strcmp(id, x->repo->cfg.id)) {
		err_set(e, ERR_CONFIG, "the catalog %s belongs to another repository (%.16s..., the zones hold %.16s...)",
			x->catalog_file, id, x->repo->cfg.id);
		err_hint(e, "use a state-dir of its own for each repository");
		return ERR_CONFIG;
	}
	if (writable && (rc = backup_wal_history_backfill(x->repo, x->cat, e)) < 0)
		return rc;
	return config_seal_state(x, writable, e);
}

void setup_done(struct ctx *x)
{
	catalog_close(x->cat);
	x->cat = NULL;
	if (x->lock_fd >= 0)
		catalog_writer_unlock(x->lock_fd);
	x->lock_fd = -1;
	repo_close(x->repo);
	x->repo = NULL;
	if (x->pass) {
		OPENSSL_cleanse(x->pass, x->passlen);
		free(x->pass);
		x->pass = NULL;
	}
	for (int i = 0; i < x->nzones; i++)
		free(x->zone_paths[i]);
	x->nzones = 0;
	config_free(x->cfg);
	x->cfg = NULL;
}
