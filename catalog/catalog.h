/*
 * catalog.h: the SQLite catalog: what is stored where, and when.
 *
 * One catalog file per state directory, in WAL mode, schema created and upgraded by
 * numbered migrations (PRAGMA user_version). The catalog is the fast index; the packs in
 * the zones hold the data. Invariants:
 * - a chunks row exists only once its pack is durable in every zone (rows are written in
 *   the same transaction that records the pack, committed after zones_sync);
 * - a contents row with a hash is complete: all its content_chunks rows exist and reference
 *   durable chunks, so any later snapshot may share it;
 * - only snapshots in state 'complete' are visible to readers (list, ls, cat, the mount).
 *
 * A catalog handle is one SQLite connection with its prepared statements: use it from one
 * thread at a time. Readers open their own handles (WAL mode lets them run beside a writer).
 * Writers take the writer lock (catalog_writer_lock) first.
 */
#ifndef PGTIMEFS_CATALOG_CATALOG_H
#define PGTIMEFS_CATALOG_CATALOG_H

#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "store/reader.h"

typedef struct catalog catalog;

#define CATALOG_SCHEMA_VERSION 9

/* --- life cycle --- */

/* Opens (creating and migrating unless readonly) the catalog at path. */
int catalog_open(const char *path, int readonly, catalog **out, struct err *e);
void catalog_close(catalog *c);
/* The schema version of the catalog file at path (PRAGMA user_version), or -1. */
int catalog_schema_version(const char *path);
const char *catalog_path(const catalog *c);
/*
 * Copies every change in the -wal into the database file and empties the -wal. A writer does
 * not checkpoint when it closes (see catalog_open): call this before the file is used
 * without its -wal (a catalog being installed, whose side files are removed).
 */
int catalog_checkpoint(catalog *c, struct err *e);

int catalog_begin(catalog *c, struct err *e);
int catalog_commit(catalog *c, struct err *e);
void catalog_rollback(catalog *c);

/* meta key/value pairs (repository id, copy generation) */
int catalog_meta_get(catalog *c, const char *key, char *out, size_t cap); /* ERR_NOTFOUND */
int catalog_meta_set(catalog *c, const char *key, const char *value, struct err *e);

/*
 * Takes the writer lock of a state directory (flock on <dir>/writer.lock). Waits up to
 * wait_s seconds (0: do not wait), printing once that it waits; ERR_LOCKED after that,
 * naming the holder's pid. *fd is closed by catalog_writer_unlock.
 */
int catalog_writer_lock(const char *state_dir, int wait_s, int *fd, struct err *e);
void catalog_writer_unlock(int fd);

/* --- clusters, nodes --- */

int catalog_cluster_ensure(catalog *c, const char *name, int64_t *id, struct err *e);
int catalog_cluster_find(catalog *c, const char *name, int64_t *id, struct err *e);
int catalog_node_ensure(catalog *c, int64_t cluster, const char *name, int64_t *id, struct err *e);
/* ERR_NOTFOUND when the cluster has no node of that name. */
int catalog_node_find(catalog *c, int64_t cluster, const char *name, int64_t *id, struct err *e);

/* --- snapshots (writer) --- */

/* A new snapshot in state 'running'. */
int catalog_snapshot_begin(catalog *c, int64_t cluster, const char *kind, int64_t *snap, struct err *e);
int catalog_node_backup_begin(catalog *c, int64_t snap, int64_t node, const char *source, int64_t *nb,
			      struct err *e);
struct nb_totals {
	int64_t files, bytes, new_bytes, stored_bytes;
};
int catalog_node_backup_finish(catalog *c, int64_t nb, int64_t root, const struct nb_totals *t, struct err *e);
/*
 * Marks a snapshot complete with its time; its name is that time (UTC ISO-8601, with
 * microseconds when another snapshot of the cluster has the same second). *name gets it.
 */
int catalog_snapshot_finish(catalog *c, int64_t snap, int64_t time_us, char name[48], struct err *e);
/*
 * Removes a snapshot that did not complete, its entries, and every unfinished content list
 * (no hash: never shared; call with the writer lock held). Chunks stay: they are durable.
 */
int catalog_snapshot_abandon(catalog *c, int64_t snap, struct err *e);
/* Abandons every 'running' snapshot (call with the writer lock held); *n gets how many. */
int catalog_cleanup_stale(catalog *c, int *n, struct err *e);

