/* The call manager: call state machine, ring timers, policy and rate limit,
 * call records; see call.h. */
#include "call/call.h"

#include "core/log.h"
#include "core/util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define RATE_SLOTS 32

typedef struct call {
  struct call *next;
  call_mgr_t *mgr;
  uint64_t serial; /* send tokens are serial * 8 + signal kind */
  call_info_t info;
  uint8_t peer[32];
  uint8_t secret[CALLSIGNAL_SECRET_LEN];
  uint64_t answered_ms; /* uv_now at the answer, 0 before */
  uv_timer_t timer;
} call_t;

typedef struct rate_slot {
  uint8_t peer[32];
  double tokens;
  uint64_t last_ms;
  bool used;
} rate_slot_t;

struct call_mgr {
  uv_loop_t *loop;
  store_t *store;
  uint8_t me[32];
  call_mgr_opts_t opts;
  call_mgr_ops_t ops;
  void *ctx;
  call_t *calls; /* live calls */
  uint64_t next_serial;
  rate_slot_t rate[RATE_SLOTS];
  int closing_timers;
  bool freeing;
};

/* How a call ends: the record's reason, the event's detail, and whether a
 * record is written at all (not for a call merged into the peer's). */
typedef struct call_end_how {
  enum call_end_reason reason;
  const char *detail;
  bool record;
} call_end_how_t;

static const char *const call__state_names[] = {
    [CALL_STATE_RINGING] = "ringing",
    [CALL_STATE_INCOMING] = "incoming",
    [CALL_STATE_CONNECTING] = "connecting",
    [CALL_STATE_ACTIVE] = "active",
    [CALL_STATE_RECONNECTING] = "reconnecting",
    [CALL_STATE_ENDED] = "ended",
};

const char *call_state_name(enum call_state s) {
  return (unsigned)s < ARRAY_SIZE(call__state_names) ? call__state_names[s]
                                                     : "unknown";
}

void call_mgr_opts_default(call_mgr_opts_t *o) {
  o->ring_timeout_ms = 45000;
  o->accept_from = CALL_POLICY_CONTACTS;
  o->offers_per_minute = 6;
  o->transport = MEDIA_TRANSPORT_DATAGRAM;
}

json_t *call_info_json(const call_info_t *ci) {
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:I}", "call_id", ci->call_id,
      "peer", ci->peer, "direction", call_direction_name(ci->direction),
      "state", call_state_name(ci->state), "video", ci->video, "audio_codec",
      ci->audio_codec == AUDIO_CODEC_OPUS24K ? "opus24k" : "opus48k",
      "transport",
      ci->transport == MEDIA_TRANSPORT_STREAM ? "stream" : "datagram",
      "duration_seconds", (json_int_t)ci->duration_seconds, "started_at",
      (json_int_t)ci->started_at);
}

static void call__emit(call_mgr_t *m, const char *name, json_t *params) {
  if (m->ops.event && params)
    m->ops.event(m->ctx, name, params);
  else
    json_decref(params);
}

static call_t *call__find(call_mgr_t *m, const char *call_id) {
  for (call_t *c = m->calls; c; c = c->next)
    if (strcmp(c->info.call_id, call_id) == 0)
      return c;
  return NULL;
}

static call_t *call__by_serial(call_mgr_t *m, uint64_t serial) {
  for (call_t *c = m->calls; c; c = c->next)
    if (c->serial == serial)
      return c;
  return NULL;
}

static void call__refresh_duration(call_t *c) {
  if (c->answered_ms)
    c->info.duration_seconds = (uv_now(c->mgr->loop) - c->answered_ms) / 1000u;
}

static void call__on_timer_closed(uv_handle_t *h) {
  call_t *c = h->data;
  call_mgr_t *m = c->mgr;
  sodium_memzero(c->secret, sizeof(c->secret));
  free(c);
  if (--m->closing_timers == 0 && m->freeing)
    free(m);
}

