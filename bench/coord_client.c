/*
 * coord_client.c
 *	  Load client for the coordinator benchmark (bench/coord): times the same
 *	  searches sent through the coordinator's REST API and straight to a
 *	  worker over libpq, and times bulk imports.  C, one connection per
 *	  client, keep-alive, so the client is not what is measured.
 *
 *	  coord_client rest-search HOST PORT COLLECTION QUERIES K EF N
 *	      N searches (cycling through the query file, one vector literal per
 *	      line), one at a time over one keep-alive connection; prints
 *	      "latency_us p50 p99 mean qps", then the coordinator's overhead per
 *	      request: the client's latency minus the slowest shard's time for
 *	      that same request, as the coordinator's Server-Timing header gives
 *	      it (worker = execution time the worker reported; shard = the round
 *	      trip the coordinator saw), and the coordinator's own stages.
 *	  coord_client sql-search CONNINFO SQL QUERIES EF N
 *	      The same through a libpq prepared statement whose $1 is the query
 *	      vector (text), after SET hnsw.ef_search (when the GUC exists) and
 *	      SET enable_seqscan = off, as the coordinator's shard searches run.
 *	      With PORT,PORT2 (two coordinators of one cluster, e.g. a baseline
 *	      build), the requests alternate between them (see RestSearch).
 *	  coord_client rest-import HOST PORT COLLECTION NDJSON BATCH
 *	      Posts the file to /points/import in batches of BATCH lines; prints
 *	      "points seconds points_per_s".
 *	  coord_client import-compare HOST NDJSON TSV BATCH TARGET...
 *	      The same batches into REST imports and COPY, interleaved (see
 *	      ImportCompare).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Monotonic time in microseconds. */
