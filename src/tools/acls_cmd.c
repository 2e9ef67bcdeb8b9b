/* acls_cmd.c — `sluice acls`: add, list and remove ACLs over the tools'
 * Kafka client (kclient.h) with CreateAcls, DescribeAcls and DeleteAcls,
 * taking kafka-acls.sh's options (--allow-principal, --operation,
 * --topic, --resource-pattern-type, --producer, ...) and printing what
 * kafka-acls.sh --bootstrap-server prints, so scripts written for it
 * work with a name change. Works against any Kafka-compatible broker.
 *
 * As kafka-acls.sh: the resources given (--topic, --group,
 * --transactional-id, --cluster) are patterns of the
 * --resource-pattern-type, the entries are every principal × operation ×
 * host of the --allow-* and --deny-* options, and remove without
 * principals removes every ACL of the pattern (asking first, unless
 * --force). */
#include "tools/acls_cmd.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/authorizer.h"
#include "base/err.h"
#include "base/limits.h"
#include "kmsg.h"
#include "proto/kerr.h"
#include "tools/kclient.h"

#define TOOL "sluice acls"
#define CLIENT_ID "sluice-acls"
/* Versions this tool speaks: flexible, served by Kafka 2.8+ and Sluice. */
#define V_ACLS 3
#define ARGS_MAX 256 /* values of one repeatable option */
/* resources one run names: every --topic, --group, --transactional-id, --cluster */
#define RESOURCES_MAX (3 * ARGS_MAX + 1)

KCLIENT_WRAP(create_acls)
KCLIENT_WRAP(describe_acls)
KCLIENT_WRAP(delete_acls)

/* An ACL, a resource pattern (no principal) or a filter: views into argv
 * or into responses (valid until kclient_close). */
struct acl {
	int8_t rtype;
	kstr rname;
	int8_t ptype;
	kstr principal;
	kstr host;
	int8_t op;
	int8_t perm;
};

struct strs {
	const char *v[ARGS_MAX];
	int n;
};

struct opts {
	enum { NONE, ADD, LIST, REMOVE } action;
	struct strs topics, groups, txn_ids;
	bool cluster;
	int8_t ptype;
	struct strs allow_principals, deny_principals, allow_hosts, deny_hosts, list_principals;
	uint32_t ops;                 /* bits of --operation; 0: none given */
	bool producer, consumer, idempotent, force;
};

/* ---- Kafka's printed forms ---- */

static void print_pattern(const struct acl *a)
{
	printf("ResourcePattern(resourceType=%s, name=%.*s, patternType=%s)",
	       acl_resource_name(a->rtype), a->rname.len > 0 ? a->rname.len : 0,
	       a->rname.len > 0 ? a->rname.ptr : "", acl_pattern_name(a->ptype));
}

static void print_entry(const struct acl *a)
{
	printf("(principal=%.*s, host=%.*s, operation=%s, permissionType=%s)",
	       a->principal.len > 0 ? a->principal.len : 0,
	       a->principal.len > 0 ? a->principal.ptr : "", a->host.len > 0 ? a->host.len : 0,
	       a->host.len > 0 ? a->host.ptr : "", acl_operation_name(a->op),
	       acl_permission_name(a->perm));
}

/* kafka-acls.sh's "HEAD `PATTERN`: \n \t(entry)\n\t(entry) \n" + println:
 * its Scala string template, spaces included, so output compares equal. */
static void print_block(const char *head, const struct acl *pattern, const struct acl *entries,
			int n, const char *tail)
{
	printf("%s `", head);
	print_pattern(pattern);
	printf("`%s \n ", tail);
	for (int i = 0; i < n; i++) {
		printf("%s\t", i ? "\n" : "");
		print_entry(&entries[i]);
	}
	printf(" \n\n");
}

/* ---- the patterns and entries the options name ---- */

static int kstr_cmp(kstr a, kstr b)
{
	int32_t la = a.len > 0 ? a.len : 0, lb = b.len > 0 ? b.len : 0;
	int d = memcmp(a.ptr ? a.ptr : "", b.ptr ? b.ptr : "", (size_t)(la < lb ? la : lb));
	return d ? d : (la > lb) - (la < lb);
}

