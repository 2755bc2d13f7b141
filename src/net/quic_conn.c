/* QUIC connections: creation (dial / accept), the ngtcp2 callbacks, the
 * read / write / timer cycle, peer authentication and the ways a
 * connection ends. */
#include "net/quic_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <sodium.h>

#include "core/log.h"
#include "core/util.h"

#define QUIC_ALERT_BAD_CERTIFICATE 42
#define QUIC_ALERT_NO_APP_PROTOCOL 120
#define QUIC_CLOSE_PKT_MAX 1500
#define QUIC_ACTIVE_CID_LIMIT 4 /* spare CIDs let a dialer migrate */

static void quic__conn_write(quic_conn_t *c);
static void quic__conn_arm_timer(quic_conn_t *c);
static uint64_t quic__ack_hold_until(quic_conn_t *c, uint64_t now);
static void quic__conn_on_timer(uv_timer_t *t);
static void quic__conn_on_error(quic_conn_t *c, int rv);
static void quic__conn_destroy(quic_conn_t *c);
static void quic__conn_report(quic_conn_t *c, enum quic_close_kind kind,
                              bool remote, bool app, uint64_t code,
                              const char *error);
static void quic__conn_close_send(quic_conn_t *c, const ngtcp2_ccerr *cc,
                                  enum quic_close_kind kind, bool app,
                                  uint64_t code, const char *error);

/* ---- small helpers ---- */

static ngtcp2_conn *quic__get_conn(ngtcp2_crypto_conn_ref *ref) {
  quic_conn_t *c = ref->user_data;
  return c->nc;
}

/* Records why the connection must fail; the callback that calls this
 * returns its result to ngtcp2, which then aborts the operation. */
__attribute__((format(printf, 4, 5))) static int
quic__fail(quic_conn_t *c, enum quic_close_kind kind, uint8_t alert,
           const char *fmt, ...) {
  if (!c->fail_set) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_error, sizeof(c->fail_error), fmt, ap);
    va_end(ap);
    c->fail_set = true;
    c->fail_kind = kind;
    c->fail_alert = alert;
  }
  return NGTCP2_ERR_CALLBACK_FAILURE;
}

static void quic__apply_params(ngtcp2_transport_params *p,
                               const quic_conn_opts_t *o) {
  p->initial_max_stream_data_bidi_local = o->stream_window;
  p->initial_max_stream_data_bidi_remote = o->stream_window;
  p->initial_max_stream_data_uni = o->stream_window;
  p->initial_max_data = o->conn_window;
  p->initial_max_streams_bidi = o->max_streams_bidi;
  p->initial_max_streams_uni = o->max_streams_uni;
  p->max_idle_timeout = (uint64_t)o->idle_timeout_ms * NGTCP2_MILLISECONDS;
  p->max_datagram_frame_size =
      o->max_datagram_frame == QUIC_DATAGRAMS_OFF ? 0 : o->max_datagram_frame;
  p->active_connection_id_limit = QUIC_ACTIVE_CID_LIMIT;
}

static void quic__qlog(void *ud, uint32_t flags, const void *data, size_t len) {
  quic_conn_t *c = ud;
  (void)flags;
  /* One qlog event per call; ngtcp2 exposes lost packets only this way. */
  if (memmem(data, len, "recovery:packet_lost", 20) != NULL)
    c->pkts_lost++;
}

static void quic__settings(const quic_conn_t *c, ngtcp2_settings *s) {
  const quic_conn_opts_t *o = &c->opts;
  ngtcp2_settings_default(s);
  s->initial_ts = quic__now();
  s->max_tx_udp_payload_size = c->ep->opts.max_udp_payload;
  s->handshake_timeout =
      (uint64_t)o->handshake_timeout_ms * NGTCP2_MILLISECONDS;
  s->max_window = o->conn_window * 8;
  s->max_stream_window = o->stream_window * 16;
  s->cc_algo = o->cc_algo == QUIC_CC_RENO    ? NGTCP2_CC_ALGO_RENO
               : o->cc_algo == QUIC_CC_CUBIC ? NGTCP2_CC_ALGO_CUBIC
                                             : NGTCP2_CC_ALGO_BBR;
  if (c->ep->opts.count_lost_packets)
    s->qlog_write = quic__qlog;
  if (c->ep->opts.fixed_udp_payload) {
    s->no_tx_udp_payload_size_shaping = 1;
    s->no_pmtud = 1;
  }
}

static int quic__new_cid(quic_conn_t *c, ngtcp2_cid *cid) {
  for (int tries = 0; tries < 4; tries++) {
    randombytes_buf(cid->data, QUIC_CID_LEN);
    cid->datalen = QUIC_CID_LEN;
    if (qmap_put(&c->ep->cids, cid->data, cid->datalen, c) == 0)
      return 0;
  }
  return -1;
}

/* ---- ngtcp2 callbacks ---- */

static void quic__cb_rand(uint8_t *dest, size_t len,
                          const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  randombytes_buf(dest, len);
}

