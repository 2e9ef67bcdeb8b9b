/* authorizer.c — Kafka's ACL matching and authorization decisions
 * (authorizer.h): which bindings apply to a request, DENY over ALLOW,
 * the operations' implications, super users, what a filter matches and
 * which bindings and filters are valid. Pure: the caller holds the ACLs.
 *
 * A check scans every binding (at most SL_ACLS_MAX): with the handful a
 * deployment usually has that is a few string compares, cheaper than
 * keeping an index current. */
#include "auth/authorizer.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"

static bool prefix_of(const char *prefix, const char *s)
{
	return strncmp(prefix, s, strlen(prefix)) == 0;
}

/* Does the binding's pattern cover the resource name? */
static bool pattern_covers(const struct acl_binding *b, const char *name)
{
	if (b->pattern_type == ACL_PATTERN_LITERAL)
		return !strcmp(b->resource_name, name) || !strcmp(b->resource_name, ACL_WILDCARD);
	if (b->pattern_type == ACL_PATTERN_PREFIXED)
		return prefix_of(b->resource_name, name);
	return false;
}

/* Is the binding's entry about this principal and host? */
static bool entry_applies(const struct acl_binding *b, const char *principal, const char *host)
{
	return (!strcmp(b->principal, principal) || !strcmp(b->principal, ACL_WILDCARD_PRINCIPAL)) &&
	       (!strcmp(b->host, host) || !strcmp(b->host, ACL_WILDCARD));
}

/* Does an ALLOW of acl_op grant op? ALL grants everything; READ, WRITE,
 * DELETE and ALTER grant DESCRIBE; ALTER_CONFIGS grants DESCRIBE_CONFIGS
 * (Kafka's AclEntry / StandardAuthorizerData implications). */
static bool allow_grants(int8_t acl_op, int8_t op)
{
	if (acl_op == op || acl_op == ACL_OP_ALL)
		return true;
	if (op == ACL_OP_DESCRIBE)
		return acl_op == ACL_OP_READ || acl_op == ACL_OP_WRITE || acl_op == ACL_OP_DELETE ||
		       acl_op == ACL_OP_ALTER;
	if (op == ACL_OP_DESCRIBE_CONFIGS)
		return acl_op == ACL_OP_ALTER_CONFIGS;
	return false;
}

bool authz_super_user(const struct authorizer *z, const char *principal)
{
	for (size_t i = 0; i < z->super_user_count; i++)
		if (!strcmp(z->super_users[i], principal))
			return true;
	return false;
}

bool authz_allowed(const struct authorizer *z, const char *principal, const char *host,
		   int8_t resource_type, const char *name, int8_t op)
{
	if (!z->enabled || authz_super_user(z, principal))
		return true;
	bool any_on_resource = false, allowed = false;
	for (size_t i = 0; i < z->acl_count; i++) {
		const struct acl_binding *b = &z->acls[i];
		if (b->resource_type != resource_type || !pattern_covers(b, name))
			continue;
		any_on_resource = true;
		if (!entry_applies(b, principal, host))
			continue;
		/* A DENY names its operation exactly (or ALL): denying READ
		 * does not deny DESCRIBE. */
		if (b->permission == ACL_PERM_DENY && (b->operation == op || b->operation == ACL_OP_ALL))
			return false;
		if (b->permission == ACL_PERM_ALLOW && allow_grants(b->operation, op))
			allowed = true;
	}
	if (allowed)
		return true;
	return !any_on_resource && z->allow_if_no_acl;
}

/* Is the ALLOW pattern b covered whole by one of the principal's DENY
 * patterns for op in the type? */
static bool allow_dominated(const struct authorizer *z, const struct acl_binding *allow,
			    const char *principal, const char *host, int8_t op)
{
	for (size_t i = 0; i < z->acl_count; i++) {
		const struct acl_binding *d = &z->acls[i];
		if (d->permission != ACL_PERM_DENY || d->resource_type != allow->resource_type ||
		    (d->operation != op && d->operation != ACL_OP_ALL) ||
		    !entry_applies(d, principal, host))
			continue;
		if (d->pattern_type == ACL_PATTERN_PREFIXED && prefix_of(d->resource_name, allow->resource_name))
			return true;
		if (d->pattern_type == ACL_PATTERN_LITERAL && allow->pattern_type == ACL_PATTERN_LITERAL &&
		    !strcmp(d->resource_name, allow->resource_name))
			return true;
	}
	return false;
}

