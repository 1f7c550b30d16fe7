/*
 * authz.c: the request middleware (see authz.h) and the process-wide auth
 * state: JWT signer and verifier, the API-key/refresh-token hasher, the
 * argon2id pool, the rate limiters and the accounts snapshot.
 *
 * The snapshot is four jansson objects used as hash maps, replaced whole
 * when a reload finishes:
 *   users   {"<user id>": "<role>"}
 *   keys    {"<key id>": {"u": user id, "r": role, "c": [collections], "e": expiry or 0}}
 *   owners  {"<collection>": user id}
 *   grants  {"<collection>\x1f<user id>": "<role>"}
 * Revoked keys are not loaded, so a revoked key's SDK tokens fail as soon as
 * a reload (or this coordinator's own revocation) drops the key.
 *
 * Beside it, the revocation list (vectron_meta.revocation, migration 4):
 *   revoked {"<kind>:<target>": [[effective_at, issued_before or null], ...]}
 * with kind key, family or user.  It covers what the live-key list cannot
 * say: the tokens minted from a key's old secret once a rotation's grace
 * is over, logged-out refresh families (authz_family_revoked), and deleted
 * users.  Triggers write its rows in the transaction of the change and
 * NOTIFY vectron_auth; each coordinator LISTENs on its own connection
 * (metadata_auth_listen) and reloads the whole snapshot at once, and the
 * timer reloads it every auth_cache_poll_ms anyway, because a NOTIFY sent
 * while the listener was disconnected is lost (a reconnected listener also
 * asks for a reload).  A reload asked for while one runs runs again after
 * it, so a change committed mid-load is never missed.
 */
#include "authz.h"

#include "authfam.h"
#include "config.h"
#include "log.h"
#include "metadata.h"
#include "obs.h"
#include "quota.h"
#include "ratelimit.h"
#include "shardmap.h"
#include "workerconn.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool az_on;
static JwtSigner *az_signer;
static JwtVerifier *az_verifier;
static ApikeyHasher az_hasher;
static PasswordPool *az_pool;
static PasswordParams az_params;
static char az_dummy[PASSWORD_HASH_SIZE];
static Ratelimit *az_rl_ip;
static Ratelimit *az_rl_key;
static struct event *az_timer;
static bool az_loading;
static bool az_reload_again;	/* a change was announced during a load */
static PgPool *az_listener;
static uint64_t az_last_prune_ms;
static AuthCaller az_caller;

static json_t *c_users, *c_keys, *c_owners, *c_grants, *c_quota, *c_revoked;

/*
 * Owners recorded here by a create ({"<collection>": [user, ms]}), kept until
 * a snapshot shows the collection's owner: a reload that read the metadata
 * before the create committed must not make the new collection ownerless
 * (its creator would get 403 until the next reload).
 */
static json_t *c_pending_owners;

#define PENDING_OWNER_MS (5 * 60 * 1000)

/* Fold the pending owners into a freshly loaded owners object o. */
static void
merge_pending_owners(json_t *o)
{
	const char *name;
	json_t *v;
	void *tmp;
	uint64_t now = util_now_ms();

	if (!c_pending_owners)
		return;
	json_object_foreach_safe(c_pending_owners, tmp, name, v) {
		if (json_object_get(o, name) ||
			now - (uint64_t) json_integer_value(json_array_get(v, 1)) > PENDING_OWNER_MS)
			json_object_del(c_pending_owners, name);	/* the snapshot knows, or never will */
		else
			json_object_set(o, name, json_array_get(v, 0));
	}
}

/* Revocation rows older than this are pruned: no token lives that long
 * (auth_login_ttl_s and auth_sdk_ttl_s are at most a day). */
#define REVOCATION_KEEP "2 days"
#define PRUNE_EVERY_MS 60000

bool
authz_enabled(void)
{
	return az_on;
}

JwtSigner *
authz_signer(void)
{
	return az_signer;
}

JwtVerifier *
authz_verifier(void)
{
	return az_verifier;
}

const ApikeyHasher *
authz_hasher(void)
{
	return &az_hasher;
}

PasswordPool *
authz_password_pool(void)
{
	return az_pool;
}

const PasswordParams *
authz_password_params(void)
{
	return &az_params;
}

const char *
authz_dummy_hash(void)
{
	return az_dummy;
}

const AuthCaller *
authz_caller(void)
{
	return az_on ? &az_caller : NULL;
}

/* ---- the snapshot ---- */

static void
ikey(char *buf, size_t len, long long id)
{
	snprintf(buf, len, "%lld", id);
}

static void
gkey(char *buf, size_t len, const char *coll, long long user)
{
	snprintf(buf, len, "%s\x1f%lld", coll, user);
}