static int quic__cb_new_cid(ngtcp2_conn *nc, ngtcp2_cid *cid, uint8_t *token,
                            size_t cidlen, void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  if (cidlen != QUIC_CID_LEN || quic__new_cid(c, cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          token, c->ep->reset_secret, sizeof(c->ep->reset_secret), cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int quic__cb_remove_cid(ngtcp2_conn *nc, const ngtcp2_cid *cid,
                               void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  qmap_del(&c->ep->cids, cid->data, cid->datalen, c);
  return 0;
}

/* Acceptor: the ClientHello has been processed, so the ALPN is chosen but
 * our transport parameters are not sent yet. Bind the handler and apply
 * its options (idle timeout, windows, datagrams). */
static int quic__cb_recv_rx_key(ngtcp2_conn *nc, ngtcp2_encryption_level lvl,
                                void *ud) {
  quic_conn_t *c = ud;
  if (c->dialer || lvl != NGTCP2_ENCRYPTION_LEVEL_HANDSHAKE)
    return 0;
  char alpn[QUIC_ALPN_MAX_LEN + 1];
  if (tls_session_alpn(c->ssl, alpn, sizeof(alpn)) < 0)
    return quic__fail(c, QUIC_CLOSE_ALPN, QUIC_ALERT_NO_APP_PROTOCOL,
                      "no application protocol: the dialer offered none");
  const quic_alpn_reg_t *reg = quic__alpn_find(c->ep, alpn);
  if (reg == NULL)
    return quic__fail(c, QUIC_CLOSE_ALPN, QUIC_ALERT_NO_APP_PROTOCOL,
                      "no application protocol: \"%s\" not registered", alpn);
  memcpy(c->alpn, alpn, sizeof(alpn));
  c->h = reg->h;
  c->user = reg->user;
  c->opts = reg->opts;
  ngtcp2_transport_params p = *ngtcp2_conn_get_local_transport_params(nc);
  quic__apply_params(&p, &c->opts);
  if (ngtcp2_conn_set_local_transport_params(nc, &p) != 0)
    return quic__fail(c, QUIC_CLOSE_TRANSPORT, 0,
                      "cannot set transport parameters");
  return 0;
}

/* The TLS handshake finished: the peer proved its key (CertificateVerify)
 * and the ALPN is agreed. Only now does the application hear of it. */
static int quic__cb_handshake_completed(ngtcp2_conn *nc, void *ud) {
  quic_conn_t *c = ud;
  char alpn[QUIC_ALPN_MAX_LEN + 1];
  (void)nc;
  if (!c->check.verified)
    return quic__fail(c, QUIC_CLOSE_AUTH, QUIC_ALERT_BAD_CERTIFICATE, "%s",
                      c->check.error[0] ? c->check.error
                                        : "peer certificate not verified");
  if (wolfSSL_session_reused(c->ssl))
    return quic__fail(c, QUIC_CLOSE_AUTH, QUIC_ALERT_BAD_CERTIFICATE,
                      "resumed TLS session refused");
  if (tls_session_alpn(c->ssl, alpn, sizeof(alpn)) < 0 ||
      strcmp(alpn, c->alpn) != 0)
    return quic__fail(c, QUIC_CLOSE_ALPN, QUIC_ALERT_NO_APP_PROTOCOL,
                      "no application protocol: peer did not agree to "
                      "\"%s\"",
                      c->alpn);
  if (c->dialer && sodium_memcmp(c->check.key, c->peer, 32) != 0)
    return quic__fail(c, QUIC_CLOSE_AUTH, QUIC_ALERT_BAD_CERTIFICATE,
                      "peer key changed during handshake");
  memcpy(c->peer, c->check.key, 32);
  hex_encode(c->peer_id, c->peer, 32);

  c->state = QC_OPEN;
  c->visible = true;
  if (c->opts.keep_alive_ms > 0)
    ngtcp2_conn_set_keep_alive_timeout(c->nc, (uint64_t)c->opts.keep_alive_ms *
                                                  NGTCP2_MILLISECONDS);
  LOG_INFO("net", "connected %s %.16s.. alpn %s", c->dialer ? "to" : "from",
           c->peer_id, c->alpn);
  if (c->h.on_connected != NULL)
    c->h.on_connected(c, c->user);
  return 0;
}

static int quic__cb_stream_open(ngtcp2_conn *nc, int64_t sid, void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  if (quic__stream_new(c, sid, false) == NULL)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (c->state == QC_OPEN && c->h.on_stream_open != NULL)
    c->h.on_stream_open(c, sid, c->user);
  return 0;
}

static int quic__cb_recv_stream_data(ngtcp2_conn *nc, uint32_t flags,
                                     int64_t sid, uint64_t offset,
                                     const uint8_t *data, size_t len, void *ud,
                                     void *sud) {
  quic_conn_t *c = ud;
  (void)offset;
  (void)sud;
  quic_stream_t *s = quic__stream_get(c, sid);
  bool live =
      c->state == QC_OPEN && !c->close_req && s != NULL && !s->recv_reset;
  c->rx_app = true;
  if (live && len > 0 && c->h.on_stream_data != NULL)
    c->h.on_stream_data(c, sid, data, len, c->user);
  /* The data was consumed (copied out): give the peer its credit back. */
  ngtcp2_conn_extend_max_stream_offset(nc, sid, len);
  ngtcp2_conn_extend_max_offset(nc, len);
  if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) {
    /* Look again: the data callback may have reset the stream. */
    s = quic__stream_get(c, sid);
    bool tell = live && s != NULL && !s->recv_reset && c->state == QC_OPEN &&
                !c->close_req;
    if (s != NULL)
      s->recv_fin = true;
    if (tell && c->h.on_stream_fin != NULL)
      c->h.on_stream_fin(c, sid, c->user);
  }
  return 0;
}

static int quic__cb_acked_stream_data(ngtcp2_conn *nc, int64_t sid,
                                      uint64_t offset, uint64_t datalen,
                                      void *ud, void *sud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)sud;
  quic_stream_t *s = quic__stream_get(c, sid);
  if (s != NULL)
    quic__stream_acked(c, s, offset, datalen);
  return 0;
}

/* A stream is gone. If the peer stopped our sending side (STOP_SENDING,
 * which ngtcp2 answers with RESET_STREAM and reports no other way), this
 * is where we learn it: an error code is set and our data was not all
 * delivered, yet we did not reset the stream ourselves. */
static int quic__cb_stream_close(ngtcp2_conn *nc, uint32_t flags, int64_t sid,
                                 uint64_t app_error_code, void *ud, void *sud) {
  quic_conn_t *c = ud;
  (void)sud;
  quic_stream_t *s = quic__stream_get(c, sid);
  if (s == NULL)
    return 0;
  bool remote = !s->local;
  bool sends = !quic_stream_is_uni(sid) || s->local;
  bool delivered = s->fin_sent && s->acked_off == s->write_off;
  bool stopped = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) &&
                 sends && !s->reset_local && !delivered;
  if (c->state == QC_OPEN && stopped && c->h.on_stream_reset != NULL)
    c->h.on_stream_reset(c, sid, app_error_code, QUIC_DIR_SEND, c->user);
  if (c->state == QC_OPEN && c->h.on_stream_closed != NULL)
    c->h.on_stream_closed(c, sid, c->user);
  s = quic__stream_get(c, sid);
  if (s != NULL)
    quic__stream_free(c, s);
  /* Let the peer open another one in its place. */
  if (remote && quic_stream_is_uni(sid))
    ngtcp2_conn_extend_max_streams_uni(nc, 1);
  else if (remote)
    ngtcp2_conn_extend_max_streams_bidi(nc, 1);
  return 0;
}

