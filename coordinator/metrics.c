/*
 * metrics.c: the Prometheus registry of metrics.h.
 *
 * A registry is a list of families in registration order (the order they
 * are rendered in).  A family keeps its series in an array searched
 * linearly by label values: the coordinator's families have tens of
 * series, and rendering, not lookup, is the cost that matters.  A histogram
 * series stores per-bucket counts and makes them cumulative when rendered.
 * Numbers are printed in the shortest form that reads back exactly.
 */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
										  0.25, 0.5, 1, 2.5, 5, 10};
const int metrics_latency_nbuckets = (int) (sizeof(metrics_latency_buckets) / sizeof(double));

typedef struct Series {
	char **values;				/* nlabels strings */
	double value;				/* counter, gauge */
	double sum;					/* histogram */
	uint64_t count;
	uint64_t *buckets;			/* histogram: per bucket, not cumulative */
} Series;

struct Metric {
	struct Metric *next;
	MetricsRegistry *reg;
	MetricType type;
	char *name;
	char *help;
	int nlabels;
	char *labels[METRICS_MAX_LABELS];
	int nbuckets;
	double bounds[METRICS_MAX_BUCKETS];
	int nseries;
	int capseries;
	Series *series;
};

struct MetricsRegistry {
	Metric *head, *tail;
	double dropped;				/* series refused by the cardinality cap */
};

static void
set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
valid_name(const char *s, bool colon)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || (colon && c == ':')))
			return false;
	}
	return i < 200;
}

MetricsRegistry *
metrics_registry_new(void)
{
	return calloc(1, sizeof(MetricsRegistry));
}

static void
series_free(const Metric *m, Series *s)
{
	int i;

	for (i = 0; i < m->nlabels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->buckets);
}

void
metrics_registry_free(MetricsRegistry *r)
{
	Metric *m, *next;
	int i;

	if (r == NULL)
		return;
	for (m = r->head; m; m = next) {
		next = m->next;
		for (i = 0; i < m->nseries; i++)
			series_free(m, &m->series[i]);
		free(m->series);
		for (i = 0; i < m->nlabels; i++)
			free(m->labels[i]);
		free(m->name);
		free(m->help);
		free(m);
	}
	free(r);
}

static Series *find_series(Metric *m, const char *const *values, bool create);

static Metric *
add_family(MetricsRegistry *r, MetricType type, const char *name, const char *help, int nlabels,
		   const char *const *labels, const double *buckets, int nbuckets, char *err, size_t errlen)
{
	Metric *m, *o;
	int i, j;

	if (r == NULL || !valid_name(name, true)) {
		set_err(err, errlen, "bad metric name");
		return NULL;
	}
	for (o = r->head; o; o = o->next)
		if (strcmp(o->name, name) == 0) {
			set_err(err, errlen, "metric %s registered twice", name);
			return NULL;
		}
	if (nlabels < 0 || nlabels > METRICS_MAX_LABELS || (nlabels > 0 && labels == NULL)) {
		set_err(err, errlen, "%s: 0..%d labels", name, METRICS_MAX_LABELS);
		return NULL;
	}
	for (i = 0; i < nlabels; i++) {
		if (!valid_name(labels[i], false) || strncmp(labels[i], "__", 2) == 0 ||
			(type == METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0)) {
			set_err(err, errlen, "%s: bad label name", name);
			return NULL;
		}
		for (j = 0; j < i; j++)
			if (strcmp(labels[i], labels[j]) == 0) {
				set_err(err, errlen, "%s: label %s twice", name, labels[i]);
				return NULL;
			}
	}
	if (type == METRIC_HISTOGRAM) {
		if (nbuckets < 1 || nbuckets > METRICS_MAX_BUCKETS || buckets == NULL) {
			set_err(err, errlen, "%s: 1..%d buckets", name, METRICS_MAX_BUCKETS);
			return NULL;
		}
		for (i = 0; i < nbuckets; i++)
			if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
				set_err(err, errlen, "%s: buckets must be finite and increasing", name);
				return NULL;
			}
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	m->reg = r;
	m->type = type;
	m->name = strdup(name);
	m->help = strdup(help ? help : "");
	m->nlabels = nlabels;
	for (i = 0; i < nlabels; i++)
		m->labels[i] = strdup(labels[i]);
	if (type == METRIC_HISTOGRAM) {
		m->nbuckets = nbuckets;
		memcpy(m->bounds, buckets, (size_t) nbuckets * sizeof(double));
	}
	if (r->tail)
		r->tail->next = m;
	else
		r->head = m;
	r->tail = m;
	/* a family without labels shows its zero from the start */
	if (nlabels == 0)
		(void) find_series(m, NULL, true);
	return m;
}

