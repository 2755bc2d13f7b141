/* QUIC through the impairment relay (tools/relay.c): 10% loss each way,
 * 40 ms +- 10 ms delay each way. A 10 MiB stream must arrive byte-exact
 * and datagrams must still flow.
 *
 * At 10% random loss ngtcp2's congestion controllers settle at a few
 * packets per round trip once they leave start-up, so the time depends
 * on the packet size: with 1452-byte packets 10 MiB takes 60-90 s. To
 * keep the suite fast this test sends 8 KiB packets (loopback carries
 * them whole; the relay still drops 10% of them, some 160 losses to
 * recover): usually 2-3 s, at worst (start-up ends early) about 25 s.
 * PARLEY_QUIC_RELAY_PAYLOAD=1452 runs the realistic size, as
 * tests/bench/quic.sh does. */
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/ticket.h"
#include "quic_harness.h"

#ifndef PARLEY_RELAY_PATH
#error "PARLEY_RELAY_PATH must name the parley-relay binary"
#endif

#define MiB (1024u * 1024u)
#define TEST_PAYLOAD 8192

typedef struct world {
  uv_loop_t loop;
  identity_t a_id, b_id;
  quic_endpoint_t *a, *b;
  rec_t ra, rb;
  pid_t relay;
  char relay_log[64];
  struct sockaddr_storage relay_addr;
  uint8_t *data;
  uint32_t payload;
} world_t;

/* Starts parley-relay in front of upstream; its output goes to a file (a
 * pipe nobody drains could stall it). Waits for "relay: listening on
 * HOST:PORT". The relay dies with this process, even on a crash. */
static void relay_start(world_t *w, const struct sockaddr_storage *upstream,
                        const char *const *impair) {
  char up[64];
  assert_int_equal(
      addr_format((const struct sockaddr *)upstream, up, sizeof(up)), 0);
  snprintf(w->relay_log, sizeof(w->relay_log), "/tmp/parley-relay-XXXXXX");
  int fd = mkstemp(w->relay_log);
  assert_true(fd >= 0);
  const char *argv[32] = {"parley-relay", "--listen", "127.0.0.1:0",
                          "--upstream",   up,         "--no-control",
                          "--log-level",  "warn"};
  int n = 8;
  for (int i = 0; impair[i] != NULL && n < 31; i++)
    argv[n++] = impair[i];
  argv[n] = NULL;
  w->relay = fork();
  assert_true(w->relay >= 0);
  if (w->relay == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(PARLEY_RELAY_PATH, (char *const *)argv);
    _exit(127);
  }
  close(fd);

  const char *tag = "relay: listening on ";
  for (int tries = 0; tries < 500; tries++) {
    char buf[4096] = "";
    FILE *f = fopen(w->relay_log, "r");
    size_t got = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f != NULL)
      fclose(f);
    buf[got] = '\0';
    char *p = strstr(buf, tag);
    if (p != NULL && strchr(p, '\n') != NULL) {
      p += strlen(tag);
      size_t len = strcspn(p, " \r\n");
      assert_int_equal(addr_parse(p, len, &w->relay_addr), 0);
      return;
    }
    usleep(10000);
  }
  fail_msg("parley-relay did not start (see %s)", w->relay_log);
}

static int setup(void **state) {
  world_t *w = calloc(1, sizeof(*w));
  assert_non_null(w);
  assert_int_equal(uv_loop_init(&w->loop), 0);
  h_identity(&w->a_id);
  h_identity(&w->b_id);
  h_rec_init(&w->ra);
  h_rec_init(&w->rb);

  quic_endpoint_opts_t o;
  quic_endpoint_opts_default(&o);
  const char *env = getenv("PARLEY_QUIC_RELAY_PAYLOAD");
  o.max_udp_payload = env != NULL ? (uint32_t)atoi(env) : TEST_PAYLOAD;
  o.fixed_udp_payload = o.max_udp_payload != 1452;
  w->payload = o.max_udp_payload;
  w->a = h_endpoint(&w->loop, &w->a_id, NULL, &o);
  w->b = h_endpoint(&w->loop, &w->b_id, NULL, &o);
  assert_int_equal(quic_endpoint_register_alpn(w->b, QUIC_ALPN_CALL,
                                               &h_recorder, NULL, &w->rb),
                   0);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world_t *w = *state;
  if (w->relay > 0) {
    kill(w->relay, SIGTERM);
    waitpid(w->relay, NULL, 0);
    unlink(w->relay_log);
  }
  h_teardown(&w->loop, w->a, w->b);
  free(w->data);
  free(w);
  return 0;
}

