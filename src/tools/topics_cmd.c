/* topics_cmd.c — `sluice topics`: list, describe, create, delete topics,
 * change their configs and add partitions over the Kafka protocol
 * (kclient.h), printing what kafka-topics.sh prints, so no Java tool is
 * needed. Works against any Kafka-compatible broker. */
#include "tools/topics_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "kmsg.h"
#include "proto/kerr.h"
#include "tools/kclient.h"

#define TOOL "sluice topics"
#define CLIENT_ID "sluice-topics"
/* Versions this tool speaks (all served by Sluice and by Kafka 2.8+). */
#define V_METADATA 12          /* topic ids */
#define V_CREATE_TOPICS 7
#define V_DELETE_TOPICS 6
#define V_CREATE_PARTITIONS 3
#define V_DESCRIBE_CONFIGS 1   /* config_source */
#define ADMIN_TIMEOUT_MS 30000
#define CONFIG_ARGS_MAX 256
#define RESOURCE_TOPIC 2
#define SOURCE_DYNAMIC_TOPIC 1

KCLIENT_WRAP(metadata)
KCLIENT_WRAP(create_topics)
KCLIENT_WRAP(delete_topics)
KCLIENT_WRAP(create_partitions)
KCLIENT_WRAP(describe_configs)

typedef struct kmsg_metadata_resp_metadata_response_topic md_topic;

/* Metadata of the named topics (n 0: every topic), never creating one. */
static int metadata(struct kclient *c, char **names, int n, struct kmsg_metadata_resp *r)
{
	struct kmsg_metadata_req q;
	kmsg_metadata_req_init(&q);
	kmsg_metadata_resp_init(r);
	q.allow_auto_topic_creation = false;
	q.topics_count = n > 0 ? n : -1;
	if (n > 0) {
		q.topics = arena_alloc(&c->arena, sizeof *q.topics * (size_t)n);
		if (!q.topics)
			return SL_ENOMEM;
		for (int i = 0; i < n; i++) {
			kmsg_metadata_req_metadata_request_topic_init(&q.topics[i]);
			q.topics[i].name = KSTR(names[i]);
		}
	}
	return KCLIENT_CALL(c, METADATA, metadata, V_METADATA, &q, r);
}

