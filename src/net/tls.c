/* Self-signed Ed25519 certificates, wolfSSL contexts for QUIC, and the
 * peer-certificate check that binds a connection to an identity key. */
#include "net/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <sodium.h>
#include <wolfssl/quic.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "core/util.h"

/* AlgorithmIdentifier for Ed25519 (RFC 8410): SEQUENCE { OID 1.3.101.112 } */
static const uint8_t tls__ed25519_algid[] = {0x30, 0x05, 0x06, 0x03,
                                             0x2b, 0x65, 0x70};
/* SubjectPublicKeyInfo prefix: SEQUENCE { algid, BIT STRING (0 unused) } */
static const uint8_t tls__ed25519_spki_prefix[] = {
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

#define TLS_DER_MAX 1024
/* AES-GCM only. wolfSSL 5.7.2's EVP ChaCha20-Poly1305 decryption, which
 * ngtcp2's wolfSSL helper uses for QUIC packet protection, never checks
 * the Poly1305 tag (CVE-2026-5479): forged or modified packets would be
 * accepted. So ChaCha20 is neither offered nor accepted. */
#define TLS_CIPHERS "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384"

static int tls__verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store);

int tls_cred_make(tls_cred_t *out, const identity_t *id, char *err,
                  size_t err_size) {
  ed25519_key key;
  WC_RNG rng;
  Cert cert;
  uint8_t cert_der[TLS_DER_MAX], key_der[TLS_DER_MAX];
  int cert_len = -1, key_len = -1;
  const char *what = "ed25519 key";

  memset(out, 0, sizeof(*out));
  if (wc_ed25519_init(&key) != 0) {
    snprintf(err, err_size, "wolfSSL: ed25519 init failed");
    return -1;
  }
  if (wc_InitRng(&rng) != 0) {
    wc_ed25519_free(&key);
    snprintf(err, err_size, "wolfSSL: RNG init failed");
    return -1;
  }
  /* libsodium's secret key is seed || public key: the seed is wolfSSL's
   * private key. */
  if (wc_ed25519_import_private_key(id->secret_key, 32, id->public_key, 32,
                                    &key) != 0)
    goto done;

  what = "certificate";
  wc_InitCert(&cert);
  cert.sigType = CTC_ED25519;
  cert.daysValid = 3650;
  cert.isCA = 0;
  /* The name is for humans reading a dump; the key is the identity. */
  snprintf(cert.subject.commonName, sizeof(cert.subject.commonName),
           "parley %.16s", id->peer_id);
  snprintf(cert.subject.org, sizeof(cert.subject.org), "parley");
  if (wc_MakeCert_ex(&cert, cert_der, sizeof(cert_der), ED25519_TYPE, &key,
                     &rng) < 0)
    goto done;
  cert_len = wc_SignCert_ex(cert.bodySz, cert.sigType, cert_der,
                            sizeof(cert_der), ED25519_TYPE, &key, &rng);
  if (cert_len < 0)
    goto done;
  what = "key encoding";
  key_len = wc_Ed25519KeyToDer(&key, key_der, sizeof(key_der));

done:
  wc_FreeRng(&rng);
  wc_ed25519_free(&key);
  if (cert_len < 0 || key_len < 0) {
    snprintf(err, err_size, "wolfSSL certgen failed at %s", what);
    sodium_memzero(key_der, sizeof(key_der));
    return -1;
  }
  /* Our own parser must accept what we produce, with our key in it. */
  uint8_t check[32];
  if (tls_cert_ed25519_key(cert_der, (size_t)cert_len, check) != 0 ||
      memcmp(check, id->public_key, 32) != 0) {
    snprintf(err, err_size, "generated certificate does not parse back");
    sodium_memzero(key_der, sizeof(key_der));
    return -1;
  }
  out->cert_der = malloc((size_t)cert_len);
  out->key_der = malloc((size_t)key_len);
  if (out->cert_der == NULL || out->key_der == NULL) {
    tls_cred_free(out);
    sodium_memzero(key_der, sizeof(key_der));
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  memcpy(out->cert_der, cert_der, (size_t)cert_len);
  memcpy(out->key_der, key_der, (size_t)key_len);
  out->cert_len = (size_t)cert_len;
  out->key_len = (size_t)key_len;
  sodium_memzero(key_der, sizeof(key_der));
  return 0;
}

void tls_cred_free(tls_cred_t *c) {
  if (c->key_der != NULL)
    sodium_memzero(c->key_der, c->key_len);
  free(c->key_der);
  free(c->cert_der);
  memset(c, 0, sizeof(*c));
}

/* ---- DER parsing: the one place a peer's certificate bytes are read ---- */

typedef struct tls__der {
  const uint8_t *p;
  size_t n;
} tls__der_t;

/* Takes one TLV with the given tag off the front of *in: val receives its
 * contents, raw the whole encoding (either may be NULL). Definite lengths
 * of up to 3 bytes, minimally encoded. Returns 0 or -1. */
static int tls__der_take(tls__der_t *in, uint8_t tag, tls__der_t *val,
                         tls__der_t *raw) {
  if (in->n < 2 || in->p[0] != tag)
    return -1;
  size_t hdr = 2, len = in->p[1];
  if (len >= 0x80) {
    size_t nb = len & 0x7f;
    if (nb == 0 || nb > 3 || in->n < 2 + nb)
      return -1;
    len = 0;
    for (size_t i = 0; i < nb; i++)
      len = (len << 8) | in->p[2 + i];
    if (len < 0x80 || (nb > 1 && len < (1u << (8 * (nb - 1)))))
      return -1;
    hdr += nb;
  }
  if (len > in->n - hdr)
    return -1;
  if (val != NULL)
    *val = (tls__der_t){in->p + hdr, len};
  if (raw != NULL)
    *raw = (tls__der_t){in->p, hdr + len};
  in->p += hdr + len;
  in->n -= hdr + len;
  return 0;
}

static bool tls__der_eq(tls__der_t d, const uint8_t *want, size_t n) {
  return d.n == n && memcmp(d.p, want, n) == 0;
}

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 * signatureValue BIT STRING }; tbsCertificate ::= SEQUENCE { [0] version
 * OPTIONAL, serialNumber, signature, issuer, validity, subject,
 * subjectPublicKeyInfo, ... }. Only what identifies the key is checked;
 * names, dates and extensions carry no meaning here. */
