/*
 * manifest.c: restore.json. A small JSON reader builds a tree of values (the file is at most
 * RESTORE_MANIFEST_MAX bytes, so the tree is small), then the fields are taken from it.
 */
#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define JV_DEPTH 32

enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	enum jv_type type;
	char *s;	   /* JV_STR: the string; JV_NUM: the number's text */
	int b;
	struct jv *kids;   /* JV_ARR, JV_OBJ */
	char **keys;	   /* JV_OBJ */
	int n;
};

struct jp {
	const char *p, *end;
	int depth;
	const char *why;
};

static void jv_free(struct jv *v)
{
	if (!v)
		return;
	for (int i = 0; i < v->n; i++) {
		jv_free(&v->kids[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->s);
}

static void ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static void put_utf8(char *out, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xC0 | cp >> 6);
		out[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		out[(*n)++] = (char)(0xE0 | cp >> 12);
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else {
		out[(*n)++] = (char)(0xF0 | cp >> 18);
		out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[(*n)++] = (char)(0x80 | (cp & 0x3F));
	}
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A string at j->p (the opening quote); *out: a new NUL-terminated copy, or NULL on error. */
static char *parse_str(struct jp *j)
{
	const char *q = j->p + 1;
	size_t n = 0;
	char *out;
	/* the decoded string is never longer than the raw one */
	const char *close = q;
	while (close < j->end && *close != '"') {
		if (*close == '\\')
			close++;
		close++;
	}
	if (close >= j->end) {
		j->why = "unterminated string";
		return NULL;
	}
	out = xmalloc((size_t)(close - q) + 1);
	while (q < close) {
		unsigned char c = (unsigned char)*q++;
		if (c < 0x20) {
			j->why = "control character in a string";
			goto bad;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			continue;
		}
		c = (unsigned char)*q++;
		switch (c) {
		case '"': out[n++] = '"'; break;
		case '\\': out[n++] = '\\'; break;
		case '/': out[n++] = '/'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (close - q < 4 || hex4(q, &cp) < 0) {
				j->why = "bad \\u escape";
				goto bad;
			}
			q += 4;
			if (cp >= 0xD800 && cp < 0xDC00) {
				if (close - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, &lo) < 0 || lo < 0xDC00 ||
				    lo > 0xDFFF) {
					j->why = "bad surrogate pair";
					goto bad;
				}
				q += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC80 && cp <= 0xDCFF) {
				/* a byte that was not UTF-8, as common/json.c writes it (surrogateescape) */
				out[n++] = (char)(cp - 0xDC00);
				break;
			} else if (cp >= 0xDC00 && cp < 0xE000) {
				j->why = "bad surrogate pair";
				goto bad;
			}
			if (cp == 0) {
				j->why = "NUL in a string";
				goto bad;
			}
			put_utf8(out, &n, cp);
			break;
		}
		default:
			j->why = "bad escape";
			goto bad;
		}
	}
	out[n] = 0;
	j->p = close + 1;
	return out;
bad:
	free(out);
	return NULL;
}

static int parse_value(struct jp *j, struct jv *v);

static int parse_container(struct jp *j, struct jv *v, int obj)
{
	int cap = 0;
	char close = obj ? '}' : ']';
	v->type = obj ? JV_OBJ : JV_ARR;
	if (++j->depth > JV_DEPTH) {
		j->why = "nested too deeply";
		return -1;
	}
	j->p++;
	ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		ws(j);
		if (obj) {
			if (j->p >= j->end || *j->p != '"') {
				j->why = "expected a key";
				return -1;
			}
			if (!(key = parse_str(j)))
				return -1;
			ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				j->why = "expected ':'";
				return -1;
			}
			j->p++;
		}
		if (v->n == cap) {
			cap = cap ? cap * 2 : 8;
			v->kids = xrealloc(v->kids, (size_t)cap * sizeof *v->kids);
			if (obj)
				v->keys = xrealloc(v->keys, (size_t)cap * sizeof *v->keys);
		}
		memset(&v->kids[v->n], 0, sizeof *v->kids);
		if (obj)
			v->keys[v->n] = key;
		v->n++;
		if (parse_value(j, &v->kids[v->n - 1]) < 0)
			return -1;
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		j->why = obj ? "expected ',' or '}'" : "expected ',' or ']'";
		return -1;
	}
}

