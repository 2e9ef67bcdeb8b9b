/* compress.c — bounded decompression of record batch payloads, and the
 * compression of the batches the cleaner rewrites.
 *
 * Owns batch_decompress and batch_compress (declared in storage/batch.h)
 * for the four Kafka
 * codecs: gzip (zlib), snappy (xerial framing as Java clients write it, or
 * one raw block as librdkafka writes it), lz4 (frame format) and zstd.
 *
 * Every codec writes through a bounded sink: the output never grows past
 * `limit` bytes, and once it is full the decoder is given a one-byte
 * scratch buffer; a byte landing there means the payload expands beyond
 * the limit (a compression bomb) and we stop with SL_ELIMIT, having
 * allocated at most `limit` bytes of output. */
#include "storage/batch.h"

#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/limits.h"

struct sink {
	struct kbuf *out;
	size_t end_max;   /* out->len may not exceed this */
	uint8_t scratch[1];
	bool in_scratch;  /* the last space handed out was scratch */
};

static void sink_init(struct sink *s, struct kbuf *out, size_t limit)
{
	s->out = out;
	s->end_max = out->len + limit;
	if (s->end_max < out->len) /* overflow: effectively unbounded */
		s->end_max = SIZE_MAX;
	s->in_scratch = false;
}

/* Grow out exactly (never beyond end_max) so that at least want more bytes
 * fit, or as many as the limit allows. */
static int sink_reserve(struct sink *s, size_t want)
{
	struct kbuf *b = s->out;
	if (b->oom)
		return SL_ENOMEM;
	size_t room_max = s->end_max - b->len;
	if (want > room_max)
		want = room_max;
	size_t need = b->len + want; /* <= end_max, cannot overflow */
	if (b->cap >= need)
		return 0;
	size_t cap = b->cap < 4096 ? 4096 : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > s->end_max)
		cap = s->end_max;
	uint8_t *d = realloc(b->data, cap);
	if (!d) {
		b->oom = true;
		return SL_ENOMEM;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

/* Space for the decoder's next output: the free part of out (grown by
 * doubling, capped at the limit), or the scratch byte once out is full. */
static int sink_space(struct sink *s, uint8_t **p, size_t *n)
{
	struct kbuf *b = s->out;
	if (b->len >= s->end_max) {
		s->in_scratch = true;
		*p = s->scratch;
		*n = sizeof s->scratch;
		return 0;
	}
	if (b->cap == b->len) {
		size_t want = b->len < 65536 ? 65536 : b->len;
		int rc = sink_reserve(s, want);
		if (rc)
			return rc;
	}
	s->in_scratch = false;
	*p = b->data + b->len;
	*n = (b->cap < s->end_max ? b->cap : s->end_max) - b->len;
	return 0;
}

static int sink_commit(struct sink *s, size_t produced)
{
	if (s->in_scratch)
		return produced ? SL_ELIMIT : 0;
	s->out->len += produced;
	return 0;
}

/* Where the next bytes go once sink_reserve made room; never NULL, even
 * for zero bytes into a still unallocated buffer. */
static uint8_t *sink_tail(struct sink *s)
{
	return s->out->data ? s->out->data + s->out->len : s->scratch;
}

/* ---- gzip ---- */

static int decompress_gzip(const uint8_t *in, size_t in_len, struct sink *s)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return SL_ENOMEM;
	int rc = 0;
	z.next_in = (Bytef *)in;
	size_t in_left = in_len;
	for (;;) {
		uint8_t *p;
		size_t n;
		rc = sink_space(s, &p, &n);
		if (rc)
			break;
		if (n > UINT32_MAX)
			n = UINT32_MAX;
		uInt give_in = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
		z.avail_in = give_in;
		z.next_out = p;
		z.avail_out = (uInt)n;
		int zr = inflate(&z, Z_NO_FLUSH);
		size_t used_in = give_in - z.avail_in;
		size_t produced = n - z.avail_out;
		in_left -= used_in;
		rc = sink_commit(s, produced);
		if (rc)
			break;
		if (zr == Z_STREAM_END) {
			if (in_left == 0)
				break;
			/* Another gzip member follows (as GZIPInputStream reads). */
			if (in_left < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b) {
				rc = SL_EPROTO;
				break;
			}
			if (inflateReset(&z) != Z_OK) {
				rc = SL_EPROTO;
				break;
			}
			continue;
		}
		if (zr == Z_MEM_ERROR) {
			rc = SL_ENOMEM;
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			rc = SL_EPROTO;
			break;
		}
		if (used_in == 0 && produced == 0) {
			/* No progress: input ran out before the stream ended. */
			rc = SL_EPROTO;
			break;
		}
	}
	inflateEnd(&z);
	return rc;
}

/* ---- snappy ---- */

static const uint8_t xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };

