/*
 * filter.c: translation of payload filters into SQL (see filter.h).
 */
#include "filter.h"

#include <stdio.h>
#include <string.h>

typedef struct FilterCtx {
	StrBuf *sql;
	ParamList *params;
	char *err;
	size_t errlen;
	int nconds;
} FilterCtx;

static bool filter_clause(FilterCtx *fc, json_t *f, const char *path, int depth);

/* Append payload->$a->$b for a dotted key; false on an empty segment. */
static bool
filter_key(FilterCtx *fc, const char *key, const char *path)
{
	const char *p = key;

	if (!*key || strlen(key) > 1024) {
		snprintf(fc->err, fc->errlen, "%s.key must be a non-empty string of at most 1024 bytes",
				 path);
		return false;
	}
	sb_append(fc->sql, "(payload");
	while (1) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t) (dot - p) : strlen(p);
		char *seg;

		if (n == 0) {
			snprintf(fc->err, fc->errlen, "%s.key has an empty path segment", path);
			return false;
		}
		seg = xmalloc(n + 1);
		memcpy(seg, p, n);
		seg[n] = '\0';
		sb_appendf(fc->sql, "->$%d::text", params_add_owned(fc->params, seg));
		if (!dot)
			break;
		p = dot + 1;
	}
	sb_append(fc->sql, ")");
	return true;
}

static bool
is_scalar(json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

static int
add_json_param(FilterCtx *fc, json_t *v)
{
	return params_add_owned(fc->params, json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT));
}

/* One condition object: key + match/range/any, or a nested filter. */
static bool
filter_condition(FilterCtx *fc, json_t *c, const char *path, int depth)
{
	json_t *key, *v;
	StrBuf keysql;

	if (!json_is_object(c)) {
		snprintf(fc->err, fc->errlen, "%s must be an object", path);
		return false;
	}
	if (++fc->nconds > FILTER_MAX_CONDITIONS) {
		snprintf(fc->err, fc->errlen, "filter has more than %d conditions",
				 FILTER_MAX_CONDITIONS);
		return false;
	}
	key = json_object_get(c, "key");
	if (!key) {
		if (json_object_get(c, "must") || json_object_get(c, "should") ||
			json_object_get(c, "must_not"))
			return filter_clause(fc, c, path, depth + 1);
		snprintf(fc->err, fc->errlen, "%s needs \"key\" or must/should/must_not", path);
		return false;
	}
	if (!json_is_string(key)) {
		snprintf(fc->err, fc->errlen, "%s.key must be a string", path);
		return false;
	}
	/* build the key expression separately: it is used more than once */
	{
		StrBuf *saved = fc->sql;

		sb_init(&keysql);
		fc->sql = &keysql;
		if (!filter_key(fc, json_string_value(key), path)) {
			fc->sql = saved;
			sb_free(&keysql);
			return false;
		}
		fc->sql = saved;
	}
	if ((v = json_object_get(c, "match"))) {
		if (!is_scalar(v)) {
			snprintf(fc->err, fc->errlen, "%s.match must be a string, number or boolean",
					 path);
			goto fail;
		}
		sb_appendf(fc->sql, "coalesce(%s @> $%d::jsonb, false)", keysql.data,
				   add_json_param(fc, v));
	} else if ((v = json_object_get(c, "any"))) {
		size_t i;
		json_t *e;

		if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 1024) {
			snprintf(fc->err, fc->errlen, "%s.any must be a non-empty array (at most 1024)",
					 path);
			goto fail;
		}
		sb_append(fc->sql, "coalesce(");
		json_array_foreach(v, i, e) {
			if (!is_scalar(e)) {
				snprintf(fc->err, fc->errlen,
						 "%s.any[%zu] must be a string, number or boolean", path, i);
				goto fail;
			}
			sb_appendf(fc->sql, "%s%s @> $%d::jsonb", i ? " OR " : "", keysql.data,
					   add_json_param(fc, e));
		}
		sb_append(fc->sql, ", false)");
	} else if ((v = json_object_get(c, "range"))) {
		static const char *const ops[][2] = {{"gt", ">"}, {"gte", ">="}, {"lt", "<"},
											  {"lte", "<="}};
		const char *k;
		json_t *bound;
		int n = 0;

		if (!json_is_object(v)) {
			snprintf(fc->err, fc->errlen, "%s.range must be an object", path);
			goto fail;
		}
		json_object_foreach(v, k, bound) {
			bool known = false;

			for (int i = 0; i < 4; i++)
				if (strcmp(k, ops[i][0]) == 0)
					known = true;
			if (!known) {
				snprintf(fc->err, fc->errlen, "%s.range has unknown bound \"%.64s\"", path, k);
				goto fail;
			}
		}
		sb_appendf(fc->sql, "coalesce(CASE WHEN jsonb_typeof(%s) = 'number' THEN (",
				   keysql.data);
		for (int i = 0; i < 4; i++) {
			char num[64];

			bound = json_object_get(v, ops[i][0]);
			if (!bound)
				continue;
			if (!json_is_number(bound)) {
				snprintf(fc->err, fc->errlen, "%s.range.%s must be a number", path, ops[i][0]);
				goto fail;
			}
			if (json_is_integer(bound))
				snprintf(num, sizeof(num), "%lld", (long long) json_integer_value(bound));
			else
				snprintf(num, sizeof(num), "%.17g", json_real_value(bound));
			sb_appendf(fc->sql, "%s(%s)::numeric %s $%d::numeric", n ? " AND " : "",
					   keysql.data, ops[i][1], params_add(fc->params, num));
			n++;
		}
		if (n == 0) {
			snprintf(fc->err, fc->errlen, "%s.range needs at least one of gt, gte, lt, lte",
					 path);
			goto fail;
		}
		sb_append(fc->sql, ") END, false)");
	} else {
		snprintf(fc->err, fc->errlen, "%s needs one of match, range, any", path);
		goto fail;
	}
	sb_free(&keysql);
	return true;
