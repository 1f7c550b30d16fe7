/*
 * api_points.c: upsert, get, delete and import of points, and search.
 *
 * Shard tables (made by api_collections.c) are
 *   vectron_shards.c<collection>_s<shard>(id text PRIMARY KEY, v vector(d),
 *       payload jsonb, version bigint, deleted boolean)
 * Every write carries a version from writes_next_version() and only
 * replaces rows with a lower version; a delete leaves a tombstone
 * (deleted = true, v and payload NULL) so that a late or replayed upsert
 * with an older version cannot bring the point back.  Reads skip
 * tombstones.
 */
#include "api_internal.h"
#include "authz.h"
#include "config.h"
#include "fanout.h"
#include "filter.h"
#include "hash.h"
#include "log.h"
#include "merge.h"
#include "obs.h"
#include "quota.h"
#include "writes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Find an active collection or answer 404; takes a map reference. */
static const SmCollection *
find_collection(HttpRequest *req, const char *name, ShardMap **mapp)
{
	ShardMap *m = shardmap_acquire();
	const SmCollection *c = shardmap_collection(m, name);

	if (!c) {
		shardmap_release(m);
		http_respond_error(req, 404, "COLLECTION_NOT_FOUND", "collection \"%s\" does not exist",
						   name);
		return NULL;
	}
	*mapp = m;
	return c;
}

/* Vector JSON -> '[1,2,3]' text, checked against the dimension. */
static char *
vector_text(json_t *v, int dim, const char *path, char *err, size_t errlen)
{
	StrBuf sb;
	size_t i;
	json_t *e;

	if (!json_is_array(v)) {
		snprintf(err, errlen, "%s must be an array of %d numbers", path, dim);
		return NULL;
	}
	if ((int) json_array_size(v) != dim) {
		snprintf(err, errlen, "%s has %zu dimensions; the collection has %d", path,
				 json_array_size(v), dim);
		return NULL;
	}
	sb_init(&sb);
	sb_append(&sb, "[");
	json_array_foreach(v, i, e) {
		double d;

		if (!json_is_number(e)) {
			snprintf(err, errlen, "%s[%zu] must be a number", path, i);
			sb_free(&sb);
			return NULL;
		}
		d = json_number_value(e);
		if (!isfinite(d) || fabs(d) > 3.4e38) {
			snprintf(err, errlen, "%s[%zu] is out of range for float4", path, i);
			sb_free(&sb);
			return NULL;
		}
		{
			char num[32];
			int n = util_format_float4(num, d);

			if (i)
				sb_appendn(&sb, ",", 1);
			sb_appendn(&sb, num, n);
		}
	}
	sb_append(&sb, "]");
	return sb_steal(&sb);
}

/* dim float4 values -> '[1,2,3]' text (util_format_float4 for each). */
static char *
vector_text_floats(const float *x, int dim)
{
	StrBuf sb;

	sb_init(&sb);
	sb_appendn(&sb, "[", 1);
	for (int i = 0; i < dim; i++) {
		char num[32];
		int n = util_format_float4(num, x[i]);

		if (i)
			sb_appendn(&sb, ",", 1);
		sb_appendn(&sb, num, n);
	}
	sb_appendn(&sb, "]", 1);
	return sb_steal(&sb);
}

/*
 * Vector JSON -> dim float4 values in out, with vector_text's checks and
 * messages (the generic path; see util_json_float_array for the fast one).
 */
static bool
vector_floats(json_t *v, int dim, const char *path, float *out, char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v)) {
		snprintf(err, errlen, "%s must be an array of %d numbers", path, dim);
		return false;
	}
	if ((int) json_array_size(v) != dim) {
		snprintf(err, errlen, "%s has %zu dimensions; the collection has %d", path,
				 json_array_size(v), dim);
		return false;
	}
	json_array_foreach(v, i, e) {
		double d;

		if (!json_is_number(e)) {
			snprintf(err, errlen, "%s[%zu] must be a number", path, i);
			return false;
		}
		d = json_number_value(e);
		if (!isfinite(d) || fabs(d) > 3.4e38) {
			snprintf(err, errlen, "%s[%zu] is out of range for float4", path, i);
			return false;
		}
		out[i] = (float) d;
		if (out[i] == 0)
			out[i] = 0;	/* -0 as 0, as the text form always had it */
	}
	return true;
}

static void
respond_write_error(HttpRequest *req, WriteOp *w)
{
	const char *node = NULL, *ss = w->sqlstate;

	for (int i = 0; i < w->nshards; i++)
		if (w->shards[i].touched && w->shards[i].nok == 0 && w->shards[i].node[0]) {
			node = w->shards[i].node;
			break;
		}
	api_respond_worker_error(req,
							 strcmp(w->errcode, "WORKER_ERROR") == 0 ? 502 : 503,
							 w->errcode[0] ? w->errcode : "SHARD_UNAVAILABLE", w->errmsg, ss, node);
}

/* ---- upsert and import ---- */

typedef struct UpsertCtx {
	HttpRequest *req;
	int nshards;
	json_t **rows;		/* per shard: JSON array of {"id","v","p"} */
	bool *touched;
	char version[32];
	int count;
	json_t *import_errors;	/* buffered import only */
	void *owner;			/* streaming import: its ImportCtx */
	char coll[64];			/* for the points-upserted metric */
	int64_t coll_id;		/* quota.c: the count to update */
	long long reserved;		/* quota.c: points reserved at admission */
} UpsertCtx;

static void
upsert_free(UpsertCtx *uc)
{
	for (int i = 0; i < uc->nshards; i++)
		json_decref(uc->rows[i]);
	free(uc->rows);
	free(uc->touched);
	json_decref(uc->import_errors);
	free(uc);
}

static void
upsert_build(void *arg, int i, const SmShard *s, StrBuf *sql, ParamList *params)
{
	UpsertCtx *uc = arg;
	StrBuf ids, vecs, pays;
	size_t j;
	json_t *row;

	/* three array parameters: cheaper for the worker to read than jsonb */
	sb_init(&ids);
	sb_init(&vecs);
	sb_init(&pays);
	sb_append(&ids, "{");
	sb_append(&vecs, "{");
	sb_append(&pays, "{");
	json_array_foreach(uc->rows[i], j, row) {
		json_t *p = json_object_get(row, "p");
		char *ptext = p && !json_is_null(p) ? json_dumps(p, JSON_COMPACT) : NULL;

		if (j) {
			sb_append(&ids, ",");
			sb_append(&vecs, ",");
			sb_append(&pays, ",");
		}
		pgarray_append(&ids, json_string_value(json_object_get(row, "id")));
		pgarray_append(&vecs, json_string_value(json_object_get(row, "v")));
		pgarray_append(&pays, ptext);
		free(ptext);
	}
	sb_append(&ids, "}");
	sb_append(&vecs, "}");
	sb_append(&pays, "}");
	if (quota_counting())
		/* quota.c: also return how many ids were not live before */
		sb_appendf(sql,
				   "WITH old AS (SELECT id FROM vectron_shards.%s\n"
				   "    WHERE id = ANY($1::text[]) AND NOT deleted),\n"
				   "  ins AS (INSERT INTO vectron_shards.%s AS t (id, v, payload, version, deleted)\n"
				   "    SELECT r.id, r.v::vector, r.p, $4::bigint, false\n"
				   "    FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS r(id, v, p)\n"
				   "    ON CONFLICT (id) DO UPDATE SET v = excluded.v, payload = excluded.payload,\n"
				   "      version = excluded.version, deleted = false\n"
				   "    WHERE t.version < excluded.version RETURNING t.id)\n"
				   "SELECT count(*) FROM ins WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.id = ins.id)",
				   s->table, s->table);
	else
		sb_appendf(sql,
				   "INSERT INTO vectron_shards.%s AS t (id, v, payload, version, deleted)\n"
				   "SELECT r.id, r.v::vector, r.p, $4::bigint, false\n"
				   "FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS r(id, v, p)\n"
				   "ON CONFLICT (id) DO UPDATE SET v = excluded.v, payload = excluded.payload,\n"
				   "  version = excluded.version, deleted = false\n"
				   "WHERE t.version < excluded.version",
				   s->table);
	params_add_owned(params, sb_steal(&ids));
	params_add_owned(params, sb_steal(&vecs));
	params_add_owned(params, sb_steal(&pays));
	params_add(params, uc->version);
}

