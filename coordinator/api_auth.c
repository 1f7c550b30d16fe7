/*
 * api_auth.c: the account, token, key and grant endpoints (see
 * api_auth.h and docs/security.md).  Every handler is asynchronous: SQL
 * goes through the metadata pool (parameterised), password hashing and
 * verification through the argon2id pool, and the answer is written from
 * the callback.  Secrets (passwords, API keys, refresh tokens) are copied
 * only into the request's context, wiped when it is freed, stored only as
 * hashes, and never logged or put in error messages; key and token ids are
 * fine to log.
 *
 * Deleting a user hands the collections they own to the admin who deletes
 * them (the documented rule), and cascades to their keys, refresh families,
 * reset tokens and grants.  Login JWTs carry their refresh family ("fam"),
 * so revoking a family (logout, reuse, password change or reset) also ends
 * its login JWTs (authfam.c).  Vector quotas are counted in quota.c.
 */
#include "api_auth.h"

#include "api_internal.h"
#include "authfam.h"
#include "authz.h"
#include "config.h"
#include "log.h"
#include "metadata.h"
#include "quota.h"

#include <http_parser.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EMAIL 254

typedef struct AuthCtx {
	HttpRequest *req;
	char email[MAX_EMAIL + 1];
	char *password;				/* wiped on free */
	size_t pwlen;
	char *current;				/* POST /v1/me/password: the current one; wiped */
	size_t curlen;
	char role[16];
	char token[APIKEY_TOKEN_SIZE];	/* a presented or new secret; wiped */
	char id[APIKEY_ID_LEN + 1];
	char name[128];
	long long user_id;
	long long actor_id;
	bool actor_admin;
	RbacRole user_role;
	json_t *colls;
	int grace;
	char expires[64];
	char hash[APIKEY_HASH_SIZE];
	long long quota[3];			/* PUT quota: collections, vectors, dimension_count; -1 none */
	bool quota_given[3];
} AuthCtx;

static json_t *quota_json(long long v);

static AuthCtx *
ctx_new(HttpRequest *req)
{
	AuthCtx *c = xcalloc(1, sizeof(AuthCtx));
	const AuthCaller *a = authz_caller();

	c->req = req;
	if (a && a->authenticated) {
		c->actor_id = a->user_id;
		c->actor_admin = a->role == RBAC_ROLE_ADMIN;
	}
	return c;
}

static void
ctx_free(AuthCtx *c)
{
	if (!c)
		return;
	if (c->password) {
		OPENSSL_cleanse(c->password, c->pwlen);
		free(c->password);
	}
	if (c->current) {
		OPENSSL_cleanse(c->current, c->curlen);
		free(c->current);
	}
	OPENSSL_cleanse(c->token, sizeof(c->token));
	json_decref(c->colls);
	free(c);
}

static void
meta_error(AuthCtx *c, PgJob *job)
{
	api_respond_worker_error(c->req, 503, "METADATA_UNAVAILABLE", job->errmsg, job->sqlstate,
							 "metadata");
}

static void
bad(HttpRequest *req, const char *msg)
{
	http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", msg);
}

static void
submit(PgJob *job)
{
	job->timeout_ms = 10000;
	pgjob_submit(metadata_pool(), job);
}

static char *
actor_str(AuthCtx *c, char *buf, size_t len)
{
	snprintf(buf, len, "user:%lld", c->actor_id);
	return c->actor_id ? buf : NULL;
}

/* email and password from the body into c; false when answered 400. */
static bool
take_credentials(HttpRequest *req, json_t *b, AuthCtx *c)
{
	json_t *e = json_object_get(b, "email"), *p = json_object_get(b, "password");
	const char *es;

	if (!json_is_string(e) || json_string_length(e) < 3 || json_string_length(e) > MAX_EMAIL ||
		!strchr(json_string_value(e), '@') ||
		strlen(json_string_value(e)) != json_string_length(e)) {
		bad(req, "email must be an email address of at most 254 bytes");
		return false;
	}
	if (!json_is_string(p) || json_string_length(p) < 8 ||
		json_string_length(p) > PASSWORD_MAX_LEN) {
		bad(req, "password must be a string of 8 to 1024 bytes");
		return false;
	}
	es = json_string_value(e);
	for (size_t i = 0; es[i]; i++)
		c->email[i] = (char) (es[i] >= 'A' && es[i] <= 'Z' ? es[i] + 32 : es[i]);
	c->pwlen = json_string_length(p);
	c->password = xmalloc(c->pwlen + 1);
	memcpy(c->password, json_string_value(p), c->pwlen + 1);
	return true;
}

/* Wipe the password text inside the parsed body before it is freed. */
static void
body_free(json_t *b)
{
	json_t *p = json_object_get(b, "password");

	if (json_is_string(p))
		json_string_set(p, "");
	json_decref(b);
}

/* ---- register, admin create user ---- */

static void
user_inserted(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char a[32];

	if (!job->ok && strcmp(job->sqlstate, "23505") == 0) {
		authz_audit(c->req, actor_str(c, a, sizeof(a)), "user.create", NULL, "conflict");
		http_respond_error(c->req, 409, "USER_EXISTS", "a user with this email already exists");
	} else if (!job->ok)
		meta_error(c, job);
	else {
		long long id = atoll(PQgetvalue(job->results[0], 0, 0));
		char t[32];

		snprintf(t, sizeof(t), "user:%lld", id);
		authz_cache_add_user(id, c->role);
		authz_audit(c->req, actor_str(c, a, sizeof(a)), "user.create", t, "ok");
		http_respond_json(c->req, 201, json_pack("{s:I,s:s}", "user_id", (json_int_t) id,
												 "role", c->role));
	}
	pgjob_free(job);
	ctx_free(c);
}

static void
user_hashed(PasswordStatus st, const char *encoded, void *arg)
{
	AuthCtx *c = arg;
	ParamList p;
	PgJob *job;

	if (st != PASSWORD_OK) {
		http_respond_error(c->req, 500, "INTERNAL", "password hashing failed");
		ctx_free(c);
		return;
	}
	params_init(&p);
	params_add(&p, c->email);
	params_add(&p, encoded);
	params_add(&p, c->role);
	job = pgjob_new(user_inserted, c);
	pgjob_add(job,
			  "INSERT INTO vectron_meta.app_user (email, password_hash, role) "
			  "VALUES ($1, $2, $3) RETURNING id",
			  &p);
	params_free(&p);
	submit(job);
}

static void
user_create(HttpRequest *req, bool admin)
{
	json_t *b = api_parse_body(req);
	AuthCtx *c;

	if (!b)
		return;
	c = ctx_new(req);
	if (!take_credentials(req, b, c))
		goto fail;
	snprintf(c->role, sizeof(c->role), "write");
	if (admin) {
		json_t *r = json_object_get(b, "role");
		RbacRole role;

		if (r && (!json_is_string(r) || !rbac_parse_role(json_string_value(r), &role))) {
			bad(req, "role must be admin, write or readonly");
			goto fail;
		}
		if (r)
			snprintf(c->role, sizeof(c->role), "%s", json_string_value(r));
	}
	body_free(b);
	if (!password_hash_async(authz_password_pool(), c->password, c->pwlen,
							 authz_password_params(), user_hashed, c)) {
		http_respond_error(req, 503, "OVERLOADED", "too many password operations; retry later");
		ctx_free(c);
	}
	return;
fail:
	body_free(b);
	ctx_free(c);
}

/* ---- login and refresh: issue a login JWT and a refresh token ---- */

static void
tokens_stored(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	JwtClaims cl;
	char err[160], *jwt;

	if (!job->ok) {
		meta_error(c, job);
		goto out;
	}
	if (PQntuples(job->results[0]) == 0) {
		/* refresh: the token was used meanwhile (a concurrent reuse); the
		 * job's second statement has revoked the family */
		authz_audit(c->req, NULL, "refresh.reuse", NULL, "family revoked");
		authz_respond_401(c->req, "refresh token reuse detected; the session is revoked");
		goto out;
	}
	jwt_claims_init(&cl, JWT_TOKEN_LOGIN, NULL, c->role, time(NULL), cf_auth_login_ttl_s);
	snprintf(cl.sub, sizeof(cl.sub), "%lld", c->user_id);
	/* the family lets logout revoke this token too (authfam.c) */
	snprintf(cl.family, sizeof(cl.family), "%s", PQgetvalue(job->results[0], 0, 0));
	jwt = jwt_issue(authz_signer(), &cl, err, sizeof(err));
	if (!jwt) {
		http_respond_error(c->req, 500, "INTERNAL", "cannot sign a token: %s", err);
		goto out;
	}
	http_respond_json(c->req, 200,
					  json_pack("{s:s,s:s,s:s,s:i}", "access_token", jwt, "refresh_token",
								c->token, "token_type", "Bearer", "expires_in",
								cf_auth_login_ttl_s));
	OPENSSL_cleanse(jwt, strlen(jwt));
	free(jwt);
out:
	pgjob_free(job);
	ctx_free(c);
}

