/* proc.c: child processes and the OS user of the restored servers. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

extern char **environ;

int restore_user_pick(struct restore_user *u, struct err *e)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int root = geteuid() == 0;
	memset(u, 0, sizeof *u);
	if (root)
		getpwnam_r("postgres", &pw, buf, sizeof buf, &res);
	else
		getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res);
	if (!res) {
		err_set(e, ERR_CONFIG, root ? "there is no 'postgres' user to own and run the restored servers"
					    : "the current user (uid %u) has no passwd entry", (unsigned)geteuid());
		err_hint(e, root ? "install PostgreSQL (it creates the postgres user) or run the restore as the user "
				   "that will run the servers"
				 : "run the restore as a user with a passwd entry");
		return ERR_CONFIG;
	}
	if (root && res->pw_uid == 0)
		return err_set(e, ERR_CONFIG, "the 'postgres' user is root: PostgreSQL refuses to run as root");
	u->uid = res->pw_uid;
	u->gid = res->pw_gid;
	snprintf(u->name, sizeof u->name, "%s", res->pw_name);
	u->switch_to = root;
	return 0;
}

int restore_user_become(const struct restore_user *u, struct err *e)
{
	if (!u || !u->switch_to)
		return 0;
	if (initgroups(u->name, u->gid) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0)
		return err_sys(e, ERR_IO, "cannot switch to user %s", u->name);
	return 0;
}

int restore_proc_run(char *const argv[], const struct restore_user *as, int stdout_only, char *out, size_t cap,
		     int *status, struct err *e)
{
	int pfd[2] = {-1, -1}, st = 0;
	size_t n = 0;
	pid_t pid;
	*status = -1;
	char **envp;
	size_t ne = 0, k = 0;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_sys(e, ERR_IO, "cannot create a pipe for %s", argv[0]);
	/* the repository's passphrases stay here: a restored server (its superusers: COPY ... FROM
	 * PROGRAM) must not find them in its environment */
	while (environ[ne])
		ne++;
	envp = xcalloc(ne + 1, sizeof *envp);
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "PGTIMEFS_PASSPHRASE=", 20) && strncmp(environ[i], "PGTIMEFS_NEW_PASSPHRASE=", 24))
			envp[k++] = environ[i];
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(envp);
		return err_sys(e, ERR_IO, "cannot fork for %s", argv[0]);
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(stdout_only && devnull >= 0 ? devnull : pfd[1], 2);
		signal(SIGPIPE, SIG_DFL);
		if (restore_user_become(as, NULL) < 0 || chdir("/") < 0)
			_exit(127);
		execve(argv[0], argv, envp);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(envp);
	close(pfd[1]);
	for (;;) {
		char tmp[4096];
		ssize_t r = read(pfd[0], tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out && n + 1 < cap) {
			size_t take = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
			memcpy(out + n, tmp, take);
			n += take;
		}
	}
	close(pfd[0]);
	if (out && cap)
		out[n] = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_sys(e, ERR_IO, "cannot wait for %s", argv[0]);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (*status == 127 && out && strstr(out, "cannot run"))
		return err_set(e, ERR_IO, "%s", out);
	return 0;
}