int tls_cert_ed25519_key(const uint8_t *der, size_t len, uint8_t out[32]) {
  tls__der_t in = {der, len}, cert, tbs, tbs_raw, alg, sig, spki;

  if (der == NULL || tls__der_take(&in, 0x30, &cert, NULL) != 0 || in.n != 0)
    return TLS_CERT_MALFORMED;
  if (tls__der_take(&cert, 0x30, &tbs, &tbs_raw) != 0 ||
      tls__der_take(&cert, 0x30, NULL, &alg) != 0 ||
      tls__der_take(&cert, 0x03, &sig, NULL) != 0 || cert.n != 0)
    return TLS_CERT_MALFORMED;
  if (!tls__der_eq(alg, tls__ed25519_algid, sizeof(tls__ed25519_algid)))
    return TLS_CERT_NOT_ED25519;
  if (sig.n != 1 + crypto_sign_BYTES || sig.p[0] != 0)
    return TLS_CERT_MALFORMED;

  if (tbs.n > 0 && tbs.p[0] == 0xa0 &&
      tls__der_take(&tbs, 0xa0, NULL, NULL) != 0)
    return TLS_CERT_MALFORMED;
  if (tls__der_take(&tbs, 0x02, NULL, NULL) != 0 ||
      tls__der_take(&tbs, 0x30, NULL, &alg) != 0)
    return TLS_CERT_MALFORMED;
  if (!tls__der_eq(alg, tls__ed25519_algid, sizeof(tls__ed25519_algid)))
    return TLS_CERT_NOT_ED25519;
  for (int i = 0; i < 3; i++) { /* issuer, validity, subject */
    if (tls__der_take(&tbs, 0x30, NULL, NULL) != 0)
      return TLS_CERT_MALFORMED;
  }
  if (tls__der_take(&tbs, 0x30, NULL, &spki) != 0)
    return TLS_CERT_MALFORMED;
  size_t pre = sizeof(tls__ed25519_spki_prefix);
  if (spki.n != pre + 32 || memcmp(spki.p, tls__ed25519_spki_prefix, pre))
    return TLS_CERT_NOT_ED25519;

  const uint8_t *pk = spki.p + pre;
  if (crypto_sign_verify_detached(sig.p + 1, tbs_raw.p, tbs_raw.n, pk) != 0)
    return TLS_CERT_BAD_SIGNATURE;
  memcpy(out, pk, 32);
  return 0;
}

/* ---- wolfSSL contexts and sessions ---- */

WOLFSSL_CTX *tls_ctx_new(const tls_cred_t *cred, bool server, char *err,
                         size_t err_size) {
  WOLFSSL_CTX *ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method()
                                            : wolfTLSv1_3_client_method());
  const char *what = "context";
  if (ctx == NULL)
    goto fail;
  what = "QUIC configuration";
  if ((server ? ngtcp2_crypto_wolfssl_configure_server_context(ctx)
              : ngtcp2_crypto_wolfssl_configure_client_context(ctx)) != 0)
    goto fail;
  what = "certificate";
  if (wolfSSL_CTX_use_certificate_buffer(ctx, cred->cert_der,
                                         (long)cred->cert_len,
                                         WOLFSSL_FILETYPE_ASN1) != 1)
    goto fail;
  what = "private key";
  if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, cred->key_der, (long)cred->key_len,
                                        WOLFSSL_FILETYPE_ASN1) != 1)
    goto fail;
  /* X25519 first: one key share, no HelloRetryRequest between peers. */
  what = "groups";
  if (wolfSSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1)
    goto fail;
  what = "cipher suites";
  if (wolfSSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != 1)
    goto fail;
  wolfSSL_CTX_set_verify(
      ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
      tls__verify_cb);
  if (server) {
    /* Resumption would authenticate the peer without a certificate. */
    wolfSSL_CTX_no_ticket_TLSv13(ctx);
    wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
  }
  return ctx;