static void call__unlink(call_t *c) {
  call_t **pp = &c->mgr->calls;
  while (*pp && *pp != c)
    pp = &(*pp)->next;
  if (*pp)
    *pp = c->next;
  c->mgr->closing_timers++;
  uv_close((uv_handle_t *)&c->timer, call__on_timer_closed);
}

static void call__write_record(call_t *c, enum call_end_reason reason) {
  call_record_t rec = {0};
  memcpy(rec.call_id, c->info.call_id, sizeof(c->info.call_id));
  memcpy(rec.peer, c->info.peer, sizeof(rec.peer));
  rec.direction = c->info.direction;
  rec.duration_seconds = c->info.duration_seconds;
  rec.had_video = c->info.had_video;
  rec.timestamp = c->info.started_at;
  rec.ended_reason = reason;
  int r = store_history_put(c->mgr->store, &rec);
  if (r != 0)
    LOG_ERROR("call", "cannot record call %s: error %d", rec.call_id, r);
}

/* Every transition passes here: it updates the state, tells the API, and
 * for ENDED writes the record and releases the call. */
static void call__set_state(call_t *c, enum call_state state,
                            const call_end_how_t *how) {
  call_mgr_t *m = c->mgr;
  LOG_INFO("call", "%s %s -> %s%s%s", c->info.call_id,
           call_state_name(c->info.state), call_state_name(state),
           how ? " " : "", how ? how->detail : "");
  c->info.state = state;
  call__emit(m, "call-state",
             json_pack("{s:s, s:s}", "call_id", c->info.call_id, "state",
                       call_state_name(state)));
  if (state != CALL_STATE_ENDED)
    return;
  uv_timer_stop(&c->timer);
  call__refresh_duration(c);
  if (c->answered_ms && m->ops.media_stop)
    m->ops.media_stop(m->ctx, c->info.call_id);
  if (how->record)
    call__write_record(c, how->reason);
  call__emit(m, "call-ended",
             json_pack("{s:s, s:s, s:s, s:I}", "call_id", c->info.call_id,
                       "reason", call_end_reason_name(how->reason), "detail",
                       how->detail, "duration_seconds",
                       (json_int_t)c->info.duration_seconds));
  call__unlink(c);
}

static void call__end(call_t *c, enum call_end_reason reason,
                      const char *detail) {
  call_end_how_t how = {reason, detail, true};
  call__set_state(c, CALL_STATE_ENDED, &how);
}

static void call__on_link_timeout(uv_timer_t *t);
static int call__send(call_t *c, enum callsignal_kind kind, const char *reason);

/* Answered: media starts (connecting), or the call is active at once when
 * there is no media to start. */
static void call__activate(call_t *c, bool peer_video) {
  call_mgr_t *m = c->mgr;
  c->answered_ms = uv_now(m->loop);
  c->info.video = c->info.video && peer_video;
  uv_timer_stop(&c->timer);
  call__emit(m, "call-answered",
             json_pack("{s:s, s:b}", "call_id", c->info.call_id, "video",
                       c->info.video));
  if (!m->ops.media_start) {
    c->info.had_video = c->info.video;
    call__set_state(c, CALL_STATE_ACTIVE, NULL);
    return;
  }
  call__set_state(c, CALL_STATE_CONNECTING, NULL);
  if (m->ops.media_start(m->ctx, &c->info, c->peer, c->secret) != 0) {
    call__send(c, CALLSIGNAL_END, NULL);
    call__end(c, CALL_END_FAILED, "cannot start media");
    return;
  }
  uv_timer_start(&c->timer, call__on_link_timeout, CALL_CONNECT_TIMEOUT_MS, 0);
}

