/*
 * console.c: serves the management console (console/index.html, app.js,
 * style.css), a static single-page app that talks to the REST API from the
 * same origin.  The files are public (they hold no data); every API call
 * the page makes is authenticated like any other client's.  Answers carry
 * a strict Content-Security-Policy: scripts and styles only from this
 * origin, no framing.
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "util.h"

#define CONSOLE_HEADERS \
	"Content-Security-Policy: default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"Cache-Control: no-cache\r\n"

bool
console_route(HttpRequest *req, char **segs, int n)
{
	const char *file;
	const ConsoleAsset *a;

	if (n < 1 || n > 2 || strcmp(segs[0], "console") != 0)
		return false;
	if (req->method != HTTP_GET) {
		http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use GET",
						   req->method_name, req->path);
		return true;
	}
	file = n == 1 ? "index.html" : segs[1];
	for (a = console_assets; a->name; a++) {
		if (strcmp(a->name, file) == 0) {
			free(req->extra_headers);
			req->extra_headers = xstrdup(CONSOLE_HEADERS);
			http_respond_raw(req, 200, a->ctype, a->data, a->len);
			return true;
		}
	}
	http_respond_error(req, 404, "NOT_FOUND", "no console file %s", file);
	return true;
}
