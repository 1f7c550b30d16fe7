/*
 * test_unit.c: unit tests of the coordinator's pure modules (hash and
 * routing, filter-to-SQL translation, top-k merge, config parsing, name
 * validation), printed as TAP.  Built and run by `make check`
 * (scripts/check.d/50-coordinator-unit).
 */
#include "config.h"
#include "filter.h"
#include "hash.h"
#include "merge.h"
#include "util.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_n, t_failed;

static void
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	t_n++;
	printf("%sok %d - ", cond ? "" : "not ", t_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		t_failed++;
}

/* ---- hash ---- */

static void
test_hash(void)
{
	ok(hash_point_id("", 0) == 0x811c9dc5u, "hash: FNV-1a of empty string");
	ok(hash_point_id("a", 1) == 0xe40c292cu, "hash: FNV-1a of \"a\"");
	ok(hash_point_id("foobar", 6) == 0xbf9cf968u, "hash: FNV-1a of \"foobar\"");
	for (int n = 1; n <= 17; n++) {
		int64_t mins[17], prev_max = -1;
		int contiguous = 1, agree = 1;

		for (int i = 0; i < n; i++) {
			int64_t mn, mx;

			hash_shard_range(i, n, &mn, &mx);
			mins[i] = mn;
			if (mn != prev_max + 1 || mx < mn)
				contiguous = 0;
			prev_max = mx;
		}
		if (prev_max != INT64_C(4294967295))
			contiguous = 0;
		ok(contiguous, "hash: %d shard ranges are contiguous and cover 2^32", n);
		srand(n);
		for (int t = 0; t < 20000; t++) {
			uint32_t h = ((uint32_t) rand() << 16) ^ (uint32_t) rand();
			int want;

			if (t == 0)
				h = 0;
			if (t == 1)
				h = 0xffffffffu;
			if (t >= 2 && t < 2 + n)
				h = (uint32_t) mins[t - 2];
			want = (int) (((uint64_t) h * n) >> 32);
			if (t >= 2 && t < 2 + n && want != t - 2)
				agree = 0;
			if (hash_route(h, mins, n) != want)
				agree = 0;
		}
		ok(agree, "hash: routing by ranges equals floor(h*n/2^32) for %d shards", n);
	}
}

/* ---- filter ---- */

static char *
filter_sql(const char *json, ParamList *pl, char *err, size_t errlen)
{
	json_t *f = json_loads(json, 0, NULL);
	StrBuf sb;
	bool ok_;

	sb_init(&sb);
	params_init(pl);
	ok_ = filter_to_sql(f, &sb, pl, err, errlen);
	json_decref(f);
	if (!ok_) {
		sb_free(&sb);
		return NULL;
	}
	return sb_steal(&sb);
}

/* True when sql holds only fixed fragments: no quote except our own literals. */
static int
sql_is_clean(const char *sql, const char *forbidden)
{
	return strstr(sql, forbidden) == NULL;
}

