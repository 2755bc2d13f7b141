/* The QUIC endpoint: lifecycle, ALPN registry, dialing, the per-loop
 * flush of pending writes, and the small public accessors. */
#include "net/quic_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/log.h"
#include "core/util.h"
#include "net/ticket.h"

static void quic__on_idle(uv_idle_t *h);
static void quic__idle_closed(uv_handle_t *h);

uint64_t quic__now(void) {
  return time_mono_ns();
}

const char *quic_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
  case QUIC_ERR_AGAIN:
    return "stream write queue full";
  case QUIC_ERR_STREAM_LIMIT:
    return "peer's stream limit reached";
  case QUIC_ERR_NOT_FOUND:
    return "no such stream or protocol";
  case QUIC_ERR_CLOSED:
    return "stream or connection closed";
  case QUIC_ERR_TOO_BIG:
    return "datagram too large for the path";
  case QUIC_ERR_NO_DATAGRAM:
    return "peer does not accept datagrams";
  case QUIC_ERR_STATE:
    return "connection not established";
  case QUIC_ERR_EXISTS:
    return "protocol already registered";
  case QUIC_ERR_AF:
    return "address family not usable on this socket";
  case QUIC_ERR_TLS:
    return "TLS setup failed";
  case QUIC_ERR_LIMIT:
    return "too many connections or protocols";
  default:
    return err < 0 ? strerror(-err) : "unknown";
  }
}

/* ---- options ---- */

void quic_conn_opts_default(quic_conn_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->idle_timeout_ms = 30000;
  o->handshake_timeout_ms = 10000;
  o->max_datagram_frame = 65535;
  o->stream_window = 1 << 20;
  o->conn_window = 4 << 20;
  o->max_streams_bidi = 100;
  o->max_streams_uni = 100;
  o->stream_high_water = 4 << 20;
  o->stream_low_water = 1 << 20;
  o->datagram_queue = 64;
  o->cc_algo = QUIC_CC_BBR;
}

void quic_endpoint_opts_default(quic_endpoint_opts_t *o) {
  memset(o, 0, sizeof(*o));
  quic_conn_opts_default(&o->conn);
  o->batch = QUIC_BATCH_AUTO;
  o->max_udp_payload = 1452;
  o->max_connections = 256;
  o->socket_buffer = 4 << 20;
  o->count_lost_packets = true;
}

/* Zero means "default" in every field. */
static void quic__conn_opts_fill(quic_conn_opts_t *o) {
  quic_conn_opts_t d;
  quic_conn_opts_default(&d);
#define QUIC__FILL(f)                                                          \
  if (o->f == 0)                                                               \
  o->f = d.f
  QUIC__FILL(idle_timeout_ms);
  QUIC__FILL(handshake_timeout_ms);
  QUIC__FILL(max_datagram_frame);
  QUIC__FILL(stream_window);
  QUIC__FILL(conn_window);
  QUIC__FILL(max_streams_bidi);
  QUIC__FILL(max_streams_uni);
  QUIC__FILL(stream_high_water);
  QUIC__FILL(datagram_queue);
  QUIC__FILL(cc_algo);
#undef QUIC__FILL
  if (o->stream_low_water > o->stream_high_water)
    o->stream_low_water = o->stream_high_water;
  if (o->ack_hold_ms > QUIC_ACK_HOLD_MAX_MS)
    o->ack_hold_ms = QUIC_ACK_HOLD_MAX_MS;
}

/* "ip:port" / "[ip6]:port"; port 0 picks any free port. */
static int quic__parse_local(const char *text, struct sockaddr_storage *out) {
  if (text == NULL)
    return -1;
  return addr_parse_bind(text, strlen(text), out);
}

/* ---- endpoint lifecycle ---- */