fail:
  snprintf(err, err_size, "wolfSSL: cannot set up %s %s",
           server ? "server" : "client", what);
  if (ctx != NULL)
    wolfSSL_CTX_free(ctx);
  return NULL;
}

WOLFSSL *tls_session_new(WOLFSSL_CTX *ctx, bool server, void *conn_ref,
                         tls_peer_check_t *check, const char *alpn_list) {
  char list[TLS_ALPN_LIST_MAX];
  size_t n = strlen(alpn_list);
  if (n == 0 || n >= sizeof(list))
    return NULL;
  memcpy(list, alpn_list, n + 1);

  WOLFSSL *ssl = wolfSSL_new(ctx);
  if (ssl == NULL)
    return NULL;
  wolfSSL_set_app_data(ssl, conn_ref);
  wolfSSL_SetCertCbCtx(ssl, check);
  if (server)
    wolfSSL_set_accept_state(ssl);
  else
    wolfSSL_set_connect_state(ssl);
  /* QUIC v1 transport parameters extension codepoint (RFC 9001). */
  wolfSSL_set_quic_transport_version(ssl, 0x39);
  /* Server: a ClientHello offering none of these gets a fatal
   * no_application_protocol alert. Client: the answer must be ours. */
  if (wolfSSL_UseALPN(ssl, list, (unsigned)n,
                      WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
    wolfSSL_free(ssl);
    return NULL;
  }
  return ssl;
}

int tls_session_alpn(WOLFSSL *ssl, char *out, size_t out_size) {
  char *name = NULL;
  unsigned short len = 0;
  if (wolfSSL_ALPN_GetProtocol(ssl, &name, &len) != WOLFSSL_SUCCESS ||
      name == NULL || len == 0 || len >= out_size)
    return -1;
  memcpy(out, name, len);
  out[len] = '\0';
  return len;
}

/* Called by wolfSSL for a peer certificate that did not verify against a
 * CA, which is every certificate here since we trust none. Accepts exactly
 * one self-signed Ed25519 certificate (dates ignored: the key is the
 * identity) whose key is the expected one, if any. wolfSSL then checks the
 * handshake's CertificateVerify against that key. */
static int tls__verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store) {
  tls_peer_check_t *chk = store->userCtx;
  uint8_t key[32];
  char want[17], got[17];

  if (chk == NULL)
    return 0;
  chk->verified = false;
  if (store->totalCerts != 1 || store->error_depth != 0 ||
      store->certs == NULL) {
    snprintf(chk->error, sizeof(chk->error),
             "peer sent %d certificates, expected one self-signed",
             store->totalCerts);
    return 0;
  }
  switch (store->error) {
  case 0:
  case ASN_NO_SIGNER_E:
  case ASN_SELF_SIGNED_E:
  case ASN_BEFORE_DATE_E:
  case ASN_AFTER_DATE_E:
    break;
  default:
    snprintf(chk->error, sizeof(chk->error),
             "peer certificate rejected by wolfSSL (error %d)", store->error);
    return 0;
  }
  int rc =
      tls_cert_ed25519_key(store->certs[0].buffer, store->certs[0].length, key);
  if (rc != 0) {
    snprintf(chk->error, sizeof(chk->error), "peer certificate %s",
             rc == TLS_CERT_BAD_SIGNATURE ? "is not self-signed by its key"
             : rc == TLS_CERT_NOT_ED25519 ? "does not hold an Ed25519 key"
                                          : "is malformed");
    return 0;
  }
  if (chk->expect && sodium_memcmp(key, chk->expected, 32) != 0) {
    hex_encode(want, chk->expected, 8);
    hex_encode(got, key, 8);
    snprintf(chk->error, sizeof(chk->error),
             "peer key mismatch: expected %s.. got %s..", want, got);
    return 0;
  }
  memcpy(chk->key, key, 32);
  chk->verified = true;
  return 1;
}

const char *tls_alert_name(uint8_t alert) {
  switch (alert) {
  case 10:
    return "unexpected_message";
  case 20:
    return "bad_record_mac";
  case 40:
    return "handshake_failure";
  case 42:
    return "bad_certificate";
  case 43:
    return "unsupported_certificate";
  case 46:
    return "certificate_unknown";
  case 47:
    return "illegal_parameter";
  case 48:
    return "unknown_ca";
  case 49:
    return "access_denied";
  case 50:
    return "decode_error";
  case 51:
    return "decrypt_error";
  case 70:
    return "protocol_version";
  case 80:
    return "internal_error";
  case 109:
    return "missing_extension";
  case 110:
    return "unsupported_extension";
  case 116:
    return "certificate_required";
  case 120:
    return "no_application_protocol";
  default:
    return "alert";
  }
}
