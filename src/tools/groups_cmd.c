/* groups_cmd.c — `sluice groups`: over the tools' Kafka client
 * (kclient.h: one TCP connection, the generated codec), lists, describes
 * and deletes consumer groups and resets their committed offsets, like
 * kafka-consumer-groups.sh. Works against any Kafka-compatible broker
 * that is also the group's coordinator (every Sluice agent is). */
#define _GNU_SOURCE /* timegm */
#include "tools/groups_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/grow.h"
#include "base/limits.h"
#include "kmsg.h"
#include "proto/kerr.h"
#include "tools/kclient.h"

#define TOOL "sluice groups"
#define CLIENT_ID "sluice-groups"
/* Versions this tool speaks (all served by Sluice and by Kafka 2.4+). */
#define V_LIST_GROUPS 4
#define V_DESCRIBE_GROUPS 4
#define V_DELETE_GROUPS 1
#define V_OFFSET_FETCH 7
#define V_OFFSET_COMMIT 2
#define V_LIST_OFFSETS 1
#define V_METADATA 4 /* v4+: allow_auto_topic_creation can be false */

KCLIENT_WRAP(list_groups)
KCLIENT_WRAP(describe_groups)
KCLIENT_WRAP(delete_groups)
KCLIENT_WRAP(offset_fetch)
KCLIENT_WRAP(offset_commit)
KCLIENT_WRAP(list_offsets)
KCLIENT_WRAP(metadata)

/* ---- list ---- */

static int cmd_list(struct kclient *c)
{
	struct kmsg_list_groups_req q;
	struct kmsg_list_groups_resp r;
	kmsg_list_groups_req_init(&q);
	kmsg_list_groups_resp_init(&r);
	if (KCLIENT_CALL(c, LIST_GROUPS, list_groups, V_LIST_GROUPS, &q, &r) != 0)
		return 1;
	if (r.error_code) {
		fprintf(stderr, TOOL ": ListGroups: %s (%d)\n", kerr_name(r.error_code),
			r.error_code);
		return 1;
	}
	printf("%-40s %-20s %s\n", "GROUP", "STATE", "PROTOCOL-TYPE");
	for (int32_t i = 0; i < r.groups_count; i++) {
		kclient_print_kstr(r.groups[i].group_id, 40);
		printf(" ");
		kclient_print_kstr(r.groups[i].group_state, 20);
		printf(" ");
		kclient_print_kstr(r.groups[i].protocol_type, 0);
		printf("\n");
	}
	return 0;
}

/* ---- describe ---- */

struct row {
	char topic[256];
	int32_t partition;
	int64_t committed;      /* -1: none */
	int64_t log_end;        /* -1: unknown */
	kstr member_id, host, client_id;
};

struct rows {
	struct row *v;
	size_t n, cap;
};

static struct row *row_get(struct rows *rs, kstr topic, int32_t partition)
{
	char name[256];
	if (!kstr_copy(topic, name, sizeof name))
		return NULL;
	for (size_t i = 0; i < rs->n; i++)
		if (rs->v[i].partition == partition && strcmp(rs->v[i].topic, name) == 0)
			return &rs->v[i];
	if (array_grow(&rs->v, &rs->cap, rs->n, sizeof *rs->v, 32) != 0)
		return NULL;
	struct row *r = &rs->v[rs->n++];
	memset(r, 0, sizeof *r);
	strcpy(r->topic, name);
	r->partition = partition;
	r->committed = -1;
	r->log_end = -1;
	r->member_id = r->host = r->client_id = KSTR("-");
	return r;
}

