/* configs_cmd.c — `sluice configs`: describe and alter the configs of a
 * topic or a broker over the Kafka protocol (kclient.h:
 * DescribeConfigs, IncrementalAlterConfigs), printing what
 * kafka-configs.sh prints. */
#include "tools/configs_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsg.h"
#include "tools/kclient.h"

#define TOOL "sluice configs"
#define CLIENT_ID "sluice-configs"
#define V_DESCRIBE_CONFIGS 1 /* config_source and synonyms */
#define CONFIG_ARGS_MAX 256
#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4
#define SOURCE_DYNAMIC_TOPIC 1
#define SOURCE_DYNAMIC_BROKER 2
#define SOURCE_DYNAMIC_DEFAULT_BROKER 3

KCLIENT_WRAP(describe_configs)

/* Kafka's ConfigSource names, as kafka-configs.sh prints synonyms. */
static const char *source_name(int8_t s)
{
	static const char *const names[] = {
		"UNKNOWN", "DYNAMIC_TOPIC_CONFIG", "DYNAMIC_BROKER_CONFIG",
		"DYNAMIC_DEFAULT_BROKER_CONFIG", "STATIC_BROKER_CONFIG", "DEFAULT_CONFIG",
		"DYNAMIC_BROKER_LOGGER_CONFIG", "CLIENT_METRICS_CONFIG", "GROUP_CONFIG",
	};
	return s >= 0 && s < (int8_t)(sizeof names / sizeof names[0]) ? names[s] : "UNKNOWN";
}

static void print_value(kstr v, bool sensitive)
{
	if (sensitive)
		printf("null");
	else if (v.len >= 0)
		printf("%.*s", v.len, v.ptr);
	else
		printf("null");
}

static int cmd_describe(struct kclient *c, int8_t type, const char *name, bool all)
{
	struct kmsg_describe_configs_req q;
	struct kmsg_describe_configs_resp r;
	struct kmsg_describe_configs_req_describe_configs_resource res;
	kmsg_describe_configs_req_init(&q);
	kmsg_describe_configs_resp_init(&r);
	kmsg_describe_configs_req_describe_configs_resource_init(&res);
	res.resource_type = type;
	res.resource_name = KSTR(name);
	res.configuration_keys_count = -1;
	q.resources = &res;
	q.resources_count = 1;
	q.include_synonyms = true;
	if (KCLIENT_CALL(c, DESCRIBE_CONFIGS, describe_configs, V_DESCRIBE_CONFIGS, &q, &r) != 0 ||
	    r.results_count != 1)
		return 1;
	const struct kmsg_describe_configs_resp_describe_configs_result *x = &r.results[0];
	const char *kind = type == RESOURCE_TOPIC ? "topic" : "broker";
	if (x->error_code) {
		kclient_print_error(c, x->error_code, x->error_message, "%s %s", kind, name);
		return 1;
	}
	printf("%s configs for %s %s are:\n", all ? "All" : "Dynamic", kind, name);
	for (int32_t i = 0; i < x->configs_count; i++) {
		const struct kmsg_describe_configs_resp_describe_configs_resource_result *e = &x->configs[i];
		bool dynamic = e->config_source == SOURCE_DYNAMIC_TOPIC ||
			       e->config_source == SOURCE_DYNAMIC_BROKER ||
			       e->config_source == SOURCE_DYNAMIC_DEFAULT_BROKER;
		if (!all && !dynamic)
			continue;
		printf("  %.*s=", e->name.len, e->name.ptr);
		print_value(e->value, e->is_sensitive);
		printf(" sensitive=%s synonyms={", e->is_sensitive ? "true" : "false");
		for (int32_t k = 0; k < e->synonyms_count; k++) {
			const struct kmsg_describe_configs_resp_describe_configs_synonym *s = &e->synonyms[k];
			printf("%s%s:%.*s=", k ? ", " : "", source_name(s->source), s->name.len,
			       s->name.ptr);
			print_value(s->value, e->is_sensitive);
		}
		printf("}\n");
	}
	return 0;
}