static int quic__cb_stream_reset(ngtcp2_conn *nc, int64_t sid,
                                 uint64_t final_size, uint64_t app_error_code,
                                 void *ud, void *sud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)final_size;
  (void)sud;
  quic_stream_t *s = quic__stream_get(c, sid);
  /* After our own STOP_SENDING the peer's RESET_STREAM is no news. */
  if (s == NULL || s->recv_reset)
    return 0;
  s->recv_reset = true;
  if (c->state == QC_OPEN && c->h.on_stream_reset != NULL)
    c->h.on_stream_reset(c, sid, app_error_code, QUIC_DIR_RECV, c->user);
  return 0;
}

static int quic__cb_extend_stream_data(ngtcp2_conn *nc, int64_t sid,
                                       uint64_t max_data, void *ud, void *sud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)max_data;
  (void)sud;
  quic_stream_t *s = quic__stream_get(c, sid);
  if (s != NULL && s->blocked) {
    s->blocked = false;
    quic__sendq_add(c, s);
  }
  return 0;
}

static int quic__cb_extend_streams(ngtcp2_conn *nc, uint64_t max, void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)max;
  if (c->want_streams && c->state == QC_OPEN) {
    c->want_streams = false;
    if (c->h.on_streams_available != NULL)
      c->h.on_streams_available(c, c->user);
  }
  return 0;
}

static int quic__cb_recv_datagram(ngtcp2_conn *nc, uint32_t flags,
                                  const uint8_t *data, size_t len, void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)flags;
  c->dgram_recv++;
  c->rx_app = true;
  if (c->state == QC_OPEN && !c->close_req && c->h.on_datagram != NULL)
    c->h.on_datagram(c, data, len, c->user);
  return 0;
}

static int quic__cb_ack_datagram(ngtcp2_conn *nc, uint64_t id, void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  c->dgram_acked++;
  quic__rate_add(c, c->dgram_size[id % QUIC_DGRAM_RING]);
  return 0;
}

static int quic__cb_lost_datagram(ngtcp2_conn *nc, uint64_t id, void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)id;
  c->dgram_lost++;
  return 0;
}

static int quic__cb_stateless_reset(ngtcp2_conn *nc,
                                    const ngtcp2_pkt_stateless_reset *sr,
                                    void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)sr;
  c->stateless_reset = true;
  return 0;
}

static int quic__cb_path_validation(ngtcp2_conn *nc, uint32_t flags,
                                    const ngtcp2_path *path,
                                    const ngtcp2_path *fallback,
                                    ngtcp2_path_validation_result res,
                                    void *ud) {
  quic_conn_t *c = ud;
  (void)nc;
  (void)flags;
  (void)path;
  (void)fallback;
  LOG_DEBUG("net", "path validation with %.16s..: %s", c->peer_id,
            res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS ? "ok" : "failed");
  return 0;
}

static void quic__callbacks(ngtcp2_callbacks *cb, bool dialer) {
  memset(cb, 0, sizeof(*cb));
  if (dialer) {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  } else {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  }
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->rand = quic__cb_rand;
  cb->get_new_connection_id = quic__cb_new_cid;
  cb->remove_connection_id = quic__cb_remove_cid;
  cb->recv_rx_key = quic__cb_recv_rx_key;
  cb->handshake_completed = quic__cb_handshake_completed;
  cb->stream_open = quic__cb_stream_open;
  cb->recv_stream_data = quic__cb_recv_stream_data;
  cb->acked_stream_data_offset = quic__cb_acked_stream_data;
  cb->stream_close = quic__cb_stream_close;
  cb->stream_reset = quic__cb_stream_reset;
  cb->extend_max_stream_data = quic__cb_extend_stream_data;
  cb->extend_max_local_streams_bidi = quic__cb_extend_streams;
  cb->extend_max_local_streams_uni = quic__cb_extend_streams;
  cb->recv_datagram = quic__cb_recv_datagram;
  cb->ack_datagram = quic__cb_ack_datagram;
  cb->lost_datagram = quic__cb_lost_datagram;
  cb->recv_stateless_reset = quic__cb_stateless_reset;
  cb->path_validation = quic__cb_path_validation;
}

/* ---- creation ---- */

static quic_conn_t *quic__conn_alloc(quic_endpoint_t *ep, bool dialer,
                                     const quic_conn_opts_t *opts) {
  quic_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
  c->ep = ep;
  c->dialer = dialer;
  c->opts = *opts;
  c->ref.get_conn = quic__get_conn;
  c->ref.user_data = c;
  c->dq_cap = opts->datagram_queue;
  c->dq = calloc(c->dq_cap, sizeof(*c->dq));
  if (c->dq == NULL || qmap_init(&c->streams) != 0) {
    free(c->dq);
    free(c);
    return NULL;
  }
  uv_timer_init(ep->loop, &c->timer);
  c->timer.data = c;
  ep->handles++;
  c->next = ep->conns;
  if (ep->conns != NULL)
    ep->conns->prev = c;
  ep->conns = c;
  ep->nconns++;
  return c;
}

