/* test_objstore.c — the object store backends: file (put/get/head/del/
 * list, key checks, atomic puts from several threads, no temp files left,
 * large and background puts written in steps: byte-identical, and no
 * part of one visible after kill -9; background puts held to the store's
 * rate bound; a large delete, cut in steps, frees all of it; the deferred
 * puts' page-cache window keeps the newest objects' pages only)
 * and mem (the same calls plus scripted faults), and URL dispatch. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "objstore/objstore.h"

static char root[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup_dir(void **state)
{
	strcpy(root, "/tmp/sluice-objstore-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	return 0;
}

static int teardown_dir(void **state)
{
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct objstore *open_file_store(void)
{
	char url[512];
	snprintf(url, sizeof url, "file:%s/store", root);
	struct objstore *s = NULL;
	assert_int_equal(objstore_open(url, &s), 0);
	assert_non_null(s);
	assert_string_equal(s->m->name, "file");
	return s;
}

struct listed {
	char keys[512][64];
	uint64_t sizes[512];
	int n;
	int stop_after; /* 0: never */
};

static int list_cb(void *arg, const char *key, uint64_t size, int64_t mtime_ms)
{
	struct listed *l = arg;
	assert_true(l->n < 512);
	assert_true(mtime_ms > 0);
	snprintf(l->keys[l->n], 64, "%s", key);
	l->sizes[l->n] = size;
	l->n++;
	return l->stop_after && l->n >= l->stop_after ? 42 : 0;
}

