/*
 * manifest.h: restore.json, the description of a cluster at time T that the mount shows as
 * MOUNT/<cluster>/at/<T>/restore.json: the fields below, as the at/ view's contract gives
 * them (the view itself is documented with fs/).
 *
 * restore_manifest_parse reads the bytes of the file (small: at most RESTORE_MANIFEST_MAX)
 * and fills a struct restore_manifest that owns all its strings; restore_manifest_free
 * releases it (NULL-safe). Unknown keys are ignored, so the file can grow. The parser is a
 * strict RFC 8259 reader (no comments, no trailing commas) bounded in depth. Thread-safe.
 */
#ifndef PGTIMEFS_RESTORE_MANIFEST_H
#define PGTIMEFS_RESTORE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define RESTORE_MANIFEST_MAX (1u << 20)

struct restore_manifest_node {
	char *name;
	char *pg_version;    /* "15.4" */
	int pg_major;	      /* 15 */
	char *citus_version; /* NULL when the node had no Citus */
	char *system_id;     /* may be NULL */
	int64_t timeline;    /* 0 when absent */
};

struct restore_manifest {
	char *cluster;
	char *time;	 /* T normalized, as the mount names it */
	int64_t time_us;
	char *snapshot;	 /* may be NULL */
	char *target;	 /* "time" or "end" */
	char *rp_name;	 /* the restore point: NULL when there is none */
	char *rp_time;
	int64_t rp_time_us;
	struct restore_manifest_node *nodes;
	int nnodes;
};

/*
 * Parses len bytes of JSON into m (zeroed first). ERR_CORRUPT with a message naming the
 * key when the text is not JSON or a required key (cluster, time, time_us, target, nodes,
 * and per node name and pg_version) is missing or of the wrong type; on error m holds
 * nothing to free.
 */
int restore_manifest_parse(const char *text, size_t len, struct restore_manifest *m, struct err *e);

/* Releases what m owns; m may be NULL. */
void restore_manifest_free(struct restore_manifest *m);

#endif
