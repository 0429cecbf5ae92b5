/*
 * pg.h: what pgtimefs asks a PostgreSQL node over libpq, with messages that name the node
 * and tell the operator what to change.
 *
 * pg_connect opens a plain or a replication connection from a node's conninfo: a refused
 * connection gives ERR_CONFIG with the pg_hba.conf line to add as the hint, an unreachable
 * node gives ERR_IO. pg_node_info reads what a backup records and checks what it needs
 * (PostgreSQL 15 or later, wal_level replica or logical). Each connection is used by one
 * thread. LSNs are uint64_t here and "X/Y" text in the catalog, as PostgreSQL prints them.
 */
#ifndef PGTIMEFS_BACKUP_PG_H
#define PGTIMEFS_BACKUP_PG_H

#include "backup/pqload.h"
#include <stdint.h>

#include "common/err.h"

/* Opens a connection to node (named in messages); replication: 0, or 1 for a physical one. */
int pg_connect(const char *node, const char *conninfo, int replication, PGconn **out, struct err *e);

/* Runs sql (params may be NULL) and gives the first column of the first row in out. */
int pg_query1(PGconn *conn, const char *node, const char *sql, int nparams, const char *const *params, char *out,
	      size_t cap, struct err *e);
/* Runs sql and expects a result (rows or none). */
int pg_exec(PGconn *conn, const char *node, const char *sql, struct err *e);

struct pg_node_info {
	int version_num;	 /* 150004 */
	char version[64];	 /* "15.4 (Debian 15.4-1)" */
	char system_id[32];
	char citus_version[32];	 /* "" when citus is not installed */
	int data_checksums;
	uint32_t wal_segment_size;
	char data_directory[1024];
};
/* Reads the node's facts over a plain connection; checks version and wal_level. */
int pg_node_info(PGconn *conn, const char *node, struct pg_node_info *out, struct err *e);

/* "16/B374D848" <-> uint64_t. pg_lsn_parse returns -1 on a malformed LSN. */
int pg_lsn_parse(const char *s, uint64_t *out);
void pg_lsn_format(uint64_t lsn, char out[32]);
/* The name of the WAL segment that holds byte lsn on timeline tli. */
void pg_wal_name(uint32_t tli, uint64_t lsn, uint32_t seg_size, char out[25]);

#endif