/* The calls every backend shares. */
static void check_basic_calls(struct objstore *s)
{
	const char msg[] = "hello, object";
	char buf[64];
	uint64_t size = 0;

	assert_int_equal(objstore_put(s, "objects/a.obj", msg, sizeof msg), 0);
	assert_int_equal(objstore_put(s, "objects/b.obj", "xyz", 3), 0);
	assert_int_equal(objstore_put(s, "objects/sub/c.obj", "", 0), 0);
	assert_int_equal(objstore_put(s, "other.obj", "12345", 5), 0);

	assert_int_equal(objstore_head(s, "objects/a.obj", &size), 0);
	assert_int_equal(size, sizeof msg);
	assert_int_equal(objstore_head(s, "objects/sub/c.obj", &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(objstore_get(s, "objects/a.obj", 0, sizeof msg, buf), 0);
	assert_memory_equal(buf, msg, sizeof msg);
	assert_int_equal(objstore_get(s, "objects/a.obj", 7, 6, buf), 0);
	assert_memory_equal(buf, "object", 6);
	assert_int_equal(objstore_get(s, "objects/a.obj", 0, 0, buf), 0);
	/* Beyond the end: a short object. */
	assert_int_equal(objstore_get(s, "objects/a.obj", 10, sizeof msg, buf), SL_EPROTO);
	assert_int_equal(objstore_get(s, "objects/a.obj", 1000, 1, buf), SL_EPROTO);
	assert_int_equal(objstore_get(s, "objects/none.obj", 0, 1, buf), SL_ENOTFOUND);
	assert_int_equal(objstore_head(s, "objects/none.obj", &size), SL_ENOTFOUND);
	assert_int_equal(objstore_head(s, "nodir/none.obj", &size), SL_ENOTFOUND);

	/* Overwrite replaces (keys are never reused, but the store allows it). */
	assert_int_equal(objstore_put(s, "objects/b.obj", "uvwx", 4), 0);
	assert_int_equal(objstore_head(s, "objects/b.obj", &size), 0);
	assert_int_equal(size, 4);

	struct listed *l = calloc(1, sizeof *l);
	assert_int_equal(objstore_list(s, "", list_cb, l), 0);
	assert_int_equal(l->n, 4);
	assert_string_equal(l->keys[0], "objects/a.obj");
	assert_string_equal(l->keys[1], "objects/b.obj");
	assert_string_equal(l->keys[2], "objects/sub/c.obj");
	assert_string_equal(l->keys[3], "other.obj");
	assert_int_equal(l->sizes[0], sizeof msg);
	assert_int_equal(l->sizes[1], 4);

	memset(l, 0, sizeof *l);
	assert_int_equal(objstore_list(s, "objects/", list_cb, l), 0);
	assert_int_equal(l->n, 3);
	memset(l, 0, sizeof *l);
	assert_int_equal(objstore_list(s, "objects/b", list_cb, l), 0);
	assert_int_equal(l->n, 1);
	assert_string_equal(l->keys[0], "objects/b.obj");
	memset(l, 0, sizeof *l);
	assert_int_equal(objstore_list(s, "nothing/", list_cb, l), 0);
	assert_int_equal(l->n, 0);
	/* A nonzero return stops the walk and is returned. */
	memset(l, 0, sizeof *l);
	l->stop_after = 2;
	assert_int_equal(objstore_list(s, "", list_cb, l), 42);
	assert_int_equal(l->n, 2);
	free(l);

	assert_int_equal(objstore_del(s, "objects/a.obj"), 0);
	assert_int_equal(objstore_del(s, "objects/a.obj"), SL_ENOTFOUND);
	assert_int_equal(objstore_head(s, "objects/a.obj", &size), SL_ENOTFOUND);
	assert_int_equal(objstore_get(s, "objects/a.obj", 0, 1, buf), SL_ENOTFOUND);
}

struct del_ctx {
	int n;
	struct objstore *s;
};

/* The callback deletes what it is shown (as GC does). */
static int del_cb2(void *arg, const char *key, uint64_t size, int64_t mtime_ms)
{
	struct del_ctx *c = arg;
	c->n++;
	return objstore_del(c->s, key);
}

static void check_delete_while_listing(struct objstore *s)
{
	struct del_ctx c = { 0, s };
	assert_int_equal(objstore_list(s, "", del_cb2, &c), 0);
	assert_int_equal(c.n, 3);
	c.n = 0;
	assert_int_equal(objstore_list(s, "", del_cb2, &c), 0);
	assert_int_equal(c.n, 0);
}

static void test_file_basic(void **state)
{
	struct objstore *s = open_file_store();
	check_basic_calls(s);
	check_delete_while_listing(s);
	objstore_close(s);
}

static void test_mem_basic(void **state)
{
	struct objstore *s = NULL;
	assert_int_equal(objstore_open("mem:", &s), 0);
	assert_string_equal(s->m->name, "mem");
	check_basic_calls(s);
	check_delete_while_listing(s);
	objstore_close(s);
}

/* key holds exactly the n bytes of want. */
static void assert_object(struct objstore *s, const char *key, const void *want, size_t n)
{
	uint64_t size = 0;
	assert_int_equal(objstore_head(s, key, &size), 0);
	assert_int_equal(size, n);
	uint8_t *back = malloc(n ? n : 1);
	assert_non_null(back);
	assert_int_equal(objstore_get(s, key, 0, n, back), 0);
	assert_memory_equal(back, want, n);
	free(back);
}

/* A gathered put: more pieces than one writev takes (IOV_MAX), of
 * uneven sizes, some empty, land in order; the mem store the same. */
static void check_putv(struct objstore *s)
{
	enum { PIECES = 2500 };
	static struct iovec iov[PIECES];
	static uint8_t bytes[PIECES * 7];
	size_t total = 0;
	for (int i = 0; i < PIECES; i++) {
		size_t len = (size_t)(i % 7); /* 0..6 */
		iov[i] = (struct iovec){ bytes + total, len };
		for (size_t k = 0; k < len; k++)
			bytes[total + k] = (uint8_t)(i * 31 + k);
		total += len;
	}
	assert_int_equal(objstore_putv(s, "objects/gathered", iov, PIECES, 0), 0);
	assert_object(s, "objects/gathered", bytes, total);
	uint64_t size = 0;
	/* deferred: readable at once, durable after the sync; a key is never
	 * written twice (the file store creates it with O_EXCL) */
	assert_int_equal(objstore_putv(s, "objects/deferred", iov, 10, OBJSTORE_PUT_DEFER_SYNC), 0);
	assert_int_equal(objstore_sync(s), 0);
	assert_int_equal(objstore_sync(s), 0); /* nothing left: still 0 */
	uint8_t back[10];
	assert_int_equal(objstore_get(s, "objects/deferred", 0, 10, back), 0);
	assert_memory_equal(back, bytes, 10);
	if (!strcmp(s->m->name, "file"))
		assert_int_equal(objstore_putv(s, "objects/deferred", iov, 10,
					       OBJSTORE_PUT_DEFER_SYNC), SL_EIO);
	/* more pieces than any object has: refused before any I/O */
	assert_int_equal(objstore_putv(s, "objects/x", iov, SL_OBJECT_IOV_MAX + 1, 0), SL_EINVAL);
	assert_int_equal(objstore_head(s, "objects/x", &size), SL_ENOTFOUND);
}

static void test_putv(void **state)
{
	struct objstore *s = open_file_store();
	check_putv(s);
	objstore_close(s);
	assert_int_equal(objstore_open("mem:", &s), 0);
	check_putv(s);
	objstore_close(s);
}

static void test_file_keys(void **state)
{
	struct objstore *s = open_file_store();
	static const char *bad[] = {
		"", "/abs", "..", "../x", "a/../b", "a/..", "./a", "a/./b", "a//b",
		"a/", "with space", "tab\tkey", "a\\b", "caf\xc3\xa9", "x/.tmp.y",
		".tmp.z",
	};
	char buf[4];
	uint64_t size;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(objstore_put(s, bad[i], "x", 1), SL_EINVAL);
		assert_int_equal(objstore_get(s, bad[i], 0, 1, buf), SL_EINVAL);
		assert_int_equal(objstore_head(s, bad[i], &size), SL_EINVAL);
		assert_int_equal(objstore_del(s, bad[i]), SL_EINVAL);
	}
	char longkey[2100];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = 0;
	assert_int_equal(objstore_put(s, longkey, "x", 1), SL_EINVAL);
	assert_int_equal(objstore_list(s, "../", NULL, NULL), SL_EINVAL);
	assert_int_equal(objstore_list(s, "/", NULL, NULL), SL_EINVAL);
	/* Dots inside names are fine. */
	assert_int_equal(objstore_put(s, "a..b/.hidden/x.y.z", "x", 1), 0);
	assert_int_equal(objstore_head(s, "a..b/.hidden/x.y.z", &size), 0);
	objstore_close(s);
}

static int count_temp(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return strstr(path + ftw->base, ".tmp.") == path + ftw->base ? 1 : 0;
}

#define THREADS 4
#define PUTS 50

struct put_arg {
	struct objstore *s;
	int id;
	int failures;
};

static void fill(uint8_t *p, size_t n, int id, int i)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)(id * 31 + i * 7 + k);
}