/* New refresh token into c->token; the family is new (family NULL) or given. */
static void
issue_tokens(AuthCtx *c, const char *used_id)
{
	char err[128], uid[32], ttl[32];
	ParamList p;
	PgJob *job;

	if (!apikey_generate(APIKEY_REFRESH, c->token, c->id, err, sizeof(err)) ||
		!apikey_hash(authz_hasher(), c->token, c->hash)) {
		http_respond_error(c->req, 500, "INTERNAL", "cannot make a refresh token");
		ctx_free(c);
		return;
	}
	snprintf(uid, sizeof(uid), "%lld", c->user_id);
	snprintf(ttl, sizeof(ttl), "%d", cf_auth_refresh_ttl_s);
	params_init(&p);
	params_add(&p, c->id);
	params_add(&p, c->hash);
	params_add(&p, ttl);
	params_add(&p, used_id ? used_id : uid);
	job = pgjob_new(tokens_stored, c);
	if (!used_id)
		pgjob_add(job,
				  "WITH f AS (INSERT INTO vectron_meta.refresh_family (user_id) "
				  "VALUES ($4::bigint) RETURNING id) "
				  "INSERT INTO vectron_meta.refresh_token (id, family_id, hash, expires_at) "
				  "SELECT $1, f.id, $2, now() + make_interval(secs => $3::int) FROM f "
				  "RETURNING family_id",
				  &p);
	else
		/* single use: only the first refresh with this token gets a row */
		pgjob_add(job,
				  "WITH u AS (UPDATE vectron_meta.refresh_token SET used_at = now() "
				  "WHERE id = $4 AND used_at IS NULL RETURNING family_id) "
				  "INSERT INTO vectron_meta.refresh_token (id, family_id, hash, expires_at) "
				  "SELECT $1, u.family_id, $2, now() + make_interval(secs => $3::int) FROM u "
				  "RETURNING family_id",
				  &p);
	if (used_id)
		/* no successor means someone else used the token first: revoke */
		pgjob_add(job,
				  "UPDATE vectron_meta.refresh_family SET revoked = true "
				  "WHERE id = (SELECT family_id FROM vectron_meta.refresh_token WHERE id = $4) "
				  "AND NOT EXISTS (SELECT 1 FROM vectron_meta.refresh_token WHERE id = $1) "
				  "AND $2 <> '' AND $3 <> ''",
				  &p);
	params_free(&p);
	submit(job);
}

static void
login_verified(PasswordStatus st, bool needs_rehash, void *arg)
{
	AuthCtx *c = arg;
	char t[32];

	snprintf(t, sizeof(t), "user:%lld", c->user_id);
	if (st != PASSWORD_OK || c->user_id == 0) {
		authz_audit(c->req, NULL, "login", c->user_id ? t : NULL, "denied");
		if (st == PASSWORD_ERROR)
			http_respond_error(c->req, 500, "INTERNAL", "password verification failed");
		else
			authz_respond_401(c->req, "invalid email or password");
		ctx_free(c);
		return;
	}
	authz_audit(c->req, t, "login", t, "ok");
	issue_tokens(c, NULL);
}

static void
login_user(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	const char *hash = authz_dummy_hash();

	if (!job->ok) {
		meta_error(c, job);
		pgjob_free(job);
		ctx_free(c);
		return;
	}
	if (PQntuples(job->results[0]) == 1) {
		c->user_id = atoll(PQgetvalue(job->results[0], 0, 0));
		snprintf(c->role, sizeof(c->role), "%s", PQgetvalue(job->results[0], 0, 2));
		hash = PQgetvalue(job->results[0], 0, 1);
	}
	/* unknown emails are verified against a dummy hash: same timing */
	if (!password_verify_async(authz_password_pool(), c->password, c->pwlen, hash,
							   authz_password_params(), login_verified, c)) {
		http_respond_error(c->req, 503, "OVERLOADED", "too many password operations; retry later");
		ctx_free(c);
	}
	pgjob_free(job);
}

static void
login(HttpRequest *req)
{
	json_t *b = api_parse_body(req);
	AuthCtx *c;
	ParamList p;
	PgJob *job;

	if (!b)
		return;
	c = ctx_new(req);
	if (!take_credentials(req, b, c)) {
		body_free(b);
		ctx_free(c);
		return;
	}
	body_free(b);
	params_init(&p);
	params_add(&p, c->email);
	job = pgjob_new(login_user, c);
	pgjob_add(job, "SELECT id, password_hash, role FROM vectron_meta.app_user WHERE email = $1",
			  &p);
	params_free(&p);
	submit(job);
}

/* Parse {"<field>": "<token of kind>"} into c->token and c->id. */
static bool
take_token(HttpRequest *req, AuthCtx *c, const char *field, ApikeyKind kind)
{
	json_t *b = api_parse_body(req), *v;
	ApikeyKind k;
	bool ok;

	if (!b)
		return false;
	v = json_object_get(b, field);
	ok = json_is_string(v) && json_string_length(v) == APIKEY_TOKEN_LEN &&
		apikey_parse(json_string_value(v), &k, c->id) && k == kind;
	if (ok)
		memcpy(c->token, json_string_value(v), APIKEY_TOKEN_SIZE);
	if (json_is_string(v))
		json_string_set(v, "");
	json_decref(b);
	if (!ok)
		authz_respond_401(req, kind == APIKEY_API ? "malformed API key" : "malformed refresh token");
	return ok;
}

typedef enum { RT_REFRESH, RT_LOGOUT } RtAction;

/* The family is revoked: answer the logout (200) or the reuse (401). */
static void
family_revoked(PgJob *job, void *arg)
{
	AuthCtx *c = arg;

	if (!job->ok)
		meta_error(c, job);
	else if (c->grace == RT_LOGOUT)
		http_respond_json(c->req, 200, json_pack("{s:b}", "revoked", 1));
	else
		authz_respond_401(c->req, "refresh token reuse detected; the session is revoked");
	pgjob_free(job);
	ctx_free(c);
}

/* Revoke a refresh family, then answer (the answer waits for the commit). */
static void
revoke_family(AuthCtx *c, const char *family)
{
	ParamList p;
	PgJob *job;

	authfam_add(family);		/* its login JWTs fail here at once */
	params_init(&p);
	params_add(&p, family);
	job = pgjob_new(family_revoked, c);
	pgjob_add(job, "UPDATE vectron_meta.refresh_family SET revoked = true WHERE id = $1::bigint",
			  &p);
	params_free(&p);
	submit(job);
}

static void
refresh_found(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	PGresult *r = job->results[0];
	bool logout = c->grace == RT_LOGOUT;
	char t[40];

	snprintf(t, sizeof(t), "refresh:%s", c->id);
	if (!job->ok) {
		meta_error(c, job);
		goto fail;
	}
	if (PQntuples(r) != 1 ||
		!apikey_verify(authz_hasher(), APIKEY_REFRESH, c->token, PQgetvalue(r, 0, 0))) {
		authz_audit(c->req, NULL, logout ? "logout" : "refresh", t, "denied");
		authz_respond_401(c->req, "invalid refresh token");
		goto fail;
	}
	if (logout) {
		authz_audit(c->req, NULL, "logout", t, "ok");
		revoke_family(c, PQgetvalue(r, 0, 4));
		pgjob_free(job);
		return;
	}
	if (strcmp(PQgetvalue(r, 0, 3), "t") == 0) {
		authz_respond_401(c->req, "the session was revoked");
		goto fail;
	}
	if (strcmp(PQgetvalue(r, 0, 1), "t") == 0) {
		/* reuse of a used token: someone else has it; end the session */
		authz_audit(c->req, NULL, "refresh.reuse", t, "family revoked");
		revoke_family(c, PQgetvalue(r, 0, 4));
		pgjob_free(job);
		return;
	}
	if (strcmp(PQgetvalue(r, 0, 2), "t") == 0) {
		authz_respond_401(c->req, "refresh token expired");
		goto fail;
	}
	c->user_id = atoll(PQgetvalue(r, 0, 5));
	snprintf(c->role, sizeof(c->role), "%s", PQgetvalue(r, 0, 6));
	{
		char used[APIKEY_ID_LEN + 1];

		memcpy(used, c->id, sizeof(used));
		pgjob_free(job);
		issue_tokens(c, used);
	}
	return;
fail:
	pgjob_free(job);
	ctx_free(c);
}

