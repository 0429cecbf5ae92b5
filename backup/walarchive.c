#include "walarchive.h"
#include "walread.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/ingest.h"
#include "backup/pg.h"
#include "common/util.h"
#include "crypto/crypto.h"
#include "store/pack.h"
#include "store/reader.h"

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

#define VERIFY_PIECES 64

/* Whether the len bytes at data are all zero. */
static int all_zero(const uint8_t *data, size_t len)
{
	return len == 0 || (data[0] == 0 && !memcmp(data, data + 1, len - 1));
}

/*
 * Whether the chunk piece p holds the len bytes at data: 1 yes, 0 no, < 0 when the stored blob
 * cannot be read. An encoded id depends on the zstd library that made it, so the blob is
 * decoded and compared rather than the offered bytes encoded again.
 */
/* the bytes of the stored piece p (not a hole) into *buf (grown to *cap as needed); *codec is
 * made at the first piece */
static int piece_bytes(const struct repo *r, pack_codec **codec, uint8_t **buf, size_t *cap,
		       const struct content_piece *p, struct err *e)
{
	if (p->loc.raw != p->len)
		return err_set(e, ERR_CORRUPT, "catalog: a chunk of %u bytes stands for a piece of %u", p->loc.raw, p->len);
	if (!*codec)
		*codec = pack_codec_new(r->cfg.zstd_level);
	if (*cap < p->len) {
		free(*buf);
		*buf = xmalloc(p->len);
		*cap = p->len;
	}
	return store_read_blob(r, *codec, &p->loc, *buf, NULL, e);
}

int backup_wal_extent(const struct repo *r, catalog *c, const struct catalog_wal *w, uint64_t *extent, struct err *e)
{
	struct content_piece *pc = NULL;
	pack_codec *codec = NULL;
	uint8_t *buf = NULL;
	size_t np = 0, cap = 0, bufcap = 0;
	uint64_t pos = 0;
	int rc = 0;
	*extent = 0;
	/* every piece (a segment has a few dozen), then from the last one back to the first that
	 * holds a non-zero byte: zeros are holes or a chunk of zeros like any other */
	while (w->content && pos < w->size) {
		size_t n = 0;
		if (np + VERIFY_PIECES > cap) {
			cap = cap ? 2 * cap : 2 * VERIFY_PIECES;
			pc = xrealloc(pc, cap * sizeof *pc);
		}
		if ((rc = catalog_content_pieces(c, w->content, pos, pc + np, VERIFY_PIECES, &n, e)) < 0)
			goto out;
		if (n == 0)
			break;
		pos = pc[np + n - 1].off + pc[np + n - 1].len;
		np += n;
	}
	for (size_t k = np; k-- > 0 && !*extent;) {
		const struct content_piece *p = &pc[k];
		if (!p->chunk)
			continue;
		if ((rc = piece_bytes(r, &codec, &buf, &bufcap, p, e)) < 0)
			goto out;
		for (size_t i = p->len; i > 0; i--)
			if (buf[i - 1]) {
				*extent = p->off + i;
				break;
			}
	}
out:
	free(buf);
	pack_codec_free(codec);
	free(pc);
	return rc < 0 ? rc : 0;
}