static void
test_filter(void)
{
	ParamList pl;
	char err[512];
	char *s;

	s = filter_sql("{\"must\":[{\"key\":\"color\",\"match\":\"red\"}]}", &pl, err, sizeof(err));
	ok(s && strcmp(s, "((coalesce((payload->$1::text) @> $2::jsonb, false)))") == 0,
	   "filter: match -> %s", s ? s : err);
	ok(pl.n == 2 && strcmp(pl.v[0], "color") == 0 && strcmp(pl.v[1], "\"red\"") == 0,
	   "filter: match parameters are the key and the JSON value");
	free(s);
	params_free(&pl);

	s = filter_sql("{\"must\":[{\"key\":\"a.b.c\",\"range\":{\"gte\":1,\"lt\":10.5}}]}", &pl, err,
				   sizeof(err));
	ok(s && strstr(s, "payload->$1::text->$2::text->$3::text") && strstr(s, ">= $4::numeric") &&
		   strstr(s, "< $5::numeric") && strstr(s, "jsonb_typeof"),
	   "filter: dotted key and range -> %s", s ? s : err);
	ok(pl.n == 5 && strcmp(pl.v[3], "1") == 0 && strcmp(pl.v[4], "10.5") == 0,
	   "filter: range bounds are parameters");
	free(s);
	params_free(&pl);

	s = filter_sql("{\"should\":[{\"key\":\"t\",\"any\":[\"a\",\"b\"]},{\"key\":\"n\",\"match\":3}],"
				   "\"must_not\":[{\"key\":\"x\",\"match\":true}]}",
				   &pl, err, sizeof(err));
	ok(s && strstr(s, " OR ") && strstr(s, "NOT (") && pl.n == 7,
	   "filter: should/any/must_not -> %s", s ? s : err);
	free(s);
	params_free(&pl);

	s = filter_sql("{\"must\":[{\"should\":[{\"key\":\"a\",\"match\":1},{\"key\":\"b\",\"match\":2}]},"
				   "{\"key\":\"c\",\"match\":\"z\"}]}",
				   &pl, err, sizeof(err));
	ok(s && strstr(s, "((coalesce") && pl.n == 6, "filter: nested filter -> %s", s ? s : err);
	free(s);
	params_free(&pl);

	s = filter_sql("{}", &pl, err, sizeof(err));
	ok(s && strcmp(s, "(true)") == 0, "filter: empty filter is true");
	free(s);
	params_free(&pl);

	/* injection attempts: keys and values never reach the SQL text */
	{
		const char *attacks[] = {
			"{\"must\":[{\"key\":\"color') OR 1=1; DROP TABLE t; --\",\"match\":\"x\"}]}",
			"{\"must\":[{\"key\":\"c\",\"match\":\"'; DROP TABLE t; --\"}]}",
			"{\"must\":[{\"key\":\"c\",\"any\":[\"$1\",\"') OR true --\"]}]}",
			"{\"must\":[{\"key\":\"c\\\"; DROP\",\"range\":{\"gt\":1}}]}",
			"{\"must\":[{\"key\":\"a.$$;DROP TABLE t;$$\",\"match\":1}]}",
		};

		for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
			s = filter_sql(attacks[i], &pl, err, sizeof(err));
			ok(s && sql_is_clean(s, "DROP") && sql_is_clean(s, "'") == 0 + !strstr(s, "'") &&
				   sql_is_clean(s, ";") && sql_is_clean(s, "--") && sql_is_clean(s, "\"") &&
				   sql_is_clean(s, "$$"),
			   "filter: injection attempt %zu stays in parameters -> %s", i + 1, s ? s : err);
			/* the only quotes allowed are our own 'number' literal */
			if (s) {
				char *copy = xstrdup(s), *p;

				while ((p = strstr(copy, "'number'")))
					memset(p, 'x', 8);
				ok(strchr(copy, '\'') == NULL, "filter: attempt %zu has no stray quote", i + 1);
				free(copy);
			}
			free(s);
			params_free(&pl);
		}
	}

	/* errors name the field */
	{
		struct {
			const char *json, *want;
		} bad[] = {
			{"{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":\"x\"}}]}", "filter.must[0].range.gt"},
			{"{\"must\":[{\"key\":\"a\",\"range\":{\"between\":1}}]}", "unknown bound"},
			{"{\"must\":[{\"key\":\"a..b\",\"match\":1}]}", "empty path segment"},
			{"{\"must\":[{\"key\":\"\",\"match\":1}]}", "filter.must[0].key"},
			{"{\"must\":[{\"key\":\"a\",\"match\":{\"x\":1}}]}", "filter.must[0].match"},
			{"{\"must\":[{\"key\":\"a\",\"any\":[]}]}", "filter.must[0].any"},
			{"{\"must\":[{\"key\":\"a\"}]}", "one of match, range, any"},
			{"{\"must\":{\"key\":\"a\",\"match\":1}}", "filter.must must be an array"},
			{"{\"bogus\":[]}", "unknown field"},
			{"{\"must\":[{\"key\":5,\"match\":1}]}", "key must be a string"},
			{"{\"must\":[{\"must\":[{\"must\":[{\"must\":[{\"must\":[{\"must\":[{\"must\":[{\"must\":"
			 "[{\"must\":[{\"must\":[]}]}]}]}]}]}]}]}]}]}",
			 "nests deeper"},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			s = filter_sql(bad[i].json, &pl, err, sizeof(err));
			ok(!s && strstr(err, bad[i].want), "filter: bad filter %zu refused: %s", i + 1,
			   s ? "(accepted)" : err);
			free(s);
			params_free(&pl);
		}
	}
}