/* Build the snapshot from the five result sets (see the loader's SQL). */
static void
cache_install(PGresult *users, PGresult *keys, PGresult *owners, PGresult *grants,
			  PGresult *revs)
{
	json_t *u = json_object(), *k = json_object(), *o = json_object(), *g = json_object();
	json_t *q = json_object(), *rv = json_object();
	char buf[256];

	for (int i = 0; i < PQntuples(users); i++) {
		json_object_set_new(u, PQgetvalue(users, i, 0), json_string(PQgetvalue(users, i, 1)));
		if (!PQgetisnull(users, i, 2))
			json_object_set_new(q, PQgetvalue(users, i, 0),
								json_integer(atoll(PQgetvalue(users, i, 2))));
	}
	for (int i = 0; i < PQntuples(keys); i++) {
		json_t *c = json_loads(PQgetvalue(keys, i, 3), 0, NULL);

		json_object_set_new(k, PQgetvalue(keys, i, 0),
							json_pack("{s:I,s:s,s:o,s:I}", "u",
									  (json_int_t) atoll(PQgetvalue(keys, i, 1)), "r",
									  PQgetvalue(keys, i, 2), "c", c ? c : json_array(), "e",
									  (json_int_t) atoll(PQgetvalue(keys, i, 4))));
	}
	for (int i = 0; i < PQntuples(owners); i++)
		json_object_set_new(o, PQgetvalue(owners, i, 0),
							json_integer(atoll(PQgetvalue(owners, i, 1))));
	for (int i = 0; i < PQntuples(grants); i++) {
		gkey(buf, sizeof(buf), PQgetvalue(grants, i, 0), atoll(PQgetvalue(grants, i, 1)));
		json_object_set_new(g, buf, json_string(PQgetvalue(grants, i, 2)));
	}
	for (int i = 0; i < PQntuples(revs); i++) {
		json_t *list;

		snprintf(buf, sizeof(buf), "%s:%s", PQgetvalue(revs, i, 0), PQgetvalue(revs, i, 1));
		list = json_object_get(rv, buf);
		if (!list) {
			list = json_array();
			json_object_set_new(rv, buf, list);
		}
		json_array_append_new(list, json_pack("[f,o]", atof(PQgetvalue(revs, i, 2)),
											  PQgetisnull(revs, i, 3) ? json_null() :
											  json_integer(atoll(PQgetvalue(revs, i, 3)))));
	}
	json_decref(c_revoked);
	c_revoked = rv;
	json_decref(c_users);
	json_decref(c_keys);
	json_decref(c_owners);
	json_decref(c_grants);
	json_decref(c_quota);
	c_quota = q;
	c_users = u;
	c_keys = k;
	merge_pending_owners(o);
	c_owners = o;
	c_grants = g;
}

#define CACHE_NSQL 5
static const char *const CACHE_SQL[CACHE_NSQL] = {
	"SELECT id, role, max_collections FROM vectron_meta.app_user",
	"SELECT id, user_id, role, array_to_json(collections)::text, "
	"coalesce(extract(epoch FROM expires_at)::bigint, 0) FROM vectron_meta.api_key "
	"WHERE NOT revoked AND (expires_at IS NULL OR expires_at > now())",
	"SELECT name, user_id FROM vectron_meta.collection_owner",
	"SELECT collection, user_id, role FROM vectron_meta.grant_",
	"SELECT kind, target, extract(epoch FROM effective_at)::float8, issued_before "
	"FROM vectron_meta.revocation WHERE effective_at > now() - interval '" REVOCATION_KEEP "'",
};

static void cache_reload(void);

static void
cache_loaded(PgJob *job, void *arg)
{
	az_loading = false;
	if (job->ok)
		cache_install(job->results[0], job->results[1], job->results[2], job->results[3],
					  job->results[4]);
	else
		log_warning("auth: reloading the accounts snapshot failed: %s",
					job->errmsg ? job->errmsg : "?");
	pgjob_free(job);
	if (az_reload_again && az_on) {
		az_reload_again = false;
		cache_reload();
	}
}

static void
cache_reload(void)
{
	PgJob *job;

	if (az_loading) {
		/* the running load may have read before the change committed */
		az_reload_again = true;
		return;
	}
	az_loading = true;
	job = pgjob_new(cache_loaded, NULL);
	job->timeout_ms = 10000;
	for (int i = 0; i < CACHE_NSQL; i++)
		pgjob_add0(job, CACHE_SQL[i]);
	pgjob_submit(metadata_pool(), job);
}

static void
prune_done(PgJob *job, void *arg)
{
	if (!job->ok)
		log_warning("auth: pruning the revocation list failed: %s",
					job->errmsg ? job->errmsg : "?");
	pgjob_free(job);
}

