/*
 * fuzz_request.c
 *	  libFuzzer target for the coordinator's request-body decoders: the real
 *	  handlers of api_points.c and api_collections.c (with api.c's body and
 *	  id parsing, and filter.c's translation of filters to SQL) run on the
 *	  fuzzer's bytes as the body of a request to a collection "fz" (4
 *	  dimensions, 3 shards) of a real shard map.  The edges (HTTP answers,
 *	  database, executors) are fuzz_request_stubs.c.  The first byte picks
 *	  the route:
 *	    0  POST /v1/collections/fz/points           upsert
 *	    1  POST /v1/collections/fz/points/search    search
 *	    2  POST .../points/search/batch             batch search
 *	    3  POST .../points/get                      get by ids
 *	    4  POST .../points/delete                   delete by ids or filter
 *	    5  POST .../points/import                   NDJSON, streamed in
 *	                                                pieces whose sizes come
 *	                                                from the second byte
 *	    6  the rest is a filter, straight into filter_to_sql()
 *	    7  POST /v1/collections                     create
 *	  and (through api_auth.c's router, as an admin with a login token) the
 *	  auth routes, the first byte's low nibble plus 16 when its bit 0x40 is
 *	  set:
 *	    8  POST /v1/auth/register     9  POST /v1/auth/login
 *	   10  POST /v1/auth/refresh     11  POST /v1/auth/logout
 *	   12  POST /v1/auth/token       13  POST /v1/keys
 *	   14  POST /v1/keys/{id}/rotate 15  POST /v1/admin/users
 *	   16  PUT /v1/admin/users/7/quota
 *	   17  POST /v1/collections/fz/grants
 *	   18  POST /v1/me/password
 *	  (so ASCII '0'-'7' pick 0-7, '8'-'?' 8-15 and '@'-'B' 16-18).
 *	  Invariants: no crash, leak or sanitizer report; every request is
 *	  answered exactly once (after the harness cancels a read that went to
 *	  the executor); every statement built has only $n placeholders that
 *	  its parameters cover, no ';', and balanced parentheses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <http_parser.h>

/* the map's static installer is what the harness needs from shardmap.c */
#include "shardmap.c"

#include "api_internal.h"
#include "config.h"
#include "filter.h"
#include "log.h"

#include "fuzz_request.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* API handlers that are not in api_internal.h */
void api_headers(HttpRequest *req);
bool api_auth_route(HttpRequest *req, char **segs, int n);

/* the auth routes, from mode 8 on */
static const struct {
	int method;
	const char *path;
} AUTH_ROUTES[] = {
	{HTTP_POST, "/v1/auth/register"},
	{HTTP_POST, "/v1/auth/login"},
	{HTTP_POST, "/v1/auth/refresh"},
	{HTTP_POST, "/v1/auth/logout"},
	{HTTP_POST, "/v1/auth/token"},
	{HTTP_POST, "/v1/keys"},
	{HTTP_POST, "/v1/keys/0123456789abcdef/rotate"},
	{HTTP_POST, "/v1/admin/users"},
	{HTTP_PUT, "/v1/admin/users/7/quota"},
	{HTTP_POST, "/v1/collections/fz/grants"},
	{HTTP_POST, "/v1/me/password"},
};
#define N_AUTH_ROUTES ((int) (sizeof(AUTH_ROUTES) / sizeof(AUTH_ROUTES[0])))

/* Route an auth request as api.c does: the path split on '/'. */
static void
auth_route(HttpRequest *req, int r)
{
	char path[128], *segs[8], *save = NULL, *t;
	int n = 0;

	req->method = AUTH_ROUTES[r].method;
	req->method_name = http_method_str((enum http_method) req->method);
	req->path = (char *) AUTH_ROUTES[r].path;
	util_strlcpy(path, AUTH_ROUTES[r].path, sizeof(path));
	for (t = strtok_r(path, "/", &save); t && n < 8; t = strtok_r(NULL, "/", &save))
		segs[n++] = t;
	if (!api_auth_route(req, segs, n))
		abort();
}

static const char *const MAP =
	"{\"version\": 7, \"nodes\": [{\"id\": 1, \"name\": \"w1\", \"host\": \"127.0.0.1\", "
	"\"port\": 5432, \"dbname\": \"postgres\", \"state\": \"active\"}],"
	" \"collections\": [{\"id\": 3, \"name\": \"fz\", \"dimension\": 4, \"metric\": \"cosine\","
	" \"replication_factor\": 1, \"index\": {}, \"metadata\": {}, \"state\": \"active\","
	" \"created_at\": \"2026-01-01\", \"shards\": ["
	"  {\"id\": 10, \"index\": 0, \"hash_min\": 0, \"hash_max\": 1431655765,"
	"   \"placements\": [{\"id\": 1, \"node_id\": 1, \"state\": \"active\"}]},"
	"  {\"id\": 11, \"index\": 1, \"hash_min\": 1431655766, \"hash_max\": 2863311531,"
	"   \"placements\": [{\"id\": 2, \"node_id\": 1, \"state\": \"active\"}]},"
	"  {\"id\": 12, \"index\": 2, \"hash_min\": 2863311532, \"hash_max\": 4294967295,"
	"   \"placements\": [{\"id\": 3, \"node_id\": 1, \"state\": \"active\"}]}]}]}";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	ShardMap *m;

	(void) argc;
	(void) argv;
	config_set_defaults();
	if (!config_set("auth_registration", "open", "fuzz", false, err, sizeof(err))) {
		fprintf(stderr, "fuzz_request: %s\n", err);
		abort();
	}
	log_configure("fatal", "text");
	m = shardmap_parse(MAP, err, sizeof(err));
	if (!m || !shardmap_collection(m, "fz")) {
		fprintf(stderr, "fuzz_request: shard map: %s\n", m ? "no collection" : err);
		abort();
	}
	m->refcount = 1;
	shardmap_install(m);
	return 0;
}

