/*
 * tools.h: what the command groups of the pgtimefs binary share: the run context (global
 * options, the loaded configuration, the repository and catalog once opened) and the
 * helpers that set them up. Only tools/ may print to stdout or exit.
 */
#ifndef PGTIMEFS_TOOLS_TOOLS_H
#define PGTIMEFS_TOOLS_TOOLS_H

#include <stdio.h>

#include "catalog/catalog.h"
#include "common/config.h"
#include "common/err.h"
#include "store/repo.h"

struct ctx {
	const char *config_path;
	int json, quiet, wait_s;
	int config_faults; /* sections of the configuration that cannot be used (warned of at load) */
	struct config *cfg;
	char *zone_paths[ZONES_MAX];
	int nzones;
	char state_dir[2048];
	char catalog_file[2100];
	char *pass;
	size_t passlen;
	struct repo *repo;
	catalog *cat;
	int lock_fd;
	int catalog_first; /* setup_catalog: a free writer lock and the catalog before the key (wal-push) */
};

/* Loads the configuration named by -c, $PGTIMEFS_CONFIG or /etc/pgtimefs/pgtimefs.conf. */
int setup_config(struct ctx *x, struct err *e);
/* Reads the passphrase (passphrase-file, else $PGTIMEFS_PASSPHRASE). */
int setup_passphrase(struct ctx *x, struct err *e);
/*
 * Reads a secret from file (newline stripped) when given, else from env; what names it in
 * messages. ERR_CONFIG when neither is set or the secret is empty. *out: free() it.
 */
int read_secret(const char *file, const char *env, const char *what, char **out, size_t *len, struct err *e);
/* Opens the repository (config + passphrase first). */
int setup_repo(struct ctx *x, struct err *e);
/*
 * Opens the catalog; writable (1) also takes the writer lock; 2 also creates it; 3 (repair)
 * is 1 without the catalog copy a raised config seal pushes at once: repair checks the
 * catalog first and pushes its own copy only when the catalog passes (until one is pushed,
 * the next writer tries).
 */
int setup_catalog(struct ctx *x, int writable, struct err *e);
/*
 * 0 when a writer may write to every zone of the open repository: ERR_CONFIG when a zone is
 * another repository's, ERR_IO when one has no readable config (missing, unmounted, emptied,
 * unreadable) unless repair, whose work is to refill it. setup_catalog calls it for writers.
 */
int setup_writer_zones(struct ctx *x, int repair, struct err *e);
/* Releases everything. */
void setup_done(struct ctx *x);

/* Prints "pgtimefs: <msg>" and the hint; returns the exit code for the error (1, or 2 for usage). */
int report(const struct err *e);
/* Prints a usage error and returns 2. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Whether s may name a cluster or a node: 1 to 100 bytes, no '/' or control character, and
 * none of the names the mount gives its own entries (".", "..", "latest", "at", "wal",
 * "restore.json": a node so named would be hidden in an at/ view by the view's own file).
 */
int tools_valid_name(const char *s);
/* A whole decimal integer in [min, max] ("12x", "", overflow: -1), into *out. */
int tools_parse_long(const char *s, long min, long max, long *out);
/* Seconds: a number with an optional unit s, m or h ("90", "1.5m", "2h"), in [min, max]; -1 else. */
int tools_parse_seconds(const char *s, double min, double max, double *out);

int cmd_init(struct ctx *x, int argc, char **argv);
int cmd_key(struct ctx *x, int argc, char **argv);
int cmd_snapshot(struct ctx *x, int argc, char **argv);
int cmd_list(struct ctx *x, int argc, char **argv);
int cmd_ls(struct ctx *x, int argc, char **argv);
int cmd_cat(struct ctx *x, int argc, char **argv);
int cmd_check(struct ctx *x, int argc, char **argv);
int cmd_repair(struct ctx *x, int argc, char **argv);
int cmd_backup(struct ctx *x, int argc, char **argv);
int cmd_restore_point(struct ctx *x, int argc, char **argv);
int cmd_wal_push(struct ctx *x, int argc, char **argv);
int cmd_wal_fetch(struct ctx *x, int argc, char **argv);
int cmd_wal_stream(struct ctx *x, int argc, char **argv);

/* [cluster NAME] / [node NAME/NODE] sections (cmd_backup.c) */
struct backup_node_spec;
/* The nodes of cluster from the configuration (*out: free(); strings point into x->cfg). */
int config_cluster_nodes(struct ctx *x, const char *cluster, struct backup_node_spec **out, int *n, struct err *e);
/* Prints the configured clusters and their nodes (only: one cluster, or NULL). */
void config_list_clusters(struct ctx *x, const char *only);
int cmd_mount(struct ctx *x, int argc, char **argv);
int cmd_delete(struct ctx *x, int argc, char **argv);
int cmd_restore(struct ctx *x, int argc, char **argv);

#endif
