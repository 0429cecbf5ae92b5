#include "node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/pagecheck.h"
#include "backup/tar.h"
#include "backup/walk.h"
#include "common/util.h"
#include "store/chunker.h"

#define LABEL_MAX (64u << 10)

int backup_writer_checkpoint(struct backup_writer *w, struct err *e)
{
	int rc;
	if (w->failed)
		return err_set(e, ERR_INTERNAL, "stopped: another node failed");
	if (!ingest_due(w->g))
		return 0;
	if ((rc = ingest_flush(w->g, e)) < 0 || (rc = catalog_commit(w->c, e)) < 0)
		return rc;
	ingest_committed(w->g);
	return catalog_begin(w->c, e);
}

static void lock(struct backup_node *n)
{
	pthread_mutex_lock(&n->w->mu);
	ingest_account(n->w->g, &n->st);
}

static void unlock(struct backup_node *n)
{
	ingest_account(n->w->g, NULL);
	pthread_mutex_unlock(&n->w->mu);
}

static void add_damaged(struct backup_node *n, const char *path, uint32_t block)
{
	struct backup_damaged_page *d;
	if (n->ndamaged >= 100000) /* bounded: counted in pages, listed up to here */
		return;
	n->damaged = xrealloc(n->damaged, (n->ndamaged + 1) * sizeof *n->damaged);
	d = &n->damaged[n->ndamaged++];
	snprintf(d->path, sizeof d->path, "%s", path);
	d->block = block;
}

/* ---------- directory map: path -> entry id (the streaming path builds its tree from it) ---------- */