int backup_wal_same_bytes(const struct repo *r, catalog *c, const struct catalog_wal *w, const uint8_t *data,
			  size_t len, struct err *e)
{
	struct content_piece *pc;
	crypto_hasher *h = NULL;
	pack_codec *codec = NULL;
	crypto_sha *sha;
	uint8_t id[CRYPTO_ID_LEN], hash[32], *buf = NULL;
	size_t cap = 0;
	uint64_t pos = 0;
	int rc = 1;
	if (w->size != len)
		return 0;
	if (w->digest == WAL_DIGEST_SHA256 || !w->content) {
		crypto_sha256(data, len, hash);
		return w->digest == WAL_DIGEST_SHA256 && !memcmp(hash, w->sha256, 32);
	}
	if (w->digest != WAL_DIGEST_CONTENT && w->digest != WAL_DIGEST_ENCODED)
		return err_set(e, ERR_CORRUPT, "catalog: WAL file %s has an unknown digest kind %d", w->name, w->digest);
	pc = xcalloc(VERIFY_PIECES, sizeof *pc);
	if (w->digest == WAL_DIGEST_CONTENT)
		h = crypto_hasher_new(r->key);
	sha = crypto_sha_new();
	while (rc == 1 && pos < len) {
		size_t n = 0;
		if ((rc = catalog_content_pieces(c, w->content, pos, pc, VERIFY_PIECES, &n, e)) < 0)
			break;
		rc = 1;
		if (n == 0) {
			rc = err_set(e, ERR_CORRUPT, "catalog: the content list of WAL file %s ends at byte %llu of %zu",
				     w->name, (unsigned long long)pos, len);
			break;
		}
		for (size_t i = 0; i < n && rc == 1; i++) {
			const struct content_piece *p = &pc[i];
			if (p->off != pos || p->len == 0 || p->len > len - pos) {
				rc = err_set(e, ERR_CORRUPT, "catalog: the content list of WAL file %s is not contiguous at "
							     "byte %llu", w->name, (unsigned long long)pos);
				break;
			}
			if (!p->chunk) {
				if (!all_zero(data + pos, p->len))
					rc = 0;
			} else if (!h) { /* WAL_DIGEST_ENCODED: the stored blob decoded and compared */
				if ((rc = piece_bytes(r, &codec, &buf, &cap, p, e)) < 0)
					break;
				rc = !memcmp(buf, data + pos, p->len);
			} else {
				crypto_hasher_id(h, data + pos, p->len, id);
				if (memcmp(id, p->loc.id, CRYPTO_ID_LEN))
					rc = 0;
			}
			ingest_content_hash_piece(sha, p->len, p->chunk ? p->loc.id : NULL);
			pos += p->len;
		}
	}
	if (rc == 1) { /* every piece matched: the list must also be the one the row names */
		ingest_content_hash_end(sha, len, hash);
		if (memcmp(hash, w->sha256, 32))
			rc = err_set(e, ERR_CORRUPT, "catalog: the content list of WAL file %s does not have the "
						     "hash its row records", w->name);
	}
	crypto_sha_free(sha);
	crypto_hasher_free(h);
	pack_codec_free(codec);
	free(buf);
	free(pc);
	return rc;
}

/*
 * The time index: the WAL reader (walread.h) reads the records of the segment being stored
 * and w->first_commit_us / w->last_commit_us get the earliest and latest transaction end (commit,
 * commit prepared, abort, abort prepared) whose record ends in it, and every restore point whose
 * record ends in it is recorded (catalog_wal_restore_point_add, in the caller's transaction).
 * A record that starts in the previous segment (the first page says it goes on there) is read
 * whole when that segment is archived (of the timeline in the first page's header: a new
 * timeline's first segment begins with its parent's pages): the reader is fed the end of that
 * segment first (wal_index_tail: its last 64 KiB, or up to 16 MiB for a longer record) with no
 * callbacks, so only what ends in this segment is reported. A record that began more than
 * 16 MiB before the boundary, or one whose previous segment is not archived, is not seen.
 * A segment with no transaction end keeps 0.
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

/* bytes of the previous segment read before a segment whose first record began there, tried
 * in turn until the record's start is among them: most records are short, a commit of many
 * subtransactions (4 bytes each) can be long; the last is read in WAL_TAIL_STEP pieces */
static const uint64_t wal_tails[] = {(uint64_t)64 << 10, (uint64_t)1 << 20, (uint64_t)16 << 20};
#define WAL_TAIL_STEP ((size_t)1 << 20)

