/*
 * authz.h: the coordinator's request middleware when auth = on (issue 5).
 *
 * Every request passes authz_request() before routing: a per-IP rate limit,
 * the Bearer JWT (jwt_verify), revocation against an in-memory snapshot of
 * the accounts tables (users, live API keys, collection owners, grants)
 * that a timer reloads from the metadata database every auth_cache_poll_ms
 * (so a revocation on any coordinator takes effect everywhere within about
 * a second), a per-caller rate limit, and rbac_check() with the caller's
 * right on the collection the route names.  Answers 401 UNAUTHORIZED,
 * 403 FORBIDDEN or 429 RATE_LIMITED (with Retry-After) itself.
 *
 * The snapshot also holds the revocation list of the metadata database
 * (vectron_meta.revocation): rows written by triggers in the transaction
 * that revokes a key, rotates it, revokes a refresh family or deletes a
 * user, which also NOTIFY vectron_auth.  Every coordinator LISTENs and
 * reloads at once, so revocations reach all of them within milliseconds,
 * and the poll catches what a disconnected listener missed.
 *
 * The snapshot lookups are synchronous, so the check never waits on the
 * database and never blocks the loop.  Changes made by this coordinator are
 * also applied to the snapshot at once (authz_cache_*), so a key works
 * immediately after it is created and stops immediately after it is revoked.
 *
 * authz.c also holds the process-wide auth state that api_auth.c uses: the
 * signer and verifier, the secret hasher, the password pool.
 */
#ifndef VX_AUTHZ_H
#define VX_AUTHZ_H

#include "apikey.h"
#include "http.h"
#include "jwt.h"
#include "password.h"
#include "rbac.h"

#include <event2/event.h>

/* The caller of the request being dispatched (valid during api_handle). */
typedef struct AuthCaller {
	bool authenticated;
	JwtClaims claims;
	long long user_id;
	RbacRole user_role;
	RbacRole role;				/* effective role */
} AuthCaller;

bool authz_enabled(void);

/*
 * Load keys and pepper, start the password pool, create the bootstrap
 * admin and load the first snapshot (blocking: call before the loop runs,
 * after metadata_migrate).  Does nothing when auth = off.
 */
bool authz_start(struct event_base *base, const char *dsn, char *err, size_t errlen) VX_WARN_UNUSED;
void authz_stop(void);

/*
 * The middleware: true when the request may be routed; otherwise it has
 * been answered.  With auth = off always true.
 */
bool authz_request(HttpRequest *req);
/*
 * The same decision without answering and without rate limits (for the
 * headers hook of streamed bodies): true when routing may go on.
 */
bool authz_precheck(HttpRequest *req);

/*
 * May the current caller see collection name in GET /v1/collections?  In
 * the key's scope, and (non-admins) owned or granted.  True with auth off.
 */
bool authz_visible(const char *name);

/* The caller of the request being dispatched now (NULL when auth is off). */
const AuthCaller *authz_caller(void);

/* Process-wide state for api_auth.c. */
JwtSigner *authz_signer(void);
JwtVerifier *authz_verifier(void);
const ApikeyHasher *authz_hasher(void);
PasswordPool *authz_password_pool(void);
const PasswordParams *authz_password_params(void);
/* An argon2id hash of a random password, for unknown emails at login. */
const char *authz_dummy_hash(void);

/* Immediate snapshot updates for changes this coordinator made. */
void authz_cache_add_user(long long id, const char *role);
void authz_cache_forget_user(long long id);
void authz_cache_add_key(const char *id, long long user_id, const char *role,
						 const char *const *colls, int ncolls, long long expires_at);
void authz_cache_forget_key(const char *id);
void authz_cache_set_grant(const char *coll, long long user_id, const char *role);
/* Collection quota of a user (-1: none), and how many collections they own. */
void authz_cache_set_quota(long long user_id, long long max_collections);
long long authz_quota_collections(long long user_id);
long long authz_owned_collections(long long user_id);
/*
 * Add to the collection-create job (after vectron_meta.create_collection,
 * so in its transaction) the statements that make the caller the owner.
 * Nothing with auth off.
 */
struct PgJob;
void authz_add_owner(struct PgJob *job, const char *coll);
/* Owner of coll, or 0. */
long long authz_cache_owner(const char *coll);
/* Ask for a reload soon (after a change whose effect is wide). */
void authz_cache_refresh(void);

/*
 * Revocation list lookups (synchronous, from the snapshot; false with auth
 * off).  authz_family_revoked: the refresh family family_id was revoked
 * (logout, refresh-token reuse, password change) or deleted (its user
 * was), so login tokens of that family must fail; the middleware calls it
 * for login tokens that carry a family id.  authz_token_revoked: a user
 * revocation, or for SDK tokens a key revocation or a rotation whose grace
 * has ended and whose old secret minted the token (iat at or before the
 * rotation, or exp clamped to the end of the grace); called by the
 * middleware on every token.
 */
bool authz_family_revoked(long long family_id);
bool authz_token_revoked(const JwtClaims *c);

/* Record an audit row (fire and forget); never pass secrets. */
void authz_audit(HttpRequest *req, const char *actor, const char *action, const char *target,
				 const char *outcome);

/* Answer 401/403/429 in the documented shapes. */
void authz_respond_401(HttpRequest *req, const char *reason);

#endif