static int pattern_cmp(const struct acl *a, const struct acl *b)
{
	if (a->rtype != b->rtype)
		return a->rtype - b->rtype;
	if (a->ptype != b->ptype)
		return a->ptype - b->ptype;
	return kstr_cmp(a->rname, b->rname);
}

static int acl_cmp(const void *x, const void *y)
{
	const struct acl *a = x, *b = y;
	int d = pattern_cmp(a, b);
	if (!d)
		d = kstr_cmp(a->principal, b->principal);
	if (!d)
		d = kstr_cmp(a->host, b->host);
	if (!d)
		d = a->op != b->op ? a->op - b->op : a->perm - b->perm;
	return d;
}

/* Sort a[0..n) and drop repeats, as kafka-acls.sh's sets do; the new n. */
static int sort_unique(struct acl *a, int n)
{
	if (n < 2)
		return n;
	qsort(a, (size_t)n, sizeof *a, acl_cmp);
	int k = 1;
	for (int i = 1; i < n; i++)
		if (acl_cmp(&a[i], &a[k - 1]))
			a[k++] = a[i];
	return k;
}

#define OP_BIT(op) (1u << (op))

/* The operations the entries on a resource of this type get: --operation
 * (ALL without it), or what --producer and --consumer imply
 * (kafka-acls.sh: WRITE, DESCRIBE, CREATE on topics, WRITE, DESCRIBE on
 * transactional ids, IDEMPOTENT_WRITE on the cluster with --idempotent;
 * READ, DESCRIBE on topics and READ on groups). */
static uint32_t ops_for(const struct opts *o, int8_t type)
{
	if (!o->producer && !o->consumer)
		return o->ops ? o->ops : OP_BIT(ACL_OP_ALL);
	uint32_t m = 0;
	if (o->producer && type == ACL_RESOURCE_TOPIC)
		m |= OP_BIT(ACL_OP_WRITE) | OP_BIT(ACL_OP_DESCRIBE) | OP_BIT(ACL_OP_CREATE);
	if (o->producer && type == ACL_RESOURCE_TRANSACTIONAL_ID)
		m |= OP_BIT(ACL_OP_WRITE) | OP_BIT(ACL_OP_DESCRIBE);
	if (o->producer && o->idempotent && type == ACL_RESOURCE_CLUSTER)
		m |= OP_BIT(ACL_OP_IDEMPOTENT_WRITE);
	if (o->consumer && type == ACL_RESOURCE_TOPIC)
		m |= OP_BIT(ACL_OP_READ) | OP_BIT(ACL_OP_DESCRIBE);
	if (o->consumer && type == ACL_RESOURCE_GROUP)
		m |= OP_BIT(ACL_OP_READ);
	return m;
}

static void add_patterns(struct acl *out, int *n, const struct strs *names, int8_t type,
			 int8_t ptype)
{
	for (int i = 0; i < names->n; i++)
		out[(*n)++] = (struct acl){ .rtype = type, .rname = KSTR(names->v[i]), .ptype = ptype };
}

/* The resource patterns (filters, for list and remove) named. */
static int patterns_of(const struct opts *o, struct acl *out)
{
	int n = 0;
	add_patterns(out, &n, &o->topics, ACL_RESOURCE_TOPIC, o->ptype);
	/* as kafka-acls.sh: the cluster only as a literal pattern */
	if (o->ptype == ACL_PATTERN_LITERAL && (o->cluster || o->idempotent))
		out[n++] = (struct acl){ .rtype = ACL_RESOURCE_CLUSTER,
					 .rname = KSTR(ACL_CLUSTER_NAME), .ptype = o->ptype };
	add_patterns(out, &n, &o->groups, ACL_RESOURCE_GROUP, o->ptype);
	add_patterns(out, &n, &o->txn_ids, ACL_RESOURCE_TRANSACTIONAL_ID, o->ptype);
	return n;
}

