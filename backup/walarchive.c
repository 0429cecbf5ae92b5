#include "walarchive.h"
#include "walread.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/ingest.h"
#include "common/util.h"
#include "crypto/crypto.h"

static int all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || islower((unsigned char)s[i]))
			return 0;
	return 1;
}

int backup_wal_name_kind(const char *name, int64_t *timeline)
{
	size_t n = strlen(name);
	int kind = 0;
	if (n == 24 && all_hex(name, 24))
		kind = WAL_SEGMENT;
	else if (n == 32 && all_hex(name, 24) && !strcmp(name + 24, ".partial"))
		kind = WAL_PARTIAL;
	else if (n == 16 && all_hex(name, 8) && !strcmp(name + 8, ".history"))
		kind = WAL_HISTORY;
	else if (n == 40 && all_hex(name, 24) && name[24] == '.' && all_hex(name + 25, 8) && !strcmp(name + 33, ".backup"))
		kind = WAL_BACKUP;
	if (kind && timeline) {
		char tli[9];
		memcpy(tli, name, 8);
		tli[8] = '\0';
		*timeline = (int64_t)strtoll(tli, NULL, 16);
	}
	return kind;
}

/* The segment number of a segment name for a segment of size bytes; -1 when size is no segment size. */
static int64_t segno_of(const char *name, uint64_t size)
{
	char log[9], seg[9];
	if (size < (1u << 20) || size > (1u << 30) || (size & (size - 1)))
		return -1;
	memcpy(log, name + 8, 8);
	memcpy(seg, name + 16, 8);
	log[8] = seg[8] = '\0';
	return (int64_t)(strtoull(log, NULL, 16) * (0x100000000ull / size) + strtoull(seg, NULL, 16));
}

/*
 * The time index: the WAL reader (walread.h) reads the records of the segment being stored
 * and w->first_commit_us / w->last_commit_us get the first and last transaction end (commit,
 * commit prepared, abort, abort prepared) whose record ends in it, and every restore point whose
 * record ends in it is recorded (catalog_wal_restore_point_add, in the caller's transaction).
 * The segment is read alone: a record that starts in the previous segment is not seen here
 * (rare for the small commit and restore point records; reading across segments needs the
 * previous segment's tail, left for wal-stream). A segment with no transaction end keeps 0.
 */
struct wal_index_ctx {
	catalog *c;
	struct catalog_wal *w;
	struct err *e;
	int rc;
};

static void wal_segment_seen(void *ctx, const struct walread_segment *sg)
{
	struct catalog_wal *w = ((struct wal_index_ctx *)ctx)->w;
	if (sg->first_xact_us && (!w->first_commit_us || sg->first_xact_us < w->first_commit_us))
		w->first_commit_us = sg->first_xact_us;
	if (sg->last_xact_us > w->last_commit_us)
		w->last_commit_us = sg->last_xact_us;
}

static void wal_restore_point_seen(void *ctx, const struct walread_restore_point *rp)
{
	struct wal_index_ctx *x = ctx;
	if (x->rc == 0)
		x->rc = catalog_wal_restore_point_add(x->c, x->w->node, x->w->name, rp->name, rp->time_us, rp->lsn, x->e);
}

static int wal_index(catalog *c, struct catalog_wal *w, const uint8_t *data, size_t len, struct err *e)
{
	struct wal_index_ctx x = {c, w, e, 0};
	struct walread_cb cb = {NULL, wal_restore_point_seen, wal_segment_seen, &x};
	walread *rd;
	if (w->segno < 0 || !(rd = walread_new((uint32_t)w->timeline, (uint64_t)w->segno)))
		return 0;
	walread_feed(rd, data, len, &cb);
	walread_end(rd, &cb);
	walread_free(rd);
	return x.rc;
}

