/* driver.c — Sluice's benchmark driver: a librdkafka producer and consumer
 * that measure throughput and produce latency against a broker, or against
 * librdkafka's in-memory mock cluster as a reference for what the client and
 * the machine allow.
 *
 *   driver produce (--bootstrap HOST:PORT | --reference mock) --topic T
 *          [--partitions 8] [--msg-bytes 1024] [--duration-s 10] [--acks all]
 *          [--linger-ms 5] [--rate MSGS_PER_S] [--label NAME]
 *   driver consume (--bootstrap HOST:PORT | --reference mock) --topic T
 *          [--partitions 8] [--count N] [--msg-bytes 1024] [--label NAME]
 *   driver mock-serve
 *          runs a mock cluster until SIGTERM and prints "bootstrap HOST:PORT"
 *          (lets bench/run.sh be tested without a broker: BOOTSTRAP=...)
 *
 * Each run prints a human summary and one machine-readable line:
 *   csv:workload,target,msg_bytes,partitions,mb_s,msgs_s,p50_ms,p99_ms,p999_ms
 * (MB is 10^6 bytes; consume runs leave the latency columns empty.)
 *
 * The driver depends only on librdkafka, not on Sluice's sources. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PARTITIONS_MAX 4096
#define MSG_BYTES_MAX (16 * 1024 * 1024)
/* A consume run that sees no message for this long gives up. */
#define CONSUME_IDLE_US (15 * 1000000LL)
/* librdkafka's mock keeps only the last 5 MiB of each partition, so a mock
 * consume run loads at most this much per partition before reading back. */
#define MOCK_FILL_PARTITION_BYTES (4 * 1024 * 1024)

struct opts {
	const char *workload; /* "produce" or "consume" */
	const char *bootstrap;
	bool mock;
	const char *topic;
	const char *label;
	const char *acks;
	int partitions;
	int msg_bytes;
	double duration_s;
	int linger_ms;
	int64_t rate_msgs_s; /* 0: as fast as possible */
	int64_t count;       /* consume: 0 means up to the high watermarks */
	bool verbose;
};

static volatile sig_atomic_t stop_requested;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "driver: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- latency histogram -------------------------------------------------
 * Log-linear in microseconds: exact below 1024 us, then 512 sub-buckets per
 * power of two (0.2% resolution), so percentiles need no per-message array. */

#define HIST_LINEAR 1024
#define HIST_SUB 512
#define HIST_BUCKETS (HIST_LINEAR + 40 * HIST_SUB)

struct hist {
	uint64_t bucket[HIST_BUCKETS];
	uint64_t n;
	uint64_t max_us;
};

static int hist_index(uint64_t v)
{
	if (v < HIST_LINEAR)
		return (int)v;
	int e = 63 - __builtin_clzll(v); /* e >= 10 */
	int idx = HIST_LINEAR + (e - 10) * HIST_SUB + (int)((v >> (e - 9)) - HIST_SUB);
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Upper bound of the values that land in bucket idx. */
static uint64_t hist_value(int idx)
{
	if (idx < HIST_LINEAR)
		return (uint64_t)idx;
	int e = (idx - HIST_LINEAR) / HIST_SUB + 10;
	uint64_t sub = (uint64_t)((idx - HIST_LINEAR) % HIST_SUB) + HIST_SUB;
	return ((sub + 1) << (e - 9)) - 1;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->n++;
	if (v > h->max_us)
		h->max_us = v;
}

static double hist_percentile_ms(const struct hist *h, double p)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)(p / 100.0 * (double)h->n);
	if (rank >= h->n)
		rank = h->n - 1;
	uint64_t seen = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen > rank) {
			uint64_t v = hist_value(i);
			if (v > h->max_us)
				v = h->max_us;
			return (double)v / 1000.0;
		}
	}
	return (double)h->max_us / 1000.0;
}

/* ---- shared client setup ----------------------------------------------- */

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK)
		die("config %s=%s: %s", name, value, err);
}

