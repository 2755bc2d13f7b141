/* QUIC endpoint tests: two real endpoints on loopback in one process (one
 * libuv loop), plus a forked peer for the vanishing-peer case. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/quic_internal.h" /* white-box: the garbage test aims at CIDs */
#include "quic_harness.h"

#define MiB (1024u * 1024u)

typedef struct world {
  uv_loop_t loop;
  identity_t a_id, b_id;
  quic_endpoint_t *a, *b; /* a dials, b accepts */
  struct sockaddr_storage b_addr;
  rec_t ra, rb, rb_call;
  rec_t ra2; /* a second dialed connection */
} world_t;

static int setup(void **state) {
  world_t *w = calloc(1, sizeof(*w));
  assert_non_null(w);
  assert_int_equal(uv_loop_init(&w->loop), 0);
  h_identity(&w->a_id);
  h_identity(&w->b_id);
  w->a = h_endpoint(&w->loop, &w->a_id, NULL, NULL);
  w->b = h_endpoint(&w->loop, &w->b_id, NULL, NULL);
  h_endpoint_addr(w->b, &w->b_addr);
  h_rec_init(&w->ra);
  h_rec_init(&w->rb);
  h_rec_init(&w->rb_call);
  h_rec_init(&w->ra2);
  assert_int_equal(quic_endpoint_register_alpn(w->b, QUIC_ALPN_DM, &h_recorder,
                                               NULL, &w->rb),
                   0);
  assert_int_equal(quic_endpoint_register_alpn(w->b, QUIC_ALPN_CALL,
                                               &h_recorder, NULL, &w->rb_call),
                   0);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world_t *w = *state;
  h_teardown(&w->loop, w->a, w->b);
  free(w);
  return 0;
}

static bool both_connected(void *arg) {
  world_t *w = arg;
  return (w->ra.connected && w->rb.connected) || w->ra.closed;
}

/* Dials b from a on alpn and waits until both sides are connected. */
static quic_conn_t *connect_ab(world_t *w, const quic_conn_opts_t *opts) {
  quic_conn_t *c = NULL;
  assert_int_equal(quic_dial(w->a, w->b_id.public_key,
                             (struct sockaddr *)&w->b_addr, QUIC_ALPN_DM, opts,
                             &h_recorder, &w->ra, &c),
                   0);
  assert_non_null(c);
  assert_true(h_run_until(&w->loop, both_connected, w, 10000));
  assert_int_equal(w->ra.closed, 0);
  assert_ptr_equal(w->ra.conn, c);
  return c;
}

