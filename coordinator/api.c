/*
 * api.c: routing of /v1 requests, the admin node endpoints, and helpers
 * shared by the handlers.  Every answer, errors included, is JSON; errors
 * are {"error":{"code":"STABLE_CODE","message":"..."}} (table in
 * docs/openapi.yaml).
 */
#include "api.h"

#include "api_admin.h"
#include "api_auth.h"
#include "api_internal.h"
#include "authz.h"
#include "console.h"
#include "health.h"
#include "log.h"
#include "metadata.h"
#include "openapi_json.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

json_t *
api_parse_body(HttpRequest *req)
{
	size_t len;
	char *s = http_body_string(req, &len);

	return api_parse_object(req, s, len);
}

/* Parse text s (len bytes, freed here) as the request's JSON object, or answer 400. */
json_t *
api_parse_object(HttpRequest *req, char *s, size_t len)
{
	json_error_t je;
	json_t *j;

	if (len == 0) {
		free(s);
		http_respond_error(req, 400, "INVALID_JSON", "request body is empty; expected a JSON object");
		return NULL;
	}
	j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
	free(s);
	if (!j) {
		http_respond_error(req, 400, "INVALID_JSON", "malformed JSON at line %d column %d: %s",
						   je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_respond_error(req, 400, "INVALID_JSON", "request body must be a JSON object");
		return NULL;
	}
	return j;
}

void
api_respond_worker_error(HttpRequest *req, int status, const char *code, const char *msg,
						 const char *sqlstate, const char *node)
{
	json_t *e = json_pack("{s:s,s:s}", "code", code, "message", msg ? msg : "worker error");

	if (sqlstate && sqlstate[0])
		json_object_set_new(e, "sqlstate", json_string(sqlstate));
	if (node && node[0])
		json_object_set_new(e, "node", json_string(node));
	vx_log(LOG_WARNING, req->id, "%s %s: %s: %s", req->method_name, req->path, code,
		   msg ? msg : "");
	http_respond_json(req, status, json_pack("{s:o}", "error", e));
}

void
api_respond_job_error(HttpRequest *req, const PgJob *job)
{
	if (job->conn_error)
		api_respond_worker_error(req, 503, "NODE_UNAVAILABLE", job->errmsg, job->sqlstate,
								 job->node);
	else
		api_respond_worker_error(req, 502, "WORKER_ERROR", job->errmsg, job->sqlstate, job->node);
}

bool
api_point_id(json_t *v, char *out, size_t outlen, char *err, size_t errlen)
{
	if (json_is_integer(v)) {
		snprintf(out, outlen, "%lld", (long long) json_integer_value(v));
		return true;
	}
	if (json_is_string(v)) {
		size_t n = json_string_length(v);

		if (n == 0 || n > API_MAX_ID_BYTES || n >= outlen) {
			snprintf(err, errlen, "must be a non-empty string of at most %d bytes",
					 API_MAX_ID_BYTES);
			return false;
		}
		if (memchr(json_string_value(v), '\0', n)) {
			snprintf(err, errlen, "must not contain NUL characters");
			return false;
		}
		memcpy(out, json_string_value(v), n + 1);
		return true;
	}
	snprintf(err, errlen, "must be a string or an integer");
	return false;
}

json_t *
api_collection_json(const ShardMap *map, const SmCollection *c, bool detail)
{
	json_t *o = json_pack("{s:I,s:s,s:i,s:s,s:i,s:i,s:O,s:O,s:s}", "id", (json_int_t) c->id,
						  "name", c->name, "dimension",
						  c->dimension, "metric", shardmap_metric_name(c->metric), "shards",
						  c->nshards, "replication_factor", c->replication_factor, "index",
						  c->index ? c->index : json_null(), "metadata",
						  c->metadata ? c->metadata : json_null(), "created_at", c->created_at);

	if (detail) {
		json_t *shards = json_array();

		for (int i = 0; i < c->nshards; i++) {
			const SmShard *s = &c->shards[i];
			json_t *pl = json_array();

			for (int p = 0; p < s->nplacements; p++)
				json_array_append_new(
					pl, json_pack("{s:s,s:s}", "node",
								  s->placements[p].node ? s->placements[p].node->name : "?",
								  "state", shardmap_placement_state_name(s->placements[p].state)));
			json_array_append_new(shards,
								  json_pack("{s:i,s:s,s:I,s:I,s:o}", "index", s->index, "table",
											s->table, "hash_min", (json_int_t) s->hash_min,
											"hash_max", (json_int_t) s->hash_max, "placements",
											pl));
		}
		json_object_set_new(o, "shard_placements", shards);
	}
	return o;
}

bool
api_authorize(HttpRequest *req, const char *scope, const char *coll)
{
	/*
	 * With auth = on, authz_request() (authz.c) has already checked the
	 * whole request against docs/security.md's table before routing, so
	 * nothing is left to decide here.
	 */
	(void) req;
	(void) scope;
	(void) coll;
	return true;
}

/* ---- nodes ---- */

static void
nodes_list(HttpRequest *req)
{
	ShardMap *m = shardmap_acquire();
	json_t *arr = json_array();

	for (int i = 0; i < m->nnodes; i++) {
		const SmNode *n = &m->nodes[i];
		PgPool *pool = workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname);
		int nplace = 0;

		for (int c = 0; c < m->ncollections; c++)
			for (int s = 0; s < m->collections[c].nshards; s++)
				for (int p = 0; p < m->collections[c].shards[s].nplacements; p++)
					if (m->collections[c].shards[s].placements[p].node_id == n->id)
						nplace++;
		json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:s,s:s,s:b,s:i}", "name", n->name,
											 "host", n->host, "port", n->port, "dbname",
											 n->dbname, "state",
											 n->draining ? "draining" : "active", "up",
											 workerconn_pool_up(pool), "placements", nplace));
	}
	shardmap_release(m);
	http_respond_json(req, 200, json_pack("{s:o}", "nodes", arr));
}

