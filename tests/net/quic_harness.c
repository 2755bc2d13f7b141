/* Test helpers for the QUIC endpoint (see quic_harness.h). */
#include "quic_harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "core/util.h"

void h_identity(identity_t *id) {
  memset(id, 0, sizeof(*id));
  crypto_sign_keypair(id->public_key, id->secret_key);
  hex_encode(id->peer_id, id->public_key, 32);
}

quic_endpoint_t *h_endpoint(uv_loop_t *loop, const identity_t *id,
                            const char *addr, const quic_endpoint_opts_t *o) {
  quic_endpoint_t *ep = NULL;
  char err[200] = "";
  int rc = quic_endpoint_new(loop, id, addr ? addr : "127.0.0.1:0", o, &ep, err,
                             sizeof(err));
  if (rc != 0)
    fail_msg("quic_endpoint_new: %s (%s)", quic_strerror(rc), err);
  return ep;
}

void h_endpoint_addr(quic_endpoint_t *ep, struct sockaddr_storage *out) {
  assert_int_equal(quic_endpoint_local_addr(ep, out), 0);
  if (out->ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    if (a->sin_addr.s_addr == htonl(INADDR_ANY))
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
      a->sin6_addr = in6addr_loopback;
  }
}

static void h_tick(uv_timer_t *t) {
  (void)t; /* only keeps uv_run(ONCE) from blocking for long */
}

bool h_run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg,
                 unsigned timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, h_tick, 5, 5);
  uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  bool ok = false;
  while (!(ok = cond != NULL && cond(arg)) && uv_hrtime() < deadline)
    uv_run(loop, UV_RUN_ONCE);
  uv_timer_stop(&tick);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT); /* let the tick handle close */
  return ok;
}

void h_run_for(uv_loop_t *loop, unsigned ms) {
  h_run_until(loop, NULL, NULL, ms);
}

void h_teardown(uv_loop_t *loop, quic_endpoint_t *a, quic_endpoint_t *b) {
  quic_endpoint_free(a);
  quic_endpoint_free(b);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- recorder ---- */

void h_rec_init(rec_t *r) {
  memset(r, 0, sizeof(*r));
  r->last_stream = -1;
  r->send_sid = -1;
  crypto_generichash_init(&r->hash, NULL, 0, 32);
}

static void h_on_connected(quic_conn_t *c, void *user) {
  rec_t *r = user;
  r->conn = c;
  r->connected++;
}

static void h_on_closed(quic_conn_t *c, const quic_close_info_t *info,
                        void *user) {
  rec_t *r = user;
  (void)c;
  r->closed++;
  r->close = *info;
  snprintf(r->close_error, sizeof(r->close_error), "%s", info->error);
  r->close.error = r->close_error;
  r->conn = NULL;
}

static void h_on_stream_open(quic_conn_t *c, int64_t sid, void *user) {
  rec_t *r = user;
  (void)c;
  r->stream_opens++;
  r->last_stream = sid;
}

static void h_on_stream_data(quic_conn_t *c, int64_t sid, const uint8_t *data,
                             size_t len, void *user) {
  rec_t *r = user;
  (void)c;
  r->last_stream = sid;
  r->stream_bytes += len;
  crypto_generichash_update(&r->hash, data, len);
  size_t room = sizeof(r->head) - r->head_len;
  size_t n = len < room ? len : room;
  memcpy(r->head + r->head_len, data, n);
  r->head_len += n;
}

static void h_on_stream_fin(quic_conn_t *c, int64_t sid, void *user) {
  rec_t *r = user;
  r->stream_fins++;
  crypto_generichash_final(&r->hash, r->digest, sizeof(r->digest));
  r->digest_done = true;
  if (r->reply_digest)
    assert_int_equal(quic_stream_write(c, sid, r->digest, 32, true), 0);
}

static void h_on_stream_reset(quic_conn_t *c, int64_t sid, uint64_t code,
                              enum quic_stream_dir dir, void *user) {
  rec_t *r = user;
  (void)c;
  r->stream_resets++;
  r->last_stream = sid;
  r->reset_code = code;
  r->reset_dir = dir;
  if (dir == QUIC_DIR_RECV) {
    r->resets_recv++;
    r->reset_sid_recv = sid;
    r->reset_code_recv = code;
  } else {
    r->resets_send++;
    r->reset_sid_send = sid;
    r->reset_code_send = code;
  }
}

static void h_pump(rec_t *r, quic_conn_t *c) {
  while (r->send_off < r->send_len || !r->send_done) {
    size_t n = r->send_len - r->send_off;
    if (n > r->send_chunk)
      n = r->send_chunk;
    bool fin = r->send_off + n == r->send_len;
    int rc =
        quic_stream_write(c, r->send_sid, r->send_data + r->send_off, n, fin);
    if (rc == QUIC_ERR_AGAIN) {
      r->send_again++;
      return;
    }
    assert_int_equal(rc, 0);
    r->send_off += n;
    if (fin)
      r->send_done = true;
  }
}

static void h_on_stream_writable(quic_conn_t *c, int64_t sid, void *user) {
  rec_t *r = user;
  r->writables++;
  if (sid == r->send_sid && !r->send_done)
    h_pump(r, c);
}

static void h_on_stream_acked(quic_conn_t *c, int64_t sid, void *user) {
  rec_t *r = user;
  (void)c;
  (void)sid;
  r->acked++;
}

static void h_on_datagram(quic_conn_t *c, const uint8_t *data, size_t len,
                          void *user) {
  rec_t *r = user;
  if (r->ndgrams < H_MAX_DGRAMS) {
    r->dgram_len[r->ndgrams] = len;
    memcpy(r->dgram_first[r->ndgrams], data, len < 8 ? len : 8);
    r->ndgrams++;
  }
  if (r->echo_datagrams)
    assert_int_equal(quic_datagram_send(c, data, len), 0);
}

const quic_handler_t h_recorder = {
    .on_connected = h_on_connected,
    .on_closed = h_on_closed,
    .on_stream_open = h_on_stream_open,
    .on_stream_data = h_on_stream_data,
    .on_stream_fin = h_on_stream_fin,
    .on_stream_reset = h_on_stream_reset,
    .on_stream_writable = h_on_stream_writable,
    .on_stream_acked = h_on_stream_acked,
    .on_datagram = h_on_datagram,
};

void h_send_start(rec_t *r, quic_conn_t *c, int64_t sid, const uint8_t *data,
                  size_t len, size_t chunk) {
  r->send_data = data;
  r->send_len = len;
  r->send_off = 0;
  r->send_chunk = chunk;
  r->send_sid = sid;
  r->send_done = false;
  h_pump(r, c);
}

bool h_cond_connected(void *rec) {
  rec_t *r = rec;
  return r->connected > 0 || r->closed > 0;
}

bool h_cond_closed(void *rec) {
  return ((rec_t *)rec)->closed > 0;
}

bool h_cond_digest(void *rec) {
  rec_t *r = rec;
  return r->digest_done || r->closed > 0;
}