/* [off, off + len) of a stored content into out (holes are zeros) */
static int read_range(const struct repo *r, catalog *c, int64_t content, uint64_t off, size_t len, uint8_t *out,
		      struct err *e)
{
	struct content_piece pc[8];
	pack_codec *codec = NULL;
	uint8_t *buf = NULL;
	size_t cap = 0, n, done = 0;
	int rc = 0;
	memset(out, 0, len);
	while (done < len && rc == 0) {
		if ((rc = catalog_content_pieces(c, content, off + done, pc, 8, &n, e)) < 0 || n == 0)
			break;
		for (size_t i = 0; i < n && done < len && rc == 0; i++) {
			const struct content_piece *p = &pc[i];
			uint64_t from = off + done, to = p->off + p->len < off + len ? p->off + p->len : off + len;
			if (to <= from)
				continue;
			if (p->chunk) {
				if ((rc = piece_bytes(r, &codec, &buf, &cap, p, e)) < 0)
					break;
				memcpy(out + done, buf + (from - p->off), (size_t)(to - from));
			}
			done += (size_t)(to - from);
		}
	}
	free(buf);
	pack_codec_free(codec);
	if (rc == 0 && done < len)
		rc = err_set(e, ERR_CORRUPT, "catalog: the content list ends at %llu, before %llu",
			     (unsigned long long)(off + done), (unsigned long long)(off + len));
	return rc;
}

/*
 * When segment w (its first page in data) begins inside a record that started in the previous
 * segment, and that segment of the same timeline is archived, ix's reader starts at the end of
 * that segment instead of at w (0), so the record is read whole: first its last 64 KiB, then,
 * when the record began before them, its last 1 MiB and 16 MiB (wal_tails). Best effort:
 * anything that cannot be read leaves the reader as it was (the record is then not seen).
 */
static void wal_index_tail(struct wal_index_ctx *x, walread **rd, const struct repo *r, const uint8_t *data,
			   size_t len)
{
	struct catalog_wal pw;
	char name[25];
	uint32_t seg_size, page_size, tli;
	uint8_t *buf = NULL;
	size_t cap = 0;
	struct err e;
	if (len < 40 || (data[0] | data[1] << 8) != 0xD110 || !((data[2] | data[3] << 8) & 0x0001) ||
	    !(data[16] | data[17] | data[18] | data[19]) || x->w->segno <= 0)
		return; /* not a PostgreSQL 15 page, no continuation, or the first segment there is */
	memcpy(&tli, data + 4, 4); /* xlp_tli: the parent's in a new timeline's first segment */
	memcpy(&seg_size, data + 32, 4);
	memcpy(&page_size, data + 36, 4);
	tli = le32toh(tli);
	seg_size = le32toh(seg_size);
	page_size = le32toh(page_size);
	if (seg_size != len || seg_size < wal_tails[0] * 2)
		return;
	err_clear(&e);
	pg_wal_name(tli, ((uint64_t)x->w->segno - 1) * seg_size, seg_size, name);
	if (catalog_wal_find(x->c, x->w->node, name, &pw, NULL) < 0 || pw.size != seg_size || !pw.content)
		return;
	for (size_t i = 0; i < sizeof wal_tails / sizeof *wal_tails; i++) {
		uint64_t tail = wal_tails[i] < seg_size ? wal_tails[i] : seg_size, done = 0;
		walread *t = walread_new_at(tli, (uint64_t)pw.segno, seg_size, page_size, seg_size - tail);
		if (!t)
			break;
		if (cap < (tail < WAL_TAIL_STEP ? tail : WAL_TAIL_STEP)) { /* 64 KiB for most pushes */
			free(buf);
			cap = tail < WAL_TAIL_STEP ? (size_t)tail : WAL_TAIL_STEP;
			buf = xmalloc(cap);
		}
		while (done < tail) {
			size_t n = tail - done < WAL_TAIL_STEP ? (size_t)(tail - done) : WAL_TAIL_STEP;
			if (read_range(r, x->c, pw.content, seg_size - tail + done, n, buf, &e) < 0)
				break;
			walread_feed(t, buf, n, NULL); /* what ends there was counted with it */
			done += n;
		}
		if (done < tail) {
			fprintf(stderr, "pgtimefs: warning: %s: the end of the archived %s cannot be read (%s): a "
					"record that begins there and ends in %s is not in the time index\n",
				x->w->name, name, e.msg, x->w->name);
			walread_free(t);
			break;
		}
		if (walread_in_record(t)) {
			walread_free(*rd);
			*rd = t;
			break;
		}
		walread_free(t); /* the record began before these bytes: more of them */
		if (tail == seg_size)
			break;
	}
	free(buf);
}

