/*
 * vector_parse.c
 *	  Text and binary decoding of vectors, independent of PostgreSQL.
 *
 * The text grammar is '[' ws num (ws ',' ws num)* ws ']' ws, where num is
 * anything strtof accepts except NaN and infinities.  Leading and trailing
 * whitespace around the brackets is allowed, as in pgvector.
 */
#include "vector_parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Whitespace as PostgreSQL's scanner_isspace defines it. */
static int
IsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int
vector_text_max_elements(const char *str)
{
	int			n = 1;

	for (; *str; str++)
	{
		if (*str == ',')
			n++;
	}
	return n;
}

/* Classify a float that strtof produced. */
static VectorParseStatus
CheckFinite(float v)
{
	if (isnan(v))
		return VP_NAN;
	if (isinf(v))
		return VP_INFINITE;
	return VP_OK;
}

VectorParseStatus
vector_parse_text(const char *str, float *out, int maxdim, int *ndim,
				  const char **errpos)
{
	const char *p = str;
	int			n = 0;

	*ndim = 0;
	*errpos = str;

	while (IsSpace(*p))
		p++;
	if (*p != '[')
	{
		*errpos = p;
		return VP_MALFORMED;
	}
	p++;
	while (IsSpace(*p))
		p++;

	if (*p == ']')
	{
		*errpos = p;
		return VP_EMPTY;
	}

	for (;;)
	{
		char	   *end;
		float		v;
		VectorParseStatus st;

		while (IsSpace(*p))
			p++;
		/* strtof would skip whitespace and accept hex, nan, inf; be strict */
		if (*p == '\0' || *p == ',' || *p == ']')
		{
			*errpos = p;
			return VP_MALFORMED;
		}
		if (n >= maxdim)
		{
			*errpos = p;
			return VP_TOO_MANY;
		}

		/* strtof takes hexadecimal floats; the vector grammar does not */
		{
			const char *q = (*p == '-' || *p == '+') ? p + 1 : p;

			if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
			{
				*errpos = p;
				return VP_MALFORMED;
			}
		}

		errno = 0;
		v = strtof(p, &end);
		if (end == p)
		{
			*errpos = p;
			return VP_MALFORMED;
		}
		if (errno == ERANGE && isinf(v))
		{
			*errpos = p;
			return VP_OUT_OF_RANGE;
		}
		st = CheckFinite(v);
		if (st != VP_OK)
		{
			*errpos = p;
			return st;
		}
		out[n++] = v;
		p = end;

		while (IsSpace(*p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
		{
			p++;
			break;
		}
		*errpos = p;
		return VP_MALFORMED;
	}

	while (IsSpace(*p))
		p++;
	if (*p != '\0')
	{
		*errpos = p;
		return VP_MALFORMED;
	}

	*ndim = n;
	return VP_OK;
}

/* Read a big-endian uint16. */
static uint16_t
ReadU16(const uint8_t *p)
{
	return (uint16_t) ((p[0] << 8) | p[1]);
}

/* Read a big-endian float4. */
static float
ReadF32(const uint8_t *p)
{
	uint32_t	u = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
	float		f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

VectorParseStatus
vector_decode_binary(const uint8_t *buf, size_t len, float *out, int maxdim,
					 int *ndim)
{
	int			dim;

	*ndim = 0;
	if (len < 4)
		return VP_BAD_LENGTH;

	dim = (int16_t) ReadU16(buf);
	if (ReadU16(buf + 2) != 0)
		return VP_BAD_HEADER;
	if (dim < 1)
		return VP_EMPTY;
	if (dim > maxdim)
		return VP_TOO_MANY;
	if (len != 4 + (size_t) dim * 4)
		return VP_BAD_LENGTH;

	*ndim = dim;
	if (out == NULL)
		return VP_OK;

	for (int i = 0; i < dim; i++)
	{
		float		v = ReadF32(buf + 4 + (size_t) i * 4);
		VectorParseStatus st = CheckFinite(v);

		if (st != VP_OK)
			return st;
		out[i] = v;
	}
	return VP_OK;
}

const char *
vector_parse_status_name(VectorParseStatus status)
{
	switch (status)
	{
		case VP_OK:
			return "ok";
		case VP_MALFORMED:
			return "malformed";
		case VP_EMPTY:
			return "empty";
		case VP_TOO_MANY:
			return "too many dimensions";
		case VP_NAN:
			return "NaN";
		case VP_INFINITE:
			return "infinite";
		case VP_OUT_OF_RANGE:
			return "out of range";
		case VP_BAD_HEADER:
			return "bad header";
		case VP_BAD_LENGTH:
			return "bad length";
	}
	return "unknown";
}