/* quota.c: the change of live points a write made, from each shard's first commit. */
static long long
write_delta(const WriteOp *w)
{
	long long n = 0;

	for (int i = 0; i < w->nshards; i++)
		if (w->shards[i].res && PQntuples(w->shards[i].res) == 1 &&
			PQnfields(w->shards[i].res) == 1)
			n += atoll(PQgetvalue(w->shards[i].res, 0, 0));
	return n;
}

static void
upsert_done(WriteOp *w, void *arg)
{
	UpsertCtx *uc = arg;

	quota_settle(uc->coll_id, uc->reserved, write_delta(w));
	uc->reserved = 0;
	if (w->ok)
		obs_points_upserted(uc->coll, uc->count);
	if (!w->ok)
		respond_write_error(uc->req, w);
	else if (uc->import_errors)
		http_respond_json(uc->req, 200, json_pack("{s:i,s:O}", "imported", uc->count, "errors",
												  uc->import_errors));
	else
		http_respond_json(uc->req, 200, json_pack("{s:i}", "upserted", uc->count));
	writes_free(w);
	upsert_free(uc);
}

static UpsertCtx *
upsert_ctx(HttpRequest *req, const SmCollection *c)
{
	UpsertCtx *uc = xcalloc(1, sizeof(UpsertCtx));

	uc->req = req;
	util_strlcpy(uc->coll, c->name, sizeof(uc->coll));
	uc->coll_id = c->id;
	uc->nshards = c->nshards;
	uc->rows = xcalloc(c->nshards, sizeof(json_t *));
	uc->touched = xcalloc(c->nshards, sizeof(bool));
	for (int i = 0; i < c->nshards; i++)
		uc->rows[i] = json_array();
	return uc;
}

/*
 * Validate one point and add it to its shard's rows; `seen` maps id to
 * (shard, position) so that a repeated id replaces the earlier one.
 */
static bool
upsert_add_point(UpsertCtx *uc, const SmCollection *c, json_t *pt, const float *prevec,
				 const char *path, json_t *seen, char *err, size_t errlen)
{
	char id[API_MAX_ID_BYTES + 1], why[256], sub[128];
	json_t *v, *payload, *row, *prev;
	char *vt;
	const SmShard *s;
	const char *k;

	if (!json_is_object(pt)) {
		snprintf(err, errlen, "%s must be an object", path);
		return false;
	}
	json_object_foreach(pt, k, v) {
		if (strcmp(k, "id") && strcmp(k, "vector") && strcmp(k, "payload")) {
			snprintf(err, errlen, "%s has unknown field \"%.64s\"", path, k);
			return false;
		}
	}
	if (!api_point_id(json_object_get(pt, "id"), id, sizeof(id), why, sizeof(why))) {
		snprintf(err, errlen, "%s.id %s", path, why);
		return false;
	}
	snprintf(sub, sizeof(sub), "%s.vector", path);
	/* prevec: the fast path already read the vector (and blanked it in pt) */
	vt = prevec ? vector_text_floats(prevec, c->dimension)
				: vector_text(json_object_get(pt, "vector"), c->dimension, sub, err, errlen);
	if (!vt)
		return false;
	payload = json_object_get(pt, "payload");
	if (payload && !json_is_null(payload) && !json_is_object(payload)) {
		snprintf(err, errlen, "%s.payload must be an object", path);
		free(vt);
		return false;
	}
	s = shardmap_route(c, id, strlen(id));
	row = json_pack("{s:s,s:s,s:O}", "id", id, "v", vt, "p", payload ? payload : json_null());
	free(vt);
	prev = json_object_get(seen, id);
	if (prev) {
		json_array_set_new(uc->rows[json_integer_value(json_array_get(prev, 0))],
						   json_integer_value(json_array_get(prev, 1)), row);
		return true;
	}
	json_object_set_new(seen, id,
						json_pack("[i,i]", s->index, (int) json_array_size(uc->rows[s->index])));
	json_array_append_new(uc->rows[s->index], row);
	uc->touched[s->index] = true;
	uc->count++;
	return true;
}

static void
upsert_start(UpsertCtx *uc, ShardMap *m, const SmCollection *c)
{
	snprintf(uc->version, sizeof(uc->version), "%lld", (long long) writes_next_version());
	writes_start(m, c, uc->touched, true, false, upsert_build, uc, upsert_done, uc);
}

void
api_points_upsert(HttpRequest *req, const char *name)
{
	ShardMap *m;
	const SmCollection *c;
	json_t *b = api_parse_body(req), *pts, *pt, *seen;
	UpsertCtx *uc;
	size_t i;
	char err[512];

	if (!b)
		return;
	if (!(c = find_collection(req, name, &m))) {
		json_decref(b);
		return;
	}
	pts = json_object_get(b, "points");
	if (!json_is_array(pts) || json_array_size(pts) == 0 ||
		json_array_size(pts) > (size_t) cf_max_batch_points) {
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "points must be a non-empty array of at most %d points",
						   cf_max_batch_points);
		goto out;
	}
	uc = upsert_ctx(req, c);
	seen = json_object();
	json_array_foreach(pts, i, pt) {
		char path[64];

		snprintf(path, sizeof(path), "points[%zu]", i);
		if (!upsert_add_point(uc, c, pt, NULL, path, seen, err, sizeof(err))) {
			json_decref(seen);
			upsert_free(uc);
			http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", err);
			goto out;
		}
	}
	json_decref(seen);
	if (!quota_reserve(c, uc->count, &uc->reserved, err, sizeof(err))) {
		upsert_free(uc);
		http_respond_error(req, 403, "QUOTA_EXCEEDED", "%s", err);
		goto out;
	}
	upsert_start(uc, m, c);
out:
	json_decref(b);
	shardmap_release(m);
}

