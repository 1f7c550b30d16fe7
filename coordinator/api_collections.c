/*
 * api_collections.c: create, list, get and delete collections.
 *
 * Create is all or nothing: (1) vectron_meta.create_collection records the
 * collection as "creating" with its shards and placements (replicas on
 * distinct nodes); (2) every placement's shard table and HNSW index are
 * made in parallel, one pipeline per node; (3) only when all succeeded does
 * the collection become "active" and visible.  On any failure the
 * collection is dropped through the cleanup list, so tables that were made
 * are removed (now, or when their node returns).
 */
#include "api_internal.h"
#include "fanout.h"
#include "health.h"
#include "log.h"
#include "metadata.h"
#include "writes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
api_collections_list(HttpRequest *req)
{
	ShardMap *m = shardmap_acquire();
	json_t *arr = json_array();

	for (int i = 0; i < m->ncollections; i++)
		if (m->collections[i].active)
			json_array_append_new(arr, api_collection_json(m, &m->collections[i], false));
	shardmap_release(m);
	http_respond_json(req, 200, json_pack("{s:o}", "collections", arr));
}

/* ---- create ---- */

typedef struct CreateCtx {
	HttpRequest *req;
	char name[64];
	int dimension;
	const char *metric;
	int shards;
	int rf;
	int m;
	int ef_construction;
	json_t *index;
	json_t *metadata;
	int64_t id;
	json_t *error;		/* error to answer after the rollback */
	int error_status;
} CreateCtx;

static void
create_free(CreateCtx *cc)
{
	json_decref(cc->index);
	json_decref(cc->metadata);
	json_decref(cc->error);
	free(cc);
}

static void
create_rolled_back(PgJob *job, void *arg)
{
	CreateCtx *cc = arg;

	if (!job->ok)
		log_warning("rollback of collection %s: %s; the cleanup pass will retry", cc->name,
					job->errmsg);
	pgjob_free(job);
	health_kick_cleanup();
	http_respond_json(cc->req, cc->error_status, json_incref(cc->error));
	create_free(cc);
}

