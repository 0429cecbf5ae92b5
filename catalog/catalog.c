#include "catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/timefmt.h"
#include "common/util.h"

static const char *migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE clusters(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_us INTEGER NOT NULL,"
	" locked INTEGER NOT NULL DEFAULT 0, deleted_us INTEGER);"
	"CREATE TABLE nodes(id INTEGER PRIMARY KEY, cluster INTEGER NOT NULL REFERENCES clusters(id),"
	" name TEXT NOT NULL, UNIQUE(cluster, name));"
	"CREATE TABLE snapshots(id INTEGER PRIMARY KEY, cluster INTEGER NOT NULL REFERENCES clusters(id),"
	" name TEXT, time_us INTEGER, started_us INTEGER NOT NULL, finished_us INTEGER,"
	" state TEXT NOT NULL CHECK(state IN ('running','complete')), kind TEXT NOT NULL, pid INTEGER,"
	" UNIQUE(cluster, name));"
	"CREATE TABLE node_backups(id INTEGER PRIMARY KEY, snapshot INTEGER NOT NULL REFERENCES snapshots(id),"
	" node INTEGER NOT NULL REFERENCES nodes(id), root INTEGER, source TEXT, files INTEGER, bytes INTEGER,"
	" new_bytes INTEGER, stored_bytes INTEGER, started_us INTEGER, finished_us INTEGER,"
	" start_lsn TEXT, stop_lsn TEXT, timeline INTEGER, system_id TEXT, pg_version TEXT, citus_version TEXT,"
	" backup_label TEXT, tablespace_map TEXT, UNIQUE(snapshot, node));"
	"CREATE TABLE entries(id INTEGER PRIMARY KEY, nb INTEGER NOT NULL, parent INTEGER NOT NULL,"
	" name TEXT NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
	" size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, src_ino INTEGER NOT NULL,"
	" rdev INTEGER NOT NULL, target TEXT, content INTEGER);"
	"CREATE UNIQUE INDEX entries_lookup ON entries(nb, parent, name);"
	"CREATE TABLE contents(id INTEGER PRIMARY KEY, hash BLOB UNIQUE, size INTEGER NOT NULL,"
	" nchunks INTEGER NOT NULL);"
	"CREATE TABLE content_chunks(content INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,"
	" chunk INTEGER, PRIMARY KEY(content, off)) WITHOUT ROWID;"
	"CREATE TABLE packs(id INTEGER PRIMARY KEY, hash BLOB UNIQUE, size INTEGER, created_us INTEGER NOT NULL);"
	"CREATE TABLE chunks(id INTEGER PRIMARY KEY, blob_id BLOB NOT NULL UNIQUE, pack INTEGER NOT NULL"
	" REFERENCES packs(id), off INTEGER NOT NULL, len INTEGER NOT NULL, raw INTEGER NOT NULL);"
	"CREATE INDEX chunks_pack ON chunks(pack);",
	/* 2: online backups: damaged pages per node backup, restore points */
	"ALTER TABLE node_backups ADD COLUMN damaged_pages INTEGER;"
	"CREATE TABLE restore_points(id INTEGER PRIMARY KEY, cluster INTEGER NOT NULL REFERENCES clusters(id),"
	" name TEXT NOT NULL, time_us INTEGER NOT NULL, snapshot INTEGER REFERENCES snapshots(id));"
	"CREATE INDEX restore_points_cluster ON restore_points(cluster, time_us);"
	"CREATE TABLE restore_point_nodes(restore_point INTEGER NOT NULL REFERENCES restore_points(id),"
	" node INTEGER NOT NULL REFERENCES nodes(id), lsn TEXT NOT NULL, PRIMARY KEY(restore_point, node))"
	" WITHOUT ROWID;",
	/* 3: snapshot, node backup and entry numbers are never reused (AUTOINCREMENT): the mount's
	 * inode numbers are made of them, and a deleted snapshot's numbers must not come back */
	"CREATE TABLE snapshots_v3(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" cluster INTEGER NOT NULL REFERENCES clusters(id),"
	" name TEXT, time_us INTEGER, started_us INTEGER NOT NULL, finished_us INTEGER,"
	" state TEXT NOT NULL CHECK(state IN ('running','complete')), kind TEXT NOT NULL, pid INTEGER,"
	" UNIQUE(cluster, name));"
	"INSERT INTO snapshots_v3 SELECT * FROM snapshots;"
	"DROP TABLE snapshots;"
	"ALTER TABLE snapshots_v3 RENAME TO snapshots;"
	"CREATE TABLE node_backups_v3(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" snapshot INTEGER NOT NULL REFERENCES snapshots(id),"
	" node INTEGER NOT NULL REFERENCES nodes(id), root INTEGER, source TEXT, files INTEGER, bytes INTEGER,"
	" new_bytes INTEGER, stored_bytes INTEGER, started_us INTEGER, finished_us INTEGER,"
	" start_lsn TEXT, stop_lsn TEXT, timeline INTEGER, system_id TEXT, pg_version TEXT, citus_version TEXT,"
	" backup_label TEXT, tablespace_map TEXT, damaged_pages INTEGER, UNIQUE(snapshot, node));"
	"INSERT INTO node_backups_v3 SELECT * FROM node_backups;"
	"DROP TABLE node_backups;"
	"ALTER TABLE node_backups_v3 RENAME TO node_backups;"
	"CREATE TABLE entries_v3(id INTEGER PRIMARY KEY AUTOINCREMENT, nb INTEGER NOT NULL, parent INTEGER NOT NULL,"
	" name TEXT NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
	" size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, src_ino INTEGER NOT NULL,"
	" rdev INTEGER NOT NULL, target TEXT, content INTEGER);"
	"INSERT INTO entries_v3 SELECT * FROM entries;"
	"DROP TABLE entries;"
	"ALTER TABLE entries_v3 RENAME TO entries;"
	"CREATE UNIQUE INDEX entries_lookup ON entries(nb, parent, name);",
	/* 4: WAL files archived per node (wal-push): segments, .history, .backup and .partial files;
	 * the commit-time columns are filled by the WAL reader (NULL until it runs) */
	"CREATE TABLE wal(id INTEGER PRIMARY KEY, node INTEGER NOT NULL REFERENCES nodes(id),"
	" name TEXT NOT NULL, timeline INTEGER NOT NULL, segno INTEGER, size INTEGER NOT NULL,"
	" content INTEGER, sha256 BLOB NOT NULL, stored_us INTEGER NOT NULL,"
	" first_commit_us INTEGER, last_commit_us INTEGER, UNIQUE(node, name));"
	"CREATE INDEX wal_segno ON wal(node, timeline, segno);",
	/* 5: restore points found in archived WAL by the WAL reader (wal-push), per node: the
	 * time index's named points; the WAL file is the one where the record ends */
	"CREATE TABLE wal_restore_points(id INTEGER PRIMARY KEY, node INTEGER NOT NULL REFERENCES nodes(id),"
	" wal TEXT NOT NULL, name TEXT NOT NULL, time_us INTEGER NOT NULL, lsn INTEGER NOT NULL,"
	" UNIQUE(node, lsn));"
	"CREATE INDEX wal_restore_points_time ON wal_restore_points(node, time_us);"
	"CREATE INDEX wal_node_segno ON wal(node, segno, timeline);",
	/* 6: delta blocks: a chunk stored as a delta names its base chunk, which is never itself a
	 * delta */
	"ALTER TABLE chunks ADD COLUMN base INTEGER REFERENCES chunks(id);",
	/* 7: what wal.sha256 holds: 0, SHA-256 of the bytes (rows written before 7); 1, the
	 * content hash of the file's content list (a pass over the bytes fewer at wal-push) */
	"ALTER TABLE wal ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;",
	/* 8: wal.digest 2, the content hash of a content list whose blobs have encoded ids (compared
	 * by decoding the stored blobs). No table changes: the version keeps an older pgtimefs,
	 * which cannot compare such rows, from opening the catalog */
	"SELECT 1;",
	/* 9: timeline ancestry: the lines of each archived timeline history file, read when it is
	 * stored. Timeline tli descends from parent, which it left at end_lsn. A .history row
	 * without lines here was archived before schema 9: its ancestry is unknown */
	"CREATE TABLE wal_history(node INTEGER NOT NULL REFERENCES nodes(id), tli INTEGER NOT NULL,"
	" parent INTEGER NOT NULL, end_lsn INTEGER NOT NULL, PRIMARY KEY(node, tli, parent)) WITHOUT ROWID;",
};

enum stmt_id {
	S_META_GET, S_META_SET, S_CLUSTER_FIND, S_CLUSTER_ADD, S_NODE_FIND, S_NODE_ADD, S_SNAP_ADD, S_NB_ADD,
	S_NB_FINISH, S_PACK_ADD, S_PACK_FINISH, S_CHUNK_ADD, S_CHUNK_FIND, S_CONTENT_ADD, S_CC_ADD,
	S_CONTENT_BY_HASH, S_CC_DEL, S_CONTENT_DEL, S_CONTENT_SET, S_ENTRY_ADD, S_ENTRY_LOOKUP, S_ENTRY_GET,
	S_DIR_PAGE, S_PIECES, S_PREV_NB, S_ENTRY_NB, S_HOLES, S_BASE_AT, S_BASE_RANGES, S_COUNT
};

