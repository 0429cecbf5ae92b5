#include "pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zstd.h>

#include "common/util.h"

static const char trailer_ad_prefix[] = "pgtimefs pack trailer";

struct pack_codec {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	int level;
	uint8_t *scratch; /* flag byte + compressed payload, or opened plaintext */
	size_t encoded;	  /* bytes of scratch pack_blob_encode_eid left for pack_blob_seal_encoded, 0: none */
	size_t scratch_cap;
};

struct pack_builder {
	uint8_t *buf;
	size_t len, cap;
	struct pack_entry *entries;
	size_t n, ncap;
	int finished;
};

static void cctx_params(pack_codec *c)
{
	ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, c->level);
	ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0);
	ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1);
}

pack_codec *pack_codec_new(int zstd_level)
{
	pack_codec *c = xcalloc(1, sizeof *c);
	c->cctx = ZSTD_createCCtx();
	c->dctx = ZSTD_createDCtx();
	if (!c->cctx || !c->dctx)
		abort();
	c->level = zstd_level;
	cctx_params(c);
	return c;
}

void pack_codec_free(pack_codec *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c->scratch);
	free(c);
}

static uint8_t *scratch(pack_codec *c, size_t n)
{
	c->encoded = 0; /* whatever used scratch last is overwritten now */
	if (c->scratch_cap < n) {
		free(c->scratch);
		c->scratch = xmalloc(n);
		c->scratch_cap = n;
	}
	return c->scratch;
}

size_t pack_blob_bound(size_t len)
{
	return 1 + len + CRYPTO_SEAL_OVERHEAD;
}

int pack_blob_encode(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const void *data,
		     size_t len, uint8_t *out, size_t *outlen, struct err *e)
{
	return pack_blob_encode_delta(c, k, id, data, len, NULL, NULL, 0, 0, out, outlen, NULL, e);
}

/* zstd-compresses data into dst (cap bytes) against base (NULL: none); the size, or 0 on failure */
static size_t compress(pack_codec *c, uint8_t *dst, size_t cap, const void *data, size_t len, const void *base,
		       size_t base_len)
{
	size_t z;
	/*
	 * A delta frame is made at PACK_DELTA_LEVEL at least (zstd's fast levels hardly use the
	 * prefix) and carries a checksum: decoded against the wrong base it fails, never lies.
	 */
	if (base && (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel,
							 c->level > PACK_DELTA_LEVEL ? c->level : PACK_DELTA_LEVEL)) ||
		     ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 1)) ||
		     ZSTD_isError(ZSTD_CCtx_refPrefix(c->cctx, base, base_len))))
		z = (size_t)-1;
	else
		z = ZSTD_compress2(c->cctx, dst, cap, data, len);
	if (base)
		cctx_params(c);
	if (!ZSTD_isError(z))
		return z;
	/* a prefix is used by one frame only; make sure a failed one is not left for the next */
	ZSTD_CCtx_reset(c->cctx, ZSTD_reset_session_and_parameters);
	cctx_params(c);
	return 0;
}

/* Flag and payload of data without a base into s (1 + max(bound, len) bytes); their length. */
static size_t encode_plain(pack_codec *c, uint8_t *s, size_t bound, const void *data, size_t len)
{
	size_t z = compress(c, s + 1, bound, data, len, NULL, 0);
	if (z && z + 16 < len) { /* keep compression only when it pays */
		s[0] = PACK_FLAG_ZSTD;
		return 1 + z;
	}
	s[0] = PACK_FLAG_RAW;
	memcpy(s + 1, data, len);
	return 1 + len;
}

void pack_blob_encode_eid(pack_codec *c, crypto_hasher *h, const void *data, size_t len, uint8_t id[CRYPTO_ID_LEN])
{
	size_t bound = ZSTD_compressBound(len);
	uint8_t *s = scratch(c, 1 + (bound > len ? bound : len));
	c->encoded = encode_plain(c, s, bound, data, len);
	crypto_hasher_id(h, s, c->encoded, id);
}

int pack_blob_seal_encoded(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], uint8_t *out,
			   size_t *outlen, struct err *e)
{
	size_t plen = c->encoded;
	if (!plen)
		return err_set(e, ERR_INTERNAL, "no encoded blob to seal");
	c->encoded = 0;
	*outlen = plen + CRYPTO_SEAL_OVERHEAD;
	return crypto_seal(k, id, CRYPTO_ID_LEN, c->scratch, plen, out, e);
}

/* a delta is kept when it is at most 3/4 of the plain blob: clearly smaller, worth its base */
static int delta_pays(size_t delta_plen, size_t plain_plen)
{
	return 4 * delta_plen <= 3 * plain_plen;
}