/* The newest complete node backup of node before this one (0 if none). */
int64_t catalog_prev_node_backup(catalog *c, int64_t node);

/* A node backup's start time (us) and root entry (0 if unknown). */
int64_t catalog_node_backup_started_us(catalog *c, int64_t nb);
int64_t catalog_node_backup_root(catalog *c, int64_t nb);

/* --- packs and chunks (writer) --- */

int catalog_pack_begin(catalog *c, int64_t *pack, struct err *e);
int catalog_pack_finish(catalog *c, int64_t pack, const uint8_t hash[32], uint64_t size, struct err *e);
int catalog_chunk_add(catalog *c, const uint8_t id[32], int64_t pack, uint32_t off, uint32_t len, uint32_t raw,
		      int64_t *chunk, struct err *e);
/* A chunk stored as a delta against the chunk base (chunks.base; never itself a delta). */
int catalog_chunk_add_delta(catalog *c, const uint8_t id[32], int64_t pack, uint32_t off, uint32_t len, uint32_t raw,
			    int64_t base, int64_t *chunk, struct err *e);
/* The chunk's number, or 0 when the catalog does not have it. */
int64_t catalog_chunk_find(catalog *c, const uint8_t id[32]);
/*
 * The base for a new version of the block at offset off of content (a complete, committed
 * list): that block's chunk, or its base when it is a delta. Its number (0: no chunk there)
 * and *base its location.
 */
int64_t catalog_chunk_base_at(catalog *c, int64_t content, uint64_t off, struct blob_loc *base);
/*
 * Where the bases for new versions of content's blocks lie (see catalog_chunk_base_at): per
 * pack, the byte range [off, end) that holds them and the bytes they take in it (a hint for
 * read-ahead; errors end the listing early).
 */
int catalog_content_base_ranges(catalog *c, int64_t content,
				void (*cb)(void *ctx, const uint8_t pack[32], uint64_t off, uint64_t end, uint64_t bytes),
				void *ctx);

/* --- contents (a file's chunk list) --- */

int catalog_content_begin(catalog *c, int64_t *content, struct err *e);
/* chunk 0 records a hole of len zero bytes. */
int catalog_content_add(catalog *c, int64_t content, uint64_t off, uint32_t len, int64_t chunk, struct err *e);
/* Removes a content list that nothing references (its rows and itself). */
int catalog_content_drop(catalog *c, int64_t content, struct err *e);
/*
 * Completes a content list with its hash (SHA-256 over its chunk ids, see docs/format.md).
 * When a content with that hash exists already, the new rows are dropped and *final is the
 * existing one; otherwise *final = content.
 */
int catalog_content_finish(catalog *c, int64_t content, const uint8_t hash[32], uint64_t size, int64_t nchunks,
			   int64_t *final, struct err *e);

/* --- tree entries --- */

struct catalog_entry {
	int64_t id;	/* set by add/lookup */
	int64_t parent; /* 0 for a node backup's root */
	char name[256];
	uint32_t mode;
	uint32_t uid, gid;
	uint64_t size;
	int64_t mtime_ns, ctime_ns;
	uint64_t src_ino, rdev;
	char target[4096]; /* symlink target */
	int64_t content;   /* 0: none (empty file, dir, link) */
};

int catalog_entry_add(catalog *c, int64_t nb, struct catalog_entry *en, struct err *e);
/* ERR_NOTFOUND when the name is not in that directory. */
int catalog_entry_lookup(catalog *c, int64_t nb, int64_t parent, const char *name, struct catalog_entry *out,
			 struct err *e);
int catalog_entry_get(catalog *c, int64_t id, struct catalog_entry *out, struct err *e);
/* Sets an entry's owner (a root directory made before its owner was known). */
int catalog_entry_set_owner(catalog *c, int64_t id, uint32_t uid, uint32_t gid, struct err *e);
/* Node backup of an entry. */
int64_t catalog_entry_nb(catalog *c, int64_t id);
/*
 * Up to max entries of directory parent whose names sort after `after` ("" for the start),
 * in name order; *n gets how many. Never loads the whole directory.
 */
int catalog_dir_page(catalog *c, int64_t nb, int64_t parent, const char *after, struct catalog_entry *out,
		     size_t max, size_t *n, struct err *e);

