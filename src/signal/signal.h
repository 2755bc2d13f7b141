/* Call signaling over the DM ALPN, end to end: loads the peer's session from
 * the store (or starts one), seals a CallSignal into an envelope, opens an
 * incoming envelope into a CallSignal plus the ack to answer with, and keeps
 * both peers converging on one session.
 *
 * What the network layer does with it (one QUIC bidirectional stream per
 * envelope, framing in signal/envelope.h):
 *  - to send: signal_seal() (the session is saved before it returns, so the
 *    envelope may leave); keep the CallSignal and the session_ref it was
 *    sealed under until the ack comes.
 *  - on an ack: OK or REJECTED: forget it. FAILED: send the same envelope
 *    again later. RETRY: if signal_current_ref() differs from the ref it was
 *    sealed under, re-seal and send now; otherwise hold it and re-seal when
 *    signal_open() reports session_changed. No ack at all (connection
 *    lost): sending the same envelope again is safe; if it had arrived, the
 *    copy is refused as a replay (REJECTED), so a CallSignal is delivered
 *    at most once.
 *  - on an envelope: signal_open() with the peer key QUIC authenticated;
 *    write the ack it gives; deliver res.signal if has_signal; if send_sync,
 *    send signal_seal(NULL) to the peer; if session_changed, re-seal what is
 *    held (see RETRY).
 *
 * Convergence: when an envelope belongs to an older session than ours
 * (STALE) we bring the peer onto ours: if ours is one we initiated and the
 * peer has not answered yet, a sync envelope (an initial one, empty
 * plaintext) is enough; otherwise the peer evidently lacks our session (it
 * lost state, or this is a late envelope) and we start a new session with a
 * higher epoch and sync that. When a normal envelope belongs to a session we
 * do not have (UNKNOWN: we lost state) we do the same. Sessions only ever
 * move up in session_ref_cmp() order on both sides, so this ends. These
 * restarts are triggered by envelopes that cannot be authenticated; that is
 * acceptable because they arrive on a QUIC connection authenticated as the
 * peer, and a restart costs a round trip, never confidentiality.
 *
 * Errors: the codes of envelope.h, ratchet.h, session.h, callsignal.h and
 * SIGNAL_ERR_* (-80..-99); signal_strerror() names them all.
 *
 * Threads: the loop thread only (it uses the store). The caller owns every
 * buffer; nothing is kept between calls but what is in the store.
 */
#ifndef PARLEY_SIGNAL_SIGNAL_H
#define PARLEY_SIGNAL_SIGNAL_H

#include "crypto/identity.h"
#include "crypto/rng.h"
#include "crypto/session.h"
#include "signal/callsignal.h"
#include "signal/envelope.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum signal_err {
  SIGNAL_ERR_STORE = -80,
  SIGNAL_ERR_NO_SESSION = -81,
};

/* Largest envelope signal_seal() writes. */
#define SIGNAL_ENVELOPE_MAX SESSION_ENVELOPE_LEN(CALLSIGNAL_ENCODED_MAX)

typedef struct signal_result {
  enum envelope_ack_status status; /* the ack to answer with */
  int error;                       /* 0 or why; the ack's reason is -error */
  bool has_signal;                 /* signal holds a decrypted CallSignal */
  callsignal_t signal;
  bool session_changed; /* our session with the peer is a new one */
  bool send_sync;       /* send signal_seal(NULL) to the peer now */
} signal_result_t;

/* Seals cs (NULL: an empty "sync" envelope) for peer into env (cap bytes,
 * SIGNAL_ENVELOPE_MAX suffices), starting a session (epoch 1) if there is
 * none, and saves the session. ref (may be NULL) receives the session it was
 * sealed under. Returns 0, a CALLSIGNAL_ERR_* for an invalid cs, a session
 * error, or SIGNAL_ERR_STORE (then nothing may be sent). */
int signal_seal(store_t *st, const identity_t *me, const uint8_t peer[32],
                const callsignal_t *cs, uint8_t *env, size_t cap,
                size_t *env_len, session_ref_t *ref, const crypto_rng_t *rng);

/* Opens an envelope that arrived on a connection authenticated as peer
 * (the envelope's sender key must match it). Fills res as described above
 * and returns 0 when res->status is OK, else res->error. A rejected envelope
 * leaves the stored session as it was. */
int signal_open(store_t *st, const identity_t *me, const uint8_t peer[32],
                const uint8_t *env, size_t env_len, signal_result_t *res,
                const crypto_rng_t *rng);

/* The session currently stored for peer. Returns 0, SIGNAL_ERR_NO_SESSION
 * when there is none (or it is unreadable), SIGNAL_ERR_STORE or
 * SESSION_ERR_NOMEM. */
int signal_current_ref(store_t *st, const identity_t *me,
                       const uint8_t peer[32], session_ref_t *ref);

/* Session persistence: load gives 0 with *out NULL when nothing (readable)
 * is stored; an unreadable blob is logged and treated as absent, so the
 * next save replaces it. Return 0, SIGNAL_ERR_STORE or SESSION_ERR_NOMEM. */
int signal_session_load(store_t *st, const identity_t *me,
                        const uint8_t peer[32], session_t **out);
int signal_session_save(store_t *st, const identity_t *me, const session_t *s,
                        const crypto_rng_t *rng);

/* Static reason for any error code of the signaling stack. */
const char *signal_strerror(int err);

#endif
