/*
 * test_rbac.c: every cell of the authorisation table (coordinator/rbac.c),
 * and that docs/security.md prints the same table.
 *
 *   test_rbac                    run the checks
 *   test_rbac docs/security.md   also check the document's table
 *   test_rbac --markdown         print the table for the document
 *
 * Cells: A allowed, 1 401, 3 403.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbac.h"
#include "tap.h"

static const char *const star[] = {"*"};
static const char *const docs_only[] = {"docs"};

/* The columns of the main table: token type and role, scope "*". */
typedef struct Column {
	const char *title;
	RbacSubject s;
} Column;

static const Column main_cols[] = {
	{"no token", {RBAC_TOKEN_NONE, RBAC_ROLE_NONE, RBAC_ROLE_NONE, NULL, 0}},
	{"login readonly", {RBAC_TOKEN_LOGIN, RBAC_ROLE_READONLY, RBAC_ROLE_NONE, NULL, 0}},
	{"login write", {RBAC_TOKEN_LOGIN, RBAC_ROLE_WRITE, RBAC_ROLE_NONE, NULL, 0}},
	{"login admin", {RBAC_TOKEN_LOGIN, RBAC_ROLE_ADMIN, RBAC_ROLE_NONE, NULL, 0}},
	{"sdk readonly", {RBAC_TOKEN_SDK, RBAC_ROLE_ADMIN, RBAC_ROLE_READONLY, star, 1}},
	{"sdk write", {RBAC_TOKEN_SDK, RBAC_ROLE_ADMIN, RBAC_ROLE_WRITE, star, 1}},
	{"sdk admin", {RBAC_TOKEN_SDK, RBAC_ROLE_ADMIN, RBAC_ROLE_ADMIN, star, 1}},
};
#define NMAIN (int) (sizeof(main_cols) / sizeof(main_cols[0]))

typedef struct Row {
	RbacRoute route;
	const char *routes;			/* what the class covers, for the document */
	const char *cells;
} Row;

/* Policy: health public, metrics behind a token; collection owned by the caller. */
static const Row main_rows[] = {
	{RBAC_ROUTE_HEALTH, "`GET /healthz`, `/readyz`", "AAAAAAA"},
	{RBAC_ROUTE_METRICS, "`GET /metrics`", "133A33A"},
	{RBAC_ROUTE_AUTH, "`/v1/auth/{login,refresh,logout,token,register,password-reset}`, `GET /v1/auth/jwks.json`, `GET /v1/openapi.json`", "AAAAAAA"},
	{RBAC_ROUTE_ME, "`GET /v1/me`", "1AAAAAA"},
	{RBAC_ROUTE_ACCOUNT, "`/v1/me/password` (change own password)", "1AAA333"},
	{RBAC_ROUTE_KEYS, "`/v1/keys`, `/v1/keys/{id}`, `/v1/keys/{id}/rotate`", "1AAA333"},
	{RBAC_ROUTE_COLLECTION_LIST, "`GET /v1/collections` (filtered)", "1AAAAAA"},
	{RBAC_ROUTE_DATA_READ, "`GET /v1/collections/{name}[/...]`, `POST .../{points/get,search,search/batch,count,scroll,recommend}`", "1AAAAAA"},
	{RBAC_ROUTE_DATA_WRITE, "any other method under `/v1/collections/{name}/` (upsert, delete, import points)", "13AA3AA"},
	{RBAC_ROUTE_COLLECTION_CREATE, "`POST /v1/collections`", "13AA3AA"},
	{RBAC_ROUTE_COLLECTION_DELETE, "`DELETE /v1/collections/{name}`", "13AA3AA"},
	{RBAC_ROUTE_GRANTS, "`/v1/collections/{name}/grants`", "13AA333"},
	{RBAC_ROUTE_ADMIN_CLUSTER, "every other `/v1/admin/...` (stats, nodes, shards, rebalance, slow)", "133A33A"},
	{RBAC_ROUTE_ADMIN_USERS, "`/v1/admin/users*` (with `{id}/quota`, `{id}/password-reset`), `/v1/admin/audit`", "133A333"},
};
#define NROWS (int) (sizeof(main_rows) / sizeof(main_rows[0]))

