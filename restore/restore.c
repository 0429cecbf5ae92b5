/* restore.c: `pgtimefs restore`, the steps in restore.h. */
#include "restore.h"
#include "walscan.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/progress.h"
#include "common/timefmt.h"
#include "common/util.h"
#include "copy.h"
#include "manifest.h"
#include "pgsetup.h"
#include "proc.h"

#define MARKER "RESTORE-INCOMPLETE"
#define CLUSTER_CONF "pgtimefs-cluster.conf"
#define FIRST_PORT 5433
#define LAST_PORT 65000

struct node_job {
	pthread_t thread;
	char src[RESTORE_PATH_MAX + 512];
	char dst[RESTORE_PATH_MAX + 512];
	struct restore_copy_opts copy;
	struct restore_tree_stats size, copied;
	struct restore_recovery rec;
	struct err e;
	int rc;
	atomic_int finished;
};

static void note_f(const struct restore_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_f(const struct restore_opts *o, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	if (!o->note)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	o->note(line);
}

static void *copy_main(void *arg)
{
	struct node_job *j = arg;
	j->rc = restore_copy_tree(j->src, j->dst, &j->copy, &j->copied, &j->e);
	atomic_store(&j->finished, 1);
	return NULL;
}

/* Whether err says the FUSE mount's process is gone: ENOTCONN, or ECONNABORTED while the
 * kernel is still tearing the connection down */
static int gone(int err)
{
	return err == ENOTCONN || err == ECONNABORTED;
}

/* The error for a FUSE mount whose process is gone (ENOTCONN). */
static int dead_mount(const char *mount, struct err *e)
{
	err_set(e, ERR_IO, "the mount at %s is dead (Transport endpoint is not connected)", mount);
	err_hint(e, "its pgtimefs mount process ended: fusermount3 -u %s, then pgtimefs mount %s", mount, mount);
	return ERR_IO;
}

/* The mount, the cluster and at/T exist, with the errors an operator can act on. */
static int check_mount(const struct restore_opts *o, const char *t, char *at, size_t cap, struct err *e)
{
	char p[RESTORE_PATH_MAX + 512];
	struct stat st;
	DIR *d;
	struct dirent *de;
	int entries = 0;
	char seen[512] = "";
	if (stat(o->mount, &st) < 0) {
		if (gone(errno))
			return dead_mount(o->mount, e);
		err_sys(e, ERR_NOTFOUND, "cannot reach the mount %s", o->mount);
		err_hint(e, "mount the backups first: pgtimefs mount %s", o->mount);
		return ERR_NOTFOUND;
	}
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ERR_USAGE, "--from %s is not a directory", o->mount);
	if (!(d = opendir(o->mount)))
		return gone(errno) ? dead_mount(o->mount, e) : err_sys(e, ERR_IO, "cannot list the mount %s", o->mount);
	while ((de = readdir(d))) {
		size_t l = strlen(seen);
		if (de->d_name[0] == '.')
			continue;
		entries++;
		if (l + strlen(de->d_name) + 3 < sizeof seen)
			snprintf(seen + l, sizeof seen - l, "%s%s", l ? ", " : "", de->d_name);
	}
	closedir(d);
	if (!entries) {
		err_set(e, ERR_NOTFOUND, "%s is empty: no pgtimefs mount is running there", o->mount);
		err_hint(e, "mount the backups first: pgtimefs mount %s", o->mount);
		return ERR_NOTFOUND;
	}
	snprintf(p, sizeof p, "%s/%s", o->mount, o->cluster);
	if (stat(p, &st) < 0) {
		if (gone(errno))
			return dead_mount(o->mount, e);
		err_sys(e, ERR_NOTFOUND, "cluster %s is not in the mount %s", o->cluster, o->mount);
		err_hint(e, "the mount shows: %s. A deleted cluster cannot be restored: nothing is left of it", seen);
		return ERR_NOTFOUND;
	}
	snprintf(p, sizeof p, "%s/%s/at", o->mount, o->cluster);
	if (stat(p, &st) < 0) {
		if (gone(errno))
			return dead_mount(o->mount, e);
		err_sys(e, ERR_NOTFOUND, "%s has no at/ view", p);
		err_hint(e, "this mount comes from a pgtimefs without point-in-time views: mount with this version");
		return ERR_NOTFOUND;
	}
	snprintf(at, cap, "%s/%s/at/%s", o->mount, o->cluster, t);
	if (stat(at, &st) < 0) {
		if (errno == ENOENT) {
			err_set(e, ERR_NOTFOUND, "%s is outside the restorable window of cluster %s (%s does not exist)", t,
				o->cluster, at);
			err_hint(e, "run `pgtimefs list %s` for the window and choose a time inside it; if it is inside, "
				    "`pgtimefs ls %s/at/%s` says why the mount has no view there",
				 o->cluster, o->cluster, t);
			return ERR_NOTFOUND;
		}
		return gone(errno) ? dead_mount(o->mount, e) : err_sys(e, ERR_IO, "cannot reach %s", at);
	}
	return 0;
}

