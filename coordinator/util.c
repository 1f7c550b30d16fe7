/*
 * util.c: growable strings, checked allocation, name validation, clocks.
 * Allocation failure ends the process: the coordinator holds no durable
 * state, and limping on after ENOMEM would only corrupt responses.
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("out of memory\n", stderr);
		abort();
	}
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fputs("out of memory\n", stderr);
		abort();
	}
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("out of memory\n", stderr);
		abort();
	}
	return p;
}

char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = xmalloc(n);

	memcpy(d, s, n);
	return d;
}

char *
xasprintf(const char *fmt, ...)
{
	StrBuf sb;
	va_list ap;
	int n;

	sb_init(&sb);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sb.cap = n + 1;
	sb.data = xrealloc(sb.data, sb.cap);
	va_start(ap, fmt);
	vsnprintf(sb.data, sb.cap, fmt, ap);
	va_end(ap);
	return sb.data;
}

void
sb_init(StrBuf *sb)
{
	sb->cap = 64;
	sb->len = 0;
	sb->data = xmalloc(sb->cap);
	sb->data[0] = '\0';
}

void
sb_free(StrBuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

static void
sb_reserve(StrBuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	while (sb->len + extra + 1 > sb->cap)
		sb->cap *= 2;
	sb->data = xrealloc(sb->data, sb->cap);
}

void
sb_appendn(StrBuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
sb_append(StrBuf *sb, const char *s)
{
	sb_appendn(sb, s, strlen(s));
}

void
sb_appendf(StrBuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sb_reserve(sb, n);
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, n + 1, fmt, ap);
	va_end(ap);
	sb->len += n;
}

char *
sb_steal(StrBuf *sb)
{
	char *d = sb->data;

	sb->data = NULL;
	sb->len = sb->cap = 0;
	return d;
}

bool
util_valid_name(const char *s)
{
	size_t i;

	if (!s || !s[0])
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (i = 1; s[i]; i++) {
		char c = s[i];

		if (i > 62)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

uint64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
util_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t
util_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
util_strlcpy(char *dst, const char *src, size_t dstsize)
{
	size_t n = strlen(src);

	if (dstsize == 0)
		return;
	if (n >= dstsize)
		n = dstsize - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
params_init(ParamList *pl)
{
	pl->n = pl->cap = 0;
	pl->v = NULL;
	pl->len = NULL;
}

void
params_free(ParamList *pl)
{
	for (int i = 0; i < pl->n; i++)
		free(pl->v[i]);
	free(pl->v);
	free(pl->len);
	pl->v = NULL;
	pl->len = NULL;
	pl->n = pl->cap = 0;
}

/* Append s (owned) with its length mark: -1 for text. */
static int
params_push(ParamList *pl, char *s, int len)
{
	if (pl->n == pl->cap) {
		pl->cap = pl->cap ? pl->cap * 2 : 8;
		pl->v = xrealloc(pl->v, pl->cap * sizeof(char *));
		pl->len = xrealloc(pl->len, pl->cap * sizeof(int));
	}
	pl->v[pl->n] = s;
	pl->len[pl->n] = len;
	return ++pl->n;
}

int
params_add_owned(ParamList *pl, char *s)
{
	return params_push(pl, s, -1);
}

int
params_add_binary(ParamList *pl, const void *data, int len)
{
	char *copy = xmalloc(len);

	memcpy(copy, data, len);
	return params_push(pl, copy, len);
}

void
params_append(ParamList *dst, const ParamList *src)
{
	for (int i = 0; i < src->n; i++) {
		if (src->len && src->len[i] >= 0)
			params_add_binary(dst, src->v[i], src->len[i]);
		else
			params_add(dst, src->v[i]);
	}
}

bool
params_any_binary(const ParamList *pl)
{
	for (int i = 0; pl->len && i < pl->n; i++)
		if (pl->len[i] >= 0)
			return true;
	return false;
}