static const char *stmt_sql[S_COUNT] = {
	[S_META_GET] = "SELECT value FROM meta WHERE key = ?",
	[S_META_SET] = "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	[S_CLUSTER_FIND] = "SELECT id FROM clusters WHERE name = ? AND deleted_us IS NULL",
	[S_CLUSTER_ADD] = "INSERT INTO clusters(name, created_us) VALUES (?, ?)",
	[S_NODE_FIND] = "SELECT id FROM nodes WHERE cluster = ? AND name = ?",
	[S_NODE_ADD] = "INSERT INTO nodes(cluster, name) VALUES (?, ?)",
	[S_SNAP_ADD] = "INSERT INTO snapshots(cluster, started_us, state, kind, pid) VALUES (?, ?, 'running', ?, ?)",
	[S_NB_ADD] = "INSERT INTO node_backups(snapshot, node, source, started_us) VALUES (?, ?, ?, ?)",
	[S_NB_FINISH] = "UPDATE node_backups SET root = ?, files = ?, bytes = ?, new_bytes = ?, stored_bytes = ?,"
			" finished_us = ? WHERE id = ?",
	[S_PACK_ADD] = "INSERT INTO packs(created_us) VALUES (?)",
	[S_PACK_FINISH] = "UPDATE packs SET hash = ?, size = ? WHERE id = ?",
	[S_CHUNK_ADD] = "INSERT INTO chunks(blob_id, pack, off, len, raw, base) VALUES (?, ?, ?, ?, ?, ?)",
	[S_CHUNK_FIND] = "SELECT id FROM chunks WHERE blob_id = ?",
	[S_CONTENT_ADD] = "INSERT INTO contents(size, nchunks) VALUES (0, 0)",
	[S_CC_ADD] = "INSERT INTO content_chunks(content, off, len, chunk) VALUES (?, ?, ?, ?)",
	[S_CONTENT_BY_HASH] = "SELECT id FROM contents WHERE hash = ?",
	[S_CC_DEL] = "DELETE FROM content_chunks WHERE content = ?",
	[S_CONTENT_DEL] = "DELETE FROM contents WHERE id = ?",
	[S_CONTENT_SET] = "UPDATE contents SET hash = ?, size = ?, nchunks = ? WHERE id = ?",
	[S_ENTRY_ADD] = "INSERT INTO entries(nb, parent, name, mode, uid, gid, size, mtime_ns, ctime_ns, src_ino,"
			" rdev, target, content) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[S_ENTRY_LOOKUP] = "SELECT id, parent, name, mode, uid, gid, size, mtime_ns, ctime_ns, src_ino, rdev, target,"
			   " content FROM entries WHERE nb = ? AND parent = ? AND name = ?",
	[S_ENTRY_GET] = "SELECT id, parent, name, mode, uid, gid, size, mtime_ns, ctime_ns, src_ino, rdev, target,"
			" content FROM entries WHERE id = ?",
	[S_DIR_PAGE] = "SELECT id, parent, name, mode, uid, gid, size, mtime_ns, ctime_ns, src_ino, rdev, target,"
		       " content FROM entries WHERE nb = ? AND parent = ? AND name > ? ORDER BY name LIMIT ?",
	[S_HOLES] = "SELECT coalesce(sum(len), 0) FROM content_chunks WHERE content = ? AND chunk IS NULL",
	[S_PIECES] = "SELECT cc.off, cc.len, cc.chunk, c.blob_id, p.hash, c.off, c.len, c.raw,"
		     " c.base, b.blob_id, bp.hash, b.off, b.len, b.raw"
		     " FROM content_chunks cc LEFT JOIN chunks c ON c.id = cc.chunk LEFT JOIN packs p ON p.id = c.pack"
		     " LEFT JOIN chunks b ON b.id = c.base LEFT JOIN packs bp ON bp.id = b.pack"
		     " WHERE cc.content = ? AND cc.off >= (SELECT coalesce(max(off), 0) FROM content_chunks"
		     " WHERE content = ?1 AND off <= ?2) AND cc.off + cc.len > ?2 ORDER BY cc.off LIMIT ?3",
	[S_PREV_NB] = "SELECT nb.id FROM node_backups nb JOIN snapshots s ON s.id = nb.snapshot"
		      " WHERE nb.node = ? AND s.state = 'complete' ORDER BY s.time_us DESC LIMIT 1",
	[S_ENTRY_NB] = "SELECT nb FROM entries WHERE id = ?",
	/* the base for a new version of the block at off of content: that block's chunk, or its
	 * base when it is a delta (bases are never deltas) */
	[S_BASE_AT] = "SELECT b.id, b.blob_id, p.hash, b.off, b.len, b.raw FROM content_chunks cc"
		      " JOIN chunks c ON c.id = cc.chunk JOIN chunks b ON b.id = coalesce(c.base, c.id)"
		      " JOIN packs p ON p.id = b.pack WHERE cc.content = ? AND cc.off = ? AND b.base IS NULL"
		      " AND p.hash IS NOT NULL",
	[S_BASE_RANGES] = "SELECT p.hash, min(b.off), max(b.off + b.len), sum(b.len) FROM content_chunks cc"
			  " JOIN chunks c ON c.id = cc.chunk JOIN chunks b ON b.id = coalesce(c.base, c.id)"
			  " JOIN packs p ON p.id = b.pack WHERE cc.content = ? AND b.base IS NULL"
			  " AND p.hash IS NOT NULL GROUP BY b.pack",
};

struct catalog {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *st[S_COUNT];
};

static int db_err(catalog *c, struct err *e, const char *what)
{
	int code = sqlite3_errcode(c->db);
	int rc = (code == SQLITE_FULL) ? ERR_NOSPC : (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? ERR_CORRUPT : ERR_DB;
	err_set(e, rc, "catalog %s: %s: %s", c->path, what, sqlite3_errmsg(c->db));
	if (rc == ERR_NOSPC)
		err_hint(e, "free space in the state directory; the last transaction was rolled back");
	else if (rc == ERR_CORRUPT)
		err_hint(e, "recover the catalog from a zone with 'pgtimefs init --recover'");
	return rc;
}

static sqlite3_stmt *st(catalog *c, enum stmt_id id)
{
	if (!c->st[id]) {
		if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL) != SQLITE_OK) {
			fprintf(stderr, "pgtimefs: internal: cannot prepare catalog statement %d: %s\n", (int)id,
				sqlite3_errmsg(c->db));
			abort();
		}
	} else {
		sqlite3_reset(c->st[id]);
		sqlite3_clear_bindings(c->st[id]);
	}
	return c->st[id];
}

static int exec(catalog *c, const char *sql, struct err *e)
{
	char *msg = NULL;
	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = db_err(c, e, msg ? msg : "statement failed");
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

#define CATALOG_CHECKPOINT_PAGES 128

static int migrate(catalog *c, struct err *e)
{
	sqlite3_stmt *s;
	int version = 0, rc;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "reading the schema version");
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > CATALOG_SCHEMA_VERSION) {
		err_set(e, ERR_DB, "catalog %s has schema version %d; this pgtimefs knows up to %d", c->path, version,
			CATALOG_SCHEMA_VERSION);
		err_hint(e, "upgrade pgtimefs");
		return ERR_DB;
	}
	for (int v = version; v < CATALOG_SCHEMA_VERSION; v++) {
		char pragma[64];
		if ((rc = exec(c, "BEGIN IMMEDIATE", e)) < 0)
			return rc;
		if ((rc = exec(c, migrations[v], e)) < 0) {
			exec(c, "ROLLBACK", NULL);
			return rc;
		}
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
		if ((rc = exec(c, pragma, e)) < 0 || (rc = exec(c, "COMMIT", e)) < 0) {
			exec(c, "ROLLBACK", NULL);
			return rc;
		}
	}
	return 0;
}

int catalog_schema_version(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int version = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			version = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return version;
}

