/* cmd_backup.c: backup CLUSTER [--full], restore-point CLUSTER [NAME], and the clusters of the configuration. */
#include <stdlib.h>
#include <string.h>

#include "backup/cluster.h"
#include "catalog/copy.h"
#include "common/json.h"
#include "common/util.h"
#include "tools.h"

/* "kind NAME" section names: the NAME part when the section is of that kind, else NULL. */
static const char *section_arg(const char *sec, const char *kind)
{
	size_t k = strlen(kind);
	if (strncmp(sec, kind, k) || (sec[k] != ' ' && sec[k] != '\t'))
		return NULL;
	sec += k;
	while (*sec == ' ' || *sec == '\t')
		sec++;
	return *sec ? sec : NULL;
}

/* conninfo with the value of password= (keyword form) or of a URI's user:password@ hidden */
static void conninfo_masked(const char *ci, char *out, size_t cap)
{
	const char *p = strstr(ci, "password="), *at, *colon, *scheme = strstr(ci, "://");
	if (p && (p == ci || p[-1] == ' ' || p[-1] == '\t')) {
		const char *end = p + 9;
		if (*end == '\'') { /* a quoted value: to its closing quote */
			for (end++; *end && *end != '\''; end++)
				if (*end == '\\' && end[1])
					end++;
			if (*end)
				end++;
		} else {
			end += strcspn(end, " \t");
		}
		snprintf(out, cap, "%.*spassword=***%s", (int)(p - ci), ci, end);
		return;
	}
	if (scheme && (at = strchr(scheme + 3, '@')) && (colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3)))) {
		snprintf(out, cap, "%.*s:***%s", (int)(colon - ci), ci, at);
		return;
	}
	snprintf(out, cap, "%s", ci);
}

int config_cluster_nodes(struct ctx *x, const char *cluster, struct backup_node_spec **out, int *n, struct err *e)
{
	size_t len = strlen(cluster);
	int found = 0;
	*out = NULL;
	*n = 0;
	if (x->config_faults) {
		/* one of them may be a node of this cluster misspelled: a backup would leave it out */
		err_set(e, ERR_CONFIG, "%s: %d section%s cannot be used (named above)", x->config_path, x->config_faults,
			x->config_faults == 1 ? "" : "s");
		err_hint(e, "correct them: a misspelled [node ...] section would leave its node out of the cluster");
		return ERR_CONFIG;
	}
	for (size_t i = 0; i < config_nsections(x->cfg); i++) {
		const char *sec = config_section(x->cfg, i), *a;
		if ((a = section_arg(sec, "cluster")) && !strcmp(a, cluster))
			found = 1;
		if ((a = section_arg(sec, "node")) && !strncmp(a, cluster, len) && a[len] == '/' && a[len + 1]) {
			struct backup_node_spec *s;
			const char *ci = config_get(x->cfg, sec, "conninfo");
			const char *dd = config_get(x->cfg, sec, "data-dir");
			if (!ci || !*ci) {
				free(*out);
				*out = NULL;
				*n = 0;
				err_set(e, ERR_CONFIG, "%s: [%s] has no conninfo", x->config_path, sec);
				err_hint(e, "add e.g. 'conninfo = host=/var/run/postgresql port=5432 user=postgres dbname=postgres'");
				return ERR_CONFIG;
			}
			*out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
			s = &(*out)[(*n)++];
			s->name = a + len + 1;
			s->conninfo = ci;
			s->data_dir = dd && *dd ? dd : NULL;
		}
	}
	if (!*n) {
		err_set(e, ERR_CONFIG, "%s: cluster %s has no [node %s/NAME] sections%s", x->config_path, cluster, cluster,
			found ? "" : " (and no [cluster] section)");
		err_hint(e, "add a section per node: [node %s/coordinator] with conninfo = ... (and data-dir = ... when local)",
			 cluster);
		return ERR_CONFIG;
	}
	return 0;
}

void config_list_clusters(struct ctx *x, const char *only)
{
	int any = 0;
	for (size_t i = 0; i < config_nsections(x->cfg); i++) {
		const char *c = section_arg(config_section(x->cfg, i), "cluster");
		struct backup_node_spec *specs;
		int n;
		struct err e;
		if (!c || (only && strcmp(c, only)))
			continue;
		if (!any)
			printf("\nconfigured clusters:\n");
		any = 1;
		if (config_cluster_nodes(x, c, &specs, &n, &e) < 0) {
			printf("  %s: no nodes\n", c);
			continue;
		}
		printf("  %s:\n", c);
		for (int k = 0; k < n; k++) {
			char shown[1024];
			conninfo_masked(specs[k].conninfo, shown, sizeof shown);
			printf("    %-20s %s  (%s)\n", specs[k].name, shown, specs[k].data_dir ? specs[k].data_dir : "streaming");
		}
		free(specs);
	}
}