char *
util_vector_binary(const float *x, int dim, int *len)
{
	unsigned char *b = xmalloc(4 + 4 * (size_t) dim), *o = b + 4;

	b[0] = (unsigned char) (dim >> 8);
	b[1] = (unsigned char) dim;
	b[2] = b[3] = 0;
	for (int i = 0; i < dim; i++, o += 4) {
		uint32_t u;

		memcpy(&u, &x[i], 4);
		o[0] = (unsigned char) (u >> 24);
		o[1] = (unsigned char) (u >> 16);
		o[2] = (unsigned char) (u >> 8);
		o[3] = (unsigned char) u;
	}
	*len = 4 + 4 * dim;
	return (char *) b;
}

/* ---- JSON fast paths (see util.h) ---- */

static const char *
json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * One JSON number at p (strict grammar) as a double, the nearest to its
 * decimal value: exact integer mantissa times an exact power of ten when
 * both fit (Clinger's fast path, one rounding), strtod otherwise.  Returns
 * the end, or NULL when it is not a number or is an integer beyond int64
 * (jansson reads integers as int64 and refuses those).
 */
static const char *
json_number(const char *p, const char *end, double *out)
{
	static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
								 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
								 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	const char *start = p;
	uint64_t m = 0;
	int nsig = 0, dexp = 0, nint = 0, exp = 0;
	bool neg = false, real = false, expneg = false;

	if (p < end && *p == '-') {
		neg = true;
		p++;
	}
	if (p < end && *p == '0')
		p++, nint = 1;
	else if (p < end && *p >= '1' && *p <= '9')
		for (; p < end && is_digit(*p); p++, nint++) {
			if (nsig < 19)
				m = m * 10 + (uint64_t) (*p - '0');
			else
				dexp++;
			nsig++;
		}
	else
		return NULL;
	if (p < end && *p == '.') {
		real = true;
		p++;
		if (p >= end || !is_digit(*p))
			return NULL;
		for (; p < end && is_digit(*p); p++) {
			if (m == 0 && *p == '0') {
				dexp--;
				continue;
			}
			if (nsig < 19) {
				m = m * 10 + (uint64_t) (*p - '0');
				dexp--;
			}
			nsig++;
		}
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			expneg = *p++ == '-';
		if (p >= end || !is_digit(*p))
			return NULL;
		for (; p < end && is_digit(*p); p++)
			if (exp < 100000)
				exp = exp * 10 + (*p - '0');
	}
	if (!real && nint > 18) {
		/* as jansson: an int64, or an error past its range */
		char buf[64];
		long long ll;

		if ((size_t) (p - start) >= sizeof(buf))
			return NULL;
		memcpy(buf, start, p - start);
		buf[p - start] = '\0';
		errno = 0;
		ll = strtoll(buf, NULL, 10);
		if (errno == ERANGE)
			return NULL;
		*out = (double) ll;
		return p;
	}
	dexp += expneg ? -exp : exp;
	if (m == 0)
		*out = 0.0;
	else if (nsig <= 19 && m <= (1ULL << 53) && dexp >= -22 && dexp <= 22)
		*out = dexp >= 0 ? (double) m * p10[dexp] : (double) m / p10[-dexp];
	else {
		char buf[64];

		if ((size_t) (p - start) >= sizeof(buf))
			return NULL;
		memcpy(buf, start, p - start);
		buf[p - start] = '\0';
		*out = strtod(buf, NULL);
		return p;
	}
	if (neg)
		*out = -*out;
	return p;
}

int
util_json_float_array(const char *s, size_t len, float *out, int maxn, size_t *consumed)
{
	const char *p = s, *end = s + len;
	int n = 0;

	if (p >= end || *p != '[')
		return -1;
	p = json_ws(p + 1, end);
	if (p < end && *p == ']') {
		*consumed = (size_t) (p + 1 - s);
		return 0;
	}
	for (;;) {
		double d;

		if (n >= maxn || !(p = json_number(p, end, &d)))
			return -1;
		if (!isfinite(d) || fabs(d) > 3.4e38)
			return -1;
		out[n] = (float) d;
		if (out[n] == 0)
			out[n] = 0;	/* -0 reads as 0, as the text path printed it */
		n++;
		p = json_ws(p, end);
		if (p < end && *p == ',') {
			p = json_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == ']')
			break;
		return -1;
	}
	*consumed = (size_t) (p + 1 - s);
	return n;
}

/* Skip a JSON string starting at its opening quote; *esc says whether it
 * had escapes.  Returns the position after the closing quote, or NULL. */
static const char *
json_skip_string(const char *p, const char *end, bool *esc)
{
	*esc = false;
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\') {
			*esc = true;
			p++;
		} else if ((unsigned char) *p < 0x20)
			return NULL;
	}
	return NULL;
}

