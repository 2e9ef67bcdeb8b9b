/* transactions_cmd.c — `sluice transactions`: over the tools' Kafka
 * client (kclient.h), lists transactions (ListTransactions to every
 * broker, as the admin client fans it out: each answers for the ids it
 * coordinates), describes one (FindCoordinator, then DescribeTransactions
 * at its coordinator) and describes a partition's producers
 * (DescribeProducers), printing kafka-transactions.sh's columns in its
 * table layout (each cell padded to its column's width, then a tab).
 * Works against Sluice and Kafka brokers alike. */
#define _GNU_SOURCE /* vasprintf */
#include "tools/transactions_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/grow.h"
#include "kmsg.h"
#include "proto/kerr.h"
#include "tools/kclient.h"

#define TOOL "sluice transactions"
#define CLIENT_ID "sluice-transactions"
#define V_METADATA 4
#define V_FIND_COORDINATOR 1    /* one key, not flexible: Kafka 0.11+ */
#define V_DESCRIBE_PRODUCERS 0
#define V_DESCRIBE_TRANSACTIONS 0
/* Retriable answers (loading, no coordinator yet) are asked again for
 * this long, as the admin client retries them. */
#define RETRY_MS 5000
#define RETRY_SLEEP_MS 100

KCLIENT_WRAP(metadata)
KCLIENT_WRAP(find_coordinator)
KCLIENT_WRAP(describe_transactions)
KCLIENT_WRAP(list_transactions)
KCLIENT_WRAP(describe_producers)

/* ---- the table ---- */

struct table {
	int cols;
	char **cells;           /* rows * cols, row-major; row 0 the headers */
	size_t n, cap;          /* cells */
};