/* ---- merge ---- */

static int
item_cmp_q(const void *a, const void *b)
{
	return merge_cmp(a, b);
}

static void
test_merge(void)
{
	char ids[600][8];

	for (int i = 0; i < 600; i++)
		snprintf(ids[i], sizeof(ids[i]), "p%03d", i);
	for (int trial = 0; trial < 50; trial++) {
		int nl = 1 + trial % 7, k = 1 + (trial * 7) % 40, total = 0, good = 1;
		MergeItem *lists[8], all[600], out[64];
		int lens[8];

		srand(trial + 100);
		/* points spread over shards; distances drawn from few values: many ties */
		for (int l = 0; l < nl; l++)
			lens[l] = 0;
		for (int i = 0; i < 600; i++) {
			all[i] = (MergeItem){ids[i], (double) (rand() % 20) / 4.0, i % nl, 0};
		}
		for (int l = 0; l < nl; l++) {
			MergeItem *mine = xmalloc(sizeof(MergeItem) * 600);
			int n = 0;

			for (int i = 0; i < 600; i++)
				if (all[i].src == l)
					mine[n++] = all[i];
			merge_sort(mine, n);
			/* each shard returns its exact top k */
			lens[l] = n < k ? n : k;
			lists[l] = mine;
			total += n;
		}
		qsort(all, 600, sizeof(MergeItem), item_cmp_q);
		{
			int got = merge_topk(lists, lens, nl, k, out);

			if (got != k)
				good = 0;
			for (int i = 0; i < got && good; i++)
				if (strcmp(out[i].id, all[i].id) != 0 || out[i].dist != all[i].dist)
					good = 0;
		}
		ok(good, "merge: %d shards, k=%d, ties: merged top-k equals global exact top-k", nl, k);
		for (int l = 0; l < nl; l++)
			free(lists[l]);
		(void) total;
	}
	{
		MergeItem a[] = {{"x", 1.0, 0, 0}, {"y", 2.0, 0, 1}};
		MergeItem b[] = {{"x", 1.0, 1, 0}, {"z", 1.5, 1, 1}};
		MergeItem *ls[] = {a, b}, out[4];
		int lens[] = {2, 2};
		int n = merge_topk(ls, lens, 2, 4, out);

		ok(n == 3 && strcmp(out[0].id, "x") == 0 && strcmp(out[1].id, "z") == 0 &&
			   strcmp(out[2].id, "y") == 0,
		   "merge: an id reported by two shards is kept once");
	}
	{
		MergeItem a[] = {{"b", 1.0, 0, 0}}, b[] = {{"a", 1.0, 1, 0}}, *ls[] = {a, b}, out[2];
		int lens[] = {1, 1};

		merge_topk(ls, lens, 2, 2, out);
		ok(strcmp(out[0].id, "a") == 0, "merge: equal distances are ordered by id");
		ok(merge_topk(ls, (int[]){0, 0}, 2, 5, out) == 0, "merge: empty lists give nothing");
	}
}

/* ---- config ---- */

