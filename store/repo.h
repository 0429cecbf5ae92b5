/*
 * repo.h: a repository: its zones, its config, and the master key opened from a key file.
 *
 * Every zone holds `config` (plain INI: format version, repository id, chunker, zstd, pack
 * and KDF parameters; no secrets) and `keys/<key-id>` (key files, crypto/keyfile.h).
 * repo_open reads the config of every zone, tries the passphrase on the key files, cheapest
 * KDF first (a generated machine key opens in milliseconds even beside a stretched
 * passphrase's key file), then uses the first config whose MAC verifies; it needs only one
 * zone to be present. A repo is immutable once open and may be shared by threads (its key is
 * read-only); key add/remove are for one thread.
 */
#ifndef PGTIMEFS_STORE_REPO_H
#define PGTIMEFS_STORE_REPO_H

#include <stdint.h>

#include "chunker.h"
#include "crypto/crypto.h"
#include "crypto/keyfile.h"
#include "zones.h"

#define REPO_FORMAT 1

struct repo_config {
	uint32_t format;	  /* REPO_FORMAT */
	char id[65];		  /* 64 hex digits */
	struct chunker_params chunk;
	int zstd_level;		  /* default 1 */
	uint32_t pack_size;	  /* target pack size, default 16 MiB */
	int delta_blocks;	  /* store changed blocks as deltas against their previous version */
	struct keyfile_kdf kdf;	  /* for new key files */
};

struct repo {
	zones *z;
	/* called (from any thread; NULL: nothing) when a blob was read from a zone after earlier
	 * zones failed on it: the pack's name (hex), the failed zones' bits, the zone that served
	 * it (0-based) and what the failed zones said. Set by a reader that reports it (the mount
	 * logs it, so a degraded zone is seen before `check` runs). */
	void (*fallback)(void *ctx, const char *pack_hex, unsigned bad_zones, int zone, const char *why);
	void *fallback_ctx;
	struct repo_config cfg;
	crypto_key *key;
	char key_id[17]; /* the key file that opened it */
	uint8_t *key_file; /* that key file's bytes (the copy that opened), key_file_len of them */
	size_t key_file_len;
	int config_zone;     /* the zone (0-based) whose config is in use: the first that verifies */
	int config_unsealed; /* that config has no MAC line (an older pgtimefs): `repair` seals it */
	int config_old_mac;  /* that config's MAC is under the id key (an older pgtimefs): resealed */
	int config_stale;    /* zones whose config is sealed the old way or not at all */
	int foreign_zone;    /* the first zone (0-based) whose config names another repository, or -1:
			      * writers refuse to run (setup_catalog), readers read the others */
	int bare_zone;	     /* the first zone (0-based) without a readable config, or -1: an
			      * unmounted or emptied zone, or one that cannot be read. Writers refuse
			      * (setup_catalog) rather than fill it; `repair` refills it */
	char bare_why[200];  /* why bare_zone's config was not read */
};

/* Defaults for a new repository, with a fresh random id and gear seed. */
int repo_config_default(struct repo_config *cfg, struct err *e);
/* Parses a config file's text; ERR_CORRUPT with the reason on anything unexpected. */
int repo_config_parse(const char *text, size_t len, struct repo_config *cfg, struct err *e);
/* Formats cfg as the text of a config file into out (at least 1024 bytes), without its MAC. */
void repo_config_format(const struct repo_config *cfg, char *out, size_t cap);

/*
 * The config's authentication. A config's last line is `mac = <64 hex digits>`:
 * HMAC-SHA256 under the master key's config-MAC key (crypto_config_mac) of
 * REPO_CONFIG_MAC_PREFIX followed by every byte of the file before that line. The config
 * holds no secrets, but the chunker, the zstd level and the KDF of future key files are read
 * from it: someone who can write to a zone must not be able to change them unnoticed.
 * An older pgtimefs keyed that HMAC with the id key itself (see
 * crypto_config_mac for why that changed): such a config still opens, until the catalog has
 * seen one sealed with the derived key, and a writer reseals it (setup_catalog).
 *
 * repo_config_seal formats cfg with its MAC line (out: at least 1200 bytes);
 * repo_config_verify returns 0 when text's MAC verifies, REPO_CONFIG_OLD_MAC when it verifies
 * only as an older pgtimefs sealed it, ERR_NOTFOUND when it has no MAC line (written by a
 * pgtimefs before config MACs), ERR_AUTH when it does not verify.
 */
#define REPO_CONFIG_MAC_PREFIX "pgtimefs repository config\n"
#define REPO_CONFIG_OLD_MAC 1
void repo_config_seal(const struct repo_config *cfg, const crypto_key *k, char *out, size_t cap);
int repo_config_verify(const crypto_key *k, const char *text, size_t len);
/*
 * Reseals, with the current key, the config of every zone that holds the config in use
 * sealed the old way (REPO_CONFIG_OLD_MAC) or without a MAC: each written as repair writes
 * it (temporary name, fsync, rename, directory fsync). A zone whose config is missing,
 * damaged, altered or another repository's is left for `check` and `repair`. *resealed and
 * *failed count the zones; the error is the last zone's that failed.
 */
int repo_config_reseal(const struct repo *r, int *resealed, int *failed, struct err *e);

/*
 * Creates a repository in every zone: directories, config, a first key file sealed with
 * pass. ERR_EXISTS when any zone already holds a config. Nothing is opened.
 */
int repo_init(zones *z, const struct repo_config *cfg, const char *pass, size_t passlen, struct err *e);

/*
 * Opens the repository in z (taking ownership of z): ERR_NOTFOUND when no zone holds a
 * config, ERR_AUTH when no key file opens with pass, ERR_CORRUPT when every config that
 * parses fails its MAC. A config sealed by an older pgtimefs (REPO_CONFIG_OLD_MAC) is used
 * only when no zone's config verifies (config_old_mac is then set), and a config without a
 * MAC line only when no zone has either (config_unsealed is then set).
 */
int repo_open(zones *z, const char *pass, size_t passlen, struct repo **out, struct err *e);
void repo_close(struct repo *r);

/*
 * Adds a key file for the same master key under newpass, with the KDF parameters kdf (NULL:
 * the repository's); *id_out gets its id (17 bytes).
 */
int repo_key_add(struct repo *r, const char *newpass, size_t len, const struct keyfile_kdf *kdf, char id_out[17],
		 struct err *e);
/* Removes a key file from every zone; refuses to remove the last one. */
int repo_key_remove(struct repo *r, const char *id, struct err *e);
/* Key ids (sorted) found in any zone; free with zones_list_free. */
int repo_key_ids(struct repo *r, char ***ids, size_t *n, struct err *e);
/*
 * 1 when key file bytes kf open with pass but hold another master key than r's (no config of
 * r's verifies under it: a key file of an init cut short, or copied from another repository),
 * 0 otherwise (r's own master key, another passphrase, or damaged).
 */
int repo_key_foreign(const struct repo *r, const uint8_t *kf, size_t len, const char *pass, size_t passlen);

#endif
