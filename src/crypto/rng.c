/* Random bytes for the crypto modules: libsodium, or the deterministic test
 * generator; see rng.h. */
#include "crypto/rng.h"

#include "core/util.h"
#include "crypto/hkdf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void rng__det_fill(void *ctx, uint8_t *out, size_t len);

void crypto_rng_fill(const crypto_rng_t *rng, uint8_t *out, size_t len) {
  if (rng == NULL)
    randombytes_buf(out, len);
  else
    rng->fill(rng->ctx, out, len);
}

void crypto_rng_det_init(crypto_rng_det_t *d, const uint8_t seed[32]) {
  memcpy(d->seed, seed, 32);
  d->calls = 0;
  d->rng.fill = rng__det_fill;
  d->rng.ctx = d;
}

static void rng__det_fill(void *ctx, uint8_t *out, size_t len) {
  static const char label[] = "parley/test-rng/1";
  crypto_rng_det_t *d = ctx;
  uint8_t info[sizeof(label) - 1 + 8];
  memcpy(info, label, sizeof(label) - 1);
  be64_put(info + sizeof(label) - 1, d->calls++);
  if (hkdf_sha256(out, len, NULL, 0, d->seed, 32, info, sizeof(info)) != 0)
    abort(); /* a test asked for more than HKDF can give: a bug */
}
