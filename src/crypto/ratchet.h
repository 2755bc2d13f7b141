/* The Double Ratchet (Signal's specification) on X25519, HMAC-SHA256 and
 * HKDF-SHA256, with XChaCha20-Poly1305 for the messages.
 *
 *   KDF_RK(rk, dh)  = HKDF(salt = rk, ikm = dh, info = "parley/ratchet/rk/1",
 *                          64 bytes) -> new rk (32) || chain key (32)
 *   KDF_CK(ck)      = message key HMAC-SHA256(ck, 0x01),
 *                     next chain key HMAC-SHA256(ck, 0x02)
 *   AEAD key        = HKDF(salt = none, ikm = message key,
 *                          info = "parley/ratchet/mk/1", 32 bytes)
 *   AEAD            = XChaCha20-Poly1305 (IETF), 24-byte nonce chosen at
 *                     random by the sender, associated data from the caller
 *
 * Message keys of skipped messages are kept, at most RATCHET_MAX_SKIP per
 * step and RATCHET_MAX_SKIPPED in all (the oldest are evicted first); a
 * key is wiped as soon as it has been used.
 *
 * This module knows nothing of envelopes or identities (crypto/session.h
 * does). It never rolls back by itself: ratchet_recv_key() mutates the state
 * it is given, so callers run it on a ratchet_copy() and keep the copy only
 * if the message then authenticates.
 *
 * Ownership: a ratchet_t owns its skipped-key array; release it with
 * ratchet_wipe(). Threads: a ratchet_t belongs to one thread at a time (the
 * loop thread in parleyd); the functions keep no global state.
 */
#ifndef PARLEY_CRYPTO_RATCHET_H
#define PARLEY_CRYPTO_RATCHET_H

#include "crypto/rng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATCHET_KEY_LEN 32
#define RATCHET_NONCE_LEN 24
#define RATCHET_TAG_LEN 16
#define RATCHET_MAX_SKIP 1000    /* skipped keys one message may create */
#define RATCHET_MAX_SKIPPED 2000 /* skipped keys kept in all */

/* Errors of this module, -20..-39; see session.h for the whole range. */
enum ratchet_err {
  RATCHET_ERR_NOMEM = -20,
  RATCHET_ERR_NO_SEND_CHAIN = -21,
  RATCHET_ERR_NO_RECV_CHAIN = -22,
  RATCHET_ERR_COUNTER = -23,
  RATCHET_ERR_TOO_MANY_SKIPPED = -24,
  RATCHET_ERR_DUPLICATE = -25,
  RATCHET_ERR_BAD_KEY = -26,
  RATCHET_ERR_AUTH = -27,
  RATCHET_ERR_STATE = -28,
};

/* The part of a message header the ratchet defines. */
typedef struct ratchet_header {
  uint8_t dh[32]; /* sender's current ratchet public key */
  uint32_t pn;    /* length of the sender's previous sending chain */
  uint32_t n;     /* message number in the current sending chain */
} ratchet_header_t;

typedef struct ratchet_skipped {
  uint8_t dh[32];
  uint32_t n;
  uint8_t mk[32];
} ratchet_skipped_t;

#define RATCHET_HAS_DHR 0x01
#define RATCHET_HAS_CKS 0x02
#define RATCHET_HAS_CKR 0x04

typedef struct ratchet {
  uint8_t flags; /* RATCHET_HAS_* */
  uint8_t dhs_sk[32], dhs_pk[32];
  uint8_t dhr[32];
  uint8_t rk[32], cks[32], ckr[32];
  uint32_t ns, nr, pn;
  /* Oldest first; n_skipped <= RATCHET_MAX_SKIPPED. */
  ratchet_skipped_t *skipped;
  uint32_t n_skipped, cap_skipped;
} ratchet_t;

/* The initiator ("Alice"): shared secret sk from the key agreement, the
 * responder's first ratchet public key. Draws one X25519 key pair (32 bytes)
 * from rng. Returns 0 or RATCHET_ERR_BAD_KEY. */
int ratchet_init_initiator(ratchet_t *r, const uint8_t sk[32],
                           const uint8_t their_pk[32], const crypto_rng_t *rng);