int pack_blob_encode_delta(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const void *data,
			   size_t len, const uint8_t base_id[CRYPTO_ID_LEN], const void *base, size_t base_len,
			   size_t plain_hint, uint8_t *out, size_t *outlen, int *delta, struct err *e)
{
	size_t bound = ZSTD_compressBound(len);
	/* the plain payload at s, a delta payload (flag, base id, frame) after it */
	size_t half = 1 + (bound > len ? bound : len);
	uint8_t *s = scratch(c, 2 * half + CRYPTO_ID_LEN);
	uint8_t *d = s + half;
	size_t dz = 0, plen;
	int rc;
	if (delta)
		*delta = 0;
	if (base && base_id && (dz = compress(c, d + 1 + CRYPTO_ID_LEN, bound, data, len, base, base_len))) {
		d[0] = PACK_FLAG_DELTA;
		memcpy(d + 1, base_id, CRYPTO_ID_LEN);
		/* the expected plain size is enough to decide: no second compression of the block */
		if (plain_hint && 1 + CRYPTO_ID_LEN + dz <= 1 + len && /* within pack_blob_bound */
		    delta_pays(1 + CRYPTO_ID_LEN + dz, plain_hint)) {
			plen = 1 + CRYPTO_ID_LEN + dz;
			goto keep_delta;
		}
	}
	plen = encode_plain(c, s, bound, data, len);
	if (!dz || !delta_pays(1 + CRYPTO_ID_LEN + dz, plen)) {
		d = s;
		goto seal;
	}
	plen = 1 + CRYPTO_ID_LEN + dz;
keep_delta:
	if (delta)
		*delta = 1;
seal:
	rc = crypto_seal(k, id, CRYPTO_ID_LEN, d, plen, out, e);
	*outlen = plen + CRYPTO_SEAL_OVERHEAD;
	return rc;
}

/* Opens a sealed blob into the codec's scratch: *s (flag byte first) and its length *plen. */
static int blob_open(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *sealed,
		     size_t len, uint8_t **s, size_t *plen, struct err *e)
{
	if (len < CRYPTO_SEAL_OVERHEAD + 1 || len > PACK_MAX)
		return err_set(e, ERR_CORRUPT, "blob has an impossible length %zu", len);
	*plen = len - CRYPTO_SEAL_OVERHEAD;
	*s = scratch(c, *plen);
	return crypto_open(k, id, CRYPTO_ID_LEN, sealed, len, *s, e);
}

int pack_blob_decode(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *sealed,
		     size_t len, uint8_t *out, size_t raw, struct err *e)
{
	return pack_blob_decode_delta(c, k, id, sealed, len, NULL, NULL, 0, out, raw, e);
}

int pack_blob_decode_delta(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *sealed,
			   size_t len, const uint8_t base_id[CRYPTO_ID_LEN], const void *base, size_t base_len,
			   uint8_t *out, size_t raw, struct err *e)
{
	uint8_t *s = NULL;
	size_t plen = 0;
	int rc;
	if ((rc = blob_open(c, k, id, sealed, len, &s, &plen, e)) < 0)
		return rc;
	if (s[0] == PACK_FLAG_RAW) {
		if (plen - 1 != raw)
			return err_set(e, ERR_CORRUPT, "blob holds %zu bytes, the catalog says %zu", plen - 1, raw);
		memcpy(out, s + 1, raw);
		return 0;
	}
	if (s[0] == PACK_FLAG_ZSTD) {
		size_t d = ZSTD_decompressDCtx(c->dctx, out, raw, s + 1, plen - 1);
		if (ZSTD_isError(d) || d != raw)
			return err_set(e, ERR_CORRUPT, "blob does not decompress to %zu bytes", raw);
		return 0;
	}
	if (s[0] == PACK_FLAG_DELTA) {
		size_t d;
		if (plen < 1 + CRYPTO_ID_LEN)
			return err_set(e, ERR_CORRUPT, "delta blob too short (%zu bytes)", plen);
		if (!base || !base_id)
			return err_set(e, ERR_CORRUPT, "blob is a delta, but the catalog records no base for it");
		if (memcmp(s + 1, base_id, CRYPTO_ID_LEN))
			return err_set(e, ERR_CORRUPT, "delta blob names another base than the catalog");
		if (ZSTD_isError(ZSTD_DCtx_refPrefix(c->dctx, base, base_len)))
			return err_set(e, ERR_CORRUPT, "cannot use the base of a delta blob");
		d = ZSTD_decompressDCtx(c->dctx, out, raw, s + 1 + CRYPTO_ID_LEN, plen - 1 - CRYPTO_ID_LEN);
		if (ZSTD_isError(d) || d != raw) {
			ZSTD_DCtx_reset(c->dctx, ZSTD_reset_session_and_parameters);
			return err_set(e, ERR_CORRUPT, "delta blob does not decompress to %zu bytes", raw);
		}
		return 0;
	}
	return err_set(e, ERR_CORRUPT, "blob has an unknown encoding %u", s[0]);
}