static void test_handshake_and_alpn(void **state) {
  world_t *w = *state;
  quic_conn_t *c = connect_ab(w, NULL);

  /* Each side knows the other's authenticated key and the ALPN. */
  assert_true(quic_conn_is_dialer(c));
  assert_memory_equal(quic_conn_peer(c), w->b_id.public_key, 32);
  assert_memory_equal(quic_conn_peer(w->rb.conn), w->a_id.public_key, 32);
  assert_string_equal(quic_conn_peer_id(w->rb.conn), w->a_id.peer_id);
  assert_false(quic_conn_is_dialer(w->rb.conn));
  assert_string_equal(quic_conn_alpn(c), QUIC_ALPN_DM);
  assert_string_equal(quic_conn_alpn(w->rb.conn), QUIC_ALPN_DM);
  assert_int_equal(w->rb_call.connected, 0);

  /* White-box: AES-GCM, never wolfSSL 5.7.2's ChaCha20-Poly1305, whose
   * EVP decryption skips the tag check (CVE-2026-5479). */
  const char *cipher = wolfSSL_get_cipher_name(c->ssl);
  assert_non_null(cipher);
  assert_non_null(strstr(cipher, "AES"));
  assert_null(strstr(cipher, "CHACHA"));

  quic_conn_stats_t st;
  assert_int_equal(quic_conn_stats(c, &st), 0);
  assert_true(st.smoothed_rtt_us > 0);
  assert_true(st.cwnd > 0);
  assert_true(st.packets_sent > 0 && st.packets_received > 0);

  /* An idle connection costs (almost) no CPU: timers do not spin. */
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  h_run_for(&w->loop, 500);
  getrusage(RUSAGE_SELF, &r1);
  long cpu_ms = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000 +
                (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1000 +
                (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000 +
                (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1000;
  assert_true(cpu_ms < 250);

  /* The second ALPN reaches its own handler. (Records live in the
   * fixture: teardown reports on_closed for connections still open.) */
  quic_conn_t *c2 = NULL;
  assert_int_equal(quic_dial(w->a, w->b_id.public_key,
                             (struct sockaddr *)&w->b_addr, QUIC_ALPN_CALL,
                             NULL, &h_recorder, &w->ra2, &c2),
                   0);
  assert_true(h_run_until(&w->loop, h_cond_connected, &w->ra2, 10000));
  assert_int_equal(w->ra2.connected, 1);
  assert_true(h_run_until(&w->loop, h_cond_connected, &w->rb_call, 5000));
  assert_int_equal(w->rb_call.connected, 1);
  assert_string_equal(quic_conn_alpn(w->rb_call.conn), QUIC_ALPN_CALL);
  assert_int_equal(w->rb.connected, 1);
}

static void test_wrong_peer_id_fails(void **state) {
  world_t *w = *state;
  identity_t other;
  h_identity(&other);
  quic_conn_t *c = NULL;
  assert_int_equal(quic_dial(w->a, other.public_key,
                             (struct sockaddr *)&w->b_addr, QUIC_ALPN_DM, NULL,
                             &h_recorder, &w->ra, &c),
                   0);
  assert_true(h_run_until(&w->loop, h_cond_closed, &w->ra, 10000));
  assert_int_equal(w->ra.connected, 0);
  assert_int_equal(w->ra.close.kind, QUIC_CLOSE_AUTH);

  char want[128], e8[17], g8[17];
  hex_encode(e8, other.public_key, 8);
  hex_encode(g8, w->b_id.public_key, 8);
  snprintf(want, sizeof(want), "peer key mismatch: expected %s.. got %s..", e8,
           g8);
  assert_string_equal(w->ra.close.error, want);

  /* The acceptor never saw a connection, let alone a stream. */
  h_run_for(&w->loop, 200);
  assert_int_equal(w->rb.connected, 0);
  assert_int_equal(w->rb.stream_opens, 0);
  assert_int_equal(w->rb.stream_bytes, 0);
  quic_endpoint_stats_t es;
  quic_endpoint_stats(w->b, &es);
  assert_int_equal(es.connections, 0);
}

static void test_unregistered_alpn_refused(void **state) {
  world_t *w = *state;
  quic_conn_t *c = NULL;
  assert_int_equal(
      quic_dial(w->a, w->b_id.public_key, (struct sockaddr *)&w->b_addr,
                "iroh-social/unknown/1", NULL, &h_recorder, &w->ra, &c),
      0);
  assert_true(h_run_until(&w->loop, h_cond_closed, &w->ra, 10000));
  assert_int_equal(w->ra.connected, 0);
  assert_int_equal(w->ra.close.kind, QUIC_CLOSE_ALPN);
  assert_non_null(strstr(w->ra.close.error, "no application protocol"));
  assert_int_equal(w->rb.connected + w->rb_call.connected, 0);

  /* Bad ALPN strings never leave the process. */
  assert_int_equal(quic_dial(w->a, w->b_id.public_key,
                             (struct sockaddr *)&w->b_addr, "a,b", NULL,
                             &h_recorder, &w->ra, &c),
                   QUIC_ERR_INVAL);
  assert_int_equal(
      quic_endpoint_register_alpn(w->b, QUIC_ALPN_DM, &h_recorder, NULL, NULL),
      QUIC_ERR_EXISTS);
}

static bool got_dgrams(void *arg) {
  rec_t *r = arg;
  return r->ndgrams >= 100 || r->closed;
}

static void test_datagrams_round_trip(void **state) {
  world_t *w = *state;
  quic_conn_t *c = connect_ab(w, NULL);
  w->rb.echo_datagrams = true;

  size_t max = quic_datagram_max_size(c);
  assert_true(max >= 1000);
  uint8_t big[2000] = {0};
  assert_int_equal(quic_datagram_send(c, big, max + 1), QUIC_ERR_TOO_BIG);

  /* Ten at a time, as a media sender would over a few milliseconds. */
  for (int i = 0; i < 100; i++) {
    uint8_t d[200];
    memset(d, 0xa5, sizeof(d));
    be32_put(d, (uint32_t)i);
    assert_int_equal(quic_datagram_send(c, d, sizeof(d)), 0);
    if (i % 10 == 9)
      h_run_for(&w->loop, 2);
  }
  bool ok = h_run_until(&w->loop, got_dgrams, &w->ra, 5000);
  print_message("datagrams: b got %d, a got back %d\n", w->rb.ndgrams,
                w->ra.ndgrams);
  assert_true(ok);
  /* Loopback with large socket buffers: nothing should be lost, but the
   * transport is unreliable by design, so allow a little. */
  assert_true(w->ra.ndgrams >= 95);
  bool seen[100] = {false};
  for (int i = 0; i < w->ra.ndgrams; i++) {
    assert_int_equal(w->ra.dgram_len[i], 200);
    uint32_t idx = be32_get(w->ra.dgram_first[i]);
    assert_true(idx < 100);
    assert_false(seen[idx]);
    seen[idx] = true;
  }
  quic_conn_stats_t st;
  quic_conn_stats(c, &st);
  assert_int_equal(st.datagrams_sent, 100);
  assert_true(st.datagrams_received >= 95);
  assert_int_equal(st.datagrams_dropped, 0);

  /* A burst beyond the send queue (64 by default) drops the oldest. */
  w->rb.echo_datagrams = false;
  for (int i = 0; i < 100; i++)
    assert_int_equal(quic_datagram_send(c, "x", 1), 0);
  quic_conn_stats(c, &st);
  assert_int_equal(st.datagrams_dropped, 36);
}

/* Deterministic test data: BLAKE2b keystream from a seed. */
static uint8_t *make_data(size_t len, uint8_t seed) {
  uint8_t *d = malloc(len);
  uint8_t key[crypto_stream_chacha20_KEYBYTES] = {seed};
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
  assert_non_null(d);
  crypto_stream_chacha20(d, len, nonce, key);
  return d;
}

/* Sends len bytes a -> b on a new bidi stream; b answers with the BLAKE2b
 * digest of what it got; checks both digests. */
static void bulk_transfer(world_t *w, quic_conn_t *c, size_t len,
                          unsigned timeout_ms) {
  uint8_t *data = make_data(len, 7);
  uint8_t want[32];
  crypto_generichash(want, 32, data, len, NULL, 0);
  w->rb.reply_digest = true;

  int64_t sid;
  assert_int_equal(quic_stream_open_bidi(c, &sid), 0);
  assert_true(quic_stream_is_local(c, sid));
  assert_false(quic_stream_is_uni(sid));
  h_send_start(&w->ra, c, sid, data, len, 256 * 1024);
  assert_true(h_run_until(&w->loop, h_cond_digest, &w->ra, timeout_ms));
  assert_int_equal(w->ra.closed, 0);
  assert_true(w->rb.digest_done);
  assert_int_equal(w->rb.stream_bytes, len);
  assert_memory_equal(w->rb.digest, want, 32); /* what b hashed */
  assert_int_equal(w->ra.head_len, 32);
  assert_memory_equal(w->ra.head, want, 32); /* what b said */
  free(data);
}

static void test_stream_10mib(void **state) {
  world_t *w = *state;
  quic_conn_opts_t o;
  quic_conn_opts_default(&o);
  o.stream_high_water = 1 * MiB; /* make back-pressure certain */
  o.stream_low_water = 256 * 1024;
  quic_conn_t *c = connect_ab(w, &o);

  uint64_t t0 = uv_hrtime();
  bulk_transfer(w, c, 10 * MiB, 60000);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  assert_true(w->ra.send_again > 0);
  assert_true(w->ra.writables > 0);

  quic_conn_stats_t st;
  assert_int_equal(quic_conn_stats(c, &st), 0);
  assert_true(st.stream_bytes_acked >= 10 * MiB);
  assert_true(st.delivery_rate > 0);
  assert_true(st.smoothed_rtt_us > 0);
  print_message(
      "10 MiB in %.2f s (%.0f Mbit/s), srtt %llu us, cwnd %llu, "
      "lost %llu of %llu packets\n",
      secs, 10 * 8 * 1.048576 / secs, (unsigned long long)st.smoothed_rtt_us,
      (unsigned long long)st.cwnd, (unsigned long long)st.packets_lost,
      (unsigned long long)st.packets_sent);
}

static bool bytes_seen(void *arg) {
  rec_t *r = arg;
  return r->stream_bytes > 0 || r->closed;
}

static bool resets_both(void *arg) {
  rec_t *r = arg;
  return (r->resets_recv > 0 && r->resets_send > 0) || r->closed;
}

static bool reset_send_seen(void *arg) {
  rec_t *r = arg;
  return r->resets_send > 0 || r->closed;
}

static void test_stream_reset_both_ways(void **state) {
  world_t *w = *state;
  quic_conn_t *c = connect_ab(w, NULL);

  /* a resets a bidi stream both ways: b hears RESET_STREAM (its receive
   * side) and STOP_SENDING (its send side), both with a's code. */
  int64_t sid;
  assert_int_equal(quic_stream_open_bidi(c, &sid), 0);
  assert_int_equal(quic_stream_write(c, sid, "hello", 5, false), 0);
  assert_true(h_run_until(&w->loop, bytes_seen, &w->rb, 5000));
  assert_int_equal(quic_stream_reset(c, sid, 42), 0);
  assert_true(h_run_until(&w->loop, resets_both, &w->rb, 5000));
  assert_int_equal(w->rb.reset_sid_recv, sid);
  assert_int_equal(w->rb.reset_code_recv, 42);
  assert_int_equal(w->rb.reset_sid_send, sid);
  assert_int_equal(w->rb.reset_code_send, 42);
  int rc = quic_stream_write(c, sid, "x", 1, false);
  assert_true(rc == QUIC_ERR_CLOSED || rc == QUIC_ERR_NOT_FOUND);
  assert_int_equal(w->ra.resets_recv + w->ra.resets_send, 0);

  /* b opens a uni stream; a asks it to stop (STOP_SENDING only): b hears
   * it as a reset of its sending side. */
  quic_conn_t *bc = w->rb.conn;
  int64_t usid;
  w->rb.resets_send = 0;
  assert_int_equal(quic_stream_open_uni(bc, &usid), 0);
  assert_true(quic_stream_is_uni(usid));
  assert_int_equal(quic_stream_write(bc, usid, "0123456789", 10, false), 0);
  w->ra.stream_bytes = 0;
  assert_true(h_run_until(&w->loop, bytes_seen, &w->ra, 5000));
  assert_int_equal(w->ra.last_stream, usid);
  assert_int_equal(w->ra.stream_opens, 1);
  assert_int_equal(quic_stream_write(c, usid, "no", 2, false),
                   QUIC_ERR_CLOSED); /* receive-only for a */
  assert_int_equal(quic_stream_shutdown(c, usid, QUIC_DIR_RECV, 7), 0);
  assert_true(h_run_until(&w->loop, reset_send_seen, &w->rb, 5000));
  assert_int_equal(w->rb.reset_sid_send, usid);
  assert_int_equal(w->rb.reset_code_send, 7);
  rc = quic_stream_write(bc, usid, "more", 4, false);
  assert_true(rc == QUIC_ERR_CLOSED || rc == QUIC_ERR_NOT_FOUND);
  assert_int_equal(w->ra.closed + w->rb.closed, 0);
}

static bool both_closed(void *arg) {
  world_t *w = arg;
  return w->ra.closed && w->rb.closed;
}

static void test_close_with_code(void **state) {
  world_t *w = *state;
  quic_conn_t *c = connect_ab(w, NULL);
  assert_int_equal(quic_conn_close(c, 7, "bye"), 0);
  assert_int_equal(quic_conn_close(c, 7, "again"), QUIC_ERR_CLOSED);
  assert_true(h_run_until(&w->loop, both_closed, w, 5000));
  assert_int_equal(w->ra.close.kind, QUIC_CLOSE_LOCAL);
  assert_int_equal(w->rb.close.kind, QUIC_CLOSE_REMOTE);
  assert_true(w->rb.close.app && w->rb.close.remote);
  assert_int_equal(w->rb.close.code, 7);
  assert_non_null(strstr(w->rb.close.error, "bye"));
}

/* quic_conn_shutdown delivers what was queued before closing. */
static void test_shutdown_flushes(void **state) {
  world_t *w = *state;
  quic_conn_t *c = connect_ab(w, NULL);
  uint8_t *data = make_data(1 * MiB, 3);
  int64_t sid;
  assert_int_equal(quic_stream_open_uni(c, &sid), 0);
  assert_int_equal(quic_stream_write(c, sid, data, 1 * MiB, true), 0);
  assert_int_equal(quic_conn_shutdown(c, 9, "done"), 0);
  assert_int_equal(quic_stream_open_bidi(c, &sid), QUIC_ERR_CLOSED);
  assert_true(h_run_until(&w->loop, both_closed, w, 20000));
  assert_int_equal(w->rb.stream_bytes, 1 * MiB);
  assert_int_equal(w->rb.stream_fins, 1);
  assert_int_equal(w->rb.close.code, 9);
  assert_int_equal(w->ra.acked, 1);
  free(data);
}

/* ---- a peer that vanishes: a child process killed with SIGKILL ---- */

static void child_peer(int fd, const identity_t *id) {
  uv_loop_t loop;
  quic_endpoint_t *ep = NULL;
  static rec_t r;
  uv_loop_init(&loop);
  h_rec_init(&r);
  if (quic_endpoint_new(&loop, id, "127.0.0.1:0", NULL, &ep, NULL, 0) != 0 ||
      quic_endpoint_register_alpn(ep, QUIC_ALPN_CALL, &h_recorder, NULL, &r))
    _exit(1);
  struct sockaddr_storage a;
  quic_endpoint_local_addr(ep, &a);
  uint16_t port = ntohs(((struct sockaddr_in *)&a)->sin_port);
  if (write(fd, &port, sizeof(port)) != sizeof(port))
    _exit(1);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(0);
}

static void test_vanished_peer_idle_timeout(void **state) {
  world_t *w = *state;
  identity_t cid;
  h_identity(&cid);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    child_peer(fds[1], &cid);
  }
  close(fds[1]);
  uint16_t port = 0;
  assert_int_equal(read(fds[0], &port, sizeof(port)), sizeof(port));
  close(fds[0]);

  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  quic_conn_opts_t o;
  quic_conn_opts_default(&o);
  o.idle_timeout_ms = 1500;
  o.keep_alive_ms = 300;
  quic_conn_t *c = NULL;
  assert_int_equal(quic_dial(w->a, cid.public_key, (struct sockaddr *)&to,
                             QUIC_ALPN_CALL, &o, &h_recorder, &w->ra, &c),
                   0);
  assert_true(h_run_until(&w->loop, h_cond_connected, &w->ra, 10000));
  assert_int_equal(w->ra.connected, 1);
  h_run_for(&w->loop, 700); /* keep-alives flow; still connected */
  assert_int_equal(w->ra.closed, 0);

  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  uint64_t t0 = uv_hrtime();
  assert_true(h_run_until(&w->loop, h_cond_closed, &w->ra, 10000));
  unsigned ms = (unsigned)((uv_hrtime() - t0) / 1000000);
  print_message("vanished peer detected after %u ms (idle timeout 1500)\n", ms);
  assert_int_equal(w->ra.close.kind, QUIC_CLOSE_IDLE);
  assert_non_null(strstr(w->ra.close.error, "idle timeout"));
  assert_true(ms <= 1500 + 1000); /* slack for a loaded machine */
}

/* ---- garbage on the wire ---- */

/* One of b's connection IDs (white-box), to aim garbage at a live
 * connection. */
static size_t some_cid(quic_endpoint_t *ep, uint8_t out[20]) {
  for (size_t i = 0; i < ep->cids.nbuckets; i++) {
    for (qmap_entry_t *e = ep->cids.buckets[i]; e != NULL; e = e->next) {
      if (e->keylen == QUIC_CID_LEN) {
        memcpy(out, e->key, e->keylen);
        return e->keylen;
      }
    }
  }
  return 0;
}

static void test_garbage_does_not_disturb(void **state) {
  world_t *w = *state;
  quic_conn_t *c = connect_ab(w, NULL);
  uint8_t cid[20];
  size_t cidlen = some_cid(w->b, cid);
  assert_int_equal(cidlen, QUIC_CID_LEN);

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  uint8_t pkt[1500];
  quic_endpoint_stats_t before, after;
  quic_endpoint_stats(w->b, &before);
  for (int i = 0; i < 3000; i++) {
    size_t len = 1 + randombytes_uniform(sizeof(pkt));
    randombytes_buf(pkt, len);
    switch (i % 4) {
    case 0: /* a plausible Initial: long header, version 1 */
      len = len < 1200 ? 1200 : len;
      pkt[0] = 0xc0 | (pkt[0] & 0x0f);
      be32_put(pkt + 1, 1);
      pkt[5] = 16;
      break;
    case 1: /* short header aimed at the live connection */
      len = len < 40 ? 40 : len;
      pkt[0] = 0x40 | (pkt[0] & 0x3f);
      memcpy(pkt + 1, cid, cidlen);
      break;
    default: /* anything at all */
      break;
    }
    sendto(fd, pkt, len, 0, (struct sockaddr *)&w->b_addr,
           sizeof(struct sockaddr_in));
    if (i % 100 == 99)
      h_run_for(&w->loop, 2);
  }
  close(fd);
  h_run_for(&w->loop, 300);
  quic_endpoint_stats(w->b, &after);
  assert_true(after.dropped > before.dropped);
  if (w->ra.closed + w->rb.closed)
    print_message("closed: a \"%s\", b \"%s\"\n", w->ra.close_error,
                  w->rb.close_error);
  assert_int_equal(w->ra.closed + w->rb.closed, 0);
  /* No half-open connections left behind by fake Initials. */
  assert_int_equal(after.connections, 1);

  /* The connection still carries datagrams and a stream. */
  w->rb.echo_datagrams = true;
  assert_int_equal(quic_datagram_send(c, "ping", 4), 0);
  bulk_transfer(w, c, 1 * MiB, 20000);
  assert_true(w->ra.ndgrams >= 1);
}

/* ---- rebinding: the dialer moves to a new port mid-transfer ---- */

static bool half_way(void *arg) {
  world_t *w = arg;
  return w->rb.stream_bytes >= 512 * 1024 || w->ra.closed;
}

static void test_rebind_migrates(void **state) {
  world_t *w = *state;
  quic_conn_t *c = connect_ab(w, NULL);
  struct sockaddr_storage before, after, local;
  quic_conn_remote_addr(w->rb.conn, &before);

  uint8_t *data = make_data(4 * MiB, 5);
  uint8_t want[32];
  crypto_generichash(want, 32, data, 4 * MiB, NULL, 0);
  w->rb.reply_digest = true;
  int64_t sid;
  assert_int_equal(quic_stream_open_bidi(c, &sid), 0);
  h_send_start(&w->ra, c, sid, data, 4 * MiB, 256 * 1024);
  assert_true(h_run_until(&w->loop, half_way, w, 20000));

  assert_int_equal(quic_endpoint_rebind(w->a, "127.0.0.1:0"), 0);
  quic_endpoint_local_addr(w->a, &local);
  assert_true(h_run_until(&w->loop, h_cond_digest, &w->ra, 30000));
  assert_int_equal(w->ra.closed + w->rb.closed, 0);
  assert_memory_equal(w->ra.head, want, 32);

  quic_conn_remote_addr(w->rb.conn, &after);
  uint16_t p0 = ntohs(((struct sockaddr_in *)&before)->sin_port);
  uint16_t p1 = ntohs(((struct sockaddr_in *)&after)->sin_port);
  uint16_t pl = ntohs(((struct sockaddr_in *)&local)->sin_port);
  print_message("dialer moved from port %u to %u; acceptor sees %u\n", p0, pl,
                p1);
  assert_int_not_equal(p0, p1);
  assert_int_equal(p1, pl);
  free(data);
}

/* ---- IPv6 and dual stack ---- */

/* An acceptor on [::] serves an IPv4 dialer (v4-mapped inside) and an
 * IPv6 one; addresses are reported in their plain form. */
static void test_dual_stack(void **state) {
  world_t *w = *state;
  identity_t v6id;
  rec_t r6, r4;
  h_identity(&v6id);
  h_rec_init(&r6);
  h_rec_init(&r4);
  quic_endpoint_t *v6 = h_endpoint(&w->loop, &v6id, "[::]:0", NULL);
  assert_int_equal(
      quic_endpoint_register_alpn(v6, QUIC_ALPN_DM, &h_recorder, NULL, &r6), 0);
  struct sockaddr_storage local;
  quic_endpoint_local_addr(v6, &local);
  uint16_t port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);

  /* a (bound to 127.0.0.1) dials [::]'s port over IPv4. */
  struct sockaddr_in to4 = {.sin_family = AF_INET, .sin_port = htons(port)};
  to4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  quic_conn_t *c4 = NULL;
  assert_int_equal(quic_dial(w->a, v6id.public_key, (struct sockaddr *)&to4,
                             QUIC_ALPN_DM, NULL, &h_recorder, &r4, &c4),
                   0);
  assert_true(h_run_until(&w->loop, h_cond_connected, &r4, 10000));
  assert_int_equal(r4.connected, 1);
  assert_true(h_run_until(&w->loop, h_cond_connected, &r6, 5000));
  struct sockaddr_storage peer;
  assert_int_equal(quic_conn_remote_addr(r6.conn, &peer), 0);
  assert_int_equal(peer.ss_family, AF_INET);

  /* An IPv6 socket dials ::1; an IPv4-only socket cannot. */
  rec_t r66;
  h_rec_init(&r66);
  quic_endpoint_t *d6 = h_endpoint(&w->loop, &w->a_id, "[::1]:0", NULL);
  struct sockaddr_in6 to6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
  to6.sin6_addr = in6addr_loopback;
  quic_conn_t *c6 = NULL;
  assert_int_equal(quic_dial(w->a, v6id.public_key, (struct sockaddr *)&to6,
                             QUIC_ALPN_DM, NULL, &h_recorder, &r66, &c6),
                   QUIC_ERR_AF);
  assert_int_equal(quic_dial(d6, v6id.public_key, (struct sockaddr *)&to6,
                             QUIC_ALPN_DM, NULL, &h_recorder, &r66, &c6),
                   0);
  assert_true(h_run_until(&w->loop, h_cond_connected, &r66, 10000));
  assert_int_equal(r66.connected, 1);
  assert_int_equal(quic_conn_remote_addr(c6, &peer), 0);
  assert_int_equal(peer.ss_family, AF_INET6);

  /* End everything that reports into these stack records before they go
   * out of scope. */
  assert_int_equal(quic_conn_close(c4, 0, "done"), 0);
  assert_true(h_run_until(&w->loop, h_cond_closed, &r4, 5000));
  quic_endpoint_free(d6);
  quic_endpoint_free(v6);
  assert_int_equal(r66.closed, 1);
  assert_int_equal(r66.close.kind, QUIC_CLOSE_ENDPOINT);
}

int main(void) {
  log_set_level(LOG_LEVEL_WARN);
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_handshake_and_alpn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_peer_id_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unregistered_alpn_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_datagrams_round_trip, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stream_10mib, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_reset_both_ways, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_close_with_code, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_flushes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_vanished_peer_idle_timeout, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_garbage_does_not_disturb, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_rebind_migrates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dual_stack, setup, teardown),
  };
  return cmocka_run_group_tests_name("quic", tests, NULL, NULL);
}