static void json_node(struct json *j, const struct backup_node *nd)
{
	char lsn[32];
	json_obj(j);
	json_key(j, "node");
	json_str(j, nd->name);
	json_key(j, "path");
	json_str(j, nd->data_dir ? "local" : "stream");
	pg_lsn_format(nd->start_lsn, lsn);
	json_key(j, "start_lsn");
	json_str(j, lsn);
	pg_lsn_format(nd->stop_lsn, lsn);
	json_key(j, "stop_lsn");
	json_str(j, lsn);
	json_key(j, "timeline");
	json_int(j, nd->timeline);
	json_key(j, "system_id");
	json_str(j, nd->info.system_id);
	json_key(j, "pg_version");
	json_str(j, nd->info.version);
	json_key(j, "citus_version");
	json_str(j, nd->info.citus_version[0] ? nd->info.citus_version : NULL);
	json_key(j, "data_checksums");
	json_bool(j, nd->info.data_checksums);
	json_key(j, "files");
	json_int(j, (int64_t)nd->st.files);
	json_key(j, "files_reused");
	json_int(j, (int64_t)nd->st.files_reused);
	json_key(j, "bytes");
	json_int(j, (int64_t)nd->st.bytes);
	json_key(j, "bytes_read");
	json_int(j, (int64_t)nd->st.bytes_read);
	json_key(j, "new_bytes");
	json_int(j, (int64_t)nd->st.new_bytes);
	json_key(j, "stored_bytes");
	json_int(j, (int64_t)nd->st.stored_bytes);
	json_key(j, "delta_chunks");
	json_int(j, (int64_t)nd->st.delta_chunks);
	json_key(j, "pages_checked");
	json_int(j, (int64_t)nd->pages_checked);
	json_key(j, "damaged_pages");
	json_arr(j);
	for (size_t i = 0; i < nd->ndamaged; i++) {
		json_obj(j);
		json_key(j, "file");
		json_str(j, nd->damaged[i].path);
		json_key(j, "block");
		json_int(j, nd->damaged[i].block);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "milliseconds");
	json_int(j, (int64_t)(nd->seconds * 1000));
	json_obj_end(j);
}

