/*
 * resolve.c: asynchronous name resolution for libpq connection strings
 * (see resolve.h).
 *
 * libpq resolves `host` with a blocking getaddrinfo inside
 * PQconnectStartParams unless `hostaddr` is given, which would stall the
 * whole event loop on a slow or dead DNS server.  So before a pool opens a
 * connection from a DSN, the DSN is parsed (PQconninfoParse), every entry of
 * its host list that is a name is resolved with evdns_getaddrinfo, and the
 * pool passes the addresses as `hostaddr` next to the unchanged `host`
 * (libpq keeps using `host` for certificate checks, Kerberos and .pgpass).
 * Entries that need no lookup -- IP literals (passed through), socket
 * directories and empty entries (an empty hostaddr entry; libpq then uses
 * the socket) -- are not sent to the resolver.  A DSN that already has
 * hostaddr, or names no host (PGHOST or the default socket), is left alone.
 *
 * The answer always arrives from the loop, never inside resolve_conninfo:
 * evdns may answer at once (numeric host, /etc/hosts), so the final
 * callback is deferred with event_base_once.
 */
#include "resolve.h"

#include "config.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RESOLVE_MAX_HOSTS 16

typedef struct Lookup Lookup;

typedef struct Resolve {
	struct event_base *base;
	int nhosts;
	char *hosts[RESOLVE_MAX_HOSTS];
	char addrs[RESOLVE_MAX_HOSTS][INET6_ADDRSTRLEN];
	int pending;
	char err[512];
	ResolveCallback cb;
	void *arg;
} Resolve;

struct Lookup {
	Resolve *r;
	int i;
};

/* True when s is an IPv4 or IPv6 literal. */
static bool
is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Entries libpq treats as Unix-domain sockets (or leaves to its default). */
static bool
is_socket_entry(const char *s)
{
	return s[0] == '\0' || s[0] == '/' || s[0] == '@';
}

static void
resolve_free(Resolve *r)
{
	for (int i = 0; i < r->nhosts; i++)
		free(r->hosts[i]);
	free(r);
}

/* Deliver the answer (from the loop) and free the request. */
static void
resolve_deliver(evutil_socket_t fd, short what, void *arg)
{
	Resolve *r = arg;

	(void) fd;
	(void) what;
	if (r->err[0])
		r->cb(r->arg, NULL, r->err);
	else {
		StrBuf sb;
		char *s;

		sb_init(&sb);
		for (int i = 0; i < r->nhosts; i++)
			sb_appendf(&sb, "%s%s", i ? "," : "", r->addrs[i]);
		s = sb_steal(&sb);
		r->cb(r->arg, s, NULL);
		free(s);
	}
	resolve_free(r);
}

static void
resolve_one_done(Resolve *r)
{
	if (--r->pending == 0) {
		struct timeval zero = {0, 0};

		event_base_once(r->base, -1, EV_TIMEOUT, resolve_deliver, r, &zero);
	}
}

static void
lookup_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	Lookup *l = arg;
	Resolve *r = l->r;

	if (err || !res) {
		if (!r->err[0])
			snprintf(r->err, sizeof(r->err), "cannot resolve host \"%s\": %s", r->hosts[l->i],
					 err ? evutil_gai_strerror(err) : "no address");
	} else if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *) res->ai_addr)->sin_addr, r->addrs[l->i],
				  sizeof(r->addrs[l->i]));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *) res->ai_addr)->sin6_addr, r->addrs[l->i],
				  sizeof(r->addrs[l->i]));
	if (res)
		evutil_freeaddrinfo(res);
	free(l);
	resolve_one_done(r);
}

/* Split a comma-separated host list into r->hosts. */
static bool
split_hosts(Resolve *r, const char *list)
{
	const char *p = list;

	for (;;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t) (e - p) : strlen(p);

		if (r->nhosts == RESOLVE_MAX_HOSTS)
			return false;
		r->hosts[r->nhosts] = xcalloc(1, n + 1);
		memcpy(r->hosts[r->nhosts], p, n);
		r->nhosts++;
		if (!e)
			return true;
		p = e + 1;
	}
}

/* evdns's own messages ("nameserver ... has failed") go to our log, so
 * that a JSON log stays one JSON object per line. */
static void
resolve_evdns_log(int is_warn, const char *msg)
{
	if (is_warn)
		log_warning("dns: %s", msg);
	else
		log_debug("dns: %s", msg);
}

struct evdns_base *
resolve_dns_new(struct event_base *base)
{
	struct evdns_base *dns;

	evdns_set_log_fn(resolve_evdns_log);
	if (cf_resolv_conf && cf_resolv_conf[0]) {
		int rc;

		dns = evdns_base_new(base, 0);
		if (!dns)
			return NULL;
		rc = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL, cf_resolv_conf);
		if (rc != 0)
			log_warning("resolv_conf %s: cannot use it (evdns error %d); host names may not "
						"resolve",
						cf_resolv_conf, rc);
		return dns;
	}
	dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!dns) {
		/* no usable resolv.conf: names from /etc/hosts still work */
		dns = evdns_base_new(base, 0);
		if (dns)
			evdns_base_load_hosts(dns, NULL);
	}
	return dns;
}

bool
resolve_conninfo(struct event_base *base, struct evdns_base *dns, const char *conninfo,
				 ResolveCallback cb, void *arg)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *host = NULL;
	bool has_hostaddr = false, any_name = false;
	Resolve *r;

	if (!opts)
		return false;	/* libpq reports the syntax error itself at connect */
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "host") == 0 && o->val && o->val[0])
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0 && o->val && o->val[0])
			has_hostaddr = true;
	}
	if (!host)
		host = getenv("PGHOST");
	if (has_hostaddr || !host || !host[0] || getenv("PGHOSTADDR")) {
		PQconninfoFree(opts);
		return false;
	}
	r = xcalloc(1, sizeof(Resolve));
	r->base = base;
	r->cb = cb;
	r->arg = arg;
	if (!split_hosts(r, host)) {
		PQconninfoFree(opts);
		resolve_free(r);
		return false;
	}
	PQconninfoFree(opts);
	for (int i = 0; i < r->nhosts; i++)
		if (!is_socket_entry(r->hosts[i]) && !is_ip_literal(r->hosts[i]))
			any_name = true;
	if (!any_name) {
		resolve_free(r);
		return false;
	}
	/* one extra count so that answers given at once cannot finish early */
	r->pending = 1;
	for (int i = 0; i < r->nhosts; i++) {
		struct evutil_addrinfo hints;
		Lookup *l;

		if (is_socket_entry(r->hosts[i]))
			continue;
		if (is_ip_literal(r->hosts[i])) {
			util_strlcpy(r->addrs[i], r->hosts[i], sizeof(r->addrs[i]));
			continue;
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		l = xcalloc(1, sizeof(Lookup));
		l->r = r;
		l->i = i;
		r->pending++;
		evdns_getaddrinfo(dns, r->hosts[i], NULL, &hints, lookup_cb, l);
	}
	resolve_one_done(r);
	return true;
}