/*
 * NOTIFY vectron_auth: an account, key, family, owner or grant changed
 * somewhere (payload "<kind>:<id>", see metadata.c's migration 4), or the
 * listener has just (re)connected (empty payload).  Either way, reload.
 */
static void
on_auth_notify(const char *channel, const char *payload)
{
	if (!az_on)
		return;
	if (payload[0])
		log_debug("auth: %s %s: reloading the accounts snapshot", channel, payload);
	else
		log_info("auth: listening on %s; reloading the accounts snapshot", channel);
	cache_reload();
}

/* The backstop poll: reload, keep the listener connected, sweep, prune. */
static void
cache_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = util_now_ms();

	cache_reload();
	authfam_poll();
	quota_poll();
	workerconn_listener_keepalive(az_listener);
	ratelimit_sweep(az_rl_ip, now);
	ratelimit_sweep(az_rl_key, now);
	if (now - az_last_prune_ms >= PRUNE_EVERY_MS) {
		PgJob *job = pgjob_new(prune_done, NULL);

		az_last_prune_ms = now;
		pgjob_add0(job, "DELETE FROM vectron_meta.revocation "
				   "WHERE effective_at < now() - interval '" REVOCATION_KEEP "'");
		pgjob_submit(metadata_pool(), job);
	}
}

/*
 * Does a row of the revocation list revoke a token of kind:target issued
 * at iat and expiring at exp (0: ignore), at the current time?
 */
static bool
revoked_by_list(const char *kind, const char *target, int64_t iat, int64_t exp)
{
	char k[128];
	json_t *list, *row;
	size_t i;
	struct timespec ts;
	double now;

	snprintf(k, sizeof(k), "%s:%s", kind, target);
	list = json_object_get(c_revoked, k);
	if (!list)
		return false;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double) ts.tv_sec + ts.tv_nsec / 1e9;
	json_array_foreach(list, i, row) {
		double eff = json_real_value(json_array_get(row, 0));
		json_t *before = json_array_get(row, 1);

		if (now < eff)
			continue;			/* a rotation whose grace is still running */
		if (json_is_null(before) || iat <= json_integer_value(before) ||
			(exp > 0 && (double) exp <= eff))
			return true;
	}
	return false;
}

bool
authz_family_revoked(long long family_id)
{
	char t[32];

	if (!az_on)
		return false;
	ikey(t, sizeof(t), family_id);
	return revoked_by_list("family", t, 0, 0);
}

bool
authz_token_revoked(const JwtClaims *c)
{
	if (!az_on)
		return false;
	if (revoked_by_list("user", c->sub, c->iat, c->exp))
		return true;
	return c->type == JWT_TOKEN_SDK && revoked_by_list("key", c->key_id, c->iat, c->exp);
}

void
authz_cache_refresh(void)
{
	if (az_on)
		cache_reload();
}

void
authz_cache_add_user(long long id, const char *role)
{
	char k[32];

	ikey(k, sizeof(k), id);
	json_object_set_new(c_users, k, json_string(role));
}

void
authz_cache_forget_user(long long id)
{
	char k[32];
	const char *kid;
	json_t *v;
	void *tmp;

	ikey(k, sizeof(k), id);
	json_object_del(c_users, k);
	json_object_foreach_safe(c_keys, tmp, kid, v)
		if (json_integer_value(json_object_get(v, "u")) == id)
			json_object_del(c_keys, kid);
}

void
authz_cache_add_key(const char *id, long long user_id, const char *role,
					const char *const *colls, int ncolls, long long expires_at)
{
	json_t *c = json_array();

	for (int i = 0; i < ncolls; i++)
		json_array_append_new(c, json_string(colls[i]));
	json_object_set_new(c_keys, id,
						json_pack("{s:I,s:s,s:o,s:I}", "u", (json_int_t) user_id, "r", role,
								  "c", c, "e", (json_int_t) expires_at));
}

void
authz_cache_forget_key(const char *id)
{
	json_object_del(c_keys, id);
}

void
authz_cache_set_grant(const char *coll, long long user_id, const char *role)
{
	char k[256];

	gkey(k, sizeof(k), coll, user_id);
	if (role)
		json_object_set_new(c_grants, k, json_string(role));
	else
		json_object_del(c_grants, k);
}

void
authz_cache_set_quota(long long user_id, long long max_collections)
{
	char k[32];

	ikey(k, sizeof(k), user_id);
	if (max_collections < 0)
		json_object_del(c_quota, k);
	else
		json_object_set_new(c_quota, k, json_integer(max_collections));
}

long long
authz_quota_collections(long long user_id)
{
	char k[32];
	json_t *v;

	ikey(k, sizeof(k), user_id);
	v = json_object_get(c_quota, k);
	return v ? json_integer_value(v) : -1;
}

