/* topic_config.c — the table of topic configs, defaults as Kafka 3.9. */
#include "agent/topic_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "compact/compact.h"

static const char *const cleanup_policies[] = { "delete", "compact", "compact,delete",
						"delete,compact", NULL };
static const char *const compression_types[] = { "uncompressed", "zstd", "lz4", "snappy",
						  "gzip", "producer", NULL };
static const char *const timestamp_types[] = { "CreateTime", "LogAppendTime", NULL };
static const char *const bools[] = { "true", "false", NULL };

#define I64MAX INT64_MAX
/* A limit's value as the table's default text. */
#define STR_(x) #x
#define STR(x) STR_(x)
const struct topic_config_def topic_config_defs[] = {
	{ "cleanup.policy", "delete", TOPIC_CONFIG_LIST, 0, 0, cleanup_policies,
	  "delete: retention trims old batches; compact: the cleaner keeps the latest record of each key and records without a key are refused" },
	{ "compression.type", "producer", TOPIC_CONFIG_STRING, 0, 0, compression_types,
	  "final compression type; Sluice stores batches as the producer sent them" },
	{ "delete.retention.ms", "86400000", TOPIC_CONFIG_LONG, 0, I64MAX, NULL,
	  "how long a tombstone is kept after the cleaning pass that first reached it" },
	{ "file.delete.delay.ms", "60000", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "delay before deleting files" },
	{ "flush.messages", "9223372036854775807", TOPIC_CONFIG_LONG, 1, I64MAX, NULL, "ignored: every acknowledged batch is durable" },
	{ "flush.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "ignored: every acknowledged batch is durable" },
	{ "index.interval.bytes", "4096", TOPIC_CONFIG_INT, 0, INT32_MAX, NULL, "offset index interval" },
	{ "max.compaction.lag.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 1, I64MAX, NULL,
	  "longest a record stays uncleaned: a partition whose oldest dirty record is older is cleaned whatever its dirty ratio" },
	{ "max.message.bytes", STR(SL_MESSAGE_BYTES_DEFAULT), TOPIC_CONFIG_INT, 0, INT32_MAX, NULL, "largest record batch accepted" },
	{ "message.timestamp.type", "CreateTime", TOPIC_CONFIG_STRING, 0, 0, timestamp_types, "timestamp type" },
	{ "message.timestamp.after.max.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "timestamp skew" },
	{ "message.timestamp.before.max.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "timestamp skew" },
	{ "min.cleanable.dirty.ratio", "0.5", TOPIC_CONFIG_DOUBLE, 0, 1, NULL,
	  "share of a partition's bytes not yet cleaned above which the cleaner cleans it" },
	{ "min.compaction.lag.ms", "0", TOPIC_CONFIG_LONG, 0, I64MAX, NULL,
	  "records newer than this are not cleaned" },
	{ "min.insync.replicas", "1", TOPIC_CONFIG_INT, 1, INT32_MAX, NULL, "replicas are the object store's" },
	{ "preallocate", "false", TOPIC_CONFIG_BOOLEAN, 0, 0, bools, "ignored" },
	{ "retention.bytes", "-1", TOPIC_CONFIG_LONG, -1, I64MAX, NULL, "bytes kept per partition (-1: no limit)" },
	{ "retention.ms", "604800000", TOPIC_CONFIG_LONG, -1, I64MAX, NULL, "time records are kept (-1: forever)" },
	{ "segment.bytes", "1073741824", TOPIC_CONFIG_INT, 14, INT32_MAX, NULL, "the active head's size: with segment.ms, what the cleaner leaves alone (no segments in Sluice)" },
	{ "segment.index.bytes", "10485760", TOPIC_CONFIG_INT, 4, INT32_MAX, NULL, "index size" },
	{ "segment.jitter.ms", "0", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "segment jitter" },
	{ "segment.ms", "604800000", TOPIC_CONFIG_LONG, 1, I64MAX, NULL,
	  "the active head: records of the last segment.ms are not cleaned (no segments in Sluice)" },
	{ "unclean.leader.election.enable", "false", TOPIC_CONFIG_BOOLEAN, 0, 0, bools, "no leader election in Sluice" },
	{ "message.downconversion.enable", "true", TOPIC_CONFIG_BOOLEAN, 0, 0, bools, "ignored" },
};
const int topic_config_def_count = (int)(sizeof topic_config_defs / sizeof topic_config_defs[0]);

const struct topic_config_def *topic_config_find(const char *name)
{
	for (int i = 0; i < topic_config_def_count; i++)
		if (strcmp(topic_config_defs[i].name, name) == 0)
			return &topic_config_defs[i];
	return NULL;
}

bool topic_config_value_valid(const struct topic_config_def *d, const char *value)
{
	char msg[8];
	return topic_config_value_check(d, value, msg, sizeof msg);
}

static const char *type_name(enum topic_config_type type)
{
	switch (type) {
	case TOPIC_CONFIG_INT: return "INT";
	case TOPIC_CONFIG_LONG: return "LONG";
	default: return "DOUBLE";
	}
}

/* A double as Java's Double.toString writes the common cases: "2.0",
 * "0.75", "-1.5". */
static void java_double(double x, char *out, size_t cap)
{
	snprintf(out, cap, "%.17g", x);
	/* The shortest text that reads back as x. */
	for (int digits = 1; digits <= 17; digits++) {
		char t[40];
		snprintf(t, sizeof t, "%.*g", digits, x);
		if (strtod(t, NULL) == x) {
			snprintf(out, cap, "%s%s", t, strpbrk(t, ".en") ? "" : ".0");
			return;
		}
	}
}

bool topic_config_value_check(const struct topic_config_def *d, const char *value, char *msg,
			      size_t cap)
{
	if (!value) {
		snprintf(msg, cap, "Invalid value null for configuration %s", d->name);
		return false;
	}
	if (d->choices) {
		for (const char *const *c = d->choices; *c; c++)
			if (strcmp(*c, value) == 0)
				return true;
		snprintf(msg, cap, "Invalid value for configuration %s", d->name);
		return false;
	}
	char *end;
	const char *bad = NULL;
	char shown[48];
	switch (d->type) {
	case TOPIC_CONFIG_INT:
	case TOPIC_CONFIG_LONG: {
		errno = 0;
		long long n = strtoll(value, &end, 10);
		if (errno || !*value || *end ||
		    (d->type == TOPIC_CONFIG_INT && (n < INT32_MIN || n > INT32_MAX))) {
			snprintf(msg, cap, "Invalid value %.64s for configuration %s: Not a number of type %s",
				 value, d->name, type_name(d->type));
			return false;
		}
		snprintf(shown, sizeof shown, "%lld", n);
		bad = n < d->min ? "at least" : n > d->max ? "no more than" : NULL;
		break;
	}
	case TOPIC_CONFIG_DOUBLE: {
		errno = 0;
		double x = strtod(value, &end);
		if (errno || !*value || *end || !isfinite(x)) {
			snprintf(msg, cap, "Invalid value %.64s for configuration %s: Not a number of type %s",
				 value, d->name, type_name(d->type));
			return false;
		}
		java_double(x, shown, sizeof shown);
		bad = x < (double)d->min ? "at least" : x > (double)d->max ? "no more than" : NULL;
		break;
	}
	default:
		return true;
	}
	if (!bad)
		return true;
	snprintf(msg, cap, "Invalid value %s for configuration %s: Value must be %s %lld", shown,
		 d->name, bad, (long long)(bad[0] == 'a' ? d->min : d->max));
	return false;
}

static int64_t lookup_i64(topic_config_lookup_fn lookup, void *arg, const char *name)
{
	const char *v = lookup(arg, name);
	if (!v)
		v = topic_config_find(name)->default_value;
	return strtoll(v, NULL, 10);
}

bool topic_config_conflicts_check(topic_config_lookup_fn lookup, void *arg, char *msg,
				  size_t cap)
{
	int64_t min_lag = lookup_i64(lookup, arg, "min.compaction.lag.ms");
	int64_t max_lag = lookup_i64(lookup, arg, "max.compaction.lag.ms");
	if (min_lag > max_lag) {
		snprintf(msg, cap, "conflict topic config setting min.compaction.lag.ms (%lld) > "
			 "max.compaction.lag.ms (%lld)", (long long)min_lag, (long long)max_lag);
		return false;
	}
	return true;
}

bool topic_config_compacts(topic_config_lookup_fn lookup, void *arg)
{
	const char *v = lookup(arg, "cleanup.policy");
	if (!v)
		v = topic_config_find("cleanup.policy")->default_value;
	return strstr(v, "compact") != NULL;
}

void topic_config_compact(topic_config_lookup_fn lookup, void *arg, struct compact_config *out)
{
	const char *ratio = lookup(arg, "min.cleanable.dirty.ratio");
	if (!ratio)
		ratio = topic_config_find("min.cleanable.dirty.ratio")->default_value;
	*out = (struct compact_config){
		.segment_ms = lookup_i64(lookup, arg, "segment.ms"),
		.segment_bytes = lookup_i64(lookup, arg, "segment.bytes"),
		.min_compaction_lag_ms = lookup_i64(lookup, arg, "min.compaction.lag.ms"),
		.max_compaction_lag_ms = lookup_i64(lookup, arg, "max.compaction.lag.ms"),
		.delete_retention_ms = lookup_i64(lookup, arg, "delete.retention.ms"),
		.min_cleanable_dirty_ratio = strtod(ratio, NULL),
		.producer_expiration_ms = SL_PRODUCER_EXPIRATION_MS,
		.map_bytes_max = SL_COMPACT_MAP_BYTES,
	};
}