static void *put_thread(void *p)
{
	struct put_arg *a = p;
	uint8_t data[3000];
	for (int i = 0; i < PUTS; i++) {
		char key[64];
		/* Half share a folder with the other threads, half do not. */
		snprintf(key, sizeof key, i % 2 ? "objects/t%d-%03d.obj" : "objects/t%d/%03d.obj",
			 a->id, i);
		size_t n = 100 + (size_t)(i * 50);
		fill(data, n, a->id, i);
		if (objstore_put(a->s, key, data, n))
			a->failures++;
	}
	return NULL;
}

static void test_file_concurrent_puts(void **state)
{
	struct objstore *s = open_file_store();
	pthread_t t[THREADS];
	struct put_arg a[THREADS];
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct put_arg){ s, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, put_thread, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	struct listed *l = calloc(1, sizeof *l);
	assert_int_equal(objstore_list(s, "objects/", list_cb, l), 0);
	assert_int_equal(l->n, THREADS * PUTS);
	free(l);
	uint8_t want[3000], got[3000];
	for (int id = 0; id < THREADS; id++) {
		for (int i = 0; i < PUTS; i++) {
			char key[64];
			snprintf(key, sizeof key, i % 2 ? "objects/t%d-%03d.obj" : "objects/t%d/%03d.obj",
				 id, i);
			size_t n = 100 + (size_t)(i * 50);
			fill(want, n, id, i);
			uint64_t size;
			assert_int_equal(objstore_head(s, key, &size), 0);
			assert_int_equal(size, n);
			assert_int_equal(objstore_get(s, key, 0, n, got), 0);
			assert_memory_equal(got, want, n);
		}
	}
	/* No temp file is left behind. */
	assert_int_equal(nftw(root, count_temp, 16, FTW_PHYS), 0);
	objstore_close(s);
}

static void test_file_temp_skipped_in_list(void **state)
{
	struct objstore *s = open_file_store();
	assert_int_equal(objstore_put(s, "objects/x.obj", "abc", 3), 0);
	/* A crashed put leaves a temp file: list must not show it. */
	char path[512];
	snprintf(path, sizeof path, "%s/store/objects/.tmp.y.obj.1.1", root);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	struct listed *l = calloc(1, sizeof *l);
	assert_int_equal(objstore_list(s, "", list_cb, l), 0);
	assert_int_equal(l->n, 1);
	assert_string_equal(l->keys[0], "objects/x.obj");
	free(l);
	objstore_close(s);
}

