/* The DM transport: per-peer connections and envelope queues on the DM
 * ALPN; see dm.h. */
#include "signal/dm.h"

#include "core/log.h"
#include "core/util.h"
#include "signal/signal.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define DM_TICK_MS 250
#define DM_MAX_ATTEMPTS 3
#define DM_IN_MAX (ENVELOPE_PREFIX_LEN + ENVELOPE_MAX)
#define DM_CLOSE_NORMAL 0

/* Callbacks get either the dm (an accepted connection before we know its
 * peer) or a dm_peer as user pointer: a tag tells them apart. */
enum { DM_TAG_DM = 1, DM_TAG_PEER = 2 };

enum dm_msg_state {
  DM_MSG_QUEUED, /* sealed, waiting for a connection / stream */
  DM_MSG_SENT,   /* on stream sid, waiting for the ack */
  DM_MSG_HELD,   /* ack said RETRY: waiting for our session to change */
};

typedef struct dm_msg {
  struct dm_msg *next;
  enum dm_msg_state state;
  bool is_sync; /* an empty envelope that moves the peer to our session */
  uint64_t token;
  callsignal_t cs; /* kept to re-seal after a session change */
  session_ref_t ref;
  uint8_t *wire; /* [prefix][envelope] */
  size_t wire_len;
  int64_t sid;
  uint8_t ack[ENVELOPE_ACK_LEN + 1];
  size_t ack_len;
  int attempts;
  uint64_t deadline;
} dm_msg_t;

typedef struct dm_peer {
  int tag;
  struct dm_peer *next;
  dm_t *dm;
  uint8_t key[32];
  char hex[65];
  quic_conn_t *conn; /* the connection we send on: connected or dialing */
  struct sockaddr_storage addrs[DM_ADDRS_MAX];
  size_t n_addrs, next_addr;
  dm_msg_t *msgs; /* FIFO */
} dm_peer_t;

/* An envelope arriving on a stream the peer opened. The dm keeps a list
 * of them: the QUIC layer reports on_stream_closed only for streams that
 * close while their connection is open, so whatever is left when the
 * connection goes is freed by dm__on_closed (or dm_free). */
typedef struct dm_in {
  struct dm_in *next, **pprev;
  quic_conn_t *conn;
  uint8_t *buf;
  size_t len;
  bool too_long;
} dm_in_t;

struct dm {
  int tag;
  uv_loop_t *loop;
  quic_endpoint_t *ep;
  store_t *store;
  const identity_t *me;
  dm_ops_t ops;
  void *ctx;
  dm_peer_t *peers;
  dm_in_t *ins; /* envelopes being received */
  uv_timer_t tick;
  quic_conn_opts_t conn_opts;
  bool closing; /* dm_close() ran: callbacks do nothing */
};

/* The peer record behind a callback's user pointer, or NULL when there is
 * none yet (an accepted connection) or the transport is closing. */
static dm_peer_t *dm__user_peer(void *user) {
  dm_peer_t *p = user;
  if (!p || p->tag != DM_TAG_PEER || p->dm->closing)
    return NULL;
  return p;
}

static void dm__flush(dm_peer_t *p);
static const quic_handler_t dm__handler;

/* ---- peers and messages ---- */

static dm_peer_t *dm__peer(dm_t *dm, const uint8_t key[32], bool create) {
  for (dm_peer_t *p = dm->peers; p; p = p->next)
    if (memcmp(p->key, key, 32) == 0)
      return p;
  if (!create)
    return NULL;
  dm_peer_t *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->tag = DM_TAG_PEER;
  p->dm = dm;
  memcpy(p->key, key, 32);
  hex_encode(p->hex, key, 32);
  p->next = dm->peers;
  dm->peers = p;
  return p;
}

static void dm__msg_free(dm_msg_t *m) {
  sodium_memzero(&m->cs, sizeof(m->cs));
  free(m->wire);
  free(m);
}

/* Removes m from p's queue, reports it and frees it. */
static void dm__msg_done(dm_peer_t *p, dm_msg_t *m, bool delivered,
                         const char *why) {
  dm_msg_t **pp = &p->msgs;
  while (*pp && *pp != m)
    pp = &(*pp)->next;
  if (*pp)
    *pp = m->next;
  if (m->state == DM_MSG_SENT && p->conn)
    quic_stream_set_user(p->conn, m->sid, NULL);
  if (!delivered)
    LOG_WARN("dm", "%s to %.8s not delivered: %s",
             m->is_sync ? "session sync" : callsignal_kind_name(m->cs.kind),
             p->hex, why);
  if (!m->is_sync && p->dm->ops.on_send_done)
    p->dm->ops.on_send_done(p->dm->ctx, m->token, delivered);
  dm__msg_free(m);
}

