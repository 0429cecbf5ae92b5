/* start.c: start the restored nodes, wait for promotion, repoint Citus, check them. */
#include "start.h"

#include <errno.h>
#include <fcntl.h>
#include "backup/pqload.h"
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "proc.h"

#define START_PID_WAIT_S 30.0 /* a postmaster that wrote no pid file by then did not start */

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void note_f(restore_note_fn note, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_f(restore_note_fn note, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	if (!note)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	note(line);
}

/* The last lines (at most 12, 2 KiB) of the node's log. */
static void log_tail(struct restore_start_node *nd)
{
	int fd = open(nd->log, O_RDONLY | O_CLOEXEC);
	char buf[sizeof nd->log_tail];
	ssize_t r;
	off_t end;
	char *p;
	int lines = 0;
	nd->log_tail[0] = 0;
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	r = pread(fd, buf, sizeof buf - 1, end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0);
	close(fd);
	if (r <= 0)
		return;
	buf[r] = 0;
	if (r > 0 && buf[r - 1] == '\n')
		buf[--r] = 0;
	for (p = buf + r; p > buf; p--)
		if (p[-1] == '\n' && ++lines == 12)
			break;
	snprintf(nd->log_tail, sizeof nd->log_tail, "%s", p);
}

/* The postmaster's pid from dir/postmaster.pid, or 0. */
static pid_t postmaster_pid(const char *dir)
{
	char path[RESTORE_PATH_MAX + 32], line[32] = "";
	FILE *f;
	snprintf(path, sizeof path, "%s/postmaster.pid", dir);
	if (!(f = fopen(path, "re")))
		return 0;
	if (!fgets(line, sizeof line, f))
		line[0] = 0;
	fclose(f);
	return (pid_t)atol(line);
}

/* Whether the log has a FATAL or PANIC line (a server that failed before its pid file). */
static int log_has_fatal(const char *log)
{
	FILE *f = fopen(log, "re");
	char line[1024];
	int hit = 0;
	if (!f)
		return 0;
	while (!hit && fgets(line, sizeof line, f))
		hit = strstr(line, "FATAL:") || strstr(line, "PANIC:");
	fclose(f);
	return hit;
}

/*
 * Whether the node's postmaster may still be running: its pid (*seen, once read from
 * postmaster.pid) lives; before any pid file, until START_PID_WAIT_S or a FATAL in its log.
 */
static int alive(const struct restore_start_node *nd, pid_t *seen, double since)
{
	pid_t pid = postmaster_pid(nd->dir);
	if (pid > 0)
		*seen = pid;
	if (*seen > 0)
		return kill(*seen, 0) == 0 || errno == EPERM;
	if (util_mono() - since > START_PID_WAIT_S)
		return 0;
	return util_mono() - since < 2 || !log_has_fatal(nd->log);
}

/*
 * A connection as the role named like the OS user, or postgres when there is no such role
 * (pg_ident.conf maps the OS user to both).
 */
static PGconn *connect_node(const struct restore_start_node *nd)
{
	char port[16];
	const char *const keys[] = {"host", "port", "dbname", "connect_timeout", "application_name", "user", NULL};
	const char *vals[] = {nd->socket_dir, port, "postgres", "10", "pgtimefs restore", NULL, NULL};
	PGconn *c;
	snprintf(port, sizeof port, "%d", nd->port);
	c = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(c) != CONNECTION_OK && strstr(PQerrorMessage(c), "role \"") &&
	    strstr(PQerrorMessage(c), "does not exist")) {
		PQfinish(c);
		vals[5] = "postgres";
		c = PQconnectdbParams(keys, vals, 0);
	}
	return c;
}

/* A connection error that waiting will not cure (authentication, a missing role or database). */
static int hopeless(const char *msg)
{
	return strstr(msg, "authentication failed") || strstr(msg, "does not exist") || strstr(msg, "pg_hba.conf") ||
	       strstr(msg, "permission denied");
}

