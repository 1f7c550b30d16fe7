/*
 * fuzz_request_stubs.c
 *	  The coordinator's edges, replaced for fuzz_request: the HTTP layer
 *	  (answers are counted, not sent), the metadata and worker connections
 *	  (a job fails at once as if the database were down, so every handler
 *	  reaches its error path and frees what it holds), the write and read
 *	  executors (they run every shard's statement builder, then a write
 *	  completes successfully and a read waits until the request is
 *	  cancelled), metrics, and auth: the middleware allows, the caller is an
 *	  admin with a login token, password hashing succeeds at once (with a
 *	  fixed string), and the snapshot updates do nothing.  Anything the
 *	  decoders must never reach aborts, so the fuzzer reports it as a crash.
 *	  When api_auth.c starts calling another authz_* function, the link
 *	  fails naming it: add its stub here.
 */
#include "api_admin.h"
#include "api_internal.h"
#include "authz.h"
#include "console.h"
#include "fanout.h"
#include "health.h"
#include "metadata.h"
#include "openapi_json.h"
#include "password.h"
#include "obs.h"
#include "writes.h"
#include "quota.h"
#include "authfam.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_request.h"

int fz_answers;
int fz_last_status;

static void
never(const char *what)
{
	fprintf(stderr, "fuzz_request: %s must not be reached while decoding a request\n", what);
	abort();
}

/* ---- HTTP ---- */

void
http_respond_raw(HttpRequest *req, int status, const char *ctype, const char *body, size_t len)
{
	(void) req;
	(void) ctype;
	(void) body;
	(void) len;
	fz_answers++;
	fz_last_status = status;
}

void
http_respond_json(HttpRequest *req, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);

	json_decref(body);
	if (!s)
		never("an answer that does not serialise");
	http_respond_raw(req, status, "application/json", s, strlen(s));
	free(s);
}

