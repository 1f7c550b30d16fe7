/*
 * api.h: the REST API v1.  api.c routes requests and holds the admin
 * (nodes) handlers and shared helpers; api_collections.c and api_points.c
 * hold the collection and point handlers.
 */
#ifndef VX_API_H
#define VX_API_H

#include "http.h"

/* Entry point for every HTTP request. */
void api_handle(HttpRequest *req);
/* Called when a request's headers are in: streams NDJSON imports. */
void api_headers(HttpRequest *req);

#endif
