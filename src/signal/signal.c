/* Call signaling end to end: sessions from and to the store, CallSignals
 * into and out of envelopes, and the convergence rules; see signal.h. */
#include "signal/signal.h"

#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static int signal__restart(store_t *st, const identity_t *me,
                           const uint8_t peer[32], uint32_t above,
                           signal_result_t *res, const crypto_rng_t *rng);
static void signal__deliver(store_t *st, const identity_t *me,
                            const session_t *s, const uint8_t *pt,
                            size_t pt_len, const session_event_t *ev,
                            signal_result_t *res, const crypto_rng_t *rng);
static void signal__short_id(char out[17], const uint8_t peer[32]);

/* ---- sending ---- */

int signal_seal(store_t *st, const identity_t *me, const uint8_t peer[32],
                const callsignal_t *cs, uint8_t *env, size_t cap,
                size_t *env_len, session_ref_t *ref, const crypto_rng_t *rng) {
  uint8_t pt[CALLSIGNAL_ENCODED_MAX];
  size_t pt_len = 0;
  session_t *s = NULL;
  int rc = cs ? callsignal_encode(cs, pt, sizeof(pt), &pt_len) : 0;
  if (rc == 0)
    rc = signal_session_load(st, me, peer, &s);
  if (rc == 0 && s == NULL)
    rc = session_initiate(&s, me, peer, 1, rng);
  if (rc == 0)
    rc = session_encrypt(s, pt, pt_len, env, cap, env_len, rng);
  /* Saved before the envelope can leave: a crash must not make us reuse
   * the message key with another plaintext. */
  if (rc == 0)
    rc = signal_session_save(st, me, s, rng);
  if (rc == 0 && ref)
    *ref = s->ref;
  sodium_memzero(pt, sizeof(pt));
  session_free(s);
  return rc;
}

/* ---- receiving ---- */

int signal_open(store_t *st, const identity_t *me, const uint8_t peer[32],
                const uint8_t *env, size_t env_len, signal_result_t *res,
                const crypto_rng_t *rng) {
  uint8_t pt[CALLSIGNAL_ENCODED_MAX];
  size_t pt_len = 0;
  session_event_t ev;
  session_t *s = NULL;
  char who[17];
  memset(res, 0, sizeof(*res));
  signal__short_id(who, peer);
  int rc = signal_session_load(st, me, peer, &s);
  if (rc != 0) {
    res->status = ENVELOPE_ACK_FAILED;
    res->error = rc;
    return rc;
  }
  rc = session_receive(&s, me, peer, env, env_len, pt, sizeof(pt), &pt_len, &ev,
                       rng);
  switch (rc) {
  case 0:
    signal__deliver(st, me, s, pt, pt_len, &ev, res, rng);
    break;
  case SESSION_ERR_STALE:
    /* Ours is newer. If the peer simply has not seen our initial envelopes
     * yet, one more brings it over; otherwise it needs a new session. */
    LOG_INFO("signal", "%s: envelope of older session %u (ours: %u); %s", who,
             ev.ref.epoch, s->ref.epoch,
             s->pending ? "syncing ours" : "starting a newer one");
    res->status = ENVELOPE_ACK_RETRY;
    res->error = rc;
    if (s->pending)
      res->send_sync = true;
    else
      signal__restart(st, me, peer, s->ref.epoch, res, rng);
    break;
  case SESSION_ERR_UNKNOWN:
    /* The peer uses a session we do not have: we lost it. */
    LOG_INFO("signal", "%s: envelope of unknown session %u; starting anew", who,
             ev.ref.epoch);
    res->status = ENVELOPE_ACK_RETRY;
    res->error = rc;
    signal__restart(st, me, peer,
                    s && s->ref.epoch > ev.ref.epoch ? s->ref.epoch
                                                     : ev.ref.epoch,
                    res, rng);
    break;
  default:
    res->status = ENVELOPE_ACK_REJECTED;
    res->error = rc;
    LOG_WARN("signal", "%s: envelope rejected: %s", who, signal_strerror(rc));
    break;
  }
  sodium_memzero(pt, sizeof(pt));
  session_free(s);
  return res->status == ENVELOPE_ACK_OK ? 0 : res->error;
}

/* A decrypted envelope: persist the advanced session first (if that fails
 * the stored state still accepts the same envelope, so the peer may simply
 * send it again), then decode the CallSignal. */