static void
create_rollback(CreateCtx *cc)
{
	PgJob *job = pgjob_new(create_rolled_back, cc);
	ParamList p;
	char id[32];

	snprintf(id, sizeof(id), "%lld", (long long) cc->id);
	params_init(&p);
	params_add(&p, id);
	pgjob_add(job, "SELECT vectron_meta.drop_collection($1::bigint)", &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

static void
create_visible(void *arg, bool ok)
{
	CreateCtx *cc = arg;
	ShardMap *m = shardmap_acquire();
	const SmCollection *c = shardmap_collection(m, cc->name);

	if (c)
		http_respond_json(cc->req, 201, api_collection_json(m, c, true));
	else
		http_respond_error(cc->req, 503, "METADATA_UNAVAILABLE",
						   "collection created, but the shard map did not reload yet");
	shardmap_release(m);
	create_free(cc);
}

static void
create_activated(PgJob *job, void *arg)
{
	CreateCtx *cc = arg;

	if (!job->ok) {
		cc->error_status = 503;
		cc->error = json_pack("{s:{s:s,s:s}}", "error", "code", "METADATA_UNAVAILABLE",
							  "message", job->errmsg);
		pgjob_free(job);
		create_rollback(cc);
		return;
	}
	pgjob_free(job);
	shardmap_reload(create_visible, cc);
}

/* DDL for one shard placement; only validated integers and fixed words. */
static void
create_build(void *arg, int i, const SmShard *s, StrBuf *sql, ParamList *params)
{
	CreateCtx *cc = arg;
	static const char *const opclass[] = {"vector_l2_ops", "vector_ip_ops", "vector_cosine_ops",
										  "vector_l1_ops"};
	int mi = strcmp(cc->metric, "ip") == 0 ? 1
		   : strcmp(cc->metric, "cosine") == 0 ? 2
		   : strcmp(cc->metric, "l1") == 0 ? 3 : 0;

	sb_appendf(sql,
			   "DO $vx$ BEGIN\n"
			   "  SET LOCAL client_min_messages = warning;\n"
			   "  CREATE EXTENSION IF NOT EXISTS vectron;\n"
			   "  CREATE SCHEMA IF NOT EXISTS vectron_shards;\n"
			   "  CREATE TABLE vectron_shards.%s (\n"
			   "    id text PRIMARY KEY,\n"
			   "    v vector(%d),\n"
			   "    payload jsonb,\n"
			   "    version bigint NOT NULL,\n"
			   "    deleted boolean NOT NULL DEFAULT false);\n"
			   "  IF EXISTS (SELECT 1 FROM pg_am WHERE amname = 'hnsw') THEN\n"
			   "    CREATE INDEX ON vectron_shards.%s USING hnsw (v %s)\n"
			   "      WITH (m = %d, ef_construction = %d);\n"
			   "  END IF;\n"
			   "END $vx$",
			   s->table, cc->dimension, s->table, opclass[mi], cc->m, cc->ef_construction);
}

static void
create_tables_done(WriteOp *w, void *arg)
{
	CreateCtx *cc = arg;

	if (!w->ok) {
		json_t *e = json_pack("{s:s,s:s}", "code", "CREATE_FAILED", "message",
							  w->errmsg ? w->errmsg : "failed");

		/* pass through the first worker error */
		for (int i = 0; i < w->nshards; i++)
			if (w->shards[i].nfailed) {
				if (w->shards[i].sqlstate[0])
					json_object_set_new(e, "sqlstate", json_string(w->shards[i].sqlstate));
				json_object_set_new(e, "node", json_string(w->shards[i].node));
				break;
			}
		cc->error = json_pack("{s:o}", "error", e);
		cc->error_status = 503;
		for (int i = 0; i < w->nshards; i++)
			if (w->shards[i].nfailed && w->shards[i].sql_error)
				cc->error_status = 502;
		writes_free(w);
		create_rollback(cc);
		return;
	}
	writes_free(w);
	{
		PgJob *job = pgjob_new(create_activated, cc);
		ParamList p;
		char id[32];

		snprintf(id, sizeof(id), "%lld", (long long) cc->id);
		params_init(&p);
		params_add(&p, id);
		pgjob_add(job, "UPDATE vectron_meta.collection SET state = 'active' WHERE id = $1::bigint",
				  &p);
		pgjob_add0(job, "SELECT vectron_meta.bump()");
		params_free(&p);
		pgjob_submit(metadata_pool(), job);
	}
}

static void
create_map_ready(void *arg, bool ok)
{
	CreateCtx *cc = arg;
	ShardMap *m = shardmap_acquire();
	const SmCollection *c = shardmap_collection_by_id(m, cc->id);

	if (!c) {
		shardmap_release(m);
		cc->error_status = 503;
		cc->error = json_pack("{s:{s:s,s:s}}", "error", "code", "METADATA_UNAVAILABLE", "message",
							  "the new collection is not in the reloaded shard map");
		create_rollback(cc);
		return;
	}
	writes_start(m, c, NULL, false, true, create_build, cc, create_tables_done, cc);
	shardmap_release(m);
}

static void
create_recorded(PgJob *job, void *arg)
{
	CreateCtx *cc = arg;

	if (!job->ok) {
		if (strcmp(job->sqlstate, "23505") == 0)
			http_respond_error(cc->req, 409, "COLLECTION_EXISTS",
							   "collection \"%s\" already exists", cc->name);
		else if (strcmp(job->sqlstate, META_ERR_NODES) == 0)
			http_respond_error(cc->req, 400, "INVALID_ARGUMENT", "replication_factor: %s",
							   job->errmsg);
		else
			api_respond_worker_error(cc->req, 503, "METADATA_UNAVAILABLE", job->errmsg,
									 job->sqlstate, "metadata");
		pgjob_free(job);
		create_free(cc);
		return;
	}
	cc->id = atoll(PQgetvalue(job->results[0], 0, 0));
	pgjob_free(job);
	shardmap_reload(create_map_ready, cc);
}

/* Read an optional integer field within [lo, hi]; answers 400 when bad. */
static bool
int_field(HttpRequest *req, json_t *obj, const char *key, const char *path, int def, int lo,
		  int hi, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "%s must be an integer between %d and %d",
						   path, lo, hi);
		return false;
	}
	*out = (int) json_integer_value(v);
	return true;
}