static void
refresh_or_logout(HttpRequest *req, RtAction act)
{
	AuthCtx *c = ctx_new(req);
	ParamList p;
	PgJob *job;

	if (!take_token(req, c, "refresh_token", APIKEY_REFRESH)) {
		ctx_free(c);
		return;
	}
	c->grace = act;
	params_init(&p);
	params_add(&p, c->id);
	job = pgjob_new(refresh_found, c);
	pgjob_add(job,
			  "SELECT t.hash, t.used_at IS NOT NULL, t.expires_at < now(), f.revoked, f.id, "
			  "u.id, u.role FROM vectron_meta.refresh_token t "
			  "JOIN vectron_meta.refresh_family f ON f.id = t.family_id "
			  "JOIN vectron_meta.app_user u ON u.id = f.user_id WHERE t.id = $1",
			  &p);
	params_free(&p);
	submit(job);
}

/* ---- API key -> SDK JWT ---- */

static void
key_used(PgJob *job, void *arg)
{
	pgjob_free(job);
}

static void
token_found(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	PGresult *r = job->results[0];
	JwtClaims cl;
	json_t *colls;
	char err[160], *jwt, t[40];
	long long exp;
	size_t i;
	json_t *v;
	bool ok, old_secret;
	time_t now = time(NULL);
	int ttl = cf_auth_sdk_ttl_s;

	snprintf(t, sizeof(t), "key:%s", c->id);
	if (!job->ok) {
		meta_error(c, job);
		goto out;
	}
	ok = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 3), "f") == 0;
	if (ok) {
		bool cur = apikey_verify(authz_hasher(), APIKEY_API, c->token, PQgetvalue(r, 0, 0));
		bool prev = !PQgetisnull(r, 0, 1) && strcmp(PQgetvalue(r, 0, 2), "t") == 0 &&
			apikey_verify(authz_hasher(), APIKEY_API, c->token, PQgetvalue(r, 0, 1));

		ok = cur || prev;
	}
	exp = ok ? atoll(PQgetvalue(r, 0, 4)) : 0;
	if (ok && exp > 0 && exp <= (long long) now)
		ok = false;
	if (!ok) {
		authz_audit(c->req, NULL, "token", t, "denied");
		authz_respond_401(c->req, "invalid, revoked or expired API key");
		goto out;
	}
	if (exp > 0 && exp - (long long) now < ttl)
		ttl = (int) (exp - (long long) now);
	/*
	 * Rotation (see authz.c's revocation list): a token minted from the
	 * rotated-out secret ends with the grace; one minted from the new
	 * secret gets an iat after the rotation's second, so that the end of
	 * the grace, which revokes iat <= that second, spares it.
	 */
	old_secret = strcmp(PQgetvalue(r, 0, 2), "t") == 0 &&
		!apikey_verify(authz_hasher(), APIKEY_API, c->token, PQgetvalue(r, 0, 0));
	if (old_secret) {
		long long grace_end = atoll(PQgetvalue(r, 0, 8));

		if (grace_end - (long long) now < ttl)
			ttl = grace_end - (long long) now > 1 ? (int) (grace_end - (long long) now) : 1;
	}
	jwt_claims_init(&cl, JWT_TOKEN_SDK, PQgetvalue(r, 0, 7), PQgetvalue(r, 0, 5), now, ttl);
	if (!old_secret && !PQgetisnull(r, 0, 9) && cl.iat <= atoll(PQgetvalue(r, 0, 9))) {
		cl.iat = cl.nbf = atoll(PQgetvalue(r, 0, 9)) + 1;
		if (cl.exp <= cl.iat)
			cl.exp = cl.iat + 1;
	}
	snprintf(cl.key_id, sizeof(cl.key_id), "%s", c->id);
	colls = json_loads(PQgetvalue(r, 0, 6), 0, NULL);
	json_array_foreach(colls, i, v)
		if (!jwt_claims_add_collection(&cl, json_string_value(v)))
			break;
	json_decref(colls);
	jwt = jwt_issue(authz_signer(), &cl, err, sizeof(err));
	if (!jwt) {
		http_respond_error(c->req, 500, "INTERNAL", "cannot sign a token: %s", err);
		goto out;
	}
	{
		ParamList p;
		PgJob *uj;

		params_init(&p);
		params_add(&p, c->id);
		uj = pgjob_new(key_used, NULL);
		pgjob_add(uj, "UPDATE vectron_meta.api_key SET last_used_at = now() WHERE id = $1", &p);
		params_free(&p);
		submit(uj);
	}
	http_respond_json(c->req, 200, json_pack("{s:s,s:s,s:i}", "access_token", jwt,
											 "token_type", "Bearer", "expires_in", ttl));
	OPENSSL_cleanse(jwt, strlen(jwt));
	free(jwt);
out:
	pgjob_free(job);
	ctx_free(c);
}

static void
token_exchange(HttpRequest *req)
{
	AuthCtx *c = ctx_new(req);
	ParamList p;
	PgJob *job;

	if (!take_token(req, c, "api_key", APIKEY_API)) {
		ctx_free(c);
		return;
	}
	params_init(&p);
	params_add(&p, c->id);
	job = pgjob_new(token_found, c);
	pgjob_add(job,
			  "SELECT k.hash, k.previous_hash, coalesce(k.previous_expires_at > now(), false), "
			  "k.revoked, coalesce(extract(epoch FROM k.expires_at)::bigint, 0), k.role, "
			  "array_to_json(k.collections)::text, u.id::text, "
			  "coalesce(floor(extract(epoch FROM k.previous_expires_at))::bigint, 0), "
			  "floor(extract(epoch FROM k.rotated_at))::bigint "
			  "FROM vectron_meta.api_key k JOIN vectron_meta.app_user u ON u.id = k.user_id "
			  "WHERE k.id = $1",
			  &p);
	params_free(&p);
	submit(job);
}

/* ---- /v1/keys ---- */

static void
key_created(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	const char *colls[JWT_MAX_COLLECTIONS];
	size_t i;
	json_t *v;
	char a[32], t[40];

	if (!job->ok) {
		if (strcmp(job->sqlstate, "22007") == 0 || strcmp(job->sqlstate, "22008") == 0)
			bad(c->req, "expires_at must be an ISO 8601 timestamp");
		else
			meta_error(c, job);
		goto out;
	}
	json_array_foreach(c->colls, i, v)
		colls[i] = json_string_value(v);
	authz_cache_add_key(c->id, c->user_id, c->role, colls, (int) json_array_size(c->colls),
						atoll(PQgetvalue(job->results[0], 0, 0)));
	snprintf(t, sizeof(t), "key:%s", c->id);
	authz_audit(c->req, actor_str(c, a, sizeof(a)), "key.create", t, "ok");
	http_respond_json(c->req, 201,
					  json_pack("{s:s,s:s,s:s,s:s,s:O,s:s*,s:s}", "id", c->id, "key", c->token,
								"name", c->name, "role", c->role, "collections", c->colls,
								"expires_at", PQgetisnull(job->results[0], 0, 1) ? NULL :
								PQgetvalue(job->results[0], 0, 1), "created_at",
								PQgetvalue(job->results[0], 0, 2)));
out:
	pgjob_free(job);
	ctx_free(c);
}