int catalog_open(const char *path, int readonly, catalog **out, struct err *e)
{
	catalog *c = xcalloc(1, sizeof *c);
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc;
	*out = NULL;
	c->path = xstrdup(path);
	if (sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = c->db ? db_err(c, e, "cannot open") : err_set(e, ERR_DB, "cannot open catalog %s", path);
		if (readonly && access(path, F_OK) != 0) {
			err_set(e, ERR_NOTFOUND, "no catalog at %s", path);
			err_hint(e, "run 'pgtimefs init' (new repository) or 'pgtimefs init --recover' (from the zones)");
			rc = ERR_NOTFOUND;
		}
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 30000);
	/*
	 * No checkpoint when the last connection closes: a short-lived writer (wal-push, once per
	 * segment) would otherwise pay a checkpoint, two more fsyncs and a new -wal file (and a
	 * directory fsync) on every run. SQLite's automatic checkpoint runs at commit time instead,
	 * so the -wal file stays bounded and is kept between runs. But every process that opens
	 * the catalog first rebuilds the WAL index from all the frames written since the last
	 * checkpoint (about 2.5 ms of CPU per MiB): at SQLite's default of 1000 pages, a wal-push
	 * paid 2-4 ms of its start for that alone. So the writer checkpoints every
	 * CATALOG_CHECKPOINT_PAGES (a wal-push writes about 30 pages): about one fsync of the
	 * database file per four pushes, and a WAL index built from 0.5 MiB at most.
	 */
	if (!readonly) {
		sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		sqlite3_wal_autocheckpoint(c->db, CATALOG_CHECKPOINT_PAGES);
	}
	if ((rc = exec(c, readonly ? "PRAGMA query_only = 1" : "PRAGMA journal_mode = WAL", e)) < 0)
		goto fail;
	/* readers (mount threads, ingest workers) are many: each keeps a smaller page cache */
	if ((rc = exec(c, readonly ? "PRAGMA foreign_keys = OFF; PRAGMA cache_size = -2048"
				   : "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -16384",
		       e)) < 0)
		goto fail;
	if (!readonly && (rc = migrate(c, e)) < 0)
		goto fail;
	if (readonly) {
		sqlite3_stmt *s;
		int version = -1;
		if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
			if (sqlite3_step(s) == SQLITE_ROW)
				version = sqlite3_column_int(s, 0);
			sqlite3_finalize(s);
		}
		if (version != CATALOG_SCHEMA_VERSION) {
			rc = err_set(e, version < 0 ? ERR_CORRUPT : ERR_DB, "catalog %s has schema version %d, expected %d",
				     path, version, CATALOG_SCHEMA_VERSION);
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	catalog_close(c);
	return rc;
}

void catalog_close(catalog *c)
{
	if (!c)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

const char *catalog_path(const catalog *c)
{
	return c->path;
}

int catalog_checkpoint(catalog *c, struct err *e)
{
	return exec(c, "PRAGMA wal_checkpoint(TRUNCATE)", e);
}

int catalog_begin(catalog *c, struct err *e)
{
	return exec(c, "BEGIN IMMEDIATE", e);
}

int catalog_commit(catalog *c, struct err *e)
{
	return exec(c, "COMMIT", e);
}

void catalog_rollback(catalog *c)
{
	if (!sqlite3_get_autocommit(c->db))
		exec(c, "ROLLBACK", NULL);
}

static int step_done(catalog *c, sqlite3_stmt *s, struct err *e, const char *what)
{
	int r = sqlite3_step(s);
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		return db_err(c, e, what);
	return 0;
}

int catalog_meta_get(catalog *c, const char *key, char *out, size_t cap)
{
	sqlite3_stmt *s = st(c, S_META_GET);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW)
		return ERR_NOTFOUND;
	snprintf(out, cap, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	return 0;
}

int catalog_meta_set(catalog *c, const char *key, const char *value, struct err *e)
{
	sqlite3_stmt *s = st(c, S_META_SET);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	return step_done(c, s, e, "setting meta");
}

int catalog_writer_lock(const char *state_dir, int wait_s, int *fd, struct err *e)
{
	char path[4096], pid[32];
	int f, said = 0;
	double until = util_mono() + wait_s;
	snprintf(path, sizeof path, "%s/writer.lock", state_dir);
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0)
		return err_sys(e, ERR_IO, "cannot open lock file %s", path);
	while (flock(f, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			err_sys(e, ERR_IO, "cannot lock %s", path);
			close(f);
			return e ? e->code : ERR_IO;
		}
		if (util_mono() >= until) {
			ssize_t n = pread(f, pid, sizeof pid - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			err_set(e, ERR_LOCKED, "another pgtimefs process (pid %s) is writing to this repository", pid[0] ? pid : "?");
			err_hint(e, "wait for it to finish and run the command again (or pass --wait SECONDS)");
			close(f);
			return ERR_LOCKED;
		}
		if (!said && wait_s > 0) {
			fprintf(stderr, "pgtimefs: waiting for another pgtimefs writer to finish (up to %d s)\n", wait_s);
			said = 1;
		}
		usleep(100000);
	}
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(f, 0) == 0 && pwrite(f, pid, strlen(pid), 0) < 0) {
		/* the pid is informative only */
	}
	*fd = f;
	return 0;
}

void catalog_writer_unlock(int fd)
{
	if (fd >= 0) {
		if (ftruncate(fd, 0) < 0) {
			/* informative only */
		}
		close(fd);
	}
}

static int find_id(sqlite3_stmt *s, int64_t *id)
{
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return ERR_NOTFOUND;
	}
	*id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

int catalog_cluster_find(catalog *c, const char *name, int64_t *id, struct err *e)
{
	sqlite3_stmt *s = st(c, S_CLUSTER_FIND);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if (find_id(s, id) < 0)
		return err_set(e, ERR_NOTFOUND, "no cluster named '%s' in the catalog", name);
	return 0;
}

int catalog_cluster_ensure(catalog *c, const char *name, int64_t *id, struct err *e)
{
	sqlite3_stmt *s;
	if (catalog_cluster_find(c, name, id, NULL) == 0)
		return 0;
	s = st(c, S_CLUSTER_ADD);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, util_now_us());
	if (step_done(c, s, e, "adding a cluster") < 0)
		return e ? e->code : ERR_DB;
	*id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int catalog_node_ensure(catalog *c, int64_t cluster, const char *name, int64_t *id, struct err *e)
{
	sqlite3_stmt *s = st(c, S_NODE_FIND);
	sqlite3_bind_int64(s, 1, cluster);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	if (find_id(s, id) == 0)
		return 0;
	s = st(c, S_NODE_ADD);
	sqlite3_bind_int64(s, 1, cluster);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	if (step_done(c, s, e, "adding a node") < 0)
		return e ? e->code : ERR_DB;
	*id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int catalog_snapshot_begin(catalog *c, int64_t cluster, const char *kind, int64_t *snap, struct err *e)
{
	sqlite3_stmt *s = st(c, S_SNAP_ADD);
	sqlite3_bind_int64(s, 1, cluster);
	sqlite3_bind_int64(s, 2, util_now_us());
	sqlite3_bind_text(s, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, getpid());
	if (step_done(c, s, e, "adding a snapshot") < 0)
		return e ? e->code : ERR_DB;
	*snap = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int catalog_node_backup_begin(catalog *c, int64_t snap, int64_t node, const char *source, int64_t *nb,
			      struct err *e)
{
	sqlite3_stmt *s = st(c, S_NB_ADD);
	sqlite3_bind_int64(s, 1, snap);
	sqlite3_bind_int64(s, 2, node);
	sqlite3_bind_text(s, 3, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, util_now_us());
	if (step_done(c, s, e, "adding a node backup") < 0)
		return e ? e->code : ERR_DB;
	*nb = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int catalog_node_backup_finish(catalog *c, int64_t nb, int64_t root, const struct nb_totals *t, struct err *e)
{
	sqlite3_stmt *s = st(c, S_NB_FINISH);
	sqlite3_bind_int64(s, 1, root);
	sqlite3_bind_int64(s, 2, t->files);
	sqlite3_bind_int64(s, 3, t->bytes);
	sqlite3_bind_int64(s, 4, t->new_bytes);
	sqlite3_bind_int64(s, 5, t->stored_bytes);
	sqlite3_bind_int64(s, 6, util_now_us());
	sqlite3_bind_int64(s, 7, nb);
	return step_done(c, s, e, "finishing a node backup");
}

int catalog_snapshot_finish(catalog *c, int64_t snap, int64_t time_us, char name[48], struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	timefmt_print(time_us, 0, name);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (sqlite3_prepare_v2(c->db,
				       "UPDATE snapshots SET state = 'complete', name = ?, time_us = ?, finished_us = ?"
				       " WHERE id = ?",
				       -1, &s, NULL) != SQLITE_OK)
			return db_err(c, e, "finishing a snapshot");
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, time_us);
		sqlite3_bind_int64(s, 3, util_now_us());
		sqlite3_bind_int64(s, 4, snap);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_CONSTRAINT)
			break;
		timefmt_print(time_us, 1, name); /* same second as another snapshot */
	}
	return db_err(c, e, "naming a snapshot");
}

int catalog_snapshot_abandon(catalog *c, int64_t snap, struct err *e)
{
	char sql[512];
	snprintf(sql, sizeof sql,
		 "DELETE FROM entries WHERE nb IN (SELECT nb.id FROM node_backups nb JOIN snapshots s"
		 " ON s.id = nb.snapshot WHERE s.id = %lld AND s.state = 'running');"
		 "DELETE FROM node_backups WHERE snapshot IN (SELECT id FROM snapshots WHERE id = %lld AND state = 'running');"
		 "DELETE FROM snapshots WHERE id = %lld AND state = 'running';"
		 /* unfinished content lists (no hash) were never shared: under the writer lock
		  * they are this run's (or a dead run's) */
		 "DELETE FROM content_chunks WHERE content IN (SELECT id FROM contents WHERE hash IS NULL);"
		 "DELETE FROM contents WHERE hash IS NULL;",
		 (long long)snap, (long long)snap, (long long)snap);
	return exec(c, sql, e);
}

int catalog_cleanup_stale(catalog *c, int *n, struct err *e)
{
	sqlite3_stmt *s;
	int64_t ids[64];
	int k = 0, rc = 0, more;
	*n = 0;
again:
	k = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT id FROM snapshots WHERE state = 'running' LIMIT 65", -1, &s, NULL) !=
	    SQLITE_OK)
		return db_err(c, e, "finding unfinished snapshots");
	while (sqlite3_step(s) == SQLITE_ROW && k < 64)
		ids[k++] = sqlite3_column_int64(s, 0);
	more = sqlite3_stmt_busy(s) && sqlite3_data_count(s) > 0; /* a 65th row: another batch after this one */
	sqlite3_finalize(s);
	if (!k)
		return 0;
	/* unfinished content lists (no hash) go with them (catalog_snapshot_abandon) */
	if ((rc = catalog_begin(c, e)) < 0)
		return rc;
	for (int i = 0; i < k && rc == 0; i++)
		rc = catalog_snapshot_abandon(c, ids[i], e);
	if (rc == 0)
		rc = catalog_commit(c, e);
	if (rc < 0) {
		catalog_rollback(c);
		return rc;
	}
	*n += k;
	if (more)
		goto again;
	return 0;
}

int64_t catalog_prev_node_backup(catalog *c, int64_t node)
{
	sqlite3_stmt *s = st(c, S_PREV_NB);
	int64_t id = 0;
	sqlite3_bind_int64(s, 1, node);
	find_id(s, &id);
	return id;
}

