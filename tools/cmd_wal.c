/*
 * cmd_wal.c: wal-push CLUSTER NODE PATH (archive_command), wal-fetch CLUSTER NODE NAME DEST
 * (restore_command) and wal-stream CLUSTER [NODE] (continuous archiving over replication
 * connections, backup/walstream.h; runs until SIGINT/SIGTERM, exit 0 after a clean stop).
 *
 * Exit codes, as PostgreSQL reads them:
 * - wal-push: 0 only when the file is durable in every zone and recorded (or was already,
 *   with the same bytes); 1 for every failure, including a different file under a recorded
 *   name (PostgreSQL retries and logs our message each time), 2 for usage errors.
 * - wal-fetch: 0 when DEST holds the bytes; 1, silently, when the file is not archived (the
 *   server asks for files that never existed, e.g. the next timeline's history); 126 with a
 *   message for any real error (no catalog, unknown cluster or node, repository unreadable,
 *   data damaged in every zone, DEST unwritable, usage). PostgreSQL takes an exit status
 *   above 125 as fatal and stops recovery, where 1..125 would mean "not archived" and end
 *   recovery early at the wrong point, then promote: a silent loss we refuse to risk.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/cluster.h"
#include "backup/pg.h"
#include "backup/walarchive.h"
#include "backup/walstream.h"
#include "catalog/copy.h"
#include "common/json.h"
#include "common/timefmt.h"
#include "common/util.h"
#include "crypto/crypto.h"
#include "fs/file.h"
#include "tools.h"

#define WAL_FETCH_FATAL 126
#define WAL_COPY_INTERVAL_S 300

/*
 * The catalog copy policy of wal-push: a copy costs a VACUUM INTO of the whole catalog plus a
 * write to every zone, which grows with the catalog while a segment stays 16 MiB. So wal-push
 * pushes one only when its last one is older than [repository] wal-catalog-copy-interval
 * seconds (300 by default; 0: every segment; -1: never, left to the next backup). A failed
 * copy does not fail the push: the segment is durable and recorded locally.
 */
static void maybe_push_copy(struct ctx *x)
{
	const char *v = config_get(x->cfg, "repository", "wal-catalog-copy-interval");
	long interval = WAL_COPY_INTERVAL_S;
	char last[32];
	int64_t now = util_now_us(), then = 0;
	struct err e;
	err_clear(&e);
	if (v && *v && tools_parse_long(v, -1, 30L * 86400, &interval) < 0)
		fprintf(stderr, "pgtimefs: warning: %s: [repository] wal-catalog-copy-interval = %s is not a number of "
				"seconds (-1 to 2592000); %d is used\n",
			x->config_path, v, WAL_COPY_INTERVAL_S);
	if (interval < 0)
		return;
	if (catalog_meta_get(x->cat, "wal_copy_us", last, sizeof last) == 0)
		then = strtoll(last, NULL, 10);
	if (then && now - then < (int64_t)interval * 1000000 && now >= then)
		return;
	snprintf(last, sizeof last, "%lld", (long long)now);
	if (catalog_begin(x->cat, &e) < 0 || catalog_meta_set(x->cat, "wal_copy_us", last, &e) < 0 ||
	    catalog_commit(x->cat, &e) < 0) {
		catalog_rollback(x->cat);
		fprintf(stderr, "pgtimefs: warning: %s\n", e.msg);
		return;
	}
	if (catalog_copy_push(x->cat, x->repo, x->state_dir, NULL, &e) < 0)
		fprintf(stderr, "pgtimefs: warning: the WAL file is stored, but the catalog copy failed: %s\n", e.msg);
}