static int cmp_topic(const void *x, const void *y)
{
	const md_topic *a = x, *b = y;
	int32_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
	int d = n > 0 ? memcmp(a->name.ptr, b->name.ptr, (size_t)n) : 0;
	return d ? d : (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

static int cmd_list(struct kclient *c)
{
	struct kmsg_metadata_resp r;
	if (metadata(c, NULL, 0, &r) != 0)
		return 1;
	qsort(r.topics, (size_t)(r.topics_count > 0 ? r.topics_count : 0), sizeof *r.topics, cmp_topic);
	for (int32_t i = 0; i < r.topics_count; i++)
		if (!r.topics[i].error_code)
			printf("%.*s\n", r.topics[i].name.len, r.topics[i].name.ptr);
	return 0;
}

static void print_ids(const int32_t *ids, int32_t n)
{
	for (int32_t i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", ids[i]);
}

static bool kstr_same(kstr a, kstr b)
{
	return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* The topic's configs that differ from the defaults, as "k=v,k=v" (the
 * Configs: column), from one DescribeConfigs result. */
static void print_dynamic_configs(const struct kmsg_describe_configs_resp *r, kstr topic)
{
	for (int32_t i = 0; i < r->results_count; i++) {
		const struct kmsg_describe_configs_resp_describe_configs_result *res = &r->results[i];
		if (res->error_code || !kstr_same(res->resource_name, topic))
			continue;
		int printed = 0;
		for (int32_t k = 0; k < res->configs_count; k++) {
			const struct kmsg_describe_configs_resp_describe_configs_resource_result *e =
				&res->configs[k];
			if (e->config_source != SOURCE_DYNAMIC_TOPIC)
				continue;
			printf("%s%.*s=%.*s", printed++ ? "," : "", e->name.len, e->name.ptr,
			       e->value.len > 0 ? e->value.len : 0, e->value.len > 0 ? e->value.ptr : "");
		}
	}
}

/* kafka-topics.sh --describe: a line per topic, then one per partition. */
static int cmd_describe(struct kclient *c, char **names, int n)
{
	struct kmsg_metadata_resp r;
	if (metadata(c, names, n, &r) != 0)
		return 1;
	int status = 0;
	int32_t count = r.topics_count > 0 ? r.topics_count : 0;
	qsort(r.topics, (size_t)count, sizeof *r.topics, cmp_topic);
	/* every topic's configs in one request */
	struct kmsg_describe_configs_req dq;
	struct kmsg_describe_configs_resp dr;
	kmsg_describe_configs_req_init(&dq);
	kmsg_describe_configs_resp_init(&dr);
	dq.resources = arena_alloc(&c->arena, sizeof *dq.resources * (size_t)(count + 1));
	if (!dq.resources)
		return 1;
	for (int32_t i = 0; i < count; i++) {
		if (r.topics[i].error_code)
			continue;
		struct kmsg_describe_configs_req_describe_configs_resource *res =
			&dq.resources[dq.resources_count++];
		kmsg_describe_configs_req_describe_configs_resource_init(res);
		res->resource_type = RESOURCE_TOPIC;
		res->resource_name = r.topics[i].name;
		res->configuration_keys_count = -1;
	}
	if (dq.resources_count > 0 &&
	    KCLIENT_CALL(c, DESCRIBE_CONFIGS, describe_configs, V_DESCRIBE_CONFIGS, &dq, &dr) != 0)
		return 1;
	for (int32_t i = 0; i < count; i++) {
		md_topic *t = &r.topics[i];
		if (t->error_code) {
			kclient_print_error(c, t->error_code, KSTR_NULL, "topic %.*s",
					    t->name.len > 0 ? t->name.len : 0,
					    t->name.len > 0 ? t->name.ptr : "");
			status = 1;
			continue;
		}
		char id[23];
		kclient_uuid_string(t->topic_id, id);
		int32_t rf = t->partitions_count > 0 ? t->partitions[0].replica_nodes_count : 0;
		printf("Topic: %.*s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: ",
		       t->name.len, t->name.ptr, id, t->partitions_count, rf);
		print_dynamic_configs(&dr, t->name);
		printf("\n");
		/* partitions in index order */
		for (int32_t want = 0; want < t->partitions_count; want++) {
			for (int32_t p = 0; p < t->partitions_count; p++) {
				const struct kmsg_metadata_resp_metadata_response_partition *pp = &t->partitions[p];
				if (pp->partition_index != want)
					continue;
				printf("\tTopic: %.*s\tPartition: %d\tLeader: ", t->name.len, t->name.ptr,
				       pp->partition_index);
				if (pp->leader_id >= 0)
					printf("%d", pp->leader_id);
				else
					printf("none");
				printf("\tReplicas: ");
				print_ids(pp->replica_nodes, pp->replica_nodes_count);
				printf("\tIsr: ");
				print_ids(pp->isr_nodes, pp->isr_nodes_count);
				printf("\n");
			}
		}
	}
	return status;
}

/* "k=v" into name and value (views into arg). False without '=' or a name. */
static bool split_config(const char *arg, kstr *name, kstr *value)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return false;
	*name = (kstr){ arg, (int32_t)(eq - arg) };
	*value = KSTR(eq + 1);
	return true;
}

static int cmd_create(struct kclient *c, const char *topic, int32_t partitions, int16_t replicas,
		      char **configs, int nconfigs, bool if_not_exists)
{
	struct kmsg_create_topics_req q;
	struct kmsg_create_topics_resp r;
	struct kmsg_create_topics_req_creatable_topic t;
	kmsg_create_topics_req_init(&q);
	kmsg_create_topics_resp_init(&r);
	kmsg_create_topics_req_creatable_topic_init(&t);
	t.name = KSTR(topic);
	t.num_partitions = partitions;
	t.replication_factor = replicas;
	t.configs = arena_alloc(&c->arena, sizeof *t.configs * (size_t)(nconfigs + 1));
	if (!t.configs)
		return 1;
	t.configs_count = nconfigs;
	for (int i = 0; i < nconfigs; i++) {
		kmsg_create_topics_req_creatable_topic_config_init(&t.configs[i]);
		split_config(configs[i], &t.configs[i].name, &t.configs[i].value);
	}
	q.topics = &t;
	q.topics_count = 1;
	q.timeout_ms = ADMIN_TIMEOUT_MS;
	if (KCLIENT_CALL(c, CREATE_TOPICS, create_topics, V_CREATE_TOPICS, &q, &r) != 0 ||
	    r.topics_count != 1)
		return 1;
	int16_t err = r.topics[0].error_code;
	if (err == KERR_TOPIC_ALREADY_EXISTS && if_not_exists)
		return 0;
	if (err) {
		kclient_print_error(c, err, r.topics[0].error_message, "create topic %s", topic);
		return 1;
	}
	printf("Created topic %s.\n", topic);
	return 0;
}

static int cmd_delete(struct kclient *c, const char *topic, bool if_exists)
{
	struct kmsg_delete_topics_req q;
	struct kmsg_delete_topics_resp r;
	struct kmsg_delete_topics_req_delete_topic_state t;
	kmsg_delete_topics_req_init(&q);
	kmsg_delete_topics_resp_init(&r);
	kmsg_delete_topics_req_delete_topic_state_init(&t);
	t.name = KSTR(topic);
	q.topics = &t;
	q.topics_count = 1;
	q.timeout_ms = ADMIN_TIMEOUT_MS;
	if (KCLIENT_CALL(c, DELETE_TOPICS, delete_topics, V_DELETE_TOPICS, &q, &r) != 0 ||
	    r.responses_count != 1)
		return 1;
	int16_t err = r.responses[0].error_code;
	if (err == KERR_UNKNOWN_TOPIC_OR_PARTITION && if_exists)
		return 0;
	if (err) {
		kclient_print_error(c, err, r.responses[0].error_message, "delete topic %s", topic);
		return 1;
	}
	return 0;
}

/* IncrementalAlterConfigs of one topic: SET each k=v, DELETE each name. */
static int cmd_alter(struct kclient *c, const char *topic, char **sets, int nsets, char **deletes,
		     int ndeletes)
{
	struct kmsg_incremental_alter_configs_req_alterable_config *ops =
		arena_alloc(&c->arena, sizeof *ops * (size_t)(nsets + ndeletes + 1));
	if (!ops)
		return 1;
	for (int i = 0; i < nsets + ndeletes; i++) {
		kmsg_incremental_alter_configs_req_alterable_config_init(&ops[i]);
		if (i < nsets) {
			split_config(sets[i], &ops[i].name, &ops[i].value);
			ops[i].config_operation = 0; /* SET */
		} else {
			ops[i].name = KSTR(deletes[i - nsets]);
			ops[i].value = KSTR_NULL;
			ops[i].config_operation = 1; /* DELETE */
		}
	}
	return kclient_alter_configs(c, RESOURCE_TOPIC, topic, ops, nsets + ndeletes);
}

static int cmd_add_partitions(struct kclient *c, const char *topic, int32_t count)
{
	struct kmsg_create_partitions_req q;
	struct kmsg_create_partitions_resp r;
	struct kmsg_create_partitions_req_create_partitions_topic t;
	kmsg_create_partitions_req_init(&q);
	kmsg_create_partitions_resp_init(&r);
	kmsg_create_partitions_req_create_partitions_topic_init(&t);
	t.name = KSTR(topic);
	t.count = count;
	t.assignments_count = -1;
	q.topics = &t;
	q.topics_count = 1;
	q.timeout_ms = ADMIN_TIMEOUT_MS;
	if (KCLIENT_CALL(c, CREATE_PARTITIONS, create_partitions, V_CREATE_PARTITIONS, &q, &r) != 0 ||
	    r.results_count != 1)
		return 1;
	if (r.results[0].error_code) {
		kclient_print_error(c, r.results[0].error_code, r.results[0].error_message,
				    "add partitions to topic %s", topic);
		return 1;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice topics [--bootstrap HOST:PORT] <command>\n\n"
		"commands:\n"
		"  list                              every topic's name\n"
		"  describe [TOPIC...]               partitions, leaders, replicas and the configs\n"
		"                                    set on the topic (every topic without TOPIC)\n"
		"  create TOPIC [--partitions N] [--replication-factor N] [--config K=V]...\n"
		"              [--if-not-exists]     (defaults: the broker's)\n"
		"  delete TOPIC [--if-exists]\n"
		"  alter TOPIC [--config K=V]... [--delete-config K]...\n"
		"                                    set configs, or return them to their defaults\n"
		"  add-partitions TOPIC N            grow the topic to N partitions\n\n"
		KCLIENT_ARGS_USAGE);
}

/* A non-negative count of at most max, or -1. */
static long long parse_count(const char *s, long long max)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > max)
		return -1;
	return n;
}

