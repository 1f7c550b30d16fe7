/*
 * fuzz_vector_text.c
 *	  libFuzzer target for the vector text parser.  Any input must either be
 *	  rejected with a status or parse to finite floats that survive a
 *	  print-and-reparse round trip unchanged, and each of them must be the
 *	  float strtof gives for its text (the parser's fast path must round
 *	  exactly as strtof does).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vector_parse.h"

#define MAXDIM 16000

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *str = malloc(size + 1);
	int			maxn;
	float	   *out;
	float	   *again;
	int			ndim,
				ndim2;
	const char *pos;
	VectorParseStatus st;

	memcpy(str, data, size);
	str[size] = '\0';
	maxn = vector_text_max_elements(str);
	if (maxn > MAXDIM + 1)
		maxn = MAXDIM + 1;
	out = malloc(sizeof(float) * maxn);
	st = vector_parse_text(str, out, MAXDIM, &ndim, &pos);

	if (pos < str || pos > str + strlen(str))
		abort();				/* error position must point into the input */
	if (st == VP_OK)
	{
		char	   *buf = malloc((size_t) ndim * 20 + 3);
		char	   *p = buf;

		const char *t = strchr(str, '[') + 1;

		if (ndim < 1 || ndim > MAXDIM || ndim > maxn)
			abort();
		/* the input parsed, so its numbers follow '[' and each ',' */
		for (int i = 0; i < ndim; i++)
		{
			char	   *end;
			float		ref;

			while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r' || *t == '\f' || *t == '\v')
				t++;
			ref = strtof(t, &end);
			if (memcmp(&ref, &out[i], sizeof(float)) != 0)
				abort();
			t = strpbrk(end, ",]") + 1;
		}
		*p++ = '[';
		for (int i = 0; i < ndim; i++)
		{
			if (!isfinite(out[i]))
				abort();
			p += sprintf(p, "%s%.9g", i ? "," : "", out[i]);
		}
		*p++ = ']';
		*p = '\0';
		again = malloc(sizeof(float) * ndim);
		if (vector_parse_text(buf, again, MAXDIM, &ndim2, &pos) != VP_OK || ndim2 != ndim)
			abort();
		for (int i = 0; i < ndim; i++)
			if (again[i] != out[i])
				abort();
		free(again);
		free(buf);
	}
	free(out);
	free(str);
	return 0;
}