long long
authz_owned_collections(long long user_id)
{
	ShardMap *m = shardmap_acquire();
	const char *name;
	json_t *v;
	long long n = 0;

	json_object_foreach(c_owners, name, v)
		if (json_integer_value(v) == user_id && shardmap_collection(m, name))
			n++;
	shardmap_release(m);
	return n;
}

long long
authz_cache_owner(const char *coll)
{
	return json_integer_value(json_object_get(c_owners, coll));
}

/* ---- audit ---- */

static void
audit_done(PgJob *job, void *arg)
{
	if (!job->ok)
		log_warning("auth: writing an audit row failed: %s", job->errmsg ? job->errmsg : "?");
	pgjob_free(job);
}

void
authz_audit(HttpRequest *req, const char *actor, const char *action, const char *target,
			const char *outcome)
{
	ParamList p;
	PgJob *job;

	if (!az_on)
		return;
	params_init(&p);
	params_add(&p, actor);
	params_add(&p, action);
	params_add(&p, target);
	params_add(&p, req ? req->peer_ip : NULL);
	params_add(&p, req ? req->id : NULL);
	params_add(&p, outcome);
	job = pgjob_new(audit_done, NULL);
	pgjob_add(job,
			  "INSERT INTO vectron_meta.audit (actor, action, target, source_ip, request_id, "
			  "outcome) VALUES ($1, $2, $3, $4, $5, $6)",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

/* ---- the decision ---- */

/*
 * The metric label of a refusal: a handful of fixed words, never the
 * message itself (which may grow new wordings, and labels must stay few).
 */
static const char *
failure_kind(const char *reason)
{
	if (!reason || strstr(reason, "required") || strstr(reason, "missing"))
		return "missing";
	if (strstr(reason, "expired"))
		return "expired";
	if (strstr(reason, "revoked") || strstr(reason, "logged out") || strstr(reason, "reuse"))
		return "revoked";
	if (strstr(reason, "email or password"))
		return "bad_password";
	return "invalid";
}

void
authz_respond_401(HttpRequest *req, const char *reason)
{
	obs_auth_failure(failure_kind(reason));
	free(req->extra_headers);
	req->extra_headers = xstrdup("WWW-Authenticate: Bearer realm=\"vectron\"\r\n");
	http_respond_error(req, 401, "UNAUTHORIZED", "%s", reason);
}

static RbacAccess
access_of(const char *coll, long long user)
{
	char k[256];
	const char *g;

	if (!coll || !coll[0])
		return RBAC_ACCESS_NONE;
	if (authz_cache_owner(coll) == user)
		return RBAC_ACCESS_OWNER;
	gkey(k, sizeof(k), coll, user);
	g = json_string_value(json_object_get(c_grants, k));
	if (g && strcmp(g, "write") == 0)
		return RBAC_ACCESS_WRITE;
	if (g)
		return RBAC_ACCESS_READ;
	return RBAC_ACCESS_NONE;
}

/*
 * Authenticate: fill az_caller from the Authorization header.  Returns NULL
 * when authenticated (or no header), else a client-safe reason for 401.
 */
static const char *
authenticate(HttpRequest *req, bool *present)
{
	static char why[160];
	const char *h = req->authorization, *role;
	JwtClaims *c = &az_caller.claims;
	char k[32];

	memset(&az_caller, 0, sizeof(az_caller));
	*present = h != NULL;
	if (!h)
		return NULL;
	if (strncasecmp(h, "Bearer ", 7) != 0 || !h[7])
		return "expected Authorization: Bearer <token>";
	h += 7;
	if (strncmp(h, "vk_", 3) == 0)
		return "an API key is not a bearer token; exchange it at POST /v1/auth/token";
	if (!jwt_verify(az_verifier, h, time(NULL), c, why, sizeof(why)))
		return why;
	az_caller.user_id = atoll(c->sub);
	ikey(k, sizeof(k), az_caller.user_id);
	role = json_string_value(json_object_get(c_users, k));
	if (!role || !rbac_parse_role(role, &az_caller.user_role))
		return "the token's user does not exist";
	/*
	 * logout, refresh reuse, password change or reset revoked the session:
	 * authfam.c knows families revoked here at once and the others from its
	 * poll; the revocation list (NOTIFY-fed) knows them within milliseconds
	 * on every coordinator
	 */
	if (c->type == JWT_TOKEN_LOGIN && c->family[0] &&
		(authfam_revoked(c->family) || authz_family_revoked(atoll(c->family))))
		return "the session of this token was logged out or revoked";
	if (c->type == JWT_TOKEN_SDK) {
		json_t *kj = json_object_get(c_keys, c->key_id);
		json_int_t e = json_integer_value(json_object_get(kj, "e"));

		if (!kj || json_integer_value(json_object_get(kj, "u")) != az_caller.user_id ||
			(e > 0 && e <= (json_int_t) time(NULL)))
			return "the token's API key is revoked or expired";
	}
	if (authz_token_revoked(c))
		return c->type == JWT_TOKEN_SDK ? "the token's API key is revoked or rotated out" :
			"the token is revoked";
	az_caller.authenticated = true;
	return NULL;
}

/* The collection POST /v1/collections names in its body, if any. */
static void
create_name(HttpRequest *req, char *out, size_t len)
{
	size_t n = evbuffer_get_length(req->body);
	unsigned char *s;
	json_t *j;

	out[0] = '\0';
	if (n == 0)
		return;
	s = evbuffer_pullup(req->body, n);
	j = json_loadb((const char *) s, n, 0, NULL);
	if (json_is_string(json_object_get(j, "name")))
		util_strlcpy(out, json_string_value(json_object_get(j, "name")), len);
	json_decref(j);
}

/*
 * The caller creates coll: record them as its owner in the snapshot at once
 * (so their next request works); the metadata row is written in the
 * create's own transaction (authz_add_owner).
 */
static void
record_owner(const char *coll, long long user)
{
	ShardMap *m = shardmap_acquire();
	bool exists = shardmap_collection(m, coll) != NULL;

	shardmap_release(m);
	if (exists || !util_valid_name(coll))
		return;
	json_object_set_new(c_owners, coll, json_integer(user));
	if (!c_pending_owners)
		c_pending_owners = json_object();
	json_object_set_new(c_pending_owners, coll,
						json_pack("[I,I]", (json_int_t) user, (json_int_t) util_now_ms()));
}

void
authz_add_owner(PgJob *job, const char *coll)
{
	char uid[32];
	ParamList p;

	if (!az_on || !az_caller.authenticated)
		return;
	ikey(uid, sizeof(uid), az_caller.user_id);
	params_init(&p);
	params_add(&p, coll);
	params_add(&p, uid);
	/* a name whose old collection is gone is taken over, its grants dropped */
	pgjob_add(job, "DELETE FROM vectron_meta.grant_ WHERE collection = $1 AND $2::bigint > 0", &p);
	pgjob_add(job,
			  "INSERT INTO vectron_meta.collection_owner (name, user_id) VALUES ($1, $2::bigint) "
			  "ON CONFLICT (name) DO UPDATE SET user_id = EXCLUDED.user_id, created_at = now()",
			  &p);
	/* quota.c: a new collection starts with a point count of 0 */
	pgjob_add(job,
			  "INSERT INTO vectron_meta.collection_usage (collection_id, points) "
			  "SELECT id, 0 FROM vectron_meta.collection WHERE name = $1 AND $2::bigint > 0 "
			  "ON CONFLICT (collection_id) DO NOTHING",
			  &p);
	params_free(&p);
}

/*
 * auth_admin_allow: comma-separated IPv4 addresses or CIDR blocks that may
 * call the admin routes and /metrics; empty allows every address.
 */
static bool
admin_ip_allowed(const char *ip)
{
	char *list, *save = NULL, *item;
	struct in_addr a, net;
	bool ok = false;

	if (!cf_auth_admin_allow[0])
		return true;
	if (inet_pton(AF_INET, ip, &a) != 1)
		return false;
	list = xstrdup(cf_auth_admin_allow);
	for (item = strtok_r(list, ", ", &save); item && !ok; item = strtok_r(NULL, ", ", &save)) {
		char *slash = strchr(item, '/');
		int bits = slash ? atoi(slash + 1) : 32;
		uint32_t mask;

		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, item, &net) != 1 || bits < 0 || bits > 32)
			continue;
		mask = bits == 0 ? 0 : htonl(0xffffffffu << (32 - bits));
		ok = (a.s_addr & mask) == (net.s_addr & mask);
	}
	free(list);
	return ok;
}