static bool connected_or_closed(void *arg) {
  world_t *w = arg;
  return (w->ra.connected && w->rb.connected) || w->ra.closed;
}

static bool got_some_dgrams(void *arg) {
  rec_t *r = arg;
  return r->ndgrams >= 20 || r->closed;
}

static void test_stream_10mib_through_lossy_relay(void **state) {
  world_t *w = *state;
  struct sockaddr_storage b_addr;
  h_endpoint_addr(w->b, &b_addr);
  const char *impair[] = {"--loss", "10",     "--delay", "40", "--jitter",
                          "10",     "--seed", "1",       NULL};
  relay_start(w, &b_addr, impair);

  quic_conn_t *c = NULL;
  assert_int_equal(quic_dial(w->a, w->b_id.public_key,
                             (struct sockaddr *)&w->relay_addr, QUIC_ALPN_CALL,
                             NULL, &h_recorder, &w->ra, &c),
                   0);
  uint64_t t0 = uv_hrtime();
  assert_true(h_run_until(&w->loop, connected_or_closed, w, 20000));
  assert_int_equal(w->ra.closed, 0);
  double hs = (double)(uv_hrtime() - t0) / 1e6;

  /* Datagrams are unreliable: of 40 sent over a few RTTs, about 80%
   * survive the two lossy legs of the echo; ask for half. */
  w->rb.echo_datagrams = true;
  for (int i = 0; i < 40; i++) {
    uint8_t d[100] = {0};
    be32_put(d, (uint32_t)i);
    assert_int_equal(quic_datagram_send(c, d, sizeof(d)), 0);
    h_run_for(&w->loop, 5);
  }
  assert_true(h_run_until(&w->loop, got_some_dgrams, &w->ra, 5000));
  w->rb.echo_datagrams = false;

  /* 10 MiB, hashed on arrival; b answers with its digest. */
  w->data = malloc(10 * MiB);
  assert_non_null(w->data);
  randombytes_buf(w->data, 10 * MiB);
  uint8_t want[32];
  crypto_generichash(want, 32, w->data, 10 * MiB, NULL, 0);
  w->rb.reply_digest = true;
  int64_t sid;
  assert_int_equal(quic_stream_open_bidi(c, &sid), 0);
  t0 = uv_hrtime();
  h_send_start(&w->ra, c, sid, w->data, 10 * MiB, 256 * 1024);
  bool done = h_run_until(&w->loop, h_cond_digest, &w->ra, 150000);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  if (!done)
    print_message("only %llu bytes arrived in %.0f s\n",
                  (unsigned long long)w->rb.stream_bytes, secs);
  assert_true(done);
  assert_int_equal(w->ra.closed + w->rb.closed, 0);
  assert_int_equal(w->rb.stream_bytes, 10 * MiB);
  assert_memory_equal(w->rb.digest, want, 32);
  assert_int_equal(w->ra.head_len, 32);
  assert_memory_equal(w->ra.head, want, 32);

  quic_conn_stats_t st;
  quic_conn_stats(c, &st);
  print_message("through relay: %u-byte packets, handshake %.0f ms, %d/40 "
                "datagrams echoed, 10 MiB in %.1f s (%.1f Mbit/s), srtt "
                "%llu ms, %llu of %llu packets lost\n",
                w->payload, hs, w->ra.ndgrams, secs, 10 * 8 * 1.048576 / secs,
                (unsigned long long)st.smoothed_rtt_us / 1000,
                (unsigned long long)st.packets_lost,
                (unsigned long long)st.packets_sent);
  assert_true(st.smoothed_rtt_us >= 60000); /* the relay's delay shows */
  assert_true(st.packets_lost > 0);         /* and so does its loss */
}

int main(void) {
  log_set_level(LOG_LEVEL_WARN);
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stream_10mib_through_lossy_relay,
                                      setup, teardown),
  };
  return cmocka_run_group_tests_name("quic_relay", tests, NULL, NULL);
}
