/* placement.c — the live-agent view and rendezvous hashing over it
 * (placement.h).
 *
 * Rendezvous hashing: each candidate agent gets a pseudo-random weight
 * for the key and the highest weight wins. When an agent leaves, only the
 * keys it won move (each to its runner-up); when one joins, it takes
 * only the keys it now wins; keys spread evenly without virtual nodes.
 * Cost is one weight per candidate per key, which for a few dozen agents
 * is cheaper than keeping a ring.
 *
 * The hash: SipHash-2-4, written here from its specification (Aumasson
 * and Bernstein, 2012), under a fixed key. It is well mixed for short
 * inputs (a topic id and a partition, a group id), defined on bytes and
 * little-endian words so every architecture agrees, and cheap. OpenSSL
 * has it only behind EVP_MAC (an allocation per call, and OpenSSL 3
 * only); zlib's CRC-32 is linear and 32-bit, a poor weight. The key's
 * SipHash is computed once per key; each agent's weight is then that
 * hash mixed with the node id by a bijective avalanche mixer (SplitMix64's
 * finalizer), so a Metadata answer for many partitions costs one SipHash
 * per partition, not one per partition per agent. */
#include "cluster/placement.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* Sluice's fixed placement key: its value only has to be the same on
 * every agent. Changing it moves every partition and group. */
static const uint8_t PLACEMENT_SIP_KEY[16] = { 's', 'l', 'u', 'i', 'c', 'e', ' ', 'p',
					      'l', 'a', 'c', 'e', 'm', 'e', 'n', 't' };

static uint64_t load_le64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

