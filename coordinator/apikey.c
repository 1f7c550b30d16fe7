/*
 * apikey.c: generation, parsing, hashing and constant-time verification of
 * API keys, refresh tokens and password-reset tokens (see apikey.h).
 *
 * The whole token is hashed, not the secret alone, so the stored hash is
 * bound to its id and kind: a secret moved under another id does not match.
 * Parsing is strict (exact length, lowercase hex) so that a lookup by id
 * never sees attacker-shaped text, and verification does the same amount of
 * work whether the id exists or not when the caller passes a dummy hash.
 */
#include "apikey.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static const char *const prefixes[] = {"vk", "vr", "vp"};

static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

const char *
apikey_prefix(ApikeyKind kind)
{
	return (unsigned) kind < 3 ? prefixes[kind] : "??";
}

static void
to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool
is_lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool
apikey_hasher_init(ApikeyHasher *h, const unsigned char *pepper, size_t len, char *err,
				   size_t errlen)
{
	memset(h, 0, sizeof(*h));
	if (pepper == NULL || len == 0)
		return true;
	if (len < APIKEY_MIN_PEPPER || len > sizeof(h->pepper)) {
		set_err(err, errlen, "pepper must be 32 to 128 bytes");
		return false;
	}
	memcpy(h->pepper, pepper, len);
	h->pepperlen = len;
	return true;
}

void
apikey_hasher_clear(ApikeyHasher *h)
{
	OPENSSL_cleanse(h, sizeof(*h));
}

bool
apikey_generate(ApikeyKind kind, char *token, char *id, char *err, size_t errlen)
{
	unsigned char rid[APIKEY_ID_LEN / 2];
	unsigned char rsec[APIKEY_SECRET_LEN / 2];
	char hid[APIKEY_ID_LEN + 1];
	char hsec[APIKEY_SECRET_LEN + 1];

	if ((unsigned) kind >= 3) {
		set_err(err, errlen, "bad token kind");
		return false;
	}
	if (RAND_bytes(rid, sizeof(rid)) != 1 || RAND_bytes(rsec, sizeof(rsec)) != 1) {
		set_err(err, errlen, "random generator failed");
		return false;
	}
	to_hex(rid, sizeof(rid), hid);
	to_hex(rsec, sizeof(rsec), hsec);
	snprintf(token, APIKEY_TOKEN_SIZE, "%s_%s_%s", prefixes[kind], hid, hsec);
	memcpy(id, hid, sizeof(hid));
	OPENSSL_cleanse(rsec, sizeof(rsec));
	OPENSSL_cleanse(hsec, sizeof(hsec));
	return true;
}

bool
apikey_generate_for_id(ApikeyKind kind, const char *id, char *token, char *err, size_t errlen)
{
	unsigned char rsec[APIKEY_SECRET_LEN / 2];
	char hsec[APIKEY_SECRET_LEN + 1];

	if ((unsigned) kind >= 3 || id == NULL || strnlen(id, APIKEY_ID_LEN + 1) != APIKEY_ID_LEN ||
		!is_lower_hex(id, APIKEY_ID_LEN)) {
		set_err(err, errlen, "bad token kind or id");
		return false;
	}
	if (RAND_bytes(rsec, sizeof(rsec)) != 1) {
		set_err(err, errlen, "random generator failed");
		return false;
	}
	to_hex(rsec, sizeof(rsec), hsec);
	snprintf(token, APIKEY_TOKEN_SIZE, "%s_%s_%s", prefixes[kind], id, hsec);
	OPENSSL_cleanse(rsec, sizeof(rsec));
	OPENSSL_cleanse(hsec, sizeof(hsec));
	return true;
}

bool
apikey_parse(const char *token, ApikeyKind *kind, char *id)
{
	int k;

	if (token == NULL || strnlen(token, APIKEY_TOKEN_LEN + 1) != APIKEY_TOKEN_LEN)
		return false;
	for (k = 0; k < 3; k++)
		if (token[0] == prefixes[k][0] && token[1] == prefixes[k][1])
			break;
	if (k == 3 || token[2] != '_' || token[3 + APIKEY_ID_LEN] != '_' ||
		!is_lower_hex(token + 3, APIKEY_ID_LEN) ||
		!is_lower_hex(token + 4 + APIKEY_ID_LEN, APIKEY_SECRET_LEN))
		return false;
	*kind = (ApikeyKind) k;
	memcpy(id, token + 3, APIKEY_ID_LEN);
	id[APIKEY_ID_LEN] = '\0';
	return true;
}

/* The raw 32-byte digest of token under h's scheme. */
static bool
digest(const ApikeyHasher *h, const char *token, unsigned char out[32])
{
	unsigned int len = 0;

	if (h->pepperlen > 0)
		return HMAC(EVP_sha256(), h->pepper, (int) h->pepperlen, (const unsigned char *) token,
					APIKEY_TOKEN_LEN, out, &len) != NULL && len == 32;
	return SHA256((const unsigned char *) token, APIKEY_TOKEN_LEN, out) != NULL;
}

bool
apikey_hash(const ApikeyHasher *h, const char *token, char *out)
{
	ApikeyKind kind;
	char id[APIKEY_ID_LEN + 1];
	unsigned char d[32];
	char hex[65];

	if (!apikey_parse(token, &kind, id) || !digest(h, token, d))
		return false;
	to_hex(d, 32, hex);
	snprintf(out, APIKEY_HASH_SIZE, "%s:%s", h->pepperlen ? "hmac-sha256" : "sha256", hex);
	return true;
}

bool
apikey_verify(const ApikeyHasher *h, ApikeyKind kind, const char *token, const char *stored)
{
	char computed[APIKEY_HASH_SIZE];
	ApikeyKind k;
	char id[APIKEY_ID_LEN + 1];
	size_t n;
	bool ok;

	if (stored == NULL || !apikey_parse(token, &k, id) || k != kind ||
		!apikey_hash(h, token, computed))
		return false;
	n = strlen(computed);
	/* the lengths are public (they depend on the scheme only) */
	if (strnlen(stored, APIKEY_HASH_SIZE) != n)
		return false;
	ok = CRYPTO_memcmp(computed, stored, n) == 0;
	OPENSSL_cleanse(computed, sizeof(computed));
	return ok;
}