/*
 * NDJSON import, streamed: api_headers() routes the body of
 * POST .../points/import to import_sink() as it arrives.  Complete lines are
 * parsed one by one; every IMPORT_BATCH good points go out as one versioned
 * write (as an upsert would), while more of the body streams in.  When two
 * writes are in flight the sink asks the HTTP layer to stop reading, and
 * the write's completion resumes it, so memory stays bounded whatever the
 * body's size.  Bad lines are reported in "errors" and skipped.
 */
#define IMPORT_BATCH 1000
#define IMPORT_MAX_INFLIGHT 2
#define IMPORT_MAX_LINE (8 << 20)

typedef struct ImportCtx {
	HttpRequest *req;		/* NULL once answered or abandoned */
	char name[64];
	StrBuf line;
	int lineno;
	UpsertCtx *batch;
	json_t *seen;
	json_t *errors;
	long long imported;
	int inflight;
	bool finished;			/* the body is all in */
	bool abandoned;			/* the client left */
	json_t *fatal;			/* error answer, once something failed */
	int fatal_status;
	float *vec;				/* the fast path's vector (vecdim floats) */
	int vecdim;
} ImportCtx;

static void
import_free(ImportCtx *ic)
{
	sb_free(&ic->line);
	if (ic->batch)
		upsert_free(ic->batch);
	json_decref(ic->seen);
	json_decref(ic->errors);
	json_decref(ic->fatal);
	free(ic->vec);
	free(ic);
}

static void
import_fail(ImportCtx *ic, int status, const char *code, const char *msg)
{
	if (ic->fatal)
		return;
	ic->fatal = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	ic->fatal_status = status;
}

/* Answer once the body is in and no write is in flight. */
static void
import_maybe_answer(ImportCtx *ic)
{
	if (ic->inflight > 0)
		return;
	if (ic->abandoned) {
		import_free(ic);
		return;
	}
	if (!ic->finished)
		return;
	http_set_cancel(ic->req, NULL, NULL);
	if (ic->fatal)
		http_respond_json(ic->req, ic->fatal_status, json_incref(ic->fatal));
	else
		http_respond_json(ic->req, 200, json_pack("{s:I,s:O}", "imported", (json_int_t) ic->imported,
												  "errors", ic->errors));
	ic->req = NULL;
	import_free(ic);
}

static void
import_write_done(WriteOp *w, void *arg)
{
	UpsertCtx *uc = arg;
	ImportCtx *ic = uc->owner;

	ic->inflight--;
	quota_settle(uc->coll_id, uc->reserved, write_delta(w));
	uc->reserved = 0;
	if (w->ok) {
		ic->imported += uc->count;
		obs_points_upserted(uc->coll, uc->count);
	} else {
		char msg[1400];

		snprintf(msg, sizeof(msg), "import stopped after %lld points: %s", ic->imported,
				 w->errmsg ? w->errmsg : "write failed");
		import_fail(ic, strcmp(w->errcode, "WORKER_ERROR") == 0 ? 502 : 503,
					w->errcode[0] ? w->errcode : "SHARD_UNAVAILABLE", msg);
	}
	writes_free(w);
	upsert_free(uc);
	if (ic->req && !ic->finished && ic->inflight < IMPORT_MAX_INFLIGHT)
		http_resume_body(ic->req);
	import_maybe_answer(ic);
}

/* Send the current batch as one versioned write. */
static void
import_flush(ImportCtx *ic)
{
	ShardMap *m;
	const SmCollection *c;
	UpsertCtx *uc = ic->batch;

	if (!uc || uc->count == 0)
		return;
	ic->batch = NULL;
	json_decref(ic->seen);
	ic->seen = NULL;
	m = shardmap_acquire();
	c = shardmap_collection(m, ic->name);
	if (!c || c->nshards != uc->nshards) {
		import_fail(ic, 404, "COLLECTION_NOT_FOUND", "the collection went away during the import");
		upsert_free(uc);
		shardmap_release(m);
		return;
	}
	{
		char msg[512], full[700];

		if (!quota_reserve(c, uc->count, &uc->reserved, msg, sizeof(msg))) {
			snprintf(full, sizeof(full), "import stopped after %lld points: %s", ic->imported,
					 msg);
			import_fail(ic, 403, "QUOTA_EXCEEDED", full);
			upsert_free(uc);
			shardmap_release(m);
			return;
		}
	}
	uc->owner = ic;
	ic->inflight++;
	snprintf(uc->version, sizeof(uc->version), "%lld", (long long) writes_next_version());
	writes_start(m, c, uc->touched, true, false, upsert_build, uc, import_write_done, uc);
	shardmap_release(m);
}

static void
import_line(ImportCtx *ic, char *line, size_t len)
{
	ShardMap *m;
	const SmCollection *c;
	json_error_t je;
	json_t *pt;
	char err[512], path[64];
	bool have_vec = false;

	ic->lineno++;
	if (strspn(line, " \t\r") == len || ic->fatal)
		return;
	m = shardmap_acquire();
	c = shardmap_collection(m, ic->name);
	if (c) {
		/*
		 * As for a search body: a plain numeric "vector" of the right size
		 * is read straight into floats and blanked (same length) before
		 * jansson parses the rest of the line; anything else goes to
		 * jansson whole and gets its usual messages.
		 */
		size_t a, b, used;

		if (ic->vecdim != c->dimension) {
			free(ic->vec);
			ic->vec = xmalloc(sizeof(float) * c->dimension);
			ic->vecdim = c->dimension;
		}
		if (util_json_top_key(line, len, "vector", &a, &b) && line[a] == '[' &&
			util_json_float_array(line + a, b - a, ic->vec, c->dimension, &used) == c->dimension &&
			used == b - a) {
			line[a] = '0';
			memset(line + a + 1, ' ', b - a - 1);
			have_vec = true;
		}
	}
	pt = json_loadb(line, len, 0, &je);
	if (!pt) {
		json_array_append_new(ic->errors, json_pack("{s:i,s:s}", "line", ic->lineno, "message",
													je.text));
		shardmap_release(m);
		return;
	}
	if (!c) {
		import_fail(ic, 404, "COLLECTION_NOT_FOUND", "the collection went away during the import");
		json_decref(pt);
		shardmap_release(m);
		return;
	}
	if (!ic->batch) {
		ic->batch = upsert_ctx(NULL, c);
		ic->seen = json_object();
	}
	snprintf(path, sizeof(path), "line %d", ic->lineno);
	if (!upsert_add_point(ic->batch, c, pt, have_vec ? ic->vec : NULL, path, ic->seen, err,
						  sizeof(err)))
		json_array_append_new(ic->errors, json_pack("{s:i,s:s}", "line", ic->lineno, "message",
													err));
	json_decref(pt);
	shardmap_release(m);
	if (ic->batch && ic->batch->count >= IMPORT_BATCH)
		import_flush(ic);
}