static void
keys_create(HttpRequest *req)
{
	json_t *b = api_parse_body(req), *v;
	AuthCtx *c;
	const AuthCaller *a = authz_caller();
	RbacRole role;
	JwtClaims scratch;
	StrBuf arr;
	ParamList p;
	PgJob *job;
	char err[128], uid[32];
	size_t i;

	if (!b)
		return;
	c = ctx_new(req);
	c->user_id = a->user_id;
	v = json_object_get(b, "name");
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 100) {
		bad(req, "name must be a string of 1 to 100 bytes");
		goto fail;
	}
	snprintf(c->name, sizeof(c->name), "%s", json_string_value(v));
	v = json_object_get(b, "role");
	if (!json_is_string(v) || !rbac_parse_role(json_string_value(v), &role)) {
		bad(req, "role must be admin, write or readonly");
		goto fail;
	}
	if (!rbac_key_role_allowed(a->user_role, role)) {
		http_respond_error(req, 403, "FORBIDDEN", "a key's role cannot exceed its user's role");
		goto fail;
	}
	snprintf(c->role, sizeof(c->role), "%s", rbac_role_name(role));
	v = json_object_get(b, "collections");
	memset(&scratch, 0, sizeof(scratch));
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > JWT_MAX_COLLECTIONS) {
		bad(req, "collections must be an array of 1 to 64 collection names, or [\"*\"]");
		goto fail;
	}
	for (i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)) ||
			!jwt_claims_add_collection(&scratch, json_string_value(json_array_get(v, i)))) {
			bad(req, "collections must be an array of 1 to 64 collection names, or [\"*\"]");
			goto fail;
		}
	c->colls = json_incref(v);
	v = json_object_get(b, "expires_at");
	if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) >= sizeof(c->expires) ||
								  json_string_length(v) == 0)) {
		bad(req, "expires_at must be an ISO 8601 timestamp");
		goto fail;
	}
	if (json_is_string(v))
		snprintf(c->expires, sizeof(c->expires), "%s", json_string_value(v));
	json_decref(b);
	b = NULL;
	if (!apikey_generate(APIKEY_API, c->token, c->id, err, sizeof(err)) ||
		!apikey_hash(authz_hasher(), c->token, c->hash)) {
		http_respond_error(req, 500, "INTERNAL", "cannot make a key");
		goto fail;
	}
	sb_init(&arr);
	sb_append(&arr, "{");
	for (i = 0; i < json_array_size(c->colls); i++) {
		if (i)
			sb_append(&arr, ",");
		pgarray_append(&arr, json_string_value(json_array_get(c->colls, i)));
	}
	sb_append(&arr, "}");
	snprintf(uid, sizeof(uid), "%lld", c->user_id);
	params_init(&p);
	params_add(&p, c->id);
	params_add(&p, uid);
	params_add(&p, c->name);
	params_add(&p, c->role);
	params_add_owned(&p, sb_steal(&arr));
	params_add(&p, c->hash);
	params_add(&p, c->expires[0] ? c->expires : NULL);
	job = pgjob_new(key_created, c);
	pgjob_add(job,
			  "INSERT INTO vectron_meta.api_key (id, user_id, name, role, collections, hash, "
			  "expires_at) VALUES ($1, $2::bigint, $3, $4, $5::text[], $6, $7::timestamptz) "
			  "RETURNING coalesce(extract(epoch FROM expires_at)::bigint, 0), expires_at, "
			  "created_at",
			  &p);
	params_free(&p);
	submit(job);
	return;
fail:
	json_decref(b);
	ctx_free(c);
}

static void
keys_listed(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	PGresult *r = job->results[0];
	json_t *arr = json_array();

	if (!job->ok) {
		json_decref(arr);
		meta_error(c, job);
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *cl = json_loads(PQgetvalue(r, i, 4), 0, NULL);

		json_array_append_new(
			arr, json_pack("{s:s,s:I,s:s,s:s,s:o,s:s*,s:s,s:s*,s:b,s:s*}", "id",
						   PQgetvalue(r, i, 0), "user_id",
						   (json_int_t) atoll(PQgetvalue(r, i, 1)), "name", PQgetvalue(r, i, 2),
						   "role", PQgetvalue(r, i, 3), "collections", cl ? cl : json_array(),
						   "expires_at", PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5),
						   "created_at", PQgetvalue(r, i, 6), "last_used_at",
						   PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7), "revoked",
						   strcmp(PQgetvalue(r, i, 8), "t") == 0, "previous_expires_at",
						   PQgetisnull(r, i, 9) ? NULL : PQgetvalue(r, i, 9)));
	}
	http_respond_json(c->req, 200, json_pack("{s:o}", "keys", arr));
out:
	pgjob_free(job);
	ctx_free(c);
}

static void
keys_list(HttpRequest *req)
{
	AuthCtx *c = ctx_new(req);
	char uid[32];
	ParamList p;
	PgJob *job;

	snprintf(uid, sizeof(uid), "%lld", c->actor_id);
	params_init(&p);
	params_add(&p, uid);
	params_add(&p, c->actor_admin && req->query && strstr(req->query, "all=1") ? "t" : "f");
	job = pgjob_new(keys_listed, c);
	pgjob_add(job,
			  "SELECT id, user_id, name, role, array_to_json(collections)::text, expires_at, "
			  "created_at, last_used_at, revoked, previous_expires_at FROM vectron_meta.api_key "
			  "WHERE user_id = $1::bigint OR $2::boolean ORDER BY created_at, id",
			  &p);
	params_free(&p);
	submit(job);
}

static void
key_changed(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char a[32], t[40];

	snprintf(t, sizeof(t), "key:%s", c->id);
	if (!job->ok) {
		meta_error(c, job);
		goto out;
	}
	if (PQntuples(job->results[0]) == 0) {
		http_respond_error(c->req, 404, "KEY_NOT_FOUND", "no such key: %s", c->id);
		goto out;
	}
	if (c->token[0]) {
		authz_audit(c->req, actor_str(c, a, sizeof(a)), "key.rotate", t, "ok");
		http_respond_json(c->req, 200,
						  json_pack("{s:s,s:s,s:s}", "id", c->id, "key", c->token,
									"previous_expires_at", PQgetvalue(job->results[0], 0, 0)));
	} else {
		authz_cache_forget_key(c->id);
		authz_audit(c->req, actor_str(c, a, sizeof(a)), "key.revoke", t, "ok");
		http_respond_json(c->req, 200, json_pack("{s:s,s:b}", "id", c->id, "revoked", 1));
	}
out:
	pgjob_free(job);
	ctx_free(c);
}

static bool
valid_key_id(const char *s)
{
	if (strlen(s) != APIKEY_ID_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void
key_revoke_or_rotate(HttpRequest *req, const char *id, bool rotate)
{
	AuthCtx *c;
	char uid[32], grace[32], err[128];
	ParamList p;
	PgJob *job;

	if (!valid_key_id(id)) {
		http_respond_error(req, 404, "KEY_NOT_FOUND", "no such key");
		return;
	}
	c = ctx_new(req);
	snprintf(c->id, sizeof(c->id), "%s", id);
	if (rotate) {
		json_t *b = api_parse_body(req), *v;

		if (!b) {
			ctx_free(c);
			return;
		}
		v = json_object_get(b, "grace_seconds");
		if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
				  json_integer_value(v) > 30 * 86400)) {
			json_decref(b);
			bad(req, "grace_seconds must be an integer from 0 to 2592000");
			ctx_free(c);
			return;
		}
		c->grace = v ? (int) json_integer_value(v) : 0;
		json_decref(b);
		if (!apikey_generate_for_id(APIKEY_API, c->id, c->token, err, sizeof(err)) ||
			!apikey_hash(authz_hasher(), c->token, c->hash)) {
			http_respond_error(req, 500, "INTERNAL", "cannot make a key");
			ctx_free(c);
			return;
		}
	}
	snprintf(uid, sizeof(uid), "%lld", c->actor_id);
	snprintf(grace, sizeof(grace), "%d", c->grace);
	params_init(&p);
	params_add(&p, c->id);
	params_add(&p, uid);
	params_add(&p, c->actor_admin ? "t" : "f");
	if (rotate) {
		params_add(&p, c->hash);
		params_add(&p, grace);
	}
	job = pgjob_new(key_changed, c);
	if (rotate)
		pgjob_add(job,
				  "UPDATE vectron_meta.api_key SET previous_hash = hash, hash = $4, "
				  "previous_expires_at = now() + make_interval(secs => $5::int) "
				  "WHERE id = $1 AND (user_id = $2::bigint OR $3::boolean) AND NOT revoked "
				  "RETURNING previous_expires_at",
				  &p);
	else
		pgjob_add(job,
				  "UPDATE vectron_meta.api_key SET revoked = true "
				  "WHERE id = $1 AND (user_id = $2::bigint OR $3::boolean) RETURNING id",
				  &p);
	params_free(&p);
	submit(job);
}

/* ---- /v1/me ---- */

