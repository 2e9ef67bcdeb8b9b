/* s3_async.c — the S3 store's asynchronous client: put_async and
 * get_async on the event loop, with curl multi.
 *
 * One CURLM per store, driven by the loop of the first asynchronous call
 * (all of them come from that loop's thread): a uv_poll_t for each socket
 * curl asks us to watch, a uv_timer_t for curl's timeouts and one for the
 * backoffs between attempts. The multi handle's connection cache keeps
 * connections alive between requests. At most SL_S3_ASYNC_ACTIVE_MAX requests
 * are in the multi at once; the others wait in a FIFO queue (a retry goes
 * to its head: it is older than what waits). A call's deadline
 * (total_timeout_ms) runs from its start, time in the queue included, so
 * a dead store fails every pending call within the deadline. PUT bodies
 * of a store that signs payloads are hashed (SHA-256, for
 * x-amz-content-sha256) on the thread pool.
 *
 * The retry policy and the error mapping are the blocking client's own:
 * s3_retry_timeout_ms / s3_retry_next (s3_pure.c) and s3_attempt_setup /
 * s3_attempt_finish (s3.c). The uv handles keep the loop alive only while
 * calls are pending, so the loop can end without s3_async_close. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "objstore/objstore.h"
#include "objstore/s3_int.h"

struct areq_list {
	struct s3_areq *head, *tail;
	size_t n;
};

struct s3_areq {
	struct s3_call c;
	struct s3_async *as;
	struct s3_areq *prev, *next;
	struct areq_list *on; /* hashing, queued, active, backoff or NULL */
	objstore_done_fn done;
	void *arg;
	int64_t deadline_ms;
	int64_t due_ms;       /* on backoff: when to try again */
	unsigned attempts;    /* finished attempts */
	int head_check;       /* a get of 0 bytes: a HEAD, then offset <= size */
	uint64_t head_offset;
	uv_work_t work;       /* hashing the body on the thread pool */
	int hash_rc;
	char sha[65];
	char key[S3_KEY_MAX + 1];
};

struct s3_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct s3_async *as;
	struct s3_sock *prev, *next;
};

struct s3_async {
	struct s3_store *st; /* NULL once the store is closed */
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t curl_timer;
	uv_timer_t retry_timer;
	struct areq_list hashing, queued, active, backoff;
	struct s3_sock *socks;
	CURL *idle[SL_S3_ASYNC_ACTIVE_MAX]; /* easy handles for reuse */
	size_t idle_n;
	int handles_open; /* uv handles not closed yet */
	int referenced;   /* do our handles keep the loop alive? */
	int closing;      /* s3_async_close or s3_close began */
	int dead;         /* torn down by s3_close: never touch the loop */
};

static void areq_push(struct areq_list *l, struct s3_areq *r, int at_head)
{
	r->on = l;
	if (at_head) {
		r->prev = NULL;
		r->next = l->head;
		if (l->head)
			l->head->prev = r;
		else
			l->tail = r;
		l->head = r;
	} else {
		r->next = NULL;
		r->prev = l->tail;
		if (l->tail)
			l->tail->next = r;
		else
			l->head = r;
		l->tail = r;
	}
	l->n++;
}

static void areq_unlink(struct s3_areq *r)
{
	struct areq_list *l = r->on;
	if (!l)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	l->n--;
	r->prev = r->next = NULL;
	r->on = NULL;
}

static size_t async_pending(const struct s3_async *as)
{
	return as->hashing.n + as->queued.n + as->active.n + as->backoff.n;
}

/* Our handles keep the loop alive exactly while calls are pending (idle
 * connections in curl's cache must not hold a draining agent). */
static void async_ref_update(struct s3_async *as)
{
	int want = async_pending(as) > 0;
	if (as->closing || want == as->referenced)
		return;
	as->referenced = want;
	void (*f)(uv_handle_t *) = want ? uv_ref : uv_unref;
	f((uv_handle_t *)&as->curl_timer);
	for (struct s3_sock *sk = as->socks; sk; sk = sk->next)
		f((uv_handle_t *)&sk->poll);
}

