/*
 * fuzz_restore_manifest.c: arbitrary bytes as restore.json (restore/manifest.c), the file a
 * restore reads from the mount. Properties: a parse either fails with a message and nothing
 * to free, or gives a manifest whose required fields are set, whose nodes have distinct
 * names without '/', and whose target is "time" or "end".
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "restore/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct restore_manifest m;
	struct err e;
	err_clear(&e);
	if (restore_manifest_parse((const char *)data, size, &m, &e) < 0) {
		fuzz_require(e.msg[0] != 0);
		fuzz_require(m.cluster == NULL && m.nodes == NULL);
		return 0;
	}
	fuzz_require(m.cluster && m.time && m.target && m.nnodes > 0);
	fuzz_require(!strcmp(m.target, "time") || !strcmp(m.target, "end"));
	for (int i = 0; i < m.nnodes; i++) {
		fuzz_require(m.nodes[i].name && !strchr(m.nodes[i].name, '/') && m.nodes[i].pg_major >= 10);
		for (int k = 0; k < i; k++)
			fuzz_require(strcmp(m.nodes[i].name, m.nodes[k].name) != 0);
	}
	restore_manifest_free(&m);
	return 0;
}
