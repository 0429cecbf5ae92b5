/* fuzz_walread.c: arbitrary bytes into the WAL reader (backup/walread.c), fed in pieces.
 * The first byte picks the piece size and whether the start address is given; the rest is
 * the stream. A valid long page header with 1 KiB pages lets the fuzzer reach records. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backup/walread.h"

static void on_xact(void *ctx, const struct walread_xact *x)
{
	(void)ctx;
	(void)x;
}

static void on_rp(void *ctx, const struct walread_restore_point *rp)
{
	(void)ctx;
	if (strlen(rp->name) > 64)
		__builtin_trap();
}

static void on_seg(void *ctx, const struct walread_segment *s)
{
	(void)ctx;
	(void)s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct walread_cb cb = {on_xact, on_rp, on_seg, NULL};
	size_t piece;
	walread *r;
	if (size < 1)
		return 0;
	piece = 1 + (data[0] & 0x7f) * 13;
	r = walread_new(data[0] & 0x80 ? 1 : 0, 1);
	if (!r)
		return 0;
	data++, size--;
	while (size) {
		size_t n = size < piece ? size : piece;
		walread_feed(r, data, n, &cb);
		data += n, size -= n;
	}
	walread_end(r, &cb);
	walread_free(r);
	return 0;
}