static int snappy_block(const uint8_t *in, size_t in_len, struct sink *s)
{
	size_t ulen;
	if (snappy_uncompressed_length((const char *)in, in_len, &ulen) != SNAPPY_OK)
		return SL_EPROTO;
	if (ulen > s->end_max - s->out->len)
		return SL_ELIMIT;
	int rc = sink_reserve(s, ulen);
	if (rc)
		return rc;
	size_t out_len = ulen;
	if (snappy_uncompress((const char *)in, in_len,
			      (char *)sink_tail(s), &out_len) != SNAPPY_OK ||
	    out_len != ulen)
		return SL_EPROTO;
	s->out->len += out_len;
	return 0;
}

static int decompress_snappy(const uint8_t *in, size_t in_len, struct sink *s)
{
	if (in_len < 16 || memcmp(in, xerial_magic, sizeof xerial_magic) != 0)
		return snappy_block(in, in_len, s);
	/* xerial framing: magic, int32 version, int32 compatible version,
	 * then blocks of [int32 length][raw snappy]. */
	struct kreader r;
	kreader_init(&r, in + 16, in_len - 16);
	while (kreader_left(&r) > 0) {
		int32_t blen = kreader_i32(&r);
		if (r.err || blen < 0 || (size_t)blen > kreader_left(&r))
			return SL_EPROTO;
		const uint8_t *b = kreader_take(&r, (size_t)blen);
		int rc = snappy_block(b, (size_t)blen, s);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- lz4 ---- */

static int decompress_lz4(const uint8_t *in, size_t in_len, struct sink *s)
{
	LZ4F_dctx *dctx;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return SL_ENOMEM;
	int rc = 0;
	size_t hint;
	size_t pos = 0;
	for (;;) {
		uint8_t *p;
		size_t n;
		rc = sink_space(s, &p, &n);
		if (rc)
			break;
		size_t src_size = in_len - pos;
		size_t dst_size = n;
		hint = LZ4F_decompress(dctx, p, &dst_size, in + pos, &src_size, NULL);
		if (LZ4F_isError(hint)) {
			rc = SL_EPROTO;
			break;
		}
		pos += src_size;
		rc = sink_commit(s, dst_size);
		if (rc)
			break;
		if (hint == 0 && pos == in_len)
			break; /* last frame complete and flushed */
		if (src_size == 0 && dst_size == 0) {
			/* No progress although output had room (a pending byte
			 * would have gone to scratch): the input is truncated. */
			rc = SL_EPROTO;
			break;
		}
	}
	LZ4F_freeDecompressionContext(dctx);
	return rc;
}

/* ---- zstd ---- */

static int decompress_zstd(const uint8_t *in, size_t in_len, struct sink *s)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	if (!dctx)
		return SL_ENOMEM;
	int rc = 0;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
						SL_ZSTD_WINDOW_LOG_MAX))) {
		rc = SL_ENOMEM;
		goto out_free_ctx;
	}

	/* One frame with a known size: decompress in one shot into exactly
	 * the bytes it needs (no window buffer of its own). */
	unsigned long long content = ZSTD_getFrameContentSize(in, in_len);
	if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != ZSTD_CONTENTSIZE_ERROR &&
	    ZSTD_findFrameCompressedSize(in, in_len) == in_len) {
		if (content > s->end_max - s->out->len) {
			rc = SL_ELIMIT;
			goto out_free_ctx;
		}
		rc = sink_reserve(s, (size_t)content);
		if (rc)
			goto out_free_ctx;
		size_t r = ZSTD_decompressDCtx(dctx, sink_tail(s),
					       (size_t)content, in, in_len);
		if (ZSTD_isError(r) || r != content)
			rc = SL_EPROTO;
		else
			s->out->len += r;
		goto out_free_ctx;
	}

	ZSTD_inBuffer ib = { in, in_len, 0 };
	size_t hint;
	for (;;) {
		uint8_t *p;
		size_t n;
		rc = sink_space(s, &p, &n);
		if (rc)
			break;
		ZSTD_outBuffer ob = { p, n, 0 };
		size_t in_before = ib.pos;
		hint = ZSTD_decompressStream(dctx, &ob, &ib);
		if (ZSTD_isError(hint)) {
			rc = ZSTD_getErrorCode(hint) == ZSTD_error_frameParameter_windowTooLarge ?
				SL_ELIMIT : SL_EPROTO;
			break;
		}
		rc = sink_commit(s, ob.pos);
		if (rc)
			break;
		if (hint == 0 && ib.pos == ib.size)
			break; /* last frame complete and flushed */
		if (ib.pos == in_before && ob.pos == 0) {
			/* No progress although output had room: truncated. */
			rc = SL_EPROTO;
			break;
		}
	}
out_free_ctx:
	ZSTD_freeDCtx(dctx);
	return rc;
}