/* The bytes are fed in pieces, between the pieces handed to the ingest workers (see below). */
struct wal_index {
	struct wal_index_ctx x;
	struct walread_cb cb;
	walread *rd;
	double seconds;
};

static void wal_index_begin(struct wal_index *ix, const struct repo *r, catalog *c, struct catalog_wal *w,
			    const uint8_t *data, size_t len, struct err *e)
{
	memset(ix, 0, sizeof *ix);
	ix->x.c = c;
	ix->x.w = w;
	ix->x.e = e;
	ix->cb.restore_point = wal_restore_point_seen;
	ix->cb.segment = wal_segment_seen;
	ix->cb.ctx = &ix->x;
	if (w->segno >= 0) {
		double t = util_thread_cpu();
		ix->rd = walread_new((uint32_t)w->timeline, (uint64_t)w->segno);
		if (ix->rd)
			wal_index_tail(&ix->x, &ix->rd, r, data, len);
		ix->seconds += util_thread_cpu() - t;
	}
}

static void wal_index_feed(struct wal_index *ix, const uint8_t *data, size_t len)
{
	double t = util_thread_cpu();
	if (ix->rd)
		walread_feed(ix->rd, data, len, &ix->cb);
	ix->seconds += util_thread_cpu() - t;
}

/* Ends the reader (if any); the first error a restore point's row met. */
static int wal_index_end(struct wal_index *ix)
{
	double t = util_thread_cpu();
	if (ix->rd) {
		walread_end(ix->rd, &ix->cb);
		walread_free(ix->rd);
		ix->rd = NULL;
	}
	ix->seconds += util_thread_cpu() - t;
	return ix->x.rc;
}

/*
 * Bytes go to the ingest in pieces of this size, borrowed (the caller's bytes stay put until
 * the stream ends: no copy); between two pieces this thread feeds the piece to the WAL
 * reader, while the ingest's workers hash, compress and seal the pieces before it. The row's
 * digest is the content hash the ingest computes from the blob ids: no pass of its own.
 */
#define WAL_PIECE ((size_t)1 << 20)

int backup_wal_history_parse(const uint8_t *data, size_t len, int64_t tli,
			     int (*cb)(void *ctx, int64_t parent, uint64_t end_lsn), void *ctx)
{
	char line[128];
	int64_t last = -1;
	int n = 0;
	for (size_t i = 0, end; i < len; i = end) {
		size_t p, k = 0;
		unsigned int parent, hi, lo;
		/* one fgets() of PostgreSQL's readTimeLineHistory: through the newline, 1023 bytes at most
		 * (the rest of a longer line is read as a line of its own) */
		for (end = i; end < len && end - i < 1023;)
			if (data[end++] == '\n')
				break;
		for (p = i; p < end && isspace(data[p]); p++)
			;
		if (p == end || data[p] == '#')
			continue;
		while (p < end && k < sizeof line - 1) /* the numbers come first: the reason may be cut */
			line[k++] = (char)data[p++];
		line[k] = '\0';
		/* as PostgreSQL: parents increase (the first may be any), each below tli */
		if (sscanf(line, "%u\t%X/%X", &parent, &hi, &lo) != 3 || (int64_t)parent <= last || parent >= tli)
			return -1;
		last = parent;
		n++;
		if (cb && cb(ctx, parent, (uint64_t)hi << 32 | lo))
			return -2;
	}
	return n;
}

