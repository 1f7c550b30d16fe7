/*
 * http.c: the HTTP/1.1 layer (see http.h).
 *
 * Each connection has a bufferevent and an http_parser.  The read callback
 * feeds what arrived to the parser; on_body appends to the request's body
 * buffer and answers 413 the moment the limit is passed (or at the headers
 * when Content-Length already says so).  At message end the parser pauses
 * and the handler runs; bytes of a next pipelined request wait in the
 * input buffer until the answer is written.  Reading stays on while a
 * request runs, so EOF from the client is seen and cancels the request.
 *
 * With HTTPS on (tls.c), each accepted socket gets an OpenSSL bufferevent
 * in accepting state instead of a socket one; everything above the
 * bufferevent is the same, so keep-alive, streaming bodies, backpressure
 * and hang-up cancellation behave as over plain HTTP.  A client that
 * closes without a TLS close_notify is an ordinary EOF (dirty shutdown
 * allowed, and SSL_OP_IGNORE_UNEXPECTED_EOF in tls.c); we send one when we
 * close; a failed handshake is logged and the connection dropped.
 */
#include "http.h"

#include "config.h"
#include "log.h"
#include "obs.h"
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct HttpConn {
	struct bufferevent *bev;
	http_parser parser;
	HttpRequest *req;		/* being parsed or handled */
	bool dispatched;		/* req is with the handler */
	bool closing;			/* close once the output is written */
	bool dead;
	StrBuf url;
	StrBuf hfield;
	StrBuf hvalue;
	bool in_value;
	bool expect_continue;
	bool error_sent;
	bool body_paused;		/* a body sink asked to stop reading */
	struct event *resume;
	char peer[64];
	bool tls;				/* an OpenSSL bufferevent */
	bool tls_up;			/* its handshake finished */
	HttpConn *next, *prev;
};

static struct event_base *http_base;
static struct evconnlistener *http_listener;
static HttpHandler http_handler;
static HttpHeadersHook http_headers_hook;
static HttpConn *http_conns;
static int http_nconns;
static int http_ninflight;
static int http_port;
static bool http_draining;
static HttpDrainedCallback http_drained_cb;
static uint64_t http_reqno;
static uint32_t http_boot;
static http_parser_settings http_settings;

static void conn_process(HttpConn *hc);
static void conn_free(HttpConn *hc);

int
http_server_port(void)
{
	return http_port;
}

int
http_inflight(void)
{
	return http_ninflight;
}

static const char *
status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

static void
req_free(HttpRequest *req)
{
	if (!req)
		return;
	free(req->path);
	free(req->query);
	free(req->authorization);
	json_decref(req->shard_timing);
	free(req->extra_headers);
	if (req->body)
		evbuffer_free(req->body);
	free(req);
}

static void
check_drained(void)
{
	if (http_draining && http_nconns == 0 && http_drained_cb) {
		HttpDrainedCallback cb = http_drained_cb;

		http_drained_cb = NULL;
		cb();
	}
}

/* Write status line, headers and body to the connection (if still there). */
static void
conn_write_response(HttpConn *hc, HttpRequest *req, int status, const char *ctype,
					const char *body, size_t len, bool keep_alive)
{
	struct evbuffer *out = bufferevent_get_output(hc->bev);

	evbuffer_add_printf(out,
						"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
						"X-Request-Id: %s\r\nConnection: %s\r\n%s\r\n",
						status, status_text(status), ctype, len, req ? req->id : "-",
						keep_alive ? "keep-alive" : "close",
						req && req->extra_headers ? req->extra_headers : "");
	if (len)
		evbuffer_add(out, body, len);
}

