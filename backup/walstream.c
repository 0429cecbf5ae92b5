#include "walstream.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/pg.h"
#include "backup/walarchive.h"
#include "backup/walread.h"
#include "common/util.h"
#include "store/reader.h"

#define STATUS_INTERVAL_S 10.0 /* standby status updates, as wal_receiver_status_interval */
#define BACKOFF_MAX_S 30.0
#define LOCK_GIVE_UP_ON_STOP_S 10.0

/* What the node threads share. */
struct ws {
	pthread_mutex_t mu; /* guards c, the writer lock and failed */
	struct repo *r;
	catalog *c;
	const struct walstream_opts *o;
	volatile int failed; /* a node failed for good: all stop */
	double deadline;     /* util_mono() time to stop at, 0: none */
};

/* restore points kept per segment in progress (more are reported and dropped) */
#define WS_RPS_MAX 64

struct wsnode {
	struct ws *ws;
	const struct walstream_node *spec;
	char slot[64];
	PGconn *conn;
	char sysid[32];
	uint32_t seg_size, tli;
	uint64_t seg_start; /* LSN of buf[0] */
	uint8_t *buf;	    /* seg_size bytes, zero after fill */
	size_t fill;
	uint64_t received;  /* just past the last byte received */
	uint64_t flushed;   /* confirmed to the server: every byte before it is stored */
	size_t partial_fill; /* bytes of the segment in the stored partial */
	size_t partial_floor; /* where the partial stored before this segment was begun again (a
			       * restart, a reconnect) ends: a shorter one is not stored over it */
	int64_t last_rx_us;
	double last_partial, last_status;
	walread *rd;
	struct walread_segment done; /* summary of the last segment the reader closed */
	int have_done;
	/* restore points the reader found in the segment in progress, recorded with it */
	struct walread_restore_point rps[WS_RPS_MAX];
	size_t nrps;
	uint64_t rps_dropped;
	int reached; /* until_lsn reached */
	int removed; /* the server removed WAL the archive lacks: start at the slot next time */
	uint64_t conn_start; /* where this connection's stream started (flushed until it passes it) */
	int rc;
	struct err err;
};