/* Asks the transport to send a signal of this kind for the call. */
static int call__send(call_t *c, enum callsignal_kind kind,
                      const char *reason) {
  callsignal_t cs = {0};
  cs.kind = kind;
  memcpy(cs.call_id, c->info.call_id, sizeof(c->info.call_id));
  cs.audio_codec = c->info.audio_codec;
  cs.video = c->info.video;
  cs.transport = c->info.transport;
  memcpy(cs.call_secret, c->secret, sizeof(cs.call_secret));
  if (reason)
    snprintf(cs.reason, sizeof(cs.reason), "%s", reason);
  int r = c->mgr->ops.send_signal(c->mgr->ctx, c->peer, &cs,
                                  c->serial * 8 + (uint64_t)kind);
  sodium_memzero(cs.call_secret, sizeof(cs.call_secret));
  return r;
}

/* The media link did not come up (or back) in time. */
static void call__on_link_timeout(uv_timer_t *t) {
  call_t *c = t->data;
  call__send(c, CALLSIGNAL_END, NULL);
  call__end(c, CALL_END_FAILED,
            c->info.state == CALL_STATE_CONNECTING ? "media link never came up"
                                                   : "media link lost");
}

void call_mgr_media_event(call_mgr_t *m, const char *call_id, bool up) {
  call_t *c = call__find(m, call_id);
  if (!c)
    return;
  enum call_state s = c->info.state;
  if (up && (s == CALL_STATE_CONNECTING || s == CALL_STATE_RECONNECTING)) {
    /* Until the video pipeline reports frames, a video call counts as
     * having had video once its media link is up. */
    c->info.had_video = c->info.had_video || c->info.video;
    uv_timer_stop(&c->timer);
    call__set_state(c, CALL_STATE_ACTIVE, NULL);
  } else if (!up && s == CALL_STATE_ACTIVE) {
    call__set_state(c, CALL_STATE_RECONNECTING, NULL);
    uv_timer_start(&c->timer, call__on_link_timeout, CALL_RECONNECT_TIMEOUT_MS,
                   0);
  }
}

void call_mgr_mark_video(call_mgr_t *m, const char *call_id) {
  call_t *c = call__find(m, call_id);
  if (c)
    c->info.had_video = true;
}

/* Either side may give up first (each has its own ring_timeout): the End
 * tells the other one to stop ringing too. */
static void call__on_ring_timeout(uv_timer_t *t) {
  call_t *c = t->data;
  call__send(c, CALLSIGNAL_END, NULL);
  call__end(c, CALL_END_MISSED, "no answer");
}

static call_t *call__new(call_mgr_t *m, const uint8_t peer[32],
                         enum call_direction dir, enum call_state state) {
  call_t *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->mgr = m;
  c->serial = ++m->next_serial;
  memcpy(c->peer, peer, 32);
  hex_encode(c->info.peer, peer, 32);
  c->info.direction = dir;
  c->info.state = state;
  c->info.started_at = time_now_s();
  c->info.audio_codec = AUDIO_CODEC_OPUS48K;
  c->info.transport = m->opts.transport;
  uv_timer_init(m->loop, &c->timer);
  c->timer.data = c;
  uv_timer_start(&c->timer, call__on_ring_timeout, m->opts.ring_timeout_ms, 0);
  c->next = m->calls;
  m->calls = c;
  return c;
}

call_mgr_t *call_mgr_new(uv_loop_t *loop, store_t *store, const uint8_t me[32],
                         const call_mgr_opts_t *opts, const call_mgr_ops_t *ops,
                         void *ctx) {
  call_mgr_t *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  m->loop = loop;
  m->store = store;
  memcpy(m->me, me, 32);
  if (opts)
    m->opts = *opts;
  else
    call_mgr_opts_default(&m->opts);
  m->ops = *ops;
  m->ctx = ctx;
  return m;
}

void call_mgr_free(call_mgr_t *m) {
  if (!m)
    return;
  while (m->calls) {
    call_t *c = m->calls;
    if (c->info.state == CALL_STATE_INCOMING)
      call__send(c, CALLSIGNAL_REJECT, "unavailable");
    else
      call__send(c, CALLSIGNAL_END, NULL);
    call__end(c,
              c->info.state == CALL_STATE_ACTIVE ? CALL_END_COMPLETED
                                                 : CALL_END_FAILED,
              "daemon shutting down");
  }
  m->freeing = true;
  if (m->closing_timers == 0)
    free(m);
}