int catalog_pack_begin(catalog *c, int64_t *pack, struct err *e)
{
	sqlite3_stmt *s = st(c, S_PACK_ADD);
	sqlite3_bind_int64(s, 1, util_now_us());
	if (step_done(c, s, e, "adding a pack") < 0)
		return e ? e->code : ERR_DB;
	*pack = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int catalog_pack_finish(catalog *c, int64_t pack, const uint8_t hash[32], uint64_t size, struct err *e)
{
	sqlite3_stmt *s = st(c, S_PACK_FINISH);
	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	sqlite3_bind_int64(s, 3, pack);
	return step_done(c, s, e, "recording a pack");
}

int catalog_chunk_add(catalog *c, const uint8_t id[32], int64_t pack, uint32_t off, uint32_t len, uint32_t raw,
		      int64_t *chunk, struct err *e)
{
	return catalog_chunk_add_delta(c, id, pack, off, len, raw, 0, chunk, e);
}

int catalog_chunk_add_delta(catalog *c, const uint8_t id[32], int64_t pack, uint32_t off, uint32_t len, uint32_t raw,
			    int64_t base, int64_t *chunk, struct err *e)
{
	sqlite3_stmt *s = st(c, S_CHUNK_ADD);
	sqlite3_bind_blob(s, 1, id, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, pack);
	sqlite3_bind_int64(s, 3, off);
	sqlite3_bind_int64(s, 4, len);
	sqlite3_bind_int64(s, 5, raw);
	if (base)
		sqlite3_bind_int64(s, 6, base);
	if (step_done(c, s, e, "recording a chunk") < 0)
		return e ? e->code : ERR_DB;
	*chunk = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int64_t catalog_chunk_find(catalog *c, const uint8_t id[32])
{
	sqlite3_stmt *s = st(c, S_CHUNK_FIND);
	int64_t r = 0;
	sqlite3_bind_blob(s, 1, id, 32, SQLITE_STATIC);
	find_id(s, &r);
	sqlite3_reset(s);
	return r;
}

int64_t catalog_chunk_base_at(catalog *c, int64_t content, uint64_t off, struct blob_loc *base)
{
	sqlite3_stmt *s = st(c, S_BASE_AT);
	int64_t id = 0;
	sqlite3_bind_int64(s, 1, content);
	sqlite3_bind_int64(s, 2, (int64_t)off);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 1) == 32 && sqlite3_column_bytes(s, 2) == 32) {
		id = sqlite3_column_int64(s, 0);
		memset(base, 0, sizeof *base);
		memcpy(base->id, sqlite3_column_blob(s, 1), 32);
		memcpy(base->pack, sqlite3_column_blob(s, 2), 32);
		base->offset = (uint32_t)sqlite3_column_int64(s, 3);
		base->length = (uint32_t)sqlite3_column_int64(s, 4);
		base->raw = (uint32_t)sqlite3_column_int64(s, 5);
	}
	sqlite3_reset(s);
	return id;
}

int catalog_content_base_ranges(catalog *c, int64_t content,
				void (*cb)(void *ctx, const uint8_t pack[32], uint64_t off, uint64_t end, uint64_t bytes),
				void *ctx)
{
	sqlite3_stmt *s = st(c, S_BASE_RANGES);
	sqlite3_bind_int64(s, 1, content);
	while (sqlite3_step(s) == SQLITE_ROW)
		if (sqlite3_column_bytes(s, 0) == 32)
			cb(ctx, sqlite3_column_blob(s, 0), (uint64_t)sqlite3_column_int64(s, 1),
			   (uint64_t)sqlite3_column_int64(s, 2), (uint64_t)sqlite3_column_int64(s, 3));
	sqlite3_reset(s);
	return 0;
}

int catalog_content_begin(catalog *c, int64_t *content, struct err *e)
{
	if (step_done(c, st(c, S_CONTENT_ADD), e, "adding a content list") < 0)
		return e ? e->code : ERR_DB;
	*content = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int catalog_content_add(catalog *c, int64_t content, uint64_t off, uint32_t len, int64_t chunk, struct err *e)
{
	sqlite3_stmt *s = st(c, S_CC_ADD);
	sqlite3_bind_int64(s, 1, content);
	sqlite3_bind_int64(s, 2, (int64_t)off);
	sqlite3_bind_int64(s, 3, len);
	if (chunk)
		sqlite3_bind_int64(s, 4, chunk);
	else
		sqlite3_bind_null(s, 4);
	return step_done(c, s, e, "adding to a content list");
}

int catalog_content_drop(catalog *c, int64_t content, struct err *e)
{
	sqlite3_stmt *s = st(c, S_CC_DEL);
	int rc;
	sqlite3_bind_int64(s, 1, content);
	if ((rc = step_done(c, s, e, "dropping a content list")) < 0)
		return rc;
	s = st(c, S_CONTENT_DEL);
	sqlite3_bind_int64(s, 1, content);
	return step_done(c, s, e, "dropping a content list");
}

int catalog_content_finish(catalog *c, int64_t content, const uint8_t hash[32], uint64_t size, int64_t nchunks,
			   int64_t *final, struct err *e)
{
	sqlite3_stmt *s = st(c, S_CONTENT_BY_HASH);
	int64_t existing;
	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	if (find_id(s, &existing) == 0) {
		int rc = catalog_content_drop(c, content, e);
		*final = rc == 0 ? existing : 0;
		return rc;
	}
	s = st(c, S_CONTENT_SET);
	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	sqlite3_bind_int64(s, 3, nchunks);
	sqlite3_bind_int64(s, 4, content);
	if (step_done(c, s, e, "completing a content list") < 0)
		return e ? e->code : ERR_DB;
	*final = content;
	return 0;
}

int catalog_entry_add(catalog *c, int64_t nb, struct catalog_entry *en, struct err *e)
{
	sqlite3_stmt *s = st(c, S_ENTRY_ADD);
	sqlite3_bind_int64(s, 1, nb);
	sqlite3_bind_int64(s, 2, en->parent);
	sqlite3_bind_text(s, 3, en->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, en->mode);
	sqlite3_bind_int64(s, 5, en->uid);
	sqlite3_bind_int64(s, 6, en->gid);
	sqlite3_bind_int64(s, 7, (int64_t)en->size);
	sqlite3_bind_int64(s, 8, en->mtime_ns);
	sqlite3_bind_int64(s, 9, en->ctime_ns);
	sqlite3_bind_int64(s, 10, (int64_t)en->src_ino);
	sqlite3_bind_int64(s, 11, (int64_t)en->rdev);
	if (en->target[0])
		sqlite3_bind_text(s, 12, en->target, -1, SQLITE_STATIC);
	if (en->content)
		sqlite3_bind_int64(s, 13, en->content);
	if (step_done(c, s, e, "adding a tree entry") < 0)
		return e ? e->code : ERR_DB;
	en->id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

static void row_entry(sqlite3_stmt *s, struct catalog_entry *en)
{
	const unsigned char *t;
	en->id = sqlite3_column_int64(s, 0);
	en->parent = sqlite3_column_int64(s, 1);
	snprintf(en->name, sizeof en->name, "%s", (const char *)sqlite3_column_text(s, 2));
	en->mode = (uint32_t)sqlite3_column_int64(s, 3);
	en->uid = (uint32_t)sqlite3_column_int64(s, 4);
	en->gid = (uint32_t)sqlite3_column_int64(s, 5);
	en->size = (uint64_t)sqlite3_column_int64(s, 6);
	en->mtime_ns = sqlite3_column_int64(s, 7);
	en->ctime_ns = sqlite3_column_int64(s, 8);
	en->src_ino = (uint64_t)sqlite3_column_int64(s, 9);
	en->rdev = (uint64_t)sqlite3_column_int64(s, 10);
	t = sqlite3_column_text(s, 11);
	snprintf(en->target, sizeof en->target, "%s", t ? (const char *)t : "");
	en->content = sqlite3_column_int64(s, 12);
}

int catalog_entry_lookup(catalog *c, int64_t nb, int64_t parent, const char *name, struct catalog_entry *out,
			 struct err *e)
{
	sqlite3_stmt *s = st(c, S_ENTRY_LOOKUP);
	int r;
	sqlite3_bind_int64(s, 1, nb);
	sqlite3_bind_int64(s, 2, parent);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(s)) != SQLITE_ROW) {
		/* only "no row" is "not found": a busy or damaged catalog is an error of its own */
		int rc = r == SQLITE_DONE ? err_set(e, ERR_NOTFOUND, "no entry '%s'", name)
					  : db_err(c, e, "looking up an entry");
		sqlite3_reset(s);
		return rc;
	}
	row_entry(s, out);
	sqlite3_reset(s);
	return 0;
}

int catalog_entry_get(catalog *c, int64_t id, struct catalog_entry *out, struct err *e)
{
	sqlite3_stmt *s = st(c, S_ENTRY_GET);
	int r;
	sqlite3_bind_int64(s, 1, id);
	if ((r = sqlite3_step(s)) != SQLITE_ROW) {
		int rc = r == SQLITE_DONE ? err_set(e, ERR_NOTFOUND, "no entry %lld", (long long)id)
					  : db_err(c, e, "reading an entry");
		sqlite3_reset(s);
		return rc;
	}
	row_entry(s, out);
	sqlite3_reset(s);
	return 0;
}

int catalog_entry_set_owner(catalog *c, int64_t id, uint32_t uid, uint32_t gid, struct err *e)
{
	char sql[160];
	snprintf(sql, sizeof sql, "UPDATE entries SET uid = %u, gid = %u WHERE id = %lld", uid, gid, (long long)id);
	return exec(c, sql, e);
}

int64_t catalog_entry_nb(catalog *c, int64_t id)
{
	sqlite3_stmt *s = st(c, S_ENTRY_NB);
	int64_t nb = 0;
	sqlite3_bind_int64(s, 1, id);
	find_id(s, &nb);
	sqlite3_reset(s);
	return nb;
}

int catalog_dir_page(catalog *c, int64_t nb, int64_t parent, const char *after, struct catalog_entry *out,
		     size_t max, size_t *n, struct err *e)
{
	sqlite3_stmt *s = st(c, S_DIR_PAGE);
	int r;
	*n = 0;
	sqlite3_bind_int64(s, 1, nb);
	sqlite3_bind_int64(s, 2, parent);
	sqlite3_bind_text(s, 3, after, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (int64_t)max);
	while ((r = sqlite3_step(s)) == SQLITE_ROW)
		row_entry(s, &out[(*n)++]);
	sqlite3_reset(s);
	if (r != SQLITE_DONE)
		return db_err(c, e, "listing a directory");
	return 0;
}