static void conf_set_int(rd_kafka_conf_t *conf, const char *name, int64_t value)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%" PRId64, value);
	conf_set(conf, name, buf);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	fprintf(stderr, "rdkafka %d %s: %s\n", level, fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	fprintf(stderr, "driver: client error: %s: %s\n",
		rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static rd_kafka_conf_t *conf_base(const char *bootstrap, bool verbose)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", bootstrap);
	conf_set(conf, "client.id", "sluice-bench");
	if (verbose)
		conf_set(conf, "debug", "broker,protocol,msg");
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_error_cb(conf, on_error);
	return conf;
}

/* The mock reference: a helper client owns an in-memory cluster of one
 * broker; the workload's own client connects to it like to any broker. */
struct mock {
	rd_kafka_t *owner;
	rd_kafka_mock_cluster_t *cluster;
};

static const char *mock_start(struct mock *m, const struct opts *o)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "log_level", "3");
	m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!m->owner)
		die("mock owner: %s", err);
	m->cluster = rd_kafka_mock_cluster_new(m->owner, 1);
	if (!m->cluster)
		die("rd_kafka_mock_cluster_new failed");
	rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(m->cluster, o->topic,
							    o->partitions, 1);
	if (e)
		die("mock topic create: %s", rd_kafka_err2str(e));
	return rd_kafka_mock_cluster_bootstraps(m->cluster);
}

static void mock_stop(struct mock *m)
{
	if (m->cluster)
		rd_kafka_mock_cluster_destroy(m->cluster);
	if (m->owner)
		rd_kafka_destroy(m->owner);
}

/* Number of partitions the topic has, or -1 when it is unknown. */
static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	int n = -1;
	if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			n = md->topics[0].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	rd_kafka_topic_destroy(rkt);
	return n;
}

/* Creates the topic with the Admin API unless it exists, then waits until
 * metadata shows its partitions. */
static void topic_ensure(rd_kafka_t *rk, const char *topic, int partitions)
{
	char err[512];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof err);
	if (!nt)
		die("NewTopic: %s", err);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(ao, 10000, err, sizeof err);
	rd_kafka_AdminOptions_set_request_timeout(ao, 10000, err, sizeof err);
	rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
	/* A failed CreateTopics is not fatal: a broker without it (librdkafka's
	 * mock) may still auto-create the topic on Metadata below. */
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
	if (!ev) {
		fprintf(stderr, "driver: CreateTopics %s: no answer in 20 s\n", topic);
	} else if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "driver: CreateTopics %s: %s\n", topic,
			rd_kafka_event_error_string(ev));
	} else {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t cnt = 0;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
		for (size_t i = 0; i < cnt; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
			if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				fprintf(stderr, "driver: CreateTopics %s: %s (%s)\n", topic,
					rd_kafka_err2name(e),
					rd_kafka_topic_result_error_string(tr[i]) ?: "");
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);

	int64_t deadline = now_us() + 15 * 1000000LL;
	int n;
	while ((n = topic_partitions(rk, topic)) < 1) {
		if (now_us() > deadline)
			die("topic %s does not appear in metadata", topic);
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (n < partitions)
		fprintf(stderr, "driver: topic %s exists with %d partitions, not %d; using %d\n",
			topic, n, partitions, n);
}

static void print_result(const struct opts *o, const char *workload, double mb_s,
			 double msgs_s, const struct hist *h)
{
	const char *target = o->label ? o->label : (o->mock ? "mock" : "broker");
	if (h)
		printf("csv:%s,%s,%d,%d,%.1f,%.0f,%.2f,%.2f,%.2f\n", workload, target,
		       o->msg_bytes, o->partitions, mb_s, msgs_s,
		       hist_percentile_ms(h, 50), hist_percentile_ms(h, 99),
		       hist_percentile_ms(h, 99.9));
	else
		printf("csv:%s,%s,%d,%d,%.1f,%.0f,,,\n", workload, target, o->msg_bytes,
		       o->partitions, mb_s, msgs_s);
	fflush(stdout);
}

/* ---- produce ------------------------------------------------------------ */

struct produce_state {
	struct hist hist;
	uint64_t delivered;
	uint64_t delivered_bytes;
	uint64_t failed;
	rd_kafka_resp_err_t first_err;
	int64_t last_delivery_us;
};

/* Each message's opaque is its produce() time in microseconds. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct produce_state *st = opaque;
	int64_t t = now_us();
	if (m->err) {
		if (!st->failed)
			st->first_err = m->err;
		st->failed++;
		return;
	}
	int64_t sent = (int64_t)(intptr_t)m->_private;
	hist_add(&st->hist, (uint64_t)(t - sent));
	st->delivered++;
	st->delivered_bytes += m->len;
	st->last_delivery_us = t;
}

static rd_kafka_t *producer_new(const struct opts *o, const char *bootstrap,
				struct produce_state *st)
{
	char err[512];
	rd_kafka_conf_t *conf = conf_base(bootstrap, o->verbose);
	conf_set(conf, "acks", o->acks);
	conf_set_int(conf, "linger.ms", o->linger_ms);
	/* Let the broker, not the client's queues, be the bottleneck. */
	conf_set(conf, "queue.buffering.max.messages", "500000");
	conf_set(conf, "queue.buffering.max.kbytes", "524288");
	conf_set(conf, "batch.num.messages", "10000");
	conf_set(conf, "batch.size", "1000000");
	conf_set(conf, "compression.type", "none");
	conf_set(conf, "message.timeout.ms", "60000");
	conf_set(conf, "enable.idempotence", "false");
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, st);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk)
		die("producer: %s", err);
	return rk;
}

