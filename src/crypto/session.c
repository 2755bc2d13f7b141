/* Sessions: set-up from identities and an ephemeral key, envelopes in and
 * out through the Double Ratchet, the choice between competing sessions and
 * the encrypted blob; see session.h. */
#include "crypto/session.h"

#include "core/util.h"
#include "crypto/hkdf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SESSION__AD_LEN (ENVELOPE_HEADER_LEN + 32)
#define SESSION__BLOB_OVERHEAD (1 + 24 + 16)

static const char session__x3dh_info[] = "parley/x3dh/1";
static const char session__store_info[] = "parley/store-key/1";

static int session__shared_secret(uint8_t sk[32], const uint8_t dh1[32],
                                  const uint8_t dh2[32],
                                  const uint8_t initiator[32],
                                  const uint8_t responder[32]);
static int session__respond(session_t **out, const identity_t *me,
                            const uint8_t peer[32], const envelope_t *e);
static int session__decrypt(session_t *s, const envelope_t *e, uint8_t *pt,
                            size_t cap, size_t *pt_len,
                            const crypto_rng_t *rng);
static void session__store_key(uint8_t key[32], const identity_t *me);
static int session__parse_state(session_t *s, const identity_t *me,
                                const uint8_t peer[32], const uint8_t *p,
                                size_t len);

/* ---- set-up ---- */

int session_initiate(session_t **out, const identity_t *me,
                     const uint8_t peer[32], uint32_t epoch,
                     const crypto_rng_t *rng) {
  uint8_t ik_a[32], ik_b_pub[32], ek[32], ek_pub[32], dh1[32], dh2[32];
  uint8_t sk[32];
  *out = NULL;
  if (epoch == 0)
    return SESSION_ERR_EPOCH;
  if (memcmp(peer, me->public_key, 32) == 0 ||
      crypto_sign_ed25519_pk_to_curve25519(ik_b_pub, peer) != 0)
    return SESSION_ERR_BAD_IDENTITY;
  session_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return SESSION_ERR_NOMEM;
  crypto_sign_ed25519_sk_to_curve25519(ik_a, me->secret_key);
  ratchet_keypair(ek, ek_pub, rng);
  int rc = ratchet_dh(dh1, ik_a, ik_b_pub);
  if (rc == 0)
    rc = ratchet_dh(dh2, ek, ik_b_pub);
  if (rc == 0)
    rc = session__shared_secret(sk, dh1, dh2, me->public_key, peer);
  if (rc == 0)
    rc = ratchet_init_initiator(&s->ratchet, sk, ik_b_pub, rng);
  sodium_memzero(ik_a, sizeof(ik_a));
  sodium_memzero(ek, sizeof(ek));
  sodium_memzero(dh1, sizeof(dh1));
  sodium_memzero(dh2, sizeof(dh2));
  sodium_memzero(sk, sizeof(sk));
  if (rc != 0) {
    session_free(s);
    return rc;
  }
  memcpy(s->my_id, me->public_key, 32);
  memcpy(s->peer_id, peer, 32);
  s->ref.epoch = epoch;
  memcpy(s->ref.initiator, me->public_key, 32);
  memcpy(s->ref.ek, ek_pub, 32);
  s->pending = true;
  *out = s;
  return 0;
}

void session_free(session_t *s) {
  if (s == NULL)
    return;
  ratchet_wipe(&s->ratchet);
  sodium_memzero(s, sizeof(*s));
  free(s);
}

int session_ref_cmp(const session_ref_t *a, const session_ref_t *b) {
  if (a->epoch != b->epoch)
    return a->epoch > b->epoch ? 1 : -1;
  int c = memcmp(a->initiator, b->initiator, 32);
  if (c != 0)
    return c < 0 ? 1 : -1;
  c = memcmp(a->ek, b->ek, 32);
  if (c != 0)
    return c < 0 ? 1 : -1;
  return 0;
}

