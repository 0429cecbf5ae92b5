/*
 * json.h: a tiny streaming JSON writer for --json output.
 *
 * The writer tracks nesting and commas itself; callers emit keys and values in order.
 * Strings are escaped per RFC 8259 (control characters as \u00XX; valid UTF-8 passes through).
 * A byte that is not part of valid UTF-8 (file names are any bytes) is written as the lone
 * surrogate \udcXX, as Python's surrogateescape reads it: os.fsencode() of the string gives
 * the name's bytes back. Not thread-safe: one writer per output stream.
 */
#ifndef PGTIMEFS_COMMON_JSON_H
#define PGTIMEFS_COMMON_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH 16

struct json {
	FILE *f;
	int depth;
	int first[JSON_DEPTH]; /* no element written yet at this depth */
	int after_key;
};

void json_init(struct json *j, FILE *f);
void json_obj(struct json *j);	 /* { */
void json_obj_end(struct json *j); /* } */
void json_arr(struct json *j);	 /* [ */
void json_arr_end(struct json *j); /* ] */
void json_key(struct json *j, const char *k);
void json_str(struct json *j, const char *s); /* NULL writes null */
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, int v);
/* Writes the final newline. */
void json_end(struct json *j);

#endif