/* The responder ("Bob"): shared secret and the key pair whose public half
 * the initiator used. */
void ratchet_init_responder(ratchet_t *r, const uint8_t sk[32],
                            const uint8_t my_sk[32], const uint8_t my_pk[32]);

/* Deep copy (dst is overwritten, not wiped first). Returns 0 or
 * RATCHET_ERR_NOMEM (dst is then empty). */
int ratchet_copy(ratchet_t *dst, const ratchet_t *src);

/* Wipes every secret and frees the skipped keys. */
void ratchet_wipe(ratchet_t *r);

/* Sending: fills h and the message key, then advances the sending chain.
 * Returns 0, RATCHET_ERR_NO_SEND_CHAIN or RATCHET_ERR_COUNTER (the chain's
 * 2^32-1 numbers are used up), in which case nothing changed. */
int ratchet_send_key(ratchet_t *r, ratchet_header_t *h, uint8_t mk[32]);

/* Receiving: the message key for header h, from the skipped keys or by
 * advancing (and DH-ratcheting) r, which draws a key pair from rng for a DH
 * step. Mutates r even when it fails: run it on a copy. Returns 0,
 * RATCHET_ERR_DUPLICATE (that key was used or evicted), _TOO_MANY_SKIPPED,
 * _NO_RECV_CHAIN, _COUNTER, _BAD_KEY (low-order DH key) or _NOMEM. */
int ratchet_recv_key(ratchet_t *r, const ratchet_header_t *h, uint8_t mk[32],
                     const crypto_rng_t *rng);

/* AEAD under a message key. seal writes pt_len + RATCHET_TAG_LEN bytes to
 * out; open writes ct_len - RATCHET_TAG_LEN bytes and returns 0 or
 * RATCHET_ERR_AUTH. out may not overlap the input. */
void ratchet_seal(const uint8_t mk[32], const uint8_t nonce[RATCHET_NONCE_LEN],
                  const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                  size_t pt_len, uint8_t *out);
int ratchet_open(const uint8_t mk[32], const uint8_t nonce[RATCHET_NONCE_LEN],
                 const uint8_t *ad, size_t ad_len, const uint8_t *ct,
                 size_t ct_len, uint8_t *out);

/* State serialization (plaintext; crypto/session.c encrypts it):
 *   u8 flags, dhs_sk 32, dhs_pk 32, dhr 32, rk 32, cks 32, ckr 32,
 *   u32 ns, u32 nr, u32 pn, u32 n_skipped,
 *   n_skipped x (dh 32, u32 n, mk 32)
 * Integers big-endian; absent keys (flag clear) are zero bytes. */
#define RATCHET_STATE_FIXED_LEN (1 + 6 * 32 + 4 * 4)
#define RATCHET_SKIPPED_LEN (32 + 4 + 32)
#define RATCHET_STATE_MAX                                                      \
  (RATCHET_STATE_FIXED_LEN + RATCHET_MAX_SKIPPED * RATCHET_SKIPPED_LEN)

size_t ratchet_serialized_len(const ratchet_t *r);
/* Writes ratchet_serialized_len(r) bytes. */
void ratchet_serialize(const ratchet_t *r, uint8_t *out);
/* Reads one state from the start of in; *used receives its length. Strict:
 * unknown flags, non-zero absent keys, a public key not matching its secret
 * or too many skipped keys give RATCHET_ERR_STATE (r is then empty), as
 * does a short buffer. Returns 0, RATCHET_ERR_STATE or RATCHET_ERR_NOMEM. */
int ratchet_deserialize(ratchet_t *r, const uint8_t *in, size_t len,
                        size_t *used);

/* X25519 helpers shared with the session code. keypair draws 32 bytes from
 * rng as the secret scalar; dh returns 0 or RATCHET_ERR_BAD_KEY when the
 * result is all zeros (a low-order public key). */
void ratchet_keypair(uint8_t sk[32], uint8_t pk[32], const crypto_rng_t *rng);
int ratchet_dh(uint8_t out[32], const uint8_t sk[32], const uint8_t pk[32]);

#endif
