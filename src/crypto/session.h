/* One end-to-end encrypted session with a peer: X3DH-style set-up without
 * prekey servers, the Double Ratchet (crypto/ratchet.h) inside envelopes
 * (signal/envelope.h), the rule that picks one session when both peers start
 * one at once, and the encrypted blob the session is stored as.
 *
 * Set-up, initiator A to responder B (IK: X25519 forms of the Ed25519
 * identity keys, EK_A: A's fresh ephemeral X25519 key):
 *   DH1 = X25519(IK_A, IK_B)   DH2 = X25519(EK_A, IK_B)
 *   SK  = HKDF(salt = none, ikm = 0xFF x 32 || DH1 || DH2,
 *              info = "parley/x3dh/1" || Ed25519 A || Ed25519 B, 32 bytes)
 * (X3DH's DH3 = DH(EK_A, SPK_B) would repeat DH2 since B's signed prekey is
 * its identity key, so it is left out.) B's identity X25519 key is B's first
 * ratchet key, so A can send at once; until A has decrypted something from B
 * its envelopes are "initial" and carry EK_A.
 *
 * A session is named by a session_ref_t (epoch, initiator, EK). Refs are
 * totally ordered, the same way by both peers: the higher epoch wins; for
 * equal epochs the session whose initiator has the lexicographically smaller
 * Ed25519 key wins (so when both peers initiate at once, both end up on the
 * session of the peer with the smaller key); then the smaller EK.
 * session_receive() moves to a newer session when an initial envelope for it
 * decrypts, and refuses envelopes of older sessions (SESSION_ERR_STALE) or
 * unknown ones (SESSION_ERR_UNKNOWN) without changing anything; the signal
 * layer decides what to do about those (signal/signal.h).
 *
 * Errors are negative codes unique across envelope (-1..-19), ratchet
 * (-20..-39) and session (-40..-59); session_strerror() names them all.
 *
 * Ownership: a session_t is heap-allocated by session_initiate(),
 * session_receive() or session_load() and released (wiped) with
 * session_free(). Fields are public for reading; only these functions
 * change them. Threads: the loop thread only (like the store it is saved in);
 * no global state.
 */
#ifndef PARLEY_CRYPTO_SESSION_H
#define PARLEY_CRYPTO_SESSION_H

#include "crypto/identity.h"
#include "crypto/ratchet.h"
#include "crypto/rng.h"
#include "signal/envelope.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum session_err {
  SESSION_ERR_NOMEM = -40,
  SESSION_ERR_WRONG_SENDER = -41,
  SESSION_ERR_BAD_IDENTITY = -42,
  SESSION_ERR_STALE = -43,
  SESSION_ERR_UNKNOWN = -44,
  SESSION_ERR_TOO_BIG = -45,
  SESSION_ERR_BUFFER = -46,
  SESSION_ERR_BLOB_VERSION = -47,
  SESSION_ERR_BLOB = -48,
  SESSION_ERR_EPOCH = -49,
};

typedef struct session_ref {
  uint32_t epoch;        /* >= 1 */
  uint8_t initiator[32]; /* Ed25519 identity key of the initiator */
  uint8_t ek[32];        /* initiator's ephemeral X25519 public key */
} session_ref_t;

typedef struct session {
  uint8_t my_id[32];   /* our Ed25519 identity public key */
  uint8_t peer_id[32]; /* the peer's */
  session_ref_t ref;
  /* We initiated and have not decrypted anything from the peer yet: our
   * envelopes are initial ones. */
  bool pending;
  ratchet_t ratchet;
} session_t;

/* What session_receive() did to the caller's session pointer. */
enum session_change {
  SESSION_KEPT = 0,     /* same session (or nothing, on error) */
  SESSION_CREATED = 1,  /* there was none; one was set up from the envelope */
  SESSION_REPLACED = 2, /* the envelope's newer session replaced ours */
};

typedef struct session_event {
  enum session_change change;
  /* Filled once the envelope has parsed (also on STALE / UNKNOWN): */
  bool parsed;
  uint8_t type; /* enum envelope_type */
  session_ref_t ref;
} session_event_t;

/* Starts a session with peer (Ed25519 public key) as initiator with the
 * given epoch (>= 1). Draws EK then the first ratchet key pair (32 bytes
 * each) from rng. Returns 0, SESSION_ERR_BAD_IDENTITY (peer key unusable or
 * our own), SESSION_ERR_EPOCH, RATCHET_ERR_BAD_KEY or SESSION_ERR_NOMEM. */