static void
test_config(void)
{
	char err[512];

	config_set_defaults();
	ok(cf_listen_port == 8080 && strcmp(cf_listen_addr, "127.0.0.1") == 0,
	   "config: defaults from the table");
	ok(config_parse_text("# comment\n\nlisten_port = 9000\nmetadata_dsn = \"host=x # not a "
						 "comment\"  # comment\nlog_level=debug\n",
						 "t.conf", false, err, sizeof(err)),
	   "config: parses a good file (%s)", err);
	ok(cf_listen_port == 9000, "config: integer setting");
	ok(strcmp(cf_metadata_dsn, "host=x # not a comment") == 0, "config: quoted value keeps #");
	ok(strcmp(cf_log_level, "debug") == 0, "config: no spaces around =");
	ok(!config_parse_text("listen_port = 1\n\nbogus = 3\n", "t.conf", false, err, sizeof(err)) &&
		   strstr(err, "t.conf:3:") && strstr(err, "unknown setting \"bogus\""),
	   "config: unknown setting names file:line (%s)", err);
	ok(!config_parse_text("listen_port = 70000\n", "t.conf", false, err, sizeof(err)) &&
		   strstr(err, "t.conf:1:") && strstr(err, "between 0 and 65535"),
	   "config: out-of-range integer refused (%s)", err);
	ok(!config_parse_text("pool_size = ten\n", "t.conf", false, err, sizeof(err)) &&
		   strstr(err, "t.conf:1:"),
	   "config: non-integer refused (%s)", err);
	ok(!config_parse_text("just words\n", "t.conf", false, err, sizeof(err)) &&
		   strstr(err, "t.conf:1: expected"),
	   "config: line without = refused (%s)", err);
	ok(!config_parse_text("log_format = xml\n", "t.conf", false, err, sizeof(err)) &&
		   strstr(err, "log_format"),
	   "config: bad enum refused (%s)", err);
	ok(!config_parse_text("metadata_dsn = \"open\n", "t.conf", false, err, sizeof(err)) &&
		   strstr(err, "unterminated"),
	   "config: unterminated quote refused");
	ok(cf_listen_port == 9000, "config: a file that fails changes nothing");
	ok(config_parse_text("listen_port = 1234\npool_size = 3\n", "t.conf", true, err, sizeof(err)) &&
		   cf_listen_port == 9000 && cf_pool_size == 3,
	   "config: reload changes reloadable settings only");
	ok(!config_set("nope", "1", "command line", false, err, sizeof(err)) &&
		   strstr(err, "command line"),
	   "config: flags name their origin");
	setenv("VECTRON_POOL_SIZE", "7", 1);
	ok(config_apply_env(err, sizeof(err)) && cf_pool_size == 7, "config: environment variable");
	setenv("VECTRON_POOL_SIZE", "0", 1);
	ok(!config_apply_env(err, sizeof(err)) && strstr(err, "VECTRON_POOL_SIZE"),
	   "config: bad environment value names the variable (%s)", err);
	unsetenv("VECTRON_POOL_SIZE");
}

static void
test_names(void)
{
	ok(util_valid_name("a") && util_valid_name("_x9") && util_valid_name("abc_def"),
	   "names: valid names accepted");
	ok(!util_valid_name("") && !util_valid_name("9a") && !util_valid_name("A") &&
		   !util_valid_name("a-b") && !util_valid_name("a b") && !util_valid_name("é"),
	   "names: invalid names refused");
	{
		char n63[64], n64[65];

		memset(n63, 'a', 63);
		n63[63] = '\0';
		memset(n64, 'a', 64);
		n64[64] = '\0';
		ok(util_valid_name(n63) && !util_valid_name(n64), "names: 63 bytes ok, 64 refused");
	}
}

static void
test_pgarray(void)
{
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "{");
	pgarray_append(&sb, "plain");
	sb_append(&sb, ",");
	pgarray_append(&sb, "a\"b\\c,{d}");
	sb_append(&sb, ",");
	pgarray_append(&sb, NULL);
	sb_append(&sb, ",");
	pgarray_append(&sb, "NULL");
	sb_append(&sb, ",");
	pgarray_append(&sb, "");
	sb_append(&sb, "}");
	ok(strcmp(sb.data, "{\"plain\",\"a\\\"b\\\\c,{d}\",NULL,\"NULL\",\"\"}") == 0,
	   "pgarray: quoting and escaping -> %s", sb.data);
	sb_free(&sb);
}