bool authz_allowed_any(const struct authorizer *z, const char *principal, const char *host,
		       int8_t resource_type, int8_t op)
{
	/* Kafka first asks about a made-up name, so super users, ALLOWs on
	 * "*" and allow_if_no_acl answer as they would for any resource. */
	if (authz_allowed(z, principal, host, resource_type, "hardcode", op))
		return true;
	for (size_t i = 0; i < z->acl_count; i++) {
		const struct acl_binding *b = &z->acls[i];
		if (b->resource_type != resource_type || !entry_applies(b, principal, host) ||
		    (b->operation != op && b->operation != ACL_OP_ALL))
			continue;
		if (b->permission == ACL_PERM_DENY && b->pattern_type == ACL_PATTERN_LITERAL &&
		    !strcmp(b->resource_name, ACL_WILDCARD))
			return false;
	}
	for (size_t i = 0; i < z->acl_count; i++) {
		const struct acl_binding *b = &z->acls[i];
		if (b->permission != ACL_PERM_ALLOW || b->resource_type != resource_type ||
		    !entry_applies(b, principal, host) ||
		    (b->operation != op && b->operation != ACL_OP_ALL))
			continue;
		if (!allow_dominated(z, b, principal, host, op))
			return true;
	}
	return false;
}

bool acl_filter_matches(const struct acl_filter *f, const struct acl_binding *b)
{
	if (f->resource_type != ACL_RESOURCE_ANY && f->resource_type != b->resource_type)
		return false;
	if (f->pattern_type != ACL_PATTERN_ANY && f->pattern_type != ACL_PATTERN_MATCH &&
	    f->pattern_type != b->pattern_type)
		return false;
	if (f->resource_name) {
		if (f->pattern_type == ACL_PATTERN_MATCH) {
			if (!pattern_covers(b, f->resource_name))
				return false;
		} else if (strcmp(f->resource_name, b->resource_name)) {
			return false;
		}
	}
	if (f->principal && strcmp(f->principal, b->principal))
		return false;
	if (f->host && strcmp(f->host, b->host))
		return false;
	if (f->operation != ACL_OP_ANY && f->operation != b->operation)
		return false;
	return f->permission == ACL_PERM_ANY || f->permission == b->permission;
}

/* "User:NAME": Kafka parses a principal as TYPE:NAME and refuses one
 * without the colon. */
static const char *principal_invalid(const char *p)
{
	if (!strchr(p, ':') || p[0] == ':')
		return "Could not parse principal: the principal type and name must be separated "
		       "by a colon (User:NAME)";
	if (strlen(p) > SL_ACL_PRINCIPAL_BYTES_MAX)
		return "Principal too long";
	return NULL;
}

const char *acl_binding_invalid(const struct acl_binding *b)
{
	if (b->resource_type < ACL_RESOURCE_TOPIC || b->resource_type > ACL_RESOURCE_TRANSACTIONAL_ID)
		return "Invalid resource type: only TOPIC, GROUP, CLUSTER and TRANSACTIONAL_ID "
		       "are supported";
	if (b->pattern_type != ACL_PATTERN_LITERAL && b->pattern_type != ACL_PATTERN_PREFIXED)
		return "Invalid patternType: only LITERAL and PREFIXED can be stored";
	if (b->operation < ACL_OP_ALL || b->operation > ACL_OP_DESCRIBE_TOKENS)
		return "Invalid operation";
	if (b->permission != ACL_PERM_ALLOW && b->permission != ACL_PERM_DENY)
		return "Invalid permissionType";
	if (!b->resource_name || !b->resource_name[0])
		return "Invalid empty resource name";
	if (strlen(b->resource_name) > SL_ACL_NAME_BYTES_MAX)
		return "Resource name too long";
	if (b->resource_type == ACL_RESOURCE_CLUSTER && strcmp(b->resource_name, ACL_CLUSTER_NAME))
		return "The only valid name for the CLUSTER resource is " ACL_CLUSTER_NAME;
	if (!b->principal)
		return "Invalid null principal";
	const char *why = principal_invalid(b->principal);
	if (why)
		return why;
	if (!b->host || !b->host[0])
		return "Invalid null or empty host";
	if (strlen(b->host) > SL_ACL_HOST_BYTES_MAX)
		return "Host too long";
	return NULL;
}

const char *acl_filter_invalid(const struct acl_filter *f)
{
	/* Kafka's requests refuse UNKNOWN anywhere in a filter. */
	if (f->resource_type <= ACL_RESOURCE_UNKNOWN || f->resource_type > ACL_RESOURCE_USER ||
	    f->pattern_type <= ACL_PATTERN_UNKNOWN || f->pattern_type > ACL_PATTERN_PREFIXED ||
	    f->operation <= ACL_OP_UNKNOWN || f->operation > ACL_OP_DESCRIBE_TOKENS ||
	    f->permission <= ACL_PERM_UNKNOWN || f->permission > ACL_PERM_ALLOW)
		return "The filter contains UNKNOWN elements";
	if (f->principal && f->principal[0] && principal_invalid(f->principal))
		return principal_invalid(f->principal);
	return NULL;
}

