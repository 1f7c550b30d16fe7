/*
 * test_jwt.c: unit tests of coordinator/jwt.c: round trips of login and sdk
 * tokens, and forged tokens that must each be refused (tampered signature,
 * wrong key, alg none, HS256 signed with the EC or RSA public key, RS256,
 * expired, not yet valid, wrong iss/aud, unknown or retired kid, malformed
 * base64 or JSON, bad claim types, oversized), JWKS and key loading.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
/*
 * libjwt's own header is also named jwt.h and the coordinator builds with
 * -I., so <jwt.h> would find this module's header: name libjwt's by path.
 */
#ifndef VX_LIBJWT_H
#define VX_LIBJWT_H </usr/include/jwt.h>
#endif
#include VX_LIBJWT_H
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "jwt.h"
#include "tap.h"

#define ISS "vectron-test"
#define AUD "vectron"

static time_t now0 = 1800000000;

/* A fresh private key in PEM (malloc'd): EC P-256, or RSA 2048. */
static char *
gen_pem(bool rsa, EVP_PKEY **keep)
{
	EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t) n);
	BIO_free(b);
	if (keep)
		*keep = k;
	else
		EVP_PKEY_free(k);
	return out;
}

static char *
public_of(const char *priv)
{
	BIO *b = BIO_new_mem_buf(priv, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO *o = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	PEM_write_bio_PUBKEY(o, k);
	n = BIO_get_mem_data(o, &data);
	out = strndup(data, (size_t) n);
	BIO_free(b);
	BIO_free(o);
	EVP_PKEY_free(k);
	return out;
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

/* header.payload of two JSON texts, in a static buffer. */
static char *
hp(const char *header, const char *payload)
{
	static char buf[40000];
	char h[8000], p[30000];

	b64url((const unsigned char *) header, strlen(header), h);
	b64url((const unsigned char *) payload, strlen(payload), p);
	snprintf(buf, sizeof(buf), "%s.%s", h, p);
	return buf;
}

/* header.payload.HMAC-SHA256(key), malloc'd. */
static char *
forge_hs256(const char *header, const char *payload, const void *key, size_t keylen)
{
	char *signing = strdup(hp(header, payload));
	unsigned char mac[32];
	unsigned int maclen;
	char sig[64];
	char *out;

	HMAC(EVP_sha256(), key, (int) keylen, (unsigned char *) signing, strlen(signing), mac, &maclen);
	b64url(mac, 32, sig);
	out = malloc(strlen(signing) + 70);
	sprintf(out, "%s.%s", signing, sig);
	free(signing);
	return out;
}

static char payload_buf[4096];

/* A valid sdk claims payload, with exp and extra text spliced in. */
static const char *
good_payload(const char *extra)
{
	snprintf(payload_buf, sizeof(payload_buf),
			 "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u1\",\"iat\":%ld,\"exp\":%ld,"
			 "\"jti\":\"j1\",\"token_type\":\"sdk\",\"role\":\"write\",\"key_id\":\"k_1\","
			 "\"collections\":[\"docs\"]%s}",
			 (long) now0, (long) now0 + 600, extra ? extra : "");
	return payload_buf;
}

static JwtVerifier *
es_verifier(const char *kid, const char *pem)
{
	JwtVerifyOptions o = {JWT_ES256, ISS, AUD, -1, 0};
	char err[256];
	JwtVerifier *v = jwt_verifier_new(&o, err, sizeof(err));

	if (!jwt_verifier_add_key(v, kid, (const unsigned char *) pem, strlen(pem), 0, err, sizeof(err)))
		printf("# add_key: %s\n", err);
	return v;
}

/* True when err quotes 8 or more consecutive characters of the token. */
static bool
leaks_token(const char *err, const char *token)
{
	size_t n = strlen(token), i;
	char piece[9];

	for (i = 0; i + 8 <= n && i < 20000; i++) {
		memcpy(piece, token + i, 8);
		piece[8] = '\0';
		if (strstr(err, piece))
			return true;
	}
	return false;
}

/*
 * Verify and check the outcome; expect_err NULL means it must pass.  A
 * refusal's message must not quote the token.
 */
static void
expect(const JwtVerifier *v, const char *token, time_t now, const char *expect_err, const char *what)
{
	JwtClaims c;
	char err[256] = "";
	bool r = jwt_verify(v, token, now, &c, err, sizeof(err));

	if (expect_err == NULL)
		ok(r, "%s: accepted%s%s", what, r ? "" : " but got ", r ? "" : err);
	else
		ok(!r && strstr(err, expect_err) != NULL && !leaks_token(err, token),
		   "%s: refused with \"%s\" (got %s \"%s\")", what, expect_err,
		   r ? "accepted" : "refused", err);
}

static char *
issue(const JwtSigner *s, JwtTokenType t, const char *role, time_t iat, int ttl, time_t nbf)
{
	JwtClaims c;
	char err[256];
	char *tok;

	jwt_claims_init(&c, t, "user_42", role, iat, ttl);
	if (nbf)
		c.nbf = nbf;
	if (t == JWT_TOKEN_SDK) {
		snprintf(c.key_id, sizeof(c.key_id), "key_7");
		if (!jwt_claims_add_collection(&c, "docs") || !jwt_claims_add_collection(&c, "images"))
			printf("# add_collection failed\n");
	}
	tok = jwt_issue(s, &c, err, sizeof(err));
	if (tok == NULL)
		printf("# issue: %s\n", err);
	return tok;
}

int
main(void)
{
	char err[256];
	EVP_PKEY *ec1k;
	char *ec1 = gen_pem(false, &ec1k);
	char *ec2 = gen_pem(false, NULL);
	char *rsa = gen_pem(true, NULL);
	char *ec1pub = public_of(ec1);
	char *rsapub = public_of(rsa);
	JwtSigner *s1, *s1_otherkid, *s2_samekid, *s1_wrongiss, *s1_wrongaud;
	JwtVerifier *v;
	JwtClaims c;
	char *tok, *bad;
	const unsigned char *vk;
	size_t vklen;

	/* --- signers and the verifier ------------------------------------ */
	s1 = jwt_signer_new(JWT_ES256, "k1", (unsigned char *) ec1, strlen(ec1), ISS, AUD, err, sizeof(err));
	ok(s1 != NULL, "ES256 signer from a P-256 private key");
	ok(jwt_signer_new(JWT_ES256, "k1", (unsigned char *) ec1pub, strlen(ec1pub), ISS, AUD, err,
					  sizeof(err)) == NULL && strstr(err, "private"),
	   "ES256 signer refuses a public key");
	ok(jwt_signer_new(JWT_ES256, "k1", (unsigned char *) rsa, strlen(rsa), ISS, AUD, err,
					  sizeof(err)) == NULL && strstr(err, "P-256"),
	   "ES256 signer refuses an RSA key");
	ok(jwt_signer_new(JWT_HS256, "k1", (unsigned char *) "short", 5, ISS, AUD, err, sizeof(err)) == NULL,
	   "HS256 signer refuses a short secret");
	ok(jwt_signer_new(JWT_ES256, "bad kid!", (unsigned char *) ec1, strlen(ec1), ISS, AUD, err,
					  sizeof(err)) == NULL, "signer refuses a bad kid");
	s1_otherkid = jwt_signer_new(JWT_ES256, "k9", (unsigned char *) ec1, strlen(ec1), ISS, AUD, err, sizeof(err));
	s2_samekid = jwt_signer_new(JWT_ES256, "k1", (unsigned char *) ec2, strlen(ec2), ISS, AUD, err, sizeof(err));
	s1_wrongiss = jwt_signer_new(JWT_ES256, "k1", (unsigned char *) ec1, strlen(ec1), "evil", AUD, err, sizeof(err));
	s1_wrongaud = jwt_signer_new(JWT_ES256, "k1", (unsigned char *) ec1, strlen(ec1), ISS, "other", err, sizeof(err));

	vk = jwt_signer_verify_key(s1, &vklen);
	v = es_verifier("k1", (const char *) vk);
	ok(jwt_verifier_nkeys(v) == 1, "verifier holds one key");
	{
		JwtVerifyOptions o = {JWT_ES256, ISS, AUD, -1, 0};
		JwtVerifier *v2 = jwt_verifier_new(&o, err, sizeof(err));

		ok(jwt_verifier_add_key(v2, "k1", (unsigned char *) ec1, strlen(ec1), 0, err, sizeof(err)),
		   "verifier takes a private key and keeps its public half");
		ok(!jwt_verifier_add_key(v2, "k2", (unsigned char *) rsapub, strlen(rsapub), 0, err, sizeof(err)),
		   "ES256 verifier refuses an RSA public key");
		ok(!jwt_verifier_add_key(v2, "k3", (unsigned char *) "garbage", 7, 0, err, sizeof(err)),
		   "verifier refuses garbage as a key");
		tok = issue(s1, JWT_TOKEN_LOGIN, "admin", now0, 900, 0);
		expect(v2, tok, now0 + 1, NULL, "token verifies with the private-key-derived key");
		free(tok);
		jwt_verifier_free(v2);
	}
	{
		JwtVerifyOptions o = {JWT_ES256, "", AUD, -1, 0};

		ok(jwt_verifier_new(&o, err, sizeof(err)) == NULL, "verifier needs an issuer");
	}

	/* --- round trips -------------------------------------------------- */
	tok = issue(s1, JWT_TOKEN_SDK, "write", now0, 600, 0);
	ok(tok != NULL && strlen(tok) < 1000, "sdk token issued");
	ok(jwt_verify(v, tok, now0 + 10, &c, err, sizeof(err)), "sdk token verifies (%s)", err);
	ok(c.type == JWT_TOKEN_SDK && strcmp(c.sub, "user_42") == 0 && strcmp(c.role, "write") == 0 &&
	   strcmp(c.key_id, "key_7") == 0 && strcmp(c.kid, "k1") == 0,
	   "sdk claims: type, sub, role, key_id, kid");
	ok(c.ncollections == 2 && strcmp(c.collections[0], "docs") == 0 &&
	   strcmp(c.collections[1], "images") == 0, "sdk claims: collections");
	ok(c.iat == now0 && c.exp == now0 + 600 && c.nbf == now0 && strlen(c.jti) == 32,
	   "sdk claims: iat, exp, nbf, random jti");
	{
		/* the header names the algorithm, the type and the kid */
		jwt_t *j = NULL;

		jwt_decode(&j, tok, NULL, 0);
		ok(j && strcmp(jwt_get_header(j, "alg"), "ES256") == 0 &&
		   strcmp(jwt_get_header(j, "kid"), "k1") == 0, "header carries alg ES256 and kid");
		jwt_free(j);
	}

	/* tampered signature: flip the first character of the signature */
	bad = strdup(tok);
	{
		char *sig = strrchr(bad, '.') + 1;

		sig[0] = sig[0] == 'A' ? 'B' : 'A';
	}
	expect(v, bad, now0 + 10, "bad signature", "tampered signature");
	free(bad);
	/* tampered payload: the role raised to admin, signature kept */
	{
		char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
		char h[200];
		char forged[4000];
		char *p2 = strdup(hp("{}", good_payload(NULL)));

		snprintf(h, sizeof(h), "%.*s", (int) (dot1 - tok), tok);
		snprintf(forged, sizeof(forged), "%s.%s%s", h, strchr(p2, '.') + 1, dot2);
		expect(v, forged, now0 + 10, "bad signature", "tampered payload with the old signature");
		free(p2);
	}
	/* signature cut off or truncated */
	bad = strdup(tok);
	*strrchr(bad, '.') = '\0';
	expect(v, bad, now0 + 10, "malformed", "two parts only");
	free(bad);
	bad = strdup(tok);
	bad[strlen(bad) - 4] = '\0';
	expect(v, bad, now0 + 10, "bad signature", "truncated signature");
	free(bad);
	free(tok);

	tok = issue(s1, JWT_TOKEN_LOGIN, "readonly", now0, 900, 0);
	ok(jwt_verify(v, tok, now0 + 1, &c, err, sizeof(err)) && c.type == JWT_TOKEN_LOGIN &&
	   c.ncollections == 1 && strcmp(c.collections[0], "*") == 0 && c.key_id[0] == '\0',
	   "login token verifies with scope *");
	ok(c.family[0] == '\0', "login token without fam reads back an empty family");
	free(tok);
	{
		JwtClaims fc;

		jwt_claims_init(&fc, JWT_TOKEN_LOGIN, "user_42", "write", now0, 900);
		snprintf(fc.family, sizeof(fc.family), "12345");
		tok = jwt_issue(s1, &fc, err, sizeof(err));
		ok(tok && jwt_verify(v, tok, now0 + 1, &c, err, sizeof(err)) &&
		   strcmp(c.family, "12345") == 0, "login token carries its refresh family (fam)");
		free(tok);
		snprintf(fc.family, sizeof(fc.family), "x y");
		ok(jwt_issue(s1, &fc, err, sizeof(err)) == NULL, "a bad fam is not issued");
	}

	/* --- wrong key, kid, issuer, audience ------------------------------ */
	tok = issue(s2_samekid, JWT_TOKEN_SDK, "admin", now0, 600, 0);
	expect(v, tok, now0 + 1, "bad signature", "signed by another key under the same kid");
	free(tok);
	tok = issue(s1_otherkid, JWT_TOKEN_SDK, "admin", now0, 600, 0);
	expect(v, tok, now0 + 1, "unknown key id", "unknown kid");
	free(tok);
	tok = issue(s1_wrongiss, JWT_TOKEN_SDK, "write", now0, 600, 0);
	expect(v, tok, now0 + 1, "wrong issuer", "wrong issuer");
	free(tok);
	tok = issue(s1_wrongaud, JWT_TOKEN_SDK, "write", now0, 600, 0);
	expect(v, tok, now0 + 1, "wrong audience", "wrong audience");
	free(tok);

	/* --- times ---------------------------------------------------------- */
	tok = issue(s1, JWT_TOKEN_SDK, "write", now0, 600, 0);
	expect(v, tok, now0 + 600 + 31, "expired", "expired (past the leeway)");
	expect(v, tok, now0 + 600 + 10, NULL, "just expired, within the 30 s leeway");
	expect(v, tok, now0 - 10, NULL, "iat 10 s ahead of our clock, within leeway");
	expect(v, tok, now0 - 100, "not yet valid", "iat 100 s ahead of our clock");
	free(tok);
	tok = issue(s1, JWT_TOKEN_SDK, "write", now0, 600, now0 + 300);
	expect(v, tok, now0 + 10, "not yet valid", "nbf in the future");
	expect(v, tok, now0 + 301, NULL, "after nbf");
	free(tok);
	{
		JwtVerifyOptions o = {JWT_ES256, ISS, AUD, 0, 3600};
		JwtVerifier *vt = jwt_verifier_new(&o, err, sizeof(err));

		if (!jwt_verifier_add_key(vt, "k1", vk, vklen, 0, err, sizeof(err)))
			printf("# %s\n", err);
		tok = issue(s1, JWT_TOKEN_LOGIN, "write", now0, 7200, 0);
		expect(vt, tok, now0 + 1, "lifetime too long", "lifetime beyond max_ttl");
		free(tok);
		tok = issue(s1, JWT_TOKEN_LOGIN, "write", now0, 600, 0);
		expect(vt, tok, now0 + 600, "expired", "zero leeway: expired at exp");
		free(tok);
		jwt_verifier_free(vt);
	}

	/* --- algorithm confusion ------------------------------------------ */
	{
		const char *pl = good_payload(NULL);
		char *t;

		/* alg none with an empty signature, and with a dummy one */
		t = malloc(8000);
		snprintf(t, 8000, "%s.", hp("{\"alg\":\"none\",\"kid\":\"k1\"}", pl));
		expect(v, t, now0 + 1, "malformed", "alg none, empty signature");
		snprintf(t, 8000, "%s.AAAA", hp("{\"alg\":\"none\",\"kid\":\"k1\"}", pl));
		expect(v, t, now0 + 1, "algorithm not allowed", "alg none, dummy signature");
		snprintf(t, 8000, "%s.AAAA", hp("{\"alg\":\"None\",\"kid\":\"k1\"}", pl));
		expect(v, t, now0 + 1, "algorithm not allowed", "alg None");
		snprintf(t, 8000, "%s.AAAA", hp("{\"alg\":\"es256\",\"kid\":\"k1\"}", pl));
		expect(v, t, now0 + 1, "algorithm not allowed", "alg es256 (case)");
		snprintf(t, 8000, "%s.AAAA", hp("{\"kid\":\"k1\"}", pl));
		expect(v, t, now0 + 1, "malformed", "no alg");
		snprintf(t, 8000, "%s.AAAA", hp("{\"alg\":[\"ES256\"],\"kid\":\"k1\"}", pl));
		expect(v, t, now0 + 1, "malformed", "alg as an array");
		free(t);

		/* HS256 with the verifier's own EC public key as the HMAC secret */
		t = forge_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", pl, vk, vklen);
		expect(v, t, now0 + 1, "algorithm not allowed", "HS256 signed with the EC public key");
		free(t);
		t = forge_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", pl, ec1pub, strlen(ec1pub));
		expect(v, t, now0 + 1, "algorithm not allowed", "HS256 signed with the EC public PEM as given");
		free(t);

		/* HS256 with an RSA public key as secret, against an RS-holding
		 * verifier would be the classic; here the key is an EC one, so
		 * also try RS256 signed with a real RSA key */
		{
			jwt_t *j = NULL;

			jwt_new(&j);
			jwt_add_grants_json(j, pl);
			jwt_add_header(j, "kid", "k1");
			jwt_set_alg(j, JWT_ALG_RS256, (unsigned char *) rsa, (int) strlen(rsa));
			t = jwt_encode_str(j);
			jwt_free(j);
			expect(v, t, now0 + 1, "algorithm not allowed", "RS256 signed with an RSA key");
			free(t);
		}
		t = forge_hs256("{\"alg\":\"HS256\",\"kid\":\"k1\"}", pl, rsapub, strlen(rsapub));
		expect(v, t, now0 + 1, "algorithm not allowed", "HS256 signed with an RSA public key");
		free(t);
		/* an ES384 header on an ES256 verifier */
		snprintf(payload_buf + 2000, 100, "x");
		t = forge_hs256("{\"alg\":\"ES384\",\"kid\":\"k1\"}", pl, "x", 1);
		expect(v, t, now0 + 1, "algorithm not allowed", "ES384 header");
		free(t);
	}

	/* --- an HS256 verifier -------------------------------------------- */
	{
		const char *secret = "0123456789abcdef0123456789abcdef-hs";
		JwtVerifyOptions o = {JWT_HS256, ISS, AUD, -1, 0};
		JwtVerifier *vh = jwt_verifier_new(&o, err, sizeof(err));
		JwtSigner *sh = jwt_signer_new(JWT_HS256, "h1", (unsigned char *) secret, strlen(secret),
									   ISS, AUD, err, sizeof(err));
		JwtSigner *sh2 = jwt_signer_new(JWT_HS256, "h1", (unsigned char *) "another-secret-of-32-bytes-or-more!",
										35, ISS, AUD, err, sizeof(err));
		char *t;

		ok(jwt_verifier_add_key(vh, "h1", (unsigned char *) secret, strlen(secret), 0, err, sizeof(err)),
		   "HS256 verifier takes a 35-byte secret");
		ok(!jwt_verifier_add_key(vh, "h2", (unsigned char *) "short", 5, 0, err, sizeof(err)),
		   "HS256 verifier refuses a short secret");
		ok(!jwt_verifier_add_key(vh, "h3", (unsigned char *) ec1pub, strlen(ec1pub), 0, err, sizeof(err)),
		   "HS256 verifier refuses a PEM key as secret");
		t = issue(sh, JWT_TOKEN_SDK, "readonly", now0, 600, 0);
		expect(vh, t, now0 + 1, NULL, "HS256 round trip");
		free(t);
		t = issue(sh2, JWT_TOKEN_SDK, "readonly", now0, 600, 0);
		expect(vh, t, now0 + 1, "bad signature", "HS256 with the wrong secret");
		free(t);
		t = issue(s1, JWT_TOKEN_SDK, "readonly", now0, 600, 0);
		expect(vh, t, now0 + 1, "algorithm not allowed", "ES256 token to an HS256 verifier");
		free(t);
		t = jwt_verifier_jwks(vh, now0, err, sizeof(err));
		ok(t && strcmp(t, "{\"keys\":[]}") == 0, "HS256 secrets are not in the JWKS (%s)", t ? t : err);
		free(t);
		jwt_signer_free(sh);
		jwt_signer_free(sh2);
		jwt_verifier_free(vh);
	}

	/* --- malformed ----------------------------------------------------- */
	{
		const char *hdr = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
		char *t = malloc(20000);
		char *big;

		expect(v, "", now0, "empty", "empty token");
		expect(v, "abc", now0, "malformed", "one part");
		expect(v, "a.b.c.d", now0, "malformed", "four parts");
		expect(v, "abcd..abcd", now0, "malformed", "empty middle part");
		expect(v, "ab=c.abcd.abcd", now0, "malformed", "padding character");
		expect(v, "ab+c.abcd.abcd", now0, "malformed", "base64 (not url) character");
		expect(v, "a bc.abcd.abcd", now0, "malformed", "space");
		expect(v, "abcde.abcd.abcd", now0, "malformed", "part of impossible length");
		expect(v, "bm90anNvbg.abcd.abcd", now0, "malformed", "header not JSON");
		snprintf(t, 20000, "%s.AAAA", hp("[1,2]", "{}"));
		expect(v, t, now0, "malformed", "header a JSON array");
		snprintf(t, 20000, "%s.AAAA", hp(hdr, "notjson"));
		expect(v, t, now0, "malformed", "payload not JSON");
		snprintf(t, 20000, "%s.AAAA", hp("{\"alg\":\"ES256\"}", good_payload(NULL)));
		expect(v, t, now0, "kid", "no kid");
		snprintf(t, 20000, "%s.AAAA", hp("{\"alg\":\"ES256\",\"kid\":\"../../etc/passwd\"}", good_payload(NULL)));
		expect(v, t, now0, "kid", "kid with path characters");
		snprintf(t, 20000, "%s.AAAA", hp("{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"JWE\"}", good_payload(NULL)));
		expect(v, t, now0, "malformed", "typ JWE");
		snprintf(t, 20000, "%s.AAAA", hp("{\"alg\":\"ES256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", good_payload(NULL)));
		expect(v, t, now0, "crit", "crit header");
		snprintf(t, 20000, "%s.AAAA", hp(hdr, good_payload(NULL)));
		expect(v, t, now0, "bad signature", "well-formed but unsigned");
		snprintf(t, 20000, "%s.AAAA", hp("{\"alg\":\"ES256\",\"kid\":\"k1\",\"alg\":\"ES256\"}", good_payload(NULL)));
		expect(v, t, now0, "malformed header", "duplicate alg header");
		/* oversized */
		big = malloc(JWT_MAX_TOKEN_LEN + 100);
		memset(big, 'A', JWT_MAX_TOKEN_LEN + 99);
		big[10] = '.';
		big[20] = '.';
		big[JWT_MAX_TOKEN_LEN + 99] = '\0';
		expect(v, big, now0, "too long", "oversized token (8 KiB + 99)");
		big[JWT_MAX_TOKEN_LEN] = '\0';
		expect(v, big, now0, "malformed", "token of exactly the limit passes the size check");
		free(big);
		big = malloc(1 << 20);
		memset(big, 'A', (1 << 20) - 1);
		big[(1 << 20) - 1] = '\0';
		expect(v, big, now0, "too long", "1 MiB token");
		free(big);
		free(t);
	}

	/* --- claims with bad types or values, correctly signed ------------- */
	{
		struct {
			const char *claims;
			const char *err;
			const char *what;
		} cases[] = {
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":\"1800000600\",\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "exp", "exp as a string"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "exp", "no exp"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600.5,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "exp", "exp as a real"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "iat", "no iat"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":9223372036854775807,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", NULL, "exp at INT64_MAX (no overflow)"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":-9223372036854775807,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "iat", "negative iat"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"nbf\":\"x\",\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "nbf", "nbf as a string"},
			{"{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" AUD "\"],\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", NULL, "aud as an array containing ours"},
			{"{\"iss\":\"" ISS "\",\"aud\":[\"x\"],\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "audience", "aud array without ours"},
			{"{\"iss\":\"" ISS "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "audience", "no aud"},
			{"{\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "issuer", "no iss"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"refresh\",\"role\":\"write\"}", "token_type", "unknown token_type"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"role\":\"write\"}", "token_type", "no token_type"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"root\"}", "role", "unknown role"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"token_type\":\"login\",\"role\":\"write\"}", "jti", "no jti"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "sub", "empty sub"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u'; drop table x\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "sub", "sub with SQL characters"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"sdk\",\"role\":\"write\",\"collections\":[\"a\"]}", "key_id", "sdk without key_id"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"sdk\",\"role\":\"write\",\"key_id\":\"k\"}", "collections", "sdk without collections"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"sdk\",\"role\":\"write\",\"key_id\":\"k\",\"collections\":[]}", "collections", "sdk with no collections"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"sdk\",\"role\":\"write\",\"key_id\":\"k\",\"collections\":[\"Bad-Name\"]}", "collections", "sdk with a bad collection name"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"sdk\",\"role\":\"write\",\"key_id\":\"k\",\"collections\":[1]}", "collections", "sdk with a number as collection"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"sdk\",\"role\":\"write\",\"key_id\":\"k\",\"collections\":[\"*\"]}", NULL, "sdk with collections [*]"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\",\"fam\":7}", "fam", "fam as a number"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\",\"fam\":\"1; drop\"}", "fam", "fam with SQL characters"},
			{"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000000,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"write\"}", "before iat", "exp equal to iat"},
		};
		size_t i;
		const char *secret = "0123456789abcdef0123456789abcdef-hs";
		JwtVerifyOptions o = {JWT_HS256, ISS, AUD, -1, 0};
		JwtVerifier *vh = jwt_verifier_new(&o, err, sizeof(err));

		if (!jwt_verifier_add_key(vh, "h1", (unsigned char *) secret, strlen(secret), 0, err, sizeof(err)))
			printf("# %s\n", err);
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char *t = forge_hs256("{\"alg\":\"HS256\",\"kid\":\"h1\"}", cases[i].claims, secret, strlen(secret));

			expect(vh, t, now0 + 1, cases[i].err, cases[i].what);
			free(t);
		}
		/* duplicate claims are refused */
		{
			char dup[1000];
			char *t;

			const char *base = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"iat\":1800000000,\"exp\":1800000600,\"jti\":\"j\",\"token_type\":\"login\",\"role\":\"readonly\"}";

			snprintf(dup, sizeof(dup), "%.*s,\"role\":\"admin\"}", (int) strlen(base) - 1, base);
			t = forge_hs256("{\"alg\":\"HS256\",\"kid\":\"h1\"}", dup, secret, strlen(secret));
			expect(vh, t, now0 + 1, "claims", "duplicate role claim");
			free(t);
		}
		jwt_verifier_free(vh);
	}

	/* --- rotation: retired and removed keys ---------------------------- */
	{
		JwtVerifyOptions o = {JWT_ES256, ISS, AUD, -1, 0};
		JwtVerifier *vr = jwt_verifier_new(&o, err, sizeof(err));
		size_t len2;
		const unsigned char *vk2 = jwt_signer_verify_key(s1_otherkid, &len2);
		char *t1, *t9;

		ok(jwt_verifier_add_key(vr, "k1", vk, vklen, now0 + 100, err, sizeof(err)) &&
		   jwt_verifier_add_key(vr, "k9", vk2, len2, 0, err, sizeof(err)),
		   "two verification keys, k1 retiring at now+100");
		t1 = issue(s1, JWT_TOKEN_LOGIN, "admin", now0, 900, 0);
		t9 = issue(s1_otherkid, JWT_TOKEN_LOGIN, "admin", now0, 900, 0);
		expect(vr, t1, now0 + 50, NULL, "old kid within its grace");
		expect(vr, t9, now0 + 50, NULL, "new kid");
		expect(vr, t1, now0 + 100, "retired", "old kid after its grace");
		expect(vr, t9, now0 + 100, NULL, "new kid after the old one retired");
		ok(jwt_verifier_remove_key(vr, "k9") && !jwt_verifier_remove_key(vr, "k9") &&
		   jwt_verifier_nkeys(vr) == 1, "remove a key once");
		expect(vr, t9, now0 + 50, "unknown key id", "removed kid");
		free(t1);
		free(t9);
		jwt_verifier_free(vr);
	}

	/* --- JWKS ------------------------------------------------------------ */
	{
		char *jwks = jwt_verifier_jwks(v, now0, err, sizeof(err));
		json_t *doc = jwks ? json_loads(jwks, 0, NULL) : NULL;
		json_t *k0 = json_array_get(json_object_get(doc, "keys"), 0);
		BIGNUM *x = NULL, *y = NULL;
		unsigned char xb[32], yb[32];
		char xs[64], ys[64];

		EVP_PKEY_get_bn_param(ec1k, OSSL_PKEY_PARAM_EC_PUB_X, &x);
		EVP_PKEY_get_bn_param(ec1k, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
		BN_bn2binpad(x, xb, 32);
		BN_bn2binpad(y, yb, 32);
		b64url(xb, 32, xs);
		b64url(yb, 32, ys);
		ok(doc && json_array_size(json_object_get(doc, "keys")) == 1, "JWKS has one key");
		ok(k0 && strcmp(json_string_value(json_object_get(k0, "kty")), "EC") == 0 &&
		   strcmp(json_string_value(json_object_get(k0, "crv")), "P-256") == 0 &&
		   strcmp(json_string_value(json_object_get(k0, "kid")), "k1") == 0 &&
		   strcmp(json_string_value(json_object_get(k0, "alg")), "ES256") == 0,
		   "JWKS key: kty, crv, kid, alg");
		ok(k0 && strcmp(json_string_value(json_object_get(k0, "x")), xs) == 0 &&
		   strcmp(json_string_value(json_object_get(k0, "y")), ys) == 0 && strlen(xs) == 43,
		   "JWKS x and y are the key's point in base64url");
		ok(jwks && strstr(jwks, "PRIVATE") == NULL && json_object_get(k0, "d") == NULL,
		   "JWKS carries no private part");
		BN_free(x);
		BN_free(y);
		json_decref(doc);
		free(jwks);
		jwks = jwt_verifier_jwks(v, 0, err, sizeof(err));
		ok(jwks != NULL, "JWKS at time 0");
		free(jwks);
	}

	/* --- key loading ------------------------------------------------------ */
	{
		char path[] = "/tmp/vx-jwt-key-XXXXXX";
		int fd = mkstemp(path);
		char spec[300];
		size_t len;
		unsigned char *k;

		if (write(fd, ec1, strlen(ec1)) != (ssize_t) strlen(ec1))
			printf("# write failed\n");
		close(fd);
		snprintf(spec, sizeof(spec), "file:%s", path);
		chmod(path, 0600);
		k = jwt_key_load(spec, &len, err, sizeof(err));
		ok(k != NULL && len == strlen(ec1) && memcmp(k, ec1, len) == 0, "private key from a 0600 file");
		jwt_key_free(k, len);
		chmod(path, 0644);
		k = jwt_key_load(spec, &len, err, sizeof(err));
		ok(k == NULL && strstr(err, "chmod 600"), "private key in a 0644 file is refused");
		jwt_key_free(k, len);
		fd = open(path, O_WRONLY | O_TRUNC);
		if (write(fd, ec1pub, strlen(ec1pub)) != (ssize_t) strlen(ec1pub))
			printf("# write failed\n");
		close(fd);
		k = jwt_key_load(spec, &len, err, sizeof(err));
		ok(k != NULL, "public key in a 0644 file is fine");
		jwt_key_free(k, len);
		fd = open(path, O_WRONLY | O_TRUNC);
		if (write(fd, "0123456789abcdef0123456789abcdef\n", 33) != 33)
			printf("# write failed\n");
		close(fd);
		chmod(path, 0600);
		k = jwt_key_load(spec, &len, err, sizeof(err));
		ok(k != NULL && len == 32, "secret file, trailing newline dropped");
		jwt_key_free(k, len);
		unlink(path);
		k = jwt_key_load(spec, &len, err, sizeof(err));
		ok(k == NULL && strstr(err, "cannot open"), "missing key file");
		setenv("VX_TEST_JWT_KEY", ec1, 1);
		k = jwt_key_load("env:VX_TEST_JWT_KEY", &len, err, sizeof(err));
		ok(k != NULL && len == strlen(ec1), "key from the environment");
		jwt_key_free(k, len);
		unsetenv("VX_TEST_JWT_KEY");
		k = jwt_key_load("env:VX_TEST_JWT_KEY", &len, err, sizeof(err));
		ok(k == NULL && strstr(err, "not set"), "unset environment variable");
		k = jwt_key_load("/etc/passwd", &len, err, sizeof(err));
		ok(k == NULL, "spec without a scheme is refused");
	}

	/* --- issue refuses bad claims ------------------------------------ */
	jwt_claims_init(&c, JWT_TOKEN_SDK, "u1", "write", now0, 60);
	ok(jwt_issue(s1, &c, err, sizeof(err)) == NULL, "sdk token without key_id/collections not issued");
	jwt_claims_init(&c, JWT_TOKEN_LOGIN, "u1", "superuser", now0, 60);
	ok(jwt_issue(s1, &c, err, sizeof(err)) == NULL, "unknown role not issued");
	ok(!jwt_claims_add_collection(&c, "Robert'); DROP") && !jwt_claims_add_collection(&c, ""),
	   "bad collection names not added");

	jwt_signer_free(s1);
	jwt_signer_free(s1_otherkid);
	jwt_signer_free(s2_samekid);
	jwt_signer_free(s1_wrongiss);
	jwt_signer_free(s1_wrongaud);
	jwt_verifier_free(v);
	EVP_PKEY_free(ec1k);
	free(ec1);
	free(ec2);
	free(rsa);
	free(ec1pub);
	free(rsapub);
	return tap_done();
}