struct dirmap {
	char **keys;
	int64_t *ids;
	size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static int64_t dirmap_get(const struct dirmap *m, const char *k)
{
	if (!m->cap)
		return 0;
	for (size_t i = str_hash(k) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
		if (!strcmp(m->keys[i], k))
			return m->ids[i];
	return 0;
}

static void dirmap_put(struct dirmap *m, const char *k, int64_t id);

static void dirmap_grow(struct dirmap *m)
{
	struct dirmap old = *m;
	m->cap = old.cap ? old.cap * 2 : 256;
	m->keys = xcalloc(m->cap, sizeof *m->keys);
	m->ids = xcalloc(m->cap, sizeof *m->ids);
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.keys[i]) {
			dirmap_put(m, old.keys[i], old.ids[i]);
			free(old.keys[i]);
		}
	free(old.keys);
	free(old.ids);
}

static void dirmap_put(struct dirmap *m, const char *k, int64_t id)
{
	size_t i;
	if ((m->n + 1) * 2 > m->cap)
		dirmap_grow(m);
	for (i = str_hash(k) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
		;
	m->keys[i] = xstrdup(k);
	m->ids[i] = id;
	m->n++;
}

static void dirmap_free(struct dirmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->ids);
}

/* ---------- streaming path ---------- */

struct stream {
	struct backup_node *n;
	struct dirmap dirs;
	struct dirmap prev_dirs; /* path -> entry id in the previous node backup, -1: not there */
	char prefix[64];	/* "pg_tblspc/OID/" for a tablespace archive, "" for base.tar */
	/* the member being stored */
	struct catalog_entry *en;
	ingest_stream *is;
	pagecheck *pc;
	char path[600];
	uint64_t off;
	char *label; /* backup_label being captured */
	size_t label_len;
	int is_label;
	int64_t mtime_ns;
};

/* The entry id of directory path (relative, "" = root), creating missing ones. */
static int ensure_dir(struct stream *s, const char *path, int64_t *id, struct err *e)
{
	struct backup_node *n = s->n;
	struct catalog_entry *en;
	const char *slash;
	int64_t parent;
	int rc;
	if (!*path) {
		*id = n->root;
		return 0;
	}
	if ((*id = dirmap_get(&s->dirs, path)))
		return 0;
	slash = strrchr(path, '/');
	{
		char up[600];
		snprintf(up, sizeof up, "%.*s", slash ? (int)(slash - path) : 0, path);
		if ((rc = ensure_dir(s, up, &parent, e)) < 0)
			return rc;
	}
	en = xcalloc(1, sizeof *en);
	en->parent = parent;
	snprintf(en->name, sizeof en->name, "%s", slash ? slash + 1 : path);
	en->mode = S_IFDIR | 0700;
	en->uid = n->owner_known ? n->owner_uid : (uint32_t)getuid();
	en->gid = n->owner_known ? n->owner_gid : (uint32_t)getgid();
	en->mtime_ns = en->ctime_ns = s->mtime_ns;
	rc = catalog_entry_add(n->w->c, n->nb, en, e);
	if (rc == 0) {
		dirmap_put(&s->dirs, path, en->id);
		*id = en->id;
		n->dirs++;
	}
	free(en);
	return rc;
}

/* The entry id of directory path in the node's previous backup, or -1 (with the lock held). */
static int64_t prev_dir(struct stream *s, const char *path)
{
	struct backup_node *n = s->n;
	struct catalog_entry *en;
	const char *slash;
	int64_t parent, id;
	if (!n->prev_nb || !n->prev_root)
		return -1;
	if (!*path)
		return n->prev_root;
	if ((id = dirmap_get(&s->prev_dirs, path)))
		return id;
	slash = strrchr(path, '/');
	{
		char up[600];
		snprintf(up, sizeof up, "%.*s", slash ? (int)(slash - path) : 0, path);
		parent = prev_dir(s, up);
	}
	id = -1;
	en = xmalloc(sizeof *en);
	if (parent > 0 &&
	    catalog_entry_lookup(n->w->c, n->prev_nb, parent, slash ? slash + 1 : path, en, NULL) == 0 &&
	    S_ISDIR(en->mode))
		id = en->id;
	free(en);
	dirmap_put(&s->prev_dirs, path, id);
	return id;
}

/* The content list of the file at path in the node's previous backup (0: none), for delta blocks. */
static int64_t prev_content(struct stream *s, const char *path)
{
	struct catalog_entry *en;
	const char *slash = strrchr(path, '/');
	int64_t dir, content = 0;
	char up[600];
	snprintf(up, sizeof up, "%.*s", slash ? (int)(slash - path) : 0, path);
	if ((dir = prev_dir(s, up)) <= 0)
		return 0;
	en = xmalloc(sizeof *en);
	if (catalog_entry_lookup(s->n->w->c, s->n->prev_nb, dir, slash ? slash + 1 : path, en, NULL) == 0 &&
	    S_ISREG(en->mode))
		content = en->content;
	free(en);
	return content;
}

static void stream_bad_page(void *ctx, uint32_t block)
{
	struct stream *s = ctx;
	add_damaged(s->n, s->path, block);
}

static int on_member(void *ctx, const struct tar_member *m, struct err *e)
{
	struct stream *s = ctx;
	struct backup_node *n = s->n;
	struct catalog_entry *en;
	const char *slash, *name;
	int64_t parent;
	int rc = 0;
	snprintf(s->path, sizeof s->path, "%s%s", s->prefix, m->path);
	{
		size_t l = strlen(s->path);
		while (l && s->path[l - 1] == '/')
			s->path[--l] = '\0';
	}
	if (!s->path[0] || !strcmp(s->path, "."))
		return 0;
	s->mtime_ns = m->mtime * 1000000000ll;
	if (!n->owner_known) { /* the server's files are all its owner's: so is the node's root */
		n->owner_uid = m->uid;
		n->owner_gid = m->gid;
		n->owner_known = 1;
	}
	if (m->type == '5' || m->type == '2') {
		if (dirmap_get(&s->dirs, s->path)) /* seen already (a tablespace archive came first) */
			return 0;
	} else if (m->type != '0') {
		n->skipped++;
		return 0;
	}
	slash = strrchr(s->path, '/');
	name = slash ? slash + 1 : s->path;
	{
		char up[600];
		snprintf(up, sizeof up, "%.*s", slash ? (int)(slash - s->path) : 0, s->path);
		if ((rc = ensure_dir(s, up, &parent, e)) < 0)
			return rc;
	}
	en = xcalloc(1, sizeof *en);
	en->parent = parent;
	snprintf(en->name, sizeof en->name, "%s", name);
	en->uid = m->uid;
	en->gid = m->gid;
	en->mtime_ns = en->ctime_ns = s->mtime_ns;
	if (m->type == '5') {
		en->mode = S_IFDIR | m->mode;
		if ((rc = catalog_entry_add(n->w->c, n->nb, en, e)) == 0) {
			dirmap_put(&s->dirs, s->path, en->id);
			n->dirs++;
		}
		free(en);
		return rc;
	}
	if (m->type == '2') {
		en->mode = S_IFLNK | 0777;
		snprintf(en->target, sizeof en->target, "%s", m->link);
		en->size = strlen(en->target);
		rc = catalog_entry_add(n->w->c, n->nb, en, e);
		n->links++;
		free(en);
		return rc;
	}
	en->mode = S_IFREG | m->mode;
	s->en = en;
	s->off = 0;
	s->is_label = !strcmp(s->path, "backup_label");
	s->label_len = 0;
	if (n->info.data_checksums) {
		uint32_t segno;
		if (pagecheck_is_relation(s->path, &segno))
			s->pc = pagecheck_new(segno, n->start_lsn, stream_bad_page, s);
	}
	if ((rc = ingest_stream_begin(n->w->g, chunker_is_paged(s->path), &s->is, e)) < 0)
		return rc;
	if (n->w->g && chunker_is_paged(s->path))
		ingest_stream_set_base(s->is, prev_content(s, s->path));
	return 0;
}

static int on_data(void *ctx, const uint8_t *p, size_t len, struct err *e)
{
	struct stream *s = ctx;
	if (!s->is)
		return 0;
	if (s->pc)
		pagecheck_feed(s->pc, s->off, p, len);
	if (s->is_label && s->label_len + len <= LABEL_MAX) {
		s->label = xrealloc(s->label, s->label_len + len + 1);
		memcpy(s->label + s->label_len, p, len);
		s->label_len += len;
		s->label[s->label_len] = '\0';
	}
	s->off += len;
	return ingest_stream_write(s->is, p, len, e);
}

static int on_member_end(void *ctx, struct err *e)
{
	struct stream *s = ctx;
	struct backup_node *n = s->n;
	ingest_stream *is = s->is;
	int rc;
	if (!is)
		return 0;
	s->is = NULL;
	if ((rc = ingest_stream_end(is, &s->en->content, &s->en->size, e)) < 0)
		goto out;
	if ((rc = catalog_entry_add(n->w->c, n->nb, s->en, e)) < 0)
		goto out;
	if (s->pc)
		n->pages_checked += pagecheck_pages(s->pc);
	if (s->is_label && s->label && !n->backup_label)
		n->backup_label = xstrdup(s->label);
	rc = backup_writer_checkpoint(n->w, e);
out:
	pagecheck_free(s->pc);
	s->pc = NULL;
	free(s->en);
	s->en = NULL;
	return rc;
}

static void stream_release(struct stream *s)
{
	ingest_stream_abort(s->is);
	pagecheck_free(s->pc);
	free(s->en);
	free(s->label);
	dirmap_free(&s->dirs);
	dirmap_free(&s->prev_dirs);
}

/* One CopyData message of the PostgreSQL 15 archive stream, with the lock held. */
static int copy_message(struct stream *s, tar_parser *tp, const uint8_t *buf, size_t len, struct err *e)
{
	int rc;
	if (len < 1)
		return err_set(e, ERR_CORRUPT, "node %s: empty message in the backup stream", s->n->name);
	switch (buf[0]) {
	case 'n': { /* a new archive: its name and tablespace location, NUL-terminated */
		const char *archive = (const char *)buf + 1;
		if (!memchr(buf + 1, '\0', len - 1))
			return err_set(e, ERR_CORRUPT, "node %s: bad archive header in the backup stream", s->n->name);
		if ((rc = tar_finish(tp, e)) < 0)
			return rc;
		tar_reset(tp);
		if (!strcmp(archive, "base.tar")) {
			s->prefix[0] = '\0';
		} else {
			/* "<oid>.tar": stored as the directory pg_tblspc/<oid> (see docs/design-notes.md) */
			unsigned long oid = strtoul(archive, NULL, 10);
			size_t an = strlen(archive) + 1;
			snprintf(s->prefix, sizeof s->prefix, "pg_tblspc/%lu/", oid);
			/* its location on the node, kept as pg_backup_stop's tablespace_map gives it on
			 * the local path ("<oid> <path>" lines): where the tablespace was */
			if (1 + an < len && memchr(buf + 1 + an, '\0', len - 1 - an)) {
				const char *loc = archive + an;
				char *old = s->n->tablespace_map, line[PATH_MAX + 32];
				snprintf(line, sizeof line, "%lu %s\n", oid, loc);
				s->n->tablespace_map = xmalloc((old ? strlen(old) : 0) + strlen(line) + 1);
				sprintf(s->n->tablespace_map, "%s%s", old ? old : "", line);
				free(old);
			}
		}
		return 0;
	}
	case 'd':
		return tar_feed(tp, buf + 1, len - 1, e);
	case 'p': /* progress */
	case 'm': /* manifest (we ask for none) */
		return 0;
	default:
		return err_set(e, ERR_CORRUPT, "node %s: unknown message type '%c' in the backup stream", s->n->name,
			       buf[0]);
	}
}

/* the stall (nothing since quiet_since for n->stall_s seconds) or another node's failure */
static int stalled(struct backup_node *n, double quiet_since, struct err *e)
{
	int failed;
	lock(n);
	failed = n->w->failed;
	unlock(n);
	if (failed) {
		n->stopped = 1;
		return err_set(e, ERR_INTERNAL, "stopped: another node failed");
	}
	if (n->stall_s > 0 && util_mono() - quiet_since >= n->stall_s) {
		err_set(e, ERR_IO, "node %s sent nothing for %d s: the backup stalled", n->name, n->stall_s);
		err_hint(e, "check node %s (a hung server process or disk); [repository] backup-stall-timeout sets the limit",
			 n->name);
		return ERR_IO;
	}
	return 0;
}

/*
 * One wait for input on a node's replication connection, a second at most; then whatever came
 * is taken in, also when the socket looked idle: bytes SSL already took off it wait inside
 * libpq. Callers wait in a loop, checking stalled() between waits, so that a node that sends
 * nothing (a hung server or disk, while its host answers TCP) fails instead of holding the
 * writer lock for ever.
 */
static int wait_input(PGconn *conn, struct backup_node *n, struct err *e)
{
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
	if (poll(&p, 1, 1000) < 0 && errno != EINTR)
		return err_sys(e, ERR_IO, "node %s: waiting for the backup stream", n->name);
	if (!PQconsumeInput(conn))
		return err_set(e, ERR_IO, "node %s: the backup stream broke: %s", n->name, PQerrorMessage(conn));
	return 0;
}

static int node_stream(struct backup_node *n, struct err *e)
{
	PGconn *sql = NULL, *repl = NULL;
	PGresult *res = NULL;
	struct stream s;
	struct tar_callbacks cb = {.ctx = &s, .member = on_member, .data = on_data, .member_end = on_member_end};
	tar_parser *tp = NULL;
	char cmd[512], lbl[128];
	int rc, tuples = 0, copied = 0;
	double quiet_since;
	memset(&s, 0, sizeof s);
	s.n = n;
	if ((rc = pg_connect(n->name, n->conninfo, 0, &sql, e)) < 0 || (rc = pg_node_info(sql, n->name, &n->info, e)) < 0)
		goto out;
	PQfinish(sql);
	sql = NULL;
	if ((rc = pg_connect(n->name, n->conninfo, 1, &repl, e)) < 0)
		goto out;
	snprintf(cmd, sizeof cmd, "CREATE_REPLICATION_SLOT pgtimefs_%ld_%d TEMPORARY PHYSICAL (RESERVE_WAL)",
		 (long)getpid(), n->index);
	if ((rc = pg_exec(repl, n->name, cmd, e)) < 0) {
		err_hint(e, "the node needs a free replication slot (max_replication_slots) and max_wal_senders");
		goto out;
	}
	/* the label is a string literal: keep it to safe characters */
	snprintf(lbl, sizeof lbl, "%s", n->label);
	for (char *p = lbl; *p; p++)
		if (*p == '\'' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
	snprintf(cmd, sizeof cmd,
		 "BASE_BACKUP (LABEL '%s', CHECKPOINT 'fast', WAL true, WAIT false, MANIFEST 'no',"
		 " VERIFY_CHECKSUMS false, PROGRESS false)",
		 lbl);
	if (!PQsendQuery(repl, cmd)) {
		rc = err_set(e, ERR_IO, "node %s: cannot send BASE_BACKUP: %s", n->name, PQerrorMessage(repl));
		goto out;
	}
	tp = tar_new(&cb);
	quiet_since = util_mono();
	for (;;) {
		while (PQisBusy(repl))
			if ((rc = stalled(n, quiet_since, e)) < 0 || (rc = wait_input(repl, n, e)) < 0)
				goto out;
		quiet_since = util_mono();
		if (!(res = PQgetResult(repl)))
			break;
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_TUPLES_OK) {
			/* 1: start position; 2: tablespaces; 3: end position */
			tuples++;
			if ((tuples == 1 || tuples == 3) && PQntuples(res) == 1 && PQnfields(res) >= 2) {
				uint64_t lsn;
				if (pg_lsn_parse(PQgetvalue(res, 0, 0), &lsn) < 0) {
					rc = err_set(e, ERR_CORRUPT, "node %s: bad LSN '%s' from BASE_BACKUP", n->name,
						     PQgetvalue(res, 0, 0));
					goto out;
				}
				if (tuples == 1) {
					n->start_lsn = lsn;
					n->timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
				} else {
					n->stop_lsn = lsn;
				}
			}
		} else if (st == PGRES_COPY_OUT) {
			for (;;) {
				char *buf = NULL;
				int len = PQgetCopyData(repl, &buf, 1);
				if (len == 0) { /* nothing whole yet: wait for more, at most the stall limit */
					if ((rc = stalled(n, quiet_since, e)) < 0 || (rc = wait_input(repl, n, e)) < 0)
						goto out;
					continue;
				}
				quiet_since = util_mono();
				if (len == -1)
					break;
				if (len < 0) {
					rc = err_set(e, ERR_IO, "node %s: the backup stream broke: %s", n->name,
						     PQerrorMessage(repl));
					goto out;
				}
				lock(n);
				if (n->w->failed) {
					n->stopped = 1;
					rc = err_set(e, ERR_INTERNAL, "stopped: another node failed");
				} else {
					rc = copy_message(&s, tp, (const uint8_t *)buf, (size_t)len, e);
				}
				unlock(n);
				PQfreemem(buf);
				if (rc < 0)
					goto out;
			}
			copied = 1;
		} else if (st != PGRES_COMMAND_OK) {
			char msg[600];
			snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
			msg[strcspn(msg, "\n")] = '\0';
			rc = err_set(e, ERR_IO, "node %s: BASE_BACKUP failed: %s", n->name, msg);
			if (strstr(msg, "replication slot") || strstr(msg, "wal_level"))
				err_hint(e, "check wal_level = replica and max_wal_senders on node %s", n->name);
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if (!copied || tuples < 3 || !n->stop_lsn) {
		rc = err_set(e, ERR_IO, "node %s: the backup ended early: %s", n->name, PQerrorMessage(repl));
		goto out;
	}
	lock(n);
	rc = tar_finish(tp, e);
	unlock(n);
	if (rc < 0)
		goto out;
	if (!n->backup_label)
		rc = err_set(e, ERR_CORRUPT, "node %s: the backup held no backup_label", n->name);
out:
	PQclear(res);
	lock(n);
	stream_release(&s);
	unlock(n);
	tar_free(tp);
	PQfinish(repl); /* an unfinished backup is aborted by the server; the temporary slot goes */
	PQfinish(sql);
	return rc;
}

/* ---------- local path ---------- */

struct local {
	struct backup_node *n;
	char dir[PATH_MAX];
	pagecheck *pc;
	char rel[600];
};

static int is_digits(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Depth of a database directory: base/DB (2) or pg_tblspc/OID/PG_x/DB (4); 0 otherwise. */
static int in_db_dir(const char *rel)
{
	int slashes = 0;
	for (const char *p = rel; *p; p++)
		slashes += *p == '/';
	if (!strncmp(rel, "base/", 5))
		return slashes == 2;
	if (!strncmp(rel, "pg_tblspc/", 10))
		return slashes == 4;
	return 0;
}

/* PostgreSQL's exclusion rules (basebackup.c: excludeDirContents, excludeFiles, unlogged and temp relations). */
static int local_filter(void *ctx, const char *rel, const struct stat *st)
{
	static const char *const top_files[] = {"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map",
						"backup_manifest", "postgresql.auto.conf.tmp", "current_logfiles.tmp",
						NULL};
	static const char *const empty_dirs[] = {"pg_stat_tmp", "pg_replslot", "pg_dynshmem", "pg_notify",
						 "pg_serial",	"pg_snapshots", "pg_subtrans", NULL};
	struct local *l = ctx;
	const char *base = strrchr(rel, '/');
	int top = base == NULL;
	base = base ? base + 1 : rel;
	if (!strncmp(base, "pgsql_tmp", 9) || !strncmp(base, "pg_internal.init", 16))
		return WALK_SKIP;
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode))
		return WALK_SKIP; /* sockets, fifos: PostgreSQL skips them too */
	if (top && !strcmp(rel, "pg_wal") && S_ISLNK(st->st_mode))
		return WALK_FOLLOW; /* initdb --waldir: a directory of the snapshot's own, as pg_basebackup writes it */
	if (top) {
		for (int i = 0; top_files[i]; i++)
			if (!strcmp(rel, top_files[i]))
				return WALK_SKIP;
		for (int i = 0; empty_dirs[i]; i++)
			if (!strcmp(rel, empty_dirs[i]))
				return S_ISDIR(st->st_mode) ? WALK_EMPTY_DIR : WALK_SKIP;
		return WALK_KEEP;
	}
	if (!strncmp(rel, "pg_wal/", 7)) /* WAL comes from the slot's range after the stop */
		return !strcmp(rel, "pg_wal/archive_status") ? WALK_EMPTY_DIR : WALK_SKIP;
	if (!strncmp(rel, "pg_tblspc/", 10) && !strchr(rel + 10, '/') && S_ISLNK(st->st_mode))
		return WALK_FOLLOW;
	if (S_ISREG(st->st_mode) && in_db_dir(rel)) {
		size_t digits = strspn(base, "0123456789");
		if (base[0] == 't' && is_digits(base + 1, 1))
			return WALK_SKIP; /* temporary relation */
		if (digits && strncmp(base + digits, "_init", 5)) {
			/* an unlogged relation (it has an init fork): only the init fork is kept */
			char init[PATH_MAX + 64];
			snprintf(init, sizeof init, "%s/%.*s/%.*s_init", l->dir, (int)(base - 1 - rel), rel, (int)digits,
				 base);
			if (access(init, F_OK) == 0)
				return WALK_SKIP;
		}
	}
	return WALK_KEEP;
}

static void local_bad_page(void *ctx, uint32_t block)
{
	struct local *l = ctx;
	char path[PATH_MAX + 700];
	uint32_t segno = 0;
	int fd, sound = 0;
	/* a page written as it was read can be torn: read once more before calling it damaged
	 * (the copy stored stays as read; a page written since the start is WAL replay's) */
	snprintf(path, sizeof path, "%s/%s", l->dir, l->rel);
	if (pagecheck_is_relation(l->rel, &segno) && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		sound = pagecheck_recheck(fd, segno, block, l->n->start_lsn);
		close(fd);
	}
	if (!sound)
		add_damaged(l->n, l->rel, block);
}

static void local_observe(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
	struct local *l = ctx;
	pagecheck_feed(l->pc, off, data, len);
}

static int local_file_begin(void *ctx, const char *rel, struct ingest_observer *ob)
{
	struct local *l = ctx;
	uint32_t segno;
	if (!l->n->info.data_checksums || !pagecheck_is_relation(rel, &segno))
		return 0;
	snprintf(l->rel, sizeof l->rel, "%s", rel);
	l->pc = pagecheck_new(segno, l->n->start_lsn, local_bad_page, l);
	ob->fn = local_observe;
	ob->ctx = l;
	return 1;
}

static void local_file_end(void *ctx)
{
	struct local *l = ctx;
	l->n->pages_checked += pagecheck_pages(l->pc);
	pagecheck_free(l->pc);
	l->pc = NULL;
}

static void local_lock(void *ctx)
{
	lock(((struct local *)ctx)->n);
}

static void local_unlock(void *ctx)
{
	unlock(((struct local *)ctx)->n);
}

static int local_checkpoint(void *ctx, struct err *e)
{
	return backup_writer_checkpoint(((struct local *)ctx)->n->w, e);
}

/* Stores text as the regular file name under parent (with the lock held). */
static int add_text_file(struct backup_node *n, int64_t parent, const char *name, const char *text, struct err *e)
{
	struct catalog_entry *en = xcalloc(1, sizeof *en);
	ingest_stream *is = NULL;
	int rc;
	en->parent = parent;
	snprintf(en->name, sizeof en->name, "%s", name);
	en->mode = S_IFREG | 0600;
	en->uid = n->owner_known ? n->owner_uid : (uint32_t)getuid();
	en->gid = n->owner_known ? n->owner_gid : (uint32_t)getgid();
	en->mtime_ns = en->ctime_ns = util_now_us() * 1000;
	if ((rc = ingest_stream_begin(n->w->g, 0, &is, e)) < 0)
		goto out;
	if ((rc = ingest_stream_write(is, text, strlen(text), e)) < 0) {
		ingest_stream_abort(is);
		goto out;
	}
	if ((rc = ingest_stream_end(is, &en->content, &en->size, e)) < 0)
		goto out;
	rc = catalog_entry_add(n->w->c, n->nb, en, e);
out:
	free(en);
	return rc;
}

/* Stores the file at path as name under parent (with the lock held). */
static int add_local_file(struct backup_node *n, int64_t parent, const char *path, const char *name, struct err *e)
{
	struct catalog_entry *en = xcalloc(1, sizeof *en);
	struct stat st;
	uint64_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = err_sys(e, ERR_IO, "node %s: cannot read %s", n->name, path);
		goto out;
	}
	backup_walk_entry(en, &st, parent, name);
	if ((rc = ingest_file(n->w->g, fd, chunker_is_paged(name), &en->content, &size, e)) < 0)
		goto out;
	en->size = size;
	rc = catalog_entry_add(n->w->c, n->nb, en, e);
out:
	if (fd >= 0)
		close(fd);
	free(en);
	return rc;
}

/*
 * Stores the WAL segment at path with every byte after the page that holds the stop LSN
 * zeroed (with the lock held): that tail is stale WAL of a recycled segment, never read by
 * recovery (it stops at the first invalid page), and zeros compress and dedup to nothing.
 */
static int add_wal_tail_zeroed(struct backup_node *n, int64_t parent, const char *path, const char *name,
			       uint64_t keep, struct err *e)
{
	struct catalog_entry *en = xcalloc(1, sizeof *en);
	ingest_stream *is = NULL;
	uint8_t *buf = xmalloc(1u << 20);
	struct stat st;
	uint64_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = err_sys(e, ERR_IO, "node %s: cannot read %s", n->name, path);
		goto out;
	}
	backup_walk_entry(en, &st, parent, name);
	if ((rc = ingest_stream_begin(n->w->g, 1, &is, e)) < 0)
		goto out;
	while (off < (uint64_t)st.st_size) {
		size_t want = (uint64_t)st.st_size - off < (1u << 20) ? (size_t)((uint64_t)st.st_size - off) : (1u << 20);
		if (off + want <= keep) {
			if (util_pread_all(fd, buf, want, off) < 0) {
				rc = err_sys(e, ERR_IO, "node %s: cannot read %s", n->name, path);
				goto out;
			}
		} else {
			size_t head = off < keep ? (size_t)(keep - off) : 0;
			if (head && util_pread_all(fd, buf, head, off) < 0) {
				rc = err_sys(e, ERR_IO, "node %s: cannot read %s", n->name, path);
				goto out;
			}
			memset(buf + head, 0, want - head);
		}
		if ((rc = ingest_stream_write(is, buf, want, e)) < 0)
			goto out;
		off += want;
	}
	rc = ingest_stream_end(is, &en->content, &en->size, e);
	is = NULL;
	if (rc == 0)
		rc = catalog_entry_add(n->w->c, n->nb, en, e);
out:
	ingest_stream_abort(is);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(en);
	return rc;
}

