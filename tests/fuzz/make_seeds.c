/*
 * make_seeds.c: writes the seed corpus of every fuzz target into DIR/<target>/ (usage:
 * fuzz_make_seeds DIR). Seeds are real, valid inputs made by the library itself with the fixed
 * key of fuzz_common.h (a pack, blobs, a key file, configs, a catalog copy), in the input
 * format each target's header describes, so the fuzzers start from the accepted paths
 * instead of having to discover them. Run by CTest as the fixture of the fuzz tests.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "catalog/catalog.h"
#include "catalog/copy.h"
#include "crypto/keyfile.h"
#include "fuzz_common.h"
#include "store/pack.h"
#include "store/repo.h"
#include "store/zones.h"

static const char *root;

static _Noreturn void die(const char *what, const struct err *e)
{
	fprintf(stderr, "fuzz_make_seeds: %s%s%s\n", what, e && e->msg[0] ? ": " : "", e ? e->msg : "");
	exit(1);
}

/* Writes mode byte (unless < 0) + a + b as DIR/target/name. */
static void seed(const char *target, const char *name, int mode, const void *a, size_t alen, const void *b,
		 size_t blen)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", root, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path, NULL);
	snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
	if (!(f = fopen(path, "wb")))
		die(path, NULL);
	if (mode >= 0)
		fputc(mode, f);
	if ((alen && fwrite(a, 1, alen, f) != alen) || (blen && fwrite(b, 1, blen, f) != blen) || fclose(f))
		die(path, NULL);
}

static void seeds_pack_blob(void)
{
	static const char *texts[] = {"hello, pack", "", NULL};
	pack_codec *codec = pack_codec_new(3);
	pack_builder *b = pack_builder_new();
	uint8_t data[20000], id[32], sealed[sizeof data + 64], rawlen[4], pack_id[32], *plain;
	const struct pack_entry *ents;
	const uint8_t *pk;
	size_t slen, len, n;
	struct err e;
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i % 251 < 200 ? 'a' : i);
	/* a compressible blob, a raw one, an empty-ish one */
	for (int i = 0; i < 3; i++) {
		const void *d = i == 0 ? (const void *)data : texts[i - 1];
		size_t dl = i == 0 ? sizeof data : strlen(texts[i - 1]);
		char name[32];
		err_clear(&e);
		crypto_blob_id(fuzz_key(), d, dl, id);
		if (pack_blob_encode(codec, fuzz_key(), id, d, dl, sealed, &slen, &e) < 0)
			die("pack_blob_encode", &e);
		pack_builder_add(b, id, PACK_BLOB_DATA, (uint32_t)dl, sealed, slen);
		/* fuzz_blob mode 2: data to round-trip */
		snprintf(name, sizeof name, "roundtrip%d", i);
		seed("blob", name, 2, "\0\0\0\0", 4, d, dl);
	}
	{
		/* fuzz_blob mode 1: plaintexts, raw (flag 0) and zstd (flag 1) */
		uint8_t pt[1 + 256], z[1024];
		size_t zl;
		put_le32(rawlen, 11);
		pt[0] = 0;
		memcpy(pt + 1, "hello, blob", 11);
		seed("blob", "plain-raw", 1, rawlen, 4, pt, 12);
		zl = ZSTD_compress(z + 1, sizeof z - 1, data, 1000, 3);
		if (ZSTD_isError(zl))
			die("zstd", NULL);
		z[0] = 1;
		put_le32(rawlen, 1000);
		seed("blob", "plain-zstd", 1, rawlen, 4, z, 1 + zl);
	}
	/* fuzz_blob mode 0: sealed blobs under the id the target uses (32 x 0x42) */
	memset(id, 0x42, sizeof id);
	for (int i = 0; i < 2; i++) {
		size_t dl = i ? 11 : sizeof data;
		err_clear(&e);
		if (pack_blob_encode(codec, fuzz_key(), id, i ? (const void *)"hello, blob" : data, dl, sealed, &slen,
				     &e) < 0)
			die("pack_blob_encode", &e);
		put_le32(rawlen, (uint32_t)dl);
		seed("blob", i ? "sealed-raw" : "sealed-zstd", 0, rawlen, 4, sealed, slen);
	}
	err_clear(&e);
	if (pack_builder_finish(b, fuzz_key(), pack_id, &e) < 0)
		die("pack_builder_finish", &e);
	pk = pack_builder_data(b, &len);
	seed("pack", "valid", 0, pk, len, NULL, 0);
	seed("pack", "header-only", 0, pk, PACK_HEADER_LEN, NULL, 0);
	/* fuzz_pack mode 1: blob area + trailer plaintext */
	ents = pack_builder_entries(b, &n);
	{
		size_t area = len - PACK_HEADER_LEN - 4 - (4 + n * PACK_ENTRY_LEN + CRYPTO_SEAL_OVERHEAD);
		uint8_t *in = malloc(2 + area + 4 + n * PACK_ENTRY_LEN);
		plain = in + 2 + area;
		if (!in)
			abort();
		in[0] = (uint8_t)area;
		in[1] = (uint8_t)(area >> 8);
		memcpy(in + 2, pk + PACK_HEADER_LEN, area);
		put_le32(plain, (uint32_t)n);
		for (size_t i = 0; i < n; i++) {
			uint8_t *p = plain + 4 + i * PACK_ENTRY_LEN;
			memcpy(p, ents[i].id, 32);
			p[32] = ents[i].type;
			put_le32(p + 33, ents[i].offset);
			put_le32(p + 37, ents[i].length);
			put_le32(p + 41, ents[i].raw);
		}
		seed("pack", "structured", 1, in, 2 + area + 4 + n * PACK_ENTRY_LEN, NULL, 0);
		free(in);
	}
	pack_builder_free(b);
	pack_codec_free(codec);
}

