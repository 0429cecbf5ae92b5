/*
 * fuzz_pack.c: pack_parse (store/pack.h) on untrusted pack bytes, with the fixed key.
 *
 * Input: one mode byte, then
 *   mode even: the bytes of a whole pack, given to pack_parse as they are (what a damaged or
 *              hostile zone could hold);
 *   mode odd:  u16 blob-area length | blob area | trailer plaintext. The target builds a pack
 *              around them and seals the trailer with the key, so the entry count and the
 *              entry bounds checks behind the authentication are reached too.
 * On success every entry must lie inside the blob area (checked here and read through, so
 * ASan sees any bound the parser let slip); on failure nothing may be returned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "store/pack.h"

static const char trailer_ad_prefix[] = "pgtimefs pack trailer";

/* A pack of blob area + sealed trailer plaintext; *len gets its length. */
static uint8_t *build(const uint8_t *area, size_t area_len, const uint8_t *plain, size_t plain_len, size_t *len)
{
	size_t slen = plain_len + CRYPTO_SEAL_OVERHEAD;
	uint8_t *p = malloc(PACK_HEADER_LEN + area_len + slen + 4);
	uint8_t ad[sizeof trailer_ad_prefix - 1 + PACK_HEADER_LEN];
	if (!p)
		abort();
	memcpy(p, PACK_MAGIC, 8);
	put_le32(p + 8, 1);
	put_le32(p + 12, 0);
	memcpy(p + PACK_HEADER_LEN, area, area_len);
	memcpy(ad, trailer_ad_prefix, sizeof trailer_ad_prefix - 1);
	memcpy(ad + sizeof trailer_ad_prefix - 1, p, PACK_HEADER_LEN);
	if (crypto_seal(fuzz_key(), ad, sizeof ad, plain, plain_len, p + PACK_HEADER_LEN + area_len, NULL) < 0)
		abort();
	put_le32(p + PACK_HEADER_LEN + area_len + slen, (uint32_t)slen);
	*len = PACK_HEADER_LEN + area_len + slen + 4;
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct pack_entry *ents = (struct pack_entry *)1;
	uint8_t *pack = NULL;
	const uint8_t *bytes;
	size_t len, n = 99;
	struct err e;
	int rc;
	if ((fuzz_u8(&in) & 1) == 0) {
		bytes = in.p;
		len = in.n;
	} else {
		size_t area_len;
		const uint8_t *area = fuzz_take(&in, fuzz_u16(&in), &area_len);
		pack = build(area, area_len, in.p, in.n, &len);
		bytes = pack;
	}
	err_clear(&e);
	rc = pack_parse(fuzz_key(), bytes, len, &ents, &n, &e);
	if (rc < 0) {
		fuzz_require(ents == NULL && n == 0);
		fuzz_require(e.code == rc && e.msg[0]);
	} else {
		uint32_t slen = get_le32(bytes + len - 4);
		size_t blob_end = len - 4 - slen;
		unsigned sum = 0;
		fuzz_require(rc == 0);
		fuzz_require(ents != NULL);
		for (size_t i = 0; i < n; i++) {
			fuzz_require(ents[i].offset >= PACK_HEADER_LEN);
			fuzz_require((uint64_t)ents[i].offset + ents[i].length <= blob_end);
			fuzz_require(ents[i].length >= CRYPTO_SEAL_OVERHEAD + 1);
			for (uint32_t j = 0; j < ents[i].length; j++)
				sum += bytes[ents[i].offset + j];
		}
		(void)sum;
		free(ents);
	}
	free(pack);
	return 0;
}
