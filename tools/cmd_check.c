/* cmd_check.c: check [--read-data] and repair: every zone against the catalog. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/copy.h"
#include "common/json.h"
#include "common/progress.h"
#include "common/util.h"
#include "crypto/keyfile.h"
#include "store/pack.h"
#include "tools.h"

struct checker {
	struct ctx *x;
	int read_data, repair;
	int problems, fixed, unfixable;
	unsigned copies_missing; /* zones without a catalog copy (or with a damaged newest one): bit 1 << zone */
	int catalog_suspect; /* packs whose own trailer or size the catalog contradicts */
	uint64_t packs, bytes;
	struct json j; /* problems array when --json */
	struct progress prog;
	uint8_t *buf;
};

static void problem(struct checker *k, const char *kind, int zone, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct checker *k, const char *kind, int zone, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	k->problems++;
	if (k->x->json) {
		json_obj(&k->j);
		json_key(&k->j, "kind");
		json_str(&k->j, kind);
		json_key(&k->j, "zone");
		json_int(&k->j, zone);
		json_key(&k->j, "message");
		json_str(&k->j, msg);
		json_obj_end(&k->j);
	} else {
		progress_end(&k->prog);
		printf("%s: %s\n", k->repair ? "found" : "problem", msg);
	}
}

/* a line of repair's outcome ("repaired: ..." or "not repaired: ...") on a terminal's stdout */
static void outcome(struct checker *k, const char *prefix, const char *fmt, va_list ap)
{
	if (k->x->json || k->x->quiet)
		return;
	progress_end(&k->prog);
	fputs(prefix, stdout);
	vprintf(fmt, ap);
	fputs("\n", stdout);
}

