/*
 * rbac.c: the decision function of rbac.h.  The order of the checks is the
 * contract, and docs/security.md repeats it:
 *
 *   1. public routes (auth endpoints; health and metrics when the policy
 *      makes them public) are allowed for anyone;
 *   2. no valid token: 401;
 *   3. the effective role is the user's (login) or the lower of key and
 *      user (SDK); NONE is 403;
 *   4. token type: SDK tokens may call data and collection routes, /v1/me,
 *      and cluster admin routes with an admin key scoped to "*"; never
 *      keys, account, grants or user management;
 *   5. role: each route class has a minimum role;
 *   6. scope: a route naming a collection needs it in the key's scope, and
 *      a global route (cluster admin, metrics) needs the scope "*";
 *   7. collection right (non-admins): read needs a grant, write needs a
 *      write grant or ownership, delete and grants need ownership.
 */
#include "rbac.h"

#include <stddef.h>
#include <string.h>

static const char *const role_names[] = {"none", "readonly", "write", "admin"};
static const char *const route_names[] = {
	"health", "metrics", "auth", "me", "account", "keys", "collection_list", "data_read",
	"data_write", "collection_create", "collection_delete", "grants", "admin_cluster",
	"admin_users",
};

const char *
rbac_role_name(RbacRole r)
{
	return (unsigned) r <= RBAC_ROLE_ADMIN ? role_names[r] : "?";
}

const char *
rbac_route_name(RbacRoute r)
{
	return (unsigned) r < RBAC_ROUTE_COUNT ? route_names[r] : "?";
}

const char *
rbac_token_name(RbacToken t)
{
	return t == RBAC_TOKEN_LOGIN ? "login" : t == RBAC_TOKEN_SDK ? "sdk" : "none";
}

bool
rbac_parse_role(const char *s, RbacRole *out)
{
	int i;

	for (i = RBAC_ROLE_READONLY; s && i <= RBAC_ROLE_ADMIN; i++)
		if (strcmp(s, role_names[i]) == 0) {
			*out = (RbacRole) i;
			return true;
		}
	return false;
}

bool
rbac_key_role_allowed(RbacRole user, RbacRole key)
{
	return key >= RBAC_ROLE_READONLY && key <= user && user <= RBAC_ROLE_ADMIN;
}

RbacRole
rbac_effective_role(const RbacSubject *s)
{
	RbacRole u = s->user_role > RBAC_ROLE_ADMIN ? RBAC_ROLE_NONE : s->user_role;

	if (s->token == RBAC_TOKEN_LOGIN)
		return u;
	if (s->token == RBAC_TOKEN_SDK) {
		RbacRole k = s->key_role > RBAC_ROLE_ADMIN ? RBAC_ROLE_NONE : s->key_role;

		return k < u ? k : u;
	}
	return RBAC_ROLE_NONE;
}

/* True when s's scope is everything ("*" or a login token). */
static bool
scope_all(const RbacSubject *s)
{
	int i;

	if (s->token == RBAC_TOKEN_LOGIN)
		return true;
	for (i = 0; i < s->ncollections && s->collections; i++)
		if (s->collections[i] && strcmp(s->collections[i], "*") == 0)
			return true;
	return false;
}

bool
rbac_in_scope(const RbacSubject *s, const char *collection)
{
	int i;

	if (scope_all(s))
		return true;
	if (collection == NULL)
		return false;
	for (i = 0; i < s->ncollections && s->collections; i++)
		if (s->collections[i] && strcmp(s->collections[i], collection) == 0)
			return true;
	return false;
}

#define DENY(code, why) \
	do { \
		if (reason) \
			*reason = (why); \
		return (code); \
	} while (0)

