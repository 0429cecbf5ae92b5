/* cmd_repo.c: init (and init --recover) and key add | list | remove. */
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/copy.h"
#include "common/json.h"
#include "common/timefmt.h"
#include "common/util.h"
#include "crypto/keyfile.h"
#include "tools.h"

/* a bad setting of the configuration for init: exit 1, the file named, nothing written */
static int config_error(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int config_error(struct ctx *x, const char *fmt, ...)
{
	struct err e;
	va_list ap;
	err_clear(&e);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	e.code = ERR_CONFIG;
	err_prefix(&e, "%s: [repository]", x->config_path);
	err_hint(&e, "correct it in the configuration; nothing was written");
	return report(&e);
}

static int init_recover(struct ctx *x)
{
	struct err e;
	uint64_t gen = 0;
	int zone = 0, rc;
	char skipped[ERR_MSG_MAX];
	err_clear(&e);
	if ((rc = setup_repo(x, &e)) < 0)
		return report(&e);
	if ((rc = util_mkdir_p(x->state_dir, 0700, &e)) < 0 ||
	    (rc = catalog_writer_lock(x->state_dir, x->wait_s, &x->lock_fd, &e)) < 0)
		return report(&e);
	if (access(x->catalog_file, F_OK) == 0) {
		err_set(&e, ERR_EXISTS, "a catalog already exists at %s", x->catalog_file);
		err_hint(&e, "move it (and its -wal and -shm files) away first if it is damaged, then run this again");
		return report(&e);
	}
	unlink(x->catalog_file);
	{
		/* a -wal left without its catalog may hold its newest commits: kept aside for
		 * salvage, never deleted (the -shm is only an index of it) */
		char p[2200], aside[2300];
		struct stat st;
		snprintf(p, sizeof p, "%s-wal", x->catalog_file);
		if (stat(p, &st) == 0 && st.st_size > 0) {
			snprintf(aside, sizeof aside, "%s-wal.orphaned-%lld-%ld", x->catalog_file, (long long)time(NULL),
				 (long)getpid());
			if (access(aside, F_OK) == 0 || rename(p, aside) < 0) {
				err_sys(&e, ERR_IO, "cannot move %s aside", p);
				return report(&e);
			}
			fprintf(stderr,
				"pgtimefs: %s had no catalog beside it; moved to %s (it only means something next to the "
				"catalog file it came from)\n",
				p, aside);
		} else {
			unlink(p);
		}
		snprintf(p, sizeof p, "%s-shm", x->catalog_file);
		unlink(p);
	}
	if ((rc = catalog_copy_recover(x->repo, x->catalog_file, &gen, &zone, skipped, sizeof skipped, &e)) < 0)
		return report(&e);
	if (skipped[0])
		fprintf(stderr,
			"pgtimefs: WARNING: newer catalog copies could not be used: %s. The catalog recovered is "
			"generation %" PRIu64 ": what was recorded after it (snapshots, archived WAL) is not in it\n",
			skipped, gen);
	/* the recovered catalog checks the config's seal as any writer does, and raises its record
	 * of it when the zones hold a better seal than the copy knew */
	if ((rc = setup_catalog(x, 1, &e)) < 0) {
		err_prefix(&e, "recovered the catalog from zone %d (generation %" PRIu64 "), then stopped", zone + 1, gen);
		if (x->repo && x->repo->bare_zone >= 0)
			err_hint(&e, "the catalog is in place: run 'pgtimefs repair' to refill zone %d (not init --recover "
				     "again)",
				 x->repo->bare_zone + 1);
		return report(&e);
	}
	if (x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "recovered");
		json_bool(&j, 1);
		json_key(&j, "generation");
		json_int(&j, (int64_t)gen);
		json_key(&j, "zone");
		json_int(&j, zone + 1);
		json_obj_end(&j);
		json_end(&j);
	} else if (!x->quiet) {
		printf("recovered the catalog from zone %d (%s), generation %" PRIu64 "\n", zone + 1,
		       zones_path(x->repo->z, zone), gen);
	}
	return 0;
}

