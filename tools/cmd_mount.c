/* cmd_mount.c: mount MOUNTPOINT [-f] [-d] [-o OPTS], and delete CLUSTER TIME. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/copy.h"
#include "common/json.h"
#include "common/util.h"
#include "fs/mount.h"
#include "tools.h"

#define MOUNT_USAGE                                                                                    \
	"usage: pgtimefs mount MOUNTPOINT [-f] [-d] [-o OPTS]\n"                                        \
	"  -f            stay in the foreground (default: go to the background once mounted)\n"        \
	"  -d            libfuse debug output (implies -f)\n"                                           \
	"  -o OPTS       comma-separated: cache=SIZE (decoded-chunk cache, default 64M),\n"             \
	"                threads=N (session threads, default 8), readahead=KB (kernel read-ahead,\n"    \
	"                default 1024), keep_streams (keep the pages of files read in order in the\n"   \
	"                kernel's cache; by default they are dropped behind the reader, and kept\n"     \
	"                from a file's second read on), and FUSE options such as allow_other\n"        \
	"Leave with fusermount3 -u MOUNTPOINT (or SIGINT/SIGTERM to the mount process)."

/* takes our own keys out of the -o list into o; what is left goes to libfuse in rest */
static int parse_opts(const char *list, struct fs_mount_opts *o, char *rest, size_t cap, struct err *e)
{
	char *copy = xstrdup(list), *save = NULL, *tok;
	int rc = 0;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (!strncmp(tok, "cache=", 6)) {
			if (config_parse_size(tok + 6, &v) < 0 || v < (1u << 20))
				rc = err_set(e, ERR_USAGE, "-o cache=%s: give a size of at least 1M (like 256M or 1G)", tok + 6);
			else
				o->cache_bytes = (size_t)v;
		} else if (!strncmp(tok, "threads=", 8)) {
			long n;
			if (tools_parse_long(tok + 8, 1, 256, &n) < 0)
				rc = err_set(e, ERR_USAGE, "-o threads=%s: give 1 to 256", tok + 8);
			else
				o->threads = (int)n;
		} else if (!strncmp(tok, "readahead=", 10)) {
			long kb;
			if (tools_parse_long(tok + 10, 0, 1L << 20, &kb) < 0)
				rc = err_set(e, ERR_USAGE, "-o readahead=%s: give KiB, 0 to 1048576", tok + 10);
			else
				o->readahead_kb = (unsigned)kb;
		} else if (!strcmp(tok, "keep_streams")) {
			o->keep_streams = 1;
		} else if (!strcmp(tok, "ro") || !strcmp(tok, "default_permissions")) {
			/* always on */
		} else if (!strcmp(tok, "rw")) {
			rc = err_set(e, ERR_USAGE, "-o rw: the backups are read-only");
		} else if (strchr(tok, '\\')) {
			/* libfuse reads \, and \ooo as escapes where the list was split here: what it
			 * would see (r\w is rw) could differ from what was checked */
			rc = err_set(e, ERR_USAGE, "-o %s: a backslash is not allowed in mount options", tok);
		} else {
			size_t len = strlen(rest);
			if ((size_t)snprintf(rest + len, cap - len, "%s%s", len ? "," : "", tok) >= cap - len)
				rc = err_set(e, ERR_USAGE, "-o: the options are too long (more than %zu characters)", cap - 1);
		}
	}
	free(copy);
	return rc;
}

static void announce(const char *mountpoint)
{
	fprintf(stderr, "pgtimefs: mounted on %s (read-only); leave with: fusermount3 -u %s\n", mountpoint, mountpoint);
}