fail:
	sb_free(&keysql);
	return false;
}

/* A must/should/must_not object. */
static bool
filter_clause(FilterCtx *fc, json_t *f, const char *path, int depth)
{
	static const char *const parts[] = {"must", "should", "must_not"};
	const char *k;
	json_t *v;
	int nparts = 0;

	if (depth > FILTER_MAX_DEPTH) {
		snprintf(fc->err, fc->errlen, "%s nests deeper than %d", path, FILTER_MAX_DEPTH);
		return false;
	}
	if (!json_is_object(f)) {
		snprintf(fc->err, fc->errlen, "%s must be an object", path);
		return false;
	}
	json_object_foreach(f, k, v) {
		if (strcmp(k, "must") && strcmp(k, "should") && strcmp(k, "must_not")) {
			snprintf(fc->err, fc->errlen, "%s has unknown field \"%.64s\"", path, k);
			return false;
		}
	}
	sb_append(fc->sql, "(");
	for (int p = 0; p < 3; p++) {
		json_t *arr = json_object_get(f, parts[p]);
		size_t i;
		json_t *c;

		if (!arr)
			continue;
		if (!json_is_array(arr)) {
			snprintf(fc->err, fc->errlen, "%s.%s must be an array", path, parts[p]);
			return false;
		}
		if (json_array_size(arr) == 0)
			continue;
		sb_append(fc->sql, nparts++ ? " AND " : "");
		sb_append(fc->sql, p == 2 ? "NOT (" : "(");
		json_array_foreach(arr, i, c) {
			char sub[256];

			snprintf(sub, sizeof(sub), "%s.%s[%zu]", path, parts[p], i);
			if (i)
				sb_append(fc->sql, p == 0 ? " AND " : " OR ");
			if (!filter_condition(fc, c, sub, depth))
				return false;
		}
		sb_append(fc->sql, ")");
	}
	if (nparts == 0)
		sb_append(fc->sql, "true");
	sb_append(fc->sql, ")");
	return true;
}

bool
filter_to_sql(json_t *filter, StrBuf *sql, ParamList *params, char *err, size_t errlen)
{
	FilterCtx fc = {sql, params, err, errlen, 0};

	return filter_clause(&fc, filter, "filter", 0);
}
