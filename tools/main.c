/* main.c: the pgtimefs command line: global options and dispatch to the command groups. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "tools.h"

static const char usage[] =
	"usage: pgtimefs [-c FILE] [--json] [--quiet] [--wait SECONDS] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  init [--recover]                 create the repository in every zone (or rebuild the\n"
	"                                   local catalog from the newest copy in any zone)\n"
	"  key add | list | remove ID       key files (rotation)\n"
	"  snapshot CLUSTER NODE DIR [--full]  offline snapshot of a directory tree\n"
	"  backup CLUSTER [--full]          online snapshot of every node, then a restore point\n"
	"  restore-point CLUSTER [NAME]     cluster-wide restore point\n"
	"  wal-push CLUSTER NODE PATH       archive one WAL file (archive_command ... %p)\n"
	"  wal-fetch CLUSTER NODE NAME DEST restore one WAL file (restore_command ... %f %p)\n"
	"  wal-stream CLUSTER [NODE]        archive WAL continuously over replication connections\n"
	"  list [CLUSTER]                   snapshots, sizes, configured clusters and nodes\n"
	"  ls [PATH]                        list CLUSTER/TIME/NODE/... as the mount shows it\n"
	"  cat PATH...                      write stored files to standard output\n"
	"  delete CLUSTER TIME              remove a snapshot from the catalog\n"
	"  mount MOUNTPOINT [-f] [-o OPTS]  the backups as a read-only filesystem\n"
	"  check [--read-data]              verify every zone and the catalog\n"
	"  repair                           copy what a zone lacks or has damaged from a good zone\n"
	"  restore --from MOUNT --cluster C --time T --target DIR [--consistent] [--start] [--port N]\n"
	"          [--name NEW]             a cluster at time T as new data directories (from the mount)\n"
	"\n"
	"The configuration comes from -c FILE, $PGTIMEFS_CONFIG or /etc/pgtimefs/pgtimefs.conf;\n"
	"the passphrase from its passphrase-file or $PGTIMEFS_PASSPHRASE.\n";

int main(int argc, char **argv)
{
	struct ctx x;
	int i = 1, rc;
	memset(&x, 0, sizeof x);
	x.lock_fd = -1;
	x.wait_s = 600;
	signal(SIGPIPE, SIG_IGN);
	crypto_process_init();
	/* --json and --quiet are taken anywhere on the line, as operators type them */
	{
		int w = 1;
		for (int r = 1; r < argc; r++) {
			if (!strcmp(argv[r], "--json"))
				x.json = 1;
			else if (!strcmp(argv[r], "--quiet") || !strcmp(argv[r], "-q"))
				x.quiet = 1;
			else
				argv[w++] = argv[r];
		}
		argc = w;
		argv[argc] = NULL;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			x.config_path = argv[++i];
		} else if (!strcmp(argv[i], "--json")) {
			x.json = 1;
		} else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
			x.quiet = 1;
		} else if (!strcmp(argv[i], "--wait") && i + 1 < argc) {
			long w;
			if (tools_parse_long(argv[++i], 0, 7L * 24 * 3600, &w) < 0)
				return usage_error("--wait takes seconds (0 to 604800), not '%s'", argv[i]);
			x.wait_s = (int)w;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "pgtimefs: unknown option %s\n%s", argv[i], usage);
			return 2;
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	{
		const char *cmd = argv[i];
		int sub_argc = argc - i;
		char **sub_argv = argv + i;
		if (!strcmp(cmd, "init"))
			rc = cmd_init(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "key"))
			rc = cmd_key(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "snapshot"))
			rc = cmd_snapshot(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "mount"))
			rc = cmd_mount(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "delete"))
			rc = cmd_delete(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "backup"))
			rc = cmd_backup(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "restore-point"))
			rc = cmd_restore_point(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "wal-push"))
			rc = cmd_wal_push(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "wal-stream"))
			rc = cmd_wal_stream(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "wal-fetch"))
			rc = cmd_wal_fetch(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "list"))
			rc = cmd_list(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "ls"))
			rc = cmd_ls(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "cat"))
			rc = cmd_cat(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "check"))
			rc = cmd_check(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "restore"))
			rc = cmd_restore(&x, sub_argc, sub_argv);
		else if (!strcmp(cmd, "repair"))
			rc = cmd_repair(&x, sub_argc, sub_argv);
		else {
			fprintf(stderr, "pgtimefs: unknown command '%s'\n%s", cmd, usage);
			rc = 2;
		}
	}
	setup_done(&x);
	/* what went to stdout must have arrived: a full disk is a failure (a closed pipe is not) */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == 0) {
		/* a pipe whose reader has read enough (`| head`) is no failure; errno may be stale
		 * here, so the kind of stdout decides */
		struct stat st;
		int err = errno;
		if (fstat(STDOUT_FILENO, &st) != 0 || !S_ISFIFO(st.st_mode)) {
			fprintf(stderr, "pgtimefs: cannot write the output: %s\n", strerror(err));
			rc = 1;
		}
	}
	return rc;
}
