/*
 * util.c: growable strings, checked allocation, name validation, clocks.
 * Allocation failure ends the process: the coordinator holds no durable
 * state, and limping on after ENOMEM would only corrupt responses.
 */
#include "util.h"

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
}

void
params_free(ParamList *pl)
{
	for (int i = 0; i < pl->n; i++)
		free(pl->v[i]);
	free(pl->v);
	pl->v = NULL;
	pl->n = pl->cap = 0;
}

int
params_add_owned(ParamList *pl, char *s)
{
	if (pl->n == pl->cap) {
		pl->cap = pl->cap ? pl->cap * 2 : 8;
		pl->v = xrealloc(pl->v, pl->cap * sizeof(char *));
	}
	pl->v[pl->n++] = s;
	return pl->n;
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