static int parse_value(struct jp *j, struct jv *v)
{
	ws(j);
	if (j->p >= j->end) {
		j->why = "unexpected end";
		return -1;
	}
	switch (*j->p) {
	case '{':
		return parse_container(j, v, 1);
	case '[':
		return parse_container(j, v, 0);
	case '"':
		v->type = JV_STR;
		return (v->s = parse_str(j)) ? 0 : -1;
	case 't':
	case 'f':
	case 'n': {
		static const char *const words[] = {"true", "false", "null"};
		for (int i = 0; i < 3; i++) {
			size_t l = strlen(words[i]);
			if ((size_t)(j->end - j->p) >= l && !memcmp(j->p, words[i], l)) {
				v->type = i == 2 ? JV_NULL : JV_BOOL;
				v->b = i == 0;
				j->p += l;
				return 0;
			}
		}
		j->why = "unknown word";
		return -1;
	}
	default: {
		const char *s = j->p;
		if (*j->p == '-')
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9') {
			j->why = "unexpected character";
			return -1;
		}
		while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
					 *j->p == 'E' || *j->p == '+' || *j->p == '-'))
			j->p++;
		v->type = JV_NUM;
		v->s = xmalloc((size_t)(j->p - s) + 1);
		memcpy(v->s, s, (size_t)(j->p - s));
		v->s[j->p - s] = 0;
		return 0;
	}
	}
}

