/*
 * authfam.h: refusing the login JWTs of revoked refresh families (issue 5).
 *
 * A login starts a refresh family, and its login JWTs carry the family's id
 * in the "fam" claim.  Logout, refresh-token reuse, a password change or a
 * password reset revoke the family in the metadata database, where a
 * trigger stamps refresh_family.revoked_at.  Every coordinator keeps the
 * set of families revoked within the last login-token lifetime (older ones
 * cannot have a live login JWT) and refuses a login JWT whose family is in
 * it.  The set is reloaded on the accounts-snapshot timer (authz.c, every
 * auth_cache_poll_ms), so a revocation on one coordinator reaches the
 * others within about that time; the coordinator that revokes adds the
 * family at once (authfam_add).  A NOTIFY-driven refresh (branch revoke)
 * can simply call authfam_poll() from its handler.
 */
#ifndef VX_AUTHFAM_H
#define VX_AUTHFAM_H

#include <stdbool.h>

/* Start a reload of the revoked set from the metadata database (async). */
void authfam_poll(void);
/* This coordinator revoked family (decimal id): refuse its tokens now. */
void authfam_add(const char *family);
/* True when family (a token's fam claim) is revoked; false for "". */
bool authfam_revoked(const char *family);
void authfam_free(void);

#endif
