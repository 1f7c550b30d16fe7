/*
 * authfam.c: the revoked-refresh-family set (see authfam.h).
 *
 * The set is a jansson object {"<family id>": true}, replaced whole when a
 * reload finishes.  A reload reads only the families revoked within the
 * login-token lifetime plus the verifier's leeway and a margin, so it stays
 * small (its size is the number of logouts and revocations in about 15
 * minutes) and the check is one hash lookup on the loop.  Families this
 * coordinator revokes are added at once and kept across a reload that was
 * already running when they were added (the reload might have read the
 * database before the revocation committed).
 */
#include "authfam.h"

#include "config.h"
#include "log.h"
#include "metadata.h"

#include <jansson.h>
#include <stdio.h>

static json_t *fam_set;			/* revoked families */
static json_t *fam_local;		/* added here since the running reload started */
static bool fam_loading;

static void
fam_loaded(PgJob *job, void *arg)
{
	json_t *s, *v;
	const char *k;

	fam_loading = false;
	if (!job->ok) {
		log_warning("auth: reloading the revoked refresh families failed: %s",
					job->errmsg ? job->errmsg : "?");
		pgjob_free(job);
		return;
	}
	s = json_object();
	for (int i = 0; i < PQntuples(job->results[0]); i++)
		json_object_set_new(s, PQgetvalue(job->results[0], i, 0), json_true());
	json_object_foreach(fam_local, k, v)
		json_object_set(s, k, v);
	json_object_clear(fam_local);
	json_decref(fam_set);
	fam_set = s;
	pgjob_free(job);
}

void
authfam_poll(void)
{
	char secs[32];
	ParamList p;
	PgJob *job;

	if (fam_loading)
		return;
	if (!fam_local)
		fam_local = json_object();
	fam_loading = true;
	/* a token lives at most auth_login_ttl_s, plus the verifier's leeway */
	snprintf(secs, sizeof(secs), "%d", cf_auth_login_ttl_s + 120);
	params_init(&p);
	params_add(&p, secs);
	job = pgjob_new(fam_loaded, NULL);
	job->timeout_ms = 10000;
	pgjob_add(job,
			  "SELECT id FROM vectron_meta.refresh_family WHERE revoked "
			  "AND revoked_at > now() - make_interval(secs => $1::int)",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

void
authfam_add(const char *family)
{
	if (!family || !family[0])
		return;
	if (!fam_set)
		fam_set = json_object();
	if (!fam_local)
		fam_local = json_object();
	json_object_set_new(fam_set, family, json_true());
	if (fam_loading)
		json_object_set_new(fam_local, family, json_true());
}

bool
authfam_revoked(const char *family)
{
	return family && family[0] && fam_set && json_object_get(fam_set, family) != NULL;
}

void
authfam_free(void)
{
	json_decref(fam_set);
	json_decref(fam_local);
	fam_set = fam_local = NULL;
}
