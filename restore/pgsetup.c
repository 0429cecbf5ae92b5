/* pgsetup.c: the local PostgreSQL installation and a restored node's configuration files. */
#include "pgsetup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/walread.h"
#include "common/util.h"
#include "proc.h"

#define CONF_MAX (4u << 20)

static int is_exec(const char *dir, const char *prog)
{
	char p[RESTORE_PATH_MAX + 64];
	snprintf(p, sizeof p, "%s/%s", dir, prog);
	return access(p, X_OK) == 0;
}

/* Runs dir/prog arg and copies its first output line into out. */
static int run_line(const char *dir, const char *prog, const char *arg, char *out, size_t cap, struct err *e)
{
	char path[RESTORE_PATH_MAX + 64], buf[4096], *nl;
	char *argv[] = {path, (char *)arg, NULL};
	int status, rc;
	snprintf(path, sizeof path, "%s/%s", dir, prog);
	if ((rc = restore_proc_run(argv, NULL, 0, buf, sizeof buf, &status, e)) < 0)
		return rc;
	if (status != 0)
		return err_set(e, ERR_CONFIG, "%s %s failed (exit %d): %s", path, arg, status, buf);
	if ((nl = strchr(buf, '\n')))
		*nl = 0;
	snprintf(out, cap, "%s", buf);
	return 0;
}

/* The directory of the pg_config found on PATH, or "" */
static void pg_config_on_path(char *out, size_t cap)
{
	const char *path = getenv("PATH");
	char dir[RESTORE_PATH_MAX], bindir[RESTORE_PATH_MAX];
	struct err e;
	out[0] = 0;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t l = strcspn(path, ":");
		snprintf(dir, sizeof dir, "%.*s", (int)l, path);
		path += l + (path[l] == ':');
		if (!l || !is_exec(dir, "pg_config"))
			continue;
		err_clear(&e);
		if (run_line(dir, "pg_config", "--bindir", bindir, sizeof bindir, &e) == 0)
			snprintf(out, cap, "%s", bindir);
		return;
	}
}

/* "postgres (PostgreSQL) 15.4 (Debian ...)" -> "15.4" */
static void version_of(const char *line, char *out, size_t cap)
{
	const char *p = strstr(line, ") ");
	p = p ? p + 2 : line;
	snprintf(out, cap, "%.*s", (int)strcspn(p, " \n"), p);
}

/* Debian's layout for major: binaries in /usr/lib/postgresql/N/bin, the sample configuration
 * in /usr/share/postgresql/N, extensions in /usr/lib/postgresql/N/lib */
static int is_debian_layout(const struct restore_pg *pg, int major)
{
	char p[RESTORE_PATH_MAX + 64];
	snprintf(p, sizeof p, "/usr/lib/postgresql/%d/bin", major);
	if (strcmp(pg->bindir, p))
		return 0;
	snprintf(p, sizeof p, "/usr/share/postgresql/%d/postgresql.conf.sample", major);
	if (access(p, R_OK) < 0)
		return 0;
	snprintf(p, sizeof p, "/usr/lib/postgresql/%d/lib", major);
	return access(p, X_OK) == 0;
}

/* The binaries in dir, when they are PostgreSQL major: 1 (pg filled), else 0 (what was found
 * there appended to found) */
static int try_bindir(const char *dir, int major, struct restore_pg *pg, char *found, size_t cap)
{
	char v[64], line[512];
	if (!is_exec(dir, "postgres") || !is_exec(dir, "pg_ctl"))
		return 0;
	if (run_line(dir, "postgres", "--version", line, sizeof line, NULL) < 0)
		return 0;
	version_of(line, v, sizeof v);
	if (atoi(v) != major) {
		size_t fl = strlen(found);
		snprintf(found + fl, cap - fl, "%sPostgreSQL %s in %s", fl ? ", " : "", v, dir);
		return 0;
	}
	pg->major = major;
	snprintf(pg->version, sizeof pg->version, "%s", v);
	snprintf(pg->bindir, sizeof pg->bindir, "%s", dir);
	return 1;
}

