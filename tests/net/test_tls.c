/* Certificates carrying an Ed25519 identity: generation with wolfSSL's
 * certgen, and the strict parser that extracts and checks the key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/tls.h"
#include <sodium.h>

#include "core/util.h"

static void make_identity(identity_t *id) {
  memset(id, 0, sizeof(*id));
  crypto_sign_keypair(id->public_key, id->secret_key);
  hex_encode(id->peer_id, id->public_key, 32);
}

static void test_cert_round_trip(void **state) {
  (void)state;
  identity_t id;
  tls_cred_t cred;
  char err[128] = "";
  uint8_t key[32];
  make_identity(&id);
  assert_int_equal(tls_cred_make(&cred, &id, err, sizeof(err)), 0);
  assert_true(cred.cert_len > 100 && cred.cert_len < 1024);
  assert_true(cred.key_len > 32);
  assert_int_equal(tls_cert_ed25519_key(cred.cert_der, cred.cert_len, key), 0);
  assert_memory_equal(key, id.public_key, 32);
  tls_cred_free(&cred);
  assert_null(cred.cert_der);
}

/* A certificate whose signature is not by its own key is refused, as is
 * anything truncated or with trailing bytes. */
static void test_cert_tampering(void **state) {
  (void)state;
  identity_t id;
  tls_cred_t cred;
  char err[128];
  uint8_t key[32];
  make_identity(&id);
  assert_int_equal(tls_cred_make(&cred, &id, err, sizeof(err)), 0);
  uint8_t *d = malloc(cred.cert_len + 1);
  memcpy(d, cred.cert_der, cred.cert_len);

  d[cred.cert_len - 1] ^= 1; /* last byte of the signature */
  assert_int_equal(tls_cert_ed25519_key(d, cred.cert_len, key),
                   TLS_CERT_BAD_SIGNATURE);
  d[cred.cert_len - 1] ^= 1;

  /* Swap in another public key: the signature no longer matches. */
  identity_t other;
  make_identity(&other);
  uint8_t *pk = memmem(d, cred.cert_len, id.public_key, 32);
  assert_non_null(pk);
  memcpy(pk, other.public_key, 32);
  assert_int_equal(tls_cert_ed25519_key(d, cred.cert_len, key),
                   TLS_CERT_BAD_SIGNATURE);
  memcpy(pk, id.public_key, 32);

  for (size_t n = 0; n < cred.cert_len; n += 7)
    assert_int_not_equal(tls_cert_ed25519_key(d, n, key), 0);
  d[cred.cert_len] = 0;
  assert_int_equal(tls_cert_ed25519_key(d, cred.cert_len + 1, key),
                   TLS_CERT_MALFORMED);
  assert_int_equal(tls_cert_ed25519_key(d, cred.cert_len, key), 0);
  free(d);
  tls_cred_free(&cred);
}

/* Random corruption never crashes the parser and never yields another key
 * (that would need a forged signature). */
static void test_cert_mutations(void **state) {
  (void)state;
  identity_t id;
  tls_cred_t cred;
  char err[128];
  uint8_t key[32];
  make_identity(&id);
  assert_int_equal(tls_cred_make(&cred, &id, err, sizeof(err)), 0);
  uint8_t *d = malloc(cred.cert_len);
  for (int i = 0; i < 20000; i++) {
    memcpy(d, cred.cert_der, cred.cert_len);
    int flips = 1 + (int)randombytes_uniform(4);
    for (int f = 0; f < flips; f++)
      d[randombytes_uniform((uint32_t)cred.cert_len)] =
          (uint8_t)randombytes_uniform(256);
    if (tls_cert_ed25519_key(d, cred.cert_len, key) == 0)
      assert_memory_equal(key, id.public_key, 32);
  }
  free(d);
  tls_cred_free(&cred);
}

static void test_alert_names(void **state) {
  (void)state;
  assert_string_equal(tls_alert_name(120), "no_application_protocol");
  assert_string_equal(tls_alert_name(42), "bad_certificate");
  assert_string_equal(tls_alert_name(1), "alert");
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cert_round_trip),
      cmocka_unit_test(test_cert_tampering),
      cmocka_unit_test(test_cert_mutations),
      cmocka_unit_test(test_alert_names),
  };
  return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
