/*
 * api_auth.h: the account, token, key and grant endpoints (issue 5):
 * /v1/auth/{register,login,refresh,logout,token,password-reset,jwks.json},
 * /v1/keys, /v1/me, /v1/admin/users (with {id}/quota and
 * {id}/password-reset), /v1/admin/audit, /v1/collections/{name}/grants.
 */
#ifndef VX_API_AUTH_H
#define VX_API_AUTH_H

#include "http.h"

/*
 * Route the request if it is one of ours (segments of the path as split by
 * api_handle).  True when it has been (or will be) answered.  With auth off
 * these paths answer 404 AUTH_DISABLED.
 */
bool api_auth_route(HttpRequest *req, char **segs, int n);

#endif
