/*
 * config.h: the INI configuration file.
 *
 * Sections are "[name]" (e.g. "[repository]", "[cluster prod]", "[node prod/worker1]"),
 * entries "key = value"; ';' or '#' start a comment at the start of a line or after
 * whitespace, except inside a value in double quotes (which are removed). Keys are
 * case-sensitive; a key given twice in one section is an error, and so is
 * any line that is not a section, an entry, a comment or blank: the message names the file
 * and line. The parsed config is immutable and thread-safe to read.
 */
#ifndef PGTIMEFS_COMMON_CONFIG_H
#define PGTIMEFS_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct config;

/* Parses text (len bytes); name is used in messages. On error *out is NULL. */
int config_parse(const char *text, size_t len, const char *name, struct config **out, struct err *e);
/* Reads and parses a file (at most 1 MiB). */
int config_load(const char *path, struct config **out, struct err *e);
void config_free(struct config *c);

/* The value of key in section, or NULL. */
const char *config_get(const struct config *c, const char *section, const char *key);
/* Non-zero when the section exists. */
int config_has_section(const struct config *c, const char *section);
/* Sections in file order: count and name of the i-th. */
size_t config_nsections(const struct config *c);
const char *config_section(const struct config *c, size_t i);

/* Entries in file order: count, and the key of the i-th (*section gets its section's name). */
size_t config_nentries(const struct config *c);
const char *config_entry(const struct config *c, size_t i, const char **section);

/*
 * Parses a size ("64M", "1GiB", "4096") into bytes; returns 0 or -1. Suffixes K, M, G, T
 * (optionally with "iB" or "B") are powers of 1024.
 */
int config_parse_size(const char *s, uint64_t *out);

#endif
