/* workq.h — a queue of jobs run one at a time on libuv's thread pool, in
 * the order submitted: a job's run is called on a pool thread, its done
 * on the loop, and the next job's run starts only after the previous
 * one's done has returned. So each job sees its predecessors' effects,
 * both in the stores and in the loop's state, and a queue never holds
 * more than one pool thread.
 *
 * Used by the agent's metadata jobs (agent.h, struct agent_job) and its
 * maintenance queue (agent/maintenance.h). Loop thread only, except run. */
#ifndef SLUICE_WORKQ_H
#define SLUICE_WORKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct workq_job {
	/* Set by the submitter. run: a pool thread; done: the loop, once,
	 * after run; done may free the job or submit it again (it is off
	 * the queue by then). */
	void (*run)(struct workq_job *job);
	void (*done)(struct workq_job *job);
	/* The queue's. */
	uv_work_t work;
	struct workq_job *next;
	struct workq *q;
};

struct workq {
	uv_loop_t *loop;
	struct workq_job *head, *tail; /* queued; the head is running */
	bool active;                   /* the head's run or done is under way */
	size_t pending;                /* submitted and not yet done */
};

void workq_init(struct workq *q, uv_loop_t *loop);
/* Queue job behind the others; it starts now if the queue is idle, or
 * after the previous job's done otherwise (a job submitted from a done
 * only queues). The job's memory is the caller's until its done. */
void workq_submit(struct workq *q, struct workq_job *job);
/* Whether no job is queued or running: every job's done has been called
 * (true already within the last one's done, so that done can finish a
 * drain). */
bool workq_idle(const struct workq *q);

#endif