/* (Re-)seals the message under the current session into m->wire. */
static int dm__seal(dm_peer_t *p, dm_msg_t *m) {
  dm_t *dm = p->dm;
  uint8_t *wire = malloc(ENVELOPE_PREFIX_LEN + SIGNAL_ENVELOPE_MAX);
  if (!wire)
    return -ENOMEM;
  size_t len = 0;
  int r = signal_seal(dm->store, dm->me, p->key, m->is_sync ? NULL : &m->cs,
                      wire + ENVELOPE_PREFIX_LEN, SIGNAL_ENVELOPE_MAX, &len,
                      &m->ref, NULL);
  if (r == 0)
    r = envelope_prefix_encode(wire, len);
  if (r != 0) {
    LOG_ERROR("dm", "cannot seal for %.8s: %s", p->hex, signal_strerror(r));
    free(wire);
    return r;
  }
  free(m->wire);
  m->wire = wire;
  m->wire_len = ENVELOPE_PREFIX_LEN + len;
  m->state = DM_MSG_QUEUED;
  return 0;
}

static int dm__enqueue(dm_peer_t *p, const callsignal_t *cs, uint64_t token) {
  dm_msg_t *m = calloc(1, sizeof(*m));
  if (!m)
    return -ENOMEM;
  m->is_sync = cs == NULL;
  if (cs)
    m->cs = *cs;
  m->token = token;
  m->deadline = uv_now(p->dm->loop) + DM_SEND_DEADLINE_MS;
  int r = dm__seal(p, m);
  if (r != 0) {
    dm__msg_free(m);
    return r;
  }
  dm_msg_t **pp = &p->msgs;
  while (*pp)
    pp = &(*pp)->next;
  *pp = m;
  return 0;
}

/* ---- connections ---- */

static void dm__dial(dm_peer_t *p) {
  dm_t *dm = p->dm;
  while (p->next_addr < p->n_addrs) {
    const struct sockaddr *sa =
        (const struct sockaddr *)&p->addrs[p->next_addr++];
    int r = quic_dial(dm->ep, p->key, sa, QUIC_ALPN_DM, &dm->conn_opts,
                      &dm__handler, p, &p->conn);
    if (r == 0)
      return;
    LOG_WARN("dm", "cannot dial %.8s: %s", p->hex, quic_strerror(r));
  }
  /* No address left: everything queued fails now (fail fast). */
  p->conn = NULL;
  while (p->msgs)
    dm__msg_done(p, p->msgs, false, "peer unreachable");
}

/* Sends what is queued on the peer's connection, dialing if needed.
 * CallSignals go one at a time, in the order they were given: a later one
 * waits until every earlier one is acknowledged (or has failed), so that
 * an envelope the peer asked us to retry after a session change is never
 * overtaken (an Answer arriving before the Offer it answers, an End before
 * its Offer). Syncs carry no CallSignal and go at once. */
static void dm__flush(dm_peer_t *p) {
  if (!p->msgs)
    return;
  if (!p->conn) {
    p->n_addrs =
        p->dm->ops.peer_addrs(p->dm->ctx, p->key, p->addrs, DM_ADDRS_MAX);
    p->next_addr = 0;
    dm__dial(p);
    return;
  }
  if (!quic_conn_is_connected(p->conn))
    return;
  bool signal_pending = false;
  for (dm_msg_t *m = p->msgs; m; m = m->next) {
    if (m->state != DM_MSG_QUEUED || (signal_pending && !m->is_sync)) {
      signal_pending = signal_pending || !m->is_sync;
      continue;
    }
    signal_pending = signal_pending || !m->is_sync;
    int r = quic_stream_open_bidi(p->conn, &m->sid);
    if (r == QUIC_ERR_STREAM_LIMIT)
      return; /* on_streams_available calls us again */
    if (r == 0)
      r = quic_stream_write(p->conn, m->sid, m->wire, m->wire_len, true);
    if (r != 0) {
      LOG_WARN("dm", "cannot send to %.8s: %s", p->hex, quic_strerror(r));
      return;
    }
    quic_stream_set_user(p->conn, m->sid, m);
    m->ack_len = 0;
    m->attempts++;
    m->state = DM_MSG_SENT;
  }
}

static void dm__adopt_conn(dm_peer_t *p, quic_conn_t *c) {
  if (!p->conn || !quic_conn_is_connected(p->conn))
    p->conn = c; /* a dial still in progress may finish later; unused */
}

