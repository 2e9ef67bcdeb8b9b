/* producers.c — sequence checks and de-duplication for idempotent
 * producers (see producers.h). */
#include "agent/producers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"

struct recent {
	int32_t base_seq, last_seq;
	int64_t base_offset; /* -1 while in flight */
};

struct entry {
	int16_t epoch;
	int count;                      /* oldest first */
	struct recent batches[PRODUCERS_RECENT_BATCHES];
};

static void key_of(char out[64], int64_t tid, int32_t partition, int64_t producer_id)
{
	snprintf(out, 64, "%lld/%d/%lld", (long long)tid, partition, (long long)producer_id);
}

void producers_init(struct producers *p)
{
	strmap_init(&p->entries);
}

static void free_value(void *arg, const char *key, void *value)
{
	free(value);
}

void producers_free(struct producers *p)
{
	strmap_each(&p->entries, free_value, NULL);
	strmap_free(&p->entries);
}

static int32_t next_seq(int32_t seq)
{
	return seq == INT32_MAX ? 0 : seq + 1;
}

enum producer_verdict producers_check(struct producers *p, int64_t tid, int32_t partition,
				      int64_t producer_id, int16_t epoch, int32_t base_seq,
				      int32_t last_seq, int64_t *offset)
{
	char key[64];
	key_of(key, tid, partition, producer_id);
	struct entry *e = strmap_get(&p->entries, key);
	if (!e) {
		if (p->entries.count >= SL_PRODUCERS_ENTRIES_MAX) {
			/* A cache: start over rather than grow without bound. */
			producers_free(p);
			producers_init(p);
		}
		e = calloc(1, sizeof *e);
		if (!e || strmap_put(&p->entries, key, e) != 0) {
			free(e);
			return PRODUCER_APPEND; /* no memory for state: accept */
		}
		e->epoch = epoch;
	} else if (epoch < e->epoch) {
		return PRODUCER_FENCED;
	} else if (epoch > e->epoch) {
		/* A new epoch starts a new sequence, at 0. */
		if (base_seq != 0)
			return PRODUCER_OUT_OF_ORDER;
		e->epoch = epoch;
		e->count = 0;
	} else {
		for (int i = 0; i < e->count; i++) {
			if (e->batches[i].base_seq == base_seq && e->batches[i].last_seq == last_seq) {
				*offset = e->batches[i].base_offset;
				return *offset < 0 ? PRODUCER_DUPLICATE_PENDING : PRODUCER_DUPLICATE;
			}
		}
		if (e->count > 0 && base_seq != next_seq(e->batches[e->count - 1].last_seq))
			return PRODUCER_OUT_OF_ORDER;
	}
	if (e->count == PRODUCERS_RECENT_BATCHES) {
		memmove(&e->batches[0], &e->batches[1], sizeof e->batches[0] * (PRODUCERS_RECENT_BATCHES - 1));
		e->count--;
	}
	e->batches[e->count++] = (struct recent){ base_seq, last_seq, -1 };
	return PRODUCER_APPEND;
}

static struct entry *find(struct producers *p, int64_t tid, int32_t partition,
			  int64_t producer_id, int16_t epoch)
{
	char key[64];
	key_of(key, tid, partition, producer_id);
	struct entry *e = strmap_get(&p->entries, key);
	return e && e->epoch == epoch ? e : NULL;
}

void producers_committed(struct producers *p, int64_t tid, int32_t partition,
			 int64_t producer_id, int16_t epoch, int32_t base_seq, int64_t base_offset)
{
	struct entry *e = find(p, tid, partition, producer_id, epoch);
	for (int i = 0; e && i < e->count; i++)
		if (e->batches[i].base_seq == base_seq && e->batches[i].base_offset < 0)
			e->batches[i].base_offset = base_offset;
}

void producers_forget(struct producers *p, int64_t tid, int32_t partition, int64_t producer_id)
{
	char key[64];
	key_of(key, tid, partition, producer_id);
	free(strmap_del(&p->entries, key));
}

void producers_failed(struct producers *p, int64_t tid, int32_t partition,
		      int64_t producer_id, int16_t epoch, int32_t base_seq)
{
	struct entry *e = find(p, tid, partition, producer_id, epoch);
	for (int i = 0; e && i < e->count; i++) {
		if (e->batches[i].base_seq == base_seq && e->batches[i].base_offset < 0) {
			e->count = i; /* it and every later batch */
			/* An epoch without a batch would refuse a sequence the
			 * store may accept. */
			if (e->count == 0)
				producers_forget(p, tid, partition, producer_id);
			return;
		}
	}
}