static void quic__ep_release(quic_endpoint_t *ep) {
  qmap_free(&ep->cids);
  quic__tx_free(ep);
  free(ep->rxbuf);
  if (ep->client_ctx != NULL)
    wolfSSL_CTX_free(ep->client_ctx);
  if (ep->server_ctx != NULL)
    wolfSSL_CTX_free(ep->server_ctx);
  tls_cred_free(&ep->cred);
  sodium_memzero(ep->reset_secret, sizeof(ep->reset_secret));
  free(ep);
  wolfSSL_Cleanup();
}

void quic__ep_handle_closed(quic_endpoint_t *ep) {
  if (--ep->handles == 0 && ep->freeing)
    quic__ep_release(ep);
}

int quic_endpoint_new(uv_loop_t *loop, const identity_t *id,
                      const char *listen_addr, const quic_endpoint_opts_t *opts,
                      quic_endpoint_t **out, char *err, size_t err_size) {
  char dummy[8];
  if (err == NULL) {
    err = dummy;
    err_size = sizeof(dummy);
  }
  struct sockaddr_storage addr;
  if (loop == NULL || id == NULL || out == NULL ||
      quic__parse_local(listen_addr, &addr) != 0) {
    snprintf(err, err_size, "invalid listen address \"%s\"",
             listen_addr != NULL ? listen_addr : "(null)");
    return QUIC_ERR_INVAL;
  }
  if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
    snprintf(err, err_size, "wolfSSL_Init failed");
    return QUIC_ERR_TLS;
  }
  quic_endpoint_t *ep = calloc(1, sizeof(*ep));
  if (ep == NULL) {
    wolfSSL_Cleanup();
    return QUIC_ERR_NOMEM;
  }
  ep->loop = loop;
  memcpy(ep->public_key, id->public_key, 32);
  hex_encode(ep->peer_id, id->public_key, 32);
  if (opts != NULL)
    ep->opts = *opts;
  else
    quic_endpoint_opts_default(&ep->opts);
  quic__conn_opts_fill(&ep->opts.conn);
  if (ep->opts.max_udp_payload < 1200 || ep->opts.max_udp_payload > 65000)
    ep->opts.max_udp_payload = 1452;
  if (ep->opts.max_connections == 0)
    ep->opts.max_connections = 256;
  if (ep->opts.socket_buffer == 0)
    ep->opts.socket_buffer = 4 << 20;
  randombytes_buf(ep->reset_secret, sizeof(ep->reset_secret));

  int rc = QUIC_ERR_TLS;
  if (tls_cred_make(&ep->cred, id, err, err_size) != 0 ||
      (ep->client_ctx = tls_ctx_new(&ep->cred, false, err, err_size)) == NULL ||
      (ep->server_ctx = tls_ctx_new(&ep->cred, true, err, err_size)) == NULL)
    goto fail;
  rc = QUIC_ERR_NOMEM;
  ep->rxbuf = malloc((size_t)QUIC_RX_BATCH * QUIC_RX_BUF);
  if (ep->rxbuf == NULL || qmap_init(&ep->cids) != 0 || quic__tx_init(ep) != 0)
    goto fail;
  rc = quic__sock_open(ep, &addr, &ep->sock);
  if (rc != 0) {
    snprintf(err, err_size, "cannot bind %s: %s", listen_addr,
             quic_strerror(rc));
    goto fail;
  }
  uv_idle_init(loop, &ep->idle);
  ep->idle.data = ep;
  ep->handles++;

  char where[64] = "?";
  addr_format((struct sockaddr *)&ep->sock->local, where, sizeof(where));
  LOG_INFO("net", "QUIC endpoint on %s (GSO %s, GRO %s)", where,
           ep->sock->gso ? "on" : "off", ep->sock->gro ? "on" : "off");
  *out = ep;
  return 0;

fail:
  LOG_ERROR("net", "QUIC endpoint: %s", err);
  quic__ep_release(ep);
  return rc;
}