int cmd_init(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct repo_config cfg;
	zones *z;
	const char *v;
	int rc;
	err_clear(&e);
	if (argc == 2 && !strcmp(argv[1], "--recover")) {
		if ((rc = setup_config(x, &e)) < 0)
			return report(&e);
		return init_recover(x);
	}
	if (argc != 1)
		return usage_error("usage: pgtimefs init [--recover]");
	if ((rc = setup_passphrase(x, &e)) < 0)
		return report(&e);
	if (access(x->catalog_file, F_OK) == 0) {
		err_set(&e, ERR_EXISTS, "the state directory already holds a catalog (%s)", x->catalog_file);
		err_hint(&e, "a new repository needs a new state-dir");
		return report(&e);
	}
	if ((rc = repo_config_default(&cfg, &e)) < 0)
		return report(&e);
	/* a few parameters may be chosen at creation time */
	if ((v = config_get(x->cfg, "repository", "kdf-log2n"))) {
		long n;
		if (tools_parse_long(v, 10, 22, &n) < 0)
			return config_error(x, "kdf-log2n is 10..22 (scrypt N = 2^kdf-log2n), not '%s'", v);
		cfg.kdf.log2n = (uint32_t)n;
	}
	if ((v = config_get(x->cfg, "repository", "block-size"))) {
		uint64_t b;
		if (config_parse_size(v, &b) < 0 || b > (8u << 20))
			return config_error(x, "bad block-size '%s'", v);
		cfg.chunk.block_size = (uint32_t)b;
	}
	if ((v = config_get(x->cfg, "repository", "zstd-level"))) {
		long n;
		if (tools_parse_long(v, -7, 19, &n) < 0)
			return config_error(x, "zstd-level is -7..19, not '%s'", v);
		cfg.zstd_level = (int)n;
	}
	if ((v = config_get(x->cfg, "repository", "delta-blocks"))) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			return config_error(x, "delta-blocks is 0 or 1, not '%s'", v);
		cfg.delta_blocks = atoi(v);
	}
	if (!chunker_params_valid(&cfg.chunk))
		return config_error(x, "block-size must be a multiple of 8 KiB up to 8 MiB");
	{
		/* what init writes must parse back: check the parameters before touching any zone */
		char text[2048];
		struct repo_config back;
		repo_config_format(&cfg, text, sizeof text);
		if (repo_config_parse(text, strlen(text), &back, &e) < 0) {
			err_prefix(&e, "%s", x->config_path);
			err_hint(&e, "zstd-level is -7..19, kdf-log2n 10..22; nothing was written");
			e.code = ERR_CONFIG;
			return report(&e);
		}
	}
	z = zones_new((const char *const *)x->zone_paths, x->nzones);
	rc = repo_init(z, &cfg, x->pass, x->passlen, &e);
	zones_free(z);
	if (rc < 0)
		return report(&e);
	if ((rc = util_mkdir_p(x->state_dir, 0700, &e)) < 0 || (rc = setup_catalog(x, 2, &e)) < 0 ||
	    (rc = catalog_meta_set(x->cat, "repository", cfg.id, &e)) < 0)
		return report(&e);
	if (x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "repository");
		json_str(&j, cfg.id);
		json_key(&j, "zones");
		json_int(&j, x->nzones);
		json_key(&j, "key");
		json_str(&j, x->repo->key_id);
		json_obj_end(&j);
		json_end(&j);
	} else if (!x->quiet) {
		printf("created repository %.16s in %d zone%s (key %s)\n", cfg.id, x->nzones, x->nzones == 1 ? "" : "s",
		       x->repo->key_id);
	}
	return 0;
}

static int read_new_pass(char **pass, size_t *len, struct err *e)
{
	int rc = read_secret(getenv("PGTIMEFS_NEW_PASSPHRASE_FILE"), getenv("PGTIMEFS_NEW_PASSPHRASE"),
			     "new passphrase", pass, len, e);
	if (rc < 0) {
		err_hint(e, "key add takes the new passphrase from PGTIMEFS_NEW_PASSPHRASE_FILE or PGTIMEFS_NEW_PASSPHRASE");
		e->code = ERR_USAGE;
	}
	return rc < 0 ? ERR_USAGE : 0;
}

/*
 * The repository opened for a key change, under the writer lock (two removes at once could
 * otherwise each see the other's key and remove the last two together). Where this state directory
 * has a catalog, it is opened as a writer's, so the config's seal is checked against what the
 * catalog remembers (and resealed) as for any writer: `key add` makes the new key file with
 * the config's KDF settings. Without a catalog there is nothing to check it against, and
 * `key add` then wants a config sealed with the current key.
 */
