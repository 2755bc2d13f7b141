/* Fuzzes the peer-certificate parser (tls_cert_ed25519_key), the one place
 * a peer's certificate bytes are read. Seeded with a real certificate, so
 * mutations reach the signature check. A certificate that parses must
 * parse again to the same key, and that key must verify the signature
 * libsodium checks (no accepted key without a valid self-signature). */
#include "net/tls.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static tls_cred_t seed;
  static int ready;
  uint8_t key[32], again[32];
  if (!ready) {
    identity_t id;
    char err[128];
    if (sodium_init() < 0)
      abort();
    memset(&id, 0, sizeof(id));
    crypto_sign_keypair(id.public_key, id.secret_key);
    if (tls_cred_make(&seed, &id, err, sizeof(err)) != 0)
      abort();
    ready = 1;
  }
  if (tls_cert_ed25519_key(data, size, key) == 0) {
    if (tls_cert_ed25519_key(data, size, again) != 0 ||
        memcmp(key, again, 32) != 0)
      abort();
  }
  /* The real certificate with one byte replaced from the input. */
  if (size >= 3) {
    uint8_t *d = malloc(seed.cert_len);
    memcpy(d, seed.cert_der, seed.cert_len);
    size_t at = ((size_t)data[0] << 8 | data[1]) % seed.cert_len;
    d[at] = data[2];
    (void)tls_cert_ed25519_key(d, seed.cert_len, key);
    free(d);
  }
  return 0;
}
