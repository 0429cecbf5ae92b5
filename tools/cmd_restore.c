/*
 * cmd_restore.c: restore --from MOUNT --cluster C --time T --target DIR [--consistent]
 * [--start] [--port N] [--name NEW] [--socket-dir DIR] [--pg-bin DIR]: the command line of
 * restore/restore.h, its summary and its --json output.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"
#include "restore/restore.h"
#include "tools.h"

static const char restore_usage[] =
	"usage: pgtimefs restore --from MOUNT --cluster C --time T --target DIR [--consistent] [--start]\n"
	"                        [--port N] [--name NEW] [--socket-dir DIR] [--pg-bin DIR] [--allow-tablespace-links]";

static atomic_int interrupted;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&interrupted, 1);
}

static void note_stderr(const char *line)
{
	fprintf(stderr, "pgtimefs: %s\n", line);
}

static const char *target_words(const struct restore_result *r, char *buf, size_t cap)
{
	if (!strcmp(r->target_kind, "restore-point"))
		snprintf(buf, cap, "restore point '%s' (%s), the same on every node (recovery_target_name)", r->restore_point,
			 r->target_time[0] ? r->target_time : "time unknown");
	else if (!strcmp(r->target_kind, "time"))
		snprintf(buf, cap, "time %s (recovery_target_time)", r->target_time);
	else
		snprintf(buf, cap, "the end of the archived WAL (%s is at or after its last transaction)", r->time);
	return buf;
}

#define NEXT_MAX 5 /* next_step's cases */

/* The i-th line of "next steps" into line; 0 when there is none for this result. */
static int next_step(const struct restore_result *r, const char *dir, int i, char *line, size_t cap)
{
	switch (i) {
	case 0:
		if (r->started)
			return 0;
		snprintf(line, cap,
			 "start the nodes (as %s): pg_ctl -D %s/NODE -l %s/NODE.log start  (each recovers to the target, "
			 "then promotes)",
			 r->user, dir, dir);
		return 1;
	case 1:
		if (!r->nnodes)
			return 0;
		snprintf(line, cap, "connect (as %s): psql -h %s -p %d", r->user, r->socket_dir, r->nodes[0].port);
		return 1;
	case 2:
		snprintf(line, cap,
			 "back it up: add the sections of %s to the pgtimefs configuration (this restore wrote no catalog)",
			 r->conf);
		return 1;
	case 3:
		snprintf(line, cap,
			 "open network access: in each postgresql.conf set listen_addresses = '*', and in pg_hba.conf add a "
			 "line above the reject lines, e.g. `host all all 10.0.0.0/8 scram-sha-256`; then restart the node");
		return 1;
	case 4:
		snprintf(line, cap,
			 "logical replication is off (max_logical_replication_workers = 0 in postgresql.auto.conf): the "
			 "backup's subscriptions point at the original's publishers; point them elsewhere or drop them "
			 "(ALTER SUBSCRIPTION ... DISABLE; ... SET (slot_name = NONE)) before you remove that line");
		return 1;
	}
	return 0;
}

static void print_summary(const struct restore_result *r, const char *dir)
{
	char h[32], tw[512];
	printf("restored cluster %s at %s into %s as %s\n", r->cluster, r->time, dir, r->name);
	printf("  target:     %s\n", target_words(r, tw, sizeof tw));
	printf("  snapshot:   %s\n", r->snapshot[0] ? r->snapshot : "-");
	printf("  PostgreSQL: %s%s%s; owner %s; sockets in %s\n", r->pg_version, r->citus_version[0] ? ", Citus " : "",
	       r->citus_version, r->user, r->socket_dir);
	printf("  %-20s %6s %12s %8s  %s\n", "node", "port", "size", "files", r->started ? "last transaction replayed" : "");
	for (int i = 0; i < r->nnodes; i++) {
		util_human_bytes(r->nodes[i].bytes, h, sizeof h);
		printf("  %-20s %6d %12s %8llu  %s\n", r->nodes[i].name, r->nodes[i].port, h,
		       (unsigned long long)r->nodes[i].files,
		       r->started ? (r->nodes[i].reached[0] ? r->nodes[i].reached : "none") : "");
	}
	util_human_bytes(r->bytes, h, sizeof h);
	printf("  total %s in %.1f s%s\n", h, r->seconds, r->started ? "; every node promoted and answers" : "");
	printf("next steps:\n");
	for (int i = 0; i < NEXT_MAX; i++) {
		char line[RESTORE_PATH_MAX * 3];
		if (next_step(r, dir, i, line, sizeof line))
			printf("  %s\n", line);
	}
}

