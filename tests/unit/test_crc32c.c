/* test_crc32c.c — CRC-32C known answers, agreement of the three paths
 * (three-lane hardware, one-lane hardware, portable table) on random
 * buffers of every length to 4 KiB at every misalignment and on long
 * ones, and incremental extension.
 *
 * Built with -DCRC32C_STANDALONE it needs no cmocka (a failed check
 * prints both values and exits 1): tools/crc32c-cross.sh builds it so for
 * aarch64 and runs it under qemu-aarch64, so the ARMv8 path (CRC32C
 * instructions, PMULL join) is checked on this x86 machine too. There main
 * takes the hardware and three-lane flags the build must have chosen, so a
 * build that fell back to the table cannot pass for the hardware path,
 * and optionally CPU feature bits to hide from crc32c.c (built with
 * -Dgetauxval=crc32c_test_getauxval), since every CPU qemu emulates has
 * both CRC32 and PMULL: a CPU with CRC32 but no PMULL (a Raspberry Pi's
 * Cortex-A72) must take the one-lane path, one without CRC32 the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef CRC32C_STANDALONE
static void check_equal(uint64_t a, uint64_t b, const char *text, int line)
{
	if (a == b)
		return;
	fprintf(stderr, "%s:%d: %s (%#llx != %#llx)\n", __FILE__, line, text,
		(unsigned long long)a, (unsigned long long)b);
	exit(1);
}
#define assert_int_equal(a, b) check_equal((uint64_t)(a), (uint64_t)(b), #a " != " #b, __LINE__)
#define assert_true(c) check_equal(!!(c), 1, #c, __LINE__)
#define assert_non_null(p) check_equal((p) != NULL, 1, #p " is NULL", __LINE__)
#if defined(__aarch64__)
#include <sys/auxv.h>
/* crc32c.c's getauxval (crc32c-cross.sh): the CPU's own, less hwcap_hidden. */
static unsigned long hwcap_hidden;
unsigned long crc32c_test_getauxval(unsigned long type);
unsigned long crc32c_test_getauxval(unsigned long type)
{
	unsigned long v = getauxval(type);
	return type == AT_HWCAP ? v & ~hwcap_hidden : v;
}
#endif
#else
#include <cmocka.h>
#endif

#include "storage/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static const crc_fn impls[] = { crc32c, crc32c_portable, crc32c_hardware,
				 crc32c_hardware_serial };
#define N_IMPLS (sizeof impls / sizeof impls[0])

static void check_all(const void *data, size_t len, uint32_t want)
{
	for (size_t i = 0; i < N_IMPLS; i++)
		assert_int_equal(impls[i](0, data, len), want);
}