static int add_entries(struct acl *out, int n, const struct strs *principals,
		       const struct strs *hosts, uint32_t ops, int8_t perm)
{
	static const char *const any_host[] = { ACL_WILDCARD };
	const char *const *h = hosts->n ? hosts->v : any_host;
	int nh = hosts->n ? hosts->n : 1;
	for (int p = 0; p < principals->n; p++)
		for (int op = 0; op < 32; op++)
			for (int k = 0; op < 32 && (ops & OP_BIT(op)) && k < nh; k++) {
				if (n == SL_ACL_REQUEST_ITEMS_MAX)
					return -1;
				out[n++] = (struct acl){ .principal = KSTR(principals->v[p]),
							 .host = KSTR(h[k]), .op = (int8_t)op,
							 .perm = perm };
			}
	return n;
}

/* The entries for one resource pattern: every allowed principal × op ×
 * host (* when no --allow-host), then the denied ones. -1 when there
 * are more than one request may carry. */
static int entries_of(const struct opts *o, const struct acl *pattern, struct acl *out)
{
	uint32_t ops = ops_for(o, pattern->rtype);
	int n = add_entries(out, 0, &o->allow_principals, &o->allow_hosts, ops, ACL_PERM_ALLOW);
	if (n >= 0)
		n = add_entries(out, n, &o->deny_principals, &o->deny_hosts, ops, ACL_PERM_DENY);
	return n > 0 ? sort_unique(out, n) : n;
}

/* kafka-acls.sh's prompt: true with --force or a "y" answer on stdin. */
static bool confirmed(const struct opts *o)
{
	if (o->force)
		return true;
	char line[64];
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return false;
	line[strcspn(line, "\r\n")] = 0;
	return !strcasecmp(line, "y");
}

/* ---- add ---- */

static int add_one(struct kclient *c, const struct acl *p, const struct acl *e, int n)
{
	struct kmsg_create_acls_req q;
	struct kmsg_create_acls_resp r;
	kmsg_create_acls_req_init(&q);
	kmsg_create_acls_resp_init(&r);
	q.creations = arena_alloc(&c->arena, sizeof *q.creations * (size_t)n);
	if (!q.creations)
		return 1;
	q.creations_count = n;
	for (int i = 0; i < n; i++) {
		struct kmsg_create_acls_req_acl_creation *x = &q.creations[i];
		kmsg_create_acls_req_acl_creation_init(x);
		x->resource_type = p->rtype;
		x->resource_name = p->rname;
		x->resource_pattern_type = p->ptype;
		x->principal = e[i].principal;
		x->host = e[i].host;
		x->operation = e[i].op;
		x->permission_type = e[i].perm;
	}
	if (KCLIENT_CALL(c, CREATE_ACLS, create_acls, V_ACLS, &q, &r) != 0)
		return 1;
	if (r.results_count != n) {
		fprintf(stderr, TOOL ": CreateAcls answered %d results for %d ACLs\n",
			r.results_count, n);
		return 1;
	}
	for (int i = 0; i < n; i++)
		if (r.results[i].error_code) {
			kclient_print_error(c, r.results[i].error_code, r.results[i].error_message,
					    "add ACL %d for resource %.*s", i + 1, p->rname.len,
					    p->rname.ptr);
			return 1;
		}
	return 0;
}

static int cmd_add(struct kclient *c, const struct acl *patterns, int np,
		   struct acl *const entries[], const int *ne)
{
	for (int i = 0; i < np; i++) {
		if (!ne[i])
			continue;
		print_block("Adding ACLs for resource", &patterns[i], entries[i], ne[i], ":");
		if (add_one(c, &patterns[i], entries[i], ne[i]))
			return 1;
	}
	return 0;
}

/* ---- list ---- */

