/* buf.c — the growable writer and the sticky-error reader. */
#include "base/buf.h"
#include "base/sl_assert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL */
#endif

bool kstr_eq(kstr a, const char *s)
{
	size_t n = strlen(s);
	return a.len >= 0 && (size_t)a.len == n && memcmp(a.ptr, s, n) == 0;
}

bool kstr_copy(kstr s, char *out, size_t cap)
{
	if (s.len < 0 || (size_t)s.len >= cap)
		return false;
	memcpy(out, s.ptr, (size_t)s.len);
	out[s.len] = 0;
	return true;
}

/* Large buffers of the thread that enabled the pool are kept for reuse
 * instead of being unmapped: building a fetch response otherwise page
 * faults on every page of a fresh mapping (measured: a third of the
 * agent's CPU during catch-up reads). Sizes are powers of two.
 *
 * Past the byte bound a released block (of at most a quarter of the
 * bound) displaces the blocks released longest ago, of any size, rather
 * than being refused: what the pool keeps follows what the thread uses
 * now. A pool that refused once full kept the 1 MiB frames of a produce
 * load (or of the start-up pretouch) for ever, and every 4-8 MiB buffer
 * a catch-up of merged objects reads into was mapped afresh
 * (bench/RESULTS.md, merge). */
#define POOL_MIN_BYTES ((size_t)256 << 10)
#define POOL_CLASSES 10 /* 256 KiB .. 128 MiB: from the mmap threshold up */
/* A growing kbuf takes a pooled block at most this many classes larger. */
#define POOL_GROW_CLASSES 3
/* A released block displaces others only when at most this share of the
 * bound; a larger one is kept only if there is room, so one 64 MiB frame
 * cannot empty a pool of the frames and read buffers in use. */
#define POOL_DISPLACE_DIV 4

/* A free block's first bytes: on its class's list (newest first) and on
 * the pool's list in release order. */
struct pool_block {
	struct pool_block *next, *prev;   /* its class's */
	struct pool_block *newer, *older; /* all classes' */
	int cls;
};

static __thread bool pool_enabled;
static __thread size_t pool_bytes, pool_bytes_max;
static __thread struct pool_block *pool_free[POOL_CLASSES];
static __thread struct pool_block *pool_newest, *pool_oldest;

static int pool_class(size_t cap)
{
	if (cap < POOL_MIN_BYTES || (cap & (cap - 1)))
		return -1;
	int c = 0;
	while ((POOL_MIN_BYTES << c) < cap)
		c++;
	return c < POOL_CLASSES ? c : -1;
}

/* Take blk off both lists. */
static void pool_unlink(struct pool_block *blk)
{
	if (blk->prev)
		blk->prev->next = blk->next;
	else
		pool_free[blk->cls] = blk->next;
	if (blk->next)
		blk->next->prev = blk->prev;
	if (blk->newer)
		blk->newer->older = blk->older;
	else
		pool_newest = blk->older;
	if (blk->older)
		blk->older->newer = blk->newer;
	else
		pool_oldest = blk->newer;
	pool_bytes -= POOL_MIN_BYTES << blk->cls;
}

size_t kbuf_pool_bytes(size_t cap)
{
	if (cap == 0)
		return pool_bytes;
	int c = pool_class(cap);
	size_t n = 0;
	for (struct pool_block *b = c >= 0 ? pool_free[c] : NULL; b; b = b->next)
		n += cap;
	return n;
}

/* Free the blocks released longest ago until the pool holds at most max. */
static void pool_trim(size_t max)
{
	while (pool_bytes > max) {
		struct pool_block *old = pool_oldest;
		SL_ASSERT(old, "pool_bytes counts the listed blocks");
		pool_unlink(old);
		free(old);
	}
}

void kbuf_pool_enable(size_t max_bytes)
{
	pool_enabled = true;
	pool_bytes_max = max_bytes;
	pool_trim(max_bytes);
}

/* A new block of cap bytes for the pool, its pages mapped by one
 * madvise instead of one page fault each as the kernel's socket copy or
 * a response's encoding first writes them. On a VM that hands freed
 * guest memory back to the host (balloon free page reporting) a fresh
 * page is costly: 3.1 ms of CPU per MiB faulted page by page against
 * 1.5 ms populated at once on the 2-core bench machine, and the read
 * cache and the pool fill with ~130 MB of such blocks as a produce load
 * starts (6-12 % of a 10 s produce profile, bench/RESULTS.md). Pooled
 * blocks are reused, so the whole block is written sooner or later. */