static void print_json(const struct restore_result *r, const char *dir)
{
	struct json j;
	json_init(&j, stdout);
	json_obj(&j);
	json_key(&j, "cluster");
	json_str(&j, r->cluster);
	json_key(&j, "name");
	json_str(&j, r->name);
	json_key(&j, "time");
	json_str(&j, r->time);
	json_key(&j, "snapshot");
	json_str(&j, r->snapshot[0] ? r->snapshot : NULL);
	json_key(&j, "target");
	json_obj(&j);
	json_key(&j, "kind");
	json_str(&j, r->target_kind);
	json_key(&j, "time");
	json_str(&j, r->target_time[0] ? r->target_time : NULL);
	json_key(&j, "restore_point");
	json_str(&j, r->restore_point[0] ? r->restore_point : NULL);
	json_obj_end(&j);
	json_key(&j, "target_dir");
	json_str(&j, dir);
	json_key(&j, "config");
	json_str(&j, r->conf);
	json_key(&j, "pg_version");
	json_str(&j, r->pg_version);
	json_key(&j, "citus_version");
	json_str(&j, r->citus_version[0] ? r->citus_version : NULL);
	json_key(&j, "user");
	json_str(&j, r->user);
	json_key(&j, "socket_dir");
	json_str(&j, r->socket_dir);
	json_key(&j, "started");
	json_bool(&j, r->started);
	json_key(&j, "bytes");
	json_int(&j, (int64_t)r->bytes);
	json_key(&j, "milliseconds");
	json_int(&j, (int64_t)(r->seconds * 1000));
	json_key(&j, "nodes");
	json_arr(&j);
	for (int i = 0; i < r->nnodes; i++) {
		json_obj(&j);
		json_key(&j, "name");
		json_str(&j, r->nodes[i].name);
		json_key(&j, "data_dir");
		json_str(&j, r->nodes[i].dir);
		json_key(&j, "port");
		json_int(&j, r->nodes[i].port);
		json_key(&j, "bytes");
		json_int(&j, (int64_t)r->nodes[i].bytes);
		json_key(&j, "files");
		json_int(&j, (int64_t)r->nodes[i].files);
		json_key(&j, "reached");
		json_str(&j, r->nodes[i].reached[0] ? r->nodes[i].reached : NULL);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "next_steps");
	json_arr(&j);
	for (int i = 0; i < NEXT_MAX; i++) {
		char line[RESTORE_PATH_MAX * 3];
		if (next_step(r, dir, i, line, sizeof line))
			json_str(&j, line);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end(&j);
}

int cmd_restore(struct ctx *x, int argc, char **argv)
{
	struct restore_opts o;
	struct restore_result r;
	struct err e;
	int rc;
	memset(&o, 0, sizeof o);
	err_clear(&e);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--consistent")) {
			o.consistent = 1;
			continue;
		}
		if (!strcmp(a, "--start")) {
			o.start = 1;
			continue;
		}
		if (!strcmp(a, "--allow-tablespace-links")) {
			o.allow_tablespace_links = 1;
			continue;
		}
		if (!v)
			return usage_error("%s\n(unknown or incomplete option %s)", restore_usage, a);
		if (!strcmp(a, "--from"))
			o.mount = v;
		else if (!strcmp(a, "--cluster"))
			o.cluster = v;
		else if (!strcmp(a, "--time"))
			o.time = v;
		else if (!strcmp(a, "--target"))
			o.target = v;
		else if (!strcmp(a, "--name"))
			o.name = v;
		else if (!strcmp(a, "--socket-dir"))
			o.socket_dir = v;
		else if (!strcmp(a, "--pg-bin"))
			o.pg_bin = v;
		else if (!strcmp(a, "--port")) {
			char *end;
			long p = strtol(v, &end, 10);
			if (*end || p < 1 || p > 65535)
				return usage_error("--port %s is not a port number", v);
			o.port = (int)p;
		} else
			return usage_error("%s\n(unknown option %s)", restore_usage, a);
		i++;
	}
	if (!o.mount || !o.cluster || !o.time || !o.target)
		return usage_error("%s\n(--from, --cluster, --time and --target are required)", restore_usage);
	/* both go into pgtimefs-cluster.conf: a section name, and an unquoted conninfo host */
	if (o.name && (!*o.name || o.name[strcspn(o.name, "/] \t\r\n;#\"'\\")]))
		return usage_error("--name must be non-empty, without '/', ']', blanks, quotes, backslashes, ';' or '#'");
	if (o.socket_dir && o.socket_dir[strcspn(o.socket_dir, " \t\r\n'\\")])
		return usage_error("--socket-dir must be a directory path without blanks, quotes or backslashes");
	o.progress = !x->json && !x->quiet && isatty(2);
	o.note = x->json || x->quiet ? NULL : note_stderr;
	{
		/* Ctrl-C or a TERM during the copy: stop, and say so in RESTORE-INCOMPLETE */
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		o.cancel = &interrupted;
	}
	rc = restore_run(&o, &r, &e);
	if (rc < 0) {
		for (int i = 0; i < r.nnodes; i++) {
			if (!r.nodes[i].error[0])
				continue;
			fprintf(stderr, "pgtimefs: node %s: %s\n", r.nodes[i].name, r.nodes[i].error);
			if (r.nodes[i].log_tail[0])
				fprintf(stderr, "--- the last lines of %s/%s.log ---\n%s\n---\n", o.target, r.nodes[i].name,
					r.nodes[i].log_tail);
		}
		{
			char marker[RESTORE_PATH_MAX + 32];
			snprintf(marker, sizeof marker, "%s/RESTORE-INCOMPLETE", o.target);
			if (access(marker, F_OK) == 0)
				fprintf(stderr, "pgtimefs: %s is marked incomplete (%s)\n", o.target, marker);
		}
		rc = report(&e);
		restore_result_free(&r);
		return rc;
	}
	{
		char dir[RESTORE_PATH_MAX];
		if (!realpath(o.target, dir))
			snprintf(dir, sizeof dir, "%s", o.target);
		if (x->json)
			print_json(&r, dir);
		else if (!x->quiet)
			print_summary(&r, dir);
	}
	restore_result_free(&r);
	return 0;
}