/* kafka-configs.sh's --add-config list: NAME=VALUE pairs split at commas,
 * except inside [...], whose brackets are dropped (a list value:
 * cleanup.policy=[compact,delete]). Appends to the SETs in the arena.
 * False when an entry is not NAME=VALUE or there are too many. */
static bool parse_add_config(struct kclient *c, const char *arg,
			     struct kmsg_incremental_alter_configs_req_alterable_config *out, int *n)
{
	size_t len = strlen(arg);
	size_t start = 0;
	int depth = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && arg[i] == '[')
			depth++;
		else if (i < len && arg[i] == ']' && depth > 0)
			depth--;
		if (i < len && (arg[i] != ',' || depth > 0))
			continue;
		const char *item = arg + start;
		size_t item_len = i - start;
		start = i + 1;
		const char *eq = memchr(item, '=', item_len);
		if (!eq || eq == item || *n == CONFIG_ARGS_MAX)
			return false;
		const char *v = eq + 1;
		size_t vlen = item_len - (size_t)(v - item);
		if (vlen >= 2 && v[0] == '[' && v[vlen - 1] == ']') {
			v++;
			vlen -= 2;
		}
		struct kmsg_incremental_alter_configs_req_alterable_config *e = &out[(*n)++];
		kmsg_incremental_alter_configs_req_alterable_config_init(e);
		e->name = (kstr){ item, (int32_t)(eq - item) };
		char *copy = arena_alloc(&c->arena, vlen + 1);
		if (!copy)
			return false;
		memcpy(copy, v, vlen);
		copy[vlen] = 0;
		e->value = (kstr){ copy, (int32_t)vlen };
		e->config_operation = 0; /* SET */
	}
	return true;
}

/* --delete-config NAME[,NAME...]: DELETEs. False on an empty name. */
static bool parse_delete_config(const char *arg,
				struct kmsg_incremental_alter_configs_req_alterable_config *out, int *n)
{
	for (const char *p = arg;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || *n == CONFIG_ARGS_MAX)
			return false;
		struct kmsg_incremental_alter_configs_req_alterable_config *e = &out[(*n)++];
		kmsg_incremental_alter_configs_req_alterable_config_init(e);
		e->name = (kstr){ p, (int32_t)len };
		e->value = KSTR_NULL;
		e->config_operation = 1; /* DELETE */
		if (!comma)
			return true;
		p = comma + 1;
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice configs [--bootstrap HOST:PORT] <command> (--topic NAME | --broker ID)\n\n"
		"commands:\n"
		"  describe [--all]                  the configs set on the resource (with --all,\n"
		"                                    every config and where its value comes from)\n"
		"  alter [--add-config K=V[,K=V...]] [--delete-config K[,K...]]\n"
		"                                    set configs, or return them to their defaults;\n"
		"                                    a value with commas goes in brackets:\n"
		"                                    --add-config cleanup.policy=[compact,delete]\n\n"
		"--entity-type topics|brokers --entity-name NAME also name the resource, as in\n"
		"kafka-configs.sh. A broker's configs are `sluice serve` flags: Sluice lists\n"
		"them (describe --all) and refuses to alter them.\n"
		KCLIENT_ARGS_USAGE);
}

/* The command line besides kclient_args'. */
struct configs_args {
	const char *cmd, *name, *entity_type;
	int8_t type;
	bool all;
	const char *adds[CONFIG_ARGS_MAX], *dels[CONFIG_ARGS_MAX];
	int nadds, ndels;
};