static void
me_found(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	json_t *o, *key = json_null();
	PGresult *r = job->results[0];
	long long vectors, dimcount;

	if (!job->ok) {
		meta_error(c, job);
		goto out;
	}
	if (PQntuples(r) != 1) {
		authz_respond_401(c->req, "the token's user does not exist");
		goto out;
	}
	quota_usage(c->user_id, &vectors, &dimcount);
	o = json_pack("{s:I,s:s,s:s,s:s,s:{s:o,s:o,s:o},s:{s:I,s:I,s:I}}", "user_id",
				  (json_int_t) c->user_id, "email", PQgetvalue(r, 0, 0), "role",
				  PQgetvalue(r, 0, 1), "token_type", c->role, "quotas", "collections",
				  quota_json(authz_quota_collections(c->user_id)), "vectors",
				  quota_json(quota_vectors(c->user_id)), "dimension_count",
				  quota_json(quota_dimension_count(c->user_id)), "usage", "collections",
				  (json_int_t) atoll(PQgetvalue(r, 0, 2)), "vectors", (json_int_t) vectors,
				  "dimension_count", (json_int_t) dimcount);
	if (c->colls)
		key = json_pack("{s:s,s:s,s:O}", "id", c->id, "role", c->name, "collections", c->colls);
	json_object_set_new(o, "key", key);
	http_respond_json(c->req, 200, o);
out:
	pgjob_free(job);
	ctx_free(c);
}

static void
me(HttpRequest *req)
{
	AuthCtx *c = ctx_new(req);
	const AuthCaller *a = authz_caller();
	char uid[32];
	ParamList p;
	PgJob *job;

	c->user_id = a->user_id;
	snprintf(c->role, sizeof(c->role), "%s", jwt_token_type_name(a->claims.type));
	if (a->claims.type == JWT_TOKEN_SDK) {
		c->colls = json_array();
		for (int i = 0; i < a->claims.ncollections; i++)
			json_array_append_new(c->colls, json_string(a->claims.collections[i]));
		snprintf(c->id, sizeof(c->id), "%.16s", a->claims.key_id);
		snprintf(c->name, sizeof(c->name), "%s", a->claims.role);
	}
	snprintf(uid, sizeof(uid), "%lld", c->user_id);
	params_init(&p);
	params_add(&p, uid);
	job = pgjob_new(me_found, c);
	pgjob_add(job,
			  "SELECT email, role, (SELECT count(*) FROM vectron_meta.collection_owner o "
			  "JOIN vectron_meta.collection col ON col.name = o.name WHERE o.user_id = u.id) "
			  "FROM vectron_meta.app_user u WHERE id = $1::bigint",
			  &p);
	params_free(&p);
	submit(job);
}

/* ---- /v1/admin/users, /v1/admin/audit ---- */

static void
rows_listed(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	PGresult *r = job->results[0];
	json_t *arr = json_array();

	if (!job->ok) {
		json_decref(arr);
		meta_error(c, job);
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *o = json_object();

		for (int f = 0; f < PQnfields(r); f++) {
			const char *fn = PQfname(r, f);

			if (PQgetisnull(r, i, f))
				json_object_set_new(o, fn, json_null());
			else if (strcmp(fn, "id") == 0 || strcmp(fn, "user_id") == 0)
				json_object_set_new(o, fn, json_integer(atoll(PQgetvalue(r, i, f))));
			else
				json_object_set_new(o, fn, json_string(PQgetvalue(r, i, f)));
		}
		json_array_append_new(arr, o);
	}
	http_respond_json(c->req, 200, json_pack("{s:o}", c->name, arr));
out:
	pgjob_free(job);
	ctx_free(c);
}

static void
users_list(HttpRequest *req)
{
	AuthCtx *c = ctx_new(req);
	PgJob *job = pgjob_new(rows_listed, c);

	snprintf(c->name, sizeof(c->name), "users");
	pgjob_add0(job, "SELECT id, email, role, created_at FROM vectron_meta.app_user ORDER BY id");
	submit(job);
}

static void
audit_list(HttpRequest *req)
{
	AuthCtx *c = ctx_new(req);
	PgJob *job = pgjob_new(rows_listed, c);
	ParamList p;
	char action[64] = "";
	const char *q = req->query ? strstr(req->query, "action=") : NULL;

	if (q)
		snprintf(action, sizeof(action), "%.*s", (int) strcspn(q + 7, "&"), q + 7);
	snprintf(c->name, sizeof(c->name), "events");
	params_init(&p);
	params_add(&p, action[0] ? action : NULL);
	pgjob_add(job,
			  "SELECT id, at, actor, action, target, source_ip, request_id, outcome "
			  "FROM vectron_meta.audit WHERE $1::text IS NULL OR action = $1 "
			  "ORDER BY id DESC LIMIT 1000",
			  &p);
	params_free(&p);
	submit(job);
}

static void
user_deleted(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char a[32], t[32];

	if (!job->ok) {
		meta_error(c, job);
		goto out;
	}
	if (PQntuples(job->results[1]) == 0) {
		http_respond_error(c->req, 404, "USER_NOT_FOUND", "no such user: %lld", c->user_id);
		goto out;
	}
	authz_cache_forget_user(c->user_id);
	authz_cache_refresh();
	snprintf(t, sizeof(t), "user:%lld", c->user_id);
	authz_audit(c->req, actor_str(c, a, sizeof(a)), "user.delete", t, "ok");
	http_respond_json(c->req, 200,
					  json_pack("{s:I,s:b,s:I}", "user_id", (json_int_t) c->user_id, "deleted", 1,
								"collections_handed_to", (json_int_t) c->actor_id));
out:
	pgjob_free(job);
	ctx_free(c);
}

static void
user_delete(HttpRequest *req, const char *id)
{
	AuthCtx *c;
	char *end, uid[32], aid[32];
	long long v = strtoll(id, &end, 10);
	ParamList p;
	PgJob *job;

	if (*end || v <= 0) {
		http_respond_error(req, 404, "USER_NOT_FOUND", "no such user");
		return;
	}
	c = ctx_new(req);
	c->user_id = v;
	if (v == c->actor_id) {
		http_respond_error(req, 409, "CONFLICT", "an admin cannot delete their own account");
		ctx_free(c);
		return;
	}
	snprintf(uid, sizeof(uid), "%lld", v);
	snprintf(aid, sizeof(aid), "%lld", c->actor_id);
	params_init(&p);
	params_add(&p, uid);
	params_add(&p, aid);
	job = pgjob_new(user_deleted, c);
	/* the documented rule: the deleting admin takes over the collections */
	pgjob_add(job,
			  "UPDATE vectron_meta.collection_owner SET user_id = $2::bigint "
			  "WHERE user_id = $1::bigint AND EXISTS (SELECT 1 FROM vectron_meta.app_user "
			  "WHERE id = $1::bigint)",
			  &p);
	pgjob_add(job, "DELETE FROM vectron_meta.app_user WHERE id = $1::bigint AND $2 <> '' RETURNING id",
			  &p);
	params_free(&p);
	submit(job);
}

/* ---- grants ---- */

static void
grant_done(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char a[32], t[160];

	if (!job->ok) {
		if (strcmp(job->sqlstate, "23503") == 0)
			http_respond_error(c->req, 404, "USER_NOT_FOUND", "no such user: %lld", c->user_id);
		else
			meta_error(c, job);
		goto out;
	}
	authz_cache_set_grant(c->name, c->user_id, c->role[0] ? c->role : NULL);
	snprintf(t, sizeof(t), "collection:%s user:%lld", c->name, c->user_id);
	authz_audit(c->req, actor_str(c, a, sizeof(a)), c->role[0] ? "grant.set" : "grant.delete",
				t, "ok");
	http_respond_json(c->req, c->role[0] ? 201 : 200,
					  json_pack("{s:s,s:I,s:s?}", "collection", c->name, "user_id",
								(json_int_t) c->user_id, "role", c->role[0] ? c->role : NULL));
out:
	pgjob_free(job);
	ctx_free(c);
}