/* The collection table: the user's right and the key's scope. */
static const Column coll_cols[] = {
	{"login write", {RBAC_TOKEN_LOGIN, RBAC_ROLE_WRITE, RBAC_ROLE_NONE, NULL, 0}},
	{"login admin", {RBAC_TOKEN_LOGIN, RBAC_ROLE_ADMIN, RBAC_ROLE_NONE, NULL, 0}},
	{"sdk write, in scope", {RBAC_TOKEN_SDK, RBAC_ROLE_WRITE, RBAC_ROLE_WRITE, docs_only, 1}},
	{"sdk write, out of scope", {RBAC_TOKEN_SDK, RBAC_ROLE_WRITE, RBAC_ROLE_WRITE, docs_only, 1}},
	{"sdk admin, out of scope", {RBAC_TOKEN_SDK, RBAC_ROLE_ADMIN, RBAC_ROLE_ADMIN, docs_only, 1}},
};
#define NCOLL (int) (sizeof(coll_cols) / sizeof(coll_cols[0]))

typedef struct CollRow {
	RbacRoute route;
	RbacAccess access;
	const char *cells;
} CollRow;

static const char *const access_names[] = {"none", "granted readonly", "granted write", "owner"};

static const CollRow coll_rows[] = {
	{RBAC_ROUTE_DATA_READ, RBAC_ACCESS_NONE, "3A333"},
	{RBAC_ROUTE_DATA_READ, RBAC_ACCESS_READ, "AAA33"},
	{RBAC_ROUTE_DATA_READ, RBAC_ACCESS_WRITE, "AAA33"},
	{RBAC_ROUTE_DATA_READ, RBAC_ACCESS_OWNER, "AAA33"},
	{RBAC_ROUTE_DATA_WRITE, RBAC_ACCESS_NONE, "3A333"},
	{RBAC_ROUTE_DATA_WRITE, RBAC_ACCESS_READ, "3A333"},
	{RBAC_ROUTE_DATA_WRITE, RBAC_ACCESS_WRITE, "AAA33"},
	{RBAC_ROUTE_DATA_WRITE, RBAC_ACCESS_OWNER, "AAA33"},
	{RBAC_ROUTE_COLLECTION_CREATE, RBAC_ACCESS_NONE, "AAA33"},
	{RBAC_ROUTE_COLLECTION_DELETE, RBAC_ACCESS_NONE, "3A333"},
	{RBAC_ROUTE_COLLECTION_DELETE, RBAC_ACCESS_READ, "3A333"},
	{RBAC_ROUTE_COLLECTION_DELETE, RBAC_ACCESS_WRITE, "3A333"},
	{RBAC_ROUTE_COLLECTION_DELETE, RBAC_ACCESS_OWNER, "AAA33"},
	{RBAC_ROUTE_GRANTS, RBAC_ACCESS_NONE, "3A333"},
	{RBAC_ROUTE_GRANTS, RBAC_ACCESS_OWNER, "AA333"},
	{RBAC_ROUTE_ADMIN_CLUSTER, RBAC_ACCESS_NONE, "3A333"},
};
#define NCROWS (int) (sizeof(coll_rows) / sizeof(coll_rows[0]))

static char
cell(RbacDecision d)
{
	return d == RBAC_ALLOW ? 'A' : d == RBAC_UNAUTHORIZED ? '1' : '3';
}

static const char *
cell_text(char c)
{
	return c == 'A' ? "yes" : c == '1' ? "401" : "403";
}

static char
decide_main(const RbacPolicy *p, int row, int col, const char **reason)
{
	RbacTarget t = {main_rows[row].route, "docs", RBAC_ACCESS_OWNER};

	return cell(rbac_check(p, &main_cols[col].s, &t, reason));
}

static char
decide_coll(const RbacPolicy *p, int row, int col, const char **reason)
{
	/* columns 3 and 4 target a collection outside the key's scope */
	RbacTarget t = {coll_rows[row].route, col >= 3 ? "other" : "docs", coll_rows[row].access};

	return cell(rbac_check(p, &coll_cols[col].s, &t, reason));
}