int quic__conn_dial(quic_endpoint_t *ep, const uint8_t peer[32],
                    const struct sockaddr *addr, const char *alpn,
                    const quic_conn_opts_t *opts, const quic_handler_t *h,
                    void *user, quic_conn_t **out) {
  struct sockaddr_storage dst;
  socklen_t dst_len;
  quic_sock_t *sock = ep->sock;
  int rc = quic__addr_for_sock(sock, addr, &dst, &dst_len);
  if (rc != 0)
    return rc;
  if (ep->nconns >= ep->opts.max_connections)
    return QUIC_ERR_LIMIT;

  quic_conn_t *c = quic__conn_alloc(ep, true, opts);
  if (c == NULL)
    return QUIC_ERR_NOMEM;
  c->h = *h;
  c->user = user;
  snprintf(c->alpn, sizeof(c->alpn), "%s", alpn);
  c->check.expect = true;
  memcpy(c->check.expected, peer, 32);
  memcpy(c->peer, peer, 32);
  hex_encode(c->peer_id, peer, 32);

  ngtcp2_cid dcid, scid;
  dcid.datalen = QUIC_CID_LEN;
  randombytes_buf(dcid.data, dcid.datalen);
  if (quic__new_cid(c, &scid) != 0)
    goto fail;
  c->scid = scid;
  ngtcp2_path path = {
      .local = {(ngtcp2_sockaddr *)&sock->local, sock->local_len},
      .remote = {(ngtcp2_sockaddr *)&dst, dst_len},
  };
  ngtcp2_callbacks cb;
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  quic__callbacks(&cb, true);
  quic__settings(c, &settings);
  ngtcp2_transport_params_default(&params);
  quic__apply_params(&params, &c->opts);
  if (ngtcp2_conn_client_new(&c->nc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                             &cb, &settings, &params, NULL, c) != 0)
    goto fail;
  c->ssl = tls_session_new(ep->client_ctx, false, &c->ref, &c->check, alpn);
  if (c->ssl == NULL)
    goto fail;
  ngtcp2_conn_set_tls_native_handle(c->nc, c->ssl);
  c->visible = true;
  /* The first flight goes out from the loop, so that a failure is
   * reported through on_closed and never from inside quic_dial(). */
  quic__ep_mark_dirty(ep, c);
  *out = c;
  return 0;

fail:
  c->visible = false;
  quic__conn_destroy(c);
  return QUIC_ERR_NOMEM;
}

/* A packet for no known connection: accept it if it is a valid Initial. */
static quic_conn_t *quic__conn_accept(quic_endpoint_t *ep, quic_sock_t *sock,
                                      const struct sockaddr *from,
                                      socklen_t from_len, const uint8_t *pkt,
                                      size_t len) {
  ngtcp2_pkt_hd hd;
  if (ep->nalpns == 0 || ep->freeing ||
      ep->nconns >= ep->opts.max_connections ||
      ngtcp2_accept(&hd, pkt, len) != 0 || hd.type != NGTCP2_PKT_INITIAL)
    return NULL;

  quic_conn_t *c = quic__conn_alloc(ep, false, &ep->opts.conn);
  if (c == NULL)
    return NULL;
  ngtcp2_cid scid;
  if (quic__new_cid(c, &scid) != 0)
    goto fail;
  c->scid = scid;
  c->odcid = hd.dcid;
  if (qmap_put(&ep->cids, hd.dcid.data, hd.dcid.datalen, c) == 0)
    c->has_odcid = true;

  ngtcp2_path path = {
      .local = {(ngtcp2_sockaddr *)&sock->local, sock->local_len},
      .remote = {(ngtcp2_sockaddr *)from, from_len},
  };
  ngtcp2_callbacks cb;
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  quic__callbacks(&cb, false);
  quic__settings(c, &settings);
  ngtcp2_transport_params_default(&params);
  quic__apply_params(&params, &c->opts);
  params.original_dcid = hd.dcid;
  params.original_dcid_present = 1;
  params.stateless_reset_token_present = 1;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          params.stateless_reset_token, ep->reset_secret,
          sizeof(ep->reset_secret), &scid) != 0)
    goto fail;
  if (ngtcp2_conn_server_new(&c->nc, &hd.scid, &scid, &path, hd.version, &cb,
                             &settings, &params, NULL, c) != 0)
    goto fail;
  c->ssl =
      tls_session_new(ep->server_ctx, true, &c->ref, &c->check, ep->alpn_list);
  if (c->ssl == NULL)
    goto fail;
  ngtcp2_conn_set_tls_native_handle(c->nc, c->ssl);
  return c;

fail:
  quic__conn_destroy(c);
  return NULL;
}

/* ---- input ---- */

static void quic__send_version_negotiation(quic_endpoint_t *ep,
                                           quic_sock_t *sock,
                                           const struct sockaddr *from,
                                           socklen_t from_len,
                                           const ngtcp2_version_cid *vc) {
  uint8_t buf[256];
  uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
  uint8_t unused;
  randombytes_buf(&unused, 1);
  ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
      buf, sizeof(buf), unused, vc->scid, vc->scidlen, vc->dcid, vc->dcidlen,
      versions, ARRAY_SIZE(versions));
  if (n > 0)
    quic__tx_one(ep, sock, from, from_len, buf, (size_t)n);
}

/* Resends our CONNECTION_CLOSE to a peer that keeps talking, on an
 * exponential schedule (1st, 2nd, 4th, 8th... stray packet). */
