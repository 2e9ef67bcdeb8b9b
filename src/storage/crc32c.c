/* crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Owns three implementations of the same function: SSE4.2 crc32
 * instructions on x86-64, the ARMv8 CRC32C instructions on aarch64, and a
 * portable slicing-by-8 table. The hardware paths are compiled with a
 * per-function target attribute and chosen at run time, so the rest of the
 * build needs no -msse4.2 / -march flags. */
#include "storage/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define CRC32C_X86 1
#elif defined(__aarch64__) && (defined(__ARM_FEATURE_CRC32) || !defined(__clang__))
/* GCC's arm_acle.h enables the CRC intrinsics itself; older clang needs
 * -march=armv8-a+crc, and without it we fall back to the table. */
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define CRC32C_ARM 1
#ifdef __clang__
#define CRC32C_ARM_TARGET "crc"
#else
#define CRC32C_ARM_TARGET "+crc"
#endif
#endif

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static int crc32c_hw; /* set once under crc32c_once */

static void crc32c_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc32c_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = crc32c_table[0][n];
		for (int k = 1; k < 8; k++) {
			c = crc32c_table[0][c & 0xff] ^ (c >> 8);
			crc32c_table[k][n] = c;
		}
	}
#if defined(CRC32C_X86)
	__builtin_cpu_init();
	crc32c_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#elif defined(CRC32C_ARM)
	crc32c_hw = (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
#else
	crc32c_hw = 0;
#endif
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Slicing-by-8 on the inverted register. */
static uint32_t crc32c_sw(uint32_t c, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w = load_le64(p) ^ c;
		c = crc32c_table[7][w & 0xff] ^
		    crc32c_table[6][(w >> 8) & 0xff] ^
		    crc32c_table[5][(w >> 16) & 0xff] ^
		    crc32c_table[4][(w >> 24) & 0xff] ^
		    crc32c_table[3][(w >> 32) & 0xff] ^
		    crc32c_table[2][(w >> 40) & 0xff] ^
		    crc32c_table[1][(w >> 48) & 0xff] ^
		    crc32c_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(CRC32C_X86)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_run(uint32_t c, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8(c, *p++);
		len--;
	}
#if defined(__x86_64__)
	uint64_t c64 = c;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c64 = _mm_crc32_u64(c64, w);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
#endif
	while (len--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#elif defined(CRC32C_ARM)
/* Untested here (no aarch64 machine in CI); kept deliberately simple. */
__attribute__((target(CRC32C_ARM_TARGET)))
static uint32_t crc32c_hw_run(uint32_t c, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		c = __crc32cb(c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __crc32cd(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __crc32cb(c, *p++);
	return c;
}
#endif

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return ~crc32c_sw(~crc, data, len);
}

uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
#if defined(CRC32C_X86) || defined(CRC32C_ARM)
	if (crc32c_hw)
		return ~crc32c_hw_run(~crc, data, len);
#endif
	return ~crc32c_sw(~crc, data, len);
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	return crc32c_hardware(crc, data, len);
}

int crc32c_hardware_available(void)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_hw;
}
