/* metadata.c — Metadata (with auto-create, off the loop) and DescribeCluster.
 *
 * Every agent accepts produces and fetches for every partition; a
 * partition's leader in Metadata only steers its clients, so that one
 * agent per zone serves (and caches) a partition's fetches. The leader is
 * chosen by rendezvous hashing over the live agents of the requesting
 * client's zone (cluster/placement.h; the zone comes from sluice_az= in
 * its client.id), every live agent when it names none or none of its
 * zone is live. Replicas and ISR are the leader alone (unless a manual
 * assignment was given: fill_assigned), as WarpStream
 * answers: the object store, not other brokers, holds the copies, and
 * listing every agent would grow each partition's entry with the
 * cluster, make every agent join or leave look like a reassignment to
 * tools, and gain nothing (librdkafka, kafka-python and the Java
 * producer route produces and fetches to the leader only). Leader epochs
 * are the placement view's epoch.
 *
 * Each agent is named by its endpoint of the listener the request came
 * in on (agent_listener_name), as Kafka does: an agent without that
 * listener is left out of the brokers, and a partition placed on it
 * answers LISTENER_NOT_FOUND (v6+; LEADER_NOT_AVAILABLE before), the
 * placement itself unchanged, so that every listener's clients agree on
 * one leader per zone. */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/err.h"
#include "base/log.h"
#include "cluster/placement.h"
#include "kmsg.h"
#include "proto/kerr.h"

/* Who leads this request's partitions: the candidates for the client's
 * zone, found once per request. */
struct leading {
	const struct placement *view;
	uint32_t *candidates; /* indexes into view->agents */
	size_t count;
	const char *listener; /* the request's listener name */
};

static int leading_init(struct agent *a, struct request *req, struct leading *l)
{
	l->view = &a->placement;
	l->listener = agent_listener_name(a, req);
	if (!REQ_ARRAY(req, a->placement.count, l->candidates))
		return SL_ENOMEM;
	l->count = placement_zone_candidates(&a->placement, placement_client_zone(req->client_id),
					     l->candidates);
	return 0;
}

/* A partition with a manual replica assignment (CreateTopics,
 * CreatePartitions: issue 16) reports it as Kafka would: the replicas as
 * assigned, the live ones as the ISR, the others as offline replicas. The
 * leader stays the placement's choice (any agent serves any partition,
 * and the zone steering above must hold), so it may be outside the
 * list; when no assigned agent is live the ISR is that leader alone, as
 * a Kafka ISR always holds the leader it reports. */
static int fill_assigned(const struct leading *l, struct request *req,
			 struct kmsg_metadata_resp_metadata_response_partition *rp, const int32_t *ids,
			 int16_t n)
{
	int32_t *isr, *offline;
	if (!REQ_ARRAY(req, n, isr) || !REQ_ARRAY(req, n, offline))
		return SL_ENOMEM;
	int32_t live = 0, dead = 0;
	for (int16_t k = 0; k < n; k++) {
		if (placement_find(l->view, ids[k]))
			isr[live++] = ids[k];
		else
			offline[dead++] = ids[k];
	}
	rp->replica_nodes = (int32_t *)ids; /* the catalog's: unchanged until encoded */
	rp->replica_nodes_count = n;
	if (live > 0) {
		rp->isr_nodes = isr;
		rp->isr_nodes_count = live;
	}
	rp->offline_replicas = offline;
	rp->offline_replicas_count = dead;
	return 0;
}

