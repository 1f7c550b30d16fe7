/*
 * ann_client.c
 *	  The timed part of the ANN benchmark: loads a data set into one
 *	  database, builds an HNSW index, and runs the queries one at a time
 *	  through a libpq prepared statement at each hnsw.ef_search, reporting
 *	  build seconds, index size, QPS, recall@k and latency percentiles.
 *
 * bench/ann (the driver) starts the PostgreSQL instance, installs the
 * engines and prepares the query and ground-truth files with bench/vdata;
 * this program does one engine in one database, so that the client side of
 * the timed loop is a tight C loop and never the bottleneck.  It speaks to
 * vectron and pgvector alike: both define the same type, operators, opclass
 * names and GUCs, and only the extension name differs.
 *
 * Results go to stdout as a markdown table, and as "key=value" lines to the
 * --tsv file for the driver to compare engines.
 *
 *   ann_client --conn CONNINFO --extension vectron|vector --engine NAME
 *              --base-cmd "bench/vdata ... --format copybin" --dim D
 *              --queries FILE --truth FILE --vdata PATH [--k 10]
 *              [--ef 10,20,40,80,160] [--m 16] [--ef-construction 64]
 *              [--metric l2|ip|cosine] [--workers 1] [--no-index]
 *              [--tsv FILE] [--results-dir DIR] [--reuse] [--force-index]
 *              [--runs 3]
 *
 * Each ef_search gets --runs timed passes over all queries; the fastest
 * pass gives QPS and latencies (other load on a shared machine only ever
 * slows a pass down), and the first gives the results scored for recall.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <libpq-fe.h>

#define MAX_EF 32

/* Everything the command line sets. */
typedef struct Options
{
	const char *conninfo;
	const char *extension;
	const char *engine;
	const char *base_cmd;
	const char *queries_path;
	const char *truth_path;
	const char *vdata;
	const char *tsv_path;
	const char *results_dir;
	const char *metric;
	int			dim;
	int			k;
	int			m;
	int			ef_construction;
	int			workers;
	int			ef[MAX_EF];
	int			nef;
	bool		no_index;
	bool		reuse;
	bool		force_index;	/* enable_seqscan = off */
	int			runs;			/* timed passes per ef_search; the fastest counts */
} Options;

static PGconn *conn;
static FILE *tsv;

