/* crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Owns the implementations of one function: the crc32 instruction on
 * x86-64 (SSE4.2) or aarch64 (ARMv8 CRC32C), three lanes at a time with a
 * carry-less multiply (PCLMULQDQ / PMULL) to join them, or one lane when
 * the CPU lacks the multiply; and a portable slicing-by-8 table. The
 * hardware paths are compiled with per-function target attributes and
 * chosen at run time, so the rest of the build needs no -msse4.2 /
 * -march flags.
 *
 * Why three lanes: the crc32 instruction takes 3 cycles but a new one can
 * start every cycle, so one dependent chain runs at a third of what the
 * unit can do. Splitting a block into three consecutive parts of L bytes
 * and running their chains interleaved keeps it busy; the parts' CRCs are
 * then joined with the linearity of the CRC (Intel, "Fast CRC Computation
 * for iSCSI Polynomial Using CRC32 Instruction"): without the pre/post
 * inversion, the register after A then B is crc(A)·x^(8|B|) + crc(B)
 * mod P. Shifting by 8L bytes is a carry-less multiply by the constant
 * x^(8L-33) mod P (32 bits × 32 bits → 63 bits; -33 because the
 * instruction multiplies by x^32 and the reflected product comes out one
 * place up), whose 64-bit result the crc32 instruction itself reduces
 * mod P: crc32_u64(0, v) = v·x^32 mod P. That reduction is folded into
 * the last 8 bytes of the third part, which the loop leaves out for it. */
#include "storage/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CRC32C_X86 1
#define CRC32C_LANES 1
#define CRC32C_LANES_TARGET "sse4.2,pclmul"
#elif defined(__i386__)
#include <nmmintrin.h>
#define CRC32C_X86 1
#elif defined(__aarch64__) && (defined(__ARM_FEATURE_CRC32) || !defined(__clang__))
/* GCC's arm_acle.h enables the CRC intrinsics itself; older clang needs
 * -march=armv8-a+crc, and without it we fall back to the table. */
#include <arm_acle.h>
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#ifndef HWCAP_PMULL
#define HWCAP_PMULL (1 << 4)
#endif
#define CRC32C_ARM 1
#define CRC32C_LANES 1
#ifdef __clang__
#define CRC32C_ARM_TARGET "crc"
#define CRC32C_LANES_TARGET "crc,aes"
#else
#define CRC32C_ARM_TARGET "+crc"
#define CRC32C_LANES_TARGET "+crc+crypto"
#endif
#endif

#define CRC32C_POLY 0x82F63B78u

/* The three-lane path: a buffer takes as many blocks of three lanes of
 * CRC32C_LANE_BYTES_MAX as fit, then one block of the longest lanes (a
 * multiple of 8) that fit in what is left, then one lane for the last
 * bytes (under 24). Under CRC32C_LANES_MIN_BYTES the join costs more than
 * the lanes save and one lane does it all. */
#define CRC32C_LANE_BYTES_MAX 4096
#define CRC32C_LANE_WORDS_MAX (CRC32C_LANE_BYTES_MAX / 8)
#define CRC32C_LANES_MIN_BYTES 128

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
/* Set once under crc32c_once: the crc32 instruction, and the carry-less
 * multiply that the three-lane path needs beside it. */
static int crc32c_hw, crc32c_hw_lanes;
/* Per lane length L = 8m, at [m]: x^(8L-33) and x^(16L-33) mod P,
 * reflected (the multipliers that shift a lane's CRC over one and two
 * lanes). 4 KiB in all. */
static uint32_t crc32c_shift1[CRC32C_LANE_WORDS_MAX + 1], crc32c_shift2[CRC32C_LANE_WORDS_MAX + 1];

/* v·x^n mod P, reflected (bit 31 is x^0): multiply by x n times. */
static uint32_t mul_xpow(uint32_t v, size_t n)
{
	while (n--)
		v = (v >> 1) ^ (CRC32C_POLY & (0u - (v & 1)));
	return v;
}

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
	/* Each from the one before: ~10^5 shift steps at start. */
	crc32c_shift1[1] = mul_xpow(0x80000000u, 64 - 33);
	crc32c_shift2[1] = mul_xpow(0x80000000u, 128 - 33);
	for (size_t m = 2; m <= CRC32C_LANE_WORDS_MAX; m++) {
		crc32c_shift1[m] = mul_xpow(crc32c_shift1[m - 1], 64);
		crc32c_shift2[m] = mul_xpow(crc32c_shift2[m - 1], 128);
	}
#if defined(CRC32C_X86)
	__builtin_cpu_init();
	crc32c_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#if defined(CRC32C_LANES)
	crc32c_hw_lanes = crc32c_hw && __builtin_cpu_supports("pclmul");
#endif
#elif defined(CRC32C_ARM)
	unsigned long caps = getauxval(AT_HWCAP);
	crc32c_hw = (caps & HWCAP_CRC32) ? 1 : 0;
	crc32c_hw_lanes = crc32c_hw && (caps & HWCAP_PMULL);
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