typedef struct NodeCtx {
	HttpRequest *req;
	char name[64];
	char host[256];
	int port;
	char dbname[64];
	int tmp_pool_id;
	int status;
	char *errmsg;
	const char *action;
} NodeCtx;

static void
node_reloaded(void *arg, bool ok)
{
	NodeCtx *nc = arg;
	ShardMap *m = shardmap_acquire();
	const SmNode *n = shardmap_node(m, nc->name);

	if (strcmp(nc->action, "remove") == 0)
		http_respond_json(nc->req, 200, json_pack("{s:s,s:b}", "name", nc->name, "removed", 1));
	else if (n)
		http_respond_json(nc->req, nc->status,
						  json_pack("{s:s,s:s,s:i,s:s,s:s}", "name", n->name, "host", n->host,
									"port", n->port, "dbname", n->dbname, "state",
									n->draining ? "draining" : "active"));
	else
		http_respond_error(nc->req, 503, "METADATA_UNAVAILABLE",
						   "the change is committed but the shard map did not reload");
	shardmap_release(m);
	free(nc);
}

static void
node_meta_done(PgJob *job, void *arg)
{
	NodeCtx *nc = arg;

	if (!job->ok) {
		if (strcmp(job->sqlstate, "23505") == 0)
			http_respond_error(nc->req, 409, "NODE_EXISTS", "node \"%s\" already exists", nc->name);
		else
			api_respond_worker_error(nc->req, 503, "METADATA_UNAVAILABLE", job->errmsg,
									 job->sqlstate, "metadata");
		pgjob_free(job);
		free(nc);
		return;
	}
	if (strcmp(nc->action, "remove") == 0) {
		const char *r = PQgetvalue(job->results[0], 0, 0);

		if (strcmp(r, "not_found") == 0) {
			http_respond_error(nc->req, 404, "NODE_NOT_FOUND", "node \"%s\" does not exist",
							   nc->name);
			pgjob_free(job);
			free(nc);
			return;
		}
		if (strncmp(r, "has_placements:", 15) == 0) {
			http_respond_error(nc->req, 409, "NODE_HAS_PLACEMENTS",
							   "node \"%s\" still holds %s shard placement(s); drain it and move "
							   "or drop them first (delete the collections, or move shards)",
							   nc->name, r + 15);
			pgjob_free(job);
			free(nc);
			return;
		}
	}
	if (strcmp(nc->action, "drain") == 0 && PQntuples(job->results[0]) == 0) {
		http_respond_error(nc->req, 404, "NODE_NOT_FOUND", "node \"%s\" does not exist", nc->name);
		pgjob_free(job);
		free(nc);
		return;
	}
	pgjob_free(job);
	shardmap_reload(node_reloaded, nc);
}