/* First value of the first row, or -1 with the error in err. */
static int q1(PGconn *c, const char *sql, int np, const char *const *params, char *out, size_t cap, char *err, size_t ecap)
{
	PGresult *res = PQexecParams(c, sql, np, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, ecap, "%s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = 0;
		rc = -1;
	} else if (out) {
		snprintf(out, cap, "%s", PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	}
	PQclear(res);
	return rc;
}

static int start_one(const struct restore_pg *pg, struct restore_start_node *nd, struct err *e)
{
	char pgctl[RESTORE_PATH_MAX + 16], out[4096];
	char *argv[] = {pgctl, "-D", (char *)nd->dir, "-l", (char *)nd->log, "-W", "start", NULL};
	int status, rc;
	snprintf(pgctl, sizeof pgctl, "%s/pg_ctl", pg->bindir);
	if ((rc = restore_proc_run(argv, NULL, 0, out, sizeof out, &status, e)) < 0)
		return rc;
	if (status != 0) {
		out[strcspn(out, "\n")] = 0;
		snprintf(nd->error, sizeof nd->error, "pg_ctl start failed (exit %d): %s", status, out);
		return ERR_IO;
	}
	nd->started = 1;
	return 0;
}

/* whether a postmaster runs in dir (its pid file names a live process) */
static int postmaster_runs(const char *dir)
{
	pid_t pid = postmaster_pid(dir);
	return pid > 0 && kill(pid, 0) == 0;
}

/* pg_ctl stop -m fast of every node this start left running: a failed restore leaves no server
 * behind (one that went on would promote, and its data directory is not complete) */
static void stop_started(const struct restore_pg *pg, struct restore_start_node *nodes, int n, restore_note_fn note)
{
	char pgctl[RESTORE_PATH_MAX + 16], out[1024];
	snprintf(pgctl, sizeof pgctl, "%s/pg_ctl", pg->bindir);
	for (int i = 0; i < n; i++) {
		char *argv[] = {pgctl, "-D", (char *)nodes[i].dir, "-m", "fast", "-w", "-t", "60", "stop", NULL};
		struct err se;
		int status = -1;
		/* a node whose pg_ctl start was cut short (a Ctrl-C) may have a postmaster anyway: the
		 * target is new, so any server in it is this restore's */
		if (!nodes[i].started && postmaster_runs(nodes[i].dir))
			nodes[i].started = 1;
		if (!nodes[i].started)
			continue;
		if (postmaster_pid(nodes[i].dir) <= 0) { /* it stopped by itself (its log says why) */
			nodes[i].started = 0;
			continue;
		}
		err_clear(&se);
		if (restore_proc_run(argv, NULL, 0, out, sizeof out, &status, &se) == 0 && status == 0) {
			nodes[i].started = 0;
			note_f(note, "node %s: stopped (the restore failed)", nodes[i].name);
		} else {
			note_f(note, "node %s: could not be stopped: run pg_ctl -D %s stop", nodes[i].name, nodes[i].dir);
		}
	}
}

static int cancelled(const atomic_int *cancel)
{
	return cancel && atomic_load(cancel);
}

/* Waits until the node leaves recovery; fills reached. t_phase: when the start phase began. */
static int wait_promoted(struct restore_start_node *nd, restore_note_fn note, const atomic_int *cancel, double t_phase)
{
	double t0 = util_mono(), last_note = t0;
	pid_t seen = 0;
	PGconn *c = NULL;
	char val[64], why[512] = "";
	int rc = -1;
	for (;;) {
		if (cancelled(cancel)) {
			snprintf(nd->error, sizeof nd->error, "interrupted while it recovered (%.0f s after the start)",
				 util_mono() - t_phase);
			goto out;
		}
		if (!c || PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = connect_node(nd);
			if (PQstatus(c) != CONNECTION_OK) {
				snprintf(why, sizeof why, "%s", PQerrorMessage(c));
				why[strcspn(why, "\n")] = 0;
				if (hopeless(why)) {
					snprintf(nd->error, sizeof nd->error, "cannot connect: %s", why);
					goto out;
				}
			}
		}
		if (PQstatus(c) == CONNECTION_OK) {
			if (q1(c, "SELECT pg_is_in_recovery()", 0, NULL, val, sizeof val, why, sizeof why) == 0 &&
			    !strcmp(val, "f"))
				break;
			/* paused: it would wait for ever (a setting raised on the original after the
			 * backup, which the WAL carries, above this server's: its log names it) */
			if (q1(c, "SELECT pg_get_wal_replay_pause_state()", 0, NULL, val, sizeof val, why, sizeof why) == 0 &&
			    !strcmp(val, "paused")) {
				snprintf(nd->error, sizeof nd->error,
					 "recovery paused before the target (the server's log below says why; most often a "
					 "setting such as max_connections was raised on the original after the backup: set it "
					 "as high in postgresql.auto.conf and start the node again)");
				log_tail(nd);
				goto out;
			}
		}
		if (!alive(nd, &seen, t0)) {
			nap_ms(300); /* let the last log lines reach the file */
			snprintf(nd->error, sizeof nd->error, "the server stopped before it reached the target");
			log_tail(nd);
			goto out;
		}
		if (util_mono() - last_note > 30) {
			note_f(note, "node %s: still recovering (%.0f s)", nd->name, util_mono() - t0);
			last_note = util_mono();
		}
		nap_ms(200);
	}
	nd->promoted = 1;
	if (q1(c,
	       "SELECT to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', "
	       "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
	       0, NULL, nd->reached, sizeof nd->reached, why, sizeof why) < 0)
		nd->reached[0] = 0;
	note_f(note, "node %s: promoted (last transaction replayed: %s)", nd->name, nd->reached[0] ? nd->reached : "none");
	rc = 0;
out:
	PQfinish(c);
	return rc;
}

/* Repoints pg_dist_node on the coordinator (the Citus node whose local group is 0). */
static int repoint_citus(struct restore_start_node *nodes, int n, restore_note_fn note, struct err *e)
{
	int coord = -1, *group = xcalloc((size_t)n, sizeof *group), rc = 0;
	PGconn *c = NULL;
	PGresult *res = NULL;
	char val[64], why[512];
	for (int i = 0; i < n; i++) {
		PGconn *k;
		group[i] = -1;
		if (!nodes[i].citus)
			continue;
		k = connect_node(&nodes[i]);
		if (PQstatus(k) == CONNECTION_OK &&
		    q1(k, "SELECT groupid FROM pg_dist_local_group", 0, NULL, val, sizeof val, why, sizeof why) == 0 &&
		    val[0]) {
			group[i] = atoi(val);
			if (group[i] == 0)
				coord = i;
		}
		PQfinish(k);
	}
	if (coord < 0) {
		note_f(note, "citus: no restored node is a coordinator (local group 0): pg_dist_node left as it was");
		goto out;
	}
	c = connect_node(&nodes[coord]);
	res = PQexec(c, "SELECT nodeid, groupid, nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' "
			"ORDER BY nodeid");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = err_set(e, ERR_IO, "node %s: cannot read pg_dist_node: %s", nodes[coord].name, PQerrorMessage(c));
		goto out;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		int g = atoi(PQgetvalue(res, r, 1)), hit = -1;
		char port[16];
		for (int i = 0; i < n; i++)
			if (group[i] == g)
				hit = i;
		if (hit < 0) {
			note_f(note, "citus: pg_dist_node %s (%s:%s, group %d) matches no restored node: left as it was",
			       PQgetvalue(res, r, 0), PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), g);
			continue;
		}
		snprintf(port, sizeof port, "%d", nodes[hit].port);
		{
			const char *params[] = {PQgetvalue(res, r, 0), nodes[hit].socket_dir, port};
			if (q1(c, "SELECT citus_update_node($1::int, $2, $3::int)", 3, params, NULL, 0, why, sizeof why) < 0) {
				rc = err_set(e, ERR_IO, "node %s: citus_update_node(%s, '%s', %s) failed: %s", nodes[coord].name,
					     params[0], params[1], port, why);
				goto out;
			}
		}
		note_f(note, "citus: pg_dist_node %s (was %s:%s) -> node %s (%s, port %d)", PQgetvalue(res, r, 0),
		       PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), nodes[hit].name, nodes[hit].socket_dir, nodes[hit].port);
	}
	if (q1(c, "SELECT count(*) FROM run_command_on_workers('SELECT 1') WHERE NOT success", 0, NULL, val, sizeof val, why,
	       sizeof why) < 0 ||
	    strcmp(val, "0")) {
		rc = err_set(e, ERR_IO, "node %s: the coordinator cannot reach %s of its workers: %s", nodes[coord].name,
			     val[0] ? val : "some", why[0] ? why : "run_command_on_workers failed");
		goto out;
	}
