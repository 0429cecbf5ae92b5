/*
 * reader.h: reading one blob back, with failover across zones.
 *
 * A blob is read from its pack in the first zone where the sealed bytes authenticate and
 * decode; a missing pack or damaged bytes in one zone make the read go on to the next zone.
 * Thread-safe given a per-thread pack_codec and scratch buffer.
 */
#ifndef PGTIMEFS_STORE_READER_H
#define PGTIMEFS_STORE_READER_H

#include <stdint.h>

#include "pack.h"
#include "repo.h"

/* Where a blob lives, as the catalog records it. */
struct blob_loc {
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t pack[32];
	uint32_t offset, length, raw;
};

/*
 * Reads and decodes the blob into out (loc->raw bytes). *bad_zones (may be NULL) gets a bit
 * per zone that was tried and failed. ERR_CORRUPT or ERR_NOTFOUND when no zone has a good
 * copy; the message names the pack and what each zone said.
 */
int store_read_blob(const struct repo *r, pack_codec *codec, const struct blob_loc *loc, uint8_t *out,
		    unsigned *bad_zones, struct err *e);

#endif