static int fill_topic(const struct leading *l, struct request *req,
		      struct kmsg_metadata_resp_metadata_response_topic *rt,
		      struct topic_state *t)
{
	rt->error_code = KERR_NONE;
	rt->name = KSTR(t->name);
	memcpy(rt->topic_id, t->uuid, 16);
	rt->is_internal = false;
	rt->partitions_count = t->partition_count;
	int32_t *leaders;
	if (!REQ_ARRAY(req, t->partition_count, rt->partitions) ||
	    !REQ_ARRAY(req, t->partition_count, leaders))
		return SL_ENOMEM;
	int32_t epoch = placement_leader_epoch(l->view);
	for (int32_t p = 0; p < t->partition_count; p++) {
		struct kmsg_metadata_resp_metadata_response_partition *rp = &rt->partitions[p];
		kmsg_metadata_resp_metadata_response_partition_init(rp);
		rp->partition_index = p;
		rp->offline_replicas_count = 0;
		const struct placement_agent *leader =
			placement_partition_leader(l->view, l->candidates, l->count, t->uuid, p);
		if (!leader) {
			/* No live agent at all (a registry that lost even
			 * this one): retriable, as Kafka answers between
			 * leaders. */
			rp->error_code = KERR_LEADER_NOT_AVAILABLE;
			rp->leader_id = -1;
			rp->leader_epoch = -1;
			continue;
		}
		if (!placement_endpoint(leader, l->listener)) {
			/* Placed on an agent this client cannot reach (a
			 * listener not configured on every agent): Kafka's
			 * answer, retriable, rather than another leader for
			 * this listener's clients alone. */
			rp->error_code = req->api_version >= 6 ? KERR_LISTENER_NOT_FOUND
							       : KERR_LEADER_NOT_AVAILABLE;
			rp->leader_id = -1;
			rp->leader_epoch = -1;
			continue;
		}
		leaders[p] = leader->node_id;
		rp->error_code = KERR_NONE;
		rp->leader_id = leader->node_id;
		rp->leader_epoch = epoch;
		rp->replica_nodes = &leaders[p];
		rp->replica_nodes_count = 1;
		rp->isr_nodes = &leaders[p];
		rp->isr_nodes_count = 1;
		if (t->replicas && t->replicas[(size_t)p * (size_t)t->replication] >= 0 &&
		    fill_assigned(l, req, rp, &t->replicas[(size_t)p * (size_t)t->replication],
				  t->replication) != 0)
			return SL_ENOMEM;
	}
	return 0;
}

/* The cluster's authorized_operations when asked: 0 without DESCRIBE on
 * the cluster, as Kafka's AuthHelper answers; INT32_MIN otherwise. */
static int32_t cluster_operations(struct agent *a, struct request *req, bool asked)
{
	if (!asked)
		return INT32_MIN;
	if (!api_allowed_cluster(a, req, ACL_OP_DESCRIBE))
		return 0;
	return api_authorized_operations(a, req, ACL_RESOURCE_CLUSTER, KSTR(ACL_CLUSTER_NAME));
}

/* Metadata v8+: the cluster's (v8-10) and each described topic's
 * authorized operations when asked, as Kafka 3.9; topics refused
 * (TOPIC_AUTHORIZATION_FAILED) or unknown by id keep INT32_MIN. */
static void set_authorized_operations(struct agent *a, struct request *req,
				      const struct kmsg_metadata_req *m, struct kmsg_metadata_resp *r)
{
	if (req->api_version < 8)
		return;
	if (req->api_version <= 10)
		r->cluster_authorized_operations =
			cluster_operations(a, req, m->include_cluster_authorized_operations);
	for (int32_t i = 0; m->include_topic_authorized_operations && i < r->topics_count; i++) {
		struct kmsg_metadata_resp_metadata_response_topic *t = &r->topics[i];
		if (t->error_code != KERR_TOPIC_AUTHORIZATION_FAILED &&
		    t->error_code != KERR_UNKNOWN_TOPIC_ID && t->name.len >= 0)
			t->topic_authorized_operations =
				api_authorized_operations(a, req, ACL_RESOURCE_TOPIC, t->name);
	}
}

struct all_topics {
	const struct leading *l;
	struct request *req;
	struct kmsg_metadata_resp *r;
	struct agent *a;
	int rc;
};

