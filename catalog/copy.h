/*
 * copy.h: sealed, compressed copies of the catalog in every zone, and recovery from them.
 *
 * After each commit that matters (a snapshot, a repair), catalog_copy_push takes a
 * consistent copy of the catalog (VACUUM INTO a file in the state directory), compresses it
 * in frames of up to 4 MiB with zstd, seals each frame with the master key and writes the
 * result to catalog/<generation> (20 digits) in every zone; the three newest generations are
 * kept. Memory stays bounded by one frame. catalog_copy_recover finds the newest copy in any
 * zone that opens, decodes, belongs to this repository and passes SQLite's quick_check, and
 * installs it as the local catalog. Format: docs/format.md. One thread at a time.
 */
#ifndef PGTIMEFS_CATALOG_COPY_H
#define PGTIMEFS_CATALOG_COPY_H

#include <stdint.h>

#include "catalog.h"
#include "store/repo.h"

#define CATALOG_COPY_MAGIC "PGTFCAT1"
#define CATALOG_COPY_KEEP 3

/*
 * Writes a copy of c to every zone; *generation (may be NULL) gets its number (also when a
 * zone could not be written: the others have it), one more than
 * both the catalog's own count (meta "generation") and the newest generation found in any
 * zone. A catalog whose count is behind a zone's newest copy did not write it (another
 * catalog writes to the repository, or this one was rolled back): ERR_CONFIG, nothing is
 * pushed, so its copies never push the newer ones out. A catalog without a count (none
 * pushed yet) is numbered after the zones'. Only files named as copies are counted and
 * pruned to CATALOG_COPY_KEEP.
 */
int catalog_copy_push(catalog *c, struct repo *r, const char *state_dir, uint64_t *generation, struct err *e);

/*
 * Rebuilds the catalog at dest_path (which must not exist) from the newest good copy in
 * any zone; *generation and *zone tell which one was used. A copy that is damaged, of
 * another repository or inconsistent is passed over for the next older one, and skipped
 * (may be NULL, skipped_cap bytes) then names each newer generation passed over and why ("" when
 * none was). A failure on this side (the recovered file cannot be written or synced) or a
 * copy made by a newer pgtimefs stops the recovery with nothing installed instead: an older
 * generation would lose what the newer one holds.
 */
int catalog_copy_recover(struct repo *r, const char *dest_path, uint64_t *generation, int *zone, char *skipped,
			 size_t skipped_cap, struct err *e);

/* Whether name (in a zone's catalog/) is a copy's file name (20 decimal digits); *gen gets its number. */
int catalog_copy_name_gen(const char *name, uint64_t *gen);

/*
 * Decodes one copy file (fd, for fuzzing, recovery and check --read-data) into out_fd; checks
 * the repository id binding through the key. ERR_CORRUPT on any damage.
 */
int catalog_copy_decode(const struct repo *r, int in_fd, int out_fd, uint64_t *generation, struct err *e);

#endif