static void
test_float4(void)
{
	char buf[32];
	int bad = 0, n = 0;
	const double fixed[] = {0.0, 1.0, -1.0, 0.5, 0.1, 1e-7, 3.4028234663852886e38,
							1.17549435e-38, 1.4e-45, 123456789.0, 999999999.0, 0.999999999,
							-2.5e-3, 16777217.0, 1e10};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++, n++) {
		util_format_float4(buf, fixed[i]);
		if (strtof(buf, NULL) != (float) fixed[i])
			bad++;
	}
	srand(7);
	for (int i = 0; i < 1000000; i++, n++) {
		union {
			uint32_t u;
			float f;
		} v;

		v.u = ((uint32_t) rand() << 16) ^ (uint32_t) rand();
		if (!isfinite(v.f))
			continue;
		util_format_float4(buf, v.f);
		if (strtof(buf, NULL) != v.f) {
			if (bad < 3)
				printf("# %.9g printed as %s\n", v.f, buf);
			bad++;
		}
	}
	ok(bad == 0, "float4: %d values (fixed and random bit patterns) read back exactly", n);
	util_format_float4(buf, 0.25);
	ok(strcmp(buf, "2.5e-1") == 0, "float4: 0.25 -> %s", buf);
	util_format_float4(buf, -3.0);
	ok(strcmp(buf, "-3") == 0, "float4: -3 -> %s", buf);
}

/* ---- JSON fast paths and binary parameters (util.c) ---- */

/* The floats jansson's generic path gives for an array text, or -1. */
static int
jansson_floats(const char *text, float *out, int maxn)
{
	json_t *a = json_loads(text, JSON_DECODE_ANY, NULL), *e;
	size_t i;
	int n = -1;

	if (json_is_array(a) && (int) json_array_size(a) <= maxn) {
		n = (int) json_array_size(a);
		json_array_foreach(a, i, e) {
			double d = json_number_value(e);

			if (!json_is_number(e) || !isfinite(d) || fabs(d) > 3.4e38) {
				n = -1;
				break;
			}
			out[i] = (float) d;
			if (out[i] == 0)
				out[i] = 0;
		}
	}
	json_decref(a);
	return n;
}