int call_start(call_mgr_t *m, const uint8_t peer[32], bool video,
               call_info_t *out) {
  return call_start_transport(m, peer, video, 0, out);
}

int call_start_transport(call_mgr_t *m, const uint8_t peer[32], bool video,
                         enum media_transport transport, call_info_t *out) {
  return call_start_codec(m, peer, video, transport, 0, out);
}

int call_start_codec(call_mgr_t *m, const uint8_t peer[32], bool video,
                     enum media_transport transport, enum audio_codec codec,
                     call_info_t *out) {
  if (memcmp(peer, m->me, 32) == 0)
    return CALL_ERR_SELF;
  if (m->calls)
    return CALL_ERR_BUSY;
  call_t *c = call__new(m, peer, CALL_DIR_OUTGOING, CALL_STATE_RINGING);
  if (!c)
    return CALL_ERR_STATE;
  uint8_t id[CALL_ID_LEN / 2];
  randombytes_buf(id, sizeof(id));
  hex_encode(c->info.call_id, id, sizeof(id));
  randombytes_buf(c->secret, sizeof(c->secret));
  c->info.video = video;
  if (transport)
    c->info.transport = transport;
  if (codec)
    c->info.audio_codec = codec;
  if (out)
    *out = c->info;
  call__emit(
      m, "call-state",
      json_pack("{s:s, s:s}", "call_id", c->info.call_id, "state", "ringing"));
  if (call__send(c, CALLSIGNAL_OFFER, NULL) != 0) {
    call__end(c, CALL_END_FAILED, "peer unreachable");
    if (out)
      out->state = CALL_STATE_ENDED;
    return CALL_ERR_SEND;
  }
  return 0;
}

static int call__live(call_mgr_t *m, const char *call_id, call_t **out) {
  *out = call_id ? call__find(m, call_id) : NULL;
  return *out ? 0 : CALL_ERR_NOT_FOUND;
}

int call_answer(call_mgr_t *m, const char *call_id) {
  call_t *c;
  if (call__live(m, call_id, &c) != 0)
    return CALL_ERR_NOT_FOUND;
  if (c->info.state != CALL_STATE_INCOMING)
    return CALL_ERR_STATE;
  if (call__send(c, CALLSIGNAL_ANSWER, NULL) != 0) {
    call__end(c, CALL_END_FAILED, "peer unreachable");
    return CALL_ERR_SEND;
  }
  call__activate(c, true);
  return 0;
}

int call_reject(call_mgr_t *m, const char *call_id, const char *reason) {
  call_t *c;
  if (call__live(m, call_id, &c) != 0)
    return CALL_ERR_NOT_FOUND;
  if (c->info.state != CALL_STATE_INCOMING)
    return CALL_ERR_STATE;
  call__send(c, CALLSIGNAL_REJECT, reason ? reason : "rejected");
  call__end(c, CALL_END_REJECTED, reason ? reason : "rejected");
  return 0;
}

int call_end(call_mgr_t *m, const char *call_id) {
  call_t *c;
  if (call__live(m, call_id, &c) != 0)
    return CALL_ERR_NOT_FOUND;
  switch (c->info.state) {
  case CALL_STATE_INCOMING:
    return call_reject(m, call_id, "rejected");
  case CALL_STATE_RINGING:
    call__send(c, CALLSIGNAL_END, NULL);
    call__end(c, CALL_END_MISSED, "cancelled");
    return 0;
  case CALL_STATE_CONNECTING:
  case CALL_STATE_ACTIVE:
  case CALL_STATE_RECONNECTING:
    call__send(c, CALLSIGNAL_END, NULL);
    call__end(c, CALL_END_COMPLETED, "hung up");
    return 0;
  case CALL_STATE_ENDED:
    break;
  }
  return CALL_ERR_STATE;
}

