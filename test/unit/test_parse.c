/*
 * test_parse.c
 *	  Table-driven tests of the vector text parser and binary decoder.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "vector_parse.h"

typedef struct TextCase
{
	const char *input;
	VectorParseStatus want;
	int			ndim;
	float		first;
} TextCase;

static const TextCase text_cases[] = {
	{"[1,2,3]", VP_OK, 3, 1},
	{" [ 1 , 2.5 ,-3e-2 ] ", VP_OK, 3, 1},
	{"[-0]", VP_OK, 1, 0},
	{"[1e-45]", VP_OK, 1, 1e-45f},
	{"[3.4028235e38]", VP_OK, 1, 3.4028235e38f},
	{"\t[\n7\n]\n", VP_OK, 1, 7},
	{"[]", VP_EMPTY, 0, 0},
	{"[  ]", VP_EMPTY, 0, 0},
	{"", VP_MALFORMED, 0, 0},
	{"1,2", VP_MALFORMED, 0, 0},
	{"[1,2", VP_MALFORMED, 0, 0},
	{"[1,,2]", VP_MALFORMED, 0, 0},
	{"[1,2,]", VP_MALFORMED, 0, 0},
	{"[,1]", VP_MALFORMED, 0, 0},
	{"[1 2]", VP_MALFORMED, 0, 0},
	{"[1]x", VP_MALFORMED, 0, 0},
	{"[a]", VP_MALFORMED, 0, 0},
	{"[0x10]", VP_MALFORMED, 0, 0},
	{"[-0X1p3]", VP_MALFORMED, 0, 0},
	{"[NaN]", VP_NAN, 0, 0},
	{"[nan]", VP_NAN, 0, 0},
	{"[inf]", VP_INFINITE, 0, 0},
	{"[-Infinity]", VP_INFINITE, 0, 0},
	{"[1e39]", VP_OUT_OF_RANGE, 0, 0},
	{"[-1e40]", VP_OUT_OF_RANGE, 0, 0},
	{"[1,2,3,4,5]", VP_TOO_MANY, 0, 0},	/* maxdim is 4 below */
};

int
main(void)
{
	float		out[16];

	for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++)
	{
		const TextCase *c = &text_cases[i];
		int			ndim;
		const char *pos;
		VectorParseStatus st = vector_parse_text(c->input, out, 4, &ndim, &pos);
		int			good = st == c->want;

		if (good && st == VP_OK)
			good = ndim == c->ndim && out[0] == c->first;
		ok(good, "text \"%s\" -> %s (got %s)", c->input,
		   vector_parse_status_name(c->want), vector_parse_status_name(st));
	}
	ok(vector_text_max_elements("[1,2,3]") == 3, "max elements counts commas");

	/* the fast decimal path rounds exactly as strtof, ties and all */
	{
		static const char *nums[] = {
			"0.1", "-2.5e-3", "16777217", "16777219", "1.e5", "-0", ".5", "7e22",
			"9007199254740993", "1.00000005960464477539062500", "1.0000000596046448",
			"3.4028235e38", "1.17549435e-38", "0.000001", "123456789012345678",
			"255", "0.30000001192092896", "1e-22", "4.9999998e-11", "1E+10",
		};

		for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		{
			char		lit[64];
			int			ndim;
			const char *pos;
			float		want = strtof(nums[i], NULL);

			snprintf(lit, sizeof(lit), "[%s]", nums[i]);
			ok(vector_parse_text(lit, out, 4, &ndim, &pos) == VP_OK && ndim == 1 &&
			   memcmp(&out[0], &want, sizeof(float)) == 0,
			   "\"%s\" parses to strtof's float %.9g (got %.9g)", nums[i], want, out[0]);
		}
	}

	/* binary: [1, -2] */
	{
		const uint8_t good[] = {0, 2, 0, 0, 0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0};
		const uint8_t badhdr[] = {0, 1, 0, 1, 0x3f, 0x80, 0, 0};
		const uint8_t shortb[] = {0, 2, 0, 0, 0x3f, 0x80, 0, 0};
		const uint8_t longb[] = {0, 1, 0, 0, 0x3f, 0x80, 0, 0, 0};
		const uint8_t zero[] = {0, 0, 0, 0};
		const uint8_t neg[] = {0xff, 0xff, 0, 0};
		const uint8_t nan[] = {0, 1, 0, 0, 0x7f, 0xc0, 0, 0};
		const uint8_t inf[] = {0, 1, 0, 0, 0xff, 0x80, 0, 0};
		const uint8_t big[] = {0x3e, 0x81, 0, 0};	/* 16001 */
		int			ndim;

		ok(vector_decode_binary(good, sizeof(good), out, 16000, &ndim) == VP_OK &&
		   ndim == 2 && out[0] == 1 && out[1] == -2, "binary [1,-2] decodes");
		ok(vector_decode_binary(good, sizeof(good), NULL, 16000, &ndim) == VP_OK && ndim == 2,
		   "binary header-only pass reports dimensions");
		ok(vector_decode_binary(badhdr, sizeof(badhdr), out, 16000, &ndim) == VP_BAD_HEADER,
		   "binary nonzero unused field rejected");
		ok(vector_decode_binary(shortb, sizeof(shortb), out, 16000, &ndim) == VP_BAD_LENGTH,
		   "binary short payload rejected");
		ok(vector_decode_binary(longb, sizeof(longb), out, 16000, &ndim) == VP_BAD_LENGTH,
		   "binary trailing bytes rejected");
		ok(vector_decode_binary(zero, sizeof(zero), out, 16000, &ndim) == VP_EMPTY,
		   "binary zero dimensions rejected");
		ok(vector_decode_binary(neg, sizeof(neg), out, 16000, &ndim) == VP_EMPTY,
		   "binary negative dimensions rejected");
		ok(vector_decode_binary(nan, sizeof(nan), out, 16000, &ndim) == VP_NAN,
		   "binary NaN rejected");
		ok(vector_decode_binary(inf, sizeof(inf), out, 16000, &ndim) == VP_INFINITE,
		   "binary infinity rejected");
		ok(vector_decode_binary(big, sizeof(big), out, 16000, &ndim) == VP_TOO_MANY,
		   "binary 16001 dimensions rejected");
		ok(vector_decode_binary(good, 3, out, 16000, &ndim) == VP_BAD_LENGTH,
		   "binary truncated header rejected");
	}
	return done_testing();
}