static void signal__deliver(store_t *st, const identity_t *me,
                            const session_t *s, const uint8_t *pt,
                            size_t pt_len, const session_event_t *ev,
                            signal_result_t *res, const crypto_rng_t *rng) {
  int rc = signal_session_save(st, me, s, rng);
  if (rc != 0) {
    res->status = ENVELOPE_ACK_FAILED;
    res->error = rc;
    return;
  }
  res->session_changed = ev->change != SESSION_KEPT;
  if (pt_len == 0) {
    res->status = ENVELOPE_ACK_OK; /* a sync: it only moved the session */
    return;
  }
  rc = callsignal_decode(&res->signal, pt, pt_len);
  if (rc != 0) {
    char who[17];
    signal__short_id(who, s->peer_id);
    LOG_WARN("signal", "%s: undecodable CallSignal: %s", who,
             callsignal_strerror(rc));
    res->status = ENVELOPE_ACK_REJECTED;
    res->error = rc;
    return;
  }
  res->has_signal = true;
  res->status = ENVELOPE_ACK_OK;
}

/* Replaces our session with a new one we initiate, newer than epoch above,
 * and asks for a sync envelope to carry it to the peer. */
static int signal__restart(store_t *st, const identity_t *me,
                           const uint8_t peer[32], uint32_t above,
                           signal_result_t *res, const crypto_rng_t *rng) {
  session_t *s = NULL;
  if (above == UINT32_MAX) {
    res->status = ENVELOPE_ACK_REJECTED;
    res->error = SESSION_ERR_EPOCH;
    return SESSION_ERR_EPOCH;
  }
  int rc = session_initiate(&s, me, peer, above + 1, rng);
  if (rc == 0)
    rc = signal_session_save(st, me, s, rng);
  session_free(s);
  if (rc != 0) {
    res->status = ENVELOPE_ACK_FAILED;
    res->error = rc;
    return rc;
  }
  res->session_changed = true;
  res->send_sync = true;
  return 0;
}

/* ---- persistence ---- */

int signal_session_load(store_t *st, const identity_t *me,
                        const uint8_t peer[32], session_t **out) {
  char who[17];
  *out = NULL;
  uint8_t *blob = malloc(SESSION_BLOB_MAX);
  if (blob == NULL)
    return SESSION_ERR_NOMEM;
  long n = store_session_get(st, peer, blob, SESSION_BLOB_MAX);
  int rc = 0;
  if (n == -ENOENT) {
    rc = 0;
  } else if (n < 0) {
    rc = SIGNAL_ERR_STORE;
  } else {
    rc = n > SESSION_BLOB_MAX ? SESSION_ERR_BLOB
                              : session_load(out, me, peer, blob, (size_t)n);
    if (rc != 0 && rc != SESSION_ERR_NOMEM) {
      signal__short_id(who, peer);
      LOG_WARN("signal", "%s: stored session unreadable (%s); starting over",
               who, session_strerror(rc));
      rc = 0;
    }
  }
  sodium_memzero(blob,
                 n > 0 && n < SESSION_BLOB_MAX ? (size_t)n : SESSION_BLOB_MAX);
  free(blob);
  return rc;
}

int signal_session_save(store_t *st, const identity_t *me, const session_t *s,
                        const crypto_rng_t *rng) {
  size_t len;
  uint8_t *blob = malloc(SESSION_BLOB_MAX);
  if (blob == NULL)
    return SESSION_ERR_NOMEM;
  int rc = session_save(s, me, blob, SESSION_BLOB_MAX, &len, rng);
  if (rc == 0 && store_session_put(st, s->peer_id, blob, len) != 0)
    rc = SIGNAL_ERR_STORE;
  free(blob); /* ciphertext only */
  return rc;
}

int signal_current_ref(store_t *st, const identity_t *me,
                       const uint8_t peer[32], session_ref_t *ref) {
  session_t *s;
  int rc = signal_session_load(st, me, peer, &s);
  if (rc != 0)
    return rc;
  if (s == NULL)
    return SIGNAL_ERR_NO_SESSION;
  *ref = s->ref;
  session_free(s);
  return 0;
}

const char *signal_strerror(int err) {
  if (err == SIGNAL_ERR_STORE)
    return "session store failed";
  if (err == SIGNAL_ERR_NO_SESSION)
    return "no session with this peer";
  if (err <= CALLSIGNAL_ERR_EMPTY && err >= CALLSIGNAL_ERR_BUFFER)
    return callsignal_strerror(err);
  return session_strerror(err);
}

static void signal__short_id(char out[17], const uint8_t peer[32]) {
  hex_encode(out, peer, 8);
}