Metric *
metrics_counter(MetricsRegistry *r, const char *name, const char *help, int nlabels,
				const char *const *labels, char *err, size_t errlen)
{
	return add_family(r, METRIC_COUNTER, name, help, nlabels, labels, NULL, 0, err, errlen);
}

Metric *
metrics_gauge(MetricsRegistry *r, const char *name, const char *help, int nlabels,
			  const char *const *labels, char *err, size_t errlen)
{
	return add_family(r, METRIC_GAUGE, name, help, nlabels, labels, NULL, 0, err, errlen);
}

Metric *
metrics_histogram(MetricsRegistry *r, const char *name, const char *help, int nlabels,
				  const char *const *labels, const double *buckets, int nbuckets, char *err,
				  size_t errlen)
{
	return add_family(r, METRIC_HISTOGRAM, name, help, nlabels, labels, buckets, nbuckets, err,
					  errlen);
}

/* The series with these label values; created if asked and room is left. */
static Series *
find_series(Metric *m, const char *const *values, bool create)
{
	Series *s;
	int i, j;

	if (m->nlabels > 0 && values == NULL)
		return NULL;			/* a labelled family needs its values */
	for (i = 0; i < m->nseries; i++) {
		for (j = 0; j < m->nlabels; j++)
			if (strcmp(m->series[i].values[j], values[j] ? values[j] : "") != 0)
				break;
		if (j == m->nlabels)
			return &m->series[i];
	}
	if (!create)
		return NULL;
	if (m->nseries >= METRICS_MAX_SERIES) {
		m->reg->dropped += 1;
		return NULL;
	}
	if (m->nseries == m->capseries) {
		int ncap = m->capseries ? m->capseries * 2 : 8;
		Series *ns = realloc(m->series, (size_t) ncap * sizeof(Series));

		if (ns == NULL)
			return NULL;
		m->series = ns;
		m->capseries = ncap;
	}
	s = &m->series[m->nseries];
	memset(s, 0, sizeof(*s));
	s->values = calloc((size_t) (m->nlabels ? m->nlabels : 1), sizeof(char *));
	if (s->values == NULL)
		return NULL;
	for (j = 0; j < m->nlabels; j++)
		s->values[j] = strdup(values[j] ? values[j] : "");
	if (m->type == METRIC_HISTOGRAM) {
		s->buckets = calloc((size_t) m->nbuckets, sizeof(uint64_t));
		if (s->buckets == NULL) {
			series_free(m, s);
			return NULL;
		}
	}
	m->nseries++;
	return s;
}

void
metrics_inc(Metric *m, const char *const *values, double v)
{
	Series *s;

	if (m == NULL || m->type == METRIC_HISTOGRAM || !(v >= 0 || m->type == METRIC_GAUGE) || isnan(v))
		return;
	s = find_series(m, values, true);
	if (s)
		s->value += v;
}

void
metrics_set(Metric *m, const char *const *values, double v)
{
	Series *s;

	if (m == NULL || m->type != METRIC_GAUGE)
		return;
	s = find_series(m, values, true);
	if (s)
		s->value = v;
}

void
metrics_observe(Metric *m, const char *const *values, double v)
{
	Series *s;
	int i;

	if (m == NULL || m->type != METRIC_HISTOGRAM || isnan(v))
		return;
	s = find_series(m, values, true);
	if (s == NULL)
		return;
	s->sum += v;
	s->count++;
	for (i = 0; i < m->nbuckets; i++)
		if (v <= m->bounds[i]) {
			s->buckets[i]++;
			break;
		}
}

double
metrics_value(const Metric *m, const char *const *values)
{
	Series *s = m ? find_series((Metric *) m, values, false) : NULL;

	if (s == NULL)
		return 0;
	return m->type == METRIC_HISTOGRAM ? (double) s->count : s->value;
}

/* --- rendering ------------------------------------------------------------ */