/* Bigger than the file store's pacing threshold (8 MiB), in steps of 4
 * MiB: pieces of uneven sizes, one of them longer than a step, so steps
 * end inside pieces and pieces inside steps. */
#define LARGE_BYTES ((21u << 20) + 4321)

static uint8_t *large_pieces(struct iovec *iov, int *iovcnt)
{
	uint8_t *data = malloc(LARGE_BYTES);
	assert_non_null(data);
	for (size_t k = 0; k < LARGE_BYTES; k++)
		data[k] = (uint8_t)(k * 2654435761u >> 13);
	size_t sizes[] = { 1, 0, 3 << 20, (9u << 20) + 17, 4095, 65536, 1u << 20 };
	size_t pos = 0;
	int n = 0;
	for (size_t i = 0; pos < LARGE_BYTES && n < 63; i++, n++) {
		size_t len = sizes[i % (sizeof sizes / sizeof *sizes)];
		if (len > LARGE_BYTES - pos || n == 62)
			len = LARGE_BYTES - pos;
		iov[n] = (struct iovec){ data + pos, len };
		pos += len;
	}
	assert_int_equal(pos, LARGE_BYTES);
	*iovcnt = n;
	return data;
}

static void test_file_large_put(void **state)
{
	struct objstore *s = open_file_store();
	struct iovec iov[64];
	int iovcnt;
	uint8_t *data = large_pieces(iov, &iovcnt);
	/* Plain and deferred, each also as a background put (256 KiB steps,
	 * ending inside pieces too). */
	const char *keys[] = { "objects/large", "objects/large-deferred", "objects/large-paced",
			       "objects/large-deferred-paced" };
	for (int k = 0; k < 4; k++) {
		unsigned flags = (k & 1 ? OBJSTORE_PUT_DEFER_SYNC : 0) |
				 (k & 2 ? OBJSTORE_PUT_PACED : 0);
		assert_int_equal(objstore_putv(s, keys[k], iov, iovcnt, flags), 0);
		assert_object(s, keys[k], data, LARGE_BYTES);
	}
	assert_int_equal(objstore_sync(s), 0);
	assert_int_equal(nftw(root, count_temp, 16, FTW_PHYS), 0);
	free(data);
	objstore_close(s);
}

/* Pages of the store's key in the page cache (mincore of a mapping). */
static size_t cached_pages(const char *key)
{
	char path[512];
	snprintf(path, sizeof path, "%s/store/%s", root, key);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = ((size_t)st.st_size + page - 1) / page;
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	unsigned char *vec = malloc(n);
	assert_non_null(vec);
	assert_int_equal(mincore(m, (size_t)st.st_size, vec), 0);
	size_t in = 0;
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	munmap(m, (size_t)st.st_size);
	close(fd);
	return in;
}

#define WINDOW_PUT_BYTES ((size_t)1 << 20)
#define WINDOW_PUTS 12

/* WINDOW_PUTS deferred puts of WINDOW_PUT_BYTES under objects/wN (the
 * one numbered del_at, if any, deleted after the next put), synced, into a
 * fresh store whose page-cache window is bound, after a put of 16 bytes
 * (under the window's floor, bound / 65,536); then whether each is cached
 * in full (1), not at all (0) or in part (2), into state[], and the small
 * object's page into *small. False when the filesystem keeps clean pages
 * whatever is advised (tmpfs): nothing to check there. */
