#include "pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the last line of a libpq message, without its newline */
static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

static void quiet_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Builds the pg_hba.conf line for a refused connection from the server's message. */
static void hba_hint(struct err *e, const char *node, const char *msg, const char *user, int replication)
{
	const char *h = strstr(msg, "from host \"");
	char host[128] = "";
	if (h) {
		const char *q;
		h += strlen("from host \"");
		q = strchr(h, '"');
		if (q && (size_t)(q - h) < sizeof host)
			snprintf(host, sizeof host, "%.*s", (int)(q - h), h);
	}
	if (!strcmp(host, "[local]") || !host[0])
		err_hint(e, "add to pg_hba.conf of node %s: 'local %s %s peer' (or scram-sha-256), then SELECT pg_reload_conf()",
			 node, replication ? "replication" : "all", user);
	else
		err_hint(e,
			 "add to pg_hba.conf of node %s: 'host %s %s %s/%d scram-sha-256', then SELECT pg_reload_conf()",
			 node, replication ? "replication" : "all", user, host, strchr(host, ':') ? 128 : 32);
}

int pg_connect(const char *node, const char *conninfo, int replication, PGconn **out, struct err *e)
{
	/* settings before dbname give way to the conninfo's own. Keepalives: a node gone without a
	 * word (a host off, a cable out) ends the connection in about two minutes, not hours */
	const char *keys[] = {"connect_timeout",  "application_name",    "keepalives_idle", "keepalives_interval",
			      "keepalives_count", "tcp_user_timeout", "dbname",	       "replication",
			      NULL};
	const char *vals[] = {"10", "pgtimefs", "60", "10", "6", "120000", conninfo, replication ? "true" : NULL, NULL};
	PGconn *conn;
	char msg[900];
	*out = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn)
		return err_set(e, ERR_NOMEM, "node %s: out of memory for a connection", node);
	if (PQstatus(conn) == CONNECTION_OK) {
		PQsetNoticeProcessor(conn, quiet_notices, NULL);
		/* the session that ran pg_backup_start is idle while the files are read: a server's
		 * idle_session_timeout (or a statement_timeout on a slow pg_backup_stop) would end
		 * the backup at its very end */
		if (!replication && pg_exec(conn, node,
					    "SET idle_session_timeout = 0; SET statement_timeout = 0; "
					    "SET idle_in_transaction_session_timeout = 0",
					    e) < 0) {
			PQfinish(conn);
			return e ? e->code : ERR_IO;
		}
		*out = conn;
		return 0;
	}
	snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
	trim(msg);
	if (strstr(msg, "pg_hba.conf")) {
		err_set(e, ERR_CONFIG, "node %s refuses the %sconnection: %s", node, replication ? "replication " : "", msg);
		hba_hint(e, node, msg, PQuser(conn) ? PQuser(conn) : "postgres", replication);
	} else if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied")) {
		err_set(e, ERR_CONFIG, "node %s: %s", node, msg);
		err_hint(e, "put the password in ~/.pgpass (or a passfile in the conninfo) for the backup user");
	} else if (replication && strstr(msg, "must be superuser or replication role")) {
		err_set(e, ERR_CONFIG, "node %s: %s", node, msg);
		err_hint(e, "ALTER ROLE %s REPLICATION on node %s", PQuser(conn) ? PQuser(conn) : "the backup user", node);
	} else {
		err_set(e, ERR_IO, "node %s is not reachable: %s", node, msg);
		err_hint(e, "check that the node runs and that its conninfo in the configuration is right");
	}
	PQfinish(conn);
	return e ? e->code : ERR_IO;
}

static int result_err(PGconn *conn, PGresult *res, const char *node, const char *what, struct err *e)
{
	char msg[900];
	snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	if (!msg[0])
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
	trim(msg);
	if (PQstatus(conn) == CONNECTION_BAD)
		return err_set(e, ERR_IO, "node %s: connection lost during %s: %s", node, what, msg);
	return err_set(e, ERR_IO, "node %s: %s failed: %s", node, what, msg);
}

int pg_query1(PGconn *conn, const char *node, const char *sql, int nparams, const char *const *params, char *out,
	      size_t cap, struct err *e)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = result_err(conn, res, node, sql, e);
		goto out;
	}
	if (out) {
		if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0))
			out[0] = '\0';
		else
			snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	}