int pack_blob_flag(pack_codec *c, const crypto_key *k, const uint8_t id[CRYPTO_ID_LEN], const uint8_t *sealed,
		   size_t len, uint8_t base_id[CRYPTO_ID_LEN], struct err *e)
{
	uint8_t *s = NULL;
	size_t plen = 0;
	int rc;
	if ((rc = blob_open(c, k, id, sealed, len, &s, &plen, e)) < 0)
		return rc;
	if (s[0] == PACK_FLAG_DELTA) {
		if (plen < 1 + CRYPTO_ID_LEN)
			return err_set(e, ERR_CORRUPT, "delta blob too short (%zu bytes)", plen);
		if (base_id)
			memcpy(base_id, s + 1, CRYPTO_ID_LEN);
	}
	return s[0];
}

pack_builder *pack_builder_new(void)
{
	pack_builder *b = xcalloc(1, sizeof *b);
	pack_builder_reset(b);
	return b;
}

void pack_builder_free(pack_builder *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->entries);
	free(b);
}

#define PACK_HUGE_MIN (4u << 20)

/* The buffer is PACK_ALIGN aligned and its capacity a multiple of it (see pack_builder_data). */
static void reserve(pack_builder *b, size_t more)
{
	if (b->len + more > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;
		void *p;
		while (cap < b->len + more)
			cap *= 2;
		cap = (cap + PACK_ALIGN - 1) & ~(size_t)(PACK_ALIGN - 1);
		if (posix_memalign(&p, PACK_ALIGN, cap) != 0)
			abort();
		/* a pack is megabytes filled front to back: 2 MiB pages fault 512 times less often */
		if (cap >= PACK_HUGE_MIN)
			madvise(p, cap, MADV_HUGEPAGE);
		if (b->len)
			memcpy(p, b->buf, b->len);
		free(b->buf);
		b->buf = p;
		b->cap = cap;
	}
}

void pack_builder_reserve(pack_builder *b, size_t cap)
{
	if (cap > b->len)
		reserve(b, cap - b->len);
}

void pack_builder_reset(pack_builder *b)
{
	b->len = 0;
	b->n = 0;
	b->finished = 0;
	reserve(b, PACK_HEADER_LEN);
	memcpy(b->buf, PACK_MAGIC, 8);
	put_le32(b->buf + 8, 1);
	put_le32(b->buf + 12, 0);
	b->len = PACK_HEADER_LEN;
}

uint32_t pack_builder_add(pack_builder *b, const uint8_t id[CRYPTO_ID_LEN], uint8_t type, uint32_t raw,
			  const uint8_t *sealed, size_t len)
{
	uint32_t off = (uint32_t)b->len;
	struct pack_entry *pe;
	reserve(b, len);
	memcpy(b->buf + b->len, sealed, len);
	b->len += len;
	if (b->n == b->ncap) {
		b->ncap = b->ncap ? b->ncap * 2 : 256;
		b->entries = xrealloc(b->entries, b->ncap * sizeof *b->entries);
	}
	pe = &b->entries[b->n++];
	memcpy(pe->id, id, CRYPTO_ID_LEN);
	pe->type = type;
	pe->offset = off;
	pe->length = (uint32_t)len;
	pe->raw = raw;
	return off;
}

size_t pack_builder_size(const pack_builder *b)
{
	return b->len;
}

size_t pack_builder_count(const pack_builder *b)
{
	return b->n;
}

size_t pack_builder_room(const pack_builder *b)
{
	return b->cap - b->len;
}

int pack_builder_finish(pack_builder *b, const crypto_key *k, uint8_t pack_id[32], struct err *e)
{
	return pack_builder_finish_from(b, k, NULL, 0, pack_id, e);
}