static int cmp_row(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = strcmp(a->topic, b->topic);
	return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* The consumer protocol's assignment: int16 version, [topic [partition]]. */
static void add_assignment(struct rows *rs, kbytes a, kstr member, kstr host, kstr client)
{
	struct kreader r;
	if (a.len <= 0)
		return;
	kreader_init(&r, a.ptr, (size_t)a.len);
	kreader_i16(&r);
	int32_t nt = kreader_i32(&r);
	for (int32_t t = 0; t < nt && !r.err; t++) {
		int16_t len = kreader_i16(&r);
		const uint8_t *name = len >= 0 ? kreader_take(&r, (size_t)len) : NULL;
		int32_t np = kreader_i32(&r);
		for (int32_t p = 0; p < np && !r.err; p++) {
			int32_t part = kreader_i32(&r);
			if (r.err || !name)
				break;
			struct row *row = row_get(rs, (kstr){ (const char *)name, len }, part);
			if (row) {
				row->member_id = member;
				row->host = host;
				row->client_id = client;
			}
		}
	}
}

/* Fill log_end for every row with ListOffsets (latest). */
static int fill_log_end(struct kclient *c, struct rows *rs)
{
	if (rs->n == 0)
		return 0;
	struct kmsg_list_offsets_req q;
	struct kmsg_list_offsets_resp r;
	kmsg_list_offsets_req_init(&q);
	kmsg_list_offsets_resp_init(&r);
	q.replica_id = -1;
	q.topics = arena_alloc(&c->arena, sizeof *q.topics * rs->n);
	if (!q.topics)
		return SL_ENOMEM;
	for (size_t i = 0; i < rs->n; i++) {
		struct kmsg_list_offsets_req_list_offsets_topic *t = &q.topics[q.topics_count++];
		kmsg_list_offsets_req_list_offsets_topic_init(t);
		t->name = KSTR(rs->v[i].topic);
		t->partitions = arena_alloc(&c->arena, sizeof *t->partitions);
		if (!t->partitions)
			return SL_ENOMEM;
		kmsg_list_offsets_req_list_offsets_partition_init(t->partitions);
		t->partitions_count = 1;
		t->partitions[0].partition_index = rs->v[i].partition;
		t->partitions[0].timestamp = -1;
	}
	int rc = KCLIENT_CALL(c, LIST_OFFSETS, list_offsets, V_LIST_OFFSETS, &q, &r);
	if (rc)
		return rc;
	for (int32_t t = 0; t < r.topics_count; t++)
		for (int32_t p = 0; p < r.topics[t].partitions_count; p++) {
			struct kmsg_list_offsets_resp_list_offsets_partition_response *pr =
				&r.topics[t].partitions[p];
			struct row *row = row_get(rs, r.topics[t].name, pr->partition_index);
			if (row && !pr->error_code)
				row->log_end = pr->offset;
		}
	return 0;
}

static int describe_group(struct kclient *c, const char *group)
{
	struct kmsg_describe_groups_req q;
	struct kmsg_describe_groups_resp r;
	kmsg_describe_groups_req_init(&q);
	kmsg_describe_groups_resp_init(&r);
	kstr id = KSTR(group);
	q.groups = &id;
	q.groups_count = 1;
	if (KCLIENT_CALL(c, DESCRIBE_GROUPS, describe_groups, V_DESCRIBE_GROUPS, &q, &r) != 0 || r.groups_count != 1)
		return 1;
	struct kmsg_describe_groups_resp_described_group *g = &r.groups[0];
	if (g->error_code) {
		fprintf(stderr, TOOL ": group %s: %s (%d)\n", group, kerr_name(g->error_code),
			g->error_code);
		return 1;
	}
	/* committed offsets, all topics */
	struct kmsg_offset_fetch_req fq;
	struct kmsg_offset_fetch_resp fr;
	kmsg_offset_fetch_req_init(&fq);
	kmsg_offset_fetch_resp_init(&fr);
	fq.group_id = id;
	fq.topics_count = -1;
	if (KCLIENT_CALL(c, OFFSET_FETCH, offset_fetch, V_OFFSET_FETCH, &fq, &fr) != 0)
		return 1;
	if (kstr_eq(g->group_state, "Dead") && fr.topics_count == 0) {
		fprintf(stderr, TOOL ": group %s does not exist\n", group);
		return 1;
	}
	printf("Group %s: state %.*s, protocol %.*s/%.*s, %d members\n", group,
	       g->group_state.len, g->group_state.ptr, g->protocol_type.len > 0 ? g->protocol_type.len : 0,
	       g->protocol_type.len > 0 ? g->protocol_type.ptr : "",
	       g->protocol_data.len > 0 ? g->protocol_data.len : 0,
	       g->protocol_data.len > 0 ? g->protocol_data.ptr : "", g->members_count);
	struct rows rs = { 0 };
	for (int32_t t = 0; t < fr.topics_count; t++)
		for (int32_t p = 0; p < fr.topics[t].partitions_count; p++) {
			struct kmsg_offset_fetch_resp_offset_fetch_response_partition *pp =
				&fr.topics[t].partitions[p];
			struct row *row = row_get(&rs, fr.topics[t].name, pp->partition_index);
			if (row)
				row->committed = pp->committed_offset;
		}
	for (int32_t i = 0; i < g->members_count; i++) {
		struct kmsg_describe_groups_resp_described_group_member *m = &g->members[i];
		if (kstr_eq(g->protocol_type, "consumer"))
			add_assignment(&rs, m->member_assignment, m->member_id, m->client_host,
				       m->client_id);
	}
	if (fill_log_end(c, &rs) != 0) {
		free(rs.v);
		return 1;
	}
	qsort(rs.v, rs.n, sizeof *rs.v, cmp_row);
	printf("\n%-24s %-24s %-9s %-14s %-14s %-6s %-44s %-16s %s\n", "GROUP", "TOPIC",
	       "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
	       "CLIENT-ID");
	for (size_t i = 0; i < rs.n; i++) {
		struct row *row = &rs.v[i];
		char cur[24] = "-", end[24] = "-", lag[24] = "-";
		if (row->committed >= 0)
			snprintf(cur, sizeof cur, "%" PRId64, row->committed);
		if (row->log_end >= 0)
			snprintf(end, sizeof end, "%" PRId64, row->log_end);
		if (row->committed >= 0 && row->log_end >= 0)
			snprintf(lag, sizeof lag, "%" PRId64, row->log_end - row->committed);
		printf("%-24s %-24s %-9d %-14s %-14s %-6s ", group, row->topic, row->partition, cur,
		       end, lag);
		kclient_print_kstr(row->member_id, 44);
		printf(" ");
		kclient_print_kstr(row->host, 16);
		printf(" ");
		kclient_print_kstr(row->client_id, 0);
		printf("\n");
	}
	if (g->members_count > 0) {
		printf("\n%-44s %-16s %-24s %s\n", "CONSUMER-ID", "HOST", "CLIENT-ID", "INSTANCE-ID");
		for (int32_t i = 0; i < g->members_count; i++) {
			struct kmsg_describe_groups_resp_described_group_member *m = &g->members[i];
			kclient_print_kstr(m->member_id, 44);
			printf(" ");
			kclient_print_kstr(m->client_host, 16);
			printf(" ");
			kclient_print_kstr(m->client_id, 24);
			printf(" ");
			kclient_print_kstr(m->group_instance_id.len >= 0 ? m->group_instance_id : KSTR("-"), 0);
			printf("\n");
		}
	}
	free(rs.v);
	return 0;
}

/* ---- delete ---- */

static int cmd_delete(struct kclient *c, int n, char **groups)
{
	struct kmsg_delete_groups_req q;
	struct kmsg_delete_groups_resp r;
	kmsg_delete_groups_req_init(&q);
	kmsg_delete_groups_resp_init(&r);
	q.groups_names = arena_alloc(&c->arena, sizeof *q.groups_names * (size_t)n);
	if (!q.groups_names)
		return 1;
	for (int i = 0; i < n; i++)
		q.groups_names[i] = KSTR(groups[i]);
	q.groups_names_count = n;
	if (KCLIENT_CALL(c, DELETE_GROUPS, delete_groups, V_DELETE_GROUPS, &q, &r) != 0)
		return 1;
	int status = 0;
	for (int32_t i = 0; i < r.results_count; i++) {
		struct kmsg_delete_groups_resp_deletable_group_result *x = &r.results[i];
		printf("group %.*s: ", x->group_id.len, x->group_id.ptr);
		if (x->error_code) {
			printf("not deleted: %s (%d)\n", kerr_name(x->error_code), x->error_code);
			status = 1;
		} else {
			printf("deleted\n");
		}
	}
	return status;
}

/* ---- reset-offsets ---- */

/* "2024-05-01T12:00:00[.123][Z]" as UTC, or milliseconds since the epoch. */
static int parse_datetime(const char *s, int64_t *ms)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (!errno && !*end && end != s) {
		*ms = n;
		return 0;
	}
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	int frac = 0;
	if (*p == '.') {
		p++;
		int digits = 0;
		while (*p >= '0' && *p <= '9') {
			if (digits++ < 3)
				frac = frac * 10 + (*p - '0');
			p++;
		}
		while (digits < 3) {
			frac *= 10;
			digits++;
		}
	}
	if (*p == 'Z')
		p++;
	if (*p)
		return -1;
	*ms = (int64_t)timegm(&tm) * 1000 + frac;
	return 0;
}

