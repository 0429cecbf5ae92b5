#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/copy.h"
#include "common/timefmt.h"
#include "common/util.h"

#define STOPPED_MSG "stopped: another node failed"

struct rp_node {
	PGconn *conn;
	char lsn[32];
	int citus, coordinator;
};

int backup_restore_point(catalog *c, const char *cluster, const struct backup_node_spec *specs, int n,
			 const char *name, int lock_timeout_ms, int64_t snap, char name_out[96], int64_t *time_us,
			 struct err *e)
{
	struct rp_node *rn = xcalloc((size_t)n, sizeof *rn);
	char buf[64], tmp[TIMEFMT_MAX];
	int rc = 0, coord = -1, in_tx = 0;
	int64_t cl, rp;
	*time_us = 0;
	if (name) {
		/* recovery_target_name stops at the first record of a name: one name, one point */
		snprintf(name_out, 96, "%s", name);
		if (c && catalog_cluster_find(c, cluster, &cl, NULL) == 0 &&
		    (rc = catalog_restore_point_named(c, cl, name, e)) != ERR_NOTFOUND) {
			if (rc == 0) {
				rc = err_set(e, ERR_EXISTS, "cluster %s has a restore point called %s already", cluster, name);
				err_hint(e, "give each restore point a name of its own: recovery to a name stops at its first "
					    "point");
			}
			free(rn);
			return rc;
		}
		rc = 0;
	} else {
		/* microseconds: two points in one second get names of their own */
		timefmt_print(util_now_us(), 1, tmp);
		snprintf(name_out, 96, "pgtimefs-%s", tmp);
	}
	for (int i = 0; i < n && rc == 0; i++) {
		if ((rc = pg_connect(specs[i].name, specs[i].conninfo, 0, &rn[i].conn, e)) < 0)
			break;
		if ((rc = pg_query1(rn[i].conn, specs[i].name, "SELECT extversion FROM pg_extension WHERE extname = 'citus'",
				    0, NULL, buf, sizeof buf, e)) < 0)
			break;
		rn[i].citus = buf[0] != '\0';
		if (rn[i].citus && pg_query1(rn[i].conn, specs[i].name, "SELECT citus_is_coordinator()::text", 0, NULL, buf,
					     sizeof buf, NULL) == 0 && !strcmp(buf, "true") && coord < 0)
			coord = i;
	}
	if (rc < 0)
		goto out;
	if (coord < 0)
		for (int i = 0; i < n && coord < 0; i++)
			if (rn[i].citus)
				coord = i;
	{
		const char *p[] = {name_out};
		const char *sql = "SELECT lsn::text, (extract(epoch from clock_timestamp()) * 1000000)::bigint::text"
				  " FROM pg_create_restore_point($1) lsn";
		int from = 0, to = n;
		if (coord >= 0) { /* Citus: one restore point, taken on every node under its commit lock */
			char set[64];
			snprintf(set, sizeof set, "SET lock_timeout = %d", lock_timeout_ms > 0 ? lock_timeout_ms : 10000);
			if ((rc = pg_exec(rn[coord].conn, specs[coord].name, set, e)) < 0)
				goto out;
			sql = "SELECT lsn::text, (extract(epoch from clock_timestamp()) * 1000000)::bigint::text"
			      " FROM citus_create_restore_point($1) lsn";
			from = coord;
			to = coord + 1;
		}
		for (int i = from; i < to; i++) {
			PGresult *res = PQexecParams(rn[i].conn, sql, 1, NULL, p, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
				char msg[600];
				snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
				msg[strcspn(msg, "\n")] = '\0';
				rc = err_set(e, ERR_IO, "node %s: creating restore point %s failed: %s", specs[i].name, name_out,
					     msg);
				if (strstr(msg, "lock timeout"))
					err_hint(e, "the cluster was busy with distributed writes; retry, or raise the lock timeout");
				PQclear(res);
				goto out;
			}
			snprintf(rn[i].lsn, sizeof rn[i].lsn, "%s", PQgetvalue(res, 0, 0));
			{
				int64_t t = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
				if (t > *time_us)
					*time_us = t;
			}
			PQclear(res);
		}
	}
	if (!c)
		goto out;
	if ((rc = catalog_begin(c, e)) < 0)
		goto out;
	in_tx = 1;
	if ((rc = catalog_cluster_ensure(c, cluster, &cl, e)) < 0 ||
	    (rc = catalog_restore_point_add(c, cl, name_out, *time_us, snap, &rp, e)) < 0)
		goto out;
	for (int i = 0; i < n; i++) {
		int64_t nd;
		if (!rn[i].lsn[0])
			continue;
		if ((rc = catalog_node_ensure(c, cl, specs[i].name, &nd, e)) < 0 ||
		    (rc = catalog_restore_point_node(c, rp, nd, rn[i].lsn, e)) < 0)
			goto out;
	}
	if ((rc = catalog_commit(c, e)) == 0)
		in_tx = 0;
out:
	if (in_tx)
		catalog_rollback(c);
	for (int i = 0; i < n; i++)
		PQfinish(rn[i].conn);
	free(rn);
	return rc;
}