static void fixed(struct checker *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fixed(struct checker *k, const char *fmt, ...)
{
	va_list ap;
	k->fixed++;
	va_start(ap, fmt);
	outcome(k, "repaired: ", fmt, ap);
	va_end(ap);
}

static void unfixed(struct checker *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void unfixed(struct checker *k, const char *fmt, ...)
{
	va_list ap;
	k->unfixable++;
	va_start(ap, fmt);
	outcome(k, "not repaired: ", fmt, ap);
	va_end(ap);
}

/* Reads a whole pack file of a zone into k->buf; 0, ERR_NOTFOUND or ERR_CORRUPT (size). */
static int read_pack(struct checker *k, int zone, const char *rel, uint64_t size)
{
	char full[4200];
	struct stat st;
	int fd, rc = 0;
	zones_file(k->x->repo->z, zone, rel, full, sizeof full);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size)
		rc = ERR_CORRUPT;
	else if (util_pread_all(fd, k->buf, size, 0) < 0)
		rc = ERR_IO;
	close(fd);
	return rc;
}

static int pack_ok_in_buf(struct checker *k, const struct catalog_pack *p)
{
	uint8_t sum[32];
	crypto_sha256(k->buf, p->size, sum);
	return !memcmp(sum, p->hash, 32);
}

struct trailer_match {
	const struct pack_entry *ents;
	size_t n;
	int mismatched;
};

/* Every chunk the catalog places in a pack must be in its trailer at the same place. */
static int match_chunk(void *ctx, const struct blob_loc *loc)
{
	struct trailer_match *m = ctx;
	for (size_t i = 0; i < m->n; i++)
		if (m->ents[i].offset == loc->offset)
			return (m->mismatched += memcmp(m->ents[i].id, loc->id, 32) || m->ents[i].length != loc->length ||
						  m->ents[i].raw != loc->raw), 0;
	m->mismatched++;
	return 0;
}

static int check_pack(void *ctx, const struct catalog_pack *p)
{
	struct checker *k = ctx;
	struct repo *r = k->x->repo;
	char rel[80], hex[65];
	int n = zones_count(r->z), good = -1;
	int state[ZONES_MAX]; /* 0 ok, 1 missing, 2 damaged (or of another size), 3 unreadable */
	pack_relpath(p->hash, rel);
	pack_name(p->hash, hex);
	k->packs++;
	if (p->size > PACK_MAX) {
		problem(k, "catalog", 0, "pack %s is recorded with an impossible size %llu", hex, (unsigned long long)p->size);
		k->catalog_suspect++;
		if (k->repair)
			unfixed(k, "pack %.16s: the catalog's record of it is wrong, and no zone can mend that", hex);
		return 0;
	}
	k->buf = xrealloc(k->buf, p->size ? p->size : 1);
	for (int i = 0; i < n; i++) {
		state[i] = 0;
		if (!k->read_data && !k->repair) {
			char full[4200];
			struct stat st;
			zones_file(r->z, i, rel, full, sizeof full);
			if (stat(full, &st) < 0)
				state[i] = 1;
			else if ((uint64_t)st.st_size != p->size)
				state[i] = 2;
			continue;
		}
		{
			int rc = read_pack(k, i, rel, p->size);
			if (rc == ERR_NOTFOUND)
				state[i] = 1;
			else if (rc == ERR_IO)
				state[i] = 3;
			else if (rc < 0 || !pack_ok_in_buf(k, p))
				state[i] = 2;
			else if (good < 0)
				good = i;
			k->bytes += p->size;
			progress_add(&k->prog, p->size);
		}
	}
	if (k->read_data && good >= 0) {
		/* the bytes are right; the trailer must open and match the catalog */
		struct pack_entry *ents = NULL;
		size_t ne = 0;
		struct err e;
		if (read_pack(k, good, rel, p->size) == 0) {
			/* the bytes match the catalog's checksum, so every zone holds this same trailer: what
			 * is wrong here no other zone can mend */
			if (pack_parse(r->key, k->buf, p->size, &ents, &ne, &e) < 0) {
				problem(k, "pack-trailer", good + 1, "pack %s: %s", hex, e.msg);
				if (k->repair)
					unfixed(k, "pack %.16s: its trailer cannot be read, and every zone holds the same bytes",
						hex);
			} else {
				struct trailer_match m = {ents, ne, 0};
				struct err ce;
				err_clear(&ce);
				if (catalog_pack_chunks(k->x->cat, p->id, match_chunk, &m, &ce) < 0) {
					problem(k, "catalog", 0, "pack %s: the catalog's chunks in it cannot be read: %s", hex,
						ce.msg);
					k->catalog_suspect++;
					if (k->repair)
						unfixed(k, "pack %.16s: the catalog cannot list its chunks", hex);
				} else if (m.mismatched) {
					problem(k, "pack-trailer", good + 1,
						"pack %s: %d chunks of the catalog are not where its trailer says", hex,
						m.mismatched);
					k->catalog_suspect++;
					if (k->repair)
						unfixed(k, "pack %.16s: the catalog disagrees with the pack's own trailer", hex);
				}
			}
		}
		free(ents);
	}
	for (int i = 0; i < n; i++) {
		if (!state[i])
			continue;
		problem(k, state[i] == 1 ? "pack-missing" : state[i] == 3 ? "pack-unreadable" : "pack-damaged", i + 1,
			"pack %s %s in zone %d (%s)", hex,
			state[i] == 1	? "is missing"
			: state[i] == 3 ? "cannot be read (permissions, I/O error)"
					: "is damaged (its size or bytes do not match the catalog's)",
			i + 1, zones_path(r->z, i));
		if (!k->repair)
			continue;
		if (good < 0) {
			unfixed(k, "pack %.16s in zone %d: no zone holds an intact copy to take", hex, i + 1);
			continue;
		}
		{
			struct err e;
			err_clear(&e);
			if (read_pack(k, good, rel, p->size) != 0 || !pack_ok_in_buf(k, p))
				unfixed(k, "pack %.16s in zone %d: zone %d's intact copy could no longer be read", hex, i + 1,
					good + 1);
			else if (zones_put_one(r->z, i, rel, k->buf, p->size, &e) < 0)
				unfixed(k, "pack %.16s in zone %d: %s", hex, i + 1, e.msg);
			else
				fixed(k, "pack %.16s copied from zone %d to zone %d", hex, good + 1, i + 1);
		}
	}
	if (k->read_data && good < 0) {
		/* check and repair say it alike; reads fall over blob by blob, so the files whose
		 * blobs are intact in some zone still read */
		int any_bad = 0;
		for (int i = 0; i < n; i++)
			any_bad |= state[i];
		if (any_bad)
			problem(k, "pack-lost", 0,
				"pack %s has no intact copy in any zone: files that use its damaged parts cannot be read",
				hex);
	}
	return 0;
}

static int catalog_problem(void *ctx, const char *msg)
{
	struct checker *k = ctx;
	k->problems++;
	if (k->x->json) {
		json_obj(&k->j);
		json_key(&k->j, "kind");
		json_str(&k->j, "catalog");
		json_key(&k->j, "message");
		json_str(&k->j, msg);
		json_obj_end(&k->j);
	} else {
		printf("problem: %s\n", msg);
	}
	return 0;
}

/* NULL when zone i holds a config that parses, names this repository and whose MAC verifies
 * under the current key; else what is wrong with it */
static const char *zone_config_fault(const struct repo *r, int i)
{
	char full[4200];
	uint8_t *buf;
	size_t len;
	struct repo_config cfg;
	const char *why = NULL;
	int rc;
	zones_file(r->z, i, "config", full, sizeof full);
	if (util_read_small(full, 65536, &buf, &len, NULL) < 0)
		return "missing or unreadable";
	if (repo_config_parse((char *)buf, len, &cfg, NULL) < 0)
		why = "damaged";
	else if (strcmp(cfg.id, r->cfg.id))
		why = "of another repository";
	else if ((rc = repo_config_verify(r->key, (const char *)buf, len)) == REPO_CONFIG_OLD_MAC)
		why = "sealed with the old key (the id key)";
	else if (rc == ERR_NOTFOUND)
		why = "without a MAC";
	else if (rc < 0)
		why = "altered (its MAC does not verify)";
	free(buf);
	return why;
}

/* Zone i's copy of key file rel, when it looks like a key file; caller frees. NULL otherwise. */
static uint8_t *zone_key(const struct repo *r, int i, const char *rel, size_t *len)
{
	char full[4200];
	uint8_t *buf;
	zones_file(r->z, i, rel, full, sizeof full);
	if (util_read_small(full, 4096, &buf, len, NULL) < 0)
		return NULL;
	if (!keyfile_created(buf, *len)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * The good copy of key file id: the bytes that opened the repository this run when id is that
 * key; else the copy most zones hold, when no other copy is held by as many (*agree gets how
 * many zones hold it). NULL when there is none or two disagree evenly: a copy that looks like
 * a key file may still be damaged inside, which only its passphrase tells.
 */
static const uint8_t *good_key(struct repo *r, uint8_t *const *copy, const size_t *len, size_t *good_len, int *agree)
{
	int n = zones_count(r->z), best = -1, best_n = 0, tie = 0;
	*agree = 0;
	for (int g = 0; g < n; g++) {
		int same = 0;
		if (!copy[g])
			continue;
		for (int h = 0; h < n; h++)
			same += copy[h] && len[h] == len[g] && !memcmp(copy[h], copy[g], len[g]);
		if (same > best_n) {
			best = g;
			best_n = same;
			tie = 0;
		} else if (same == best_n && (len[g] != len[best] || memcmp(copy[best], copy[g], len[g]))) {
			tie = 1;
		}
	}
	if (best < 0 || tie)
		return NULL;
	*agree = best_n;
	*good_len = len[best];
	return copy[best];
}

static void check_key(struct checker *k, int i, const char *id)
{
	struct repo *r = k->x->repo;
	int n = zones_count(r->z), agree = 0;
	uint8_t *copy[ZONES_MAX] = {NULL};
	size_t len[ZONES_MAX] = {0}, good_len = 0;
	const uint8_t *good;
	char rel[64];
	snprintf(rel, sizeof rel, "keys/%.40s", id);
	for (int g = 0; g < n; g++)
		copy[g] = zone_key(r, g, rel, &len[g]);
	if (!strcmp(id, r->key_id) && r->key_file) {
		good = r->key_file;
		good_len = r->key_file_len;
	} else {
		good = good_key(r, copy, len, &good_len, &agree);
	}
	if (copy[i] && good && len[i] == good_len && !memcmp(copy[i], good, good_len))
		goto out;
	if (!copy[i])
		problem(k, "key", i + 1, "zone %d lacks key file %s (or it is damaged)", i + 1, id);
	else if (good)
		problem(k, "key", i + 1, "zone %d's key file %s differs from the good copy (damaged)", i + 1, id);
	else
		problem(k, "key", i + 1, "zone %d's key file %s differs from another zone's, and neither can be told good",
			i + 1, id);
	if (!k->repair)
		goto out;
	if (good) {
		struct err e;
		err_clear(&e);
		if (zones_put_one(r->z, i, rel, good, good_len, &e) == 0) {
			fixed(k, "key file %s written to zone %d from %s", id, i + 1,
			      agree > 1	   ? "the copy most zones hold"
			      : agree == 1 ? "the only copy there is (a key file's damage shows only when it is opened)"
					   : "the copy that opened the repository");
			goto out;
		}
		report(&e);
	}
	unfixed(k, "key file %s in zone %d: no good copy to take (above), or writing it failed", id, i + 1);
out:
	for (int g = 0; g < n; g++)
		free(copy[g]);
}

/*
 * Whether id is a key file `key remove` removed (catalog meta removed-keys). Zone i's copy,
 * come back with a zone that was away, is a problem, and repair removes it: copied to the
 * other zones, it would open the repository with the removed passphrase again.
 */
static int key_removed(struct checker *k, int i, const char *id)
{
	struct repo *r = k->x->repo;
	char removed[4096], rel[64], full[4200];
	const char *p;
	size_t n = strlen(id);
	if (catalog_meta_get(k->x->cat, "removed-keys", removed, sizeof removed) < 0)
		return 0;
	for (p = removed; (p = strstr(p, id)); p += n)
		if ((p == removed || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			break;
	if (!p)
		return 0;
	snprintf(rel, sizeof rel, "keys/%.40s", id);
	zones_file(r->z, i, rel, full, sizeof full);
	if (access(full, F_OK) != 0)
		return 1;
	if (!strcmp(id, r->key_id)) {
		/* never the key in use: the record is wrong, or the removal was never meant */
		problem(k, "key", i + 1, "key file %s is recorded as removed, but it opened the repository: kept", id);
		if (k->repair)
			unfixed(k, "key file %s in zone %d opened the repository: not deleted; 'pgtimefs key remove %s' "
				   "with another key's passphrase removes it",
				id, i + 1, id);
		return 1;
	}
	problem(k, "key", i + 1, "zone %d holds key file %s, which 'key remove' removed", i + 1, id);
	if (k->repair) {
		if (unlink(full) == 0)
			fixed(k, "removed key file %s deleted from zone %d again", id, i + 1);
		else
			unfixed(k, "removed key file %s in zone %d cannot be deleted: %s", id, i + 1, strerror(errno));
	}
	return 1;
}

/* zone i's copy of key file id, which holds another master key (repo_key_foreign) */
static void foreign_key(struct checker *k, int i, const char *id)
{
	struct repo *r = k->x->repo;
	char rel[64], full[4200];
	snprintf(rel, sizeof rel, "keys/%.40s", id);
	zones_file(r->z, i, rel, full, sizeof full);
	if (access(full, F_OK) != 0)
		return;
	problem(k, "key", i + 1,
		"zone %d holds key file %s, which opens with this passphrase but holds another master key: it is no key of "
		"this repository's (left by an init cut short, or copied from another repository)",
		i + 1, id);
	if (k->repair) {
		if (unlink(full) == 0)
			fixed(k, "key file %s of another master key deleted from zone %d", id, i + 1);
		else
			unfixed(k, "key file %s of another master key in zone %d cannot be deleted: %s", id, i + 1,
				strerror(errno));
	}
}

/* config, keys and catalog copies in every zone */
static void check_zone_files(struct checker *k)
{
	struct repo *r = k->x->repo;
	char **keys, **cats;
	size_t nkeys, nc;
	repo_key_ids(r, &keys, &nkeys, NULL);
	/* a key file that opens with this passphrase to another master key is no key of this
	 * repository's: named, and not copied to the other zones */
	int *foreign = xcalloc(nkeys ? nkeys : 1, sizeof *foreign);
	for (size_t j = 0; j < nkeys; j++) {
		char rel[64];
		if (!strcmp(keys[j], r->key_id))
			continue;
		snprintf(rel, sizeof rel, "keys/%.40s", keys[j]);
		/* one copy (the others are compared by check_key), and none that costs more to
		 * open than the key in use: a key of this passphrase was made with its settings */
		for (int g = 0; g < zones_count(r->z); g++) {
			size_t kl;
			uint8_t *kf = zone_key(r, g, rel, &kl);
			int cheap;
			if (!kf)
				continue;
			cheap = keyfile_cost(kf, kl) <= keyfile_cost(r->key_file, r->key_file_len);
			if (cheap)
				foreign[j] = repo_key_foreign(r, kf, kl, k->x->pass, k->x->passlen);
			free(kf);
			if (cheap)
				break;
		}
	}
	for (int i = 0; i < zones_count(r->z); i++) {
		struct stat st;
		struct err e;
		const char *why;
		if (stat(zones_path(r->z, i), &st) < 0) {
			problem(k, "zone-missing", i + 1, "zone %d (%s) is missing", i + 1, zones_path(r->z, i));
			err_clear(&e);
			if (k->repair && zones_create(r->z, &e) == 0)
				fixed(k, "zone %d recreated", i + 1);
			else if (k->repair)
				unfixed(k, "zone %d cannot be made: %s", i + 1, e.msg);
		}
		if ((why = zone_config_fault(r, i))) {
			char text[2048];
			problem(k, "config", i + 1, "zone %d's config is %s", i + 1, why);
			repo_config_seal(&r->cfg, r->key, text, sizeof text);
			err_clear(&e);
			if (k->repair && zones_put_one(r->z, i, "config", text, strlen(text), &e) == 0)
				fixed(k, "config written to zone %d", i + 1);
			else if (k->repair)
				unfixed(k, "the config of zone %d cannot be written: %s", i + 1, e.msg);
		}
		for (size_t j = 0; j < nkeys; j++)
			if (foreign[j])
				foreign_key(k, i, keys[j]);
			else if (!key_removed(k, i, keys[j]))
				check_key(k, i, keys[j]);
		if (zones_list(r->z, i, "catalog", &cats, &nc, NULL) < 0)
			nc = 0, cats = NULL;
		{
			/* the newest copy (names sort by generation); --read-data decodes it */
			const char *newest = NULL;
			uint64_t g = 0, gen = 0, newest_g = 0;
			for (size_t j = 0; j < nc; j++)
				if (catalog_copy_name_gen(cats[j], &g))
					newest = cats[j], newest_g = g;
			g = newest_g;
			if (!newest) {
				problem(k, "catalog-copy", i + 1, "zone %d holds no catalog copy", i + 1);
				k->copies_missing |= 1u << i;
			} else if (k->read_data) {
				char rel[64], full[4200];
				int in, out;
				snprintf(rel, sizeof rel, "catalog/%.40s", newest);
				zones_file(r->z, i, rel, full, sizeof full);
				err_clear(&e);
				in = open(full, O_RDONLY | O_CLOEXEC);
				out = open("/dev/null", O_WRONLY | O_CLOEXEC);
				if (in < 0 || out < 0)
					err_sys(&e, ERR_IO, "cannot open %s", in < 0 ? full : "/dev/null");
				else if (catalog_copy_decode(r, in, out, &gen, &e) == 0 && gen != g)
					err_set(&e, ERR_CORRUPT, "its sealed generation %llu differs from its name",
						(unsigned long long)gen);
				if (in >= 0)
					close(in);
				if (out >= 0)
					close(out);
				if (e.code) {
					/* a fresh copy (repair's) replaces it as the newest */
					problem(k, "catalog-copy", i + 1, "zone %d's newest catalog copy (%s) cannot be read: %s",
						i + 1, newest, e.msg);
					k->copies_missing |= 1u << i;
				}
			}
		}
		zones_list_free(cats, nc);
	}
	zones_list_free(keys, nkeys);
	free(foreign);
}

static int run(struct ctx *x, int read_data, int repair)
{
	struct err e;
	struct checker k;
	int rc, cat_problems = 0;
	err_clear(&e);
	memset(&k, 0, sizeof k);
	k.x = x;
	k.read_data = read_data;
	k.repair = repair;
	if ((rc = setup_catalog(x, repair ? 3 : 0, &e)) < 0)
		return report(&e);
	if (x->json) {
		json_init(&k.j, stdout);
		json_obj(&k.j);
		json_key(&k.j, "problems");
		json_arr(&k.j);
	}
	progress_start(&k.prog, repair ? "repair" : "check", 0, !x->quiet && !x->json && (read_data || repair));
	check_zone_files(&k);
	if ((rc = catalog_verify(x->cat, catalog_problem, &k, &cat_problems, &e)) < 0)
		goto fail;
	if ((rc = catalog_packs(x->cat, check_pack, &k, &e)) < 0)
		goto fail;
	progress_end(&k.prog);
	if (repair) {
		struct err se;
		char v[8];
		uint64_t gen = 0;
		int missing = __builtin_popcount(k.copies_missing);
		err_clear(&se);
		if (zones_sync(x->repo->z, &se) < 0) {
			report(&se);
			k.unfixable++;
		}
		/* a fresh catalog copy in every zone, unless the catalog itself failed its check: a copy
		 * of it would push the good copies out of the zones */
		if (cat_problems || k.catalog_suspect) {
			if (cat_problems) {
				unfixed(&k, "the local catalog fails its consistency check (%d problem%s above): no copy "
					    "of it was pushed",
					cat_problems, cat_problems == 1 ? "" : "s");
				/* unfixed() counted one: each catalog problem and each zone left without a copy
				 * count */
				k.unfixable += cat_problems - 1 + missing;
			} else {
				/* the packs' own records are sealed: the catalog is the likelier one at fault */
				unfixed(&k, "the local catalog contradicts %d pack%s (above): no copy of it was pushed",
					k.catalog_suspect, k.catalog_suspect == 1 ? "" : "s");
				/* those packs are counted already; each zone left without a copy counts */
				k.unfixable += missing - 1;
			}
			if (!x->json)
				fprintf(stderr, "HINT: move %s (and its -wal and -shm files) aside and run 'pgtimefs init "
						"--recover' to install the newest good copy from the zones\n",
					x->catalog_file);
		} else if (catalog_copy_push(x->cat, x->repo, x->state_dir, &gen, &se) < 0) {
			/* each zone is written on its own: those that lacked a copy and got this one
			 * are repaired, the others not (and the push's failure counts once when every
			 * zone had one) */
			int got = 0, left;
			/* a zone that cannot take it (read-only, full) is a problem check cannot see */
			problem(&k, "catalog-copy", 0, "%s: %s",
				se.code == ERR_CONFIG ? "no catalog copy was pushed" : "the catalog copy did not reach every zone",
				se.msg);
			if (se.hint[0] && !x->json)
				fprintf(stderr, "HINT: %s\n", se.hint);
			for (int i = 0; gen && i < zones_count(x->repo->z); i++) {
				char rel[64], full[4200];
				if (!(k.copies_missing & (1u << i)))
					continue;
				snprintf(rel, sizeof rel, "catalog/%020llu", (unsigned long long)gen);
				zones_file(x->repo->z, i, rel, full, sizeof full);
				got += access(full, F_OK) == 0;
			}
			k.fixed += got;
			left = missing - got;
			k.unfixable += left > 1 ? left : 1; /* the zone that failed, once */
		} else if (catalog_meta_get(x->cat, "config-sealed-pushed", v, sizeof v) == 0 && !strcmp(v, "0") &&
			   catalog_meta_set(x->cat, "config-sealed-pushed", "1", &se) < 0) {
			report(&se); /* the copy carries the seal's level; the next writer pushes again */
		} else if (missing) {
			fixed(&k, "catalog copy written to every zone");
			k.fixed += missing - 1; /* fixed() counted one: each zone that lacked a copy counts */
		}
	}
	free(k.buf);
	if (x->json) {
		json_arr_end(&k.j);
		json_key(&k.j, "packs");
		json_int(&k.j, (int64_t)k.packs);
		json_key(&k.j, "bytes_read");
		json_int(&k.j, (int64_t)k.bytes);
		json_key(&k.j, "problems_found");
		json_int(&k.j, k.problems);
		if (repair) {
			json_key(&k.j, "repaired");
			json_int(&k.j, k.fixed);
			json_key(&k.j, "unrepairable");
			json_int(&k.j, k.unfixable);
		}
		json_key(&k.j, "ok");
		json_bool(&k.j, repair ? (k.unfixable == 0 && cat_problems == 0) : k.problems == 0);
		json_obj_end(&k.j);
		json_end(&k.j);
	} else if (!x->quiet) {
		if (repair)
			printf("repair: %d problem%s found, %d repaired, %d could not be repaired\n", k.problems,
			       k.problems == 1 ? "" : "s", k.fixed, k.unfixable);
		else
			printf("check: %llu packs in %d zones%s: %s\n", (unsigned long long)k.packs, zones_count(x->repo->z),
			       read_data ? " (data read and verified)" : "", k.problems ? "PROBLEMS FOUND" : "ok");
		if (!repair && x->repo->foreign_zone >= 0)
			fprintf(stderr, "HINT: zone %d holds another repository: correct 'zones' in the configuration "
					"first ('pgtimefs repair' and every writer refuse to run until then)\n",
				x->repo->foreign_zone + 1);
		else if (!repair && k.problems > k.catalog_suspect + cat_problems)
			fprintf(stderr, "HINT: run 'pgtimefs repair' to copy what is missing or damaged from a good zone\n");
		if (!repair && (k.catalog_suspect || cat_problems))
			fprintf(stderr, "HINT: the local catalog fails its check or contradicts a pack, which no zone can "
					"mend: move %s (and its -wal and -shm files) aside and run 'pgtimefs init "
					"--recover'\n",
				x->catalog_file);
	}
	if (repair)
		return (k.unfixable || cat_problems) ? 1 : 0;
	return k.problems ? 1 : 0;
fail:
	progress_end(&k.prog);
	free(k.buf);
	return report(&e);
}

int cmd_check(struct ctx *x, int argc, char **argv)
{
	int read_data = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--read-data"))
			read_data = 1;
		else
			return usage_error("usage: pgtimefs check [--read-data]");
	}
	return run(x, read_data, 0);
}

int cmd_repair(struct ctx *x, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_error("usage: pgtimefs repair");
	return run(x, 1, 1);
}