void
http_respond_raw(HttpRequest *req, int status, const char *ctype, const char *body, size_t len)
{
	HttpConn *hc = req->conn;

	obs_request_done(req->id, req->method_name, req->path, status,
					 (double) (util_now_us() - req->start_us) / 1000.0, req->errcode,
					 req->shard_timing);
	http_ninflight--;
	if (!hc) {
		/* the client left; nobody to answer */
		req_free(req);
		check_drained();
		return;
	}
	hc->req = NULL;
	hc->dispatched = false;
	if (http_draining || !req->keep_alive)
		hc->closing = true;
	conn_write_response(hc, req, status, ctype, body, len, !hc->closing);
	req_free(req);
	if (!hc->closing) {
		/* go on with pipelined input from the loop, not from inside a handler */
		http_parser_pause(&hc->parser, 0);
		event_active(hc->resume, EV_TIMEOUT, 0);
	}
	check_drained();
}

void
http_respond_json(HttpRequest *req, int status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (!s) {
		/* a body that jansson cannot build or write: never crash on it */
		static const char fallback[] =
			"{\"error\":{\"code\":\"INTERNAL\",\"message\":\"the answer could not be encoded\"}}";

		vx_log(LOG_WARNING, req->id, "%s %s: an answer could not be encoded as JSON", req->method_name, req->path);
		http_respond_raw(req, 500, "application/json", fallback, sizeof(fallback) - 1);
		return;
	}
	http_respond_raw(req, status, "application/json", s, strlen(s));
	free(s);
}

static json_t *
error_body(const char *code, const char *msg)
{
	return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

void
http_respond_error(HttpRequest *req, int status, const char *code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	util_utf8_scrub(msg);
	if (status >= 500)
		vx_log(LOG_WARNING, req->id, "%s %s: %s: %s", req->method_name, req->path, code, msg);
	util_strlcpy(req->errcode, code, sizeof(req->errcode));
	http_respond_json(req, status, error_body(code, msg));
}

/* An error found while parsing: answer it and close the connection. */
static void
conn_parse_error(HttpConn *hc, int status, const char *code, const char *msg)
{
	json_t *b = error_body(code, msg);
	char *s = json_dumps(b, JSON_COMPACT);

	json_decref(b);
	log_info("client %s: %d %s: %s", hc->peer, status, code, msg);
	if (!hc->error_sent)
		conn_write_response(hc, hc->req, status, "application/json", s, strlen(s), false);
	hc->error_sent = true;
	free(s);
	hc->closing = true;
	bufferevent_disable(hc->bev, EV_READ);
}

void
http_stream_body(HttpRequest *req, HttpBodySink sink, void *arg)
{
	req->sink = sink;
	req->sink_arg = arg;
}

void
http_resume_body(HttpRequest *req)
{
	HttpConn *hc = req->conn;

	if (!hc || !hc->body_paused)
		return;
	hc->body_paused = false;
	http_parser_pause(&hc->parser, 0);
	bufferevent_enable(hc->bev, EV_READ);
	event_active(hc->resume, EV_TIMEOUT, 0);
}

void
http_set_cancel(HttpRequest *req, HttpCancelHook hook, void *arg)
{
	req->on_cancel = hook;
	req->cancel_arg = arg;
}

char *
http_body_string(HttpRequest *req, size_t *len)
{
	size_t n = evbuffer_get_length(req->body);
	char *s = xmalloc(n + 1);

	evbuffer_copyout(req->body, s, n);
	s[n] = '\0';
	if (len)
		*len = n;
	return s;
}

/* ---- parser callbacks ---- */

static int
on_message_begin(http_parser *p)
{
	HttpConn *hc = p->data;
	HttpRequest *req = xcalloc(1, sizeof(HttpRequest));

	req->conn = hc;
	req->body = evbuffer_new();
	req->start_ms = util_now_ms();
	req->start_us = util_now_us();
	/* unique across restarts and coordinators: start time, then a counter */
	if (!http_boot)
		http_boot = (uint32_t) (util_wall_us() / 1000) ^ ((uint32_t) getpid() << 20);
	snprintf(req->id, sizeof(req->id), "%08x-%llx", http_boot,
			 (unsigned long long) ++http_reqno);
	snprintf(req->peer_ip, sizeof(req->peer_ip), "%.*s", (int) strcspn(hc->peer, ":"), hc->peer);
	hc->req = req;
	hc->url.len = 0;
	hc->url.data[0] = '\0';
	hc->hfield.len = hc->hvalue.len = 0;
	hc->in_value = false;
	hc->expect_continue = false;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	HttpConn *hc = p->data;

	if (hc->url.len + len > 8192)
		return 1;
	sb_appendn(&hc->url, at, len);
	return 0;
}

static void
header_done(HttpConn *hc)
{
	if (!hc->hfield.len)
		return;
	for (size_t i = 0; i < hc->hfield.len; i++)
		hc->hfield.data[i] = tolower((unsigned char) hc->hfield.data[i]);
	if (strcmp(hc->hfield.data, "expect") == 0 && strcasecmp(hc->hvalue.data, "100-continue") == 0)
		hc->expect_continue = true;
	else if (strcmp(hc->hfield.data, "authorization") == 0 && hc->req) {
		free(hc->req->authorization);
		hc->req->authorization = xstrdup(hc->hvalue.data);
	} else if (strcmp(hc->hfield.data, "x-request-id") == 0 && hc->req &&
			   obs_valid_request_id(hc->hvalue.data))
		util_strlcpy(hc->req->id, hc->hvalue.data, sizeof(hc->req->id));
	hc->hfield.len = hc->hvalue.len = 0;
	hc->hfield.data[0] = hc->hvalue.data[0] = '\0';
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	HttpConn *hc = p->data;

	if (hc->in_value) {
		header_done(hc);
		hc->in_value = false;
	}
	if (hc->hfield.len + len > 8192)
		return 1;
	sb_appendn(&hc->hfield, at, len);
	return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	HttpConn *hc = p->data;

	hc->in_value = true;
	if (hc->hvalue.len + len > 16384)
		return 1;
	sb_appendn(&hc->hvalue, at, len);
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode in place; false on a bad escape or an embedded NUL. */
static bool
url_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%') {
			int a = hexval((unsigned char) s[1]), b = a >= 0 ? hexval((unsigned char) s[2]) : -1;

			if (a < 0 || b < 0 || (a == 0 && b == 0))
				return false;
			*o++ = (char) (a * 16 + b);
			s += 2;
		} else
			*o++ = *s;
	}
	*o = '\0';
	return true;
}

