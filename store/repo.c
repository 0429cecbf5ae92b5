#include "repo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/util.h"

int repo_config_default(struct repo_config *cfg, struct err *e)
{
	uint8_t id[32];
	memset(cfg, 0, sizeof *cfg);
	cfg->format = REPO_FORMAT;
	if (crypto_random(id, sizeof id, e) < 0)
		return e ? e->code : ERR_CRYPTO;
	hex_encode(id, 32, cfg->id);
	chunker_params_default(&cfg->chunk);
	if (crypto_random(&cfg->chunk.seed, sizeof cfg->chunk.seed, e) < 0)
		return e ? e->code : ERR_CRYPTO;
	cfg->zstd_level = -1; /* measured: ~4% less CPU than level 1 for ~1% more bytes on 64 KiB chunks */
	cfg->pack_size = 16u << 20;
	cfg->delta_blocks = 1; /* measured: docs/design-notes.md, "Delta blocks" */
	keyfile_kdf_default(&cfg->kdf);
	return 0;
}

void repo_config_format(const struct repo_config *cfg, char *out, size_t cap)
{
	snprintf(out, cap,
		 "; pgtimefs repository configuration: no secrets here\n"
		 "[repository]\n"
		 "format = %" PRIu32 "\n"
		 "id = %s\n"
		 "block-size = %" PRIu32 "\n"
		 "cdc-min = %" PRIu32 "\n"
		 "cdc-avg = %" PRIu32 "\n"
		 "cdc-max = %" PRIu32 "\n"
		 "cdc-seed = %016" PRIx64 "\n"
		 "zstd-level = %d\n"
		 "pack-size = %" PRIu32 "\n"
		 "delta-blocks = %d\n"
		 "kdf = scrypt\n"
		 "kdf-log2n = %" PRIu32 "\n"
		 "kdf-r = %" PRIu32 "\n"
		 "kdf-p = %" PRIu32 "\n",
		 cfg->format, cfg->id, cfg->chunk.block_size, cfg->chunk.cdc_min, cfg->chunk.cdc_avg,
		 cfg->chunk.cdc_max, cfg->chunk.seed, cfg->zstd_level, cfg->pack_size, cfg->delta_blocks, cfg->kdf.log2n, cfg->kdf.r,
		 cfg->kdf.p);
}

/* mac = HMAC(config-MAC key, prefix || body), or with old set HMAC(id key, ...) as an older
 * pgtimefs wrote it, into mac */
static void config_mac(const crypto_key *k, int old, const char *body, size_t len, uint8_t mac[32])
{
	size_t plen = strlen(REPO_CONFIG_MAC_PREFIX);
	uint8_t *buf = xmalloc(plen + len + 1);
	memcpy(buf, REPO_CONFIG_MAC_PREFIX, plen);
	memcpy(buf + plen, body, len);
	if (old)
		crypto_blob_id(k, buf, plen + len, mac);
	else
		crypto_config_mac(k, buf, plen + len, mac);
	free(buf);
}

void repo_config_seal(const struct repo_config *cfg, const crypto_key *k, char *out, size_t cap)
{
	char hex[65];
	uint8_t mac[32];
	size_t n;
	repo_config_format(cfg, out, cap);
	n = strlen(out);
	config_mac(k, 0, out, n, mac);
	hex_encode(mac, sizeof mac, hex);
	snprintf(out + n, cap - n, "mac = %s\n", hex);
}

int repo_config_verify(const crypto_key *k, const char *text, size_t len)
{
	char got[65];
	size_t end = len, start;
	uint8_t a[32], b[32];
	/* the last line, without its newline */
	while (end && (text[end - 1] == '\n' || text[end - 1] == '\r'))
		end--;
	start = end;
	while (start && text[start - 1] != '\n')
		start--;
	if (end - start != 6 + 64 || memcmp(text + start, "mac = ", 6))
		return ERR_NOTFOUND;
	memcpy(got, text + start + 6, 64);
	got[64] = '\0';
	if (hex_decode(got, a, 32) < 0)
		return ERR_AUTH;
	config_mac(k, 0, text, start, b);
	if (!CRYPTO_memcmp(a, b, 32))
		return 0;
	config_mac(k, 1, text, start, b);
	return CRYPTO_memcmp(a, b, 32) ? ERR_AUTH : REPO_CONFIG_OLD_MAC;
}

