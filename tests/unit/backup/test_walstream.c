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

/* walstream_resume_point cases, 1 MiB segments: in, then what comes out */
static const struct resume_case {
	const char *what, *hist;
	uint32_t server_tli, tli;
	uint64_t start;
	int keep, rc;
	uint32_t out_tli;
	uint64_t out_start, fork;
} resume_cases[] = {
	{"the archive ends before the switch: the rest of timeline 1 first", "1\t0/3580000\tno recovery target\n", 2, 1,
	 0x3000000, 0, 0, 1, 0x3000000, 0},
	{"timeline 1 went past the switch: back to the switch's segment, on 1 up to the switch", "1\t0/3580000\tx\n", 2,
	 1, 0x3800000, 0, 0, 1, 0x3500000, 0x3580000},
	{"the same when the server no longer has that segment: on 2 from the archive's end", "1\t0/3580000\tx\n", 2, 1,
	 0x3800000, 1, 0, 2, 0x3800000, 0x3580000},
	{"a switch on a segment start: that segment is timeline 2's first", "1\t0/3600000\tx\n", 2, 1, 0x3800000, 0, 0, 2,
	 0x3600000, 0x3600000},
	{"an archive that ends exactly at that switch did not go past it", "1\t0/3600000\tx\n", 2, 1, 0x3600000, 0, 0, 2,
	 0x3600000, 0},
	{"the middle timeline of three, before its end", "1\t0/3000000\tx\n2\t0/5000000\tx\n", 3, 2, 0x3800000, 0, 0, 2,
	 0x3800000, 0},
	{"the middle timeline of three, at its end", "1\t0/3000000\tx\n2\t0/5000000\tx\n", 3, 2, 0x5000000, 0, 0, 3,
	 0x5000000, 0},
	{"timeline 2 is not an ancestor of 3 (3 forked off 1): refused", "1\t0/3000000\tx\n", 3, 2, 0x3800000, 0, 1, 2,
	 0x3800000, 0},
	{"not a history", "junk\n", 2, 1, 0x3800000, 0, -1, 1, 0x3800000, 0},
	{"a server on the archive's timeline: nothing to do", "junk", 2, 2, 0x3800000, 0, 0, 2, 0x3800000, 0},
};

static void test_resume_point(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof resume_cases / sizeof resume_cases[0]; i++) {
		const struct resume_case *c = &resume_cases[i];
		uint32_t tli = c->tli;
		uint64_t start = c->start, fork = 0;
		int rc = walstream_resume_point(c->hist, strlen(c->hist), c->server_tli, 1u << 20, c->keep, &tli, &start,
						&fork);
		if (rc != c->rc || (rc == 0 && (tli != c->out_tli || start != c->out_start || fork != c->fork)))
			fail_msg("%s: rc %d tli %u start %llX fork %llX", c->what, rc, tli, (unsigned long long)start,
				 (unsigned long long)fork);
	}
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
