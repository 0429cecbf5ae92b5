#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct entry {
	size_t section;
	char *key;
	char *value;
};

struct config {
	char **sections;
	size_t nsections;
	struct entry *entries;
	size_t nentries;
};

static char *trim(char *s)
{
	char *end;
	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static void strip_comment(char *s)
{
	int quoted = 0;
	for (char *p = s; *p; p++) {
		if (*p == '"')
			quoted = !quoted; /* a value in quotes keeps its ';' and '#' */
		if (!quoted && (*p == ';' || *p == '#') && (p == s || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsections; i++)
		free(c->sections[i]);
	for (size_t i = 0; i < c->nentries; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	free(c->sections);
	free(c->entries);
	free(c);
}

int config_parse(const char *text, size_t len, const char *name, struct config **out, struct err *e)
{
	struct config *c = xcalloc(1, sizeof *c);
	size_t lineno = 0, pos = 0, linelen;
	int have_section = 0;
	char *line = NULL;
	*out = NULL;
	while (pos < len) {
		size_t end = pos;
		char *s;
		while (end < len && text[end] != '\n')
			end++;
		lineno++;
		free(line);
		linelen = end - pos;
		line = xmalloc(linelen + 1);
		memcpy(line, text + pos, linelen);
		line[linelen] = '\0';
		pos = end + 1;
		if (strlen(line) != linelen) {
			err_set(e, ERR_CONFIG, "%s line %zu: NUL byte in the file; is this a configuration file?", name, lineno);
			goto fail;
		}
		s = line;
		for (char *p = s; *p; p++) {
			if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\r') {
				err_set(e, ERR_CONFIG, "%s line %zu: control character in the file; is this a configuration file?", name, lineno);
				goto fail;
			}
		}
		strip_comment(s);
		s = trim(s);
		if (!*s)
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			char *sec;
			if (!close || close[1] != '\0') {
				err_set(e, ERR_CONFIG, "%s line %zu: a section header must look like [name]", name, lineno);
				goto fail;
			}
			*close = '\0';
			sec = trim(s + 1);
			if (!*sec) {
				err_set(e, ERR_CONFIG, "%s line %zu: empty section name", name, lineno);
				goto fail;
			}
			/* fold inner runs of spaces: "[cluster   prod]" == "[cluster prod]" */
			{
				char *w = sec;
				for (char *r = sec; *r; r++) {
					if (isspace((unsigned char)*r)) {
						if (w > sec && w[-1] == ' ')
							continue;
						*w++ = ' ';
					} else {
						*w++ = *r;
					}
				}
				*w = '\0';
			}
			for (size_t i = 0; i < c->nsections; i++) {
				if (!strcmp(c->sections[i], sec)) {
					err_set(e, ERR_CONFIG, "%s line %zu: section [%s] appears twice", name, lineno, sec);
					goto fail;
				}
			}
			c->sections = xrealloc(c->sections, (c->nsections + 1) * sizeof *c->sections);
			c->sections[c->nsections++] = xstrdup(sec);
			have_section = 1;
			continue;
		}
		{
			char *eq = strchr(s, '=');
			char *key, *val;
			if (!eq) {
				err_set(e, ERR_CONFIG, "%s line %zu: expected 'key = value' or '[section]', found '%.40s'", name, lineno, s);
				goto fail;
			}
			if (!have_section) {
				err_set(e, ERR_CONFIG, "%s line %zu: 'key = value' before any [section]", name, lineno);
				goto fail;
			}
			*eq = '\0';
			key = trim(s);
			val = trim(eq + 1);
			if (!*key) {
				err_set(e, ERR_CONFIG, "%s line %zu: missing key before '='", name, lineno);
				goto fail;
			}
			if (strlen(val) >= 2 && val[0] == '"' && val[strlen(val) - 1] == '"') {
				val[strlen(val) - 1] = '\0';
				val++;
			}
			for (size_t i = 0; i < c->nentries; i++) {
				if (c->entries[i].section == c->nsections - 1 && !strcmp(c->entries[i].key, key)) {
					err_set(e, ERR_CONFIG, "%s line %zu: '%s' is set twice in [%s]", name, lineno, key, c->sections[c->nsections - 1]);
					goto fail;
				}
			}
			c->entries = xrealloc(c->entries, (c->nentries + 1) * sizeof *c->entries);
			c->entries[c->nentries].section = c->nsections - 1;
			c->entries[c->nentries].key = xstrdup(key);
			c->entries[c->nentries].value = xstrdup(val);
			c->nentries++;
		}
	}
	free(line);
	*out = c;
	return 0;
fail:
	free(line);
	config_free(c);
	return ERR_CONFIG;
}

int config_load(const char *path, struct config **out, struct err *e)
{
	uint8_t *buf;
	size_t len;
	int rc = util_read_small(path, 1 << 20, &buf, &len, e);
	if (rc < 0) {
		err_prefix(e, "cannot load configuration");
		err_hint(e, "give the file with -c FILE or PGTIMEFS_CONFIG; see README.md for an example");
		return ERR_CONFIG;
	}
	rc = config_parse((const char *)buf, len, path, out, e);
	free(buf);
	return rc;
}

const char *config_get(const struct config *c, const char *section, const char *key)
{
	for (size_t s = 0; s < c->nsections; s++) {
		if (strcmp(c->sections[s], section))
			continue;
		for (size_t i = 0; i < c->nentries; i++)
			if (c->entries[i].section == s && !strcmp(c->entries[i].key, key))
				return c->entries[i].value;
	}
	return NULL;
}

int config_has_section(const struct config *c, const char *section)
{
	for (size_t s = 0; s < c->nsections; s++)
		if (!strcmp(c->sections[s], section))
			return 1;
	return 0;
}

size_t config_nentries(const struct config *c)
{
	return c->nentries;
}

const char *config_entry(const struct config *c, size_t i, const char **section)
{
	if (i >= c->nentries)
		return NULL;
	*section = c->sections[c->entries[i].section];
	return c->entries[i].key;
}

size_t config_nsections(const struct config *c)
{
	return c->nsections;
}

const char *config_section(const struct config *c, size_t i)
{
	return i < c->nsections ? c->sections[i] : NULL;
}

int config_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -1;
	while (*end == ' ')
		end++;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default: return -1;
	}
	if (mul > 1 && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}