static void dm__on_connected(quic_conn_t *c, void *user) {
  dm_peer_t *p = user;
  if (p->tag == DM_TAG_DM) { /* accepted: now we know who it is */
    if (((dm_t *)user)->closing)
      return;
    p = dm__peer((dm_t *)user, quic_conn_peer(c), true);
    if (!p) {
      quic_conn_close(c, DM_CLOSE_NORMAL, "out of memory");
      return;
    }
    quic_conn_set_user(c, p);
  }
  LOG_DEBUG("dm", "connected to %.8s (%s)", p->hex,
            quic_conn_is_dialer(c) ? "dialed" : "accepted");
  dm__adopt_conn(p, c);
  dm__flush(p);
}

/* The dm behind any callback's user pointer (also while closing). */
static dm_t *dm__of(void *user) {
  return ((dm_t *)user)->tag == DM_TAG_DM ? user : ((dm_peer_t *)user)->dm;
}

static void dm__in_free(dm_in_t *in) {
  *in->pprev = in->next;
  if (in->next)
    in->next->pprev = in->pprev;
  free(in->buf);
  free(in);
}

static void dm__on_closed(quic_conn_t *c, const quic_close_info_t *info,
                          void *user) {
  if (user) {
    dm_in_t **pp = &dm__of(user)->ins;
    while (*pp)
      if ((*pp)->conn == c)
        dm__in_free(*pp); /* unlinks it: *pp is the next one now */
      else
        pp = &(*pp)->next;
  }
  dm_peer_t *p = dm__user_peer(user);
  if (!p || p->conn != c)
    return;
  bool never_connected = !quic_conn_is_connected(c);
  LOG_INFO("dm", "connection to %.8s closed: %s", p->hex, info->error);
  p->conn = NULL;
  /* What was on a stream may or may not have arrived; send it again (a
   * duplicate is refused by the ratchet as a replay, never applied). */
  for (dm_msg_t *m = p->msgs; m; m = m->next)
    if (m->state == DM_MSG_SENT)
      m->state = DM_MSG_QUEUED;
  if (never_connected && quic_conn_is_dialer(c)) {
    dm__dial(p); /* the next address, or fail */
    return;
  }
  p->next_addr = 0;
  dm__flush(p);
}

/* ---- streams ---- */

static void dm__on_stream_open(quic_conn_t *c, int64_t sid, void *user) {
  if (quic_stream_is_uni(sid) || !user) {
    quic_stream_reset(c, sid, 1);
    return;
  }
  dm_in_t *in = calloc(1, sizeof(*in));
  if (!in) {
    quic_stream_reset(c, sid, 1);
    return;
  }
  dm_t *dm = dm__of(user);
  in->conn = c;
  in->next = dm->ins;
  in->pprev = &dm->ins;
  if (dm->ins)
    dm->ins->pprev = &in->next;
  dm->ins = in;
  quic_stream_set_user(c, sid, in);
}

static void dm__on_stream_data(quic_conn_t *c, int64_t sid, const uint8_t *data,
                               size_t len, void *user) {
  (void)user;
  if (quic_stream_is_local(c, sid)) {
    dm_msg_t *m = quic_stream_user(c, sid);
    if (!m)
      return;
    size_t room = sizeof(m->ack) - m->ack_len;
    size_t n = len < room ? len : room;
    memcpy(m->ack + m->ack_len, data, n);
    m->ack_len += n;
    return;
  }
  dm_in_t *in = quic_stream_user(c, sid);
  if (!in || in->too_long)
    return;
  if (in->len + len > DM_IN_MAX) {
    in->too_long = true;
    return;
  }
  uint8_t *nb = realloc(in->buf, in->len + len);
  if (!nb) {
    in->too_long = true;
    return;
  }
  memcpy(nb + in->len, data, len);
  in->buf = nb;
  in->len += len;
}

static void dm__write_ack(quic_conn_t *c, int64_t sid,
                          enum envelope_ack_status status, int error) {
  uint8_t ack[ENVELOPE_ACK_LEN];
  envelope_ack_encode(ack, status, error < 0 ? (uint32_t)-error : 0);
  quic_stream_write(c, sid, ack, sizeof(ack), true);
}