static void quic__conn_resend_close(quic_conn_t *c) {
  c->close_resends++;
  if ((c->close_resends & (c->close_resends - 1)) == 0)
    quic__tx_one(c->ep, c->close_sock, (struct sockaddr *)&c->close_dst,
                 c->close_dst_len, c->close_pkt, c->close_len);
}

static void quic__conn_recv(quic_conn_t *c, quic_sock_t *sock,
                            const struct sockaddr *from, socklen_t from_len,
                            const uint8_t *pkt, size_t len) {
  if (c->state == QC_CLOSING) {
    quic__conn_resend_close(c);
    return;
  }
  if (c->state != QC_HANDSHAKE && c->state != QC_OPEN)
    return;
  ngtcp2_path path = {
      .local = {(ngtcp2_sockaddr *)&sock->local, sock->local_len},
      .remote = {(ngtcp2_sockaddr *)from, from_len},
  };
  ngtcp2_pkt_info pi = {0};
  uint64_t ts = quic__now();
  c->pkts_recv++;
  c->bytes_recv += len;
  c->rx_app = false;
  c->depth++;
  int rv = ngtcp2_conn_read_pkt(c->nc, &path, &pi, pkt, len, ts);
  c->depth--;
  if (rv != 0) {
    quic__conn_on_error(c, rv);
    return;
  }
  c->last_rx = quic__now();
  if (c->rx_app && c->opts.ack_hold_ms > 0) {
    quic__ack_hold_until(c, ts); /* forgets an ACK owed too long */
    if (c->ack_owed_since == 0)
      c->ack_owed_since = ts;
    c->ack_owed_pkts++;
  }
  quic__ep_mark_dirty(c->ep, c);
}

void quic__dispatch(quic_endpoint_t *ep, quic_sock_t *sock,
                    const struct sockaddr *from, socklen_t from_len,
                    const uint8_t *pkt, size_t len) {
  ngtcp2_version_cid vc;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, QUIC_CID_LEN);
  if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
    quic__send_version_negotiation(ep, sock, from, from_len, &vc);
    return;
  }
  if (rv != 0) {
    ep->stats.dropped++;
    return;
  }
  quic_conn_t *c = qmap_get(&ep->cids, vc.dcid, vc.dcidlen);
  if (c == NULL && (pkt[0] & 0x80))
    c = quic__conn_accept(ep, sock, from, from_len, pkt, len);
  if (c == NULL) {
    ep->stats.dropped++;
    return;
  }
  quic__conn_recv(c, sock, from, from_len, pkt, len);
}

/* ---- output ---- */

/* Writes as much as congestion control, pacing and flow control allow,
 * up to one burst; ngtcp2's expiry (the timer) paces the next one. */
/* The ACK delay ngtcp2 applies (ngtcp2_conn.c, conn_compute_ack_delay):
 * a packet written this long after an ACK became owed carries it. */
static uint64_t quic__ack_delay(quic_conn_t *c) {
  ngtcp2_conn_info ci;
  ngtcp2_conn_get_conn_info(c->nc, &ci);
  uint64_t d = ci.smoothed_rtt / 8;
  uint64_t max = ngtcp2_conn_get_local_transport_params(c->nc)->max_ack_delay;
  return d < 1 ? 1 : d > max ? max : d;
}

/* With opts.ack_hold_ms: until when the ACK owed for a packet or two of the
 * peer's may wait for a packet of ours to carry it, or 0 if it may not
 * (nothing owed, held long enough, more packets came, or something of ours
 * is waiting to go anyway). Two: a peer sending every 20 ms whose timing
 * wobbles against ours now and then gets two frames in before our next. */
static uint64_t quic__ack_hold_until(quic_conn_t *c, uint64_t now) {
  if (c->ack_owed_since == 0)
    return 0;
  uint64_t until =
      c->ack_owed_since + (uint64_t)c->opts.ack_hold_ms * NGTCP2_MILLISECONDS;
  if (now >= until) {
    c->ack_owed_since = 0;
    c->ack_owed_pkts = 0;
    return 0;
  }
  bool held = c->state == QC_OPEN && c->ack_owed_pkts <= QUIC_ACK_HOLD_PKTS &&
              c->sendq_head == NULL && c->dq_len == 0 && !c->close_req;
  return held ? until : 0;
}

static void quic__conn_write(quic_conn_t *c) {
  quic_endpoint_t *ep = c->ep;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  uint64_t ts = quic__now();
  if (quic__ack_hold_until(c, ts) != 0) {
    /* Only an ACK to send, and our next packet will take it. */
    quic__conn_arm_timer(c);
    return;
  }
  size_t npkts = 0;
  size_t cap = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->nc);
  size_t max_pkts = ngtcp2_conn_get_send_quantum(c->nc) / cap;

  if (cap > ep->opts.max_udp_payload)
    cap = ep->opts.max_udp_payload;
  if (max_pkts < 1)
    max_pkts = 1;
  if (max_pkts > QUIC_TX_MAX_PKTS)
    max_pkts = QUIC_TX_MAX_PKTS;
  ngtcp2_path_storage_zero(&ps);
  for (size_t n = 0; n < max_pkts; n++) {
    uint8_t *buf = quic__tx_space(ep);
    if (ep->blocked) {
      quic__ep_mark_dirty(ep, c); /* resumes when the socket drains */
      break;
    }
    c->depth++;
    ngtcp2_ssize w = quic__write_one(c, &ps.path, &pi, buf, cap, ts);
    c->depth--;
    if (w < 0) {
      quic__tx_flush(ep);
      quic__conn_on_error(c, (int)w);
      return;
    }
    if (w == 0)
      break;
    quic__tx_commit(ep, &ps.path, (size_t)w);
    c->pkts_sent++;
    c->bytes_sent += (uint64_t)w;
    npkts++;
  }
  if (npkts > 0 && c->ack_owed_since != 0 &&
      ts >= c->ack_owed_since + quic__ack_delay(c)) {
    c->ack_owed_since = 0; /* the first packet carried the ACK */
    c->ack_owed_pkts = 0;
  }
  ngtcp2_conn_update_pkt_tx_time(c->nc, ts);
  quic__tx_flush(ep);
  quic__conn_arm_timer(c);
}