static uint8_t *pool_fresh(size_t cap)
{
	uint8_t *d = malloc(cap);
	if (d) {
		uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
		uintptr_t start = (uintptr_t)d & ~(page - 1);
		uintptr_t end = ((uintptr_t)d + cap + page - 1) & ~(page - 1);
		/* Advice only: where unsupported the pages fault in as before. */
		(void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
	}
	return d;
}

uint8_t *kbuf_pretouch(size_t cap)
{
	uint8_t *d = pool_fresh(cap);
	if (!d)
		return NULL;
	memset(d, 0, cap);
	/* The kernel's first write: zeros copied in by read(2). Without
	 * /dev/zero (a bare chroot) the socket's first copy pays it. */
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	for (size_t at = 0; fd >= 0 && at < cap;) {
		ssize_t n = read(fd, d + at, cap - at);
		if (n > 0)
			at += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	if (fd >= 0)
		close(fd);
	return d;
}

/* A block of at least *cap bytes: the smallest pooled one that fits, up
 * to POOL_GROW_CLASSES classes larger, so a buffer that would grow through
 * 1, 2, 4... MiB takes a large block at once, but a small response does
 * not hold a block many times its size. *cap is set to the block's size. */
static uint8_t *pool_get(size_t *cap, bool exact)
{
	int c = pool_enabled ? pool_class(*cap) : -1;
	int end = exact ? c + 1 : c + POOL_GROW_CLASSES + 1;
	for (int k = c; k >= 0 && k < end && k < POOL_CLASSES; k++) {
		struct pool_block *blk = pool_free[k];
		if (!blk)
			continue;
		pool_unlink(blk);
		*cap = POOL_MIN_BYTES << k;
		return (uint8_t *)blk;
	}
	return pool_fresh(*cap);
}

void kbuf_release(uint8_t *data, size_t cap)
{
	int c = pool_enabled ? pool_class(cap) : -1;
	bool room = c >= 0 && cap <= pool_bytes_max &&
		    (pool_bytes + cap <= pool_bytes_max || cap <= pool_bytes_max / POOL_DISPLACE_DIV);
	if (!data || !room) {
		free(data);
		return;
	}
#if SL_ASSERT_DEBUG_ENABLED
	for (struct pool_block *b = pool_free[c]; b; b = b->next)
		SL_ASSERT(b != (struct pool_block *)data, "a block released twice");
#endif
	pool_trim(pool_bytes_max - cap);
	struct pool_block *blk = (struct pool_block *)data;
	*blk = (struct pool_block){ .next = pool_free[c], .older = pool_newest, .cls = c };
	if (blk->next)
		blk->next->prev = blk;
	pool_free[c] = blk;
	if (pool_newest)
		pool_newest->newer = blk;
	else
		pool_oldest = blk;
	pool_newest = blk;
	pool_bytes += cap;
}

uint8_t *kbuf_alloc(size_t *cap)
{
	if (*cap == 0)
		*cap = 1;
	if (!pool_enabled || *cap < POOL_MIN_BYTES || *cap > (POOL_MIN_BYTES << (POOL_CLASSES - 1)))
		return malloc(*cap);
	size_t c = POOL_MIN_BYTES;
	while (c < *cap)
		c *= 2;
	*cap = c;
	/* Exactly its size class: a small frame must not hold a large block
	 * (the queued-bytes budget counts frame lengths). */
	return pool_get(cap, true);
}

static __thread size_t shared_waste_bytes;

struct kshared *kshared_new(uint8_t *data, size_t cap)
{
	struct kshared *b = malloc(sizeof *b);
	if (b)
		*b = (struct kshared){ .data = data, .cap = cap, .refs = 1 };
	return b;
}

void kshared_waste(struct kshared *b, size_t n)
{
	b->waste += n;
	shared_waste_bytes += n;
}

size_t kshared_waste_bytes(void)
{
	return shared_waste_bytes;
}

void kshared_ref(struct kshared *b)
{
	b->refs++;
}

void kshared_unref(struct kshared *b)
{
	if (b && --b->refs == 0) {
		shared_waste_bytes -= b->waste;
		kbuf_release(b->data, b->cap);
		free(b);
	}
}

void kbuf_init(struct kbuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void kbuf_free(struct kbuf *b)
{
	kbuf_release(b->data, b->cap);
	kbuf_init(b);
}

uint8_t *kbuf_reserve(struct kbuf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return NULL;
			}
			cap *= 2;
		}
		uint8_t *d;
		if (pool_enabled && cap >= POOL_MIN_BYTES) {
			d = pool_get(&cap, false);
			if (d && b->len)
				memcpy(d, b->data, b->len);
			if (d)
				kbuf_release(b->data, b->cap);
		} else {
			d = realloc(b->data, cap);
		}
		if (!d) {
			b->oom = true;
			return NULL;
		}
		b->data = d;
		b->cap = cap;
	}
	return b->data + b->len;
}