static void abandon(catalog *c, int64_t snap)
{
	struct err ignore;
	if (snap && catalog_begin(c, &ignore) == 0) {
		if (catalog_snapshot_abandon(c, snap, &ignore) == 0)
			catalog_commit(c, &ignore);
		else
			catalog_rollback(c);
	}
}

int backup_cluster(struct repo *r, catalog *c, const char *cluster, const struct backup_node_spec *specs, int n,
		   const struct backup_opts *o, struct backup_result *res, struct err *e)
{
	struct backup_writer w;
	struct backup_node *nodes = xcalloc((size_t)n, sizeof *nodes);
	pthread_t *threads = xcalloc((size_t)n, sizeof *threads);
	int64_t *node_ids = xcalloc((size_t)n, sizeof *node_ids);
	struct progress prog;
	double t0 = util_mono();
	int64_t cl, snap = 0;
	int rc, stale, in_tx = 0, started = 0;
	char label[128], now[TIMEFMT_MAX];
	memset(&w, 0, sizeof w);
	memset(&prog, 0, sizeof prog);
	memset(res, 0, sizeof *res);
	pthread_mutex_init(&w.mu, NULL);
	w.c = c;
	if ((rc = catalog_cleanup_stale(c, &stale, e)) < 0)
		goto fail;
	if (stale)
		fprintf(stderr, "pgtimefs: removed %d unfinished snapshot%s left by an interrupted run\n", stale,
			stale == 1 ? "" : "s");
	timefmt_print(util_now_us(), 0, now);
	snprintf(label, sizeof label, "pgtimefs %s %s", cluster, now);
	if ((rc = catalog_begin(c, e)) < 0)
		goto fail;
	in_tx = 1;
	if ((rc = catalog_cluster_ensure(c, cluster, &cl, e)) < 0 ||
	    (rc = catalog_snapshot_begin(c, cl, "online", &snap, e)) < 0)
		goto fail;
	{
		char id[80];
		if (catalog_meta_get(c, "repository", id, sizeof id) < 0 &&
		    (rc = catalog_meta_set(c, "repository", r->cfg.id, e)) < 0)
			goto fail;
	}
	for (int i = 0; i < n; i++) {
		struct backup_node *nd = &nodes[i];
		nd->name = specs[i].name;
		nd->conninfo = specs[i].conninfo;
		nd->data_dir = specs[i].data_dir;
		nd->w = &w;
		nd->full = o->full;
		nd->stall_s = o->stall_s;
		nd->index = i;
		nd->label = label;
		if ((rc = catalog_node_ensure(c, cl, specs[i].name, &node_ids[i], e)) < 0)
			goto fail;
		/* the previous backup: unchanged files are reused (local path), changed blocks may be
		 * stored as deltas against it (both paths) */
		if (!o->full && (nd->prev_nb = catalog_prev_node_backup(c, node_ids[i]))) {
			nd->prev_root = catalog_node_backup_root(c, nd->prev_nb);
			nd->prev_started_ns = catalog_node_backup_started_us(c, nd->prev_nb) * 1000 - 1000000000ll;
		}
		if ((rc = catalog_node_backup_begin(c, snap, node_ids[i], nd->data_dir ? nd->data_dir : "stream", &nd->nb,
						    e)) < 0)
			goto fail;
	}
	if ((rc = catalog_commit(c, e)) < 0)
		goto fail;
	in_tx = 0;
	if (o->progress)
		progress_start(&prog, "backup", 0, 1);
	if ((rc = ingest_new(r, c, o->catalog_file, o->progress ? &prog : NULL, &w.g, e)) < 0)
		goto fail;
	if ((rc = catalog_begin(c, e)) < 0)
		goto fail;
	in_tx = 1;
	for (; started < n; started++)
		if (pthread_create(&threads[started], NULL, backup_node_run, &nodes[started]) != 0) {
			rc = err_set(e, ERR_NOMEM, "cannot start a thread for node %s", nodes[started].name);
			pthread_mutex_lock(&w.mu);
			w.failed = 1;
			pthread_mutex_unlock(&w.mu);
			break;
		}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	started = 0;
	if (rc < 0)
		goto fail;
	/* the first real failure (not a node that stopped because of it) */
	for (int pass = 0; pass < 2 && rc == 0; pass++)
		for (int i = 0; i < n && rc == 0; i++)
			if (nodes[i].rc < 0 && (pass || strcmp(nodes[i].err.msg, STOPPED_MSG))) {
				rc = nodes[i].rc;
				if (e)
					*e = nodes[i].err;
				err_prefix(e, "backup of cluster %s failed", cluster);
			}
	if (rc < 0)
		goto fail;
	if ((rc = ingest_flush(w.g, e)) < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		struct backup_node *nd = &nodes[i];
		struct nb_totals tot = {(int64_t)nd->st.files, (int64_t)nd->st.bytes, (int64_t)nd->st.new_bytes,
					(int64_t)nd->st.stored_bytes};
		char start[32], stop[32], ver[80];
		struct catalog_pg_info pg;
		pg_lsn_format(nd->start_lsn, start);
		pg_lsn_format(nd->stop_lsn, stop);
		snprintf(ver, sizeof ver, "%s", nd->info.version);
		memset(&pg, 0, sizeof pg);
		pg.start_lsn = start;
		pg.stop_lsn = stop;
		pg.timeline = nd->timeline;
		pg.system_id = nd->info.system_id;
		pg.pg_version = ver;
		pg.citus_version = nd->info.citus_version;
		pg.backup_label = nd->backup_label;
		pg.tablespace_map = nd->tablespace_map;
		pg.damaged_pages = (int64_t)nd->ndamaged;
		if ((rc = catalog_node_backup_finish(c, nd->nb, nd->root, &tot, e)) < 0 ||
		    (rc = catalog_node_backup_set_pg(c, nd->nb, &pg, e)) < 0)
			goto fail;
	}
	res->st = *ingest_stats(w.g);
	if ((rc = catalog_commit(c, e)) < 0)
		goto fail;
	in_tx = 0;
	ingest_free(w.g);
	w.g = NULL;
	progress_end(&prog);
	/* every node is done: the cluster-wide restore point names the snapshot */
	if ((rc = backup_restore_point(c, cluster, specs, n, NULL, o->lock_timeout_ms, snap, res->restore_point,
				       &res->time_us, e)) < 0) {
		err_prefix(e, "backup of cluster %s failed at its restore point", cluster);
		goto fail;
	}
	if ((rc = catalog_begin(c, e)) < 0)
		goto fail;
	in_tx = 1;
	if ((rc = catalog_snapshot_finish(c, snap, res->time_us, res->name, e)) < 0 || (rc = catalog_commit(c, e)) < 0)
		goto fail;
	in_tx = 0;
	res->snapshot = snap;
	res->nnodes = n;
	res->nodes = nodes;
	nodes = NULL;
	free(threads);
	free(node_ids);
	pthread_mutex_destroy(&w.mu);
	if ((rc = catalog_copy_push(c, r, o->state_dir, &res->generation, e)) < 0) {
		err_prefix(e, "snapshot %s is complete, but its catalog copy failed", res->name);
		if (rc != ERR_CONFIG) /* ERR_CONFIG: this catalog is behind the zones; its own hint says why */
			err_hint(e, "the snapshot is recorded in the local catalog; fix the zone (space, permissions, "
				    "mount), then run 'pgtimefs repair' to push the copy (do not take the snapshot again)");
		return rc;
	}
	res->seconds = util_mono() - t0;
	return 0;
fail:
	progress_end(&prog);
	if (in_tx)
		catalog_rollback(c);
	ingest_free(w.g);
	abandon(c, snap);
	for (int i = 0; i < n; i++)
		backup_node_release(&nodes[i]);
	free(nodes);
	free(threads);
	free(node_ids);
	pthread_mutex_destroy(&w.mu);
	return rc;
}

void backup_result_release(struct backup_result *res)
{
	for (int i = 0; i < res->nnodes; i++)
		backup_node_release(&res->nodes[i]);
	free(res->nodes);
	res->nodes = NULL;
	res->nnodes = 0;
}