static bool
decide(HttpRequest *req, bool respond)
{
	RbacPolicy pol = {true, cf_auth_metrics_public != 0};
	RbacSubject s = {0};
	RbacTarget t = {0};
	const char *colls[JWT_MAX_COLLECTIONS];
	char coll[128], rl_key[96];
	const char *why, *reason = NULL;
	bool present, classified;
	int retry;
	RbacDecision d;

	if (respond && !ratelimit_take(az_rl_ip, req->peer_ip, util_now_ms(), 1, &retry)) {
		req->extra_headers = xasprintf("Retry-After: %d\r\n", retry);
		obs_rate_limited();
		http_respond_error(req, 429, "RATE_LIMITED",
						   "too many requests from this address; retry after %d s", retry);
		return false;
	}
	classified = rbac_route_classify(req->method_name, req->path, coll, sizeof(coll), &t.route);
	why = authenticate(req, &present);
	if (!classified) {
		/* the router answers 404/405, but only to an authenticated caller */
		if (az_caller.authenticated)
			return true;
		if (respond)
			authz_respond_401(req, why ? why : "authentication required");
		return false;
	}
	if (why && respond && t.route != RBAC_ROUTE_AUTH && t.route != RBAC_ROUTE_HEALTH &&
		!(t.route == RBAC_ROUTE_METRICS && pol.metrics_public)) {
		authz_audit(req, NULL, "authenticate", req->path, "denied");
		authz_respond_401(req, why);
		return false;
	}
	if (az_caller.authenticated) {
		s.token = az_caller.claims.type == JWT_TOKEN_SDK ? RBAC_TOKEN_SDK : RBAC_TOKEN_LOGIN;
		s.user_role = az_caller.user_role;
		if (s.token == RBAC_TOKEN_SDK) {
			if (!rbac_parse_role(az_caller.claims.role, &s.key_role))
				s.key_role = RBAC_ROLE_NONE;
			for (int i = 0; i < az_caller.claims.ncollections; i++)
				colls[i] = az_caller.claims.collections[i];
			s.collections = colls;
			s.ncollections = az_caller.claims.ncollections;
		}
		az_caller.role = rbac_effective_role(&s);
		if (respond) {
			snprintf(rl_key, sizeof(rl_key), "%s", s.token == RBAC_TOKEN_SDK ?
					 az_caller.claims.key_id : az_caller.claims.sub);
			if (!ratelimit_take(az_rl_key, rl_key, util_now_ms(), 1, &retry)) {
				req->extra_headers = xasprintf("Retry-After: %d\r\n", retry);
				obs_rate_limited();
				http_respond_error(req, 429, "RATE_LIMITED",
								   "too many requests for this credential; retry after %d s",
								   retry);
				return false;
			}
		}
	}
	if (t.route == RBAC_ROUTE_COLLECTION_CREATE)
		create_name(req, coll, sizeof(coll));
	t.collection = coll[0] ? coll : NULL;
	t.access = access_of(coll, az_caller.user_id);
	d = rbac_check(&pol, &s, &t, &reason);
	if (d == RBAC_ALLOW && (t.route == RBAC_ROUTE_ADMIN_CLUSTER ||
							t.route == RBAC_ROUTE_ADMIN_USERS ||
							(t.route == RBAC_ROUTE_METRICS && !pol.metrics_public)) &&
		!admin_ip_allowed(req->peer_ip)) {
		d = RBAC_FORBIDDEN;
		reason = "admin routes are not allowed from this address";
	}
	if (d == RBAC_ALLOW) {
		if (respond && t.route == RBAC_ROUTE_COLLECTION_CREATE && coll[0]) {
			long long q = authz_quota_collections(az_caller.user_id);
			ShardMap *m = shardmap_acquire();
			bool exists = shardmap_collection(m, coll) != NULL;

			shardmap_release(m);
			if (!exists && q >= 0 && authz_owned_collections(az_caller.user_id) >= q) {
				http_respond_error(req, 403, "QUOTA_EXCEEDED",
								   "collection quota reached (%lld); delete one or ask an admin",
								   q);
				return false;
			}
			record_owner(coll, az_caller.user_id);
		}
		if (respond && (t.route == RBAC_ROUTE_COLLECTION_CREATE ||
						t.route == RBAC_ROUTE_COLLECTION_DELETE)) {
			char actor[32];

			snprintf(actor, sizeof(actor), "user:%lld", az_caller.user_id);
			authz_audit(req, actor, t.route == RBAC_ROUTE_COLLECTION_CREATE ?
						"collection.create" : "collection.delete", coll, "authorised");
		}
		return true;
	}
	if (!respond)
		return false;
	if (d == RBAC_UNAUTHORIZED)
		authz_respond_401(req, why ? why : (reason ? reason : "authentication required"));
	else {
		obs_auth_failure("forbidden");
		http_respond_error(req, 403, "FORBIDDEN", "%s", reason ? reason : "not allowed");
	}
	return false;
}

