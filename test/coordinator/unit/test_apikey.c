/*
 * test_apikey.c: unit tests of coordinator/apikey.c: shape and entropy of
 * generated tokens, strict parsing, hashing with and without a pepper, and
 * verification that refuses any change to the token or the stored hash.
 */
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "tap.h"

int
main(void)
{
	ApikeyHasher plain, peppered, other;
	const char *pepper = "pepper-pepper-pepper-pepper-pepper!";
	char tok[APIKEY_TOKEN_SIZE], tok2[APIKEY_TOKEN_SIZE], id[APIKEY_ID_LEN + 1], id2[APIKEY_ID_LEN + 1];
	char pid[APIKEY_ID_LEN + 1];
	char h1[APIKEY_HASH_SIZE], h2[APIKEY_HASH_SIZE], bad[APIKEY_TOKEN_SIZE + 8];
	char err[128];
	ApikeyKind kind;
	int i, distinct = 1;

	ok(apikey_hasher_init(&plain, NULL, 0, err, sizeof(err)), "hasher without pepper");
	ok(apikey_hasher_init(&peppered, (const unsigned char *) pepper, strlen(pepper), err, sizeof(err)),
	   "hasher with a 35-byte pepper");
	ok(!apikey_hasher_init(&other, (const unsigned char *) "short", 5, err, sizeof(err)),
	   "a short pepper is refused");
	ok(apikey_hasher_init(&other, (const unsigned char *) "another-pepper-another-pepper-xx", 32, err,
						  sizeof(err)), "a second pepper");

	ok(apikey_generate(APIKEY_API, tok, id, err, sizeof(err)), "generate an API key");
	ok(strlen(tok) == APIKEY_TOKEN_LEN && strncmp(tok, "vk_", 3) == 0 && tok[19] == '_',
	   "shape vk_<16 hex>_<64 hex> (%s...)", id);
	ok(strncmp(tok + 3, id, APIKEY_ID_LEN) == 0, "the id is in the token");
	ok(apikey_parse(tok, &kind, pid) && kind == APIKEY_API && strcmp(pid, id) == 0, "parse it back");
	ok(apikey_generate(APIKEY_REFRESH, tok2, id2, err, sizeof(err)) && strncmp(tok2, "vr_", 3) == 0,
	   "refresh token prefix vr_");
	ok(apikey_generate(APIKEY_RESET, tok2, id2, err, sizeof(err)) && strncmp(tok2, "vp_", 3) == 0 &&
	   apikey_parse(tok2, &kind, pid) && kind == APIKEY_RESET, "reset token prefix vp_");
	ok(!apikey_generate((ApikeyKind) 7, tok2, id2, err, sizeof(err)), "unknown kind refused");
	{
		/* 200 tokens: all different; secret nibbles roughly uniform */
		static char seen[200][APIKEY_TOKEN_SIZE];
		int counts[16] = {0}, j, minc = 1 << 30, maxc = 0;

		for (i = 0; i < 200; i++) {
			if (!apikey_generate(APIKEY_API, seen[i], id2, err, sizeof(err)))
				distinct = 0;
			for (j = 0; j < i; j++)
				if (strcmp(seen[i], seen[j]) == 0 || strncmp(seen[i] + 3, seen[j] + 3, 16) == 0)
					distinct = 0;
			for (j = 20; j < APIKEY_TOKEN_LEN; j++)
				counts[seen[i][j] <= '9' ? seen[i][j] - '0' : seen[i][j] - 'a' + 10]++;
		}
		for (j = 0; j < 16; j++) {
			if (counts[j] < minc)
				minc = counts[j];
			if (counts[j] > maxc)
				maxc = counts[j];
		}
		ok(distinct, "200 generated tokens and ids are all distinct");
		ok(minc > 600 && maxc < 1000, "secret hex digits roughly uniform (min %d, max %d of 800)", minc, maxc);
	}

	/* parse is strict */
	ok(!apikey_parse(NULL, &kind, pid), "NULL");
	ok(!apikey_parse("", &kind, pid), "empty");
	ok(!apikey_parse("vk_abc_def", &kind, pid), "short");
	snprintf(bad, sizeof(bad), "%sa", tok);
	ok(!apikey_parse(bad, &kind, pid), "one character too long");
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[0] = 'x';
	ok(!apikey_parse(bad, &kind, pid), "unknown prefix");
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[5] = 'A';
	ok(!apikey_parse(bad, &kind, pid), "uppercase in the id");
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[40] = 'g';
	ok(!apikey_parse(bad, &kind, pid), "non-hex in the secret");
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[19] = '-';
	ok(!apikey_parse(bad, &kind, pid), "wrong separator");
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[5] = '\'';
	ok(!apikey_parse(bad, &kind, pid), "quote in the id");

	/* hashing */
	ok(apikey_hash(&plain, tok, h1) && strncmp(h1, "sha256:", 7) == 0 && strlen(h1) == 7 + 64,
	   "plain hash is sha256:<64 hex>");
	ok(strstr(h1, tok + 20) == NULL, "the hash does not contain the secret");
	ok(apikey_hash(&peppered, tok, h2) && strncmp(h2, "hmac-sha256:", 12) == 0 && strlen(h2) == 12 + 64,
	   "peppered hash is hmac-sha256:<64 hex>");
	ok(strcmp(h1 + 7, h2 + 12) != 0, "pepper changes the digest");
	{
		char h3[APIKEY_HASH_SIZE];

		ok(apikey_hash(&peppered, tok, h3) && strcmp(h2, h3) == 0, "hashing is deterministic");
	}
	ok(!apikey_hash(&plain, "vk_nope", h1), "malformed token not hashed");
	ok(apikey_hash(&plain, tok, h1), "rehash");

	/* verify */
	ok(apikey_verify(&plain, APIKEY_API, tok, h1), "verify: right token, plain");
	ok(apikey_verify(&peppered, APIKEY_API, tok, h2), "verify: right token, peppered");
	ok(!apikey_verify(&other, APIKEY_API, tok, h2), "verify: another pepper fails");
	ok(!apikey_verify(&plain, APIKEY_API, tok, h2), "verify: peppered hash against the plain hasher");
	ok(!apikey_verify(&peppered, APIKEY_API, tok, h1), "verify: plain hash against the peppered hasher");
	ok(!apikey_verify(&plain, APIKEY_REFRESH, tok, h1), "verify: right token, wrong kind");
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[APIKEY_TOKEN_LEN - 1] = bad[APIKEY_TOKEN_LEN - 1] == '0' ? '1' : '0';
	ok(!apikey_verify(&plain, APIKEY_API, bad, h1), "verify: last secret digit changed");
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[3] = bad[3] == '0' ? '1' : '0';
	ok(!apikey_verify(&plain, APIKEY_API, bad, h1), "verify: same secret under another id");
	ok(!apikey_verify(&plain, APIKEY_API, tok, NULL), "verify: no stored hash");
	ok(!apikey_verify(&plain, APIKEY_API, tok, ""), "verify: empty stored hash");
	snprintf(bad, sizeof(bad), "%s", h1);
	bad[strlen(bad) - 1] = '\0';
	ok(!apikey_verify(&plain, APIKEY_API, tok, bad), "verify: truncated stored hash");
	snprintf(bad, sizeof(bad), "%s", h1);
	bad[10] = bad[10] == 'a' ? 'b' : 'a';
	ok(!apikey_verify(&plain, APIKEY_API, tok, bad), "verify: altered stored hash");
	ok(!apikey_verify(&plain, APIKEY_API, tok2, h1), "verify: another token");

	/* rotation: a new secret under the same id; the old hash no longer matches */
	{
		char rot[APIKEY_TOKEN_SIZE], hr[APIKEY_HASH_SIZE];

		ok(apikey_generate_for_id(APIKEY_API, id, rot, err, sizeof(err)) &&
		   apikey_parse(rot, &kind, pid) && strcmp(pid, id) == 0 && strcmp(rot, tok) != 0,
		   "rotate: new secret, same id");
		ok(!apikey_verify(&peppered, APIKEY_API, rot, h2) && apikey_hash(&peppered, rot, hr) &&
		   apikey_verify(&peppered, APIKEY_API, rot, hr) && apikey_verify(&peppered, APIKEY_API, tok, h2),
		   "rotate: old and new secrets each match only their own hash");
		ok(!apikey_generate_for_id(APIKEY_API, "ABCDEF0123456789", rot, err, sizeof(err)) &&
		   !apikey_generate_for_id(APIKEY_API, "abc", rot, err, sizeof(err)) &&
		   !apikey_generate_for_id(APIKEY_API, NULL, rot, err, sizeof(err)),
		   "rotate: a bad id is refused");
	}

	apikey_hasher_clear(&peppered);
	ok(peppered.pepperlen == 0 && peppered.pepper[0] == 0, "clear wipes the pepper");
	return tap_done();
}