void quic_endpoint_free(quic_endpoint_t *ep) {
  if (ep == NULL || ep->freeing)
    return;
  ep->freeing = true;
  while (ep->conns != NULL)
    quic__conn_abort(ep->conns, "endpoint shutting down");
  uv_idle_stop(&ep->idle);
  uv_close((uv_handle_t *)&ep->idle, quic__idle_closed);
  quic__sock_close(ep->old_sock);
  quic__sock_close(ep->sock);
}

static void quic__idle_closed(uv_handle_t *h) {
  quic__ep_handle_closed(h->data);
}

/* ---- ALPN registry ---- */

static bool quic__alpn_valid(const char *alpn) {
  size_t n = alpn != NULL ? strlen(alpn) : 0;
  if (n == 0 || n > QUIC_ALPN_MAX_LEN)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (alpn[i] <= 0x20 || alpn[i] >= 0x7f || alpn[i] == ',')
      return false;
  }
  return true;
}

const quic_alpn_reg_t *quic__alpn_find(const quic_endpoint_t *ep,
                                       const char *alpn) {
  for (size_t i = 0; i < ep->nalpns; i++) {
    if (strcmp(ep->alpns[i].name, alpn) == 0)
      return &ep->alpns[i];
  }
  return NULL;
}

int quic_endpoint_register_alpn(quic_endpoint_t *ep, const char *alpn,
                                const quic_handler_t *h,
                                const quic_conn_opts_t *opts, void *user) {
  if (ep == NULL || h == NULL || !quic__alpn_valid(alpn))
    return QUIC_ERR_INVAL;
  if (quic__alpn_find(ep, alpn) != NULL)
    return QUIC_ERR_EXISTS;
  if (ep->nalpns == QUIC_ALPN_MAX_COUNT)
    return QUIC_ERR_LIMIT;
  quic_alpn_reg_t *r = &ep->alpns[ep->nalpns++];
  snprintf(r->name, sizeof(r->name), "%s", alpn);
  r->h = *h;
  r->user = user;
  r->opts = opts != NULL ? *opts : ep->opts.conn;
  quic__conn_opts_fill(&r->opts);
  /* wolfSSL's server-side list: "a,b,c". */
  size_t len = strlen(ep->alpn_list);
  snprintf(ep->alpn_list + len, sizeof(ep->alpn_list) - len, "%s%s",
           len > 0 ? "," : "", alpn);
  return 0;
}

/* ---- addresses, rebinding, stats ---- */

int quic_endpoint_local_addr(const quic_endpoint_t *ep,
                             struct sockaddr_storage *out) {
  if (ep == NULL || ep->sock == NULL || out == NULL)
    return QUIC_ERR_INVAL;
  *out = ep->sock->local;
  return 0;
}

int quic_endpoint_rebind(quic_endpoint_t *ep, const char *local_addr) {
  struct sockaddr_storage addr;
  quic_sock_t *s;
  if (ep == NULL || ep->freeing || quic__parse_local(local_addr, &addr) != 0)
    return QUIC_ERR_INVAL;
  int rc = quic__sock_open(ep, &addr, &s);
  if (rc != 0)
    return rc;
  /* Only one retired socket is kept: connections still on an older one
   * lose their path (they time out or migrate again). */
  quic__sock_close(ep->old_sock);
  quic_sock_t *old = ep->sock;
  old->retired = true;
  ep->old_sock = old;
  ep->sock = s;

  bool old_used = false;
  for (quic_conn_t *c = ep->conns; c != NULL; c = c->next) {
    quic__conn_migrate(c, s);
    old_used = old_used || quic__conn_uses_sock(c, old);
  }
  if (!old_used)
    quic__sock_close(old);
  char where[64] = "?";
  addr_format((struct sockaddr *)&s->local, where, sizeof(where));
  LOG_INFO("net", "QUIC endpoint rebound to %s", where);
  return 0;
}