/* The command line besides kclient_args'. */
struct topics_args {
	const char *cmd;
	char *args[CONFIG_ARGS_MAX], *configs[CONFIG_ARGS_MAX], *deletes[CONFIG_ARGS_MAX];
	int nargs, nconfigs, ndeletes;
	long long partitions, replicas;
	bool if_exists, if_not_exists;
};

static int topics_arg(void *tool_args, int argc, char **argv, int *i)
{
	struct topics_args *o = tool_args;
	const char *a = argv[*i];
	if (!strcmp(a, "--partitions")) {
		if (++*i >= argc || (o->partitions = parse_count(argv[*i], INT32_MAX)) < 0) {
			fprintf(stderr, TOOL ": --partitions needs a count >= 1\n");
			return -1;
		}
	} else if (!strcmp(a, "--replication-factor")) {
		if (++*i >= argc || (o->replicas = parse_count(argv[*i], INT16_MAX)) < 0) {
			fprintf(stderr, TOOL ": --replication-factor needs a count >= 1\n");
			return -1;
		}
	} else if (!strcmp(a, "--config")) {
		kstr k, v;
		if (++*i >= argc || !split_config(argv[*i], &k, &v) || o->nconfigs == CONFIG_ARGS_MAX) {
			fprintf(stderr, TOOL ": --config needs NAME=VALUE\n");
			return -1;
		}
		o->configs[o->nconfigs++] = argv[*i];
	} else if (!strcmp(a, "--delete-config")) {
		if (++*i >= argc || !*argv[*i] || o->ndeletes == CONFIG_ARGS_MAX)
			return -1;
		o->deletes[o->ndeletes++] = argv[*i];
	} else if (!strcmp(a, "--if-exists")) {
		o->if_exists = true;
	} else if (!strcmp(a, "--if-not-exists")) {
		o->if_not_exists = true;
	} else if (a[0] == '-' && a[1]) {
		fprintf(stderr, TOOL ": unknown flag %s\n", a);
		return -1;
	} else if (!o->cmd) {
		o->cmd = a;
	} else if (o->nargs < CONFIG_ARGS_MAX) {
		o->args[o->nargs++] = argv[*i];
	} else {
		return -1;
	}
	return 0;
}

