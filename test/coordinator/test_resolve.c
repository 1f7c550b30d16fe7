/*
 * test_resolve.c: unit tests of resolve.c, the asynchronous resolution of
 * a libpq DSN's host names: which DSNs need no lookup, the hostaddr list
 * built for a host list (names, IP literals, socket directories), the
 * error for a name that does not resolve, and that the answer never comes
 * inside resolve_conninfo.  Runs on a real event loop with an evdns base
 * that knows only /etc/hosts and a name server that never answers, so no
 * network is used.  TAP output; run by scripts/check.d/57-ops-integration.
 */
#include "config.h"
#include "log.h"
#include "resolve.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

typedef struct Answer {
	bool called;
	bool inside;		/* called before resolve_conninfo returned */
	char hostaddr[256];
	char err[512];
} Answer;

static bool in_call;
static struct event_base *base;

static void
answer_cb(void *arg, const char *hostaddr, const char *err)
{
	Answer *a = arg;

	a->called = true;
	a->inside = in_call;
	snprintf(a->hostaddr, sizeof(a->hostaddr), "%s", hostaddr ? hostaddr : "(null)");
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
	event_base_loopbreak(base);
}

/* Resolve dsn; run the loop until the answer (at most 10 s). */
static bool
run(struct evdns_base *dns, const char *dsn, Answer *a)
{
	struct timeval ten = {10, 0};
	bool started;

	memset(a, 0, sizeof(*a));
	in_call = true;
	started = resolve_conninfo(base, dns, dsn, answer_cb, a);
	in_call = false;
	if (started) {
		event_base_loopexit(base, &ten);
		event_base_dispatch(base);
	}
	return started;
}

int
main(void)
{
	struct evdns_base *dns;
	Answer a;
	int sock;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char ns[64];

	config_set_defaults();
	log_configure("error", "text");
	base = event_base_new();
	dns = evdns_base_new(base, 0);
	evdns_base_load_hosts(dns, NULL);
	/* a name server that never answers: a bound UDP socket nobody reads */
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(sock, (struct sockaddr *) &sin, sizeof(sin));
	getsockname(sock, (struct sockaddr *) &sin, &len);
	snprintf(ns, sizeof(ns), "127.0.0.1:%d", ntohs(sin.sin_port));
	evdns_base_nameserver_ip_add(dns, ns);
	evdns_base_set_option(dns, "timeout:", "1");
	evdns_base_set_option(dns, "attempts:", "1");

	ok(!run(dns, "host=127.0.0.1 port=5432 dbname=postgres", &a) && !a.called,
	   "resolve: an IP literal needs no lookup");
	ok(!run(dns, "host=db.example hostaddr=10.1.2.3", &a) && !a.called,
	   "resolve: a DSN with hostaddr is left alone");
	ok(!run(dns, "host=/var/run/postgresql port=5432", &a) && !a.called,
	   "resolve: a socket directory needs no lookup");
	ok(!run(dns, "port=5432 dbname=postgres", &a) || getenv("PGHOST"),
	   "resolve: no host (default socket) needs no lookup");
	ok(!run(dns, "host='unterminated", &a) && !a.called,
	   "resolve: a DSN libpq cannot parse is left to libpq's own error");

	ok(run(dns, "host=localhost port=5432 dbname=postgres", &a) && a.called && !a.inside &&
		   (strcmp(a.hostaddr, "127.0.0.1") == 0 || strcmp(a.hostaddr, "::1") == 0) && !a.err[0],
	   "resolve: localhost from /etc/hosts -> %s, answered from the loop", a.hostaddr);
	ok(run(dns, "postgresql://localhost:5433/postgres", &a) && a.called &&
		   (strcmp(a.hostaddr, "127.0.0.1") == 0 || strcmp(a.hostaddr, "::1") == 0),
	   "resolve: URI form -> %s", a.hostaddr);
	ok(run(dns, "host=localhost,/tmp,10.0.0.7 port=5432,5433,5434", &a) && a.called &&
		   (strcmp(a.hostaddr, "127.0.0.1,,10.0.0.7") == 0 ||
			strcmp(a.hostaddr, "::1,,10.0.0.7") == 0),
	   "resolve: a host list gives one hostaddr entry each (%s)", a.hostaddr);
	ok(run(dns, "host=nowhere.vectron-test dbname=postgres", &a) && a.called && !a.inside &&
		   strcmp(a.hostaddr, "(null)") == 0 &&
		   strstr(a.err, "cannot resolve host \"nowhere.vectron-test\"") != NULL,
	   "resolve: an unresolvable name gives a clear error: %s", a.err);
	ok(run(dns, "host=localhost,nowhere.vectron-test", &a) && a.called &&
		   strstr(a.err, "nowhere.vectron-test") != NULL,
	   "resolve: one bad name in a list fails the list");

	evdns_base_free(dns, 0);
	event_base_free(base);
	close(sock);
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}
