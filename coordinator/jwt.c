/*
 * jwt.c: Vectron's JWTs on top of libjwt 1.10 and OpenSSL 3.
 *
 * Verification does not trust libjwt with any decision it would take from
 * the token itself.  libjwt 1.10 picks the algorithm from the token header,
 * verifies nothing when that algorithm is "none" or no key is passed, checks
 * no claims, base64-decodes leniently, copies each part onto the stack with
 * alloca() and writes one byte past an empty part.  So jwt_verify():
 *
 *   1. refuses tokens that are too long or not three non-empty base64url
 *      parts (this also keeps libjwt's alloca and empty-part bugs away);
 *   2. decodes without a key only to read the header: alg must be exactly
 *      the configured one, kid must name a key we hold that is not retired,
 *      and a "crit" header is refused;
 *   3. for HS256 checks the HMAC itself in constant time (libjwt uses
 *      strcmp), then lets libjwt decode with the key kid names;
 *   4. checks jwt_get_alg() again after the keyed decode;
 *   5. parses the claims with jansson and checks their types and values:
 *      iss, aud, exp, nbf, iat (with leeway), token_type, sub, role, jti,
 *      for login tokens an optional fam, and for sdk tokens key_id and collections.
 *
 * Signing builds the claims as JSON, adds the kid header and lets libjwt
 * sign (it converts ECDSA signatures to the JOSE r||s form).  ES256 keys are
 * parsed by OpenSSL first with a passphrase callback that refuses, so an
 * encrypted PEM fails here instead of prompting on stdin inside libjwt.
 */
#define _GNU_SOURCE
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
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
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define JWT_MAX_KEY_BYTES (64 * 1024)
#define JWT_MIN_HS_SECRET 32

typedef struct JwtKey {
	char kid[JWT_ID_MAX];
	unsigned char *key;			/* public PEM (ES256) or secret (HS256) */
	size_t keylen;
	time_t retire_at;			/* 0: never */
	EVP_PKEY *pkey;				/* ES256 only, for JWKS */
} JwtKey;

struct JwtVerifier {
	JwtAlg alg;
	char *issuer;
	char *audience;
	int leeway_s;
	int max_ttl_s;
	int nkeys;
	int capkeys;
	JwtKey *keys;
};

struct JwtSigner {
	JwtAlg alg;
	char kid[JWT_ID_MAX];
	unsigned char *key;			/* private PEM or secret */
	size_t keylen;
	unsigned char *verify_key;	/* public PEM or the secret again */
	size_t verify_keylen;
	char *issuer;
	char *audience;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *
alg_name(JwtAlg alg)
{
	return alg == JWT_ES256 ? "ES256" : alg == JWT_HS256 ? "HS256" : "?";
}

static jwt_alg_t
alg_libjwt(JwtAlg alg)
{
	return alg == JWT_ES256 ? JWT_ALG_ES256 : JWT_ALG_HS256;
}

const char *
jwt_token_type_name(JwtTokenType t)
{
	return t == JWT_TOKEN_LOGIN ? "login" : t == JWT_TOKEN_SDK ? "sdk" : "?";
}

/* True for 1..63 characters of [A-Za-z0-9._:@-] (ids, kids, jtis). */
static bool
valid_id(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++, n++) {
		char c = *s;

		if (n >= JWT_ID_MAX - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

/* True for "*" or a collection name ^[a-z_][a-z0-9_]{0,62}$. */
static bool
valid_collection(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	if (strcmp(s, "*") == 0)
		return true;
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (n = 1; s[n]; n++) {
		if (n >= JWT_NAME_MAX - 1)
			return false;
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	}
	return true;
}

static bool
valid_role(const char *s)
{
	return s && (strcmp(s, "admin") == 0 || strcmp(s, "write") == 0 || strcmp(s, "readonly") == 0);
}

static bool
is_b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '_';
}

/* Unpadded base64url of n bytes into out (room for 4*ceil(n/3)+1). */
static void
b64url_encode(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i;
	char *o = out;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8) | in[i + 2];

		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t) in[i] << 16;

		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8);

		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
	}
	*o = '\0';
}