/* Every ACL matching the filter, appended to *all (grown in the arena). */
static int describe(struct kclient *c, const struct acl *f, struct acl **all, int *n, int *cap)
{
	struct kmsg_describe_acls_req q;
	struct kmsg_describe_acls_resp r;
	kmsg_describe_acls_req_init(&q);
	kmsg_describe_acls_resp_init(&r);
	q.resource_type_filter = f->rtype;
	q.resource_name_filter = f->rname;
	q.pattern_type_filter = f->ptype;
	q.principal_filter = KSTR_NULL;
	q.host_filter = KSTR_NULL;
	q.operation = ACL_OP_ANY;
	q.permission_type = ACL_PERM_ANY;
	if (KCLIENT_CALL(c, DESCRIBE_ACLS, describe_acls, V_ACLS, &q, &r) != 0)
		return 1;
	if (r.error_code) {
		kclient_print_error(c, r.error_code, r.error_message, "list ACLs");
		return 1;
	}
	for (int32_t i = 0; i < r.resources_count; i++) {
		const struct kmsg_describe_acls_resp_describe_acls_resource *res = &r.resources[i];
		for (int32_t k = 0; k < res->acls_count; k++) {
			if (*n == *cap) {
				int grown = *cap ? 2 * *cap : 64;
				struct acl *m = arena_alloc(&c->arena, sizeof *m * (size_t)grown);
				if (!m || grown > SL_ACLS_MAX * 4) {
					fprintf(stderr, TOOL ": too many ACLs\n");
					return 1;
				}
				if (*n)
					memcpy(m, *all, sizeof *m * (size_t)*n);
				*all = m;
				*cap = grown;
			}
			(*all)[(*n)++] = (struct acl){
				.rtype = res->resource_type, .rname = res->resource_name,
				.ptype = res->pattern_type, .principal = res->acls[k].principal,
				.host = res->acls[k].host, .op = res->acls[k].operation,
				.perm = res->acls[k].permission_type,
			};
		}
	}
	return 0;
}

/* "Current ACLs for resource" blocks of all[0..n), sorted, of one
 * principal's entries (NULL: everyone's). */
static void print_current(struct acl *all, int n, const char *principal)
{
	struct acl *shown = malloc(sizeof *shown * (size_t)(n ? n : 1));
	if (!shown)
		return;
	for (int i = 0; i < n;) {
		int j = i, k = 0;
		while (j < n && !pattern_cmp(&all[j], &all[i])) {
			if (!principal || !kstr_cmp(all[j].principal, KSTR(principal)))
				shown[k++] = all[j];
			j++;
		}
		if (k)
			print_block("Current ACLs for resource", &all[i], shown, k, ":");
		i = j;
	}
	free(shown);
}

static int cmd_list(struct kclient *c, const struct opts *o, const struct acl *patterns, int np)
{
	static const struct acl any = { .rtype = ACL_RESOURCE_ANY, .rname = { NULL, -1 },
					.ptype = ACL_PATTERN_ANY };
	struct acl *all = NULL;
	int n = 0, cap = 0;
	for (int i = 0; i < (np ? np : 1); i++)
		if (describe(c, np ? &patterns[i] : &any, &all, &n, &cap))
			return 1;
	/* one binding several filters matched is listed once */
	n = sort_unique(all, n);
	if (!o->list_principals.n) {
		print_current(all, n, NULL);
		return 0;
	}
	for (int p = 0; p < o->list_principals.n; p++) {
		printf("ACLs for principal `%s`\n", o->list_principals.v[p]);
		print_current(all, n, o->list_principals.v[p]);
	}
	return 0;
}

/* ---- remove ---- */

