/* test_walstream.c: what backup/walstream.h and walarchive.h decide without a server (the
 * slot name, a timeline history's lines, where a stream resumes on a newer timeline). */
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
	assert_int_equal(parse("1\t0/10\n1\t0/20\n", 3, &l), -1); /* the same parent twice */
	/* the first parent may be any below tli, as PostgreSQL reads it */
	assert_int_equal(parse("0\t0/10\n", 2, &l), 1);
	{
		char buf[2200];
		/* leading blanks do not cut the LSN */
		memset(buf, ' ', 120);
		strcpy(buf + 120, "1\t0/3000080\tx\n");
		assert_int_equal(parse(buf, 2, &l), 1);
		assert_true(l.end[0] == 0x3000080u);
		/* a line over 1023 bytes goes on as a line of its own (fgets into 1024 bytes) */
		strcpy(buf, "1\t0/10\t");
		memset(buf + 7, 'x', 2000);
		strcpy(buf + 2007, "\n");
		assert_int_equal(parse(buf, 2, &l), -1);
		/* a long reason whose rest is blank is fine */
		memset(buf + 7, ' ', 2000);
		assert_int_equal(parse(buf, 2, &l), 1);
	}
}

/* resume(hist, server_tli, tli, start): walstream_resume_point with 1 MiB segments */
static int resume(const char *hist, uint32_t server_tli, uint32_t *tli, uint64_t *start, uint64_t *fork)
{
	return walstream_resume_point(hist, strlen(hist), server_tli, 1u << 20, 0, tli, start, fork);
}

static void test_resume_point(void **state)
{
	uint32_t tli;
	uint64_t start, fork;
	(void)state;
	/* the archive ends before the switch: the rest of timeline 1 first */
	tli = 1, start = 0x3000000;
	assert_int_equal(resume("1\t0/3580000\tno recovery target specified\n", 2, &tli, &start, &fork), 0);
	assert_int_equal(tli, 1);
	assert_true(start == 0x3000000 && fork == 0);
	/* the archive's timeline 1 goes past the switch (an old primary's last segments): back to
	 * the switch's segment, on timeline 1 up to the switch, then 2 */
	tli = 1, start = 0x3800000;
	assert_int_equal(resume("1\t0/3580000\tx\n", 2, &tli, &start, &fork), 0);
	assert_int_equal(tli, 1);
	assert_true(start == 0x3500000 && fork == 0x3580000);
	/* a switch on a segment start: that segment is timeline 2's first */
	tli = 1, start = 0x3800000;
	assert_int_equal(resume("1\t0/3600000\tx\n", 2, &tli, &start, &fork), 0);
	assert_int_equal(tli, 2);
	assert_true(start == 0x3600000 && fork == 0x3600000);
	/* the same, when the server no longer has the switch's segment: on from the archive's end */
	tli = 1, start = 0x3800000;
	assert_int_equal(walstream_resume_point("1\t0/3580000\tx\n", 13, 2, 1u << 20, 1, &tli, &start, &fork), 0);
	assert_int_equal(tli, 2);
	assert_true(start == 0x3800000 && fork == 0x3580000);
	/* an archive that ends exactly at a switch on a segment start did not go past it */
	tli = 1, start = 0x3600000;
	assert_int_equal(resume("1\t0/3600000\tx\n", 2, &tli, &start, &fork), 0);
	assert_int_equal(tli, 2);
	assert_true(start == 0x3600000 && fork == 0);
	/* an archive on the middle timeline of three */
	tli = 2, start = 0x3800000;
	assert_int_equal(resume("1\t0/3000000\tx\n2\t0/5000000\tx\n", 3, &tli, &start, &fork), 0);
	assert_int_equal(tli, 2);
	assert_true(start == 0x3800000 && fork == 0);
	tli = 2, start = 0x5000000;
	assert_int_equal(resume("1\t0/3000000\tx\n2\t0/5000000\tx\n", 3, &tli, &start, &fork), 0);
	assert_int_equal(tli, 3);
	/* timeline 2 is not an ancestor of 3 (3 forked off 1): refused */
	tli = 2, start = 0x3800000;
	assert_int_equal(resume("1\t0/3000000\tx\n", 3, &tli, &start, &fork), 1);
	/* not a history; a server on the archive's timeline or older: nothing to do */
	tli = 1, start = 0x3800000;
	assert_int_equal(resume("junk\n", 2, &tli, &start, &fork), -1);
	tli = 2, start = 0x3800000;
	assert_int_equal(resume("junk", 2, &tli, &start, &fork), 0);
	assert_int_equal(tli, 2);
	assert_true(start == 0x3800000 && fork == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_name),
		cmocka_unit_test(test_history_parse),
		cmocka_unit_test(test_resume_point),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
