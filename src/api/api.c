/* api.c — the dispatch table and the request header step.
 *
 * One row per API key: versions, first flexible version and handler.
 * ApiVersions is answered from the same table, so what is advertised is
 * exactly what is dispatched. The version ranges come from the generated
 * codec (kmsg.h), which is generated from src/proto/defs. */
#include "api/api.h"

#include <string.h>

#include "agent/agent.h"
#include "api/handlers.h"
#include "base/log.h"
#include "kmsg.h"
#include "proto/header.h"
#include "proto/kerr.h"

#define ROW(NAME, name, fn) \
	{ KMSG_##NAME##_KEY, #name, KMSG_##NAME##_MIN_VERSION, KMSG_##NAME##_MAX_VERSION, \
	  KMSG_##NAME##_FIRST_FLEXIBLE, fn }

const struct api_row api_table[] = {
	ROW(PRODUCE, Produce, handle_produce),
	ROW(FETCH, Fetch, handle_fetch),
	ROW(LIST_OFFSETS, ListOffsets, handle_list_offsets),
	ROW(METADATA, Metadata, handle_metadata),
	ROW(API_VERSIONS, ApiVersions, handle_api_versions),
	ROW(CREATE_TOPICS, CreateTopics, handle_create_topics),
	ROW(DELETE_TOPICS, DeleteTopics, handle_delete_topics),
	ROW(INIT_PRODUCER_ID, InitProducerId, handle_init_producer_id),
	ROW(DESCRIBE_CONFIGS, DescribeConfigs, handle_describe_configs),
	ROW(CREATE_PARTITIONS, CreatePartitions, handle_create_partitions),
	ROW(DELETE_RECORDS, DeleteRecords, handle_delete_records),
	ROW(INCREMENTAL_ALTER_CONFIGS, IncrementalAlterConfigs, handle_incremental_alter_configs),
	ROW(DESCRIBE_CLUSTER, DescribeCluster, handle_describe_cluster),
	ROW(OFFSET_COMMIT, OffsetCommit, handle_offset_commit),
	ROW(OFFSET_FETCH, OffsetFetch, handle_offset_fetch),
	ROW(FIND_COORDINATOR, FindCoordinator, handle_find_coordinator),
	ROW(JOIN_GROUP, JoinGroup, handle_join_group),
	ROW(HEARTBEAT, Heartbeat, handle_heartbeat),
	ROW(LEAVE_GROUP, LeaveGroup, handle_leave_group),
	ROW(SYNC_GROUP, SyncGroup, handle_sync_group),
	ROW(DESCRIBE_GROUPS, DescribeGroups, handle_describe_groups),
	ROW(LIST_GROUPS, ListGroups, handle_list_groups),
	ROW(DELETE_GROUPS, DeleteGroups, handle_delete_groups),
	ROW(OFFSET_DELETE, OffsetDelete, handle_offset_delete),
};
const int api_table_count = (int)(sizeof api_table / sizeof api_table[0]);

const struct api_row *api_row_find(int16_t key)
{
	for (int i = 0; i < api_table_count; i++)
		if (api_table[i].key == key)
			return &api_table[i];
	return NULL;
}

void handle_api_versions(struct agent *a, struct request *req)
{
	struct kmsg_api_versions_req m;
	kmsg_api_versions_req_init(&m);
	/* v3+ carries client software name/version; a malformed body still
	 * gets an answer (as Kafka answers INVALID_REQUEST). */
	int16_t error = KERR_NONE;
	if (kmsg_api_versions_req_decode(&req->body, req->api_version, &m, &req->arena) != 0)
		error = KERR_INVALID_REQUEST;
	api_versions_respond(req, req->api_version, error);
}

void api_versions_respond(struct request *req, int16_t version, int16_t error)
{
	struct kmsg_api_versions_resp r;
	kmsg_api_versions_resp_init(&r);
	r.error_code = error;
	r.api_keys = arena_alloc(&req->arena, sizeof *r.api_keys * (size_t)api_table_count);
	if (!r.api_keys) {
		request_fail_close(req);
		return;
	}
	/* An unsupported version is answered, as Kafka does, with only the
	 * versions of ApiVersions itself, so the client can retry. */
	r.api_keys_count = 0;
	for (int i = 0; i < api_table_count; i++) {
		if (error == KERR_UNSUPPORTED_VERSION && api_table[i].key != KMSG_API_VERSIONS_KEY)
			continue;
		struct kmsg_api_versions_resp_api_version *k = &r.api_keys[r.api_keys_count++];
		kmsg_api_versions_resp_api_version_init(k);
		k->api_key = api_table[i].key;
		k->min_version = api_table[i].min_version;
		k->max_version = api_table[i].max_version;
	}
	kmsg_api_versions_resp_encode(&req->resp, version, &r);
	request_respond(req);
}

void api_handle(struct request *req)
{
	struct agent *a = req->ctx;
	if (req->frame_len < 8) {
		log_warn("%s: request of %zu bytes is too short for a header; closing",
			 request_peer(req), req->frame_len);
		request_fail_close(req);
		return;
	}
	req->api_key = (int16_t)be16_load(req->frame);
	req->api_version = (int16_t)be16_load(req->frame + 2);
	req->correlation_id = (int32_t)be32_load(req->frame + 4);
	const struct api_row *row = api_row_find(req->api_key);
	if (!row || req->api_version < row->min_version || req->api_version > row->max_version) {
		request_begin_response(req, 0);
		if (req->api_key == KMSG_API_VERSIONS_KEY) {
			/* Kafka answers an ApiVersions it cannot parse in the v0
			 * shape, so the client can pick a version it shares. */
			api_versions_respond(req, 0, KERR_UNSUPPORTED_VERSION);
			return;
		}
		log_warn("%s: unsupported api key %d version %d", request_peer(req),
			 req->api_key, req->api_version);
		/* No body shape exists for an unknown API; answer with the
		 * error code alone rather than dropping the connection. */
		kbuf_put_i16(&req->resp, KERR_UNSUPPORTED_VERSION);
		request_respond(req);
		return;
	}
	struct proto_req_header h;
	if (proto_req_header_decode(&req->body, &h,
				    proto_req_header_version(req->api_key, req->api_version)) != 0) {
		log_warn("%s: malformed request header; closing", request_peer(req));
		request_fail_close(req);
		return;
	}
	req->client_id = h.client_id;
	int resp_header = proto_resp_header_version(req->api_key, req->api_version);
	request_begin_response(req, resp_header);
	log_debug("%s: %s v%d corr %d", request_peer(req), row->name, req->api_version,
		  req->correlation_id);
	row->handle(a, req);
}
