/* Fuzzes envelope parsing and decryption against a fixed session: Bob's
 * side of a conversation with Alice, reloaded from the same blob for every
 * input. Odd first byte: the rest is a raw envelope. Even: the rest is
 * XORed into one of a few valid envelopes, so mutations reach the session
 * and ratchet checks behind the parser. Also feeds the length prefix and
 * ack decoders. Checks that a refused envelope never changes the session. */
#include "crypto/session.h"
#include "signal/envelope.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ__BASES 4

static identity_t fuzz__alice, fuzz__bob;
static uint8_t fuzz__blob[SESSION_BLOB_MAX];
static size_t fuzz__blob_len;
static uint8_t fuzz__base[FUZZ__BASES][ENVELOPE_HEADER_LEN + 64];
static size_t fuzz__base_len[FUZZ__BASES];

static void fuzz__identity(identity_t *id, uint8_t fill) {
  uint8_t seed[32];
  memset(seed, fill, sizeof(seed));
  crypto_sign_seed_keypair(id->public_key, id->secret_key, seed);
}

static void fuzz__seal(session_t *s, const char *text, uint8_t *out,
                       size_t *len, const crypto_rng_t *rng) {
  if (session_encrypt(s, (const uint8_t *)text, strlen(text), out,
                      ENVELOPE_HEADER_LEN + 64, len, rng) != 0)
    abort();
}

static void fuzz__open(session_t **s, const identity_t *me,
                       const identity_t *from, const uint8_t *env, size_t len,
                       const crypto_rng_t *rng) {
  uint8_t pt[64];
  size_t pt_len;
  if (session_receive(s, me, from->public_key, env, len, pt, sizeof(pt),
                      &pt_len, NULL, rng) != 0)
    abort();
}

/* Alice and Bob talk a little; Alice leaves envelopes Bob has not seen yet
 * (the bases), one of them on a later chain. */
static void fuzz__setup(void) {
  uint8_t seed[32] = {7}, env[ENVELOPE_HEADER_LEN + 64];
  size_t len;
  crypto_rng_det_t rng;
  session_t *a = NULL, *b = NULL;
  if (sodium_init() < 0)
    abort();
  crypto_rng_det_init(&rng, seed);
  fuzz__identity(&fuzz__alice, 0xa1);
  fuzz__identity(&fuzz__bob, 0xb0);
  if (session_initiate(&a, &fuzz__alice, fuzz__bob.public_key, 1, &rng.rng) !=
      0)
    abort();
  fuzz__seal(a, "initial", fuzz__base[0], &fuzz__base_len[0], &rng.rng);
  fuzz__seal(a, "hello", env, &len, &rng.rng);
  fuzz__open(&b, &fuzz__bob, &fuzz__alice, env, len, &rng.rng);
  fuzz__seal(b, "hi", env, &len, &rng.rng);
  fuzz__open(&a, &fuzz__alice, &fuzz__bob, env, len, &rng.rng);
  fuzz__seal(a, "skipped", fuzz__base[1], &fuzz__base_len[1], &rng.rng);
  fuzz__seal(a, "normal", env, &len, &rng.rng);
  fuzz__open(&b, &fuzz__bob, &fuzz__alice, env, len, &rng.rng);
  fuzz__seal(a, "next", fuzz__base[2], &fuzz__base_len[2], &rng.rng);
  fuzz__seal(b, "again", env, &len, &rng.rng);
  fuzz__open(&a, &fuzz__alice, &fuzz__bob, env, len, &rng.rng);
  fuzz__seal(a, "new chain", fuzz__base[3], &fuzz__base_len[3], &rng.rng);
  if (session_save(b, &fuzz__bob, fuzz__blob, sizeof(fuzz__blob),
                   &fuzz__blob_len, &rng.rng) != 0)
    abort();
  session_free(a);
  session_free(b);
}

static void fuzz__other_decoders(const uint8_t *data, size_t size) {
  uint32_t len, reason;
  enum envelope_ack_status status;
  if (size >= ENVELOPE_PREFIX_LEN && envelope_prefix_decode(data, &len) == 0 &&
      (len == 0 || len > ENVELOPE_MAX))
    __builtin_trap();
  if (envelope_ack_decode(data, size, &status, &reason) == 0 &&
      (size != ENVELOPE_ACK_LEN || status > ENVELOPE_ACK_FAILED))
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  static uint8_t env[ENVELOPE_MAX + 1];
  uint8_t pt[ENVELOPE_PT_MAX], before[SESSION_BLOB_MAX],
      after[SESSION_BLOB_MAX];
  size_t env_len, pt_len, before_len, after_len;
  if (!ready) {
    fuzz__setup();
    ready = 1;
  }
  if (size == 0)
    return 0;
  fuzz__other_decoders(data, size);
  if (data[0] & 1) {
    env_len = size - 1 > sizeof(env) ? sizeof(env) : size - 1;
    memcpy(env, data + 1, env_len);
  } else {
    int which = (data[0] >> 1) % FUZZ__BASES;
    env_len = fuzz__base_len[which];
    memcpy(env, fuzz__base[which], env_len);
    for (size_t i = 1; i < size && i - 1 < env_len; i++)
      env[i - 1] ^= data[i];
  }

  session_t *s = NULL;
  uint8_t seed[32] = {3};
  crypto_rng_det_t rng, fixed;
  crypto_rng_det_init(&rng, seed);
  if (session_load(&s, &fuzz__bob, fuzz__alice.public_key, fuzz__blob,
                   fuzz__blob_len) != 0)
    __builtin_trap();
  crypto_rng_det_init(&fixed, seed);
  session_save(s, &fuzz__bob, before, sizeof(before), &before_len, &fixed.rng);
  session_t *old = s;
  session_event_t ev;
  envelope_t e;
  int parsed = envelope_parse(&e, env, env_len);
  int rc = session_receive(&s, &fuzz__bob, fuzz__alice.public_key, env, env_len,
                           pt, sizeof(pt), &pt_len, &ev, &rng.rng);
  if (parsed != 0 && rc != parsed)
    __builtin_trap(); /* parsing happens in exactly one place */
  if (rc != 0) {
    if (s != old)
      __builtin_trap();
    crypto_rng_det_init(&fixed, seed);
    session_save(s, &fuzz__bob, after, sizeof(after), &after_len, &fixed.rng);
    if (after_len != before_len || memcmp(before, after, before_len) != 0)
      __builtin_trap(); /* a refused envelope changed the session */
    if (strcmp(session_strerror(rc), "unknown error") == 0)
      __builtin_trap();
  } else if (pt_len != e.ct_len - ENVELOPE_TAG_LEN) {
    __builtin_trap();
  }
  session_free(s);
  return 0;
}