static bool
import_sink(HttpRequest *req, const char *data, size_t len, void *arg)
{
	ImportCtx *ic = arg;
	size_t start = 0;

	sb_appendn(&ic->line, data, len);
	for (size_t i = ic->line.len - len; i < ic->line.len; i++) {
		if (ic->line.data[i] != '\n')
			continue;
		ic->line.data[i] = '\0';
		import_line(ic, ic->line.data + start, i - start);
		start = i + 1;
	}
	if (start > 0) {
		memmove(ic->line.data, ic->line.data + start, ic->line.len - start);
		ic->line.len -= start;
		ic->line.data[ic->line.len] = '\0';
	}
	if (ic->line.len > IMPORT_MAX_LINE) {
		import_fail(ic, 413, "PAYLOAD_TOO_LARGE", "an import line is longer than 8 MiB");
		ic->line.len = 0;
	}
	return ic->inflight < IMPORT_MAX_INFLIGHT;
}

static void
import_cancel(HttpRequest *req, void *arg)
{
	ImportCtx *ic = arg;

	/* writes in flight finish (they may mark placements stale); then free */
	ic->abandoned = true;
	if (ic->finished)
		http_respond_error(req, 499, "CLIENT_CLOSED", "client closed the connection");
	ic->req = NULL;
	if (ic->inflight == 0)
		import_free(ic);
}

void
api_headers(HttpRequest *req)
{
	char name[64];
	const char *p = req->path, *q;
	ShardMap *m;
	ImportCtx *ic;
	size_t n;

	if (strcmp(req->method_name, "POST") != 0 || strncmp(p, "/v1/collections/", 16) != 0)
		return;
	/* not allowed: do not stream; api_handle's middleware answers 401/403 */
	if (!authz_precheck(req))
		return;
	p += 16;
	q = strchr(p, '/');
	if (!q || strcmp(q, "/points/import") != 0 || (n = (size_t) (q - p)) >= sizeof(name))
		return;
	memcpy(name, p, n);
	name[n] = '\0';
	m = shardmap_acquire();
	if (!shardmap_collection(m, name)) {
		shardmap_release(m);
		return;	/* the handler answers 404 */
	}
	shardmap_release(m);
	ic = xcalloc(1, sizeof(ImportCtx));
	ic->req = req;
	util_strlcpy(ic->name, name, sizeof(ic->name));
	sb_init(&ic->line);
	ic->errors = json_array();
	http_stream_body(req, import_sink, ic);
	http_set_cancel(req, import_cancel, ic);
}

void
api_points_import(HttpRequest *req, const char *name)
{
	ImportCtx *ic = req->sink_arg;
	ShardMap *m;

	if (!req->sink) {
		/* not streamed: the collection did not exist when the headers came */
		if (find_collection(req, name, &m)) {
			shardmap_release(m);
			http_respond_error(req, 503, "METADATA_UNAVAILABLE",
							   "the shard map changed during the request; retry");
		}
		return;
	}
	/* the last line may lack its newline */
	if (ic->line.len > 0) {
		sb_appendn(&ic->line, "", 0);
		import_line(ic, ic->line.data, ic->line.len);
		ic->line.len = 0;
	}
	import_flush(ic);
	ic->finished = true;
	import_maybe_answer(ic);
}

/* ---- ids helpers ---- */

/* Parse "ids" into per-shard JSON arrays (deduplicated); false answers 400. */
static bool
ids_by_shard(HttpRequest *req, const SmCollection *c, json_t *ids, json_t **per, bool *touched,
			 json_t *order)
{
	json_t *seen = json_object(), *v;
	size_t i;

	if (!json_is_array(ids) || json_array_size(ids) == 0 ||
		json_array_size(ids) > (size_t) cf_max_batch_points) {
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "ids must be a non-empty array of at most %d ids", cf_max_batch_points);
		json_decref(seen);
		return false;
	}
	json_array_foreach(ids, i, v) {
		char id[API_MAX_ID_BYTES + 1], why[128];
		const SmShard *s;

		if (!api_point_id(v, id, sizeof(id), why, sizeof(why))) {
			http_respond_error(req, 400, "INVALID_ARGUMENT", "ids[%zu] %s", i, why);
			json_decref(seen);
			return false;
		}
		if (json_object_get(seen, id))
			continue;
		json_object_set_new(seen, id, json_true());
		s = shardmap_route(c, id, strlen(id));
		json_array_append_new(per[s->index], json_string(id));
		touched[s->index] = true;
		if (order)
			json_array_append_new(order, json_string(id));
	}
	json_decref(seen);
	return true;
}

/* ---- get ---- */

typedef struct PointsGetCtx {
	HttpRequest *req;
	Fanout *f;
	json_t **ids;
	bool *touched;
	int nshards;
	json_t *order;
	bool with_vector;
	bool with_payload;
} PointsGetCtx;

static void
pget_free(PointsGetCtx *gc)
{
	for (int i = 0; i < gc->nshards; i++)
		json_decref(gc->ids[i]);
	free(gc->ids);
	free(gc->touched);
	json_decref(gc->order);
	free(gc);
}

static void
pget_build(void *arg, const SmShard *s, StrBuf *sql, ParamList *params)
{
	PointsGetCtx *gc = arg;

	sb_appendf(sql,
			   "SELECT id, %s, %s FROM vectron_shards.%s\n"
			   "WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND NOT deleted",
			   gc->with_payload ? "payload" : "NULL::jsonb",
			   gc->with_vector ? "v::text" : "NULL::text", s->table);
	params_add_owned(params, json_dumps(gc->ids[s->index], JSON_COMPACT));
}

static json_t *
json_from_text(const char *s)
{
	json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);

	return j ? j : json_null();
}

/* Append JSON text from a worker (jsonb, or a vector's text) as jansson
 * would write json_from_text's value: parsed and dumped compact. */
static void
json_text_append(StrBuf *sb, const char *s)
{
	json_t *j = json_from_text(s);
	char *d = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	sb_append(sb, d ? d : "null");
	free(d);
	json_decref(j);
}

/* Answer 503 / 502 for a read that lost a shard. */
static void
respond_fanout_failure(HttpRequest *req, Fanout *f)
{
	for (int i = 0; i < f->nshards; i++) {
		FanoutShard *fs = &f->shards[i];

		if (!fs->failed)
			continue;
		if (fs->sql_error)
			api_respond_worker_error(req, 502, "WORKER_ERROR", fs->errmsg, fs->sqlstate, fs->node);
		else {
			char msg[1200];

			snprintf(msg, sizeof(msg), "shard %d has no readable placement left (last error: %s)",
					 fs->shard->index, fs->errmsg ? fs->errmsg : "none");
			api_respond_worker_error(req, 503, "SHARD_UNAVAILABLE", msg, fs->sqlstate, fs->node);
		}
		return;
	}
}