void
fz_check_sql(const char *sql, const ParamList *params)
{
	int depth = 0;

	for (const char *p = sql; *p; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && --depth < 0)
			break;
		else if (*p == ';') {
			fprintf(stderr, "fuzz_request: ';' in a statement: %s\n", sql);
			abort();
		} else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
			long n = strtol(p + 1, NULL, 10);

			if (n < 1 || n > params->n) {
				fprintf(stderr, "fuzz_request: $%ld with %d parameters: %s\n", n, params->n, sql);
				abort();
			}
		}
	}
	if (depth != 0) {
		fprintf(stderr, "fuzz_request: unbalanced parentheses: %s\n", sql);
		abort();
	}
}

static void
filter_only(const uint8_t *data, size_t size)
{
	json_t *f = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
	StrBuf sql;
	ParamList params;
	char err[512];

	if (!f)
		return;
	sb_init(&sql);
	params_init(&params);
	if (filter_to_sql(f, &sql, &params, err, sizeof(err))) {
		if (sql.len == 0)
			abort();
		fz_check_sql(sql.data, &params);
	} else if (!err[0])
		abort();			/* a refusal always says why */
	sb_free(&sql);
	params_free(&params);
	json_decref(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
		"/v1/collections/fz/points", "/v1/collections/fz/points/search",
		"/v1/collections/fz/points/search/batch", "/v1/collections/fz/points/get",
		"/v1/collections/fz/points/delete", "/v1/collections/fz/points/import", NULL,
		"/v1/collections"};
	HttpRequest req;
	int mode;

	if (size < 1)
		return 0;
	mode = (data[0] & 15) + (data[0] & 0x40 ? 16 : 0);
	data++;
	size--;
	if (mode >= 8 + N_AUTH_ROUTES)
		return 0;
	if (mode == 6) {
		filter_only(data, size);
		return 0;
	}
	memset(&req, 0, sizeof(req));
	req.method = HTTP_POST;
	req.method_name = "POST";
	req.path = (char *) (mode < 8 ? paths[mode] : "");
	snprintf(req.id, sizeof(req.id), "fuzz");
	snprintf(req.peer_ip, sizeof(req.peer_ip), "127.0.0.1");
	req.body = evbuffer_new();
	fz_answers = 0;
	switch (mode) {
	case 0:
		evbuffer_add(req.body, data, size);
		api_points_upsert(&req, "fz");
		break;
	case 1:
	case 2:
		evbuffer_add(req.body, data, size);
		api_search(&req, "fz", mode == 2);
		break;
	case 3:
		evbuffer_add(req.body, data, size);
		api_points_get(&req, "fz");
		break;
	case 4:
		evbuffer_add(req.body, data, size);
		api_points_delete(&req, "fz");
		break;
	case 5: {
		/* the body arrives in pieces of 1 to 64 bytes (from the next byte) */
		size_t piece = size ? (size_t) (data[0] & 63) + 1 : 1, off = 0;

		api_headers(&req);
		if (!req.sink)
			abort();		/* the collection exists: the body must stream */
		while (off < size) {
			size_t n = size - off < piece ? size - off : piece;

			(void) req.sink(&req, (const char *) data + off, n, req.sink_arg);
			off += n;
		}
		api_points_import(&req, "fz");
		break;
	}
	case 7:
		evbuffer_add(req.body, data, size);
		api_collections_create(&req);
		break;
	default:
		evbuffer_add(req.body, data, size);
		auth_route(&req, mode - 8);
		break;
	}
	/* a read waits on the executor: the client leaves */
	if (fz_answers == 0 && req.on_cancel)
		req.on_cancel(&req, req.cancel_arg);
	if (getenv("FUZZ_REQUEST_VERBOSE"))
		fprintf(stderr, "fuzz_request: mode %d %s -> %d %s\n", mode, req.path, fz_last_status,
				req.errcode);
	if (fz_answers != 1) {
		fprintf(stderr, "fuzz_request: mode %d answered %d times\n", mode, fz_answers);
		abort();
	}
	free(req.extra_headers);
	evbuffer_free(req.body);
	return 0;
}