struct history_rows {
	catalog *c;
	int64_t node, tli;
	struct err *e;
	int rc;
};

static int history_row(void *ctx, int64_t parent, uint64_t end_lsn)
{
	struct history_rows *h = ctx;
	return (h->rc = catalog_wal_history_add(h->c, h->node, h->tli, parent, end_lsn, h->e)) < 0;
}

int backup_wal_history_record(catalog *c, const struct catalog_wal *w, const uint8_t *data, size_t len,
			      const char *where, struct err *e)
{
	struct history_rows h = {c, w->node, w->timeline, e, 0};
	if (backup_wal_history_parse(data, len, w->timeline, NULL, NULL) > 0) /* all lines or none */
		return backup_wal_history_parse(data, len, w->timeline, history_row, &h) == -2 ? h.rc : 0;
	if (w->timeline <= 1)
		return 0;
	fprintf(stderr, "pgtimefs: warning: %s: %s is not a timeline history PostgreSQL can read (recovery stops "
			"on it): it is stored, and the window will not follow timeline %lld\n",
		where, w->name, (long long)w->timeline);
	return catalog_wal_history_add(c, w->node, w->timeline, 0, CATALOG_TLI_UNREADABLE, e);
}

int backup_wal_history_backfill(const struct repo *r, catalog *c, struct err *e)
{
	struct catalog_wal w[16];
	char v[8], node[128], where[160];
	int64_t after = 0, cl;
	size_t n = 0;
	int rc, unread = 0;
	if (catalog_meta_get(c, "history-lines", v, sizeof v) == 0)
		return 0;
	if ((rc = catalog_begin(c, e)) < 0)
		return rc;
	do {
		if ((rc = catalog_wal_histories_unread(c, after, w, 16, &n, e)) < 0)
			break;
		for (size_t i = 0; i < n && rc == 0; i++) {
			uint8_t *buf = NULL;
			struct err re;
			after = w[i].id;
			err_clear(&re);
			if (catalog_node_get(c, w[i].node, &cl, node, NULL) < 0)
				snprintf(node, sizeof node, "%lld", (long long)w[i].node);
			snprintf(where, sizeof where, "node %s", node);
			if (w[i].size && w[i].size <= (1u << 20)) { /* a history is a line per ancestor */
				buf = xmalloc(w[i].size);
				if (read_range(r, c, w[i].content, 0, w[i].size, buf, &re) < 0) {
					fprintf(stderr, "pgtimefs: warning: %s: cannot read the archived %s (%s): the window "
							"cannot check which timelines it descends from until it can (the next "
							"writer tries again); run 'pgtimefs check --read-data'\n",
						where, w[i].name, re.msg);
					unread = 1;
					free(buf);
					continue;
				}
			}
			rc = backup_wal_history_record(c, &w[i], buf, buf ? w[i].size : 0, where, e);
			free(buf);
		}
	} while (rc == 0 && n == 16);
	if (rc == 0 && (unread || (rc = catalog_meta_set(c, "history-lines", "1", e)) == 0))
		return catalog_commit(c, e);
	catalog_rollback(c);
	return rc;
}