static void logf_node(struct wsnode *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_node(struct wsnode *n, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* one line per message (libpq's have a newline and a tab inside) */
	for (char *r = msg, *w = msg;; r++) {
		if (*r == '\n' || *r == '\t') {
			if (w > msg && w[-1] != ' ')
				*w++ = ' ';
		} else if (!(*w++ = *r)) {
			break;
		}
	}
	if (n->ws->o->on_log)
		n->ws->o->on_log(n->ws->o->ctx, n->spec->name, msg);
	else
		fprintf(stderr, "pgtimefs: wal-stream %s/%s: %s\n", n->ws->o->cluster, n->spec->name, msg);
}

void walstream_slot_name(const char *node, char out[64])
{
	size_t k = snprintf(out, 64, "pgtimefs_");
	for (const char *p = node; *p && k < 63; p++) {
		char ch = *p;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		out[k++] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ? ch : '_';
	}
	out[k] = '\0';
}

static int stopping(const struct wsnode *n)
{
	const struct ws *ws = n->ws;
	return (ws->o->stop && *ws->o->stop) || ws->failed || (ws->deadline > 0 && util_mono() >= ws->deadline);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* A standby status update: written = received, flushed = stored, applied = none. */
static int send_status(struct wsnode *n, struct err *e)
{
	uint8_t m[34];
	m[0] = 'r';
	put64(m + 1, n->received);
	/* no flush position (InvalidXLogRecPtr) until this connection has made something durable:
	 * a physical slot's restart_lsn follows the reported flush position even backwards, and a
	 * stream that tries the archive's end before the slot's start (a gap) would otherwise move
	 * the slot back onto WAL the server has removed, and retry that start for ever */
	put64(m + 9, n->flushed > n->conn_start ? n->flushed : 0);
	put64(m + 17, 0);
	put64(m + 25, (uint64_t)(util_now_us() - WALREAD_PG_EPOCH_US));
	m[33] = 0;
	if (PQputCopyData(n->conn, (const char *)m, sizeof m) <= 0 || PQflush(n->conn) < 0)
		return err_set(e, ERR_IO, "node %s: cannot send a status update: %s", n->spec->name,
			       PQerrorMessage(n->conn));
	n->last_status = util_mono();
	return 0;
}

/*
 * Takes the mutex and the writer lock. While another writer holds the lock (a backup), the
 * connection is kept alive with status updates. ERR_LOCKED when stopping and still locked
 * after LOCK_GIVE_UP_ON_STOP_S.
 */
static int writer_acquire(struct wsnode *n, int *lock_fd, struct err *e)
{
	double t0 = util_mono(), stop_at = 0;
	int said = 0;
	for (;;) {
		if (pthread_mutex_trylock(&n->ws->mu) == 0) {
			if (catalog_writer_lock(n->ws->o->state_dir, 0, lock_fd, NULL) == 0)
				return 0;
			pthread_mutex_unlock(&n->ws->mu);
		}
		if (!said && util_mono() - t0 > 2) {
			logf_node(n, "waiting for another pgtimefs writer (a backup?); the slot keeps the WAL meanwhile");
			said = 1;
		}
		if (stopping(n)) {
			if (!stop_at)
				stop_at = util_mono() + LOCK_GIVE_UP_ON_STOP_S;
			else if (util_mono() >= stop_at)
				return err_set(e, ERR_LOCKED, "node %s: stopping, and another pgtimefs writer still holds "
							      "the lock", n->spec->name);
		}
		if (n->conn && PQstatus(n->conn) == CONNECTION_OK && util_mono() - n->last_status >= STATUS_INTERVAL_S)
			send_status(n, NULL); /* a broken connection shows up when streaming resumes */
		usleep(100000);
	}
}

static void writer_release(struct wsnode *n, int lock_fd)
{
	catalog_writer_unlock(lock_fd);
	pthread_mutex_unlock(&n->ws->mu);
}

/* Stores data as name (kind) under the writer lock and reports it. */
static int store(struct wsnode *n, const char *name, int kind, int final, const uint8_t *data, size_t len,
		 uint64_t received, uint64_t end_lsn, int times_given, int64_t first_us, int64_t last_us,
		 const struct walread_restore_point *rps, size_t nrps, struct err *e)
{
	struct wal_store_req q;
	struct wal_push_result res;
	int lock_fd = -1, rc;
	memset(&q, 0, sizeof q);
	q.name = name;
	q.data = data;
	q.len = len;
	q.times_given = times_given;
	q.first_commit_us = first_us;
	q.last_commit_us = last_us;
	if (times_given) {
		q.rps = rps;
		q.nrps = nrps;
	}
	q.no_index = n->ws->o->no_index;
	q.stream = 1;
	if ((rc = writer_acquire(n, &lock_fd, e)) < 0)
		return rc;
	rc = backup_wal_store(n->ws->r, n->ws->c, n->ws->o->catalog_file, n->ws->o->cluster, n->spec->name, &q, &res, e);
	if (rc == 0 && n->ws->o->on_store) {
		struct walstream_event ev;
		memset(&ev, 0, sizeof ev);
		ev.node = n->spec->name;
		ev.file = name;
		ev.kind = kind;
		ev.final = final;
		ev.size = len;
		ev.received = received;
		ev.end_lsn = end_lsn;
		ev.new_bytes = res.new_bytes;
		ev.already = res.already;
		ev.received_us = n->last_rx_us;
		ev.stored_us = util_now_us();
		ev.first_commit_us = res.first_commit_us;
		ev.last_commit_us = res.last_commit_us;
		ev.seconds = res.seconds;
		n->ws->o->on_store(n->ws->o->ctx, &ev);
	}
	writer_release(n, lock_fd);
	if (rc < 0)
		err_prefix(e, "node %s: storing %s", n->spec->name, name);
	return rc;
}

static void seg_name(const struct wsnode *n, uint32_t tli, uint64_t lsn, char out[25])
{
	pg_wal_name(tli, lsn, n->seg_size, out);
}

static void reader_segment(void *ctx, const struct walread_segment *sg)
{
	struct wsnode *n = ctx;
	n->done = *sg;
	n->have_done = 1;
}

static void reader_restore_point(void *ctx, const struct walread_restore_point *rp)
{
	struct wsnode *n = ctx;
	if (n->nrps < WS_RPS_MAX) {
		n->rps[n->nrps++] = *rp;
		return;
	}
	if (n->rps_dropped++ == 0)
		logf_node(n, "more than %d restore points in one segment: '%s' and later ones are not indexed", WS_RPS_MAX,
			  rp->name);
}

/*
 * Where the .partial already stored for the segment at seg_start on timeline tli ends (0: none,
 * or it cannot be read: then the stream stores its partials as they come).
 */
static size_t stored_partial_end(struct wsnode *n, uint32_t tli, uint64_t seg_start)
{
	char seg[25], name[40];
	struct catalog_wal w;
	uint64_t end = 0;
	int64_t cl, nd;
	seg_name(n, tli, seg_start, seg);
	snprintf(name, sizeof name, "%s.partial", seg);
	pthread_mutex_lock(&n->ws->mu);
	if (catalog_cluster_find(n->ws->c, n->ws->o->cluster, &cl, NULL) < 0 ||
	    catalog_node_find(n->ws->c, cl, n->spec->name, &nd, NULL) < 0 ||
	    catalog_wal_find(n->ws->c, nd, name, &w, NULL) < 0 || backup_wal_extent(n->ws->r, n->ws->c, &w, &end, NULL) < 0)
		end = 0;
	pthread_mutex_unlock(&n->ws->mu);
	return (size_t)end;
}

/* A new reader and an empty buffer at seg_start on timeline tli. */
static void reset_segment(struct wsnode *n, uint32_t tli, uint64_t seg_start)
{
	walread_free(n->rd);
	n->tli = tli;
	n->seg_start = seg_start;
	n->received = seg_start;
	n->fill = 0;
	n->partial_fill = 0;
	n->partial_floor = stored_partial_end(n, tli, seg_start);
	n->have_done = 0;
	n->nrps = 0;
	memset(n->buf, 0, n->seg_size);
	n->rd = n->ws->o->no_index ? NULL : walread_new(tli, seg_start / n->seg_size);
	n->last_partial = util_mono();
}

/* What a partial records: the summary of its segment so far and its restore points. */
struct partial_times {
	struct wsnode *n;
	uint64_t segno;
	struct walread_segment cur;
	struct walread_restore_point rps[WS_RPS_MAX];
	size_t nrps;
};

static void partial_seg(void *ctx, const struct walread_segment *sg)
{
	struct partial_times *pt = ctx;
	if (sg->segno == pt->segno)
		pt->cur = *sg;
}

static void partial_rp(void *ctx, const struct walread_restore_point *rp)
{
	struct partial_times *pt = ctx;
	if (pt->nrps < WS_RPS_MAX && rp->lsn / pt->n->seg_size == pt->segno)
		pt->rps[pt->nrps++] = *rp;
}

/* Stores the segment in progress as <segment>.partial when it holds bytes not stored yet. */
static int store_partial(struct wsnode *n, int final, struct err *e)
{
	char name[40], seg[25];
	struct partial_times pt;
	int rc;
	n->last_partial = util_mono();
	/* begun again after a restart, the stream holds less of the segment than the partial
	 * stored before: that one stays until this one is longer (the slot keeps the WAL) */
	if (n->fill == 0 || n->fill == n->partial_fill || n->fill <= n->partial_floor)
		return 0;
	seg_name(n, n->tli, n->seg_start, seg);
	snprintf(name, sizeof name, "%s.partial", seg);
	/* the reader parses whole pages: a copy of it, ended, also reads the page in progress */
	memset(&pt, 0, sizeof pt);
	pt.n = n;
	pt.segno = n->seg_start / n->seg_size;
	memcpy(pt.rps, n->rps, n->nrps * sizeof n->rps[0]);
	pt.nrps = n->nrps;
	if (n->rd) {
		const struct walread_cb cb = {NULL, partial_rp, partial_seg, &pt};
		walread *d = walread_dup(n->rd);
		if (!d)
			return err_set(e, ERR_NOMEM, "node %s: out of memory", n->spec->name);
		walread_end(d, &cb);
		walread_free(d);
	}
	rc = store(n, name, WAL_PARTIAL, final, n->buf, n->seg_size, n->fill, n->received, n->rd != NULL,
		   pt.cur.first_xact_us, pt.cur.last_xact_us, pt.rps, pt.nrps, e);
	if (rc == 0)
		n->partial_fill = n->fill;
	return rc;
}

/* The segment in the buffer is complete: store it, confirm it, start the next. */
static int segment_done(struct wsnode *n, struct err *e)
{
	char name[25];
	int64_t first = 0, last = 0;
	int rc;
	seg_name(n, n->tli, n->seg_start, name);
	if (n->rd && n->have_done && n->done.segno == n->seg_start / n->seg_size) {
		first = n->done.first_xact_us;
		last = n->done.last_xact_us;
	}
	if ((rc = store(n, name, WAL_SEGMENT, 0, n->buf, n->seg_size, n->seg_size, n->seg_start + n->seg_size,
			n->rd != NULL, first, last, n->rps, n->nrps, e)) < 0)
		return rc;
	n->flushed = n->seg_start + n->seg_size;
	n->seg_start += n->seg_size;
	n->fill = 0;
	n->partial_fill = 0;
	n->have_done = 0;
	n->nrps = 0;
	memset(n->buf, 0, n->seg_size);
	n->last_partial = util_mono();
	return send_status(n, e);
}

/* An XLogData message's payload at dataStart. */
static int on_data(struct wsnode *n, uint64_t start, const uint8_t *p, size_t len, struct err *e)
{
	const struct walread_cb cb = {NULL, reader_restore_point, reader_segment, n};
	int rc;
	if (start != n->received)
		return err_set(e, ERR_IO, "node %s: the server sent WAL at %X/%X where %X/%X was expected", n->spec->name,
			       (unsigned)(start >> 32), (unsigned)start, (unsigned)(n->received >> 32),
			       (unsigned)n->received);
	n->last_rx_us = util_now_us();
	while (len > 0) {
		size_t k = n->seg_size - n->fill < len ? n->seg_size - n->fill : len;
		memcpy(n->buf + n->fill, p, k);
		if (n->rd)
			walread_feed(n->rd, p, k, &cb);
		n->fill += k;
		n->received += k;
		p += k;
		len -= k;
		if (n->fill == n->seg_size && (rc = segment_done(n, e)) < 0)
			return rc;
	}
	return 0;
}

/* The first column of the single row of a replication command's result, or "" when NULL. */
static int repl_query(struct wsnode *n, const char *cmd, PGresult **out, struct err *e)
{
	PGresult *res = PQexec(n->conn, cmd);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(n->conn));
		msg[strcspn(msg, "\n")] = '\0';
		PQclear(res);
		return err_set(e, ERR_IO, "node %s: %s failed: %s", n->spec->name, cmd, msg);
	}
	*out = res;
	return 0;
}

static int parse_size(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (!strcmp(end, "kB"))
		v <<= 10;
	else if (!strcmp(end, "MB"))
		v <<= 20;
	else if (!strcmp(end, "GB"))
		v <<= 30;
	else if (*end && strcmp(end, "B"))
		return -1;
	if (v < (1u << 20) || v > (1u << 30) || (v & (v - 1)))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

struct resume_scan {
	uint32_t from;
	uint64_t lsn;
	int found;	  /* from is one of the ancestors */
	uint64_t from_end; /* where the history left it */
	uint32_t holder;  /* 0, or the first ancestor >= from that holds lsn */
};

static int resume_line(void *ctx, int64_t parent, uint64_t end_lsn)
{
	struct resume_scan *r = ctx;
	if ((uint32_t)parent == r->from) {
		r->found = 1;
		r->from_end = end_lsn;
	}
	if (!r->holder && (uint32_t)parent >= r->from && r->lsn < end_lsn)
		r->holder = (uint32_t)parent;
	return 0;
}

int walstream_resume_point(const char *hist, size_t len, uint32_t server_tli, uint32_t seg_size, int keep_start,
			   uint32_t *tli, uint64_t *start, uint64_t *fork)
{
	struct resume_scan r;
	*fork = 0;
	if (*tli >= server_tli)
		return 0;
	memset(&r, 0, sizeof r);
	r.from = *tli;
	r.lsn = *start;
	if (backup_wal_history_parse((const uint8_t *)hist, len, server_tli, resume_line, &r) <= 0)
		return -1;
	if (!r.found)
		return 1;
	if (r.from_end < *start) {
		*fork = r.from_end;
		if (!keep_start) { /* from the switch's segment (else on the new timeline from *start) */
			*start = r.from_end - r.from_end % seg_size;
			r.lsn = *start;
			r.holder = 0;
			backup_wal_history_parse((const uint8_t *)hist, len, server_tli, resume_line, &r);
		}
	}
	*tli = r.holder ? r.holder : server_tli;
	return 0;
}

/*
 * Where a stream that starts at *start on timeline *tli, older than the server's, goes on
 * (walstream_resume_point on the server's TIMELINE_HISTORY). A timeline that is not one of
 * the server's ancestors is refused (ERR_IO, retried: nothing of the server's WAL goes after
 * it); an archive that went past the server's switch point is told in a warning (unless
 * quiet). The start moves back to the switch's segment, unless the last try found it removed
 * on the server (n->removed): then the new timeline goes on from *start, a gap.
 */
static int timeline_of(struct wsnode *n, uint32_t server_tli, uint32_t *tli, uint64_t *start, int quiet,
		       struct err *e)
{
	PGresult *res = NULL;
	char cmd[64], a[32], f[32];
	uint32_t from = *tli;
	uint64_t fork, was = *start;
	int rc;
	if (*tli >= server_tli)
		return 0;
	snprintf(cmd, sizeof cmd, "TIMELINE_HISTORY %u", server_tli);
	if ((rc = repl_query(n, cmd, &res, e)) < 0)
		return rc;
	if (PQntuples(res) != 1 || PQnfields(res) != 2)
		rc = -1;
	else
		rc = walstream_resume_point(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), server_tli,
					    n->seg_size, n->removed, tli, start, &fork);
	PQclear(res);
	pg_lsn_format(was, a);
	if (rc < 0)
		return err_set(e, ERR_IO, "node %s: the server's history of timeline %u cannot be read", n->spec->name,
			       server_tli);
	if (rc == 1) {
		err_set(e, ERR_IO, "node %s: the server is on timeline %u, which does not descend from timeline %u, where "
				   "the node's archive ends (%s): not streaming another history after it",
			n->spec->name, server_tli, from, a);
		err_hint(e, "another server (a copy promoted from an older backup?) answers at this conninfo: point the "
			    "node at the server that went on from timeline %u, or give this server a node of its own",
			 from);
		return ERR_IO;
	}
	if (fork && !quiet) {
		pg_lsn_format(fork, f);
		if (*start == was)
			logf_node(n, "warning: the archive's timeline %u goes on to %s, past %s, where the server's timeline "
				     "%u left it, and the server no longer has the segment of %s: timeline %u is stored from "
				     "%s on, and the window has a gap from %s until the next backup",
				  from, a, f, server_tli, f, *tli, a, f);
		else
			logf_node(n, "warning: the archive's timeline %u goes on to %s, past %s, where the server's timeline "
				     "%u left it (WAL the server never had: an old primary's last writes after a failover, "
				     "kept as archived); streaming again from %s's segment, on timeline %u after it",
				  from, a, f, server_tli, f, server_tli);
	}
	return 0;
}

static int start_replication(struct wsnode *n, struct err *e)
{
	char cmd[200], lsn[32];
	PGresult *res;
	pg_lsn_format(n->seg_start, lsn);
	snprintf(cmd, sizeof cmd, "START_REPLICATION SLOT \"%s\" PHYSICAL %s TIMELINE %u", n->slot, lsn, n->tli);
	res = PQexec(n->conn, cmd);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		char msg[600];
		snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(n->conn));
		msg[strcspn(msg, "\n")] = '\0';
		PQclear(res);
		err_set(e, ERR_IO, "node %s: %s failed: %s", n->spec->name, cmd, msg);
		if (strstr(msg, "already been removed"))
			err_hint(e, "the server removed WAL the archive lacks (a gap): check the slot %s; a new backup "
				    "starts a new restorable window", n->slot);
		return ERR_IO;
	}
	PQclear(res);
	n->last_status = 0;
	return 0;
}