int batch_decompress(enum batch_codec codec, const uint8_t *in, size_t in_len,
		     struct kbuf *out, size_t limit)
{
	struct sink s;
	size_t start = out->len;
	sink_init(&s, out, limit);
	int rc;
	switch (codec) {
	case BATCH_CODEC_NONE:
		if (in_len > limit)
			return SL_ELIMIT;
		rc = sink_reserve(&s, in_len);
		if (rc == 0) {
			if (in_len)
				memcpy(out->data + out->len, in, in_len);
			out->len += in_len;
		}
		break;
	case BATCH_CODEC_GZIP:
		rc = decompress_gzip(in, in_len, &s);
		break;
	case BATCH_CODEC_SNAPPY:
		rc = decompress_snappy(in, in_len, &s);
		break;
	case BATCH_CODEC_LZ4:
		rc = decompress_lz4(in, in_len, &s);
		break;
	case BATCH_CODEC_ZSTD:
		rc = decompress_zstd(in, in_len, &s);
		break;
	default:
		return SL_EUNSUPPORTED;
	}
	if (rc)
		out->len = start; /* nothing half-written is left visible */
	return rc;
}

/* ---- compression (the cleaner's rewritten batches) ---- */

static int compress_gzip(const uint8_t *in, size_t len, struct kbuf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	/* 16 + MAX_WBITS: a gzip wrapper, as Kafka's GZIPOutputStream. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return SL_ENOMEM;
	size_t bound = deflateBound(&z, (uLong)len);
	uint8_t *d = kbuf_reserve(out, bound);
	int rc = SL_ENOMEM;
	if (d && len <= UINT32_MAX && bound <= UINT32_MAX) {
		z.next_in = (Bytef *)in;
		z.avail_in = (uInt)len;
		z.next_out = d;
		z.avail_out = (uInt)bound;
		if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
			out->len += bound - z.avail_out;
			rc = 0;
		}
	}
	deflateEnd(&z);
	return rc;
}

/* Xerial framing, as Kafka's Java producer and broker write snappy: the
 * 8-byte magic, version 1 and compatible version 1, then blocks of up to
 * 32 KiB each as a big-endian length and a raw snappy block. Every client
 * reads it (they must read what Java producers write). */
#define XERIAL_BLOCK_BYTES 32768
static const uint8_t xerial_header[16] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
					   0, 0, 0, 1, 0, 0, 0, 1 };

static int compress_snappy(const uint8_t *in, size_t len, struct kbuf *out)
{
	kbuf_put(out, xerial_header, sizeof xerial_header);
	for (size_t pos = 0; pos < len; pos += XERIAL_BLOCK_BYTES) {
		size_t n = len - pos < XERIAL_BLOCK_BYTES ? len - pos : XERIAL_BLOCK_BYTES;
		size_t cap = snappy_max_compressed_length(n);
		uint8_t *d = kbuf_reserve(out, 4 + cap);
		if (!d)
			return SL_ENOMEM;
		if (snappy_compress((const char *)in + pos, n, (char *)d + 4, &cap) != SNAPPY_OK)
			return SL_ENOMEM;
		be32_store(d, (uint32_t)cap);
		out->len += 4 + cap;
	}
	return out->oom ? SL_ENOMEM : 0;
}

static int compress_lz4(const uint8_t *in, size_t len, struct kbuf *out)
{
	size_t cap = LZ4F_compressFrameBound(len, NULL);
	uint8_t *d = kbuf_reserve(out, cap);
	if (!d)
		return SL_ENOMEM;
	size_t n = LZ4F_compressFrame(d, cap, in, len, NULL);
	if (LZ4F_isError(n))
		return SL_ENOMEM;
	out->len += n;
	return 0;
}

static int compress_zstd(const uint8_t *in, size_t len, struct kbuf *out)
{
	size_t cap = ZSTD_compressBound(len);
	uint8_t *d = kbuf_reserve(out, cap);
	if (!d)
		return SL_ENOMEM;
	/* Level 3: zstd's default, as Kafka's producer uses. */
	size_t n = ZSTD_compress(d, cap, in, len, 3);
	if (ZSTD_isError(n))
		return SL_ENOMEM;
	out->len += n;
	return 0;
}

int batch_compress(enum batch_codec codec, const uint8_t *in, size_t in_len, struct kbuf *out)
{
	size_t start = out->len;
	int rc;
	switch (codec) {
	case BATCH_CODEC_NONE:
		kbuf_put(out, in, in_len);
		rc = out->oom ? SL_ENOMEM : 0;
		break;
	case BATCH_CODEC_GZIP:
		rc = compress_gzip(in, in_len, out);
		break;
	case BATCH_CODEC_SNAPPY:
		rc = compress_snappy(in, in_len, out);
		break;
	case BATCH_CODEC_LZ4:
		rc = compress_lz4(in, in_len, out);
		break;
	case BATCH_CODEC_ZSTD:
		rc = compress_zstd(in, in_len, out);
		break;
	default:
		return SL_EUNSUPPORTED;
	}
	if (rc)
		out->len = start;
	return rc;
}