static int cmd_reset(struct kclient *c, const char *group, const char *topics, int64_t target,
		     bool execute)
{
	/* Only an inactive group may be reset (as kafka-consumer-groups). */
	struct kmsg_describe_groups_req dq;
	struct kmsg_describe_groups_resp dr;
	kmsg_describe_groups_req_init(&dq);
	kmsg_describe_groups_resp_init(&dr);
	kstr id = KSTR(group);
	dq.groups = &id;
	dq.groups_count = 1;
	if (KCLIENT_CALL(c, DESCRIBE_GROUPS, describe_groups, V_DESCRIBE_GROUPS, &dq, &dr) != 0 || dr.groups_count != 1)
		return 1;
	kstr st = dr.groups[0].group_state;
	if (!kstr_eq(st, "Empty") && !kstr_eq(st, "Dead")) {
		fprintf(stderr, TOOL ": group %s is %.*s: offsets can only be reset while "
			"the group is inactive (no members)\n", group, st.len, st.ptr);
		return 1;
	}
	/* the topics' partitions */
	struct kmsg_metadata_req mq;
	struct kmsg_metadata_resp mr;
	kmsg_metadata_req_init(&mq);
	kmsg_metadata_resp_init(&mr);
	/* A mistyped --topic must not create a topic. */
	mq.allow_auto_topic_creation = false;
	char *list = strdup(topics);
	if (!list)
		return 1;
	int nt = 1;
	for (const char *p = list; *p; p++)
		nt += *p == ',';
	mq.topics = arena_alloc(&c->arena, sizeof *mq.topics * (size_t)(nt + 1));
	mq.topics_count = 0;
	if (!mq.topics) {
		free(list);
		return 1;
	}
	char *save = NULL;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		kmsg_metadata_req_metadata_request_topic_init(&mq.topics[mq.topics_count]);
		mq.topics[mq.topics_count++].name = KSTR(t);
	}
	if (KCLIENT_CALL(c, METADATA, metadata, V_METADATA, &mq, &mr) != 0) {
		free(list);
		return 1;
	}
	/* the target offsets */
	struct kmsg_list_offsets_req lq;
	struct kmsg_list_offsets_resp lr;
	kmsg_list_offsets_req_init(&lq);
	kmsg_list_offsets_resp_init(&lr);
	lq.replica_id = -1;
	lq.topics = arena_alloc(&c->arena, sizeof *lq.topics * (size_t)(mr.topics_count + 1));
	if (!lq.topics) {
		free(list);
		return 1;
	}
	for (int32_t t = 0; t < mr.topics_count; t++) {
		struct kmsg_metadata_resp_metadata_response_topic *mt = &mr.topics[t];
		if (mt->error_code) {
			fprintf(stderr, TOOL ": topic %.*s: %s (%d)\n", mt->name.len,
				mt->name.ptr, kerr_name(mt->error_code), mt->error_code);
			free(list);
			return 1;
		}
		struct kmsg_list_offsets_req_list_offsets_topic *lt = &lq.topics[lq.topics_count++];
		kmsg_list_offsets_req_list_offsets_topic_init(lt);
		lt->name = mt->name;
		lt->partitions = arena_alloc(&c->arena, sizeof *lt->partitions * (size_t)(mt->partitions_count + 1));
		if (!lt->partitions) {
			free(list);
			return 1;
		}
		lt->partitions_count = mt->partitions_count;
		for (int32_t p = 0; p < mt->partitions_count; p++) {
			kmsg_list_offsets_req_list_offsets_partition_init(&lt->partitions[p]);
			lt->partitions[p].partition_index = mt->partitions[p].partition_index;
			lt->partitions[p].timestamp = target;
		}
	}
	if (KCLIENT_CALL(c, LIST_OFFSETS, list_offsets, V_LIST_OFFSETS, &lq, &lr) != 0) {
		free(list);
		return 1;
	}
	/* a timestamp past the end: the log end offset, as Kafka does */
	struct kmsg_list_offsets_resp latest;
	kmsg_list_offsets_resp_init(&latest);
	if (target >= 0) {
		for (int32_t t = 0; t < lq.topics_count; t++)
			for (int32_t p = 0; p < lq.topics[t].partitions_count; p++)
				lq.topics[t].partitions[p].timestamp = -1;
		if (KCLIENT_CALL(c, LIST_OFFSETS, list_offsets, V_LIST_OFFSETS, &lq, &latest) != 0) {
			free(list);
			return 1;
		}
	}
	struct kmsg_offset_commit_req cq;
	struct kmsg_offset_commit_resp cr;
	kmsg_offset_commit_req_init(&cq);
	kmsg_offset_commit_resp_init(&cr);
	cq.group_id = id;
	cq.generation_id_or_member_epoch = -1;
	cq.member_id = KSTR("");
	cq.topics = arena_alloc(&c->arena, sizeof *cq.topics * (size_t)(lr.topics_count + 1));
	if (!cq.topics) {
		free(list);
		return 1;
	}
	printf("%-24s %-24s %-9s %s\n", "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
	for (int32_t t = 0; t < lr.topics_count; t++) {
		struct kmsg_list_offsets_resp_list_offsets_topic_response *lt = &lr.topics[t];
		struct kmsg_offset_commit_req_offset_commit_request_topic *ct = &cq.topics[cq.topics_count++];
		kmsg_offset_commit_req_offset_commit_request_topic_init(ct);
		ct->name = lt->name;
		ct->partitions = arena_alloc(&c->arena, sizeof *ct->partitions * (size_t)(lt->partitions_count + 1));
		if (!ct->partitions) {
			free(list);
			return 1;
		}
		for (int32_t p = 0; p < lt->partitions_count; p++) {
			struct kmsg_list_offsets_resp_list_offsets_partition_response *lp = &lt->partitions[p];
			int64_t off = lp->offset;
			if (lp->error_code) {
				fprintf(stderr, TOOL ": %.*s-%d: %s (%d)\n", lt->name.len,
					lt->name.ptr, lp->partition_index, kerr_name(lp->error_code),
					lp->error_code);
				continue;
			}
			if (off < 0 && target >= 0 && t < latest.topics_count &&
			    p < latest.topics[t].partitions_count)
				off = latest.topics[t].partitions[p].offset;
			struct kmsg_offset_commit_req_offset_commit_request_partition *cp =
				&ct->partitions[ct->partitions_count++];
			kmsg_offset_commit_req_offset_commit_request_partition_init(cp);
			cp->partition_index = lp->partition_index;
			cp->committed_offset = off;
			cp->committed_metadata = KSTR("");
			printf("%-24s %-24.*s %-9d %" PRId64 "\n", group, lt->name.len, lt->name.ptr,
			       lp->partition_index, off);
		}
	}
	free(list);
	if (!execute) {
		printf("\n(dry run: add --execute to commit these offsets)\n");
		return 0;
	}
	if (KCLIENT_CALL(c, OFFSET_COMMIT, offset_commit, V_OFFSET_COMMIT, &cq, &cr) != 0)
		return 1;
	int status = 0;
	for (int32_t t = 0; t < cr.topics_count; t++)
		for (int32_t p = 0; p < cr.topics[t].partitions_count; p++) {
			int16_t e = cr.topics[t].partitions[p].error_code;
			if (e) {
				fprintf(stderr, TOOL ": commit %.*s-%d: %s (%d)\n",
					cr.topics[t].name.len, cr.topics[t].name.ptr,
					cr.topics[t].partitions[p].partition_index, kerr_name(e), e);
				status = 1;
			}
		}
	if (!status)
		printf("\noffsets of group %s reset\n", group);
	return status;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice groups [--bootstrap HOST:PORT] <command>\n\n"
		"commands:\n"
		"  list                              every group, its state and protocol type\n"
		"  describe GROUP...                 state, members, committed offsets and lag\n"
		"  delete GROUP...                   delete inactive groups and their offsets\n"
		"  reset-offsets GROUP --topic T[,T...]\n"
		"      (--to-earliest | --to-latest | --to-datetime YYYY-MM-DDTHH:MM:SS[.mmm] (UTC) or epoch ms)\n"
		"      [--execute]                   without it, only print the new offsets\n\n"
		KCLIENT_ARGS_USAGE);
}