/*
 * On a resume, the last stored segment is read back from the repository:
 * - its first page names the system it came from: a server with another system identifier
 *   (re-initialized, or another server at this conninfo) is refused, before its WAL mixes
 *   with the node's archive;
 * - when feed is set, the reader is fed the whole segment before the stream, so that a record
 *   that starts in it and ends in the first streamed segment is seen there, as if the stream
 *   had never stopped. Best effort: when it cannot be read, the reader starts fresh (the commit
 *   times of that first segment may then miss such a record) with a warning.
 */
static int check_archive(struct wsnode *n, const struct catalog_wal *last, int feed, struct err *e)
{
	struct content_piece pc[32];
	const struct walread_cb cb = {NULL, NULL, NULL, NULL};
	walread *rd = NULL;
	pack_codec *codec;
	uint8_t *blk = NULL;
	size_t cap = 0, np;
	uint64_t off = 0;
	int rc = 0, sys_checked = 0;
	if (!last->content || last->size != n->seg_size)
		return 0;
	if (!n->rd)
		feed = 0;
	if (feed && !(rd = walread_new((uint32_t)last->timeline, (uint64_t)last->segno)))
		return 0;
	codec = pack_codec_new(1);
	if (!codec)
		goto out;
	pthread_mutex_lock(&n->ws->mu);
	while (off < last->size && (feed || !sys_checked)) {
		if (catalog_content_pieces(n->ws->c, last->content, off, pc, 32, &np, NULL) < 0 || np == 0)
			break;
		for (size_t i = 0; i < np && off < last->size && (feed || !sys_checked); i++) {
			if (pc[i].off != off)
				goto unlock;
			if (pc[i].len > cap) {
				free(blk);
				cap = pc[i].len;
				blk = xmalloc(cap);
			}
			if (!pc[i].chunk)
				memset(blk, 0, pc[i].len);
			else if (pc[i].loc.raw != pc[i].len || store_read_blob(n->ws->r, codec, &pc[i].loc, blk, NULL, NULL) < 0)
				goto unlock;
			if (off == 0 && pc[i].len >= 32) {
				uint64_t sys = 0;
				for (int k = 7; k >= 0; k--)
					sys = sys << 8 | blk[24 + k];
				sys_checked = 1;
				if (sys != strtoull(n->sysid, NULL, 10)) {
					rc = err_set(e, ERR_CONFIG, "node %s: the server is system %s, but the node's archive (%s) "
								    "holds WAL of system %llu",
						     n->spec->name, n->sysid, last->name, (unsigned long long)sys);
					err_hint(e, "another server answers at this conninfo (or it was initialized again): give "
						    "it a node of its own in the configuration");
					goto unlock;
				}
			}
			if (rd)
				walread_feed(rd, blk, pc[i].len, &cb);
			off += pc[i].len;
		}
	}
unlock:
	pthread_mutex_unlock(&n->ws->mu);
	if (rc == 0 && rd && off == last->size) {
		walread_free(n->rd);
		n->rd = rd;
		rd = NULL;
	}
out:
	if (rc == 0 && (rd || !codec || !sys_checked))
		logf_node(n, "warning: cannot read back %s from the repository (system identifier check, time index "
			     "of the records that span into the next segment)", last->name);
	walread_free(rd);
	pack_codec_free(codec);
	free(blk);
	return rc;
}