int catalog_content_pieces(catalog *c, int64_t content, uint64_t from, struct content_piece *out, size_t max,
			   size_t *n, struct err *e)
{
	sqlite3_stmt *s = st(c, S_PIECES);
	int r;
	*n = 0;
	sqlite3_bind_int64(s, 1, content);
	sqlite3_bind_int64(s, 2, (int64_t)from);
	sqlite3_bind_int64(s, 3, (int64_t)max);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		struct content_piece *p = &out[(*n)++];
		memset(p, 0, sizeof *p);
		p->off = (uint64_t)sqlite3_column_int64(s, 0);
		p->len = (uint32_t)sqlite3_column_int64(s, 1);
		p->chunk = sqlite3_column_int64(s, 2);
		if (p->chunk) {
			const void *id = sqlite3_column_blob(s, 3), *pk = sqlite3_column_blob(s, 4);
			if (!id || !pk || sqlite3_column_bytes(s, 3) != 32 || sqlite3_column_bytes(s, 4) != 32) {
				sqlite3_reset(s);
				return err_set(e, ERR_CORRUPT, "catalog: chunk %lld of content %lld has no pack",
					       (long long)p->chunk, (long long)content);
			}
			memcpy(p->loc.id, id, 32);
			memcpy(p->loc.pack, pk, 32);
			p->loc.offset = (uint32_t)sqlite3_column_int64(s, 5);
			p->loc.length = (uint32_t)sqlite3_column_int64(s, 6);
			p->loc.raw = (uint32_t)sqlite3_column_int64(s, 7);
			if ((p->loc.base_chunk = sqlite3_column_int64(s, 8))) {
				const void *bid = sqlite3_column_blob(s, 9), *bpk = sqlite3_column_blob(s, 10);
				if (!bid || !bpk || sqlite3_column_bytes(s, 9) != 32 || sqlite3_column_bytes(s, 10) != 32) {
					sqlite3_reset(s);
					return err_set(e, ERR_CORRUPT,
						       "catalog: the base of chunk %lld of content %lld is missing",
						       (long long)p->chunk, (long long)content);
				}
				memcpy(p->loc.base_id, bid, 32);
				memcpy(p->loc.base_pack, bpk, 32);
				p->loc.base_offset = (uint32_t)sqlite3_column_int64(s, 11);
				p->loc.base_length = (uint32_t)sqlite3_column_int64(s, 12);
				p->loc.base_raw = (uint32_t)sqlite3_column_int64(s, 13);
			}
		}
	}
	sqlite3_reset(s);
	if (r != SQLITE_DONE)
		return db_err(c, e, "reading a content list");
	return 0;
}

int catalog_content_holes(catalog *c, int64_t content, uint64_t *bytes, struct err *e)
{
	sqlite3_stmt *s = st(c, S_HOLES); /* on the mount's stat path: prepared once */
	int r;
	*bytes = 0;
	sqlite3_bind_int64(s, 1, content);
	if ((r = sqlite3_step(s)) == SQLITE_ROW)
		*bytes = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return r == SQLITE_ROW ? 0 : db_err(c, e, "summing holes");
}

static void row_snapshot(sqlite3_stmt *s, struct catalog_snapshot *o)
{
	memset(o, 0, sizeof *o);
	o->id = sqlite3_column_int64(s, 0);
	o->cluster = sqlite3_column_int64(s, 1);
	snprintf(o->cluster_name, sizeof o->cluster_name, "%s", (const char *)sqlite3_column_text(s, 2));
	snprintf(o->name, sizeof o->name, "%s", (const char *)sqlite3_column_text(s, 3));
	o->time_us = sqlite3_column_int64(s, 4);
	o->started_us = sqlite3_column_int64(s, 5);
	o->finished_us = sqlite3_column_int64(s, 6);
	snprintf(o->kind, sizeof o->kind, "%s", (const char *)sqlite3_column_text(s, 7));
	o->nodes = sqlite3_column_int64(s, 8);
	o->files = sqlite3_column_int64(s, 9);
	o->bytes = sqlite3_column_int64(s, 10);
	o->new_bytes = sqlite3_column_int64(s, 11);
	o->stored_bytes = sqlite3_column_int64(s, 12);
}

#define SNAP_SELECT                                                                                          \
	"SELECT s.id, s.cluster, c.name, s.name, s.time_us, s.started_us, s.finished_us, s.kind,"          \
	" (SELECT count(*) FROM node_backups WHERE snapshot = s.id),"                                       \
	" (SELECT coalesce(sum(files),0) FROM node_backups WHERE snapshot = s.id),"                          \
	" (SELECT coalesce(sum(bytes),0) FROM node_backups WHERE snapshot = s.id),"                          \
	" (SELECT coalesce(sum(new_bytes),0) FROM node_backups WHERE snapshot = s.id),"                      \
	" (SELECT coalesce(sum(stored_bytes),0) FROM node_backups WHERE snapshot = s.id)"                    \
	" FROM snapshots s JOIN clusters c ON c.id = s.cluster WHERE s.state = 'complete'"

int catalog_snapshots(catalog *c, int64_t cluster, int (*cb)(void *ctx, const struct catalog_snapshot *s),
		      void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	struct catalog_snapshot snap;
	int r, rc = 0;
	if (sqlite3_prepare_v2(c->db, SNAP_SELECT " AND (?1 = 0 OR s.cluster = ?1) ORDER BY c.name, s.time_us, s.name", -1, &s,
			       NULL) != SQLITE_OK)
		return db_err(c, e, "listing snapshots");
	sqlite3_bind_int64(s, 1, cluster);
	while ((r = sqlite3_step(s)) == SQLITE_ROW && rc == 0) {
		row_snapshot(s, &snap);
		rc = cb(ctx, &snap);
	}
	if (rc == 0 && r != SQLITE_DONE && r != SQLITE_ROW)
		rc = db_err(c, e, "listing snapshots");
	sqlite3_finalize(s);
	return rc;
}

static int one_snapshot(catalog *c, const char *sql, int64_t cluster, const char *name,
			struct catalog_snapshot *out, struct err *e)
{
	sqlite3_stmt *s;
	int r;
	if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "finding a snapshot");
	sqlite3_bind_int64(s, 1, cluster);
	if (name)
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		row_snapshot(s, out);
	sqlite3_finalize(s);
	if (r != SQLITE_ROW)
		return err_set(e, ERR_NOTFOUND, "no such snapshot%s%s", name ? " " : "", name ? name : "");
	return 0;
}

int catalog_snapshot_by_name(catalog *c, int64_t cluster, const char *name, struct catalog_snapshot *out,
			     struct err *e)
{
	return one_snapshot(c, SNAP_SELECT " AND s.cluster = ?1 AND s.name = ?2", cluster, name, out, e);
}

int catalog_snapshot_latest(catalog *c, int64_t cluster, struct catalog_snapshot *out, struct err *e)
{
	return one_snapshot(c, SNAP_SELECT " AND s.cluster = ?1 ORDER BY s.time_us DESC, s.name DESC LIMIT 1", cluster, NULL, out, e);
}

int catalog_snapshot_get(catalog *c, int64_t id, struct catalog_snapshot *out, struct err *e)
{
	return one_snapshot(c, SNAP_SELECT " AND s.id = ?1", id, NULL, out, e);
}

int catalog_snapshot_delete(catalog *c, int64_t id, struct err *e)
{
	char sql[512];
	struct catalog_snapshot s;
	int rc;
	if ((rc = catalog_snapshot_get(c, id, &s, e)) < 0)
		return rc;
	snprintf(sql, sizeof sql,
		 "DELETE FROM entries WHERE nb IN (SELECT id FROM node_backups WHERE snapshot = %lld);"
		 "DELETE FROM node_backups WHERE snapshot = %lld;"
		 "DELETE FROM snapshots WHERE id = %lld;",
		 (long long)id, (long long)id, (long long)id);
	return exec(c, sql, e);
}

int64_t catalog_data_version(catalog *c)
{
	sqlite3_stmt *s;
	int64_t v = -1;
	if (sqlite3_prepare_v2(c->db, "PRAGMA data_version", -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

int catalog_snapshot_nodes(catalog *c, int64_t snap, int (*cb)(void *ctx, const char *node, int64_t nb, int64_t root),
			   void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	int r, rc = 0;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT n.name, nb.id, nb.root FROM node_backups nb JOIN nodes n ON n.id = nb.node"
			       " WHERE nb.snapshot = ? ORDER BY n.name",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "listing nodes");
	sqlite3_bind_int64(s, 1, snap);
	r = SQLITE_DONE;
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW)
		rc = cb(ctx, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2));
	if (rc == 0 && r != SQLITE_DONE)
		rc = db_err(c, e, "listing nodes");
	sqlite3_finalize(s);
	return rc;
}

int catalog_clusters(catalog *c, int (*cb)(void *ctx, int64_t id, const char *name), void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	int rc = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT id, name FROM clusters WHERE deleted_us IS NULL ORDER BY name", -1, &s,
			       NULL) != SQLITE_OK)
		return db_err(c, e, "listing clusters");
	int r = SQLITE_DONE;
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW)
		rc = cb(ctx, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1));
	if (rc == 0 && r != SQLITE_DONE && r != SQLITE_ROW) /* a busy or broken catalog: no short listing */
		rc = db_err(c, e, "listing clusters");
	sqlite3_finalize(s);
	return rc;
}

int catalog_packs(catalog *c, int (*cb)(void *ctx, const struct catalog_pack *p), void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	struct catalog_pack p;
	int rc = 0, step = SQLITE_DONE;
	if (sqlite3_prepare_v2(c->db, "SELECT id, hash, size FROM packs WHERE hash IS NOT NULL ORDER BY id", -1, &s,
			       NULL) != SQLITE_OK)
		return db_err(c, e, "listing packs");
	while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
		p.id = sqlite3_column_int64(s, 0);
		if (sqlite3_column_bytes(s, 1) != 32)
			continue;
		memcpy(p.hash, sqlite3_column_blob(s, 1), 32);
		p.size = (uint64_t)sqlite3_column_int64(s, 2);
		rc = cb(ctx, &p);
	}
	if (rc == 0 && step != SQLITE_DONE) /* a read error is no end of the list */
		rc = db_err(c, e, "listing packs");
	sqlite3_finalize(s);
	return rc;
}