static void
pget_done(Fanout *f, void *arg)
{
	PointsGetCtx *gc = arg;
	json_t *found = json_object(), *arr = json_array(), *v;
	size_t i;

	http_set_cancel(gc->req, NULL, NULL);
	if (f->nfailed) {
		respond_fanout_failure(gc->req, f);
		goto out;
	}
	for (int s = 0; s < f->nshards; s++) {
		PGresult *r = f->shards[s].res;

		if (!r)
			continue;
		for (int row = 0; row < PQntuples(r); row++) {
			json_t *pt = json_pack("{s:s}", "id", PQgetvalue(r, row, 0));

			if (gc->with_payload)
				json_object_set_new(pt, "payload", PQgetisnull(r, row, 1)
														? json_null()
														: json_from_text(PQgetvalue(r, row, 1)));
			if (gc->with_vector)
				json_object_set_new(pt, "vector", json_from_text(PQgetvalue(r, row, 2)));
			json_object_set_new(found, PQgetvalue(r, row, 0), pt);
		}
	}
	json_array_foreach(gc->order, i, v) {
		json_t *pt = json_object_get(found, json_string_value(v));

		if (pt)
			json_array_append(arr, pt);
	}
	http_respond_json(gc->req, 200, json_pack("{s:o}", "points", arr));
	arr = NULL;
out:
	json_decref(arr);
	json_decref(found);
	fanout_free(f);
	pget_free(gc);
}

static void
pget_cancel(HttpRequest *req, void *arg)
{
	PointsGetCtx *gc = arg;

	fanout_cancel(gc->f);
	pget_free(gc);
	http_respond_error(req, 499, "CLIENT_CLOSED", "client closed the connection");
}

static bool
bool_field(HttpRequest *req, json_t *b, const char *key, bool def, bool *out)
{
	json_t *v = json_object_get(b, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return true;
	}
	if (!json_is_boolean(v)) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "%s must be true or false", key);
		return false;
	}
	*out = json_is_true(v);
	return true;
}

void
api_points_get(HttpRequest *req, const char *name)
{
	ShardMap *m;
	const SmCollection *c;
	json_t *b = api_parse_body(req);
	PointsGetCtx *gc;

	if (!b)
		return;
	if (!(c = find_collection(req, name, &m))) {
		json_decref(b);
		return;
	}
	gc = xcalloc(1, sizeof(PointsGetCtx));
	gc->req = req;
	gc->nshards = c->nshards;
	gc->ids = xcalloc(c->nshards, sizeof(json_t *));
	gc->touched = xcalloc(c->nshards, sizeof(bool));
	gc->order = json_array();
	for (int i = 0; i < c->nshards; i++)
		gc->ids[i] = json_array();
	if (!bool_field(req, b, "with_vector", false, &gc->with_vector) ||
		!bool_field(req, b, "with_payload", true, &gc->with_payload) ||
		!ids_by_shard(req, c, json_object_get(b, "ids"), gc->ids, gc->touched, gc->order)) {
		pget_free(gc);
		goto out;
	}
	gc->f = fanout_start(m, c, gc->touched, NULL, NULL, pget_build, gc, pget_done, gc);
	http_set_cancel(req, pget_cancel, gc);
out:
	json_decref(b);
	shardmap_release(m);
}

/* ---- delete ---- */

typedef struct DeleteCtx {
	HttpRequest *req;
	json_t **ids;		/* per shard, or NULL with a filter */
	int nshards;
	char version[32];
	StrBuf filter_sql;
	ParamList filter_params;
	bool by_filter;
	int64_t coll_id;		/* quota.c */
} DeleteCtx;

static void
pdel_free(DeleteCtx *dc)
{
	if (dc->ids)
		for (int i = 0; i < dc->nshards; i++)
			json_decref(dc->ids[i]);
	free(dc->ids);
	sb_free(&dc->filter_sql);
	params_free(&dc->filter_params);
	free(dc);
}

static void
pdel_build(void *arg, int i, const SmShard *s, StrBuf *sql, ParamList *params)
{
	DeleteCtx *dc = arg;

	if (dc->by_filter) {
		params_add(params, dc->version);
		for (int p = 0; p < dc->filter_params.n; p++)
			params_add(params, dc->filter_params.v[p]);
		sb_appendf(sql,
				   "WITH u AS (UPDATE vectron_shards.%s AS t SET v = NULL, payload = NULL,\n"
				   "    version = $1::bigint, deleted = true\n"
				   "  WHERE NOT deleted AND version < $1::bigint AND %s RETURNING 1)\n"
				   "SELECT count(*) FROM u",
				   s->table, dc->filter_sql.data);
		return;
	}
	params_add_owned(params, json_dumps(dc->ids[i], JSON_COMPACT));
	params_add(params, dc->version);
	sb_appendf(sql,
			   "WITH old AS (SELECT id FROM vectron_shards.%s\n"
			   "    WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND NOT deleted),\n"
			   "  ins AS (INSERT INTO vectron_shards.%s AS t (id, v, payload, version, deleted)\n"
			   "    SELECT x, NULL, NULL, $2::bigint, true FROM jsonb_array_elements_text($1::jsonb) AS x\n"
			   "    ON CONFLICT (id) DO UPDATE SET v = NULL, payload = NULL,\n"
			   "      version = excluded.version, deleted = true\n"
			   "    WHERE t.version < excluded.version RETURNING id)\n"
			   "SELECT count(*) FROM old WHERE id IN (SELECT id FROM ins)",
			   s->table, s->table);
}

static void
pdel_done(WriteOp *w, void *arg)
{
	DeleteCtx *dc = arg;

	quota_settle(dc->coll_id, 0, -write_delta(w));
	if (!w->ok)
		respond_write_error(dc->req, w);
	else {
		long long n = 0;

		for (int i = 0; i < w->nshards; i++)
			if (w->shards[i].res && PQntuples(w->shards[i].res) == 1)
				n += atoll(PQgetvalue(w->shards[i].res, 0, 0));
		http_respond_json(dc->req, 200, json_pack("{s:I}", "deleted", (json_int_t) n));
	}
	writes_free(w);
	pdel_free(dc);
}

void
api_points_delete(HttpRequest *req, const char *name)
{
	ShardMap *m;
	const SmCollection *c;
	json_t *b = api_parse_body(req), *ids, *filter;
	DeleteCtx *dc;
	bool *touched = NULL;

	if (!b)
		return;
	if (!(c = find_collection(req, name, &m))) {
		json_decref(b);
		return;
	}
	dc = xcalloc(1, sizeof(DeleteCtx));
	dc->req = req;
	dc->coll_id = c->id;
	dc->nshards = c->nshards;
	sb_init(&dc->filter_sql);
	params_init(&dc->filter_params);
	ids = json_object_get(b, "ids");
	filter = json_object_get(b, "filter");
	if ((ids && filter) || (!ids && !filter)) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "give exactly one of ids and filter");
		pdel_free(dc);
		goto out;
	}
	if (filter) {
		char err[512];
		ParamList tmp;

		/* $1 is the version; filter parameters follow */
		params_init(&tmp);
		params_add(&tmp, "version");
		if (!filter_to_sql(filter, &dc->filter_sql, &tmp, err, sizeof(err))) {
			params_free(&tmp);
			http_respond_error(req, 400, "INVALID_FILTER", "%s", err);
			pdel_free(dc);
			goto out;
		}
		for (int i = 1; i < tmp.n; i++)
			params_add(&dc->filter_params, tmp.v[i]);
		params_free(&tmp);
		dc->by_filter = true;
	} else {
		dc->ids = xcalloc(c->nshards, sizeof(json_t *));
		for (int i = 0; i < c->nshards; i++)
			dc->ids[i] = json_array();
		touched = xcalloc(c->nshards, sizeof(bool));
		if (!ids_by_shard(req, c, ids, dc->ids, touched, NULL)) {
			free(touched);
			pdel_free(dc);
			goto out;
		}
	}
	snprintf(dc->version, sizeof(dc->version), "%lld", (long long) writes_next_version());
	writes_start(m, c, touched, true, false, pdel_build, dc, pdel_done, dc);
	free(touched);