static void seeds_keyfile(void)
{
	static const struct keyfile_kdf kdfs[] = {{10, 8, 1}, {10, 1, 1}};
	uint8_t kf[KEYFILE_LEN];
	struct err e;
	for (size_t i = 0; i < sizeof kdfs / sizeof kdfs[0]; i++) {
		char name[32];
		err_clear(&e);
		if (keyfile_create(fuzz_key(), FUZZ_PASS, strlen(FUZZ_PASS), &kdfs[i], 1700000000, kf, &e) < 0)
			die("keyfile_create", &e);
		snprintf(name, sizeof name, "keyfile-r%u", kdfs[i].r);
		seed("keyfile", name, -1, kf, sizeof kf, NULL, 0);
	}
}

static void seeds_config(void)
{
	static const char ini[] =
		"; pgtimefs.conf\n"
		"[repository]\n"
		"zones = /srv/pgtimefs/zone-a /srv/pgtimefs/zone-b /srv/pgtimefs/zone-c\n"
		"passphrase-file = /etc/pgtimefs/passphrase   ; or PGTIMEFS_PASSPHRASE\n"
		"state-dir = \"/var/lib/pgtimefs\"\n"
		"# a comment\n"
		"[cluster   prod]\n"
		"size = 64KiB\n"
		"[node prod/worker1]\n"
		"pack-size = 16M\n";
	struct repo_config cfg;
	char text[2048];
	if (repo_config_default(&cfg, NULL) < 0)
		die("repo_config_default", NULL);
	repo_config_format(&cfg, text, sizeof text);
	seed("config", "repository", -1, text, strlen(text), NULL, 0);
	seed("config", "pgtimefs.conf", -1, ini, strlen(ini), NULL, 0);
	seed("config", "size", -1, "1GiB", 4, NULL, 0);
}

/* A real catalog copy made by catalog_copy_push in a scratch zone, sealed with the fixed key. */
static void seeds_catalog_copy(void)
{
	char tmp[] = "/tmp/pgtimefs-seeds-XXXXXX", zpath[4200], state[4200], db[4300], copy[4300];
	const char *paths[1];
	struct repo r;
	catalog *c = NULL;
	int64_t cl, node, snap, nb;
	struct catalog_entry en;
	struct nb_totals t = {1, 2, 3, 4};
	char name[48];
	uint8_t *buf;
	size_t len;
	struct err e;
	if (!mkdtemp(tmp))
		die("mkdtemp", NULL);
	snprintf(zpath, sizeof zpath, "%s/zone", tmp);
	snprintf(state, sizeof state, "%s/state", tmp);
	snprintf(db, sizeof db, "%s/catalog.db", state);
	paths[0] = zpath;
	memset(&r, 0, sizeof r);
	r.z = zones_new(paths, 1);
	r.key = (crypto_key *)fuzz_key();
	memset(r.cfg.id, 'a', 64);
	err_clear(&e);
	if (mkdir(state, 0700) < 0 || zones_create(r.z, &e) < 0 || catalog_open(db, 0, &c, &e) < 0 ||
	    catalog_meta_set(c, "repository", r.cfg.id, &e) < 0 || catalog_cluster_ensure(c, "prod", &cl, &e) < 0 ||
	    catalog_node_ensure(c, cl, "coord", &node, &e) < 0 ||
	    catalog_snapshot_begin(c, cl, "offline", &snap, &e) < 0 ||
	    catalog_node_backup_begin(c, snap, node, "/src", &nb, &e) < 0)
		die("making a catalog", &e);
	memset(&en, 0, sizeof en);
	en.mode = 040755;
	if (catalog_entry_add(c, nb, &en, &e) < 0 || catalog_node_backup_finish(c, nb, en.id, &t, &e) < 0 ||
	    catalog_snapshot_finish(c, snap, 1700000000000000ll, name, &e) < 0 ||
	    catalog_copy_push(c, &r, state, NULL, &e) < 0)
		die("making a catalog copy", &e);
	catalog_close(c);
	zones_file(r.z, 0, "catalog/00000000000000000001", copy, sizeof copy);
	if (util_read_small(copy, 64u << 20, &buf, &len, &e) < 0)
		die("reading the catalog copy", &e);
	seed("catalog_copy", "valid", 0, buf, len, NULL, 0);
	seed("catalog_copy", "header-only", 0, buf, 32, NULL, 0);
	free(buf);
	{
		/* mode 1: generation 1, one last frame of data to compress, one junk frame */
		uint8_t in[64];
		size_t k = 0;
		in[k++] = 1;	      /* generation */
		in[k++] = 1 | 2;      /* last, compress */
		in[k++] = 16;
		in[k++] = 0;
		memcpy(in + k, "SQLite format 3", 16);
		k += 16;
		seed("catalog_copy", "structured", 1, in, k, NULL, 0);
		in[1] = 2; /* not last: truncated */
		seed("catalog_copy", "structured-truncated", 1, in, k, NULL, 0);
	}
	zones_free(r.z);
	util_rm_rf(tmp, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
		return 2;
	}
	root = argv[1];
	if (util_mkdir_p(root, 0755, NULL) < 0)
		die(root, NULL);
	seeds_pack_blob();
	seeds_keyfile();
	seeds_config();
	seeds_catalog_copy();
	return 0;
}