int cmd_wal_push(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct wal_file wf;
	struct wal_push_result res;
	int rc;
	err_clear(&e);
	if (argc != 4)
		return usage_error("usage: pgtimefs wal-push CLUSTER NODE PATH   (archive_command = 'pgtimefs "
				   "wal-push CLUSTER NODE %%p')");
	if (!tools_valid_name(argv[1]) || !tools_valid_name(argv[2]))
		return usage_error("cluster and node names must be 1 to 100 bytes, without '/' or control characters, and not 'latest', 'at', 'wal' or 'restore.json'");
	crypto_warm_up();
	if ((rc = backup_wal_open(argv[3], &wf, &e)) < 0) {
		crypto_warm_up_wait();
		return report(&e);
	}
	x->catalog_first = 1;
	rc = setup_catalog(x, 1, &e);
	crypto_warm_up_wait();
	if (rc == 0)
		rc = backup_wal_push(x->repo, x->cat, x->catalog_file, argv[1], argv[2], &wf, &res, &e);
	backup_wal_close(&wf);
	if (rc < 0)
		return report(&e);
	if (!res.already)
		maybe_push_copy(x);
	if (x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "cluster");
		json_str(&j, argv[1]);
		json_key(&j, "node");
		json_str(&j, argv[2]);
		json_key(&j, "path");
		json_str(&j, argv[3]);
		json_key(&j, "already_archived");
		json_bool(&j, res.already);
		json_key(&j, "bytes");
		json_int(&j, (int64_t)res.size);
		json_key(&j, "new_bytes");
		json_int(&j, (int64_t)res.new_bytes);
		json_key(&j, "stored_bytes");
		json_int(&j, (int64_t)res.stored_bytes);
		json_key(&j, "milliseconds");
		json_int(&j, (int64_t)(res.seconds * 1000));
		json_key(&j, "cpu_microseconds");
		json_int(&j, (int64_t)(res.cpu_seconds * 1000000));
		json_key(&j, "index_microseconds");
		json_int(&j, (int64_t)(res.index_seconds * 1000000));
		json_obj_end(&j);
		json_end(&j);
	}
	return 0;
}

/* Writes content (size bytes, SHA-256 want) to dest through a temporary name in its directory. */
static int fetch_to(struct ctx *x, const struct catalog_wal *w, const char *dest, struct err *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	fs_reader *rd = NULL;
	uint8_t *buf = NULL;
	int fd = -1, rc = 0;
	if (snprintf(tmp, sizeof tmp, "%s.pgtimefs-XXXXXX", dest) >= (int)sizeof tmp)
		return err_set(e, ERR_USAGE, "%s: path too long", dest);
	if ((fd = mkstemp(tmp)) < 0)
		return err_sys(e, ERR_IO, "cannot create a file beside %s", dest);
	if (w->size) {
		rd = fs_reader_new(x->repo, x->cat, NULL);
		rc = fs_copy_to_fd(rd, w->content, w->size, fd, e);
		fs_reader_free(rd);
		if (rc < 0)
			goto out;
	}
	/* read back what landed in the file: it must be the bytes wal-push hashed */
	buf = xmalloc(w->size ? w->size : 1);
	if (pread(fd, buf, w->size, 0) != (ssize_t)w->size) {
		rc = err_sys(e, ERR_IO, "cannot read back %s", tmp);
		goto out;
	}
	if ((rc = backup_wal_same_bytes(x->repo, x->cat, w, buf, w->size, e)) < 0)
		goto out;
	if (rc == 0) {
		rc = err_set(e, ERR_CORRUPT, "the bytes written for %s do not match the digest recorded when it was archived",
			     w->name);
		err_hint(e, "run 'pgtimefs check --read-data'");
		goto out;
	}
	rc = 0;
	if (fsync(fd) < 0) {
		rc = err_sys(e, ERR_IO, "cannot fsync %s", tmp);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = err_sys(e, ERR_IO, "cannot close %s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, dest) < 0) {
		rc = err_sys(e, ERR_IO, "cannot rename %s to %s", tmp, dest);
		goto out;
	}
	snprintf(dir, sizeof dir, "%s", dest);
	rc = util_fsync_dir(dirname(dir), e);
	tmp[0] = '\0';
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp[0])
		unlink(tmp);
	return rc;
}

static int fatal(const struct err *e)
{
	report(e);
	return WAL_FETCH_FATAL;
}

