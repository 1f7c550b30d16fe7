/*
 * jwt.h: signing and verification of Vectron's JSON Web Tokens.
 *
 * Two token types share one format: a short-lived "login" token (console and
 * key management) and an "sdk" token minted from an API key, carrying that
 * key's id, role and allowed collections.  Tokens are signed with ES256 by
 * default, so several coordinators can share public verification keys
 * (published as JWKS), or with HS256 and a shared secret.
 *
 * libjwt 1.10 (Debian 12) trusts the algorithm named in the token and checks
 * no claims, so jwt_verify() does the checks itself, in this order: size and
 * shape of the token, a keyless decode to read the header's alg and kid, the
 * allow-list of algorithms, the key that kid names, the keyed decode, the
 * algorithm again, then every claim.  See docs/security.md.
 *
 * Nothing here logs: failures fill the caller's error buffer with a short,
 * secret-free reason.  A verifier is read-only during jwt_verify() and may
 * be shared by threads as long as nobody adds or removes keys meanwhile.
 */
#ifndef VX_JWT_H
#define VX_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define JWT_WARN_UNUSED __attribute__((warn_unused_result))

/* Longest token accepted (libjwt 1.10 copies each part onto the stack). */
#define JWT_MAX_TOKEN_LEN 8192
/* Longest identifier (sub, key_id, jti, kid) plus its terminator. */
#define JWT_ID_MAX 64
/* Collection names in one token, and their length plus terminator. */
#define JWT_MAX_COLLECTIONS 64
#define JWT_NAME_MAX 64
/* Default clock leeway for exp, nbf and iat, in seconds. */
#define JWT_DEFAULT_LEEWAY 30

typedef enum JwtAlg {
	JWT_ES256 = 1,
	JWT_HS256 = 2
} JwtAlg;

typedef enum JwtTokenType {
	JWT_TOKEN_LOGIN = 1,		/* console, keys and account routes */
	JWT_TOKEN_SDK = 2			/* data routes within a key's scope */
} JwtTokenType;

/*
 * The claims Vectron puts in a token.  In JSON: iss, aud, sub, iat, nbf,
 * exp, jti, token_type ("login" or "sdk"), role, for login tokens an
 * optional fam (the refresh family the login started, so that logout can
 * revoke the token), and for sdk tokens key_id and collections (an array
 * of names, or ["*"]).  A login token's scope is
 * its user's and reads back as the single collection "*".
 */
typedef struct JwtClaims {
	JwtTokenType type;
	char sub[JWT_ID_MAX];		/* user id */
	char key_id[JWT_ID_MAX];	/* API key id (sdk tokens), else "" */
	char role[16];				/* "admin", "write" or "readonly" */
	char jti[JWT_ID_MAX];		/* unique token id */
	char family[JWT_ID_MAX];	/* login tokens: refresh family ("fam"), or "" */
	int64_t iat;
	int64_t nbf;
	int64_t exp;
	int ncollections;
	char collections[JWT_MAX_COLLECTIONS][JWT_NAME_MAX];
	char kid[JWT_ID_MAX];		/* set by jwt_verify: the signing key's id */
} JwtClaims;

typedef struct JwtVerifyOptions {
	JwtAlg alg;					/* the only algorithm accepted */
	const char *issuer;			/* required value of iss */
	const char *audience;		/* required in aud (string or array) */
	int leeway_s;				/* clock skew allowed; <0 means the default */
	int max_ttl_s;				/* exp - iat at most this; 0: no limit */
} JwtVerifyOptions;

typedef struct JwtVerifier JwtVerifier;
typedef struct JwtSigner JwtSigner;

/*
 * Read key material named by spec: "file:/path" (a file, which must not be
 * readable by group or others), "env:NAME" (an environment variable) or
 * "literal:..." (tests only).  Returns a malloc'd, NUL-terminated buffer and
 * its length, or NULL with err filled.  Free it with jwt_key_free (wipes).
 */
unsigned char *jwt_key_load(const char *spec, size_t *len, char *err, size_t errlen) JWT_WARN_UNUSED;
void jwt_key_free(unsigned char *key, size_t len);

/* A verifier with no keys yet; NULL with err filled on bad options. */
JwtVerifier *jwt_verifier_new(const JwtVerifyOptions *opt, char *err, size_t errlen) JWT_WARN_UNUSED;
void jwt_verifier_free(JwtVerifier *v);

/*
 * Accept tokens whose header kid is `kid`.  For ES256 the key is a P-256
 * public or private key in PEM (only the public half is kept); for HS256 it
 * is the shared secret, at least 32 bytes.  retire_at > 0 stops accepting
 * the key from that time on (the grace period of a rotation).  Replaces a
 * key with the same kid.
 */
bool jwt_verifier_add_key(JwtVerifier *v, const char *kid, const unsigned char *key,
						  size_t keylen, time_t retire_at, char *err, size_t errlen) JWT_WARN_UNUSED;
/* Stop accepting kid at once; false if no such key. */
bool jwt_verifier_remove_key(JwtVerifier *v, const char *kid);
int jwt_verifier_nkeys(const JwtVerifier *v);

/*
 * Verify token at time now and fill out.  Returns false, with a short reason
 * in err, for anything but a well-formed, correctly signed, currently valid
 * token of the configured issuer, audience and algorithm.  Revocation (key
 * revoked, jti listed) is the caller's check, on the returned claims.
 */
bool jwt_verify(const JwtVerifier *v, const char *token, time_t now, JwtClaims *out,
				char *err, size_t errlen) JWT_WARN_UNUSED;

/*
 * The JWKS document ({"keys":[...]}) of the verifier's ES256 keys that are
 * not retired at now, x and y in base64url; HS256 secrets are never
 * published.  Malloc'd, or NULL with err filled.
 */
char *jwt_verifier_jwks(const JwtVerifier *v, time_t now, char *err, size_t errlen) JWT_WARN_UNUSED;

/*
 * A signer for kid: ES256 takes a P-256 private key in PEM, HS256 a secret
 * of at least 32 bytes.  issuer and audience go into every token.
 */
JwtSigner *jwt_signer_new(JwtAlg alg, const char *kid, const unsigned char *key, size_t keylen,
						  const char *issuer, const char *audience,
						  char *err, size_t errlen) JWT_WARN_UNUSED;
void jwt_signer_free(JwtSigner *s);
/*
 * The key a verifier needs for this signer's tokens: the public key in PEM
 * for ES256, the secret for HS256.  Points into the signer.
 */
const unsigned char *jwt_signer_verify_key(const JwtSigner *s, size_t *len);
const char *jwt_signer_kid(const JwtSigner *s);

/*
 * Sign claims c (type, sub, role, iat, exp; key_id and collections for sdk
 * tokens; nbf 0 means iat; an empty jti gets a random one).  Returns a
 * malloc'd token, or NULL with err filled.
 */
char *jwt_issue(const JwtSigner *s, const JwtClaims *c, char *err, size_t errlen) JWT_WARN_UNUSED;

/* Fill c for a new token of type for user sub, valid from now for ttl_s. */
void jwt_claims_init(JwtClaims *c, JwtTokenType type, const char *sub, const char *role,
					 time_t now, int ttl_s);
/* Append a collection name (or "*"); false when full or invalid. */
bool jwt_claims_add_collection(JwtClaims *c, const char *name) JWT_WARN_UNUSED;

const char *jwt_token_type_name(JwtTokenType t);

#endif
