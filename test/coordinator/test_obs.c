/*
 * test_obs.c: unit tests of obs.c, the coordinator's instrumentation:
 * route templates (bounded label values), client request id validation,
 * the one-minute window's percentiles, the slow-request ring (slowest
 * kept, limit honoured) and the rendered metrics.  TAP output; run by
 * scripts/check.d/57-ops-integration before the cluster tests.
 */
#include "config.h"
#include "log.h"
#include "obs.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_n, t_failed;

static void
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	t_n++;
	printf("%sok %d - ", cond ? "" : "not ", t_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		t_failed++;
}

static void
test_routes(void)
{
	char b[128];
	static const char *const cases[][2] = {
		{"/healthz", "/healthz"},
		{"/readyz", "/readyz"},
		{"/metrics", "/metrics"},
		{"/v1/collections", "/v1/collections"},
		{"/v1/collections/some_name", "/v1/collections/{name}"},
		{"/v1/collections/x/points", "/v1/collections/{name}/points"},
		{"/v1/collections/x/points/get", "/v1/collections/{name}/points/get"},
		{"/v1/collections/x/points/import", "/v1/collections/{name}/points/import"},
		{"/v1/collections/x/points/evil", "other"},
		{"/v1/collections/x/search", "/v1/collections/{name}/search"},
		{"/v1/collections/x/search/batch", "/v1/collections/{name}/search/batch"},
		{"/v1/admin/nodes/w1/drain", "/v1/admin/nodes/{name}/drain"},
		{"/v1/admin/shards/12/move", "/v1/admin/shards/{id}/move"},
		{"/v1/admin/moves/3", "/v1/admin/moves/{id}"},
		{"/v1/admin/stats", "/v1/admin/stats"},
		{"/random/client/junk", "other"},
		{"/a/b/c/d/e/f/g/h/i/j", "other"},
		{"/", "other"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(strcmp(obs_route(cases[i][0], b, sizeof(b)), cases[i][1]) == 0, "route %s -> %s",
		   cases[i][0], cases[i][1]);
}

static void
test_request_ids(void)
{
	char long_id[80];

	ok(obs_valid_request_id("abc-123_x.y:z"), "request id: allowed characters");
	ok(!obs_valid_request_id(""), "request id: empty refused");
	ok(!obs_valid_request_id("a b"), "request id: space refused");
	ok(!obs_valid_request_id("a*/--"), "request id: comment characters refused");
	ok(!obs_valid_request_id("x'y"), "request id: quote refused");
	memset(long_id, 'a', 64);
	long_id[64] = '\0';
	ok(obs_valid_request_id(long_id), "request id: 64 characters allowed");
	long_id[64] = 'a';
	long_id[65] = '\0';
	ok(!obs_valid_request_id(long_id), "request id: 65 characters refused");
}

static void
test_window_and_slow(void)
{
	ObsWindow w;
	json_t *slow, *shards = json_array();
	char *text;

	/* 100 requests: 1..100 ms, 5 of them 5xx, in an earlier second */
	for (int i = 1; i <= 100; i++)
		obs_request_done("r", "GET", "/v1/collections/c/search", i <= 5 ? 503 : 200, (double) i,
						 NULL, NULL);
	sleep(1);
	obs_window(&w);
	ok(w.requests == 100, "window: 100 requests (%ld)", w.requests);
	ok(w.errors == 5 && w.error_rate > 0.049 && w.error_rate < 0.051, "window: error rate 5%%");
	ok(w.p50_ms >= 50 && w.p50_ms <= 50 * 1.21, "window: p50 %.2f within 20%% of 50", w.p50_ms);
	ok(w.p99_ms >= 99 && w.p99_ms <= 99 * 1.21, "window: p99 %.2f within 20%% of 99", w.p99_ms);

	/* slow log: threshold 10 ms, ring of 3 keeps the 3 slowest */
	cf_slow_query_ms = 10;
	cf_slow_log_size = 3;
	json_array_append_new(shards, json_pack("{s:s,s:s,s:f}", "shard", "c1_s1", "node", "w1",
											"ms", 40.0));
	obs_request_done("s20", "POST", "/p", 200, 20, NULL, NULL);
	obs_request_done("s40", "POST", "/p", 200, 40, NULL, shards);
	obs_request_done("s5", "POST", "/p", 200, 5, NULL, NULL);
	obs_request_done("s30", "POST", "/p", 200, 30, NULL, NULL);
	obs_request_done("s10", "POST", "/p", 200, 10, NULL, NULL);
	obs_request_done("s50", "POST", "/p", 500, 50, "X", NULL);
	slow = obs_slow_json(10);
	ok(json_array_size(slow) == 3, "slow: ring keeps 3");
	ok(strcmp(json_string_value(json_object_get(json_array_get(slow, 0), "request_id")), "s50") == 0 &&
		   strcmp(json_string_value(json_object_get(json_array_get(slow, 1), "request_id")), "s40") == 0 &&
		   strcmp(json_string_value(json_object_get(json_array_get(slow, 2), "request_id")), "s30") == 0,
	   "slow: the slowest three, slowest first");
	ok(json_array_size(json_object_get(json_array_get(slow, 1), "shards")) == 1,
	   "slow: per-shard timings kept");
	json_decref(slow);
	slow = obs_slow_json(1);
	ok(json_array_size(slow) == 1, "slow: limit honoured");
	json_decref(slow);
	json_decref(shards);

	obs_points_upserted("c", 7);
	obs_search("c", 3);
	text = metrics_render(obs_registry());
	ok(text && strstr(text, "vectron_points_upserted_total{collection=\"c\"} 7\n"),
	   "metrics: points upserted");
	ok(text && strstr(text, "vectron_http_requests_total{method=\"GET\",route=\"/v1/collections/{name}/search\",status=\"503\"} 5\n"),
	   "metrics: requests by route and status");
	ok(text && strstr(text, "vectron_slow_requests_total 5\n"), "metrics: slow requests counted");
	free(text);
	obs_auth_failure("expired");
	obs_rate_limited();
	text = metrics_render(obs_registry());
	ok(text && strstr(text, "vectron_auth_failures_total{reason=\"expired\"} 1\n") &&
		   strstr(text, "vectron_rate_limited_total 1\n"),
	   "metrics: auth failures and rate limiting");
	free(text);
}

int
main(void)
{
	char err[256];

	config_set_defaults();
	log_configure("error", "text");
	if (!config_set("coordinator_id", "3", "test", false, err, sizeof(err)))
		return 2;
	obs_init();
	test_routes();
	test_request_ids();
	test_window_and_slow();
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}
