#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int store_read_blob(const struct repo *r, pack_codec *codec, const struct blob_loc *loc, uint8_t *out,
		    unsigned *bad_zones, struct err *e)
{
	char rel[80], hex[65];
	uint8_t stackbuf[4096];
	uint8_t *sealed = loc->length <= sizeof stackbuf ? stackbuf : xmalloc(loc->length);
	char why[ERR_MSG_MAX] = "";
	unsigned bad = 0;
	int rc = ERR_NOTFOUND, any_damaged = 0;
	pack_relpath(loc->pack, rel);
	for (int i = 0; i < zones_count(r->z); i++) {
		struct err ze;
		err_clear(&ze);
		rc = zones_pread(r->z, i, rel, sealed, loc->length, loc->offset, &ze);
		if (rc == 0)
			rc = pack_blob_decode(codec, r->key, loc->id, sealed, loc->length, out, loc->raw, &ze);
		if (rc == 0)
			break;
		bad |= 1u << i;
		any_damaged |= rc != ERR_NOTFOUND;
		{
			size_t n = strlen(why);
			snprintf(why + n, sizeof why - n, "%szone %d: %s", n ? "; " : "", i + 1, ze.msg);
		}
	}
	if (sealed != stackbuf)
		free(sealed);
	if (bad_zones)
		*bad_zones = bad;
	if (rc < 0) {
		pack_name(loc->pack, hex);
		rc = any_damaged ? ERR_CORRUPT : ERR_NOTFOUND;
		err_set(e, rc, "no zone has a good copy of a blob of pack %.16s (%s)",
			hex, why);
		err_hint(e, "run 'pgtimefs check --read-data' to see the damage; restore the pack file into any zone");
		return rc;
	}
	return 0;
}