/* The responder's half of the set-up, from an initial envelope. */
static int session__respond(session_t **out, const identity_t *me,
                            const uint8_t peer[32], const envelope_t *e) {
  uint8_t ik_b[32], ik_b_pub[32], ik_a_pub[32], dh1[32], dh2[32], sk[32];
  *out = NULL;
  if (crypto_sign_ed25519_pk_to_curve25519(ik_a_pub, peer) != 0)
    return SESSION_ERR_BAD_IDENTITY;
  session_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return SESSION_ERR_NOMEM;
  crypto_sign_ed25519_sk_to_curve25519(ik_b, me->secret_key);
  crypto_scalarmult_base(ik_b_pub, ik_b);
  int rc = ratchet_dh(dh1, ik_b, ik_a_pub);
  if (rc == 0)
    rc = ratchet_dh(dh2, ik_b, e->ek);
  if (rc == 0)
    rc = session__shared_secret(sk, dh1, dh2, peer, me->public_key);
  if (rc == 0)
    ratchet_init_responder(&s->ratchet, sk, ik_b, ik_b_pub);
  sodium_memzero(ik_b, sizeof(ik_b));
  sodium_memzero(dh1, sizeof(dh1));
  sodium_memzero(dh2, sizeof(dh2));
  sodium_memzero(sk, sizeof(sk));
  if (rc != 0) {
    session_free(s);
    return rc;
  }
  memcpy(s->my_id, me->public_key, 32);
  memcpy(s->peer_id, peer, 32);
  s->ref.epoch = e->epoch;
  memcpy(s->ref.initiator, peer, 32);
  memcpy(s->ref.ek, e->ek, 32);
  s->pending = false;
  *out = s;
  return 0;
}

static int session__shared_secret(uint8_t sk[32], const uint8_t dh1[32],
                                  const uint8_t dh2[32],
                                  const uint8_t initiator[32],
                                  const uint8_t responder[32]) {
  uint8_t ikm[96], info[sizeof(session__x3dh_info) - 1 + 64];
  size_t label = sizeof(session__x3dh_info) - 1;
  memset(ikm, 0xff, 32);
  memcpy(ikm + 32, dh1, 32);
  memcpy(ikm + 64, dh2, 32);
  memcpy(info, session__x3dh_info, label);
  memcpy(info + label, initiator, 32);
  memcpy(info + label + 32, responder, 32);
  int rc = hkdf_sha256(sk, 32, NULL, 0, ikm, sizeof(ikm), info, sizeof(info));
  sodium_memzero(ikm, sizeof(ikm));
  return rc == 0 ? 0 : SESSION_ERR_NOMEM; /* cannot fail for 32 bytes */
}

/* ---- messages ---- */

int session_encrypt(session_t *s, const uint8_t *pt, size_t pt_len,
                    uint8_t *out, size_t cap, size_t *out_len,
                    const crypto_rng_t *rng) {
  static const uint8_t empty = 0;
  uint8_t nonce[ENVELOPE_NONCE_LEN], mk[32], ad[SESSION__AD_LEN];
  ratchet_header_t h;
  if (pt_len > ENVELOPE_PT_MAX)
    return SESSION_ERR_TOO_BIG;
  if (cap < SESSION_ENVELOPE_LEN(pt_len))
    return SESSION_ERR_BUFFER;
  int rc = ratchet_send_key(&s->ratchet, &h, mk);
  if (rc != 0)
    return rc;
  crypto_rng_fill(rng, nonce, sizeof(nonce));
  envelope_fields_t f = {
      .type = s->pending ? ENVELOPE_INITIAL : ENVELOPE_NORMAL,
      .sender = s->my_id,
      .epoch = s->ref.epoch,
      .role = memcmp(s->ref.initiator, s->my_id, 32) == 0
                  ? ENVELOPE_ROLE_SENDER
                  : ENVELOPE_ROLE_RECIPIENT,
      .ek = s->ref.ek,
      .dh = h.dh,
      .pn = h.pn,
      .n = h.n,
      .nonce = nonce,
      .ct_len = (uint32_t)(pt_len + ENVELOPE_TAG_LEN),
  };
  /* A pending initiator has not ratcheted, so pn is 0: cannot fail. */
  if (envelope_write_header(out, &f) != 0)
    abort();
  memcpy(ad, out, ENVELOPE_HEADER_LEN);
  memcpy(ad + ENVELOPE_HEADER_LEN, s->peer_id, 32);
  ratchet_seal(mk, nonce, ad, sizeof(ad), pt_len ? pt : &empty, pt_len,
               out + ENVELOPE_HEADER_LEN);
  sodium_memzero(mk, sizeof(mk));
  *out_len = SESSION_ENVELOPE_LEN(pt_len);
  return 0;
}

