/* buf.h — byte buffers: a growable writer (kbuf) and a bounds-checked
 * reader (kreader), both big-endian as Kafka's wire format is.
 *
 * The reader's error flag is sticky: once a read runs past the end or a
 * value is out of range, every later read returns zero and r->err stays
 * set, so decoders check once at the end instead of after every field.
 *
 * The writer's oom flag is sticky the same way. */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A view of a string inside some buffer. Valid as long as that buffer is
 * (for decoded requests: until the request is freed). len == -1 is null. */
typedef struct kstr {
	const char *ptr;
	int32_t len;
} kstr;

/* A view of bytes; len == -1 is null. Same lifetime rule as kstr. */
typedef struct kbytes {
	const uint8_t *ptr;
	int32_t len;
} kbytes;

#define KSTR_NULL ((kstr){ NULL, -1 })
#define KSTR(s) ((kstr){ (s), (int32_t)strlen(s) })
#define KBYTES_NULL ((kbytes){ NULL, -1 })

bool kstr_eq(kstr a, const char *s);
/* Copy into a NUL-terminated string of at most cap-1 chars; returns false
 * if null or too long. */
bool kstr_copy(kstr s, char *out, size_t cap);

/* ---- writer ---- */

struct kbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool oom; /* sticky: an allocation failed; contents are incomplete */
};

void kbuf_init(struct kbuf *b);
/* Keep up to max_bytes of large (>= 256 KiB) freed buffers of the calling
 * thread for reuse by its kbufs (the event loop's). Again: a new bound,
 * the pool trimmed to it. */
void kbuf_pool_enable(size_t max_bytes);
/* Free a buffer taken out of a kbuf (data, cap), into the pool if any:
 * when full, the pool frees the blocks released longest ago to make room
 * for one of at most a quarter of its bound (what it keeps follows what
 * the thread uses now); a larger one is kept only if it fits. */
void kbuf_release(uint8_t *data, size_t cap);
/* Bytes the calling thread's pool holds in blocks of cap bytes (0: in
 * blocks of every size). A walk of the class's list: for tests and
 * diagnostics. */
size_t kbuf_pool_bytes(size_t cap);
/* A buffer of at least *cap bytes, taken from the pool when large (on the
 * thread that enabled it; a new block comes with its pages mapped); *cap
 * is set to its real size, to be given back to kbuf_release. NULL when out
 * of memory. */
uint8_t *kbuf_alloc(size_t *cap);
/* A new block of cap bytes (a pool size class, a power of two from 256
 * KiB) for kbuf_release on the pool's thread, every page of it written
 * once from user space and once by the kernel first: on the bench VM a
 * page mapped by MADV_POPULATE_WRITE still costs ~1.4 ms per MiB at its
 * first user-space write and as much again at the kernel's first copy
 * into it (a socket read), 50 times a later write's cost (measured,
 * bench/RESULTS.md). Any thread. NULL when out of memory. */
uint8_t *kbuf_pretouch(size_t cap);
void kbuf_free(struct kbuf *b);

/* A buffer shared by reference counting: a produce request's frame, whose
 * batches the write path sends to the store as they are and the read
 * cache keeps after the request is gone (no copy of record bytes). The
 * count is not atomic: take and drop references on the thread whose
 * pool the buffer belongs to (the loop). */
struct kshared {
	uint8_t *data;
	size_t cap;  /* for kbuf_release */
	int refs;
	size_t waste; /* counted in kshared_waste_bytes until it goes */
};
/* Share data (cap bytes, from kbuf_alloc): one reference, the caller's.
 * NULL when out of memory (data is left to the caller). */
struct kshared *kshared_new(uint8_t *data, size_t cap);
void kshared_ref(struct kshared *b);
/* Drop a reference; the last returns the buffer to the pool. NULL is a
 * no-op. */
void kshared_unref(struct kshared *b);
/* Bytes of b that no reference reads (a connection's read buffer around
 * the produce frames that went out as views of it): n more of them, held
 * until b goes. kshared_waste_bytes is the calling thread's sum over its
 * live buffers, so the server can bound what small frames pin. */
void kshared_waste(struct kshared *b, size_t n);
size_t kshared_waste_bytes(void);

/* Bytes that stand at offset of a larger whole (a batch in an object),
 * living where owner's buffer holds them (owner NULL: valid only as long
 * as whoever handed the piece over says). */
struct kpiece {
	uint64_t offset;
	const uint8_t *data;
	size_t len;
	struct kshared *owner;
};
/* Ensure room for n more bytes; returns a pointer to them or NULL (and
 * sets oom). Does not advance len. */
uint8_t *kbuf_reserve(struct kbuf *b, size_t n);
void kbuf_put(struct kbuf *b, const void *p, size_t n);
void kbuf_put_i8(struct kbuf *b, int8_t v);
void kbuf_put_i16(struct kbuf *b, int16_t v);
void kbuf_put_i32(struct kbuf *b, int32_t v);
void kbuf_put_i64(struct kbuf *b, int64_t v);
void kbuf_put_u32(struct kbuf *b, uint32_t v);
void kbuf_put_f64(struct kbuf *b, double v);
void kbuf_put_uvarint(struct kbuf *b, uint64_t v);
void kbuf_put_varint(struct kbuf *b, int64_t v); /* zigzag */
/* Overwrite 4 bytes at pos (for length prefixes filled in later). */
void kbuf_patch_i32(struct kbuf *b, size_t pos, int32_t v);

/* ---- reader ---- */

struct kreader {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool err; /* sticky */
};

static inline void kreader_init(struct kreader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->err = false;
}

static inline size_t kreader_left(const struct kreader *r)
{
	return r->err ? 0 : r->len - r->pos;
}

int8_t kreader_i8(struct kreader *r);
int16_t kreader_i16(struct kreader *r);
int32_t kreader_i32(struct kreader *r);
int64_t kreader_i64(struct kreader *r);
uint16_t kreader_u16(struct kreader *r);
uint32_t kreader_u32(struct kreader *r);
double kreader_f64(struct kreader *r);
uint64_t kreader_uvarint_long(struct kreader *r); /* any length: kreader_uvarint's */
/* At most 10 bytes. Values of one and two bytes (a record's deltas, its
 * key and value lengths up to 16 KiB, counts) are read inline: a produced
 * batch's check walks every record's six varints, and the call per byte
 * was 24-32 ns of a 1 KiB record (bench/RESULTS.md). */
static inline uint64_t kreader_uvarint(struct kreader *r)
{
	if (!r->err && r->len - r->pos >= 2) {
		const uint8_t *p = r->p + r->pos;
		if (!(p[0] & 0x80)) {
			r->pos += 1;
			return p[0];
		}
		if (!(p[1] & 0x80)) {
			r->pos += 2;
			return (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
		}
	}
	return kreader_uvarint_long(r);
}
/* Zigzag, at most 10 bytes. */
static inline int64_t kreader_varint(struct kreader *r)
{
	uint64_t u = kreader_uvarint(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}
/* Returns a view of the next n bytes and advances, or NULL (setting err). */
const uint8_t *kreader_take(struct kreader *r, size_t n);
void kreader_skip(struct kreader *r, size_t n);

/* Big-endian helpers for fixed positions. */
static inline uint32_t be32_load(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64_load(const uint8_t *p)
{
	return ((uint64_t)be32_load(p) << 32) | be32_load(p + 4);
}
static inline void be32_store(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline void be64_store(uint8_t *p, uint64_t v)
{
	be32_store(p, v >> 32);
	be32_store(p + 4, (uint32_t)v);
}
static inline uint16_t be16_load(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

#endif