static void quic__conn_close_app(quic_conn_t *c) {
  ngtcp2_ccerr cc;
  char error[160];
  ngtcp2_ccerr_default(&cc);
  ngtcp2_ccerr_set_application_error(&cc, c->close_code,
                                     (const uint8_t *)c->close_reason,
                                     strlen(c->close_reason));
  snprintf(error, sizeof(error), "closed locally: %s (code %" PRIu64 ")",
           c->close_reason[0] ? c->close_reason : "no reason", c->close_code);
  quic__conn_close_send(c, &cc, QUIC_CLOSE_LOCAL, true, c->close_code, error);
}

void quic__conn_flush(quic_conn_t *c) {
  if (c->state != QC_HANDSHAKE && c->state != QC_OPEN)
    return;
  if (c->shutdown_req && !c->close_req && quic__streams_drained(c))
    c->close_req = true;
  if (c->close_req) {
    quic__conn_close_app(c);
    return;
  }
  if (c->ep->blocked) {
    quic__ep_mark_dirty(c->ep, c);
    return;
  }
  quic__conn_write(c);
}

/* ---- timers ---- */

/* When the peer counts as gone: the negotiated idle timeout (at least 3
 * PTOs) after the last packet we accepted. ngtcp2 also restarts its idle
 * timer when we send (RFC 9000 10.1), so a keep-alive PING to a dead peer
 * would stretch detection to idle + keep-alive; this deadline does not. */
static uint64_t quic__silence_deadline(quic_conn_t *c) {
  if (c->state != QC_OPEN || c->last_rx == 0)
    return UINT64_MAX;
  uint64_t idle = (uint64_t)c->opts.idle_timeout_ms * NGTCP2_MILLISECONDS;
  const ngtcp2_transport_params *rp =
      ngtcp2_conn_get_remote_transport_params(c->nc);
  if (rp != NULL && rp->max_idle_timeout != 0 && rp->max_idle_timeout < idle)
    idle = rp->max_idle_timeout;
  uint64_t floor = 3 * ngtcp2_conn_get_pto(c->nc);
  return c->last_rx + (idle > floor ? idle : floor);
}

static void quic__conn_arm_timer(quic_conn_t *c) {
  ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->nc);
  uint64_t silence = quic__silence_deadline(c);
  uint64_t now = quic__now();
  if (silence < exp)
    exp = silence;
  /* An ACK on hold: ngtcp2's expiry says it is due; it waits until the
   * hold ends (timers due meanwhile, e.g. loss detection, wait too). */
  uint64_t hold = quic__ack_hold_until(c, now);
  if (exp < hold)
    exp = hold;
  if (exp == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  /* libuv timers have millisecond resolution: round up, so that the
   * timer never fires before ngtcp2's deadline and spins. */
  uint64_t ms = exp <= now ? 0 : (exp - now + 999999) / 1000000;
  uv_timer_start(&c->timer, quic__conn_on_timer, ms, 0);
}

static void quic__conn_on_timer(uv_timer_t *t) {
  quic_conn_t *c = t->data;
  if (c->state == QC_CLOSING) {
    quic__conn_destroy(c);
    return;
  }
  if (c->state != QC_HANDSHAKE && c->state != QC_OPEN)
    return;
  if (quic__now() >= quic__silence_deadline(c)) {
    quic__conn_on_error(c, NGTCP2_ERR_IDLE_CLOSE);
    return;
  }
  c->depth++;
  int rv = ngtcp2_conn_handle_expiry(c->nc, quic__now());
  c->depth--;
  if (rv != 0) {
    quic__conn_on_error(c, rv);
    return;
  }
  quic__conn_flush(c);
}

/* ---- the end of a connection ---- */

/* Keeps printable ASCII of the peer's reason phrase. */
static void quic__sanitize(char *out, size_t out_size, const uint8_t *in,
                           size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < out_size; i++)
    out[n++] = (in[i] >= 0x20 && in[i] < 0x7f) ? (char)in[i] : '?';
  out[n] = '\0';
}

static bool quic__cert_alert(uint8_t alert) {
  return alert == 42 || alert == 43 || alert == 46 || alert == 48 ||
         alert == 49 || alert == 116;
}

/* The peer sent CONNECTION_CLOSE (or a stateless reset): say why. */
static void quic__conn_report_peer_close(quic_conn_t *c) {
  char error[200], reason[101];
  const ngtcp2_ccerr *e = ngtcp2_conn_get_ccerr(c->nc);
  quic__sanitize(reason, sizeof(reason), e->reason, e->reasonlen);

  if (c->stateless_reset) {
    quic__conn_report(c, QUIC_CLOSE_STATELESS_RESET, true, false, 0,
                      "peer reset the connection (stateless reset)");
    return;
  }
  if (e->type == NGTCP2_CCERR_TYPE_APPLICATION) {
    snprintf(error, sizeof(error), "peer closed: %s (code %" PRIu64 ")",
             reason[0] ? reason : "no reason", e->error_code);
    quic__conn_report(c, QUIC_CLOSE_REMOTE, true, true, e->error_code, error);
    return;
  }
  uint64_t code = e->error_code;
  enum quic_close_kind kind = QUIC_CLOSE_TRANSPORT;
  if ((code & ~(uint64_t)0xff) == NGTCP2_CRYPTO_ERROR) {
    uint8_t alert = (uint8_t)code;
    if (alert == QUIC_ALERT_NO_APP_PROTOCOL) {
      kind = QUIC_CLOSE_ALPN;
      snprintf(error, sizeof(error),
               "no application protocol: peer does not accept \"%s\"", c->alpn);
    } else if (quic__cert_alert(alert)) {
      kind = QUIC_CLOSE_AUTH;
      snprintf(error, sizeof(error),
               "peer rejected our certificate (TLS alert %s)",
               tls_alert_name(alert));
    } else {
      snprintf(error, sizeof(error),
               "peer aborted the handshake (TLS alert %s)",
               tls_alert_name(alert));
    }
  } else {
    snprintf(error, sizeof(error),
             "peer closed with transport error 0x%" PRIx64 "%s%s", code,
             reason[0] ? ": " : "", reason);
  }
  quic__conn_report(c, kind, true, false, code, error);
}