int cmd_mount(struct ctx *x, int argc, char **argv)
{
	struct fs_mount_opts o;
	struct err e;
	char rest[1024] = "";
	const char *optv[16], *v;
	int nopt = 0, rc;
	err_clear(&e);
	memset(&o, 0, sizeof o);
	o.cache_bytes = 64u << 20;
	o.threads = 8;
	o.readahead_kb = 1024;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f")) {
			o.foreground = 1;
		} else if (!strcmp(argv[i], "-d")) {
			o.debug = 1;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc && nopt < 16) {
			optv[nopt++] = argv[++i];
		} else if (!strncmp(argv[i], "-o", 2) && argv[i][2] && nopt < 16) {
			optv[nopt++] = argv[i] + 2;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			puts(MOUNT_USAGE);
			return 0;
		} else if (argv[i][0] != '-' && !o.mountpoint) {
			o.mountpoint = argv[i];
		} else {
			return usage_error("%s", MOUNT_USAGE);
		}
	}
	if (!o.mountpoint)
		return usage_error("%s", MOUNT_USAGE);
	/* fail fast, before the passphrase and the key derivation */
	if ((rc = fs_mount_check(o.mountpoint, &e)) < 0)
		return report(&e);
	if ((rc = setup_config(x, &e)) < 0)
		return report(&e);
	/* [mount] cache-size in the config, then -o on the command line */
	if ((v = config_get(x->cfg, "mount", "cache-size"))) {
		uint64_t n;
		if (config_parse_size(v, &n) < 0 || n < (1u << 20)) {
			err_set(&e, ERR_CONFIG, "%s: [mount] cache-size = %s: give a size of at least 1M", x->config_path, v);
			return report(&e);
		}
		o.cache_bytes = (size_t)n;
	}
	for (int i = 0; i < nopt; i++)
		if (parse_opts(optv[i], &o, rest, sizeof rest, &e) < 0)
			return usage_error("%s", e.msg);
	o.fuse_opts = rest;
	if (!x->quiet)
		o.on_mounted = announce;
	if ((rc = setup_catalog(x, 0, &e)) < 0)
		return report(&e);
	{
		/* the state directory and every zone must stay visible to the mount itself */
		const char *what[1 + ZONES_MAX], *paths[1 + ZONES_MAX];
		char names[ZONES_MAX][16];
		int n = 0;
		what[n] = "the state directory", paths[n++] = x->state_dir;
		for (int i = 0; i < zones_count(x->repo->z) && i < ZONES_MAX; i++) {
			snprintf(names[i], sizeof names[i], "zone %d", i + 1);
			what[n] = names[i], paths[n++] = zones_path(x->repo->z, i);
		}
		if ((rc = fs_mount_check_hides(o.mountpoint, what, paths, n, &e)) < 0)
			return report(&e);
	}
	if ((rc = fs_mount_run(x->repo, x->catalog_file, &o, &e)) < 0)
		return report(&e);
	return 0;
}

int cmd_delete(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct catalog_snapshot s;
	int64_t cluster;
	uint64_t gen = 0;
	int rc;
	err_clear(&e);
	if (argc != 3)
		return usage_error("usage: pgtimefs delete CLUSTER TIME   (TIME: the snapshot's name, as `pgtimefs list` shows it)");
	if ((rc = setup_catalog(x, 1, &e)) < 0)
		return report(&e);
	if ((rc = catalog_cluster_find(x->cat, argv[1], &cluster, &e)) < 0 ||
	    (rc = catalog_snapshot_by_name(x->cat, cluster, argv[2], &s, &e)) < 0) {
		err_hint(&e, "`pgtimefs list %s` shows the snapshots", argv[1]);
		return report(&e);
	}
	if ((rc = catalog_begin(x->cat, &e)) < 0)
		return report(&e);
	if ((rc = catalog_snapshot_delete(x->cat, s.id, &e)) < 0 || (rc = catalog_commit(x->cat, &e)) < 0) {
		catalog_rollback(x->cat);
		return report(&e);
	}
	if ((rc = catalog_copy_push(x->cat, x->repo, x->state_dir, &gen, &e)) < 0) {
		if (rc != ERR_CONFIG) /* ERR_CONFIG: this catalog is behind the zones; its own hint says why */
			err_hint(&e, "the snapshot is deleted from the local catalog; run any command that writes (or "
				     "delete again later) to refresh the copies in the zones");
		return report(&e);
	}
	if (x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "cluster");
		json_str(&j, argv[1]);
		json_key(&j, "deleted");
		json_str(&j, s.name);
		json_obj_end(&j);
		json_end(&j);
	} else if (!x->quiet) {
		printf("deleted snapshot %s of %s (its data stays in the zones until pruned)\n", s.name, argv[1]);
	}
	return 0;
}