static int configs_arg(void *tool_args, int argc, char **argv, int *i)
{
	struct configs_args *o = tool_args;
	const char *a = argv[*i];
	bool has_value = *i + 1 < argc;
	if (!strcmp(a, "--all")) {
		o->all = true;
	} else if (a[0] == '-' && a[1] && !has_value) {
		fprintf(stderr, TOOL ": flag %s needs a value or is unknown\n", a);
		return -1;
	} else if (!strcmp(a, "--topic") || !strcmp(a, "--broker") ||
		   !strcmp(a, "--entity-name")) {
		if (o->name)
			return -1;
		o->name = argv[++*i];
		if (strcmp(a, "--entity-name"))
			o->type = !strcmp(a, "--topic") ? RESOURCE_TOPIC : RESOURCE_BROKER;
	} else if (!strcmp(a, "--entity-type")) {
		o->entity_type = argv[++*i];
	} else if (!strcmp(a, "--add-config") && o->nadds < CONFIG_ARGS_MAX) {
		o->adds[o->nadds++] = argv[++*i];
	} else if (!strcmp(a, "--delete-config") && o->ndels < CONFIG_ARGS_MAX) {
		o->dels[o->ndels++] = argv[++*i];
	} else if (a[0] == '-' && a[1]) {
		fprintf(stderr, TOOL ": unknown flag %s\n", a);
		return -1;
	} else if (!o->cmd) {
		o->cmd = a;
	} else {
		fprintf(stderr, TOOL ": unexpected argument %s\n", a);
		return -1;
	}
	return 0;
}

int configs_cmd(int argc, char **argv)
{
	struct kclient_args ka;
	struct configs_args o = { .type = -1 };
	int rc = kclient_args_parse(&ka, TOOL, usage, argc, argv, configs_arg, &o);
	if (rc >= 0)
		return rc;
	const char *cmd = o.cmd, *name = o.name, *entity_type = o.entity_type;
	int8_t type = o.type;
	if (entity_type) {
		int8_t t = !strcmp(entity_type, "topics") ? RESOURCE_TOPIC
			 : !strcmp(entity_type, "brokers") ? RESOURCE_BROKER : -1;
		if (t < 0 || (type >= 0 && type != t)) {
			fprintf(stderr, TOOL ": --entity-type is topics or brokers\n");
			goto bad;
		}
		type = t;
	}
	if (!cmd || (strcmp(cmd, "describe") && strcmp(cmd, "alter"))) {
		fprintf(stderr, TOOL ": the command is describe or alter\n");
		goto bad;
	}
	if (!name || !*name || type < 0) {
		fprintf(stderr, TOOL ": name the resource: --topic NAME or --broker ID\n");
		goto bad;
	}
	bool alter = !strcmp(cmd, "alter");
	if (alter != (o.nadds + o.ndels > 0)) {
		fprintf(stderr, TOOL ": --add-config and --delete-config go with alter, which "
			"needs one of them\n");
		goto bad;
	}
	struct kclient c;
	if (kclient_connect(&c, TOOL, CLIENT_ID, ka.bootstrap, &ka.sec) != 0)
		return 1;
	int status;
	if (!alter) {
		status = cmd_describe(&c, type, name, o.all);
	} else {
		struct kmsg_incremental_alter_configs_req_alterable_config *ops =
			arena_alloc(&c.arena, sizeof *ops * CONFIG_ARGS_MAX);
		int n = 0;
		bool ok = ops != NULL;
		for (int i = 0; ok && i < o.nadds; i++)
			ok = parse_add_config(&c, o.adds[i], ops, &n);
		for (int i = 0; ok && i < o.ndels; i++)
			ok = parse_delete_config(o.dels[i], ops, &n);
		if (!ok) {
			kclient_close(&c);
			fprintf(stderr, TOOL ": --add-config takes NAME=VALUE[,NAME=VALUE...], "
				"--delete-config NAME[,NAME...]\n");
			goto bad;
		}
		status = kclient_alter_configs(&c, type, name, ops, n);
	}
	kclient_close(&c);
	return status;
bad:
	usage(stderr);
	return 2;
}