/* A whole envelope arrived on a stream the peer opened. */
static void dm__receive(dm_peer_t *p, quic_conn_t *c, int64_t sid,
                        dm_in_t *in) {
  dm_t *dm = p->dm;
  uint32_t len = 0;
  int r = in->too_long ? ENVELOPE_ERR_PREFIX_LONG : 0;
  if (r == 0 && in->len < ENVELOPE_PREFIX_LEN)
    r = ENVELOPE_ERR_EMPTY;
  if (r == 0)
    r = envelope_prefix_decode(in->buf, &len);
  if (r == 0 && len != in->len - ENVELOPE_PREFIX_LEN)
    r = ENVELOPE_ERR_TRUNCATED;
  if (r != 0) {
    LOG_WARN("dm", "envelope from %.8s rejected: %s", p->hex,
             signal_strerror(r));
    dm__write_ack(c, sid, ENVELOPE_ACK_REJECTED, r);
    return;
  }

  signal_result_t res;
  r = signal_open(dm->store, dm->me, quic_conn_peer(c),
                  in->buf + ENVELOPE_PREFIX_LEN, len, &res, NULL);
  if (r != 0)
    LOG_WARN("dm", "envelope from %.8s not accepted: %s", p->hex,
             signal_strerror(r));
  dm__write_ack(c, sid, res.status, res.error);
  dm__adopt_conn(p, c);
  if (res.session_changed) {
    for (dm_msg_t *m = p->msgs; m; m = m->next)
      if (m->state == DM_MSG_HELD)
        dm__seal(p, m);
  }
  if (res.send_sync)
    dm__enqueue(p, NULL, 0);
  if (res.has_signal && dm->ops.on_signal)
    dm->ops.on_signal(dm->ctx, p->key, &res.signal);
  sodium_memzero(&res.signal, sizeof(res.signal));
  dm__flush(p);
}

/* The ack for one of our envelopes arrived. */
static void dm__on_ack(dm_peer_t *p, dm_msg_t *m) {
  enum envelope_ack_status status;
  uint32_t reason = 0;
  int r = envelope_ack_decode(m->ack, m->ack_len, &status, &reason);
  if (r != 0) {
    dm__msg_done(p, m, false, envelope_strerror(r));
    return;
  }
  session_ref_t cur;
  switch (status) {
  case ENVELOPE_ACK_OK:
    dm__msg_done(p, m, true, NULL);
    dm__flush(p); /* the next CallSignal may go now */
    return;
  case ENVELOPE_ACK_REJECTED:
    dm__msg_done(p, m, false, signal_strerror(-(int)reason));
    dm__flush(p);
    return;
  case ENVELOPE_ACK_FAILED:
    break; /* the same envelope again */
  case ENVELOPE_ACK_RETRY:
    if (signal_current_ref(p->dm->store, p->dm->me, p->key, &cur) == 0 &&
        session_ref_cmp(&cur, &m->ref) != 0)
      dm__seal(p, m);
    else
      m->state = DM_MSG_HELD;
    break;
  }
  if (m->attempts >= DM_MAX_ATTEMPTS) {
    dm__msg_done(p, m, false, "too many attempts");
    dm__flush(p);
    return;
  }
  if (m->state == DM_MSG_SENT)
    m->state = DM_MSG_QUEUED;
  quic_stream_set_user(p->conn, m->sid, NULL);
  dm__flush(p);
}

static void dm__on_stream_fin(quic_conn_t *c, int64_t sid, void *user) {
  dm_peer_t *p = dm__user_peer(user);
  if (!p)
    return;
  if (quic_stream_is_local(c, sid)) {
    dm_msg_t *m = quic_stream_user(c, sid);
    if (m && p->conn == c)
      dm__on_ack(p, m);
    return;
  }
  dm_in_t *in = quic_stream_user(c, sid);
  if (in)
    dm__receive(p, c, sid, in);
}

static void dm__on_stream_reset(quic_conn_t *c, int64_t sid, uint64_t code,
                                enum quic_stream_dir dir, void *user) {
  dm_peer_t *p = dm__user_peer(user);
  if (!p || !quic_stream_is_local(c, sid))
    return;
  dm_msg_t *m = quic_stream_user(c, sid);
  if (m && m->state == DM_MSG_SENT) {
    quic_stream_set_user(c, sid, NULL);
    m->state = DM_MSG_QUEUED;
    if (m->attempts >= DM_MAX_ATTEMPTS) {
      dm__msg_done(p, m, false, "stream reset by the peer");
      dm__flush(p);
    }
  }
}

static void dm__on_stream_closed(quic_conn_t *c, int64_t sid, void *user) {
  (void)user;
  if (quic_stream_is_local(c, sid))
    return;
  dm_in_t *in = quic_stream_user(c, sid);
  if (in) {
    dm__in_free(in);
    quic_stream_set_user(c, sid, NULL);
  }
}

