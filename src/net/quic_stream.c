/* Streams and datagrams of a QUIC connection: per-stream write queues with
 * back-pressure, the choice of what goes into the next packet, resets. */
#include "net/quic_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define QUIC_URGENCY_DEFAULT 3
#define QUIC_URGENCY_MAX 7
#define QUIC_DGRAM_MAX_TRIES 2

static bool quic__stream_pending(const quic_stream_t *s) {
  return !s->send_shut &&
         (s->sent_off < s->write_off || (s->fin_queued && !s->fin_sent));
}

/* Only an open connection takes new work from the application. */
static int quic__conn_usable(const quic_conn_t *c) {
  if (c == NULL)
    return QUIC_ERR_INVAL;
  if (c->state == QC_HANDSHAKE)
    return QUIC_ERR_STATE;
  if (c->state != QC_OPEN || c->close_req)
    return QUIC_ERR_CLOSED;
  return 0;
}

/* ---- stream objects ---- */

quic_stream_t *quic__stream_get(const quic_conn_t *c, int64_t sid) {
  return qmap_get_u64(&c->streams, (uint64_t)sid);
}

quic_stream_t *quic__stream_new(quic_conn_t *c, int64_t sid, bool local) {
  quic_stream_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->id = sid;
  s->local = local;
  s->urgency = QUIC_URGENCY_DEFAULT;
  if (qmap_put_u64(&c->streams, (uint64_t)sid, s) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

static void quic__stream_release(void *val, void *arg) {
  quic_stream_t *s = val;
  (void)arg;
  quic_chunk_t *ch = s->head;
  while (ch != NULL) {
    quic_chunk_t *next = ch->next;
    free(ch);
    ch = next;
  }
  free(s);
}

void quic__stream_free(quic_conn_t *c, quic_stream_t *s) {
  quic__sendq_remove(c, s);
  qmap_del_u64(&c->streams, (uint64_t)s->id);
  quic__stream_release(s, NULL);
}

/* Only after ngtcp2_conn_del: ngtcp2 may point into the chunks until then. */
void quic__streams_free_all(quic_conn_t *c) {
  c->sendq_head = c->sendq_tail = NULL;
  qmap_drain(&c->streams, quic__stream_release, NULL);
}

/* ---- the send queue: streams with bytes or a FIN to send ---- */

void quic__sendq_add(quic_conn_t *c, quic_stream_t *s) {
  if (s->in_sendq || s->blocked || !quic__stream_pending(s))
    return;
  s->in_sendq = true;
  s->sendq_next = NULL;
  s->sendq_prev = c->sendq_tail;
  if (c->sendq_tail != NULL)
    c->sendq_tail->sendq_next = s;
  else
    c->sendq_head = s;
  c->sendq_tail = s;
}

void quic__sendq_remove(quic_conn_t *c, quic_stream_t *s) {
  if (!s->in_sendq)
    return;
  if (s->sendq_prev != NULL)
    s->sendq_prev->sendq_next = s->sendq_next;
  else
    c->sendq_head = s->sendq_next;
  if (s->sendq_next != NULL)
    s->sendq_next->sendq_prev = s->sendq_prev;
  else
    c->sendq_tail = s->sendq_prev;
  s->in_sendq = false;
  s->sendq_prev = s->sendq_next = NULL;
}

/* The most urgent stream; the first of equals, and streams go to the back
 * after each packet, which makes equals round-robin. A linear scan: a
 * connection has a handful of sending streams. */
static quic_stream_t *quic__sendq_pick(const quic_conn_t *c) {
  quic_stream_t *best = NULL;
  for (quic_stream_t *s = c->sendq_head; s != NULL; s = s->sendq_next) {
    if (best == NULL || s->urgency < best->urgency)
      best = s;
  }
  return best;
}

bool quic__streams_drained(const quic_conn_t *c) {
  for (size_t i = 0; i < c->streams.nbuckets; i++) {
    for (qmap_entry_t *e = c->streams.buckets[i]; e != NULL; e = e->next) {
      const quic_stream_t *s = e->val;
      if (!s->send_shut &&
          (s->acked_off < s->write_off || (s->fin_queued && !s->fin_sent)))
        return false;
    }
  }
  return true;
}

/* ---- acknowledgements ---- */

void quic__rate_add(quic_conn_t *c, uint64_t bytes) {
  uint64_t now = quic__now();
  ngtcp2_conn_info ci;
  ngtcp2_conn_get_conn_info(c->nc, &ci);
  uint64_t win = ci.smoothed_rtt > 25 * NGTCP2_MILLISECONDS
                     ? ci.smoothed_rtt
                     : 25 * NGTCP2_MILLISECONDS;
  if (c->rate_start == 0)
    c->rate_start = now;
  c->rate_bytes += bytes;
  if (now - c->rate_start >= win) {
    c->delivery_rate = c->rate_bytes * NGTCP2_SECONDS / (now - c->rate_start);
    c->rate_start = now;
    c->rate_bytes = 0;
  }
}

void quic__stream_acked(quic_conn_t *c, quic_stream_t *s, uint64_t offset,
                        uint64_t datalen) {
  if (offset + datalen > s->acked_off)
    s->acked_off = offset + datalen;
  /* ngtcp2 no longer needs chunks that are wholly acknowledged. */
  while (s->head != NULL && s->head->off + s->head->len <= s->acked_off) {
    quic_chunk_t *ch = s->head;
    s->head = ch->next;
    if (s->tail == ch)
      s->tail = NULL;
    free(ch);
  }
  c->stream_acked += datalen;
  quic__rate_add(c, datalen);
  if (c->shutdown_req)
    quic__ep_mark_dirty(c->ep, c);
  if (c->state != QC_OPEN)
    return;

  int64_t sid = s->id;
  uint64_t unacked = s->write_off - s->acked_off;
  bool writable = s->want_writable && unacked <= c->opts.stream_low_water;
  bool drained = unacked == 0 && !s->acked_told && s->write_off > 0;
  if (writable)
    s->want_writable = false;
  if (drained)
    s->acked_told = true;
  /* The callbacks may write to this stream; s stays valid (streams are
   * only freed by ngtcp2's stream_close), but read nothing after them. */
  if (writable && c->h.on_stream_writable != NULL)
    c->h.on_stream_writable(c, sid, c->user);
  if (drained && c->h.on_stream_acked != NULL && c->state == QC_OPEN)
    c->h.on_stream_acked(c, sid, c->user);
}

/* ---- choosing the next packet's contents ---- */

static void quic__dq_pop(quic_conn_t *c) {
  free(c->dq[c->dq_head]);
  c->dq[c->dq_head] = NULL;
  c->dq_head = (c->dq_head + 1) % c->dq_cap;
  c->dq_len--;
}

void quic__dgrams_free(quic_conn_t *c) {
  while (c->dq_len > 0)
    quic__dq_pop(c);
  free(c->dq);
  c->dq = NULL;
}

/* Tries the oldest waiting datagram. Returns 1 when the caller should go
 * on filling the packet, else the packet length / 0 / error. */
static ngtcp2_ssize quic__write_dgram(quic_conn_t *c, ngtcp2_path *path,
                                      ngtcp2_pkt_info *pi, uint8_t *dst,
                                      size_t cap, uint64_t ts, bool *more) {
  quic_dgram_t *d = c->dq[c->dq_head];
  ngtcp2_vec v = {d->data, d->len};
  int accepted = 0;
  uint64_t id = c->dgram_id;
  ngtcp2_ssize n = ngtcp2_conn_writev_datagram(
      c->nc, path, pi, dst, cap, &accepted, NGTCP2_WRITE_DATAGRAM_FLAG_MORE, id,
      &v, 1, ts);
  *more = false;
  if (accepted) {
    c->dgram_size[id % QUIC_DGRAM_RING] = (uint32_t)d->len;
    c->dgram_id++;
    c->dgram_sent++;
    quic__dq_pop(c);
  }
  if (n == NGTCP2_ERR_WRITE_MORE) {
    *more = true;
    return 0;
  }
  if (n == NGTCP2_ERR_INVALID_ARGUMENT) {
    /* Larger than the peer allows: cannot ever go. */
    c->dgram_dropped++;
    quic__dq_pop(c);
    *more = true;
    return 0;
  }
  if (n > 0 && !accepted && ++d->tries >= QUIC_DGRAM_MAX_TRIES) {
    c->dgram_dropped++; /* no room even in a fresh packet: path shrank */
    quic__dq_pop(c);
  }
  return n;
}

/* Gathers the stream's unsent bytes as iovecs starting at sent_off. */
static size_t quic__stream_vec(const quic_stream_t *s, ngtcp2_vec *v,
                               size_t max, uint64_t *total) {
  size_t n = 0;
  uint64_t off = s->sent_off;
  *total = 0;
  for (quic_chunk_t *ch = s->send_chunk; ch != NULL && n < max; ch = ch->next) {
    size_t skip = (size_t)(off - ch->off);
    v[n].base = ch->data + skip;
    v[n].len = ch->len - skip;
    *total += v[n].len;
    off = ch->off + ch->len;
    n++;
  }
  return n;
}

static void quic__stream_advance(quic_conn_t *c, quic_stream_t *s, size_t n,
                                 bool fin) {
  s->sent_off += n;
  while (s->send_chunk != NULL &&
         s->send_chunk->off + s->send_chunk->len <= s->sent_off)
    s->send_chunk = s->send_chunk->next;
  if (fin)
    s->fin_sent = true;
  quic__sendq_remove(c, s);
  quic__sendq_add(c, s); /* to the back, if it still has something */
}

/* Offers the chosen stream's data. Sets *more when the packet has room. */
static ngtcp2_ssize quic__write_stream(quic_conn_t *c, quic_stream_t *s,
                                       ngtcp2_path *path, ngtcp2_pkt_info *pi,
                                       uint8_t *dst, size_t cap, uint64_t ts,
                                       bool *more) {
  ngtcp2_vec v[QUIC_STREAM_IOV];
  uint64_t total;
  size_t nv = quic__stream_vec(s, v, QUIC_STREAM_IOV, &total);
  bool all = s->sent_off + total == s->write_off;
  uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
  if (s->fin_queued && all)
    flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
  ngtcp2_ssize ndata = -1;
  ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->nc, path, pi, dst, cap, &ndata,
                                             flags, s->id, v, nv, ts);
  *more = false;
  if (ndata >= 0) {
    bool fin =
        (flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && (uint64_t)ndata == total;
    quic__stream_advance(c, s, (size_t)ndata, fin);
  }
  switch (n) {
  case NGTCP2_ERR_WRITE_MORE:
    *more = true;
    return 0;
  case NGTCP2_ERR_STREAM_DATA_BLOCKED: /* until MAX_STREAM_DATA */
    s->blocked = true;
    quic__sendq_remove(c, s);
    *more = true;
    return 0;
  case NGTCP2_ERR_STREAM_SHUT_WR:
  case NGTCP2_ERR_STREAM_NOT_FOUND:
    s->send_shut = true;
    quic__sendq_remove(c, s);
    *more = true;
    return 0;
  default:
    return n;
  }
}

ngtcp2_ssize quic__write_one(quic_conn_t *c, ngtcp2_path *path,
                             ngtcp2_pkt_info *pi, uint8_t *dst, size_t cap,
                             uint64_t ts) {
  for (;;) {
    bool more = false;
    ngtcp2_ssize n;
    quic_stream_t *s;
    if (c->state == QC_OPEN && c->dq_len > 0) {
      n = quic__write_dgram(c, path, pi, dst, cap, ts, &more);
    } else if (c->state == QC_OPEN && (s = quic__sendq_pick(c)) != NULL) {
      n = quic__write_stream(c, s, path, pi, dst, cap, ts, &more);
    } else {
      /* Nothing of ours: ACKs, retransmissions, control frames, or the
       * end of a packet left open by FLAG_MORE. */
      n = ngtcp2_conn_write_pkt(c->nc, path, pi, dst, cap, ts);
    }
    if (!more)
      return n;
  }
}

/* ---- public stream API ---- */

static int quic__stream_open(quic_conn_t *c, int64_t *sid, bool bidi) {
  int rc = quic__conn_usable(c);
  if (rc != 0)
    return rc;
  if (sid == NULL)
    return QUIC_ERR_INVAL;
  if (c->shutdown_req)
    return QUIC_ERR_CLOSED;
  int64_t id;
  int rv = bidi ? ngtcp2_conn_open_bidi_stream(c->nc, &id, NULL)
                : ngtcp2_conn_open_uni_stream(c->nc, &id, NULL);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
    c->want_streams = true;
    return QUIC_ERR_STREAM_LIMIT;
  }
  if (rv != 0)
    return QUIC_ERR_NOMEM;
  if (quic__stream_new(c, id, true) == NULL) {
    ngtcp2_conn_shutdown_stream(c->nc, 0, id, 0);
    return QUIC_ERR_NOMEM;
  }
  *sid = id;
  return 0;
}

int quic_stream_open_bidi(quic_conn_t *c, int64_t *sid) {
  return quic__stream_open(c, sid, true);
}

int quic_stream_open_uni(quic_conn_t *c, int64_t *sid) {
  return quic__stream_open(c, sid, false);
}

int quic_stream_write(quic_conn_t *c, int64_t sid, const void *data, size_t len,
                      bool fin) {
  int rc = quic__conn_usable(c);
  if (rc != 0)
    return rc;
  if (data == NULL && len > 0)
    return QUIC_ERR_INVAL;
  quic_stream_t *s = quic__stream_get(c, sid);
  if (s == NULL)
    return QUIC_ERR_NOT_FOUND;
  if ((quic_stream_is_uni(sid) && !s->local) || s->fin_queued || s->send_shut)
    return QUIC_ERR_CLOSED;
  if (len == 0 && !fin)
    return 0;
  if (len > 0 && s->write_off - s->acked_off >= c->opts.stream_high_water) {
    s->want_writable = true;
    return QUIC_ERR_AGAIN;
  }
  if (len > 0) {
    quic_chunk_t *ch = malloc(sizeof(*ch) + len);
    if (ch == NULL)
      return QUIC_ERR_NOMEM;
    ch->next = NULL;
    ch->off = s->write_off;
    ch->len = len;
    memcpy(ch->data, data, len);
    if (s->tail != NULL)
      s->tail->next = ch;
    else
      s->head = ch;
    s->tail = ch;
    if (s->send_chunk == NULL)
      s->send_chunk = ch;
    s->write_off += len;
  }
  if (fin)
    s->fin_queued = true;
  s->acked_told = false;
  quic__sendq_add(c, s);
  quic__ep_mark_dirty(c->ep, c);
  return 0;
}

int64_t quic_stream_unacked(const quic_conn_t *c, int64_t sid) {
  if (c == NULL)
    return QUIC_ERR_INVAL;
  quic_stream_t *s = quic__stream_get(c, sid);
  if (s == NULL)
    return QUIC_ERR_NOT_FOUND;
  return (int64_t)(s->write_off - s->acked_off);
}

int quic_stream_shutdown(quic_conn_t *c, int64_t sid, enum quic_stream_dir dir,
                         uint64_t app_code) {
  int rc = quic__conn_usable(c);
  if (rc != 0)
    return rc;
  quic_stream_t *s = quic__stream_get(c, sid);
  if (s == NULL)
    return QUIC_ERR_NOT_FOUND;
  bool uni = quic_stream_is_uni(sid);
  if ((dir & QUIC_DIR_SEND) && (!uni || s->local) && !s->send_shut) {
    ngtcp2_conn_shutdown_stream_write(c->nc, 0, sid, app_code);
    s->send_shut = true;
    s->reset_local = true;
    quic__sendq_remove(c, s);
  }
  if ((dir & QUIC_DIR_RECV) && (!uni || !s->local) && !s->recv_reset &&
      !s->recv_fin) {
    ngtcp2_conn_shutdown_stream_read(c->nc, 0, sid, app_code);
    s->recv_reset = true;
  }
  quic__ep_mark_dirty(c->ep, c);
  return 0;
}

int quic_stream_reset(quic_conn_t *c, int64_t sid, uint64_t app_code) {
  return quic_stream_shutdown(c, sid, QUIC_DIR_BOTH, app_code);
}

int quic_stream_set_priority(quic_conn_t *c, int64_t sid, uint8_t urgency) {
  quic_stream_t *s = c != NULL ? quic__stream_get(c, sid) : NULL;
  if (s == NULL)
    return QUIC_ERR_NOT_FOUND;
  s->urgency = urgency > QUIC_URGENCY_MAX ? QUIC_URGENCY_MAX : urgency;
  return 0;
}

int quic_stream_set_user(quic_conn_t *c, int64_t sid, void *user) {
  quic_stream_t *s = c != NULL ? quic__stream_get(c, sid) : NULL;
  if (s == NULL)
    return QUIC_ERR_NOT_FOUND;
  s->user = user;
  return 0;
}

void *quic_stream_user(const quic_conn_t *c, int64_t sid) {
  quic_stream_t *s = c != NULL ? quic__stream_get(c, sid) : NULL;
  return s != NULL ? s->user : NULL;
}

bool quic_stream_is_local(const quic_conn_t *c, int64_t sid) {
  /* Bit 0 of a stream ID is set for server-initiated streams. */
  bool server_initiated = (sid & 0x1) != 0;
  return c != NULL && server_initiated != c->dialer;
}

/* ---- datagrams ---- */

size_t quic_datagram_max_size(const quic_conn_t *c) {
  if (c == NULL || c->state != QC_OPEN)
    return 0;
  const ngtcp2_transport_params *rp =
      ngtcp2_conn_get_remote_transport_params(c->nc);
  if (rp == NULL || rp->max_datagram_frame_size <= 8)
    return 0;
  /* Frame: type (1) + length varint (up to 4 here); packet: short header
   * (1 + CID up to 20 + packet number up to 4) + AEAD tag (16). */
  size_t frame_max = (size_t)rp->max_datagram_frame_size - 5;
  size_t path = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->nc);
  size_t pkt_max = path > 46 ? path - 46 : 0;
  return frame_max < pkt_max ? frame_max : pkt_max;
}

int quic_datagram_send(quic_conn_t *c, const void *data, size_t len) {
  int rc = quic__conn_usable(c);
  if (rc != 0)
    return rc;
  if (data == NULL && len > 0)
    return QUIC_ERR_INVAL;
  size_t max = quic_datagram_max_size(c);
  if (max == 0)
    return QUIC_ERR_NO_DATAGRAM;
  if (len > max)
    return QUIC_ERR_TOO_BIG;
  quic_dgram_t *d = malloc(sizeof(*d) + len);
  if (d == NULL)
    return QUIC_ERR_NOMEM;
  d->len = len;
  d->tries = 0;
  memcpy(d->data, data, len);
  if (c->dq_len == c->dq_cap) {
    c->dgram_dropped++; /* real-time data: the newest matters most */
    quic__dq_pop(c);
  }
  c->dq[(c->dq_head + c->dq_len) % c->dq_cap] = d;
  c->dq_len++;
  quic__ep_mark_dirty(c->ep, c);
  return 0;
}