int pack_builder_finish_from(pack_builder *b, const crypto_key *k, crypto_sha *prefix, size_t hashed,
			     uint8_t pack_id[32], struct err *e)
{
	size_t plen = 4 + b->n * PACK_ENTRY_LEN, slen = plen + CRYPTO_SEAL_OVERHEAD;
	uint8_t *plain = xmalloc(plen), ad[sizeof trailer_ad_prefix - 1 + PACK_HEADER_LEN];
	uint8_t *p = plain;
	int rc;
	put_le32(p, (uint32_t)b->n);
	p += 4;
	for (size_t i = 0; i < b->n; i++) {
		memcpy(p, b->entries[i].id, 32);
		p[32] = b->entries[i].type;
		put_le32(p + 33, b->entries[i].offset);
		put_le32(p + 37, b->entries[i].length);
		put_le32(p + 41, b->entries[i].raw);
		p += PACK_ENTRY_LEN;
	}
	memcpy(ad, trailer_ad_prefix, sizeof trailer_ad_prefix - 1);
	memcpy(ad + sizeof trailer_ad_prefix - 1, b->buf, PACK_HEADER_LEN);
	reserve(b, slen + 4 + PACK_ALIGN); /* room to round the write up to PACK_ALIGN */
	rc = crypto_seal(k, ad, sizeof ad, plain, plen, b->buf + b->len, e);
	free(plain);
	if (rc < 0)
		return rc;
	b->len += slen;
	put_le32(b->buf + b->len, (uint32_t)slen);
	b->len += 4;
	memset(b->buf + b->len, 0, PACK_ALIGN - b->len % PACK_ALIGN); /* defined padding for direct writes */
	b->finished = 1;
	if (prefix) {
		crypto_sha_update(prefix, b->buf + hashed, b->len - hashed);
		crypto_sha_final(prefix, pack_id);
	} else {
		crypto_sha256(b->buf, b->len, pack_id);
	}
	return 0;
}

const uint8_t *pack_builder_data(const pack_builder *b, size_t *len)
{
	*len = b->len;
	return b->buf;
}

const struct pack_entry *pack_builder_entries(const pack_builder *b, size_t *n)
{
	*n = b->n;
	return b->entries;
}

int pack_parse(const crypto_key *k, const uint8_t *pack, size_t len, struct pack_entry **entries, size_t *n,
	       struct err *e)
{
	uint8_t ad[sizeof trailer_ad_prefix - 1 + PACK_HEADER_LEN];
	uint32_t slen, count;
	uint8_t *plain = NULL;
	struct pack_entry *out = NULL;
	size_t blob_end;
	int rc;
	*entries = NULL;
	*n = 0;
	if (len < PACK_HEADER_LEN + 4 + CRYPTO_SEAL_OVERHEAD + 4 || len > PACK_MAX)
		return err_set(e, ERR_CORRUPT, "pack too short or too long (%zu bytes)", len);
	if (memcmp(pack, PACK_MAGIC, 8) || get_le32(pack + 8) != 1)
		return err_set(e, ERR_CORRUPT, "not a pack (bad magic or version)");
	slen = get_le32(pack + len - 4);
	if (slen < CRYPTO_SEAL_OVERHEAD + 4 || slen > len - PACK_HEADER_LEN - 4)
		return err_set(e, ERR_CORRUPT, "pack trailer length %u is impossible", slen);
	blob_end = len - 4 - slen;
	memcpy(ad, trailer_ad_prefix, sizeof trailer_ad_prefix - 1);
	memcpy(ad + sizeof trailer_ad_prefix - 1, pack, PACK_HEADER_LEN);
	plain = xmalloc(slen - CRYPTO_SEAL_OVERHEAD);
	if ((rc = crypto_open(k, ad, sizeof ad, pack + blob_end, slen, plain, e)) < 0) {
		err_prefix(e, "pack trailer");
		goto out;
	}
	count = get_le32(plain);
	if ((uint64_t)count * PACK_ENTRY_LEN + 4 != slen - CRYPTO_SEAL_OVERHEAD) {
		rc = err_set(e, ERR_CORRUPT, "pack trailer entry count %u does not match its length", count);
		goto out;
	}
	out = xcalloc(count ? count : 1, sizeof *out);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *p = plain + 4 + (size_t)i * PACK_ENTRY_LEN;
		memcpy(out[i].id, p, 32);
		out[i].type = p[32];
		out[i].offset = get_le32(p + 33);
		out[i].length = get_le32(p + 37);
		out[i].raw = get_le32(p + 41);
		if (out[i].offset < PACK_HEADER_LEN || (uint64_t)out[i].offset + out[i].length > blob_end ||
		    out[i].length < CRYPTO_SEAL_OVERHEAD + 1) {
			rc = err_set(e, ERR_CORRUPT, "pack entry %u lies outside the blob area", i);
			goto out;
		}
	}
	*entries = out;
	*n = count;
	out = NULL;
	rc = 0;
out:
	free(out);
	free(plain);
	return rc;
}

void pack_name(const uint8_t id[32], char hex[65])
{
	hex_encode(id, 32, hex);
}

void pack_relpath(const uint8_t id[32], char out[80])
{
	char hex[65];
	hex_encode(id, 32, hex);
	snprintf(out, 80, "packs/%.2s/%s", hex, hex);
}
