/*
 * reader.h: reading one blob back, with failover across zones.
 *
 * A blob is read from its pack in the first zone where the sealed bytes authenticate and
 * decode; a missing pack or damaged bytes in one zone make the read go on to the next zone.
 * A delta blob (pack.h) is decoded against its base, which is read the same way (with its
 * own failover) or taken from a chunk cache. Thread-safe given a per-thread pack_codec.
 */
#ifndef PGTIMEFS_STORE_READER_H
#define PGTIMEFS_STORE_READER_H

#include <stdint.h>

#include "cache.h"
#include "pack.h"
#include "repo.h"

/* Where a blob lives, as the catalog records it. */
struct blob_loc {
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t pack[32];
	uint32_t offset, length, raw;
	/* a delta blob: the catalog number (0: not a delta) and location of its base */
	int64_t base_chunk;
	uint8_t base_id[CRYPTO_ID_LEN];
	uint8_t base_pack[32];
	uint32_t base_offset, base_length, base_raw;
};

/* The location of loc's base, as a blob_loc of its own (loc->base_chunk must be set). */
void blob_loc_base(const struct blob_loc *loc, struct blob_loc *base);

/*
 * Reads and decodes the blob into out (loc->raw bytes), its base first when it is a delta.
 * *bad_zones (may be NULL) gets a bit per zone that was tried and failed (for the blob
 * itself). When no zone has a good copy: ERR_CORRUPT if a zone held other bytes (damage: the
 * hint says check --read-data), else ERR_IO if a zone could not be read at all (the hint says
 * make it readable), else ERR_NOTFOUND; the message names the pack and what each zone said. A
 * location whose length no blob can have is ERR_CORRUPT before anything is allocated or read.
 */
int store_read_blob(const struct repo *r, pack_codec *codec, const struct blob_loc *loc, uint8_t *out,
		    unsigned *bad_zones, struct err *e);

/* store_read_blob with the base's plaintext already at hand (base_len bytes; NULL: none). */
int store_read_blob_base(const struct repo *r, pack_codec *codec, const struct blob_loc *loc, const uint8_t *base,
			 size_t base_len, uint8_t *out, unsigned *bad_zones, struct err *e);

/*
 * store_read_blob for the chunk numbered chunk, through cache (may be NULL): a delta's base
 * is taken from the cache or decoded and put there (under its own number), since the
 * chunks of the next snapshots share it. The chunk itself is not cached here.
 * base_parts: the base is released with these parts passed (cache_release_passed): a reader
 * going through one snapshot in order passes it whole (CACHE_PASSED_WHOLE), as it will not
 * want it again; 0 keeps it an ordinary entry.
 */
int store_read_blob_cached(const struct repo *r, pack_codec *codec, chunk_cache *cache, const struct blob_loc *loc,
			   uint8_t *out, unsigned base_parts, struct err *e);

#endif
