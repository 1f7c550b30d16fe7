/*
 * test_metrics.c: unit tests of coordinator/metrics.c: the exact text of a
 * small registry, escaping, histogram buckets, the series cap, refused
 * names, and `promtool check metrics` on a sample of the coordinator's
 * families when promtool is installed (Debian package prometheus).
 *
 *   test_metrics            run the checks
 *   test_metrics --sample   print the sample exposition
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "tap.h"

/* A registry shaped like the coordinator's (issue 6, Observability). */
static MetricsRegistry *
sample(void)
{
	MetricsRegistry *r = metrics_registry_new();
	char err[200];
	Metric *req, *lat, *fan, *inuse, *authf, *rl, *build, *pts;

	req = metrics_counter(r, "vectron_http_requests_total", "HTTP requests by route and status.",
						  3, METRICS_LABELS("method", "route", "status"), err, sizeof(err));
	lat = metrics_histogram(r, "vectron_http_request_duration_seconds", "HTTP request latency.",
							2, METRICS_LABELS("method", "route"), metrics_latency_buckets,
							metrics_latency_nbuckets, err, sizeof(err));
	fan = metrics_histogram(r, "vectron_fanout_shard_duration_seconds", "Per-shard fan-out latency.",
							1, METRICS_LABELS("node"), metrics_latency_buckets,
							metrics_latency_nbuckets, err, sizeof(err));
	inuse = metrics_gauge(r, "vectron_worker_pool_connections", "Worker connections by state.",
						  2, METRICS_LABELS("node", "state"), err, sizeof(err));
	authf = metrics_counter(r, "vectron_auth_failures_total", "Authentication failures by reason.",
							1, METRICS_LABELS("reason"), err, sizeof(err));
	rl = metrics_counter(r, "vectron_rate_limited_total", "Requests answered 429.", 1,
						 METRICS_LABELS("limit"), err, sizeof(err));
	pts = metrics_counter(r, "vectron_points_upserted_total", "Points upserted.", 0, NULL, err,
						  sizeof(err));
	build = metrics_gauge(r, "vectron_build_info", "Build information.", 2,
						  METRICS_LABELS("version", "commit"), err, sizeof(err));
	metrics_inc(req, METRICS_LABELS("POST", "/v1/collections/{name}/search", "200"), 41);
	metrics_inc(req, METRICS_LABELS("POST", "/v1/collections/{name}/search", "401"), 2);
	metrics_inc(req, METRICS_LABELS("GET", "/healthz", "200"), 1);
	metrics_observe(lat, METRICS_LABELS("POST", "/v1/collections/{name}/search"), 0.0042);
	metrics_observe(lat, METRICS_LABELS("POST", "/v1/collections/{name}/search"), 0.3);
	metrics_observe(lat, METRICS_LABELS("POST", "/v1/collections/{name}/search"), 12);
	metrics_observe(fan, METRICS_LABELS("w1"), 0.002);
	metrics_set(inuse, METRICS_LABELS("w1", "in_use"), 3);
	metrics_set(inuse, METRICS_LABELS("w1", "idle"), 5);
	metrics_inc(authf, METRICS_LABELS("token expired"), 1);
	metrics_inc(authf, METRICS_LABELS("bad \"quoted\"\\ reason\nsecond line"), 1);
	metrics_inc(rl, METRICS_LABELS("ip"), 7);
	metrics_inc(pts, NULL, 1e6);
	metrics_set(build, METRICS_LABELS("1.0", "abc123"), 1);
	return r;
}

