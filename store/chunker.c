#include "chunker.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct chunker {
	struct chunker_params p;
	uint64_t gear[256];
	uint64_t mask_s; /* more bits: harder to cut below the normal size */
	uint64_t mask_l; /* fewer bits: easier to cut above it */
};

void chunker_params_default(struct chunker_params *p)
{
	p->block_size = 64 * 1024;
	p->cdc_min = 16 * 1024;
	p->cdc_avg = 64 * 1024;
	p->cdc_max = 256 * 1024;
	p->seed = 0;
}

static int pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int chunker_params_valid(const struct chunker_params *p)
{
	return p->block_size >= 8192 && p->block_size <= (8u << 20) && p->block_size % 8192 == 0 &&
	       pow2(p->cdc_avg) && p->cdc_min >= 64 && p->cdc_min < p->cdc_avg && p->cdc_avg < p->cdc_max &&
	       p->cdc_max <= (8u << 20);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t spread_mask(int bits)
{
	/* bits set spread over the top 48 bits, as FastCDC's masks are */
	uint64_t m = 0;
	for (int i = 0; i < bits; i++)
		m |= 1ull << (63 - i * 48 / (bits ? bits : 1));
	return m;
}

chunker *chunker_new(const struct chunker_params *p)
{
	chunker *c = xcalloc(1, sizeof *c);
	uint64_t s = p->seed;
	int bits = 0;
	c->p = *p;
	for (int i = 0; i < 256; i++)
		c->gear[i] = splitmix64(&s);
	while ((1u << bits) < p->cdc_avg)
		bits++;
	c->mask_s = spread_mask(bits + 2);
	c->mask_l = spread_mask(bits - 2);
	return c;
}

void chunker_free(chunker *c)
{
	free(c);
}

size_t chunker_cdc_cut(const chunker *c, const uint8_t *buf, size_t len)
{
	size_t n = len < c->p.cdc_max ? len : c->p.cdc_max;
	size_t normal = c->p.cdc_avg, i;
	uint64_t h = 0;
	if (n <= c->p.cdc_min)
		return n;
	if (normal > n)
		normal = n;
	for (i = c->p.cdc_min; i < normal; i++) {
		h = (h << 1) + c->gear[buf[i]];
		if (!(h & c->mask_s))
			return i + 1;
	}
	for (; i < n; i++) {
		h = (h << 1) + c->gear[buf[i]];
		if (!(h & c->mask_l))
			return i + 1;
	}
	return n;
}

uint32_t chunker_block_size(const chunker *c)
{
	return c->p.block_size;
}

uint32_t chunker_max(const chunker *c)
{
	return c->p.block_size > c->p.cdc_max ? c->p.block_size : c->p.cdc_max;
}

int chunker_is_paged(const char *relpath)
{
	const char *base = strrchr(relpath, '/');
	const char *p;
	size_t n;
	base = base ? base + 1 : relpath;
	n = strlen(base);
	if (n == 24) {
		for (p = base; *p; p++)
			if (!isxdigit((unsigned char)*p))
				goto relation;
		return 1;
	}
relation:
	p = base;
	if (!isdigit((unsigned char)*p))
		return 0;
	while (isdigit((unsigned char)*p))
		p++;
	if (!strncmp(p, "_fsm", 4) || !strncmp(p, "_init", 5))
		p += p[1] == 'f' ? 4 : 5;
	else if (!strncmp(p, "_vm", 3))
		p += 3;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}