int session_receive(session_t **sp, const identity_t *me,
                    const uint8_t peer[32], const uint8_t *env, size_t env_len,
                    uint8_t *pt, size_t cap, size_t *pt_len,
                    session_event_t *ev, const crypto_rng_t *rng) {
  session_event_t ignored;
  envelope_t e;
  if (ev == NULL)
    ev = &ignored;
  memset(ev, 0, sizeof(*ev));
  int rc = envelope_parse(&e, env, env_len);
  if (rc != 0)
    return rc;
  if (sodium_memcmp(e.sender, peer, 32) != 0)
    return SESSION_ERR_WRONG_SENDER;
  session_t *cur = *sp;
  if (memcmp(peer, me->public_key, 32) == 0 ||
      (cur && (memcmp(cur->my_id, me->public_key, 32) != 0 ||
               memcmp(cur->peer_id, peer, 32) != 0)))
    return SESSION_ERR_BAD_IDENTITY;
  ev->parsed = true;
  ev->type = e.type;
  ev->ref.epoch = e.epoch;
  memcpy(ev->ref.initiator,
         e.role == ENVELOPE_ROLE_SENDER ? peer : me->public_key, 32);
  memcpy(ev->ref.ek, e.ek, 32);

  int cmp = cur ? session_ref_cmp(&ev->ref, &cur->ref) : 1;
  if (cmp == 0)
    return session__decrypt(cur, &e, pt, cap, pt_len, rng);
  if (cmp < 0)
    return SESSION_ERR_STALE;
  if (e.type != ENVELOPE_INITIAL)
    return SESSION_ERR_UNKNOWN;
  /* A newer session from the peer: adopt it only if it decrypts. */
  session_t *fresh;
  rc = session__respond(&fresh, me, peer, &e);
  if (rc == 0)
    rc = session__decrypt(fresh, &e, pt, cap, pt_len, rng);
  if (rc != 0) {
    session_free(fresh);
    return rc;
  }
  ev->change = cur ? SESSION_REPLACED : SESSION_CREATED;
  session_free(cur);
  *sp = fresh;
  return 0;
}

/* Decrypts on a copy of the ratchet and keeps the copy only on success. */
static int session__decrypt(session_t *s, const envelope_t *e, uint8_t *pt,
                            size_t cap, size_t *pt_len,
                            const crypto_rng_t *rng) {
  uint8_t mk[32], ad[SESSION__AD_LEN];
  ratchet_header_t h;
  ratchet_t copy;
  size_t len = e->ct_len - ENVELOPE_TAG_LEN;
  if (len > cap)
    return SESSION_ERR_BUFFER;
  memcpy(h.dh, e->dh, 32);
  h.pn = e->pn;
  h.n = e->n;
  if (ratchet_copy(&copy, &s->ratchet) != 0)
    return SESSION_ERR_NOMEM;
  int rc = ratchet_recv_key(&copy, &h, mk, rng);
  if (rc == 0) {
    memcpy(ad, e->header, ENVELOPE_HEADER_LEN);
    memcpy(ad + ENVELOPE_HEADER_LEN, s->my_id, 32);
    rc = ratchet_open(mk, e->nonce, ad, sizeof(ad), e->ciphertext, e->ct_len,
                      pt);
  }
  sodium_memzero(mk, sizeof(mk));
  if (rc != 0) {
    ratchet_wipe(&copy);
    return rc;
  }
  ratchet_wipe(&s->ratchet);
  s->ratchet = copy;
  s->pending = false;
  *pt_len = len;
  return 0;
}

/* ---- blob ---- */

static void session__store_key(uint8_t key[32], const identity_t *me) {
  /* secret_key is libsodium's seed || public key: the seed comes first. */
  hkdf_sha256(key, 32, NULL, 0, me->secret_key, 32,
              (const uint8_t *)session__store_info,
              sizeof(session__store_info) - 1);
}

/* State v1: my_id 32, peer_id 32, u32 epoch, initiator 32, ek 32,
 * u8 pending, then the ratchet (ratchet.h). */
int session_save(const session_t *s, const identity_t *me, uint8_t *out,
                 size_t cap, size_t *len, const crypto_rng_t *rng) {
  uint8_t key[32], ad[33];
  size_t state_len =
      SESSION_STATE_FIXED_LEN + ratchet_serialized_len(&s->ratchet);
  if (cap < SESSION__BLOB_OVERHEAD + state_len)
    return SESSION_ERR_BUFFER;
  uint8_t *state = malloc(state_len);
  if (state == NULL)
    return SESSION_ERR_NOMEM;
  uint8_t *p = state;
  memcpy(p, s->my_id, 32);
  memcpy(p + 32, s->peer_id, 32);
  be32_put(p + 64, s->ref.epoch);
  memcpy(p + 68, s->ref.initiator, 32);
  memcpy(p + 100, s->ref.ek, 32);
  p[132] = s->pending ? 1 : 0;
  ratchet_serialize(&s->ratchet, p + SESSION_STATE_FIXED_LEN);

  out[0] = SESSION_BLOB_VERSION;
  crypto_rng_fill(rng, out + 1, 24);
  ad[0] = SESSION_BLOB_VERSION;
  memcpy(ad + 1, s->peer_id, 32);
  session__store_key(key, me);
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out + 25, NULL, state, state_len, ad, sizeof(ad), NULL, out + 1, key);
  sodium_memzero(key, sizeof(key));
  sodium_memzero(state, state_len);
  free(state);
  *len = SESSION__BLOB_OVERHEAD + state_len;
  return 0;
}