/* Token bucket per peer: offers_per_minute, refilled continuously. The
 * table is small and the least recently used slot is reused, so a flood of
 * peers cannot grow it. */
static bool call__rate_ok(call_mgr_t *m, const uint8_t peer[32]) {
  uint64_t now = uv_now(m->loop);
  double cap = m->opts.offers_per_minute;
  rate_slot_t *slot = NULL, *oldest = &m->rate[0];
  for (size_t i = 0; i < RATE_SLOTS; i++) {
    rate_slot_t *s = &m->rate[i];
    if (s->used && memcmp(s->peer, peer, 32) == 0) {
      slot = s;
      break;
    }
    if (!s->used || (oldest->used && s->last_ms < oldest->last_ms))
      oldest = s;
  }
  if (!slot) {
    slot = oldest;
    memcpy(slot->peer, peer, 32);
    slot->tokens = cap;
    slot->last_ms = now;
    slot->used = true;
  }
  slot->tokens += (double)(now - slot->last_ms) * cap / 60000.0;
  if (slot->tokens > cap)
    slot->tokens = cap;
  slot->last_ms = now;
  if (slot->tokens < 1.0)
    return false;
  slot->tokens -= 1.0;
  return true;
}

/* Replies to an Offer we will not ring for, and records it once. */
static void call__refuse(call_mgr_t *m, const uint8_t peer[32],
                         const callsignal_t *cs, const char *why,
                         enum call_end_reason reason) {
  call_t *c = call__new(m, peer, CALL_DIR_INCOMING, CALL_STATE_INCOMING);
  if (!c)
    return;
  memcpy(c->info.call_id, cs->call_id, CALL_ID_LEN + 1);
  c->info.video = cs->video;
  call__send(c, CALLSIGNAL_REJECT, why);
  call__end(c, reason, why);
}

static void call__on_offer(call_mgr_t *m, const uint8_t peer[32],
                           const callsignal_t *cs, const char *peer_hex) {
  if (strlen(cs->call_id) != CALL_ID_LEN) {
    LOG_WARN("call", "offer from %.8s refused: malformed call id", peer_hex);
    return;
  }
  if (call__find(m, cs->call_id))
    return; /* a retransmission of an offer we already have */
  if (!call__rate_ok(m, peer)) {
    LOG_WARN("call", "offer from %.8s dropped: more than %u offers a minute",
             peer_hex, m->opts.offers_per_minute);
    return;
  }
  if (m->opts.accept_from == CALL_POLICY_CONTACTS &&
      !(m->ops.is_contact && m->ops.is_contact(m->ctx, peer))) {
    LOG_WARN("call",
             "offer from %.8s refused: not a contact "
             "(accept_calls_from = contacts)",
             peer_hex);
    call__refuse(m, peer, cs, "not accepting calls from unknown peers",
                 CALL_END_REJECTED);
    return;
  }
  /* Glare: we are ringing this peer too. The call offered by the smaller
   * identity key survives on both sides; the other side drops its own
   * offer without a record and answers the survivor at once. */
  for (call_t *c = m->calls; c; c = c->next) {
    if (c->info.state != CALL_STATE_RINGING || memcmp(c->peer, peer, 32) != 0)
      continue;
    if (memcmp(m->me, peer, 32) < 0)
      return; /* ours wins; the peer will yield when our offer arrives */
    call_end_how_t how = {CALL_END_MISSED, "merged with the peer's call",
                          false};
    bool video = c->info.video;
    call__set_state(c, CALL_STATE_ENDED, &how);
    call_t *in = call__new(m, peer, CALL_DIR_INCOMING, CALL_STATE_INCOMING);
    if (!in)
      return;
    memcpy(in->info.call_id, cs->call_id, CALL_ID_LEN + 1);
    memcpy(in->secret, cs->call_secret, sizeof(in->secret));
    in->info.video = cs->video && video;
    in->info.audio_codec = cs->audio_codec;
    in->info.transport = cs->transport;
    /* Frontends learn the surviving call's id as they would any other. */
    call__emit(m, "incoming-call",
               json_pack("{s:s, s:s, s:b, s:b}", "call_id", in->info.call_id,
                         "peer", in->info.peer, "video", in->info.video,
                         "merged", 1));
    if (call__send(in, CALLSIGNAL_ANSWER, NULL) != 0)
      call__end(in, CALL_END_FAILED, "peer unreachable");
    else
      call__activate(in, true);
    return;
  }
  if (m->calls) {
    LOG_INFO("call", "offer from %.8s refused: busy", peer_hex);
    call__refuse(m, peer, cs, "busy", CALL_END_MISSED);
    return;
  }
  call_t *c = call__new(m, peer, CALL_DIR_INCOMING, CALL_STATE_INCOMING);
  if (!c)
    return;
  memcpy(c->info.call_id, cs->call_id, CALL_ID_LEN + 1);
  memcpy(c->secret, cs->call_secret, sizeof(c->secret));
  c->info.video = cs->video;
  c->info.audio_codec = cs->audio_codec;
  c->info.transport = cs->transport;
  call__emit(
      m, "call-state",
      json_pack("{s:s, s:s}", "call_id", c->info.call_id, "state", "incoming"));
  call__emit(m, "incoming-call",
             json_pack("{s:s, s:s, s:b}", "call_id", c->info.call_id, "peer",
                       c->info.peer, "video", c->info.video));
}

