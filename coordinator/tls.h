/*
 * tls.h: the coordinator's HTTPS server context (OpenSSL).
 *
 * HTTPS is on when tls_cert_file is set.  tls_server_init builds the
 * SSL_CTX at start (TLS 1.2 minimum, tls_ciphers for TLS 1.2, the server
 * certificate chain and key, and with tls_client_auth = optional|require
 * client certificates verified against tls_ca_file); any bad file is a
 * start error naming the path.  http.c asks for one SSL per accepted
 * connection.  tls_server_reload (SIGHUP) builds a new context from the
 * current settings and swaps it in only if that worked; connections already
 * open keep the context they started with.
 */
#ifndef VX_TLS_H
#define VX_TLS_H

#include "util.h"

#include <openssl/ssl.h>

/* Build the server context from the settings; true (and off) without a cert. */
bool tls_server_init(char *err, size_t errlen) VX_WARN_UNUSED;
/* True when HTTPS is being served. */
bool tls_server_enabled(void);
/* A new server-side SSL for an accepted connection, or NULL (out of memory). */
SSL *tls_server_new_ssl(void);
/* Re-read certificate, key and CA (SIGHUP); logs the outcome. */
void tls_server_reload(void);
/* The pending OpenSSL errors as one line (for logs); clears them. */
void tls_error_string(unsigned long first, char *buf, size_t len);
void tls_server_shutdown(void);

#endif