bool
authz_visible(const char *name)
{
	RbacSubject s = {0};
	const char *colls[JWT_MAX_COLLECTIONS];

	if (!az_on)
		return true;
	if (!az_caller.authenticated)
		return false;
	if (az_caller.claims.type == JWT_TOKEN_SDK) {
		s.token = RBAC_TOKEN_SDK;
		for (int i = 0; i < az_caller.claims.ncollections; i++)
			colls[i] = az_caller.claims.collections[i];
		s.collections = colls;
		s.ncollections = az_caller.claims.ncollections;
	} else
		s.token = RBAC_TOKEN_LOGIN;
	if (!rbac_in_scope(&s, name))
		return false;
	return az_caller.role == RBAC_ROLE_ADMIN ||
		access_of(name, az_caller.user_id) != RBAC_ACCESS_NONE;
}

bool
authz_request(HttpRequest *req)
{
	if (!az_on)
		return true;
	return decide(req, true);
}

bool
authz_precheck(HttpRequest *req)
{
	if (!az_on)
		return true;
	return decide(req, false);
}

/* ---- start-up ---- */

static bool
load_spec(const char *what, const char *spec, unsigned char **out, size_t *len, char *err,
		  size_t errlen)
{
	char e[256];

	*out = jwt_key_load(spec, len, e, sizeof(e));
	if (!*out) {
		snprintf(err, errlen, "%s: %s", what, e);
		return false;
	}
	return true;
}

