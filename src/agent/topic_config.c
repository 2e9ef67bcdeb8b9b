/* topic_config.c — the table of topic configs, defaults as Kafka 3.9. */
#include "agent/topic_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"

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
	  "delete or compact old segments (Sluice: retention deletes; compaction of keys is not done)" },
	{ "compression.type", "producer", TOPIC_CONFIG_STRING, 0, 0, compression_types,
	  "final compression type; Sluice stores batches as the producer sent them" },
	{ "delete.retention.ms", "86400000", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "tombstone retention" },
	{ "file.delete.delay.ms", "60000", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "delay before deleting files" },
	{ "flush.messages", "9223372036854775807", TOPIC_CONFIG_LONG, 1, I64MAX, NULL, "ignored: every acknowledged batch is durable" },
	{ "flush.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "ignored: every acknowledged batch is durable" },
	{ "index.interval.bytes", "4096", TOPIC_CONFIG_INT, 0, INT32_MAX, NULL, "offset index interval" },
	{ "max.compaction.lag.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 1, I64MAX, NULL, "compaction lag" },
	{ "max.message.bytes", STR(SL_MESSAGE_BYTES_DEFAULT), TOPIC_CONFIG_INT, 0, INT32_MAX, NULL, "largest record batch accepted" },
	{ "message.timestamp.type", "CreateTime", TOPIC_CONFIG_STRING, 0, 0, timestamp_types, "timestamp type" },
	{ "message.timestamp.after.max.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "timestamp skew" },
	{ "message.timestamp.before.max.ms", "9223372036854775807", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "timestamp skew" },
	{ "min.cleanable.dirty.ratio", "0.5", TOPIC_CONFIG_DOUBLE, 0, 0, NULL, "compaction ratio" },
	{ "min.compaction.lag.ms", "0", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "compaction lag" },
	{ "min.insync.replicas", "1", TOPIC_CONFIG_INT, 1, INT32_MAX, NULL, "replicas are the object store's" },
	{ "preallocate", "false", TOPIC_CONFIG_BOOLEAN, 0, 0, bools, "ignored" },
	{ "retention.bytes", "-1", TOPIC_CONFIG_LONG, -1, I64MAX, NULL, "bytes kept per partition (-1: no limit)" },
	{ "retention.ms", "604800000", TOPIC_CONFIG_LONG, -1, I64MAX, NULL, "time records are kept (-1: forever)" },
	{ "segment.bytes", "1073741824", TOPIC_CONFIG_INT, 14, INT32_MAX, NULL, "segment size (no segments in Sluice)" },
	{ "segment.index.bytes", "10485760", TOPIC_CONFIG_INT, 4, INT32_MAX, NULL, "index size" },
	{ "segment.jitter.ms", "0", TOPIC_CONFIG_LONG, 0, I64MAX, NULL, "segment jitter" },
	{ "segment.ms", "604800000", TOPIC_CONFIG_LONG, 1, I64MAX, NULL, "segment roll time" },
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
	if (!value)
		return false;
	if (d->choices) {
		for (const char *const *c = d->choices; *c; c++)
			if (strcmp(*c, value) == 0)
				return true;
		return false;
	}
	char *end;
	switch (d->type) {
	case TOPIC_CONFIG_INT:
	case TOPIC_CONFIG_LONG: {
		errno = 0;
		long long n = strtoll(value, &end, 10);
		return !errno && *value && !*end && n >= d->min && n <= d->max;
	}
	case TOPIC_CONFIG_DOUBLE: {
		errno = 0;
		double x = strtod(value, &end);
		return !errno && *value && !*end && x >= 0;
	}
	default:
		return true;
	}
}
