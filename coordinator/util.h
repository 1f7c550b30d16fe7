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
uint64_t util_now_us(void);
uint64_t util_wall_us(void);

/* Copy at most dstsize-1 bytes and terminate. */
void util_strlcpy(char *dst, const char *src, size_t dstsize);



/*
 * A list of query parameters; $n in SQL is index n-1.  Parameters are text
 * unless added with params_add_binary (then sent in binary format, e.g. a
 * vector in pgvector's wire layout, which the worker reads without parsing
 * decimal text).
 */
typedef struct ParamList {
	int n;
	int cap;
	char **v;	/* owned; NULL means SQL NULL */
	int *len;	/* per parameter: -1 text, else the byte length of a binary value */
} ParamList;

void params_init(ParamList *pl);
void params_free(ParamList *pl);
/* Append a copy of s (may be NULL) and return its placeholder number. */
int params_add(ParamList *pl, const char *s);
int params_add_owned(ParamList *pl, char *s);
/* Append a copy of len bytes, sent in binary format; returns its number. */
int params_add_binary(ParamList *pl, const void *data, int len);
/* Append copies of every parameter of src (binary ones stay binary). */
void params_append(ParamList *dst, const ParamList *src);
/* Is any parameter binary (then paramLengths/paramFormats are needed). */
bool params_any_binary(const ParamList *pl);

/*
 * A float4 vector in the binary wire layout of the vector type (pgvector's:
 * int16 dim, int16 0, dim float4, all big-endian), malloc'd; *len is set.
 */
char *util_vector_binary(const float *x, int dim, int *len);

/*
 * Fast paths for the JSON bodies of searches and upserts (api_points.c).
 * They accept only what they can read exactly as jansson would; whenever
 * they return false / -1 the caller uses jansson, which then also produces
 * the precise error message, so behaviour never depends on the fast path.
 *
 * util_json_float_array: s[0] must be '['; reads a plain array of JSON
 * numbers (strict JSON number grammar) into out as float4, each number read
 * as the nearest double and then rounded to float4 (what jansson's strtod
 * and a (float) cast give), -0 read as 0.  Returns the count, or -1 when
 * the text is anything else (another element type, malformed, more than
 * maxn elements, an integer jansson would call too big, or a value that is
 * not finite or beyond +-3.4e38).  *consumed is set past the ']'.
 */
int util_json_float_array(const char *s, size_t len, float *out, int maxn, size_t *consumed);
/*
 * Find the value of key in the JSON object that is the whole of s (top
 * level only; members nested deeper are skipped).  True with [*vstart,
 * *vend) the value's bytes when the key occurs exactly once and the text up
 * to the end of the object scans cleanly; false otherwise (including keys
 * with escapes, which the caller leaves to jansson).
 */
bool util_json_top_key(const char *s, size_t len, const char *key, size_t *vstart,
					   size_t *vend);
/* Append s as a JSON string, escaped exactly as jansson's compact dump. */
void util_json_append_string(StrBuf *sb, const char *s);
/* Append d as a JSON real, formatted exactly as jansson's dump ("%.17g"). */
void util_json_append_real(StrBuf *sb, double d);


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
/* Replace bytes that are not well-formed UTF-8 with '?', in place. */
void util_utf8_scrub(char *s);

#endif