static bool
exec_blocking(PGconn *c, const char *sql, int n, const char *const *vals, PGresult **out,
			  char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "auth: metadata database: %s", PQresultErrorMessage(r));
		PQclear(r);
		return false;
	}
	if (out)
		*out = r;
	else
		PQclear(r);
	return true;
}

/* Bootstrap admin and first snapshot, on a blocking connection. */
static bool
start_db(const char *dsn, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r[CACHE_NSQL] = {0};
	bool ok = false;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "auth: cannot connect to the metadata database: %s",
				 PQerrorMessage(c));
		goto out;
	}
	if (cf_auth_bootstrap_admin_email[0]) {
		unsigned char *pw;
		size_t pwlen;
		char hash[PASSWORD_HASH_SIZE];
		const char *v[2];

		if (!cf_auth_bootstrap_admin_password[0]) {
			snprintf(err, errlen, "auth_bootstrap_admin_password is required with an email");
			goto out;
		}
		if (!load_spec("auth_bootstrap_admin_password", cf_auth_bootstrap_admin_password, &pw,
					   &pwlen, err, errlen))
			goto out;
		if (!password_hash((const char *) pw, pwlen, &az_params, hash, err, errlen)) {
			jwt_key_free(pw, pwlen);
			goto out;
		}
		jwt_key_free(pw, pwlen);
		v[0] = cf_auth_bootstrap_admin_email;
		v[1] = hash;
		if (!exec_blocking(c,
						   "INSERT INTO vectron_meta.app_user (email, password_hash, role) "
						   "VALUES ($1, $2, 'admin') ON CONFLICT (email) DO NOTHING",
						   2, v, NULL, err, errlen))
			goto out;
	}
	for (int i = 0; i < CACHE_NSQL; i++)
		if (!exec_blocking(c, CACHE_SQL[i], 0, NULL, &r[i], err, errlen))
			goto out;
	cache_install(r[0], r[1], r[2], r[3], r[4]);
	ok = true;
out:
	for (int i = 0; i < CACHE_NSQL; i++)
		PQclear(r[i]);
	PQfinish(c);
	return ok;
}

/*
 * auth_verify_keys: more keys tokens may be signed with, for signing-key
 * rotation and for other coordinators' keys: "kid=spec[@retire_unix],..."
 * with a P-256 public or private key in PEM.
 */
static bool
add_verify_keys(char *err, size_t errlen)
{
	char *list = xstrdup(cf_auth_verify_keys), *save = NULL, *item, e[256];
	bool ok = true;

	for (item = strtok_r(list, ",", &save); item && ok; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *at;
		unsigned char *key;
		size_t len;
		time_t retire = 0;

		while (*item == ' ')
			item++;
		if (!eq || eq == item) {
			snprintf(err, errlen, "auth_verify_keys: expected kid=spec, not \"%.40s\"", item);
			ok = false;
			break;
		}
		*eq = '\0';
		if ((at = strrchr(eq + 1, '@')) != NULL) {
			*at = '\0';
			retire = (time_t) atoll(at + 1);
		}
		if (!load_spec("auth_verify_keys", eq + 1, &key, &len, err, errlen)) {
			ok = false;
			break;
		}
		if (!jwt_verifier_add_key(az_verifier, item, key, len, retire, e, sizeof(e))) {
			snprintf(err, errlen, "auth_verify_keys: key %s: %s", item, e);
			ok = false;
		}
		jwt_key_free(key, len);
	}
	free(list);
	return ok;
}

