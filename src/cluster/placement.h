/* placement.h — where a key lives in a cluster of agents: which live
 * agent Metadata names as a partition's leader for a client's zone, and
 * which agent coordinates a consumer group or a transactional id.
 *
 * Pure logic, no I/O: a view of the live agents (fed by the agent
 * registry; until it exists, the agent alone) and rendezvous (highest
 * random weight) hashing over it. Every agent computes the same answer
 * from the same view on any architecture, so the hash below is part of
 * the cluster's protocol: agents of one cluster must run the same one.
 *
 * Nothing here decides who may write: every agent accepts a produce and a
 * fetch for every partition. A partition's leader only steers its
 * fetches to one agent per zone, whose read cache then holds it.
 *
 * Loop thread only. */
#ifndef SLUICE_PLACEMENT_H
#define SLUICE_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/limits.h"

/* What a key names. GROUP and TRANSACTION are FindCoordinator's key
 * types 0 and 1. */
enum placement_key_type {
	PLACEMENT_KEY_GROUP = 0,
	PLACEMENT_KEY_TRANSACTION = 1,
	PLACEMENT_KEY_PARTITION = 2,
};

/* Bytes of an advertised host, as config.h's advertise_host. */
#define PLACEMENT_HOST_BYTES 256

/* Where clients of one listener reach an agent. As in Kafka, an agent
 * registers the advertised endpoint of every listener it has, and a
 * client is only ever told endpoints of the listener (by name) that its
 * own connection came in on: a client of the SSL listener must not be
 * sent to another agent's PLAINTEXT port. */
struct placement_endpoint {
	char listener[SL_LISTENER_NAME_BYTES_MAX + 1]; /* "PLAINTEXT", "SSL", "INTERNAL", ... */
	char host[PLACEMENT_HOST_BYTES];   /* advertised, NUL-terminated */
	int32_t port;                      /* advertised, 0-65535 */
};

/* Placement itself depends on node ids only: endpoints and zones only
 * say where a chosen agent is and which agents a zone's clients may be
 * led by. */
struct placement_agent {
	int32_t node_id;                   /* >= 0, unique in a view */
	uint32_t endpoint_count;           /* 1..SL_LISTENERS_MAX */
	struct placement_endpoint endpoints[SL_LISTENERS_MAX]; /* names unique */
	char zone[SL_ZONE_BYTES_MAX + 1];  /* "" when the agent has none */
	int64_t start_ms;                  /* wall clock of its registration */
};

/* The live agents and the epoch that names this set. */
struct placement {
	struct placement_agent *agents; /* sorted by node_id; owned */
	size_t count;
	int32_t epoch;
};

/* An empty view that no epoch names yet (epoch -1, Kafka's "unknown"). */
void placement_init(struct placement *p);
void placement_free(struct placement *p);

/* Replace the live agents with a copy of agents[0..n) (any order) named
 * by epoch. The registry gives the epoch: a cluster-wide number, the
 * same on every agent for the same set, raised whenever the set changes
 * and never lowered (it is every partition's leader epoch, below).
 * Returns 0; SL_EINVAL when the epoch is negative, n exceeds SL_CLUSTER_AGENTS_MAX, a node id is
 * negative or repeated, an agent has no endpoint or more than
 * SL_LISTENERS_MAX, or two with one listener name, a listener name is not
 * placement_listener_valid, a port is out of range, a host is empty or a
 * zone is not placement_zone_valid, or the epoch is lower than the
 * view's, or equal to it with a different set (a stale or reordered feed:
 * the view keeps what it has); SL_ENOMEM. On any error the view is
 * unchanged. */
int placement_set(struct placement *p, const struct placement_agent *agents, size_t n,
		  int32_t epoch);

/* The agent with node_id, or NULL. Valid until the next placement_set. */
const struct placement_agent *placement_find(const struct placement *p, int32_t node_id);

/* a's endpoint for the listener named listener, or NULL when a has no
 * such listener (Kafka then leaves a out of the brokers it lists to that
 * listener's clients). Valid as long as a. */
const struct placement_endpoint *placement_endpoint(const struct placement_agent *a,
						    const char *listener);

/* A listener name: 1 to SL_LISTENER_NAME_BYTES_MAX bytes of [A-Za-z0-9_-]
 * (Kafka's listener names are identifiers such as PLAINTEXT, SSL or
 * INTERNAL; compared exactly). */
bool placement_listener_valid(const char *name, size_t len);

/* The leader epoch of every partition: the view's epoch. Kafka clients
 * (librdkafka 2.x, the Java client, KIP-320) keep the highest epoch they
 * have seen per partition and ignore Metadata that carries a lower one,
 * and librdkafka also ignores a new leader that comes with the same
 * epoch; so the epoch must rise whenever a leader may have moved — any
 * change of the agent set — and must never go back, across agents and
 * restarts alike. That is why the registry, not each agent, owns it. */
int32_t placement_leader_epoch(const struct placement *p);

/* The agents a client of zone is led by, as indexes into p->agents
 * written to out (room for p->count): the agents of that zone, or every
 * agent when zone is empty or null or none of its agents is live.
 * Returns how many (0 only for an empty view). */
size_t placement_zone_candidates(const struct placement *p, kstr zone, uint32_t *out);

/* The leader of (topic_id, partition) among candidates[0..n), or NULL
 * when n is 0. Valid until the next placement_set. */
const struct placement_agent *placement_partition_leader(const struct placement *p,
							 const uint32_t *candidates, size_t n,
							 const uint8_t topic_id[16],
							 int32_t partition);

/* The coordinator of a group or transactional id: rendezvous over every
 * live agent, whatever the client's zone (a group's members may sit in
 * several zones and must all reach one coordinator). NULL for an empty
 * view. Valid until the next placement_set. */
const struct placement_agent *placement_coordinator(const struct placement *p,
						    enum placement_key_type type, kstr key);

/* Whether node_id coordinates key: false for an empty view or when
 * another agent does (that agent answers the group's requests; this one
 * answers NOT_COORDINATOR so the client asks FindCoordinator again). */
bool placement_is_coordinator(const struct placement *p, enum placement_key_type type, kstr key,
			      int32_t node_id);

/* ---- the hash, exposed for tests ---- */

/* SipHash-2-4 of data under a 128-bit key (little-endian words, as the
 * reference specifies, so the same on every architecture). */
uint64_t placement_siphash24(const uint8_t key[16], const void *data, size_t len);

/* The hash of a key: SipHash-2-4 of the type byte followed by the key
 * bytes under Sluice's fixed placement key. A partition's key bytes are
 * its topic id and its index as 4 big-endian bytes. */
uint64_t placement_key_hash(enum placement_key_type type, const void *key, size_t len);
uint64_t placement_partition_hash(const uint8_t topic_id[16], int32_t partition);

/* A node's weight for a key hash; the highest weight wins, the lower
 * node id on a tie. */
uint64_t placement_weight(uint64_t key_hash, int32_t node_id);

/* ---- zones ---- */

/* A zone name: 1 to SL_ZONE_BYTES_MAX bytes of [A-Za-z0-9._-]. */
bool placement_zone_valid(const char *zone, size_t len);

/* The zone a client names in its client.id as "sluice_az=NAME"
 * (WarpStream's convention with our prefix), anywhere in the string:
 * "sluice_az" at the start or after a byte that is not a letter or digit,
 * then "=", then the longest run of zone bytes. The first occurrence with
 * a valid name counts; an empty or over-long name is no name. Returns a
 * view into client_id (valid as long as it), or KSTR_NULL when the client
 * names no zone. */
kstr placement_client_zone(kstr client_id);

#endif