static int
on_headers_complete(http_parser *p)
{
	HttpConn *hc = p->data;
	HttpRequest *req = hc->req;
	char *q;

	if (hc->in_value)
		header_done(hc);
	hc->in_value = false;
	req->method = p->method;
	req->method_name = http_method_str(p->method);
	q = strchr(hc->url.data, '?');
	if (q) {
		req->query = xstrdup(q + 1);
		*q = '\0';
	}
	req->path = xstrdup(hc->url.data);
	if (!url_decode(req->path)) {
		conn_parse_error(hc, 400, "BAD_REQUEST", "malformed percent-escape in the path");
		return -1;	/* 1 would mean "no body" to http_parser */
	}
	if (http_headers_hook)
		http_headers_hook(req);
	if (!req->sink && (p->flags & F_CONTENTLENGTH) &&
		p->content_length > (uint64_t) cf_max_body_bytes) {
		char msg[128];

		snprintf(msg, sizeof(msg), "request body is larger than the limit of %d bytes",
				 cf_max_body_bytes);
		conn_parse_error(hc, 413, "PAYLOAD_TOO_LARGE", msg);
		return -1;	/* 1 would mean "no body" to http_parser */
	}
	if (hc->expect_continue)
		evbuffer_add_printf(bufferevent_get_output(hc->bev), "HTTP/1.1 100 Continue\r\n\r\n");
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	HttpConn *hc = p->data;

	if (hc->req->sink) {
		if (!hc->req->sink(hc->req, at, len, hc->req->sink_arg)) {
			/* backpressure: stop after this piece until http_resume_body */
			hc->body_paused = true;
			http_parser_pause(p, 1);
		}
		return 0;
	}
	if (evbuffer_get_length(hc->req->body) + len > (size_t) cf_max_body_bytes) {
		char msg[128];

		snprintf(msg, sizeof(msg), "request body is larger than the limit of %d bytes",
				 cf_max_body_bytes);
		conn_parse_error(hc, 413, "PAYLOAD_TOO_LARGE", msg);
		return 1;
	}
	evbuffer_add(hc->req->body, at, len);
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	HttpConn *hc = p->data;

	if (hc->closing)
		return -1;
	hc->req->keep_alive = http_should_keep_alive(p);
	hc->dispatched = true;
	http_ninflight++;
	http_parser_pause(p, 1);
	return 0;
}

