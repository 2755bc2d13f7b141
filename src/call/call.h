/* The call manager: every call's state machine, independent of transport.
 *
 * Owns the calls (outgoing: ringing -> active -> ended; incoming: incoming
 * -> active | ended), their ring timers, the "who may call" policy with a
 * per-peer offer rate limit, and the one CallRecord each ended call writes
 * to the store. It decides; the signaling transport (signal/dm.h) carries the
 * CallSignals it asks to send and feeds back what arrives, and the API turns
 * its events into notifications. Every transition goes through one
 * function, call.c:call__set_state().
 *
 * Threads: loop thread only (timers, store writes).
 */
#ifndef PARLEY_CALL_CALL_H
#define PARLEY_CALL_CALL_H

#include "signal/callsignal.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define CALL_ID_LEN 32 /* hex characters of 16 random bytes */
#define CALL_MAX_CALLS 16

enum call_state {
  CALL_STATE_RINGING,      /* outgoing: Offer sent, waiting for an answer */
  CALL_STATE_INCOMING,     /* incoming: Offer received, user not decided */
  CALL_STATE_CONNECTING,   /* answered; the media link is being set up */
  CALL_STATE_ACTIVE,       /* answered, media link up */
  CALL_STATE_RECONNECTING, /* media link lost; waiting for it to return */
  CALL_STATE_ENDED,
};

#define CALL_CONNECT_TIMEOUT_MS 10000  /* answer -> media link up */
#define CALL_RECONNECT_TIMEOUT_MS 5000 /* link lost -> back up */

enum call_policy { CALL_POLICY_CONTACTS = 0, CALL_POLICY_ANYONE = 1 };

/* Error codes of the call_* functions. */
enum call_err {
  CALL_ERR_NOT_FOUND = -1, /* no such call */
  CALL_ERR_BUSY = -2,      /* already in a call */
  CALL_ERR_STATE = -3,     /* not possible in the call's state */
  CALL_ERR_SEND = -4,      /* the transport refused at once */
  CALL_ERR_SELF = -5,      /* calling yourself */
};

typedef struct call_mgr call_mgr_t;

typedef struct call_info {
  char call_id[CALL_ID_LEN + 1];
  char peer[65];
  enum call_direction direction;
  enum call_state state;
  bool video;
  bool had_video;
  enum audio_codec audio_codec;
  enum media_transport transport;
  uint64_t started_at;       /* Unix seconds */
  uint64_t duration_seconds; /* since the answer, 0 before */
} call_info_t;

/* What the manager needs from the world. send_signal queues cs for peer and
 * later calls call_mgr_send_done(mgr, token, ok) exactly once (ok false:
 * the peer could not be reached or refused the envelope); it returns 0 or a
 * negative code if it cannot even try (then no done call follows). event
 * receives a notification name and its params (stolen). is_contact says
 * whether peer is in the contacts. media_start (may be NULL: the call is
 * active at once) starts the call's media once it is answered and reports
 * through call_mgr_media_event(); media_stop ends it. */
typedef struct call_mgr_ops {
  int (*send_signal)(void *ctx, const uint8_t peer[32], const callsignal_t *cs,
                     uint64_t token);
  void (*event)(void *ctx, const char *name, json_t *params);
  bool (*is_contact)(void *ctx, const uint8_t peer[32]);
  int (*media_start)(void *ctx, const call_info_t *ci, const uint8_t peer[32],
                     const uint8_t secret[CALLSIGNAL_SECRET_LEN]);
  void (*media_stop)(void *ctx, const char *call_id);
} call_mgr_ops_t;

typedef struct call_mgr_opts {
  uint32_t ring_timeout_ms;       /* default 45000 */
  enum call_policy accept_from;   /* default contacts */
  uint32_t offers_per_minute;     /* per peer; default 6 */
  enum media_transport transport; /* offered; default datagram */
} call_mgr_opts_t;

void call_mgr_opts_default(call_mgr_opts_t *o);

/* me is this daemon's 32-byte identity key (for the glare tie-break). */
call_mgr_t *call_mgr_new(uv_loop_t *loop, store_t *store, const uint8_t me[32],
                         const call_mgr_opts_t *opts, const call_mgr_ops_t *ops,
                         void *ctx);
/* Ends every live call as failed (records written), then frees the manager
 * once its timers are closed (run the loop afterwards). */
void call_mgr_free(call_mgr_t *m);

/* User actions. Return 0 or a CALL_ERR_*; start fills *out. */
int call_start(call_mgr_t *m, const uint8_t peer[32], bool video,
               call_info_t *out);
/* The same with the media transport to offer (0: the manager's default). */
int call_start_transport(call_mgr_t *m, const uint8_t peer[32], bool video,
                         enum media_transport transport, call_info_t *out);
/* ... and the audio codec to offer (0: Opus48k); the callee takes it. */
int call_start_codec(call_mgr_t *m, const uint8_t peer[32], bool video,
                     enum media_transport transport, enum audio_codec codec,
                     call_info_t *out);
int call_answer(call_mgr_t *m, const char *call_id);
int call_reject(call_mgr_t *m, const char *call_id, const char *reason);
int call_end(call_mgr_t *m, const char *call_id);

/* A CallSignal arrived from peer (authenticated by the transport). */
void call_mgr_on_signal(call_mgr_t *m, const uint8_t peer[32],
                        const callsignal_t *cs);
/* The outcome of a send_signal. */
void call_mgr_send_done(call_mgr_t *m, uint64_t token, bool ok);

/* The call's media link came up (up) or went down. */
void call_mgr_media_event(call_mgr_t *m, const char *call_id, bool up);

/* Video flowed in the call at some point (for the record's had_video). */
void call_mgr_mark_video(call_mgr_t *m, const char *call_id);

/* Live calls (not ended): fills up to max infos, returns the count. */
size_t call_mgr_list(call_mgr_t *m, call_info_t *out, size_t max);
int call_mgr_get(call_mgr_t *m, const char *call_id, call_info_t *out);

const char *call_state_name(enum call_state s);
/* The call as the API shows it (call_id, peer, direction, state, video,
 * duration_seconds, started_at). */
json_t *call_info_json(const call_info_t *ci);

#endif