int session_initiate(session_t **out, const identity_t *me,
                     const uint8_t peer[32], uint32_t epoch,
                     const crypto_rng_t *rng);

/* Wipes and frees; NULL is a no-op. */
void session_free(session_t *s);

/* > 0 if a wins over (is newer than) b, < 0 if b wins, 0 if the same. */
int session_ref_cmp(const session_ref_t *a, const session_ref_t *b);

/* Length of the envelope for a plaintext of pt_len bytes. */
#define SESSION_ENVELOPE_LEN(pt_len) (ENVELOPE_HEADER_LEN + (pt_len) + 16)

/* Encrypts pt (pt_len <= ENVELOPE_PT_MAX; may be 0) into one envelope in out
 * (cap bytes). Draws the 24-byte nonce from rng. Returns 0 with *out_len
 * set, SESSION_ERR_TOO_BIG, SESSION_ERR_BUFFER, RATCHET_ERR_COUNTER or
 * RATCHET_ERR_NO_SEND_CHAIN; nothing changes on error. The caller must
 * persist the session before the envelope leaves (session_save). */
int session_encrypt(session_t *s, const uint8_t *pt, size_t pt_len,
                    uint8_t *out, size_t cap, size_t *out_len,
                    const crypto_rng_t *rng);

/* Decrypts one envelope from peer (the key the transport authenticated).
 * *sp is our current session with peer or NULL; on success it may have been
 * created or replaced (ev->change; the old one is freed). The plaintext
 * (ct_len - 16 bytes, at most ENVELOPE_PT_MAX) goes to pt (cap bytes).
 *
 * Returns 0, or on any error leaves *sp and its state exactly as they were:
 *   ENVELOPE_ERR_*            malformed envelope
 *   SESSION_ERR_WRONG_SENDER  sender key in the envelope is not peer
 *   SESSION_ERR_STALE         envelope of a session older than ours
 *   SESSION_ERR_UNKNOWN       normal envelope of a session we do not have
 *   RATCHET_ERR_AUTH          does not authenticate (tampered, wrong keys)
 *   RATCHET_ERR_DUPLICATE     its message key was used already (replay) or
 *                             evicted
 *   RATCHET_ERR_TOO_MANY_SKIPPED, _NO_RECV_CHAIN, _COUNTER, _BAD_KEY
 *   SESSION_ERR_BAD_IDENTITY, SESSION_ERR_BUFFER, SESSION_ERR_NOMEM
 * ev (may be NULL) tells what happened. Draws 32 bytes from rng when the
 * message starts a new DH ratchet step. */
int session_receive(session_t **sp, const identity_t *me,
                    const uint8_t peer[32], const uint8_t *env, size_t env_len,
                    uint8_t *pt, size_t cap, size_t *pt_len,
                    session_event_t *ev, const crypto_rng_t *rng);

/* Encrypted blob v1 (docs/protocol.md):
 *   [u8 version = 1][24-byte nonce][XChaCha20-Poly1305 ciphertext]
 * key = HKDF(salt = none, ikm = identity seed, info = "parley/store-key/1"),
 * associated data = version byte || peer's Ed25519 key. */
#define SESSION_BLOB_VERSION 1
#define SESSION_STATE_FIXED_LEN (32 + 32 + 4 + 32 + 32 + 1)
#define SESSION_BLOB_MAX                                                       \
  (1 + 24 + 16 + SESSION_STATE_FIXED_LEN + RATCHET_STATE_MAX)

/* Writes the blob (at most SESSION_BLOB_MAX bytes) to out. Draws the nonce
 * from rng. Returns 0 with *len set, SESSION_ERR_BUFFER or
 * SESSION_ERR_NOMEM. */
int session_save(const session_t *s, const identity_t *me, uint8_t *out,
                 size_t cap, size_t *len, const crypto_rng_t *rng);

/* Decrypts and checks a blob saved by session_save() for peer. Returns 0,
 * SESSION_ERR_BLOB_VERSION, SESSION_ERR_BLOB (tampered, another identity's or
 * another peer's, or malformed inside) or SESSION_ERR_NOMEM. */
int session_load(session_t **out, const identity_t *me, const uint8_t peer[32],
                 const uint8_t *blob, size_t len);

/* Static reason for any error code of envelope, ratchet or session. */
const char *session_strerror(int err);

#endif