int backup_wal_store(struct repo *r, catalog *c, const char *catalog_file, const char *cluster, const char *node,
		     const struct wal_store_req *q, struct wal_push_result *res, struct err *e)
{
	struct catalog_wal w, old;
	struct ingest_stats acct;
	const uint8_t *data = q->data;
	size_t len = q->len;
	ingest *g = NULL;
	ingest_stream *s = NULL;
	int64_t cl, nd, content = 0;
	uint64_t size = 0;
	double t0 = util_mono();
	int kind, rc, in_tx = 0, commit_anyway = 0;
	memset(res, 0, sizeof *res);
	memset(&w, 0, sizeof w);
	memset(&acct, 0, sizeof acct);
	if (!(kind = backup_wal_name_kind(q->name, &w.timeline)))
		return err_set(e, ERR_USAGE, "%s is not the name of a WAL file (segment, .partial, .history or .backup)",
			       q->name);
	snprintf(w.name, sizeof w.name, "%s", q->name);
	crypto_sha256(data, len, w.sha256);
	res->size = w.size = len;
	w.segno = kind == WAL_SEGMENT || kind == WAL_PARTIAL ? segno_of(q->name, len) : -1;
	if (kind == WAL_SEGMENT && w.segno < 0)
		return err_set(e, ERR_USAGE, "%s: %zu bytes is not a WAL segment size (a power of two, 1 MiB to 1 GiB)",
			       q->name, len);
	if ((rc = catalog_begin(c, e)) < 0)
		goto out;
	in_tx = 1;
	if ((rc = catalog_cluster_ensure(c, cluster, &cl, e)) < 0 || (rc = catalog_node_ensure(c, cl, node, &nd, e)) < 0)
		goto out;
	w.node = nd;
	rc = catalog_wal_find(c, nd, q->name, &old, NULL);
	if (rc == 0) {
		if (old.size == w.size && !memcmp(old.sha256, w.sha256, 32)) {
			res->already = 1; /* PostgreSQL retries after a crash: the same bytes are fine */
			rc = 0;
			if (q->stream && kind == WAL_SEGMENT) /* a restarted stream: its partial is superseded */
				rc = catalog_wal_drop_partials(c, nd, w.timeline, w.segno, NULL, e);
			commit_anyway = 1;
			goto out;
		}
		if (!(q->stream && kind == WAL_PARTIAL)) {
			rc = err_set(e, ERR_EXISTS, "a different segment %s is already archived for %s/%s: refusing to "
						    "overwrite it (%llu bytes stored, %zu bytes offered)",
				     q->name, cluster, node, (unsigned long long)old.size, len);
			err_hint(e, "two servers may archive into the same node, or the server was restored without a "
				    "new timeline; give each server a node of its own, or compare the files with "
				    "'pgtimefs wal-fetch %s %s %s /tmp/%s'",
				 cluster, node, q->name, q->name);
			goto out;
		}
		/* a streamed partial that grew: replaced below */
	} else if (rc != ERR_NOTFOUND) {
		rc = catalog_wal_find(c, nd, q->name, &old, e);
		goto out;
	}
	{
		char id[80];
		if (catalog_meta_get(c, "repository", id, sizeof id) < 0 &&
		    (rc = catalog_meta_set(c, "repository", r->cfg.id, e)) < 0)
			goto out;
	}
	if ((rc = ingest_new(r, c, catalog_file, NULL, &g, e)) < 0)
		goto out;
	ingest_account(g, &acct);
	if (len) {
		if ((rc = ingest_stream_begin(g, kind == WAL_SEGMENT || kind == WAL_PARTIAL, &s, e)) < 0 ||
		    (rc = ingest_stream_write(s, data, len, e)) < 0)
			goto out;
		rc = ingest_stream_end(s, &content, &size, e);
		s = NULL;
		if (rc < 0)
			goto out;
		if (size != len) {
			rc = err_set(e, ERR_INTERNAL, "%s: stored %llu bytes of %zu", q->name, (unsigned long long)size, len);
			goto out;
		}
	}
	w.content = content;
	w.stored_us = util_now_us();
	if (q->times_given) {
		w.first_commit_us = q->first_commit_us;
		w.last_commit_us = q->last_commit_us;
		for (size_t i = 0; i < q->nrps; i++)
			if ((rc = catalog_wal_restore_point_add(c, w.node, w.name, q->rps[i].name, q->rps[i].time_us,
								 q->rps[i].lsn, e)) < 0)
				goto out;
	} else if (!q->no_index) {
		double ti = util_mono();
		if ((rc = wal_index(c, &w, data, len, e)) < 0)
			goto out;
		res->index_seconds = util_mono() - ti;
	}
	res->first_commit_us = w.first_commit_us;
	res->last_commit_us = w.last_commit_us;
	/* durable in every zone first, then recorded: exit 0 means the segment survives */
	if ((rc = ingest_flush(g, e)) < 0)
		goto out;
	if (q->stream && w.segno >= 0 &&
	    (rc = catalog_wal_drop_partials(c, nd, w.timeline, w.segno, NULL, e)) < 0)
		goto out;
	if ((rc = catalog_wal_add(c, &w, e)) < 0 || (rc = catalog_commit(c, e)) < 0)
		goto out;
	in_tx = 0;
	ingest_committed(g);
	res->new_bytes = acct.new_bytes;
	res->stored_bytes = ingest_stats(g)->stored_bytes;
out:
	ingest_stream_abort(s);
	if (in_tx) {
		if (rc == 0 && commit_anyway)
			rc = catalog_commit(c, e); /* nothing written but the cluster/node rows */
		else
			catalog_rollback(c);
	}
	ingest_free(g);
	res->seconds = util_mono() - t0;
	return rc;
}

int backup_wal_push(struct repo *r, catalog *c, const char *catalog_file, const char *cluster, const char *node,
		    const char *path, struct wal_push_result *res, struct err *e)
{
	struct wal_store_req q;
	const char *base = strrchr(path, '/');
	const char *noidx = getenv("PGTIMEFS_WAL_NO_INDEX");
	uint8_t *data = NULL;
	size_t len = 0;
	int64_t tli;
	double t0 = util_mono();
	int rc;
	memset(res, 0, sizeof *res);
	memset(&q, 0, sizeof q);
	base = base ? base + 1 : path;
	if (!backup_wal_name_kind(base, &tli))
		return err_set(e, ERR_USAGE, "%s is not the name of a WAL file (segment, .partial, .history or .backup)",
			       base);
	if ((rc = util_read_small(path, (size_t)1 << 30, &data, &len, e)) < 0)
		return rc;
	q.name = base;
	q.data = data;
	q.len = len;
	q.no_index = noidx && *noidx && strcmp(noidx, "0");
	rc = backup_wal_store(r, c, catalog_file, cluster, node, &q, res, e);
	free(data);
	res->seconds = util_mono() - t0;
	return rc;
}