static void
test_json_fast(void)
{
	static float got[4096], want[4096];
	const char *bad[] = {"[1,]", "[01]", "[1.]", "[.5]", "[+1]", "[NaN]", "[1e400]", "[\"1\"]",
						 "[1 2]", "[[1]]", "[3.5e38]", "[-]", "[1e]", "[null]", "[true]",
						 "[123456789012345678901]", "[1", "1", "[Infinity]", "[0x10]"};
	int bad_ok = 0, n, mism = 0, total = 0;
	size_t used, a, b;
	char *text;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (util_json_float_array(bad[i], strlen(bad[i]), got, 4096, &used) < 0)
			bad_ok++;
		else
			printf("# accepted %s\n", bad[i]);
	ok(bad_ok == (int) (sizeof(bad) / sizeof(bad[0])),
	   "json floats: %d malformed or out-of-range arrays left to jansson", bad_ok);
	ok(util_json_float_array("[1,2,3]", 7, got, 2, &used) < 0,
	   "json floats: more elements than asked for are refused");
	n = util_json_float_array("[ ]x", 4, got, 4, &used);
	ok(n == 0 && used == 3, "json floats: [ ] -> 0 elements, %zu bytes", used);
	n = util_json_float_array("[ -0 , 1E+2,2.5e-1 ]", 20, got, 4, &used);
	ok(n == 3 && used == 20 && got[0] == 0 && !signbit(got[0]) && got[1] == 100 &&
	   got[2] == 0.25f, "json floats: -0 -> 0, exponents, whitespace");
	/* random numbers in many spellings read exactly as jansson reads them */
	srand(11);
	for (int round = 0; round < 200; round++) {
		StrBuf sb;

		sb_init(&sb);
		sb_append(&sb, "[");
		for (int i = 0; i < 1000; i++) {
			double m = ((double) rand() / RAND_MAX - 0.5) * pow(10, rand() % 40 - 20);
			const char *fmt[] = {"%.17g", "%.9g", "%g", "%.3f", "%.0f", "%.20e", "%.25f"};
			char num[64];

			snprintf(num, sizeof(num), fmt[rand() % 7], m);
			if (rand() % 10 == 0)
				snprintf(num, sizeof(num), "%d", rand() % 100000 - 50000);
			sb_append(&sb, i ? "," : "");
			sb_append(&sb, num);
		}
		sb_append(&sb, "]");
		text = sb.data;
		n = util_json_float_array(text, sb.len, got, 4096, &used);
		if (n != jansson_floats(text, want, 4096) || (n >= 0 && used != sb.len)) {
			if (mism < 3)
				printf("# round %d: %d elements vs jansson's %d\n", round, n,
					   jansson_floats(text, want, 4096));
			mism++;
		} else
			for (int i = 0; i < n; i++, total++)
				if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
					if (mism < 3)
						printf("# element %d of round %d: %.9g vs %.9g\n", i, round,
							   got[i], want[i]);
					mism++;
				}
		sb_free(&sb);
	}
	ok(mism == 0 && total > 100000, "json floats: %d random numbers read exactly as jansson does",
	   total);

	text = "{\"k\":1, \"filter\":{\"vector\":[3]}, \"s\":\"a\\\"vector\\\":[9]\", "
		   "\"vector\" : [1,2] ,\"x\":[{}]}";
	ok(util_json_top_key(text, strlen(text), "vector", &a, &b) &&
	   strncmp(text + a, "[1,2]", b - a) == 0 && b - a == 5,
	   "json top key: the top-level member only, past nested ones and strings");
	text = "{\"vector\":[1],\"vector\":[2]}";
	ok(!util_json_top_key(text, strlen(text), "vector", &a, &b),
	   "json top key: a duplicate key is left to jansson");
	text = "{\"vec\\u0074or\":[1]}";
	ok(!util_json_top_key(text, strlen(text), "vector", &a, &b),
	   "json top key: escaped keys are left to jansson");
	text = "{\"vector\":[1]";
	ok(!util_json_top_key(text, strlen(text), "vector", &a, &b),
	   "json top key: an unterminated object is left to jansson");
	text = "{\"vectors\":[1], \"vecto\":2}";
	ok(!util_json_top_key(text, strlen(text), "vector", &a, &b),
	   "json top key: other keys with the same prefix do not match");
	{
		float x[2] = {1.0f, -2.5f};
		int len;
		char *bin = util_vector_binary(x, 2, &len);
		const unsigned char want_bin[] = {0, 2, 0, 0, 0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0};

		ok(len == 12 && memcmp(bin, want_bin, 12) == 0,
		   "vector binary: int16 dim, int16 0, big-endian float4");
		free(bin);
	}
	{
		const double reals[] = {0.0, 1.0, -2.5, 1e20, 1e-5, 123456.789, 1e300, 3.0e-310,
								0.1, 482.29658924773662};
		const char *strs[] = {"plain", "q\"b\\s/", "\n\t\r\b\f\x01\x1f\x7f", "\xc3\xa9t\xc3\xa9"};
		int same = 0;

		for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
			StrBuf sb;
			json_t *j = json_real(reals[i]);
			char *d = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);

			sb_init(&sb);
			util_json_append_real(&sb, reals[i]);
			if (strcmp(sb.data, d) == 0)
				same++;
			else
				printf("# real %s vs jansson %s\n", sb.data, d);
			sb_free(&sb);
			free(d);
			json_decref(j);
		}
		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
			StrBuf sb;
			json_t *j = json_string(strs[i]);
			char *d = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);

			sb_init(&sb);
			util_json_append_string(&sb, strs[i]);
			if (strcmp(sb.data, d) == 0)
				same++;
			else
				printf("# string %s vs jansson %s\n", sb.data, d);
			sb_free(&sb);
			free(d);
			json_decref(j);
		}
		ok(same == 14, "json writers: reals and strings byte-identical to jansson's dump (%d/14)",
		   same);
	}
	{
		ParamList a, b;

		params_init(&a);
		params_init(&b);
		params_add(&a, "text");
		params_add_binary(&a, "\0\1\2", 3);
		params_add(&a, NULL);
		params_append(&b, &a);
		ok(b.n == 3 && b.len[0] == -1 && strcmp(b.v[0], "text") == 0 && b.len[1] == 3 &&
		   memcmp(b.v[1], "\0\1\2", 3) == 0 && b.v[2] == NULL && params_any_binary(&b),
		   "params: binary values copied with their lengths, text and NULL kept");
		params_free(&a);
		params_free(&b);
	}
}

int
main(void)
{
	test_pgarray();
	test_float4();
	test_json_fast();
	test_hash();
	test_filter();
	test_merge();
	test_config();
	test_names();
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}