static void
grants(HttpRequest *req, const char *coll, const char *user)
{
	AuthCtx *c;
	ParamList p;
	PgJob *job;
	char uid[32];
	ShardMap *m = shardmap_acquire();
	bool exists = shardmap_collection(m, coll) != NULL;

	shardmap_release(m);
	if (!exists) {
		http_respond_error(req, 404, "COLLECTION_NOT_FOUND", "collection \"%s\" does not exist",
						   coll);
		return;
	}
	c = ctx_new(req);
	snprintf(c->name, sizeof(c->name), "%s", coll);
	if (!user) {
		json_t *b = api_parse_body(req), *u, *r;
		RbacRole role;

		if (!b) {
			ctx_free(c);
			return;
		}
		u = json_object_get(b, "user_id");
		r = json_object_get(b, "role");
		if (!json_is_integer(u) || json_integer_value(u) <= 0 || !json_is_string(r) ||
			!rbac_parse_role(json_string_value(r), &role) || role == RBAC_ROLE_ADMIN) {
			json_decref(b);
			bad(req, "expected {\"user_id\": <id>, \"role\": \"write\"|\"readonly\"}");
			ctx_free(c);
			return;
		}
		c->user_id = json_integer_value(u);
		snprintf(c->role, sizeof(c->role), "%s", rbac_role_name(role));
		json_decref(b);
	} else {
		char *end;

		c->user_id = strtoll(user, &end, 10);
		if (*end || c->user_id <= 0) {
			http_respond_error(req, 404, "USER_NOT_FOUND", "no such user");
			ctx_free(c);
			return;
		}
	}
	snprintf(uid, sizeof(uid), "%lld", c->user_id);
	params_init(&p);
	params_add(&p, c->name);
	params_add(&p, uid);
	if (c->role[0])
		params_add(&p, c->role);
	job = pgjob_new(grant_done, c);
	if (c->role[0])
		pgjob_add(job,
				  "INSERT INTO vectron_meta.grant_ (collection, user_id, role) "
				  "VALUES ($1, $2::bigint, $3) ON CONFLICT (collection, user_id) "
				  "DO UPDATE SET role = EXCLUDED.role",
				  &p);
	else
		pgjob_add(job,
				  "DELETE FROM vectron_meta.grant_ WHERE collection = $1 AND user_id = $2::bigint",
				  &p);
	params_free(&p);
	submit(job);
}

/* ---- quotas ---- */

static const char *const QUOTA_FIELDS[3] = {"collections", "vectors", "dimension_count"};
static const long long QUOTA_MAX[3] = {1000000, 1000000000000LL, 1000000000000000LL};