/* DIR: missing (made, 0700) or an empty directory; *made set when we created it. */
static int prepare_target(const char *dir, struct err *e)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT)
			return err_sys(e, ERR_IO, "cannot reach the target %s", dir);
		return util_mkdir_p(dir, 0700, e);
	}
	if (!S_ISDIR(st.st_mode))
		return err_set(e, ERR_EXISTS, "the target %s exists and is not a directory", dir);
	if (!(d = opendir(dir)))
		return err_sys(e, ERR_IO, "cannot list the target %s", dir);
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			err_set(e, ERR_EXISTS, "the target %s is not empty (it holds %s)", dir, de->d_name);
			closedir(d);
			err_hint(e, "restore into a new or empty directory: a restore never writes over files");
			return ERR_EXISTS;
		}
	}
	closedir(d);
	return 0;
}

static int port_free(int port, const char *sockdir)
{
	char p[RESTORE_PATH_MAX + 32];
	struct sockaddr_in a;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
	snprintf(p, sizeof p, "%s/.s.PGSQL.%d", sockdir, port);
	if (access(p, F_OK) == 0)
		return 0;
	if (s < 0)
		return 1;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
	close(s);
	return ok;
}

static int pick_ports(const struct restore_opts *o, int n, const char *sockdir, int *first, struct err *e)
{
	if (o->port) {
		if (o->port + n - 1 > 65535)
			return err_set(e, ERR_USAGE, "--port %d leaves no room for %d nodes (ports up to 65535)", o->port, n);
		for (int i = 0; i < n; i++)
			if (!port_free(o->port + i, sockdir)) {
				err_set(e, ERR_EXISTS, "port %d is in use (the nodes take ports %d..%d)", o->port + i, o->port,
					o->port + n - 1);
				err_hint(e, "choose another --port, or leave it out for the first free ports from %d", FIRST_PORT);
				return ERR_EXISTS;
			}
		*first = o->port;
		return 0;
	}
	for (int p = FIRST_PORT; p + n <= LAST_PORT; p++) {
		int i = 0;
		while (i < n && port_free(p + i, sockdir))
			i++;
		if (i == n) {
			*first = p;
			return 0;
		}
		p += i;
	}
	return err_set(e, ERR_EXISTS, "no %d free consecutive ports from %d", n, FIRST_PORT);
}

/* The server's default socket directory: `postgres -C unix_socket_directories` on a probe dir. */
static int default_socket_dir(const struct restore_pg *pg, const char *target, const struct restore_user *u, char *out,
			      size_t cap, struct err *e)
{
	char probe[RESTORE_PATH_MAX + 64], conf[RESTORE_PATH_MAX + 96], postgres[RESTORE_PATH_MAX + 16], buf[1024];
	char *argv[] = {postgres, "-D", probe, "-C", "unix_socket_directories", NULL};
	int status, rc;
	snprintf(probe, sizeof probe, "%s/.pgtimefs-probe", target);
	snprintf(conf, sizeof conf, "%s/postgresql.conf", probe);
	snprintf(postgres, sizeof postgres, "%s/postgres", pg->bindir);
	if (mkdir(probe, 0700) < 0)
		return err_sys(e, ERR_IO, "cannot create %s", probe);
	if ((rc = util_write_durable(conf, "", 0, 0, e)) < 0)
		goto out;
	if (u->switch_to && (lchown(probe, u->uid, u->gid) < 0 || lchown(conf, u->uid, u->gid) < 0)) {
		rc = err_sys(e, ERR_IO, "cannot chown %s", probe);
		goto out;
	}
	if ((rc = restore_proc_run(argv, u, 1, buf, sizeof buf, &status, e)) < 0)
		goto out;
	if (status != 0) {
		buf[strcspn(buf, "\n")] = 0;
		rc = err_set(e, ERR_CONFIG, "postgres -C unix_socket_directories failed (exit %d): %s", status, buf);
		goto out;
	}
	buf[strcspn(buf, ",\n")] = 0;
	snprintf(out, cap, "%s", buf[0] ? buf : "/tmp");
	rc = 0;
out:
	util_rm_rf(probe, NULL);
	return rc;
}