/* Feed buffered input to the parser and run a completed request. */
static void
conn_process(HttpConn *hc)
{
	struct evbuffer *in = bufferevent_get_input(hc->bev);

	while (!hc->dispatched && !hc->closing && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t n;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = http_parser_execute(&hc->parser, &http_settings, v.iov_base, v.iov_len);
		evbuffer_drain(in, n);
		if (hc->closing)
			break;
		if (HTTP_PARSER_ERRNO(&hc->parser) == HPE_PAUSED) {
			if (hc->body_paused) {
				bufferevent_disable(hc->bev, EV_READ);
				return;
			}
			if (hc->dispatched) {
				HttpRequest *req = hc->req;

				http_handler(req);
				return;
			}
			http_parser_pause(&hc->parser, 0);
			continue;
		}
		if (HTTP_PARSER_ERRNO(&hc->parser) != HPE_OK) {
			char msg[256];

			snprintf(msg, sizeof(msg), "malformed HTTP request: %s",
					 http_errno_description(HTTP_PARSER_ERRNO(&hc->parser)));
			if (!hc->req)
				on_message_begin(&hc->parser);
			conn_parse_error(hc, 400, "BAD_REQUEST", msg);
			break;
		}
	}
	if (hc->closing && !hc->dispatched && evbuffer_get_length(bufferevent_get_output(hc->bev)) == 0)
		conn_free(hc);
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	HttpConn *hc = arg;

	if (hc->req && !hc->dispatched) {
		/* a parsed but unanswered request object left from the last message */
	}
	conn_process(hc);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	HttpConn *hc = arg;

	if (hc->dispatched)
		return;		/* pipelined bytes wait until the answer is out */
	conn_process(hc);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	HttpConn *hc = arg;

	if (hc->closing && !hc->dispatched)
		conn_free(hc);
}