out:
	PQclear(res);
	PQfinish(c);
	free(group);
	return rc;
}

int restore_start_nodes(const struct restore_pg *pg, struct restore_start_node *nodes, int n, restore_note_fn note,
			const atomic_int *cancel, struct err *e)
{
	int failed = -1, citus = 0, rc;
	double t_phase = util_mono();
	for (int i = 0; i < n; i++) {
		struct err se;
		err_clear(&se);
		if (cancelled(cancel)) {
			snprintf(nodes[i].error, sizeof nodes[i].error, "not started: interrupted");
			if (failed < 0)
				failed = i;
			break;
		}
		if (start_one(pg, &nodes[i], &se) < 0) {
			if (!nodes[i].error[0])
				snprintf(nodes[i].error, sizeof nodes[i].error, "%s", se.msg);
			log_tail(&nodes[i]);
			if (failed < 0)
				failed = i;
		} else {
			note_f(note, "node %s: started on port %d, recovering", nodes[i].name, nodes[i].port);
		}
	}
	for (int i = 0; i < n; i++) {
		if (!nodes[i].started)
			continue;
		if (wait_promoted(&nodes[i], note, cancel, t_phase) < 0 && failed < 0)
			failed = i;
		citus |= nodes[i].citus;
	}
	if (failed >= 0) {
		char running[512] = "";
		size_t rn = 0;
		stop_started(pg, nodes, n, note);
		err_set(e, ERR_IO, "node %s: %s", nodes[failed].name, nodes[failed].error);
		for (int i = 0; i < n; i++)
			if (nodes[i].started && rn < sizeof running)
				rn += (size_t)snprintf(running + rn, sizeof running - rn, "%s%s", rn ? ", " : "",
						       nodes[i].name);
		if (running[0])
			err_hint(e, "node%s %s could not be stopped: stop %s with pg_ctl -D DIR stop",
				 strchr(running, ',') ? "s" : "", running, strchr(running, ',') ? "them" : "it");
		else if (cancelled(cancel))
			err_hint(e, "every node started was stopped; start one again with pg_ctl -D DIR start (one "
				    "that had not promoted goes on recovering), or remove the target and run the "
				    "restore again");
		return ERR_IO;
	}
	if (citus && (rc = repoint_citus(nodes, n, note, e)) < 0) {
		stop_started(pg, nodes, n, note);
		return rc;
	}
	for (int i = 0; i < n; i++) {
		PGconn *c = connect_node(&nodes[i]);
		char val[64], why[512] = "";
		if (PQstatus(c) != CONNECTION_OK) {
			snprintf(why, sizeof why, "%s", PQerrorMessage(c));
			why[strcspn(why, "\n")] = 0;
		} else if (q1(c, "SELECT count(*) FROM pg_database", 0, NULL, val, sizeof val, why, sizeof why) == 0) {
			nodes[i].answered = 1;
		}
		PQfinish(c);
		if (!nodes[i].answered) {
			snprintf(nodes[i].error, sizeof nodes[i].error, "does not answer a query: %s", why);
			stop_started(pg, nodes, n, note);
			return err_set(e, ERR_IO, "node %s %s", nodes[i].name, nodes[i].error);
		}
	}
	return 0;
}
