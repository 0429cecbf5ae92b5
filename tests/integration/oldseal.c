/*
 * oldseal PASSPHRASE ZONE...: rewrites the repository config of every ZONE sealed as a
 * pgtimefs before the config-MAC key sealed it (HMAC-SHA256 under the id key itself), for
 * test_faults.sh's upgrade and downgrade cases. A test helper: never installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/repo.h"

int main(int argc, char **argv)
{
	char body[2048], hex[65];
	uint8_t mac[32], *buf;
	struct repo *r;
	struct err e;
	size_t plen = strlen(REPO_CONFIG_MAC_PREFIX), n;
	int rc;
	if (argc < 3) {
		fprintf(stderr, "usage: oldseal PASSPHRASE ZONE...\n");
		return 2;
	}
	crypto_process_init();
	err_clear(&e);
	if (repo_open(zones_new((const char *const *)argv + 2, argc - 2), argv[1], strlen(argv[1]), &r, &e) < 0) {
		fprintf(stderr, "oldseal: %s\n", e.msg);
		return 1;
	}
	repo_config_format(&r->cfg, body, sizeof body);
	n = strlen(body);
	buf = xmalloc(plen + n);
	memcpy(buf, REPO_CONFIG_MAC_PREFIX, plen);
	memcpy(buf + plen, body, n);
	crypto_blob_id(r->key, buf, plen + n, mac);
	free(buf);
	hex_encode(mac, sizeof mac, hex);
	snprintf(body + n, sizeof body - n, "mac = %s\n", hex);
	rc = zones_put(r->z, "config", body, strlen(body), &e);
	if (rc == 0)
		rc = zones_sync(r->z, &e);
	if (rc < 0)
		fprintf(stderr, "oldseal: %s\n", e.msg);
	repo_close(r);
	return rc < 0;
}
