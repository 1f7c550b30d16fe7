/*
 * api_admin.h: the operations endpoints (readiness, metrics, slow log,
 * cluster statistics); see api_admin.c.
 */
#ifndef VX_API_ADMIN_H
#define VX_API_ADMIN_H

#include "http.h"

/*
 * Handle the request when segs (the path split on '/') names an
 * operations endpoint; false leaves it to the rest of the router.
 */
bool api_admin_route(HttpRequest *req, char **segs, int n);

#endif
