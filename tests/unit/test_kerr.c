/* test_kerr.c — Kafka error names (proto/kerr.c): every KERR_ code that
 * kerr.h defines has its own name, read from the header itself so a code
 * added there without a name fails here; unknown codes get one fixed
 * string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/kerr.h"

#define UNKNOWN "UNKNOWN_ERROR_CODE"

/* kerr.h from SLUICE_SOURCE_DIR (set by ctest), else beside this file. */
static FILE *header_open(void)
{
	char path[4096];
	const char *dir = getenv("SLUICE_SOURCE_DIR");
	if (dir && *dir) {
		snprintf(path, sizeof path, "%s/src/proto/kerr.h", dir);
	} else {
		const char *slash = strrchr(__FILE__, '/');
		int n = slash ? (int)(slash - __FILE__) : 0;
		snprintf(path, sizeof path, "%.*s%s../../src/proto/kerr.h", n, __FILE__,
			 slash ? "/" : "");
	}
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	return f;
}

static void every_code_has_its_name(void **state)
{
	FILE *f = header_open();
	char line[256];
	int codes = 0;
	while (fgets(line, sizeof line, f)) {
		char name[128];
		int code;
		if (sscanf(line, " KERR_%127[A-Z0-9_] = %d", name, &code) != 2)
			continue;
		codes++;
		const char *got = kerr_name((int16_t)code);
		if (strcmp(got, name) != 0)
			fail_msg("KERR_%s (%d) is named \"%s\"", name, code, got);
	}
	fclose(f);
	/* The header was read, not skipped: it has dozens of codes. */
	assert_true(codes > 50);
}

static void unknown_codes(void **state)
{
	assert_string_equal(kerr_name(KERR_NONE), "NONE");
	assert_string_equal(kerr_name(KERR_NOT_COORDINATOR), "NOT_COORDINATOR");
	/* Gaps in Kafka's numbering that kerr.h does not define, and codes
	 * past its end or below -1. */
	assert_string_equal(kerr_name(8), UNKNOWN);
	assert_string_equal(kerr_name(999), UNKNOWN);
	assert_string_equal(kerr_name(INT16_MAX), UNKNOWN);
	assert_string_equal(kerr_name(-2), UNKNOWN);
	assert_string_equal(kerr_name(INT16_MIN), UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_code_has_its_name),
		cmocka_unit_test(unknown_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
