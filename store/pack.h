/*
 * pack.h: blobs and the immutable pack files that hold them.
 *
 * A blob is one chunk: sealed(ad = blob id, plaintext = flag byte | payload), flag 0 for a
 * raw payload, 1 for a zstd frame, 2 for a delta: the base blob's id (32 bytes) and a zstd
 * frame compressed with the base's plaintext as its prefix (ZSTD_CCtx_refPrefix). Decoding a
 * delta needs the base's plaintext; a base is never itself a delta (docs/design-notes.md,
 * "Delta blocks"). A pack is
 *     header (16: "PGTFPAK1", u32 version 1, u32 0) | blob | blob | ... |
 *     trailer = sealed(ad = "pgtimefs pack trailer" | header,
 *                      u32 count | count x (id[32], u8 type, u32 offset, u32 length, u32 raw))
 *     | u32 length of the sealed trailer
 * all integers little-endian. The pack id is SHA-256 of all of the pack's bytes, so a copy is
 * checked without the key. Packs are at most PACK_MAX bytes.
 *
 * A pack_builder is owned by one thread. Blob encode/decode are thread-safe given a
 * per-thread pack_codec.
 */
#ifndef PGTIMEFS_STORE_PACK_H
#define PGTIMEFS_STORE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define PACK_MAGIC "PGTFPAK1"
#define PACK_HEADER_LEN 16
#define PACK_ENTRY_LEN 45
#define PACK_MAX (1u << 30)
#define PACK_BLOB_DATA 1 /* a file's chunk */
#define PACK_ALIGN 4096	 /* alignment of a builder's buffer (O_DIRECT writes) */

/* the flag byte at the start of a blob's plaintext */
#define PACK_FLAG_RAW 0
#define PACK_FLAG_ZSTD 1
#define PACK_FLAG_DELTA 2
/* the least zstd level of a delta frame: the fast levels hardly find matches in the prefix */
#define PACK_DELTA_LEVEL 3

struct pack_entry {
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t type;
	uint32_t offset; /* of the sealed blob in the pack */
	uint32_t length; /* sealed length */
	uint32_t raw;	 /* plaintext length */
};

/* --- blobs --- */

typedef struct pack_codec pack_codec; /* per-thread zstd contexts and scratch space */

pack_codec *pack_codec_new(int zstd_level);
void pack_codec_free(pack_codec *c);

/* Upper bound of a sealed blob for len plaintext bytes. */
size_t pack_blob_bound(size_t len);
/*
 * Compresses (when that saves space) and seals data under id into out (pack_blob_bound(len)
 * bytes); *outlen gets the sealed length.
 */
int pack_blob_encode(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const void *data,
		     size_t len, uint8_t *out, size_t *outlen, struct err *e);
/*
 * Encodes data (flag byte, and a zstd frame when that saves space) into the codec and gives
 * its encoded id: crypto_hasher_id(h, flag || payload) with h from crypto_hasher_new_encoded
 * (docs/format.md, "Encoded blob id"). Equal data give equal ids as long as the zstd library
 * and level are the same; equal ids always mean equal data (an encoding decodes one way
 * only). Used for WAL, which is compressed in any case and whose ids are then a hash over its
 * compressed bytes, a third of them or less, instead of over the 16 MiB of a segment. The
 * encoding stays in the codec until its next use: pack_blob_seal_encoded seals it (into
 * pack_blob_bound(len) bytes at out) once the id has turned out to be new; ERR_INTERNAL when
 * there is none.
 */
void pack_blob_encode_eid(pack_codec *c, crypto_hasher *h, const void *data, size_t len, uint8_t id[CRYPTO_ID_LEN]);
int pack_blob_seal_encoded(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], uint8_t *out,
			   size_t *outlen, struct err *e);
/*
 * pack_blob_encode, also trying a delta against base (base_len plaintext bytes of the blob
 * base_id, which must not itself be a delta; base NULL: no delta). The delta is kept when its
 * plaintext (flag, base id, frame) is at most 3/4 of the plain blob's. plain_hint (0: none)
 * is the plain blob's expected plaintext size (the base's own, for a new version of a block):
 * a delta within 3/4 of it is kept without compressing the block a second time. *delta (may
 * be NULL) says whether the delta was kept.
 */
