/*
 * pgsetup.h: the local PostgreSQL installation a restore runs on, and the configuration
 * files of a restored node.
 *
 * restore_pg_find looks for the binaries of one major version (an explicit directory, then
 * /usr/lib/postgresql/<major>/bin, then the pg_config on PATH), checks `postgres --version`
 * and finds the sample configuration files and the extension directory; restore_pg_citus
 * checks that Citus is installed there in the version a node had.
 *
 * restore_pg_configure turns a copied data directory into one that starts with default
 * server parameters and the door shut (see the function). It reads the recovery block the
 * at/ view appended to postgresql.auto.conf before replacing that file.
 *
 * Stateless and thread-safe.
 */
#ifndef PGTIMEFS_RESTORE_PGSETUP_H
#define PGTIMEFS_RESTORE_PGSETUP_H

#include <stddef.h>

#include "common/err.h"

#define RESTORE_PATH_MAX 4096

struct restore_pg {
	int major;			   /* 15 */
	char version[64];		   /* "15.4" */
	char bindir[RESTORE_PATH_MAX];	   /* holds postgres, pg_ctl */
	char sharedir[RESTORE_PATH_MAX];   /* holds postgresql.conf.sample, extension/ */
	char pkglibdir[RESTORE_PATH_MAX];  /* holds the extension libraries */
	char socket_dir[RESTORE_PATH_MAX]; /* the compiled default unix_socket_directories (first) */
};

/*
 * Finds binaries of major version major: bindir when given (then only there), else
 * /usr/lib/postgresql/<major>/bin, else the directory `pg_config --bindir` names.
 * ERR_CONFIG naming what was found (e.g. "the local PostgreSQL is 16") and a hint to install
 * the right version when none matches.
 */
int restore_pg_find(int major, const char *bindir, struct restore_pg *pg, struct err *e);

/*
 * Checks that Citus is installed for pg (citus.control and citus.so) in the same
 * major.minor as version. ERR_CONFIG with a hint otherwise.
 */
int restore_pg_citus(const struct restore_pg *pg, const char *version, struct err *e);

/* The recovery settings of one node: what postgresql.auto.conf will hold. */
struct restore_recovery {
	char target_time[64];	/* recovery_target_time, "" for none (end of WAL or a name) */
	char target_name[256];	/* recovery_target_name (--consistent), "" for none */
};

/*
 * Reads the view's recovery block from dir/postgresql.auto.conf (the lines after
 * "# pgtimefs recovery"): its recovery_target_time, if any. ERR_CORRUPT when the block is
 * missing (the directory does not come from an at/ view).
 */
int restore_pg_read_recovery(const char *dir, struct restore_recovery *rec, struct err *e);

/*
 * The settings a hot standby's recovery needs at least as high as the original server had
 * them (PostgreSQL refuses to recover below them), as its pg_control records them.
 */
struct restore_pg_limits {
	int max_connections, max_worker_processes, max_wal_senders, max_prepared_xacts, max_locks_per_xact;
};

/*
 * Reads them from a PostgreSQL 15 pg_control file (pg_control_version 1300, this host's byte
 * order, its CRC-32C checked). ERR_CORRUPT when the file is not one.
 */
int restore_pg_limits_read(const char *path, struct restore_pg_limits *out, struct err *e);

struct restore_node_conf {
	int port;
	const struct restore_pg_limits *limits; /* the original's, or NULL: written where above the defaults */
	const char *socket_dir;	 /* written as unix_socket_directories when not NULL */
	int citus;		 /* shared_preload_libraries = 'citus' */
	const char *user;	 /* the OS user that runs the server: the only one pg_hba lets in */
	const struct restore_recovery *rec;
	const char *header;	 /* one comment line saying where the data came from */
};

/*
 * Rewrites the configuration of data directory dir, durably:
 * - postgresql.conf: the installed sample, unchanged (every parameter at its default);
 * - postgresql.auto.conf: only port, unix_socket_directories when asked, shared_preload_libraries
 *   = 'citus' when the node has Citus, allow_in_place_tablespaces = 'on' when pg_tblspc/ holds
 *   a tablespace (a directory: PostgreSQL 15 refuses to finish recovery on one without it), and
 *   the recovery settings (target, action promote, a
 *   restore_command that finds nothing so the server reads pg_wal/);
 * - pg_hba.conf: local (socket) connections, normal and replication, by peer with the map
 *   "pgtimefs", which lets in only the OS user user (as its own role, or as postgres); host
 *   connections (IPv4 and IPv6) are rejected;
 * - pg_ident.conf: the installed sample and the map;
 * - recovery.signal present, standby.signal, postmaster.pid and postmaster.opts removed.
 * Files get owner uid/gid when chown is set, mode 0600.
 */
int restore_pg_configure(const char *dir, const struct restore_pg *pg, const struct restore_node_conf *c, int chown_to,
			 unsigned uid, unsigned gid, struct err *e);

#endif