/* --- reading content --- */

struct content_piece {
	uint64_t off;
	uint32_t len;
	int64_t chunk; /* 0: hole */
	struct blob_loc loc;
};

/* Up to max pieces of content starting with the one that covers offset from; none when from
 * is at or past the end of the last piece. */
int catalog_content_pieces(catalog *c, int64_t content, uint64_t from, struct content_piece *out, size_t max,
			   size_t *n, struct err *e);

/* Bytes of content that are holes (no chunk), summed over its list. */
int catalog_content_holes(catalog *c, int64_t content, uint64_t *bytes, struct err *e);

/* --- listing --- */

struct catalog_snapshot {
	int64_t id, cluster;
	char cluster_name[128];
	char name[48];
	int64_t time_us, started_us, finished_us;
	char kind[16];
	int64_t nodes, files, bytes, new_bytes, stored_bytes;
};

/* Complete snapshots of a cluster (0: every cluster), oldest first, through a callback. */
int catalog_snapshots(catalog *c, int64_t cluster, int (*cb)(void *ctx, const struct catalog_snapshot *s),
		      void *ctx, struct err *e);
int catalog_snapshot_by_name(catalog *c, int64_t cluster, const char *name, struct catalog_snapshot *out,
			     struct err *e);
int catalog_snapshot_latest(catalog *c, int64_t cluster, struct catalog_snapshot *out, struct err *e);
/* A complete snapshot by its catalog number; ERR_NOTFOUND when absent or not complete. */
int catalog_snapshot_get(catalog *c, int64_t id, struct catalog_snapshot *out, struct err *e);
/*
 * Removes a complete snapshot from the catalog: its node backups and tree entries (the content
 * lists, chunks and packs stay; they are garbage for pruning once nothing refers to them).
 * Runs in the caller's transaction. ERR_NOTFOUND when there is no such snapshot.
 */
int catalog_snapshot_delete(catalog *c, int64_t id, struct err *e);
/* A number that changes whenever another connection commits (PRAGMA data_version). */
int64_t catalog_data_version(catalog *c);
/* Node backups of a snapshot: node name and root entry. */
int catalog_snapshot_nodes(catalog *c, int64_t snap, int (*cb)(void *ctx, const char *node, int64_t nb, int64_t root),
			   void *ctx, struct err *e);
/* Clusters by name (every cluster in the catalog, sorted). */
int catalog_clusters(catalog *c, int (*cb)(void *ctx, int64_t id, const char *name), void *ctx, struct err *e);

/* --- packs for check/repair --- */

struct catalog_pack {
	int64_t id;
	uint8_t hash[32];
	uint64_t size;
};
int catalog_packs(catalog *c, int (*cb)(void *ctx, const struct catalog_pack *p), void *ctx, struct err *e);
/* Chunks recorded in a pack (for check --read-data): id, offset, length, raw. */
int catalog_pack_chunks(catalog *c, int64_t pack, int (*cb)(void *ctx, const struct blob_loc *loc), void *ctx,
			struct err *e);
/* Referential checks inside the catalog; *problems gets a count, cb each message. */
int catalog_verify(catalog *c, int (*cb)(void *ctx, const char *msg), void *ctx, int *problems, struct err *e);

/* A consistent copy of the whole catalog into path (VACUUM INTO); on error *msg (free()). */
int catalog_vacuum_into(catalog *c, const char *path, char **msg);

/* --- online backups (writer) --- */

/* What an online node backup records (strings may be NULL or empty: stored as NULL). */
struct catalog_pg_info {
	const char *start_lsn, *stop_lsn; /* "0/2000028" */
	int64_t timeline;
	const char *system_id, *pg_version, *citus_version;
	const char *backup_label, *tablespace_map;
	int64_t damaged_pages; /* pages whose checksum failed */
};
int catalog_node_backup_set_pg(catalog *c, int64_t nb, const struct catalog_pg_info *pg, struct err *e);
/* A restore point of a cluster (snap: the snapshot it closed, or 0), then its LSN per node. */
int catalog_restore_point_add(catalog *c, int64_t cluster, const char *name, int64_t time_us, int64_t snap,
			      int64_t *id, struct err *e);
