/* The call link: CALL ALPN connections, the HELLO proof exchange, control
 * messages and audio transport; see link.h. */
#include "call/link.h"

#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define LINK_VERSION 1
#define LINK_HDR 3             /* control message: u8 type, u16 length */
#define LINK_STREAM_AUDIO 0x01 /* first byte of an audio uni stream */
#define LINK_STREAM_VIDEO 0x02 /* first byte of a video uni stream */
#define LINK_PRIO_VIDEO 4      /* below audio and control (0) */
#define LINK_ACK_HOLD_MS 22    /* a frame and a bit: see link__go_up */

enum { LINK_TAG_LISTENER = 1, LINK_TAG_LINK = 2 };

struct link_listener {
  int tag;
  quic_endpoint_t *ep;
  uint8_t me[32];
  call_link_t *links;
  quic_conn_opts_t opts;
};

/* Bytes of a stream, gathered until a whole message or frame is there. */
typedef struct link_buf {
  uint8_t *data;
  size_t len, cap;
} link_buf_t;

/* A video frame we sent on its own stream (datagram transport), until the
 * peer acknowledged it all. */
typedef struct link_vtx {
  int64_t sid;
  uint32_t seq;
  uint64_t sent_ms;
  size_t bytes;
} link_vtx_t;

/* A video frame being received on its own stream. */
typedef struct link_vrx {
  int64_t sid;
  link_buf_t buf;
} link_vrx_t;

struct call_link {
  int tag;
  call_link_t *next;
  link_listener_t *ls;
  bool caller;
  uint8_t peer[32];
  char call_id[CALLSIGNAL_CALL_ID_MAX + 1];
  uint8_t secret[CALLSIGNAL_SECRET_LEN];
  enum media_transport transport;
  struct sockaddr_storage addr;
  link_ops_t ops;
  void *user;
  quic_conn_t *conn;
  bool up;
  int64_t ctl_sid, audio_tx_sid, audio_rx_sid;
  link_buf_t ctl_rx;
  audioframe_parser_t audio_rx; /* stream transport */
  uint64_t bad_frames;
  /* Video. Stream transport: one stream each way and a parser. Datagram
   * transport: the frames in flight and those being received. */
  int64_t video_tx_sid, video_rx_sid;
  videoframe_parser_t video_rx;
  link_vtx_t vtx[LINK_VIDEO_TX_MAX];
  size_t n_vtx;
  link_vrx_t vrx[LINK_VIDEO_RX_MAX];
  size_t n_vrx, vrx_bytes;
  link_video_stats_t vstats;
};

static const quic_handler_t link__handler;

/* ---- buffers ---- */