static int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict unpadded base64url decode of in[0..n) into out (room for
 * 3*n/4 bytes); returns the length or -1 on a bad character, a bad length
 * or non-zero trailing bits.
 */
static long
b64url_decode(const char *in, size_t n, unsigned char *out)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		int v = b64url_val((unsigned char) in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char) (acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1;
	return (long) o;
}

/*
 * Check the token's shape: not too long, exactly three non-empty parts of
 * base64url characters, no part of an impossible length.
 */
static bool
check_shape(const char *token, char *err, size_t errlen)
{
	size_t len, i, start = 0;
	int part = 0;

	if (token == NULL || *token == '\0') {
		set_err(err, errlen, "empty token");
		return false;
	}
	len = strnlen(token, JWT_MAX_TOKEN_LEN + 1);
	if (len > JWT_MAX_TOKEN_LEN) {
		set_err(err, errlen, "token too long");
		return false;
	}
	for (i = 0; i <= len; i++) {
		unsigned char c = (unsigned char) token[i];

		if (c == '.' || c == '\0') {
			if (i == start || (i - start) % 4 == 1) {
				set_err(err, errlen, "malformed token");
				return false;
			}
			part++;
			start = i + 1;
			if (part > 3) {
				set_err(err, errlen, "malformed token");
				return false;
			}
		} else if (!is_b64url_char(c)) {
			set_err(err, errlen, "malformed token");
			return false;
		}
	}
	if (part != 3) {
		set_err(err, errlen, "malformed token");
		return false;
	}
	return true;
}

/*
 * Decode part idx (0 header, 1 claims) of a shape-checked token with the
 * strict decoder and parse it as JSON, refusing duplicate names (libjwt
 * keeps the last of them silently).  NULL when that fails.
 */
static json_t *
parse_part(const char *token, int idx)
{
	const char *p = token, *end;
	unsigned char buf[JWT_MAX_TOKEN_LEN];
	long n;

	while (idx-- > 0)
		p = strchr(p, '.') + 1;
	end = strchr(p, '.');
	n = b64url_decode(p, (size_t) (end - p), buf);
	if (n < 0)
		return NULL;
	return json_loadb((const char *) buf, (size_t) n, JSON_REJECT_DUPLICATES, NULL);
}

/* OpenSSL passphrase callback that refuses: encrypted keys fail, never prompt. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void) buf;
	(void) size;
	(void) rwflag;
	(void) u;
	return -1;
}

/*
 * Parse a P-256 key in PEM, public or private.  Sets *is_private.  NULL with
 * err filled on anything else.
 */
static EVP_PKEY *
load_p256(const unsigned char *pem, size_t len, bool *is_private, char *err, size_t errlen)
{
	BIO *bio;
	EVP_PKEY *pkey;
	char group[64];
	size_t glen = 0;

	if (len == 0 || len > JWT_MAX_KEY_BYTES) {
		set_err(err, errlen, "key has a bad size");
		return NULL;
	}
	bio = BIO_new_mem_buf(pem, (int) len);
	if (bio == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	*is_private = false;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	if (pkey == NULL) {
		BIO_free(bio);
		bio = BIO_new_mem_buf(pem, (int) len);
		if (bio == NULL) {
			set_err(err, errlen, "out of memory");
			return NULL;
		}
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		*is_private = pkey != NULL;
	}
	BIO_free(bio);
	if (pkey == NULL) {
		set_err(err, errlen, "not a PEM public or unencrypted private key");
		return NULL;
	}
	if (!EVP_PKEY_is_a(pkey, "EC") ||
		!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) ||
		strcmp(group, "prime256v1") != 0) {
		EVP_PKEY_free(pkey);
		set_err(err, errlen, "ES256 needs an EC key on curve P-256");
		return NULL;
	}
	return pkey;
}

/* The public half of pkey in PEM, malloc'd (NUL-terminated), length in *len. */
static unsigned char *
public_pem(EVP_PKEY *pkey, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	unsigned char *out = NULL;

	if (bio == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, pkey) == 1) {
		n = BIO_get_mem_data(bio, &data);
		if (n > 0 && (out = malloc((size_t) n + 1)) != NULL) {
			memcpy(out, data, (size_t) n);
			out[n] = '\0';
			*len = (size_t) n;
		}
	}
	BIO_free(bio);
	return out;
}