void quic_endpoint_stats(const quic_endpoint_t *ep, quic_endpoint_stats_t *s) {
  *s = ep->stats;
  s->connections = ep->nconns;
  s->gso =
      ep->sock != NULL && ep->sock->gso &&
      (ep->opts.batch == QUIC_BATCH_AUTO || ep->opts.batch == QUIC_BATCH_GSO);
  s->gro = ep->sock != NULL && ep->sock->gro;
}

/* ---- pending work: flushed once per loop iteration ---- */

void quic__ep_mark_dirty(quic_endpoint_t *ep, quic_conn_t *c) {
  if (c->dirty || c->state == QC_DEAD)
    return;
  c->dirty = true;
  c->dirty_next = NULL;
  if (ep->dirty_tail != NULL)
    ep->dirty_tail->dirty_next = c;
  else
    ep->dirty_head = c;
  ep->dirty_tail = c;
  /* An active idle handle also makes the loop poll without blocking. */
  if (!ep->idle_active && !ep->freeing) {
    ep->idle_active = true;
    uv_idle_start(&ep->idle, quic__on_idle);
  }
}

void quic__ep_flush(quic_endpoint_t *ep) {
  /* Connections marked during this pass wait for the next one, so a
   * connection that keeps re-marking itself cannot spin here. */
  quic_conn_t *stop = ep->dirty_tail;
  while (ep->dirty_head != NULL && !ep->blocked) {
    quic_conn_t *c = ep->dirty_head;
    ep->dirty_head = c->dirty_next;
    if (ep->dirty_head == NULL)
      ep->dirty_tail = NULL;
    c->dirty = false;
    c->dirty_next = NULL;
    quic__conn_flush(c);
    if (c == stop)
      break;
  }
  if (ep->dirty_head == NULL && ep->idle_active) {
    ep->idle_active = false;
    uv_idle_stop(&ep->idle);
  }
}

static void quic__on_idle(uv_idle_t *h) {
  quic__ep_flush(h->data);
}

/* ---- dialing ---- */

int quic_dial(quic_endpoint_t *ep, const uint8_t peer[32],
              const struct sockaddr *addr, const char *alpn,
              const quic_conn_opts_t *opts, const quic_handler_t *h, void *user,
              quic_conn_t **out) {
  if (ep == NULL || ep->freeing || peer == NULL || addr == NULL ||
      out == NULL || !quic__alpn_valid(alpn))
    return QUIC_ERR_INVAL;
  const quic_alpn_reg_t *reg = quic__alpn_find(ep, alpn);
  if (h == NULL && reg == NULL)
    return QUIC_ERR_NOT_FOUND;
  if (h == NULL) {
    h = &reg->h;
    if (user == NULL)
      user = reg->user;
  }
  quic_conn_opts_t o = opts != NULL  ? *opts
                       : reg != NULL ? reg->opts
                                     : ep->opts.conn;
  quic__conn_opts_fill(&o);
  return quic__conn_dial(ep, peer, addr, alpn, &o, h, user, out);
}

/* ---- connection accessors ---- */

const uint8_t *quic_conn_peer(const quic_conn_t *c) {
  return c->peer;
}

const char *quic_conn_peer_id(const quic_conn_t *c) {
  return c->peer_id;
}

const char *quic_conn_alpn(const quic_conn_t *c) {
  return c->alpn;
}

bool quic_conn_is_dialer(const quic_conn_t *c) {
  return c->dialer;
}

bool quic_conn_is_connected(const quic_conn_t *c) {
  return c->state == QC_OPEN && !c->close_req;
}

int quic_conn_remote_addr(const quic_conn_t *c, struct sockaddr_storage *out) {
  if (c == NULL || c->nc == NULL || out == NULL)
    return QUIC_ERR_INVAL;
  const ngtcp2_path *p = ngtcp2_conn_get_path(c->nc);
  quic__addr_unmap((const struct sockaddr *)p->remote.addr, out);
  return 0;
}

void quic_conn_set_user(quic_conn_t *c, void *user) {
  c->user = user;
}

