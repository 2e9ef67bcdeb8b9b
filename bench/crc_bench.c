/* crc_bench.c — CRC-32C throughput per core, for each path of
 * src/storage/crc32c.c: the portable table, the crc32 instruction in one
 * lane (the code before the three-lane path, and what a CPU without
 * PCLMULQDQ/PMULL still runs), and crc32c() as the broker calls it.
 *
 *     build/bench/crc_bench [--ms 300]
 *     build/bench/crc_bench --recv [--frames 2048] [--buffers 64] [--chunk-kib 64]
 *
 * For each buffer size (64 B, 1 KiB, 16 KiB, 1 MiB) each path runs over
 * the same buffer for about --ms of this thread's CPU time; GB/s is bytes
 * per CPU second of this thread (10^9 bytes), so a busy shared machine
 * slows the wall clock but not the figure much. Prints a markdown table.
 *
 * --recv: where the broker's bytes come from. A child process sends
 * 1 MiB frames over loopback TCP; each is read in reads of at most
 * --chunk-kib into one of --buffers rotating 1 MiB buffers (pooled frames
 * that the read cache keeps), then checked three ways, each timed alone:
 * the bytes of each read right after it returns (a check as bytes
 * arrive), the whole frame after its last read (the broker's order), and
 * the whole frame again (a second pass). A fourth row copies the frame
 * with memcpy from a hot buffer instead of reading it, then checks it.
 * Whether the kernel's copy out of the socket leaves the bytes in the
 * cache decides whether a check as they arrive can be cheaper.
 *
 *     build/bench/crc_bench --records [--ms 1000]
 *
 * --records: the rest of a produced batch's check. batch_validate on an
 * uncompressed ~1 MB batch of records of 1000 B and of 100 B (a client's
 * fields: timestampDelta a few ms, offsetDelta counting up, null key,
 * no headers), hot in the cache, against crc32c() alone over the same
 * bytes: the difference is the walk over every record's framing, per GB
 * and per record. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/batch.h"
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

#define RECV_FRAME_BYTES ((size_t)1 << 20)

/* The sending side of --recv: frames frames of 1 MiB to port, then exit. */
static void recv_sender(uint16_t port, int frames)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = port,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t *buf = malloc(RECV_FRAME_BYTES);
	if (s < 0 || !buf || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
		_exit(1);
	memset(buf, 0x5a, RECV_FRAME_BYTES);
	for (int i = 0; i < frames; i++)
		for (size_t off = 0; off < RECV_FRAME_BYTES;) {
			ssize_t n = write(s, buf + off, RECV_FRAME_BYTES - off);
			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
	_exit(0);
}

/* CPU seconds of one crc32c call over p, less the clock's own cost. */
static double timed_crc(const uint8_t *p, size_t len, double clock_cost, volatile uint32_t *sink)
{
	double t0 = cpu_s();
	*sink ^= crc32c(0, p, len);
	return cpu_s() - t0 - clock_cost;
}

static int recv_bench(int frames, int buffers, size_t chunk)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
		return 1;
	pid_t child = fork();
	if (child == 0)
		recv_sender(a.sin_port, frames);
	int s = accept(ls, NULL, NULL);
	uint8_t *hot = malloc(RECV_FRAME_BYTES);
	uint8_t **buf = calloc((size_t)buffers, sizeof *buf);
	if (s < 0 || !hot || !buf)
		return 1;
	memset(hot, 0x5a, RECV_FRAME_BYTES);
	for (int i = 0; i < buffers; i++) {
		if (!(buf[i] = malloc(RECV_FRAME_BYTES)))
			return 1;
		memset(buf[i], 1, RECV_FRAME_BYTES);
	}
	double clock_cost = cpu_s();
	for (int i = 0; i < 1000; i++)
		(void)cpu_s();
	clock_cost = (cpu_s() - clock_cost) / 1001;
	volatile uint32_t sink = 0;
	double t_read = 0, t_each = 0, t_frame = 0, t_again = 0, t_memcpy = 0;
	for (int f = 0; f < frames; f++) {
		uint8_t *d = buf[f % buffers];
		/* Odd frames check as bytes arrive, even ones after the last
		 * read, so both see the same traffic. */
		bool each = f & 1;
		for (size_t off = 0; off < RECV_FRAME_BYTES;) {
			size_t want = RECV_FRAME_BYTES - off < chunk ? RECV_FRAME_BYTES - off : chunk;
			double t0 = cpu_s();
			ssize_t n = read(s, d + off, want);
			t_read += cpu_s() - t0;
			if (n <= 0)
				return 1;
			if (each)
				t_each += timed_crc(d + off, (size_t)n, clock_cost, &sink);
			off += (size_t)n;
		}
		if (!each)
			t_frame += timed_crc(d, RECV_FRAME_BYTES, clock_cost, &sink);
		t_again += timed_crc(d, RECV_FRAME_BYTES, clock_cost, &sink);
		/* The same frame's buffer filled by a user-space copy. */
		uint8_t *m = buf[(f + buffers / 2) % buffers];
		memcpy(m, hot, RECV_FRAME_BYTES);
		t_memcpy += timed_crc(m, RECV_FRAME_BYTES, clock_cost, &sink);
	}
	int status;
	waitpid(child, &status, 0);
	double half = (double)(frames / 2) * RECV_FRAME_BYTES, all = (double)frames * RECV_FRAME_BYTES;
	printf("%d frames of 1 MiB over loopback, reads of at most %zu KiB, %d rotating buffers\n\n",
	       frames, chunk >> 10, buffers);
	printf("| check | crc32c() GB/s |\n|---|---|\n");
	printf("| each read's bytes, right after it | %.2f |\n", half / t_each / 1e9);
	printf("| the frame after its last read | %.2f |\n", half / t_frame / 1e9);
	printf("| the frame again (second pass) | %.2f |\n", all / t_again / 1e9);
	printf("| a frame filled by memcpy | %.2f |\n", all / t_memcpy / 1e9);
	printf("\nthe reads: %.3f CPU s/GB\n", t_read / (all / 1e9));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static size_t put_varint(uint8_t *p, int64_t v)
{
	uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 0;
	while (u >= 0x80) {
		p[n++] = (uint8_t)(u | 0x80);
		u >>= 7;
	}
	p[n++] = (uint8_t)u;
	return n;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A valid batch of count records of value_bytes each; returns its length. */
static size_t build_batch(uint8_t *b, int count, int value_bytes)
{
	size_t pos = 61; /* the header */
	for (int i = 0; i < count; i++) {
		uint8_t body[32];
		size_t n = 0;
		body[n++] = 0;                            /* attributes */
		n += put_varint(body + n, i / 64);        /* timestampDelta */
		n += put_varint(body + n, i);             /* offsetDelta */
		n += put_varint(body + n, -1);            /* null key */
		n += put_varint(body + n, value_bytes);
		pos += put_varint(b + pos, (int64_t)(n + (size_t)value_bytes + 1));
		memcpy(b + pos, body, n);
		pos += n;
		memset(b + pos, 'v', (size_t)value_bytes);
		pos += (size_t)value_bytes;
		b[pos++] = 0;                             /* no headers */
	}
	memset(b, 0, 61);
	put_be32(b + 8, (uint32_t)(pos - 12));            /* batchLength */
	b[16] = 2;                                        /* magic */
	put_be32(b + 23, (uint32_t)(count - 1));          /* lastOffsetDelta */
	memset(b + 43, 0xff, 8);                          /* producerId -1 */
	memset(b + 53, 0xff, 4);                          /* baseSequence -1 */
	put_be32(b + 57, (uint32_t)count);
	put_be32(b + 17, crc32c(0, b + 21, pos - 21));
	return pos;
}

static int records_bench(double ms)
{
	static const int value_bytes[] = { 1000, 100 };
	uint8_t *b = malloc(1200 * 1024);
	if (!b)
		return 1;
	printf("| records | batch bytes | batch_validate s/GB | crc32c() alone s/GB | the walk s/GB | the walk ns/record |\n");
	printf("|---|---|---|---|---|---|\n");
	for (size_t k = 0; k < sizeof value_bytes / sizeof value_bytes[0]; k++) {
		int count = 1000 * 1000 / (value_bytes[k] + 12);
		size_t len = build_batch(b, count, value_bytes[k]);
		struct batch_info info;
		if (batch_validate(b, len, &info) != 0) {
			fprintf(stderr, "crc_bench: the built batch does not validate\n");
			return 1;
		}
		uint64_t runs = 0;
		double t0 = cpu_s(), tv;
		while ((tv = cpu_s() - t0) < ms / 1000.0) {
			for (int i = 0; i < 64; i++)
				(void)batch_validate(b, len, &info);
			runs += 64;
		}
		double validate = tv / ((double)runs * (double)len / 1e9);
		double crc = 1e9 / rate(crc32c, b + 21, len - 21, ms);
		printf("| %d of %d B | %zu | %.4f | %.4f | %.4f | %.1f |\n", count, value_bytes[k], len,
		       validate, crc, validate - crc, (validate - crc) * (double)len / count);
	}
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	double ms = 300;
	bool recv = false, records = false;
	int frames = 2048, buffers = 64;
	size_t chunk_kib = 64;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc)
			ms = atof(argv[++i]);
		else if (strcmp(argv[i], "--recv") == 0)
			recv = true;
		else if (strcmp(argv[i], "--records") == 0)
			records = true;
		else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
			frames = atoi(argv[++i]);
		else if (strcmp(argv[i], "--buffers") == 0 && i + 1 < argc)
			buffers = atoi(argv[++i]);
		else if (strcmp(argv[i], "--chunk-kib") == 0 && i + 1 < argc)
			chunk_kib = (size_t)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: crc_bench [--ms N]\n"
					"       crc_bench --recv [--frames 2048] [--buffers 64] [--chunk-kib 64]\n"
					"       crc_bench --records [--ms N]\n");
			return 2;
		}
	}
	if (records)
		return records_bench(ms);
	if (recv) {
		if (frames < 2 || buffers < 2 || chunk_kib < 1 || chunk_kib > 1024) {
			fprintf(stderr, "crc_bench: --frames and --buffers at least 2, --chunk-kib 1..1024\n");
			return 2;
		}
		return recv_bench(frames, buffers, chunk_kib << 10);
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