static int get_u64(const struct config *c, const char *key, uint64_t min, uint64_t max, int base, uint64_t *out,
		   struct err *e)
{
	const char *v = config_get(c, "repository", key);
	char *end;
	unsigned long long x;
	if (!v || !*v)
		return err_set(e, ERR_CORRUPT, "repository config lacks '%s'", key);
	errno = 0;
	x = strtoull(v, &end, base);
	if (*end || errno == ERANGE || x < min || x > max)
		return err_set(e, ERR_CORRUPT, "repository config has a bad '%s' (%s)", key, v);
	*out = x;
	return 0;
}

int repo_config_parse(const char *text, size_t len, struct repo_config *cfg, struct err *e)
{
	struct config *c = NULL;
	uint64_t v;
	const char *s;
	int rc = config_parse(text, len, "repository config", &c, e);
	memset(cfg, 0, sizeof *cfg);
	if (rc < 0) {
		if (e)
			e->code = ERR_CORRUPT;
		return ERR_CORRUPT;
	}
#define U(key, min, max, dst)                                      \
	do {                                                       \
		if ((rc = get_u64(c, key, min, max, 10, &v, e)) < 0) \
			goto out;                                  \
		dst = (__typeof__(dst))v;                              \
	} while (0)
	U("format", 1, 1000, cfg->format);
	if (cfg->format != REPO_FORMAT) {
		rc = err_set(e, ERR_CORRUPT, "repository format %u is not supported by this pgtimefs (it reads %d)",
			     cfg->format, REPO_FORMAT);
		goto out;
	}
	s = config_get(c, "repository", "id");
	if (!s || strlen(s) != 64 || hex_decode(s, (uint8_t[32]){0}, 32) < 0) {
		rc = err_set(e, ERR_CORRUPT, "repository config has no valid id");
		goto out;
	}
	memcpy(cfg->id, s, 65);
	U("block-size", 8192, 8u << 20, cfg->chunk.block_size);
	U("cdc-min", 64, 8u << 20, cfg->chunk.cdc_min);
	U("cdc-avg", 64, 8u << 20, cfg->chunk.cdc_avg);
	U("cdc-max", 64, 8u << 20, cfg->chunk.cdc_max);
	if ((rc = get_u64(c, "cdc-seed", 0, UINT64_MAX, 16, &cfg->chunk.seed, e)) < 0)
		goto out;
	{
		/* zstd's fast levels are negative: -7..-1, then 1..19 (0 means zstd's default, 3) */
		const char *zl = config_get(c, "repository", "zstd-level");
		char *end;
		long lv = zl ? strtol(zl, &end, 10) : 0;
		if (!zl || !*zl || *end || lv < -7 || lv > 19) {
			rc = err_set(e, ERR_CORRUPT, "repository config has a bad 'zstd-level' (%s): -7..19", zl ? zl : "missing");
			goto out;
		}
		cfg->zstd_level = (int)lv;
	}
	U("pack-size", 1u << 16, 1u << 29, cfg->pack_size);
	/* written since delta blocks exist: a repository without the key has none */
	if (config_get(c, "repository", "delta-blocks"))
		U("delta-blocks", 0, 1, cfg->delta_blocks);
	U("kdf-log2n", 10, 22, cfg->kdf.log2n);
	U("kdf-r", 1, 32, cfg->kdf.r);
	U("kdf-p", 1, 16, cfg->kdf.p);
#undef U
	if (!chunker_params_valid(&cfg->chunk)) {
		rc = err_set(e, ERR_CORRUPT, "repository config has inconsistent chunker parameters");
		goto out;
	}
	rc = 0;
out:
	config_free(c);
	return rc;
}

static int new_key_id(char id[17], struct err *e)
{
	uint8_t raw[8];
	if (crypto_random(raw, sizeof raw, e) < 0)
		return e ? e->code : ERR_CRYPTO;
	hex_encode(raw, 8, id);
	return 0;
}

static int write_key(zones *z, const crypto_key *k, const struct keyfile_kdf *kdf, const char *pass, size_t len,
		     char id[17], struct err *e)
{
	uint8_t kf[KEYFILE_LEN];
	char rel[64];
	int rc;
	if ((rc = new_key_id(id, e)) < 0)
		return rc;
	if ((rc = keyfile_create(k, pass, len, kdf, util_now_us() / 1000000, kf, e)) < 0)
		return rc;
	snprintf(rel, sizeof rel, "keys/%s", id);
	if ((rc = zones_put(z, rel, kf, sizeof kf, e)) < 0)
		return rc;
	return zones_sync(z, e);
}