static void dm__on_streams_available(quic_conn_t *c, void *user) {
  dm_peer_t *p = dm__user_peer(user);
  if (p && p->conn == c)
    dm__flush(p);
}

static const quic_handler_t dm__handler = {
    .on_connected = dm__on_connected,
    .on_closed = dm__on_closed,
    .on_stream_open = dm__on_stream_open,
    .on_stream_data = dm__on_stream_data,
    .on_stream_fin = dm__on_stream_fin,
    .on_stream_reset = dm__on_stream_reset,
    .on_stream_closed = dm__on_stream_closed,
    .on_streams_available = dm__on_streams_available,
};

/* Fails messages past their deadline. */
static void dm__on_tick(uv_timer_t *t) {
  dm_t *dm = t->data;
  uint64_t now = uv_now(dm->loop);
  for (dm_peer_t *p = dm->peers; p; p = p->next) {
    dm_msg_t *m = p->msgs;
    bool failed = false;
    while (m) {
      dm_msg_t *next = m->next;
      if (now >= m->deadline) {
        dm__msg_done(p, m, false, "no acknowledgement in time");
        failed = true;
      }
      m = next;
    }
    if (failed && p->conn)
      dm__flush(p);
  }
}

/* ---- public ---- */

dm_t *dm_new(uv_loop_t *loop, quic_endpoint_t *ep, store_t *store,
             const identity_t *me, const dm_ops_t *ops, void *ctx) {
  dm_t *dm = calloc(1, sizeof(*dm));
  if (!dm)
    return NULL;
  dm->tag = DM_TAG_DM;
  dm->loop = loop;
  dm->ep = ep;
  dm->store = store;
  dm->me = me;
  dm->ops = *ops;
  dm->ctx = ctx;
  quic_conn_opts_default(&dm->conn_opts);
  dm->conn_opts.handshake_timeout_ms = DM_HANDSHAKE_TIMEOUT_MS;
  dm->conn_opts.idle_timeout_ms = 30000;
  dm->conn_opts.max_datagram_frame = QUIC_DATAGRAMS_OFF;
  int r = quic_endpoint_register_alpn(ep, QUIC_ALPN_DM, &dm__handler,
                                      &dm->conn_opts, dm);
  if (r != 0) {
    LOG_ERROR("dm", "cannot register %s: %s", QUIC_ALPN_DM, quic_strerror(r));
    free(dm);
    return NULL;
  }
  uv_timer_init(loop, &dm->tick);
  dm->tick.data = dm;
  uv_timer_start(&dm->tick, dm__on_tick, DM_TICK_MS, DM_TICK_MS);
  return dm;
}

static void dm__on_tick_closed(uv_handle_t *h) {
  free(h->data);
}

void dm_close(dm_t *dm) {
  if (!dm || dm->closing)
    return;
  for (dm_peer_t *p = dm->peers; p; p = p->next)
    while (p->msgs)
      dm__msg_done(p, p->msgs, false, "shutting down");
  dm->closing = true;
  uv_timer_stop(&dm->tick);
}

void dm_free(dm_t *dm) {
  if (!dm)
    return;
  dm_close(dm);
  while (dm->ins)
    dm__in_free(dm->ins);
  while (dm->peers) {
    dm_peer_t *p = dm->peers;
    dm->peers = p->next;
    free(p);
  }
  uv_close((uv_handle_t *)&dm->tick, dm__on_tick_closed);
}

size_t dm_pending(const dm_t *dm) {
  size_t n = 0;
  for (const dm_peer_t *p = dm->peers; p; p = p->next)
    for (const dm_msg_t *m = p->msgs; m; m = m->next)
      n++;
  return n;
}

int dm_peer_addr(dm_t *dm, const uint8_t peer[32],
                 struct sockaddr_storage *out) {
  dm_peer_t *p = dm__peer(dm, peer, false);
  if (!p || !p->conn || !quic_conn_is_connected(p->conn))
    return -ENOENT;
  return quic_conn_remote_addr(p->conn, out);
}

int dm_send(dm_t *dm, const uint8_t peer[32], const callsignal_t *cs,
            uint64_t token) {
  if (dm->closing)
    return -ESHUTDOWN;
  dm_peer_t *p = dm__peer(dm, peer, true);
  if (!p)
    return -ENOMEM;
  if (!p->conn &&
      dm->ops.peer_addrs(dm->ctx, peer, p->addrs, DM_ADDRS_MAX) == 0)
    return -EHOSTUNREACH;
  int r = dm__enqueue(p, cs, token);
  if (r == 0)
    dm__flush(p);
  return r;
}
