/* Where the crypto modules get random bytes: libsodium by default, or an
 * injected generator so tests and known-answer vectors are reproducible.
 *
 * A crypto_rng_t is owned by its caller and must outlive the call it is
 * passed to; NULL always means libsodium's randombytes_buf. The deterministic
 * generator is for tests only: its output is predictable by design.
 * libsodium must have been initialized (sodium_init(), done at start-up by
 * identity_load_or_create()). Threads: a deterministic generator belongs to
 * one thread; the default may be used from any.
 */
#ifndef PARLEY_CRYPTO_RNG_H
#define PARLEY_CRYPTO_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct crypto_rng {
  void (*fill)(void *ctx, uint8_t *out, size_t len);
  void *ctx;
} crypto_rng_t;

/* Fills out with len bytes from rng, or from randombytes_buf if rng is
 * NULL. */
void crypto_rng_fill(const crypto_rng_t *rng, uint8_t *out, size_t len);

/* Deterministic generator: call i (counting from 0) returns the first len
 * bytes (len <= 8160) of HKDF-SHA256(salt = none, ikm = seed,
 * info = "parley/test-rng/1" || u64 BE i). */
typedef struct crypto_rng_det {
  crypto_rng_t rng; /* pass &det.rng */
  uint8_t seed[32];
  uint64_t calls;
} crypto_rng_det_t;

void crypto_rng_det_init(crypto_rng_det_t *d, const uint8_t seed[32]);

#endif
