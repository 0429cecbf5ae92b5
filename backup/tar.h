/*
 * tar.h: a push parser for the ustar archives PostgreSQL's BASE_BACKUP sends.
 *
 * Bytes are fed in pieces of any size as they come off the network; the parser calls back
 * at each member's header, with each piece of its data (never buffered: the callback gets
 * slices of the caller's buffer), and at its end. It holds one 512-byte header at most.
 * Names lose their trailing '/' (PostgreSQL marks directories and symlinks with one).
 * Handles ustar names with a prefix, octal and base-256 numbers; skips pax and GNU
 * extended headers it does not need. Two zero blocks end the archive. Not thread-safe.
 */
#ifndef PGTIMEFS_BACKUP_TAR_H
#define PGTIMEFS_BACKUP_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct tar_member {
	char path[512];	  /* relative path, no trailing slash */
	char type;	  /* '0' regular file, '5' directory, '2' symlink, other: as in the header */
	uint32_t mode;	  /* permission bits */
	uint32_t uid, gid;
	uint64_t size;	  /* data bytes that follow (regular files) */
	int64_t mtime;	  /* seconds */
	char link[512];	  /* symlink target */
};

struct tar_callbacks {
	void *ctx;
	int (*member)(void *ctx, const struct tar_member *m, struct err *e);
	int (*data)(void *ctx, const uint8_t *p, size_t n, struct err *e);
	int (*member_end)(void *ctx, struct err *e);
};

typedef struct tar_parser tar_parser;

tar_parser *tar_new(const struct tar_callbacks *cb);
void tar_free(tar_parser *t); /* NULL ok */
/* Starts a new archive (the parser is then as new). */
void tar_reset(tar_parser *t);
/* Feeds bytes; a callback's error stops the parser and is returned. ERR_CORRUPT on a bad header. */
int tar_feed(tar_parser *t, const uint8_t *p, size_t n, struct err *e);
/* ERR_CORRUPT when the archive stopped inside a member. */
int tar_finish(tar_parser *t, struct err *e);

#endif
