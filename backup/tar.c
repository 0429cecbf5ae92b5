#include "tar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

enum state { T_HEADER, T_DATA, T_PAD, T_SKIP, T_END };

struct tar_parser {
	struct tar_callbacks cb;
	enum state st;
	uint8_t hdr[512];
	size_t have;	    /* header bytes collected */
	uint64_t left;	    /* data, padding or skipped bytes left */
	uint64_t pad;	    /* padding after the data */
	int zero_blocks;
	struct tar_member m;
};

tar_parser *tar_new(const struct tar_callbacks *cb)
{
	tar_parser *t = xcalloc(1, sizeof *t);
	t->cb = *cb;
	return t;
}

void tar_free(tar_parser *t)
{
	free(t);
}

void tar_reset(tar_parser *t)
{
	struct tar_callbacks cb = t->cb;
	memset(t, 0, sizeof *t);
	t->cb = cb;
}

static int number(const uint8_t *f, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	if (f[0] & 0x80) { /* base-256 (GNU, and PostgreSQL for sizes over 8 GiB) */
		v = f[0] & 0x7f;
		for (i = 1; i < len; i++) {
			if (v >> 56)
				return -1;
			v = v << 8 | f[i];
		}
		*out = v;
		return 0;
	}
	while (i < len && (f[i] == ' ' || f[i] == '\0'))
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	*out = v;
	return 0;
}

static int header_ok(const uint8_t *h)
{
	uint64_t sum, calc = 0;
	if (number(h + 148, 8, &sum) < 0)
		return 0;
	for (int i = 0; i < 512; i++)
		calc += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum == calc;
}

static int parse_header(tar_parser *t, struct err *e)
{
	const uint8_t *h = t->hdr;
	struct tar_member *m = &t->m;
	uint64_t v;
	char name[101], prefix[156];
	size_t n;
	int zero = 1;
	for (int i = 0; i < 512 && zero; i++)
		zero = h[i] == 0;
	if (zero) {
		if (++t->zero_blocks == 2)
			t->st = T_END;
		return 0;
	}
	t->zero_blocks = 0;
	if (!header_ok(h))
		return err_set(e, ERR_CORRUPT, "tar stream: bad header checksum");
	memset(m, 0, sizeof *m);
	m->type = h[156] ? (char)h[156] : '0';
	if (number(h + 124, 12, &m->size) < 0)
		return err_set(e, ERR_CORRUPT, "tar stream: bad size field");
	if (m->type == 'x' || m->type == 'g' || m->type == 'L' || m->type == 'K') {
		/* extended headers: not written by PostgreSQL; skipped */
		t->left = m->size + ((512 - m->size % 512) % 512);
		t->st = t->left ? T_SKIP : T_HEADER;
		return 0;
	}
	memcpy(name, h, 100);
	name[100] = '\0';
	prefix[0] = '\0';
	if (!memcmp(h + 257, "ustar", 5)) {
		memcpy(prefix, h + 345, 155);
		prefix[155] = '\0';
	}
	if (prefix[0])
		snprintf(m->path, sizeof m->path, "%s/%s", prefix, name);
	else
		snprintf(m->path, sizeof m->path, "%s", name);
	n = strlen(m->path);
	while (n > 0 && m->path[n - 1] == '/')
		m->path[--n] = '\0';
	while (!strncmp(m->path, "./", 2))
		memmove(m->path, m->path + 2, strlen(m->path + 2) + 1);
	if (number(h + 100, 8, &v) < 0)
		return err_set(e, ERR_CORRUPT, "tar stream: bad mode of %s", m->path);
	m->mode = (uint32_t)v & 07777;
	number(h + 108, 8, &v);
	m->uid = (uint32_t)v;
	number(h + 116, 8, &v);
	m->gid = (uint32_t)v;
	number(h + 136, 12, &v);
	m->mtime = (int64_t)v;
	memcpy(m->link, h + 157, 100);
	m->link[100] = '\0';
	if (m->type != '0' && m->type != '7')
		m->size = m->type == '5' || m->type == '2' ? 0 : m->size;
	if (m->type == '7')
		m->type = '0';
	if (t->cb.member) {
		int rc = t->cb.member(t->cb.ctx, m, e);
		if (rc < 0)
			return rc;
	}
	t->left = m->size;
	t->pad = (512 - m->size % 512) % 512;
	if (t->left)
		t->st = T_DATA;
	else if (t->cb.member_end)
		return t->cb.member_end(t->cb.ctx, e);
	return 0;
}

int tar_feed(tar_parser *t, const uint8_t *p, size_t n, struct err *e)
{
	int rc;
	while (n) {
		size_t k;
		switch (t->st) {
		case T_HEADER:
			k = 512 - t->have;
			if (k > n)
				k = n;
			memcpy(t->hdr + t->have, p, k);
			t->have += k;
			p += k;
			n -= k;
			if (t->have == 512) {
				t->have = 0;
				if ((rc = parse_header(t, e)) < 0)
					return rc;
			}
			break;
		case T_DATA:
			k = t->left < n ? (size_t)t->left : n;
			if (t->cb.data && (rc = t->cb.data(t->cb.ctx, p, k, e)) < 0)
				return rc;
			p += k;
			n -= k;
			t->left -= k;
			if (!t->left) {
				if (t->cb.member_end && (rc = t->cb.member_end(t->cb.ctx, e)) < 0)
					return rc;
				t->left = t->pad;
				t->st = t->left ? T_PAD : T_HEADER;
			}
			break;
		case T_PAD:
		case T_SKIP:
			k = t->left < n ? (size_t)t->left : n;
			p += k;
			n -= k;
			t->left -= k;
			if (!t->left)
				t->st = T_HEADER;
			break;
		case T_END:
			return 0; /* trailing zero padding after the end */
		}
	}
	return 0;
}

int tar_finish(tar_parser *t, struct err *e)
{
	if (t->st == T_DATA || t->st == T_PAD || t->st == T_SKIP || (t->st == T_HEADER && t->have))
		return err_set(e, ERR_CORRUPT, "tar stream ended inside %s", t->m.path[0] ? t->m.path : "a header");
	return 0;
}