int pack_blob_encode_delta(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const void *data,
			   size_t len, const uint8_t base_id[CRYPTO_ID_LEN], const void *base, size_t base_len,
			   size_t plain_hint, uint8_t *out, size_t *outlen, int *delta, struct err *e);
/*
 * Opens and decompresses a sealed blob of raw plaintext bytes into out (raw bytes).
 * ERR_CORRUPT when it does not authenticate or decompress to exactly raw bytes, and for a
 * delta blob (it needs its base: pack_blob_decode_delta).
 */
int pack_blob_decode(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *sealed,
		     size_t len, uint8_t *out, size_t raw, struct err *e);
/*
 * pack_blob_decode for a blob that may be a delta against base_id, whose plaintext is base
 * (NULL: none known). A delta naming another base than base_id is ERR_CORRUPT; a blob that
 * is not a delta decodes without the base.
 */
int pack_blob_decode_delta(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *sealed,
			   size_t len, const uint8_t base_id[CRYPTO_ID_LEN], const void *base, size_t base_len,
			   uint8_t *out, size_t raw, struct err *e);
/*
 * Opens a sealed blob and returns its flag (PACK_FLAG_*) without decompressing it; for a delta
 * base_id (may be NULL) gets the base it names. <0 when it does not authenticate.
 */
int pack_blob_flag(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *sealed,
		   size_t len, uint8_t base_id[CRYPTO_ID_LEN], struct err *e);

/* --- building packs --- */

typedef struct pack_builder pack_builder;

pack_builder *pack_builder_new(void);
void pack_builder_free(pack_builder *b);
/* Makes room for cap bytes at once, so a builder of known pack size never grows later. */
void pack_builder_reserve(pack_builder *b, size_t cap);
/* Empties the builder for the next pack. */
void pack_builder_reset(pack_builder *b);
/* Appends a sealed blob; returns its offset. */
uint32_t pack_builder_add(pack_builder *b, const uint8_t id[CRYPTO_ID_LEN], uint8_t type, uint32_t raw,
			  const uint8_t *sealed, size_t len);
size_t pack_builder_size(const pack_builder *b);
size_t pack_builder_count(const pack_builder *b);
/* Bytes that can be added before the buffer has to move (pack_builder_data changes). */
size_t pack_builder_room(const pack_builder *b);
/* Seals and appends the trailer and computes the pack id. No add after this until reset. */
int pack_builder_finish(pack_builder *b, const crypto_key *k, uint8_t pack_id[32], struct err *e);
/*
 * pack_builder_finish for a pack whose first hashed bytes went into prefix already (a SHA-256
 * being computed as the pack was written out): only the rest is hashed here. prefix is reset.
 */
int pack_builder_finish_from(pack_builder *b, const crypto_key *k, crypto_sha *prefix, size_t hashed,
			     uint8_t pack_id[32], struct err *e);
/*
 * The pack's bytes (valid until reset/free). The buffer is PACK_ALIGN aligned and readable up
 * to the next multiple of PACK_ALIGN past *len, as zones_put_direct needs.
 */
const uint8_t *pack_builder_data(const pack_builder *b, size_t *len);
/* The entries added so far. */
const struct pack_entry *pack_builder_entries(const pack_builder *b, size_t *n);

/* --- reading packs --- */

/*
 * Parses the trailer of a whole pack held in memory (len bytes): checks header and trailer
 * bounds, opens the trailer and checks every entry lies inside the blob area. On success
 * *entries (free with free()) and *n are set. Never trusts the bytes.
 */
int pack_parse(const crypto_key *k, const uint8_t *pack, size_t len, struct pack_entry **entries, size_t *n,
	       struct err *e);

/* Hex name of a pack id (65 bytes) and its path below a zone: "packs/ab/abcd...". */
void pack_name(const uint8_t id[32], char hex[65]);
void pack_relpath(const uint8_t id[32], char out[80]);

#endif
