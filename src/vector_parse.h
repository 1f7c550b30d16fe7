/*
 * vector_parse.h
 *	  Parsing of the vector type's text and binary forms, without PostgreSQL.
 *
 * These functions hold every check on untrusted input (syntax, sizes, finite
 * values) and report problems as a status plus a position, so that the
 * server maps them to SQLSTATEs and the fuzzer drives them on their own.
 */
#ifndef VECTRON_VECTOR_PARSE_H
#define VECTRON_VECTOR_PARSE_H

#include <stddef.h>
#include <stdint.h>

typedef enum VectorParseStatus
{
	VP_OK = 0,
	VP_MALFORMED,				/* bad syntax; *errpos points at it */
	VP_EMPTY,					/* "[]": no dimensions */
	VP_TOO_MANY,				/* more than maxdim elements */
	VP_NAN,						/* an element is NaN */
	VP_INFINITE,				/* an element is +-Infinity */
	VP_OUT_OF_RANGE,			/* a literal overflows float4 */
	VP_BAD_HEADER,				/* binary: unused field is not zero */
	VP_BAD_LENGTH				/* binary: length disagrees with dimensions */
} VectorParseStatus;

/*
 * Upper bound on the number of elements in a vector literal: one more than
 * the number of commas.  Callers size the output buffer with it.
 */
extern int	vector_text_max_elements(const char *str);

/*
 * Parse '[1, 2.5, -3e-2]' (whitespace allowed around every token) into out,
 * which must hold vector_text_max_elements(str) floats.  Sets *ndim.
 * On failure *errpos points at the offending character.
 */
extern VectorParseStatus vector_parse_text(const char *str, float *out,
										   int maxdim, int *ndim,
										   const char **errpos);

/*
 * Decode pgvector's binary wire form: int16 dim, int16 unused (0), then dim
 * big-endian float4 values, exactly len bytes in all.  When out is NULL only
 * the header is checked and *ndim set; call again with room for *ndim floats.
 */
extern VectorParseStatus vector_decode_binary(const uint8_t *buf, size_t len,
											  float *out, int maxdim,
											  int *ndim);

/* Human-readable name of a status, for messages and tests. */
extern const char *vector_parse_status_name(VectorParseStatus status);

#endif							/* VECTRON_VECTOR_PARSE_H */