void kbuf_put(struct kbuf *b, const void *p, size_t n)
{
	uint8_t *d = kbuf_reserve(b, n);
	if (!d)
		return;
	if (n)
		memcpy(d, p, n);
	b->len += n;
}

void kbuf_put_i8(struct kbuf *b, int8_t v)
{
	kbuf_put(b, &v, 1);
}

void kbuf_put_i16(struct kbuf *b, int16_t v)
{
	uint8_t x[2] = { (uint8_t)((uint16_t)v >> 8), (uint8_t)v };
	kbuf_put(b, x, 2);
}

void kbuf_put_i32(struct kbuf *b, int32_t v)
{
	uint8_t x[4];
	be32_store(x, (uint32_t)v);
	kbuf_put(b, x, 4);
}

void kbuf_put_u32(struct kbuf *b, uint32_t v)
{
	uint8_t x[4];
	be32_store(x, v);
	kbuf_put(b, x, 4);
}

void kbuf_put_i64(struct kbuf *b, int64_t v)
{
	uint8_t x[8];
	be64_store(x, (uint64_t)v);
	kbuf_put(b, x, 8);
}

void kbuf_put_f64(struct kbuf *b, double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	kbuf_put_i64(b, (int64_t)u);
}

void kbuf_put_uvarint(struct kbuf *b, uint64_t v)
{
	uint8_t x[10];
	size_t n = 0;
	while (v >= 0x80) {
		x[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	x[n++] = (uint8_t)v;
	kbuf_put(b, x, n);
}

void kbuf_put_varint(struct kbuf *b, int64_t v)
{
	kbuf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void kbuf_patch_i32(struct kbuf *b, size_t pos, int32_t v)
{
	if (b->oom || pos + 4 > b->len)
		return;
	be32_store(b->data + pos, (uint32_t)v);
}

const uint8_t *kreader_take(struct kreader *r, size_t n)
{
	if (r->err || r->len - r->pos < n) {
		r->err = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

void kreader_skip(struct kreader *r, size_t n)
{
	(void)kreader_take(r, n);
}

int8_t kreader_i8(struct kreader *r)
{
	const uint8_t *p = kreader_take(r, 1);
	return p ? (int8_t)p[0] : 0;
}

int16_t kreader_i16(struct kreader *r)
{
	const uint8_t *p = kreader_take(r, 2);
	return p ? (int16_t)be16_load(p) : 0;
}

uint16_t kreader_u16(struct kreader *r)
{
	const uint8_t *p = kreader_take(r, 2);
	return p ? be16_load(p) : 0;
}

int32_t kreader_i32(struct kreader *r)
{
	const uint8_t *p = kreader_take(r, 4);
	return p ? (int32_t)be32_load(p) : 0;
}

uint32_t kreader_u32(struct kreader *r)
{
	const uint8_t *p = kreader_take(r, 4);
	return p ? be32_load(p) : 0;
}

int64_t kreader_i64(struct kreader *r)
{
	const uint8_t *p = kreader_take(r, 8);
	return p ? (int64_t)be64_load(p) : 0;
}

double kreader_f64(struct kreader *r)
{
	uint64_t u = (uint64_t)kreader_i64(r);
	double d;
	memcpy(&d, &u, 8);
	return d;
}

uint64_t kreader_uvarint_long(struct kreader *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		const uint8_t *p = kreader_take(r, 1);
		if (!p)
			return 0;
		v |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p & 0x80))
			return v;
	}
	r->err = true; /* more than 10 bytes */
	return 0;
}
