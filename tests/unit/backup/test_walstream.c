/* test_walstream.c: what backup/walstream.h and walarchive.h decide without a server (the
 * slot name, a timeline history's lines). */
#include "../unit.h"

#include "backup/walarchive.h"
#include "backup/walstream.h"

static void test_slot_name(void **state)
{
	char out[64], longname[200];
	(void)state;
	walstream_slot_name("coordinator", out);
	assert_string_equal(out, "pgtimefs_coordinator");
	/* lowercased; everything outside [a-z0-9_] becomes '_' (slot names allow no more) */
	walstream_slot_name("Worker-1.eu/A b", out);
	assert_string_equal(out, "pgtimefs_worker_1_eu_a_b");
	walstream_slot_name("n\xc3\xa9", out);
	assert_string_equal(out, "pgtimefs_n__");
	/* at most 63 characters (NAMEDATALEN - 1) */
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	walstream_slot_name(longname, out);
	assert_int_equal(strlen(out), 63);
	assert_memory_equal(out, "pgtimefs_xxx", 12);
	walstream_slot_name("", out);
	assert_string_equal(out, "pgtimefs_");
}

struct lines {
	int n;
	int64_t parent[4];
	uint64_t end[4];
};

static int take_line(void *ctx, int64_t parent, uint64_t end_lsn)
{
	struct lines *l = ctx;
	if (l->n < 4) {
		l->parent[l->n] = parent;
		l->end[l->n] = end_lsn;
	}
	l->n++;
	return 0;
}

static int parse(const char *text, int64_t tli, struct lines *l)
{
	memset(l, 0, sizeof *l);
	return backup_wal_history_parse((const uint8_t *)text, strlen(text), tli, take_line, l);
}

static void test_history_parse(void **state)
{
	struct lines l;
	(void)state;
	/* as PostgreSQL writes it: one line per ancestor, reason text after the LSN */
	assert_int_equal(parse("1\t0/3000080\tno recovery target specified\n"
			       "\n# a comment\n"
			       "  2\t1/A0000028\tbefore 2026-12-03 10:00:00+00\n",
			       3, &l),
			 2);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.parent[0], 1);
	assert_true(l.end[0] == 0x3000080u);
	assert_int_equal(l.parent[1], 2);
	assert_true(l.end[1] == (1ull << 32 | 0xA0000028u));
	/* the last line without a newline; an empty file has no lines */
	assert_int_equal(parse("1\t0/10", 2, &l), 1);
	assert_int_equal(parse("", 2, &l), 0);
	/* what PostgreSQL refuses: no LSN, not a number, ancestors not increasing, not below tli */
	assert_int_equal(parse("1\n", 2, &l), -1);
	assert_int_equal(parse("x\t0/10\n", 2, &l), -1);
	assert_int_equal(parse("2\t0/10\n1\t0/20\n", 3, &l), -1);
	assert_int_equal(parse("3\t0/10\n", 3, &l), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_name),
		cmocka_unit_test(test_history_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
