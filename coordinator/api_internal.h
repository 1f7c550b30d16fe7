/*
 * api_internal.h: helpers shared by the API handler files (not used
 * outside api*.c).
 */
#ifndef VX_API_INTERNAL_H
#define VX_API_INTERNAL_H

#include "http.h"
#include "shardmap.h"
#include "workerconn.h"

#include <jansson.h>

/* The indexable dimension limit: 4,096 fits one HNSW page as an SQ8 code at any m (docs/hnsw.md). */
#define API_MAX_DIMENSION 4096
#define API_MAX_K 1000
#define API_MAX_SHARDS 256
#define API_MAX_ID_BYTES 256
#define API_MAX_BATCH_SEARCHES 100

/* Parse the body as a JSON object; on failure answers 400 and returns NULL. */
json_t *api_parse_body(HttpRequest *req);
json_t *api_parse_object(HttpRequest *req, char *s, size_t len);

/* Answer with a failed job's error: SQLSTATE and node pass through. */
void api_respond_job_error(HttpRequest *req, const PgJob *job);
void api_respond_worker_error(HttpRequest *req, int status, const char *code, const char *msg,
							  const char *sqlstate, const char *node);

/* Point id from JSON (string, or integer as decimal); false + message. */
bool api_point_id(json_t *v, char *out, size_t outlen, char *err, size_t errlen);

/* Collection as JSON (without counts). */
json_t *api_collection_json(const ShardMap *map, const SmCollection *c, bool detail);

/* Auth hook (issue 5): true when the request may go on; otherwise it
 * has answered.  `scope` is "read", "write" or "admin"; coll may be NULL. */
bool api_authorize(HttpRequest *req, const char *scope, const char *coll);

void api_collections_list(HttpRequest *req);
void api_collections_create(HttpRequest *req);
void api_collection_get(HttpRequest *req, const char *name);
void api_collection_delete(HttpRequest *req, const char *name);

void api_points_upsert(HttpRequest *req, const char *name);
void api_points_get(HttpRequest *req, const char *name);
void api_points_delete(HttpRequest *req, const char *name);
void api_points_import(HttpRequest *req, const char *name);
void api_search(HttpRequest *req, const char *name, bool batch);


#endif
