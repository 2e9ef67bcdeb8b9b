/* workers.h — threads of one owner's own, running its blocking jobs, each
 * job's done called back on the loop.
 *
 * libuv's uv_queue_work does the same on a shared pool, but (libuv 1.44,
 * Debian 12's) each finished job wakes the loop through an async handle
 * whose wake-up spins: the loop thread, woken by the pool thread's
 * eventfd write, busy-waits (997 pauses, then sched_yield, again) until
 * that thread has returned from the write and marked the handle done. On
 * a loaded two-core machine the pool thread is often off the CPU at that
 * moment, and the loop spun for up to thousands of sched_yields per
 * second of produce load. Here a finished job is put on a list under the
 * mutex, and the eventfd is written after the mutex is let go, once per
 * batch of finished jobs: the loop reads it and takes the list, without
 * waiting for anyone.
 *
 * While a job is queued or running the workers keep the loop alive (as
 * uv_queue_work's requests do); idle, they do not. Loop thread only,
 * except a job's run. Used by the writer (storage/writer.h) for its
 * uploads and commits, the produce path's jobs. */
#ifndef SLUICE_WORKERS_H
#define SLUICE_WORKERS_H

#include <stddef.h>
#include <uv.h>

struct workers;

struct worker_job {
	/* Set by the submitter. run: a worker thread; done: the loop, once,
	 * after run (jobs' dones are called in the order their runs
	 * finished). The job's memory is the submitter's until done. */
	void (*run)(struct worker_job *job);
	void (*done)(struct worker_job *job);
	void *data;
	/* The workers'. */
	struct worker_job *next;
};

/* threads >= 1. Returns 0, SL_ENOMEM, or SL_EIO (no eventfd, lock or thread). */
int workers_new(uv_loop_t *loop, int threads, struct workers **out);
/* Run job on the first free thread; jobs start in the order submitted. */
void workers_submit(struct workers *ws, struct worker_job *job);
/* Stop the threads and free the workers once the loop has closed their
 * handle. No job may be queued or running (asserted). */
void workers_free(struct workers *ws);

#endif