int cmd_backup(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct backup_opts o;
	struct backup_result res;
	struct backup_node_spec *specs = NULL;
	const char *cluster = NULL;
	int n = 0, full = 0, rc, lock_ms = 10000;
	err_clear(&e);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--full"))
			full = 1;
		else if (!strcmp(argv[i], "--lock-timeout") && i + 1 < argc) {
			long ms;
			if (tools_parse_long(argv[++i], 0, 24L * 3600 * 1000, &ms) < 0)
				return usage_error("--lock-timeout takes milliseconds (0 to 86400000), not '%s'", argv[i]);
			lock_ms = (int)ms;
		}
		else if (!cluster && argv[i][0] != '-')
			cluster = argv[i];
		else
			return usage_error("usage: pgtimefs backup CLUSTER [--full] [--lock-timeout MS]");
	}
	if (!cluster)
		return usage_error("usage: pgtimefs backup CLUSTER [--full] [--lock-timeout MS]");
	if ((rc = setup_config(x, &e)) < 0 || (rc = config_cluster_nodes(x, cluster, &specs, &n, &e)) < 0)
		return report(&e);
	if ((rc = setup_catalog(x, 1, &e)) < 0) {
		free(specs);
		return report(&e);
	}
	memset(&o, 0, sizeof o);
	o.full = full;
	o.progress = !x->quiet && !x->json;
	o.lock_timeout_ms = lock_ms;
	o.stall_s = 1800;
	{
		const char *v = config_get(x->cfg, "repository", "backup-stall-timeout");
		double s;
		if (v && *v) {
			if (tools_parse_seconds(v, 0, 7 * 86400, &s) < 0) {
				free(specs);
				err_set(&e, ERR_CONFIG, "%s: [repository] backup-stall-timeout = %s: give seconds (like 1800, 30m or "
							"2h; 0: no limit)",
					x->config_path, v);
				return report(&e);
			}
			o.stall_s = (int)(s + 0.5);
		}
	}
	o.state_dir = x->state_dir;
	o.catalog_file = x->catalog_file;
	if ((rc = backup_cluster(x->repo, x->cat, cluster, specs, n, &o, &res, &e)) < 0) {
		free(specs);
		return report(&e);
	}
	if (x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "cluster");
		json_str(&j, cluster);
		json_key(&j, "snapshot");
		json_str(&j, res.name);
		json_key(&j, "restore_point");
		json_str(&j, res.restore_point);
		json_key(&j, "time_us");
		json_int(&j, res.time_us);
		json_key(&j, "files");
		json_int(&j, (int64_t)res.st.files);
		json_key(&j, "files_reused");
		json_int(&j, (int64_t)res.st.files_reused);
		json_key(&j, "bytes");
		json_int(&j, (int64_t)res.st.bytes);
		json_key(&j, "bytes_read");
		json_int(&j, (int64_t)res.st.bytes_read);
		json_key(&j, "new_bytes");
		json_int(&j, (int64_t)res.st.new_bytes);
		json_key(&j, "stored_bytes");
		json_int(&j, (int64_t)res.st.stored_bytes);
		json_key(&j, "delta_chunks");
		json_int(&j, (int64_t)res.st.delta_chunks);
		json_key(&j, "milliseconds");
		json_int(&j, (int64_t)(res.seconds * 1000));
		json_key(&j, "nodes");
		json_arr(&j);
		for (int i = 0; i < res.nnodes; i++)
			json_node(&j, &res.nodes[i]);
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
	} else if (!x->quiet) {
		char total[24], fresh[24];
		util_human_bytes(res.st.bytes, total, sizeof total);
		util_human_bytes(res.st.new_bytes, fresh, sizeof fresh);
		printf("backup %s/%s: %d nodes, %s, %s new; restore point %s; %.2f s\n", cluster, res.name, res.nnodes,
		       total, fresh, res.restore_point, res.seconds);
		for (int i = 0; i < res.nnodes; i++) {
			const struct backup_node *nd = &res.nodes[i];
			char a[32], b[32], sz[24];
			pg_lsn_format(nd->start_lsn, a);
			pg_lsn_format(nd->stop_lsn, b);
			util_human_bytes(nd->st.bytes, sz, sizeof sz);
			printf("  %-16s %-6s %s..%s tli %u, %llu files (%llu unchanged), %s, %.2f s\n", nd->name,
			       nd->data_dir ? "local" : "stream", a, b, nd->timeline, (unsigned long long)nd->st.files,
			       (unsigned long long)nd->st.files_reused, sz, nd->seconds);
			for (size_t k = 0; k < nd->ndamaged && k < 20; k++)
				printf("    WARNING: damaged page: %s block %u\n", nd->damaged[k].path, nd->damaged[k].block);
			if (nd->ndamaged > 20)
				printf("    WARNING: %zu damaged pages in all (--json lists every one)\n", nd->ndamaged);
		}
	}
	backup_result_release(&res);
	free(specs);
	return 0;
}

int cmd_restore_point(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct backup_node_spec *specs = NULL;
	char name[96];
	int64_t time_us;
	uint64_t gen;
	int n = 0, rc;
	err_clear(&e);
	if (argc < 2 || argc > 3)
		return usage_error("usage: pgtimefs restore-point CLUSTER [NAME]");
	if ((rc = setup_config(x, &e)) < 0 || (rc = config_cluster_nodes(x, argv[1], &specs, &n, &e)) < 0)
		return report(&e);
	if ((rc = setup_catalog(x, 1, &e)) < 0 ||
	    (rc = backup_restore_point(x->cat, argv[1], specs, n, argc == 3 ? argv[2] : NULL, 10000, 0, name, &time_us,
				       &e)) < 0) {
		free(specs);
		return report(&e);
	}
	if ((rc = catalog_copy_push(x->cat, x->repo, x->state_dir, &gen, &e)) < 0) {
		free(specs);
		err_prefix(&e, "restore point %s is recorded, but its catalog copy failed", name);
		if (rc != ERR_CONFIG) /* ERR_CONFIG: this catalog is behind the zones; its own hint says why */
			err_hint(&e, "fix the zone (space, permissions, mount), then run 'pgtimefs repair' to push the "
				     "copy (do not make the restore point again)");
		return report(&e);
	}
	free(specs);
	if (x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "cluster");
		json_str(&j, argv[1]);
		json_key(&j, "restore_point");
		json_str(&j, name);
		json_key(&j, "time_us");
		json_int(&j, time_us);
		json_obj_end(&j);
		json_end(&j);
	} else if (!x->quiet) {
		printf("restore point %s created on cluster %s\n", name, argv[1]);
	}
	return 0;
}