void call_mgr_on_signal(call_mgr_t *m, const uint8_t peer[32],
                        const callsignal_t *cs) {
  char peer_hex[65];
  hex_encode(peer_hex, peer, 32);
  if (cs->kind == CALLSIGNAL_OFFER) {
    call__on_offer(m, peer, cs, peer_hex);
    return;
  }
  call_t *c = call__find(m, cs->call_id);
  if (!c || memcmp(c->peer, peer, 32) != 0) {
    LOG_DEBUG("call", "%s for unknown call %s from %.8s ignored",
              callsignal_kind_name(cs->kind), cs->call_id, peer_hex);
    return;
  }
  switch (cs->kind) {
  case CALLSIGNAL_ANSWER:
    if (c->info.state == CALL_STATE_RINGING)
      call__activate(c, cs->video);
    break;
  case CALLSIGNAL_REJECT:
    if (c->info.state == CALL_STATE_RINGING)
      call__end(c, CALL_END_REJECTED, cs->reason[0] ? cs->reason : "rejected");
    break;
  case CALLSIGNAL_END:
    if (c->answered_ms)
      call__end(c, CALL_END_COMPLETED, "peer hung up");
    else if (c->info.direction == CALL_DIR_OUTGOING)
      call__end(c, CALL_END_MISSED, "no answer"); /* the callee gave up */
    else
      call__end(c, CALL_END_MISSED, "cancelled by the caller");
    break;
  default:
    break; /* IceCandidate: reserved */
  }
}

void call_mgr_send_done(call_mgr_t *m, uint64_t token, bool ok) {
  call_t *c = call__by_serial(m, token / 8);
  enum callsignal_kind kind = (enum callsignal_kind)(token % 8);
  if (ok || !c)
    return;
  if ((kind == CALLSIGNAL_OFFER && c->info.state == CALL_STATE_RINGING) ||
      (kind == CALLSIGNAL_ANSWER && c->answered_ms))
    call__end(c, CALL_END_FAILED, "peer unreachable");
}

size_t call_mgr_list(call_mgr_t *m, call_info_t *out, size_t max) {
  size_t n = 0;
  for (call_t *c = m->calls; c && n < max; c = c->next) {
    call__refresh_duration(c);
    out[n++] = c->info;
  }
  return n;
}

int call_mgr_get(call_mgr_t *m, const char *call_id, call_info_t *out) {
  call_t *c = call__find(m, call_id);
  if (!c)
    return CALL_ERR_NOT_FOUND;
  call__refresh_duration(c);
  *out = c->info;
  return 0;
}