/* Produces one message to partition p; returns false when the local queue
 * is full (the caller polls and tries again). */
static bool produce_one(rd_kafka_topic_t *rkt, int p, char *payload, size_t len)
{
	/* msgflags 0: librdkafka neither copies nor frees the payload, which is
	 * one static buffer that outlives every message. */
	if (rd_kafka_produce(rkt, p, 0, payload, len, NULL, 0,
			     (void *)(intptr_t)now_us()) == 0)
		return true;
	rd_kafka_resp_err_t e = rd_kafka_last_error();
	if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return false;
	die("produce: %s", rd_kafka_err2str(e));
	return false;
}

static void sleep_until_us(int64_t t)
{
	int64_t d = t - now_us();
	if (d <= 0)
		return;
	struct timespec ts = { (time_t)(d / 1000000), (long)(d % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* Produces for duration_s (or until count messages when count > 0), then
 * waits for every delivery report. Returns the elapsed seconds from the
 * first produce() to the last delivery. */
static double produce_run(const struct opts *o, rd_kafka_t *rk, int partitions,
			  int64_t count, struct produce_state *st, bool quiet)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	char *payload = malloc((size_t)o->msg_bytes);
	if (!payload)
		die("out of memory");
	/* Incompressible-looking bytes, in case compression is ever enabled. */
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < o->msg_bytes; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		payload[i] = (char)x;
	}

	int64_t start = now_us();
	int64_t end = start + (int64_t)(o->duration_s * 1e6);
	int64_t sent = 0;
	int64_t next_report = start + 1000000;
	uint64_t last_delivered = 0;
	int p = 0;

	while (!stop_requested) {
		int64_t t = now_us();
		if (count > 0 ? sent >= count : t >= end)
			break;
		if (!quiet && t >= next_report) {
			fprintf(stderr, "driver: %5.1f s  %" PRIu64 " msgs/s delivered, %" PRIu64
				" failed\n", (double)(t - start) / 1e6,
				st->delivered - last_delivered, st->failed);
			last_delivered = st->delivered;
			next_report += 1000000;
		}
		int64_t want; /* messages that should have been sent by now */
		if (o->rate_msgs_s > 0)
			want = (t - start) * o->rate_msgs_s / 1000000 + 1;
		else
			want = sent + 1000;
		if (count > 0 && want > count)
			want = count;
		while (sent < want) {
			if (!produce_one(rkt, p, payload, (size_t)o->msg_bytes)) {
				rd_kafka_poll(rk, 1);
				break;
			}
			sent++;
			if (++p == partitions)
				p = 0;
		}
		rd_kafka_poll(rk, 0);
		if (o->rate_msgs_s > 0) {
			/* Pace in 1 ms ticks. */
			sleep_until_us(t + 1000);
		}
	}

	while (rd_kafka_outq_len(rk) > 0 && !stop_requested)
		rd_kafka_poll(rk, 50);
	rd_kafka_flush(rk, stop_requested ? 1000 : 60000);
	rd_kafka_poll(rk, 0);
	rd_kafka_topic_destroy(rkt);
	free(payload);
	int64_t last = st->last_delivery_us > start ? st->last_delivery_us : now_us();
	return (double)(last - start) / 1e6;
}

static int cmd_produce(const struct opts *o)
{
	struct mock m = { 0 };
	const char *bootstrap = o->mock ? mock_start(&m, o) : o->bootstrap;
	struct produce_state *st = calloc(1, sizeof *st);
	if (!st)
		die("out of memory");
	rd_kafka_t *rk = producer_new(o, bootstrap, st);
	int partitions = o->partitions;
	if (!o->mock) {
		topic_ensure(rk, o->topic, o->partitions);
		int n = topic_partitions(rk, o->topic);
		if (n > 0 && n < partitions)
			partitions = n;
	}

	double secs = produce_run(o, rk, partitions, 0, st, false);
	double mb_s = (double)st->delivered_bytes / secs / 1e6;
	double msgs_s = (double)st->delivered / secs;
	const char *workload = o->rate_msgs_s > 0 ? "produce-rate" : "produce";

	printf("%s %s: %" PRIu64 " msgs of %d B to %d partitions in %.2f s (acks=%s linger=%d ms",
	       workload, o->mock ? "mock" : o->bootstrap, st->delivered, o->msg_bytes,
	       partitions, secs, o->acks, o->linger_ms);
	if (o->rate_msgs_s > 0)
		printf(" offered %" PRId64 " msgs/s", o->rate_msgs_s);
	printf(")\n  %.1f MB/s  %.0f msgs/s  latency p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
	       mb_s, msgs_s, hist_percentile_ms(&st->hist, 50),
	       hist_percentile_ms(&st->hist, 99), hist_percentile_ms(&st->hist, 99.9),
	       (double)st->hist.max_us / 1000.0);
	if (st->failed)
		printf("  %" PRIu64 " deliveries FAILED (first: %s)\n", st->failed,
		       rd_kafka_err2name(st->first_err));
	print_result(o, workload, mb_s, msgs_s, &st->hist);

	int rc = st->failed || st->delivered == 0 ? 1 : 0;
	rd_kafka_destroy(rk);
	mock_stop(&m);
	free(st);
	return rc;
}

/* ---- consume ------------------------------------------------------------ */

/* Sum of (high - low) watermarks: what a catch-up read from the beginning
 * will see. */
static int64_t topic_backlog(rd_kafka_t *rk, const char *topic, int partitions)
{
	int64_t total = 0;
	for (int p = 0; p < partitions; p++) {
		int64_t lo = 0, hi = 0;
		rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
		if (e)
			die("watermarks %s/%d: %s", topic, p, rd_kafka_err2str(e));
		total += hi - lo;
	}
	return total;
}

static int cmd_consume(const struct opts *o)
{
	char err[512];
	struct mock m = { 0 };
	const char *bootstrap = o->mock ? mock_start(&m, o) : o->bootstrap;
	int partitions = o->partitions;

	if (o->mock) {
		/* The mock starts empty: load it first (not timed). */
		struct produce_state *st = calloc(1, sizeof *st);
		if (!st)
			die("out of memory");
		rd_kafka_t *prk = producer_new(o, bootstrap, st);
		int64_t fill = (int64_t)partitions * (MOCK_FILL_PARTITION_BYTES / o->msg_bytes);
		if (fill < partitions)
			fill = partitions;
		if (o->count > 0 && o->count < fill)
			fill = o->count;
		produce_run(o, prk, partitions, fill, st, true);
		if (st->failed)
			die("mock fill: %" PRIu64 " deliveries failed", st->failed);
		rd_kafka_destroy(prk);
		free(st);
	}

	rd_kafka_conf_t *conf = conf_base(bootstrap, o->verbose);
	/* A group.id is required by the high-level consumer even with manual
	 * assignment; nothing is committed. */
	conf_set(conf, "group.id", "sluice-bench");
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "enable.auto.offset.store", "false");
	conf_set(conf, "auto.offset.reset", "earliest");
	conf_set(conf, "fetch.max.bytes", "52428800");
	conf_set(conf, "max.partition.fetch.bytes", "8388608");
	conf_set(conf, "queued.max.messages.kbytes", "262144");
	conf_set(conf, "check.crcs", "false");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!rk)
		die("consumer: %s", err);
	rd_kafka_poll_set_consumer(rk);

	if (!o->mock) {
		int n = topic_partitions(rk, o->topic);
		if (n < 1)
			die("topic %s not found", o->topic);
		if (n < partitions)
			partitions = n;
	}
	int64_t want = topic_backlog(rk, o->topic, partitions);
	if (o->count > 0 && o->count < want)
		want = o->count;
	if (want == 0)
		die("topic %s is empty", o->topic);

	rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(tpl, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;

	int64_t start = now_us();
	rd_kafka_resp_err_t e = rd_kafka_assign(rk, tpl);
	if (e)
		die("assign: %s", rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(tpl);

	int64_t got = 0, bytes = 0, errors = 0;
	int64_t last_msg = start, first_msg = 0;
	while (got < want && !stop_requested) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
		int64_t t = now_us();
		if (!msg) {
			if (t - last_msg > CONSUME_IDLE_US) {
				fprintf(stderr, "driver: no message for %lld s, stopping at %" PRId64
					" of %" PRId64 "\n", CONSUME_IDLE_US / 1000000, got, want);
				break;
			}
			continue;
		}
		if (msg->err) {
			if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				if (errors++ < 5)
					fprintf(stderr, "driver: consume error: %s\n",
						rd_kafka_message_errstr(msg));
			}
		} else {
			if (!first_msg)
				first_msg = t;
			got++;
			bytes += (int64_t)msg->len;
			last_msg = t;
		}
		rd_kafka_message_destroy(msg);
	}

	/* The rate is taken from the first message to the last, so that the
	 * client's start-up (metadata, offset lookup, first fetch wait: about
	 * 0.5 s with librdkafka 2.0) does not dilute a short read; the total
	 * is printed too. */
	double total_s = (double)(last_msg - start) / 1e6;
	double secs = first_msg ? (double)(last_msg - first_msg) / 1e6 : 0;
	if (secs <= 0)
		secs = 1e-6;
	double mb_s = (double)bytes / secs / 1e6;
	double msgs_s = (double)got / secs;
	printf("consume %s: %" PRId64 " of %" PRId64 " msgs (%.1f MB) from %d partitions in %.2f s"
	       " after the first message, %.2f s after assign\n  %.1f MB/s  %.0f msgs/s\n",
	       o->mock ? "mock" : o->bootstrap, got, want, (double)bytes / 1e6, partitions, secs,
	       total_s, mb_s, msgs_s);
	print_result(o, "consume", mb_s, msgs_s, NULL);

	rd_kafka_assign(rk, NULL);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	mock_stop(&m);
	return got == want ? 0 : 1;
}