/* The command line besides kclient_args'. */
struct groups_args {
	const char *cmd, *topics, *datetime;
	char *args[256];
	int nargs;
	bool earliest, latest, execute;
};

static int groups_arg(void *tool_args, int argc, char **argv, int *i)
{
	struct groups_args *o = tool_args;
	const char *a = argv[*i];
	if (!strcmp(a, "--topic")) {
		if (++*i >= argc)
			return -1;
		o->topics = argv[*i];
	} else if (!strcmp(a, "--to-datetime")) {
		if (++*i >= argc)
			return -1;
		o->datetime = argv[*i];
	} else if (!strcmp(a, "--to-earliest")) {
		o->earliest = true;
	} else if (!strcmp(a, "--to-latest")) {
		o->latest = true;
	} else if (!strcmp(a, "--execute")) {
		o->execute = true;
	} else if (a[0] == '-') {
		fprintf(stderr, TOOL ": unknown flag %s\n", a);
		return -1;
	} else if (!o->cmd) {
		o->cmd = a;
	} else if (o->nargs < (int)(sizeof o->args / sizeof o->args[0])) {
		o->args[o->nargs++] = argv[*i];
	}
	return 0;
}

int groups_cmd(int argc, char **argv)
{
	struct kclient_args ka;
	struct groups_args o = { 0 };
	int rc = kclient_args_parse(&ka, TOOL, usage, argc, argv, groups_arg, &o);
	if (rc >= 0)
		return rc;
	const char *cmd = o.cmd, *topics = o.topics, *datetime = o.datetime;
	char **args = o.args;
	int nargs = o.nargs;
	bool earliest = o.earliest, latest = o.latest;
	if (!cmd)
		goto bad;
	int64_t target = 0;
	if (!strcmp(cmd, "reset-offsets")) {
		if (nargs != 1 || !topics || earliest + latest + (datetime != NULL) != 1) {
			fprintf(stderr, TOOL ": reset-offsets needs one GROUP, --topic and "
				"exactly one of --to-earliest, --to-latest, --to-datetime\n");
			goto bad;
		}
		target = earliest ? -2 : latest ? -1 : 0;
		if (datetime && parse_datetime(datetime, &target) != 0) {
			fprintf(stderr, TOOL ": bad --to-datetime %s\n", datetime);
			goto bad;
		}
	} else if ((!strcmp(cmd, "describe") || !strcmp(cmd, "delete")) && nargs == 0) {
		fprintf(stderr, TOOL ": %s needs at least one GROUP\n", cmd);
		goto bad;
	} else if (strcmp(cmd, "list") && strcmp(cmd, "describe") && strcmp(cmd, "delete")) {
		fprintf(stderr, TOOL ": unknown command %s\n", cmd);
		goto bad;
	}
	struct kclient c;
	if (kclient_connect(&c, TOOL, CLIENT_ID, ka.bootstrap, &ka.sec) != 0)
		return 1;
	int status = 0;
	if (!strcmp(cmd, "list")) {
		status = cmd_list(&c);
	} else if (!strcmp(cmd, "describe")) {
		for (int i = 0; i < nargs; i++) {
			if (i)
				printf("\n");
			status |= describe_group(&c, args[i]);
		}
	} else if (!strcmp(cmd, "delete")) {
		status = cmd_delete(&c, nargs, args);
	} else {
		status = cmd_reset(&c, args[0], topics, target, o.execute);
	}
	kclient_close(&c);
	return status;
bad:
	usage(stderr);
	return 2;
}
