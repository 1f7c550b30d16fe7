/*
 * vector_parse.c
 *	  Text and binary decoding of vectors, independent of PostgreSQL.
 *
 * The text grammar is '[' ws num (ws ',' ws num)* ws ']' ws, where num is
 * anything strtof accepts except NaN and infinities.  Leading and trailing
 * whitespace around the brackets is allowed, as in pgvector.
 *
 * Speed: a plain decimal number (sign, up to 19 digits, a point, an
 * exponent of up to 3 digits) takes a fast path, ParseFast, that gives the
 * same float as strtof: the digits as an integer times or over an exact
 * power of ten is one correctly rounded IEEE operation, in float when the
 * integer has at most 24 bits and the power is 10^10 or less, else in
 * double (integer below 2^53, power up to 10^22), and the double then
 * rounds to the same float as the decimal value unless it lies exactly
 * halfway between two floats, which goes to strtof.  Anything else (more
 * digits, hexadecimal, inf, nan, larger exponents) goes to strtof as well.
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

/* Exact powers of ten, as floats up to 10^10 and as doubles up to 10^22 */
static const float pow10f[] = {
	1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f
};
static const double pow10d[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/*
 * Parses a plain decimal number at p the way strtof would.  Returns the
 * end of the number and stores the float in *out, or returns NULL when
 * the number needs strtof (see the top of the file); never reads past the
 * number's first non-numeric character.
 */
static const char *
ParseFast(const char *p, float *out)
{
	uint64_t	mant = 0;
	int			ndigits = 0;
	int			exp10 = 0;
	int			neg = 0;
	int			any = 0;

	if (*p == '-' || *p == '+')
		neg = (*p++ == '-');
	while (*p == '0')
	{
		p++;
		any = 1;
	}
	while ((unsigned) (*p - '0') < 10)
	{
		if (++ndigits > 19)
			return NULL;
		mant = mant * 10 + (uint64_t) (*p++ - '0');
		any = 1;
	}
	if (*p == '.')
	{
		p++;
		if (mant == 0)
		{
			/* zeros right after the point only scale */
			while (*p == '0')
			{
				p++;
				exp10--;
				any = 1;
			}
		}
		while ((unsigned) (*p - '0') < 10)
		{
			if (++ndigits > 19)
				return NULL;
			mant = mant * 10 + (uint64_t) (*p++ - '0');
			exp10--;
			any = 1;
		}
	}
	if (!any)
		return NULL;
	if (*p == 'e' || *p == 'E')
	{
		const char *q = p + 1;
		int			eneg = 0;
		int			e = 0;
		int			edigits = 0;

		if (*q == '-' || *q == '+')
			eneg = (*q++ == '-');
		while ((unsigned) (*q - '0') < 10)
		{
			if (++edigits > 3)
				return NULL;
			e = e * 10 + (*q++ - '0');
		}
		/* "1e" or "1e+" ends before the 'e', as in strtof */
		if (edigits > 0)
		{
			exp10 += eneg ? -e : e;
			p = q;
		}
	}
	if (mant == 0)
	{
		*out = neg ? -0.0f : 0.0f;
		return p;
	}
	if (mant < (UINT64_C(1) << 24) && exp10 >= -10 && exp10 <= 10)
	{
		float		f = (float) mant;

		f = exp10 < 0 ? f / pow10f[-exp10] : f * pow10f[exp10];
		*out = neg ? -f : f;
		return p;
	}
	if (mant < (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22)
	{
		double		d = (double) mant;
		float		f;
		double		back;
		double		other;

		d = exp10 < 0 ? d / pow10d[-exp10] : d * pow10d[exp10];
		f = (float) d;
		back = (double) f;
		if (back != d)
		{
			/* a tie between f and its neighbour on d's side needs strtof */
			other = (double) nextafterf(f, d > back ? INFINITY : -INFINITY);
			if (d - back == other - d)
				return NULL;
		}
		*out = neg ? -f : f;
		return p;
	}
	return NULL;
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

		end = (char *) ParseFast(p, &v);
		if (end != NULL)
		{
			out[n++] = v;
			p = end;
			goto separator;
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

separator:
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