static void
conn_free(HttpConn *hc)
{
	if (hc->dead)
		return;
	hc->dead = true;
	if (hc->req) {
		if (hc->dispatched) {
			/* the handler still owns the request: cancel it */
			HttpRequest *req = hc->req;

			req->conn = NULL;
			req->cancelled = true;
			vx_log(LOG_INFO, req->id, "client %s went away; cancelling", hc->peer);
			if (req->on_cancel)
				req->on_cancel(req, req->cancel_arg);
		} else if (hc->req->sink && hc->req->on_cancel) {
			/* a streaming body's owner holds state: let it clean up */
			HttpRequest *req = hc->req;

			req->conn = NULL;
			req->cancelled = true;
			req->on_cancel(req, req->cancel_arg);
			req_free(req);
		} else
			req_free(hc->req);
		hc->req = NULL;
	}
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		http_conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	http_nconns--;
	if (hc->tls_up) {
		/* a close_notify, best effort (non-blocking; unsent is fine) */
		SSL *ssl = bufferevent_openssl_get_ssl(hc->bev);

		SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
		SSL_shutdown(ssl);
		ERR_clear_error();
	}
	bufferevent_free(hc->bev);
	event_free(hc->resume);
	sb_free(&hc->url);
	sb_free(&hc->hfield);
	sb_free(&hc->hvalue);
	free(hc);
	check_drained();
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	HttpConn *hc = arg;

	if ((what & BEV_EVENT_ERROR) && hc->tls) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		if (e) {
			char msg[512];

			tls_error_string(e, msg, sizeof(msg));
			log_info("client %s: TLS %s: %s", hc->peer,
					 hc->tls_up ? "error" : "handshake failed", msg);
		}
	} else if ((what & BEV_EVENT_CONNECTED) && hc->tls)
		hc->tls_up = true;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(hc);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		  void *arg)
{
	HttpConn *hc;

	if (http_draining) {
		evutil_closesocket(fd);
		return;
	}
	hc = xcalloc(1, sizeof(HttpConn));
	if (tls_server_enabled()) {
		SSL *ssl = tls_server_new_ssl();
		int one = 1;

		if (!ssl) {
			log_warning("cannot create a TLS session; closing the connection");
			evutil_closesocket(fd);
			free(hc);
			return;
		}
		/*
		 * TLS writes several records per answer (and session tickets after
		 * the handshake); without TCP_NODELAY, Nagle holds the later ones
		 * for the client's delayed ACK (~40 ms per new connection).
		 */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* the bufferevent owns the SSL and, with CLOSE_ON_FREE, the socket */
		hc->bev = bufferevent_openssl_socket_new(http_base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
												 BEV_OPT_CLOSE_ON_FREE);
		if (!hc->bev) {
			log_warning("cannot create a TLS bufferevent; closing the connection");
			SSL_free(ssl);
			evutil_closesocket(fd);
			free(hc);
			return;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(hc->bev, 1);
		hc->tls = true;
	} else
		hc->bev = bufferevent_socket_new(http_base, fd, BEV_OPT_CLOSE_ON_FREE);
	http_parser_init(&hc->parser, HTTP_REQUEST);
	hc->parser.data = hc;
	sb_init(&hc->url);
	sb_init(&hc->hfield);
	sb_init(&hc->hvalue);
	hc->resume = event_new(http_base, -1, 0, conn_resume_cb, hc);
	if (sa->sa_family == AF_INET) {
		char ip[INET_ADDRSTRLEN];
		struct sockaddr_in *sin = (struct sockaddr_in *) sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(hc->peer, sizeof(hc->peer), "%s:%d", ip, ntohs(sin->sin_port));
	} else
		snprintf(hc->peer, sizeof(hc->peer), "fd%d", (int) fd);
	hc->next = http_conns;
	if (http_conns)
		http_conns->prev = hc;
	http_conns = hc;
	http_nconns++;
	/* stop reading ahead past 1 MB of pipelined input while a request runs */
	bufferevent_setwatermark(hc->bev, EV_READ, 0, 1 << 20);
	bufferevent_setcb(hc->bev, conn_read_cb, conn_write_cb, conn_event_cb, hc);
	bufferevent_enable(hc->bev, EV_READ | EV_WRITE);
}

bool
http_server_start(struct event_base *base, const char *addr, int port, HttpHandler handler,
				  HttpHeadersHook headers_hook, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	http_base = base;
	http_handler = handler;
	http_headers_hook = headers_hook;
	http_settings.on_message_begin = on_message_begin;
	http_settings.on_url = on_url;
	http_settings.on_header_field = on_header_field;
	http_settings.on_header_value = on_header_value;
	http_settings.on_headers_complete = on_headers_complete;
	http_settings.on_body = on_body;
	http_settings.on_message_complete = on_message_complete;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		snprintf(err, errlen, "listen_addr \"%s\" is not an IPv4 address", addr);
		return false;
	}
	http_listener = evconnlistener_new_bind(base, accept_cb, NULL,
											LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 512,
											(struct sockaddr *) &sin, sizeof(sin));
	if (!http_listener) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port,
				 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return false;
	}
	getsockname(evconnlistener_get_fd(http_listener), (struct sockaddr *) &sin, &sl);
	http_port = ntohs(sin.sin_port);
	return true;
}

void
http_server_drain(HttpDrainedCallback cb)
{
	HttpConn *hc, *n;

	http_draining = true;
	http_drained_cb = cb;
	if (http_listener) {
		evconnlistener_free(http_listener);
		http_listener = NULL;
	}
	for (hc = http_conns; hc; hc = n) {
		n = hc->next;
		if (!hc->dispatched) {
			if (evbuffer_get_length(bufferevent_get_output(hc->bev)) == 0)
				conn_free(hc);
			else
				hc->closing = true;
		}
	}
	check_drained();
}