int session_load(session_t **out, const identity_t *me, const uint8_t peer[32],
                 const uint8_t *blob, size_t len) {
  uint8_t key[32], ad[33];
  *out = NULL;
  if (len >= 1 && blob[0] != SESSION_BLOB_VERSION)
    return SESSION_ERR_BLOB_VERSION;
  if (len < SESSION__BLOB_OVERHEAD + SESSION_STATE_FIXED_LEN ||
      len > SESSION_BLOB_MAX)
    return SESSION_ERR_BLOB;
  size_t state_len = len - SESSION__BLOB_OVERHEAD;
  uint8_t *state = malloc(state_len);
  session_t *s = calloc(1, sizeof(*s));
  if (state == NULL || s == NULL) {
    free(state);
    free(s);
    return SESSION_ERR_NOMEM;
  }
  ad[0] = SESSION_BLOB_VERSION;
  memcpy(ad + 1, peer, 32);
  session__store_key(key, me);
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      state, NULL, NULL, blob + 25, len - 25, ad, sizeof(ad), blob + 1, key);
  sodium_memzero(key, sizeof(key));
  if (rc == 0)
    rc = session__parse_state(s, me, peer, state, state_len);
  else
    rc = SESSION_ERR_BLOB;
  sodium_memzero(state, state_len);
  free(state);
  if (rc != 0) {
    session_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* Authenticated bytes are still checked: a blob written by a buggy or older
 * build must not yield a session that breaks the invariants. */
static int session__parse_state(session_t *s, const identity_t *me,
                                const uint8_t peer[32], const uint8_t *p,
                                size_t len) {
  size_t used;
  memcpy(s->my_id, p, 32);
  memcpy(s->peer_id, p + 32, 32);
  s->ref.epoch = be32_get(p + 64);
  memcpy(s->ref.initiator, p + 68, 32);
  memcpy(s->ref.ek, p + 100, 32);
  bool mine = memcmp(s->ref.initiator, s->my_id, 32) == 0;
  if (memcmp(s->my_id, me->public_key, 32) != 0 ||
      memcmp(s->peer_id, peer, 32) != 0 || s->ref.epoch == 0 ||
      (!mine && memcmp(s->ref.initiator, peer, 32) != 0) || p[132] > 1 ||
      (p[132] == 1 && !mine))
    return SESSION_ERR_BLOB;
  s->pending = p[132] == 1;
  int rc = ratchet_deserialize(&s->ratchet, p + SESSION_STATE_FIXED_LEN,
                               len - SESSION_STATE_FIXED_LEN, &used);
  if (rc == RATCHET_ERR_NOMEM)
    return SESSION_ERR_NOMEM;
  if (rc != 0 || used != len - SESSION_STATE_FIXED_LEN)
    return SESSION_ERR_BLOB;
  return 0;
}

const char *session_strerror(int err) {
  switch (err) {
  case 0:
    return "ok";
  case RATCHET_ERR_NOMEM:
  case SESSION_ERR_NOMEM:
    return "out of memory";
  case RATCHET_ERR_NO_SEND_CHAIN:
    return "no sending chain";
  case RATCHET_ERR_NO_RECV_CHAIN:
    return "no receiving chain for the message's ratchet key";
  case RATCHET_ERR_COUNTER:
    return "message number out of range";
  case RATCHET_ERR_TOO_MANY_SKIPPED:
    return "message skips too many message keys";
  case RATCHET_ERR_DUPLICATE:
    return "message key already used or expired (replay?)";
  case RATCHET_ERR_BAD_KEY:
    return "invalid (low-order) X25519 public key";
  case RATCHET_ERR_AUTH:
    return "message does not authenticate";
  case RATCHET_ERR_STATE:
    return "malformed ratchet state";
  case SESSION_ERR_WRONG_SENDER:
    return "envelope sender is not the authenticated peer";
  case SESSION_ERR_BAD_IDENTITY:
    return "unusable identity key";
  case SESSION_ERR_STALE:
    return "envelope of a superseded session";
  case SESSION_ERR_UNKNOWN:
    return "envelope of an unknown session";
  case SESSION_ERR_TOO_BIG:
    return "plaintext too large for one envelope";
  case SESSION_ERR_BUFFER:
    return "output buffer too small";
  case SESSION_ERR_BLOB_VERSION:
    return "unsupported session blob version";
  case SESSION_ERR_BLOB:
    return "session blob does not authenticate or is malformed";
  case SESSION_ERR_EPOCH:
    return "invalid session epoch";
  default:
    if (err < 0 && err > RATCHET_ERR_NOMEM)
      return envelope_strerror(err);
    return "unknown error";
  }
}
