/* maintenance.h — the agent's maintenance queue: background jobs that
 * change the metadata store in bulk (trims: the retention sweep's and
 * DeleteRecords'; pages of the dead-object collection) run one at a time
 * on libuv's thread pool, in the order they were submitted, so
 * maintenance never holds more than one pool thread and a job queued
 * behind another sees its effects. When a trim job is back, the agent's
 * partition state takes the log starts the store now has, then the job's
 * done callback runs on the loop.
 *
 * The merge and cleaning jobs write their objects as background puts
 * (OBJSTORE_PUT_PACED: on the file store in 256 KiB steps, each written
 * back before the next, so the produce path's object writes and fsyncs
 * wait behind one step at most, not behind a 64 MiB object), and no
 * faster than --maintenance-io-bytes-per-sec when it is set (the bound
 * maint_start gives the store, which the S3 store honours too; default
 * none; once maint_stop has run,
 * the put under way goes on at full speed, so a drain does not wait it
 * out).
 *
 * Loop thread only, except a job's work callback (the pool). */
#ifndef SLUICE_MAINTENANCE_H
#define SLUICE_MAINTENANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/workq.h"
#include "meta/meta.h"

struct agent;
struct merge_buf;

/* One partition to trim, and what came back. */
struct maint_trim {
	int64_t tid;
	int32_t partition;
	struct meta_trim trim;
	int64_t log_start; /* out: the log start in the metadata store */
	int err;           /* out: 0, SL_EBUSY when abandoned, or the store's */
};

/* A job: either trims (items) or its own work. Owned by the submitter,
 * which must keep it alive until done has run. */
struct maint_job {
	struct workq_job wq; /* first: the queue's (base/workq.h) */
	struct agent *a;     /* set by maint_submit */
	/* On the pool instead of trimming items (the dead-object collection). */
	void (*work)(struct maint_job *job, struct agent *a);
	struct maint_trim *items;
	size_t n;
	bool abandonable;  /* the sweep's: its items get SL_EBUSY once draining */
	size_t moved;      /* out: log starts that rose */
	/* On the loop once the job is back; may submit the job again. */
	void (*done)(struct maint_job *job, void *arg);
	void *arg;
};

/* 0 or SL_ENOMEM. */
int maint_start(struct agent *a);
/* Queue a job behind those already queued (done may submit it again). */
void maint_submit(struct agent *a, struct maint_job *job);
/* Draining: abandonable jobs skip the items they have not reached; others
 * (DeleteRecords, whose client waits) still run. */
void maint_stop(struct agent *a);
/* Whether maint_stop has run: a work callback (on the pool) checks it to
 * end a long job early. */
bool maint_abandoning(const struct agent *a);
/* The buffer the merge and cleaning jobs build their passes in (on the
 * pool, in a job's work callback: jobs run one at a time, so one buffer
 * serves them all), kept between passes: its pages, up to
 * SL_COMPACT_PASS_BYTES, stay mapped unless the kernel takes them back
 * (merge_buf_idle after each job). */
struct merge_buf *maint_buf(struct agent *a);
/* After the loop has stopped. */
void maint_free(struct agent *a);

#endif
