/*
 * chunker.h: where files are cut into chunks.
 *
 * Two chunkers, chosen per file by its path:
 * - fixed, page-aligned blocks (block_size, a multiple of 8 KiB) for PostgreSQL relation
 *   files and WAL segments: they change page by page and never shift, so aligned blocks
 *   dedup an updated relation best and cost no hashing to find boundaries;
 * - FastCDC (content-defined, normalized chunking with a gear hash) for everything else,
 *   so inserts and deletes in other files move only nearby boundaries.
 * The parameters and the gear seed are recorded in the repository config: a repository
 * always chunks the same way. Pure functions; thread-safe.
 */
#ifndef PGTIMEFS_STORE_CHUNKER_H
#define PGTIMEFS_STORE_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

struct chunker_params {
	uint32_t block_size; /* fixed blocks, e.g. 65536 */
	uint32_t cdc_min;    /* FastCDC minimum, e.g. 16384 */
	uint32_t cdc_avg;    /* FastCDC normal size, a power of two, e.g. 65536 */
	uint32_t cdc_max;    /* FastCDC maximum, e.g. 262144 */
	uint64_t seed;	     /* gear table seed */
};

typedef struct chunker chunker;

/* The defaults (seed 0: the caller sets a random one for a new repository). */
void chunker_params_default(struct chunker_params *p);
/* Non-zero when the parameters are sane (sizes ordered, powers of two where needed). */
int chunker_params_valid(const struct chunker_params *p);

chunker *chunker_new(const struct chunker_params *p);
void chunker_free(chunker *c);

/*
 * Length of the first chunk of buf[0..len). When at_eof is zero, len must be at least
 * cdc_max (the caller keeps a buffer of that much); at EOF the rest may be shorter.
 */
size_t chunker_cdc_cut(const chunker *c, const uint8_t *buf, size_t len);
/* The fixed block size. */
uint32_t chunker_block_size(const chunker *c);
/* The largest chunk either chunker makes. */
uint32_t chunker_max(const chunker *c);

/*
 * Non-zero when the file at relpath (relative to a data directory) gets fixed blocks:
 * relation files ("16384", "16384.1", "16384_fsm", "16384_vm", "16384_init") and WAL
 * segments (24 hex digits).
 */
int chunker_is_paged(const char *relpath);

#endif