/* ngtcp2 failed a read, write or timer: report and close accordingly. */
static void quic__conn_on_error(quic_conn_t *c, int rv) {
  char error[200];
  ngtcp2_ccerr cc;
  ngtcp2_ccerr_default(&cc);

  switch (rv) {
  case NGTCP2_ERR_DRAINING:
    quic__conn_report_peer_close(c);
    quic__conn_destroy(c);
    return;
  case NGTCP2_ERR_CLOSING:
    return;
  case NGTCP2_ERR_IDLE_CLOSE:
    snprintf(error, sizeof(error),
             "idle timeout: no packets from the peer for %" PRIu64 " ms",
             c->last_rx != 0 ? (quic__now() - c->last_rx) / NGTCP2_MILLISECONDS
                             : (uint64_t)c->opts.idle_timeout_ms);
    quic__conn_report(c, QUIC_CLOSE_IDLE, false, false, 0, error);
    quic__conn_destroy(c);
    return;
  case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
    snprintf(error, sizeof(error), "handshake timeout after %u ms",
             c->opts.handshake_timeout_ms);
    quic__conn_report(c, QUIC_CLOSE_HANDSHAKE_TIMEOUT, false, false, 0, error);
    quic__conn_destroy(c);
    return;
  case NGTCP2_ERR_DROP_CONN:
  case NGTCP2_ERR_RECV_VERSION_NEGOTIATION:
    quic__conn_report(c, QUIC_CLOSE_TRANSPORT, false, false, 0,
                      rv == NGTCP2_ERR_DROP_CONN
                          ? "connection dropped (invalid peer packet)"
                          : "peer does not speak QUIC version 1");
    quic__conn_destroy(c);
    return;
  default:
    break;
  }

  enum quic_close_kind kind = QUIC_CLOSE_TRANSPORT;
  uint8_t alert =
      rv == NGTCP2_ERR_CRYPTO ? ngtcp2_conn_get_tls_alert(c->nc) : 0;
  if (c->fail_set) {
    kind = c->fail_kind;
    snprintf(error, sizeof(error), "%s", c->fail_error);
    if (c->fail_alert != 0)
      alert = c->fail_alert;
  } else if (c->check.error[0] != '\0') {
    kind = QUIC_CLOSE_AUTH; /* our verify callback refused the peer */
    snprintf(error, sizeof(error), "%s", c->check.error);
  } else if (alert == QUIC_ALERT_NO_APP_PROTOCOL) {
    kind = QUIC_CLOSE_ALPN;
    snprintf(error, sizeof(error), "no application protocol in common");
  } else if (rv == NGTCP2_ERR_CRYPTO) {
    kind = quic__cert_alert(alert) ? QUIC_CLOSE_AUTH : QUIC_CLOSE_TRANSPORT;
    snprintf(error, sizeof(error), "TLS handshake failed (alert %s)",
             tls_alert_name(alert));
  } else {
    snprintf(error, sizeof(error), "transport error: %s", ngtcp2_strerror(rv));
  }
  if (alert != 0)
    ngtcp2_ccerr_set_tls_alert(&cc, alert, NULL, 0);
  else
    ngtcp2_ccerr_set_liberr(&cc, rv, NULL, 0);
  quic__conn_close_send(c, &cc, kind, false, cc.error_code, error);
}

/* Sends CONNECTION_CLOSE, tells the application, then lingers in the
 * closing state for three PTOs to repeat the close to a chatty peer. */
static void quic__conn_close_send(quic_conn_t *c, const ngtcp2_ccerr *cc,
                                  enum quic_close_kind kind, bool app,
                                  uint64_t code, const char *error) {
  uint8_t buf[QUIC_CLOSE_PKT_MAX];
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_path_storage_zero(&ps);
  c->depth++;
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
      c->nc, &ps.path, &pi, buf, sizeof(buf), cc, quic__now());
  c->depth--;
  quic_sock_t *sock = n > 0 ? quic__sock_for(c->ep, &ps.path.local) : NULL;
  if (sock != NULL && (c->close_pkt = malloc((size_t)n)) != NULL) {
    memcpy(c->close_pkt, buf, (size_t)n);
    c->close_len = (size_t)n;
    memcpy(&c->close_dst, ps.path.remote.addr, ps.path.remote.addrlen);
    c->close_dst_len = ps.path.remote.addrlen;
    c->close_sock = sock;
    quic__tx_one(c->ep, sock, ps.path.remote.addr, ps.path.remote.addrlen, buf,
                 (size_t)n);
  }
  bool linger = c->close_pkt != NULL;
  c->state = linger ? QC_CLOSING : c->state;
  quic__conn_report(c, kind, false, app, code, error);
  if (!linger) {
    quic__conn_destroy(c);
    return;
  }
  uint64_t pto_ms = ngtcp2_conn_get_pto(c->nc) / NGTCP2_MILLISECONDS;
  uv_timer_start(&c->timer, quic__conn_on_timer, 3 * pto_ms + 1, 0);
}