int cmd_wal_fetch(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct catalog_wal w;
	int64_t cl, nd;
	int rc;
	err_clear(&e);
	if (argc != 5) {
		usage_error("usage: pgtimefs wal-fetch CLUSTER NODE NAME DEST   (restore_command = 'pgtimefs wal-fetch "
			    "CLUSTER NODE %%f %%p')");
		return WAL_FETCH_FATAL;
	}
	if ((rc = setup_catalog(x, 0, &e)) < 0)
		return fatal(&e);
	if ((rc = catalog_cluster_find(x->cat, argv[1], &cl, &e)) < 0 ||
	    (rc = catalog_node_find(x->cat, cl, argv[2], &nd, &e)) < 0) {
		err_hint(&e, "check the cluster and node names in restore_command: no WAL was ever archived under them");
		return fatal(&e);
	}
	rc = catalog_wal_find(x->cat, nd, argv[3], &w, &e);
	if (rc == ERR_NOTFOUND)
		return 1; /* not archived: quietly, PostgreSQL probes for files that never existed */
	if (rc < 0 || (rc = fetch_to(x, &w, argv[4], &e)) < 0) {
		err_prefix(&e, "wal-fetch %s/%s %s", argv[1], argv[2], argv[3]);
		return fatal(&e);
	}
	return 0;
}

/* --- wal-stream --- */

static volatile sig_atomic_t stream_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	stream_stop = 1;
}

struct stream_out {
	struct ctx *x;
	const char *cluster;
};

static void json_time(struct json *j, const char *key, int64_t us)
{
	char buf[TIMEFMT_MAX];
	json_key(j, key);
	if (!us) {
		json_str(j, NULL);
		return;
	}
	timefmt_print(us, 1, buf);
	json_str(j, buf);
}

/* One line per stored file (with the writer lock held: the catalog copy policy of wal-push too). */
static void stream_stored(void *ctx, const struct walstream_event *ev)
{
	struct stream_out *so = ctx;
	static const char *kinds[] = {"", "segment", "partial", "history", "backup"};
	char lsn[32];
	if (!ev->already)
		maybe_push_copy(so->x);
	pg_lsn_format(ev->end_lsn, lsn);
	if (so->x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "cluster");
		json_str(&j, so->cluster);
		json_key(&j, "node");
		json_str(&j, ev->node);
		json_key(&j, "file");
		json_str(&j, ev->file);
		json_key(&j, "kind");
		json_str(&j, kinds[ev->kind >= 0 && ev->kind <= 4 ? ev->kind : 0]);
		json_key(&j, "final");
		json_bool(&j, ev->final);
		json_key(&j, "bytes");
		json_int(&j, (int64_t)ev->size);
		json_key(&j, "received_bytes");
		json_int(&j, (int64_t)ev->received);
		json_key(&j, "end_lsn");
		json_str(&j, ev->end_lsn ? lsn : NULL);
		json_key(&j, "new_bytes");
		json_int(&j, (int64_t)ev->new_bytes);
		json_key(&j, "already_archived");
		json_bool(&j, ev->already);
		json_key(&j, "received_us");
		json_int(&j, ev->received_us);
		json_key(&j, "stored_us");
		json_int(&j, ev->stored_us);
		json_time(&j, "first_commit", ev->first_commit_us);
		json_time(&j, "last_commit", ev->last_commit_us);
		json_key(&j, "milliseconds");
		json_int(&j, (int64_t)(ev->seconds * 1000));
		json_obj_end(&j);
		json_end(&j);
	} else if (!so->x->quiet && ev->kind != WAL_PARTIAL) {
		printf("%s/%s: %s stored (%llu bytes, %llu new, %.2f s)\n", so->cluster, ev->node, ev->file,
		       (unsigned long long)ev->size, (unsigned long long)ev->new_bytes, ev->seconds);
	}
	fflush(stdout);
}

/* The value of key in the [node CLUSTER/NODE] section, or NULL. */
static const char *node_key(struct ctx *x, const char *cluster, const char *node, const char *key)
{
	for (size_t i = 0; i < config_nsections(x->cfg); i++) {
		const char *sec = config_section(x->cfg, i), *a = sec;
		if (strncmp(a, "node", 4) || (a[4] != ' ' && a[4] != '\t'))
			continue;
		for (a += 4; *a == ' ' || *a == '\t'; a++)
			;
		if (!strncmp(a, cluster, strlen(cluster)) && a[strlen(cluster)] == '/' &&
		    !strcmp(a + strlen(cluster) + 1, node))
			return config_get(x->cfg, sec, key);
	}
	return NULL;
}