static int table_add(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int table_add(struct table *t, const char *fmt, ...)
{
	if (array_grow(&t->cells, &t->cap, t->n, sizeof *t->cells, 64) != 0)
		return SL_ENOMEM;
	va_list ap;
	va_start(ap, fmt);
	int len = vasprintf(&t->cells[t->n], fmt, ap);
	va_end(ap);
	if (len < 0)
		return SL_ENOMEM;
	t->n++;
	return 0;
}

static int table_add_kstr(struct table *t, kstr s)
{
	return table_add(t, "%.*s", s.len > 0 ? s.len : 0, s.len > 0 ? s.ptr : "");
}

/* ToolsUtils.prettyPrintTable's layout. */
static void table_print(const struct table *t)
{
	size_t width[16] = { 0 };
	for (size_t i = 0; i < t->n; i++) {
		size_t len = strlen(t->cells[i]);
		if (len > width[i % (size_t)t->cols])
			width[i % (size_t)t->cols] = len;
	}
	for (size_t i = 0; i < t->n; i++) {
		printf("%-*s\t", (int)width[i % (size_t)t->cols], t->cells[i]);
		if (i % (size_t)t->cols == (size_t)t->cols - 1)
			printf("\n");
	}
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->cells[i]);
	free(t->cells);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static int64_t mono_ms(void)
{
	return clock_mono_us() / 1000;
}

static bool retriable(int16_t code)
{
	return code == KERR_COORDINATOR_LOAD_IN_PROGRESS || code == KERR_COORDINATOR_NOT_AVAILABLE ||
	       code == KERR_NOT_COORDINATOR;
}

static void address_of(kstr host, int32_t port, char *out, size_t cap)
{
	bool v6 = host.len > 0 && memchr(host.ptr, ':', (size_t)host.len);
	snprintf(out, cap, "%s%.*s%s:%d", v6 ? "[" : "", host.len > 0 ? host.len : 0,
		 host.len > 0 ? host.ptr : "", v6 ? "]" : "", port);
}

/* ---- list ---- */

/* One broker's listing into t. 0, or 1 having said why. */
static int list_at(const struct kclient_security *sec, int32_t node, const char *addr,
		   int64_t duration_ms, struct table *t)
{
	struct kclient c;
	if (kclient_connect(&c, TOOL, CLIENT_ID, addr, sec) != 0)
		return 1;
	struct kmsg_list_transactions_req q;
	struct kmsg_list_transactions_resp r;
	kmsg_list_transactions_req_init(&q);
	q.duration_filter = duration_ms;
	/* v1 only for the duration filter (KIP-994): brokers before 3.8
	 * answer v0 alone. */
	int16_t v = duration_ms >= 0 ? 1 : 0;
	int64_t give_up = mono_ms() + RETRY_MS;
	int status = 0;
	for (;;) {
		kmsg_list_transactions_resp_init(&r);
		if (KCLIENT_CALL(&c, LIST_TRANSACTIONS, list_transactions, v, &q, &r) != 0) {
			status = 1;
			break;
		}
		if (r.error_code == KERR_COORDINATOR_LOAD_IN_PROGRESS && mono_ms() < give_up) {
			sleep_ms(RETRY_SLEEP_MS);
			continue;
		}
		if (r.error_code) {
			kclient_print_error(&c, r.error_code, KSTR_NULL,
					    "Failed to list transactions at broker %d", node);
			status = 1;
			break;
		}
		for (int32_t i = 0; i < r.transaction_states_count && !status; i++) {
			struct kmsg_list_transactions_resp_transaction_state *s = &r.transaction_states[i];
			status = table_add_kstr(t, s->transactional_id) ||
				 table_add(t, "%d", node) ||
				 table_add(t, "%" PRId64, s->producer_id) ||
				 table_add_kstr(t, s->transaction_state);
		}
		break;
	}
	kclient_close(&c);
	return status ? 1 : 0;
}

static int cmd_list(struct kclient *c, const struct kclient_security *sec, int64_t duration_ms)
{
	struct kmsg_metadata_req q;
	struct kmsg_metadata_resp r;
	kmsg_metadata_req_init(&q);
	kmsg_metadata_resp_init(&r);
	q.allow_auto_topic_creation = false; /* no topics: the brokers alone */
	if (KCLIENT_CALL(c, METADATA, metadata, V_METADATA, &q, &r) != 0)
		return 1;
	struct table t = { .cols = 4 };
	int status = table_add(&t, "TransactionalId") || table_add(&t, "Coordinator") ||
		     table_add(&t, "ProducerId") || table_add(&t, "TransactionState");
	for (int32_t i = 0; i < r.brokers_count && !status; i++) {
		char addr[300];
		address_of(r.brokers[i].host, r.brokers[i].port, addr, sizeof addr);
		status = list_at(sec, r.brokers[i].node_id, addr, duration_ms, &t);
	}
	if (!status)
		table_print(&t);
	table_free(&t);
	return status ? 1 : 0;
}

/* ---- describe ---- */

/* The id's coordinator, asked of the bootstrap broker. 0, or 1 having
 * said why. */
static int find_coordinator(struct kclient *c, const char *id, int32_t *node, char *addr,
			    size_t cap)
{
	struct kmsg_find_coordinator_req q;
	struct kmsg_find_coordinator_resp r;
	kmsg_find_coordinator_req_init(&q);
	q.key = KSTR(id);
	q.key_type = 1;
	int64_t give_up = mono_ms() + RETRY_MS;
	for (;;) {
		kmsg_find_coordinator_resp_init(&r);
		if (KCLIENT_CALL(c, FIND_COORDINATOR, find_coordinator, V_FIND_COORDINATOR, &q, &r) != 0)
			return 1;
		if (retriable(r.error_code) && mono_ms() < give_up) {
			sleep_ms(RETRY_SLEEP_MS);
			continue;
		}
		if (r.error_code) {
			kclient_print_error(c, r.error_code, r.error_message,
					    "Failed to describe transaction state of transactional-id "
					    "`%s`", id);
			return 1;
		}
		*node = r.node_id;
		address_of(r.host, r.port, addr, cap);
		return 0;
	}
}

static int describe_row(struct table *t, int32_t node, const char *id,
			const struct kmsg_describe_transactions_resp_transaction_state *s)
{
	int rc = table_add(t, "%d", node) || table_add(t, "%s", id) ||
		 table_add(t, "%" PRId64, s->producer_id) || table_add(t, "%d", s->producer_epoch) ||
		 table_add_kstr(t, s->transaction_state) ||
		 table_add(t, "%d", s->transaction_timeout_ms);
	/* The admin client reads a start of -1 as none. */
	if (s->transaction_start_time_ms < 0)
		rc = rc || table_add(t, "None") || table_add(t, "None");
	else
		rc = rc || table_add(t, "%" PRId64, s->transaction_start_time_ms) ||
		     table_add(t, "%" PRId64, clock_wall_ms() - s->transaction_start_time_ms);
	if (rc)
		return rc;
	char *parts = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&parts, &len);
	if (!f)
		return SL_ENOMEM;
	bool first = true;
	for (int32_t i = 0; i < s->topics_count; i++)
		for (int32_t p = 0; p < s->topics[i].partitions_count; p++) {
			fprintf(f, "%s%.*s-%d", first ? "" : ",", s->topics[i].topic.len,
				s->topics[i].topic.ptr, s->topics[i].partitions[p]);
			first = false;
		}
	fclose(f);
	rc = table_add(t, "%s", parts ? parts : "");
	free(parts);
	return rc;
}