/*
 * The data directory is the connected server's: the system identifier at the start of
 * global/pg_control (this host's byte order) is the one pg_control_system() reports. The
 * check of data_directory needs a role that may read it; this one needs none.
 */
static int same_system(struct backup_node *n, const char *dir, struct err *e)
{
	char p[PATH_MAX + 32], ours[32];
	uint64_t id;
	int fd;
	snprintf(p, sizeof p, "%s/global/pg_control", dir);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return err_sys(e, ERR_CONFIG, "node %s: data-dir %s is not a PostgreSQL data directory", n->name, dir);
	if (util_pread_all(fd, &id, sizeof id, 0) < 0) {
		close(fd);
		return err_sys(e, ERR_IO, "node %s: cannot read %s", n->name, p);
	}
	close(fd);
	snprintf(ours, sizeof ours, "%" PRIu64, id);
	if (strcmp(ours, n->info.system_id)) {
		err_set(e, ERR_CONFIG, "node %s: data-dir %s belongs to another server (system identifier %s; the server "
				       "of conninfo has %s)", n->name, dir, ours, n->info.system_id);
		err_hint(e, "fix data-dir in [node ...], or remove it to back the node up over the network");
		return ERR_CONFIG;
	}
	return 0;
}

/* WAL from the start to the stop segment, and the timeline history files, into pg_wal/. */
static int local_wal(struct backup_node *n, const char *dir, struct err *e)
{
	struct catalog_entry pgwal;
	uint32_t seg = n->info.wal_segment_size;
	char path[PATH_MAX + 64], name[25];
	DIR *d;
	struct dirent *de;
	int rc;
	lock(n);
	rc = catalog_entry_lookup(n->w->c, n->nb, n->root, "pg_wal", &pgwal, e);
	unlock(n);
	if (rc < 0) {
		err_prefix(e, "node %s: no pg_wal in the data directory", n->name);
		return rc;
	}
	for (uint64_t lsn = n->start_lsn - n->start_lsn % seg; lsn < n->stop_lsn; lsn += seg) {
		pg_wal_name(n->timeline, lsn, seg, name);
		snprintf(path, sizeof path, "%s/pg_wal/%s", dir, name);
		lock(n);
		if (lsn + seg >= n->stop_lsn) { /* the last segment: keep up to the end of the stop LSN's page */
			uint64_t keep = n->stop_lsn - lsn;
			keep = (keep + 8191) / 8192 * 8192;
			rc = add_wal_tail_zeroed(n, pgwal.id, path, name, keep, e);
		} else {
			rc = add_local_file(n, pgwal.id, path, name, e);
		}
		if (rc == 0)
			rc = backup_writer_checkpoint(n->w, e);
		unlock(n);
		if (rc < 0)
			return rc;
	}
	snprintf(path, sizeof path, "%s/pg_wal", dir);
	if (!(d = opendir(path)))
		return err_sys(e, ERR_IO, "node %s: cannot list %s", n->name, path);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 9 || strcmp(de->d_name + l - 8, ".history"))
			continue;
		snprintf(path, sizeof path, "%s/pg_wal/%s", dir, de->d_name);
		lock(n);
		rc = add_local_file(n, pgwal.id, path, de->d_name, e);
		unlock(n);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
}