int catalog_pack_chunks(catalog *c, int64_t pack, int (*cb)(void *ctx, const struct blob_loc *loc), void *ctx,
			struct err *e)
{
	sqlite3_stmt *s;
	struct blob_loc loc;
	int rc = 0, step = SQLITE_DONE;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT c.blob_id, p.hash, c.off, c.len, c.raw FROM chunks c JOIN packs p ON p.id = c.pack"
			       " WHERE c.pack = ? ORDER BY c.off",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "listing chunks");
	sqlite3_bind_int64(s, 1, pack);
	memset(&loc, 0, sizeof loc);
	while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(s, 0) != 32 || sqlite3_column_bytes(s, 1) != 32) {
			rc = err_set(e, ERR_CORRUPT, "catalog %s: pack %lld holds a chunk with a malformed id", c->path,
				     (long long)pack);
			break;
		}
		memcpy(loc.id, sqlite3_column_blob(s, 0), 32);
		memcpy(loc.pack, sqlite3_column_blob(s, 1), 32);
		loc.offset = (uint32_t)sqlite3_column_int64(s, 2);
		loc.length = (uint32_t)sqlite3_column_int64(s, 3);
		loc.raw = (uint32_t)sqlite3_column_int64(s, 4);
		rc = cb(ctx, &loc);
	}
	if (rc == 0 && step != SQLITE_DONE) /* a read error is no end of the list */
		rc = db_err(c, e, "listing chunks");
	sqlite3_finalize(s);
	return rc;
}

int catalog_verify(catalog *c, int (*cb)(void *ctx, const char *msg), void *ctx, int *problems, struct err *e)
{
	static const struct {
		const char *sql, *what;
	} checks[] = {
		{"SELECT count(*) FROM content_chunks cc LEFT JOIN chunks c ON c.id = cc.chunk"
		 " WHERE cc.chunk IS NOT NULL AND c.id IS NULL",
		 "content list entries point at chunks the catalog does not have"},
		{"SELECT count(*) FROM chunks c LEFT JOIN packs p ON p.id = c.pack WHERE p.hash IS NULL",
		 "chunks point at packs that were never completed"},
		{"SELECT count(*) FROM chunks c LEFT JOIN chunks b ON b.id = c.base"
		 " WHERE c.base IS NOT NULL AND (b.id IS NULL OR b.base IS NOT NULL OR b.id = c.id)",
		 "delta chunks whose base is missing or is itself a delta"},
		{"SELECT count(*) FROM entries e LEFT JOIN contents t ON t.id = e.content"
		 " WHERE e.content IS NOT NULL AND (t.id IS NULL OR t.hash IS NULL)",
		 "files point at content lists that are missing or incomplete"},
		{"SELECT count(*) FROM entries e JOIN contents t ON t.id = e.content WHERE t.size != e.size",
		 "files whose size differs from their content list"},
		{"SELECT count(*) FROM wal w LEFT JOIN contents t ON t.id = w.content"
		 " WHERE w.content IS NOT NULL AND (t.id IS NULL OR t.hash IS NULL OR t.size != w.size)",
		 "WAL files point at content lists that are missing, incomplete or of another size"},
		{"SELECT count(*) FROM node_backups nb JOIN snapshots s ON s.id = nb.snapshot"
		 " WHERE s.state = 'complete' AND nb.root IS NULL",
		 "complete snapshots with a node that has no tree"},
	};
	*problems = 0;
	{
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK)
			return db_err(c, e, "integrity check");
		int r;
		while ((r = sqlite3_step(s)) == SQLITE_ROW) {
			const char *m = (const char *)sqlite3_column_text(s, 0);
			if (strcmp(m, "ok")) {
				char msg[600];
				snprintf(msg, sizeof msg, "catalog integrity: %s", m);
				(*problems)++;
				if (cb)
					cb(ctx, msg);
			}
		}
		if (r != SQLITE_DONE) { /* a check that cannot run finds nothing: it is a failure */
			r = db_err(c, e, "integrity check");
			sqlite3_finalize(s);
			return r;
		}
		sqlite3_finalize(s);
	}
	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
		sqlite3_stmt *s;
		int64_t n = 0;
		if (sqlite3_prepare_v2(c->db, checks[i].sql, -1, &s, NULL) != SQLITE_OK)
			return db_err(c, e, "consistency check");
		if (sqlite3_step(s) == SQLITE_ROW) {
			n = sqlite3_column_int64(s, 0);
		} else {
			int r = db_err(c, e, "consistency check");
			sqlite3_finalize(s);
			return r;
		}
		sqlite3_finalize(s);
		if (n) {
			char msg[300];
			snprintf(msg, sizeof msg, "catalog: %lld %s", (long long)n, checks[i].what);
			(*problems)++;
			if (cb)
				cb(ctx, msg);
		}
	}
	return 0;
}

int catalog_vacuum_into(catalog *c, const char *path, char **msg)
{
	sqlite3_stmt *s;
	int r;
	*msg = NULL;
	for (int i = 0; i < S_COUNT; i++)
		if (c->st[i])
			sqlite3_reset(c->st[i]);
	if (sqlite3_prepare_v2(c->db, "VACUUM INTO ?", -1, &s, NULL) != SQLITE_OK) {
		*msg = xstrdup(sqlite3_errmsg(c->db));
		return -1;
	}
	sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r != SQLITE_DONE)
		*msg = xstrdup(sqlite3_errmsg(c->db));
	sqlite3_finalize(s);
	return r == SQLITE_DONE ? 0 : -1;
}

static int64_t nb_column(catalog *c, int64_t nb, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = 0;
	if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(s, 1, nb);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

int64_t catalog_node_backup_started_us(catalog *c, int64_t nb)
{
	return nb_column(c, nb, "SELECT started_us FROM node_backups WHERE id = ?");
}

int64_t catalog_node_backup_root(catalog *c, int64_t nb)
{
	return nb_column(c, nb, "SELECT root FROM node_backups WHERE id = ?");
}

/* ---------- online backups ---------- */

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
	if (v && *v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

int catalog_node_backup_set_pg(catalog *c, int64_t nb, const struct catalog_pg_info *pg, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(c->db,
			       "UPDATE node_backups SET start_lsn = ?, stop_lsn = ?, timeline = ?, system_id = ?,"
			       " pg_version = ?, citus_version = ?, backup_label = ?, tablespace_map = ?, damaged_pages = ?"
			       " WHERE id = ?",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "recording a node backup's positions");
	bind_text_or_null(s, 1, pg->start_lsn);
	bind_text_or_null(s, 2, pg->stop_lsn);
	sqlite3_bind_int64(s, 3, pg->timeline);
	bind_text_or_null(s, 4, pg->system_id);
	bind_text_or_null(s, 5, pg->pg_version);
	bind_text_or_null(s, 6, pg->citus_version);
	bind_text_or_null(s, 7, pg->backup_label);
	bind_text_or_null(s, 8, pg->tablespace_map);
	sqlite3_bind_int64(s, 9, pg->damaged_pages);
	sqlite3_bind_int64(s, 10, nb);
	rc = step_done(c, s, e, "recording a node backup's positions");
	sqlite3_finalize(s);
	return rc;
}

int catalog_restore_point_add(catalog *c, int64_t cluster, const char *name, int64_t time_us, int64_t snap,
			      int64_t *id, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(c->db, "INSERT INTO restore_points(cluster, name, time_us, snapshot) VALUES (?, ?, ?, ?)",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "adding a restore point");
	sqlite3_bind_int64(s, 1, cluster);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, time_us);
	if (snap)
		sqlite3_bind_int64(s, 4, snap);
	else
		sqlite3_bind_null(s, 4);
	rc = step_done(c, s, e, "adding a restore point");
	sqlite3_finalize(s);
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(c->db);
	return rc;
}

int catalog_restore_point_named(catalog *c, int64_t cluster, const char *name, struct err *e)
{
	sqlite3_stmt *s;
	int r;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT 1 FROM restore_points WHERE cluster = ?1 AND name = ?2 UNION ALL"
			       " SELECT 1 FROM wal_restore_points w JOIN nodes n ON n.id = w.node"
			       " WHERE n.cluster = ?1 AND w.name = ?2 LIMIT 1",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "looking up a restore point");
	sqlite3_bind_int64(s, 1, cluster);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	sqlite3_finalize(s);
	if (r == SQLITE_ROW)
		return 0;
	if (r != SQLITE_DONE)
		return db_err(c, e, "looking up a restore point");
	return ERR_NOTFOUND;
}

int catalog_restore_point_node(catalog *c, int64_t rp, int64_t node, const char *lsn, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(c->db, "INSERT INTO restore_point_nodes(restore_point, node, lsn) VALUES (?, ?, ?)", -1,
			       &s, NULL) != SQLITE_OK)
		return db_err(c, e, "adding a restore point's position");
	sqlite3_bind_int64(s, 1, rp);
	sqlite3_bind_int64(s, 2, node);
	sqlite3_bind_text(s, 3, lsn, -1, SQLITE_STATIC);
	rc = step_done(c, s, e, "adding a restore point's position");
	sqlite3_finalize(s);
	return rc;
}

int catalog_snapshot_node_info(catalog *c, int64_t snap, int (*cb)(void *ctx, const struct catalog_node_info *n),
			       void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	int rc = 0;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT n.name, nb.source, nb.start_lsn, nb.stop_lsn, nb.timeline, nb.system_id, nb.pg_version,"
			       " nb.citus_version, nb.damaged_pages, nb.files, nb.bytes, nb.new_bytes"
			       " FROM node_backups nb JOIN nodes n ON n.id = nb.node WHERE nb.snapshot = ? ORDER BY n.name",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "listing a snapshot's nodes");
	sqlite3_bind_int64(s, 1, snap);
	while (rc == 0 && sqlite3_step(s) == SQLITE_ROW) {
		struct catalog_node_info n;
		const char *t;
		memset(&n, 0, sizeof n);
#define COPY_COL(field, i)                                                                                         \
	if ((t = (const char *)sqlite3_column_text(s, i)))                                                         \
		snprintf(n.field, sizeof n.field, "%s", t);
		COPY_COL(node, 0)
		COPY_COL(source, 1)
		COPY_COL(start_lsn, 2)
		COPY_COL(stop_lsn, 3)
		COPY_COL(system_id, 5)
		COPY_COL(pg_version, 6)
		COPY_COL(citus_version, 7)
#undef COPY_COL
		n.timeline = sqlite3_column_int64(s, 4);
		n.damaged_pages = sqlite3_column_int64(s, 8);
		n.files = sqlite3_column_int64(s, 9);
		n.bytes = sqlite3_column_int64(s, 10);
		n.new_bytes = sqlite3_column_int64(s, 11);
		rc = cb(ctx, &n);
	}
	sqlite3_finalize(s);
	return rc;
}