int
main(int argc, char **argv)
{
	MetricsRegistry *r;
	char err[200];
	char *text;
	Metric *c, *g, *h;

	if (argc > 1 && strcmp(argv[1], "--sample") == 0) {
		r = sample();
		text = metrics_render(r);
		fputs(text, stdout);
		free(text);
		metrics_registry_free(r);
		return 0;
	}

	/* exact text of a small registry */
	r = metrics_registry_new();
	c = metrics_counter(r, "t_requests_total", "Requests.", 1, METRICS_LABELS("code"), err, sizeof(err));
	g = metrics_gauge(r, "t_temp", "Temp with \\ and\nnewline.", 0, NULL, err, sizeof(err));
	h = metrics_histogram(r, "t_lat_seconds", "Latency.", 1, METRICS_LABELS("op"),
						  (const double[]) {0.1, 0.5, 1}, 3, err, sizeof(err));
	ok(c && g && h, "register a counter, a gauge and a histogram");
	metrics_inc(c, METRICS_LABELS("200"), 3);
	metrics_inc(c, METRICS_LABELS("200"), 1);
	metrics_inc(c, METRICS_LABELS("500"), 1);
	metrics_inc(c, METRICS_LABELS("500"), -5);
	metrics_inc(c, METRICS_LABELS("500"), NAN);
	metrics_set(g, NULL, -2.5);
	metrics_observe(h, METRICS_LABELS("get"), 0.05);
	metrics_observe(h, METRICS_LABELS("get"), 0.1);
	metrics_observe(h, METRICS_LABELS("get"), 0.7);
	metrics_observe(h, METRICS_LABELS("get"), 3);
	metrics_set(c, METRICS_LABELS("200"), 0);
	metrics_observe(c, METRICS_LABELS("200"), 1);
	ok(metrics_value(c, METRICS_LABELS("200")) == 4 && metrics_value(c, METRICS_LABELS("500")) == 1,
	   "counters add, ignore negative, NaN, set and observe");
	ok(metrics_value(g, NULL) == -2.5 && metrics_value(h, METRICS_LABELS("get")) == 4,
	   "gauge value and histogram count");
	ok(metrics_value(c, METRICS_LABELS("404")) == 0, "absent series reads 0");
	metrics_inc(c, NULL, 1);
	ok(metrics_value(c, NULL) == 0, "a labelled family ignores updates without label values");
	text = metrics_render(r);
	{
		const char *want =
			"# HELP t_requests_total Requests.\n"
			"# TYPE t_requests_total counter\n"
			"t_requests_total{code=\"200\"} 4\n"
			"t_requests_total{code=\"500\"} 1\n"
			"# HELP t_temp Temp with \\\\ and\\nnewline.\n"
			"# TYPE t_temp gauge\n"
			"t_temp -2.5\n"
			"# HELP t_lat_seconds Latency.\n"
			"# TYPE t_lat_seconds histogram\n"
			"t_lat_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
			"t_lat_seconds_bucket{op=\"get\",le=\"0.5\"} 2\n"
			"t_lat_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
			"t_lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
			"t_lat_seconds_sum{op=\"get\"} 3.85\n"
			"t_lat_seconds_count{op=\"get\"} 4\n"
			"# HELP vectron_metrics_dropped_series_total Series not recorded because a family reached its series limit.\n"
			"# TYPE vectron_metrics_dropped_series_total counter\n"
			"vectron_metrics_dropped_series_total 0\n";

		ok(text && strcmp(text, want) == 0, "exact exposition text");
		if (text && strcmp(text, want) != 0)
			printf("# got:\n%s", text);
	}
	free(text);

	/* refused registrations */
	ok(metrics_counter(r, "t_requests_total", "dup", 0, NULL, err, sizeof(err)) == NULL, "duplicate name");
	ok(metrics_counter(r, "9bad", "x", 0, NULL, err, sizeof(err)) == NULL, "name starting with a digit");
	ok(metrics_counter(r, "bad-name", "x", 0, NULL, err, sizeof(err)) == NULL, "name with a dash");
	ok(metrics_counter(r, "ok_total", "x", 1, METRICS_LABELS("__reserved"), err, sizeof(err)) == NULL,
	   "label starting with __");
	ok(metrics_counter(r, "ok_total", "x", 1, METRICS_LABELS("a:b"), err, sizeof(err)) == NULL,
	   "label with a colon");
	ok(metrics_counter(r, "ok_total", "x", 2, METRICS_LABELS("a", "a"), err, sizeof(err)) == NULL,
	   "label twice");
	ok(metrics_histogram(r, "h1", "x", 1, METRICS_LABELS("le"), (const double[]) {1}, 1, err, sizeof(err)) == NULL,
	   "histogram label le");
	ok(metrics_histogram(r, "h2", "x", 0, NULL, (const double[]) {1, 1}, 2, err, sizeof(err)) == NULL,
	   "histogram buckets not increasing");
	ok(metrics_histogram(r, "h3", "x", 0, NULL, (const double[]) {INFINITY}, 1, err, sizeof(err)) == NULL,
	   "histogram bucket +Inf given");
	ok(metrics_counter(r, "ns:sub_total", "x", 0, NULL, err, sizeof(err)) != NULL, "colon in a metric name");

	/* cardinality cap */
	{
		Metric *many = metrics_counter(r, "t_many_total", "x", 1, METRICS_LABELS("id"), err, sizeof(err));
		int i;
		char id[32];

		for (i = 0; i < METRICS_MAX_SERIES + 500; i++) {
			snprintf(id, sizeof(id), "client-%d", i);
			metrics_inc(many, METRICS_LABELS(id), 1);
		}
		text = metrics_render(r);
		ok(text && strstr(text, "client-1999\"") && !strstr(text, "client-2000\""),
		   "a family keeps at most %d series", METRICS_MAX_SERIES);
		ok(text && strstr(text, "vectron_metrics_dropped_series_total 500\n"), "dropped series are counted");
		free(text);
	}
	metrics_registry_free(r);

	/* number formatting */
	r = metrics_registry_new();
	g = metrics_gauge(r, "t_num", "x", 1, METRICS_LABELS("v"), err, sizeof(err));
	metrics_set(g, METRICS_LABELS("a"), 0.1);
	metrics_set(g, METRICS_LABELS("b"), 1e21);
	metrics_set(g, METRICS_LABELS("c"), INFINITY);
	metrics_set(g, METRICS_LABELS("d"), NAN);
	metrics_set(g, METRICS_LABELS("e"), 123456789012.0);
	metrics_set(g, METRICS_LABELS("f"), 1.0 / 3);
	text = metrics_render(r);
	ok(strstr(text, "t_num{v=\"a\"} 0.1\n") && strstr(text, "t_num{v=\"b\"} 1e+21\n") &&
	   strstr(text, "t_num{v=\"c\"} +Inf\n") && strstr(text, "t_num{v=\"d\"} NaN\n") &&
	   strstr(text, "t_num{v=\"e\"} 123456789012\n") && strstr(text, "t_num{v=\"f\"} 0.3333333333333333\n"),
	   "numbers: shortest exact form, +Inf, NaN");
	free(text);
	metrics_registry_free(r);

	/* the sample, escaping, and promtool */
	r = sample();
	text = metrics_render(r);
	ok(text && strstr(text, "vectron_auth_failures_total{reason=\"bad \\\"quoted\\\"\\\\ reason\\nsecond line\"} 1\n"),
	   "label values escape quote, backslash and newline");
	ok(text && strstr(text, "vectron_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/collections/{name}/search\",le=\"0.005\"} 1\n") &&
	   strstr(text, "le=\"+Inf\"} 3\n") && strstr(text, "vectron_points_upserted_total 1000000\n"),
	   "sample: buckets and a label-less counter");
	{
		char path[] = "/tmp/vx-metrics-XXXXXX";
		int fd = mkstemp(path);
		char cmd[400];
		int rc;

		if (write(fd, text, strlen(text)) != (ssize_t) strlen(text))
			printf("# write failed\n");
		close(fd);
		if (system("command -v promtool >/dev/null 2>&1") != 0)
			printf("ok %d - # SKIP promtool not installed\n", ++tap_n);
		else {
			snprintf(cmd, sizeof(cmd), "bash -c 'promtool check metrics < %s 2>&1 | sed \"s/^/# promtool: /\"; exit ${PIPESTATUS[0]}'", path);
			rc = system(cmd);
			ok(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "promtool check metrics accepts the sample");
		}
		unlink(path);
	}
	free(text);
	metrics_registry_free(r);
	return tap_done();
}