int restore_pg_find(int major, const char *bindir, struct restore_pg *pg, struct err *e)
{
	char cands[2][RESTORE_PATH_MAX], found[512] = "";
	int ncand = 1, rc;
	memset(pg, 0, sizeof *pg);
	if (bindir && *bindir)
		snprintf(cands[0], RESTORE_PATH_MAX, "%s", bindir);
	else
		snprintf(cands[0], RESTORE_PATH_MAX, "/usr/lib/postgresql/%d/bin", major);
	if (!try_bindir(cands[0], major, pg, found, sizeof found) && !(bindir && *bindir)) {
		/* pg_config on PATH (on Debian a wrapper script: slow) only when the usual place lacks
		 * this major version */
		pg_config_on_path(cands[1], RESTORE_PATH_MAX);
		if (cands[1][0] && strcmp(cands[1], cands[0])) {
			ncand = 2;
			try_bindir(cands[1], major, pg, found, sizeof found);
		}
	}
	if (!pg->major) {
		if (!found[0])
			err_set(e, ERR_CONFIG, "the backup is PostgreSQL %d, but no PostgreSQL %d binaries were found "
					       "(looked in %s%s%s)", major, major, cands[0], ncand > 1 ? " and " : "",
				ncand > 1 ? cands[1] : "");
		else
			err_set(e, ERR_CONFIG, "the backup is PostgreSQL %d, but the local binaries are %s: a data "
					       "directory only starts with its own major version",
				major, found);
		err_hint(e, "install PostgreSQL %d (Debian: apt-get install postgresql-%d) or name its binaries "
			    "with --pg-bin DIR",
			 major, major);
		return ERR_CONFIG;
	}
	snprintf(pg->sharedir, sizeof pg->sharedir, "/usr/share/postgresql/%d", major);
	snprintf(pg->pkglibdir, sizeof pg->pkglibdir, "/usr/lib/postgresql/%d/lib", major);
	if (is_debian_layout(pg, major)) {
		/* Debian's layout: no pg_config run needed */
	} else if (is_exec(pg->bindir, "pg_config")) {
		if ((rc = run_line(pg->bindir, "pg_config", "--sharedir", pg->sharedir, sizeof pg->sharedir, e)) < 0 ||
		    (rc = run_line(pg->bindir, "pg_config", "--pkglibdir", pg->pkglibdir, sizeof pg->pkglibdir, e)) < 0)
			return rc;
	}
	{
		char p[RESTORE_PATH_MAX + 64];
		snprintf(p, sizeof p, "%s/postgresql.conf.sample", pg->sharedir);
		if (access(p, R_OK) < 0) {
			err_sys(e, ERR_CONFIG, "cannot read %s, the default configuration of PostgreSQL %d", p, major);
			err_hint(e, "install the server package of PostgreSQL %d (Debian: postgresql-%d)", major, major);
			return ERR_CONFIG;
		}
	}
	return 0;
}

/* "11.3-1", "11.3.0" -> 11, 3 */
static void major_minor(const char *v, int *maj, int *min)
{
	*maj = atoi(v);
	v += strspn(v, "0123456789");
	*min = *v == '.' ? atoi(v + 1) : 0;
}

int restore_pg_citus(const struct restore_pg *pg, const char *version, struct err *e)
{
	char control[RESTORE_PATH_MAX + 64], lib[RESTORE_PATH_MAX + 64], have[64] = "";
	uint8_t *buf = NULL;
	size_t len;
	int a, b, c, d;
	const char *p;
	snprintf(control, sizeof control, "%s/extension/citus.control", pg->sharedir);
	snprintf(lib, sizeof lib, "%s/citus.so", pg->pkglibdir);
	if (access(lib, R_OK) < 0 || util_read_small(control, 65536, &buf, &len, NULL) < 0) {
		err_set(e, ERR_CONFIG, "the backup uses Citus %s, but Citus is not installed for the local PostgreSQL %d "
				       "(no %s)", version, pg->major, access(lib, R_OK) < 0 ? lib : control);
		err_hint(e, "install Citus %s for PostgreSQL %d (e.g. the postgresql-%d-citus package)", version, pg->major,
			 pg->major);
		return ERR_CONFIG;
	}
	if ((p = strstr((char *)buf, "default_version"))) {
		p += strcspn(p, "'");
		if (*p == '\'')
			snprintf(have, sizeof have, "%.*s", (int)strcspn(p + 1, "'"), p + 1);
	}
	free(buf);
	major_minor(version, &a, &b);
	major_minor(have, &c, &d);
	if (a != c || b != d) {
		err_set(e, ERR_CONFIG, "the backup uses Citus %s, but the local Citus is %s", version, have[0] ? have : "unknown");
		err_hint(e, "install Citus %d.%d for PostgreSQL %d: the restored catalog expects that version", a, b, pg->major);
		return ERR_CONFIG;
	}
	return 0;
}