static int cmd_describe(struct kclient *bc, const struct kclient_security *sec, const char *id)
{
	int32_t node;
	char addr[300];
	if (find_coordinator(bc, id, &node, addr, sizeof addr) != 0)
		return 1;
	struct kclient c;
	if (kclient_connect(&c, TOOL, CLIENT_ID, addr, sec) != 0)
		return 1;
	struct kmsg_describe_transactions_req q;
	struct kmsg_describe_transactions_resp r;
	kmsg_describe_transactions_req_init(&q);
	kstr k = KSTR(id);
	q.transactional_ids = &k;
	q.transactional_ids_count = 1;
	int64_t give_up = mono_ms() + RETRY_MS;
	int status = 1;
	for (;;) {
		kmsg_describe_transactions_resp_init(&r);
		if (KCLIENT_CALL(&c, DESCRIBE_TRANSACTIONS, describe_transactions,
				 V_DESCRIBE_TRANSACTIONS, &q, &r) != 0)
			break;
		if (r.transaction_states_count != 1) {
			fprintf(stderr, "%s: DescribeTransactions answered %d states for one id\n", TOOL,
				r.transaction_states_count);
			break;
		}
		const struct kmsg_describe_transactions_resp_transaction_state *s = &r.transaction_states[0];
		if (s->error_code == KERR_COORDINATOR_LOAD_IN_PROGRESS && mono_ms() < give_up) {
			sleep_ms(RETRY_SLEEP_MS);
			continue;
		}
		if (s->error_code) {
			kclient_print_error(&c, s->error_code, KSTR_NULL,
					    "Failed to describe transaction state of transactional-id "
					    "`%s`", id);
			break;
		}
		struct table t = { .cols = 9 };
		static const char *const headers[] = {
			"CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch",
			"TransactionState", "TransactionTimeoutMs", "CurrentTransactionStartTimeMs",
			"TransactionDurationMs", "TopicPartitions"
		};
		int rc = 0;
		for (int i = 0; i < 9 && !rc; i++)
			rc = table_add(&t, "%s", headers[i]);
		if (!rc && !(rc = describe_row(&t, node, id, s))) {
			table_print(&t);
			status = 0;
		}
		table_free(&t);
		break;
	}
	kclient_close(&c);
	return status;
}

/* ---- describe-producers ---- */

static int cmd_describe_producers(struct kclient *c, const char *topic, int32_t partition)
{
	struct kmsg_describe_producers_req q;
	struct kmsg_describe_producers_resp r;
	struct kmsg_describe_producers_req_topic_request tr;
	kmsg_describe_producers_req_init(&q);
	kmsg_describe_producers_resp_init(&r);
	kmsg_describe_producers_req_topic_request_init(&tr);
	tr.name = KSTR(topic);
	tr.partition_indexes = &partition;
	tr.partition_indexes_count = 1;
	q.topics = &tr;
	q.topics_count = 1;
	if (KCLIENT_CALL(c, DESCRIBE_PRODUCERS, describe_producers, V_DESCRIBE_PRODUCERS, &q, &r) != 0)
		return 1;
	if (r.topics_count != 1 || r.topics[0].partitions_count != 1) {
		fprintf(stderr, "%s: DescribeProducers answered no partition\n", TOOL);
		return 1;
	}
	const struct kmsg_describe_producers_resp_partition_response *p = &r.topics[0].partitions[0];
	if (p->error_code) {
		kclient_print_error(c, p->error_code, p->error_message,
				    "Failed to describe producers for partition %s-%d on leader",
				    topic, partition);
		return 1;
	}
	struct table t = { .cols = 6 };
	int rc = table_add(&t, "ProducerId") || table_add(&t, "ProducerEpoch") ||
		 table_add(&t, "LatestCoordinatorEpoch") || table_add(&t, "LastSequence") ||
		 table_add(&t, "LastTimestamp") || table_add(&t, "CurrentTransactionStartOffset");
	for (int32_t i = 0; i < p->active_producers_count && !rc; i++) {
		const struct kmsg_describe_producers_resp_producer_state *s = &p->active_producers[i];
		rc = table_add(&t, "%" PRId64, s->producer_id) ||
		     table_add(&t, "%d", s->producer_epoch) ||
		     table_add(&t, "%d", s->coordinator_epoch) ||
		     table_add(&t, "%d", s->last_sequence) ||
		     table_add(&t, "%" PRId64, s->last_timestamp);
		if (!rc)
			rc = s->current_txn_start_offset >= 0
				     ? table_add(&t, "%" PRId64, s->current_txn_start_offset)
				     : table_add(&t, "None");
	}
	if (!rc)
		table_print(&t);
	table_free(&t);
	return rc ? 1 : 0;
}