struct sip {
	uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = rotl64(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl64(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl64(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl64(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl64(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl64(s->v2, 32);
}

static void sip_word(struct sip *s, uint64_t m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

/* SipHash-2-4 of the bytes [prefix] ++ data[0..len) (no prefix when
 * prefix < 0), read as one stream so nothing is copied or allocated. */
static uint64_t siphash_stream(const uint8_t key[16], int prefix, const uint8_t *data,
			       size_t len)
{
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	struct sip s = {
		k0 ^ 0x736f6d6570736575ULL,
		k1 ^ 0x646f72616e646f6dULL,
		k0 ^ 0x6c7967656e657261ULL,
		k1 ^ 0x7465646279746573ULL,
	};
	size_t skip = prefix >= 0 ? 1 : 0, total = len + skip;
	uint64_t word = 0;
	for (size_t j = 0; j < total; j++) {
		uint8_t b = j < skip ? (uint8_t)prefix : data[j - skip];
		word |= (uint64_t)b << (8 * (j & 7));
		if ((j & 7) == 7) {
			sip_word(&s, word);
			word = 0;
		}
	}
	/* The last word: the remaining bytes, little-endian, and the
	 * length's low byte on top. */
	sip_word(&s, word | (uint64_t)(total & 0xff) << 56);
	s.v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t placement_siphash24(const uint8_t key[16], const void *data, size_t len)
{
	return siphash_stream(key, -1, data, len);
}

uint64_t placement_key_hash(enum placement_key_type type, const void *key, size_t len)
{
	return siphash_stream(PLACEMENT_SIP_KEY, (int)type, key, len);
}

uint64_t placement_partition_hash(const uint8_t topic_id[16], int32_t partition)
{
	uint8_t k[20];
	memcpy(k, topic_id, 16);
	uint32_t p = (uint32_t)partition;
	k[16] = (uint8_t)(p >> 24);
	k[17] = (uint8_t)(p >> 16);
	k[18] = (uint8_t)(p >> 8);
	k[19] = (uint8_t)p;
	return placement_key_hash(PLACEMENT_KEY_PARTITION, k, sizeof k);
}

/* SplitMix64's finalizer: a bijection in which every input bit flips
 * about half of the output bits. */
static uint64_t mix64(uint64_t z)
{
	z ^= z >> 30;
	z *= 0xbf58476d1ce4e5b9ULL;
	z ^= z >> 27;
	z *= 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z;
}

uint64_t placement_weight(uint64_t key_hash, int32_t node_id)
{
	/* The golden-ratio offset keeps node 0 away from mix64's fixed
	 * point at 0. */
	return mix64(key_hash ^ mix64((uint64_t)(uint32_t)node_id + 0x9e3779b97f4a7c15ULL));
}

/* The index (into p->agents) of the winner among candidates, or -1. */
static long pick(const struct placement *p, const uint32_t *candidates, size_t n, uint64_t h)
{
	long best = -1;
	uint64_t best_w = 0;
	for (size_t i = 0; i < n; i++) {
		const struct placement_agent *a = &p->agents[candidates[i]];
		uint64_t w = placement_weight(h, a->node_id);
		if (best < 0 || w > best_w ||
		    (w == best_w && a->node_id < p->agents[best].node_id)) {
			best = (long)candidates[i];
			best_w = w;
		}
	}
	return best;
}

/* ---- the view ---- */

void placement_init(struct placement *p)
{
	memset(p, 0, sizeof *p);
	p->epoch = -1;
}

void placement_free(struct placement *p)
{
	free(p->agents);
	placement_init(p);
}

static int by_node_id(const void *x, const void *y)
{
	const struct placement_agent *a = x, *b = y;
	return (a->node_id > b->node_id) - (a->node_id < b->node_id);
}

static bool endpoint_valid(const struct placement_endpoint *e)
{
	size_t name = strnlen(e->listener, sizeof e->listener);
	size_t host = strnlen(e->host, sizeof e->host);
	return name < sizeof e->listener && placement_listener_valid(e->listener, name) &&
	       host > 0 && host < sizeof e->host && e->port >= 0 && e->port <= 65535;
}

static bool agent_valid(const struct placement_agent *a)
{
	size_t zone = strnlen(a->zone, sizeof a->zone);
	if (a->node_id < 0 || a->endpoint_count == 0 || a->endpoint_count > SL_LISTENERS_MAX ||
	    zone == sizeof a->zone || (zone > 0 && !placement_zone_valid(a->zone, zone)))
		return false;
	for (uint32_t i = 0; i < a->endpoint_count; i++) {
		if (!endpoint_valid(&a->endpoints[i]))
			return false;
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(a->endpoints[i].listener, a->endpoints[j].listener) == 0)
				return false;
	}
	return true;
}

/* Endpoints compare in the order given: a reordered list under the same
 * epoch is refused like any other change (the registry writes them in
 * one order). */
static bool same_agent(const struct placement_agent *a, const struct placement_agent *b)
{
	if (a->node_id != b->node_id || a->start_ms != b->start_ms ||
	    strcmp(a->zone, b->zone) != 0 || a->endpoint_count != b->endpoint_count)
		return false;
	for (uint32_t i = 0; i < a->endpoint_count; i++) {
		const struct placement_endpoint *x = &a->endpoints[i], *y = &b->endpoints[i];
		if (x->port != y->port || strcmp(x->listener, y->listener) != 0 ||
		    strcmp(x->host, y->host) != 0)
			return false;
	}
	return true;
}

int placement_set(struct placement *p, const struct placement_agent *agents, size_t n,
		  int32_t epoch)
{
	if (epoch < 0 || n > SL_CLUSTER_AGENTS_MAX || epoch < p->epoch)
		return SL_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!agent_valid(&agents[i]))
			return SL_EINVAL;
	struct placement_agent *copy = NULL;
	if (n > 0) {
		copy = malloc(n * sizeof *copy);
		if (!copy)
			return SL_ENOMEM;
		memcpy(copy, agents, n * sizeof *copy);
		qsort(copy, n, sizeof *copy, by_node_id);
	}
	int rc = 0;
	for (size_t i = 1; i < n; i++)
		if (copy[i].node_id == copy[i - 1].node_id)
			rc = SL_EINVAL;
	if (rc == 0 && epoch == p->epoch) {
		/* The same epoch names the same set; a different set under it
		 * would move leaders that clients would never follow. */
		bool same = n == p->count;
		for (size_t i = 0; same && i < n; i++)
			same = same_agent(&copy[i], &p->agents[i]);
		if (!same)
			rc = SL_EINVAL;
	}
	if (rc) {
		free(copy);
		return rc;
	}
	free(p->agents);
	p->agents = copy;
	p->count = n;
	p->epoch = epoch;
	return 0;
}

const struct placement_agent *placement_find(const struct placement *p, int32_t node_id)
{
	size_t lo = 0, hi = p->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->agents[mid].node_id == node_id)
			return &p->agents[mid];
		if (p->agents[mid].node_id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct placement_endpoint *placement_endpoint(const struct placement_agent *a,
						    const char *listener)
{
	for (uint32_t i = 0; i < a->endpoint_count; i++)
		if (strcmp(a->endpoints[i].listener, listener) == 0)
			return &a->endpoints[i];
	return NULL;
}

int32_t placement_leader_epoch(const struct placement *p)
{
	return p->epoch;
}

size_t placement_zone_candidates(const struct placement *p, kstr zone, uint32_t *out)
{
	size_t n = 0;
	if (zone.len > 0 && zone.len <= SL_ZONE_BYTES_MAX) {
		for (size_t i = 0; i < p->count; i++) {
			const char *z = p->agents[i].zone;
			if (strlen(z) == (size_t)zone.len && memcmp(z, zone.ptr, (size_t)zone.len) == 0)
				out[n++] = (uint32_t)i;
		}
		if (n > 0)
			return n;
	}
	for (size_t i = 0; i < p->count; i++)
		out[n++] = (uint32_t)i;
	return n;
}

const struct placement_agent *placement_partition_leader(const struct placement *p,
							 const uint32_t *candidates, size_t n,
							 const uint8_t topic_id[16],
							 int32_t partition)
{
	long i = pick(p, candidates, n, placement_partition_hash(topic_id, partition));
	return i < 0 ? NULL : &p->agents[i];
}

const struct placement_agent *placement_coordinator(const struct placement *p,
						    enum placement_key_type type, kstr key)
{
	if (p->count == 0)
		return NULL;
	uint64_t h = placement_key_hash(type, key.ptr, key.len > 0 ? (size_t)key.len : 0);
	/* Every agent is a candidate: no index list needed. */
	long best = -1;
	uint64_t best_w = 0;
	for (size_t i = 0; i < p->count; i++) {
		uint64_t w = placement_weight(h, p->agents[i].node_id);
		if (best < 0 || w > best_w) {
			best = (long)i;
			best_w = w;
		}
	}
	/* Agents are sorted by node id, so on a tie the first (lower id)
	 * stays, as pick() decides. */
	return &p->agents[best];
}

bool placement_is_coordinator(const struct placement *p, enum placement_key_type type, kstr key,
			      int32_t node_id)
{
	const struct placement_agent *c = placement_coordinator(p, type, key);
	return c && c->node_id == node_id;
}

/* ---- listener names and zones ---- */

bool placement_listener_valid(const char *name, size_t len)
{
	if (len == 0 || len > SL_LISTENER_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool zone_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool placement_zone_valid(const char *zone, size_t len)
{
	if (len == 0 || len > SL_ZONE_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!zone_byte(zone[i]))
			return false;
	return true;
}

kstr placement_client_zone(kstr client_id)
{
	static const char prefix[] = "sluice_az=";
	const size_t plen = sizeof prefix - 1;
	if (client_id.len <= 0 || !client_id.ptr)
		return KSTR_NULL;
	const char *s = client_id.ptr;
	size_t len = (size_t)client_id.len;
	size_t i = 0;
	while (i + plen <= len) {
		if (memcmp(s + i, prefix, plen) != 0 || (i > 0 && alnum(s[i - 1]))) {
			i++;
			continue;
		}
		size_t v = i + plen, e = v;
		while (e < len && zone_byte(s[e]))
			e++;
		if (e > v && e - v <= SL_ZONE_BYTES_MAX)
			return (kstr){ s + v, (int32_t)(e - v) };
		/* Empty or over-long: no name here; look further on. */
		i = e > v ? e : v;
	}
	return KSTR_NULL;
}