int catalog_restore_point_node(catalog *c, int64_t rp, int64_t node, const char *lsn, struct err *e);
/* 0 when cluster has a restore point called name (made by pgtimefs or seen in its WAL),
 * ERR_NOTFOUND when not. */
int catalog_restore_point_named(catalog *c, int64_t cluster, const char *name, struct err *e);

/* A node backup as `list` shows it. */
struct catalog_node_info {
	char node[128], source[256], start_lsn[32], stop_lsn[32], system_id[32], pg_version[64], citus_version[32];
	int64_t timeline, damaged_pages, files, bytes, new_bytes;
};
int catalog_snapshot_node_info(catalog *c, int64_t snap, int (*cb)(void *ctx, const struct catalog_node_info *n),
			       void *ctx, struct err *e);

/* --- archived WAL files (wal-push, wal-fetch) --- */

/*
 * One file a node's server archived: a segment (24 hex digits), a timeline history
 * (TTTTTTTT.history), a backup history (<segment>.XXXXXXXX.backup) or a partial segment
 * (<segment>.partial). Names are unique per node; the bytes are a content list like a file's.
 */
/*
 * What catalog_wal.sha256 holds. WAL_DIGEST_SHA256: SHA-256 of the bytes (every row written by
 * a catalog older than schema 7, and empty files). WAL_DIGEST_CONTENT: the content hash of the
 * file's content list (docs/format.md), which covers every byte through the keyed blob ids and
 * costs wal-push no pass over the bytes of its own (rows of schema 7). WAL_DIGEST_ENCODED
 * (schema 8 on): the same, but the list's blobs have encoded ids (ingest_stream_set_wal).
 */
enum { WAL_DIGEST_SHA256 = 0, WAL_DIGEST_CONTENT = 1, WAL_DIGEST_ENCODED = 2 };

struct catalog_wal {
	int64_t id, node;	/* id: set by add/find */
	char name[64];
	int64_t timeline;
	int64_t segno;		/* segment number (for the file's segment size), -1: not a segment */
	uint64_t size;
	int64_t content;	/* 0: empty */
	uint8_t sha256[32];	/* the digest of the bytes (the idempotence check of wal-push), which */
	int digest;		/* WAL_DIGEST_* */
	int64_t stored_us;
	int64_t first_commit_us, last_commit_us; /* time index, 0: unknown (not read yet) */
};
/* Records a WAL file in the caller's transaction; w->id gets its number. */
int catalog_wal_add(catalog *c, struct catalog_wal *w, struct err *e);
/* The WAL file name of node; ERR_NOTFOUND when it is not recorded. */
int catalog_wal_find(catalog *c, int64_t node, const char *name, struct catalog_wal *out, struct err *e);
/*
 * Removes, in the caller's transaction, node's .partial rows of timeline whose segment number
 * is at most segno (a streamed partial superseded by a newer one or by its complete segment);
 * *n (may be NULL) gets how many. Their content lists stay: garbage for pruning.
 */
int catalog_wal_drop_partials(catalog *c, int64_t node, int64_t timeline, int64_t segno, int *n, struct err *e);
/* The node's complete segment (24-digit name) with the highest timeline, then segment
 * number; ERR_NOTFOUND when it has none. */
int catalog_wal_last_segment(catalog *c, int64_t node, struct catalog_wal *out, struct err *e);

/* --- the time index (schema 5): restore points in WAL, runs of segments --- */

/* A restore point found in a node's archived WAL (pg_create_restore_point). */
struct catalog_wal_rp {
	int64_t node;
	char node_name[128];
	char wal[64];  /* the WAL file where its record ends */
	char name[65];
	int64_t time_us;
	uint64_t lsn;  /* start of its record */
};
/* Records one in the caller's transaction; the same (node, lsn) seen again only updates its wal name (a
 * streamed partial's point recorded again with the complete segment). */
int catalog_wal_restore_point_add(catalog *c, int64_t node, const char *wal, const char *name, int64_t time_us,
				  uint64_t lsn, struct err *e);
/* Restore points found in the WAL of a cluster's nodes with from_us <= time <= to_us, by time (desc: newest first). */
int catalog_wal_restore_points(catalog *c, int64_t cluster, int64_t from_us, int64_t to_us, int desc,
			       int (*cb)(void *ctx, const struct catalog_wal_rp *rp), void *ctx, struct err *e);

/* --- timeline ancestry (schema 9) --- */