/* The new node answered the prepare step: record it in the metadata. */
static void
node_prepared(PgJob *job, void *arg)
{
	NodeCtx *nc = arg;
	PgJob *mj;
	ParamList p;
	char port[16];

	workerconn_pool_drop(nc->tmp_pool_id);
	if (!job->ok) {
		json_t *e;

		e = json_pack("{s:s,s:s,s:s}", "code", "NODE_UNREACHABLE", "message",
					  job->errmsg ? job->errmsg : "cannot reach node", "node", nc->name);
		if (job->sqlstate[0])
			json_object_set_new(e, "sqlstate", json_string(job->sqlstate));
		http_respond_json(nc->req, job->conn_error ? 503 : 502, json_pack("{s:o}", "error", e));
		pgjob_free(job);
		free(nc);
		return;
	}
	pgjob_free(job);
	params_init(&p);
	snprintf(port, sizeof(port), "%d", nc->port);
	params_add(&p, nc->name);
	params_add(&p, nc->host);
	params_add(&p, port);
	params_add(&p, nc->dbname);
	mj = pgjob_new(node_meta_done, nc);
	pgjob_add(mj,
			  "INSERT INTO vectron_meta.node (name, host, port, dbname) "
			  "VALUES ($1, $2, $3::int, $4)",
			  &p);
	pgjob_add0(mj, "SELECT vectron_meta.bump()");
	params_free(&p);
	pgjob_submit(metadata_pool(), mj);
}

static void
nodes_add(HttpRequest *req)
{
	json_t *b = api_parse_body(req), *v;
	NodeCtx *nc;
	static int tmp_id = -1000;
	PgJob *job;
	ShardMap *m;

	if (!b)
		return;
	nc = xcalloc(1, sizeof(NodeCtx));
	nc->req = req;
	nc->action = "add";
	nc->status = 201;
	v = json_object_get(b, "name");
	if (!json_is_string(v) || !util_valid_name(json_string_value(v))) {
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "name must match ^[a-z_][a-z0-9_]{0,62}$");
		goto out;
	}
	util_strlcpy(nc->name, json_string_value(v), sizeof(nc->name));
	v = json_object_get(b, "host");
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 253) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "host must be a host name or address");
		goto out;
	}
	util_strlcpy(nc->host, json_string_value(v), sizeof(nc->host));
	v = json_object_get(b, "port");
	nc->port = v ? (int) json_integer_value(v) : 5432;
	if ((v && !json_is_integer(v)) || nc->port < 1 || nc->port > 65535) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "port must be an integer 1..65535");
		goto out;
	}
	v = json_object_get(b, "dbname");
	if (v && (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 63)) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "dbname must be a database name");
		goto out;
	}
	util_strlcpy(nc->dbname, v ? json_string_value(v) : "postgres", sizeof(nc->dbname));
	m = shardmap_acquire();
	if (shardmap_node(m, nc->name)) {
		shardmap_release(m);
		http_respond_error(req, 409, "NODE_EXISTS", "node \"%s\" already exists", nc->name);
		goto out;
	}
	shardmap_release(m);
	json_decref(b);
	/* reach the node and prepare it before it enters the map */
	nc->tmp_pool_id = tmp_id--;
	job = pgjob_new(node_prepared, nc);
	job->timeout_ms = 15000;
	pgjob_add0(job, "SET LOCAL client_min_messages = warning");
	pgjob_add0(job, "CREATE EXTENSION IF NOT EXISTS vectron");
	pgjob_add0(job, "CREATE SCHEMA IF NOT EXISTS vectron_shards");
	pgjob_submit(workerconn_pool_for_node(nc->tmp_pool_id, nc->name, nc->host, nc->port,
										  nc->dbname),
				 job);
	return;
out:
	json_decref(b);
	free(nc);
}

