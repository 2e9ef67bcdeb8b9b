/* authorizer.h — Kafka's ACL model and the authorizer's decisions, as
 * pure logic (no I/O, no loop): the ACLs are handed in by whoever keeps
 * them (the agent, refreshed from the metadata store), the answers are
 * booleans.
 *
 * The model is Kafka's: a binding is a resource pattern (type, name,
 * LITERAL or PREFIXED) and an entry (principal, host, operation, ALLOW or
 * DENY). A filter has the same fields, where ANY (and MATCH for the
 * pattern type) and null strings match more, as Kafka's
 * AclBindingFilter. The numbers are Kafka's wire codes. */
#ifndef SLUICE_AUTH_AUTHORIZER_H
#define SLUICE_AUTH_AUTHORIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ResourceType */
enum {
	ACL_RESOURCE_UNKNOWN = 0,
	ACL_RESOURCE_ANY = 1,
	ACL_RESOURCE_TOPIC = 2,
	ACL_RESOURCE_GROUP = 3,
	ACL_RESOURCE_CLUSTER = 4,
	ACL_RESOURCE_TRANSACTIONAL_ID = 5,
	ACL_RESOURCE_DELEGATION_TOKEN = 6,
	ACL_RESOURCE_USER = 7,
};
/* PatternType */
enum {
	ACL_PATTERN_UNKNOWN = 0,
	ACL_PATTERN_ANY = 1,
	ACL_PATTERN_MATCH = 2,
	ACL_PATTERN_LITERAL = 3,
	ACL_PATTERN_PREFIXED = 4,
};
/* AclOperation */
enum {
	ACL_OP_UNKNOWN = 0,
	ACL_OP_ANY = 1,
	ACL_OP_ALL = 2,
	ACL_OP_READ = 3,
	ACL_OP_WRITE = 4,
	ACL_OP_CREATE = 5,
	ACL_OP_DELETE = 6,
	ACL_OP_ALTER = 7,
	ACL_OP_DESCRIBE = 8,
	ACL_OP_CLUSTER_ACTION = 9,
	ACL_OP_DESCRIBE_CONFIGS = 10,
	ACL_OP_ALTER_CONFIGS = 11,
	ACL_OP_IDEMPOTENT_WRITE = 12,
	ACL_OP_CREATE_TOKENS = 13,
	ACL_OP_DESCRIBE_TOKENS = 14,
};
/* AclPermissionType */
enum {
	ACL_PERM_UNKNOWN = 0,
	ACL_PERM_ANY = 1,
	ACL_PERM_DENY = 2,
	ACL_PERM_ALLOW = 3,
};

/* The one name of the CLUSTER resource. */
#define ACL_CLUSTER_NAME "kafka-cluster"
/* The literal resource name, principal and host that match every one. */
#define ACL_WILDCARD "*"
#define ACL_WILDCARD_PRINCIPAL "User:*"

/* One ACL. The strings belong to whoever holds the binding (the agent's
 * set: malloc'd, freed with acl_bindings_free). */
struct acl_binding {
	int8_t resource_type;
	int8_t pattern_type;        /* LITERAL or PREFIXED */
	int8_t operation;
	int8_t permission;          /* ALLOW or DENY */
	char *resource_name;
	char *principal;            /* "User:NAME", or User:* */
	char *host;                 /* an IP address, or * */
};

/* A filter (DescribeAcls, DeleteAcls): NULL strings match anything. */
struct acl_filter {
	int8_t resource_type;       /* ANY, or a type */
	int8_t pattern_type;        /* ANY, MATCH, LITERAL or PREFIXED */
	int8_t operation;           /* ANY, or an operation */
	int8_t permission;          /* ANY, ALLOW or DENY */
	const char *resource_name;
	const char *principal;
	const char *host;
};

/* Everything a decision needs: the configuration and the ACLs. The
 * arrays are the caller's and must not change during a call. */
struct authorizer {
	bool enabled;               /* --authorizer acl */
	bool allow_if_no_acl;       /* --allow-everyone-if-no-acl-found */
	const char *const *super_users;  /* principals, "User:NAME" */
	size_t super_user_count;
	const struct acl_binding *acls;
	size_t acl_count;
};

/* May principal, connected from host (an IP address as text), do op on
 * the resource (type, name)? Kafka's AclAuthorizer: super users may do
 * anything; an ACL applies when its pattern covers the name (LITERAL:
 * the name or "*"; PREFIXED: a prefix of it), its principal is the
 * principal or User:*, its host the host or *; a DENY for op (or ALL)
 * refuses; else an ALLOW for op, ALL or an operation implying op (READ,
 * WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
 * DESCRIBE_CONFIGS) allows; else, with no ACL at all on the resource,
 * allow_if_no_acl decides. Always true when the authorizer is off. */
bool authz_allowed(const struct authorizer *z, const char *principal, const char *host,
		   int8_t resource_type, const char *name, int8_t op);
/* May principal do op on some resource of the type? Kafka's
 * authorizeByResourceType (InitProducerId without a transactional id,
 * KIP-679): an ALLOW for op (or ALL) on any pattern that no DENY of the
 * principal covers whole (a literal denied name, a prefix denied by a
 * shorter DENY prefix, anything under a DENY on *). */
bool authz_allowed_any(const struct authorizer *z, const char *principal, const char *host,
		       int8_t resource_type, int8_t op);
/* The operations principal may do on the resource, as a bit per
 * AclOperation code among acl_supported_operations(type): Kafka's
 * authorizedOperations, the authorized_operations fields of Metadata,
 * DescribeCluster and DescribeGroups. Every supported one when the
 * authorizer is off. */
int32_t authz_operations(const struct authorizer *z, const char *principal, const char *host,
			 int8_t resource_type, const char *name);
/* Is principal one of the super users? */
bool authz_super_user(const struct authorizer *z, const char *principal);

/* Does the filter match the binding? Kafka's AclBindingFilter.matches:
 * pattern type ANY matches any pattern with the exact name, MATCH any
 * pattern that covers the name (as authorization would), LITERAL and
 * PREFIXED only patterns of their type with the exact name. */
bool acl_filter_matches(const struct acl_filter *f, const struct acl_binding *b);

/* Can b be stored? NULL, or why not, in Kafka's words (CreateAcls answers
 * it with INVALID_REQUEST). */
const char *acl_binding_invalid(const struct acl_binding *b);
/* Can f be used to describe or delete? NULL, or why not. */
const char *acl_filter_invalid(const struct acl_filter *f);

/* The operations an ACL on a resource of the type can name, as a bit
 * per AclOperation code (1u << ACL_OP_READ | ...), ALL not included:
 * Kafka's AclEntry.supportedOperations (kafka-acls.sh refuses others;
 * authorized_operations fields report a subset of them). 0 for a type
 * that is not concrete. */
uint32_t acl_supported_operations(int8_t resource_type);

/* Kafka's names ("TOPIC", "PREFIXED", "READ", "ALLOW"), for the tool and
 * logs; "UNKNOWN" for anything else. *_parse: the code of a name (case
 * insensitive, '-' taken as '_'), or -1. */
const char *acl_resource_name(int8_t v);
const char *acl_pattern_name(int8_t v);
const char *acl_operation_name(int8_t v);
const char *acl_permission_name(int8_t v);
int acl_resource_parse(const char *s);
int acl_pattern_parse(const char *s);
int acl_operation_parse(const char *s);

/* Free the strings of n bindings and the array. */
void acl_bindings_free(struct acl_binding *b, size_t n);

#endif