void
api_collections_create(HttpRequest *req)
{
	json_t *b = api_parse_body(req), *v, *idx;
	CreateCtx *cc;
	ShardMap *m;
	PgJob *job;
	ParamList p;
	char buf[6][32];
	char *s;
	const char *k;

	if (!b)
		return;
	json_object_foreach(b, k, v) {
		if (strcmp(k, "name") && strcmp(k, "dimension") && strcmp(k, "metric") &&
			strcmp(k, "shards") && strcmp(k, "replication_factor") && strcmp(k, "index") &&
			strcmp(k, "metadata")) {
			http_respond_error(req, 400, "INVALID_ARGUMENT", "unknown field \"%.64s\"", k);
			json_decref(b);
			return;
		}
	}
	cc = xcalloc(1, sizeof(CreateCtx));
	cc->req = req;
	v = json_object_get(b, "name");
	if (!json_is_string(v) || !util_valid_name(json_string_value(v))) {
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "name must match ^[a-z_][a-z0-9_]{0,62}$");
		goto fail;
	}
	util_strlcpy(cc->name, json_string_value(v), sizeof(cc->name));
	v = json_object_get(b, "dimension");
	if (!v) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "dimension is required");
		goto fail;
	}
	if (!int_field(req, b, "dimension", "dimension", 0, 1, API_MAX_DIMENSION, &cc->dimension))
		goto fail;
	v = json_object_get(b, "metric");
	cc->metric = v ? json_string_value(v) : "l2";
	if (!cc->metric || (strcmp(cc->metric, "l2") && strcmp(cc->metric, "ip") &&
						strcmp(cc->metric, "cosine") && strcmp(cc->metric, "l1"))) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "metric must be l2, ip, cosine or l1");
		goto fail;
	}
	cc->metric = strcmp(cc->metric, "l2") == 0 ? "l2"
			   : strcmp(cc->metric, "ip") == 0 ? "ip"
			   : strcmp(cc->metric, "cosine") == 0 ? "cosine" : "l1";
	if (!int_field(req, b, "shards", "shards", 1, 1, API_MAX_SHARDS, &cc->shards) ||
		!int_field(req, b, "replication_factor", "replication_factor", 1, 1, 16, &cc->rf))
		goto fail;
	idx = json_object_get(b, "index");
	if (idx && !json_is_null(idx) && !json_is_object(idx)) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "index must be an object");
		goto fail;
	}
	if (idx && json_is_object(idx)) {
		json_object_foreach(idx, k, v) {
			if (strcmp(k, "m") && strcmp(k, "ef_construction")) {
				http_respond_error(req, 400, "INVALID_ARGUMENT", "index has unknown field \"%.64s\"",
								   k);
				goto fail;
			}
		}
	}
	if (!int_field(req, idx, "m", "index.m", 16, 2, 100, &cc->m) ||
		!int_field(req, idx, "ef_construction", "index.ef_construction", 64, 4, 1000,
				   &cc->ef_construction))
		goto fail;
	if (cc->ef_construction < 2 * cc->m) {
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "index.ef_construction must be at least twice index.m");
		goto fail;
	}
	v = json_object_get(b, "metadata");
	if (v && !json_is_null(v) && !json_is_object(v)) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "metadata must be an object");
		goto fail;
	}
	cc->metadata = v && json_is_object(v) ? json_incref(v) : json_object();
	cc->index = json_pack("{s:i,s:i}", "m", cc->m, "ef_construction", cc->ef_construction);
	m = shardmap_acquire();
	if (shardmap_collection(m, cc->name)) {
		shardmap_release(m);
		http_respond_error(req, 409, "COLLECTION_EXISTS", "collection \"%s\" already exists",
						   cc->name);
		goto fail;
	}
	shardmap_release(m);
	json_decref(b);
	params_init(&p);
	params_add(&p, cc->name);
	snprintf(buf[0], 32, "%d", cc->dimension);
	params_add(&p, buf[0]);
	params_add(&p, cc->metric);
	snprintf(buf[1], 32, "%d", cc->shards);
	params_add(&p, buf[1]);
	snprintf(buf[2], 32, "%d", cc->rf);
	params_add(&p, buf[2]);
	params_add_owned(&p, json_dumps(cc->index, JSON_COMPACT));
	s = json_dumps(cc->metadata, JSON_COMPACT);
	params_add_owned(&p, s);
	job = pgjob_new(create_recorded, cc);
	pgjob_add(job,
			  "SELECT vectron_meta.create_collection($1, $2::int, $3, $4::int, $5::int, "
			  "$6::jsonb, $7::jsonb)",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
	return;
fail:
	json_decref(b);
	create_free(cc);
}