/* Parses "key = 'value'" (value unquoted, '' as '); returns 0, or -1 when the line is not that. */
static int parse_setting(const char *line, size_t n, char *key, size_t kcap, char *val, size_t vcap)
{
	const char *p = line, *end = line + n;
	size_t k = 0, v = 0;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (p < end && (*p == '_' || *p == '.' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9')))
		if (k + 1 < kcap)
			key[k++] = *p++;
		else
			p++;
	key[k] = 0;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (!k || p >= end || *p != '=')
		return -1;
	p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '\'') {
		for (p++; p < end; p++) {
			if (*p == '\'') {
				if (p + 1 < end && p[1] == '\'')
					p++;
				else
					break;
			}
			if (v + 1 < vcap)
				val[v++] = *p;
		}
	} else {
		while (p < end && *p != ' ' && *p != '\t' && *p != '#')
			if (v + 1 < vcap)
				val[v++] = *p++;
			else
				p++;
	}
	val[v] = 0;
	return 0;
}

int restore_pg_read_recovery(const char *dir, struct restore_recovery *rec, struct err *e)
{
	char path[RESTORE_PATH_MAX + 64];
	uint8_t *buf = NULL;
	size_t len;
	const char *block = NULL, *p;
	int rc;
	memset(rec, 0, sizeof *rec);
	snprintf(path, sizeof path, "%s/postgresql.auto.conf", dir);
	if ((rc = util_read_small(path, CONF_MAX, &buf, &len, e)) < 0)
		return rc;
	for (p = (const char *)buf; (p = strstr(p, "# pgtimefs recovery")); p++)
		if (p == (const char *)buf || p[-1] == '\n')
			block = p;
	if (!block) {
		rc = err_set(e, ERR_CORRUPT, "%s has no '# pgtimefs recovery' block", path);
		err_hint(e, "--from must name a pgtimefs mount (its CLUSTER/at/TIME/NODE views carry that block)");
		goto out;
	}
	for (p = block; *p;) {
		size_t n = strcspn(p, "\n");
		char key[64], val[256];
		if (parse_setting(p, n, key, sizeof key, val, sizeof val) == 0 && !strcmp(key, "recovery_target_time"))
			snprintf(rec->target_time, sizeof rec->target_time, "%s", val);
		p += n + (p[n] == '\n');
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Appends "key = 'value'\n", quotes doubled and backslashes escaped (the server's config
 * parser reads \ escapes inside quotes). */
static void put_setting(char *buf, size_t cap, size_t *n, const char *key, const char *val)
{
	if (*n >= cap)
		return;
	*n += (size_t)snprintf(buf + *n, cap - *n, "%s = '", key);
	for (; *val && *n + 4 < cap; val++) {
		if (*val == '\'' || *val == '\\')
			buf[(*n)++] = *val;
		buf[(*n)++] = *val;
	}
	if (*n < cap)
		*n += (size_t)snprintf(buf + *n, cap - *n, "'\n");
	if (*n > cap)
		*n = cap;
}

static int write_file(const char *dir, const char *name, const void *buf, size_t len, int chown_to, unsigned uid,
		      unsigned gid, struct err *e)
{
	char path[RESTORE_PATH_MAX + 64];
	int rc;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((rc = util_write_durable(path, buf, len, 0, e)) < 0)
		return rc;
	if (chown_to && lchown(path, uid, gid) < 0)
		return err_sys(e, ERR_IO, "cannot chown %s", path);
	return 0;
}

/* Copies sharedir/sample into dir/name; an empty file when the sample is missing and optional. */
static int copy_sample(const struct restore_pg *pg, const char *sample, int optional, const char *dir, const char *name,
		       int chown_to, unsigned uid, unsigned gid, struct err *e)
{
	char path[RESTORE_PATH_MAX + 64];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;
	snprintf(path, sizeof path, "%s/%s", pg->sharedir, sample);
	if ((rc = util_read_small(path, CONF_MAX, &buf, &len, e)) < 0) {
		if (!optional)
			return rc;
		len = 0;
	}
	rc = write_file(dir, name, buf ? (const char *)buf : "", len, chown_to, uid, gid, e);
	free(buf);
	return rc;
}

/* sharedir/sample (missing: empty) followed by extra, as dir/name */
static int copy_sample_plus(const struct restore_pg *pg, const char *sample, const char *dir, const char *name,
			    const char *extra, int chown_to, unsigned uid, unsigned gid, struct err *e)
{
	char path[RESTORE_PATH_MAX + 64], *all;
	uint8_t *buf = NULL;
	size_t len = 0, xl = strlen(extra);
	int rc;
	snprintf(path, sizeof path, "%s/%s", pg->sharedir, sample);
	if (util_read_small(path, CONF_MAX, &buf, &len, NULL) < 0)
		len = 0;
	all = xmalloc(len + xl + 1);
	if (len)
		memcpy(all, buf, len);
	memcpy(all + len, extra, xl + 1);
	rc = write_file(dir, name, all, len + xl, chown_to, uid, gid, e);
	free(all);
	free(buf);
	return rc;
}

/*
 * 1 when dir/pg_tblspc holds an entry (a tablespace, stored as a directory: see
 * docs/design-notes.md), 0 when it holds none, a negative ERR_* when it cannot be read.
 */
static int has_tablespaces(const char *dir, struct err *e)
{
	char path[RESTORE_PATH_MAX + 64];
	DIR *d;
	struct dirent *de;
	int found = 0;
	snprintf(path, sizeof path, "%s/pg_tblspc", dir);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : err_sys(e, ERR_IO, "cannot read %s", path);
	while (!found && (de = readdir(d)))
		found = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return found;
}

/* PostgreSQL 15's ControlFileData (x86-64 and other LP64 hosts): where these fields are */
#define PGC_VERSION_OFF 8
#define PGC_VERSION_15 1300
#define PGC_LIMITS_OFF 180 /* MaxConnections .. max_locks_per_xact: five int32 */
#define PGC_CRC_OFF 288	   /* CRC-32C of the bytes before it */

int restore_pg_limits_read(const char *path, struct restore_pg_limits *out, struct err *e)
{
	uint8_t b[PGC_CRC_OFF + 4];
	uint32_t version, crc;
	int32_t v[5];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, ERR_IO, "cannot open %s", path);
	if (util_pread_all(fd, b, sizeof b, 0) < 0) {
		close(fd);
		return err_set(e, ERR_CORRUPT, "%s is too short for a pg_control file", path);
	}
	close(fd);
	memcpy(&version, b + PGC_VERSION_OFF, 4);
	memcpy(&crc, b + PGC_CRC_OFF, 4);
	if (version != PGC_VERSION_15 || walread_crc32c(0, b, PGC_CRC_OFF) != crc)
		return err_set(e, ERR_CORRUPT, "%s is not a PostgreSQL 15 pg_control file (version %u, or its CRC fails)",
			       path, version);
	memcpy(v, b + PGC_LIMITS_OFF, sizeof v);
	out->max_connections = v[0];
	out->max_worker_processes = v[1];
	out->max_wal_senders = v[2];
	out->max_prepared_xacts = v[3];
	out->max_locks_per_xact = v[4];
	return 0;
}

/* name = value of the original's when above PostgreSQL 15's default */
static void put_limit(char *buf, size_t cap, size_t *n, const char *name, int orig, int dflt)
{
	char v[16];
	if (orig <= dflt)
		return;
	snprintf(v, sizeof v, "%d", orig);
	put_setting(buf, cap, n, name, v);
}

int restore_pg_configure(const char *dir, const struct restore_pg *pg, const struct restore_node_conf *c, int chown_to,
			 unsigned uid, unsigned gid, struct err *e)
{
	char buf[8192], path[RESTORE_PATH_MAX + 64], port[16];
	size_t n = 0;
	int rc;
	static const char *const gone[] = {"standby.signal", "postmaster.pid", "postmaster.opts"};

	if ((rc = copy_sample(pg, "postgresql.conf.sample", 0, dir, "postgresql.conf", chown_to, uid, gid, e)) < 0)
		return rc;
	{
		/* the map of pg_hba.conf: the servers' OS user, as its own role or as postgres */
		char map[512];
		int k = snprintf(map, sizeof map,
				 "\n# pgtimefs restore: the only OS user let in (pg_hba.conf), and the roles it may use\n"
				 "pgtimefs        %s        %s\n",
				 c->user, c->user);
		if (strcmp(c->user, "postgres") && k > 0 && (size_t)k < sizeof map)
			snprintf(map + k, sizeof map - (size_t)k, "pgtimefs        %s        postgres\n", c->user);
		if ((rc = copy_sample_plus(pg, "pg_ident.conf.sample", dir, "pg_ident.conf", map, chown_to, uid, gid, e)) < 0)
			return rc;
	}

	n += (size_t)snprintf(buf + n, sizeof buf - n,
			      "# Do not edit this file manually!\n"
			      "# It will be overwritten by the ALTER SYSTEM command.\n"
			      "# %s\n"
			      "# pgtimefs restore: every server parameter is at its default but these.\n",
			      c->header);
	snprintf(port, sizeof port, "%d", c->port);
	put_setting(buf, sizeof buf, &n, "port", port);
	if (c->socket_dir)
		put_setting(buf, sizeof buf, &n, "unix_socket_directories", c->socket_dir);
	if (c->citus)
		put_setting(buf, sizeof buf, &n, "shared_preload_libraries", "citus");
	if (c->limits) {
		const struct restore_pg_limits *l = c->limits;
		if (n < sizeof buf)
			n += (size_t)snprintf(buf + n, sizeof buf - n,
					      "# the original's, where above the defaults: recovery refuses lower ones\n");
		put_limit(buf, sizeof buf, &n, "max_connections", l->max_connections, 100);
		put_limit(buf, sizeof buf, &n, "max_worker_processes", l->max_worker_processes, 8);
		put_limit(buf, sizeof buf, &n, "max_wal_senders", l->max_wal_senders, 10);
		put_limit(buf, sizeof buf, &n, "max_prepared_transactions", l->max_prepared_xacts, 0);
		put_limit(buf, sizeof buf, &n, "max_locks_per_transaction", l->max_locks_per_xact, 64);
	}
	if ((rc = has_tablespaces(dir, e)) < 0)
		return rc;
	if (rc) {
		/* the tablespaces are directories in pg_tblspc/ (in-place): PostgreSQL 15 PANICs on
		 * them when recovery reaches consistency (CheckTablespaceDirectory) unless this is on;
		 * kept after the promotion, for a standby or a PITR made from this cluster */
		if (n < sizeof buf)
			n += (size_t)snprintf(buf + n, sizeof buf - n,
					      "# tablespaces are directories in pg_tblspc/: recovery needs this\n");
		put_setting(buf, sizeof buf, &n, "allow_in_place_tablespaces", "on");
	}
	if (c->rec->target_name[0])
		put_setting(buf, sizeof buf, &n, "recovery_target_name", c->rec->target_name);
	else if (c->rec->target_time[0])
		put_setting(buf, sizeof buf, &n, "recovery_target_time", c->rec->target_time);
	put_setting(buf, sizeof buf, &n, "recovery_target_action", "promote");
	/* archive recovery needs a restore_command; one that finds nothing makes it read pg_wal/ */
	put_setting(buf, sizeof buf, &n, "restore_command", "false");
	/* shut for outgoing connections too: at the promotion, the apply workers of the backup's
	 * logical subscriptions would connect to their publishers (the original's) and could take
	 * their slots; the operator opens it with the network (next steps) */
	if (n < sizeof buf)
		n += (size_t)snprintf(buf + n, sizeof buf - n,
				      "# logical replication off: the subscriptions would connect to the original's "
				      "publishers\n");
	put_setting(buf, sizeof buf, &n, "max_logical_replication_workers", "0");
	if (n >= sizeof buf)
		return err_set(e, ERR_INTERNAL, "postgresql.auto.conf of %s is too long", dir);
	if ((rc = write_file(dir, "postgresql.auto.conf", buf, n, chown_to, uid, gid, e)) < 0)
		return rc;

	n = (size_t)snprintf(buf, sizeof buf,
			     "# pgtimefs restore: the door is shut. Only the OS user %s reaches this server, over the\n"
			     "# local socket (as the database role %s%s%s, see the map in pg_ident.conf); every other\n"
			     "# connection is rejected. To open network access, set listen_addresses and add a line\n"
			     "# above the host rejects, e.g.\n"
			     "#   host all all 10.0.0.0/8 scram-sha-256\n"
			     "# TYPE  DATABASE     USER  ADDRESS    METHOD\n"
			     "local   all          all              peer map=pgtimefs\n"
			     "local   replication  all              peer map=pgtimefs\n"
			     "host    all          all   0.0.0.0/0  reject\n"
			     "host    all          all   ::/0       reject\n"
			     "host    replication  all   0.0.0.0/0  reject\n"
			     "host    replication  all   ::/0       reject\n",
			     c->user, c->user, strcmp(c->user, "postgres") ? " or postgres" : "", "");
	if (n >= sizeof buf)
		return err_set(e, ERR_INTERNAL, "pg_hba.conf of %s is too long", dir);
	if ((rc = write_file(dir, "pg_hba.conf", buf, n, chown_to, uid, gid, e)) < 0 ||
	    (rc = write_file(dir, "recovery.signal", "", 0, chown_to, uid, gid, e)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, gone[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			return err_sys(e, ERR_IO, "cannot remove %s", path);
	}
	return util_fsync_dir(dir, e);
}