/* The document's tables, from the decision function itself. */
static char *
markdown(const RbacPolicy *p)
{
	static char buf[16384];
	size_t n = 0;
	int r, c;

#define OUT(...) n += (size_t) snprintf(buf + n, sizeof(buf) - n, __VA_ARGS__)
	OUT("| route class | routes |");
	for (c = 0; c < NMAIN; c++)
		OUT(" %s |", main_cols[c].title);
	OUT("\n|---|---|");
	for (c = 0; c < NMAIN; c++)
		OUT("---|");
	OUT("\n");
	for (r = 0; r < NROWS; r++) {
		OUT("| %s | %s |", rbac_route_name(main_rows[r].route), main_rows[r].routes);
		for (c = 0; c < NMAIN; c++)
			OUT(" %s |", cell_text(decide_main(p, r, c, NULL)));
		OUT("\n");
	}
	OUT("\n| route class | caller's right on the collection |");
	for (c = 0; c < NCOLL; c++)
		OUT(" %s |", coll_cols[c].title);
	OUT("\n|---|---|");
	for (c = 0; c < NCOLL; c++)
		OUT("---|");
	OUT("\n");
	for (r = 0; r < NCROWS; r++) {
		OUT("| %s | %s |", rbac_route_name(coll_rows[r].route),
			coll_rows[r].route == RBAC_ROUTE_COLLECTION_CREATE ? "(new)" :
			coll_rows[r].route == RBAC_ROUTE_ADMIN_CLUSTER ? "(any)" : access_names[coll_rows[r].access]);
		for (c = 0; c < NCOLL; c++)
			OUT(" %s |", cell_text(decide_coll(p, r, c, NULL)));
		OUT("\n");
	}
#undef OUT
	return buf;
}

