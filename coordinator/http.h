/*
 * http.h: a thin HTTP/1.1 server on libevent bufferevents and
 * libhttp-parser.  Bodies stream through the parser as they arrive and are
 * refused with 413 as soon as they pass max_body_bytes; keep-alive and
 * pipelined requests work (one request is handled at a time per
 * connection); every error the layer makes itself is JSON; a client that
 * hangs up while its request runs fires the request's cancel hook.
 */
#ifndef VX_HTTP_H
#define VX_HTTP_H

#include "util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

typedef struct HttpConn HttpConn;
typedef struct HttpRequest HttpRequest;
typedef void (*HttpHandler)(HttpRequest *req);
typedef void (*HttpCancelHook)(HttpRequest *req, void *arg);
/*
 * A body sink gets the body in pieces as they arrive, instead of the body
 * buffer.  It returns false to pause reading (backpressure); the owner
 * calls http_resume_body when it can take more.
 */
typedef bool (*HttpBodySink)(HttpRequest *req, const char *data, size_t len, void *arg);
/* Called when the headers are in; may call http_stream_body. */
typedef void (*HttpHeadersHook)(HttpRequest *req);

struct HttpRequest {
	HttpConn *conn;			/* NULL once the client has gone */
	int method;				/* enum http_method */
	const char *method_name;
	char *path;				/* decoded path without the query */
	char *query;			/* raw query string or NULL */
	char *authorization;	/* Authorization header, for the auth hook */
	struct evbuffer *body;
	char id[20];			/* request id for logs and X-Request-Id */
	uint64_t start_ms;
	bool keep_alive;
	bool cancelled;
	HttpCancelHook on_cancel;
	void *cancel_arg;
	HttpBodySink sink;		/* set by http_stream_body */
	void *sink_arg;
};

typedef void (*HttpDrainedCallback)(void);

bool http_server_start(struct event_base *base, const char *addr, int port,
					   HttpHandler handler, HttpHeadersHook headers_hook, char *err,
					   size_t errlen) VX_WARN_UNUSED;
/* From the headers hook: stream this request's body to sink (no size cap). */
void http_stream_body(HttpRequest *req, HttpBodySink sink, void *arg);
/* Take more body after a sink returned false. */
void http_resume_body(HttpRequest *req);
/* Stop accepting, close idle connections, call cb when none is left. */
void http_server_drain(HttpDrainedCallback cb);
int http_server_port(void);
int http_inflight(void);

/* Answer with a JSON body (reference stolen); frees the request. */
void http_respond_json(HttpRequest *req, int status, json_t *body);
/* Answer {"error":{"code","message"}}; frees the request. */
void http_respond_error(HttpRequest *req, int status, const char *code, const char *fmt, ...)
	VX_PRINTF(4, 5);
/* Answer with a raw body of a given content type; frees the request. */
void http_respond_raw(HttpRequest *req, int status, const char *ctype, const char *body,
					  size_t len);

/* Register what to call if the client hangs up before the answer. */
void http_set_cancel(HttpRequest *req, HttpCancelHook hook, void *arg);

/* Copy the body into a NUL-terminated string (caller frees). */
char *http_body_string(HttpRequest *req, size_t *len);

#endif