static int remove_one(struct kclient *c, const struct acl *p, const struct acl *e, int n)
{
	struct kmsg_delete_acls_req q;
	struct kmsg_delete_acls_resp r;
	kmsg_delete_acls_req_init(&q);
	kmsg_delete_acls_resp_init(&r);
	int count = n ? n : 1;
	q.filters = arena_alloc(&c->arena, sizeof *q.filters * (size_t)count);
	if (!q.filters)
		return 1;
	q.filters_count = count;
	for (int i = 0; i < count; i++) {
		struct kmsg_delete_acls_req_delete_acls_filter *f = &q.filters[i];
		kmsg_delete_acls_req_delete_acls_filter_init(f);
		f->resource_type_filter = p->rtype;
		f->resource_name_filter = p->rname;
		f->pattern_type_filter = p->ptype;
		/* no entries: every ACL of the pattern */
		f->principal_filter = n ? e[i].principal : KSTR_NULL;
		f->host_filter = n ? e[i].host : KSTR_NULL;
		f->operation = n ? e[i].op : ACL_OP_ANY;
		f->permission_type = n ? e[i].perm : ACL_PERM_ANY;
	}
	if (KCLIENT_CALL(c, DELETE_ACLS, delete_acls, V_ACLS, &q, &r) != 0)
		return 1;
	for (int32_t i = 0; i < r.filter_results_count; i++) {
		const struct kmsg_delete_acls_resp_delete_acls_filter_result *fr = &r.filter_results[i];
		if (fr->error_code) {
			kclient_print_error(c, fr->error_code, fr->error_message,
					    "remove ACLs for resource %.*s", p->rname.len, p->rname.ptr);
			return 1;
		}
	}
	return 0;
}

static int cmd_remove(struct kclient *c, const struct opts *o, const struct acl *patterns,
		      int np, struct acl *const entries[], const int *ne)
{
	for (int i = 0; i < np; i++) {
		if (!o->force) {
			if (ne[i]) {
				printf("Are you sure you want to remove ACLs: \n ");
				for (int k = 0; k < ne[i]; k++) {
					printf("%s\t", k ? "\n" : "");
					print_entry(&entries[i][k]);
				}
				printf(" \n from resource filter `");
			} else {
				printf("Are you sure you want to delete all ACLs for resource filter `");
			}
			print_pattern(&patterns[i]);
			printf("`? (y/n)\n");
		}
		if (confirmed(o) && remove_one(c, &patterns[i], entries[i], ne[i]))
			return 1;
	}
	return 0;
}

/* ---- options ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice acls [--bootstrap HOST:PORT] add|list|remove [options]\n\n"
		"Adds, lists and removes ACLs on a running broker, as kafka-acls.sh\n"
		"--bootstrap-server does (--add, --list, --remove are accepted too).\n\n"
		"resources (repeatable; the patterns ACLs are added to or filters select):\n"
		"  --topic NAME  --group NAME  --transactional-id NAME  --cluster\n"
		"  --resource-pattern-type literal|prefixed|any|match\n"
		"                        literal (default) or prefixed when adding; any\n"
		"                        (every pattern with the exact name) or match (every\n"
		"                        pattern that applies to the name) to list or remove\n"
		"entries (repeatable; principals are TYPE:NAME, User:* for everyone):\n"
		"  --allow-principal P  --deny-principal P\n"
		"  --allow-host H  --deny-host H   (* unless given)\n"
		"  --operation OP        All (default), Read, Write, Create, Delete, Alter,\n"
		"                        Describe, ClusterAction, DescribeConfigs,\n"
		"                        AlterConfigs, IdempotentWrite\n"
		"  --producer            Write, Describe, Create on topics; Write, Describe on\n"
		"                        transactional ids (--idempotent: IdempotentWrite on\n"
		"                        the cluster)\n"
		"  --consumer            Read, Describe on topics, Read on groups\n"
		"list: --principal P (only that principal's ACLs; repeatable)\n"
		"remove: without principals every ACL of the pattern goes; asks y/n on\n"
		"  stdin unless --force\n\n"
		"With --authorizer acl, the principal (User:ANONYMOUS on PLAINTEXT) needs\n"
		"ALTER (add, remove) or DESCRIBE (list) on the cluster, or to be a super user.\n"
		KCLIENT_ARGS_USAGE);
}

/* "TYPE:NAME" as Kafka's SecurityUtils.parseKafkaPrincipal accepts. */
static bool principal_ok(const char *p)
{
	const char *colon = strchr(p, ':');
	return colon && colon != p && colon[1];
}

static int action_of(const char *a)
{
	if (!strcmp(a, "add") || !strcmp(a, "--add"))
		return ADD;
	if (!strcmp(a, "list") || !strcmp(a, "--list"))
		return LIST;
	if (!strcmp(a, "remove") || !strcmp(a, "--remove"))
		return REMOVE;
	return NONE;
}