static void add_each(void *arg, struct topic_state *t)
{
	struct all_topics *x = arg;
	/* Kafka lists only the topics the principal may describe. */
	if (!api_allowed(x->a, x->req, ACL_RESOURCE_TOPIC, t->name, ACL_OP_DESCRIBE))
		return;
	struct kmsg_metadata_resp_metadata_response_topic *rt = &x->r->topics[x->r->topics_count++];
	kmsg_metadata_resp_metadata_response_topic_init(rt);
	if (fill_topic(x->l, x->req, rt, t) != 0)
		x->rc = SL_ENOMEM;
}

static kstr zone_or_null(const struct placement_agent *ag)
{
	return ag->zone[0] ? KSTR(ag->zone) : KSTR_NULL;
}

/* Every live agent with an endpoint for listener, at that endpoint, with
 * its zone as its rack. The strings point into the placement view, which
 * does not change before the response is encoded (both on the loop, in
 * one go). */
static int fill_brokers(struct agent *a, struct request *req, struct kmsg_metadata_resp *r)
{
	const struct placement *v = &a->placement;
	const char *listener = agent_listener_name(a, req);
	if (!REQ_ARRAY(req, v->count, r->brokers))
		return SL_ENOMEM;
	r->brokers_count = 0;
	for (size_t i = 0; i < v->count; i++) {
		const struct placement_endpoint *e = placement_endpoint(&v->agents[i], listener);
		if (!e)
			continue;
		struct kmsg_metadata_resp_metadata_response_broker *b = &r->brokers[r->brokers_count++];
		kmsg_metadata_resp_metadata_response_broker_init(b);
		b->node_id = v->agents[i].node_id;
		b->host = KSTR(e->host);
		b->port = e->port;
		b->rack = zone_or_null(&v->agents[i]);
	}
	r->cluster_id = KSTR(a->cfg.cluster_id);
	/* Admin requests go to the controller; any agent serves them, so
	 * the one answering names itself. */
	r->controller_id = a->cfg.node_id;
	return 0;
}