/* ---- get (with counts) ---- */

typedef struct GetCtx {
	HttpRequest *req;
	Fanout *f;
} GetCtx;

static void
count_build(void *arg, const SmShard *s, StrBuf *sql, ParamList *params)
{
	sb_appendf(sql, "SELECT count(*) FROM vectron_shards.%s WHERE NOT deleted", s->table);
}

static void
count_done(Fanout *f, void *arg)
{
	GetCtx *gc = arg;
	json_t *o = api_collection_json(f->map, f->coll, true), *shards;
	long long total = 0;
	bool partial = false;

	shards = json_object_get(o, "shard_placements");
	for (int i = 0; i < f->nshards; i++) {
		json_t *sj = json_array_get(shards, i);

		if (f->shards[i].ok && f->shards[i].res) {
			long long n = atoll(PQgetvalue(f->shards[i].res, 0, 0));

			total += n;
			json_object_set_new(sj, "count", json_integer(n));
		} else {
			partial = true;
			json_object_set_new(sj, "count", json_null());
		}
	}
	json_object_set_new(o, "count", json_integer(total));
	json_object_set_new(o, "count_partial", json_boolean(partial));
	http_set_cancel(gc->req, NULL, NULL);
	http_respond_json(gc->req, 200, o);
	fanout_free(f);
	free(gc);
}

static void
get_cancel(HttpRequest *req, void *arg)
{
	GetCtx *gc = arg;

	fanout_cancel(gc->f);
	free(gc);
	http_respond_error(req, 499, "CLIENT_CLOSED", "client closed the connection");
}

void
api_collection_get(HttpRequest *req, const char *name)
{
	ShardMap *m = shardmap_acquire();
	const SmCollection *c = shardmap_collection(m, name);
	GetCtx *gc;

	if (!c) {
		shardmap_release(m);
		http_respond_error(req, 404, "COLLECTION_NOT_FOUND", "collection \"%s\" does not exist",
						   name);
		return;
	}
	gc = xcalloc(1, sizeof(GetCtx));
	gc->req = req;
	gc->f = fanout_start(m, c, NULL, NULL, NULL, count_build, gc, count_done, gc);
	http_set_cancel(req, get_cancel, gc);
	shardmap_release(m);
}

/* ---- delete ---- */

typedef struct DelCtx {
	HttpRequest *req;
	char name[64];
} DelCtx;

static void
delete_reloaded(void *arg, bool ok)
{
	DelCtx *dc = arg;

	health_kick_cleanup();
	http_respond_json(dc->req, 200, json_pack("{s:s,s:b}", "name", dc->name, "deleted", 1));
	free(dc);
}

static void
delete_done(PgJob *job, void *arg)
{
	DelCtx *dc = arg;

	if (!job->ok) {
		api_respond_worker_error(dc->req, 503, "METADATA_UNAVAILABLE", job->errmsg, job->sqlstate,
								 "metadata");
		free(dc);
	} else if (strcmp(PQgetvalue(job->results[0], 0, 0), "t") != 0) {
		http_respond_error(dc->req, 404, "COLLECTION_NOT_FOUND",
						   "collection \"%s\" does not exist", dc->name);
		free(dc);
	} else
		shardmap_reload(delete_reloaded, dc);
	pgjob_free(job);
}

void
api_collection_delete(HttpRequest *req, const char *name)
{
	ShardMap *m = shardmap_acquire();
	const SmCollection *c = shardmap_collection(m, name);
	DelCtx *dc;
	PgJob *job;
	ParamList p;
	char id[32];

	if (!c) {
		shardmap_release(m);
		http_respond_error(req, 404, "COLLECTION_NOT_FOUND", "collection \"%s\" does not exist",
						   name);
		return;
	}
	dc = xcalloc(1, sizeof(DelCtx));
	dc->req = req;
	util_strlcpy(dc->name, name, sizeof(dc->name));
	snprintf(id, sizeof(id), "%lld", (long long) c->id);
	shardmap_release(m);
	params_init(&p);
	params_add(&p, id);
	job = pgjob_new(delete_done, dc);
	pgjob_add(job, "SELECT vectron_meta.drop_collection($1::bigint)", &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}
