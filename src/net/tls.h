/* TLS 1.3 material for the QUIC endpoint: the self-signed certificate that
 * carries a daemon's Ed25519 identity key, the wolfSSL contexts built from
 * it, and the peer check run while verifying the peer's certificate.
 *
 * Owns the certificate/key DER buffers and the WOLFSSL_CTX objects.
 * tls_cert_ed25519_key() is a pure parser (any thread, fuzzed); contexts
 * and sessions are used on the endpoint's loop thread only.
 */
#ifndef PARLEY_NET_TLS_H
#define PARLEY_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
/* wolfSSL's options.h undefines _GNU_SOURCE, which the build sets for
 * every file; put it back before any system header sees it missing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <wolfssl/ssl.h>

#include "crypto/identity.h"

/* Longest comma-separated ALPN list a session takes. */
#define TLS_ALPN_LIST_MAX 600

enum tls_cert_err {
  TLS_CERT_MALFORMED = -1,     /* not DER, or not the X.509 shape expected */
  TLS_CERT_NOT_ED25519 = -2,   /* key or signature algorithm not Ed25519 */
  TLS_CERT_BAD_SIGNATURE = -3, /* not signed by its own key */
};

/* Our certificate and private key, DER encoded. */
typedef struct tls_cred {
  uint8_t *cert_der;
  size_t cert_len;
  uint8_t *key_der;
  size_t key_len;
} tls_cred_t;

/* Builds a self-signed X.509 certificate for id's Ed25519 key with
 * wolfSSL's certgen. Returns 0, or -1 with a reason in err. */
int tls_cred_make(tls_cred_t *out, const identity_t *id, char *err,
                  size_t err_size);
void tls_cred_free(tls_cred_t *c);

/* Parses a DER certificate that must hold an Ed25519 public key and be
 * signed by that same key, and checks the signature. On success copies the
 * key into out and returns 0; else a TLS_CERT_* code. Bounds-checked for
 * hostile input. */
int tls_cert_ed25519_key(const uint8_t *der, size_t len, uint8_t out[32]);

/* What the verify callback learns about one connection's peer. Filled by
 * wolfSSL's certificate verification; the connection owns it. */
typedef struct tls_peer_check {
  bool expect; /* dialer: the peer must hold `expected` */
  uint8_t expected[32];
  bool verified;   /* a certificate passed the checks below */
  uint8_t key[32]; /* the key it holds (valid when verified) */
  char error[160]; /* why verification failed, if it did */
} tls_peer_check_t;

/* A context for one role. Both require a peer certificate, accept it only
 * if it is a single self-signed Ed25519 certificate (see
 * tls_cert_ed25519_key) and, for a dialer, only if its key is the expected
 * one. TLS CertificateVerify then proves the peer owns that key. The server
 * context issues no session tickets (a resumed session would skip the
 * certificate check). Returns NULL with a reason in err. */
WOLFSSL_CTX *tls_ctx_new(const tls_cred_t *cred, bool server, char *err,
                         size_t err_size);

/* A session for one connection: wires the QUIC app data (ngtcp2 conn ref),
 * the peer check and the ALPN list ("a,b,c"; for a server the protocols it
 * accepts, any other is refused with a no_application_protocol alert).
 * Returns NULL on failure. */
WOLFSSL *tls_session_new(WOLFSSL_CTX *ctx, bool server, void *conn_ref,
                         tls_peer_check_t *check, const char *alpn_list);

/* The ALPN agreed in the handshake, copied NUL-terminated into out.
 * Returns its length or -1 if none. */
int tls_session_alpn(WOLFSSL *ssl, char *out, size_t out_size);

/* TLS alert description for log/error messages ("bad_certificate"). */
const char *tls_alert_name(uint8_t alert);

#endif