/* The list a repeatable option's values go to, or NULL. */
static struct strs *list_of(struct opts *o, const char *a)
{
	static const struct { const char *flag; size_t offset; } lists[] = {
		{ "--topic", offsetof(struct opts, topics) },
		{ "--group", offsetof(struct opts, groups) },
		{ "--transactional-id", offsetof(struct opts, txn_ids) },
		{ "--allow-principal", offsetof(struct opts, allow_principals) },
		{ "--deny-principal", offsetof(struct opts, deny_principals) },
		{ "--principal", offsetof(struct opts, list_principals) },
		{ "--allow-host", offsetof(struct opts, allow_hosts) },
		{ "--deny-host", offsetof(struct opts, deny_hosts) },
	};
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
		if (!strcmp(a, lists[i].flag))
			return (struct strs *)((char *)o + lists[i].offset);
	return NULL;
}

static bool valued_option(struct opts *o, const char *a)
{
	return list_of(o, a) || !strcmp(a, "--resource-pattern-type") || !strcmp(a, "--operation");
}

/* One valued option other than --bootstrap: 0, or -1 having said why. */
static int set_option(struct opts *o, const char *a, const char *v)
{
	struct strs *list = list_of(o, a);
	if (list) {
		bool principal = list == &o->allow_principals || list == &o->deny_principals ||
				 list == &o->list_principals;
		if (!*v || (principal && !principal_ok(v))) {
			fprintf(stderr, TOOL ": %s needs %s\n", a,
				principal ? "TYPE:NAME (User:alice)" : "a value");
			return -1;
		}
		if (list->n == ARGS_MAX) {
			fprintf(stderr, TOOL ": too many %s\n", a);
			return -1;
		}
		list->v[list->n++] = v;
	} else if (!strcmp(a, "--resource-pattern-type")) {
		int t = acl_pattern_parse(v);
		if (t <= ACL_PATTERN_UNKNOWN) {
			fprintf(stderr, TOOL ": unknown --resource-pattern-type %s\n", v);
			return -1;
		}
		o->ptype = (int8_t)t;
	} else {
		int op = acl_operation_parse(v);
		if (op <= ACL_OP_ANY) {
			fprintf(stderr, TOOL ": unknown --operation %s\n", v);
			return -1;
		}
		o->ops |= OP_BIT(op);
	}
	return 0;
}

/* kafka-acls.sh's checkArgs and the resource and add checks: NULL, or
 * why the options do not make a command. */
static const char *check(const struct opts *o, int np)
{
	bool entries = o->allow_principals.n || o->deny_principals.n || o->allow_hosts.n ||
		       o->deny_hosts.n;
	if (o->action == NONE)
		return "the command must be one of add, list, remove";
	if (o->action == LIST && (entries || o->producer || o->consumer))
		return "list takes no --allow-*, --deny-*, --producer or --consumer";
	if ((o->producer || o->consumer) && (o->ops || o->deny_principals.n || o->deny_hosts.n))
		return "--producer and --consumer take no --operation, --deny-principal or --deny-host";
	if (o->list_principals.n && o->action != LIST)
		return "--principal is only for list";
	if (o->producer && !o->topics.n)
		return "with --producer you must specify a --topic";
	if (o->idempotent && !o->producer)
		return "--idempotent is only for --producer";
	if (o->consumer && (!o->topics.n || !o->groups.n ||
			    (!o->producer && (o->cluster || o->txn_ids.n))))
		return "with --consumer you must specify a --topic and a --group and no "
		       "--cluster or --transactional-id";
	if (o->action == ADD && o->ptype != ACL_PATTERN_LITERAL && o->ptype != ACL_PATTERN_PREFIXED)
		return "--resource-pattern-type must be literal or prefixed when adding";
	if (o->action != LIST && !np)
		return "you must provide at least one resource: --topic, --group, "
		       "--transactional-id or --cluster";
	return NULL;
}