static double
NowUs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Read every line of a file into a NULL-terminated array; sets *n. */
static char **
ReadLines(const char *path, int *n)
{
	FILE	   *f = fopen(path, "r");
	char	  **lines = NULL;
	int			cap = 0;
	char	   *line = NULL;
	size_t		len = 0;
	ssize_t		r;

	if (!f)
	{
		fprintf(stderr, "coord_client: cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	*n = 0;
	while ((r = getline(&line, &len, f)) > 0)
	{
		if (line[r - 1] == '\n')
			line[--r] = '\0';
		if (r == 0)
			continue;
		if (*n == cap)
		{
			cap = cap ? cap * 2 : 1024;
			lines = realloc(lines, sizeof(char *) * cap);
		}
		lines[(*n)++] = strdup(line);
	}
	free(line);
	fclose(f);
	if (*n == 0)
	{
		fprintf(stderr, "coord_client: %s is empty\n", path);
		exit(1);
	}
	return lines;
}

static int
CmpDouble(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* Print p50, p99, mean latency (us) and throughput. */
static void
Report(double *lat, int n, double wall_us)
{
	double		sum = 0;

	for (int i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(double), CmpDouble);
	printf("latency_us p50=%.1f p99=%.1f mean=%.1f qps=%.1f n=%d\n",
		   lat[n / 2], lat[(int) (n * 0.99)], sum / n, n / (wall_us / 1e6), n);
}

/* Connect a TCP socket with Nagle off. */
static int
Connect(const char *host, const char *port)
{
	struct addrinfo hints = {0},
			   *ai;
	int			fd,
				one = 1;

	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
	{
		fprintf(stderr, "coord_client: cannot resolve %s\n", host);
		exit(1);
	}
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
	{
		fprintf(stderr, "coord_client: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	freeaddrinfo(ai);
	return fd;
}

/* Write all of buf. */
static void
WriteAll(int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		w = write(fd, buf, len);

		if (w <= 0)
		{
			fprintf(stderr, "coord_client: write: %s\n", strerror(errno));
			exit(1);
		}
		buf += w;
		len -= w;
	}
}

/*
 * Send one POST and read the whole response (Content-Length framing, as the
 * coordinator sends).  Returns the status; the body is left in *body.
 */
static char *last_headers;		/* the last response's headers (HttpPost) */

static int
HttpPost(int fd, const char *host, const char *path, const char *payload,
		 size_t plen, char **body, size_t *blen)
{
	static char *buf = NULL;
	static size_t cap = 0;
	char		head[512];
	size_t		have = 0,
				need = 0;
	char	   *hdr_end = NULL;
	int			status = 0;

	snprintf(head, sizeof(head),
			 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n", path, host, plen);
	WriteAll(fd, head, strlen(head));
	WriteAll(fd, payload, plen);

	for (;;)
	{
		ssize_t		r;

		if (cap - have < 65536)
		{
			cap = cap ? cap * 2 : 1 << 20;
			buf = realloc(buf, cap);
		}
		r = read(fd, buf + have, cap - have - 1);
		if (r <= 0)
		{
			fprintf(stderr, "coord_client: connection closed by server\n");
			exit(1);
		}
		have += r;
		buf[have] = '\0';
		if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL)
		{
			char	   *cl = strcasestr(buf, "Content-Length:");

			status = atoi(buf + 9);
			need = (hdr_end - buf) + 4 + (cl && cl < hdr_end ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (hdr_end && have >= need)
			break;
	}
	*body = hdr_end + 4;
	*blen = need - (hdr_end + 4 - buf);
	free(last_headers);
	last_headers = strndup(buf, hdr_end - buf);
	return status;
}

/* A duration (us) from the last response's Server-Timing header, or -1. */
static double
ServerTiming(const char *name)
{
	char		key[64];
	const char *h = last_headers ? strcasestr(last_headers, "\r\nServer-Timing:") : NULL,
			   *p,
			   *eol;

	if (!h)
		return -1;
	snprintf(key, sizeof(key), "%s;dur=", name);
	p = strstr(h, key);
	eol = strstr(h + 2, "\r\n");
	if (!p || (eol && p > eol))
		return -1;
	return atof(p + strlen(key)) * 1000.0;
}

/* p50 and p99 of n values (sorts them). */
static void
Pct(double *v, int n, double *p50, double *p99)
{
	qsort(v, n, sizeof(double), CmpDouble);
	*p50 = v[n / 2];
	*p99 = v[(int) (n * 0.99)];
}

/* Per-target measurements of rest-search. */
typedef struct Target
{
	const char *port;
	int			fd;
	double	   *lat,
			   *ovw,
			   *ovs,
			   *wk,
			   *prs,
			   *mrg;
	int			nt;
} Target;

/*
 * rest-search HOST PORT[,PORT...] COLLECTION QUERIES K EF N
 * With several ports (coordinators of one cluster, e.g. a baseline build
 * and the current one), request i goes to every one of them in turn, the
 * first one rotating, so that all see the same load; each is reported on
 * its own lines, prefixed "port=P".
 */
static int
RestSearch(char **argv)
{
	int			nq,
				n = atoi(argv[8]),
				ntg = 0;
	char	  **q = ReadLines(argv[5], &nq);
	char	   *ports = strdup(argv[3]),
			   *save = NULL;
	Target		tg[8];
	char		path[256];
	double		t0;

	for (char *p = strtok_r(ports, ",", &save); p && ntg < 8; p = strtok_r(NULL, ",", &save))
	{
		Target	   *t = &tg[ntg++];

		memset(t, 0, sizeof(*t));
		t->port = p;
		t->fd = Connect(argv[2], p);
		t->lat = malloc(sizeof(double) * n);
		t->ovw = malloc(sizeof(double) * n);
		t->ovs = malloc(sizeof(double) * n);
		t->wk = malloc(sizeof(double) * n);
		t->prs = malloc(sizeof(double) * n);
		t->mrg = malloc(sizeof(double) * n);
	}
	snprintf(path, sizeof(path), "/v1/collections/%s/search", argv[4]);
	t0 = NowUs();
	for (int i = 0; i < n; i++)
	{
		const char *vec = strchr(q[i % nq], '[');
		size_t		plen = strlen(vec) + 128;
		char	   *payload = malloc(plen);

		plen = snprintf(payload, plen, "{\"vector\":%s,\"k\":%s,\"ef_search\":%s}", vec, argv[6], argv[7]);
		for (int j = 0; j < ntg; j++)
		{
			Target	   *t = &tg[(i + j) % ntg];
			char	   *body;
			size_t		blen;
			double		s = NowUs();
			int			st;

			st = HttpPost(t->fd, argv[2], path, payload, plen, &body, &blen);
			t->lat[i] = NowUs() - s;
			if (st != 200)
			{
				fprintf(stderr, "coord_client: search answered %d: %.*s\n", st, (int) blen, body);
				return 1;
			}
			if (ServerTiming("worker") >= 0)
			{
				t->wk[t->nt] = ServerTiming("worker");
				t->ovw[t->nt] = t->lat[i] - t->wk[t->nt];
				t->ovs[t->nt] = t->lat[i] - ServerTiming("shard");
				t->prs[t->nt] = ServerTiming("parse");
				t->mrg[t->nt] = ServerTiming("merge");
				t->nt++;
			}
		}
		free(payload);
	}
	for (int j = 0; j < ntg; j++)
	{
		Target	   *t = &tg[j];

		if (ntg > 1)
			printf("port=%s ", t->port);
		Report(t->lat, n, NowUs() - t0);
		if (t->nt > 0)
		{
			double		a, b, c, d, e, f, g, h, x, y;

			Pct(t->ovw, t->nt, &a, &b);
			Pct(t->ovs, t->nt, &c, &d);
			Pct(t->wk, t->nt, &e, &f);
			Pct(t->prs, t->nt, &g, &x);
			Pct(t->mrg, t->nt, &h, &y);
			if (ntg > 1)
				printf("port=%s ", t->port);
			printf("overhead_us p50=%.1f p99=%.1f rtt_p50=%.1f rtt_p99=%.1f worker_p50=%.1f "
				   "worker_p99=%.1f parse_p50=%.1f merge_p50=%.1f n=%d\n",
				   a, b, c, d, e, f, g, h, t->nt);
		}
	}
	return 0;
}

/* sql-search CONNINFO SQL QUERIES EF N */
static int
SqlSearch(char **argv)
{
	PGconn	   *conn = PQconnectdb(argv[2]);
	int			nq,
				n = atoi(argv[6]);
	char	  **q = ReadLines(argv[4], &nq);
	double	   *lat = malloc(sizeof(double) * n);
	PGresult   *res;
	char		set[128];
	double		t0;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "coord_client: %s", PQerrorMessage(conn));
		return 1;
	}
	snprintf(set, sizeof(set),
			 "SELECT set_config('hnsw.ef_search', '%d', false) "
			 "WHERE EXISTS (SELECT 1 FROM pg_settings WHERE name = 'hnsw.ef_search')", atoi(argv[5]));
	PQclear(PQexec(conn, set));
	/* as the coordinator does for its shard searches */
	PQclear(PQexec(conn, "SET enable_seqscan = off"));
	res = PQprepare(conn, "q", argv[3], 1, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "coord_client: prepare: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);
	t0 = NowUs();
	for (int i = 0; i < n; i++)
	{
		const char *vec = strchr(q[i % nq], '[');
		double		s = NowUs();

		res = PQexecPrepared(conn, "q", 1, &vec, NULL, NULL, 0);
		lat[i] = NowUs() - s;
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "coord_client: query: %s", PQerrorMessage(conn));
			return 1;
		}
		PQclear(res);
	}
	Report(lat, n, NowUs() - t0);
	PQfinish(conn);
	return 0;
}

/* rest-import HOST PORT COLLECTION NDJSON BATCH */
static int
RestImport(char **argv)
{
	int			nl,
				batch = atoi(argv[6]),
				fd,
				total = 0;
	char	  **lines = ReadLines(argv[5], &nl);
	char		path[256];
	double		t0;

	snprintf(path, sizeof(path), "/v1/collections/%s/points/import", argv[4]);
	fd = Connect(argv[2], argv[3]);
	t0 = NowUs();
	for (int i = 0; i < nl; i += batch)
	{
		size_t		len = 0,
					off = 0;
		char	   *payload,
				   *body;
		size_t		blen;
		int			st;

		for (int j = i; j < nl && j < i + batch; j++)
			len += strlen(lines[j]) + 1;
		payload = malloc(len + 1);
		for (int j = i; j < nl && j < i + batch; j++)
			off += sprintf(payload + off, "%s\n", lines[j]);
		st = HttpPost(fd, argv[2], path, payload, off, &body, &blen);
		if (st != 200)
		{
			fprintf(stderr, "coord_client: import answered %d: %.*s\n", st, (int) blen, body);
			return 1;
		}
		total += (nl - i < batch) ? nl - i : batch;
		free(payload);
	}
	printf("points=%d seconds=%.3f points_per_s=%.1f\n", total, (NowUs() - t0) / 1e6,
		   total / ((NowUs() - t0) / 1e6));
	return 0;
}

/*
 * import-compare HOST NDJSON TSV BATCH TARGET...
 * The same rows, batch by batch, into every target in turn (the first one
 * rotating), so that all see the same load; prints each target's total
 * time and points per second.  A target is rest=PORT/COLLECTION (NDJSON
 * lines posted to /points/import) or copy=TABLE@CONNINFO (the TSV lines,
 * COPY ... FROM STDIN over libpq into TABLE (id, v, version)).  Line i of
 * NDJSON and of TSV must be the same row.
 */
static int
ImportCompare(int argc, char **argv)
{
	int			nl,
				nt,
				batch = atoi(argv[5]),
				ntg = argc - 6;
	char	  **lines = ReadLines(argv[3], &nl),
			  **rows = ReadLines(argv[4], &nt);
	double		secs[8] = {0};
	int			fds[8];
	PGconn	   *conns[8] = {0};
	char	   *tables[8] = {0},
			   *paths[8] = {0};

	if (nl != nt || ntg < 1 || ntg > 8)
	{
		fprintf(stderr, "coord_client: %s and %s differ in length, or bad targets\n", argv[3], argv[4]);
		return 2;
	}
	for (int t = 0; t < ntg; t++)
	{
		char	   *spec = strdup(argv[6 + t]);

		if (strncmp(spec, "rest=", 5) == 0 && strchr(spec, '/'))
		{
			char	   *slash = strchr(spec, '/');

			*slash = '\0';
			fds[t] = Connect(argv[2], spec + 5);
			paths[t] = malloc(strlen(slash + 1) + 64);
			sprintf(paths[t], "/v1/collections/%s/points/import", slash + 1);
		}
		else if (strncmp(spec, "copy=", 5) == 0 && strchr(spec, '@'))
		{
			char	   *at = strchr(spec, '@');

			*at = '\0';
			tables[t] = spec + 5;
			conns[t] = PQconnectdb(at + 1);
			if (PQstatus(conns[t]) != CONNECTION_OK)
			{
				fprintf(stderr, "coord_client: %s", PQerrorMessage(conns[t]));
				return 1;
			}
		}
		else
		{
			fprintf(stderr, "coord_client: bad target %s\n", argv[6 + t]);
			return 2;
		}
	}
	for (int i = 0, b = 0; i < nl; i += batch, b++)
	{
		int			end = i + batch < nl ? i + batch : nl;

		for (int j = 0; j < ntg; j++)
		{
			int			t = (b + j) % ntg;
			double		s = NowUs();

			if (paths[t])
			{
				size_t		len = 0,
							off = 0,
							blen;
				char	   *payload,
						   *body;
				int			st;

				for (int r = i; r < end; r++)
					len += strlen(lines[r]) + 1;
				payload = malloc(len + 1);
				for (int r = i; r < end; r++)
					off += sprintf(payload + off, "%s\n", lines[r]);
				st = HttpPost(fds[t], argv[2], paths[t], payload, off, &body, &blen);
				if (st != 200)
				{
					fprintf(stderr, "coord_client: import answered %d: %.*s\n", st, (int) blen, body);
					return 1;
				}
				free(payload);
			}
			else
			{
				char		sql[256];
				PGresult   *res;

				snprintf(sql, sizeof(sql), "COPY %s (id, v, version) FROM STDIN", tables[t]);
				res = PQexec(conns[t], sql);
				if (PQresultStatus(res) != PGRES_COPY_IN)
				{
					fprintf(stderr, "coord_client: %s", PQerrorMessage(conns[t]));
					return 1;
				}
				PQclear(res);
				for (int r = i; r < end; r++)
				{
					PQputCopyData(conns[t], rows[r], strlen(rows[r]));
					PQputCopyData(conns[t], "\n", 1);
				}
				PQputCopyEnd(conns[t], NULL);
				res = PQgetResult(conns[t]);
				if (PQresultStatus(res) != PGRES_COMMAND_OK)
				{
					fprintf(stderr, "coord_client: COPY: %s", PQerrorMessage(conns[t]));
					return 1;
				}
				PQclear(res);
				while ((res = PQgetResult(conns[t])) != NULL)
					PQclear(res);
			}
			secs[t] += (NowUs() - s) / 1e6;
		}
	}
	for (int t = 0; t < ntg; t++)
		printf("target=%s points=%d seconds=%.3f points_per_s=%.1f\n", argv[6 + t], nl, secs[t],
			   nl / secs[t]);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 9 && strcmp(argv[1], "rest-search") == 0)
		return RestSearch(argv);
	if (argc == 7 && strcmp(argv[1], "sql-search") == 0)
		return SqlSearch(argv);
	if (argc == 7 && strcmp(argv[1], "rest-import") == 0)
		return RestImport(argv);
	if (argc >= 7 && strcmp(argv[1], "import-compare") == 0)
		return ImportCompare(argc, argv);
	fprintf(stderr,
			"usage: coord_client rest-search HOST PORT[,PORT...] COLLECTION QUERIES K EF N\n"
			"       coord_client sql-search CONNINFO SQL QUERIES EF N\n"
			"       coord_client rest-import HOST PORT COLLECTION NDJSON BATCH\n"
			"       coord_client import-compare HOST NDJSON TSV BATCH rest=PORT/COLL|copy=TABLE@CONNINFO...\n");
	return 2;
}