/*
 * The local path's statements are bounded by the stall limit: the server cancels one that runs
 * longer (statement_timeout, set for the session; it does not count the idle time while the
 * files are read). pg_backup_start waits on the checkpointer, which a hung disk or process can
 * stop for ever, with the writer lock held. rc/e from a statement that failed: a cancellation
 * for the timeout is told as the stall it is.
 */
static int local_stalled(struct backup_node *n, const char *what, int rc, struct err *e)
{
	if (rc < 0 && n->stall_s > 0 && e && strstr(e->msg, "statement timeout")) {
		rc = err_set(e, ERR_IO, "node %s: %s did not return within %d s: the backup stalled", n->name, what,
			     n->stall_s);
		err_hint(e, "check node %s (a hung checkpointer, server process or disk); [repository] "
			    "backup-stall-timeout sets the limit",
			 n->name);
	}
	return rc;
}

static int node_local(struct backup_node *n, struct err *e)
{
	struct local *l = xcalloc(1, sizeof *l);
	struct walk_hooks h = {.ctx = l,
			       .filter = local_filter,
			       .file_begin = local_file_begin,
			       .file_end = local_file_end,
			       .lock = local_lock,
			       .unlock = local_unlock,
			       .checkpoint = local_checkpoint};
	struct walk_tree t;
	struct walk_result wr;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	struct stat st;
	char slot[64], buf[64];
	int rc, started = 0;
	l->n = n;
	memset(&wr, 0, sizeof wr);
	if (!realpath(n->data_dir, l->dir) || stat(l->dir, &st) < 0) {
		rc = err_sys(e, ERR_CONFIG, "node %s: data-dir %s", n->name, n->data_dir);
		goto out;
	}
	if ((rc = pg_connect(n->name, n->conninfo, 0, &conn, e)) < 0 ||
	    (rc = pg_node_info(conn, n->name, &n->info, e)) < 0)
		goto out;
	if (n->info.data_directory[0]) {
		char real[PATH_MAX];
		if (!realpath(n->info.data_directory, real) || strcmp(real, l->dir)) {
			rc = err_set(e, ERR_CONFIG, "node %s: data-dir %s is not the server's data directory (%s)", n->name,
				     l->dir, n->info.data_directory);
			err_hint(e, "fix data-dir in [node ...], or remove it to back the node up over the network");
			goto out;
		}
	}
	if ((rc = same_system(n, l->dir, e)) < 0)
		goto out;
	if (n->stall_s > 0) {
		char set[64];
		snprintf(set, sizeof set, "SET statement_timeout = %lld", (long long)n->stall_s * 1000);
		if ((rc = pg_exec(conn, n->name, set, e)) < 0)
			goto out;
	}
	snprintf(slot, sizeof slot, "pgtimefs_%ld_%d", (long)getpid(), n->index);
	{
		const char *p[] = {slot};
		if ((rc = pg_query1(conn, n->name, "SELECT pg_create_physical_replication_slot($1, true, true)::text", 1, p,
				    NULL, 0, e)) < 0) {
			err_hint(e, "the node needs a free replication slot (max_replication_slots)");
			goto out;
		}
	}
	{
		const char *p[] = {n->label};
		rc = pg_query1(conn, n->name, "SELECT pg_backup_start($1, true)::text", 1, p, buf, sizeof buf, e);
		if ((rc = local_stalled(n, "pg_backup_start (its checkpoint)", rc, e)) < 0)
			goto out;
		started = 1;
		if (pg_lsn_parse(buf, &n->start_lsn) < 0) {
			rc = err_set(e, ERR_CORRUPT, "node %s: bad start LSN '%s'", n->name, buf);
			goto out;
		}
	}
	if ((rc = pg_query1(conn, n->name, "SELECT timeline_id FROM pg_control_checkpoint()", 0, NULL, buf, sizeof buf,
			    e)) < 0)
		goto out;
	n->timeline = (uint32_t)strtoul(buf, NULL, 10);
	{
		struct catalog_entry root;
		lock(n);
		backup_walk_entry(&root, &st, 0, "");
		rc = catalog_entry_add(n->w->c, n->nb, &root, e);
		n->root = root.id;
		n->owner_uid = st.st_uid;
		n->owner_gid = st.st_gid;
		n->owner_known = 1;
		unlock(n);
		if (rc < 0)
			goto out;
	}
	memset(&t, 0, sizeof t);
	t.dir = l->dir;
	t.nb = n->nb;
	t.root = n->root;
	t.prev_nb = n->prev_nb;
	t.prev_root = n->prev_root;
	t.prev_started_ns = n->prev_started_ns;
	t.full = n->full;
	if ((rc = backup_walk_tree(n->w->c, n->w->g, &t, &h, &wr, e)) < 0) {
		if (n->w->failed && e && !strcmp(e->msg, "stopped: another node failed"))
			n->stopped = 1;
		goto out;
	}
	n->dirs = wr.dirs;
	n->links = wr.links;
	n->skipped = wr.skipped;
	res = PQexec(conn, "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)");
	started = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
		msg[strcspn(msg, "\n")] = '\0';
		rc = local_stalled(n, "pg_backup_stop", err_set(e, ERR_IO, "node %s: pg_backup_stop failed: %s", n->name, msg), e);
		goto out;
	}
	if (pg_lsn_parse(PQgetvalue(res, 0, 0), &n->stop_lsn) < 0) {
		rc = err_set(e, ERR_CORRUPT, "node %s: bad stop LSN '%s'", n->name, PQgetvalue(res, 0, 0));
		goto out;
	}
	n->backup_label = xstrdup(PQgetvalue(res, 0, 1));
	n->tablespace_map = xstrdup(PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2));
	lock(n);
	rc = add_text_file(n, n->root, "backup_label", n->backup_label, e);
	unlock(n);
	if (rc < 0)
		goto out;
	rc = local_wal(n, l->dir, e);
