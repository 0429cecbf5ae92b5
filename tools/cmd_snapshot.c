/* cmd_snapshot.c: snapshot CLUSTER NODE DIR [--full]. */
#include <string.h>

#include "backup/walk.h"
#include "common/json.h"
#include "common/util.h"
#include "tools.h"

int cmd_snapshot(struct ctx *x, int argc, char **argv)
{
	struct err e;
	struct walk_opts o;
	struct walk_result res;
	const char *pos[3];
	int npos = 0, full = 0, rc;
	err_clear(&e);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--full"))
			full = 1;
		else if (npos < 3)
			pos[npos++] = argv[i];
		else
			npos = 4;
	}
	if (npos != 3)
		return usage_error("usage: pgtimefs snapshot CLUSTER NODE DIR [--full]");
	if (!tools_valid_name(pos[0]) || !tools_valid_name(pos[1]))
		return usage_error("cluster and node names must be 1 to 100 bytes, without '/' or control characters, and not 'latest', 'at', 'wal' or 'restore.json'");
	if ((rc = setup_catalog(x, 1, &e)) < 0)
		return report(&e);
	memset(&o, 0, sizeof o);
	o.full = full;
	o.progress = !x->quiet && !x->json;
	o.state_dir = x->state_dir;
	o.catalog_file = x->catalog_file;
	if ((rc = backup_snapshot_dir(x->repo, x->cat, pos[0], pos[1], pos[2], &o, &res, &e)) < 0)
		return report(&e);
	if (x->json) {
		struct json j;
		json_init(&j, stdout);
		json_obj(&j);
		json_key(&j, "cluster");
		json_str(&j, pos[0]);
		json_key(&j, "node");
		json_str(&j, pos[1]);
		json_key(&j, "snapshot");
		json_str(&j, res.name);
		json_key(&j, "files");
		json_int(&j, (int64_t)res.st.files);
		json_key(&j, "files_reused");
		json_int(&j, (int64_t)res.st.files_reused);
		json_key(&j, "dirs");
		json_int(&j, (int64_t)res.dirs);
		json_key(&j, "bytes");
		json_int(&j, (int64_t)res.st.bytes);
		json_key(&j, "bytes_read");
		json_int(&j, (int64_t)res.st.bytes_read);
		json_key(&j, "new_bytes");
		json_int(&j, (int64_t)res.st.new_bytes);
		json_key(&j, "stored_bytes");
		json_int(&j, (int64_t)res.st.stored_bytes);
		json_key(&j, "chunks");
		json_int(&j, (int64_t)res.st.chunks);
		json_key(&j, "new_chunks");
		json_int(&j, (int64_t)res.st.new_chunks);
		json_key(&j, "delta_chunks");
		json_int(&j, (int64_t)res.st.delta_chunks);
		json_key(&j, "packs");
		json_int(&j, (int64_t)res.st.packs);
		json_key(&j, "skipped");
		json_int(&j, (int64_t)res.skipped);
		json_key(&j, "seconds");
		json_int(&j, (int64_t)(res.seconds * 1000) / 1000);
		json_key(&j, "milliseconds");
		json_int(&j, (int64_t)(res.seconds * 1000));
		json_obj_end(&j);
		json_end(&j);
	} else if (!x->quiet) {
		char total[24], fresh[24], stored[24];
		util_human_bytes(res.st.bytes, total, sizeof total);
		util_human_bytes(res.st.new_bytes, fresh, sizeof fresh);
		util_human_bytes(res.st.stored_bytes, stored, sizeof stored);
		printf("snapshot %s/%s/%s: %llu files (%llu unchanged), %s; %s new, %s stored per zone; %.2f s\n", pos[0],
		       res.name, pos[1], (unsigned long long)res.st.files, (unsigned long long)res.st.files_reused, total,
		       fresh, stored, res.seconds);
		if (res.skipped)
			printf("  %llu entries vanished while the snapshot ran and were skipped\n",
			       (unsigned long long)res.skipped);
	}
	return 0;
}
