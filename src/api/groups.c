/* groups.c — the consumer group APIs: FindCoordinator, JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
 * DescribeGroups, DeleteGroups, OffsetDelete, and TxnOffsetCommit (the
 * group side; the transaction's check is txn/service.h's). Each takes
 * its decoded request (api.c), asks the group service (group/service.h:
 * the coordinator, the offsets write queue, what is stored) and encodes
 * the answer. JoinGroup and SyncGroup are answered when the service's waiter fires; OffsetCommit,
 * TxnOffsetCommit, DeleteGroups and OffsetDelete when their op is through
 * the store.
 * OffsetFetch reads the store on the loop.
 *
 * Each group and transactional id has one coordinator among the live
 * agents, placed by rendezvous hashing (cluster/placement.h) whatever the
 * client's zone. FindCoordinator names it; every group API answers
 * NOT_COORDINATOR for a group placed on another agent, so the client asks
 * FindCoordinator again (an agent alone coordinates every group). In
 * cluster mode the agent must also hold the group's lease
 * (group_svc_acquire): COORDINATOR_LOAD_IN_PROGRESS while it takes the
 * lease and loads the group, and an offsets write refused by the lease's
 * fence is answered NOT_COORDINATOR. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "api/api.h"
#include "api/handlers.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/strmap.h"
#include "cluster/placement.h"
#include "group/service.h"
#include "kmsg.h"
#include "proto/kerr.h"
#include "txn/service.h"

#ifndef KERR_GROUP_SUBSCRIBED_TO_TOPIC
#define KERR_GROUP_SUBSCRIBED_TO_TOPIC 86
#endif

/* A JoinGroup or SyncGroup waiting in the group service (in the
 * request's arena, so it lives until the request is answered). */
struct waiter {
	struct group_waiter w;      /* first */
	struct request *req;
};

struct commit_job {
	struct group_offsets_op op; /* first */
	struct request *req;
	struct meta_offset_commit *rows;
	struct kmsg_offset_commit_resp resp;
};

static kstr kstr_or_empty(const char *s)
{
	return s ? KSTR(s) : KSTR("");
}

static kstr kstr_or_null(const char *s)
{
	return s ? KSTR(s) : KSTR_NULL;
}

/* ---- answering waiting requests ---- */

static void respond_join(struct request *req, const struct coord_effect *f)
{
	struct kmsg_join_group_resp r;
	kmsg_join_group_resp_init(&r);
	r.error_code = f->error;
	r.generation_id = f->generation_id;
	int16_t v = req->api_version;
	/* v7+: nullable type and name; before, empty strings. */
	r.protocol_type = v >= 7 ? kstr_or_null(f->protocol_type) : kstr_or_empty(f->protocol_type);
	r.protocol_name = v >= 7 ? kstr_or_null(f->protocol_name) : kstr_or_empty(f->protocol_name);
	r.leader = kstr_or_empty(f->leader_id);
	r.member_id = kstr_or_empty(f->member_id);
	r.skip_assignment = f->skip_assignment;
	if (f->member_count > 0) {
		if (!REQ_ARRAY(req, f->member_count, r.members)) {
			request_fail_close(req);
			return;
		}
		r.members_count = f->member_count;
		for (int32_t i = 0; i < f->member_count; i++) {
			struct kmsg_join_group_resp_join_group_response_member *m = &r.members[i];
			kmsg_join_group_resp_join_group_response_member_init(m);
			m->member_id = KSTR(f->members[i].member_id);
			m->group_instance_id = kstr_or_null(f->members[i].group_instance_id);
			m->metadata = (kbytes){ f->members[i].metadata, f->members[i].metadata_len };
		}
	}
	kmsg_join_group_resp_encode(&req->resp, v, &r);
	request_respond(req);
}

