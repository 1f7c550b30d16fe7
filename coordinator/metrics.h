/*
 * metrics.h: a small Prometheus registry: counters, gauges and histograms
 * with labels, rendered in the text exposition format (version 0.0.4) for
 * GET /metrics.
 *
 * A family is registered once, at start-up, with its label names; a series
 * (one combination of label values) is created on first use.  Each family
 * holds at most METRICS_MAX_SERIES series, so a label fed from client input
 * cannot grow memory without bound: further series are dropped and counted
 * in vectron_metrics_dropped_series_total.  Not thread-safe: the
 * coordinator updates and renders from its event loop only.
 */
#ifndef VX_METRICS_H
#define VX_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#define METRICS_WARN_UNUSED __attribute__((warn_unused_result))
#define METRICS_MAX_LABELS 8
#define METRICS_MAX_SERIES 2000
#define METRICS_MAX_BUCKETS 32

/* A label-value list literal: METRICS_LABELS("GET", "200"). */
#define METRICS_LABELS(...) ((const char *const[]){__VA_ARGS__})

typedef enum MetricType {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM
} MetricType;

typedef struct MetricsRegistry MetricsRegistry;
typedef struct Metric Metric;

/* Request latency buckets in seconds, 1 ms to 10 s. */
extern const double metrics_latency_buckets[];
extern const int metrics_latency_nbuckets;

MetricsRegistry *metrics_registry_new(void) METRICS_WARN_UNUSED;
void metrics_registry_free(MetricsRegistry *r);

/*
 * Register a family.  name matches [a-zA-Z_:][a-zA-Z0-9_:]* (counters
 * should end in _total), label names [a-zA-Z_][a-zA-Z0-9_]* without a
 * leading "__" (and not "le" for histograms).  Histogram buckets are
 * finite and strictly increasing; +Inf is implied.  NULL, with err filled,
 * on a bad or duplicate name.  The registry owns the family.
 */
Metric *metrics_counter(MetricsRegistry *r, const char *name, const char *help, int nlabels,
						const char *const *labels, char *err, size_t errlen) METRICS_WARN_UNUSED;
Metric *metrics_gauge(MetricsRegistry *r, const char *name, const char *help, int nlabels,
					  const char *const *labels, char *err, size_t errlen) METRICS_WARN_UNUSED;
Metric *metrics_histogram(MetricsRegistry *r, const char *name, const char *help, int nlabels,
						  const char *const *labels, const double *buckets, int nbuckets,
						  char *err, size_t errlen) METRICS_WARN_UNUSED;

/*
 * Update the series with these label values (nlabels of them; NULL when the
 * family has none).  Counters only go up: inc with v < 0 or NaN is
 * ignored.  set is for gauges, observe for histograms; a call of the wrong
 * kind is ignored.
 */
void metrics_inc(Metric *m, const char *const *values, double v);
void metrics_set(Metric *m, const char *const *values, double v);
void metrics_observe(Metric *m, const char *const *values, double v);

/* The current value (counter, gauge) or count (histogram); 0 if absent. */
double metrics_value(const Metric *m, const char *const *values);

/* The whole registry in the text format, malloc'd; NULL if out of memory. */
char *metrics_render(const MetricsRegistry *r) METRICS_WARN_UNUSED;

/* The Content-Type to serve it with. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