int repo_init(zones *z, const struct repo_config *cfg, const char *pass, size_t passlen, struct err *e)
{
	char text[2048], id[17];
	crypto_key *k = NULL;
	int rc;
	for (int i = 0; i < zones_count(z); i++) {
		char p[4096];
		struct stat st;
		zones_file(z, i, "config", p, sizeof p);
		/* a config that cannot be read (permissions, I/O) is still a repository's */
		int lr = lstat(p, &st);
		if (lr == 0 || errno != ENOENT) {
			if (lr < 0)
				err_sys(e, ERR_EXISTS, "zone %d (%s): cannot tell whether it holds a repository", i + 1,
					zones_path(z, i));
			else
				err_set(e, ERR_EXISTS, "zone %d (%s) already holds a repository", i + 1, zones_path(z, i));
			err_hint(e, "use an empty directory for every zone, or keep the existing repository");
			return ERR_EXISTS;
		}
	}
	for (int i = 0; i < zones_count(z); i++) {
		static const char *subs[] = {"keys", "packs", "catalog"};
		/* files of a repository without its config: a config lost, or an init cut short */
		for (size_t j = 0; j < 3; j++) {
			char **names;
			size_t n;
			int rc2 = zones_list(z, i, subs[j], &names, &n, NULL);
			if (rc2 == ERR_NOTFOUND)
				continue;
			if (rc2 == 0)
				zones_list_free(names, n);
			if (rc2 < 0 || n > 0) {
				err_set(e, ERR_EXISTS, "zone %d (%s) has no config but its %s/ %s", i + 1, zones_path(z, i),
					subs[j], rc2 < 0 ? "cannot be read" : "holds files of a repository");
				err_hint(e, "if the zone is a repository whose config was lost, 'pgtimefs repair' restores it "
					    "from another zone; if an earlier init was cut short, empty every zone and run init "
					    "again");
				return ERR_EXISTS;
			}
		}
	}
	if ((rc = zones_create(z, e)) < 0)
		return rc;
	if (!(k = crypto_key_new_random(e)))
		return e ? e->code : ERR_CRYPTO;
	if ((rc = write_key(z, k, &cfg->kdf, pass, passlen, id, e)) < 0)
		goto out;
	repo_config_seal(cfg, k, text, sizeof text);
	if ((rc = zones_put(z, "config", text, strlen(text), e)) < 0)
		goto out;
	rc = zones_sync(z, e);
out:
	crypto_key_free(k);
	return rc;
}

int repo_config_reseal(const struct repo *r, int *resealed, int *failed, struct err *e)
{
	char want[2048], sealed[2048], path[4200];
	int rc = 0;
	*resealed = *failed = 0;
	repo_config_format(&r->cfg, want, sizeof want);
	repo_config_seal(&r->cfg, r->key, sealed, sizeof sealed);
	for (int i = 0; i < zones_count(r->z); i++) {
		struct repo_config cfg;
		char got[2048];
		uint8_t *text;
		size_t len;
		int v, zrc;
		zones_file(r->z, i, "config", path, sizeof path);
		if (util_read_small(path, 65536, &text, &len, NULL) < 0)
			continue; /* missing or unreadable: `repair` */
		v = repo_config_verify(r->key, (const char *)text, len);
		zrc = repo_config_parse((const char *)text, len, &cfg, NULL);
		free(text);
		if ((v != REPO_CONFIG_OLD_MAC && v != ERR_NOTFOUND) || zrc < 0)
			continue; /* current, altered or damaged: nothing to do here, or `check` says it */
		repo_config_format(&cfg, got, sizeof got);
		if (strcmp(got, want))
			continue; /* another config than the one in use: `check` names it */
		if ((zrc = zones_put_one(r->z, i, "config", sealed, strlen(sealed), e)) < 0) {
			(*failed)++;
			rc = zrc;
			continue;
		}
		(*resealed)++;
	}
	if (*resealed) {
		struct err se;
		int src;
		err_clear(&se);
		if ((src = zones_sync(r->z, &se)) < 0) { /* not durable: none counts as resealed */
			*failed += *resealed;
			*resealed = 0;
			if (e)
				*e = se;
			rc = src;
		}
	}
	return rc;
}

struct keycand {
	uint8_t *buf;
	size_t len;
	uint64_t cost;
	size_t order;
	char id[17];
};

