/* workers.c — an owner's threads, dones back on the loop by eventfd
 * (workers.h). */
#include "base/workers.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/err.h"
#include "base/sl_assert.h"

struct workers {
	uv_poll_t poll;           /* the eventfd, readable when jobs finished */
	int efd;
	uv_mutex_t mutex;
	uv_cond_t cond;           /* a job queued, or stopping */
	struct worker_job *queue_head, *queue_tail;  /* not started */
	struct worker_job *done_head, *done_tail;    /* run, done not called */
	bool signalled;           /* the eventfd was written since the loop last took the list */
	bool stopping;
	/* Loop thread only. */
	size_t outstanding;       /* submitted, done not yet called */
	uv_thread_t *threads;
	int n_threads;
};

static void thread_main(void *arg)
{
	struct workers *ws = arg;
	uv_mutex_lock(&ws->mutex);
	for (;;) {
		while (!ws->queue_head && !ws->stopping)
			uv_cond_wait(&ws->cond, &ws->mutex);
		if (!ws->queue_head)
			break; /* stopping, and nothing left */
		struct worker_job *job = ws->queue_head;
		ws->queue_head = job->next;
		if (!ws->queue_head)
			ws->queue_tail = NULL;
		uv_mutex_unlock(&ws->mutex);
		job->run(job);
		job->next = NULL;
		uv_mutex_lock(&ws->mutex);
		if (ws->done_tail)
			ws->done_tail->next = job;
		else
			ws->done_head = job;
		ws->done_tail = job;
		bool wake = !ws->signalled;
		ws->signalled = true;
		if (wake) {
			/* Written without the mutex, so the loop woken by it
			 * never waits for this thread to let go of it. */
			uv_mutex_unlock(&ws->mutex);
			uint64_t one = 1;
			ssize_t n;
			do
				n = write(ws->efd, &one, sizeof one);
			while (n < 0 && errno == EINTR);
			/* An eventfd write fails only on a counter overflow
			 * (2^64 - 2 unread): it is read on every signal. */
			SL_ASSERT(n == (ssize_t)sizeof one, "eventfd write: %d", errno);
			uv_mutex_lock(&ws->mutex);
		}
	}
	uv_mutex_unlock(&ws->mutex);
}

static void poll_fired(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	struct workers *ws = p->data;
	/* Read the eventfd before taking the list: a job finished after the
	 * take writes it again (signalled is clear by then), and that signal
	 * must not be the one read here. */
	uint64_t count;
	while (read(ws->efd, &count, sizeof count) < 0 && errno == EINTR)
		;
	uv_mutex_lock(&ws->mutex);
	struct worker_job *job = ws->done_head;
	ws->done_head = ws->done_tail = NULL;
	ws->signalled = false;
	uv_mutex_unlock(&ws->mutex);
	while (job) {
		struct worker_job *next = job->next;
		SL_ASSERT(ws->outstanding > 0);
		/* Before done, which may submit again. */
		if (--ws->outstanding == 0)
			uv_unref((uv_handle_t *)&ws->poll);
		job->done(job);
		job = next;
	}
}

static void poll_closed(uv_handle_t *h);

int workers_new(uv_loop_t *loop, int threads, struct workers **out)
{
	SL_ASSERT(threads >= 1);
	int rc = SL_ENOMEM;
	struct workers *ws = calloc(1, sizeof *ws);
	if (!ws)
		return SL_ENOMEM;
	ws->threads = calloc((size_t)threads, sizeof *ws->threads);
	if (!ws->threads)
		goto out_free;
	rc = SL_EIO;
	ws->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ws->efd < 0)
		goto out_free_threads;
	if (uv_mutex_init(&ws->mutex) != 0)
		goto out_close_efd;
	if (uv_cond_init(&ws->cond) != 0)
		goto out_destroy_mutex;
	if (uv_poll_init(loop, &ws->poll, ws->efd) != 0)
		goto out_destroy_cond;
	ws->poll.data = ws;
	/* Always watching; referenced only while jobs are outstanding. */
	if (uv_poll_start(&ws->poll, UV_READABLE, poll_fired) != 0) {
		uv_close((uv_handle_t *)&ws->poll, poll_closed);
		return SL_EIO;
	}
	uv_unref((uv_handle_t *)&ws->poll);
	/* The threads take no signals: the loop's handlers get them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; ws->n_threads < threads; ws->n_threads++)
		if (uv_thread_create(&ws->threads[ws->n_threads], thread_main, ws) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ws->n_threads < threads) {
		workers_free(ws);
		return SL_EIO;
	}
	*out = ws;
	return 0;

out_destroy_cond:
	uv_cond_destroy(&ws->cond);
out_destroy_mutex:
	uv_mutex_destroy(&ws->mutex);
out_close_efd:
	close(ws->efd);
out_free_threads:
	free(ws->threads);
out_free:
	free(ws);
	return rc;
}

void workers_submit(struct workers *ws, struct worker_job *job)
{
	job->next = NULL;
	if (ws->outstanding++ == 0)
		uv_ref((uv_handle_t *)&ws->poll);
	uv_mutex_lock(&ws->mutex);
	if (ws->queue_tail)
		ws->queue_tail->next = job;
	else
		ws->queue_head = job;
	ws->queue_tail = job;
	uv_cond_signal(&ws->cond);
	uv_mutex_unlock(&ws->mutex);
}

static void poll_closed(uv_handle_t *h)
{
	struct workers *ws = h->data;
	close(ws->efd);
	uv_cond_destroy(&ws->cond);
	uv_mutex_destroy(&ws->mutex);
	free(ws->threads);
	free(ws);
}

void workers_free(struct workers *ws)
{
	if (!ws)
		return;
	SL_ASSERT(ws->outstanding == 0, "%zu jobs outstanding", ws->outstanding);
	uv_mutex_lock(&ws->mutex);
	ws->stopping = true;
	uv_cond_broadcast(&ws->cond);
	uv_mutex_unlock(&ws->mutex);
	for (int i = 0; i < ws->n_threads; i++)
		uv_thread_join(&ws->threads[i]);
	uv_close((uv_handle_t *)&ws->poll, poll_closed);
}
