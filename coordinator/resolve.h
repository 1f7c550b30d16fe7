/*
 * resolve.h: non-blocking resolution of the host names in a libpq
 * connection string (the metadata DSN), with evdns, so that libpq gets
 * `hostaddr` and never calls a blocking getaddrinfo on the event loop.
 * `host` stays in the DSN for certificate checks.  Worker pools resolve
 * their single host the same way inside workerconn.c.
 */
#ifndef VX_RESOLVE_H
#define VX_RESOLVE_H

#include <stdbool.h>

struct event_base;
struct evdns_base;

/*
 * The loop's resolver: nameservers and options from resolv_conf (config;
 * default the system's /etc/resolv.conf), plus /etc/hosts.  Never NULL
 * unless out of memory.
 */
struct evdns_base *resolve_dns_new(struct event_base *base);

/*
 * The answer: hostaddr is a comma-separated list with one entry per entry of
 * the DSN's host list (empty for socket directories), or NULL and err set
 * ("cannot resolve host \"x\": ...").  Both strings are the callee's.
 */
typedef void (*ResolveCallback)(void *arg, const char *hostaddr, const char *err);

/*
 * Start resolving conninfo's host names.  Returns false when there is
 * nothing to resolve (no host, hostaddr given, only IP literals or
 * sockets, or a DSN libpq cannot parse): connect as is, no callback comes.
 * Returns true when cb will be called, later, from the loop.
 */
bool resolve_conninfo(struct event_base *base, struct evdns_base *dns, const char *conninfo,
					  ResolveCallback cb, void *arg);

#endif