static int keycand_cmp(const void *a, const void *b)
{
	const struct keycand *x = a, *y = b;
	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* 1 when one of the zones' configs (text[i] non-NULL) verifies under k, or has no MAC yet */
static int key_fits(const crypto_key *k, uint8_t *const *text, const size_t *len, int n)
{
	for (int i = 0; i < n; i++)
		if (text[i] && repo_config_verify(k, (const char *)text[i], len[i]) != ERR_AUTH)
			return 1;
	return 0;
}

/* makes k (opened from candidate c, whose bytes it takes) the repository's key */
static void take_key(struct repo *r, crypto_key *k, struct keycand *c)
{
	r->key = k;
	snprintf(r->key_id, sizeof r->key_id, "%s", c->id);
	r->key_file = c->buf; /* kept: `check` tells good copies by it */
	r->key_file_len = c->len;
	c->buf = NULL;
}

int repo_open(zones *z, const char *pass, size_t passlen, struct repo **out, struct err *e)
{
	struct repo *r = xcalloc(1, sizeof *r);
	uint8_t *text[ZONES_MAX] = {NULL};
	size_t len[ZONES_MAX], tried = 0;
	int zone, rc, corrupt = 0, parsed = 0, unreadable = -1;
	char unread_why[300] = "";
	r->foreign_zone = r->bare_zone = -1;
	r->z = z;
	*out = NULL;
	rc = ERR_NOTFOUND;
	/* every zone's config that parses; which one is used is decided once the key is open */
	for (zone = 0; zone < zones_count(z); zone++) {
		char full[4096];
		struct err pe;
		int prc;
		zones_file(z, zone, "config", full, sizeof full);
		err_clear(&pe);
		if ((prc = util_read_small(full, 64 * 1024, &text[zone], &len[zone], &pe)) < 0) {
			if (r->bare_zone < 0) {
				r->bare_zone = zone;
				snprintf(r->bare_why, sizeof r->bare_why, "%s",
					 prc == ERR_NOTFOUND ? "holds no repository config" : pe.msg);
			}
			if (prc != ERR_NOTFOUND && unreadable < 0) {
				unreadable = zone;
				snprintf(unread_why, sizeof unread_why, "%s", pe.msg);
			}
			continue;
		}
		err_clear(&pe);
		prc = repo_config_parse((const char *)text[zone], len[zone], &r->cfg, &pe);
		if (prc == 0) {
			parsed++;
			continue;
		}
		free(text[zone]);
		text[zone] = NULL;
		if (rc == ERR_NOTFOUND) { /* the first zone's reason is the one reported */
			rc = prc;
			if (e) {
				*e = pe;
				err_prefix(e, "zone %d", zone + 1);
			}
		}
	}
	if (parsed)
		rc = 0;
	if (rc == ERR_NOTFOUND && unreadable >= 0) {
		/* not "no repository": init must not be suggested over a config it cannot read */
		err_set(e, ERR_IO, "no zone's repository config can be read: zone %d: %s", unreadable + 1, unread_why);
		err_hint(e, "check the zones' permissions and disks (pgtimefs runs as the user that made them); do not "
			    "run 'pgtimefs init' over them");
		rc = ERR_IO;
		goto fail;
	}
	if (rc == ERR_NOTFOUND) {
		err_set(e, ERR_NOTFOUND, "no repository in any of the %d zones (no config file)", zones_count(z));
		err_hint(e, "run 'pgtimefs init' to create one, or check the zones in the configuration");
		goto fail;
	}
	if (rc < 0)
		goto fail;
	/* every key file of every zone, cheapest KDF first; a copy identical to one tried is skipped */
	{
		struct keycand *kc = NULL;
		size_t nk = 0;
		long fallback = -1;
		crypto_key *k, *fallback_key = NULL;
		for (int i = 0; i < zones_count(z); i++) {
			char **ids;
			size_t n;
			if (zones_list(z, i, "keys", &ids, &n, NULL) < 0)
				continue;
			for (size_t j = 0; j < n; j++) {
				char rel[300], full[4096];
				uint8_t *kf;
				size_t kl;
				snprintf(rel, sizeof rel, "keys/%s", ids[j]);
				zones_file(z, i, rel, full, sizeof full);
				if (util_read_small(full, 4096, &kf, &kl, NULL) < 0)
					continue;
				kc = xrealloc(kc, (nk + 1) * sizeof *kc);
				kc[nk].buf = kf;
				kc[nk].len = kl;
				kc[nk].cost = keyfile_cost(kf, kl);
				kc[nk].order = nk;
				snprintf(kc[nk].id, sizeof kc[nk].id, "%.16s", ids[j]);
				nk++;
			}
			zones_list_free(ids, n);
		}
		if (nk)
			qsort(kc, nk, sizeof *kc, keycand_cmp);
		for (size_t j = 0; j < nk; j++) {
			struct err ke;
			int seen = 0;
			if (r->key)
				break;
			for (size_t m = 0; m < j && !seen; m++)
				seen = kc[m].len == kc[j].len && !memcmp(kc[m].buf, kc[j].buf, kc[j].len);
			if (seen)
				continue;
			tried++;
			rc = keyfile_open(kc[j].buf, kc[j].len, pass, passlen, &k, &ke);
			if (rc == ERR_CORRUPT)
				corrupt++;
			if (rc < 0)
				continue;
			/* the passphrase may open a key file of another master key (an init cut short,
			 * a key file copied from another repository): the key is the one a config
			 * verifies under. Without one, the first that opened is used, to say which
			 * configs are altered. */
			if (!key_fits(k, text, len, zones_count(z)) && fallback < 0) {
				fallback = (long)j;
				fallback_key = k;
				continue;
			}
			if (!key_fits(k, text, len, zones_count(z))) {
				crypto_key_free(k);
				continue;
			}
			take_key(r, k, &kc[j]);
		}
		if (!r->key && fallback >= 0)
			take_key(r, fallback_key, &kc[fallback]);
		else
			crypto_key_free(fallback_key);
		for (size_t j = 0; j < nk; j++)
			free(kc[j].buf);
		free(kc);
	}
	if (!r->key) {
		if (tried == 0) {
			err_set(e, ERR_NOTFOUND, "the repository has no key file in any zone");
			err_hint(e, "restore a keys/ directory from a zone copy; without a key the data cannot be read");
			rc = ERR_NOTFOUND;
		} else if ((size_t)corrupt == tried) {
			err_set(e, ERR_CORRUPT, "none of the %zu key files is readable (all damaged)", tried);
			err_hint(e, "copy keys/ from a healthy zone; 'pgtimefs repair' does this when one zone is good");
			rc = ERR_CORRUPT;
		} else {
			err_set(e, ERR_AUTH, "wrong passphrase: none of the %zu key files opens with it", tried);
			err_hint(e, "check passphrase-file in the configuration or PGTIMEFS_PASSPHRASE");
			rc = ERR_AUTH;
		}
		goto fail;
	}
	{
		int use = -1, old = -1, unsealed = -1, altered = 0;
		for (zone = 0; zone < zones_count(z); zone++) {
			if (!text[zone])
				continue;
			rc = repo_config_verify(r->key, (const char *)text[zone], len[zone]);
			if (rc == 0 && use < 0)
				use = zone;
			else if (rc == REPO_CONFIG_OLD_MAC && old < 0)
				old = zone;
			else if (rc == ERR_NOTFOUND && unsealed < 0)
				unsealed = zone;
			else if (rc == ERR_AUTH)
				altered++;
			if (rc == REPO_CONFIG_OLD_MAC || rc == ERR_NOTFOUND)
				r->config_stale++;
		}
		if (use < 0 && old >= 0) {
			use = old;
			r->config_old_mac = 1;
		}
		if (use < 0 && unsealed >= 0) {
			use = unsealed;
			r->config_unsealed = 1;
		}
		if (use < 0) {
			err_set(e, ERR_CORRUPT, "the repository config fails its authentication in %d zone%s: it was altered",
				altered, altered == 1 ? "" : "s");
			err_hint(e, "copy the config file from a zone or a backup you trust, then run 'pgtimefs check'");
			rc = ERR_CORRUPT;
			goto fail;
		}
		r->config_zone = use;
		if ((rc = repo_config_parse((const char *)text[use], len[use], &r->cfg, e)) < 0)
			goto fail;
		/* another repository's zone: a config naming another id, in a zone that does not hold
		 * the key file that opened this one (a config whose id line was damaged is still in a
		 * zone of ours, with our key file: repair rewrites it) */
		for (zone = 0; zone < zones_count(z) && r->foreign_zone < 0; zone++) {
			struct repo_config other;
			char rel[64], full[4096];
			uint8_t *kf = NULL;
			size_t kl = 0;
			int ours;
			if (!text[zone] || repo_config_parse((const char *)text[zone], len[zone], &other, NULL) < 0 ||
			    !strcmp(other.id, r->cfg.id))
				continue;
			snprintf(rel, sizeof rel, "keys/%s", r->key_id);
			zones_file(z, zone, rel, full, sizeof full);
			ours = util_read_small(full, 4096, &kf, &kl, NULL) == 0 && kl == r->key_file_len &&
			       !memcmp(kf, r->key_file, kl);
			free(kf);
			if (!ours)
				r->foreign_zone = zone;
		}
	}
	for (zone = 0; zone < ZONES_MAX; zone++)
		free(text[zone]);
	*out = r;
	return 0;
fail:
	for (zone = 0; zone < ZONES_MAX; zone++)
		free(text[zone]);
	r->z = NULL; /* caller keeps z on failure */
	repo_close(r);
	return rc;
}

void repo_close(struct repo *r)
{
	if (!r)
		return;
	crypto_key_free(r->key);
	free(r->key_file);
	zones_free(r->z);
	free(r);
}

int repo_key_add(struct repo *r, const char *newpass, size_t len, const struct keyfile_kdf *kdf, char id_out[17],
		 struct err *e)
{
	return write_key(r->z, r->key, kdf ? kdf : &r->cfg.kdf, newpass, len, id_out, e);
}

int repo_key_ids(struct repo *r, char ***ids, size_t *n, struct err *e)
{
	char **all = NULL;
	size_t nall = 0;
	for (int i = 0; i < zones_count(r->z); i++) {
		char **names;
		size_t k;
		if (zones_list(r->z, i, "keys", &names, &k, NULL) < 0)
			continue;
		for (size_t j = 0; j < k; j++) {
			int dup = 0;
			for (size_t m = 0; m < nall; m++)
				dup |= !strcmp(all[m], names[j]);
			if (dup)
				continue;
			all = xrealloc(all, (nall + 1) * sizeof *all);
			all[nall++] = xstrdup(names[j]);
		}
		zones_list_free(names, k);
	}
	(void)e;
	*ids = all;
	*n = nall;
	return 0;
}

int repo_key_remove(struct repo *r, const char *id, struct err *e)
{
	char **ids, rel[64];
	size_t n, found = 0;
	int rc;
	if ((rc = repo_key_ids(r, &ids, &n, e)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		found |= !strcmp(ids[i], id);
	zones_list_free(ids, n);
	if (!found)
		return err_set(e, ERR_NOTFOUND, "no key file %s in the repository", id);
	if (n == 1) {
		err_set(e, ERR_USAGE, "refusing to remove the last key file: the repository would be unreadable");
		err_hint(e, "add another key first with 'pgtimefs key add'");
		return ERR_USAGE;
	}
	/* a zone that is away now keeps its copy, and `repair` would copy it back to the others:
	 * the key would open the repository again */
	for (int i = 0; i < zones_count(r->z); i++) {
		char dir[4200];
		struct stat st;
		char probe[4300];
		int fd = -1;
		zones_file(r->z, i, "keys", dir, sizeof dir);
		/* present and writable (a file made and removed again): a zone that cannot lose the
		 * key now keeps it, so none may */
		snprintf(probe, sizeof probe, "%s/.tmp-%ld-remove-probe", dir, (long)getpid());
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    (fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 || unlink(probe) < 0) {
			err_sys(e, ERR_IO, "zone %d (%s) has no keys/ directory that can be written", i + 1,
				zones_path(r->z, i));
			err_hint(e, "remove a key while every zone is present and writable: a zone that keeps it would "
				    "give it back to the others through 'pgtimefs repair'; nothing was removed");
			if (fd >= 0)
				close(fd);
			return ERR_IO;
		}
		close(fd);
	}
	snprintf(rel, sizeof rel, "keys/%.40s", id);
	if ((rc = zones_remove(r->z, rel, e)) < 0)
		return rc;
	return 0;
}

int repo_key_foreign(const struct repo *r, const uint8_t *kf, size_t len, const char *pass, size_t passlen)
{
	char ours[2048], theirs[2048];
	crypto_key *k;
	int foreign;
	if (keyfile_open(kf, len, pass, passlen, &k, NULL) < 0)
		return 0;
	/* the seal is an HMAC under a key derived from the master key: equal seals, equal keys */
	repo_config_seal(&r->cfg, r->key, ours, sizeof ours);
	repo_config_seal(&r->cfg, k, theirs, sizeof theirs);
	foreign = strcmp(ours, theirs) != 0;
	crypto_key_free(k);
	return foreign;
}