static int link__buf_add(link_buf_t *b, const uint8_t *p, size_t n,
                         size_t max) {
  if (n == 0)
    return 0; /* b->data may still be NULL: memcpy(NULL, p, 0) is UB */
  if (b->len + n > max)
    return -EMSGSIZE;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
      return -ENOMEM;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static void link__buf_consume(link_buf_t *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

static void link__buf_free(link_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

/* ---- proofs and reports ---- */

void call_link_proof(uint8_t out[LINK_PROOF_LEN],
                     const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                     const char *call_id, const uint8_t caller[32],
                     const uint8_t callee[32], bool from_caller) {
  const char *label =
      from_caller ? "parley/call/1/caller" : "parley/call/1/callee";
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, secret, CALLSIGNAL_SECRET_LEN);
  crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
  crypto_auth_hmacsha256_update(&st, (const uint8_t *)call_id, strlen(call_id));
  crypto_auth_hmacsha256_update(&st, caller, 32);
  crypto_auth_hmacsha256_update(&st, callee, 32);
  crypto_auth_hmacsha256_final(&st, out);
}

void link_report_encode(const link_report_t *r, uint8_t out[LINK_REPORT_LEN]) {
  be32_put(out, r->frames_received);
  be32_put(out + 4, r->frames_lost);
  be32_put(out + 8, r->frames_late);
  be32_put(out + 12, r->jitter_us);
  be32_put(out + 16, r->recv_bitrate);
  be16_put(out + 20, r->loss_permille);
  be16_put(out + 22, r->jitter_delay_ms);
  be32_put(out + 24, r->latency_p50_us);
}

int link_report_decode(link_report_t *r, const uint8_t *in, size_t len) {
  if (len != LINK_REPORT_LEN)
    return -1;
  r->frames_received = be32_get(in);
  r->frames_lost = be32_get(in + 4);
  r->frames_late = be32_get(in + 8);
  r->jitter_us = be32_get(in + 12);
  r->recv_bitrate = be32_get(in + 16);
  r->loss_permille = be16_get(in + 20);
  r->jitter_delay_ms = be16_get(in + 22);
  r->latency_p50_us = be32_get(in + 24);
  return 0;
}

void link_video_report_encode(const link_video_report_t *r,
                              uint8_t out[LINK_VIDEO_REPORT_LEN]) {
  be32_put(out, r->frames_received);
  be32_put(out + 4, r->frames_lost);
  be32_put(out + 8, r->recv_bitrate);
  be32_put(out + 12, r->frames_decoded);
  be32_put(out + 16, r->latency_p50_us);
}

int link_video_report_decode(link_video_report_t *r, const uint8_t *in,
                             size_t len) {
  if (len != LINK_VIDEO_REPORT_LEN)
    return -1;
  r->frames_received = be32_get(in);
  r->frames_lost = be32_get(in + 4);
  r->recv_bitrate = be32_get(in + 8);
  r->frames_decoded = be32_get(in + 12);
  r->latency_p50_us = be32_get(in + 16);
  return 0;
}

/* ---- sending ---- */

static int link__write_msg(quic_conn_t *c, int64_t sid, enum link_msg type,
                           const uint8_t *p, size_t len) {
  uint8_t buf[LINK_HDR + LINK_CONTROL_MAX];
  if (len > LINK_CONTROL_MAX)
    return -EMSGSIZE;
  buf[0] = (uint8_t)type;
  be16_put(buf + 1, (uint16_t)len);
  if (len)
    memcpy(buf + LINK_HDR, p, len);
  return quic_stream_write(c, sid, buf, LINK_HDR + len, false);
}

/* HELLO: u8 version, u8 call_id length, call_id, 32-byte proof. */
static void link__send_hello(call_link_t *l) {
  uint8_t p[2 + CALLSIGNAL_CALL_ID_MAX + LINK_PROOF_LEN];
  size_t idlen = strlen(l->call_id);
  p[0] = LINK_VERSION;
  p[1] = (uint8_t)idlen;
  memcpy(p + 2, l->call_id, idlen);
  call_link_proof(p + 2 + idlen, l->secret, l->call_id, l->ls->me, l->peer,
                  true);
  link__write_msg(l->conn, l->ctl_sid, LINK_MSG_HELLO, p,
                  2 + idlen + LINK_PROOF_LEN);
}

static void link__go_up(call_link_t *l) {
  l->up = true;
  l->audio_tx_sid = l->video_tx_sid = -1;
  /* Datagram transport: both sides send a frame every 20 ms, so the ACK
   * for the peer's frame waits for ours (at most a frame and a bit)
   * rather than going in an ACK-only packet, which would double the
   * packets each way and the wake-ups and syscalls they cost. Not on the
   * stream transport: a held ACK also holds back the news of a loss, and
   * with it the retransmission every later frame waits for. */
  if (l->transport == MEDIA_TRANSPORT_DATAGRAM)
    quic_conn_set_ack_hold(l->conn, LINK_ACK_HOLD_MS);
  LOG_INFO("link", "call %s: media link up (%s transport)", l->call_id,
           l->transport == MEDIA_TRANSPORT_STREAM ? "stream" : "datagram");
  if (l->ops.on_up)
    l->ops.on_up(l, l->user);
}

int call_link_send_control(call_link_t *l, enum link_msg type,
                           const uint8_t *payload, size_t len) {
  if (!l->up)
    return QUIC_ERR_STATE;
  return link__write_msg(l->conn, l->ctl_sid, type, payload, len);
}

int call_link_send_audio(call_link_t *l, const uint8_t *frame, size_t len) {
  if (!l->up)
    return QUIC_ERR_STATE;
  if (l->transport == MEDIA_TRANSPORT_DATAGRAM)
    return quic_datagram_send(l->conn, frame, len);
  if (l->audio_tx_sid < 0) {
    int r = quic_stream_open_uni(l->conn, &l->audio_tx_sid);
    if (r != 0)
      return r;
    quic_stream_set_priority(l->conn, l->audio_tx_sid, 0);
    uint8_t type = LINK_STREAM_AUDIO;
    quic_stream_write(l->conn, l->audio_tx_sid, &type, 1, false);
  }
  return quic_stream_write(l->conn, l->audio_tx_sid, frame, len, false);
}

static uint64_t link__now_ms(void) {
  return time_mono_ns() / 1000000u;
}

static void link__vtx_remove(call_link_t *l, size_t i) {
  l->vtx[i] = l->vtx[--l->n_vtx];
}

/* Resets the in-flight video frames that went stale: all of them when a
 * key frame follows (it replaces them), else those past the deadline. */
static void link__expire_video(call_link_t *l, bool key) {
  uint64_t now = link__now_ms();
  for (size_t i = 0; i < l->n_vtx;) {
    link_vtx_t *v = &l->vtx[i];
    if (key || now - v->sent_ms > LINK_VIDEO_DEADLINE_MS) {
      quic_stream_shutdown(l->conn, v->sid, QUIC_DIR_SEND, LINK_RESET_STALE);
      l->vstats.frames_reset++;
      link__vtx_remove(l, i);
    } else {
      i++;
    }
  }
}

static int link__open_video(call_link_t *l, int64_t *sid) {
  int r = quic_stream_open_uni(l->conn, sid);
  if (r != 0)
    return r;
  quic_stream_set_priority(l->conn, *sid, LINK_PRIO_VIDEO);
  uint8_t type = LINK_STREAM_VIDEO;
  return quic_stream_write(l->conn, *sid, &type, 1, false);
}

int call_link_send_video(call_link_t *l, const videoframe_t *f) {
  uint8_t hdr[VIDEOFRAME_HEADER_LEN];
  int r = l->up ? videoframe_encode_header(hdr, f) : QUIC_ERR_STATE;
  if (r < 0)
    goto refused;
  if (l->transport == MEDIA_TRANSPORT_STREAM) {
    if (l->video_tx_sid < 0 && (r = link__open_video(l, &l->video_tx_sid)))
      goto refused;
    if ((r = quic_stream_write(l->conn, l->video_tx_sid, hdr, sizeof(hdr),
                               false)) != 0 ||
        (r = quic_stream_write(l->conn, l->video_tx_sid, f->data, f->len,
                               false)) != 0) {
      /* Half a frame may be queued: the stream's framing is lost. */
      quic_stream_shutdown(l->conn, l->video_tx_sid, QUIC_DIR_SEND,
                           LINK_RESET_STALE);
      l->video_tx_sid = -1;
      goto refused;
    }
    l->vstats.frames_sent++;
    return 0;
  }
  link__expire_video(l, f->key_frame);
  if (l->n_vtx == LINK_VIDEO_TX_MAX) { /* the oldest goes */
    size_t oldest = 0;
    for (size_t i = 1; i < l->n_vtx; i++)
      if (l->vtx[i].sent_ms < l->vtx[oldest].sent_ms)
        oldest = i;
    quic_stream_shutdown(l->conn, l->vtx[oldest].sid, QUIC_DIR_SEND,
                         LINK_RESET_STALE);
    l->vstats.frames_reset++;
    link__vtx_remove(l, oldest);
  }
  int64_t sid;
  if ((r = link__open_video(l, &sid)) != 0)
    goto refused;
  if ((r = quic_stream_write(l->conn, sid, hdr, sizeof(hdr), false)) != 0 ||
      (r = quic_stream_write(l->conn, sid, f->data, f->len, true)) != 0) {
    quic_stream_shutdown(l->conn, sid, QUIC_DIR_SEND, LINK_RESET_STALE);
    goto refused;
  }
  l->vtx[l->n_vtx++] =
      (link_vtx_t){sid, f->sequence, link__now_ms(), 1 + sizeof(hdr) + f->len};
  l->vstats.frames_sent++;
  return 0;
refused:
  l->vstats.frames_refused++;
  return r;
}

void call_link_video_stats(call_link_t *l, link_video_stats_t *out) {
  *out = l->vstats;
  out->backlog_bytes = 0;
  if (!l->conn)
    return;
  if (l->transport == MEDIA_TRANSPORT_STREAM && l->video_tx_sid >= 0) {
    int64_t n = quic_stream_unacked(l->conn, l->video_tx_sid);
    out->backlog_bytes = n > 0 ? (uint64_t)n : 0;
  }
  for (size_t i = 0; i < l->n_vtx; i++) {
    int64_t n = quic_stream_unacked(l->conn, l->vtx[i].sid);
    out->backlog_bytes += n > 0 ? (uint64_t)n : 0;
  }
}

/* ---- receiving ---- */

static call_link_t *link__find_expected(link_listener_t *ls,
                                        const uint8_t peer[32],
                                        const char *call_id) {
  for (call_link_t *l = ls->links; l; l = l->next)
    if (!l->caller && !l->conn && strcmp(l->call_id, call_id) == 0 &&
        memcmp(l->peer, peer, 32) == 0)
      return l;
  return NULL;
}

/* A HELLO on a connection we accepted: bind it to the call it proves. */
static void link__on_hello(link_listener_t *ls, quic_conn_t *c, int64_t sid,
                           const uint8_t *p, size_t len) {
  char call_id[CALLSIGNAL_CALL_ID_MAX + 1];
  const uint8_t *peer = quic_conn_peer(c);
  if (len < 2 || p[0] != LINK_VERSION || p[1] == 0 ||
      p[1] > CALLSIGNAL_CALL_ID_MAX || len != 2u + p[1] + LINK_PROOF_LEN) {
    quic_conn_close(c, LINK_CLOSE_BAD_PROOF, "malformed hello");
    return;
  }
  memcpy(call_id, p + 2, p[1]);
  call_id[p[1]] = '\0';
  call_link_t *l = link__find_expected(ls, peer, call_id);
  if (!l) {
    LOG_WARN("link", "CALL connection from %.8s for unknown call refused",
             quic_conn_peer_id(c));
    quic_conn_close(c, LINK_CLOSE_NO_CALL, "no such call");
    return;
  }
  uint8_t want[LINK_PROOF_LEN];
  call_link_proof(want, l->secret, call_id, peer, ls->me, true);
  if (sodium_memcmp(want, p + 2 + p[1], LINK_PROOF_LEN) != 0) {
    LOG_WARN("link", "call %s: bad proof from %.8s, connection refused",
             call_id, quic_conn_peer_id(c));
    quic_conn_close(c, LINK_CLOSE_BAD_PROOF, "bad call proof");
    return;
  }
  l->conn = c;
  l->ctl_sid = sid;
  quic_conn_set_user(c, l);
  call_link_proof(want, l->secret, call_id, peer, ls->me, false);
  link__write_msg(c, sid, LINK_MSG_HELLO_ACK, want, LINK_PROOF_LEN);
  link__go_up(l);
}

static void link__on_message(call_link_t *l, quic_conn_t *c, int64_t sid,
                             enum link_msg type, const uint8_t *p, size_t len) {
  link_listener_t *ls = quic_conn_user(c);
  if (!l) { /* accepted, not bound yet: only a HELLO will do */
    if (!ls || ls->tag != LINK_TAG_LISTENER)
      return; /* its link was freed */
    if (type == LINK_MSG_HELLO)
      link__on_hello(ls, c, sid, p, len);
    else
      quic_conn_close(c, LINK_CLOSE_BAD_PROOF, "expected hello");
    return;
  }
  if (type == LINK_MSG_HELLO_ACK && l->caller && !l->up) {
    uint8_t want[LINK_PROOF_LEN];
    call_link_proof(want, l->secret, l->call_id, l->ls->me, l->peer, false);
    if (len != LINK_PROOF_LEN || sodium_memcmp(want, p, LINK_PROOF_LEN)) {
      quic_conn_close(c, LINK_CLOSE_BAD_PROOF, "bad callee proof");
      return;
    }
    link__go_up(l);
    return;
  }
  if (!l->up || type == LINK_MSG_HELLO || type == LINK_MSG_HELLO_ACK)
    return;
  if (l->ops.on_control)
    l->ops.on_control(l, type, p, len, l->user);
}

static call_link_t *link__user_link(void *user) {
  call_link_t *l = user;
  return l && l->tag == LINK_TAG_LINK ? l : NULL;
}

/* Control stream bytes: before binding they are kept in the stream's user
 * buffer; afterwards in the link's. */
static void link__on_control_bytes(quic_conn_t *c, int64_t sid,
                                   const uint8_t *data, size_t len,
                                   call_link_t *l) {
  link_buf_t *b = l ? &l->ctl_rx : quic_stream_user(c, sid);
  if (!b)
    return;
  if (link__buf_add(b, data, len, 2 * (LINK_HDR + LINK_CONTROL_MAX)) != 0) {
    quic_conn_close(c, LINK_CLOSE_BAD_PROOF, "control message too long");
    return;
  }
  while (b->len >= LINK_HDR) {
    size_t mlen = be16_get(b->data + 1);
    if (mlen > LINK_CONTROL_MAX) {
      quic_conn_close(c, LINK_CLOSE_BAD_PROOF, "control message too long");
      return;
    }
    if (b->len < LINK_HDR + mlen)
      return;
    uint8_t msg[LINK_HDR + LINK_CONTROL_MAX];
    memcpy(msg, b->data, LINK_HDR + mlen);
    link__buf_consume(b, LINK_HDR + mlen);
    link__on_message(l, c, sid, (enum link_msg)msg[0], msg + LINK_HDR, mlen);
    l = link__user_link(quic_conn_user(c)); /* HELLO may have bound it */
    if (!l || l->conn != c)
      return;
    if (b != &l->ctl_rx) { /* move what is left to the link */
      link__buf_add(&l->ctl_rx, b->data, b->len, SIZE_MAX);
      link__buf_free(b);
      free(b);
      quic_stream_set_user(c, sid, NULL);
      b = &l->ctl_rx;
    }
  }
}

static int link__deliver(const audioframe_t *f, void *user) {
  call_link_t *l = user;
  if (l->ops.on_audio)
    l->ops.on_audio(l, f, l->user);
  return 0;
}

/* Audio stream bytes (stream transport): AudioFrames back to back. A bad
 * length loses the framing for good, so the connection goes (the caller
 * redials). */
static void link__on_audio_bytes(call_link_t *l, const uint8_t *data,
                                 size_t len) {
  if (audioframe_parser_feed(&l->audio_rx, data, len, link__deliver, l) != 0) {
    l->bad_frames++;
    quic_conn_close(l->conn, LINK_CLOSE_NORMAL, "malformed audio stream");
  }
}

static int link__deliver_video(const videoframe_t *f, void *user) {
  call_link_t *l = user;
  l->vstats.frames_received++;
  if (l->ops.on_video)
    l->ops.on_video(l, f, l->user);
  return 0;
}

/* Video stream bytes (stream transport). A bad frame loses that stream's
 * framing: it is stopped and the peer starts another. */
static void link__on_video_bytes(call_link_t *l, const uint8_t *data,
                                 size_t len) {
  if (videoframe_parser_feed(&l->video_rx, data, len, link__deliver_video, l) !=
      0) {
    l->vstats.frames_malformed++;
    quic_stream_shutdown(l->conn, l->video_rx_sid, QUIC_DIR_RECV,
                         LINK_RESET_STALE);
    l->video_rx_sid = -1;
    videoframe_parser_free(&l->video_rx);
  }
}

static link_vrx_t *link__vrx_find(call_link_t *l, int64_t sid) {
  for (size_t i = 0; i < l->n_vrx; i++)
    if (l->vrx[i].sid == sid)
      return &l->vrx[i];
  return NULL;
}

/* Forgets a frame being received (stopping its stream if asked). */
static void link__vrx_drop(call_link_t *l, link_vrx_t *v, bool stop) {
  if (stop && l->conn)
    quic_stream_shutdown(l->conn, v->sid, QUIC_DIR_RECV, LINK_RESET_STALE);
  l->vrx_bytes -= v->buf.len;
  link__buf_free(&v->buf);
  *v = l->vrx[--l->n_vrx];
}

static void link__vrx_clear(call_link_t *l) {
  while (l->n_vrx)
    link__vrx_drop(l, &l->vrx[0], false);
  videoframe_parser_free(&l->video_rx);
  l->n_vtx = 0;
  l->video_rx_sid = l->video_tx_sid = -1;
}

/* Bytes of a video frame's own stream (datagram transport), kept until its
 * FIN. Memory is bounded: past the limits the oldest frame is stopped. */
static void link__on_vrx_bytes(call_link_t *l, link_vrx_t *v,
                               const uint8_t *data, size_t len) {
  if (link__buf_add(&v->buf, data, len,
                    VIDEOFRAME_HEADER_LEN + VIDEOFRAME_MAX_DATA) != 0) {
    l->vstats.frames_malformed++;
    link__vrx_drop(l, v, true);
    return;
  }
  l->vrx_bytes += len;
  while (l->vrx_bytes > LINK_VIDEO_RX_BYTES && l->n_vrx > 0) {
    l->vstats.frames_aborted++;
    link__vrx_drop(l, &l->vrx[0], true);
  }
}

static void link__on_new_video_stream(call_link_t *l, int64_t sid) {
  if (l->transport == MEDIA_TRANSPORT_STREAM) {
    /* The peer replaced its stream (after an error): follow it. */
    videoframe_parser_free(&l->video_rx);
    videoframe_parser_init(&l->video_rx);
    l->video_rx_sid = sid;
    return;
  }
  if (l->n_vrx == LINK_VIDEO_RX_MAX) {
    l->vstats.frames_aborted++;
    link__vrx_drop(l, &l->vrx[0], true);
  }
  l->vrx[l->n_vrx++] = (link_vrx_t){.sid = sid};
}

static void link__on_stream_data(quic_conn_t *c, int64_t sid,
                                 const uint8_t *data, size_t len, void *user) {
  call_link_t *l = link__user_link(user);
  if (!quic_stream_is_uni(sid)) {
    link__on_control_bytes(c, sid, data, len, l);
    return;
  }
  if (!l || !l->up || len == 0 || quic_stream_is_local(c, sid))
    return;
  if (sid == l->video_rx_sid) {
    link__on_video_bytes(l, data, len);
    return;
  }
  link_vrx_t *v = link__vrx_find(l, sid);
  if (v) {
    link__on_vrx_bytes(l, v, data, len);
    return;
  }
  if (l->audio_rx_sid != sid) { /* a new stream: type byte first */
    if (data[0] == LINK_STREAM_VIDEO) {
      link__on_new_video_stream(l, sid);
      if (len > 1)
        link__on_stream_data(c, sid, data + 1, len - 1, user);
      return;
    }
    if (data[0] != LINK_STREAM_AUDIO) {
      quic_stream_shutdown(c, sid, QUIC_DIR_RECV, 1);
      return;
    }
    l->audio_rx_sid = sid;
    audioframe_parser_init(&l->audio_rx);
    data++;
    len--;
  }
  if (len)
    link__on_audio_bytes(l, data, len);
}

/* A video frame's stream ended: the frame is whole. */
static void link__on_stream_fin(quic_conn_t *c, int64_t sid, void *user) {
  call_link_t *l = link__user_link(user);
  link_vrx_t *v = l ? link__vrx_find(l, sid) : NULL;
  if (!v)
    return;
  videoframe_t f;
  if (videoframe_decode(v->buf.data, v->buf.len, &f) == 0)
    link__deliver_video(&f, l);
  else
    l->vstats.frames_malformed++;
  link__vrx_drop(l, v, false);
}

static void link__on_stream_reset(quic_conn_t *c, int64_t sid, uint64_t code,
                                  enum quic_stream_dir dir, void *user) {
  call_link_t *l = link__user_link(user);
  if (!l)
    return;
  link_vrx_t *v = dir == QUIC_DIR_RECV ? link__vrx_find(l, sid) : NULL;
  if (v) { /* the sender gave up on a stale frame */
    l->vstats.frames_aborted++;
    link__vrx_drop(l, v, false);
  }
  if (dir == QUIC_DIR_SEND && sid == l->video_tx_sid)
    l->video_tx_sid = -1; /* the peer stopped it: start another */
}

static void link__on_stream_acked(quic_conn_t *c, int64_t sid, void *user) {
  call_link_t *l = link__user_link(user);
  for (size_t i = 0; l && i < l->n_vtx; i++)
    if (l->vtx[i].sid == sid) {
      link__vtx_remove(l, i);
      return;
    }
}

static void link__on_stream_open(quic_conn_t *c, int64_t sid, void *user) {
  if (quic_stream_is_uni(sid) || link__user_link(user))
    return;
  /* The first bidirectional stream of an accepted connection: HELLO. */
  link_buf_t *b = calloc(1, sizeof(*b));
  if (!b) {
    quic_conn_close(c, LINK_CLOSE_NORMAL, "out of memory");
    return;
  }
  quic_stream_set_user(c, sid, b);
}

static void link__on_stream_closed(quic_conn_t *c, int64_t sid, void *user) {
  call_link_t *l = link__user_link(user);
  if (l) {
    link_vrx_t *v = link__vrx_find(l, sid);
    if (v) {
      l->vstats.frames_aborted++;
      link__vrx_drop(l, v, false);
    }
    link__on_stream_acked(c, sid, user);
    return;
  }
  if (quic_stream_is_uni(sid))
    return;
  link_buf_t *b = quic_stream_user(c, sid);
  if (b) {
    link__buf_free(b);
    free(b);
  }
}

static void link__on_datagram(quic_conn_t *c, const uint8_t *data, size_t len,
                              void *user) {
  call_link_t *l = link__user_link(user);
  audioframe_t f;
  if (!l || !l->up || l->conn != c)
    return;
  if (audioframe_decode(data, len, &f) != 0) {
    l->bad_frames++;
    return;
  }
  link__deliver(&f, l);
}

static void link__on_connected(quic_conn_t *c, void *user) {
  call_link_t *l = link__user_link(user);
  if (!l || !l->caller)
    return; /* accepted: wait for HELLO */
  int r = quic_stream_open_bidi(c, &l->ctl_sid);
  if (r != 0) {
    quic_conn_close(c, LINK_CLOSE_NORMAL, "cannot open control stream");
    return;
  }
  quic_stream_set_priority(c, l->ctl_sid, 0);
  link__send_hello(l);
}

static void link__on_closed(quic_conn_t *c, const quic_close_info_t *info,
                            void *user) {
  call_link_t *l = link__user_link(user);
  if (!l || l->conn != c)
    return;
  l->conn = NULL;
  l->up = false;
  l->audio_rx_sid = l->audio_tx_sid = -1;
  link__buf_free(&l->ctl_rx);
  link__vrx_clear(l);
  LOG_INFO("link", "call %s: media link down: %s", l->call_id, info->error);
  if (l->ops.on_down)
    l->ops.on_down(l, info->error, l->user);
}

static const quic_handler_t link__handler = {
    .on_connected = link__on_connected,
    .on_closed = link__on_closed,
    .on_stream_open = link__on_stream_open,
    .on_stream_data = link__on_stream_data,
    .on_stream_fin = link__on_stream_fin,
    .on_stream_reset = link__on_stream_reset,
    .on_stream_acked = link__on_stream_acked,
    .on_stream_closed = link__on_stream_closed,
    .on_datagram = link__on_datagram,
};

/* ---- lifecycle ---- */

link_listener_t *link_listener_new(quic_endpoint_t *ep, const uint8_t me[32]) {
  link_listener_t *ls = calloc(1, sizeof(*ls));
  if (!ls)
    return NULL;
  ls->tag = LINK_TAG_LISTENER;
  ls->ep = ep;
  memcpy(ls->me, me, 32);
  quic_conn_opts_default(&ls->opts);
  /* A dead peer shows within seconds; pings keep the path warm. */
  ls->opts.idle_timeout_ms = 5000;
  ls->opts.keep_alive_ms = 1000;
  ls->opts.handshake_timeout_ms = 3000;
  int r = quic_endpoint_register_alpn(ep, QUIC_ALPN_CALL, &link__handler,
                                      &ls->opts, ls);
  if (r != 0) {
    LOG_ERROR("link", "cannot register %s: %s", QUIC_ALPN_CALL,
              quic_strerror(r));
    free(ls);
    return NULL;
  }
  return ls;
}

void link_listener_free(link_listener_t *ls) {
  while (ls && ls->links)
    call_link_free(ls->links);
  free(ls);
}

static call_link_t *link__new(link_listener_t *ls, const uint8_t peer[32],
                              const char *call_id, const uint8_t *secret,
                              enum media_transport transport,
                              const link_ops_t *ops, void *user) {
  call_link_t *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  l->tag = LINK_TAG_LINK;
  l->ls = ls;
  memcpy(l->peer, peer, 32);
  snprintf(l->call_id, sizeof(l->call_id), "%s", call_id);
  memcpy(l->secret, secret, CALLSIGNAL_SECRET_LEN);
  l->transport = transport;
  l->ops = *ops;
  l->user = user;
  l->ctl_sid = l->audio_tx_sid = l->audio_rx_sid = -1;
  l->video_tx_sid = l->video_rx_sid = -1;
  l->next = ls->links;
  ls->links = l;
  return l;
}

int call_link_redial(call_link_t *l) {
  if (!l->caller || l->conn)
    return QUIC_ERR_STATE;
  int r = quic_dial(l->ls->ep, l->peer, (const struct sockaddr *)&l->addr,
                    QUIC_ALPN_CALL, &l->ls->opts, &link__handler, l, &l->conn);
  if (r != 0)
    LOG_WARN("link", "call %s: cannot dial: %s", l->call_id, quic_strerror(r));
  return r;
}

call_link_t *call_link_dial(link_listener_t *ls, const uint8_t peer[32],
                            const struct sockaddr *addr, const char *call_id,
                            const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                            enum media_transport transport,
                            const link_ops_t *ops, void *user) {
  call_link_t *l = link__new(ls, peer, call_id, secret, transport, ops, user);
  if (!l)
    return NULL;
  l->caller = true;
  memcpy(&l->addr, addr,
         addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  call_link_redial(l);
  return l;
}

call_link_t *call_link_expect(link_listener_t *ls, const uint8_t peer[32],
                              const char *call_id,
                              const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                              enum media_transport transport,
                              const link_ops_t *ops, void *user) {
  return link__new(ls, peer, call_id, secret, transport, ops, user);
}

void call_link_free(call_link_t *l) {
  if (!l)
    return;
  call_link_t **pp = &l->ls->links;
  while (*pp && *pp != l)
    pp = &(*pp)->next;
  if (*pp)
    *pp = l->next;
  if (l->conn) {
    quic_conn_set_user(l->conn, NULL);
    quic_conn_close(l->conn, LINK_CLOSE_NORMAL, "call ended");
  }
  link__buf_free(&l->ctl_rx);
  link__vrx_clear(l);
  sodium_memzero(l->secret, sizeof(l->secret));
  free(l);
}

bool call_link_is_up(const call_link_t *l) {
  return l->up;
}

int call_link_stats(const call_link_t *l, quic_conn_stats_t *out) {
  if (!l->conn)
    return QUIC_ERR_STATE;
  return quic_conn_stats(l->conn, out);
}

uint64_t call_link_bad_frames(const call_link_t *l) {
  return l->bad_frames;
}