static void respond_sync(struct request *req, const struct coord_effect *f)
{
	struct kmsg_sync_group_resp r;
	kmsg_sync_group_resp_init(&r);
	r.error_code = f->error;
	r.protocol_type = kstr_or_null(f->protocol_type);
	r.protocol_name = kstr_or_null(f->protocol_name);
	r.assignment = f->assignment ? (kbytes){ f->assignment, f->assignment_len }
				     : (kbytes){ (const uint8_t *)"", 0 };
	kmsg_sync_group_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

static void waiter_answer(struct group_waiter *gw, const struct coord_effect *f)
{
	struct request *req = ((struct waiter *)gw)->req;
	if (!f)
		request_fail_close(req);
	else if (f->kind == COORD_EFFECT_JOIN)
		respond_join(req, f);
	else
		respond_sync(req, f);
}

/* A waiter for req; NULL (the connection is then closed) when the arena
 * is full. */
static struct group_waiter *waiter_new(struct request *req)
{
	struct waiter *w;
	if (!REQ_ARRAY(req, 1, w)) {
		request_fail_close(req);
		return NULL;
	}
	w->req = req;
	w->w.answer = waiter_answer;
	return &w->w;
}

/* A coordinator is only there while the agent runs. */
static struct group_svc *svc(struct agent *a)
{
	return group_svc_running(a->groups) ? a->groups : NULL;
}

/* svc, after expiring the members whose session is over (Kafka expires
 * a member at its deadline; a reader must not see it a moment later). */
static struct group_svc *svc_expired(struct agent *a)
{
	struct group_svc *s = svc(a);
	if (s)
		group_svc_expire(s);
	return s;
}

/* Whether this agent coordinates group_id. */
static bool coordinates(struct agent *a, kstr group_id)
{
	return placement_is_coordinator(&a->placement, PLACEMENT_KEY_GROUP, group_id,
					a->cfg.node_id);
}

/* KERR_NONE when this agent coordinates group_id now: placement puts it
 * here and, in cluster mode, it holds the group's lease and has loaded
 * the group (group_svc_acquire: COORDINATOR_LOAD_IN_PROGRESS until then,
 * NOT_COORDINATOR while another agent holds it); else the error to
 * answer. */
static int16_t coordinator_error(struct agent *a, struct group_svc *s, kstr group_id)
{
	if (!s || !coordinates(a, group_id))
		return KERR_NOT_COORDINATOR;
	return group_svc_acquire(s, group_id);
}

/* A request parked while its group loads here: its handler runs again,
 * with the same decoded message (in the request's arena), once the
 * group's acquire settles. */
typedef void (*group_redo_fn)(struct agent *a, struct request *req, const void *m);

struct parked_request {
	struct group_park park; /* first */
	struct agent *a;
	struct request *req;
	const void *m;
	group_redo_fn redo;
};

static void parked_resume(struct group_park *p)
{
	struct parked_request *pr = (struct parked_request *)p;
	pr->redo(pr->a, pr->req, pr->m);
}

/* Returned instead of an error when the request was parked: the handler
 * returns without answering (it runs again later). */
#define KERR_PARKED INT16_MIN

/* coordinator_error, except that a request for a group this agent is
 * taking over (its lease being acquired, its offsets loaded) waits,
 * parked, for up to SL_GROUP_LOAD_WAIT_MS from its arrival instead of
 * being answered COORDINATOR_LOAD_IN_PROGRESS at once, as a Kafka broker
 * holds requests for a group it is loading: a client's first request to
 * the new coordinator just takes longer. Call it before the handler
 * changes anything, as it may run the handler again. */
static int16_t coordinator_check(struct agent *a, struct request *req, kstr group_id,
				 group_redo_fn redo, const void *m)
{
	struct group_svc *s = svc(a);
	int16_t err = coordinator_error(a, s, group_id);
	if (err != KERR_COORDINATOR_LOAD_IN_PROGRESS)
		return err;
	int64_t waited_ms = (int64_t)((uv_hrtime() - req->received_ns) / 1000000);
	struct parked_request *pr;
	if (waited_ms >= SL_GROUP_LOAD_WAIT_MS || !REQ_ARRAY(req, 1, pr))
		return err;
	pr->park.resume = parked_resume;
	pr->a = a;
	pr->req = req;
	pr->m = m;
	pr->redo = redo;
	if (group_svc_park(s, group_id, SL_GROUP_LOAD_WAIT_MS - waited_ms, &pr->park) != 0)
		return err;
	return KERR_PARKED;
}

/* A store error of an offsets write as the client sees it: SL_EBUSY is
 * the lease's fence (another agent coordinates the group now). */
static int16_t store_error(int rc)
{
	return rc == SL_EBUSY ? KERR_NOT_COORDINATOR : KERR_COORDINATOR_NOT_AVAILABLE;
}

/* ---- FindCoordinator ---- */

struct coordinator_answer {
	int16_t error;
	kstr message;
	int32_t node_id;
	kstr host;
	int32_t port;
};

/* The coordinator of a group (key type 0) or a transactional id (1):
 * rendezvous over every live agent (the agent named takes the id's lease
 * at its first request, agent/txn_coord.c); an agent alone coordinates
 * every id. The coordinator is named by its endpoint
 * of the request's listener; one without that listener answers
 * COORDINATOR_NOT_AVAILABLE, as Kafka does, rather than another agent
 * (which would answer NOT_COORDINATOR: a group has one coordinator
 * whatever listener its members use). The host points into the placement
 * view, unchanged until the response is encoded. */
static struct coordinator_answer coordinator_for(struct agent *a, const char *listener,
						 int8_t key_type, kstr key)
{
	struct coordinator_answer c = { KERR_NONE, KSTR_NULL, -1, KSTR(""), -1 };
	if (key_type != PLACEMENT_KEY_GROUP && key_type != PLACEMENT_KEY_TRANSACTION) {
		c.error = KERR_INVALID_REQUEST;
		c.message = KSTR("unknown key type");
		return c;
	}
	const struct placement_agent *ag =
		placement_coordinator(&a->placement, (enum placement_key_type)key_type, key);
	if (!ag) {
		c.error = KERR_COORDINATOR_NOT_AVAILABLE;
		c.message = KSTR("no live agent");
		return c;
	}
	const struct placement_endpoint *e = placement_endpoint(ag, listener);
	if (!e) {
		c.error = KERR_COORDINATOR_NOT_AVAILABLE;
		c.message = KSTR("the coordinator has no endpoint for this listener");
		return c;
	}
	c.node_id = ag->node_id;
	c.host = KSTR(e->host);
	c.port = e->port;
	return c;
}

/* coordinator_for, after Kafka's check: DESCRIBE on the group, or on
 * the transactional id (key type 1). */
static struct coordinator_answer coordinator_allowed(struct agent *a, struct request *req,
						     int8_t key_type, kstr key)
{
	bool txn = key_type == 1;
	if (!api_allowed_kstr(a, req, txn ? ACL_RESOURCE_TRANSACTIONAL_ID : ACL_RESOURCE_GROUP, key,
			      ACL_OP_DESCRIBE))
		return (struct coordinator_answer){
			.error = txn ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
				     : KERR_GROUP_AUTHORIZATION_FAILED,
			.message = KSTR_NULL, .node_id = -1, .host = KSTR(""), .port = -1 };
	return coordinator_for(a, agent_listener_name(a, req), key_type, key);
}

void handle_find_coordinator(struct agent *a, struct request *req, const struct kmsg_find_coordinator_req *m)
{
	struct kmsg_find_coordinator_resp r;
	kmsg_find_coordinator_resp_init(&r);
	if (req->api_version < 4) {
		struct coordinator_answer c = coordinator_allowed(a, req, m->key_type, m->key);
		r.error_code = c.error;
		r.error_message = c.message;
		r.node_id = c.node_id;
		r.host = c.host;
		r.port = c.port;
	} else {
		int32_t n = m->coordinator_keys_count > 0 ? m->coordinator_keys_count : 0;
		if (!REQ_ARRAY(req, n, r.coordinators)) {
			request_fail_close(req);
			return;
		}
		r.coordinators_count = n;
		for (int32_t i = 0; i < n; i++) {
			struct kmsg_find_coordinator_resp_coordinator *rc = &r.coordinators[i];
			kmsg_find_coordinator_resp_coordinator_init(rc);
			struct coordinator_answer c =
				coordinator_allowed(a, req, m->key_type, m->coordinator_keys[i]);
			rc->key = m->coordinator_keys[i];
			rc->error_code = c.error;
			rc->error_message = c.message;
			rc->node_id = c.node_id;
			rc->host = c.host;
			rc->port = c.port;
		}
	}
	kmsg_find_coordinator_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* ---- JoinGroup, SyncGroup, Heartbeat, LeaveGroup ---- */

/* Kafka's client host: "/" and the peer's address without the port. */
static kstr client_host(struct request *req)
{
	const char *peer = request_peer(req);
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
	char *p = arena_alloc(&req->arena, n + 2);
	if (!p)
		return KSTR("");
	p[0] = '/';
	memcpy(p + 1, peer, n);
	p[n + 1] = 0;
	return (kstr){ p, (int32_t)(n + 1) };
}

static void join_answer_now(struct request *req, int16_t error)
{
	struct coord_effect f = { .req = req, .kind = COORD_EFFECT_JOIN, .error = error,
				  .generation_id = -1 };
	respond_join(req, &f);
}

static void redo_join_group(struct agent *a, struct request *req, const void *m)
{
	handle_join_group(a, req, m);
}

void handle_join_group(struct agent *a, struct request *req, const struct kmsg_join_group_req *m)
{
	struct group_svc *s = svc(a);
	int16_t err = !api_allowed_group(a, req, m->group_id, ACL_OP_READ) ? KERR_GROUP_AUTHORIZATION_FAILED
			    : coordinator_check(a, req, m->group_id, redo_join_group, m);
	if (err == KERR_PARKED)
		return;
	if (err) {
		join_answer_now(req, err);
		return;
	}
	struct coord_join_protocol *p = NULL;
	int32_t n = m->protocols_count > 0 ? m->protocols_count : 0;
	if (n > COORD_PROTOCOLS_MAX) {
		join_answer_now(req, KERR_INVALID_REQUEST);
		return;
	}
	if (!REQ_ARRAY(req, n, p)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		p[i].name = m->protocols[i].name;
		p[i].metadata = m->protocols[i].metadata;
	}
	struct coord_join_args args = {
		.group_id = m->group_id,
		.member_id = m->member_id,
		.group_instance_id = m->group_instance_id,
		.protocol_type = m->protocol_type,
		.client_id = req->client_id,
		.client_host = client_host(req),
		.session_timeout_ms = m->session_timeout_ms,
		.rebalance_timeout_ms = m->rebalance_timeout_ms,
		.api_version = req->api_version,
		.protocol_count = n,
		.protocols = p,
	};
	struct group_waiter *w = waiter_new(req);
	if (!w)
		return;
	group_svc_join(s, &args, w);
}

static void redo_sync_group(struct agent *a, struct request *req, const void *m)
{
	handle_sync_group(a, req, m);
}

void handle_sync_group(struct agent *a, struct request *req, const struct kmsg_sync_group_req *m)
{
	struct group_svc *s = svc(a);
	int16_t err = !api_allowed_group(a, req, m->group_id, ACL_OP_READ) ? KERR_GROUP_AUTHORIZATION_FAILED
			    : coordinator_check(a, req, m->group_id, redo_sync_group, m);
	if (err == KERR_PARKED)
		return;
	if (err) {
		struct coord_effect f = { .req = req, .kind = COORD_EFFECT_SYNC, .error = err };
		respond_sync(req, &f);
		return;
	}
	struct coord_sync_assignment *as = NULL;
	int32_t n = m->assignments_count > 0 ? m->assignments_count : 0;
	if (!REQ_ARRAY(req, n, as)) {
		request_fail_close(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		as[i].member_id = m->assignments[i].member_id;
		as[i].assignment = m->assignments[i].assignment;
	}
	struct coord_sync_args args = {
		.group_id = m->group_id,
		.generation_id = m->generation_id,
		.member_id = m->member_id,
		.group_instance_id = m->group_instance_id,
		.protocol_type = req->api_version >= 5 ? m->protocol_type : KSTR_NULL,
		.protocol_name = req->api_version >= 5 ? m->protocol_name : KSTR_NULL,
		.assignment_count = n,
		.assignments = as,
	};
	struct group_waiter *w = waiter_new(req);
	if (!w)
		return;
	group_svc_sync(s, &args, w);
}

void handle_heartbeat(struct agent *a, struct request *req, const struct kmsg_heartbeat_req *m)
{
	struct group_svc *s = svc(a);
	struct kmsg_heartbeat_resp r;
	kmsg_heartbeat_resp_init(&r);
	r.error_code = !api_allowed_group(a, req, m->group_id, ACL_OP_READ) ? KERR_GROUP_AUTHORIZATION_FAILED
			    : coordinator_error(a, s, m->group_id);
	/* As Kafka: a heartbeat while the group loads is answered "none";
	 * the member learns its fate from the loaded group next time. */
	if (r.error_code == KERR_COORDINATOR_LOAD_IN_PROGRESS)
		r.error_code = KERR_NONE;
	else if (!r.error_code)
		r.error_code = group_svc_heartbeat(s, m->group_id, m->generation_id, m->member_id,
						   m->group_instance_id);
	kmsg_heartbeat_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

static void redo_leave_group(struct agent *a, struct request *req, const void *m)
{
	handle_leave_group(a, req, m);
}

void handle_leave_group(struct agent *a, struct request *req, const struct kmsg_leave_group_req *m)
{
	struct group_svc *s = svc(a);
	struct kmsg_leave_group_resp r;
	kmsg_leave_group_resp_init(&r);
	int16_t err = !api_allowed_group(a, req, m->group_id, ACL_OP_READ) ? KERR_GROUP_AUTHORIZATION_FAILED
			    : coordinator_check(a, req, m->group_id, redo_leave_group, m);
	if (err == KERR_PARKED)
		return;
	if (err) {
		r.error_code = err;
	} else if (req->api_version < 3) {
		r.error_code = group_svc_leave(s, m->group_id, m->member_id, KSTR_NULL);
	} else {
		int32_t n = m->members_count > 0 ? m->members_count : 0;
		if (!REQ_ARRAY(req, n, r.members)) {
			request_fail_close(req);
			return;
		}
		r.members_count = n;
		for (int32_t i = 0; i < n; i++) {
			struct kmsg_leave_group_resp_member_response *mr = &r.members[i];
			kmsg_leave_group_resp_member_response_init(mr);
			mr->member_id = m->members[i].member_id;
			mr->group_instance_id = m->members[i].group_instance_id;
			mr->error_code = group_svc_leave(s, m->group_id, m->members[i].member_id,
							 m->members[i].group_instance_id);
			if (mr->error_code == KERR_COORDINATOR_NOT_AVAILABLE)
				r.error_code = mr->error_code;
		}
	}
	kmsg_leave_group_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* ---- OffsetCommit ---- */

static bool has_nul(kstr s)
{
	return s.len > 0 && memchr(s.ptr, 0, (size_t)s.len) != NULL;
}

/* One partition of an OffsetCommit or TxnOffsetCommit, after the checks
 * that apply to the whole request: its error, or KERR_NONE with row
 * filled (group, ts's id, the offset, its leader epoch and metadata). */
static int16_t commit_row(struct request *req, bool may_read, const struct topic_state *ts,
			  int32_t partition, int64_t offset, int32_t leader_epoch, kstr metadata,
			  char *group, struct meta_offset_commit *row)
{
	if (!may_read)
		return KERR_TOPIC_AUTHORIZATION_FAILED;
	if (!ts || partition < 0 || partition >= ts->partition_count)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	if (metadata.len > META_OFFSET_METADATA_BYTES_MAX)
		return KERR_OFFSET_METADATA_TOO_LARGE;
	if (has_nul(metadata))
		return KERR_INVALID_REQUEST;
	row->group_id = group;
	row->tid = ts->tid;
	row->partition = partition;
	row->committed_offset = offset;
	row->leader_epoch = leader_epoch;
	row->metadata = api_cstr_dup(req, metadata);
	return KERR_NONE;
}

static void commit_respond(struct commit_job *j, int rc)
{
	if (rc) {
		/* Nothing of the transaction was stored. */
		for (int32_t t = 0; t < j->resp.topics_count; t++)
			for (int32_t p = 0; p < j->resp.topics[t].partitions_count; p++) {
				int16_t *err = &j->resp.topics[t].partitions[p].error_code;
				if (*err == KERR_NONE)
					*err = store_error(rc);
			}
	}
	kmsg_offset_commit_resp_encode(&j->req->resp, j->req->api_version, &j->resp);
	request_respond(j->req);
}

static void commit_done(struct group_svc *s, struct group_offsets_op *op)
{
	commit_respond((struct commit_job *)op, op->rc);
}

static void redo_offset_commit(struct agent *a, struct request *req, const void *m)
{
	handle_offset_commit(a, req, m);
}

void handle_offset_commit(struct agent *a, struct request *req, const struct kmsg_offset_commit_req *m)
{
	struct group_svc *s = svc(a);
	int16_t check = !api_allowed_group(a, req, m->group_id, ACL_OP_READ) ? KERR_GROUP_AUTHORIZATION_FAILED
			    : coordinator_check(a, req, m->group_id, redo_offset_commit, m);
	if (check == KERR_PARKED)
		return;
	struct commit_job *j;
	if (!REQ_ARRAY(req, 1, j)) {
		request_fail_close(req);
		return;
	}
	j->req = req;
	kmsg_offset_commit_resp_init(&j->resp);
	if (!check)
		check = group_svc_commit_check(s, m->group_id, m->generation_id_or_member_epoch,
						    m->member_id, m->group_instance_id, req->api_version);
	char *group = api_cstr_dup(req, m->group_id);
	size_t total = 0;
	int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
	for (int32_t t = 0; t < nt; t++)
		total += m->topics[t].partitions_count > 0 ? (size_t)m->topics[t].partitions_count : 0;
	if (!group || !REQ_ARRAY(req, nt, j->resp.topics) || !REQ_ARRAY(req, total, j->rows)) {
		request_fail_close(req);
		return;
	}
	j->resp.topics_count = nt;
	int64_t wall = clock_wall_ms();
	for (int32_t t = 0; t < nt; t++) {
		struct kmsg_offset_commit_req_offset_commit_request_topic *qt = &m->topics[t];
		struct kmsg_offset_commit_resp_offset_commit_response_topic *rt = &j->resp.topics[t];
		kmsg_offset_commit_resp_offset_commit_response_topic_init(rt);
		rt->name = qt->name;
		int32_t np = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, np, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		rt->partitions_count = np;
		struct topic_state *ts = check ? NULL : agent_topic(a, qt->name);
		bool may_read = api_allowed_topic(a, req, qt->name, ACL_OP_READ);
		for (int32_t p = 0; p < np; p++) {
			struct kmsg_offset_commit_req_offset_commit_request_partition *qp = &qt->partitions[p];
			struct kmsg_offset_commit_resp_offset_commit_response_partition *rp = &rt->partitions[p];
			kmsg_offset_commit_resp_offset_commit_response_partition_init(rp);
			rp->partition_index = qp->partition_index;
			if (check) {
				rp->error_code = check;
				continue;
			}
			struct meta_offset_commit *row = &j->rows[j->op.row_count];
			rp->error_code = commit_row(req, may_read, ts, qp->partition_index,
						    qp->committed_offset, qp->committed_leader_epoch,
						    qp->committed_metadata, group, row);
			if (rp->error_code)
				continue;
			j->op.row_count++;
			/* v2-4's retention_time_ms is ignored, as Kafka 3.x does:
			 * offsets expire by --offsets-retention-minutes once the
			 * group is empty (KIP-211). */
			row->commit_timestamp_ms = req->api_version == 1 && qp->commit_timestamp >= 0
						   ? qp->commit_timestamp : wall;
		}
	}
	if (j->op.row_count == 0) {
		commit_respond(j, 0);
		return;
	}
	j->op.group_id = group;
	j->op.rows = j->rows;
	j->op.done = commit_done;
	if (group_svc_offsets_commit(s, &j->op) != 0)
		commit_respond(j, SL_ENOMEM);
}

/* ---- TxnOffsetCommit ---- */

struct txn_commit_job {
	struct group_offsets_op op; /* first */
	struct request *req;
	struct meta_offset_commit *rows;
	struct kmsg_txn_offset_commit_resp resp;
};

static void txn_commit_respond(struct txn_commit_job *j, int16_t err)
{
	for (int32_t t = 0; t < j->resp.topics_count; t++)
		for (int32_t p = 0; p < j->resp.topics[t].partitions_count; p++) {
			int16_t *e = &j->resp.topics[t].partitions[p].error_code;
			if (*e == KERR_NONE)
				*e = err;
		}
	kmsg_txn_offset_commit_resp_encode(&j->req->resp, j->req->api_version, &j->resp);
	request_respond(j->req);
}

static void txn_commit_done(struct group_svc *s, struct group_offsets_op *op)
{
	struct txn_commit_job *j = (struct txn_commit_job *)op;
	int16_t err = KERR_NONE;
	(void)s;
	/* The store's check is the one that counts: the transaction moved
	 * between the coordinator's check and the store's, or (in a cluster)
	 * its coordinator is another agent and this was the only check.
	 * Answered as the coordinator's (txn_offset_commit) would be. */
	switch (op->rc) {
	case 0:
		break;
	case SL_ETXNUNKNOWN:
		err = KERR_INVALID_PRODUCER_ID_MAPPING;
		break;
	case SL_EFENCED:
		err = KERR_INVALID_PRODUCER_EPOCH;
		break;
	case SL_EBUSY:
		err = j->req->api_version >= 4 ? KERR_TRANSACTION_ABORTABLE : KERR_INVALID_TXN_STATE;
		break;
	default: /* SL_ETXNBUSY (completing: retriable), a store failure */
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	}
	txn_commit_respond(j, err);
}

static void redo_txn_offset_commit(struct agent *a, struct request *req, const void *m)
{
	handle_txn_offset_commit(a, req, m);
}

/* Kafka 3.9's order: the transactional id (WRITE) and the group (READ)
 * for the whole request, each topic's READ and existence per partition,
 * the group coordinator's status, the transaction (the partitions'
 * offsets are pending in it: AddOffsetsToTxn done, same producer and
 * epoch, Ongoing), the member (coord_txn_commit_check: transactional
 * commits without member information are allowed into a group with
 * members, as Kafka's validateOffsetCommit exempts them). */
void handle_txn_offset_commit(struct agent *a, struct request *req,
			      const struct kmsg_txn_offset_commit_req *m)
{
	struct group_svc *s = svc(a);
	int16_t check = KERR_NONE;
	if (!api_allowed_kstr(a, req, ACL_RESOURCE_TRANSACTIONAL_ID, m->transactional_id,
			      ACL_OP_WRITE))
		check = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	else if (!api_allowed_group(a, req, m->group_id, ACL_OP_READ))
		check = KERR_GROUP_AUTHORIZATION_FAILED;
	else
		check = coordinator_check(a, req, m->group_id, redo_txn_offset_commit, m);
	if (check == KERR_PARKED)
		return;
	if (check == KERR_COORDINATOR_LOAD_IN_PROGRESS && req->api_version < 2)
		check = KERR_COORDINATOR_NOT_AVAILABLE;
	struct txn_commit_job *j;
	if (!REQ_ARRAY(req, 1, j)) {
		request_fail_close(req);
		return;
	}
	j->req = req;
	kmsg_txn_offset_commit_resp_init(&j->resp);
	char *group = api_cstr_dup(req, m->group_id);
	char *txn_id = api_cstr_dup(req, m->transactional_id);
	size_t total = 0;
	int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
	for (int32_t t = 0; t < nt; t++)
		total += m->topics[t].partitions_count > 0 ? (size_t)m->topics[t].partitions_count : 0;
	struct txn_tp *tps;
	if (!group || !txn_id || !REQ_ARRAY(req, nt, j->resp.topics) ||
	    !REQ_ARRAY(req, total, j->rows) || !REQ_ARRAY(req, total, tps)) {
		request_fail_close(req);
		return;
	}
	j->resp.topics_count = nt;
	int64_t wall = clock_wall_ms();
	for (int32_t t = 0; t < nt; t++) {
		struct kmsg_txn_offset_commit_req_txn_offset_commit_request_topic *qt = &m->topics[t];
		struct kmsg_txn_offset_commit_resp_txn_offset_commit_response_topic *rt =
			&j->resp.topics[t];
		kmsg_txn_offset_commit_resp_txn_offset_commit_response_topic_init(rt);
		rt->name = qt->name;
		int32_t np = qt->partitions_count > 0 ? qt->partitions_count : 0;
		if (!REQ_ARRAY(req, np, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		rt->partitions_count = np;
		bool may_read = !check && api_allowed_topic(a, req, qt->name, ACL_OP_READ);
		struct topic_state *ts = may_read ? agent_topic(a, qt->name) : NULL;
		for (int32_t p = 0; p < np; p++) {
			struct kmsg_txn_offset_commit_req_txn_offset_commit_request_partition *qp =
				&qt->partitions[p];
			struct kmsg_txn_offset_commit_resp_txn_offset_commit_response_partition *rp =
				&rt->partitions[p];
			kmsg_txn_offset_commit_resp_txn_offset_commit_response_partition_init(rp);
			rp->partition_index = qp->partition_index;
			size_t k = j->op.row_count;
			rp->error_code = check ? check
					       : commit_row(req, may_read, ts, qp->partition_index,
							    qp->committed_offset,
							    qp->committed_leader_epoch,
							    qp->committed_metadata, group, &j->rows[k]);
			if (rp->error_code)
				continue;
			j->rows[k].commit_timestamp_ms = wall;
			tps[k] = (struct txn_tp){ ts->tid, qp->partition_index };
			j->op.row_count++;
		}
	}
	if (j->op.row_count == 0) {
		txn_commit_respond(j, KERR_NONE);
		return;
	}
	/* The transaction, then the member. */
	int16_t err = KERR_COORDINATOR_NOT_AVAILABLE;
	if (a->txns) {
		struct txn_offset_commit_args args = {
			m->transactional_id, m->producer_id, m->producer_epoch, m->group_id,
			tps, (int32_t)j->op.row_count, req->api_version
		};
		/* In a cluster the transaction's coordinator may be another
		 * agent: the store's check (meta_txn_offset_commit: this
		 * producer id and epoch, Ongoing, the group added) is then the
		 * only one, with the coordinator's codes. */
		bool elsewhere = a->txn_owner &&
				 !txn_svc_adopted(a->txns, m->transactional_id, NULL);
		err = elsewhere ? KERR_NONE : txn_svc_offset_commit(a->txns, &args);
	}
	if (!err)
		err = group_svc_txn_commit_check(s, m->group_id, m->generation_id, m->member_id,
						 m->group_instance_id);
	if (err) {
		txn_commit_respond(j, err);
		return;
	}
	j->op.group_id = group;
	j->op.rows = j->rows;
	j->op.transactional_id = txn_id;
	j->op.producer_id = m->producer_id;
	j->op.producer_epoch = m->producer_epoch;
	j->op.done = txn_commit_done;
	if (group_svc_txn_offsets_commit(s, &j->op) != 0)
		txn_commit_respond(j, KERR_COORDINATOR_NOT_AVAILABLE);
}

/* ---- OffsetFetch ---- */

/* A group's committed offsets, sorted by (tid, partition). */
struct fetched {
	struct meta_committed_offset *o;
	size_t n;
	int rc;
};

static const struct meta_committed_offset *fetched_find(const struct fetched *f, int64_t tid,
						       int32_t partition)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct meta_committed_offset *x = &f->o[mid];
		if (x->tid == tid && x->partition == partition)
			return x;
		if (x->tid < tid || (x->tid == tid && x->partition < partition))
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* One partition's answer, in the shape shared by every version. */
struct part_answer {
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	kstr metadata;
	int16_t error;
};

struct topic_answer {
	kstr name;
	int32_t count;
	struct part_answer *parts;
};

struct group_answer {
	int16_t error;
	int32_t count;
	struct topic_answer *topics;
};

static void answer_part(struct request *req, struct part_answer *pa, const struct fetched *f,
			struct topic_state *t, int32_t partition)
{
	const struct meta_committed_offset *o = t ? fetched_find(f, t->tid, partition) : NULL;
	pa->partition = partition;
	pa->offset = o ? o->committed_offset : -1;
	pa->leader_epoch = o ? o->leader_epoch : -1;
	pa->metadata = o && o->metadata ? api_kstr_dup(req, o->metadata) : KSTR("");
	pa->error = KERR_NONE;
}

struct tid_name {
	int64_t tid;
	struct topic_state *t;
};

/* One group of an OffsetFetch: what was asked, the error found on the
 * loop before the store is read, and the offsets the pool job read. */
struct fetch_group {
	kstr group_id;
	int32_t topics_count; /* < 0: every topic the group has offsets for */
	kstr *names;
	int32_t *part_counts;
	int32_t **parts;
	int16_t error;
	char key[COORD_GROUP_ID_BYTES_MAX + 1];
	struct fetched f;
	/* require_stable in a cluster: the partitions with an offset pending
	 * in a transaction, read from the store (malloc'd) when pending_read */
	bool pending_read;
	struct txn_tp *pending;
	size_t pending_n;
	int pending_rc;
};

/* The errors that need no store read (checked on the loop, in Kafka's
 * order: authorization, the id, then coordination). */
static void redo_offset_fetch(struct agent *a, struct request *req, const void *m)
{
	handle_offset_fetch(a, req, m);
}

static int16_t fetch_group_check(struct agent *a, struct request *req, struct fetch_group *fg,
				 const struct kmsg_offset_fetch_req *m)
{
	if (!api_allowed_group(a, req, fg->group_id, ACL_OP_DESCRIBE))
		return KERR_GROUP_AUTHORIZATION_FAILED;
	if (has_nul(fg->group_id) || !kstr_copy(fg->group_id, fg->key, sizeof fg->key))
		return KERR_INVALID_GROUP_ID;
	return coordinator_check(a, req, fg->group_id, redo_offset_fetch, m);
}

/* Answer one group from its check and its store read: the listed topics,
 * or (topics_count < 0) every topic it has offsets for. */
static int answer_group(struct agent *a, struct request *req, const struct fetch_group *fg,
			struct group_answer *out)
{
	int32_t topics_count = fg->topics_count;
	const kstr *names = fg->names;
	const int32_t *part_counts = fg->part_counts;
	int32_t *const *parts = fg->parts;
	const struct fetched f = fg->f;
	memset(out, 0, sizeof *out);
	out->error = fg->error;
	if (!out->error && f.rc)
		out->error = KERR_COORDINATOR_NOT_AVAILABLE;
	if (out->error) {
		/* OffsetFetch v0-1 has no group-level error field: the error
		 * must ride on every listed partition, or the client would
		 * take "nothing committed" and reset its position. */
		if (topics_count < 0 || !REQ_ARRAY(req, topics_count, out->topics))
			return 0;
		out->count = topics_count;
		for (int32_t i = 0; i < topics_count; i++) {
			struct topic_answer *ta = &out->topics[i];
			ta->name = names[i];
			ta->count = part_counts[i] > 0 ? part_counts[i] : 0;
			if (!REQ_ARRAY(req, ta->count, ta->parts)) {
				ta->count = 0;
				continue;
			}
			for (int32_t p = 0; p < ta->count; p++) {
				answer_part(req, &ta->parts[p], &f, NULL, parts[i][p]);
				ta->parts[p].error = out->error;
			}
		}
		return 0;
	}
	if (topics_count >= 0) {
		if (!REQ_ARRAY(req, topics_count, out->topics))
			return SL_ENOMEM;
		out->count = topics_count;
		for (int32_t i = 0; i < topics_count; i++) {
			struct topic_answer *ta = &out->topics[i];
			struct topic_state *t = agent_topic(a, names[i]);
			ta->name = names[i];
			ta->count = part_counts[i] > 0 ? part_counts[i] : 0;
			if (!REQ_ARRAY(req, ta->count, ta->parts))
				return SL_ENOMEM;
			/* Kafka: offsets of a topic the principal may not
			 * describe are refused per partition, offset -1. */
			bool may = api_allowed_topic(a, req, names[i], ACL_OP_DESCRIBE);
			for (int32_t p = 0; p < ta->count; p++) {
				answer_part(req, &ta->parts[p], &f, may ? t : NULL, parts[i][p]);
				if (!may)
					ta->parts[p].error = KERR_TOPIC_AUTHORIZATION_FAILED;
			}
		}
		return 0;
	}
	/* All topics: rows are sorted by tid; one topic per run of rows. */
	int32_t runs = 0;
	for (size_t i = 0; i < f.n; i++)
		if (i == 0 || f.o[i].tid != f.o[i - 1].tid)
			runs++;
	if (!REQ_ARRAY(req, runs, out->topics))
		return SL_ENOMEM;
	for (size_t i = 0; i < f.n;) {
		size_t e = i;
		while (e < f.n && f.o[e].tid == f.o[i].tid)
			e++;
		struct topic_state *t = agent_topic_by_tid(a, f.o[i].tid);
		/* Kafka leaves out the topics the principal may not describe. */
		if (t && api_allowed(a, req, ACL_RESOURCE_TOPIC, t->name, ACL_OP_DESCRIBE)) {
			struct topic_answer *ta = &out->topics[out->count++];
			ta->name = api_kstr_dup(req, t->name);
			ta->count = (int32_t)(e - i);
			if (!REQ_ARRAY(req, ta->count, ta->parts))
				return SL_ENOMEM;
			for (size_t k = i; k < e; k++)
				answer_part(req, &ta->parts[k - i], &f, t, f.o[k].partition);
		}
		i = e;
	}
	return 0;
}

/* An OffsetFetch whose groups' offsets are read in one pool job on the
 * store's read connection (never a round trip on the loop). */
struct offset_fetch_ctx {
	struct agent *a;
	struct request *req;
	const struct kmsg_offset_fetch_req *m;
	int32_t ngroups;
	struct fetch_group *groups;
	uv_work_t work;
};

/* [pool: read] */
static void offset_fetch_work(uv_work_t *w)
{
	struct offset_fetch_ctx *x = w->data;
	/* The transactions' coordinators may be other agents: their pending
	 * offsets are in the store (§7.1 of docs/transactions.md). */
	bool pending = x->m->require_stable && x->a->txn_owner;
	for (int32_t g = 0; g < x->ngroups; g++) {
		struct fetch_group *fg = &x->groups[g];
		if (fg->error)
			continue;
		fg->f.rc = meta_offset_fetch(x->a->meta, fg->key, &fg->f.o, &fg->f.n);
		if (pending && fg->topics_count >= 0) {
			fg->pending_read = true;
			fg->pending_rc = meta_txn_offsets_pending(x->a->meta, fg->key, &fg->pending,
								  &fg->pending_n);
		}
	}
}

static void offset_fetch_answer(struct offset_fetch_ctx *x);

/* The store's rows (malloc'd); x itself is in the request's arena. */
static void offset_fetch_free(struct offset_fetch_ctx *x)
{
	for (int32_t g = 0; g < x->ngroups; g++) {
		meta_committed_offsets_free(x->groups[g].f.o, x->groups[g].f.n);
		free(x->groups[g].pending);
	}
}

static void offset_fetch_done(uv_work_t *w, int status)
{
	struct offset_fetch_ctx *x = w->data;
	for (int32_t g = 0; status && g < x->ngroups; g++)
		x->groups[g].f.rc = SL_EIO;
	offset_fetch_answer(x);
}

void handle_offset_fetch(struct agent *a, struct request *req, const struct kmsg_offset_fetch_req *m)
{
	struct offset_fetch_ctx *x;
	if (!REQ_ARRAY(req, 1, x))
		goto out_fail;
	x->a = a;
	x->req = req;
	x->m = m;
	x->ngroups = req->api_version >= 8 ? (m->groups_count > 0 ? m->groups_count : 0) : 1;
	if (!REQ_ARRAY(req, x->ngroups, x->groups))
		goto out_fail;
	bool read = false;
	for (int32_t g = 0; g < x->ngroups; g++) {
		struct fetch_group *fg = &x->groups[g];
		int32_t tc;
		if (req->api_version >= 8) {
			fg->group_id = m->groups[g].group_id;
			tc = m->groups[g].topics_count;
		} else {
			fg->group_id = m->group_id;
			/* v0-1 have no null list: an empty one is just empty. */
			tc = m->topics_count;
		}
		fg->topics_count = tc;
		int32_t n = tc > 0 ? tc : 0;
		if (!REQ_ARRAY(req, n, fg->names) || !REQ_ARRAY(req, n, fg->part_counts) ||
		    !REQ_ARRAY(req, n, fg->parts))
			goto out_fail;
		for (int32_t i = 0; i < n; i++) {
			if (req->api_version >= 8) {
				fg->names[i] = m->groups[g].topics[i].name;
				fg->part_counts[i] = m->groups[g].topics[i].partition_indexes_count;
				fg->parts[i] = m->groups[g].topics[i].partition_indexes;
			} else {
				fg->names[i] = m->topics[i].name;
				fg->part_counts[i] = m->topics[i].partition_indexes_count;
				fg->parts[i] = m->topics[i].partition_indexes;
			}
		}
		fg->error = fetch_group_check(a, req, fg, m);
		if (fg->error == KERR_PARKED)
			return; /* nothing done yet: it all runs again */
		read |= fg->error == KERR_NONE;
	}
	x->work.data = x;
	if (!read)
		offset_fetch_answer(x);
	else if (uv_queue_work(a->loop, &x->work, offset_fetch_work, offset_fetch_done) != 0)
		offset_fetch_done(&x->work, UV_EINVAL);
	return;
out_fail:
	request_fail_close(req);
}

/* Whether a transaction not yet completed has committed an offset of
 * the group's partition (TxnOffsetCommit): the transaction coordinator
 * keeps them (txn_offset_pending, docs/transactions.md §6). A single
 * agent coordinates both the group and the transactions; in a cluster
 * they may be other agents': the store's pending rows, read with the
 * offsets (a read that failed counts every partition unstable: the
 * client retries UNSTABLE_OFFSET_COMMIT). */
static bool offset_unstable(struct agent *a, const struct fetch_group *fg,
			    const struct topic_state *t, int32_t partition)
{
	struct txn_tp tp = { t->tid, partition };
	if (a->txns && txn_svc_offset_pending(a->txns, fg->group_id, tp))
		return true;
	if (!fg->pending_read)
		return false; /* a single agent knows them all */
	if (fg->pending_rc)
		return true;
	for (size_t i = 0; i < fg->pending_n; i++)
		if (fg->pending[i].tid == tp.tid && fg->pending[i].partition == tp.partition)
			return true;
	return false;
}

/* OffsetFetch with require_stable (v7+): a listed partition with a
 * pending transactional offset answers UNSTABLE_OFFSET_COMMIT and no
 * offset (the client retries), as Kafka's GroupMetadataManager.getOffsets;
 * the all-topics form (no list) is answered as it is, as there. */
static void mark_unstable(struct agent *a, const struct fetch_group *fg, struct group_answer *ga)
{
	if (ga->error)
		return;
	for (int32_t i = 0; i < ga->count; i++) {
		struct topic_answer *ta = &ga->topics[i];
		const struct topic_state *t = agent_topic(a, ta->name);
		for (int32_t p = 0; t && p < ta->count; p++) {
			struct part_answer *pa = &ta->parts[p];
			if (!offset_unstable(a, fg, t, pa->partition))
				continue;
			pa->offset = -1;
			pa->leader_epoch = -1;
			pa->metadata = KSTR("");
			pa->error = KERR_UNSTABLE_OFFSET_COMMIT;
		}
	}
}

static void offset_fetch_answer(struct offset_fetch_ctx *x)
{
	struct agent *a = x->a;
	struct request *req = x->req;
	const struct kmsg_offset_fetch_req *m = x->m;
	int32_t ngroups = x->ngroups;
	struct kmsg_offset_fetch_resp r;
	kmsg_offset_fetch_resp_init(&r);
	struct group_answer *ga;
	if (!REQ_ARRAY(req, ngroups, ga))
		goto out_fail;
	for (int32_t g = 0; g < ngroups; g++) {
		if (answer_group(a, req, &x->groups[g], &ga[g]) != 0)
			goto out_fail;
		if (m->require_stable && x->groups[g].topics_count >= 0)
			mark_unstable(a, &x->groups[g], &ga[g]);
	}
	if (req->api_version >= 8) {
		if (!REQ_ARRAY(req, ngroups, r.groups))
			goto out_fail;
		r.groups_count = ngroups;
		for (int32_t g = 0; g < ngroups; g++) {
			struct kmsg_offset_fetch_resp_offset_fetch_response_group *rg = &r.groups[g];
			kmsg_offset_fetch_resp_offset_fetch_response_group_init(rg);
			rg->group_id = m->groups[g].group_id;
			rg->error_code = ga[g].error;
			rg->topics_count = ga[g].count;
			if (!REQ_ARRAY(req, ga[g].count, rg->topics))
				goto out_fail;
			for (int32_t t = 0; t < ga[g].count; t++) {
				struct topic_answer *ta = &ga[g].topics[t];
				struct kmsg_offset_fetch_resp_offset_fetch_response_topics *rt = &rg->topics[t];
				kmsg_offset_fetch_resp_offset_fetch_response_topics_init(rt);
				rt->name = ta->name;
				rt->partitions_count = ta->count;
				if (!REQ_ARRAY(req, ta->count, rt->partitions))
					goto out_fail;
				for (int32_t p = 0; p < ta->count; p++) {
					struct kmsg_offset_fetch_resp_offset_fetch_response_partitions *rp = &rt->partitions[p];
					kmsg_offset_fetch_resp_offset_fetch_response_partitions_init(rp);
					rp->partition_index = ta->parts[p].partition;
					rp->committed_offset = ta->parts[p].offset;
					rp->committed_leader_epoch = ta->parts[p].leader_epoch;
					rp->metadata = ta->parts[p].metadata;
					rp->error_code = ta->parts[p].error;
				}
			}
		}
	} else {
		r.error_code = ga[0].error;
		r.topics_count = ga[0].count;
		if (!REQ_ARRAY(req, ga[0].count, r.topics))
			goto out_fail;
		for (int32_t t = 0; t < ga[0].count; t++) {
			struct topic_answer *ta = &ga[0].topics[t];
			struct kmsg_offset_fetch_resp_offset_fetch_response_topic *rt = &r.topics[t];
			kmsg_offset_fetch_resp_offset_fetch_response_topic_init(rt);
			rt->name = ta->name;
			rt->partitions_count = ta->count;
			if (!REQ_ARRAY(req, ta->count, rt->partitions))
				goto out_fail;
			for (int32_t p = 0; p < ta->count; p++) {
				struct kmsg_offset_fetch_resp_offset_fetch_response_partition *rp = &rt->partitions[p];
				kmsg_offset_fetch_resp_offset_fetch_response_partition_init(rp);
				rp->partition_index = ta->parts[p].partition;
				rp->committed_offset = ta->parts[p].offset;
				rp->committed_leader_epoch = ta->parts[p].leader_epoch;
				rp->metadata = ta->parts[p].metadata;
				/* before v2 a group-level error goes on each partition */
				rp->error_code = req->api_version < 2 && ga[0].error ? ga[0].error
										  : ta->parts[p].error;
			}
		}
	}
	kmsg_offset_fetch_resp_encode(&req->resp, req->api_version, &r);
	offset_fetch_free(x);
	request_respond(req);
	return;
out_fail:
	offset_fetch_free(x);
	request_fail_close(req);
}

/* ---- ListGroups, DescribeGroups ---- */

struct listed {
	struct agent *a;
	struct request *req;
	const struct kmsg_list_groups_req *m;
	struct kmsg_list_groups_resp r;
	int32_t cap;
	bool all_allowed;             /* DESCRIBE on the cluster */
	struct strmap seen;           /* ids listed so far */
	/* a shared store: every stored group, read by a pool job */
	struct meta_group_summary *stored;
	size_t stored_count;
	int stored_rc;
	uv_work_t work;
};

static bool state_wanted(const struct kmsg_list_groups_req *m, int16_t version, const char *state)
{
	if (version < 4 || m->states_filter_count <= 0)
		return true;
	for (int32_t i = 0; i < m->states_filter_count; i++) {
		kstr f = m->states_filter[i];
		if (f.len == (int32_t)strlen(state) && strncasecmp(f.ptr, state, (size_t)f.len) == 0)
			return true;
	}
	return false;
}

static void list_add(struct listed *l, const char *id, const char *state, const char *type)
{
	/* As each Kafka broker lists the groups it coordinates, those with
	 * only committed offsets included (admin clients ask every broker
	 * and merge). Each id once: memory first, then the store. */
	if (strmap_get(&l->seen, id) || strmap_put(&l->seen, id, l) != 0)
		return;
	if (!state_wanted(l->m, l->req->api_version, state) || l->r.groups_count >= l->cap ||
	    !coordinates(l->a, KSTR(id)) ||
	    (!l->all_allowed && !api_allowed(l->a, l->req, ACL_RESOURCE_GROUP, id, ACL_OP_DESCRIBE)))
		return;
	struct kmsg_list_groups_resp_listed_group *g = &l->r.groups[l->r.groups_count++];
	kmsg_list_groups_resp_listed_group_init(g);
	g->group_id = api_kstr_dup(l->req, id);
	g->protocol_type = api_kstr_dup(l->req, type ? type : "");
	g->group_state = KSTR(state);
	g->group_type = KSTR("classic");
}

static void list_each(void *arg, const char *id, const char *state, const char *type)
{
	list_add(arg, id, state, type);
}

/* [pool: read] */
static void list_stored_work(uv_work_t *w)
{
	struct listed *l = w->data;
	l->stored_rc = meta_group_list(l->a->meta, &l->stored, &l->stored_count);
}

static void list_answer(struct listed *l)
{
	struct request *req = l->req;
	struct group_svc *s = svc_expired(l->a);
	if (l->stored_rc || !s) {
		l->r.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
	} else {
		size_t cap = group_svc_group_count_max(s) + l->stored_count;
		l->cap = cap < INT32_MAX ? (int32_t)cap : INT32_MAX;
		if (!REQ_ARRAY(req, l->cap, l->r.groups)) {
			l->cap = 0;
			l->r.error_code = KERR_UNKNOWN_SERVER_ERROR;
		}
		/* Kafka: every group with DESCRIBE on the cluster, else the
		 * groups the principal may describe. */
		l->all_allowed = api_allowed_cluster(l->a, req, ACL_OP_DESCRIBE);
		group_svc_groups_each(s, list_each, l);
		for (size_t i = 0; i < l->stored_count; i++)
			list_add(l, l->stored[i].group_id, "Empty", "consumer");
	}
	meta_group_summaries_free(l->stored, l->stored_count);
	strmap_free(&l->seen);
	if (l->r.error_code == KERR_UNKNOWN_SERVER_ERROR) {
		request_fail_close(req);
		return;
	}
	kmsg_list_groups_resp_encode(&req->resp, req->api_version, &l->r);
	request_respond(req);
}

static void list_stored_done(uv_work_t *w, int status)
{
	struct listed *l = w->data;
	if (status)
		l->stored_rc = SL_EIO;
	if (l->stored_rc)
		log_warn("ListGroups: reading the stored groups failed: %s",
			 sl_strerror(l->stored_rc));
	list_answer(l);
}

void handle_list_groups(struct agent *a, struct request *req, const struct kmsg_list_groups_req *m)
{
	struct listed *l;
	if (!REQ_ARRAY(req, 1, l)) {
		request_fail_close(req);
		return;
	}
	l->a = a;
	l->req = req;
	l->m = m;
	kmsg_list_groups_resp_init(&l->r);
	strmap_init(&l->seen);
	struct group_svc *s = svc(a);
	bool classic = true;
	if (req->api_version >= 5 && m->types_filter_count > 0) {
		classic = false;
		for (int32_t i = 0; i < m->types_filter_count; i++)
			if (m->types_filter[i].len == 7 &&
			    strncasecmp(m->types_filter[i].ptr, "classic", 7) == 0)
				classic = true;
	}
	if (!s) {
		l->r.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
	} else if (classic && group_svc_store_shared(s)) {
		/* Groups other agents committed are only in the store. */
		l->work.data = l;
		if (uv_queue_work(a->loop, &l->work, list_stored_work, list_stored_done) != 0)
			list_stored_done(&l->work, UV_EINVAL);
		return;
	} else if (classic) {
		list_answer(l);
		return;
	}
	strmap_free(&l->seen);
	kmsg_list_groups_resp_encode(&req->resp, req->api_version, &l->r);
	request_respond(req);
}

static int describe_one(struct agent *a, struct group_svc *s, struct request *req, kstr id,
			struct kmsg_describe_groups_resp_described_group *d)
{
	char key[COORD_GROUP_ID_BYTES_MAX + 1];
	d->group_id = id;
	d->authorized_operations = INT32_MIN;
	d->protocol_type = KSTR("");
	d->protocol_data = KSTR("");
	if (!api_allowed_group(a, req, id, ACL_OP_DESCRIBE)) {
		d->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
		d->group_state = KSTR("");
		return 0;
	}
	if (!s) {
		d->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		d->group_state = KSTR("");
		return 0;
	}
	if (has_nul(id) || !kstr_copy(id, key, sizeof key)) {
		d->error_code = KERR_INVALID_GROUP_ID;
		d->group_state = KSTR("");
		return 0;
	}
	if ((d->error_code = coordinator_error(a, s, id)) != KERR_NONE) {
		d->group_state = KSTR("");
		return 0;
	}
	const struct coord_group *g = group_svc_group_find(s, id);
	if (!g) {
		/* As Kafka: an unknown group is described as Dead, no error. */
		bool stored = group_svc_has_offsets(s, key);
		d->group_state = KSTR(stored ? "Empty" : "Dead");
		d->protocol_type = KSTR(stored ? "consumer" : "");
		return 0;
	}
	d->group_state = KSTR(coord_state_name(g->state));
	d->protocol_type = api_kstr_dup(req, g->protocol_type ? g->protocol_type : "");
	bool stable = g->state == COORD_STABLE;
	/* As Kafka's group summary: the protocol, member metadata and
	 * assignments only for a Stable group. */
	if (stable && g->protocol_name)
		d->protocol_data = api_kstr_dup(req, g->protocol_name);
	if (!REQ_ARRAY(req, g->member_count, d->members))
		return SL_ENOMEM;
	d->members_count = g->member_count;
	for (int32_t i = 0; i < g->member_count; i++) {
		const struct coord_member *cm = g->members[i];
		struct kmsg_describe_groups_resp_described_group_member *dm = &d->members[i];
		kmsg_describe_groups_resp_described_group_member_init(dm);
		dm->member_id = api_kstr_dup(req, cm->member_id);
		dm->group_instance_id = cm->group_instance_id ? api_kstr_dup(req, cm->group_instance_id)
							      : KSTR_NULL;
		dm->client_id = api_kstr_dup(req, cm->client_id);
		dm->client_host = api_kstr_dup(req, cm->client_host);
		dm->member_metadata = (kbytes){ (const uint8_t *)"", 0 };
		dm->member_assignment = (kbytes){ (const uint8_t *)"", 0 };
		if (!stable)
			continue;
		/* Copies: the coordinator may change before the response is sent
		 * (it is sent at once, but keep the rule simple). */
		const struct coord_protocol *p = coord_member_protocol(g, cm);
		if (p && p->metadata_len > 0) {
			uint8_t *c = arena_alloc(&req->arena, (size_t)p->metadata_len);
			if (!c)
				return SL_ENOMEM;
			memcpy(c, p->metadata, (size_t)p->metadata_len);
			dm->member_metadata = (kbytes){ c, p->metadata_len };
		}
		if (cm->assignment && cm->assignment_len > 0) {
			uint8_t *c = arena_alloc(&req->arena, (size_t)cm->assignment_len);
			if (!c)
				return SL_ENOMEM;
			memcpy(c, cm->assignment, (size_t)cm->assignment_len);
			dm->member_assignment = (kbytes){ c, cm->assignment_len };
		}
	}
	return 0;
}

/* Before a request of several groups changes or answers anything: park
 * it if one of them is loading here (coordinator_check). */
static bool park_any(struct agent *a, struct request *req, const kstr *ids, int32_t n,
		     int8_t op, group_redo_fn redo, const void *m)
{
	if (!svc(a))
		return false;
	for (int32_t i = 0; i < n; i++)
		if (api_allowed_group(a, req, ids[i], op) && !has_nul(ids[i]) &&
		    ids[i].len <= COORD_GROUP_ID_BYTES_MAX &&
		    coordinator_check(a, req, ids[i], redo, m) == KERR_PARKED)
			return true;
	return false;
}

static void redo_describe_groups(struct agent *a, struct request *req, const void *m)
{
	handle_describe_groups(a, req, m);
}

void handle_describe_groups(struct agent *a, struct request *req, const struct kmsg_describe_groups_req *m)
{
	if (park_any(a, req, m->groups, m->groups_count, ACL_OP_DESCRIBE, redo_describe_groups, m))
		return;
	struct kmsg_describe_groups_resp r;
	kmsg_describe_groups_resp_init(&r);
	int32_t n = m->groups_count > 0 ? m->groups_count : 0;
	if (!REQ_ARRAY(req, n, r.groups)) {
		request_fail_close(req);
		return;
	}
	r.groups_count = n;
	struct group_svc *s = svc_expired(a);
	for (int32_t i = 0; i < n; i++) {
		kmsg_describe_groups_resp_described_group_init(&r.groups[i]);
		if (describe_one(a, s, req, m->groups[i], &r.groups[i]) != 0) {
			request_fail_close(req);
			return;
		}
		/* Kafka: for the groups described without error, when asked */
		if (m->include_authorized_operations && req->api_version >= 3 &&
		    !r.groups[i].error_code)
			r.groups[i].authorized_operations =
				api_authorized_operations(a, req, ACL_RESOURCE_GROUP, m->groups[i]);
	}
	kmsg_describe_groups_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* ---- DeleteGroups, OffsetDelete ---- */

/* One DeleteGroups request: answered when the last of its groups'
 * deletes has been through the store. */
struct delete_groups {
	struct request *req;
	struct kmsg_delete_groups_resp r;
	int32_t waiting;
};

struct group_delete {
	struct group_offsets_op op; /* first */
	struct delete_groups *d;
	int32_t index;
};

static void delete_groups_respond(struct delete_groups *d)
{
	kmsg_delete_groups_resp_encode(&d->req->resp, d->req->api_version, &d->r);
	request_respond(d->req);
}

static void group_delete_done(struct group_svc *s, struct group_offsets_op *op)
{
	struct group_delete *gd = (struct group_delete *)op;
	struct delete_groups *d = gd->d;
	if (op->rc)
		d->r.results[gd->index].error_code = store_error(op->rc);
	else
		log_info("group %s deleted (%" PRId64 " committed offsets)", op->group_id,
			 op->deleted);
	if (--d->waiting == 0)
		delete_groups_respond(d);
}

static void redo_delete_groups(struct agent *a, struct request *req, const void *m)
{
	handle_delete_groups(a, req, m);
}

void handle_delete_groups(struct agent *a, struct request *req, const struct kmsg_delete_groups_req *m)
{
	if (park_any(a, req, m->groups_names, m->groups_names_count, ACL_OP_DELETE,
		     redo_delete_groups, m))
		return;
	struct delete_groups *d;
	struct group_delete *gd;
	int32_t n = m->groups_names_count > 0 ? m->groups_names_count : 0;
	if (!REQ_ARRAY(req, 1, d) || !REQ_ARRAY(req, n, gd)) {
		request_fail_close(req);
		return;
	}
	d->req = req;
	kmsg_delete_groups_resp_init(&d->r);
	if (!REQ_ARRAY(req, n, d->r.results)) {
		request_fail_close(req);
		return;
	}
	d->r.results_count = n;
	/* Held at 1 until every group is queued, so no early answer. */
	d->waiting = 1;
	struct group_svc *s = svc_expired(a);
	for (int32_t i = 0; i < n; i++) {
		struct kmsg_delete_groups_resp_deletable_group_result *res = &d->r.results[i];
		kmsg_delete_groups_resp_deletable_group_result_init(res);
		kstr id = m->groups_names[i];
		res->group_id = id;
		if (!api_allowed_group(a, req, id, ACL_OP_DELETE)) {
			res->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
			continue;
		}
		if (!s) {
			res->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
			continue;
		}
		char *key = api_cstr_dup(req, id);
		if (!key || has_nul(id) || id.len > COORD_GROUP_ID_BYTES_MAX) {
			res->error_code = KERR_INVALID_GROUP_ID;
			continue;
		}
		if ((res->error_code = coordinator_error(a, s, id)) != KERR_NONE)
			continue;
		/* Its done may fire before the call returns. */
		gd[i].d = d;
		gd[i].index = i;
		gd[i].op.done = group_delete_done;
		d->waiting++;
		bool queued;
		res->error_code = group_svc_group_delete(s, key, &gd[i].op, &queued);
		if (!queued)
			d->waiting--;
	}
	if (--d->waiting == 0)
		delete_groups_respond(d);
}

struct offset_delete {
	struct group_offsets_op op; /* first */
	struct request *req;
	struct kmsg_offset_delete_resp r;
};

static void offset_delete_respond(struct offset_delete *od)
{
	kmsg_offset_delete_resp_encode(&od->req->resp, od->req->api_version, &od->r);
	request_respond(od->req);
}

static void offset_delete_done(struct group_svc *s, struct group_offsets_op *op)
{
	struct offset_delete *od = (struct offset_delete *)op;
	if (op->rc)
		od->r.error_code = store_error(op->rc);
	offset_delete_respond(od);
}

static void redo_offset_delete(struct agent *a, struct request *req, const void *m)
{
	handle_offset_delete(a, req, m);
}

void handle_offset_delete(struct agent *a, struct request *req, const struct kmsg_offset_delete_req *m)
{
	struct offset_delete *od;
	if (!REQ_ARRAY(req, 1, od)) {
		request_fail_close(req);
		return;
	}
	od->req = req;
	struct kmsg_offset_delete_resp *r = &od->r;
	kmsg_offset_delete_resp_init(r);
	struct group_svc *s = svc(a);
	char *key = NULL;
	if (!api_allowed_group(a, req, m->group_id, ACL_OP_DELETE)) {
		r->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
		goto out_respond;
	}
	if (!s) {
		r->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		goto out_respond;
	}
	key = api_cstr_dup(req, m->group_id);
	if (!key || has_nul(m->group_id) || m->group_id.len > COORD_GROUP_ID_BYTES_MAX) {
		r->error_code = KERR_INVALID_GROUP_ID;
		goto out_respond;
	}
	if ((r->error_code = coordinator_check(a, req, m->group_id, redo_offset_delete, m)) ==
	    KERR_PARKED)
		return;
	if (r->error_code)
		goto out_respond;
	r->error_code = group_svc_offsets_deletable(s, key);
	if (r->error_code)
		goto out_respond;
	int32_t nt = m->topics_count > 0 ? m->topics_count : 0;
	size_t total = 0;
	for (int32_t t = 0; t < nt; t++)
		total += m->topics[t].partitions_count > 0 ? (size_t)m->topics[t].partitions_count : 0;
	int64_t *tids;
	int32_t *parts;
	if (!REQ_ARRAY(req, nt, r->topics) || !REQ_ARRAY(req, total, tids) ||
	    !REQ_ARRAY(req, total, parts)) {
		request_fail_close(req);
		return;
	}
	size_t k = 0;
	r->topics_count = nt;
	for (int32_t t = 0; t < nt; t++) {
		struct kmsg_offset_delete_resp_offset_delete_response_topic *rt = &r->topics[t];
		kmsg_offset_delete_resp_offset_delete_response_topic_init(rt);
		rt->name = m->topics[t].name;
		int32_t np = m->topics[t].partitions_count > 0 ? m->topics[t].partitions_count : 0;
		if (!REQ_ARRAY(req, np, rt->partitions)) {
			request_fail_close(req);
			return;
		}
		rt->partitions_count = np;
		struct topic_state *ts = agent_topic(a, rt->name);
		bool sub = group_svc_topic_subscribed(s, key, rt->name);
		bool may = api_allowed_topic(a, req, rt->name, ACL_OP_READ);
		for (int32_t p = 0; p < np; p++) {
			struct kmsg_offset_delete_resp_offset_delete_response_partition *rp = &rt->partitions[p];
			kmsg_offset_delete_resp_offset_delete_response_partition_init(rp);
			rp->partition_index = m->topics[t].partitions[p].partition_index;
			if (!may) /* Kafka: READ on the topic, checked first */
				rp->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
			else if (!ts || rp->partition_index < 0 || rp->partition_index >= ts->partition_count)
				rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (sub)
				rp->error_code = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
			else {
				tids[k] = ts->tid;
				parts[k++] = rp->partition_index;
			}
		}
	}
	if (k == 0)
		goto out_respond;
	/* Through the store queue, ordered with the group's commits. */
	od->op.group_id = key;
	od->op.tids = tids;
	od->op.partitions = parts;
	od->op.n = k;
	od->op.done = offset_delete_done;
	if (group_svc_offsets_delete(s, &od->op) == 0)
		return;
	r->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
out_respond:
	offset_delete_respond(od);
}