void
http_respond_error(HttpRequest *req, int status, const char *code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	util_utf8_scrub(msg);
	util_strlcpy(req->errcode, code, sizeof(req->errcode));
	http_respond_json(req, status,
					  json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

char *
http_body_string(HttpRequest *req, size_t *len)
{
	size_t n = evbuffer_get_length(req->body);
	char *s = xmalloc(n + 1);

	evbuffer_copyout(req->body, s, n);
	s[n] = '\0';
	if (len)
		*len = n;
	return s;
}

void
http_set_cancel(HttpRequest *req, HttpCancelHook hook, void *arg)
{
	req->on_cancel = hook;
	req->cancel_arg = arg;
}

void
http_stream_body(HttpRequest *req, HttpBodySink sink, void *arg)
{
	req->sink = sink;
	req->sink_arg = arg;
}

void
http_resume_body(HttpRequest *req)
{
	(void) req;
}

/* ---- metadata and worker connections: the database is down ---- */

static int fz_pool_token;

PgPool *
metadata_pool(void)
{
	return (PgPool *) &fz_pool_token;
}

const char *const META_SQL_MAP = "SELECT 'fuzz'";
const char *const META_SQL_VERSION = "SELECT 1";

PgJob *
pgjob_new(PgJobCallback cb, void *arg)
{
	PgJob *j = xcalloc(1, sizeof(PgJob));

	j->cb = cb;
	j->arg = arg;
	return j;
}

int
pgjob_add(PgJob *job, const char *sql, const ParamList *params)
{
	PgStmt *s;

	if (job->nstmts == job->cap) {
		job->cap = job->cap ? job->cap * 2 : 4;
		job->stmts = xrealloc(job->stmts, job->cap * sizeof(PgStmt));
	}
	s = &job->stmts[job->nstmts];
	s->sql = xstrdup(sql);
	params_init(&s->params);
	if (params)
		for (int i = 0; i < params->n; i++)
			params_add(&s->params, params->v[i]);
	return job->nstmts++;
}

int
pgjob_add0(PgJob *job, const char *sql)
{
	return pgjob_add(job, sql, NULL);
}

void
pgjob_free(PgJob *job)
{
	if (!job)
		return;
	for (int i = 0; i < job->nstmts; i++) {
		free(job->stmts[i].sql);
		params_free(&job->stmts[i].params);
	}
	free(job->stmts);
	free(job->results);
	free(job->errmsg);
	free(job);
}

void
pgjob_submit(PgPool *pool, PgJob *job)
{
	(void) pool;
	job->results = xcalloc(job->nstmts ? job->nstmts : 1, sizeof(PGresult *));
	job->ok = false;
	job->conn_error = true;
	memcpy(job->sqlstate, "08006", 6);
	job->errmsg = xstrdup("fuzz: no database");
	util_strlcpy(job->node, "metadata", sizeof(job->node));
	job->cb(job, job->arg);
}

PgPool *
workerconn_pool_for_node(int node_id, const char *name, const char *host, int port,
						 const char *dbname)
{
	(void) node_id;
	(void) name;
	(void) host;
	(void) port;
	(void) dbname;
	return (PgPool *) &fz_pool_token;
}

void
workerconn_pool_drop(int node_id)
{
	(void) node_id;
}

bool
workerconn_pool_up(const PgPool *pool)
{
	(void) pool;
	return true;
}

/* ---- executors ---- */

static int64_t fz_version = 1;

int64_t
writes_next_version(void)
{
	return fz_version++;
}

/* Build every touched shard's statement, then complete successfully. */
WriteOp *
writes_start(ShardMap *map, const SmCollection *c, const bool *touched, bool mark_stale,
			 bool include_all, WriteBuild build, void *build_arg, WriteDone done, void *done_arg)
{
	WriteOp *w = xcalloc(1, sizeof(WriteOp));

	w->map = map;
	w->coll = c;
	w->nshards = c->nshards;
	w->mark_stale = mark_stale;
	w->include_all = include_all;
	w->ok = true;
	w->shards = xcalloc(c->nshards, sizeof(WriteShard));
	for (int i = 0; i < c->nshards; i++) {
		StrBuf sql;
		ParamList params;

		w->shards[i].shard = &c->shards[i];
		w->shards[i].touched = !touched || touched[i];
		if (!w->shards[i].touched)
			continue;
		w->shards[i].nok = 1;
		sb_init(&sql);
		params_init(&params);
		build(build_arg, i, &c->shards[i], &sql, &params);
		fz_check_sql(sql.data, &params);
		sb_free(&sql);
		params_free(&params);
	}
	done(w, done_arg);
	return w;
}

void
writes_free(WriteOp *w)
{
	free(w->shards);
	free(w);
}

void
writes_detach(WriteOp *w)
{
	writes_free(w);
}

/* Build every shard's statement; done never runs (the harness cancels). */
Fanout *
fanout_start(ShardMap *map, const SmCollection *c, const bool *touched, const char *prelude,
			 const ParamList *prelude_params, FanoutBuild build, void *build_arg,
			 FanoutDone done, void *done_arg)
{
	Fanout *f = xcalloc(1, sizeof(Fanout));

	(void) prelude;
	(void) prelude_params;
	f->map = map;
	f->coll = c;
	f->nshards = c->nshards;
	f->build = build;
	f->build_arg = build_arg;
	f->done = done;
	f->done_arg = done_arg;
	for (int i = 0; i < c->nshards; i++) {
		StrBuf sql;
		ParamList params;

		if (touched && !touched[i])
			continue;
		sb_init(&sql);
		params_init(&params);
		build(build_arg, &c->shards[i], &sql, &params);
		fz_check_sql(sql.data, &params);
		sb_free(&sql);
		params_free(&params);
	}
	return f;
}

Fanout *
fanout_start_flags(ShardMap *map, const SmCollection *c, const bool *touched,
				   const char *prelude, const ParamList *prelude_params,
				   FanoutBuild build, void *build_arg, FanoutDone done, void *done_arg,
				   unsigned flags)
{
	(void) flags;
	return fanout_start(map, c, touched, prelude, prelude_params, build, build_arg, done,
						done_arg);
}

void
fanout_cancel(Fanout *f)
{
	free(f);
}

void
fanout_free(Fanout *f)
{
	free(f);
}

/* ---- metrics, auth and routes the decoders never reach ---- */

void
obs_points_upserted(const char *coll, long n)
{
	(void) coll;
	(void) n;
}

void
obs_search(const char *coll, long nresults)
{
	(void) coll;
	(void) nresults;
}

void
obs_partial_result(void)
{
}

/* ---- auth state for api_auth.c ---- */

static AuthCaller fz_caller = {
	.authenticated = true,
	.claims = {.type = JWT_TOKEN_LOGIN, .sub = "1", .role = "admin", .jti = "fz"},
	.user_id = 1,
	.user_role = RBAC_ROLE_ADMIN,
	.role = RBAC_ROLE_ADMIN,
};
static ApikeyHasher fz_hasher;		/* zero: plain SHA-256 */
static PasswordParams fz_params = PASSWORD_DEFAULT_PARAMS;
static int fz_pw_pool_token;

bool
authz_enabled(void)
{
	return true;
}

const AuthCaller *
authz_caller(void)
{
	return &fz_caller;
}

const ApikeyHasher *
authz_hasher(void)
{
	return &fz_hasher;
}

JwtSigner *
authz_signer(void)
{
	never("authz_signer (signing needs a database answer)");
	return NULL;
}

JwtVerifier *
authz_verifier(void)
{
	never("authz_verifier (only jwks.json, not fuzzed)");
	return NULL;
}

PasswordPool *
authz_password_pool(void)
{
	return (PasswordPool *) &fz_pw_pool_token;
}

const PasswordParams *
authz_password_params(void)
{
	return &fz_params;
}

const char *
authz_dummy_hash(void)
{
	return "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
}

void
authz_respond_401(HttpRequest *req, const char *reason)
{
	http_respond_error(req, 401, "UNAUTHORIZED", "%s", reason);
}

void
authz_audit(HttpRequest *req, const char *actor, const char *action, const char *target,
			const char *outcome)
{
	(void) req;
	(void) actor;
	(void) action;
	(void) target;
	(void) outcome;
}

void
authz_cache_add_user(long long id, const char *role)
{
	(void) id;
	(void) role;
}

void
authz_cache_forget_user(long long id)
{
	(void) id;
}

void
authz_cache_add_key(const char *id, long long user_id, const char *role,
					const char *const *colls, int ncolls, long long expires_at)
{
	(void) id;
	(void) user_id;
	(void) role;
	(void) colls;
	(void) ncolls;
	(void) expires_at;
}

void
authz_cache_forget_key(const char *id)
{
	(void) id;
}

void
authz_cache_set_grant(const char *coll, long long user_id, const char *role)
{
	(void) coll;
	(void) user_id;
	(void) role;
}

void
authz_cache_set_quota(long long user_id, long long max_collections)
{
	(void) user_id;
	(void) max_collections;
}

void
authz_cache_refresh(void)
{
}

long long
authz_quota_collections(long long user_id)
{
	(void) user_id;
	return -1;
}

/* Hashing "succeeds" at once; verifying needs a stored hash, so a row. */
bool
password_hash_async(PasswordPool *pool, const char *password, size_t len,
					const PasswordParams *p, PasswordHashCb cb, void *arg)
{
	(void) pool;
	(void) password;
	(void) len;
	(void) p;
	cb(PASSWORD_OK, "$argon2id$v=19$m=8,t=1,p=1$fuzz$fuzz", arg);
	return true;
}

bool
password_verify_async(PasswordPool *pool, const char *password, size_t len,
					  const char *encoded, const PasswordParams *current,
					  PasswordVerifyCb cb, void *arg)
{
	(void) pool;
	(void) password;
	(void) len;
	(void) encoded;
	(void) current;
	(void) cb;
	(void) arg;
	never("password_verify_async (needs a database answer)");
	return false;
}

bool
authz_request(HttpRequest *req)
{
	(void) req;
	return true;
}

bool
authz_precheck(HttpRequest *req)
{
	(void) req;
	return true;
}

void
authz_add_owner(struct PgJob *job, const char *coll)
{
	(void) job;
	(void) coll;
}

bool
authz_visible(const char *name)
{
	(void) name;
	return true;
}

void
health_kick_cleanup(void)
{
}

const char openapi_json[] = "{}";

bool
api_admin_route(HttpRequest *req, char **segs, int n)
{
	(void) req;
	(void) segs;
	(void) n;
	never("api_admin_route");
	return false;
}

bool
console_route(HttpRequest *req, char **segs, int n)
{
	(void) req;
	(void) segs;
	(void) n;
	never("console_route");
	return false;
}

/* quotas (quota.c): unlimited, nothing counted */
bool
quota_counting(void)
{
	return false;
}

void
quota_set_user(long long user, long long vectors, long long dimension_count)
{
	(void) user;
	(void) vectors;
	(void) dimension_count;
}

long long
quota_vectors(long long user)
{
	(void) user;
	return -1;
}

long long
quota_dimension_count(long long user)
{
	(void) user;
	return -1;
}

void
quota_usage(long long user, long long *vectors, long long *dimension_count)
{
	(void) user;
	*vectors = 0;
	*dimension_count = 0;
}

bool
quota_reserve(const SmCollection *c, long long npoints, long long *reserved, char *msg,
			  size_t msglen)
{
	(void) c;
	(void) npoints;
	(void) msg;
	(void) msglen;
	*reserved = 0;
	return true;
}

void
quota_settle(int64_t coll_id, long long reserved, long long delta)
{
	(void) coll_id;
	(void) reserved;
	(void) delta;
}

/* revoked refresh families (authfam.c): none */
void
authfam_poll(void)
{
}

void
authfam_add(const char *family)
{
	(void) family;
}