#if defined(CRC32C_LANES)
/* One block of three lanes of L bytes (a multiple of 8) from register c;
 * k1, k2: x^(8L-33), x^(16L-33) mod P. */
__attribute__((target(CRC32C_LANES_TARGET)))
static inline uint32_t crc32c_block3(uint32_t c, const uint8_t *p, size_t L,
				     uint32_t k1, uint32_t k2)
{
	uint64_t a = c, b = 0, d = 0, w;
	const uint8_t *q = p + L, *r = p + 2 * L, *end = p + L - 8;
	while (p < end) {
		memcpy(&w, p, 8);
		a = _mm_crc32_u64(a, w);
		memcpy(&w, q, 8);
		b = _mm_crc32_u64(b, w);
		memcpy(&w, r, 8);
		d = _mm_crc32_u64(d, w);
		p += 8;
		q += 8;
		r += 8;
	}
	/* The last word of the first two lanes as usual; the third lane's
	 * last word carries the shifted first two (see the file head). */
	memcpy(&w, p, 8);
	a = _mm_crc32_u64(a, w);
	memcpy(&w, q, 8);
	b = _mm_crc32_u64(b, w);
	__m128i pa = _mm_clmulepi64_si128(_mm_cvtsi64_si128((int64_t)a),
					  _mm_cvtsi32_si128((int)k2), 0x00);
	__m128i pb = _mm_clmulepi64_si128(_mm_cvtsi64_si128((int64_t)b),
					  _mm_cvtsi32_si128((int)k1), 0x00);
	uint64_t shifted = (uint64_t)_mm_cvtsi128_si64(_mm_xor_si128(pa, pb));
	memcpy(&w, r, 8);
	return (uint32_t)_mm_crc32_u64(d, w ^ shifted);
}

#endif

#elif defined(CRC32C_ARM)
/* The same method as x86's, with the ARMv8 CRC32C instructions and
 * PMULL. No CI machine is aarch64: ctest's cross/crc32c-aarch64 runs it
 * under qemu-aarch64 (tools/crc32c-cross.sh). */
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

__attribute__((target(CRC32C_LANES_TARGET)))
static inline uint32_t crc32c_block3(uint32_t c, const uint8_t *p, size_t L,
				     uint32_t k1, uint32_t k2)
{
	uint32_t a = c, b = 0, d = 0;
	uint64_t w;
	const uint8_t *q = p + L, *r = p + 2 * L, *end = p + L - 8;
	while (p < end) {
		memcpy(&w, p, 8);
		a = __crc32cd(a, w);
		memcpy(&w, q, 8);
		b = __crc32cd(b, w);
		memcpy(&w, r, 8);
		d = __crc32cd(d, w);
		p += 8;
		q += 8;
		r += 8;
	}
	memcpy(&w, p, 8);
	a = __crc32cd(a, w);
	memcpy(&w, q, 8);
	b = __crc32cd(b, w);
	uint64_t pa = vgetq_lane_u64(vreinterpretq_u64_p128(vmull_p64(a, k2)), 0);
	uint64_t pb = vgetq_lane_u64(vreinterpretq_u64_p128(vmull_p64(b, k1)), 0);
	memcpy(&w, r, 8);
	return __crc32cd(d, w ^ pa ^ pb);
}

#endif

#if defined(CRC32C_LANES)
__attribute__((target(CRC32C_LANES_TARGET)))
static uint32_t crc32c_hw_lanes_run(uint32_t c, const uint8_t *p, size_t len)
{
	while (len >= 3 * CRC32C_LANE_BYTES_MAX) {
		c = crc32c_block3(c, p, CRC32C_LANE_BYTES_MAX, crc32c_shift1[CRC32C_LANE_WORDS_MAX],
				  crc32c_shift2[CRC32C_LANE_WORDS_MAX]);
		p += 3 * CRC32C_LANE_BYTES_MAX;
		len -= 3 * CRC32C_LANE_BYTES_MAX;
	}
	if (len >= CRC32C_LANES_MIN_BYTES) {
		size_t m = len / 24;
		c = crc32c_block3(c, p, 8 * m, crc32c_shift1[m], crc32c_shift2[m]);
		p += 24 * m;
		len -= 24 * m;
	}
	return crc32c_hw_run(c, p, len);
}
#endif

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return ~crc32c_sw(~crc, data, len);
}

uint32_t crc32c_hardware_serial(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
#if defined(CRC32C_X86) || defined(CRC32C_ARM)
	if (crc32c_hw)
		return ~crc32c_hw_run(~crc, data, len);
#endif
	return ~crc32c_sw(~crc, data, len);
}

uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
#if defined(CRC32C_LANES)
	if (crc32c_hw_lanes && len >= CRC32C_LANES_MIN_BYTES)
		return ~crc32c_hw_lanes_run(~crc, data, len);
#endif
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

int crc32c_hardware_lanes_available(void)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_hw_lanes;
}