/*
 * Records, in the caller's transaction, one line of the history file of node's timeline tli:
 * tli descends from timeline parent, which it (or an ancestor between them) left at end_lsn.
 * A line recorded before is kept.
 */
int catalog_wal_history_add(catalog *c, int64_t node, int64_t tli, int64_t parent, uint64_t end_lsn, struct err *e);
/*
 * Up to max .history rows of timelines above 1 whose lines are not recorded (archived before
 * schema 9, or not readable), with ids above after, by id; *n gets how many.
 */
int catalog_wal_histories_unread(catalog *c, int64_t after, struct catalog_wal *out, size_t max, size_t *n,
				 struct err *e);
/* end_lsn of the one line recorded for a history PostgreSQL cannot read (with parent 0): no
 * timeline is its ancestor, so the window never follows it */
#define CATALOG_TLI_UNREADABLE UINT64_MAX
/* What the recorded history of one timeline says about one ancestor. */
struct catalog_tli_line {
	int lines;	   /* lines recorded for the timeline; 0: none (archived before schema 9, or a
			    * history file that could not be read): its ancestry is unknown */
	int64_t begin_lsn; /* where the timeline begins (it left its parent): its largest end_lsn; -1 */
	int64_t end_lsn;   /* where it left the ancestor asked about; -1: not one of its ancestors */
};
int catalog_wal_history_of(catalog *c, int64_t node, int64_t tli, int64_t ancestor, struct catalog_tli_line *out,
			   struct err *e);

/* A complete node backup as the window needs it. Strings are "" when unknown (offline snapshots). */
struct catalog_nb_pos {
	int64_t nb, snapshot, node, root;
	char snapshot_name[48];
	int64_t time_us;   /* the snapshot's time */
	char start_lsn[32], stop_lsn[32];
	int64_t timeline;  /* 0: unknown */
	char system_id[32], pg_version[64], citus_version[32];
};
/* Complete node backups of node whose snapshot time <= upto_us, by snapshot time (desc: newest first). */
int catalog_node_backups_of(catalog *c, int64_t node, int64_t upto_us, int desc,
			    int (*cb)(void *ctx, const struct catalog_nb_pos *p), void *ctx, struct err *e);
/*
 * The segment and .partial rows of node with segno >= from_segno, in (segno, timeline, name)
 * order, streamed from one query (cb returns non-zero to stop, and that is returned).
 */
int catalog_wal_segments(catalog *c, int64_t node, int64_t from_segno, int (*cb)(void *ctx, const struct catalog_wal *w),
			 void *ctx, struct err *e);
/* Up to max WAL rows of node whose names sort after `after`, in name order; *n gets how many. */
int catalog_wal_page(catalog *c, int64_t node, const char *after, struct catalog_wal *out, size_t max, size_t *n,
		     struct err *e);
/* A WAL row by its number; ERR_NOTFOUND. */
int catalog_wal_get(catalog *c, int64_t id, struct catalog_wal *out, struct err *e);

/* A node of a cluster with its complete node backups and archived WAL. */
struct catalog_node_row {
	int64_t id;
	char name[128];
	int64_t backups, wal_files, wal_bytes;
};
int catalog_cluster_nodes(catalog *c, int64_t cluster, int (*cb)(void *ctx, const struct catalog_node_row *n),
			  void *ctx, struct err *e);
/*
 * The node backups of the cluster's complete snapshots, oldest snapshot first (time, then id),
 * one call per (snapshot, node); online: a cluster backup (every configured node), not an
 * offline snapshot of one directory. For membership over time (window.h).
 */
int catalog_cluster_snapshot_nodes(catalog *c, int64_t cluster,
				   int (*cb)(void *ctx, int64_t snapshot, int64_t time_us, int online, int64_t node),
				   void *ctx, struct err *e);
/*
 * Since when each node of the cluster has been archiving WAL: its first segment's first commit
 * (or, without one, when it was stored); nodes without WAL are not given. One index lookup each.
 */
int catalog_cluster_wal_since(catalog *c, int64_t cluster, int (*cb)(void *ctx, int64_t node, int64_t since_us),
			      void *ctx, struct err *e);
/* A node's cluster and name by its number; ERR_NOTFOUND. */
int catalog_node_get(catalog *c, int64_t id, int64_t *cluster, char name[128], struct err *e);

#endif
