/*
 * tls.c: the HTTPS server context (see tls.h).
 *
 * One SSL_CTX at a time.  It allows TLS 1.2 and 1.3 only, takes the
 * TLS 1.2 cipher list from tls_ciphers (forward-secret AEAD suites by
 * default; TLS 1.3 keeps OpenSSL's suites, all of which are AEAD), refuses
 * compression and renegotiation, and prefers the server's cipher order.
 * Client certificates: none (not asked), optional (asked; one that is sent
 * must chain to tls_ca_file) or require (asked; the handshake fails
 * without one).  Every file is opened by us first, so that a missing or
 * unreadable file is reported with its path and the system's reason before
 * OpenSSL's less readable one.
 */
#include "tls.h"

#include "config.h"
#include "log.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

static SSL_CTX *tls_ctx;

void
tls_error_string(unsigned long first, char *buf, size_t len)
{
	unsigned long e = first ? first : ERR_get_error();
	size_t used = 0;

	buf[0] = '\0';
	if (!e) {
		snprintf(buf, len, "unknown TLS error");
		return;
	}
	for (; e && used + 2 < len; e = ERR_get_error()) {
		char one[256];
		const char *reason = ERR_reason_error_string(e);

		if (reason)
			snprintf(one, sizeof(one), "%s", reason);
		else
			ERR_error_string_n(e, one, sizeof(one));
		used += snprintf(buf + used, len - used, "%s%s", used ? "; " : "", one);
	}
	ERR_clear_error();
}

/* Can the file be read?  Fills err with "<setting> <path>: <reason>". */
static bool
check_readable(const char *setting, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "%s %s: cannot open: %s", setting, path, strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

/* Build a context from the current settings; NULL with err filled. */
static SSL_CTX *
build_ctx(char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char ossl[512];
	bool want_client = strcmp(cf_tls_client_auth, "none") != 0;

	if (!cf_tls_key_file[0]) {
		snprintf(err, errlen, "tls_cert_file is set but tls_key_file is not");
		return NULL;
	}
	if (want_client && !cf_tls_ca_file[0]) {
		snprintf(err, errlen, "tls_client_auth = %s needs tls_ca_file (the CA that signs "
				 "client certificates)", cf_tls_client_auth);
		return NULL;
	}
	if (!check_readable("tls_cert_file", cf_tls_cert_file, err, errlen) ||
		!check_readable("tls_key_file", cf_tls_key_file, err, errlen) ||
		(cf_tls_ca_file[0] && !check_readable("tls_ca_file", cf_tls_ca_file, err, errlen)))
		return NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_error_string(0, ossl, sizeof(ossl));
		snprintf(err, errlen, "cannot create a TLS context: %s", ossl);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
						SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/*
	 * Most HTTP clients close without a close_notify; OpenSSL 3 calls that
	 * an error, which libevent's dirty-shutdown setting does not cover.
	 * Treat it as the plain EOF it is (answers carry Content-Length, so a
	 * truncation attack has nothing to truncate).
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (SSL_CTX_set_cipher_list(ctx, cf_tls_ciphers) != 1) {
		tls_error_string(0, ossl, sizeof(ossl));
		snprintf(err, errlen, "tls_ciphers \"%s\": %s", cf_tls_ciphers, ossl);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cf_tls_cert_file) != 1) {
		tls_error_string(0, ossl, sizeof(ossl));
		snprintf(err, errlen, "tls_cert_file %s: cannot load the certificate: %s",
				 cf_tls_cert_file, ossl);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cf_tls_key_file, SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			snprintf(err, errlen,
					 "tls_key_file %s does not match the certificate in tls_cert_file %s",
					 cf_tls_key_file, cf_tls_cert_file);
			goto fail;
		}
		tls_error_string(0, ossl, sizeof(ossl));
		snprintf(err, errlen, "tls_key_file %s: cannot load the private key: %s",
				 cf_tls_key_file, ossl);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "tls_key_file %s does not match the certificate in tls_cert_file %s",
				 cf_tls_key_file, cf_tls_cert_file);
		goto fail;
	}
	if (cf_tls_ca_file[0]) {
		STACK_OF(X509_NAME) *names;

		if (SSL_CTX_load_verify_locations(ctx, cf_tls_ca_file, NULL) != 1 ||
			!(names = SSL_load_client_CA_file(cf_tls_ca_file))) {
			tls_error_string(0, ossl, sizeof(ossl));
			snprintf(err, errlen, "tls_ca_file %s: cannot load CA certificates: %s",
					 cf_tls_ca_file, ossl);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (want_client) {
		int mode = SSL_VERIFY_PEER;

		if (strcmp(cf_tls_client_auth, "require") == 0)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, NULL);
		SSL_CTX_set_verify_depth(ctx, 4);
		/* resumed sessions must carry the verified client identity */
		SSL_CTX_set_session_id_context(ctx, (const unsigned char *) "vectron", 7);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

bool
tls_server_init(char *err, size_t errlen)
{
	if (!cf_tls_cert_file[0]) {
		if (cf_tls_key_file[0]) {
			snprintf(err, errlen, "tls_key_file is set but tls_cert_file is not");
			return false;
		}
		return true;
	}
	tls_ctx = build_ctx(err, errlen);
	if (!tls_ctx)
		return false;
	log_info("HTTPS: certificate %s, client certificates %s", cf_tls_cert_file,
			 cf_tls_client_auth);
	return true;
}

bool
tls_server_enabled(void)
{
	return tls_ctx != NULL;
}

SSL *
tls_server_new_ssl(void)
{
	return tls_ctx ? SSL_new(tls_ctx) : NULL;
}

void
tls_server_reload(void)
{
	char err[1024];
	SSL_CTX *ctx;

	if (!tls_ctx) {
		if (cf_tls_cert_file[0])
			log_warning("SIGHUP: tls_cert_file is set but HTTPS was off at start; "
						"restart the coordinator to serve HTTPS");
		return;
	}
	if (!cf_tls_cert_file[0]) {
		log_warning("SIGHUP: tls_cert_file is now empty; still serving HTTPS with the old "
					"certificate (restart to turn HTTPS off)");
		return;
	}
	ctx = build_ctx(err, sizeof(err));
	if (!ctx) {
		log_warning("SIGHUP: TLS reload failed, keeping the old certificate: %s", err);
		return;
	}
	/* open connections hold their own reference to the old context */
	SSL_CTX_free(tls_ctx);
	tls_ctx = ctx;
	log_info("SIGHUP: TLS certificate reloaded from %s", cf_tls_cert_file);
}

void
tls_server_shutdown(void)
{
	if (tls_ctx)
		SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}