static const struct jv *get(const struct jv *o, const char *key)
{
	if (!o || o->type != JV_OBJ)
		return NULL;
	for (int i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->kids[i];
	return NULL;
}

/* A string member (required: ERR_CORRUPT when missing; optional: NULL for missing or null). */
static int get_str(const struct jv *o, const char *key, int required, const char *where, char **out, struct err *e)
{
	const struct jv *v = get(o, key);
	*out = NULL;
	if (v && v->type == JV_STR) {
		*out = xstrdup(v->s);
		return 0;
	}
	if (!required && (!v || v->type == JV_NULL))
		return 0;
	return err_set(e, ERR_CORRUPT, "restore.json: %s\"%s\" is %s, expected a string", where, key,
		       v ? "not a string" : "missing");
}

static int get_int(const struct jv *o, const char *key, int required, const char *where, int64_t *out, struct err *e)
{
	const struct jv *v = get(o, key);
	char *endp;
	*out = 0;
	if (!v || v->type == JV_NULL) {
		if (!required)
			return 0;
		return err_set(e, ERR_CORRUPT, "restore.json: %s\"%s\" is missing", where, key);
	}
	if (v->type != JV_NUM)
		return err_set(e, ERR_CORRUPT, "restore.json: %s\"%s\" is not a number", where, key);
	errno = 0;
	*out = strtoll(v->s, &endp, 10);
	if (errno || *endp)
		return err_set(e, ERR_CORRUPT, "restore.json: %s\"%s\" is not an integer: %s", where, key, v->s);
	return 0;
}

int restore_manifest_parse(const char *text, size_t len, struct restore_manifest *m, struct err *e)
{
	struct jp j = {text, text + len, 0, NULL};
	struct jv root;
	const struct jv *nodes, *rp;
	int rc;
	memset(m, 0, sizeof *m);
	memset(&root, 0, sizeof root);
	if (len > RESTORE_MANIFEST_MAX) {
		rc = err_set(e, ERR_CORRUPT, "restore.json is %zu bytes, more than %u", len, RESTORE_MANIFEST_MAX);
		goto out;
	}
	if (parse_value(&j, &root) < 0 || (ws(&j), j.p != j.end)) {
		rc = err_set(e, ERR_CORRUPT, "restore.json does not parse at byte %ld: %s", (long)(j.p - text),
			     j.why ? j.why : "trailing bytes");
		goto out;
	}
	if (root.type != JV_OBJ) {
		rc = err_set(e, ERR_CORRUPT, "restore.json is not a JSON object");
		goto out;
	}
	if ((rc = get_str(&root, "cluster", 1, "", &m->cluster, e)) < 0 ||
	    (rc = get_str(&root, "time", 1, "", &m->time, e)) < 0 ||
	    (rc = get_int(&root, "time_us", 1, "", &m->time_us, e)) < 0 ||
	    (rc = get_str(&root, "snapshot", 0, "", &m->snapshot, e)) < 0 ||
	    (rc = get_str(&root, "target", 1, "", &m->target, e)) < 0)
		goto out;
	if (strcmp(m->target, "time") && strcmp(m->target, "end")) {
		rc = err_set(e, ERR_CORRUPT, "restore.json: \"target\" is '%s', expected 'time' or 'end'", m->target);
		goto out;
	}
	rp = get(&root, "restore_point");
	if (rp && rp->type == JV_OBJ) {
		if ((rc = get_str(rp, "name", 1, "restore_point.", &m->rp_name, e)) < 0 ||
		    (rc = get_str(rp, "time", 0, "restore_point.", &m->rp_time, e)) < 0 ||
		    (rc = get_int(rp, "time_us", 0, "restore_point.", &m->rp_time_us, e)) < 0)
			goto out;
	} else if (rp && rp->type != JV_NULL) {
		rc = err_set(e, ERR_CORRUPT, "restore.json: \"restore_point\" is neither an object nor null");
		goto out;
	}
	nodes = get(&root, "nodes");
	if (!nodes || nodes->type != JV_ARR || nodes->n == 0) {
		rc = err_set(e, ERR_CORRUPT, "restore.json: \"nodes\" is %s", nodes ? "not a non-empty array" : "missing");
		goto out;
	}
	m->nodes = xcalloc((size_t)nodes->n, sizeof *m->nodes);
	m->nnodes = nodes->n;
	for (int i = 0; i < nodes->n; i++) {
		struct restore_manifest_node *n = &m->nodes[i];
		char where[32];
		snprintf(where, sizeof where, "nodes[%d].", i);
		if ((rc = get_str(&nodes->kids[i], "name", 1, where, &n->name, e)) < 0 ||
		    (rc = get_str(&nodes->kids[i], "pg_version", 1, where, &n->pg_version, e)) < 0 ||
		    (rc = get_str(&nodes->kids[i], "citus_version", 0, where, &n->citus_version, e)) < 0 ||
		    (rc = get_str(&nodes->kids[i], "system_id", 0, where, &n->system_id, e)) < 0 ||
		    (rc = get_int(&nodes->kids[i], "timeline", 0, where, &n->timeline, e)) < 0)
			goto out;
		if (n->citus_version && !*n->citus_version) {
			free(n->citus_version);
			n->citus_version = NULL;
		}
		n->pg_major = atoi(n->pg_version);
		if (n->pg_major < 10 || !*n->name || strchr(n->name, '/') || !strcmp(n->name, ".") ||
		    !strcmp(n->name, "..")) {
			rc = err_set(e, ERR_CORRUPT, "restore.json: node '%s' has a bad name or version '%s'", n->name,
				     n->pg_version);
			goto out;
		}
		for (int k = 0; k < i; k++)
			if (!strcmp(m->nodes[k].name, n->name)) {
				rc = err_set(e, ERR_CORRUPT, "restore.json: node '%s' is listed twice", n->name);
				goto out;
			}
	}
	rc = 0;
out:
	jv_free(&root);
	if (rc < 0)
		restore_manifest_free(m);
	return rc;
}

void restore_manifest_free(struct restore_manifest *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nnodes; i++) {
		free(m->nodes[i].name);
		free(m->nodes[i].pg_version);
		free(m->nodes[i].citus_version);
		free(m->nodes[i].system_id);
	}
	free(m->nodes);
	free(m->cluster);
	free(m->time);
	free(m->snapshot);
	free(m->target);
	free(m->rp_name);
	free(m->rp_time);
	memset(m, 0, sizeof *m);
}
