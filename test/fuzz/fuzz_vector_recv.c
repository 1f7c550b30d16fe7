/*
 * fuzz_vector_recv.c
 *	  libFuzzer target for the binary (send/recv) decoder.  Any input must be
 *	  rejected, or decode to finite floats whose re-encoding equals the input
 *	  byte for byte (the wire format has exactly one encoding per vector).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vector_parse.h"

#define MAXDIM 16000

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			ndim,
				ndim2;
	float	   *out;
	uint8_t    *enc;
	VectorParseStatus st = vector_decode_binary(data, size, NULL, MAXDIM, &ndim);

	if (st != VP_OK)
		return 0;
	if (ndim < 1 || ndim > MAXDIM || size != 4 + (size_t) ndim * 4)
		abort();
	out = malloc(sizeof(float) * ndim);
	st = vector_decode_binary(data, size, out, MAXDIM, &ndim2);
	if (st == VP_OK)
	{
		if (ndim2 != ndim)
			abort();
		enc = malloc(size);
		enc[0] = (uint8_t) (ndim >> 8);
		enc[1] = (uint8_t) ndim;
		enc[2] = enc[3] = 0;
		for (int i = 0; i < ndim; i++)
		{
			uint32_t	u;

			if (!isfinite(out[i]))
				abort();
			memcpy(&u, &out[i], 4);
			enc[4 + i * 4] = (uint8_t) (u >> 24);
			enc[5 + i * 4] = (uint8_t) (u >> 16);
			enc[6 + i * 4] = (uint8_t) (u >> 8);
			enc[7 + i * 4] = (uint8_t) u;
		}
		if (memcmp(enc, data, size) != 0)
			abort();
		free(enc);
	}
	else if (st != VP_NAN && st != VP_INFINITE)
		abort();				/* header passed, so only values can be bad */
	free(out);
	return 0;
}