static unsigned char *
dup_bytes(const unsigned char *p, size_t n)
{
	unsigned char *q = malloc(n + 1);

	if (q) {
		memcpy(q, p, n);
		q[n] = '\0';
	}
	return q;
}

void
jwt_key_free(unsigned char *key, size_t len)
{
	if (key) {
		OPENSSL_cleanse(key, len);
		free(key);
	}
}

unsigned char *
jwt_key_load(const char *spec, size_t *len, char *err, size_t errlen)
{
	unsigned char *buf = NULL;

	*len = 0;
	if (spec == NULL) {
		set_err(err, errlen, "no key given");
		return NULL;
	}
	if (strncmp(spec, "env:", 4) == 0) {
		const char *val = getenv(spec + 4);

		if (val == NULL || *val == '\0') {
			set_err(err, errlen, "environment variable %s is not set", spec + 4);
			return NULL;
		}
		*len = strlen(val);
		if (*len > JWT_MAX_KEY_BYTES) {
			set_err(err, errlen, "key in %s is too long", spec + 4);
			return NULL;
		}
		buf = dup_bytes((const unsigned char *) val, *len);
	} else if (strncmp(spec, "literal:", 8) == 0) {
		*len = strlen(spec + 8);
		buf = dup_bytes((const unsigned char *) spec + 8, *len);
	} else if (strncmp(spec, "file:", 5) == 0) {
		const char *path = spec + 5;
		struct stat st;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		size_t got = 0;

		if (fd < 0) {
			set_err(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
			return NULL;
		}
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
			st.st_size > JWT_MAX_KEY_BYTES) {
			close(fd);
			set_err(err, errlen, "key file %s is not a regular file of 1..%d bytes", path,
					JWT_MAX_KEY_BYTES);
			return NULL;
		}
		buf = malloc((size_t) st.st_size + 1);
		if (buf == NULL) {
			close(fd);
			set_err(err, errlen, "out of memory");
			return NULL;
		}
		while (got < (size_t) st.st_size) {
			ssize_t r = read(fd, buf + got, (size_t) st.st_size - got);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t) r;
		}
		close(fd);
		if (got != (size_t) st.st_size) {
			jwt_key_free(buf, (size_t) st.st_size + 1);
			set_err(err, errlen, "cannot read key file %s", path);
			return NULL;
		}
		buf[got] = '\0';
		*len = got;
		/* A secret or a private key must not be readable by anyone else. */
		if ((st.st_mode & 077) != 0 &&
			(strstr((char *) buf, "PRIVATE KEY") != NULL ||
			 strstr((char *) buf, "-----BEGIN") == NULL)) {
			jwt_key_free(buf, got + 1);
			*len = 0;
			set_err(err, errlen, "key file %s is accessible by group or others (chmod 600 it)",
					path);
			return NULL;
		}
		/* Trailing newlines of a secret file are not part of the secret. */
		if (strstr((char *) buf, "-----BEGIN") == NULL)
			while (*len > 0 && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r'))
				buf[--(*len)] = '\0';
		return buf;
	} else {
		set_err(err, errlen, "key spec must start with file:, env: or literal:");
		return NULL;
	}
	if (buf == NULL)
		set_err(err, errlen, "out of memory");
	return buf;
}