static void append_marker(const char *target, const struct err *e)
{
	char p[RESTORE_PATH_MAX + 64], line[ERR_MSG_MAX + ERR_HINT_MAX + 64], now[TIMEFMT_MAX];
	int fd, n;
	snprintf(p, sizeof p, "%s/%s", target, MARKER);
	if ((fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
		return;
	timefmt_print(util_now_us(), 0, now);
	n = snprintf(line, sizeof line, "%s failed: %s\n%s%s%s", now, e->msg, e->hint[0] ? "HINT: " : "", e->hint,
		     e->hint[0] ? "\n" : "");
	if (n > 0)
		util_write_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	fsync(fd);
	close(fd);
}

static int write_owned(const char *path, const char *text, const struct restore_user *u, struct err *e)
{
	int rc = util_write_durable(path, text, strlen(text), 1, e);
	if (rc == 0 && u->switch_to && lchown(path, u->uid, u->gid) < 0)
		rc = err_sys(e, ERR_IO, "cannot chown %s", path);
	return rc;
}

/* the start phase's child: set by SIGINT/SIGTERM */
static atomic_int start_cancel;

static void on_start_signal(int sig)
{
	(void)sig;
	atomic_store(&start_cancel, 1);
}

/* The start phase in a child process as the servers' user; results come back through a pipe. */
static int start_as_user(const struct restore_pg *pg, const struct restore_user *u, struct restore_start_node *sn, int n,
			 restore_note_fn note, atomic_int *cancel, struct err *e)
{
	int pfd[2], st = 0, rc, told = 0;
	pid_t pid;
	size_t want = (size_t)n * sizeof *sn + sizeof(struct err), got = 0;
	uint8_t *buf;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_sys(e, ERR_IO, "cannot create a pipe");
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return err_sys(e, ERR_IO, "cannot fork");
	}
	if (pid == 0) {
		struct err ce;
		struct sigaction sa;
		err_clear(&ce);
		close(pfd[0]);
		/* Ctrl-C or SIGTERM while the nodes recover: stop the nodes started, then report */
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_start_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		if (cancel && atomic_load(cancel)) /* the caller's flag, set before the fork or during it */
			atomic_store(&start_cancel, 1);
		if (restore_user_become(u, &ce) == 0)
			restore_start_nodes(pg, sn, n, note, &start_cancel, &ce);
		util_write_all(pfd[1], sn, (size_t)n * sizeof *sn);
		util_write_all(pfd[1], &ce, sizeof ce);
		_exit(ce.code ? 1 : 0);
	}
	close(pfd[1]);
	buf = xmalloc(want);
	while (got < want) {
		ssize_t r = read(pfd[0], buf + got, want - got);
		if (r < 0 && errno == EINTR) {
			/* a SIGTERM (or Ctrl-C) that reached only this process: pass it on, once */
			if (cancel && atomic_load(cancel) && !told) {
				kill(pid, SIGTERM);
				told = 1;
			}
			continue;
		}
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (got != want) {
		if (WIFSIGNALED(st))
			rc = err_set(e, ERR_INTERNAL, "the start phase was stopped by signal %d", WTERMSIG(st));
		else
			rc = err_set(e, ERR_INTERNAL, "the start phase ended without a result (status %d)", st);
		err_hint(e, "the nodes may be running: stop them (pg_ctl -D DIR/NODE stop), then see their logs");
	} else {
		struct err ce;
		memcpy(sn, buf, (size_t)n * sizeof *sn);
		memcpy(&ce, buf + (size_t)n * sizeof *sn, sizeof ce);
		if (e)
			*e = ce;
		rc = ce.code;
	}
	free(buf);
	return rc;
}

#define LIMIT_MAX(a, b) ((a) > (b) ? (a) : (b))

int restore_run(const struct restore_opts *o, struct restore_result *r, struct err *e)
{
	struct restore_manifest m;
	struct restore_pg pg;
	struct restore_user u;
	struct node_job *jobs = NULL;
	struct restore_start_node *sn = NULL;
	struct restore_tblspc_hit *hits = NULL; /* per node: walscan.h */
	char at[RESTORE_PATH_MAX + 512], tnorm[TIMEFMT_MAX], path[RESTORE_PATH_MAX + 512], target[RESTORE_PATH_MAX];
	char *conf = NULL;
	size_t len, cap, cn;
	uint8_t *raw = NULL;
	int64_t t_us;
	int rc, marked = 0, nthreads = 0, first_port = 0, n, tfd = -1;
	uint64_t total = 0, need = 0;
	double t0 = util_mono();
	_Atomic uint64_t done = 0;
	atomic_int stop = 0;
	struct progress bar;

	memset(&m, 0, sizeof m);
	memset(r, 0, sizeof *r);
	if (timefmt_parse(o->time, &t_us) < 0) {
		err_set(e, ERR_USAGE, "--time '%s' is not a time", o->time);
		err_hint(e, "write it in UTC ISO-8601, e.g. 2026-11-25T03:00:00Z (an offset like +01:00 works too)");
		return ERR_USAGE;
	}
	/* the at/ name of T: a snapshot's name, typed as it is, means that snapshot's own time (the
	 * mount's rule); any other spelling of a whole second (an offset, ".000000") is asked
	 * for to the microsecond, so it cannot become a snapshot's later microsecond */
	timefmt_print(t_us, t_us % 1000000 != 0, tnorm);
	if (strcmp(o->time, tnorm))
		timefmt_print(t_us, 1, tnorm);
	snprintf(r->cluster, sizeof r->cluster, "%s", o->cluster);
	snprintf(r->time, sizeof r->time, "%s", tnorm);

	/* 1. the mount, at/T and restore.json */
	if ((rc = check_mount(o, tnorm, at, sizeof at, e)) < 0)
		goto out;
	snprintf(path, sizeof path, "%s/restore.json", at);
	if ((rc = util_read_small(path, RESTORE_MANIFEST_MAX, &raw, &len, e)) < 0)
		goto out;
	if ((rc = restore_manifest_parse((const char *)raw, len, &m, e)) < 0)
		goto out;
	if (strcmp(m.cluster, o->cluster)) {
		rc = err_set(e, ERR_CORRUPT, "%s names cluster '%s', not '%s'", path, m.cluster, o->cluster);
		goto out;
	}
	n = m.nnodes;
	snprintf(r->snapshot, sizeof r->snapshot, "%s", m.snapshot ? m.snapshot : "");
	if (o->consistent) {
		if (!m.rp_name) {
			err_set(e, ERR_NOTFOUND, "--consistent: cluster %s has no cluster-wide restore point at or before %s",
				o->cluster, tnorm);
			err_hint(e, "restore without --consistent (every node stops at %s), or choose a later time: "
				    "`pgtimefs list %s` shows the restore points",
				 tnorm, o->cluster);
			rc = ERR_NOTFOUND;
			goto out;
		}
		snprintf(r->target_kind, sizeof r->target_kind, "restore-point");
		snprintf(r->restore_point, sizeof r->restore_point, "%s", m.rp_name);
		snprintf(r->target_time, sizeof r->target_time, "%s", m.rp_time ? m.rp_time : "");
	} else {
		snprintf(r->target_kind, sizeof r->target_kind, "%s", m.target);
		snprintf(r->target_time, sizeof r->target_time, "%s", m.time);
	}

	/* 2. the local PostgreSQL (one major for the cluster) and Citus */
	for (int i = 1; i < n; i++)
		if (m.nodes[i].pg_major != m.nodes[0].pg_major) {
			rc = err_set(e, ERR_CONFIG, "the nodes of %s run different major versions (%s: %s, %s: %s)", o->cluster,
				     m.nodes[0].name, m.nodes[0].pg_version, m.nodes[i].name, m.nodes[i].pg_version);
			goto out;
		}
	if ((rc = restore_pg_find(m.nodes[0].pg_major, o->pg_bin, &pg, e)) < 0)
		goto out;
	snprintf(r->pg_version, sizeof r->pg_version, "%s", pg.version);
	for (int i = 0; i < n; i++)
		if (m.nodes[i].citus_version) {
			snprintf(r->citus_version, sizeof r->citus_version, "%s", m.nodes[i].citus_version);
			if ((rc = restore_pg_citus(&pg, m.nodes[i].citus_version, e)) < 0)
				goto out;
		}

	/* 3. every node's view: there, the right version, a recovery block; sizes */
	jobs = xcalloc((size_t)n, sizeof *jobs);
	r->nodes = xcalloc((size_t)n, sizeof *r->nodes);
	r->nnodes = n;
	for (int i = 0; i < n; i++) {
		struct node_job *j = &jobs[i];
		uint8_t *ver = NULL;
		size_t vl;
		snprintf(r->nodes[i].name, sizeof r->nodes[i].name, "%s", m.nodes[i].name);
		snprintf(j->src, sizeof j->src, "%s/%s", at, m.nodes[i].name);
		snprintf(path, sizeof path, "%s/PG_VERSION", j->src);
		if (util_read_small(path, 64, &ver, &vl, e) < 0) {
			err_prefix(e, "restore.json names node %s, but its view is not a data directory", m.nodes[i].name);
			rc = ERR_CORRUPT;
			goto out;
		}
		if (atoi((char *)ver) != m.nodes[i].pg_major) {
			rc = err_set(e, ERR_CORRUPT, "node %s: PG_VERSION says %d, restore.json says %s", m.nodes[i].name,
				     atoi((char *)ver), m.nodes[i].pg_version);
			free(ver);
			goto out;
		}
		free(ver);
		{
			/* a snapshot by a pgtimefs before pg_wal links were followed (initdb --waldir):
			 * copied as it is, the new server would use the original's WAL directory */
			struct stat wst;
			char tgt[256] = "";
			snprintf(path, sizeof path, "%s/pg_wal", j->src);
			if (lstat(path, &wst) == 0 && S_ISLNK(wst.st_mode)) {
				ssize_t tl = readlink(path, tgt, sizeof tgt - 1);
				tgt[tl > 0 ? tl : 0] = '\0';
				rc = err_set(e, ERR_CORRUPT,
					     "node %s: pg_wal in this snapshot is a symbolic link (to %s): the new server would "
					     "write into that directory",
					     m.nodes[i].name, tgt);
				err_hint(e, "the snapshot was taken by an older pgtimefs from a server whose WAL lives outside "
					    "its data directory; restore a snapshot taken since, or copy the view by hand and "
					    "make pg_wal a directory");
				goto out;
			}
		}
		if ((rc = restore_pg_read_recovery(j->src, &j->rec, e)) < 0)
			goto out;
		if (o->consistent) {
			j->rec.target_time[0] = 0;
			snprintf(j->rec.target_name, sizeof j->rec.target_name, "%s", m.rp_name);
		}
		if ((rc = restore_tree_size(j->src, &j->size, e)) < 0)
			goto out;
		total += j->size.bytes;
		need += j->size.allocated;
	}

	/* 4. the target: empty, with room; who will own it */
	if ((rc = restore_user_pick(&u, e)) < 0)
		goto out;
	snprintf(r->user, sizeof r->user, "%s", u.name);
	if ((rc = prepare_target(o->target, e)) < 0)
		goto out;
	if (!realpath(o->target, target)) {
		rc = err_sys(e, ERR_IO, "cannot resolve %s", o->target);
		goto out;
	}
	{
		struct statvfs vs;
		if (statvfs(target, &vs) == 0 && (uint64_t)vs.f_bavail * vs.f_frsize < need) {
			char h1[32], h2[32];
			util_human_bytes(need, h1, sizeof h1);
			util_human_bytes((uint64_t)vs.f_bavail * vs.f_frsize, h2, sizeof h2);
			err_set(e, ERR_NOSPC, "the target %s has %s free, the restore needs %s (the nodes' data)", target, h2, h1);
			err_hint(e, "free space there or restore into a larger filesystem");
			rc = ERR_NOSPC;
			goto out;
		}
	}
	if (u.switch_to && lchown(target, u.uid, u.gid) < 0) {
		rc = err_sys(e, ERR_IO, "cannot chown %s to %s", target, u.name);
		goto out;
	}

	if (u.switch_to) { /* the servers' user must reach the target to run them */
		char *argv[] = {"/usr/bin/test", "-x", target, "-a", "-w", target, NULL};
		int status;
		if (access(argv[0], X_OK) == 0 && restore_proc_run(argv, &u, 0, NULL, 0, &status, NULL) == 0 && status != 0) {
			err_set(e, ERR_CONFIG, "the user %s, who will run the restored servers, cannot enter %s", u.name,
				target);
			err_hint(e, "restore under a directory %s can reach (every parent searchable), e.g. "
				    "/var/lib/postgresql/restore",
				 u.name);
			rc = ERR_CONFIG;
			goto out;
		}
	}

	if ((tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = err_sys(e, ERR_IO, "cannot open %s", target);
		goto out;
	}

	/* 5. marked incomplete before the first byte */
	{
		char now[TIMEFMT_MAX], msg[RESTORE_PATH_MAX + 1024];
		timefmt_print(util_now_us(), 0, now);
		snprintf(msg, sizeof msg,
			 "pgtimefs restore of cluster %s at %s into %s, started %s, has not finished.\n"
			 "Do not start these servers: the data directories may be partial.\n"
			 "Remove this directory and run the restore again.\n",
			 o->cluster, tnorm, target, now);
		snprintf(path, sizeof path, "%s/%s", target, MARKER);
		if ((rc = write_owned(path, msg, &u, e)) < 0)
			goto out;
		marked = 1;
		for (int i = 0; i < n; i++) {
			struct node_job *j = &jobs[i];
			snprintf(j->dst, sizeof j->dst, "%s/%s", target, m.nodes[i].name);
			snprintf(r->nodes[i].dir, sizeof r->nodes[i].dir, "%s", j->dst);
			if (mkdir(j->dst, 0700) < 0 || (u.switch_to && lchown(j->dst, u.uid, u.gid) < 0)) {
				rc = err_sys(e, ERR_IO, "cannot create %s", j->dst);
				goto out;
			}
			snprintf(path, sizeof path, "%s/%s", j->dst, MARKER);
			if ((rc = write_owned(path, "this node's restore has not finished: see ../" MARKER "\n", &u, e)) < 0)
				goto out;
		}
	}

	/* 6. the copy, one thread per node */
	{
		char h1[32];
		util_human_bytes(need, h1, sizeof h1);
		note_f(o, "copying %d node%s (%s) from %s into %s", n, n == 1 ? "" : "s", h1, at, target);
	}
	progress_start(&bar, "restore", total, o->progress);
	for (int i = 0; i < n; i++) {
		struct node_job *j = &jobs[i];
		j->copy.chown = u.switch_to;
		j->copy.uid = u.uid;
		j->copy.gid = u.gid;
		j->copy.hold_back = "global/pg_control";
		j->copy.root_exists = 1;
		j->copy.done = &done;
		j->copy.stop = &stop;
		err_clear(&j->e);
		if (pthread_create(&j->thread, NULL, copy_main, j) != 0) {
			atomic_store(&stop, 1);
			rc = err_set(e, ERR_INTERNAL, "cannot start a copy thread");
			break;
		}
		nthreads++;
	}
	{
		uint64_t shown = 0;
		for (;;) {
			int fin = 0, failed = 0;
			uint64_t now_done = atomic_load(&done);
			for (int i = 0; i < nthreads; i++) {
				if (atomic_load(&jobs[i].finished)) {
					fin++;
					failed |= jobs[i].rc < 0;
				}
			}
			if (failed || (o->cancel && atomic_load(o->cancel)))
				atomic_store(&stop, 1);
			progress_add(&bar, now_done - shown);
			shown = now_done;
			if (fin == nthreads)
				break;
			nanosleep(&(struct timespec){0, 100000000L}, NULL);
		}
	}
	progress_end(&bar);
	for (int i = 0; i < nthreads; i++)
		pthread_join(jobs[i].thread, NULL);
	if (nthreads < n)
		goto out;
	if (o->cancel && atomic_load(o->cancel)) {
		rc = err_set(e, ERR_INTERNAL, "interrupted while copying");
		err_hint(e, "remove %s and run the restore again", target);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (jobs[i].rc < 0 && strcmp(jobs[i].e.msg, "stopped")) {
			*e = jobs[i].e;
			rc = jobs[i].rc;
			err_prefix(e, "node %s", m.nodes[i].name);
			if (rc == ERR_NOSPC) {
				char h1[32];
				util_human_bytes(need, h1, sizeof h1);
				err_hint(e, "the target %s is full: the restore needs %s (the sum of the nodes' data) there; "
					    "free space or choose a larger filesystem, remove %s and run the restore again",
					 target, h1, target);
			} else if (gone(e->sys_errno)) {
				err_hint(e, "the mount %s died during the copy: fusermount3 -u %s, pgtimefs mount %s, then "
					    "remove %s and run the restore again",
					 o->mount, o->mount, o->mount, target);
			} else {
				err_hint(e, "remove %s and run the restore again once this is fixed", target);
			}
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		if (jobs[i].rc < 0) {
			rc = err_set(e, ERR_INTERNAL, "node %s: the copy stopped without an error", m.nodes[i].name);
			goto out;
		}
		r->nodes[i].bytes = jobs[i].copied.bytes;
		r->nodes[i].files = jobs[i].copied.files;
		r->bytes += jobs[i].copied.bytes;
	}

	/* 6b. nothing in the WAL to replay may reach outside the new cluster (walscan.h) */
	hits = xcalloc((size_t)n, sizeof *hits);
	for (int i = 0; i < n; i++) {
		struct restore_tblspc_hit hit;
		const struct restore_recovery *rec = &jobs[i].rec;
		if ((rc = restore_wal_tablespaces(jobs[i].dst, rec->target_time[0] ? t_us : 0, rec->target_name,
						  o->cancel, &hit, e)) < 0 &&
		    o->allow_tablespace_links && !(o->cancel && atomic_load(o->cancel))) {
			/* asked not to look for tablespaces: the limits alone are not worth failing for */
			note_f(o, "node %s: the WAL to replay could not be read ahead (%s): limits from pg_control only",
			       m.nodes[i].name, e ? e->msg : "");
			memset(&hit, 0, sizeof hit);
			err_clear(e);
			rc = 0;
		}
		if (rc < 0) {
			err_prefix(e, "node %s", m.nodes[i].name);
			if (o->cancel && atomic_load(o->cancel))
				err_hint(e, "remove %s and run the restore again", target);
			goto out;
		}
		hits[i] = hit;
		if (hit.found && !o->allow_tablespace_links) {
			err_set(e, ERR_USAGE,
				"node %s: the WAL to replay after snapshot %s creates tablespace %" PRIu32
				" at '%s' (LSN %X/%X): PostgreSQL would link pg_tblspc/%" PRIu32
				" of the restored node to that directory, outside the new cluster, and write into it",
				m.nodes[i].name, m.snapshot ? m.snapshot : "?", hit.t.oid, hit.t.path,
				(unsigned)(hit.t.lsn >> 32), (unsigned)hit.t.lsn, hit.t.oid);
			err_hint(e, "restore to a time before the tablespace was created, or to one after a snapshot that "
				    "holds it (take a backup now); or, where that directory may be used (another host, "
				    "an empty directory made for it), pass --allow-tablespace-links; remove %s first",
				 target);
			rc = ERR_USAGE;
			goto out;
		}
	}

	/* 7. configuration: socket directory, ports, files */
	if (o->socket_dir)
		snprintf(r->socket_dir, sizeof r->socket_dir, "%s", o->socket_dir);
	else if ((rc = default_socket_dir(&pg, target, &u, r->socket_dir, sizeof r->socket_dir, e)) < 0)
		goto out;
	if ((rc = pick_ports(o, n, r->socket_dir, &first_port, e)) < 0)
		goto out;
	if (o->name) {
		snprintf(r->name, sizeof r->name, "%s", o->name);
	} else {
		size_t k = 0;
		k += (size_t)snprintf(r->name, sizeof r->name, "%s-restored-", o->cluster);
		for (const char *p = tnorm; *p && k + 1 < sizeof r->name; p++)
			if (*p != '-' && *p != ':')
				r->name[k++] = *p;
		r->name[k] = 0;
	}
	cap = 4096 + (size_t)n * (2 * RESTORE_PATH_MAX + 512);
	conf = xmalloc(cap);
	cn = (size_t)snprintf(conf, cap,
			      "; written by pgtimefs restore: cluster %s at %s (%s%s%s), restored into %s\n"
			      "; To back up the restored cluster, add these sections to the pgtimefs configuration.\n"
			      "[cluster %s]\n",
			      o->cluster, tnorm, r->target_kind, r->restore_point[0] ? " " : "", r->restore_point, target,
			      r->name);
	for (int i = 0; i < n; i++) {
		struct restore_node_conf c;
		char header[RESTORE_PATH_MAX + 512];
		struct restore_pg_limits limits;
		r->nodes[i].port = first_port + i;
		snprintf(header, sizeof header, "restored by pgtimefs from cluster %s node %s at %s%s%s%s", o->cluster,
			 m.nodes[i].name, tnorm, m.snapshot ? " (snapshot " : "", m.snapshot ? m.snapshot : "",
			 m.snapshot ? ")" : "");
		memset(&c, 0, sizeof c);
		c.port = r->nodes[i].port;
		c.socket_dir = o->socket_dir;
		c.citus = m.nodes[i].citus_version != NULL;
		c.user = u.name;
		c.rec = &jobs[i].rec;
		c.header = header;
		{
			/* the original's limits, from its pg_control (still held back under another name) */
			char held[RESTORE_PATH_MAX + 64];
			struct err le;
			err_clear(&le);
			snprintf(held, sizeof held, "%s/global/pg_control" RESTORE_HELD_SUFFIX, jobs[i].dst);
			if (restore_pg_limits_read(held, &limits, &le) == 0) {
				c.limits = &limits;
			} else {
				note_f(o, "node %s: %s; the server limits stay at their defaults", m.nodes[i].name, le.msg);
				memset(&limits, 0, sizeof limits);
			}
			/* ... or higher, where the WAL to replay raises them (the original restarted
			 * with new values after the backup): recovery would pause there */
			if (hits[i].params_seen) {
				const struct walread_params *p = &hits[i].params;
				limits.max_connections = LIMIT_MAX(limits.max_connections, p->max_connections);
				limits.max_worker_processes = LIMIT_MAX(limits.max_worker_processes, p->max_worker_processes);
				limits.max_wal_senders = LIMIT_MAX(limits.max_wal_senders, p->max_wal_senders);
				limits.max_prepared_xacts = LIMIT_MAX(limits.max_prepared_xacts, p->max_prepared_xacts);
				limits.max_locks_per_xact = LIMIT_MAX(limits.max_locks_per_xact, p->max_locks_per_xact);
				c.limits = &limits;
			}
		}
		if ((rc = restore_pg_configure(jobs[i].dst, &pg, &c, u.switch_to, u.uid, u.gid, e)) < 0)
			goto out;
		cn += (size_t)snprintf(conf + cn, cap - cn,
				       "\n[node %s/%s]\nconninfo = host=%s port=%d user=%s dbname=postgres\ndata-dir = %s\n",
				       r->name, m.nodes[i].name, r->socket_dir, r->nodes[i].port, u.name, jobs[i].dst);
	}
	snprintf(r->conf, sizeof r->conf, "%s/%s", target, CLUSTER_CONF);
	if ((rc = write_owned(r->conf, conf, &u, e)) < 0)
		goto out;

	if (o->cancel && atomic_load(o->cancel)) {
		rc = err_set(e, ERR_INTERNAL, "interrupted");
		err_hint(e, "remove %s and run the restore again", target);
		goto out;
	}

	/* everything durable before a node can start: one syncfs of the target's filesystem, with
	 * the writeback errors since tfd was opened (before the copy) */
	if (syncfs(tfd) < 0) {
		rc = err_sys(e, ERR_IO, "cannot make the restored files durable (syncfs of %s)", target);
		goto out;
	}

	/* 8. pg_control in place: the nodes can start */
	for (int i = 0; i < n; i++) {
		char held[RESTORE_PATH_MAX + 600];
		snprintf(held, sizeof held, "%s/global/pg_control" RESTORE_HELD_SUFFIX, jobs[i].dst);
		snprintf(path, sizeof path, "%s/global/pg_control", jobs[i].dst);
		if (rename(held, path) < 0) {
			rc = err_sys(e, ERR_CORRUPT, "node %s: cannot put global/pg_control in place", m.nodes[i].name);
			goto out;
		}
		snprintf(path, sizeof path, "%s/global", jobs[i].dst);
		if ((rc = util_fsync_dir(path, e)) < 0 || (rc = util_fsync_dir(jobs[i].dst, e)) < 0)
			goto out;
	}

	/* 9. start, promote, repoint, check */
	if (o->start) {
		char (*logs)[RESTORE_PATH_MAX + 600] = xcalloc((size_t)n, sizeof *logs);
		sn = xcalloc((size_t)n, sizeof *sn);
		for (int i = 0; i < n; i++) {
			snprintf(logs[i], sizeof logs[i], "%s/%s.log", target, m.nodes[i].name);
			sn[i].name = m.nodes[i].name;
			sn[i].dir = jobs[i].dst;
			sn[i].log = logs[i];
			sn[i].socket_dir = r->socket_dir;
			sn[i].port = r->nodes[i].port;
			sn[i].citus = m.nodes[i].citus_version != NULL;
		}
		rc = start_as_user(&pg, &u, sn, n, o->note, o->cancel, e);
		for (int i = 0; i < n; i++) {
			snprintf(r->nodes[i].reached, sizeof r->nodes[i].reached, "%s", sn[i].reached);
			snprintf(r->nodes[i].error, sizeof r->nodes[i].error, "%s", sn[i].error);
			snprintf(r->nodes[i].log_tail, sizeof r->nodes[i].log_tail, "%s", sn[i].log_tail);
		}
		free(logs);
		if (rc < 0) {
			if (!e->hint[0])
				err_hint(e, "the server log is in %s/<node>.log; a node that stops before its target lacks "
					    "WAL or was given a time before its snapshot became consistent: choose another "
					    "time (`pgtimefs list %s`), remove %s and run the restore again",
					 target, o->cluster, target);
			goto out;
		}
		r->started = 1;
	}

	/* 10. complete: the markers go */
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", jobs[i].dst, MARKER);
		if (unlink(path) < 0) {
			rc = err_sys(e, ERR_IO, "cannot remove %s", path);
			goto out;
		}
		if ((rc = util_fsync_dir(jobs[i].dst, e)) < 0)
			goto out;
	}
	snprintf(path, sizeof path, "%s/%s", target, MARKER);
	if (unlink(path) < 0) {
		rc = err_sys(e, ERR_IO, "cannot remove %s", path);
		goto out;
	}
	if ((rc = util_fsync_dir(target, e)) < 0)
		goto out;
	marked = 0;
	rc = 0;
out:
	if (rc < 0 && marked && e)
		append_marker(target, e);
	if (tfd >= 0)
		close(tfd);
	r->seconds = util_mono() - t0;
	free(conf);
	free(sn);
	free(hits);
	free(jobs);
	free(raw);
	restore_manifest_free(&m);
	return rc;
}

void restore_result_free(struct restore_result *r)
{
	if (!r)
		return;
	free(r->nodes);
	r->nodes = NULL;
	r->nnodes = 0;
}