out:
	json_decref(b);
	shardmap_release(m);
}

/* ---- search ---- */

typedef struct SearchSpec {
	char *vec;			/* the query vector in the vector type's binary layout */
	int veclen;
	int k;
	int ef;
	bool with_payload;
	bool with_vector;
	bool allow_partial;
	StrBuf filter_sql;	/* empty when no filter; params start at $2 */
	ParamList filter_params;
	bool has_filter;
	Fanout *f;
	void *arg;			/* the SearchArg given to the fanout */
	char *results;		/* the "results" array as JSON text, once done */
	bool partial;
	json_t *missing;	/* missing shard numbers, when partial */
	int status;			/* 0 = ok */
	json_t *error;
} SearchSpec;

typedef struct SearchCtx {
	HttpRequest *req;
	SmMetric metric;
	int n;
	SearchSpec *specs;
	int pending;
	bool batch;
	/* stage timings for the Server-Timing header (microseconds, max over searches) */
	uint64_t parse_us;		/* body in -> statements handed to the fanout */
	uint64_t rtt_us;		/* slowest shard: pipeline sent -> Sync back */
	uint64_t worker_us;		/* slowest shard: execution time the worker reported */
	uint64_t merge_us;		/* merge and answer building */
} SearchCtx;

static void
search_free(SearchCtx *sc)
{
	for (int i = 0; i < sc->n; i++) {
		free(sc->specs[i].vec);
		sb_free(&sc->specs[i].filter_sql);
		params_free(&sc->specs[i].filter_params);
		free(sc->specs[i].results);
		json_decref(sc->specs[i].missing);
		json_decref(sc->specs[i].error);
	}
	free(sc->specs);
	free(sc);
}

/* Parse one search object; on failure answers 400 and returns false. */
static bool
search_parse(HttpRequest *req, const SmCollection *c, json_t *b, const char *path,
			 const float *prevec, SearchSpec *sp)
{
	char err[512];
	json_t *v;
	const char *k;

	sb_init(&sp->filter_sql);
	params_init(&sp->filter_params);
	if (!json_is_object(b)) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "%s must be an object", path);
		return false;
	}
	json_object_foreach(b, k, v) {
		if (strcmp(k, "vector") && strcmp(k, "k") && strcmp(k, "filter") &&
			strcmp(k, "ef_search") && strcmp(k, "with_payload") && strcmp(k, "with_vector") &&
			strcmp(k, "allow_partial")) {
			http_respond_error(req, 400, "INVALID_ARGUMENT", "%s has unknown field \"%.64s\"",
							   path, k);
			return false;
		}
	}
	{
		char sub[96];

		float *x = prevec ? NULL : xmalloc(sizeof(float) * c->dimension);

		snprintf(sub, sizeof(sub), "%s%svector", path, path[0] ? "." : "");
		if (x && !vector_floats(json_object_get(b, "vector"), c->dimension, sub, x, err,
								sizeof(err))) {
			free(x);
			http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", err);
			return false;
		}
		sp->vec = util_vector_binary(prevec ? prevec : x, c->dimension, &sp->veclen);
		free(x);
	}
	v = json_object_get(b, "k");
	sp->k = v ? (int) json_integer_value(v) : 10;
	if ((v && !json_is_integer(v)) || sp->k < 1 || sp->k > API_MAX_K) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "%s%sk must be an integer between 1 and %d",
						   path, path[0] ? "." : "", API_MAX_K);
		return false;
	}
	v = json_object_get(b, "ef_search");
	sp->ef = v && !json_is_null(v) ? (int) json_integer_value(v) : 40;
	if ((v && !json_is_null(v) && !json_is_integer(v)) || sp->ef < 1 || sp->ef > 1000) {
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "%s%sef_search must be an integer between 1 and 1000", path,
						   path[0] ? "." : "");
		return false;
	}
	if (sp->ef < sp->k)
		sp->ef = sp->k;
	if (!bool_field(req, b, "with_payload", true, &sp->with_payload) ||
		!bool_field(req, b, "with_vector", false, &sp->with_vector) ||
		!bool_field(req, b, "allow_partial", false, &sp->allow_partial))
		return false;
	v = json_object_get(b, "filter");
	if (v && !json_is_null(v)) {
		ParamList tmp;

		params_init(&tmp);
		params_add(&tmp, "vector");
		if (!filter_to_sql(v, &sp->filter_sql, &tmp, err, sizeof(err))) {
			params_free(&tmp);
			http_respond_error(req, 400, "INVALID_FILTER", "%s%s%s", path, path[0] ? ": " : "",
							   err);
			return false;
		}
		for (int i = 1; i < tmp.n; i++)
			params_add(&sp->filter_params, tmp.v[i]);
		params_free(&tmp);
		sp->has_filter = true;
	}
	return true;
}

typedef struct SearchArg {
	SearchCtx *sc;
	SearchSpec *sp;
} SearchArg;

/*
 * One shard's statement.  $1 is the query vector, sent in binary.  The last
 * column is the worker's own execution time so far, in microseconds, from
 * the start of the pipeline's transaction (its first statement, the
 * prelude) to the row; the value of the last row is the shard's worker time
 * for the Server-Timing header and the slow log.  PostgreSQL evaluates
 * volatile output columns above the sort, so it costs a clock read per
 * returned row, not per scanned one.
 */
static void
search_build(void *arg, const SmShard *s, StrBuf *sql, ParamList *params)
{
	SearchArg *sa = arg;
	SearchSpec *sp = sa->sp;
	const char *op = shardmap_metric_op(sa->sc->metric);

	params_add_binary(params, sp->vec, sp->veclen);
	params_append(params, &sp->filter_params);
	sb_appendf(sql,
			   "SELECT id, v %s $1::vector AS d, %s, %s,\n"
			   "  (extract(epoch FROM clock_timestamp() - transaction_timestamp()) * 1000000)::int8\n"
			   "FROM vectron_shards.%s\n"
			   "WHERE NOT deleted%s%s\n"
			   "ORDER BY v %s $1::vector LIMIT %d",
			   op, sp->with_payload ? "payload" : "NULL::jsonb",
			   sp->with_vector ? "v::text" : "NULL::text", s->table,
			   sp->has_filter ? " AND " : "", sp->has_filter ? sp->filter_sql.data : "", op, sp->k);
}

static void search_finish(SearchCtx *sc);