/* Skip one JSON value (brackets balanced, strings whole; the caller's
 * jansson parse checks the grammar for real).  NULL when unterminated. */
static const char *
json_skip_value(const char *p, const char *end)
{
	int depth = 0;
	bool esc;

	if (p >= end)
		return NULL;
	if (*p != '{' && *p != '[' && *p != '"') {
		/* a number, true, false or null: runs to the next delimiter */
		const char *q = p;

		while (q < end && *q && !strchr(",}] \t\n\r", *q))
			q++;
		return q > p ? q : NULL;
	}
	while (p < end) {
		if (*p == '"') {
			if (!(p = json_skip_string(p, end, &esc)))
				return NULL;
		} else {
			if (*p == '{' || *p == '[')
				depth++;
			else if (*p == '}' || *p == ']')
				depth--;
			p++;
		}
		if (depth == 0)
			return p;
	}
	return NULL;
}

bool
util_json_top_key(const char *s, size_t len, const char *key, size_t *vstart, size_t *vend)
{
	const char *p = s, *end = s + len;
	size_t klen = strlen(key);
	int found = 0;

	p = json_ws(p, end);
	if (p >= end || *p != '{')
		return false;
	p = json_ws(p + 1, end);
	if (p < end && *p == '}')
		return false;
	for (;;) {
		const char *k = p, *v;
		bool esc;

		if (p >= end || *p != '"' || !(p = json_skip_string(p, end, &esc)) || esc)
			return false;
		p = json_ws(p, end);
		if (p >= end || *p != ':')
			return false;
		v = p = json_ws(p + 1, end);
		if ((size_t) (v - k) >= klen + 2 && memcmp(k + 1, key, klen) == 0 && k[klen + 1] == '"') {
			/* the key is exactly `key` (no escapes; its closing quote follows) */
			if (!(p = json_skip_value(p, end)))
				return false;
			found++;
			*vstart = (size_t) (v - s);
			*vend = (size_t) (p - s);
		} else if (!(p = json_skip_value(p, end)))
			return false;
		p = json_ws(p, end);
		if (p < end && *p == ',') {
			p = json_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			break;
		return false;
	}
	return found == 1;
}

void
util_json_append_string(StrBuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	sb_appendn(sb, "\"", 1);
	while (*p) {
		size_t n = 0;

		while (p[n] && p[n] >= 0x20 && p[n] != '"' && p[n] != '\\')
			n++;
		sb_appendn(sb, (const char *) p, n);
		p += n;
		if (!*p)
			break;
		switch (*p) {
		case '"': sb_appendn(sb, "\\\"", 2); break;
		case '\\': sb_appendn(sb, "\\\\", 2); break;
		case '\b': sb_appendn(sb, "\\b", 2); break;
		case '\f': sb_appendn(sb, "\\f", 2); break;
		case '\n': sb_appendn(sb, "\\n", 2); break;
		case '\r': sb_appendn(sb, "\\r", 2); break;
		case '\t': sb_appendn(sb, "\\t", 2); break;
		default: {
			char u[8];

			snprintf(u, sizeof(u), "\\u%04X", *p);
			sb_appendn(sb, u, 6);
		}
		}
		p++;
	}
	sb_appendn(sb, "\"", 1);
}

void
util_json_append_real(StrBuf *sb, double d)
{
	char buf[40], *e;
	int n = snprintf(buf, sizeof(buf), "%.17g", d);

	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	/* jansson drops the exponent's '+' and leading zeros: 1e+20 -> 1e20 */
	if ((e = strchr(buf, 'e'))) {
		char *start = e + 1, *q = start + 1;

		if (*start == '-')
			start++;
		while (*q == '0')
			q++;
		if (q != start) {
			memmove(start, q, strlen(q) + 1);
			n = (int) strlen(buf);
		}
	}
	sb_appendn(sb, buf, n);
}

int
params_add(ParamList *pl, const char *s)
{
	return params_add_owned(pl, s ? xstrdup(s) : NULL);
}

void
pgarray_append(StrBuf *sb, const char *s)
{
	const char *p;

	if (!s) {
		sb_append(sb, "NULL");
		return;
	}
	sb_append(sb, "\"");
	for (p = s; *p;) {
		size_t n = strcspn(p, "\"\\");

		sb_appendn(sb, p, n);
		p += n;
		if (*p) {
			char esc[2] = {'\\', *p};

			sb_appendn(sb, esc, 2);
			p++;
		}
	}
	sb_append(sb, "\"");
}

int
util_format_float4(char *out, double d)
{
	static double pow10[100];
	static bool init;
	float f = (float) d;
	double x = f, m;
	char digits[16], *o = out;
	long long q;
	int e, k, nd;

	if (!init) {
		pow10[0] = 1.0;
		for (int i = 1; i < 100; i++)
			pow10[i] = pow10[i - 1] * 10.0;
		init = true;
	}
	if (x == 0) {
		out[0] = '0';
		out[1] = '\0';
		return 1;
	}
	if (x < 0) {
		*o++ = '-';
		x = -x;
	}
	e = (int) floor(log10(x));
	k = 8 - e;
	m = k >= 0 ? x * pow10[k] : x / pow10[-k];
	q = llround(m);
	if (q >= 1000000000LL) {
		e++;
		k--;
		m = k >= 0 ? x * pow10[k] : x / pow10[-k];
		q = llround(m);
	} else if (q < 100000000LL) {
		e--;
		k++;
		m = k >= 0 ? x * pow10[k] : x / pow10[-k];
		q = llround(m);
	}
	nd = snprintf(digits, sizeof(digits), "%lld", q);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	*o++ = digits[0];
	if (nd > 1) {
		*o++ = '.';
		memcpy(o, digits + 1, nd - 1);
		o += nd - 1;
	}
	if (e != 0)
		o += sprintf(o, "e%d", e);
	*o = '\0';
	return (int) (o - out);
}

/*
 * Replace, in place, every byte of s that is not part of a well-formed
 * UTF-8 sequence with '?'.  Error messages quote request text (jansson's
 * parse errors show the bytes near the fault, and a truncated message can
 * end inside a sequence); jansson refuses to pack a string that is not
 * UTF-8, and the error answer would then be lost.
 */
void
util_utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *) s;

	while (*p) {
		int n, i;
		unsigned min;
		unsigned cp;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xC2 && *p <= 0xDF)
			n = 1, cp = *p & 0x1F, min = 0x80;
		else if (*p >= 0xE0 && *p <= 0xEF)
			n = 2, cp = *p & 0x0F, min = 0x800;
		else if (*p >= 0xF0 && *p <= 0xF4)
			n = 3, cp = *p & 0x07, min = 0x10000;
		else {
			*p++ = '?';
			continue;
		}
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				break;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if (i <= n || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}