static int acls_arg(void *tool_args, int argc, char **argv, int *i)
{
	struct opts *o = tool_args;
	const char *a = argv[*i];
	int action = action_of(a);
	if (action != NONE) {
		if (o->action != NONE) {
			fprintf(stderr, TOOL ": only one of add, list, remove\n");
			return -1;
		}
		o->action = action;
	} else if (!strcmp(a, "--cluster")) {
		o->cluster = true;
	} else if (!strcmp(a, "--producer")) {
		o->producer = true;
	} else if (!strcmp(a, "--consumer")) {
		o->consumer = true;
	} else if (!strcmp(a, "--idempotent")) {
		o->idempotent = true;
	} else if (!strcmp(a, "--force")) {
		o->force = true;
	} else if (a[0] != '-') {
		fprintf(stderr, TOOL ": unknown argument %s\n", a);
		return -1;
	} else if (!valued_option(o, a)) {
		fprintf(stderr, TOOL ": unknown flag %s\n", a);
		return -1;
	} else if (*i + 1 == argc) {
		fprintf(stderr, TOOL ": %s needs a value\n", a);
		return -1;
	} else if (set_option(o, a, argv[++*i]) != 0) {
		return -1;
	}
	return 0;
}

int acls_cmd(int argc, char **argv)
{
	static struct opts o; /* large: the option arrays */
	memset(&o, 0, sizeof o);
	o.ptype = ACL_PATTERN_LITERAL;
	struct kclient_args ka;
	const char *why;
	int rc = kclient_args_parse(&ka, TOOL, usage, argc, argv, acls_arg, &o);
	if (rc >= 0)
		return rc;
	struct acl patterns[RESOURCES_MAX];
	int np = patterns_of(&o, patterns);
	if ((why = check(&o, np))) {
		fprintf(stderr, TOOL ": %s\n", why);
		goto bad;
	}
	/* each pattern's entries; --producer/--consumer drop the patterns
	 * they give no operation (as kafka-acls.sh's maps leave them out) */
	static struct acl *entries[RESOURCES_MAX];
	static int ne[RESOURCES_MAX];
	int kept = 0, status = 1;
	for (int i = 0; i < np; i++) {
		uint32_t ops = ops_for(&o, patterns[i].rtype);
		if (!ops)
			continue;
		uint32_t bad_ops = ops & ~(acl_supported_operations(patterns[i].rtype) |
					   OP_BIT(ACL_OP_ALL));
		if (bad_ops) {
			fprintf(stderr, TOOL ": ResourceType %s does not support operation %s\n",
				acl_resource_name(patterns[i].rtype),
				acl_operation_name((int8_t)__builtin_ctz(bad_ops)));
			status = 2;
			goto out_free;
		}
		entries[kept] = malloc(sizeof **entries * SL_ACL_REQUEST_ITEMS_MAX);
		if (!entries[kept])
			goto out_free;
		patterns[kept] = patterns[i];
		ne[kept] = entries_of(&o, &patterns[kept], entries[kept]);
		kept++;
		if (ne[kept - 1] < 0) {
			fprintf(stderr, TOOL ": more than %d ACLs for one resource\n",
				SL_ACL_REQUEST_ITEMS_MAX);
			goto out_free;
		}
		if (o.action == ADD && !ne[kept - 1]) {
			fprintf(stderr, TOOL ": you must specify one of: --allow-principal, "
					"--deny-principal when trying to add ACLs\n");
			status = 2;
			goto out_free;
		}
	}
	struct kclient c;
	if (kclient_connect(&c, TOOL, CLIENT_ID, ka.bootstrap, &ka.sec) == 0) {
		if (o.action == ADD)
			status = cmd_add(&c, patterns, kept, entries, ne);
		else if (o.action == LIST)
			status = cmd_list(&c, &o, patterns, np);
		else
			status = cmd_remove(&c, &o, patterns, kept, entries, ne);
		kclient_close(&c);
	}
out_free:
	for (int i = 0; i < kept; i++)
		free(entries[i]);
	return status;
bad:
	usage(stderr);
	return 2;
}