static void
search_one_done(Fanout *f, void *arg)
{
	SearchArg *sa = arg;
	SearchSpec *sp = sa->sp;
	SearchCtx *sc = sa->sc;
	MergeItem **lists = xcalloc(f->nshards, sizeof(MergeItem *));
	int *lens = xcalloc(f->nshards, sizeof(int));
	MergeItem *out = xmalloc(sizeof(MergeItem) * sp->k);
	json_t *missing = json_array();
	int nout;
	uint64_t t0 = util_now_us(), rtt = 0, wt = 0;

	free(sa);
	sp->f = NULL;
	sp->arg = NULL;
	/* per-shard timings for the slow log */
	if (!sc->req->shard_timing)
		sc->req->shard_timing = json_array();
	for (int s = 0; s < f->nshards; s++)
		json_array_append_new(sc->req->shard_timing,
							  json_pack("{s:s,s:s,s:f,s:i,s:b}", "shard",
										f->shards[s].shard->table, "node", f->shards[s].node,
										"ms", f->shards[s].ms, "attempts",
										f->shards[s].attempts, "ok", f->shards[s].ok));
	for (int s = 0; s < f->nshards; s++) {
		PGresult *r = f->shards[s].res;

		if (f->shards[s].failed) {
			json_array_append_new(missing, json_integer(f->shards[s].shard->index));
			continue;
		}
		if (!r)
			continue;
		lens[s] = PQntuples(r);
		if ((uint64_t) (f->shards[s].rtt_ms * 1000) > rtt)
			rtt = (uint64_t) (f->shards[s].rtt_ms * 1000);
		if (lens[s] > 0 && PQnfields(r) > 4) {
			uint64_t w = strtoull(PQgetvalue(r, lens[s] - 1, 4), NULL, 10);

			if (w > wt)
				wt = w;
		}
		lists[s] = xmalloc(sizeof(MergeItem) * (lens[s] ? lens[s] : 1));
		for (int row = 0; row < lens[s]; row++)
			lists[s][row] = (MergeItem){PQgetvalue(r, row, 0), strtod(PQgetvalue(r, row, 1), NULL),
										s, row};
		/* relaxed iterative scans may return rows slightly out of order */
		merge_sort(lists[s], lens[s]);
	}
	if (f->nfailed && !sp->allow_partial) {
		/* build the error now; the answer is sent when every search is done */
		for (int s = 0; s < f->nshards; s++) {
			FanoutShard *fs = &f->shards[s];
			char msg[1200];
			json_t *e;

			if (!fs->failed)
				continue;
			if (fs->sql_error) {
				sp->status = 502;
				e = json_pack("{s:s,s:s}", "code", "WORKER_ERROR", "message",
							  fs->errmsg ? fs->errmsg : "");
			} else {
				sp->status = 503;
				snprintf(msg, sizeof(msg),
						 "shard %d has no readable placement left (last error: %s); "
						 "set allow_partial to get the other shards' results",
						 fs->shard->index, fs->errmsg ? fs->errmsg : "none");
				e = json_pack("{s:s,s:s}", "code", "SHARD_UNAVAILABLE", "message", msg);
			}
			if (fs->sqlstate[0])
				json_object_set_new(e, "sqlstate", json_string(fs->sqlstate));
			if (fs->node[0])
				json_object_set_new(e, "node", json_string(fs->node));
			sp->error = json_pack("{s:o}", "error", e);
			break;
		}
	} else {
		StrBuf sb;

		/* the answer is written straight as JSON text: jansson's generic
		 * objects per result cost more than the rest of the merge */
		nout = merge_topk(lists, lens, f->nshards, sp->k, out);
		sb_init(&sb);
		sb_appendn(&sb, "[", 1);
		for (int i = 0; i < nout; i++) {
			PGresult *r = f->shards[out[i].src].res;

			sb_append(&sb, i ? ",{\"id\":" : "{\"id\":");
			util_json_append_string(&sb, out[i].id);
			sb_append(&sb, ",\"distance\":");
			util_json_append_real(&sb, out[i].dist);
			if (sp->with_payload) {
				sb_append(&sb, ",\"payload\":");
				if (PQgetisnull(r, out[i].row, 2))
					sb_append(&sb, "null");
				else
					json_text_append(&sb, PQgetvalue(r, out[i].row, 2));
			}
			if (sp->with_vector) {
				sb_append(&sb, ",\"vector\":");
				json_text_append(&sb, PQgetvalue(r, out[i].row, 3));
			}
			sb_appendn(&sb, "}", 1);
		}
		sb_appendn(&sb, "]", 1);
		sp->results = sb_steal(&sb);
		sp->partial = f->nfailed > 0;
		obs_search(f->coll->name, nout);
		if (f->nfailed) {
			obs_partial_result();
			sp->missing = json_incref(missing);
		}
	}
	json_decref(missing);
	for (int s = 0; s < f->nshards; s++)
		free(lists[s]);
	free(lists);
	free(lens);
	free(out);
	fanout_free(f);
	if (rtt > sc->rtt_us)
		sc->rtt_us = rtt;
	if (wt > sc->worker_us)
		sc->worker_us = wt;
	if (util_now_us() - t0 > sc->merge_us)
		sc->merge_us = util_now_us() - t0;
	if (--sc->pending == 0)
		search_finish(sc);
}

static void
search_finish(SearchCtx *sc)
{
	HttpRequest *req = sc->req;
	char *st;

	http_set_cancel(req, NULL, NULL);
	/*
	 * Server-Timing: where the time went (ms).  parse: body to statements;
	 * shard: the slowest shard's round trip as the coordinator saw it
	 * (pipeline written -> Sync read); worker: the slowest shard's own
	 * execution time as the worker reported it; merge: merge and answer.
	 * bench/coord subtracts worker (and shard) from the client's latency.
	 */
	st = xasprintf("%sServer-Timing: parse;dur=%.3f, shard;dur=%.3f, worker;dur=%.3f, "
				   "merge;dur=%.3f\r\n",
				   req->extra_headers ? req->extra_headers : "", sc->parse_us / 1000.0,
				   sc->rtt_us / 1000.0, sc->worker_us / 1000.0, sc->merge_us / 1000.0);
	free(req->extra_headers);
	req->extra_headers = st;
	for (int i = 0; i < sc->n; i++)
		if (sc->specs[i].status) {
			http_respond_json(req, sc->specs[i].status, json_incref(sc->specs[i].error));
			search_free(sc);
			return;
		}
	{
		StrBuf sb;
		json_t *missing = json_array();
		bool partial = false;

		/* {"results":R,"partial":P[,"missing_shards":M]}, R one array, or
		 * one per search in a batch (the order jansson used to write) */
		sb_init(&sb);
		sb_append(&sb, sc->batch ? "{\"results\":[" : "{\"results\":");
		for (int i = 0; i < sc->n; i++) {
			if (i)
				sb_appendn(&sb, ",", 1);
			sb_append(&sb, sc->specs[i].results);
			if (sc->specs[i].partial) {
				partial = true;
				json_array_extend(missing, sc->specs[i].missing);
			}
		}
		sb_append(&sb, sc->batch ? "],\"partial\":" : ",\"partial\":");
		sb_append(&sb, partial ? "true" : "false");
		if (partial) {
			char *m = json_dumps(missing, JSON_COMPACT);

			sb_append(&sb, ",\"missing_shards\":");
			sb_append(&sb, m);
			free(m);
		}
		sb_appendn(&sb, "}", 1);
		json_decref(missing);
		http_respond_raw(req, 200, "application/json", sb.data, sb.len);
		sb_free(&sb);
	}
	search_free(sc);
}