/* Print an error and exit 1. */
static void
die(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "ann_client: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Run a command that returns no rows; die with the server's message. */
static void
exec_ok(const char *sql)
{
	PGresult   *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die("%s\n  failed: %s", sql, PQerrorMessage(conn));
	PQclear(r);
}

/* Run a query returning one value; return it malloc'd (die on error). */
static char *
query_value(const char *sql)
{
	PGresult   *r = PQexec(conn, sql);
	char	   *v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
		die("%s\n  failed: %s", sql, PQerrorMessage(conn));
	v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* Stream the output of base_cmd (a binary COPY stream) into the table. */
static void
load_table(const Options *o)
{
	FILE	   *p;
	char	   *buf = malloc(1 << 20);
	size_t		got;
	PGresult   *r;
	int			st;

	r = PQexec(conn, "COPY items (id, label, v) FROM STDIN (FORMAT binary)");
	if (PQresultStatus(r) != PGRES_COPY_IN)
		die("COPY failed: %s", PQerrorMessage(conn));
	PQclear(r);
	p = popen(o->base_cmd, "r");
	if (p == NULL)
		die("cannot run %s: %s", o->base_cmd, strerror(errno));
	while ((got = fread(buf, 1, 1 << 20, p)) > 0)
		if (PQputCopyData(conn, buf, (int) got) != 1)
			die("COPY data: %s", PQerrorMessage(conn));
	st = pclose(p);
	if (st != 0)
	{
		PQputCopyEnd(conn, "data command failed");
		PQclear(PQgetResult(conn));
		die("\"%s\" failed (status %d)", o->base_cmd, st);
	}
	if (PQputCopyEnd(conn, NULL) != 1)
		die("COPY end: %s", PQerrorMessage(conn));
	r = PQgetResult(conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("COPY failed: %s", PQerrorMessage(conn));
	PQclear(r);
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	free(buf);
}

/* Read the query vector literals, one per line. */
static char **
read_queries(const char *path, int *nq)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	int			n = 0,
				alloc = 1024;
	char	  **q = malloc(sizeof(char *) * alloc);

	if (f == NULL)
		die("cannot open %s: %s", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) != -1)
	{
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (n == alloc)
			q = realloc(q, sizeof(char *) * (alloc *= 2));
		q[n++] = strdup(line);
	}
	free(line);
	fclose(f);
	if (n == 0)
		die("%s: no queries", path);
	*nq = n;
	return q;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* Percentile p (0..1) of a sorted array, nearest rank. */
static double
percentile(const double *sorted, int n, double p)
{
	int			i = (int) (p * n + 0.999999) - 1;

	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return sorted[i];
}

/* Recall of a results file against the truth, by running vdata recall. */
static double
recall_of(const Options *o, const char *results_path)
{
	char		cmd[8192];
	FILE	   *p;
	double		r = -1;

	snprintf(cmd, sizeof(cmd), "'%s' recall --truth '%s' --results '%s' --k %d",
			 o->vdata, o->truth_path, results_path, o->k);
	p = popen(cmd, "r");
	if (p == NULL || fscanf(p, "%lf", &r) != 1)
		die("cannot compute recall with: %s", cmd);
	if (pclose(p) != 0)
		die("recall failed: %s", cmd);
	return r;
}

/* One timed pass of all queries; fills lat (seconds) and writes results. */
static double
run_pass(char **queries, int nq, double *lat, const char *results_path)
{
	FILE	   *rf = results_path ? fopen(results_path, "w") : NULL;
	double		t_start = now_sec();

	if (results_path && rf == NULL)
		die("cannot write %s: %s", results_path, strerror(errno));
	for (int i = 0; i < nq; i++)
	{
		const char *vals[1] = {queries[i]};
		double		t0 = now_sec();
		PGresult   *r = PQexecPrepared(conn, "knn", 1, vals, NULL, NULL, 0);
		double		t1 = now_sec();

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("query %d failed: %s", i, PQerrorMessage(conn));
		if (lat)
			lat[i] = t1 - t0;
		if (rf)
		{
			fprintf(rf, "%d\t", i);
			for (int j = 0; j < PQntuples(r); j++)
				fprintf(rf, "%s%s", j ? "," : "", PQgetvalue(r, j, 0));
			fputc('\n', rf);
		}
		PQclear(r);
	}
	if (rf)
		fclose(rf);
	return now_sec() - t_start;
}

/* Print the server settings that matter, for the record. */
static void
print_settings(const Options *o)
{
	static const char *const names[] = {
		"server_version", "shared_buffers", "maintenance_work_mem", "work_mem",
		"max_parallel_maintenance_workers", "max_parallel_workers",
		"max_worker_processes", "effective_cache_size", "jit", "fsync"
	};

	printf("settings (%s):", o->engine);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		char		sql[128];
		char	   *v;

		snprintf(sql, sizeof(sql), "SHOW %s", names[i]);
		v = query_value(sql);
		printf(" %s=%s", names[i], v);
		if (tsv)
			fprintf(tsv, "engine=%s setting=%s value=%s\n", o->engine, names[i], v);
		free(v);
	}
	printf("\n");
}

/* Parse "10,20,40" into o->ef. */
static void
parse_ef_list(Options *o, const char *s)
{
	char	   *end;

	o->nef = 0;
	while (*s)
	{
		long		v = strtol(s, &end, 10);

		if (end == s || v < 1 || v > 1000 || o->nef == MAX_EF)
			die("bad --ef list \"%s\"", s);
		o->ef[o->nef++] = (int) v;
		s = end;
		if (*s == ',')
			s++;
	}
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: ann_client --conn CONNINFO --extension vectron|vector --engine NAME\n"
			"         --base-cmd CMD --dim D --queries FILE --truth FILE --vdata PATH\n"
			"         [--k 10] [--ef 10,20,40,80,160] [--m 16] [--ef-construction 64]\n"
			"         [--metric l2|ip|cosine] [--workers 1] [--no-index] [--reuse]\n"
			"         [--force-index] [--runs 3]\n"
			"         [--tsv FILE] [--results-dir DIR]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	enum
	{
		O_CONN = 1000, O_EXT, O_ENGINE, O_BASE, O_DIM, O_QUERIES, O_TRUTH, O_VDATA,
		O_K, O_EF, O_M, O_EFC, O_METRIC, O_WORKERS, O_NOINDEX, O_TSV, O_RESDIR, O_REUSE,
		O_FORCE, O_RUNS
	};
	static const struct option opts[] = {
		{"conn", required_argument, NULL, O_CONN},
		{"extension", required_argument, NULL, O_EXT},
		{"engine", required_argument, NULL, O_ENGINE},
		{"base-cmd", required_argument, NULL, O_BASE},
		{"dim", required_argument, NULL, O_DIM},
		{"queries", required_argument, NULL, O_QUERIES},
		{"truth", required_argument, NULL, O_TRUTH},
		{"vdata", required_argument, NULL, O_VDATA},
		{"k", required_argument, NULL, O_K},
		{"ef", required_argument, NULL, O_EF},
		{"m", required_argument, NULL, O_M},
		{"ef-construction", required_argument, NULL, O_EFC},
		{"metric", required_argument, NULL, O_METRIC},
		{"workers", required_argument, NULL, O_WORKERS},
		{"no-index", no_argument, NULL, O_NOINDEX},
		{"tsv", required_argument, NULL, O_TSV},
		{"results-dir", required_argument, NULL, O_RESDIR},
		{"reuse", no_argument, NULL, O_REUSE},
		{"force-index", no_argument, NULL, O_FORCE},
		{"runs", required_argument, NULL, O_RUNS},
		{NULL, 0, NULL, 0}
	};
	Options		o;
	int			c,
				nq;
	char	  **queries;
	double	   *lat,
			   *lat2;
	char		sql[1024];
	const char *opclass,
			   *op;
	double		t0,
				load_s = 0,
				build_s = 0,
				index_mb = 0,
				table_mb;
	char	   *v;

	memset(&o, 0, sizeof(o));
	o.k = 10;
	o.m = 16;
	o.ef_construction = 64;
	o.workers = 1;
	o.runs = 3;
	o.metric = "l2";
	parse_ef_list(&o, "10,20,40,80,160");
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
	{
		switch (c)
		{
			case O_CONN: o.conninfo = optarg; break;
			case O_EXT: o.extension = optarg; break;
			case O_ENGINE: o.engine = optarg; break;
			case O_BASE: o.base_cmd = optarg; break;
			case O_DIM: o.dim = atoi(optarg); break;
			case O_QUERIES: o.queries_path = optarg; break;
			case O_TRUTH: o.truth_path = optarg; break;
			case O_VDATA: o.vdata = optarg; break;
			case O_K: o.k = atoi(optarg); break;
			case O_EF: parse_ef_list(&o, optarg); break;
			case O_M: o.m = atoi(optarg); break;
			case O_EFC: o.ef_construction = atoi(optarg); break;
			case O_METRIC: o.metric = optarg; break;
			case O_WORKERS: o.workers = atoi(optarg); break;
			case O_NOINDEX: o.no_index = true; break;
			case O_TSV: o.tsv_path = optarg; break;
			case O_RESDIR: o.results_dir = optarg; break;
			case O_REUSE: o.reuse = true; break;
			case O_FORCE: o.force_index = true; break;
			case O_RUNS: o.runs = atoi(optarg); break;
			default: usage();
		}
	}
	if (!o.conninfo || !o.extension || !o.engine || !o.base_cmd || o.dim <= 0 ||
		!o.queries_path || !o.truth_path || !o.vdata || o.k < 1 || o.runs < 1)
		usage();
	if (strcmp(o.metric, "l2") == 0)
		opclass = "vector_l2_ops", op = "<->";
	else if (strcmp(o.metric, "ip") == 0)
		opclass = "vector_ip_ops", op = "<#>";
	else if (strcmp(o.metric, "cosine") == 0)
		opclass = "vector_cosine_ops", op = "<=>";
	else
		die("--metric must be l2, ip or cosine");

	if (o.tsv_path && (tsv = fopen(o.tsv_path, "a")) == NULL)
		die("cannot write %s: %s", o.tsv_path, strerror(errno));
	setvbuf(stdout, NULL, _IOLBF, 0);

	conn = PQconnectdb(o.conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		die("cannot connect (%s): %s", o.conninfo, PQerrorMessage(conn));
	exec_ok("SET client_min_messages = warning");
	snprintf(sql, sizeof(sql), "CREATE EXTENSION IF NOT EXISTS %s", o.extension);
	exec_ok(sql);
	snprintf(sql, sizeof(sql), "SELECT extversion FROM pg_extension WHERE extname = '%s'", o.extension);
	v = query_value(sql);
	printf("engine %s: extension %s %s\n", o.engine, o.extension, v);
	if (tsv)
		fprintf(tsv, "engine=%s extension=%s version=%s\n", o.engine, o.extension, v);
	free(v);

	/* the pinned build settings: the same for every engine */
	exec_ok("SET maintenance_work_mem = '1GB'");
	snprintf(sql, sizeof(sql), "SET max_parallel_maintenance_workers = %d", o.workers);
	exec_ok(sql);
	exec_ok("SET jit = off");
	print_settings(&o);

	/* load */
	v = query_value("SELECT count(*) FROM pg_class WHERE relname = 'items' AND relkind = 'r'");
	if (o.reuse && strcmp(v, "1") == 0)
		printf("  reusing the loaded table\n");
	else
	{
		exec_ok("DROP TABLE IF EXISTS items");
		snprintf(sql, sizeof(sql), "CREATE TABLE items (id int4, label int4, v vector(%d))", o.dim);
		exec_ok(sql);
		t0 = now_sec();
		load_table(&o);
		exec_ok("VACUUM (ANALYZE) items");
		load_s = now_sec() - t0;
	}
	free(v);
	v = query_value("SELECT count(*) FROM items");
	table_mb = atof(query_value("SELECT pg_total_relation_size('items') / 1048576.0"));
	printf("  table: %s rows, %.1f MB, loaded in %.1f s\n", v, table_mb, load_s);
	if (tsv)
		fprintf(tsv, "engine=%s rows=%s table_mb=%.1f load_s=%.2f\n", o.engine, v, table_mb, load_s);
	free(v);

	/* build */
	exec_ok("DROP INDEX IF EXISTS items_v_idx");
	if (!o.no_index)
	{
		snprintf(sql, sizeof(sql),
				 "CREATE INDEX items_v_idx ON items USING hnsw (v %s) WITH (m = %d, ef_construction = %d)",
				 opclass, o.m, o.ef_construction);
		printf("  %s\n", sql);
		t0 = now_sec();
		exec_ok(sql);
		build_s = now_sec() - t0;
		index_mb = atof(query_value("SELECT pg_relation_size('items_v_idx') / 1048576.0"));
		printf("  build: %.2f s, index %.1f MB\n", build_s, index_mb);
		if (tsv)
			fprintf(tsv, "engine=%s build_s=%.3f index_mb=%.2f m=%d ef_construction=%d workers=%d\n",
					o.engine, build_s, index_mb, o.m, o.ef_construction, o.workers);
	}
	exec_ok("CHECKPOINT");

	/* warm the caches: the relations into shared_buffers when pg_prewarm exists */
	{
		PGresult   *r = PQexec(conn, "CREATE EXTENSION IF NOT EXISTS pg_prewarm");

		if (PQresultStatus(r) == PGRES_COMMAND_OK)
		{
			PQclear(r);
			exec_ok("SELECT pg_prewarm(c.oid) FROM pg_class c, pg_class t WHERE t.relname = 'items' "
					"AND (c.oid = t.oid OR c.relname = 'items_v_idx' OR c.oid = t.reltoastrelid "
					"OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = t.reltoastrelid))");
		}
		else
		{
			printf("  (pg_prewarm unavailable: %s)", PQerrorMessage(conn));
			PQclear(r);
		}
	}

	queries = read_queries(o.queries_path, &nq);
	lat = malloc(sizeof(double) * nq);
	lat2 = malloc(sizeof(double) * nq);
	snprintf(sql, sizeof(sql), "SELECT id FROM items ORDER BY v %s $1 LIMIT %d", op, o.k);
	{
		PGresult   *r = PQprepare(conn, "knn", sql, 1, NULL);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die("prepare failed: %s", PQerrorMessage(conn));
		PQclear(r);
	}

	if (o.force_index && !o.no_index)
	{
		exec_ok("SET enable_seqscan = off");
		printf("  enable_seqscan = off (--force-index)\n");
		if (tsv)
			fprintf(tsv, "engine=%s force_index=1\n", o.engine);
	}

	/* the plan must be what we mean to measure */
	{
		char		esql[2048];
		PGresult   *r;
		const char *escaped;
		bool		uses_index = false;

		escaped = PQescapeLiteral(conn, queries[0], strlen(queries[0]));
		snprintf(esql, sizeof(esql), "EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v %s ", op);
		{
			size_t		need = strlen(esql) + strlen(escaped) + 64;
			char	   *full = malloc(need);

			snprintf(full, need, "%s%s LIMIT %d", esql, escaped, o.k);
			r = PQexec(conn, full);
			free(full);
		}
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("EXPLAIN failed: %s", PQerrorMessage(conn));
		for (int i = 0; i < PQntuples(r); i++)
			if (strstr(PQgetvalue(r, i, 0), "items_v_idx"))
				uses_index = true;
		if (!o.no_index && !uses_index)
		{
			fprintf(stderr, "ann_client: the planner does not use items_v_idx for the k-NN query; its plan:\n");
			for (int i = 0; i < PQntuples(r); i++)
				fprintf(stderr, "    %.160s\n", PQgetvalue(r, i, 0));
			fprintf(stderr, "(--force-index measures the index scan anyway, with enable_seqscan = off)\n");
			exit(1);
		}
		PQclear(r);
		PQfreemem((void *) escaped);
		printf("  plan: %s\n", uses_index ? "index scan on items_v_idx" : "no index (exact scan)");
	}

	/* the floor: a prepared statement that only parses the vector */
	{
		PGresult   *r = PQprepare(conn, "floor", "SELECT $1::vector IS NULL", 1, NULL);
		double		t;
		char		save[64];

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die("prepare failed: %s", PQerrorMessage(conn));
		PQclear(r);
		t = 1e30;
		for (int run = 0; run < o.runs; run++)
		{
			t0 = now_sec();
			for (int i = 0; i < nq; i++)
			{
				const char *vals[1] = {queries[i]};

				r = PQexecPrepared(conn, "floor", 1, vals, NULL, NULL, 0);
				if (PQresultStatus(r) != PGRES_TUPLES_OK)
					die("floor query failed: %s", PQerrorMessage(conn));
				PQclear(r);
			}
			if (now_sec() - t0 < t)
				t = now_sec() - t0;
		}
		snprintf(save, sizeof(save), "%.0f", nq / t);
		printf("  SQL floor (parse the vector only): %s QPS\n", save);
		if (tsv)
			fprintf(tsv, "engine=%s floor_qps=%s\n", o.engine, save);
	}

	/* warm-up: a pass at the largest ef, untimed */
	if (!o.no_index)
	{
		int			maxef = 0;

		for (int i = 0; i < o.nef; i++)
			if (o.ef[i] > maxef)
				maxef = o.ef[i];
		snprintf(sql, sizeof(sql), "SET hnsw.ef_search = %d", maxef);
		exec_ok(sql);
	}
	run_pass(queries, nq < 200 ? nq : 200, NULL, NULL);

	printf("\n| engine | ef_search | QPS | recall@%d | p50 ms | p99 ms |\n", o.k);
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (int e = 0; e < (o.no_index ? 1 : o.nef); e++)
	{
		char		rpath[4096],
					label[32];
		double		total,
					recall,
					qps;

		if (!o.no_index)
		{
			snprintf(sql, sizeof(sql), "SET hnsw.ef_search = %d", o.ef[e]);
			exec_ok(sql);
		}
		if (o.no_index)
			snprintf(label, sizeof(label), "exact");
		else
			snprintf(label, sizeof(label), "ef%d", o.ef[e]);
		snprintf(rpath, sizeof(rpath), "%s/results-%s-%s.txt",
				 o.results_dir ? o.results_dir : "/tmp", o.engine, label);
		/* the results are the same every pass; keep the fastest pass's timings */
		total = run_pass(queries, nq, lat, rpath);
		recall = recall_of(&o, rpath);
		qsort(lat, nq, sizeof(double), cmp_double);
		for (int run = 1; run < o.runs; run++)
		{
			double		t = run_pass(queries, nq, lat2, NULL);

			if (t < total)
			{
				total = t;
				memcpy(lat, lat2, sizeof(double) * nq);
				qsort(lat, nq, sizeof(double), cmp_double);
			}
		}
		qps = nq / total;
		if (o.no_index)
			printf("| %s | exact | %.0f | %.4f | %.3f | %.3f |\n", o.engine, qps, recall,
				   percentile(lat, nq, 0.5) * 1e3, percentile(lat, nq, 0.99) * 1e3);
		else
			printf("| %s | %d | %.0f | %.4f | %.3f | %.3f |\n", o.engine, o.ef[e], qps, recall,
				   percentile(lat, nq, 0.5) * 1e3, percentile(lat, nq, 0.99) * 1e3);
		if (tsv)
			fprintf(tsv, "engine=%s ef=%d qps=%.1f recall=%.4f p50_ms=%.3f p99_ms=%.3f\n",
					o.engine, o.no_index ? 0 : o.ef[e], qps, recall,
					percentile(lat, nq, 0.5) * 1e3, percentile(lat, nq, 0.99) * 1e3);
	}
	printf("\n");
	if (tsv)
		fclose(tsv);
	PQfinish(conn);
	return 0;
}