/* ---------- WAL files ---------- */

int catalog_node_find(catalog *c, int64_t cluster, const char *name, int64_t *id, struct err *e)
{
	sqlite3_stmt *s = st(c, S_NODE_FIND);
	sqlite3_bind_int64(s, 1, cluster);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	if (find_id(s, id) < 0)
		return err_set(e, ERR_NOTFOUND, "no node named '%s' in the catalog", name);
	return 0;
}

static void bind_int_or_null(sqlite3_stmt *s, int i, int64_t v, int present)
{
	if (present)
		sqlite3_bind_int64(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

int catalog_wal_add(catalog *c, struct catalog_wal *w, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(c->db,
			       "INSERT INTO wal(node, name, timeline, segno, size, content, sha256, stored_us,"
			       " first_commit_us, last_commit_us, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "recording a WAL file");
	sqlite3_bind_int64(s, 1, w->node);
	sqlite3_bind_text(s, 2, w->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, w->timeline);
	bind_int_or_null(s, 4, w->segno, w->segno >= 0);
	sqlite3_bind_int64(s, 5, (int64_t)w->size);
	bind_int_or_null(s, 6, w->content, w->content != 0);
	sqlite3_bind_blob(s, 7, w->sha256, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, w->stored_us);
	bind_int_or_null(s, 9, w->first_commit_us, w->first_commit_us != 0);
	bind_int_or_null(s, 10, w->last_commit_us, w->last_commit_us != 0);
	sqlite3_bind_int(s, 11, w->digest);
	rc = step_done(c, s, e, "recording a WAL file");
	sqlite3_finalize(s);
	if (rc == 0)
		w->id = sqlite3_last_insert_rowid(c->db);
	return rc;
}

#define WAL_COLS                                                                                             \
	"SELECT id, node, name, timeline, coalesce(segno, -1), size, coalesce(content, 0), sha256,"         \
	" stored_us, coalesce(first_commit_us, 0), coalesce(last_commit_us, 0), digest FROM wal "

static void row_wal(sqlite3_stmt *s, struct catalog_wal *out)
{
	const void *h = sqlite3_column_blob(s, 7);
	memset(out, 0, sizeof *out);
	out->id = sqlite3_column_int64(s, 0);
	out->node = sqlite3_column_int64(s, 1);
	snprintf(out->name, sizeof out->name, "%s", (const char *)sqlite3_column_text(s, 2));
	out->timeline = sqlite3_column_int64(s, 3);
	out->segno = sqlite3_column_int64(s, 4);
	out->size = (uint64_t)sqlite3_column_int64(s, 5);
	out->content = sqlite3_column_int64(s, 6);
	if (h && sqlite3_column_bytes(s, 7) == 32)
		memcpy(out->sha256, h, 32);
	out->stored_us = sqlite3_column_int64(s, 8);
	out->first_commit_us = sqlite3_column_int64(s, 9);
	out->last_commit_us = sqlite3_column_int64(s, 10);
	out->digest = sqlite3_column_int(s, 11);
}

int catalog_wal_find(catalog *c, int64_t node, const char *name, struct catalog_wal *out, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(c->db, WAL_COLS "WHERE node = ? AND name = ?", -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "looking up a WAL file");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		row_wal(s, out);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = err_set(e, ERR_NOTFOUND, "no WAL file %s", name);
	} else {
		rc = db_err(c, e, "looking up a WAL file");
	}
	sqlite3_finalize(s);
	return rc;
}

/* ---------- the time index: restore points, runs of segments (schema 5) ---------- */

int catalog_wal_restore_point_add(catalog *c, int64_t node, const char *wal, const char *name, int64_t time_us,
				  uint64_t lsn, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(c->db,
			       "INSERT INTO wal_restore_points(node, wal, name, time_us, lsn) VALUES (?, ?, ?, ?, ?)"
			       " ON CONFLICT(node, lsn) DO UPDATE SET wal = excluded.wal",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "recording a restore point found in WAL");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_text(s, 2, wal, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, time_us);
	sqlite3_bind_int64(s, 5, (int64_t)lsn);
	rc = step_done(c, s, e, "recording a restore point found in WAL");
	sqlite3_finalize(s);
	return rc;
}

int catalog_wal_history_add(catalog *c, int64_t node, int64_t tli, int64_t parent, uint64_t end_lsn, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO wal_history(node, tli, parent, end_lsn) VALUES (?, ?, ?, ?)",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "recording a line of a timeline history");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_int64(s, 2, tli);
	sqlite3_bind_int64(s, 3, parent);
	sqlite3_bind_int64(s, 4, (int64_t)end_lsn);
	rc = step_done(c, s, e, "recording a line of a timeline history");
	sqlite3_finalize(s);
	return rc;
}

int catalog_wal_history_of(catalog *c, int64_t node, int64_t tli, int64_t ancestor, struct catalog_tli_line *out,
			   struct err *e)
{
	sqlite3_stmt *s;
	int rc = 0;
	memset(out, 0, sizeof *out);
	out->begin_lsn = -1;
	out->end_lsn = -1;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT count(*), max(end_lsn), max(CASE WHEN parent = ?3 THEN end_lsn END) FROM wal_history"
			       " WHERE node = ?1 AND tli = ?2",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "reading a timeline's history");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_int64(s, 2, tli);
	sqlite3_bind_int64(s, 3, ancestor);
	if (sqlite3_step(s) == SQLITE_ROW) {
		out->lines = sqlite3_column_int(s, 0);
		if (sqlite3_column_type(s, 1) != SQLITE_NULL)
			out->begin_lsn = sqlite3_column_int64(s, 1);
		if (sqlite3_column_type(s, 2) != SQLITE_NULL)
			out->end_lsn = sqlite3_column_int64(s, 2);
	} else {
		rc = db_err(c, e, "reading a timeline's history");
	}
	sqlite3_finalize(s);
	return rc;
}

int catalog_wal_restore_points(catalog *c, int64_t cluster, int64_t from_us, int64_t to_us, int desc,
			       int (*cb)(void *ctx, const struct catalog_wal_rp *rp), void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	struct catalog_wal_rp rp;
	int r, rc = 0;
	if (sqlite3_prepare_v2(c->db,
			       desc ? "SELECT r.node, n.name, r.wal, r.name, r.time_us, r.lsn FROM wal_restore_points r"
				      " JOIN nodes n ON n.id = r.node WHERE n.cluster = ? AND r.time_us BETWEEN ? AND ?"
				      " ORDER BY r.time_us DESC, n.name"
				    : "SELECT r.node, n.name, r.wal, r.name, r.time_us, r.lsn FROM wal_restore_points r"
				      " JOIN nodes n ON n.id = r.node WHERE n.cluster = ? AND r.time_us BETWEEN ? AND ?"
				      " ORDER BY r.time_us, n.name",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "listing restore points found in WAL");
	sqlite3_bind_int64(s, 1, cluster);
	sqlite3_bind_int64(s, 2, from_us);
	sqlite3_bind_int64(s, 3, to_us);
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&rp, 0, sizeof rp);
		rp.node = sqlite3_column_int64(s, 0);
		snprintf(rp.node_name, sizeof rp.node_name, "%s", (const char *)sqlite3_column_text(s, 1));
		snprintf(rp.wal, sizeof rp.wal, "%s", (const char *)sqlite3_column_text(s, 2));
		snprintf(rp.name, sizeof rp.name, "%s", (const char *)sqlite3_column_text(s, 3));
		rp.time_us = sqlite3_column_int64(s, 4);
		rp.lsn = (uint64_t)sqlite3_column_int64(s, 5);
		rc = cb(ctx, &rp);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = db_err(c, e, "listing restore points found in WAL");
	sqlite3_finalize(s);
	return rc;
}

int catalog_node_backups_of(catalog *c, int64_t node, int64_t upto_us, int desc,
			    int (*cb)(void *ctx, const struct catalog_nb_pos *p), void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	struct catalog_nb_pos p;
	int r, rc = 0;
	if (sqlite3_prepare_v2(c->db,
			       desc ? "SELECT nb.id, s.id, s.name, s.time_us, nb.root, coalesce(nb.start_lsn, ''),"
				      " coalesce(nb.timeline, 0), coalesce(nb.system_id, ''), coalesce(nb.pg_version, ''),"
				      " coalesce(nb.citus_version, ''), coalesce(nb.stop_lsn, '') FROM node_backups nb"
				      " JOIN snapshots s ON s.id = nb.snapshot"
				      " WHERE nb.node = ? AND s.state = 'complete' AND s.time_us <= ? ORDER BY s.time_us DESC"
				    : "SELECT nb.id, s.id, s.name, s.time_us, nb.root, coalesce(nb.start_lsn, ''),"
				      " coalesce(nb.timeline, 0), coalesce(nb.system_id, ''), coalesce(nb.pg_version, ''),"
				      " coalesce(nb.citus_version, ''), coalesce(nb.stop_lsn, '') FROM node_backups nb"
				      " JOIN snapshots s ON s.id = nb.snapshot"
				      " WHERE nb.node = ? AND s.state = 'complete' AND s.time_us <= ? ORDER BY s.time_us",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "listing a node's backups");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_int64(s, 2, upto_us);
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&p, 0, sizeof p);
		p.node = node;
		p.nb = sqlite3_column_int64(s, 0);
		p.snapshot = sqlite3_column_int64(s, 1);
		snprintf(p.snapshot_name, sizeof p.snapshot_name, "%s", (const char *)sqlite3_column_text(s, 2));
		p.time_us = sqlite3_column_int64(s, 3);
		p.root = sqlite3_column_int64(s, 4);
		snprintf(p.start_lsn, sizeof p.start_lsn, "%s", (const char *)sqlite3_column_text(s, 5));
		p.timeline = sqlite3_column_int64(s, 6);
		snprintf(p.system_id, sizeof p.system_id, "%s", (const char *)sqlite3_column_text(s, 7));
		snprintf(p.pg_version, sizeof p.pg_version, "%s", (const char *)sqlite3_column_text(s, 8));
		snprintf(p.citus_version, sizeof p.citus_version, "%s", (const char *)sqlite3_column_text(s, 9));
		snprintf(p.stop_lsn, sizeof p.stop_lsn, "%s", (const char *)sqlite3_column_text(s, 10));
		rc = cb(ctx, &p);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = db_err(c, e, "listing a node's backups");
	sqlite3_finalize(s);
	return rc;
}

int catalog_wal_segments(catalog *c, int64_t node, int64_t from_segno, int (*cb)(void *ctx, const struct catalog_wal *w),
			 void *ctx, struct err *e)
{
	sqlite3_stmt *s;
	struct catalog_wal w;
	int r, rc = 0;
	if (sqlite3_prepare_v2(c->db, WAL_COLS "WHERE node = ? AND segno >= ? ORDER BY segno, timeline, name", -1, &s,
			       NULL) != SQLITE_OK)
		return db_err(c, e, "reading the WAL index");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_int64(s, 2, from_segno);
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		row_wal(s, &w);
		rc = cb(ctx, &w);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = db_err(c, e, "reading the WAL index");
	sqlite3_finalize(s);
	return rc;
}

int catalog_wal_page(catalog *c, int64_t node, const char *after, struct catalog_wal *out, size_t max, size_t *n,
		     struct err *e)
{
	sqlite3_stmt *s;
	int r;
	*n = 0;
	if (sqlite3_prepare_v2(c->db, WAL_COLS "WHERE node = ? AND name > ? ORDER BY name LIMIT ?", -1, &s, NULL) !=
	    SQLITE_OK)
		return db_err(c, e, "listing WAL files");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_text(s, 2, after ? after : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)max);
	r = SQLITE_DONE;
	while (*n < max && (r = sqlite3_step(s)) == SQLITE_ROW)
		row_wal(s, &out[(*n)++]);
	if (r != SQLITE_ROW && r != SQLITE_DONE) { /* a short page would read as the end */
		r = db_err(c, e, "listing WAL files");
		sqlite3_finalize(s);
		return r;
	}
	sqlite3_finalize(s);
	return 0;
}