static int key_setup(struct ctx *x, int adding, struct err *e)
{
	int rc;
	if ((rc = setup_config(x, e)) < 0)
		return rc;
	if (access(x->catalog_file, F_OK) == 0)
		return setup_catalog(x, 1, e);
	if ((rc = setup_repo(x, e)) < 0 || (rc = setup_writer_zones(x, 0, e)) < 0 ||
	    (rc = util_mkdir_p(x->state_dir, 0700, e)) < 0 ||
	    (rc = catalog_writer_lock(x->state_dir, x->wait_s, &x->lock_fd, e)) < 0)
		return rc;
	if (adding && (x->repo->config_unsealed || x->repo->config_old_mac)) {
		err_set(e, ERR_CORRUPT, "the repository config (zone %d) is %s, and there is no catalog here to check it "
					"against: a new key file would take its KDF settings on trust",
			x->repo->config_zone + 1, x->repo->config_unsealed ? "not sealed" : "sealed with the old key");
		err_hint(e, "add the key where the repository's catalog is (state-dir), or run 'pgtimefs init --recover' "
			    "here first");
		return ERR_CORRUPT;
	}
	return 0;
}

/* how many zones hold key file id */
static int key_zones(struct ctx *x, const char *id)
{
	char rel[64], full[4200];
	int n = 0;
	snprintf(rel, sizeof rel, "keys/%.40s", id);
	for (int i = 0; i < zones_count(x->repo->z); i++) {
		zones_file(x->repo->z, i, rel, full, sizeof full);
		n += access(full, F_OK) == 0;
	}
	return n;
}



/*
 * key add --generate FILE: a random secret, written to FILE (created, never overwritten, 0600,
 * made durable) before its key file exists, so a failure leaves either nothing or a secret
 * file without a key (removed again here), never a key nobody can open.
 */
