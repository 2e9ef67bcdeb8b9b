/* fuzz_compact.c — fuzz target for the compacted-topic cleaner
 * (compact/compact.h). The first two bytes pick the pass's settings
 * (delete.retention.ms, producer expiry, the map's bound, the
 * transactions hook, the head by segment.bytes, the clock); the rest is read as stored batches back to back, each given the
 * next offsets. Checks what must hold for any bytes: only documented
 * errors, and every batch the cleaner writes parses, has a correct CRC,
 * decodes with the records it claims and keeps its last offset delta and
 * producer fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "compact/compact.h"
#include "storage/batch.h"
#include "storage/crc32c.h"

#define BATCHES_MAX 64

static enum compact_txn_verdict txn_by_offset(void *arg, int64_t base_offset,
					      const struct batch_info *info)
{
	(void)arg;
	(void)info;
	return (enum compact_txn_verdict)(base_offset % 3);
}

static int count_visit(void *arg, const struct batch_record *rec)
{
	(void)rec;
	(*(int32_t *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t knobs = data[0], clock = data[1];
	data += 2;
	size -= 2;
	struct compact_batch in[BATCHES_MAX];
	struct compact_span spans[BATCHES_MAX];
	struct batch_info infos[BATCHES_MAX];
	size_t n = 0, pos = 0;
	int64_t offset = 0;
	while (pos < size && n < BATCHES_MAX) {
		struct batch_info *info = &infos[n];
		if (batch_parse_header(data + pos, size - pos, info) != 0 || info->last_offset_delta < 0)
			break;
		size_t total = batch_total_bytes(info);
		in[n] = (struct compact_batch){ offset, data + pos, total };
		spans[n] = (struct compact_span){ offset, offset + info->last_offset_delta,
						  info->max_timestamp, (int64_t)total };
		offset += (int64_t)info->last_offset_delta + 1;
		pos += total;
		n++;
	}
	if (n == 0)
		return 0;
	struct compact_config c = {
		.segment_ms = (knobs & 16) ? INT64_MAX : 1,
		.segment_bytes = (knobs & 16) ? 100 : 0,
		.min_compaction_lag_ms = 0,
		.max_compaction_lag_ms = INT64_MAX,
		.delete_retention_ms = (knobs & 1) ? 0 : INT64_MAX,
		.min_cleanable_dirty_ratio = 0.5,
		.producer_expiration_ms = (knobs & 2) ? 1 : INT64_MAX,
		.map_bytes_max = (knobs & 4) ? 4096 : (1 << 20),
	};
	int64_t now = (int64_t)clock << 40;
	struct compact_plan plan;
	if (compact_plan(&c, now, 0, offset, spans, n, &plan) != 0)
		abort();
	struct compact_result res;
	int rc = compact_clean(&c, now, 0, &plan, in, n, (knobs & 8) ? txn_by_offset : NULL, NULL,
			       &res);
	if (rc != 0) {
		if (rc != SL_EPROTO && rc != SL_EUNSUPPORTED && rc != SL_ELIMIT && rc != SL_ENOMEM &&
		    rc != SL_EINVAL)
			abort();
		return 0;
	}
	struct kbuf plain;
	kbuf_init(&plain);
	for (size_t i = 0; i < n; i++) {
		const struct compact_outcome *o = &res.batches[i];
		if (o->verdict != COMPACT_REWRITE)
			continue;
		const uint8_t *b = res.out.data + o->pos;
		struct batch_info got;
		if (batch_parse_header(b, o->len, &got) != 0 || batch_total_bytes(&got) != o->len ||
		    crc32c(0, b + 21, o->len - 21) != got.crc || got.record_count != o->records_kept ||
		    got.last_offset_delta != infos[i].last_offset_delta ||
		    got.producer_id != infos[i].producer_id || got.base_sequence != infos[i].base_sequence)
			abort();
		int32_t seen = 0;
		if (batch_records_view(b, o->len, &plain, count_visit, &seen) != 0 ||
		    seen != got.record_count)
			abort();
	}
	kbuf_free(&plain);
	compact_result_free(&res);
	return 0;
}