bool
authz_start(struct event_base *base, const char *dsn, char *err, size_t errlen)
{
	JwtVerifyOptions vo = {JWT_ES256, cf_auth_issuer, cf_auth_audience, -1, 0};
	unsigned char *key = NULL, *pepper = NULL;
	size_t keylen = 0, pepperlen = 0;
	const unsigned char *vk;
	size_t vklen;
	char e[256], rnd[APIKEY_TOKEN_SIZE], rid[APIKEY_ID_LEN + 1];
	struct timeval tv;

	if (strcmp(cf_auth, "on") != 0)
		return true;
	az_params.t_cost = (uint32_t) cf_auth_argon2_t;
	az_params.m_cost_kib = (uint32_t) cf_auth_argon2_m_kib;
	az_params.parallelism = (uint32_t) cf_auth_argon2_p;
	if (!password_params_valid(&az_params, e, sizeof(e))) {
		snprintf(err, errlen, "auth argon2 parameters: %s", e);
		return false;
	}
	if (!cf_auth_signing_key[0]) {
		snprintf(err, errlen, "auth = on needs auth_signing_key (file:/path to a P-256 key in PEM, "
				 "or env:NAME)");
		return false;
	}
	if (!load_spec("auth_signing_key", cf_auth_signing_key, &key, &keylen, err, errlen))
		return false;
	az_signer = jwt_signer_new(JWT_ES256, cf_auth_signing_kid, key, keylen, cf_auth_issuer,
							   cf_auth_audience, e, sizeof(e));
	jwt_key_free(key, keylen);
	if (!az_signer) {
		snprintf(err, errlen, "auth_signing_key: %s", e);
		return false;
	}
	az_verifier = jwt_verifier_new(&vo, e, sizeof(e));
	vk = jwt_signer_verify_key(az_signer, &vklen);
	if (!az_verifier ||
		!jwt_verifier_add_key(az_verifier, cf_auth_signing_kid, vk, vklen, 0, e, sizeof(e))) {
		snprintf(err, errlen, "auth verifier: %s", e);
		return false;
	}
	if (!add_verify_keys(err, errlen))
		return false;
	if (cf_auth_pepper[0] &&
		!load_spec("auth_pepper", cf_auth_pepper, &pepper, &pepperlen, err, errlen))
		return false;
	if (!apikey_hasher_init(&az_hasher, pepper, pepperlen, e, sizeof(e))) {
		if (pepper)
			jwt_key_free(pepper, pepperlen);
		snprintf(err, errlen, "auth_pepper: %s", e);
		return false;
	}
	if (pepper)
		jwt_key_free(pepper, pepperlen);
	/* the dummy hash for unknown emails: a random password nobody knows */
	if (!apikey_generate(APIKEY_RESET, rnd, rid, e, sizeof(e)) ||
		!password_hash(rnd, strlen(rnd), &az_params, az_dummy, e, sizeof(e))) {
		snprintf(err, errlen, "auth: %s", e);
		return false;
	}
	memset(rnd, 0, sizeof(rnd));
	if (!start_db(dsn, err, errlen))
		return false;
	az_rl_ip = ratelimit_new(cf_auth_rate_ip, cf_auth_rate_ip_burst, 100000, e, sizeof(e));
	az_rl_key = ratelimit_new(cf_auth_rate_key, cf_auth_rate_key_burst, 100000, e, sizeof(e));
	if (!az_rl_ip || !az_rl_key) {
		snprintf(err, errlen, "auth rate limits: %s", e);
		return false;
	}
	az_pool = password_pool_start(base, cf_auth_hash_threads, 0, e, sizeof(e));
	if (!az_pool) {
		snprintf(err, errlen, "auth password pool: %s", e);
		return false;
	}
	az_listener = metadata_auth_listen(dsn, on_auth_notify);
	workerconn_listener_keepalive(az_listener);
	az_last_prune_ms = util_now_ms() - PRUNE_EVERY_MS;
	az_timer = event_new(base, -1, EV_PERSIST, cache_timer_cb, NULL);
	tv.tv_sec = cf_auth_cache_poll_ms / 1000;
	tv.tv_usec = (cf_auth_cache_poll_ms % 1000) * 1000;
	event_add(az_timer, &tv);
	az_on = true;
	authfam_poll();
	quota_poll();
	log_info("auth on: ES256 kid %s, issuer %s, registration %s", cf_auth_signing_kid,
			 cf_auth_issuer, cf_auth_registration);
	return true;
}

void
authz_stop(void)
{
	if (!az_on)
		return;
	if (az_timer)
		event_free(az_timer);
	password_pool_stop(az_pool);
	ratelimit_free(az_rl_ip);
	ratelimit_free(az_rl_key);
	jwt_signer_free(az_signer);
	jwt_verifier_free(az_verifier);
	apikey_hasher_clear(&az_hasher);
	json_decref(c_users);
	json_decref(c_keys);
	json_decref(c_owners);
	json_decref(c_grants);
	json_decref(c_quota);
	authfam_free();
	quota_free();
	json_decref(c_revoked);
	c_revoked = NULL;
	json_decref(c_pending_owners);
	c_pending_owners = NULL;
	az_on = false;
}