static json_t *
quota_json(long long v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

static long long
col_ll(PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? -1 : atoll(PQgetvalue(r, 0, col));
}

static void
quota_set(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char a[32], t[32];
	PGresult *r = job->results[0];
	long long q[3];

	if (!job->ok) {
		meta_error(c, job);
		goto out;
	}
	if (PQntuples(r) == 0) {
		http_respond_error(c->req, 404, "USER_NOT_FOUND", "no such user: %lld", c->user_id);
		goto out;
	}
	for (int i = 0; i < 3; i++)
		q[i] = col_ll(r, i);
	authz_cache_set_quota(c->user_id, q[0]);
	quota_set_user(c->user_id, q[1], q[2]);
	snprintf(t, sizeof(t), "user:%lld", c->user_id);
	authz_audit(c->req, actor_str(c, a, sizeof(a)), "quota.set", t, "ok");
	http_respond_json(c->req, 200,
					  json_pack("{s:I,s:{s:o,s:o,s:o}}", "user_id", (json_int_t) c->user_id,
								"quotas", "collections", quota_json(q[0]), "vectors",
								quota_json(q[1]), "dimension_count", quota_json(q[2])));
out:
	pgjob_free(job);
	ctx_free(c);
}

/*
 * PUT /v1/admin/users/{id}/quota {"collections"?, "vectors"?,
 * "dimension_count"?}: each an integer, or null for no limit; a field left
 * out keeps its value.
 */
static void
quota_put(HttpRequest *req, const char *id)
{
	json_t *b;
	AuthCtx *c;
	char *end, uid[32], q[3][32];
	long long v = strtoll(id, &end, 10);
	ParamList p;
	PgJob *job;
	int given = 0;

	if (*end || v <= 0) {
		http_respond_error(req, 404, "USER_NOT_FOUND", "no such user");
		return;
	}
	if (!(b = api_parse_body(req)))
		return;
	c = ctx_new(req);
	c->user_id = v;
	for (int i = 0; i < 3; i++) {
		json_t *n = json_object_get(b, QUOTA_FIELDS[i]);

		c->quota[i] = -1;
		if (!n)
			continue;
		if (!json_is_null(n) && (!json_is_integer(n) || json_integer_value(n) < 0 ||
								 json_integer_value(n) > QUOTA_MAX[i])) {
			http_respond_error(req, 400, "INVALID_ARGUMENT",
							   "%s must be an integer from 0 to %lld, or null for no limit",
							   QUOTA_FIELDS[i], QUOTA_MAX[i]);
			json_decref(b);
			ctx_free(c);
			return;
		}
		c->quota_given[i] = true;
		c->quota[i] = json_is_null(n) ? -1 : (long long) json_integer_value(n);
		given++;
	}
	json_decref(b);
	if (!given) {
		bad(req, "expected {\"collections\", \"vectors\", \"dimension_count\"}: integers, or "
			"null for no limit");
		ctx_free(c);
		return;
	}
	snprintf(uid, sizeof(uid), "%lld", v);
	params_init(&p);
	params_add(&p, uid);
	for (int i = 0; i < 3; i++) {
		snprintf(q[i], sizeof(q[i]), "%lld", c->quota[i]);
		params_add(&p, c->quota[i] >= 0 ? q[i] : NULL);
		params_add(&p, c->quota_given[i] ? "t" : "f");
	}
	job = pgjob_new(quota_set, c);
	pgjob_add(job,
			  "UPDATE vectron_meta.app_user SET "
			  "max_collections = CASE WHEN $3::bool THEN $2::int ELSE max_collections END, "
			  "max_vectors = CASE WHEN $5::bool THEN $4::bigint ELSE max_vectors END, "
			  "max_dimension_count = CASE WHEN $7::bool THEN $6::bigint "
			  "ELSE max_dimension_count END "
			  "WHERE id = $1::bigint RETURNING max_collections, max_vectors, max_dimension_count",
			  &p);
	params_free(&p);
	submit(job);
}

/*
 * ---- admin-issued password reset ----
 *
 * POST /v1/admin/users/{id}/password-reset {"ttl_seconds"?} (admin) makes a
 * vp_<id>_<secret> token, stores only its hash (like refresh tokens) with
 * an expiry (auth_reset_ttl_s, or ttl_seconds), retires the user's earlier
 * unused reset tokens, and shows the token once.  POST /v1/auth/password-reset
 * {"reset_token","new_password"} (public) checks the hash in constant time,
 * hashes the new password on the argon2 pool, then in one statement claims
 * the token (unused and unexpired, so two concurrent uses cannot both
 * succeed), sets the password and revokes every refresh family of the user
 * (their login JWTs then fail too, authfam.c).
 */

static void
reset_issued(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char a[32], t[32];
	PGresult *r = job->results[1];

	snprintf(t, sizeof(t), "user:%lld", c->user_id);
	if (!job->ok) {
		meta_error(c, job);
		goto out;
	}
	if (PQntuples(r) != 1) {
		http_respond_error(c->req, 404, "USER_NOT_FOUND", "no such user: %lld", c->user_id);
		goto out;
	}
	authz_audit(c->req, actor_str(c, a, sizeof(a)), "password.reset.issue", t, "ok");
	http_respond_json(c->req, 201,
					  json_pack("{s:I,s:s,s:s,s:s}", "user_id", (json_int_t) c->user_id,
								"reset_token", c->token, "reset_id", c->id, "expires_at",
								PQgetvalue(r, 0, 0)));
out:
	pgjob_free(job);
	ctx_free(c);
}

/* POST /v1/admin/users/{id}/password-reset */
static void
reset_issue(HttpRequest *req, const char *id)
{
	AuthCtx *c;
	char *end, uid[32], aid[32], ttl[32], err[128];
	long long v = strtoll(id, &end, 10);
	int secs = cf_auth_reset_ttl_s;
	ParamList p;
	PgJob *job;

	if (*end || v <= 0) {
		http_respond_error(req, 404, "USER_NOT_FOUND", "no such user");
		return;
	}
	if (evbuffer_get_length(req->body) > 0) {
		json_t *b = api_parse_body(req), *t;

		if (!b)
			return;
		t = json_object_get(b, "ttl_seconds");
		if (t && (!json_is_integer(t) || json_integer_value(t) < 1 ||
				  json_integer_value(t) > 604800)) {
			json_decref(b);
			bad(req, "ttl_seconds must be an integer from 1 to 604800");
			return;
		}
		if (t)
			secs = (int) json_integer_value(t);
		json_decref(b);
	}
	c = ctx_new(req);
	c->user_id = v;
	if (!apikey_generate(APIKEY_RESET, c->token, c->id, err, sizeof(err)) ||
		!apikey_hash(authz_hasher(), c->token, c->hash)) {
		http_respond_error(req, 500, "INTERNAL", "cannot make a reset token");
		ctx_free(c);
		return;
	}
	snprintf(uid, sizeof(uid), "%lld", v);
	snprintf(aid, sizeof(aid), "%lld", c->actor_id);
	snprintf(ttl, sizeof(ttl), "%d", secs);
	params_init(&p);
	params_add(&p, c->id);
	params_add(&p, c->hash);
	params_add(&p, uid);
	params_add(&p, ttl);
	params_add(&p, aid);
	job = pgjob_new(reset_issued, c);
	/* only the newest reset token of a user works */
	pgjob_add(job,
			  "UPDATE vectron_meta.password_reset SET used_at = now() "
			  "WHERE user_id = $3::bigint AND used_at IS NULL "
			  "AND $1 <> '' AND $2 <> '' AND $4::int > 0 AND $5::bigint >= 0",
			  &p);
	pgjob_add(job,
			  "INSERT INTO vectron_meta.password_reset (id, user_id, hash, expires_at, created_by) "
			  "SELECT $1, u.id, $2, now() + make_interval(secs => $4::int), $5::bigint "
			  "FROM vectron_meta.app_user u WHERE u.id = $3::bigint "
			  "RETURNING to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
			  &p);
	params_free(&p);
	submit(job);
}

static void
reset_applied(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char t[40];

	snprintf(t, sizeof(t), "reset:%s", c->id);
	if (!job->ok)
		meta_error(c, job);
	else if (PQntuples(job->results[0]) != 1) {
		/* used or expired meanwhile (a concurrent use won), or the user went away */
		authz_audit(c->req, NULL, "password.reset", t, "denied");
		authz_respond_401(c->req, "invalid, used or expired reset token");
	} else {
		char u[32];

		snprintf(u, sizeof(u), "user:%s", PQgetvalue(job->results[0], 0, 0));
		authz_audit(c->req, u, "password.reset", u, "ok");
		authfam_poll();		/* the user's login JWTs fail here without waiting */
		http_respond_json(c->req, 200, json_pack("{s:b}", "reset", 1));
	}
	pgjob_free(job);
	ctx_free(c);
}

static void
reset_hashed(PasswordStatus st, const char *encoded, void *arg)
{
	AuthCtx *c = arg;
	ParamList p;
	PgJob *job;

	if (st != PASSWORD_OK) {
		http_respond_error(c->req, 500, "INTERNAL", "password hashing failed");
		ctx_free(c);
		return;
	}
	params_init(&p);
	params_add(&p, c->id);
	params_add(&p, encoded);
	params_add(&p, c->hash);
	job = pgjob_new(reset_applied, c);
	/* claim (single use), set the password, end every session: one statement */
	pgjob_add(job,
			  "WITH r AS (UPDATE vectron_meta.password_reset SET used_at = now() "
			  "  WHERE id = $1 AND hash = $3 AND used_at IS NULL AND expires_at > now() "
			  "  RETURNING user_id), "
			  "u AS (UPDATE vectron_meta.app_user a SET password_hash = $2 FROM r "
			  "  WHERE a.id = r.user_id RETURNING a.id), "
			  "f AS (UPDATE vectron_meta.refresh_family SET revoked = true "
			  "  WHERE user_id IN (SELECT id FROM u) AND NOT revoked RETURNING 1), "
			  "o AS (UPDATE vectron_meta.password_reset SET used_at = now() "
			  "  WHERE user_id IN (SELECT id FROM u) AND id <> $1 AND used_at IS NULL RETURNING 1) "
			  "SELECT id FROM u",
			  &p);
	params_free(&p);
	submit(job);
}

static void
reset_found(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	PGresult *r = job->results[0];
	char t[40];

	snprintf(t, sizeof(t), "reset:%s", c->id);
	if (!job->ok) {
		meta_error(c, job);
		goto fail;
	}
	if (PQntuples(r) != 1 ||
		!apikey_verify(authz_hasher(), APIKEY_RESET, c->token, PQgetvalue(r, 0, 0)) ||
		strcmp(PQgetvalue(r, 0, 1), "t") == 0 || strcmp(PQgetvalue(r, 0, 2), "t") == 0) {
		authz_audit(c->req, NULL, "password.reset", t, "denied");
		authz_respond_401(c->req, "invalid, used or expired reset token");
		goto fail;
	}
	snprintf(c->hash, sizeof(c->hash), "%s", PQgetvalue(r, 0, 0));
	pgjob_free(job);
	if (!password_hash_async(authz_password_pool(), c->password, c->pwlen,
							 authz_password_params(), reset_hashed, c)) {
		http_respond_error(c->req, 503, "OVERLOADED", "too many password operations; retry later");
		ctx_free(c);
	}
	return;
fail:
	pgjob_free(job);
	ctx_free(c);
}

/* POST /v1/auth/password-reset {"reset_token", "new_password"} */
static void
reset_use(HttpRequest *req)
{
	json_t *b = api_parse_body(req), *tk, *nw;
	AuthCtx *c;
	ApikeyKind k;
	ParamList p;
	PgJob *job;

	if (!b)
		return;
	c = ctx_new(req);
	tk = json_object_get(b, "reset_token");
	nw = json_object_get(b, "new_password");
	if (!json_is_string(nw) || json_string_length(nw) < 8 ||
		json_string_length(nw) > PASSWORD_MAX_LEN) {
		bad(req, "new_password must be a string of 8 to 1024 bytes");
		goto fail;
	}
	if (!json_is_string(tk) || json_string_length(tk) != APIKEY_TOKEN_LEN ||
		!apikey_parse(json_string_value(tk), &k, c->id) || k != APIKEY_RESET) {
		authz_audit(req, NULL, "password.reset", NULL, "denied");
		authz_respond_401(req, "malformed reset token");
		goto fail;
	}
	memcpy(c->token, json_string_value(tk), APIKEY_TOKEN_SIZE);
	c->pwlen = json_string_length(nw);
	c->password = xmalloc(c->pwlen + 1);
	memcpy(c->password, json_string_value(nw), c->pwlen + 1);
	json_string_set(tk, "");
	json_string_set(nw, "");
	json_decref(b);
	params_init(&p);
	params_add(&p, c->id);
	job = pgjob_new(reset_found, c);
	pgjob_add(job,
			  "SELECT hash, used_at IS NOT NULL, expires_at <= now() "
			  "FROM vectron_meta.password_reset WHERE id = $1",
			  &p);
	params_free(&p);
	submit(job);
	return;
fail:
	if (json_is_string(tk))
		json_string_set(tk, "");
	if (json_is_string(nw))
		json_string_set(nw, "");
	json_decref(b);
	ctx_free(c);
}

/* ---- change own password: POST /v1/me/password ---- */

static void
password_changed(PgJob *job, void *arg)
{
	AuthCtx *c = arg;
	char t[32];

	snprintf(t, sizeof(t), "user:%lld", c->user_id);
	if (!job->ok)
		meta_error(c, job);
	else {
		authfam_poll();		/* the other sessions' login JWTs fail here soon */
		authz_audit(c->req, t, "password.change", t, "ok");
		http_respond_json(c->req, 200, json_pack("{s:b}", "changed", 1));
	}
	pgjob_free(job);
	ctx_free(c);
}

static void
new_password_hashed(PasswordStatus st, const char *encoded, void *arg)
{
	AuthCtx *c = arg;
	char uid[32];
	ParamList p;
	PgJob *job;

	if (st != PASSWORD_OK) {
		http_respond_error(c->req, 500, "INTERNAL", "password hashing failed");
		ctx_free(c);
		return;
	}
	snprintf(uid, sizeof(uid), "%lld", c->user_id);
	params_init(&p);
	params_add(&p, uid);
	params_add(&p, encoded);
	job = pgjob_new(password_changed, c);
	pgjob_add(job, "UPDATE vectron_meta.app_user SET password_hash = $2 WHERE id = $1::bigint",
			  &p);
	params_add(&p, c->expires[0] ? c->expires : NULL);
	/* other sessions end: their refresh tokens and login JWTs stop working;
	 * the session that changed the password (its fam claim) goes on */
	pgjob_add(job,
			  "UPDATE vectron_meta.refresh_family SET revoked = true "
			  "WHERE user_id = $1::bigint AND $2 <> '' AND NOT revoked "
			  "AND id::text IS DISTINCT FROM $3::text",
			  &p);
	params_free(&p);
	submit(job);
}

static void
old_password_verified(PasswordStatus st, bool needs_rehash, void *arg)
{
	AuthCtx *c = arg;
	char t[32];

	if (st != PASSWORD_OK) {
		snprintf(t, sizeof(t), "user:%lld", c->user_id);
		authz_audit(c->req, t, "password.change", t, "denied");
		http_respond_error(c->req, 403, "FORBIDDEN", "the current password is wrong");
		ctx_free(c);
		return;
	}
	if (!password_hash_async(authz_password_pool(), c->password, c->pwlen,
							 authz_password_params(), new_password_hashed, c)) {
		http_respond_error(c->req, 503, "OVERLOADED", "too many password operations; retry later");
		ctx_free(c);
	}
}

static void
password_row(PgJob *job, void *arg)
{
	AuthCtx *c = arg;

	if (!job->ok || PQntuples(job->results[0]) != 1) {
		if (!job->ok)
			meta_error(c, job);
		else
			authz_respond_401(c->req, "the token's user does not exist");
		ctx_free(c);
	} else if (!password_verify_async(authz_password_pool(), c->current, c->curlen,
									  PQgetvalue(job->results[0], 0, 0), NULL,
									  old_password_verified, c)) {
		http_respond_error(c->req, 503, "OVERLOADED", "too many password operations; retry later");
		ctx_free(c);
	}
	pgjob_free(job);
}

static void
password_change(HttpRequest *req)
{
	json_t *b = api_parse_body(req), *cur, *nw;
	const AuthCaller *a = authz_caller();
	AuthCtx *c;
	char uid[32];
	ParamList p;
	PgJob *job;

	if (!b)
		return;
	cur = json_object_get(b, "current_password");
	nw = json_object_get(b, "new_password");
	if (!json_is_string(cur) || json_string_length(cur) > PASSWORD_MAX_LEN ||
		strlen(json_string_value(cur)) != json_string_length(cur) || !json_is_string(nw) ||
		json_string_length(nw) < 8 || json_string_length(nw) > PASSWORD_MAX_LEN) {
		bad(req, "expected {\"current_password\", \"new_password\" (8 to 1024 bytes)}");
		goto wipe;
	}
	c = ctx_new(req);
	c->user_id = a->user_id;
	snprintf(c->expires, sizeof(c->expires), "%s", a->claims.family);
	c->pwlen = json_string_length(nw);
	c->password = xmalloc(c->pwlen + 1);
	memcpy(c->password, json_string_value(nw), c->pwlen + 1);
	c->curlen = json_string_length(cur);
	c->current = xmalloc(c->curlen + 1);
	memcpy(c->current, json_string_value(cur), c->curlen + 1);
	snprintf(uid, sizeof(uid), "%lld", c->user_id);
	params_init(&p);
	params_add(&p, uid);
	job = pgjob_new(password_row, c);
	pgjob_add(job, "SELECT password_hash FROM vectron_meta.app_user WHERE id = $1::bigint", &p);
	params_free(&p);
	submit(job);
wipe:
	if (json_is_string(cur))
		json_string_set(cur, "");
	if (json_is_string(nw))
		json_string_set(nw, "");
	json_decref(b);
}

/* ---- routing ---- */

static void
method(HttpRequest *req, const char *allowed)
{
	http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use %s",
					   req->method_name, req->path, allowed);
}