void *quic_conn_user(const quic_conn_t *c) {
  return c->user;
}

void quic_conn_set_ack_hold(quic_conn_t *c, uint32_t ms) {
  c->opts.ack_hold_ms = ms < QUIC_ACK_HOLD_MAX_MS ? ms : QUIC_ACK_HOLD_MAX_MS;
  if (ms == 0) {
    c->ack_owed_since = 0;
    c->ack_owed_pkts = 0;
  }
}

quic_endpoint_t *quic_conn_endpoint(const quic_conn_t *c) {
  return c->ep;
}

void quic_conn_set_keep_alive(quic_conn_t *c, uint32_t ms) {
  c->opts.keep_alive_ms = ms;
  if (c->state == QC_OPEN) {
    ngtcp2_conn_set_keep_alive_timeout(
        c->nc, ms > 0 ? (uint64_t)ms * NGTCP2_MILLISECONDS : UINT64_MAX);
    quic__ep_mark_dirty(c->ep, c); /* re-arm the timer */
  }
}

int quic_conn_stats(const quic_conn_t *c, quic_conn_stats_t *s) {
  if (c == NULL || s == NULL || c->nc == NULL)
    return QUIC_ERR_INVAL;
  ngtcp2_conn_info ci;
  ngtcp2_conn_get_conn_info(c->nc, &ci);
  memset(s, 0, sizeof(*s));
  s->smoothed_rtt_us = ci.smoothed_rtt / NGTCP2_MICROSECONDS;
  s->rtt_var_us = ci.rttvar / NGTCP2_MICROSECONDS;
  s->min_rtt_us =
      ci.min_rtt == UINT64_MAX ? 0 : ci.min_rtt / NGTCP2_MICROSECONDS;
  s->latest_rtt_us = ci.latest_rtt / NGTCP2_MICROSECONDS;
  s->cwnd = ci.cwnd;
  s->ssthresh = ci.ssthresh;
  s->bytes_in_flight = ci.bytes_in_flight;
  s->packets_sent = c->pkts_sent;
  s->packets_received = c->pkts_recv;
  s->bytes_sent = c->bytes_sent;
  s->bytes_received = c->bytes_recv;
  s->packets_lost = c->pkts_lost;
  s->stream_bytes_acked = c->stream_acked;
  s->datagrams_sent = c->dgram_sent;
  s->datagrams_received = c->dgram_recv;
  s->datagrams_acked = c->dgram_acked;
  s->datagrams_lost = c->dgram_lost;
  s->datagrams_dropped = c->dgram_dropped;
  s->max_datagram = quic_datagram_max_size(c);
  /* The last full window's rate, unless acks stopped long ago. */
  uint64_t since = c->rate_start ? quic__now() - c->rate_start : 0;
  s->delivery_rate = since > NGTCP2_SECONDS
                         ? c->rate_bytes * NGTCP2_SECONDS / since
                         : c->delivery_rate;
  return 0;
}

static int quic__close_request(quic_conn_t *c, uint64_t app_code,
                               const char *reason, bool wait) {
  if (c == NULL)
    return QUIC_ERR_INVAL;
  if ((c->state != QC_HANDSHAKE && c->state != QC_OPEN) || c->close_req)
    return QUIC_ERR_CLOSED;
  c->close_code = app_code;
  snprintf(c->close_reason, sizeof(c->close_reason), "%s",
           reason != NULL ? reason : "");
  if (wait && c->state == QC_OPEN)
    c->shutdown_req = true;
  else
    c->close_req = true;
  quic__ep_mark_dirty(c->ep, c);
  return 0;
}

int quic_conn_close(quic_conn_t *c, uint64_t app_code, const char *reason) {
  return quic__close_request(c, app_code, reason, false);
}

int quic_conn_shutdown(quic_conn_t *c, uint64_t app_code, const char *reason) {
  return quic__close_request(c, app_code, reason, true);
}