int backup_wal_store(struct repo *r, catalog *c, const char *catalog_file, const char *cluster, const char *node,
		     const struct wal_store_req *q, struct wal_push_result *res, struct err *e)
{
	struct catalog_wal w, old;
	struct ingest_stats acct;
	struct wal_index ix;
	const uint8_t *data = q->data;
	size_t len = q->len;
	ingest *g = NULL;
	ingest_stream *s = NULL;
	int64_t cl, nd, content = 0;
	uint64_t size = 0;
	double t0 = util_mono(), c0 = util_process_cpu();
	int kind, rc, in_tx = 0, commit_anyway = 0, indexing = 0;
	char where[300];
	snprintf(where, sizeof where, "%s/%s", cluster, node);
	memset(res, 0, sizeof *res);
	memset(&w, 0, sizeof w);
	memset(&acct, 0, sizeof acct);
	memset(&ix, 0, sizeof ix);
	if (!(kind = backup_wal_name_kind(q->name, &w.timeline)))
		return err_set(e, ERR_USAGE, "%s is not the name of a WAL file (segment, .partial, .history or .backup)",
			       q->name);
	snprintf(w.name, sizeof w.name, "%s", q->name);
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
		/* the name is archived already: compare the bytes with what its row records */
		rc = backup_wal_same_bytes(r, c, &old, data, len, e);
		if (rc < 0 && q->stream && kind == WAL_PARTIAL) {
			/* a streamed partial that cannot be read back is replaced all the same */
			fprintf(stderr, "pgtimefs: warning: %s/%s: the stored %s cannot be read (%s): replacing it\n", cluster,
				node, q->name, e ? e->msg : "");
			err_clear(e);
			rc = 0;
		}
		if (rc < 0) {
			err_prefix(e, "%s is archived already for %s/%s, and its stored bytes cannot be compared", q->name,
				   cluster, node);
			goto out;
		}
		if (rc == 1) {
			res->already = 1; /* PostgreSQL retries after a crash: the same bytes are fine */
			rc = 0;
			if (kind == WAL_HISTORY) { /* archived before schema 9: its ancestry now */
				if ((rc = backup_wal_history_record(c, &old, data, len, where, e)) < 0)
					goto out;
			}
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
	if (!q->times_given && !q->no_index) {
		wal_index_begin(&ix, r, c, &w, data, len, e);
		indexing = 1;
	}
	if (len && (rc = ingest_stream_begin(g, kind == WAL_SEGMENT || kind == WAL_PARTIAL, &s, e)) < 0)
		goto out;
	if (s)
		ingest_stream_set_wal(s);
	for (size_t off = 0; off < len; off += WAL_PIECE) {
		size_t n = len - off < WAL_PIECE ? len - off : WAL_PIECE;
		if ((rc = ingest_stream_write_borrowed(s, data + off, n, e)) < 0)
			goto out;
		if (indexing)
			wal_index_feed(&ix, data + off, n);
	}
	if (indexing) {
		indexing = 0;
		if ((rc = wal_index_end(&ix)) < 0)
			goto out;
		res->index_seconds = ix.seconds;
	}
	if (len) { /* the row's digest is the content hash: no pass over the bytes of its own */
		rc = ingest_stream_end_hash(s, &content, &size, w.sha256, e);
		s = NULL;
		if (rc < 0)
			goto out;
		w.digest = WAL_DIGEST_ENCODED;
	} else {
		crypto_sha256(data, 0, w.sha256);
		w.digest = WAL_DIGEST_SHA256;
	}
	if (size != len) {
		rc = err_set(e, ERR_INTERNAL, "%s: stored %llu bytes of %zu", q->name, (unsigned long long)size, len);
		goto out;
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
	}
	res->first_commit_us = w.first_commit_us;
	res->last_commit_us = w.last_commit_us;
	/* durable in every zone first, then recorded: exit 0 means the segment survives */
	if ((rc = ingest_flush(g, e)) < 0)
		goto out;
	if (q->stream && w.segno >= 0 &&
	    (rc = catalog_wal_drop_partials(c, nd, w.timeline, w.segno, NULL, e)) < 0)
		goto out;
	if (kind == WAL_HISTORY && (rc = backup_wal_history_record(c, &w, data, len, where, e)) < 0)
		goto out;
	if ((rc = catalog_wal_add(c, &w, e)) < 0 || (rc = catalog_commit(c, e)) < 0)
		goto out;
	in_tx = 0;
	ingest_committed(g);
	res->new_bytes = acct.new_bytes;
	res->stored_bytes = ingest_stats(g)->stored_bytes;
out:
	if (indexing) /* the error stands: no callbacks (catalog rows) on the way out */
		walread_free(ix.rd);
	ingest_stream_abort(s);
	if (in_tx) {
		if (rc == 0 && commit_anyway)
			rc = catalog_commit(c, e); /* nothing written but the cluster/node rows */
		else
			catalog_rollback(c);
	}
	ingest_free(g);
	res->seconds = util_mono() - t0;
	res->cpu_seconds = util_process_cpu() - c0;
	return rc;
}

/*
 * Maps the file to push (read-only, populated): PostgreSQL has just written it, so its pages
 * are in the page cache, and a mapping hashes and chunks them where they are instead of
 * copying 16 MiB into fresh memory first. PostgreSQL does not change a file while its
 * archive_command runs. A page of the mapping that cannot be read (the file truncated by
 * someone else, a disk error re-reading an evicted page) raises SIGBUS in whichever thread
 * touches it: while the mapping is in use, on_sigbus says so and exits 1 (nothing is recorded:
 * the catalog transaction never commits; PostgreSQL retries the push).
 */
static void on_sigbus(int sig)
{
	static const char msg[] = "pgtimefs: wal-push: the file being pushed could not be read (truncated, or a "
				  "read error): nothing was recorded\nHINT: check the file and the disk; PostgreSQL "
				  "retries the push\n";
	(void)sig;
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

static int map_file(const char *path, void **data, size_t *len, struct err *e)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*data = NULL;
	*len = 0;
	if (fd < 0)
		return err_sys(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot open %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int rc = err_set(e, ERR_IO, "%s is not a regular file", path);
		close(fd);
		return rc;
	}
	if (st.st_size > (off_t)1 << 30) {
		close(fd);
		return err_set(e, ERR_USAGE, "%s is %lld bytes: larger than any WAL file (1 GiB)", path,
			       (long long)st.st_size);
	}
	if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (p == MAP_FAILED) {
			int rc = err_sys(e, ERR_IO, "cannot map %s", path);
			close(fd);
			return rc;
		}
		*data = p;
		*len = (size_t)st.st_size;
	}
	close(fd);
	return 0;
}