static void async_maybe_free(struct s3_async *as)
{
	if (!as->closing || as->handles_open || as->hashing.n)
		return;
	if (as->st)
		as->st->as = NULL;
	free(as);
}

static void sock_closed(uv_handle_t *h)
{
	struct s3_sock *sk = h->data;
	struct s3_async *as = sk->as;
	free(sk);
	as->handles_open--;
	async_maybe_free(as);
}

static void timer_closed(uv_handle_t *h)
{
	struct s3_async *as = h->data;
	as->handles_open--;
	async_maybe_free(as);
}

static void sock_close(struct s3_async *as, struct s3_sock *sk)
{
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		as->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	if (as->dead) {
		free(sk);
		return;
	}
	uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

static void handle_release(struct s3_async *as, CURL *h)
{
	if (!as->closing && as->idle_n < SL_S3_ASYNC_ACTIVE_MAX)
		as->idle[as->idle_n++] = h;
	else
		curl_easy_cleanup(h);
}

/* The call is over (r on no list): count, log, free, then tell. */
static void areq_complete(struct s3_areq *r, int rc)
{
	struct s3_async *as = r->as;
	struct s3_store *st = as->st;
	struct s3_call *c = &r->c;
	if (st) {
		if (rc && r->attempts > 1)
			log_debug("s3: %s %s: gave up after %u retries", c->what, c->url,
				  r->attempts - 1);
		rc = s3_call_end(c, r->key, rc);
		if (rc == 0 && r->head_check && r->head_offset > (uint64_t)c->content_length)
			rc = SL_EPROTO;
	}
	objstore_done_fn done = r->done;
	void *arg = r->arg;
	s3_call_free(c);
	free(r);
	done(arg, rc);
}

/* Fail r without a request, with why for the log line. */
static void areq_fail(struct s3_areq *r, int rc, CURLcode cc, const char *why)
{
	r->c.curl_code = (int)cc;
	snprintf(r->c.curl_err, sizeof r->c.curl_err, "%s", why);
	areq_complete(r, rc);
}

/* Start r's next attempt in the multi (a slot is free). */
static int areq_launch(struct s3_async *as, struct s3_areq *r)
{
	struct s3_store *st = as->st;
	CURL *h;
	if (as->idle_n) {
		h = as->idle[--as->idle_n];
		curl_easy_reset(h);
	} else if (!(h = curl_easy_init())) {
		return SL_ENOMEM;
	}
	s3_attempt_setup(&r->c, h, s3_retry_timeout_ms(&st->policy, r->deadline_ms, s3_clock_now_ms(NULL)));
	curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)r);
	if (curl_multi_add_handle(as->multi, h) != CURLM_OK) {
		r->c.h = NULL;
		curl_easy_cleanup(h);
		return SL_ENOMEM;
	}
	if (r->attempts)
		atomic_fetch_add(&st->retries[r->c.op], 1);
	areq_push(&as->active, r, 0);
	return 0;
}

/* Fill free slots from the queue, oldest first. Not called from a start
 * (it may complete calls, and a start never completes one). */
static void async_pump(struct s3_async *as)
{
	while (!as->closing && as->active.n < SL_S3_ASYNC_ACTIVE_MAX && as->queued.head) {
		struct s3_areq *r = as->queued.head;
		areq_unlink(r);
		if (s3_clock_now_ms(NULL) + S3_TIMEOUT_MS_MIN / 2 >= r->deadline_ms) {
			areq_fail(r, SL_ETIMEDOUT, CURLE_OPERATION_TIMEDOUT,
				  "the deadline passed while waiting for a free connection");
			continue;
		}
		int rc = areq_launch(as, r);
		if (rc)
			areq_fail(r, rc, CURLE_OUT_OF_MEMORY, "cannot start a request");
	}
}

static void on_retry_timer(uv_timer_t *t);