bool
api_auth_route(HttpRequest *req, char **segs, int n)
{
	int m = req->method;
	bool ours;

	ours = (n >= 3 && strcmp(segs[1], "auth") == 0) || (n >= 2 && strcmp(segs[1], "keys") == 0) ||
		((n == 2 || n == 3) && strcmp(segs[1], "me") == 0) ||
		(n >= 3 && strcmp(segs[1], "admin") == 0 &&
		 (strcmp(segs[2], "users") == 0 || strcmp(segs[2], "audit") == 0)) ||
		(n >= 4 && strcmp(segs[1], "collections") == 0 && strcmp(segs[3], "grants") == 0);
	if (!ours)
		return false;
	if (!authz_enabled()) {
		http_respond_error(req, 404, "AUTH_DISABLED",
						   "authentication is off on this coordinator (auth = off)");
		return true;
	}
	if (strcmp(segs[1], "auth") == 0) {
		const char *a = segs[2];

		if (n != 3)
			http_respond_error(req, 404, "NOT_FOUND", "no such endpoint");
		else if (strcmp(a, "jwks.json") == 0) {
			char err[128], *j;

			if (m != HTTP_GET)
				method(req, "GET");
			else if (!(j = jwt_verifier_jwks(authz_verifier(), time(NULL), err, sizeof(err))))
				http_respond_error(req, 500, "INTERNAL", "%s", err);
			else {
				http_respond_raw(req, 200, "application/json", j, strlen(j));
				free(j);
			}
		} else if (m != HTTP_POST)
			method(req, "POST");
		else if (strcmp(a, "register") == 0) {
			if (strcmp(cf_auth_registration, "open") != 0)
				http_respond_error(req, 403, "FORBIDDEN",
								   "registration is admin-only on this cluster");
			else
				user_create(req, false);
		} else if (strcmp(a, "login") == 0)
			login(req);
		else if (strcmp(a, "refresh") == 0)
			refresh_or_logout(req, RT_REFRESH);
		else if (strcmp(a, "logout") == 0)
			refresh_or_logout(req, RT_LOGOUT);
		else if (strcmp(a, "token") == 0)
			token_exchange(req);
		else if (strcmp(a, "password-reset") == 0)
			reset_use(req);
		else
			http_respond_error(req, 404, "NOT_FOUND", "no such endpoint");
		return true;
	}
	if (strcmp(segs[1], "keys") == 0) {
		if (n == 2) {
			if (m == HTTP_POST)
				keys_create(req);
			else if (m == HTTP_GET)
				keys_list(req);
			else
				method(req, "GET, POST");
		} else if (n == 3) {
			if (m == HTTP_DELETE)
				key_revoke_or_rotate(req, segs[2], false);
			else
				method(req, "DELETE");
		} else if (n == 4 && strcmp(segs[3], "rotate") == 0) {
			if (m == HTTP_POST)
				key_revoke_or_rotate(req, segs[2], true);
			else
				method(req, "POST");
		} else
			http_respond_error(req, 404, "NOT_FOUND", "no such endpoint");
		return true;
	}
	if (strcmp(segs[1], "me") == 0) {
		if (n == 3 && strcmp(segs[2], "password") != 0)
			http_respond_error(req, 404, "NOT_FOUND", "no such endpoint");
		else if (n == 3 && m == HTTP_POST)
			password_change(req);
		else if (n == 3)
			method(req, "POST");
		else if (m == HTTP_GET)
			me(req);
		else
			method(req, "GET");
		return true;
	}
	if (strcmp(segs[1], "admin") == 0 && strcmp(segs[2], "audit") == 0) {
		if (n == 3 && m == HTTP_GET)
			audit_list(req);
		else
			method(req, "GET");
		return true;
	}
	if (strcmp(segs[1], "admin") == 0) {
		if (n == 3) {
			if (m == HTTP_POST)
				user_create(req, true);
			else if (m == HTTP_GET)
				users_list(req);
			else
				method(req, "GET, POST");
		} else if (n == 4) {
			if (m == HTTP_DELETE)
				user_delete(req, segs[3]);
			else
				method(req, "DELETE");
		} else if (n == 5 && strcmp(segs[4], "quota") == 0) {
			if (m == HTTP_PUT)
				quota_put(req, segs[3]);
			else
				method(req, "PUT");
		} else if (n == 5 && strcmp(segs[4], "password-reset") == 0) {
			if (m == HTTP_POST)
				reset_issue(req, segs[3]);
			else
				method(req, "POST");
		} else
			http_respond_error(req, 404, "NOT_FOUND", "no such endpoint");
		return true;
	}
	/* collections/{name}/grants[/{user_id}] */
	if (n == 4) {
		if (m == HTTP_POST)
			grants(req, segs[2], NULL);
		else
			method(req, "POST");
	} else if (n == 5) {
		if (m == HTTP_DELETE)
			grants(req, segs[2], segs[4]);
		else
			method(req, "DELETE");
	} else
		http_respond_error(req, 404, "NOT_FOUND", "no such endpoint");
	return true;
}