static bool window_run(int64_t bound, int del_at, int state[WINDOW_PUTS], int *small)
{
	struct objstore *s = open_file_store();
	objstore_file_set_page_cache(s, bound);
	static uint8_t bytes[WINDOW_PUT_BYTES];
	memset(bytes, 0x5a, sizeof bytes);
	struct iovec iov = { bytes, sizeof bytes };
	struct iovec tiny = { bytes, 16 };
	assert_int_equal(objstore_putv(s, "objects/small", &tiny, 1, OBJSTORE_PUT_DEFER_SYNC), 0);
	char key[64];
	for (int i = 0; i < WINDOW_PUTS; i++) {
		snprintf(key, sizeof key, "objects/w%02d", i);
		assert_int_equal(objstore_putv(s, key, &iov, 1, OBJSTORE_PUT_DEFER_SYNC), 0);
		if (del_at >= 0 && i == del_at + 1) {
			snprintf(key, sizeof key, "objects/w%02d", del_at);
			assert_int_equal(objstore_del(s, key), 0);
		}
	}
	assert_int_equal(objstore_sync(s), 0);
	/* Can this filesystem drop clean pages at all? */
	assert_int_equal(objstore_put(s, "objects/probe", bytes, sizeof bytes), 0);
	char path[512];
	snprintf(path, sizeof path, "%s/store/objects/probe", root);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
	bool drops = cached_pages("objects/probe") == 0;
	size_t all = WINDOW_PUT_BYTES / (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *back = malloc(WINDOW_PUT_BYTES);
	assert_non_null(back);
	for (int i = 0; i < WINDOW_PUTS; i++) {
		state[i] = -1;
		if (i == del_at)
			continue;
		snprintf(key, sizeof key, "objects/w%02d", i);
		size_t in = cached_pages(key);
		state[i] = in == all ? 1 : in == 0 ? 0 : 2;
		/* Whatever its pages, the object reads back whole. */
		assert_int_equal(objstore_get(s, key, 0, WINDOW_PUT_BYTES, back), 0);
		assert_memory_equal(back, bytes, WINDOW_PUT_BYTES);
	}
	free(back);
	*small = (int)cached_pages("objects/small");
	objstore_close(s);
	return drops;
}

/* The deferred puts' page-cache window (the agent's
 * --file-page-cache-bytes): with a window of 4 objects' bytes, after 12
 * the newest 4 are cached and the 8 before them are not; with 0 none is,
 * with -1 (the default) all are. A key deleted while in the window is
 * forgotten when it leaves it, and nothing else changes. */
static void test_file_page_cache_window(void **state)
{
	int st[WINDOW_PUTS], small;
	if (!window_run(4 * (int64_t)WINDOW_PUT_BYTES, -1, st, &small)) {
		fprintf(stderr, "skipped: %s keeps clean pages\n", root);
		skip();
	}
	for (int i = 0; i < WINDOW_PUTS; i++)
		assert_int_equal(st[i], i >= WINDOW_PUTS - 4);
	/* Under the floor: never in the window, so never dropped by it. */
	assert_int_equal(small, 1);
	teardown_dir(state);
	assert_int_equal(setup_dir(state), 0);
	window_run(0, -1, st, &small);
	for (int i = 0; i < WINDOW_PUTS; i++)
		assert_int_equal(st[i], 0);
	assert_int_equal(small, 0);
	teardown_dir(state);
	assert_int_equal(setup_dir(state), 0);
	window_run(-1, -1, st, &small);
	for (int i = 0; i < WINDOW_PUTS; i++)
		assert_int_equal(st[i], 1);
	/* Object 2 deleted while in the window: it leaves the window after
	 * 4 more puts (the window counts its bytes until then). */
	teardown_dir(state);
	assert_int_equal(setup_dir(state), 0);
	window_run(4 * (int64_t)WINDOW_PUT_BYTES, 2, st, &small);
	for (int i = 0; i < WINDOW_PUTS; i++)
		if (i != 2)
			assert_int_equal(st[i], i >= WINDOW_PUTS - 4);
}

/* The store's rate bound (the agent's --maintenance-io-bytes-per-sec):
 * background puts, together, take at least their bytes over the rate,
 * byte-identical; other puts are not held to it. */
static void test_file_paced_rate(void **state)
{
	struct objstore *s = open_file_store();
	struct objstore_pace pace = { .bytes_per_sec = 8u << 20 };
	objstore_set_pace(s, &pace);
	size_t len = (3u << 20) + 1000;
	uint8_t *data = malloc(len);
	assert_non_null(data);
	for (size_t k = 0; k < len; k++)
		data[k] = (uint8_t)(k * 40503u >> 7);
	struct iovec one = { data, len };
	int64_t t0 = clock_mono_us();
	assert_int_equal(objstore_putv(s, "objects/paced-1", &one, 1, OBJSTORE_PUT_PACED), 0);
	assert_int_equal(objstore_putv(s, "objects/paced-2", &one, 1,
				       OBJSTORE_PUT_PACED | OBJSTORE_PUT_DEFER_SYNC), 0);
	int64_t took = clock_mono_us() - t0;
	/* 2 x 13 steps of up to 256 KiB at 8 MiB/s: every step but the first
	 * waits for the ones before (~31 ms each), so >= 25 x 31 ms. */
	assert_true(took >= 750 * 1000);
	assert_object(s, "objects/paced-1", data, len);
	assert_object(s, "objects/paced-2", data, len);
	/* A put without the flag is not held to the bound: at 1 KiB/s its
	 * steps would take 256 s each. */
	pace.bytes_per_sec = 1024;
	t0 = clock_mono_us();
	assert_int_equal(objstore_putv(s, "objects/unpaced", &one, 1, 0), 0);
	assert_true(clock_mono_us() - t0 < 60 * 1000000);
	assert_object(s, "objects/unpaced", data, len);
	objstore_set_pace(s, NULL);
	assert_int_equal(objstore_sync(s), 0);
	free(data);
	objstore_close(s);
}

/* kill -9 in the middle of a large (paced) put: the key is absent, or
 * complete if the put had finished; never a part of the object. */
static void test_file_large_put_killed(void **state)
{
	struct iovec iov[64];
	int iovcnt;
	uint8_t *data = large_pieces(iov, &iovcnt);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct objstore *c = open_file_store();
		for (;;)
			(void)objstore_putv(c, "objects/killed", iov, iovcnt, 0);
	}
	/* Kill it once its first put has a temp file. */
	char dir[512];
	snprintf(dir, sizeof dir, "%s/store/objects", root);
	int64_t deadline = clock_mono_us() + 30 * 1000000;
	while (clock_mono_us() < deadline) {
		DIR *d = opendir(dir);
		struct dirent *e;
		int temp = 0;
		while (d && (e = readdir(d)))
			temp |= strncmp(e->d_name, ".tmp.", 5) == 0;
		if (d)
			closedir(d);
		if (temp)
			break;
		usleep(200);
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	struct objstore *s = open_file_store();
	uint64_t size;
	int rc = objstore_head(s, "objects/killed", &size);
	if (rc != SL_ENOTFOUND)
		assert_object(s, "objects/killed", data, LARGE_BYTES);
	/* Its temp file is no key. */
	struct listed *l = calloc(1, sizeof *l);
	assert_int_equal(objstore_list(s, "", list_cb, l), 0);
	assert_int_equal(l->n, rc == 0 ? 1 : 0);
	free(l);
	free(data);
	objstore_close(s);
}

/* Deleting a large object (above 16 MiB: cut in 4 MiB steps before the
 * unlink): the key is gone and its space freed even while a reader still
 * holds the file open (a plain unlink keeps all 21 MiB until the reader
 * closes); a second name of the same file keeps its bytes; a small
 * object and a missing key delete as before. */
static void test_file_large_delete(void **state)
{
	struct objstore *s = open_file_store();
	struct iovec iov[64];
	int iovcnt;
	uint8_t *data = large_pieces(iov, &iovcnt);
	assert_int_equal(objstore_putv(s, "objects/big", iov, iovcnt, 0), 0);
	char path[600], other[600];
	snprintf(path, sizeof path, "%s/store/objects/big", root);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(objstore_del(s, "objects/big"), 0);
	uint64_t size;
	assert_int_equal(objstore_head(s, "objects/big", &size), SL_ENOTFOUND);
	assert_int_equal(objstore_del(s, "objects/big"), SL_ENOTFOUND);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_true(st.st_size <= 4 << 20);
	assert_true((uint64_t)st.st_blocks * 512 <= (5u << 20));
	close(fd);

	/* Linked under a second name (outside the store): not cut. */
	assert_int_equal(objstore_putv(s, "objects/linked", iov, iovcnt, 0), 0);
	snprintf(path, sizeof path, "%s/store/objects/linked", root);
	snprintf(other, sizeof other, "%s/linked-copy", root);
	assert_int_equal(link(path, other), 0);
	assert_int_equal(objstore_del(s, "objects/linked"), 0);
	assert_int_equal(stat(other, &st), 0);
	assert_int_equal(st.st_size, LARGE_BYTES);
	assert_int_equal(unlink(other), 0);

	assert_int_equal(objstore_put(s, "objects/small", "abc", 3), 0);
	assert_int_equal(objstore_del(s, "objects/small"), 0);
	assert_int_equal(objstore_head(s, "objects/small", &size), SL_ENOTFOUND);
	free(data);
	objstore_close(s);
}

static void test_open_urls(void **state)
{
	struct objstore *s = (struct objstore *)1;
	assert_int_equal(objstore_open("s3://bucket/prefix", &s), SL_EINVAL);
	assert_null(s);
	assert_int_equal(objstore_open("ftp://x", &s), SL_EINVAL);
	assert_int_equal(objstore_open("file:", &s), SL_EINVAL);
	assert_int_equal(objstore_open("", &s), SL_EINVAL);
	assert_int_equal(objstore_open("mem:x", &s), SL_EINVAL);
	char url[512];
	snprintf(url, sizeof url, "file://%s/deep/er/store/", root);
	assert_int_equal(objstore_open(url, &s), 0);
	assert_int_equal(objstore_put(s, "k", "v", 1), 0);
	objstore_close(s);
	snprintf(url, sizeof url, "%s/deep/er/store/k", root);
	struct stat st;
	assert_int_equal(stat(url, &st), 0);
	/* A file where the folder should be. */
	snprintf(url, sizeof url, "file:%s/deep/er/store/k", root);
	assert_int_equal(objstore_open(url, &s), SL_EIO);
}

static void test_mem_faults(void **state)
{
	struct objstore *s;
	assert_int_equal(objstore_open("mem:", &s), 0);
	char buf[8];
	uint64_t size;

	/* FAIL: the next two calls fail, then all is well. */
	assert_int_equal(objstore_mem_fault(s, OBJSTORE_FAULT_FAIL, 2, 0), 0);
	assert_int_equal(objstore_put(s, "k1", "abc", 3), SL_ESTORE);
	assert_int_equal(objstore_head(s, "k1", &size), SL_ENOTFOUND);
	assert_int_equal(objstore_put(s, "k1", "abc", 3), SL_ESTORE);
	assert_int_equal(objstore_put(s, "k1", "abc", 3), 0);
	assert_int_equal(objstore_mem_fault(s, OBJSTORE_FAULT_FAIL, 1, 0), 0);
	assert_int_equal(objstore_get(s, "k1", 0, 3, buf), SL_ESTORE);
	assert_int_equal(objstore_get(s, "k1", 0, 3, buf), 0);

	/* STALL_MS: slow but successful. */
	assert_int_equal(objstore_mem_fault(s, OBJSTORE_FAULT_STALL_MS, 1, 60), 0);
	int64_t t0 = clock_mono_us();
	assert_int_equal(objstore_put(s, "k2", "de", 2), 0);
	assert_true(clock_mono_us() - t0 >= 60000);
	t0 = clock_mono_us();
	assert_int_equal(objstore_get(s, "k2", 0, 2, buf), 0);
	assert_true(clock_mono_us() - t0 < 50000);
	assert_memory_equal(buf, "de", 2);

	/* LOSE: stored, but the caller hears a timeout. */
	assert_int_equal(objstore_mem_fault(s, OBJSTORE_FAULT_LOSE, 1, 0), 0);
	assert_int_equal(objstore_put(s, "k3", "fgh", 3), SL_ETIMEDOUT);
	assert_int_equal(objstore_head(s, "k3", &size), 0);
	assert_int_equal(size, 3);
	assert_int_equal(objstore_get(s, "k3", 0, 3, buf), 0);

	/* count < 0: until reset. */
	assert_int_equal(objstore_mem_fault(s, OBJSTORE_FAULT_FAIL, -1, 0), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(objstore_get(s, "k3", 0, 3, buf), SL_ESTORE);
	assert_int_equal(objstore_mem_fault(s, OBJSTORE_FAULT_NONE, 0, 0), 0);
	assert_int_equal(objstore_get(s, "k3", 0, 3, buf), 0);

	/* Only a mem store takes faults. */
	struct objstore *f = open_file_store();
	assert_int_equal(objstore_mem_fault(f, OBJSTORE_FAULT_FAIL, 1, 0), SL_EINVAL);
	objstore_close(f);
	objstore_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_basic, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_keys, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_putv, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_concurrent_puts, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_temp_skipped_in_list, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_large_put, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_large_put_killed, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_paced_rate, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_page_cache_window, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_large_delete, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_open_urls, setup_dir, teardown_dir),
		cmocka_unit_test(test_mem_basic),
		cmocka_unit_test_setup_teardown(test_mem_faults, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
