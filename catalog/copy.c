#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/util.h"

#define HDR_LEN 32
#define FRAME_RAW (4u << 20)

/* ad of frame i = header | u64 i | u8 last */
static void frame_ad(const uint8_t hdr[HDR_LEN], uint64_t i, int last, uint8_t ad[HDR_LEN + 9])
{
	memcpy(ad, hdr, HDR_LEN);
	put_le64(ad + HDR_LEN, i);
	ad[HDR_LEN + 8] = (uint8_t)last;
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int encode(const struct repo *r, int in, int out, uint64_t gen, struct err *e)
{
	uint8_t hdr[HDR_LEN], ad[HDR_LEN + 9], lenbuf[4];
	uint8_t *raw = xmalloc(FRAME_RAW), *z = xmalloc(ZSTD_compressBound(FRAME_RAW));
	uint8_t *sealed = xmalloc(ZSTD_compressBound(FRAME_RAW) + CRYPTO_SEAL_OVERHEAD);
	uint64_t idx = 0;
	size_t have = 0;
	int rc = 0, eof = 0;
	memset(hdr, 0, sizeof hdr);
	memcpy(hdr, CATALOG_COPY_MAGIC, 8);
	put_le32(hdr + 8, 1);
	put_le32(hdr + 12, FRAME_RAW);
	put_le64(hdr + 16, gen);
	if (util_write_all(out, hdr, sizeof hdr) < 0) {
		rc = err_sys(e, ERR_IO, "cannot write the catalog copy");
		goto out;
	}
	while (!eof) {
		size_t zl;
		ssize_t n;
		have = 0;
		while (have < FRAME_RAW) {
			n = read(in, raw + have, FRAME_RAW - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = err_sys(e, ERR_IO, "cannot read the catalog");
				goto out;
			}
			if (n == 0) {
				eof = 1;
				break;
			}
			have += (size_t)n;
		}
		if (!eof) { /* peek: is this frame the last? */
			struct stat st;
			off_t pos = lseek(in, 0, SEEK_CUR);
			if (fstat(in, &st) == 0 && pos >= st.st_size)
				eof = 1;
		}
		zl = ZSTD_compress(z, ZSTD_compressBound(FRAME_RAW), raw, have, 3);
		if (ZSTD_isError(zl)) {
			rc = err_set(e, ERR_INTERNAL, "zstd: %s", ZSTD_getErrorName(zl));
			goto out;
		}
		frame_ad(hdr, idx, eof, ad);
		if ((rc = crypto_seal(r->key, ad, sizeof ad, z, zl, sealed, e)) < 0)
			goto out;
		put_le32(lenbuf, (uint32_t)(zl + CRYPTO_SEAL_OVERHEAD));
		if (util_write_all(out, lenbuf, 4) < 0 || util_write_all(out, sealed, zl + CRYPTO_SEAL_OVERHEAD) < 0) {
			rc = err_sys(e, ERR_IO, "cannot write the catalog copy");
			goto out;
		}
		idx++;
	}
	if (fsync(out) < 0)
		rc = err_sys(e, ERR_IO, "cannot fsync the catalog copy");
out:
	free(raw);
	free(z);
	free(sealed);
	return rc;
}

int catalog_copy_decode(const struct repo *r, int in, int out, uint64_t *generation, struct err *e)
{
	uint8_t hdr[HDR_LEN], ad[HDR_LEN + 9], lenbuf[4];
	size_t cap = ZSTD_compressBound(FRAME_RAW) + CRYPTO_SEAL_OVERHEAD;
	uint8_t *sealed = xmalloc(cap), *z = xmalloc(cap), *raw = xmalloc(FRAME_RAW);
	uint64_t idx = 0;
	int rc = 0, last = 0;
	if (read_full(in, hdr, sizeof hdr) < 0 || memcmp(hdr, CATALOG_COPY_MAGIC, 8) || get_le32(hdr + 8) != 1 ||
	    get_le32(hdr + 12) != FRAME_RAW) {
		rc = err_set(e, ERR_CORRUPT, "not a catalog copy (bad header)");
		goto out;
	}
	if (generation)
		*generation = get_le64(hdr + 16);
	while (!last) {
		uint32_t sl;
		size_t d;
		if (read_full(in, lenbuf, 4) < 0) {
			rc = err_set(e, ERR_CORRUPT, "catalog copy is truncated at frame %" PRIu64, idx);
			goto out;
		}
		sl = get_le32(lenbuf);
		if (sl < CRYPTO_SEAL_OVERHEAD || sl > cap) {
			rc = err_set(e, ERR_CORRUPT, "catalog copy frame %" PRIu64 " has an impossible length", idx);
			goto out;
		}
		if (read_full(in, sealed, sl) < 0) {
			rc = err_set(e, ERR_CORRUPT, "catalog copy is truncated in frame %" PRIu64, idx);
			goto out;
		}
		/* try as a middle frame, then as the last */
		frame_ad(hdr, idx, 0, ad);
		if (crypto_open(r->key, ad, sizeof ad, sealed, sl, z, NULL) < 0) {
			frame_ad(hdr, idx, 1, ad);
			if (crypto_open(r->key, ad, sizeof ad, sealed, sl, z, NULL) < 0) {
				rc = err_set(e, ERR_CORRUPT, "catalog copy frame %" PRIu64 " does not authenticate", idx);
				goto out;
			}
			last = 1;
		}
		d = ZSTD_decompress(raw, FRAME_RAW, z, sl - CRYPTO_SEAL_OVERHEAD);
		if (ZSTD_isError(d)) {
			rc = err_set(e, ERR_CORRUPT, "catalog copy frame %" PRIu64 " does not decompress", idx);
			goto out;
		}
		if (util_write_all(out, raw, d) < 0) {
			rc = err_sys(e, ERR_IO, "cannot write the recovered catalog");
			goto out;
		}
		idx++;
	}
	{
		uint8_t extra;
		if (read(in, &extra, 1) > 0)
			rc = err_set(e, ERR_CORRUPT, "catalog copy has bytes after its last frame");
	}
out:
	free(sealed);
	free(z);
	free(raw);
	return rc;
}

int catalog_copy_name_gen(const char *name, uint64_t *gen)
{
	if (strlen(name) != 20 || strspn(name, "0123456789") != 20)
		return 0;
	*gen = strtoull(name, NULL, 10);
	return 1;
}

int catalog_copy_push(catalog *c, struct repo *r, const char *state_dir, uint64_t *generation, struct err *e)
{
	char snap[4096], enc[4096], rel[64], val[32];
	uint64_t gen = 0, own = 0, newest = 0;
	unsigned written = 0;
	int in = -1, out = -1, rc, counted, newest_zone = -1;
	char *sqlmsg = NULL;
	if ((counted = catalog_meta_get(c, "generation", val, sizeof val) == 0))
		own = strtoull(val, NULL, 10);
	for (int i = 0; i < zones_count(r->z); i++) {
		char **names;
		size_t n;
		if (zones_list(r->z, i, "catalog", &names, &n, NULL) < 0)
			continue;
		for (size_t j = 0; j < n; j++) {
			uint64_t g;
			if (catalog_copy_name_gen(names[j], &g) && g > newest) {
				newest = g;
				newest_zone = i;
			}
		}
		zones_list_free(names, n);
	}
	/* A catalog behind the zones did not write the newest copy: another catalog writes to this
	 * repository, or this one was rolled back (a state directory restored from a backup). Its
	 * copies would push the newer ones out of the zones (each keeps CATALOG_COPY_KEEP), and
	 * what only they record would be lost. */
	if (counted && newest > own) {
		err_set(e, ERR_CONFIG,
			"zone %d holds catalog copy generation %" PRIu64 ", newer than this catalog's last (%" PRIu64
			"): another catalog writes to this repository, or this one was rolled back; no copy was pushed",
			newest_zone + 1, newest, own);
		err_hint(e, "give the repository one state directory; if this catalog is the older one, move it (and its "
			    "-wal and -shm files) aside and run 'pgtimefs init --recover'");
		return ERR_CONFIG;
	}
	gen = (own > newest ? own : newest) + 1;
	if (generation) /* also when the push fails: the caller may look for what reached a zone */
		*generation = gen;
	snprintf(val, sizeof val, "%" PRIu64, gen);
	if ((rc = catalog_meta_set(c, "generation", val, e)) < 0)
		return rc;
	snprintf(snap, sizeof snap, "%s/catalog-copy.db", state_dir);
	snprintf(enc, sizeof enc, "%s/catalog-copy.sealed", state_dir);
	unlink(snap);
	unlink(enc);
	{
		/* VACUUM INTO gives a consistent, compact copy without stopping readers */
		if (catalog_vacuum_into(c, snap, &sqlmsg) != 0) {
			rc = err_set(e, ERR_DB, "cannot copy the catalog: %s", sqlmsg ? sqlmsg : "?");
			free(sqlmsg);
			goto out;
		}
	}
	in = open(snap, O_RDONLY | O_CLOEXEC);
	out = open(enc, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (in < 0 || out < 0) {
		rc = err_sys(e, ERR_IO, "cannot open a temporary catalog copy in %s", state_dir);
		goto out;
	}
	if ((rc = encode(r, in, out, gen, e)) < 0)
		goto out;
	snprintf(rel, sizeof rel, "catalog/%020" PRIu64, gen);
	zones_sweep_stale(r->z, "catalog"); /* a push killed midway left its catalog-sized temporary */
	/* every zone that can be written gets the copy, even when another cannot */
	rc = zones_put_file(r->z, rel, enc, &written, e);
	if (!written)
		goto out;
	{
		struct err se;
		int src;
		err_clear(&se);
		if ((src = zones_sync(r->z, rc < 0 ? &se : e)) < 0) {
			rc = rc < 0 ? rc : src;
			goto out;
		}
	}
	/* keep the newest generations only, in the zones the copy is in */
	for (int i = 0; i < zones_count(r->z); i++) {
		char **names;
		size_t n;
		size_t copies = 0;
		uint64_t g;
		if (!(written & (1u << i)) || zones_list(r->z, i, "catalog", &names, &n, NULL) < 0)
			continue;
		for (size_t j = 0; j < n; j++) /* other files there are not copies: neither counted nor removed */
			copies += (size_t)catalog_copy_name_gen(names[j], &g);
		for (size_t j = 0; j < n && copies > CATALOG_COPY_KEEP; j++) {
			char full[4096];
			if (!catalog_copy_name_gen(names[j], &g))
				continue;
			snprintf(rel, sizeof rel, "catalog/%.40s", names[j]);
			zones_file(r->z, i, rel, full, sizeof full);
			unlink(full);
			copies--;
		}
		zones_list_free(names, n);
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	unlink(snap);
	unlink(enc);
	return rc;
}

/* Removes path's SQLite side files (-wal, -shm). */
static void side_files_remove(const char *path)
{
	for (int i = 0; i < 2; i++) {
		char side[4200];
		snprintf(side, sizeof side, "%s-%s", path, i ? "shm" : "wal");
		unlink(side);
	}
}

struct cand {
	uint64_t gen;
	int zone;
	char name[64];
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->gen != y->gen)
		return x->gen < y->gen ? 1 : -1;
	return x->zone - y->zone;
}

int catalog_copy_recover(struct repo *r, const char *dest_path, uint64_t *generation, int *zone, char *skipped,
			 size_t skipped_cap, struct err *e)
{
	struct cand *cands = NULL;
	size_t nc = 0;
	char tmp[4096], why[ERR_MSG_MAX] = "";
	int rc = ERR_NOTFOUND;
	if (access(dest_path, F_OK) == 0)
		return err_set(e, ERR_EXISTS, "a catalog already exists at %s; move it away first", dest_path);
	for (int i = 0; i < zones_count(r->z); i++) {
		char **names;
		size_t n;
		struct err le;
		err_clear(&le);
		if (zones_list(r->z, i, "catalog", &names, &n, &le) < 0) {
			/* said in the error if nothing else recovers */
			size_t l = strlen(why);
			if (le.code != ERR_NOTFOUND)
				snprintf(why + l, sizeof why - l, "%s%s", l ? "; " : "", le.msg); /* it names the zone */
			continue;
		}
		for (size_t j = 0; j < n; j++) {
			uint64_t g;
			if (!catalog_copy_name_gen(names[j], &g))
				continue;
			cands = xrealloc(cands, (nc + 1) * sizeof *cands);
			cands[nc].gen = g;
			cands[nc].zone = i;
			snprintf(cands[nc].name, sizeof cands[nc].name, "%s", names[j]);
			nc++;
		}
		zones_list_free(names, n);
	}
	if (nc)
		qsort(cands, nc, sizeof *cands, cmp_cand);
	snprintf(tmp, sizeof tmp, "%s.recover", dest_path);
	for (size_t k = 0; k < nc; k++) {
		char full[4096], rel[64];
		struct err de;
		int in, out;
		catalog *test = NULL;
		snprintf(rel, sizeof rel, "catalog/%s", cands[k].name);
		zones_file(r->z, cands[k].zone, rel, full, sizeof full);
		in = open(full, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			continue;
		unlink(tmp);
		side_files_remove(tmp); /* a -wal left by an earlier try must not be replayed over this one */
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0) {
			close(in);
			rc = err_sys(e, ERR_IO, "cannot create %s", tmp);
			goto out;
		}
		err_clear(&de);
		{
			uint64_t inside = 0;
			rc = catalog_copy_decode(r, in, out, &inside, &de);
			if (rc == 0 && inside != cands[k].gen)
				rc = err_set(&de, ERR_CORRUPT, "its sealed generation %" PRIu64 " differs from its name", inside);
		}
		close(in);
		if (rc == 0 && fsync(out) < 0)
			rc = err_sys(&de, ERR_IO, "cannot fsync %s", tmp);
		close(out);
		if (rc == 0 && catalog_schema_version(tmp) > CATALOG_SCHEMA_VERSION) {
			rc = err_set(e, ERR_CONFIG,
				     "generation %" PRIu64 " in zone %d is a catalog of schema %d, newer than this "
				     "pgtimefs knows (%d)",
				     cands[k].gen, cands[k].zone + 1, catalog_schema_version(tmp), CATALOG_SCHEMA_VERSION);
			err_hint(e, "recover with the pgtimefs that wrote it (or a newer one); nothing was installed");
			goto out;
		}
		if (rc == 0) {
			/* A copy made by an older pgtimefs is migrated, as its local catalog would be. One
			 * installed over newer generations passed over (damaged, or of another repository)
			 * counts from the newest of them, so that its own copies are pushed (a count behind
			 * the zones' newest copy is refused) and numbered above them. The writes are
			 * checkpointed into the file: its -wal is removed below. */
			int v = catalog_schema_version(tmp), recount = cands[0].gen > cands[k].gen;
			if ((v > 0 && v < CATALOG_SCHEMA_VERSION) || recount) {
				catalog *up;
				char val[32];
				snprintf(val, sizeof val, "%" PRIu64, cands[0].gen);
				rc = catalog_open(tmp, 0, &up, &de);
				if (rc == 0 && recount)
					rc = catalog_meta_set(up, "generation", val, &de);
				if (rc == 0)
					rc = catalog_checkpoint(up, &de);
				catalog_close(up);
			}
		}
		if (rc == ERR_IO || rc == ERR_NOSPC) {
			/* writing, syncing or migrating the file here failed (the copy's own damage reads
			 * as ERR_CORRUPT): an older copy would only lose what this one holds */
			*e = de;
			err_prefix(e, "recovering generation %" PRIu64 " from zone %d", cands[k].gen, cands[k].zone + 1);
			err_hint(e, "make room beside %s (full disk, quota, permissions), then run init --recover again; "
				    "nothing was installed", dest_path);
			goto out;
		}
		if (rc == 0)
			rc = catalog_open(tmp, 1, &test, &de);
		if (rc == 0) {
			char id[80] = "";
			int problems = 0;
			if (catalog_meta_get(test, "repository", id, sizeof id) < 0 || strcmp(id, r->cfg.id))
				rc = err_set(&de, ERR_CORRUPT, "belongs to another repository");
			else if (catalog_verify(test, NULL, NULL, &problems, &de) < 0 || problems)
				rc = err_set(&de, ERR_CORRUPT, "fails the consistency check");
			catalog_close(test);
			/* a migrated copy is in WAL mode: its side files (checkpointed, or empty once
			 * every connection is closed) must not outlive the rename */
			side_files_remove(tmp);
		}
		if (rc == 0) {
			if (rename(tmp, dest_path) < 0) {
				rc = err_sys(e, ERR_IO, "cannot install %s", dest_path);
				goto out;
			}
			if (generation)
				*generation = cands[k].gen;
			if (zone)
				*zone = cands[k].zone;
			if (skipped && skipped_cap) {
				/* what newer generations were passed over (the same one failing in one zone
				 * and read from another loses nothing) */
				size_t l = 0;
				skipped[0] = 0;
				for (size_t q = 0; q < k; q++)
					if (cands[q].gen > cands[k].gen && l < skipped_cap)
						l += (size_t)snprintf(skipped + l, skipped_cap - l, "%szone %d generation %" PRIu64,
								      l ? "; " : "", cands[q].zone + 1, cands[q].gen);
				if (l && l < skipped_cap)
					snprintf(skipped + l, skipped_cap - l, " (%s)", why);
			}
			goto out;
		}
		{
			size_t l = strlen(why);
			snprintf(why + l, sizeof why - l, "%szone %d generation %" PRIu64 ": %s", l ? "; " : "",
				 cands[k].zone + 1, cands[k].gen, de.msg);
		}
		rc = ERR_CORRUPT;
	}
	if (nc == 0 && why[0]) {
		rc = err_set(e, ERR_IO, "no catalog copy could be read (%s)", why);
		err_hint(e, "make the zones readable (permissions, mounts), then run init --recover again");
	} else if (nc == 0) {
		rc = err_set(e, ERR_NOTFOUND, "no catalog copy in any zone");
		err_hint(e, "a repository gets its first copy with its first snapshot; nothing to recover yet");
	} else {
		rc = err_set(e, ERR_CORRUPT, "no catalog copy could be recovered (%s)", why);
	}
out:
	unlink(tmp);
	side_files_remove(tmp);
	free(cands);
	return rc;
}
