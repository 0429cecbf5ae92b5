/* test_walstream.c: what backup/walstream.h decides without a server (the slot name). */
#include "../unit.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