static int key_generate(struct ctx *x, const char *file, char id[17], struct err *e)
{
	uint8_t raw[KEYFILE_SECRET_LEN];
	char hex[2 * KEYFILE_SECRET_LEN + 2], dir[4096];
	struct keyfile_kdf kdf;
	int fd, rc;
	if ((rc = crypto_random(raw, sizeof raw, e)) < 0)
		return rc;
	hex_encode(raw, sizeof raw, hex);
	OPENSSL_cleanse(raw, sizeof raw);
	hex[2 * KEYFILE_SECRET_LEN] = '\n';
	hex[2 * KEYFILE_SECRET_LEN + 1] = '\0';
	if ((fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		rc = err_set(e, errno == EEXIST ? ERR_EXISTS : ERR_IO, "cannot create the secret file %s: %s", file,
			     strerror(errno));
		if (errno == EEXIST)
			err_hint(e, "key add --generate never overwrites a file: name a new one");
		OPENSSL_cleanse(hex, sizeof hex);
		return rc;
	}
	if (util_write_all(fd, hex, strlen(hex)) < 0 || fsync(fd) < 0) {
		rc = err_set(e, ERR_IO, "writing the secret file %s: %s", file, strerror(errno));
		close(fd);
		unlink(file);
		OPENSSL_cleanse(hex, sizeof hex);
		return rc;
	}
	close(fd);
	snprintf(dir, sizeof dir, "%s", file);
	{
		char *slash = strrchr(dir, '/');
		if (!slash)
			snprintf(dir, sizeof dir, ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
	}
	keyfile_kdf_generated(&kdf);
	if ((rc = util_fsync_dir(dir, e)) < 0 ||
	    (rc = repo_key_add(x->repo, hex, 2 * KEYFILE_SECRET_LEN, &kdf, id, e)) < 0)
		unlink(file);
	OPENSSL_cleanse(hex, sizeof hex);
	return rc;
}

int cmd_key(struct ctx *x, int argc, char **argv)
{
	struct err e;
	int rc;
	err_clear(&e);
	if (argc < 2)
		return usage_error("usage: pgtimefs key add [--generate FILE] | list | remove ID");
	if (!strcmp(argv[1], "list") && argc == 2) {
		char **ids;
		size_t n;
		struct json j;
		if ((rc = setup_repo(x, &e)) < 0 || (rc = repo_key_ids(x->repo, &ids, &n, &e)) < 0)
			return report(&e);
		if (x->json) {
			json_init(&j, stdout);
			json_arr(&j);
		}
		for (size_t i = 0; i < n; i++) {
			char rel[64], when[TIMEFMT_MAX] = "?";
			uint8_t *kf;
			size_t kl;
			snprintf(rel, sizeof rel, "keys/%.40s", ids[i]);
			if (zones_get_small(x->repo->z, rel, 4096, &kf, &kl, NULL, NULL) == 0) {
				timefmt_print(keyfile_created(kf, kl) * 1000000, 0, when);
				free(kf);
			}
			if (x->json) {
				json_obj(&j);
				json_key(&j, "id");
				json_str(&j, ids[i]);
				json_key(&j, "created");
				json_str(&j, when);
				json_key(&j, "current");
				json_bool(&j, !strcmp(ids[i], x->repo->key_id));
				json_obj_end(&j);
			} else {
				printf("%s  %s%s\n", ids[i], when, !strcmp(ids[i], x->repo->key_id) ? "  (opened this time)" : "");
			}
		}
		if (x->json) {
			json_arr_end(&j);
			json_end(&j);
		}
		zones_list_free(ids, n);
		return 0;
	}
	if (!strcmp(argv[1], "add") && argc == 4 && !strcmp(argv[2], "--generate")) {
		char id[17];
		struct json j;
		if ((rc = key_setup(x, 1, &e)) < 0 || (rc = key_generate(x, argv[3], id, &e)) < 0)
			return report(&e);
		if (x->json) {
			json_init(&j, stdout);
			json_obj(&j);
			json_key(&j, "id");
			json_str(&j, id);
			json_key(&j, "secret_file");
			json_str(&j, argv[3]);
			json_obj_end(&j);
			json_end(&j);
		} else if (!x->quiet) {
			printf("added key %s; its secret is in %s (passphrase-file = %s)\n", id, argv[3], argv[3]);
		}
		return 0;
	}
	if (!strcmp(argv[1], "add") && argc == 2) {
		char *np = NULL, id[17];
		size_t nl = 0;
		if ((rc = setup_repo(x, &e)) < 0 || (rc = read_new_pass(&np, &nl, &e)) < 0)
			return report(&e);
		if ((rc = key_setup(x, 1, &e)) < 0) {
			OPENSSL_cleanse(np, nl);
			free(np);
			return report(&e);
		}
		rc = repo_key_add(x->repo, np, nl, NULL, id, &e);
		OPENSSL_cleanse(np, nl);
		free(np);
		if (rc < 0)
			return report(&e);
		if (x->json)
			printf("{\"id\":\"%s\"}\n", id);
		else if (!x->quiet)
			printf("added key %s\n", id);
		return 0;
	}
	if (!strcmp(argv[1], "remove") && argc == 3) {
		char before[4096] = "";
		int held;
		if (strlen(argv[2]) != 16 || strspn(argv[2], "0123456789abcdef") != 16)
			return usage_error("key remove: '%s' is not a key id (16 hex digits, as 'pgtimefs key list' shows them)",
					   argv[2]);
		if ((rc = key_setup(x, 0, &e)) < 0)
			return report(&e);
		/* remembered first, so that a copy left by a removal cut short, or coming back with a
		 * zone, is removed by repair, not spread (the catalog copies carry it to init --recover);
		 * only an id some zone holds */
		held = key_zones(x, argv[2]);
		if (x->cat && held > 0) {
			char removed[4096] = "", add[64];
			catalog_meta_get(x->cat, "removed-keys", removed, sizeof removed);
			snprintf(before, sizeof before, "%s", removed);
			snprintf(add, sizeof add, "%s%.40s", removed[0] ? " " : "", argv[2]);
			if (strlen(removed) + strlen(add) >= sizeof removed)
				fprintf(stderr, "pgtimefs: warning: the catalog's list of removed keys is full: 'pgtimefs check' "
						"will not name a copy of key %s that comes back\n",
					argv[2]);
			else
				strcat(removed, add);
			if ((rc = catalog_meta_set(x->cat, "removed-keys", removed, &e)) < 0) {
				err_prefix(&e, "key %s cannot be recorded as removed; nothing was removed", argv[2]);
				return report(&e);
			}
		}
		if ((rc = repo_key_remove(x->repo, argv[2], &e)) < 0) {
			/* no zone lost it (refused, or the first zone failed): not recorded either */
			if (x->cat && key_zones(x, argv[2]) == held) {
				struct err ue;
				err_clear(&ue);
				catalog_meta_set(x->cat, "removed-keys", before, &ue);
			}
			return report(&e);
		}
		if (!x->quiet && !x->json)
			printf("removed key %s\n", argv[2]);
		return 0;
	}
	return usage_error("usage: pgtimefs key add [--generate FILE] | list | remove ID");
}
