#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void blob_loc_base(const struct blob_loc *loc, struct blob_loc *base)
{
	memset(base, 0, sizeof *base);
	memcpy(base->id, loc->base_id, CRYPTO_ID_LEN);
	memcpy(base->pack, loc->base_pack, 32);
	base->offset = loc->base_offset;
	base->length = loc->base_length;
	base->raw = loc->base_raw;
}

int store_read_blob_base(const struct repo *r, pack_codec *codec, const struct blob_loc *loc, const uint8_t *base,
			 size_t base_len, uint8_t *out, unsigned *bad_zones, struct err *e)
{
	char rel[80], hex[65];
	uint8_t stackbuf[4096];
	uint8_t *sealed;
	char why[ERR_MSG_MAX] = "";
	unsigned bad = 0;
	int rc = ERR_NOTFOUND, any_damaged = 0, any_unreadable = 0;
	if (loc->length < CRYPTO_SEAL_OVERHEAD + 1 || loc->length > PACK_MAX) { /* before any allocation */
		pack_name(loc->pack, hex);
		return err_set(e, ERR_CORRUPT, "catalog: a blob of pack %.16s has an impossible length %lu", hex,
			       (unsigned long)loc->length);
	}
	sealed = loc->length <= sizeof stackbuf ? stackbuf : xmalloc(loc->length);
	pack_relpath(loc->pack, rel);
	for (int i = 0; i < zones_count(r->z); i++) {
		struct err ze;
		err_clear(&ze);
		rc = zones_pread(r->z, i, rel, sealed, loc->length, loc->offset, &ze);
		if (rc == 0)
			rc = pack_blob_decode_delta(codec, r->key, loc->id, sealed, loc->length,
						    loc->base_chunk ? loc->base_id : NULL, base, base_len, out, loc->raw,
						    &ze);
		if (rc == 0)
			break;
		bad |= 1u << i;
		any_damaged |= rc == ERR_CORRUPT;		       /* bytes read that are not the blob */
		any_unreadable |= rc != ERR_CORRUPT && rc != ERR_NOTFOUND; /* a zone that could not be read */
		{
			size_t n = strlen(why);
			snprintf(why + n, sizeof why - n, "%szone %d: %s", n ? "; " : "", i + 1, ze.msg);
		}
	}
	if (sealed != stackbuf)
		free(sealed);
	if (bad_zones)
		*bad_zones = bad;
	if (rc == 0 && bad && r->fallback) {
		pack_name(loc->pack, hex);
		r->fallback(r->fallback_ctx, hex, bad, __builtin_ctz(~bad), why); /* the first zone that did not fail */
	}
	if (rc < 0) {
		pack_name(loc->pack, hex);
		rc = any_damaged ? ERR_CORRUPT : any_unreadable ? ERR_IO : ERR_NOTFOUND;
		err_set(e, rc, "no zone has a good copy of a blob of pack %.16s (%s)",
			hex, why);
		if (rc == ERR_IO) /* nothing read was wrong: a zone could not be read at all */
			err_hint(e, "make the zones readable again (mounted, permissions, the disk), or restore the pack "
				    "file into any zone");
		else
			err_hint(e, "run 'pgtimefs check --read-data' to see the damage; restore the pack file into any zone");
		return rc;
	}
	return 0;
}

/* Decodes the base of loc into a new buffer (*base, loc->base_raw bytes). */
static int read_base(const struct repo *r, pack_codec *codec, const struct blob_loc *loc, uint8_t **base,
		     struct err *e)
{
	struct blob_loc b;
	int rc;
	blob_loc_base(loc, &b);
	*base = xmalloc(b.raw ? b.raw : 1);
	if ((rc = store_read_blob_base(r, codec, &b, NULL, 0, *base, NULL, e)) < 0) {
		err_prefix(e, "the base of a delta chunk");
		free(*base);
		*base = NULL;
	}
	return rc;
}

int store_read_blob(const struct repo *r, pack_codec *codec, const struct blob_loc *loc, uint8_t *out,
		    unsigned *bad_zones, struct err *e)
{
	uint8_t *base = NULL;
	int rc;
	if (!loc->base_chunk)
		return store_read_blob_base(r, codec, loc, NULL, 0, out, bad_zones, e);
	if ((rc = read_base(r, codec, loc, &base, e)) < 0) {
		if (bad_zones)
			*bad_zones = 0;
		return rc;
	}
	rc = store_read_blob_base(r, codec, loc, base, loc->base_raw, out, bad_zones, e);
	free(base);
	return rc;
}

int store_read_blob_cached(const struct repo *r, pack_codec *codec, chunk_cache *cache, const struct blob_loc *loc,
			   uint8_t *out, unsigned base_parts, struct err *e)
{
	cache_ref *ref;
	uint8_t *base;
	const uint8_t *data;
	size_t len;
	int rc;
	if (!loc->base_chunk || !cache)
		return store_read_blob(r, codec, loc, out, NULL, e);
	if (!(ref = cache_get(cache, loc->base_chunk))) {
		if ((rc = read_base(r, codec, loc, &base, e)) < 0)
			return rc;
		ref = cache_put(cache, loc->base_chunk, base, loc->base_raw);
	}
	data = cache_data(ref, &len);
	rc = store_read_blob_base(r, codec, loc, data, len, out, NULL, e);
	cache_release_passed(cache, ref, base_parts);
	return rc;
}