static void quic__conn_report(quic_conn_t *c, enum quic_close_kind kind,
                              bool remote, bool app, uint64_t code,
                              const char *error) {
  bool tell = c->visible;
  c->visible = false;
  if (c->state == QC_HANDSHAKE || c->state == QC_OPEN)
    c->state = QC_CLOSING; /* no more calls into this connection */
  if (!tell) {
    /* An acceptor-side handshake that failed. Refused peers are worth a
     * line; junk that never got far (garbage Initials) is not. */
    if (kind == QUIC_CLOSE_AUTH || kind == QUIC_CLOSE_ALPN)
      LOG_INFO("net", "refused incoming connection: %s", error);
    else
      LOG_DEBUG("net", "incoming handshake ended: %s", error);
    return;
  }
  LOG_INFO("net", "connection %s %.16s.. closed: %s", c->dialer ? "to" : "from",
           c->peer_id, error);
  quic_close_info_t info = {
      .kind = kind, .app = app, .remote = remote, .code = code, .error = error};
  if (c->h.on_closed != NULL)
    c->h.on_closed(c, &info, c->user);
}

static void quic__conn_freed(uv_handle_t *h) {
  quic_conn_t *c = h->data;
  quic_endpoint_t *ep = c->ep;
  free(c);
  quic__ep_handle_closed(ep);
}

static void quic__unlink(quic_conn_t *c) {
  quic_endpoint_t *ep = c->ep;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    ep->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
  ep->nconns--;
  if (c->dirty) {
    quic_conn_t **pp = &ep->dirty_head, *last = NULL;
    while (*pp != NULL && *pp != c) {
      last = *pp;
      pp = &(*pp)->dirty_next;
    }
    if (*pp == c) {
      *pp = c->dirty_next;
      if (ep->dirty_tail == c)
        ep->dirty_tail = last;
    }
    c->dirty = false;
  }
}

static void quic__unmap_cids(quic_conn_t *c) {
  qmap_t *m = &c->ep->cids;
  if (c->has_odcid)
    qmap_del(m, c->odcid.data, c->odcid.datalen, c);
  qmap_del(m, c->scid.data, c->scid.datalen, c);
  if (c->nc == NULL)
    return;
  size_t n = ngtcp2_conn_get_scid(c->nc, NULL);
  ngtcp2_cid *ids = calloc(n > 0 ? n : 1, sizeof(*ids));
  if (ids == NULL)
    abort(); /* a stale map entry would point at freed memory */
  n = ngtcp2_conn_get_scid(c->nc, ids);
  for (size_t i = 0; i < n; i++)
    qmap_del(m, ids[i].data, ids[i].datalen, c);
  free(ids);
}

/* Frees everything but the struct itself, which goes with the timer
 * handle's close callback. Never called from inside ngtcp2. */
static void quic__conn_destroy(quic_conn_t *c) {
  if (c->state == QC_DEAD)
    return;
  c->state = QC_DEAD;
  quic_endpoint_t *ep = c->ep;
  quic__unmap_cids(c);
  quic__unlink(c);
  if (c->nc != NULL)
    ngtcp2_conn_del(c->nc);
  c->nc = NULL;
  if (c->ssl != NULL)
    wolfSSL_free(c->ssl);
  c->ssl = NULL;
  quic__streams_free_all(c);
  qmap_free(&c->streams);
  quic__dgrams_free(c);
  free(c->close_pkt);
  c->close_pkt = NULL;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, quic__conn_freed);
  /* A socket kept only for accepted connections may now be unused. */
  if (ep->old_sock != NULL && !ep->freeing) {
    bool used = false;
    for (quic_conn_t *o = ep->conns; o != NULL && !used; o = o->next)
      used = quic__conn_uses_sock(o, ep->old_sock);
    if (!used)
      quic__sock_close(ep->old_sock);
  }
}

void quic__conn_abort(quic_conn_t *c, const char *why) {
  if (c->state == QC_HANDSHAKE || c->state == QC_OPEN) {
    ngtcp2_ccerr cc;
    ngtcp2_ccerr_default(&cc);
    ngtcp2_ccerr_set_application_error(&cc, 0, (const uint8_t *)why,
                                       strlen(why));
    quic__conn_close_send(c, &cc, QUIC_CLOSE_ENDPOINT, true, 0, why);
  }
  quic__conn_destroy(c);
}

/* ---- migration ---- */

bool quic__conn_uses_sock(const quic_conn_t *c, const quic_sock_t *s) {
  if (c->state == QC_CLOSING)
    return c->close_sock == s;
  if (c->nc == NULL)
    return false;
  const ngtcp2_path *p = ngtcp2_conn_get_path(c->nc);
  return p->local.addrlen == s->local_len &&
         memcmp(p->local.addr, &s->local, s->local_len) == 0;
}

/* Moves a dialed connection to socket `to`. With a spare connection ID
 * ngtcp2 migrates properly (new CID, path validation); without one it is
 * what a NAT rebinding looks like to the peer. */
void quic__conn_migrate(quic_conn_t *c, quic_sock_t *to) {
  if (!c->dialer || c->state != QC_OPEN)
    return;
  const ngtcp2_path *cur = ngtcp2_conn_get_path(c->nc);
  struct sockaddr_storage dst;
  socklen_t dst_len;
  if (quic__addr_for_sock(to, (const struct sockaddr *)cur->remote.addr, &dst,
                          &dst_len) != 0)
    return;
  ngtcp2_path path = {
      .local = {(ngtcp2_sockaddr *)&to->local, to->local_len},
      .remote = {(ngtcp2_sockaddr *)&dst, dst_len},
  };
  int rv = ngtcp2_conn_initiate_immediate_migration(c->nc, &path, quic__now());
  if (rv != 0) {
    LOG_DEBUG("net", "migration: %s; rebinding in place", ngtcp2_strerror(rv));
    ngtcp2_conn_set_local_addr(c->nc, &path.local);
  }
  quic__ep_mark_dirty(c->ep, c);
}