out:
	PQclear(res);
	if (started && PQstatus(conn) == CONNECTION_OK)
		PQclear(PQexec(conn, "SELECT pg_backup_stop(false)")); /* end the backup mode before leaving */
	PQfinish(conn); /* the temporary slot goes with the session */
	pagecheck_free(l->pc);
	free(l);
	return rc;
}

void *backup_node_run(void *arg)
{
	struct backup_node *n = arg;
	double t0 = util_mono();
	err_clear(&n->err);
	if (n->data_dir) {
		n->rc = node_local(n, &n->err);
	} else {
		lock(n);
		{
			struct catalog_entry root;
			struct stat st;
			memset(&st, 0, sizeof st);
			st.st_mode = S_IFDIR | 0700;
			st.st_uid = getuid();
			st.st_gid = getgid();
			st.st_mtim.tv_sec = util_now_us() / 1000000;
			backup_walk_entry(&root, &st, 0, "");
			n->rc = catalog_entry_add(n->w->c, n->nb, &root, &n->err);
			n->root = root.id;
		}
		unlock(n);
		if (n->rc == 0)
			n->rc = node_stream(n, &n->err);
		if (n->rc == 0 && n->owner_known) {
			lock(n);
			n->rc = catalog_entry_set_owner(n->w->c, n->root, n->owner_uid, n->owner_gid, &n->err);
			unlock(n);
		}
	}
	if (n->rc < 0) {
		pthread_mutex_lock(&n->w->mu);
		n->w->failed = 1;
		pthread_mutex_unlock(&n->w->mu);
	}
	n->seconds = util_mono() - t0;
	return NULL;
}

void backup_node_release(struct backup_node *n)
{
	free(n->backup_label);
	free(n->tablespace_map);
	free(n->damaged);
	n->backup_label = n->tablespace_map = NULL;
	n->damaged = NULL;
}
