/*
 * rbac.h: the authorisation decision of the coordinator, as one pure
 * function over a table of route classes, token types, roles, key scopes
 * and collection rights.  docs/security.md prints the same table, and
 * test_rbac checks every cell and that the document matches the code.
 *
 * Inputs come from the verified token (jwt.h) and the metadata: the user's
 * role, for SDK tokens the key's role and collections, and the user's right
 * on the collection the route names (owner, granted write, granted read or
 * none).  Keys narrow their user's rights and never widen them: an SDK
 * token acts with the lower of the key's and the user's roles, and only on
 * collections in the key's scope.  The answer is ALLOW, 401 (no or bad
 * credentials) or 403 (authenticated but not allowed), with a reason that
 * is safe to return to the client.
 */
#ifndef VX_RBAC_H
#define VX_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#define RBAC_WARN_UNUSED __attribute__((warn_unused_result))

typedef enum RbacRole {
	RBAC_ROLE_NONE = 0,
	RBAC_ROLE_READONLY = 1,
	RBAC_ROLE_WRITE = 2,
	RBAC_ROLE_ADMIN = 3
} RbacRole;

typedef enum RbacToken {
	RBAC_TOKEN_NONE = 0,		/* no, malformed, expired or revoked credentials */
	RBAC_TOKEN_LOGIN = 1,		/* login JWT */
	RBAC_TOKEN_SDK = 2			/* SDK JWT minted from an API key */
} RbacToken;

/* The user's right on the collection a route names. */
typedef enum RbacAccess {
	RBAC_ACCESS_NONE = 0,
	RBAC_ACCESS_READ = 1,		/* granted readonly */
	RBAC_ACCESS_WRITE = 2,		/* granted write */
	RBAC_ACCESS_OWNER = 3		/* created it */
} RbacAccess;

typedef enum RbacRoute {
	RBAC_ROUTE_HEALTH = 0,			/* GET /healthz, /readyz */
	RBAC_ROUTE_METRICS,				/* GET /metrics */
	RBAC_ROUTE_AUTH,				/* /v1/auth/..., GET /v1/openapi.json: public */
	RBAC_ROUTE_ME,					/* GET /v1/me */
	RBAC_ROUTE_ACCOUNT,				/* /v1/me/password: change own password */
	RBAC_ROUTE_KEYS,				/* /v1/keys, /v1/keys/{id}, /v1/keys/{id}/rotate */
	RBAC_ROUTE_COLLECTION_LIST,		/* GET /v1/collections (filtered by scope) */
	RBAC_ROUTE_DATA_READ,			/* search, get, count, collection info */
	RBAC_ROUTE_DATA_WRITE,			/* upsert and delete points */
	RBAC_ROUTE_COLLECTION_CREATE,	/* POST /v1/collections */
	RBAC_ROUTE_COLLECTION_DELETE,	/* DELETE /v1/collections/{name} */
	RBAC_ROUTE_GRANTS,				/* POST/DELETE /v1/collections/{name}/grants */
	RBAC_ROUTE_ADMIN_CLUSTER,		/* /v1/admin/{stats,nodes,collections,shards,rebalance,slow} */
	RBAC_ROUTE_ADMIN_USERS,			/* /v1/admin/users*, quotas, audit */
	RBAC_ROUTE_COUNT
} RbacRoute;

typedef enum RbacDecision {
	RBAC_ALLOW = 0,
	RBAC_UNAUTHORIZED = 401,
	RBAC_FORBIDDEN = 403
} RbacDecision;

/* What the configuration decides. */
typedef struct RbacPolicy {
	bool health_public;			/* /healthz and /readyz without a token */
	bool metrics_public;		/* /metrics without a token; else admin only */
} RbacPolicy;

typedef struct RbacSubject {
	RbacToken token;
	RbacRole user_role;			/* the account's role */
	RbacRole key_role;			/* SDK tokens: the key's role */
	const char *const *collections;	/* SDK tokens: the key's scope (names or "*") */
	int ncollections;
} RbacSubject;

typedef struct RbacTarget {
	RbacRoute route;
	const char *collection;		/* the collection the route names, or NULL */
	RbacAccess access;			/* the user's right on it (ignored for admins) */
} RbacTarget;

/*
 * Decide whether subject s may call target t under policy p.  *reason (may
 * be NULL) gets a static, client-safe explanation when the answer is not
 * RBAC_ALLOW.
 */
RbacDecision rbac_check(const RbacPolicy *p, const RbacSubject *s, const RbacTarget *t,
						const char **reason) RBAC_WARN_UNUSED;

/*
 * Map an HTTP method and path (no query string) to its route class, and
 * copy the collection named in the path (the raw segment, at most len-1
 * bytes) into collection, or "" when there is none.  False for paths no
 * class covers (the router answers 404) and for a collection segment that
 * does not fit.  Under /v1/collections/{name}/, GET and the read endpoints
 * (points/get, search, search/batch, count, scroll, recommend) are reads and
 * any other method or endpoint is a write, so a new endpoint is never less
 * protected than a write.  POST /v1/collections names its collection in the
 * body: the caller fills RbacTarget.collection from it.
 */
bool rbac_route_classify(const char *method, const char *path, char *collection, size_t len,
						 RbacRoute *out) RBAC_WARN_UNUSED;

/* The role an SDK token acts with: the lower of key and user role. */
RbacRole rbac_effective_role(const RbacSubject *s);
/* True when collection is in s's scope (login tokens: always). */
bool rbac_in_scope(const RbacSubject *s, const char *collection);
/* May a user of role user create a key of role key?  (key <= user) */
bool rbac_key_role_allowed(RbacRole user, RbacRole key);

bool rbac_parse_role(const char *s, RbacRole *out) RBAC_WARN_UNUSED;
const char *rbac_role_name(RbacRole r);
const char *rbac_route_name(RbacRoute r);
const char *rbac_token_name(RbacToken t);

#endif