static void
nodes_change(HttpRequest *req, const char *name, const char *action)
{
	NodeCtx *nc = xcalloc(1, sizeof(NodeCtx));
	ParamList p;
	PgJob *job;

	nc->req = req;
	nc->action = action;
	nc->status = 200;
	util_strlcpy(nc->name, name, sizeof(nc->name));
	params_init(&p);
	params_add(&p, name);
	job = pgjob_new(node_meta_done, nc);
	if (strcmp(action, "drain") == 0) {
		pgjob_add(job, "UPDATE vectron_meta.node SET state = 'draining' WHERE name = $1 RETURNING id",
				  &p);
		pgjob_add0(job, "SELECT vectron_meta.bump()");
	} else
		pgjob_add(job, "SELECT vectron_meta.remove_node($1)", &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

/* ---- routing ---- */

static void
respond_method(HttpRequest *req, const char *allowed)
{
	http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use %s",
					   req->method_name, req->path, allowed);
}

static void
respond_not_found(HttpRequest *req)
{
	http_respond_error(req, 404, "NOT_FOUND", "no such endpoint: %s %s", req->method_name,
					   req->path);
}

void
api_handle(HttpRequest *req)
{
	char *segs[8];
	int n = 0;
	char *copy = xstrdup(req->path), *p = copy, *save = NULL, *tok;
	int m = req->method;

	while ((tok = strtok_r(p, "/", &save)) && n < 8) {
		segs[n++] = tok;
		p = NULL;
	}
	if (tok) {
		respond_not_found(req);
		goto out;
	}
	/* issue 5: authentication, rate limits and RBAC (no-op with auth = off) */
	if (!authz_request(req) || api_auth_route(req, segs, n))
		goto out;
	if (n == 1 && strcmp(segs[0], "healthz") == 0) {
		if (m != HTTP_GET)
			respond_method(req, "GET");
		else
			http_respond_json(req, 200, json_pack("{s:s,s:I}", "status", "ok", "map_version",
												  (json_int_t) shardmap_version()));
		goto out;
	}
	if (api_admin_route(req, segs, n) || console_route(req, segs, n))
		goto out;
	if (n < 2 || strcmp(segs[0], "v1") != 0) {
		respond_not_found(req);
		goto out;
	}
	if (n == 2 && strcmp(segs[1], "openapi.json") == 0) {
		if (m != HTTP_GET)
			respond_method(req, "GET");
		else
			http_respond_raw(req, 200, "application/json", openapi_json, strlen(openapi_json));
		goto out;
	}
	if (strcmp(segs[1], "admin") == 0 && n >= 3 && strcmp(segs[2], "nodes") == 0) {
		if (!api_authorize(req, "admin", NULL))
			goto out;
		if (n == 3) {
			if (m == HTTP_GET)
				nodes_list(req);
			else if (m == HTTP_POST)
				nodes_add(req);
			else
				respond_method(req, "GET, POST");
		} else if (n == 4) {
			if (m == HTTP_DELETE)
				nodes_change(req, segs[3], "remove");
			else
				respond_method(req, "DELETE");
		} else if (n == 5 && strcmp(segs[4], "drain") == 0) {
			if (m == HTTP_POST)
				nodes_change(req, segs[3], "drain");
			else
				respond_method(req, "POST");
		} else
			respond_not_found(req);
		goto out;
	}
	if (strcmp(segs[1], "collections") != 0) {
		respond_not_found(req);
		goto out;
	}
	if (n == 2) {
		if (m == HTTP_GET) {
			if (api_authorize(req, "read", NULL))
				api_collections_list(req);
		} else if (m == HTTP_POST) {
			if (api_authorize(req, "admin", NULL))
				api_collections_create(req);
		} else
			respond_method(req, "GET, POST");
		goto out;
	}
	if (n == 3) {
		if (m == HTTP_GET) {
			if (api_authorize(req, "read", segs[2]))
				api_collection_get(req, segs[2]);
		} else if (m == HTTP_DELETE) {
			if (api_authorize(req, "admin", segs[2]))
				api_collection_delete(req, segs[2]);
		} else
			respond_method(req, "GET, DELETE");
		goto out;
	}
	if (strcmp(segs[3], "points") == 0) {
		if (n == 4) {
			if (m == HTTP_PUT) {
				if (api_authorize(req, "write", segs[2]))
					api_points_upsert(req, segs[2]);
			} else
				respond_method(req, "PUT");
		} else if (n == 5 && (strcmp(segs[4], "get") == 0 || strcmp(segs[4], "delete") == 0 ||
							  strcmp(segs[4], "import") == 0)) {
			bool get = strcmp(segs[4], "get") == 0;

			if (m != HTTP_POST)
				respond_method(req, "POST");
			else if (!api_authorize(req, get ? "read" : "write", segs[2]))
				;
			else if (get)
				api_points_get(req, segs[2]);
			else if (strcmp(segs[4], "delete") == 0)
				api_points_delete(req, segs[2]);
			else
				api_points_import(req, segs[2]);
		} else
			respond_not_found(req);
		goto out;
	}
	if (strcmp(segs[3], "search") == 0 && (n == 4 || (n == 5 && strcmp(segs[4], "batch") == 0))) {
		if (m != HTTP_POST)
			respond_method(req, "POST");
		else if (api_authorize(req, "read", segs[2]))
			api_search(req, segs[2], n == 5);
		goto out;
	}
	respond_not_found(req);
out:
	free(copy);
}