typedef struct Buf {
	char *data;
	size_t len, cap;
	bool oom;
} Buf;

static void
buf_put(Buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		char *nd;

		while (b->len + n + 1 > ncap)
			ncap *= 2;
		nd = realloc(b->data, ncap);
		if (nd == NULL) {
			b->oom = true;
			return;
		}
		b->data = nd;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_str(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* Text with \ and newline escaped, and " too when quote is set. */
static void
buf_escaped(Buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_str(b, "\\\\");
		else if (*s == '\n')
			buf_str(b, "\\n");
		else if (quote && *s == '"')
			buf_str(b, "\\\"");
		else
			buf_put(b, s, 1);
	}
}

/* The shortest decimal that reads back as v; +Inf, -Inf, NaN. */
static void
buf_number(Buf *b, double v)
{
	char tmp[40];
	int prec;

	if (isnan(v)) {
		buf_str(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_str(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(tmp, sizeof(tmp), "%.0f", v);
		buf_str(b, tmp);
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	buf_str(b, tmp);
}

/* {a="x",b="y"[,le="..."]}, or nothing when there are no labels. */
static void
buf_labels(Buf *b, const Metric *m, const Series *s, const char *le)
{
	int i;

	if (m->nlabels == 0 && le == NULL)
		return;
	buf_str(b, "{");
	for (i = 0; i < m->nlabels; i++) {
		if (i > 0)
			buf_str(b, ",");
		buf_str(b, m->labels[i]);
		buf_str(b, "=\"");
		buf_escaped(b, s->values[i], true);
		buf_str(b, "\"");
	}
	if (le) {
		if (m->nlabels > 0)
			buf_str(b, ",");
		buf_str(b, "le=\"");
		buf_str(b, le);
		buf_str(b, "\"");
	}
	buf_str(b, "}");
}

static void
render_family(Buf *b, const Metric *m)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	int i, k;

	buf_str(b, "# HELP ");
	buf_str(b, m->name);
	buf_str(b, " ");
	buf_escaped(b, m->help, false);
	buf_str(b, "\n# TYPE ");
	buf_str(b, m->name);
	buf_str(b, " ");
	buf_str(b, types[m->type]);
	buf_str(b, "\n");
	for (i = 0; i < m->nseries; i++) {
		const Series *s = &m->series[i];

		if (m->type != METRIC_HISTOGRAM) {
			buf_str(b, m->name);
			buf_labels(b, m, s, NULL);
			buf_str(b, " ");
			buf_number(b, s->value);
			buf_str(b, "\n");
			continue;
		}
		{
			uint64_t cum = 0;
			char le[40];
			Buf tmp = {0};

			for (k = 0; k <= m->nbuckets; k++) {
				if (k < m->nbuckets) {
					cum += s->buckets[k];
					tmp.len = 0;
					buf_number(&tmp, m->bounds[k]);
					snprintf(le, sizeof(le), "%s", tmp.data ? tmp.data : "0");
				} else {
					cum = s->count;
					snprintf(le, sizeof(le), "+Inf");
				}
				buf_str(b, m->name);
				buf_str(b, "_bucket");
				buf_labels(b, m, s, le);
				buf_str(b, " ");
				buf_number(b, (double) cum);
				buf_str(b, "\n");
			}
			free(tmp.data);
			buf_str(b, m->name);
			buf_str(b, "_sum");
			buf_labels(b, m, s, NULL);
			buf_str(b, " ");
			buf_number(b, s->sum);
			buf_str(b, "\n");
			buf_str(b, m->name);
			buf_str(b, "_count");
			buf_labels(b, m, s, NULL);
			buf_str(b, " ");
			buf_number(b, (double) s->count);
			buf_str(b, "\n");
		}
	}
}

char *
metrics_render(const MetricsRegistry *r)
{
	Buf b = {0};
	const Metric *m;

	for (m = r->head; m; m = m->next)
		render_family(&b, m);
	buf_str(&b, "# HELP vectron_metrics_dropped_series_total Series not recorded because a family "
			"reached its series limit.\n# TYPE vectron_metrics_dropped_series_total counter\n"
			"vectron_metrics_dropped_series_total ");
	buf_number(&b, r->dropped);
	buf_str(&b, "\n");
	if (b.oom) {
		free(b.data);
		return NULL;
	}
	return b.data;
}
