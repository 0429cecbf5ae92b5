/*
 * pagecheck.h: PostgreSQL data page checksums, verified as file data streams past.
 *
 * pagecheck_checksum() is PostgreSQL's pg_checksum_page(): FNV-1a style mixing over 32
 * parallel lanes of the 8 KiB page with its pd_checksum field zeroed, then the block number
 * folded in, giving 1..65535. A pagecheck object follows one relation file: feed it the
 * file's bytes in order (any split, holes reported as gaps) and it verifies every full page
 * as PostgreSQL's base backup does: new pages (pd_upper == 0) and pages whose LSN is not
 * older than the backup's start LSN (written concurrently, fixed by WAL replay) are skipped.
 * Damaged pages go to a callback with their absolute block number. Not thread-safe: one
 * object per file.
 */
#ifndef PGTIMEFS_BACKUP_PAGECHECK_H
#define PGTIMEFS_BACKUP_PAGECHECK_H

#include <stddef.h>
#include <stdint.h>

#define PAGECHECK_BLCKSZ 8192
#define PAGECHECK_RELSEG_BLOCKS 131072 /* blocks per 1 GiB segment file */

/* The checksum PostgreSQL stores in pd_checksum for page (8 KiB) at absolute block blkno. */
uint16_t pagecheck_checksum(const uint8_t *page, uint32_t blkno);

/* Non-zero when relpath (relative to a data directory, or "pg_tblspc/OID/...") names a
 * relation file whose pages carry checksums; *segno gets its segment number (".N"). */
int pagecheck_is_relation(const char *relpath, uint32_t *segno);

typedef void (*pagecheck_bad_fn)(void *ctx, uint32_t blkno);

typedef struct pagecheck pagecheck;

/* A checker for one file of segment segno; pages with LSN >= start_lsn are skipped. */
pagecheck *pagecheck_new(uint32_t segno, uint64_t start_lsn, pagecheck_bad_fn bad, void *ctx);
/* Bytes [off, off+len) of the file; a gap since the last call drops a partial page. */
void pagecheck_feed(pagecheck *p, uint64_t off, const uint8_t *data, size_t len);
/* Pages verified and pages found damaged so far. */
uint64_t pagecheck_pages(const pagecheck *p);
uint64_t pagecheck_damaged(const pagecheck *p);
/* NULL ok. */
void pagecheck_free(pagecheck *p);
/*
 * A page found damaged as it streamed past, read once more from fd (the relation file of
 * segment segno) as PostgreSQL's base backup does: a page written while it was read can
 * arrive torn, an old half and a new one. 1 when the page read now passes (its checksum holds,
 * it is new, it was written since start_lsn: WAL replay's, or the file no longer reaches it),
 * 0 when it is still damaged.
 */
int pagecheck_recheck(int fd, uint32_t segno, uint32_t blkno, uint64_t start_lsn);

#endif