int cmd_wal_stream(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct backup_node_spec *specs = NULL;
	struct walstream_node *wn = NULL;
	struct walstream_opts o;
	struct stream_out so;
	struct sigaction sa, old_int, old_term;
	const char *cluster = NULL, *only = NULL, *v;
	char sec[300];
	int n = 0, k = 0, rc;
	err_clear(&e);
	memset(&o, 0, sizeof o);
	o.partial_interval = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--partial-interval") && i + 1 < argc) {
			if (tools_parse_seconds(argv[++i], 0, 86400, &o.partial_interval) < 0)
				return usage_error("--partial-interval takes seconds (like 5, 30s or 1m; 0 stores no .partial), "
						   "not '%s'",
						   argv[i]);
		} else if (!strcmp(argv[i], "--duration") && i + 1 < argc) {
			if (tools_parse_seconds(argv[++i], 0.001, 1e9, &o.duration) < 0)
				return usage_error("--duration takes seconds (like 60, 10m or 2h), not '%s'", argv[i]);
		}
		else if (!strcmp(argv[i], "--until-lsn") && i + 1 < argc) {
			if (pg_lsn_parse(argv[++i], &o.until_lsn) < 0)
				return usage_error("--until-lsn takes an LSN like 0/3000000, not '%s'", argv[i]);
		} else if (argv[i][0] == '-')
			return usage_error("wal-stream: unknown option %s", argv[i]);
		else if (!cluster)
			cluster = argv[i];
		else if (!only)
			only = argv[i];
		else
			return usage_error("usage: pgtimefs wal-stream CLUSTER [NODE] [--partial-interval S] [--until-lsn LSN] "
					   "[--duration S]");
	}
	if (!cluster)
		return usage_error("usage: pgtimefs wal-stream CLUSTER [NODE] [--partial-interval S] [--until-lsn LSN] "
				   "[--duration S]");
	if ((rc = setup_config(x, &e)) < 0)
		return report(&e);
	if ((rc = config_cluster_nodes(x, cluster, &specs, &n, &e)) < 0)
		return report(&e);
	wn = xcalloc((size_t)n, sizeof *wn);
	for (int i = 0; i < n; i++) {
		if (only && strcmp(specs[i].name, only))
			continue;
		wn[k].name = specs[i].name;
		wn[k].conninfo = specs[i].conninfo;
		wn[k].slot = node_key(x, cluster, specs[i].name, "slot");
		k++;
	}
	if (!k) {
		err_set(&e, ERR_CONFIG, "cluster %s has no node %s in %s", cluster, only, x->config_path);
		err_hint(&e, "add a [node %s/%s] section with its conninfo", cluster, only);
		rc = report(&e);
		goto out;
	}
	if (o.partial_interval < 0) {
		snprintf(sec, sizeof sec, "cluster %s", cluster);
		v = config_get(x->cfg, sec, "wal-partial-interval");
		o.partial_interval = 5;
		if (v && *v && tools_parse_seconds(v, 0, 86400, &o.partial_interval) < 0) {
			err_set(&e, ERR_CONFIG, "%s: [%s] wal-partial-interval = %s: give seconds (like 5, 30s or 1m)",
				x->config_path, sec, v);
			rc = report(&e);
			goto out;
		}
	}
	/* open once (scrypt is slow); the writer lock only to open (and migrate) the catalog */
	if ((rc = setup_catalog(x, 1, &e)) < 0) {
		rc = report(&e);
		goto out;
	}
	catalog_writer_unlock(x->lock_fd);
	x->lock_fd = -1;
	o.cluster = cluster;
	o.state_dir = x->state_dir;
	o.catalog_file = x->catalog_file;
	v = getenv("PGTIMEFS_WAL_NO_INDEX");
	o.no_index = v && *v && strcmp(v, "0");
	o.stop = &stream_stop;
	o.on_store = stream_stored;
	so.x = x;
	so.cluster = cluster;
	o.ctx = &so;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	rc = backup_walstream(x->repo, x->cat, wn, k, &o, &e);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	rc = rc < 0 ? report(&e) : 0;
out:
	free(wn);
	free(specs);
	return rc;
}