int backup_wal_open(const char *path, struct wal_file *f, struct err *e)
{
	const char *base = strrchr(path, '/');
	int64_t tli;
	memset(f, 0, sizeof *f);
	base = base ? base + 1 : path;
	if (!backup_wal_name_kind(base, &tli))
		return err_set(e, ERR_USAGE, "%s is not the name of a WAL file (segment, .partial, .history or .backup)",
			       base);
	f->name = base;
	return map_file(path, &f->data, &f->len, e);
}

void backup_wal_close(struct wal_file *f)
{
	if (f->len)
		munmap(f->data, f->len);
	memset(f, 0, sizeof *f);
}

int backup_wal_push(struct repo *r, catalog *c, const char *catalog_file, const char *cluster, const char *node,
		    const struct wal_file *f, struct wal_push_result *res, struct err *e)
{
	struct wal_store_req q;
	const char *noidx = getenv("PGTIMEFS_WAL_NO_INDEX");
	int rc;
	memset(res, 0, sizeof *res);
	memset(&q, 0, sizeof q);
	q.name = f->name;
	q.data = f->data;
	q.len = f->len;
	q.no_index = noidx && *noidx && strcmp(noidx, "0");
	{
		struct sigaction sa, old_sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_sigbus;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &old_sa);
		rc = backup_wal_store(r, c, catalog_file, cluster, node, &q, res, e);
		sigaction(SIGBUS, &old_sa, NULL);
	}
	return rc;
}
