/*
 * apikey.h: opaque secrets that Vectron hands out once and stores only
 * hashed: API keys, refresh tokens and password-reset tokens.
 *
 * A token reads <prefix>_<id>_<secret>: the prefix names its kind ("vk" API
 * key, "vr" refresh token, "vp" password reset), the id (16 lowercase hex
 * characters, 64 random bits) is the database lookup key and may be shown
 * and logged, and the secret (64 lowercase hex characters, 256 random bits
 * from OpenSSL's RAND_bytes) is shown once and never stored.  What is
 * stored is "hmac-sha256:<hex>" (with a server pepper) or "sha256:<hex>"
 * (without) of the whole token, and verification compares in constant time.
 * Argon2 is for passwords only: these secrets have 256 bits of entropy, so a
 * fast hash is enough.
 */
#ifndef VX_APIKEY_H
#define VX_APIKEY_H

#include <stdbool.h>
#include <stddef.h>

#define APIKEY_WARN_UNUSED __attribute__((warn_unused_result))

#define APIKEY_ID_LEN 16
#define APIKEY_SECRET_LEN 64
/* "vk_" + id + "_" + secret + NUL */
#define APIKEY_TOKEN_LEN (3 + APIKEY_ID_LEN + 1 + APIKEY_SECRET_LEN)
#define APIKEY_TOKEN_SIZE (APIKEY_TOKEN_LEN + 1)
/* "hmac-sha256:" + 64 hex + NUL */
#define APIKEY_HASH_SIZE 80
#define APIKEY_MIN_PEPPER 32

typedef enum ApikeyKind {
	APIKEY_API = 0,				/* vk_: API keys */
	APIKEY_REFRESH = 1,			/* vr_: refresh tokens */
	APIKEY_RESET = 2			/* vp_: password-reset tokens */
} ApikeyKind;

/* How secrets are hashed: HMAC-SHA256 with a pepper, or plain SHA-256. */
typedef struct ApikeyHasher {
	unsigned char pepper[128];
	size_t pepperlen;			/* 0: plain SHA-256 */
} ApikeyHasher;

/*
 * Set up h with a pepper (NULL/0 for plain SHA-256; else at least 32 bytes,
 * for example from jwt_key_load("file:...")).
 */
bool apikey_hasher_init(ApikeyHasher *h, const unsigned char *pepper, size_t len,
						char *err, size_t errlen) APIKEY_WARN_UNUSED;
/* Wipe the pepper. */
void apikey_hasher_clear(ApikeyHasher *h);

/*
 * A new token of kind into token (APIKEY_TOKEN_SIZE bytes), its id into id
 * (APIKEY_ID_LEN + 1).  False only if the random generator fails.
 */
bool apikey_generate(ApikeyKind kind, char *token, char *id, char *err, size_t errlen) APIKEY_WARN_UNUSED;

/*
 * A new secret for an existing id (key rotation keeps the key's id): token
 * gets <prefix>_<id>_<new secret>.  False if id is not 16 lowercase hex
 * characters or the random generator fails.
 */
bool apikey_generate_for_id(ApikeyKind kind, const char *id, char *token, char *err,
							size_t errlen) APIKEY_WARN_UNUSED;

/*
 * Split token into its kind and id (APIKEY_ID_LEN + 1 bytes); false unless
 * it has exactly the generated shape.  The secret is not copied out.
 */
bool apikey_parse(const char *token, ApikeyKind *kind, char *id) APIKEY_WARN_UNUSED;

/* The stored form of token into out (APIKEY_HASH_SIZE); false if malformed. */
bool apikey_hash(const ApikeyHasher *h, const char *token, char *out) APIKEY_WARN_UNUSED;

/*
 * True when token is well formed, of kind, and hashes to stored (compared
 * in constant time).  A stored hash of the other scheme (sha256 vs
 * hmac-sha256) never matches.
 */
bool apikey_verify(const ApikeyHasher *h, ApikeyKind kind, const char *token,
				   const char *stored) APIKEY_WARN_UNUSED;

/* "vk", "vr" or "vp". */
const char *apikey_prefix(ApikeyKind kind);

#endif
