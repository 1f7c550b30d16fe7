/*
 * fuzz_jwt.c
 *	  libFuzzer target for token verification (coordinator/jwt.c), the parser
 *	  of every bearer token the coordinator receives.  The first byte picks a
 *	  mode:
 *	    0  the rest is a token, verified by an ES256 verifier;
 *	    1  the rest is a token, verified by an HS256 verifier;
 *	    2  the rest is the claims JSON, sent correctly signed with HS256, so
 *	       the claim checks are reached;
 *	    3  the rest is the header JSON, correctly signed with HS256.
 *	  Invariants: no crash, leak or sanitizer report; a verified token has
 *	  claims that are terminated, of a known type and role, and within the
 *	  collection limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "jwt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret!"
#define NOW 1800000000

static JwtVerifier *ves, *vhs;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long n;
	char err[200];
	JwtVerifyOptions es = {JWT_ES256, "vectron", "vectron", -1, 0};
	JwtVerifyOptions hs = {JWT_HS256, "vectron", "vectron", -1, 0};

	(void) argc;
	(void) argv;
	PEM_write_bio_PUBKEY(b, k);
	n = BIO_get_mem_data(b, &pem);
	ves = jwt_verifier_new(&es, err, sizeof(err));
	vhs = jwt_verifier_new(&hs, err, sizeof(err));
	if (!ves || !vhs || !jwt_verifier_add_key(ves, "k1", (unsigned char *) pem, (size_t) n, 0, err, sizeof(err)) ||
		!jwt_verifier_add_key(vhs, "h1", (unsigned char *) SECRET, strlen(SECRET), 0, err, sizeof(err)) ||
		!jwt_verifier_add_key(vhs, "old", (unsigned char *) SECRET "2", strlen(SECRET) + 1, NOW - 5, err, sizeof(err))) {
		fprintf(stderr, "fuzz_jwt init: %s\n", err);
		abort();
	}
	BIO_free(b);
	EVP_PKEY_free(k);
	return 0;
}

static void
b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;

	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t) in[i] << 16;
		size_t rem = n - i;

		if (rem > 1)
			v |= (uint32_t) in[i + 1] << 8;
		if (rem > 2)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (rem > 1)
			out[o++] = tab[(v >> 6) & 63];
		if (rem > 2)
			out[o++] = tab[v & 63];
	}
	out[o] = '\0';
}

/* header.claims.HMAC, both parts given as raw bytes; malloc'd. */
static char *
sign_hs(const uint8_t *h, size_t hn, const uint8_t *c, size_t cn)
{
	char *out = malloc(4 * (hn + cn) / 3 + 128);
	unsigned char mac[32];
	unsigned int maclen;
	size_t len;

	b64url(h, hn, out);
	len = strlen(out);
	out[len++] = '.';
	b64url(c, cn, out + len);
	len = strlen(out);
	HMAC(EVP_sha256(), SECRET, (int) strlen(SECRET), (unsigned char *) out, len, mac, &maclen);
	out[len++] = '.';
	b64url(mac, 32, out + len);
	return out;
}

static void
check(const JwtVerifier *v, const char *token)
{
	JwtClaims c;
	char err[128];
	int i;

	if (!jwt_verify(v, token, NOW, &c, err, sizeof(err)))
		return;
	if ((c.type != JWT_TOKEN_LOGIN && c.type != JWT_TOKEN_SDK) ||
		memchr(c.sub, 0, sizeof(c.sub)) == NULL || memchr(c.role, 0, sizeof(c.role)) == NULL ||
		memchr(c.jti, 0, sizeof(c.jti)) == NULL || c.ncollections < 1 ||
		c.ncollections > JWT_MAX_COLLECTIONS || c.exp <= NOW - 31)
		abort();
	for (i = 0; i < c.ncollections; i++)
		if (memchr(c.collections[i], 0, JWT_NAME_MAX) == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"h1\"}";
	static const char claims[] = "{\"iss\":\"vectron\",\"aud\":\"vectron\",\"sub\":\"u1\",\"iat\":1800000000,"
		"\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"sdk\",\"role\":\"write\",\"key_id\":\"k\","
		"\"collections\":[\"docs\"]}";
	char *tok;

	if (size < 1 || size > 3 * JWT_MAX_TOKEN_LEN)
		return 0;
	switch (data[0] & 3) {
		case 0:
		case 1:
			tok = malloc(size);
			memcpy(tok, data + 1, size - 1);
			tok[size - 1] = '\0';
			check((data[0] & 3) == 0 ? ves : vhs, tok);
			free(tok);
			break;
		case 2:
			tok = sign_hs((const uint8_t *) hdr, strlen(hdr), data + 1, size - 1);
			check(vhs, tok);
			free(tok);
			break;
		default:
			tok = sign_hs(data + 1, size - 1, (const uint8_t *) claims, strlen(claims));
			check(vhs, tok);
			free(tok);
			break;
	}
	return 0;
}