int
main(int argc, char **argv)
{
	RbacPolicy pol = {true, false};
	int r, c;
	const char *reason;

	if (argc > 1 && strcmp(argv[1], "--markdown") == 0) {
		fputs(markdown(&pol), stdout);
		return 0;
	}

	for (r = 0; r < NROWS; r++)
		for (c = 0; c < NMAIN; c++) {
			char got = decide_main(&pol, r, c, &reason);
			char want = main_rows[r].cells[c];

			ok(got == want && (got == 'A') == (reason == NULL),
			   "%s x %s: %s (want %s)%s%s", rbac_route_name(main_rows[r].route), main_cols[c].title,
			   cell_text(got), cell_text(want), reason ? ": " : "", reason ? reason : "");
		}
	for (r = 0; r < NCROWS; r++)
		for (c = 0; c < NCOLL; c++) {
			char got = decide_coll(&pol, r, c, &reason);
			char want = coll_rows[r].cells[c];

			ok(got == want, "%s, %s x %s: %s (want %s)%s%s", rbac_route_name(coll_rows[r].route),
			   access_names[coll_rows[r].access], coll_cols[c].title, cell_text(got), cell_text(want),
			   reason ? ": " : "", reason ? reason : "");
		}

	/* policy switches */
	{
		RbacPolicy closed = {false, false}, open = {true, true};
		RbacTarget h = {RBAC_ROUTE_HEALTH, NULL, RBAC_ACCESS_NONE};
		RbacTarget m = {RBAC_ROUTE_METRICS, NULL, RBAC_ACCESS_NONE};

		ok(rbac_check(&closed, &main_cols[0].s, &h, NULL) == RBAC_UNAUTHORIZED,
		   "health behind a token: no token is 401");
		ok(rbac_check(&closed, &main_cols[2].s, &h, NULL) == RBAC_FORBIDDEN,
		   "health behind a token: login write is 403");
		ok(rbac_check(&closed, &main_cols[3].s, &h, NULL) == RBAC_ALLOW,
		   "health behind a token: login admin is allowed");
		ok(rbac_check(&open, &main_cols[0].s, &m, NULL) == RBAC_ALLOW, "public metrics: no token allowed");
		ok(rbac_check(&pol, &coll_cols[4].s, &m, NULL) == RBAC_FORBIDDEN,
		   "metrics: a collection-scoped admin key is 403");
	}

	/* keys narrow and never widen */
	{
		RbacSubject s = {RBAC_TOKEN_SDK, RBAC_ROLE_READONLY, RBAC_ROLE_ADMIN, star, 1};
		RbacTarget w = {RBAC_ROUTE_DATA_WRITE, "docs", RBAC_ACCESS_OWNER};
		RbacTarget a = {RBAC_ROUTE_ADMIN_CLUSTER, NULL, RBAC_ACCESS_NONE};
		RbacTarget rd = {RBAC_ROUTE_DATA_READ, "docs", RBAC_ACCESS_OWNER};

		ok(rbac_effective_role(&s) == RBAC_ROLE_READONLY, "admin key of a readonly user acts readonly");
		ok(rbac_check(&pol, &s, &w, &reason) == RBAC_FORBIDDEN, "... so it cannot write (%s)", reason);
		ok(rbac_check(&pol, &s, &a, &reason) == RBAC_FORBIDDEN, "... nor call admin routes");
		ok(rbac_check(&pol, &s, &rd, &reason) == RBAC_ALLOW, "... but can read");
		s.user_role = RBAC_ROLE_NONE;
		ok(rbac_check(&pol, &s, &rd, &reason) == RBAC_FORBIDDEN, "a user with no role is 403 (%s)", reason);
		s.user_role = RBAC_ROLE_ADMIN;
		s.key_role = (RbacRole) 9;
		ok(rbac_check(&pol, &s, &rd, &reason) == RBAC_FORBIDDEN, "an out-of-range key role is 403");
		s.key_role = RBAC_ROLE_WRITE;
		s.collections = NULL;
		s.ncollections = 0;
		ok(rbac_check(&pol, &s, &rd, &reason) == RBAC_FORBIDDEN, "a key with an empty scope reaches nothing");
		ok(rbac_check(&pol, NULL, &rd, &reason) == RBAC_UNAUTHORIZED, "no subject is 401");
	}
	{
		RbacSubject s = {RBAC_TOKEN_SDK, RBAC_ROLE_WRITE, RBAC_ROLE_WRITE, docs_only, 1};
		RbacTarget t = {RBAC_ROUTE_DATA_READ, NULL, RBAC_ACCESS_OWNER};
		RbacTarget bad = {(RbacRoute) 99, "docs", RBAC_ACCESS_OWNER};

		ok(rbac_check(&pol, &s, &t, &reason) == RBAC_FORBIDDEN, "a data route without a collection is 403");
		ok(rbac_check(&pol, &s, &bad, &reason) == RBAC_FORBIDDEN, "an unknown route is 403");
		ok(rbac_in_scope(&s, "docs") && !rbac_in_scope(&s, "doc") && !rbac_in_scope(&s, "docsx") &&
		   !rbac_in_scope(&s, NULL), "scope matches whole names only");
	}
	{
		static const char want[4][4] = {{0, 0, 0, 0}, {0, 1, 0, 0}, {0, 1, 1, 0}, {0, 1, 1, 1}};
		int u, k, all = 1;

		for (u = 0; u < 4; u++)
			for (k = 0; k < 4; k++)
				if (rbac_key_role_allowed((RbacRole) u, (RbacRole) k) != want[u][k])
					all = 0;
		ok(all, "a key's role is at most its user's role (4x4)");
	}
	{
		RbacRole role = RBAC_ROLE_NONE;

		ok(rbac_parse_role("write", &role) && role == RBAC_ROLE_WRITE, "parse write");
		ok(rbac_parse_role("readonly", &role) && role == RBAC_ROLE_READONLY &&
		   rbac_parse_role("admin", &role) && role == RBAC_ROLE_ADMIN, "parse readonly and admin");
		ok(!rbac_parse_role("Admin", &role) && !rbac_parse_role("none", &role) &&
		   !rbac_parse_role("", &role) && !rbac_parse_role(NULL, &role), "exact role strings only");
	}

	/* method and path to route class, with the collection from the path */
	{
		static const struct {
			const char *method, *path;
			int known;
			RbacRoute route;
			const char *coll;
		} paths[] = {
			{"GET", "/healthz", 1, RBAC_ROUTE_HEALTH, ""},
			{"GET", "/readyz", 1, RBAC_ROUTE_HEALTH, ""},
			{"POST", "/healthz", 0, RBAC_ROUTE_HEALTH, ""},
			{"GET", "/metrics", 1, RBAC_ROUTE_METRICS, ""},
			{"GET", "/v1/openapi.json", 1, RBAC_ROUTE_AUTH, ""},
			{"POST", "/v1/auth/login", 1, RBAC_ROUTE_AUTH, ""},
			{"POST", "/v1/auth/token", 1, RBAC_ROUTE_AUTH, ""},
			{"GET", "/v1/auth/jwks.json", 1, RBAC_ROUTE_AUTH, ""},
			{"GET", "/v1/authx", 0, RBAC_ROUTE_AUTH, ""},
			{"GET", "/v1/me", 1, RBAC_ROUTE_ME, ""},
			{"PUT", "/v1/me/password", 1, RBAC_ROUTE_ACCOUNT, ""},
			{"POST", "/v1/keys", 1, RBAC_ROUTE_KEYS, ""},
			{"DELETE", "/v1/keys/abc", 1, RBAC_ROUTE_KEYS, ""},
			{"POST", "/v1/keys/abc/rotate", 1, RBAC_ROUTE_KEYS, ""},
			{"GET", "/v1/admin/users", 1, RBAC_ROUTE_ADMIN_USERS, ""},
			{"PUT", "/v1/admin/users/7/quota", 1, RBAC_ROUTE_ADMIN_USERS, ""},
			{"POST", "/v1/admin/users/7/password-reset", 1, RBAC_ROUTE_ADMIN_USERS, ""},
			{"POST", "/v1/auth/password-reset", 1, RBAC_ROUTE_AUTH, ""},
			{"GET", "/v1/admin/audit", 1, RBAC_ROUTE_ADMIN_USERS, ""},
			{"GET", "/v1/admin/nodes", 1, RBAC_ROUTE_ADMIN_CLUSTER, ""},
			{"POST", "/v1/admin/nodes/w1/drain", 1, RBAC_ROUTE_ADMIN_CLUSTER, ""},
			{"POST", "/v1/admin/rebalance", 1, RBAC_ROUTE_ADMIN_CLUSTER, ""},
			{"GET", "/v1/adminx", 0, RBAC_ROUTE_ADMIN_CLUSTER, ""},
			{"GET", "/v1/collections", 1, RBAC_ROUTE_COLLECTION_LIST, ""},
			{"POST", "/v1/collections", 1, RBAC_ROUTE_COLLECTION_CREATE, ""},
			{"DELETE", "/v1/collections", 0, RBAC_ROUTE_COLLECTION_LIST, ""},
			{"GET", "/v1/collections/docs", 1, RBAC_ROUTE_DATA_READ, "docs"},
			{"DELETE", "/v1/collections/docs", 1, RBAC_ROUTE_COLLECTION_DELETE, "docs"},
			{"PATCH", "/v1/collections/docs", 0, RBAC_ROUTE_DATA_READ, ""},
			{"PUT", "/v1/collections/docs/points", 1, RBAC_ROUTE_DATA_WRITE, "docs"},
			{"POST", "/v1/collections/docs/points/get", 1, RBAC_ROUTE_DATA_READ, "docs"},
			{"POST", "/v1/collections/docs/points/delete", 1, RBAC_ROUTE_DATA_WRITE, "docs"},
			{"POST", "/v1/collections/docs/points/import", 1, RBAC_ROUTE_DATA_WRITE, "docs"},
			{"POST", "/v1/collections/docs/search", 1, RBAC_ROUTE_DATA_READ, "docs"},
			{"POST", "/v1/collections/docs/search/batch", 1, RBAC_ROUTE_DATA_READ, "docs"},
			{"POST", "/v1/collections/docs/search/batchx", 1, RBAC_ROUTE_DATA_WRITE, "docs"},
			{"POST", "/v1/collections/docs/brand_new_endpoint", 1, RBAC_ROUTE_DATA_WRITE, "docs"},
			{"GET", "/v1/collections/docs/points/7", 1, RBAC_ROUTE_DATA_READ, "docs"},
			{"POST", "/v1/collections/docs/grants", 1, RBAC_ROUTE_GRANTS, "docs"},
			{"DELETE", "/v1/collections/docs/grants/u9", 1, RBAC_ROUTE_GRANTS, "docs"},
			{"GET", "/v1/collections//search", 0, RBAC_ROUTE_DATA_READ, ""},
			{"GET", "/nope", 0, RBAC_ROUTE_HEALTH, ""},
			{"GET", "", 0, RBAC_ROUTE_HEALTH, ""},
		};
		size_t i;
		char coll[16];
		RbacRoute route;

		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			bool known = rbac_route_classify(paths[i].method, paths[i].path, coll, sizeof(coll), &route);

			ok(known == (bool) paths[i].known &&
			   (!known || (route == paths[i].route && strcmp(coll, paths[i].coll) == 0)),
			   "%s %s -> %s%s%s", paths[i].method, paths[i].path,
			   paths[i].known ? rbac_route_name(paths[i].route) : "unknown",
			   paths[i].coll[0] ? " on " : "", paths[i].coll);
		}
		ok(!rbac_route_classify("GET", "/v1/collections/a_name_longer_than_fifteen/search", coll,
								sizeof(coll), &route), "a collection segment that does not fit is refused");
		ok(!rbac_route_classify(NULL, "/healthz", coll, sizeof(coll), &route), "no method");
	}

	if (argc > 1) {
		FILE *f = fopen(argv[1], "r");
		static char doc[1 << 20];
		size_t n = f ? fread(doc, 1, sizeof(doc) - 1, f) : 0;

		if (f)
			fclose(f);
		doc[n] = '\0';
		ok(n > 0 && strstr(doc, markdown(&pol)) != NULL,
		   "%s prints the same table as rbac.c (regenerate with test_rbac --markdown)", argv[1]);
	}
	return tap_done();
}