/* ---- the command line ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice transactions [--bootstrap HOST:PORT] <command>\n\n"
		"commands (as kafka-transactions.sh):\n"
		"  list [--duration-filter MS]       every transactional id each broker coordinates,\n"
		"                                    its producer id and state; with the filter only\n"
		"                                    transactions running longer than MS\n"
		"  describe [--transactional-id] ID  the id's producer id and epoch, state, timeout,\n"
		"                                    start and duration of its transaction, partitions\n"
		"  describe-producers --topic T --partition P\n"
		"                                    the partition's idempotent and transactional\n"
		"                                    producers and their open transactions' offsets\n\n"
		KCLIENT_ARGS_USAGE);
}

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || *end || end == s || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* The command line besides kclient_args'. */
struct transactions_args {
	const char *cmd, *id, *topic;
	int64_t duration_ms, partition;
};

static int transactions_arg(void *tool_args, int argc, char **argv, int *i)
{
	struct transactions_args *o = tool_args;
	const char *a = argv[*i];
	if (!strcmp(a, "--transactional-id")) {
		if (++*i >= argc || o->id)
			return -1;
		o->id = argv[*i];
	} else if (!strcmp(a, "--topic")) {
		if (++*i >= argc)
			return -1;
		o->topic = argv[*i];
	} else if (!strcmp(a, "--partition")) {
		if (++*i >= argc || parse_i64(argv[*i], 0, INT32_MAX, &o->partition) != 0) {
			fprintf(stderr, "%s: bad --partition\n", TOOL);
			return -1;
		}
	} else if (!strcmp(a, "--duration-filter")) {
		if (++*i >= argc || parse_i64(argv[*i], INT64_MIN, INT64_MAX, &o->duration_ms) != 0) {
			fprintf(stderr, "%s: bad --duration-filter\n", TOOL);
			return -1;
		}
	} else if (a[0] == '-') {
		fprintf(stderr, "%s: unknown flag %s\n", TOOL, a);
		return -1;
	} else if (!o->cmd) {
		o->cmd = a;
	} else if (!o->id) {
		o->id = a;
	} else {
		fprintf(stderr, "%s: unexpected argument %s\n", TOOL, a);
		return -1;
	}
	return 0;
}

int transactions_cmd(int argc, char **argv)
{
	struct kclient_args ka;
	struct transactions_args o = { .duration_ms = -1, .partition = -1 };
	int rc = kclient_args_parse(&ka, TOOL, usage, argc, argv, transactions_arg, &o);
	if (rc >= 0)
		return rc;
	const char *cmd = o.cmd, *id = o.id, *topic = o.topic;
	int64_t partition = o.partition;
	if (!cmd)
		goto bad;
	if (!strcmp(cmd, "describe") && !id) {
		fprintf(stderr, "%s: describe needs a transactional id\n", TOOL);
		goto bad;
	} else if (!strcmp(cmd, "describe-producers") && (!topic || partition < 0)) {
		fprintf(stderr, "%s: describe-producers needs --topic and --partition\n", TOOL);
		goto bad;
	} else if (strcmp(cmd, "describe") && id) {
		fprintf(stderr, "%s: unexpected argument %s\n", TOOL, id);
		goto bad;
	} else if (strcmp(cmd, "list") && strcmp(cmd, "describe") &&
		   strcmp(cmd, "describe-producers")) {
		fprintf(stderr, "%s: unknown command %s\n", TOOL, cmd);
		goto bad;
	}
	struct kclient c;
	if (kclient_connect(&c, TOOL, CLIENT_ID, ka.bootstrap, &ka.sec) != 0)
		return 1;
	int status;
	if (!strcmp(cmd, "list"))
		status = cmd_list(&c, &ka.sec, o.duration_ms);
	else if (!strcmp(cmd, "describe"))
		status = cmd_describe(&c, &ka.sec, id);
	else
		status = cmd_describe_producers(&c, topic, (int32_t)partition);
	kclient_close(&c);
	return status;
bad:
	usage(stderr);
	return 2;
}