static bool is_zero_uuid(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

/* May Metadata auto-create the topic for this principal? Kafka 3.9:
 * CREATE on the cluster or on the topic. */
static bool may_create(struct agent *a, struct request *req, kstr name)
{
	return api_allowed_cluster(a, req, ACL_OP_CREATE) ||
	       api_allowed_topic(a, req, name, ACL_OP_CREATE);
}

static bool auto_create_asked(const struct agent *a, const struct request *req,
			      const struct kmsg_metadata_req *m)
{
	return a->cfg.auto_create_topics && m->topics_count > 0 &&
	       (req->api_version < 4 || m->allow_auto_topic_creation);
}

/* What auto-creation did to a requested topic. */
enum { CREATE_NONE, CREATE_FAILED, CREATE_ELSEWHERE };

/* The answer, from the catalog; created[i] (NULL: nothing was created)
 * says what auto-creation did to topic i. */
static void metadata_respond(struct agent *a, struct request *req, const struct kmsg_metadata_req *m,
			     const uint8_t *created)
{
	struct kmsg_metadata_resp r;
	kmsg_metadata_resp_init(&r);
	struct leading l;
	if (leading_init(a, req, &l) != 0 || fill_brokers(a, req, &r) != 0) {
		request_fail_close(req);
		return;
	}
	/* v0: an empty list means all topics; v1+: null means all. */
	bool all = m->topics_count < 0 || (req->api_version == 0 && m->topics_count == 0);
	int32_t n = all ? (int32_t)agent_topic_count(a) : m->topics_count;
	if (!REQ_ARRAY(req, n, r.topics)) {
		request_fail_close(req);
		return;
	}
	if (all) {
		struct all_topics x = { &l, req, &r, a, 0 };
		agent_topics_each(a, add_each, &x);
		if (x.rc) {
			request_fail_close(req);
			return;
		}
	} else {
		for (int32_t i = 0; i < m->topics_count; i++) {
			const struct kmsg_metadata_req_metadata_request_topic *qt = &m->topics[i];
			struct kmsg_metadata_resp_metadata_response_topic *rt = &r.topics[r.topics_count++];
			kmsg_metadata_resp_metadata_response_topic_init(rt);
			rt->name = qt->name;
			struct topic_state *t = NULL;
			if (qt->name.len < 0) {
				/* v10+: by topic id */
				memcpy(rt->topic_id, qt->topic_id, 16);
				t = is_zero_uuid(qt->topic_id) ? NULL : agent_topic_by_uuid(a, qt->topic_id);
				if (!t) {
					rt->error_code = KERR_UNKNOWN_TOPIC_ID;
					continue;
				}
				if (!api_allowed(a, req, ACL_RESOURCE_TOPIC, t->name, ACL_OP_DESCRIBE)) {
					rt->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
					continue;
				}
			} else if (!api_allowed_topic(a, req, qt->name, ACL_OP_DESCRIBE)) {
				rt->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			} else if (!topic_name_valid(qt->name)) {
				rt->error_code = KERR_INVALID_TOPIC_EXCEPTION;
				continue;
			} else {
				t = agent_topic(a, qt->name);
				uint8_t c = created ? created[i] : CREATE_NONE;
				if (!t && c == CREATE_FAILED) {
					rt->error_code = KERR_UNKNOWN_SERVER_ERROR;
					continue;
				}
				/* Another request's creation is in the store but not
				 * yet in the catalog: Kafka's answer while a topic is
				 * being created (retriable). */
				if (!t && c == CREATE_ELSEWHERE) {
					rt->error_code = KERR_LEADER_NOT_AVAILABLE;
					continue;
				}
				if (!t) {
					rt->error_code = auto_create_asked(a, req, m) &&
							 !may_create(a, req, qt->name)
							 ? KERR_TOPIC_AUTHORIZATION_FAILED
							 : KERR_UNKNOWN_TOPIC_OR_PARTITION;
					continue;
				}
			}
			if (fill_topic(&l, req, rt, t) != 0) {
				request_fail_close(req);
				return;
			}
		}
	}
	set_authorized_operations(a, req, m, &r);
	kmsg_metadata_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}

/* Auto-creation of the requested topics not in the catalog: in the store
 * on the pool (each an fsync), then into the catalog, then the answer. */
struct autocreate_job {
	struct agent_job job;
	struct request *req;
	const struct kmsg_metadata_req *m;
	int32_t *which;          /* indexes into m.topics */
	struct meta_topic *mts;  /* out, one per which */
	int *rcs;                /* out */
	uint8_t *created;        /* per m.topics */
	size_t n;
};

static void autocreate_run(struct agent_job *job)
{
	struct autocreate_job *aj = (struct autocreate_job *)job;
	for (size_t i = 0; i < aj->n; i++) {
		char name[META_TOPIC_NAME_BYTES];
		kstr_copy(aj->m->topics[aj->which[i]].name, name, sizeof name);
		aj->rcs[i] = meta_topic_create(job->a->meta, name, job->a->cfg.default_partitions,
					       NULL, 0, NULL, &aj->mts[i]);
	}
}

static void autocreate_done(struct agent_job *job)
{
	struct autocreate_job *aj = (struct autocreate_job *)job;
	for (size_t i = 0; i < aj->n; i++) {
		int rc = aj->rcs[i] ? aj->rcs[i] : agent_topic_created(job->a, &aj->mts[i], NULL);
		meta_topic_free(&aj->mts[i]);
		aj->created[aj->which[i]] = rc == SL_EEXIST ? CREATE_ELSEWHERE
					    : rc ? CREATE_FAILED : CREATE_NONE;
	}
	metadata_respond(job->a, aj->req, aj->m, aj->created);
}

void handle_metadata(struct agent *a, struct request *req, const struct kmsg_metadata_req *m)
{
	struct autocreate_job *aj = arena_alloc(&req->arena, sizeof *aj);
	if (!aj) {
		request_fail_close(req);
		return;
	}
	*aj = (struct autocreate_job){ .req = req, .m = m };
	bool auto_create = auto_create_asked(a, req, m);
	for (int32_t i = 0; auto_create && i < m->topics_count; i++) {
		kstr name = m->topics[i].name;
		if (name.len < 0 || !topic_name_valid(name) || agent_topic(a, name) ||
		    !api_allowed_topic(a, req, name, ACL_OP_DESCRIBE) || !may_create(a, req, name))
			continue;
		if (!aj->which && (!REQ_ARRAY(req, m->topics_count, aj->which) ||
				   !REQ_ARRAY(req, m->topics_count, aj->mts) ||
				   !REQ_ARRAY(req, m->topics_count, aj->rcs) ||
				   !REQ_ARRAY(req, m->topics_count, aj->created))) {
			request_fail_close(req);
			return;
		}
		aj->which[aj->n++] = i;
	}
	if (aj->n == 0) {
		metadata_respond(a, req, m, NULL);
		return;
	}
	aj->job.run = autocreate_run;
	aj->job.done = autocreate_done;
	agent_job_submit(a, &aj->job);
}

void handle_describe_cluster(struct agent *a, struct request *req, const struct kmsg_describe_cluster_req *m)
{
	struct kmsg_describe_cluster_resp r;
	kmsg_describe_cluster_resp_init(&r);
	/* KIP-919: an agent is a broker endpoint. As Kafka 3.9's
	 * computeDescribeClusterResponse: a type that is neither brokers (1)
	 * nor controllers (2) is unsupported, controllers asked of a broker
	 * is a mismatch, and an error answer carries nothing else (no
	 * cluster id, controller -1, no brokers). v0 has no endpoint_type:
	 * it decodes as 1. */
	if (m->endpoint_type != 1) {
		bool controllers = m->endpoint_type == 2;
		r.error_code = controllers ? KERR_MISMATCHED_ENDPOINT_TYPE
					   : KERR_UNSUPPORTED_ENDPOINT_TYPE;
		char *msg = arena_alloc(&req->arena, 48);
		if (!msg) {
			request_fail_close(req);
			return;
		}
		snprintf(msg, 48, "Unsupported endpoint type %d", m->endpoint_type);
		r.error_message = controllers ? KSTR("The request was sent to an endpoint of type "
						     "BROKER, but we wanted an endpoint of type "
						     "CONTROLLER")
					      : KSTR(msg);
		kmsg_describe_cluster_resp_encode(&req->resp, req->api_version, &r);
		request_respond(req);
		return;
	}
	/* As Metadata: the agents with the request's listener. */
	const struct placement *v = &a->placement;
	const char *listener = agent_listener_name(a, req);
	if (!REQ_ARRAY(req, v->count, r.brokers)) {
		request_fail_close(req);
		return;
	}
	r.brokers_count = 0;
	for (size_t i = 0; i < v->count; i++) {
		const struct placement_endpoint *e = placement_endpoint(&v->agents[i], listener);
		if (!e)
			continue;
		struct kmsg_describe_cluster_resp_describe_cluster_broker *b =
			&r.brokers[r.brokers_count++];
		kmsg_describe_cluster_resp_describe_cluster_broker_init(b);
		b->broker_id = v->agents[i].node_id;
		b->host = KSTR(e->host);
		b->port = e->port;
		b->rack = zone_or_null(&v->agents[i]);
	}
	r.cluster_id = KSTR(a->cfg.cluster_id);
	r.controller_id = a->cfg.node_id;
	r.cluster_authorized_operations =
		cluster_operations(a, req, m->include_cluster_authorized_operations);
	kmsg_describe_cluster_resp_encode(&req->resp, req->api_version, &r);
	request_respond(req);
}