static void retry_timer_arm(struct s3_async *as)
{
	if (!as->backoff.head) {
		uv_timer_stop(&as->retry_timer);
		return;
	}
	int64_t due = INT64_MAX, now = s3_clock_now_ms(NULL);
	for (struct s3_areq *r = as->backoff.head; r; r = r->next)
		if (r->due_ms < due)
			due = r->due_ms;
	uv_timer_start(&as->retry_timer, on_retry_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

static void on_retry_timer(uv_timer_t *t)
{
	struct s3_async *as = t->data;
	int64_t now = s3_clock_now_ms(NULL);
	/* From the tail, each to the queue's head: their order is kept. */
	for (struct s3_areq *r = as->backoff.tail, *prev; r; r = prev) {
		prev = r->prev;
		if (r->due_ms <= now) {
			areq_unlink(r);
			areq_push(&as->queued, r, 1);
		}
	}
	retry_timer_arm(as);
	async_pump(as);
	async_ref_update(as);
}

/* An attempt of r finished with rc: retry later, or complete. */
static void areq_attempted(struct s3_async *as, struct s3_areq *r, int rc, int retryable)
{
	int64_t delay, now = s3_clock_now_ms(NULL);
	if (rc && retryable && !as->closing &&
	    s3_retry_next(&as->st->policy, r->deadline_ms, now, r->attempts, s3_clock_random(NULL),
			  &delay)) {
		r->due_ms = now + delay;
		areq_push(&as->backoff, r, 0);
		retry_timer_arm(as);
		return;
	}
	areq_complete(r, rc);
}

static void async_check_done(struct s3_async *as)
{
	CURLMsg *m;
	int left;
	/* A done callback may close the machinery: stop touching it then. */
	while (!as->closing && (m = curl_multi_info_read(as->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *h = m->easy_handle;
		CURLcode cc = m->data.result;
		char *priv = NULL;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
		struct s3_areq *r = (struct s3_areq *)priv;
		curl_multi_remove_handle(as->multi, h);
		areq_unlink(r);
		int retryable;
		int rc = s3_attempt_finish(&r->c, cc, &retryable);
		handle_release(as, h);
		r->attempts++;
		areq_attempted(as, r, rc, retryable);
	}
	async_pump(as);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct s3_sock *sk = p->data;
	struct s3_async *as = sk->as;
	int flags = 0, running;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(as->multi, sk->fd, flags, &running);
	async_check_done(as);
	async_ref_update(as);
}

static void on_curl_timeout(uv_timer_t *t)
{
	struct s3_async *as = t->data;
	int running;
	curl_multi_socket_action(as->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	async_check_done(as);
	async_ref_update(as);
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or stop the one curl timer. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct s3_async *as = userp;
	if (as->closing)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&as->curl_timer);
	else
		uv_timer_start(&as->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl wants. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct s3_async *as = userp;
	struct s3_sock *sk = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sk)
			sock_close(as, sk);
		return 0;
	}
	if (as->closing)
		return 0;
	if (!sk) {
		sk = calloc(1, sizeof *sk);
		if (!sk)
			return -1;
		if (uv_poll_init_socket(as->loop, &sk->poll, fd) != 0) {
			free(sk);
			return -1;
		}
		sk->fd = fd;
		sk->as = as;
		sk->poll.data = sk;
		sk->next = as->socks;
		if (as->socks)
			as->socks->prev = sk;
		as->socks = sk;
		as->handles_open++;
		if (!as->referenced)
			uv_unref((uv_handle_t *)&sk->poll);
		curl_multi_assign(as->multi, fd, sk);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	if (ev)
		uv_poll_start(&sk->poll, ev, on_poll);
	else
		uv_poll_stop(&sk->poll);
	return 0;
}

/* The machinery of st on loop, made on first use. */
static int async_get(struct s3_store *st, uv_loop_t *loop, struct s3_async **out)
{
	struct s3_async *as = st->as;
	if (st->async_closed || (as && as->closing))
		return SL_ESTORE;
	if (as) {
		if (as->loop != loop)
			return SL_EINVAL;
		*out = as;
		return 0;
	}
	as = calloc(1, sizeof *as);
	if (!as)
		return SL_ENOMEM;
	as->multi = curl_multi_init();
	if (!as->multi) {
		free(as);
		return SL_ENOMEM;
	}
	as->st = st;
	as->loop = loop;
	curl_multi_setopt(as->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(as->multi, CURLMOPT_SOCKETDATA, as);
	curl_multi_setopt(as->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(as->multi, CURLMOPT_TIMERDATA, as);
	curl_multi_setopt(as->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)SL_S3_ASYNC_ACTIVE_MAX);
	curl_multi_setopt(as->multi, CURLMOPT_MAXCONNECTS, (long)SL_S3_ASYNC_ACTIVE_MAX);
	uv_timer_init(loop, &as->curl_timer);
	uv_timer_init(loop, &as->retry_timer);
	as->curl_timer.data = as->retry_timer.data = as;
	as->handles_open = 2;
	as->referenced = 1;
	st->as = as;
	*out = as;
	return 0;
}

/* Stop everything. With the loop alive (s3_async_close): uv handles are
 * closed, and pending calls complete with SL_ESTORE now (hashing ones
 * when their work returns). Dead (s3_close after the loop ended): no uv
 * call and no callback; the handles' memory goes with the store. */
static void async_teardown(struct s3_async *as, int dead)
{
	struct areq_list failed = { 0 };
	struct areq_list *lists[] = { &as->active, &as->queued, &as->backoff };
	as->closing = 1;
	as->dead = dead;
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		while (lists[i]->head) {
			struct s3_areq *r = lists[i]->head;
			areq_unlink(r);
			if (r->c.h) {
				curl_multi_remove_handle(as->multi, r->c.h);
				curl_easy_cleanup(r->c.h);
				r->c.h = NULL;
			}
			areq_push(&failed, r, 0);
		}
	}
	while (as->idle_n)
		curl_easy_cleanup(as->idle[--as->idle_n]);
	if (!dead)
		for (struct s3_areq *r = as->hashing.head; r; r = r->next)
			uv_cancel((uv_req_t *)&r->work);
	curl_multi_cleanup(as->multi);
	as->multi = NULL;
	while (as->socks)
		sock_close(as, as->socks);
	if (dead) {
		as->handles_open = 0;
	} else {
		uv_close((uv_handle_t *)&as->curl_timer, timer_closed);
		uv_close((uv_handle_t *)&as->retry_timer, timer_closed);
	}
	while (failed.head) {
		struct s3_areq *r = failed.head;
		areq_unlink(r);
		if (dead) {
			s3_call_free(&r->c);
			free(r);
		} else {
			areq_fail(r, SL_ESTORE, CURLE_ABORTED_BY_CALLBACK, "the store is closing");
		}
	}
}

static void sha_work(uv_work_t *w)
{
	struct s3_areq *r = w->data;
	r->hash_rc = s3_sha256_iov_hex(r->c.iov, r->c.iovcnt, r->sha);
}

/* Queue r, or start it when nothing waits and a slot is free. Never
 * completes a call (it runs inside a start). */
static int areq_submit(struct s3_async *as, struct s3_areq *r)
{
	if (!as->queued.head && as->active.n < SL_S3_ASYNC_ACTIVE_MAX)
		return areq_launch(as, r);
	areq_push(&as->queued, r, 0);
	return 0;
}

static void sha_after(uv_work_t *w, int status)
{
	struct s3_areq *r = w->data;
	struct s3_async *as = r->as;
	areq_unlink(r);
	if (as->closing) {
		if (as->st)
			areq_fail(r, SL_ESTORE, CURLE_ABORTED_BY_CALLBACK, "the store is closing");
		else {
			s3_call_free(&r->c);
			free(r);
		}
		async_maybe_free(as);
		return;
	}
	int rc = status ? SL_EIO : r->hash_rc;
	if (rc == 0)
		rc = s3_call_headers(&r->c, r->sha, NULL);
	if (rc == 0) {
		areq_push(&as->queued, r, 0);
		async_pump(as);
	} else {
		areq_fail(r, rc, CURLE_OUT_OF_MEMORY, "cannot hash the body");
	}
	async_ref_update(as);
}

/* A new call on st's machinery (counted like a blocking call). */
static int areq_new(struct s3_store *st, uv_loop_t *loop, int op, const char *what,
		    const char *key, objstore_done_fn done, void *arg, struct s3_areq **out)
{
	struct s3_async *as;
	int rc = async_get(st, loop, &as);
	if (rc)
		return rc;
	if (as->queued.n >= SL_S3_ASYNC_QUEUED_MAX)
		return SL_EBUSY;
	struct s3_areq *r = calloc(1, sizeof *r);
	if (!r)
		return SL_ENOMEM;
	rc = s3_call_init(&r->c, st, op, what, key);
	if (rc) {
		atomic_fetch_add(&st->errors[op], 1);
		s3_call_free(&r->c);
		free(r);
		return rc;
	}
	snprintf(r->key, sizeof r->key, "%s", key);
	r->as = as;
	r->done = done;
	r->arg = arg;
	r->deadline_ms = s3_clock_now_ms(NULL) + (int64_t)st->policy.total_timeout_ms;
	*out = r;
	return 0;
}

/* A start that fails after areq_new: counted, freed, done never called. */
static int areq_abandon(struct s3_areq *r, int rc)
{
	struct s3_async *as = r->as;
	atomic_fetch_add(&as->st->errors[r->c.op], 1);
	s3_call_free(&r->c);
	free(r);
	async_ref_update(as);
	return rc;
}

int s3_put_async(struct objstore *s, uv_loop_t *loop, const char *key, const struct iovec *iov,
		 int iovcnt, unsigned flags, objstore_done_fn done, void *arg)
{
	(void)flags; /* a PUT answered 200 is durable */
	struct s3_store *st = (struct s3_store *)s;
	struct s3_areq *r;
	int rc = areq_new(st, loop, OBJSTORE_OP_PUT, "PUT", key, done, arg, &r);
	if (rc)
		return rc;
	struct s3_async *as = r->as;
	r->c.iov = iov;
	r->c.iovcnt = iovcnt;
	for (int i = 0; i < iovcnt; i++)
		r->c.body_len += iov[i].iov_len;
	if (st->cfg.payload_signing && r->c.body_len >= S3_ASYNC_SHA_POOL_BYTES) {
		r->work.data = r;
		if (uv_queue_work(loop, &r->work, sha_work, sha_after) == 0) {
			areq_push(&as->hashing, r, 0);
			async_ref_update(as);
			return 0;
		}
	}
	rc = s3_put_payload_hash(st, iov, iovcnt, r->sha);
	if (rc == 0)
		rc = s3_call_headers(&r->c, r->sha, NULL);
	if (rc == 0)
		rc = areq_submit(as, r);
	if (rc)
		return areq_abandon(r, rc);
	async_ref_update(as);
	return 0;
}

int s3_get_async(struct objstore *s, uv_loop_t *loop, const char *key, uint64_t offset,
			size_t len, void *out, objstore_done_fn done, void *arg)
{
	struct s3_store *st = (struct s3_store *)s;
	struct s3_areq *r;
	if (offset > (uint64_t)INT64_MAX - len)
		return SL_EINVAL;
	/* No empty Range exists: check the object instead, as s3_get. */
	int rc = len ? areq_new(st, loop, OBJSTORE_OP_GET, "GET", key, done, arg, &r)
		     : areq_new(st, loop, OBJSTORE_OP_HEAD, "HEAD", key, done, arg, &r);
	if (rc)
		return rc;
	if (len) {
		rc = s3_call_range(&r->c, offset, len, out);
	} else {
		r->head_check = 1;
		r->head_offset = offset;
		rc = s3_call_headers(&r->c, S3_EMPTY_SHA256, NULL);
	}
	if (rc == 0)
		rc = areq_submit(r->as, r);
	if (rc)
		return areq_abandon(r, rc);
	async_ref_update(r->as);
	return 0;
}

void s3_async_close(struct objstore *s)
{
	struct s3_store *st = (struct s3_store *)s;
	st->async_closed = 1;
	if (st->as && !st->as->closing)
		async_teardown(st->as, 0);
}

void s3_async_free(struct s3_store *st)
{
	struct s3_async *as = st->as;
	/* Without s3_async_close the loop has ended (our handles held it
	 * while calls were pending): free without touching it. */
	if (!as->closing)
		async_teardown(as, 1);
	as->st = NULL;
	st->as = NULL;
	/* Else freed by the last close callback or work. */
	if (!as->handles_open && !as->hashing.n)
		free(as);
}