RbacDecision
rbac_check(const RbacPolicy *p, const RbacSubject *s, const RbacTarget *t, const char **reason)
{
	RbacRole role;
	bool admin;
	RbacRoute r = t->route;

	if (reason)
		*reason = NULL;
	if ((unsigned) r >= RBAC_ROUTE_COUNT)
		DENY(RBAC_FORBIDDEN, "unknown route");

	/* 1. public routes */
	if (r == RBAC_ROUTE_AUTH || (r == RBAC_ROUTE_HEALTH && p->health_public) ||
		(r == RBAC_ROUTE_METRICS && p->metrics_public))
		return RBAC_ALLOW;

	/* 2. credentials */
	if (s == NULL || (s->token != RBAC_TOKEN_LOGIN && s->token != RBAC_TOKEN_SDK))
		DENY(RBAC_UNAUTHORIZED, "missing or invalid credentials");

	/* 3. effective role */
	role = rbac_effective_role(s);
	if (role == RBAC_ROLE_NONE)
		DENY(RBAC_FORBIDDEN, "no role");
	admin = role == RBAC_ROLE_ADMIN;

	/* 4. token type */
	if (s->token == RBAC_TOKEN_SDK &&
		(r == RBAC_ROUTE_ACCOUNT || r == RBAC_ROUTE_KEYS || r == RBAC_ROUTE_GRANTS ||
		 r == RBAC_ROUTE_ADMIN_USERS))
		DENY(RBAC_FORBIDDEN, "SDK tokens cannot manage keys, accounts, grants or users; log in");

	switch (r) {
		case RBAC_ROUTE_ME:
		case RBAC_ROUTE_ACCOUNT:
		case RBAC_ROUTE_KEYS:
		case RBAC_ROUTE_COLLECTION_LIST:
			return RBAC_ALLOW;

		case RBAC_ROUTE_HEALTH:
		case RBAC_ROUTE_METRICS:
		case RBAC_ROUTE_ADMIN_CLUSTER:
		case RBAC_ROUTE_ADMIN_USERS:
			/* 5 and 6: global routes need admin and an unscoped token */
			if (!admin)
				DENY(RBAC_FORBIDDEN, "admin role required");
			if (!scope_all(s))
				DENY(RBAC_FORBIDDEN, "a collection-scoped key cannot call cluster-wide routes");
			return RBAC_ALLOW;

		case RBAC_ROUTE_DATA_READ:
		case RBAC_ROUTE_DATA_WRITE:
		case RBAC_ROUTE_COLLECTION_CREATE:
		case RBAC_ROUTE_COLLECTION_DELETE:
		case RBAC_ROUTE_GRANTS:
			break;

		default:
			DENY(RBAC_FORBIDDEN, "unknown route");
	}

	/* 5. role */
	if (r != RBAC_ROUTE_DATA_READ && role < RBAC_ROLE_WRITE)
		DENY(RBAC_FORBIDDEN, "write role required");

	/* 6. scope */
	if (t->collection == NULL) {
		/* a create whose body names no collection (malformed JSON, no
		 * name): nothing can be made, so let its handler answer the 400 */
		if (r == RBAC_ROUTE_COLLECTION_CREATE)
			return RBAC_ALLOW;
		DENY(RBAC_FORBIDDEN, "no collection named");
	}
	if (!rbac_in_scope(s, t->collection))
		DENY(RBAC_FORBIDDEN, "collection not in this key's scope");

	/* 7. the user's right on the collection */
	if (admin || r == RBAC_ROUTE_COLLECTION_CREATE)
		return RBAC_ALLOW;
	switch (r) {
		case RBAC_ROUTE_DATA_READ:
			if (t->access < RBAC_ACCESS_READ)
				DENY(RBAC_FORBIDDEN, "no access to this collection");
			return RBAC_ALLOW;
		case RBAC_ROUTE_DATA_WRITE:
			if (t->access < RBAC_ACCESS_WRITE)
				DENY(RBAC_FORBIDDEN, "no write access to this collection");
			return RBAC_ALLOW;
		default:
			if (t->access != RBAC_ACCESS_OWNER)
				DENY(RBAC_FORBIDDEN, "only the owner or an admin may do this");
			return RBAC_ALLOW;
	}
}

/* True when path equals prefix or continues it with "/" (or ends). */
static bool
under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool
rbac_route_classify(const char *method, const char *path, char *collection, size_t len,
					RbacRoute *out)
{
	static const char *const reads[] = {"points/get", "search", "search/batch", "count",
										"scroll", "recommend"};
	bool get;
	const char *name, *rest;
	size_t n, i;

	if (collection && len)
		collection[0] = '\0';
	if (method == NULL || path == NULL)
		return false;
	get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (get && (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0))
		*out = RBAC_ROUTE_HEALTH;
	else if (get && strcmp(path, "/metrics") == 0)
		*out = RBAC_ROUTE_METRICS;
	else if (under(path, "/v1/auth") || (get && strcmp(path, "/v1/openapi.json") == 0)
			 || (get && under(path, "/console")))
		*out = RBAC_ROUTE_AUTH;
	else if (get && strcmp(path, "/v1/me") == 0)
		*out = RBAC_ROUTE_ME;
	else if (under(path, "/v1/me/password"))
		*out = RBAC_ROUTE_ACCOUNT;
	else if (under(path, "/v1/keys"))
		*out = RBAC_ROUTE_KEYS;
	else if (under(path, "/v1/admin/users") || under(path, "/v1/admin/audit"))
		*out = RBAC_ROUTE_ADMIN_USERS;
	else if (under(path, "/v1/admin"))
		*out = RBAC_ROUTE_ADMIN_CLUSTER;
	else if (strcmp(path, "/v1/collections") == 0 || strcmp(path, "/v1/collections/") == 0) {
		if (get)
			*out = RBAC_ROUTE_COLLECTION_LIST;
		else if (strcmp(method, "POST") == 0)
			*out = RBAC_ROUTE_COLLECTION_CREATE;
		else
			return false;
	} else if (strncmp(path, "/v1/collections/", 16) == 0) {
		name = path + 16;
		rest = strchr(name, '/');
		n = rest ? (size_t) (rest - name) : strlen(name);
		if (n == 0 || collection == NULL || n >= len)
			return false;
		memcpy(collection, name, n);
		collection[n] = '\0';
		if (rest == NULL || rest[1] == '\0') {
			if (get)
				*out = RBAC_ROUTE_DATA_READ;
			else if (strcmp(method, "DELETE") == 0)
				*out = RBAC_ROUTE_COLLECTION_DELETE;
			else {
				collection[0] = '\0';
				return false;
			}
		} else if (under(rest + 1, "grants"))
			*out = RBAC_ROUTE_GRANTS;
		else {
			*out = RBAC_ROUTE_DATA_WRITE;
			if (get)
				*out = RBAC_ROUTE_DATA_READ;
			else if (strcmp(method, "POST") == 0)
				for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
					if (strcmp(rest + 1, reads[i]) == 0)
						*out = RBAC_ROUTE_DATA_READ;
		}
	} else
		return false;
	return true;
}