/* Fetches the server's history file of timeline tli (TIMELINE_HISTORY) and stores it. */
static int store_history(struct wsnode *n, uint32_t tli, struct err *e)
{
	char cmd[64], name[32];
	PGresult *res;
	int rc;
	snprintf(cmd, sizeof cmd, "TIMELINE_HISTORY %u", tli);
	if ((rc = repl_query(n, cmd, &res, e)) < 0)
		return rc;
	if (PQntuples(res) != 1 || PQnfields(res) != 2) {
		PQclear(res);
		return err_set(e, ERR_IO, "node %s: unexpected answer to %s", n->spec->name, cmd);
	}
	snprintf(name, sizeof name, "%s", PQgetvalue(res, 0, 0));
	rc = store(n, name, WAL_HISTORY, 0, (const uint8_t *)PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1),
		   (size_t)PQgetlength(res, 0, 1), 0, 0, 0, 0, NULL, 0, e);
	PQclear(res);
	return rc;
}

/* Connects, finds the start, creates the slot when missing, and starts streaming. */
static int open_stream(struct wsnode *n, struct err *e)
{
	PGresult *res = NULL;
	char cmd[200];
	uint32_t server_tli, tli = 0;
	uint64_t xlogpos, restart = 0, start = 0;
	uint32_t restart_tli = 0;
	int rc, have_cat = 0;
	int64_t nd = 0;
	struct catalog_wal last;
	if ((rc = pg_connect(n->spec->name, n->spec->conninfo, 1, &n->conn, e)) < 0)
		return rc;
	if (PQserverVersion(n->conn) < 150000)
		return err_set(e, ERR_CONFIG, "node %s runs PostgreSQL %d; wal-stream needs 15 or later", n->spec->name,
			       PQserverVersion(n->conn) / 10000);
	if ((rc = repl_query(n, "IDENTIFY_SYSTEM", &res, e)) < 0)
		return rc;
	if (PQntuples(res) != 1 || PQnfields(res) < 3 || pg_lsn_parse(PQgetvalue(res, 0, 2), &xlogpos) < 0) {
		PQclear(res);
		return err_set(e, ERR_IO, "node %s: IDENTIFY_SYSTEM gave an unexpected answer", n->spec->name);
	}
	server_tli = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
	if (n->sysid[0] && strcmp(n->sysid, PQgetvalue(res, 0, 0))) {
		err_set(e, ERR_CONFIG, "node %s: the server's system identifier changed from %s to %s", n->spec->name,
			n->sysid, PQgetvalue(res, 0, 0));
		err_hint(e, "another server answers at this conninfo: give it a node of its own");
		PQclear(res);
		return ERR_CONFIG;
	}
	snprintf(n->sysid, sizeof n->sysid, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if ((rc = repl_query(n, "SHOW wal_segment_size", &res, e)) < 0)
		return rc;
	{
		uint32_t sz = 0;
		if (PQntuples(res) != 1 || parse_size(PQgetvalue(res, 0, 0), &sz) < 0) {
			rc = err_set(e, ERR_IO, "node %s: unexpected wal_segment_size '%s'", n->spec->name,
				     PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
			PQclear(res);
			return rc;
		}
		PQclear(res);
		if (n->buf && sz != n->seg_size) {
			free(n->buf);
			n->buf = NULL;
		}
		n->seg_size = sz;
		if (!n->buf)
			n->buf = xcalloc(1, sz);
	}
	/* where the archive ends */
	pthread_mutex_lock(&n->ws->mu);
	{
		int64_t cl;
		if (catalog_cluster_find(n->ws->c, n->ws->o->cluster, &cl, NULL) < 0 ||
		    catalog_node_find(n->ws->c, cl, n->spec->name, &nd, NULL) < 0)
			nd = 0;
		else if (catalog_wal_last_segment(n->ws->c, nd, &last, NULL) == 0 && last.size == n->seg_size)
			have_cat = 1;
	}
	pthread_mutex_unlock(&n->ws->mu);
	/* the same system as the archive, before anything is created on the server */
	if (have_cat && (rc = check_archive(n, &last, 0, e)) < 0)
		return rc;
	/* and a timeline that goes on from the archive's: a server on an older timeline (an old
	 * primary after a failover, a server restored from an older copy) has WAL past the
	 * archive's switch point that is not this history. A cascading standby that restarts
	 * reports the timeline it replays, which can be older for a moment: so a retry, not a stop */
	if (have_cat && (uint32_t)last.timeline > server_tli) {
		char a[32];
		pg_lsn_format(((uint64_t)last.segno + 1) * n->seg_size, a);
		err_set(e, ERR_IO, "node %s: the server is on timeline %u, but the node's archive is on timeline %u (up to %s): "
				   "not streaming its timeline %u past the archive's switch",
			n->spec->name, server_tli, (unsigned)last.timeline, a, server_tli);
		err_hint(e, "another server (an old primary?) answers at this conninfo: point the node at the server on "
			    "timeline %u or later; a standby that restarts gets there by itself",
			 (unsigned)last.timeline);
		return ERR_IO;
	}
	/* and one that descends from it: asked here too, before anything is created on the server */
	if (have_cat && (uint32_t)last.timeline < server_tli) {
		uint32_t t = (uint32_t)last.timeline;
		uint64_t at = ((uint64_t)last.segno + 1) * n->seg_size;
		if ((rc = timeline_of(n, server_tli, &t, &at, 1, e)) < 0)
			return rc;
	}
	/* the slot: created when missing */
	snprintf(cmd, sizeof cmd, "READ_REPLICATION_SLOT \"%s\"", n->slot);
	if ((rc = repl_query(n, cmd, &res, e)) < 0)
		return rc;
	if (PQntuples(res) == 1 && PQgetisnull(res, 0, 0)) {
		PGresult *cr;
		PQclear(res);
		snprintf(cmd, sizeof cmd, "CREATE_REPLICATION_SLOT \"%s\" PHYSICAL (RESERVE_WAL)", n->slot);
		cr = PQexec(n->conn, cmd);
		if (PQresultStatus(cr) != PGRES_TUPLES_OK) {
			char msg[600];
			snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(cr));
			msg[strcspn(msg, "\n")] = '\0';
			PQclear(cr);
			err_set(e, ERR_IO, "node %s: cannot create the replication slot %s: %s", n->spec->name, n->slot, msg);
			err_hint(e, "the node needs a free replication slot (max_replication_slots) and a free WAL "
				    "sender (max_wal_senders)");
			return ERR_IO;
		}
		PQclear(cr);
		logf_node(n, "created the physical replication slot %s", n->slot);
		snprintf(cmd, sizeof cmd, "READ_REPLICATION_SLOT \"%s\"", n->slot);
		if ((rc = repl_query(n, cmd, &res, e)) < 0)
			return rc;
	}
	if (PQntuples(res) == 1 && PQnfields(res) >= 3 && !PQgetisnull(res, 0, 0)) {
		if (strcmp(PQgetvalue(res, 0, 0), "physical")) {
			err_set(e, ERR_CONFIG, "node %s: the slot %s is a %s slot", n->spec->name, n->slot,
				PQgetvalue(res, 0, 0));
			err_hint(e, "drop it, or name another slot with 'slot = NAME' in the node's section");
			PQclear(res);
			return ERR_CONFIG;
		}
		if (!PQgetisnull(res, 0, 1))
			pg_lsn_parse(PQgetvalue(res, 0, 1), &restart);
		if (!PQgetisnull(res, 0, 2))
			restart_tli = (uint32_t)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
	}
	PQclear(res);
	if (have_cat) {
		start = ((uint64_t)last.segno + 1) * n->seg_size;
		tli = (uint32_t)last.timeline;
		/* the slot is past the archive's end (a catalog recovered from an older copy, a slot
		 * made or moved by someone else): the WAL between may still be on the server, so the
		 * archive's end is tried first; once the server says it removed it, the slot's start */
		if (n->removed && restart && restart / n->seg_size > start / n->seg_size) {
			char a[32], b[32];
			pg_lsn_format(start, a);
			pg_lsn_format(restart, b);
			logf_node(n, "warning: the archive ends at %s but the slot %s starts at %s: the WAL between is lost "
				     "(a gap until the next backup)",
				  a, n->slot, b);
			start = restart;
			tli = restart_tli ? restart_tli : tli;
		}
	} else if (restart) {
		start = restart;
		tli = restart_tli ? restart_tli : server_tli;
	} else {
		start = xlogpos;
		tli = server_tli;
	}
	start -= start % n->seg_size;
	if (tli < server_tli && (rc = timeline_of(n, server_tli, &tli, &start, 0, e)) < 0)
		return rc;
	if (tli > server_tli)
		tli = server_tli;
	reset_segment(n, tli, start);
	n->flushed = start;
	n->conn_start = start;
	n->removed = 0;
	/* the history of the timeline it starts on, when the archive lacks it (as pg_receivewal
	 * does): a start on a newer timeline than the archive's without streaming its switch (the
	 * switch point at the archive's end, a segment start), or a new node on a promoted server */
	if (tli > 1) {
		char hist[32];
		int have = 0;
		snprintf(hist, sizeof hist, "%08X.history", tli);
		if (nd) {
			struct catalog_wal h;
			pthread_mutex_lock(&n->ws->mu);
			have = catalog_wal_find(n->ws->c, nd, hist, &h, NULL) == 0;
			pthread_mutex_unlock(&n->ws->mu);
		}
		if (!have && (rc = store_history(n, tli, e)) < 0)
			return rc;
	}
	if (have_cat && tli == last.timeline && start == ((uint64_t)last.segno + 1) * n->seg_size &&
	    (rc = check_archive(n, &last, 1, e)) < 0)
		return rc;
	if ((rc = start_replication(n, e)) == 0) {
		char a[32];
		pg_lsn_format(start, a);
		logf_node(n, "streaming from %s on timeline %u (slot %s, %s)", a, tli, n->slot,
			  have_cat ? "after the last archived segment" : restart ? "the slot's restart_lsn" : "the server's position");
	}
	return rc;
}

/* The server ended the timeline (res: next timeline, its start): store its end, follow. */
static int timeline_end(struct wsnode *n, PGresult *res, struct err *e)
{
	uint32_t next;
	uint64_t next_start;
	PGresult *r2;
	int rc;
	if (PQntuples(res) != 1 || PQnfields(res) < 2 || pg_lsn_parse(PQgetvalue(res, 0, 1), &next_start) < 0)
		return err_set(e, ERR_IO, "node %s: unexpected end-of-timeline message", n->spec->name);
	next = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	while ((r2 = PQgetResult(n->conn)))
		PQclear(r2);
	logf_node(n, "timeline %u ended at %X/%X; following timeline %u", n->tli, (unsigned)(next_start >> 32),
		  (unsigned)next_start, next);
	if ((rc = store_partial(n, 1, e)) < 0)
		return rc;
	if ((rc = store_history(n, next, e)) < 0)
		return rc;
	reset_segment(n, next, next_start - next_start % n->seg_size);
	if (n->flushed > n->seg_start)
		n->flushed = n->seg_start;
	return start_replication(n, e);
}

/* Streams until an error, the end of the connection, or a stop. 1: stopped cleanly. */
static int stream(struct wsnode *n, int *got_data, struct err *e)
{
	const struct walstream_opts *o = n->ws->o;
	int rc;
	for (;;) {
		char *buf = NULL;
		int len;
		double now = util_mono();
		if (o->until_lsn && (n->flushed >= o->until_lsn || n->received >= o->until_lsn)) {
			if ((rc = store_partial(n, 0, e)) < 0)
				return rc;
			n->reached = 1;
			return 1;
		}
		if (stopping(n))
			return 1;
		if (o->partial_interval > 0 && now - n->last_partial >= o->partial_interval &&
		    (rc = store_partial(n, 0, e)) < 0)
			return rc;
		if (now - n->last_status >= STATUS_INTERVAL_S && (rc = send_status(n, e)) < 0)
			return rc;
		len = PQgetCopyData(n->conn, &buf, 1);
		if (len > 0) {
			const uint8_t *m = (const uint8_t *)buf;
			rc = 0;
			if (m[0] == 'w' && len >= 25) {
				rc = on_data(n, get64(m + 1), m + 25, (size_t)len - 25, e);
				*got_data = 1;
			} else if (m[0] == 'k' && len >= 18) {
				if (m[17])
					rc = send_status(n, e);
			}
			PQfreemem(buf);
			if (rc < 0)
				return rc;
		} else if (len == 0) {
			struct pollfd p = {.fd = PQsocket(n->conn), .events = POLLIN};
			int ms = 200;
			if (poll(&p, 1, ms) < 0 && errno != EINTR)
				return err_sys(e, ERR_IO, "node %s: poll", n->spec->name);
			if (PQconsumeInput(n->conn) == 0)
				return err_set(e, ERR_IO, "node %s: the connection broke: %s", n->spec->name,
					       PQerrorMessage(n->conn));
		} else if (len == -1) {
			/* the server ended its side (CopyDone): end ours, then read why */
			PGresult *res = PQgetResult(n->conn);
			if (PQresultStatus(res) == PGRES_COPY_IN) {
				PQclear(res);
				if (PQputCopyEnd(n->conn, NULL) <= 0 || PQflush(n->conn) < 0)
					return err_set(e, ERR_IO, "node %s: cannot end the stream: %s", n->spec->name,
						       PQerrorMessage(n->conn));
				res = PQgetResult(n->conn);
			}
			if (PQresultStatus(res) == PGRES_TUPLES_OK) {
				rc = timeline_end(n, res, e);
				PQclear(res);
				if (rc < 0)
					return rc;
				continue;
			}
			{
				char msg[600];
				if (PQresultStatus(res) == PGRES_COMMAND_OK)
					snprintf(msg, sizeof msg, "the server ended the stream");
				else if (*PQresultErrorMessage(res))
					snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
				else
					snprintf(msg, sizeof msg, "the stream ended (%s): %s", PQresStatus(PQresultStatus(res)),
						 PQerrorMessage(n->conn));
				msg[strcspn(msg, "\n")] = '\0';
				PQclear(res);
				return err_set(e, ERR_IO, "node %s: %s", n->spec->name, msg[0] ? msg : PQerrorMessage(n->conn));
			}
		} else {
			char msg[600];
			snprintf(msg, sizeof msg, "%s", PQerrorMessage(n->conn));
			msg[strcspn(msg, "\n")] = '\0';
			return err_set(e, ERR_IO, "node %s: the stream broke: %s", n->spec->name, msg);
		}
	}
}

static int fatal(int rc)
{
	return rc == ERR_EXISTS || rc == ERR_CONFIG || rc == ERR_USAGE || rc == ERR_CORRUPT || rc == ERR_AUTH ||
	       rc == ERR_INTERNAL || rc == ERR_NOMEM || rc == ERR_DB;
}

static void *node_main(void *arg)
{
	struct wsnode *n = arg;
	double backoff = 1;
	while (!stopping(n) && !n->reached) {
		struct err e;
		int got = 0, rc;
		err_clear(&e);
		rc = open_stream(n, &e);
		if (rc == 0)
			rc = stream(n, &got, &e);
		if (n->buf && !fatal(rc)) {
			/* stopping, or the server went away (it may not come back): what was received is
			 * stored before anything else */
			struct err e2;
			err_clear(&e2);
			if (store_partial(n, 0, &e2) < 0)
				logf_node(n, "the segment in progress was not stored as a partial: %s", e2.msg);
			else if (n->conn && PQstatus(n->conn) == CONNECTION_OK)
				send_status(n, NULL);
		}
		PQfinish(n->conn);
		n->conn = NULL;
		if (rc >= 0)
			continue;
		if (fatal(rc)) {
			n->rc = rc;
			n->err = e;
			n->ws->failed = 1;
			break;
		}
		if (got)
			backoff = 1;
		if (strstr(e.msg, "has already been removed"))
			n->removed = 1;
		logf_node(n, "%s; reconnecting in %.0f s%s%s", e.msg, backoff, e.hint[0] ? " HINT: " : "", e.hint);
		for (double until = util_mono() + backoff; util_mono() < until && !stopping(n);)
			usleep(100000);
		backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
	}
	return NULL;
}

int backup_walstream(struct repo *r, catalog *c, const struct walstream_node *nodes, int n,
		     const struct walstream_opts *o, struct err *e)
{
	struct ws ws;
	struct wsnode *ns = xcalloc((size_t)n, sizeof *ns);
	pthread_t *th = xcalloc((size_t)n, sizeof *th);
	int rc = 0, started = 0;
	memset(&ws, 0, sizeof ws);
	pthread_mutex_init(&ws.mu, NULL);
	ws.r = r;
	ws.c = c;
	ws.o = o;
	if (o->duration > 0)
		ws.deadline = util_mono() + o->duration;
	for (int i = 0; i < n; i++) {
		ns[i].ws = &ws;
		ns[i].spec = &nodes[i];
		if (nodes[i].slot && nodes[i].slot[0])
			snprintf(ns[i].slot, sizeof ns[i].slot, "%s", nodes[i].slot);
		else
			walstream_slot_name(nodes[i].name, ns[i].slot);
		err_clear(&ns[i].err);
	}
	for (int i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, node_main, &ns[i]) != 0) {
			rc = err_set(e, ERR_NOMEM, "cannot start a thread for node %s", nodes[i].name);
			ws.failed = 1;
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < n; i++) {
		if (ns[i].rc < 0 && rc == 0) {
			rc = ns[i].rc;
			*e = ns[i].err;
		}
		walread_free(ns[i].rd);
		free(ns[i].buf);
	}
	pthread_mutex_destroy(&ws.mu);
	free(ns);
	free(th);
	return rc;
}