int topics_cmd(int argc, char **argv)
{
	struct kclient_args ka;
	struct topics_args o = { .partitions = -1, .replicas = -1 };
	int rc = kclient_args_parse(&ka, TOOL, usage, argc, argv, topics_arg, &o);
	if (rc >= 0)
		return rc;
	const char *cmd = o.cmd;
	char **args = o.args;
	int nargs = o.nargs;
	if (!cmd)
		goto bad;
	long long count = 0;
	bool one_topic = !strcmp(cmd, "create") || !strcmp(cmd, "delete") || !strcmp(cmd, "alter");
	if (one_topic && nargs != 1) {
		fprintf(stderr, TOOL ": %s needs one TOPIC\n", cmd);
		goto bad;
	} else if (!strcmp(cmd, "add-partitions")) {
		if (nargs != 2 || (count = parse_count(args[1], INT32_MAX)) < 0) {
			fprintf(stderr, TOOL ": add-partitions needs TOPIC and a count >= 1\n");
			goto bad;
		}
	} else if (!strcmp(cmd, "list") && nargs) {
		goto bad;
	} else if (!one_topic && strcmp(cmd, "list") && strcmp(cmd, "describe")) {
		fprintf(stderr, TOOL ": unknown command %s\n", cmd);
		goto bad;
	}
	if (!strcmp(cmd, "alter") && o.nconfigs + o.ndeletes == 0) {
		fprintf(stderr, TOOL ": alter needs --config or --delete-config\n");
		goto bad;
	}
	struct kclient c;
	if (kclient_connect(&c, TOOL, CLIENT_ID, ka.bootstrap, &ka.sec) != 0)
		return 1;
	int status;
	if (!strcmp(cmd, "list"))
		status = cmd_list(&c);
	else if (!strcmp(cmd, "describe"))
		status = cmd_describe(&c, args, nargs);
	else if (!strcmp(cmd, "create"))
		status = cmd_create(&c, args[0], (int32_t)o.partitions, (int16_t)o.replicas, o.configs,
				    o.nconfigs, o.if_not_exists);
	else if (!strcmp(cmd, "delete"))
		status = cmd_delete(&c, args[0], o.if_exists);
	else if (!strcmp(cmd, "alter"))
		status = cmd_alter(&c, args[0], o.configs, o.nconfigs, o.deletes, o.ndeletes);
	else
		status = cmd_add_partitions(&c, args[0], (int32_t)count);
	kclient_close(&c);
	return status;
bad:
	usage(stderr);
	return 2;
}