#define OP_BIT(op) (1u << (op))

uint32_t acl_supported_operations(int8_t resource_type)
{
	switch (resource_type) {
	case ACL_RESOURCE_TOPIC:
		return OP_BIT(ACL_OP_READ) | OP_BIT(ACL_OP_WRITE) | OP_BIT(ACL_OP_CREATE) |
		       OP_BIT(ACL_OP_DESCRIBE) | OP_BIT(ACL_OP_DELETE) | OP_BIT(ACL_OP_ALTER) |
		       OP_BIT(ACL_OP_DESCRIBE_CONFIGS) | OP_BIT(ACL_OP_ALTER_CONFIGS);
	case ACL_RESOURCE_GROUP:
		return OP_BIT(ACL_OP_READ) | OP_BIT(ACL_OP_DESCRIBE) | OP_BIT(ACL_OP_DELETE);
	case ACL_RESOURCE_CLUSTER:
		return OP_BIT(ACL_OP_CREATE) | OP_BIT(ACL_OP_CLUSTER_ACTION) |
		       OP_BIT(ACL_OP_DESCRIBE_CONFIGS) | OP_BIT(ACL_OP_ALTER_CONFIGS) |
		       OP_BIT(ACL_OP_IDEMPOTENT_WRITE) | OP_BIT(ACL_OP_ALTER) | OP_BIT(ACL_OP_DESCRIBE);
	case ACL_RESOURCE_TRANSACTIONAL_ID:
		return OP_BIT(ACL_OP_DESCRIBE) | OP_BIT(ACL_OP_WRITE);
	case ACL_RESOURCE_DELEGATION_TOKEN:
		return OP_BIT(ACL_OP_DESCRIBE);
	case ACL_RESOURCE_USER:
		return OP_BIT(ACL_OP_CREATE_TOKENS) | OP_BIT(ACL_OP_DESCRIBE_TOKENS);
	default:
		return 0;
	}
}

int32_t authz_operations(const struct authorizer *z, const char *principal, const char *host,
			 int8_t resource_type, const char *name)
{
	uint32_t supported = acl_supported_operations(resource_type), ops = 0;
	for (int op = 0; op < 32; op++)
		if ((supported & OP_BIT(op)) &&
		    authz_allowed(z, principal, host, resource_type, name, (int8_t)op))
			ops |= OP_BIT(op);
	return (int32_t)ops;
}

/* ---- names ---- */

static const char *const resource_names[] = { "UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER",
					      "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER" };
static const char *const pattern_names[] = { "UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED" };
static const char *const operation_names[] = {
	"UNKNOWN", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
	"CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE",
	"CREATE_TOKENS", "DESCRIBE_TOKENS"
};
static const char *const permission_names[] = { "UNKNOWN", "ANY", "DENY", "ALLOW" };

#define NAME_OF(table, v) ((v) >= 0 && (size_t)(v) < sizeof table / sizeof table[0] ? table[v] : "UNKNOWN")

const char *acl_resource_name(int8_t v) { return NAME_OF(resource_names, v); }
const char *acl_pattern_name(int8_t v) { return NAME_OF(pattern_names, v); }
const char *acl_operation_name(int8_t v) { return NAME_OF(operation_names, v); }
const char *acl_permission_name(int8_t v) { return NAME_OF(permission_names, v); }

/* kafka-acls.sh spells them as Java's enums or in camel case
 * (IdempotentWrite, DescribeConfigs): compare ignoring case, '_' and '-'. */
static bool name_equal(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_' || *a == '-')
			a++;
		while (*b == '_' || *b == '-')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		if (toupper((unsigned char)*a++) != toupper((unsigned char)*b++))
			return false;
	}
}

static int parse_in(const char *const *table, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (name_equal(table[i], s))
			return (int)i;
	return -1;
}

#define PARSE_IN(table, s) parse_in(table, sizeof table / sizeof table[0], s)

int acl_resource_parse(const char *s) { return PARSE_IN(resource_names, s); }
int acl_pattern_parse(const char *s) { return PARSE_IN(pattern_names, s); }
int acl_operation_parse(const char *s) { return PARSE_IN(operation_names, s); }

void acl_bindings_free(struct acl_binding *b, size_t n)
{
	for (size_t i = 0; b && i < n; i++) {
		free(b[i].resource_name);
		free(b[i].principal);
		free(b[i].host);
	}
	free(b);
}