JwtVerifier *
jwt_verifier_new(const JwtVerifyOptions *opt, char *err, size_t errlen)
{
	JwtVerifier *v;

	if (opt == NULL || (opt->alg != JWT_ES256 && opt->alg != JWT_HS256)) {
		set_err(err, errlen, "algorithm must be ES256 or HS256");
		return NULL;
	}
	if (opt->issuer == NULL || *opt->issuer == '\0' || opt->audience == NULL ||
		*opt->audience == '\0') {
		set_err(err, errlen, "issuer and audience are required");
		return NULL;
	}
	if (opt->max_ttl_s < 0) {
		set_err(err, errlen, "max_ttl_s must be >= 0");
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	v->alg = opt->alg;
	v->issuer = strdup(opt->issuer);
	v->audience = strdup(opt->audience);
	v->leeway_s = opt->leeway_s < 0 ? JWT_DEFAULT_LEEWAY : opt->leeway_s;
	v->max_ttl_s = opt->max_ttl_s;
	if (v->issuer == NULL || v->audience == NULL) {
		jwt_verifier_free(v);
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	return v;
}

static void
key_clear(JwtKey *k)
{
	jwt_key_free(k->key, k->keylen);
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

void
jwt_verifier_free(JwtVerifier *v)
{
	int i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nkeys; i++)
		key_clear(&v->keys[i]);
	free(v->keys);
	free(v->issuer);
	free(v->audience);
	free(v);
}

static JwtKey *
find_key(const JwtVerifier *v, const char *kid)
{
	int i;

	for (i = 0; i < v->nkeys; i++)
		if (strcmp(v->keys[i].kid, kid) == 0)
			return &v->keys[i];
	return NULL;
}

bool
jwt_verifier_add_key(JwtVerifier *v, const char *kid, const unsigned char *key, size_t keylen,
					 time_t retire_at, char *err, size_t errlen)
{
	JwtKey nk;
	JwtKey *slot;

	memset(&nk, 0, sizeof(nk));
	if (!valid_id(kid)) {
		set_err(err, errlen, "bad key id");
		return false;
	}
	if (key == NULL || keylen == 0 || keylen > JWT_MAX_KEY_BYTES) {
		set_err(err, errlen, "key has a bad size");
		return false;
	}
	snprintf(nk.kid, sizeof(nk.kid), "%s", kid);
	nk.retire_at = retire_at;
	if (v->alg == JWT_ES256) {
		bool priv;

		nk.pkey = load_p256(key, keylen, &priv, err, errlen);
		if (nk.pkey == NULL)
			return false;
		nk.key = public_pem(nk.pkey, &nk.keylen);
		if (nk.key == NULL) {
			EVP_PKEY_free(nk.pkey);
			set_err(err, errlen, "cannot write the public key");
			return false;
		}
	} else {
		if (keylen < JWT_MIN_HS_SECRET) {
			set_err(err, errlen, "HS256 secret must be at least %d bytes", JWT_MIN_HS_SECRET);
			return false;
		}
		/* A PEM key as an HMAC secret is the key-confusion mistake; refuse it. */
		if (memmem(key, keylen, "-----BEGIN", 10) != NULL) {
			set_err(err, errlen, "HS256 secret must not be a PEM key");
			return false;
		}
		nk.key = dup_bytes(key, keylen);
		nk.keylen = keylen;
		if (nk.key == NULL) {
			set_err(err, errlen, "out of memory");
			return false;
		}
	}
	slot = find_key(v, kid);
	if (slot != NULL)
		key_clear(slot);
	else {
		if (v->nkeys == v->capkeys) {
			int ncap = v->capkeys ? v->capkeys * 2 : 4;
			JwtKey *nkeys = realloc(v->keys, (size_t) ncap * sizeof(JwtKey));

			if (nkeys == NULL) {
				key_clear(&nk);
				set_err(err, errlen, "out of memory");
				return false;
			}
			v->keys = nkeys;
			v->capkeys = ncap;
		}
		slot = &v->keys[v->nkeys++];
	}
	*slot = nk;
	return true;
}

bool
jwt_verifier_remove_key(JwtVerifier *v, const char *kid)
{
	JwtKey *k = find_key(v, kid);
	int idx;

	if (k == NULL)
		return false;
	idx = (int) (k - v->keys);
	key_clear(k);
	memmove(&v->keys[idx], &v->keys[idx + 1], (size_t) (v->nkeys - idx - 1) * sizeof(JwtKey));
	v->nkeys--;
	return true;
}

int
jwt_verifier_nkeys(const JwtVerifier *v)
{
	return v->nkeys;
}

/* Constant-time HS256 check of head.body against the signature part. */
static bool
hs256_ok(const JwtKey *k, const char *token)
{
	const char *dot2 = strrchr(token, '.');
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	unsigned char sig[JWT_MAX_TOKEN_LEN];
	long siglen;

	if (dot2 == NULL)
		return false;
	siglen = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
	if (siglen != 32)
		return false;
	if (HMAC(EVP_sha256(), k->key, (int) k->keylen, (const unsigned char *) token,
			 (size_t) (dot2 - token), mac, &maclen) == NULL || maclen != 32)
		return false;
	return CRYPTO_memcmp(mac, sig, 32) == 0;
}

static const char *
get_string(json_t *root, const char *name)
{
	json_t *v = json_object_get(root, name);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Integer claim name into *out; false if absent or not an integer. */
static bool
get_int(json_t *root, const char *name, int64_t *out)
{
	json_t *v = json_object_get(root, name);

	if (!json_is_integer(v))
		return false;
	*out = (int64_t) json_integer_value(v);
	return true;
}

/* Check and copy the claims of a signature-checked token. */
static bool
check_claims(const JwtVerifier *v, json_t *root, time_t now, JwtClaims *out, char *err,
			 size_t errlen)
{
	const char *s;
	json_t *aud, *cols;
	int64_t t = (int64_t) now;
	bool aud_ok = false;

	if (!json_is_object(root)) {
		set_err(err, errlen, "claims are not an object");
		return false;
	}
	s = get_string(root, "iss");
	if (s == NULL || strcmp(s, v->issuer) != 0) {
		set_err(err, errlen, "wrong issuer");
		return false;
	}
	aud = json_object_get(root, "aud");
	if (json_is_string(aud))
		aud_ok = strcmp(json_string_value(aud), v->audience) == 0;
	else if (json_is_array(aud) && json_array_size(aud) <= 16) {
		size_t i;
		json_t *a;

		json_array_foreach(aud, i, a)
			if (json_is_string(a) && strcmp(json_string_value(a), v->audience) == 0)
				aud_ok = true;
	}
	if (!aud_ok) {
		set_err(err, errlen, "wrong audience");
		return false;
	}
	if (!get_int(root, "exp", &out->exp) || !get_int(root, "iat", &out->iat) ||
		out->exp < 0 || out->iat < 0) {
		set_err(err, errlen, "exp and iat must be integers");
		return false;
	}
	if (json_object_get(root, "nbf") != NULL) {
		if (!get_int(root, "nbf", &out->nbf) || out->nbf < 0) {
			set_err(err, errlen, "nbf must be an integer");
			return false;
		}
	} else
		out->nbf = out->iat;
	/* Written so that no sum can overflow: t and the leeway are small. */
	if (t - v->leeway_s >= out->exp) {
		set_err(err, errlen, "token expired");
		return false;
	}
	if (t + v->leeway_s < out->nbf) {
		set_err(err, errlen, "token not yet valid");
		return false;
	}
	if (t + v->leeway_s < out->iat) {
		set_err(err, errlen, "token issued in the future");
		return false;
	}
	if (out->exp <= out->iat) {
		set_err(err, errlen, "exp before iat");
		return false;
	}
	if (v->max_ttl_s > 0 && out->exp - out->iat > v->max_ttl_s) {
		set_err(err, errlen, "token lifetime too long");
		return false;
	}
	s = get_string(root, "token_type");
	if (s && strcmp(s, "login") == 0)
		out->type = JWT_TOKEN_LOGIN;
	else if (s && strcmp(s, "sdk") == 0)
		out->type = JWT_TOKEN_SDK;
	else {
		set_err(err, errlen, "bad token_type");
		return false;
	}
	s = get_string(root, "sub");
	if (!valid_id(s)) {
		set_err(err, errlen, "bad sub");
		return false;
	}
	snprintf(out->sub, sizeof(out->sub), "%s", s);
	s = get_string(root, "role");
	if (!valid_role(s)) {
		set_err(err, errlen, "bad role");
		return false;
	}
	snprintf(out->role, sizeof(out->role), "%s", s);
	s = get_string(root, "jti");
	if (!valid_id(s)) {
		set_err(err, errlen, "bad jti");
		return false;
	}
	snprintf(out->jti, sizeof(out->jti), "%s", s);
	out->ncollections = 0;
	out->family[0] = '\0';
	if (out->type == JWT_TOKEN_LOGIN) {
		if (json_object_get(root, "fam") != NULL) {
			s = get_string(root, "fam");
			if (!valid_id(s)) {
				set_err(err, errlen, "bad fam");
				return false;
			}
			snprintf(out->family, sizeof(out->family), "%s", s);
		}
		out->key_id[0] = '\0';
		snprintf(out->collections[0], JWT_NAME_MAX, "*");
		out->ncollections = 1;
		return true;
	}
	s = get_string(root, "key_id");
	if (!valid_id(s)) {
		set_err(err, errlen, "bad key_id");
		return false;
	}
	snprintf(out->key_id, sizeof(out->key_id), "%s", s);
	cols = json_object_get(root, "collections");
	if (!json_is_array(cols) || json_array_size(cols) == 0 ||
		json_array_size(cols) > JWT_MAX_COLLECTIONS) {
		set_err(err, errlen, "bad collections");
		return false;
	} else {
		size_t i;
		json_t *c;

		json_array_foreach(cols, i, c) {
			const char *name = json_string_value(c);

			if (!json_is_string(c) || !valid_collection(name)) {
				set_err(err, errlen, "bad collections");
				return false;
			}
			snprintf(out->collections[out->ncollections++], JWT_NAME_MAX, "%s", name);
		}
	}
	return true;
}

bool
jwt_verify(const JwtVerifier *v, const char *token, time_t now, JwtClaims *out, char *err,
		   size_t errlen)
{
	jwt_t *j = NULL;
	const char *alg, *kid, *typ;
	char kidbuf[JWT_ID_MAX];
	const JwtKey *k;
	json_t *root;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (!check_shape(token, err, errlen))
		return false;

	/* 1. The header, from a keyless decode that checks nothing else. */
	if (jwt_decode(&j, token, NULL, 0) != 0 || j == NULL) {
		set_err(err, errlen, "malformed token");
		return false;
	}
	alg = jwt_get_header(j, "alg");
	kid = jwt_get_header(j, "kid");
	typ = jwt_get_header(j, "typ");
	if (alg == NULL || strcmp(alg, alg_name(v->alg)) != 0) {
		jwt_free(j);
		set_err(err, errlen, "algorithm not allowed");
		return false;
	}
	{
		char *typjs = jwt_get_headers_json(j, "typ");
		bool has_typ = typjs != NULL;

		free(typjs);
		if (has_typ && (typ == NULL || strcmp(typ, "JWT") != 0)) {
			jwt_free(j);
			set_err(err, errlen, "bad typ header");
			return false;
		}
	}
	if (!valid_id(kid)) {
		jwt_free(j);
		set_err(err, errlen, "missing or bad kid");
		return false;
	}
	{
		char *crit = jwt_get_headers_json(j, "crit");

		if (crit != NULL) {
			free(crit);
			jwt_free(j);
			set_err(err, errlen, "crit header not supported");
			return false;
		}
	}
	snprintf(kidbuf, sizeof(kidbuf), "%s", kid);
	jwt_free(j);
	j = NULL;
	/* the same header, strictly: no duplicate names (two "alg"s) */
	root = parse_part(token, 0);
	if (root == NULL) {
		set_err(err, errlen, "malformed header");
		return false;
	}
	json_decref(root);

	/* 2. The key kid names, if we hold it and it is not retired. */
	k = find_key(v, kidbuf);
	if (k == NULL) {
		set_err(err, errlen, "unknown key id");
		return false;
	}
	if (k->retire_at > 0 && now >= k->retire_at) {
		set_err(err, errlen, "signing key retired");
		return false;
	}
	if (v->alg == JWT_HS256 && !hs256_ok(k, token)) {
		set_err(err, errlen, "bad signature");
		return false;
	}

	/* 3. The keyed decode, and the algorithm once more. */
	if (jwt_decode(&j, token, k->key, (int) k->keylen) != 0 || j == NULL) {
		set_err(err, errlen, "bad signature");
		return false;
	}
	if (jwt_get_alg(j) != alg_libjwt(v->alg)) {
		jwt_free(j);
		set_err(err, errlen, "algorithm not allowed");
		return false;
	}

	/*
	 * 4. The claims, with their types checked by jansson.  They are parsed
	 * again from the signed text, strictly, rather than taken from libjwt.
	 */
	jwt_free(j);
	root = parse_part(token, 1);
	if (root == NULL) {
		set_err(err, errlen, "bad claims");
		return false;
	}
	ok = check_claims(v, root, now, out, err, errlen);
	json_decref(root);
	if (ok)
		snprintf(out->kid, sizeof(out->kid), "%s", kidbuf);
	else
		memset(out, 0, sizeof(*out));
	return ok;
}

char *
jwt_verifier_jwks(const JwtVerifier *v, time_t now, char *err, size_t errlen)
{
	json_t *keys = json_array();
	json_t *doc;
	char *out;
	int i;

	if (keys == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < v->nkeys; i++) {
		const JwtKey *k = &v->keys[i];
		BIGNUM *x = NULL, *y = NULL;
		unsigned char xb[32], yb[32];
		char xs[48], ys[48];

		if (k->pkey == NULL || (k->retire_at > 0 && now >= k->retire_at))
			continue;
		if (!EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
			!EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
			BN_bn2binpad(x, xb, 32) != 32 || BN_bn2binpad(y, yb, 32) != 32) {
			BN_free(x);
			BN_free(y);
			json_decref(keys);
			set_err(err, errlen, "cannot read the public point of key %s", k->kid);
			return NULL;
		}
		BN_free(x);
		BN_free(y);
		b64url_encode(xb, 32, xs);
		b64url_encode(yb, 32, ys);
		json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
											  "kty", "EC", "crv", "P-256", "x", xs, "y", ys,
											  "kid", k->kid, "use", "sig", "alg", "ES256"));
	}
	doc = json_pack("{s:o}", "keys", keys);
	out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (out == NULL)
		set_err(err, errlen, "out of memory");
	return out;
}

JwtSigner *
jwt_signer_new(JwtAlg alg, const char *kid, const unsigned char *key, size_t keylen,
			   const char *issuer, const char *audience, char *err, size_t errlen)
{
	JwtSigner *s;

	if (alg != JWT_ES256 && alg != JWT_HS256) {
		set_err(err, errlen, "algorithm must be ES256 or HS256");
		return NULL;
	}
	if (!valid_id(kid)) {
		set_err(err, errlen, "bad key id");
		return NULL;
	}
	if (issuer == NULL || *issuer == '\0' || audience == NULL || *audience == '\0') {
		set_err(err, errlen, "issuer and audience are required");
		return NULL;
	}
	if (key == NULL || keylen == 0 || keylen > JWT_MAX_KEY_BYTES) {
		set_err(err, errlen, "key has a bad size");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	s->alg = alg;
	snprintf(s->kid, sizeof(s->kid), "%s", kid);
	s->issuer = strdup(issuer);
	s->audience = strdup(audience);
	if (alg == JWT_ES256) {
		bool priv = false;
		EVP_PKEY *pkey = load_p256(key, keylen, &priv, err, errlen);

		if (pkey == NULL) {
			jwt_signer_free(s);
			return NULL;
		}
		if (!priv) {
			EVP_PKEY_free(pkey);
			jwt_signer_free(s);
			set_err(err, errlen, "ES256 signing needs a private key");
			return NULL;
		}
		s->verify_key = public_pem(pkey, &s->verify_keylen);
		EVP_PKEY_free(pkey);
	} else {
		if (keylen < JWT_MIN_HS_SECRET) {
			jwt_signer_free(s);
			set_err(err, errlen, "HS256 secret must be at least %d bytes", JWT_MIN_HS_SECRET);
			return NULL;
		}
		s->verify_key = dup_bytes(key, keylen);
		s->verify_keylen = keylen;
	}
	s->key = dup_bytes(key, keylen);
	s->keylen = keylen;
	if (s->key == NULL || s->verify_key == NULL || s->issuer == NULL || s->audience == NULL) {
		jwt_signer_free(s);
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	return s;
}

void
jwt_signer_free(JwtSigner *s)
{
	if (s == NULL)
		return;
	jwt_key_free(s->key, s->keylen);
	jwt_key_free(s->verify_key, s->verify_keylen);
	free(s->issuer);
	free(s->audience);
	free(s);
}

const unsigned char *
jwt_signer_verify_key(const JwtSigner *s, size_t *len)
{
	*len = s->verify_keylen;
	return s->verify_key;
}

const char *
jwt_signer_kid(const JwtSigner *s)
{
	return s->kid;
}

void
jwt_claims_init(JwtClaims *c, JwtTokenType type, const char *sub, const char *role, time_t now,
				int ttl_s)
{
	memset(c, 0, sizeof(*c));
	c->type = type;
	snprintf(c->sub, sizeof(c->sub), "%s", sub ? sub : "");
	snprintf(c->role, sizeof(c->role), "%s", role ? role : "");
	c->iat = (int64_t) now;
	c->nbf = (int64_t) now;
	c->exp = (int64_t) now + ttl_s;
}

bool
jwt_claims_add_collection(JwtClaims *c, const char *name)
{
	if (c->ncollections >= JWT_MAX_COLLECTIONS || !valid_collection(name))
		return false;
	snprintf(c->collections[c->ncollections++], JWT_NAME_MAX, "%s", name);
	return true;
}

char *
jwt_issue(const JwtSigner *s, const JwtClaims *c, char *err, size_t errlen)
{
	char jti[JWT_ID_MAX];
	json_t *root;
	char *claims = NULL, *token = NULL;
	jwt_t *j = NULL;
	int i;

	if (c->type != JWT_TOKEN_LOGIN && c->type != JWT_TOKEN_SDK) {
		set_err(err, errlen, "bad token type");
		return NULL;
	}
	if (!valid_id(c->sub) || !valid_role(c->role) || c->exp <= c->iat || c->iat < 0) {
		set_err(err, errlen, "bad claims (sub, role, iat, exp)");
		return NULL;
	}
	if (c->type == JWT_TOKEN_SDK && (!valid_id(c->key_id) || c->ncollections <= 0)) {
		set_err(err, errlen, "sdk tokens need key_id and collections");
		return NULL;
	}
	if (c->jti[0] != '\0') {
		if (!valid_id(c->jti)) {
			set_err(err, errlen, "bad jti");
			return NULL;
		}
		snprintf(jti, sizeof(jti), "%s", c->jti);
	} else {
		unsigned char rnd[16];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			set_err(err, errlen, "no randomness for jti");
			return NULL;
		}
		for (i = 0; i < 16; i++)
			snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	}
	root = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}",
					 "iss", s->issuer, "aud", s->audience, "sub", c->sub,
					 "iat", (json_int_t) c->iat, "nbf", (json_int_t) (c->nbf ? c->nbf : c->iat),
					 "exp", (json_int_t) c->exp, "jti", jti,
					 "token_type", jwt_token_type_name(c->type), "role", c->role);
	if (root == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	if (c->type == JWT_TOKEN_LOGIN && c->family[0] != '\0') {
		if (!valid_id(c->family)) {
			json_decref(root);
			set_err(err, errlen, "bad fam");
			return NULL;
		}
		json_object_set_new(root, "fam", json_string(c->family));
	}
	if (c->type == JWT_TOKEN_SDK) {
		json_t *cols = json_array();

		json_object_set_new(root, "key_id", json_string(c->key_id));
		for (i = 0; i < c->ncollections; i++) {
			if (!valid_collection(c->collections[i])) {
				json_decref(cols);
				json_decref(root);
				set_err(err, errlen, "bad collection name");
				return NULL;
			}
			json_array_append_new(cols, json_string(c->collections[i]));
		}
		json_object_set_new(root, "collections", cols);
	}
	claims = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (claims == NULL || jwt_new(&j) != 0 || jwt_add_grants_json(j, claims) != 0 ||
		jwt_add_header(j, "kid", s->kid) != 0 ||
		jwt_set_alg(j, alg_libjwt(s->alg), s->key, (int) s->keylen) != 0 ||
		(token = jwt_encode_str(j)) == NULL) {
		set_err(err, errlen, "cannot sign the token");
		token = NULL;
	}
	free(claims);
	jwt_free(j);
	if (token != NULL && strlen(token) > JWT_MAX_TOKEN_LEN) {
		free(token);
		set_err(err, errlen, "token too long");
		return NULL;
	}
	return token;
}