/* Serves a mock cluster until SIGINT/SIGTERM; topics are auto-created by
 * the mock (4 partitions) unless the client creates them. */
static int cmd_mock_serve(void)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "log_level", "3");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk)
		die("mock owner: %s", err);
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
	if (!mc)
		die("rd_kafka_mock_cluster_new failed");
	printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (!stop_requested) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}

/* ---- command line ------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: driver produce (--bootstrap HOST:PORT | --reference mock) --topic T\n"
		"              [--partitions 8] [--msg-bytes 1024] [--duration-s 10] [--acks all]\n"
		"              [--linger-ms 5] [--rate MSGS_PER_S] [--label NAME] [--verbose]\n"
		"       driver consume (--bootstrap HOST:PORT | --reference mock) --topic T\n"
		"              [--partitions 8] [--count N] [--msg-bytes 1024] [--label NAME]\n"
		"prints a summary and a line csv:workload,target,msg_bytes,partitions,mb_s,msgs_s,\n"
		"p50_ms,p99_ms,p999_ms\n"
		"       driver mock-serve   (a mock cluster until SIGTERM)\n");
	exit(2);
}

static int64_t parse_int(const char *name, const char *s, int64_t lo, int64_t hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die("%s: expected an integer in [%lld, %lld], got '%s'", name, (long long)lo,
		    (long long)hi, s);
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.acks = "all",
		.partitions = 8,
		.msg_bytes = 1024,
		.duration_s = 10,
		.linger_ms = 5,
	};
	if (argc < 2)
		usage();
	o.workload = argv[1];
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (strcmp(o.workload, "mock-serve") == 0)
		return cmd_mock_serve();
	if (strcmp(o.workload, "produce") != 0 && strcmp(o.workload, "consume") != 0)
		usage();
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--verbose") == 0) {
			o.verbose = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--bootstrap") == 0)
			o.bootstrap = v;
		else if (strcmp(a, "--reference") == 0) {
			if (strcmp(v, "mock") != 0)
				die("--reference: only 'mock' is known");
			o.mock = true;
		} else if (strcmp(a, "--topic") == 0)
			o.topic = v;
		else if (strcmp(a, "--label") == 0)
			o.label = v;
		else if (strcmp(a, "--acks") == 0)
			o.acks = v;
		else if (strcmp(a, "--partitions") == 0)
			o.partitions = (int)parse_int(a, v, 1, PARTITIONS_MAX);
		else if (strcmp(a, "--msg-bytes") == 0)
			o.msg_bytes = (int)parse_int(a, v, 1, MSG_BYTES_MAX);
		else if (strcmp(a, "--duration-s") == 0) {
			char *end;
			o.duration_s = strtod(v, &end);
			if (*end || o.duration_s <= 0 || o.duration_s > 86400)
				die("--duration-s: expected seconds in (0, 86400], got '%s'", v);
		} else if (strcmp(a, "--linger-ms") == 0)
			o.linger_ms = (int)parse_int(a, v, 0, 900000);
		else if (strcmp(a, "--rate") == 0)
			o.rate_msgs_s = parse_int(a, v, 0, 100000000);
		else if (strcmp(a, "--count") == 0)
			o.count = parse_int(a, v, 0, INT64_MAX);
		else
			usage();
	}
	if (!o.topic)
		die("--topic is required");
	if (!o.mock == !o.bootstrap)
		die("give exactly one of --bootstrap HOST:PORT and --reference mock");

	return strcmp(o.workload, "produce") == 0 ? cmd_produce(&o) : cmd_consume(&o);
}
