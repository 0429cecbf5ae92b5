/*
 * walscan.h: what replaying a restored node's WAL would do outside the new cluster.
 *
 * A tablespace created after the snapshot (CREATE TABLESPACE ... LOCATION '/dir') is replayed
 * by PostgreSQL as a symlink pg_tblspc/<oid> -> /dir: the restored node would then use, and
 * write into, the original server's directory (or fail recovery when it is missing). That
 * breaks the promise of a self-contained new cluster, and on the original's host it writes
 * into a live server's tablespace. restore_wal_tablespaces finds such a record before the
 * server is ever started, by reading the node's pg_wal/ with the WAL reader (backup/walread.h):
 * records from the backup's start (backup_label's START WAL LOCATION) up to the point where
 * recovery stops (the first transaction end after the target time, or the named restore
 * point; the end of the WAL when neither is given). In-place tablespaces (empty location)
 * are not reported. The highest of each setting a standby must match that the replayed WAL
 * raises (XLOG_PARAMETER_CHANGE: the original restarted with new values) is collected too.
 * Files are read in pieces (bounded memory).
 */
#ifndef PGTIMEFS_RESTORE_WALSCAN_H
#define PGTIMEFS_RESTORE_WALSCAN_H

#include <stdatomic.h>
#include <stdint.h>

#include "backup/walread.h"
#include "common/err.h"

struct restore_tblspc_hit {
	int found;			/* 0: none before the stop point */
	struct walread_tablespace t;	/* the first one */
	uint64_t start_lsn;		/* from backup_label */
	int params_seen;		/* settings changes replayed before the stop point */
	struct walread_params params;	/* the highest value of each (lsn: the last change) */
};

/*
 * Scans dir (a node's data directory: backup_label and pg_wal/ in it). stop_us: the recovery
 * target time (Unix microseconds; 0 for none); stop_name: the recovery target name (NULL or
 * "" for none). Without a backup_label (a snapshot of a stopped server) every record in
 * pg_wal/ counts; a backup_label without a START WAL LOCATION is ERR_NOTFOUND. cancel (may be
 * NULL) is looked at between pieces of WAL read: once set, the scan stops with ERR_INTERNAL
 * "interrupted".
 */
int restore_wal_tablespaces(const char *dir, int64_t stop_us, const char *stop_name, const atomic_int *cancel,
			    struct restore_tblspc_hit *hit, struct err *e);

#endif
