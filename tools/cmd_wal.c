/*
 * cmd_wal.c: wal-push CLUSTER NODE PATH (archive_command) and wal-fetch CLUSTER NODE NAME DEST
 * (restore_command).
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
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/walarchive.h"
#include "catalog/copy.h"
#include "common/json.h"
#include "common/util.h"
#include "crypto/crypto.h"
#include "fs/file.h"
#include "tools.h"

#define WAL_FETCH_FATAL 126
#define WAL_COPY_INTERVAL_S 300

static int valid_name(const char *s)
{
	if (!*s || strlen(s) > 100 || !strcmp(s, ".") || !strcmp(s, "..") || !strcmp(s, "latest") ||
	    !strcmp(s, "at") || !strcmp(s, "wal"))
		return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

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
	long interval = v && *v ? strtol(v, NULL, 10) : WAL_COPY_INTERVAL_S;
	char last[32];
	int64_t now = util_now_us(), then = 0;
	struct err e;
	err_clear(&e);
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
	struct wal_push_result res;
	int rc;
	err_clear(&e);
	if (argc != 4)
		return usage_error("usage: pgtimefs wal-push CLUSTER NODE PATH   (archive_command = 'pgtimefs "
				   "wal-push CLUSTER NODE %%p')");
	if (!valid_name(argv[1]) || !valid_name(argv[2]))
		return usage_error("cluster and node names must be non-empty, without '/', and not 'latest', 'at' or 'wal'");
	if ((rc = setup_catalog(x, 1, &e)) < 0)
		return report(&e);
	if ((rc = backup_wal_push(x->repo, x->cat, x->catalog_file, argv[1], argv[2], argv[3], &res, &e)) < 0)
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
	uint8_t *buf = NULL, got[32];
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
	crypto_sha256(buf, w->size, got);
	if (memcmp(got, w->sha256, 32)) {
		rc = err_set(e, ERR_CORRUPT, "the stored bytes of %s do not match the SHA-256 recorded when it was archived",
			     w->name);
		err_hint(e, "run 'pgtimefs check --read-data'");
		goto out;
	}
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