static void
search_cancel(HttpRequest *req, void *arg)
{
	SearchCtx *sc = arg;

	for (int i = 0; i < sc->n; i++)
		if (sc->specs[i].f) {
			fanout_cancel(sc->specs[i].f);
			sc->specs[i].f = NULL;
			free(sc->specs[i].arg);
			sc->specs[i].arg = NULL;
		}
	search_free(sc);
	http_respond_error(req, 499, "CLIENT_CLOSED", "client closed the connection");
}

/*
 * Per-request settings, sent ahead of the shard queries in the same
 * pipeline (so in the same implicit transaction; is_local = true keeps them
 * there).  hnsw.ef_search and hnsw.iterative_scan work as placeholders
 * until the extension's library is loaded (at planning, by the vector
 * literal), which then validates them.  Every search scans iteratively
 * (relaxed order; the merge sorts anyway): index entries of rows updated or
 * deleted since the last VACUUM are not visible and would otherwise use up
 * the ef_search candidates, so fewer than k rows could come back although k
 * live rows exist (test deadver-search-returns-all-k: 1 of 30 without it).
 * The scan only goes past ef_search when the executor asks for more rows.
 * application_name ($3) carries the request id into pg_stat_activity and
 * the worker's log (%a).
 * enable_seqscan is off for the request: with high-dimensional vectors
 * TOASTed out of line, PostgreSQL's costs make a sequential scan of a shard
 * look cheaper than the HNSW index, and a shard search must use the index
 * (bench/coord measured 17 ms exact scans per 6.7k-row shard without this).
 * Without an index the scan is still sequential, only costed higher.
 */
#define SEARCH_PRELUDE \
	"SELECT set_config('hnsw.ef_search', $1, true), set_config('statement_timeout', $2, true), " \
	"set_config('application_name', $3, true), set_config('enable_seqscan', 'off', true), " \
	"set_config('hnsw.iterative_scan', 'relaxed_order', true)"

/*
 * The body of a single search, parsed.  The query vector is most of it
 * (thousands of numbers): when the top-level "vector" is a plain array of
 * numbers of the collection's dimension, it is read straight into *vec
 * (util_json_float_array) and blanked out of the text before jansson parses
 * the rest, which saves building a JSON value per element.  Anything else
 * goes to jansson whole, as api_parse_body would, with its messages.
 */
static json_t *
search_body(HttpRequest *req, int dim, float *vec, bool *have_vec)
{
	size_t len, a, b, used;
	char *s = http_body_string(req, &len);

	*have_vec = false;
	if (len > 0 && util_json_top_key(s, len, "vector", &a, &b) && s[a] == '[' &&
		util_json_float_array(s + a, b - a, vec, dim, &used) == dim && used == b - a) {
		/* same length, so jansson's line and column in errors stay right */
		s[a] = '0';
		memset(s + a + 1, ' ', b - a - 1);
		*have_vec = true;
	}
	return api_parse_object(req, s, len);
}

void
api_search(HttpRequest *req, const char *name, bool batch)
{
	ShardMap *m;
	const SmCollection *c;
	json_t *b;
	SearchCtx *sc;
	char timeout[32];
	float *vec = NULL;
	bool have_vec = false;

	m = shardmap_acquire();
	if (!(c = shardmap_collection(m, name))) {
		shardmap_release(m);
		/* a malformed body still answers 400 first, as before */
		if ((b = api_parse_body(req))) {
			json_decref(b);
			http_respond_error(req, 404, "COLLECTION_NOT_FOUND",
							   "collection \"%s\" does not exist", name);
		}
		return;
	}
	if (batch)
		b = api_parse_body(req);
	else {
		vec = xmalloc(sizeof(float) * c->dimension);
		b = search_body(req, c->dimension, vec, &have_vec);
	}
	if (!b) {
		free(vec);
		shardmap_release(m);
		return;
	}
	sc = xcalloc(1, sizeof(SearchCtx));
	sc->req = req;
	sc->metric = c->metric;
	sc->batch = batch;
	if (batch) {
		json_t *arr = json_object_get(b, "searches"), *v;
		size_t i;

		if (!json_is_array(arr) || json_array_size(arr) == 0 ||
			json_array_size(arr) > API_MAX_BATCH_SEARCHES) {
			http_respond_error(req, 400, "INVALID_ARGUMENT",
							   "searches must be a non-empty array of at most %d searches",
							   API_MAX_BATCH_SEARCHES);
			goto fail;
		}
		sc->n = json_array_size(arr);
		sc->specs = xcalloc(sc->n, sizeof(SearchSpec));
		json_array_foreach(arr, i, v) {
			char path[64];

			snprintf(path, sizeof(path), "searches[%zu]", i);
			if (!search_parse(req, c, v, path, NULL, &sc->specs[i])) {
				/* later specs have no buffers yet; give them empty ones */
				for (size_t j = i + 1; j < (size_t) sc->n; j++) {
					sb_init(&sc->specs[j].filter_sql);
					params_init(&sc->specs[j].filter_params);
				}
				goto fail;
			}
		}
	} else {
		sc->n = 1;
		sc->specs = xcalloc(1, sizeof(SearchSpec));
		if (!search_parse(req, c, b, "", have_vec ? vec : NULL, &sc->specs[0]))
			goto fail;
	}
	json_decref(b);
	free(vec);
	vec = NULL;
	snprintf(timeout, sizeof(timeout), "%d", cf_worker_timeout_ms);
	sc->pending = sc->n;
	for (int i = 0; i < sc->n; i++) {
		SearchSpec *sp = &sc->specs[i];
		SearchArg *sa = xcalloc(1, sizeof(SearchArg));
		ParamList pre;
		char ef[16];

		sa->sc = sc;
		sa->sp = sp;
		sp->arg = sa;
		params_init(&pre);
		snprintf(ef, sizeof(ef), "%d", sp->ef);
		params_add(&pre, ef);
		params_add(&pre, timeout);
		params_add_owned(&pre, xasprintf("vectron-coordinator %s", req->id));
		/* filters make ad-hoc statement texts: those are not worth preparing */
		sp->f = fanout_start_flags(m, c, NULL, SEARCH_PRELUDE, &pre, search_build, sa,
								   search_one_done, sa, sp->has_filter ? 0 : FANOUT_PREPARED);
		params_free(&pre);
	}
	sc->parse_us = util_now_us() - req->start_us;
	http_set_cancel(req, search_cancel, sc);
	shardmap_release(m);
	return;
fail:
	json_decref(b);
	free(vec);
	search_free(sc);
	shardmap_release(m);
}