static void test_known_answers(void **state)
{
	check_all("123456789", 9, 0xE3069283);
	check_all("", 0, 0);
	check_all("a", 1, 0xC1D04330);

	/* RFC 3720 (iSCSI) appendix B.4. */
	uint8_t b[48];
	memset(b, 0, 32);
	check_all(b, 32, 0x8A9136AA);
	memset(b, 0xff, 32);
	check_all(b, 32, 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	check_all(b, 32, 0x46DD794E);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	check_all(b, 32, 0x113FDB5C);
	static const uint8_t read_pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
		0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	check_all(read_pdu, sizeof read_pdu, 0xD9963A56);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint8_t rng_byte(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

/* Every length 0..4096 at misalignments 0..15, each from a random seed
 * register: the lengths cross the three-lane path's threshold (128
 * bytes), every lane length it picks below 3 x 4 KiB and every tail;
 * then long buffers, which take blocks of 3 x 4 KiB and a shorter block
 * after them. */
static void test_hardware_matches_portable(void **state)
{
	enum { BUF = 3 * 1024 * 1024 + 64 };
	uint8_t *buf = malloc(BUF);
	assert_non_null(buf);
	for (size_t i = 0; i < BUF; i++)
		buf[i] = rng_byte();
	for (size_t align = 0; align < 16; align++) {
		for (size_t len = 0; len <= 4096; len++) {
			uint32_t seed = (uint32_t)(len * 2654435761u) ^ (uint32_t)align;
			const uint8_t *p = buf + align + len * 37 % 4096;
			uint32_t want = crc32c_portable(seed, p, len);
			assert_int_equal(crc32c_hardware(seed, p, len), want);
			assert_int_equal(crc32c_hardware_serial(seed, p, len), want);
		}
	}
	static const size_t lens[] = { 12287, 12288, 12289, 12288 + 1536 + 384 + 96 + 7,
				       65536 + 13, 1024 * 1024, 3 * 1024 * 1024 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		for (size_t align = 0; align < 64 && align + lens[i] <= BUF; align += 9) {
			uint32_t want = crc32c_portable(0xdeadbeef, buf + align, lens[i]);
			assert_int_equal(crc32c_hardware(0xdeadbeef, buf + align, lens[i]), want);
			assert_int_equal(crc32c_hardware_serial(0xdeadbeef, buf + align, lens[i]), want);
		}
	}
	/* All zeros and all ones: the shifted lane CRCs must still be joined
	 * (a merge that dropped a lane would agree on zeros only). */
	memset(buf, 0, 3 * 4096);
	assert_int_equal(crc32c_hardware(0, buf, 3 * 4096), crc32c_portable(0, buf, 3 * 4096));
	memset(buf, 0xff, 3 * 4096);
	assert_int_equal(crc32c_hardware(0, buf, 3 * 4096), crc32c_portable(0, buf, 3 * 4096));
	free(buf);
}

static void test_incremental(void **state)
{
	uint8_t buf[1000];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = rng_byte();
	for (size_t i = 0; i < N_IMPLS; i++) {
		uint32_t whole = impls[i](0, buf, sizeof buf);
		for (size_t cut = 0; cut <= sizeof buf; cut += 7) {
			uint32_t c = impls[i](0, buf, cut);
			c = impls[i](c, buf + cut, sizeof buf - cut);
			assert_int_equal(c, whole);
		}
		/* Byte by byte. */
		uint32_t c = 0;
		for (size_t k = 0; k < sizeof buf; k++)
			c = impls[i](c, buf + k, 1);
		assert_int_equal(c, whole);
	}
}

static void test_hardware_flag(void **state)
{
	int hw = crc32c_hardware_available();
	assert_true(hw == 0 || hw == 1);
#if defined(__x86_64__)
	assert_int_equal(hw, __builtin_cpu_supports("sse4.2") ? 1 : 0);
	/* Where the CPU has both, the three-lane path is the one in use. */
	assert_int_equal(crc32c_hardware_lanes_available(),
			 hw && __builtin_cpu_supports("pclmul") ? 1 : 0);
#endif
}

#ifdef CRC32C_STANDALONE
/* crc32c-cross.sh: HW LANES [HWCAP_BITS]: what crc32c_hardware_available()
 * and crc32c_hardware_lanes_available() must say for this build and CPU,
 * with the AT_HWCAP bits HWCAP_BITS (e.g. 0x10, PMULL) hidden from it. */
int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s HW LANES [HWCAP_BITS]\n", argv[0]);
		return 2;
	}
	if (argc == 4) {
#if defined(__aarch64__)
		hwcap_hidden = strtoul(argv[3], NULL, 0);
#else
		fprintf(stderr, "HWCAP_BITS: aarch64 only\n");
		return 2;
#endif
	}
	assert_int_equal(crc32c_hardware_available(), strtol(argv[1], NULL, 10));
	assert_int_equal(crc32c_hardware_lanes_available(), strtol(argv[2], NULL, 10));
	test_known_answers(NULL);
	test_hardware_matches_portable(NULL);
	test_incremental(NULL);
	test_hardware_flag(NULL);
	printf("crc32c: hardware %d, three lanes %d: known answers and agreement ok\n",
	       crc32c_hardware_available(), crc32c_hardware_lanes_available());
	return 0;
}
#else
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_hardware_matches_portable),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_hardware_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