int catalog_wal_histories_unread(catalog *c, int64_t after, struct catalog_wal *out, size_t max, size_t *n,
				 struct err *e)
{
	sqlite3_stmt *s;
	int r;
	*n = 0;
	if (sqlite3_prepare_v2(c->db,
			       WAL_COLS "WHERE id > ? AND timeline > 1 AND segno IS NULL AND name LIKE '%.history' AND NOT EXISTS"
					" (SELECT 1 FROM wal_history h WHERE h.node = wal.node AND h.tli = wal.timeline)"
					" ORDER BY id LIMIT ?",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "listing timeline histories");
	sqlite3_bind_int64(s, 1, after);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	r = SQLITE_DONE;
	while (*n < max && (r = sqlite3_step(s)) == SQLITE_ROW)
		row_wal(s, &out[(*n)++]);
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		r = db_err(c, e, "listing timeline histories");
		sqlite3_finalize(s);
		return r;
	}
	sqlite3_finalize(s);
	return 0;
}

int catalog_wal_get(catalog *c, int64_t id, struct catalog_wal *out, struct err *e)
{
	sqlite3_stmt *s;
	int r;
	if (sqlite3_prepare_v2(c->db, WAL_COLS "WHERE id = ?", -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "reading a WAL file's row");
	sqlite3_bind_int64(s, 1, id);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		row_wal(s, out);
	sqlite3_finalize(s);
	return r == SQLITE_ROW ? 0 : err_set(e, ERR_NOTFOUND, "no WAL file number %lld", (long long)id);
}

/* sql (one parameter: cluster) row by row into row(ctx, statement); what names it in errors */
static int cluster_rows(catalog *c, const char *sql, int64_t cluster, int (*row)(void *ctx, sqlite3_stmt *s),
			void *ctx, const char *what, struct err *e)
{
	sqlite3_stmt *s;
	int r, rc = 0;
	if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, what);
	sqlite3_bind_int64(s, 1, cluster);
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW)
		rc = row(ctx, s);
	if (rc == 0 && r != SQLITE_DONE)
		rc = db_err(c, e, what);
	sqlite3_finalize(s);
	return rc;
}

struct node_rows {
	int (*cb)(void *ctx, const struct catalog_node_row *n);
	void *ctx;
};

static int node_row(void *ctx, sqlite3_stmt *s)
{
	struct node_rows *l = ctx;
	struct catalog_node_row n;
	memset(&n, 0, sizeof n);
	n.id = sqlite3_column_int64(s, 0);
	snprintf(n.name, sizeof n.name, "%s", (const char *)sqlite3_column_text(s, 1));
	n.backups = sqlite3_column_int64(s, 2);
	n.wal_files = sqlite3_column_int64(s, 3);
	n.wal_bytes = sqlite3_column_int64(s, 4);
	return l->cb(l->ctx, &n);
}

int catalog_cluster_nodes(catalog *c, int64_t cluster, int (*cb)(void *ctx, const struct catalog_node_row *n),
			  void *ctx, struct err *e)
{
	struct node_rows l = {cb, ctx};
	return cluster_rows(c,
			    "SELECT n.id, n.name, (SELECT count(*) FROM node_backups nb JOIN snapshots s ON s.id = nb.snapshot"
			    " WHERE nb.node = n.id AND s.state = 'complete'),"
			    " (SELECT count(*) FROM wal WHERE node = n.id), (SELECT coalesce(sum(size), 0) FROM wal"
			    " WHERE node = n.id) FROM nodes n WHERE n.cluster = ? ORDER BY n.name",
			    cluster, node_row, &l, "listing a cluster's nodes", e);
}


struct member_rows {
	int (*snap_cb)(void *ctx, int64_t snapshot, int64_t time_us, int online, int64_t node);
	int (*since_cb)(void *ctx, int64_t node, int64_t since_us);
	void *ctx;
};

static int snap_row(void *ctx, sqlite3_stmt *s)
{
	struct member_rows *m = ctx;
	return m->snap_cb(m->ctx, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int(s, 2),
			  sqlite3_column_int64(s, 3));
}

static int since_row(void *ctx, sqlite3_stmt *s)
{
	struct member_rows *m = ctx;
	return m->since_cb(m->ctx, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1));
}

int catalog_cluster_snapshot_nodes(catalog *c, int64_t cluster,
				   int (*cb)(void *ctx, int64_t snapshot, int64_t time_us, int online, int64_t node),
				   void *ctx, struct err *e)
{
	struct member_rows m = {.snap_cb = cb, .ctx = ctx};
	return cluster_rows(c,
			    "SELECT s.id, s.time_us, s.kind = 'online', nb.node FROM snapshots s"
			    " JOIN node_backups nb ON nb.snapshot = s.id WHERE s.cluster = ? AND s.state = 'complete'"
			    " ORDER BY s.time_us, s.id, nb.node",
			    cluster, snap_row, &m, "listing a cluster's snapshots and nodes", e);
}

int catalog_cluster_wal_since(catalog *c, int64_t cluster, int (*cb)(void *ctx, int64_t node, int64_t since_us),
			      void *ctx, struct err *e)
{
	struct member_rows m = {.since_cb = cb, .ctx = ctx};
	/* the first segment in the index's order (timeline, number): one row looked up per node */
	return cluster_rows(c,
			    "SELECT id, t FROM (SELECT n.id, (SELECT min(w.stored_us, coalesce(nullif(w.first_commit_us, 0),"
			    " w.stored_us)) FROM wal w WHERE w.node = n.id ORDER BY w.timeline, w.segno LIMIT 1) AS t"
			    " FROM nodes n WHERE n.cluster = ?) WHERE t IS NOT NULL",
			    cluster, since_row, &m, "finding when a cluster's nodes began archiving", e);
}

int catalog_node_get(catalog *c, int64_t id, int64_t *cluster, char name[128], struct err *e)
{
	sqlite3_stmt *s;
	int r;
	if (sqlite3_prepare_v2(c->db, "SELECT cluster, name FROM nodes WHERE id = ?", -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "reading a node");
	sqlite3_bind_int64(s, 1, id);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		*cluster = sqlite3_column_int64(s, 0);
		snprintf(name, 128, "%s", (const char *)sqlite3_column_text(s, 1));
	}
	sqlite3_finalize(s);
	return r == SQLITE_ROW ? 0 : err_set(e, ERR_NOTFOUND, "no node number %lld", (long long)id);
}

int catalog_wal_drop_partials(catalog *c, int64_t node, int64_t timeline, int64_t segno, int *n, struct err *e)
{
	sqlite3_stmt *s;
	int rc;
	if (n)
		*n = 0;
	if (sqlite3_prepare_v2(c->db,
			       "DELETE FROM wal WHERE node = ? AND timeline = ? AND segno IS NOT NULL AND segno <= ?"
			       " AND name LIKE '%.partial'",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "removing superseded partial WAL segments");
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_int64(s, 2, timeline);
	sqlite3_bind_int64(s, 3, segno);
	rc = step_done(c, s, e, "removing superseded partial WAL segments");
	sqlite3_finalize(s);
	if (rc == 0 && n)
		*n = sqlite3_changes(c->db);
	return rc;
}

int catalog_wal_last_segment(catalog *c, int64_t node, struct catalog_wal *out, struct err *e)
{
	sqlite3_stmt *s;
	char name[64];
	int rc;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT name FROM wal WHERE node = ? AND segno IS NOT NULL AND length(name) = 24"
			       " ORDER BY timeline DESC, segno DESC LIMIT 1",
			       -1, &s, NULL) != SQLITE_OK)
		return db_err(c, e, "looking up the last WAL segment");
	sqlite3_bind_int64(s, 1, node);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(s, 0));
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = err_set(e, ERR_NOTFOUND, "no WAL segment recorded for the node");
	} else {
		rc = db_err(c, e, "looking up the last WAL segment");
	}
	sqlite3_finalize(s);
	if (rc == 0)
		rc = catalog_wal_find(c, node, name, out, e);
	return rc;
}
