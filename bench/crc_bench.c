/* crc_bench.c — CRC-32C throughput per core, for each path of
 * src/storage/crc32c.c: the portable table, the crc32 instruction in one
 * lane (the code before the three-lane path, and what a CPU without
 * PCLMULQDQ/PMULL still runs), and crc32c() as the broker calls it.
 *
 *     build/bench/crc_bench [--ms 300]
 *
 * For each buffer size (64 B, 1 KiB, 16 KiB, 1 MiB) each path runs over
 * the same buffer for about --ms of this thread's CPU time; GB/s is bytes
 * per CPU second of this thread (10^9 bytes), so a busy shared machine
 * slows the wall clock but not the figure much. Prints a markdown table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes per CPU second of fn over len bytes, run for about ms. */
static double rate(crc_fn fn, const uint8_t *buf, size_t len, double ms)
{
	volatile uint32_t sink = 0;
	size_t reps = 1;
	double t0 = cpu_s(), t;
	uint64_t bytes = 0;
	for (;;) {
		for (size_t i = 0; i < reps; i++)
			sink ^= fn(sink, buf, len);
		bytes += (uint64_t)reps * len;
		t = cpu_s() - t0;
		if (t >= ms / 1000.0)
			break;
		if (reps < (1u << 20))
			reps *= 2;
	}
	(void)sink;
	return (double)bytes / t;
}

int main(int argc, char **argv)
{
	double ms = 300;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc)
			ms = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: crc_bench [--ms N]\n");
			return 2;
		}
	}
	static const size_t sizes[] = { 64, 1024, 16 * 1024, 1024 * 1024 };
	static const char *names[] = { "64 B", "1 KiB", "16 KiB", "1 MiB" };
	size_t max = 1024 * 1024;
	uint8_t *buf = malloc(max);
	if (!buf)
		return 1;
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < max; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	printf("hardware: %s, three lanes: %s\n\n", crc32c_hardware_available() ? "yes" : "no",
	       crc32c_hardware_lanes_available() ? "yes" : "no");
	printf("| size | portable GB/s | one lane GB/s (before) | crc32c() GB/s (after) | after/before |\n");
	printf("|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		double p = rate(crc32c_portable, buf, sizes[i], ms) / 1e9;
		double s = rate(crc32c_hardware_serial, buf, sizes[i], ms) / 1e9;
		double h = rate(crc32c, buf, sizes[i], ms) / 1e9;
		printf("| %s | %.2f | %.2f | %.2f | %.2fx |\n", names[i], p, s, h, h / s);
	}
	free(buf);
	return 0;
}