out:
	PQclear(res);
	return rc;
}

int pg_exec(PGconn *conn, const char *node, const char *sql, struct err *e)
{
	PGresult *res = PQexec(conn, sql);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = result_err(conn, res, node, sql, e);
	PQclear(res);
	return rc;
}

int pg_node_info(PGconn *conn, const char *node, struct pg_node_info *out, struct err *e)
{
	char buf[64], level[32];
	int rc;
	memset(out, 0, sizeof *out);
	out->version_num = PQserverVersion(conn);
	if (out->version_num < 150000) {
		err_set(e, ERR_CONFIG, "node %s runs PostgreSQL %d.%d; online backups need 15 or later", node,
			out->version_num / 10000, out->version_num % 10000);
		err_hint(e, "upgrade the node, or stop it and use 'pgtimefs snapshot' on its data directory");
		return ERR_CONFIG;
	}
	if ((rc = pg_query1(conn, node, "SHOW server_version", 0, NULL, out->version, sizeof out->version, e)) < 0 ||
	    (rc = pg_query1(conn, node, "SHOW wal_level", 0, NULL, level, sizeof level, e)) < 0)
		return rc;
	if (strcmp(level, "replica") && strcmp(level, "logical")) {
		err_set(e, ERR_CONFIG, "node %s has wal_level = %s; online backups need replica or logical", node, level);
		err_hint(e, "set wal_level = replica in postgresql.conf of node %s and restart it", node);
		return ERR_CONFIG;
	}
	if ((rc = pg_query1(conn, node, "SELECT pg_is_in_recovery()::text", 0, NULL, buf, sizeof buf, e)) < 0)
		return rc;
	if (!strcmp(buf, "true")) {
		/* a standby can take no restore point, and its copy of pg_control would have to come
		 * last: refused before any data moves */
		err_set(e, ERR_CONFIG, "node %s is a standby (in recovery): online backups are taken from primaries", node);
		err_hint(e, "point conninfo (and data-dir) of node %s at its primary", node);
		return ERR_CONFIG;
	}
	if ((rc = pg_query1(conn, node, "SELECT system_identifier::text FROM pg_control_system()", 0, NULL,
			    out->system_id, sizeof out->system_id, e)) < 0 ||
	    (rc = pg_query1(conn, node, "SELECT extversion FROM pg_extension WHERE extname = 'citus'", 0, NULL,
			    out->citus_version, sizeof out->citus_version, e)) < 0 ||
	    (rc = pg_query1(conn, node, "SHOW data_checksums", 0, NULL, buf, sizeof buf, e)) < 0)
		return rc;
	out->data_checksums = !strcmp(buf, "on");
	if ((rc = pg_query1(conn, node, "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'", 0, NULL, buf,
			    sizeof buf, e)) < 0)
		return rc;
	out->wal_segment_size = (uint32_t)strtoul(buf, NULL, 10);
	if (out->wal_segment_size < (1u << 20) || (out->wal_segment_size & (out->wal_segment_size - 1)))
		return err_set(e, ERR_INTERNAL, "node %s reports wal_segment_size '%s'", node, buf);
	/* data_directory needs superuser or pg_read_all_settings; an empty answer only disables the local check */
	if (pg_query1(conn, node, "SELECT current_setting('data_directory', true)", 0, NULL, out->data_directory,
		      sizeof out->data_directory, NULL) < 0)
		out->data_directory[0] = '\0';
	return 0;
}

int pg_lsn_parse(const char *s, uint64_t *out)
{
	unsigned int hi, lo;
	char tail;
	if (sscanf(s, "%X/%X%c", &hi, &lo, &tail) != 2)
		return -1;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

void pg_lsn_format(uint64_t lsn, char out[32])
{
	snprintf(out, 32, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

void pg_wal_name(uint32_t tli, uint64_t lsn, uint32_t seg_size, char out[25])
{
	uint64_t segno = lsn / seg_size, per = 0x100000000ull / seg_size;
	snprintf(out, 25, "%08X%08X%08X", tli, (unsigned)(segno / per), (unsigned)(segno % per));
}
