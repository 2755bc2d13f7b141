/* QUIC transport benchmark: handshake latency on loopback (median, p99),
 * bulk throughput of one stream, and the effect of send batching (GSO,
 * sendmmsg, one sendmsg per packet). The acceptor runs in a forked child
 * with its own loop, so each side has a core as between two daemons.
 *
 * Prints a Markdown fragment on stdout (tests/bench/quic.sh puts it into
 * docs/benchmarks.md); progress goes to stderr.
 *
 *   bench_quic [--handshakes N] [--mib M] [--repeat R] [--quick]
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "core/log.h"
#include "core/util.h"
#include "net/quic.h"

#define CHUNK (1u << 20)

typedef struct bench_conn {
  quic_conn_t *conn;
  bool connected, closed, replied;
  uint64_t received;
  /* sender */
  int64_t sid;
  uint64_t to_send, queued;
  bool fin_queued;
} bench_conn_t;

static uint8_t chunk[CHUNK];
static int cc_algo = QUIC_CC_BBR;

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_quic: %s: %s\n", what, quic_strerror(rc));
  exit(1);
}

static void identity_new(identity_t *id) {
  memset(id, 0, sizeof(*id));
  crypto_sign_keypair(id->public_key, id->secret_key);
  hex_encode(id->peer_id, id->public_key, 32);
}

/* ---- the acceptor (child process) ---- */

static void srv_data(quic_conn_t *c, int64_t sid, const uint8_t *d, size_t n,
                     void *u) {
  (void)c;
  (void)sid;
  (void)d;
  (void)u;
  (void)n;
}

static void srv_fin(quic_conn_t *c, int64_t sid, void *u) {
  (void)u;
  quic_stream_write(c, sid, "k", 1, true); /* "all received" */
}

static void run_server(int fd, const identity_t *id) {
  uv_loop_t loop;
  quic_endpoint_t *ep;
  char err[200];
  uv_loop_init(&loop);
  quic_handler_t h = {.on_stream_data = srv_data, .on_stream_fin = srv_fin};
  quic_endpoint_opts_t o;
  quic_endpoint_opts_default(&o);
  o.max_connections = 1024;
  if (quic_endpoint_new(&loop, id, "127.0.0.1:0", &o, &ep, err, sizeof(err)) !=
          0 ||
      quic_endpoint_register_alpn(ep, QUIC_ALPN_DM, &h, NULL, NULL) != 0) {
    fprintf(stderr, "server: %s\n", err);
    _exit(1);
  }
  struct sockaddr_storage a;
  quic_endpoint_local_addr(ep, &a);
  uint16_t port = ntohs(((struct sockaddr_in *)&a)->sin_port);
  if (write(fd, &port, sizeof(port)) != sizeof(port))
    _exit(1);
  close(fd);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(0);
}

/* ---- the dialer ---- */

static void tick(uv_timer_t *t) {
  (void)t;
}

static bool run_until(uv_loop_t *loop, bool *flag, unsigned timeout_ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, tick, 10, 10);
  uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  while (!*flag && uv_hrtime() < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *flag;
}

static void pump(bench_conn_t *b) {
  while (!b->fin_queued) {
    uint64_t n = b->to_send - b->queued;
    if (n > CHUNK)
      n = CHUNK;
    bool fin = b->queued + n == b->to_send;
    int rc = quic_stream_write(b->conn, b->sid, chunk, n, fin);
    if (rc == QUIC_ERR_AGAIN)
      return;
    if (rc != 0)
      die("write", rc);
    b->queued += n;
    b->fin_queued = fin;
  }
}

static void cli_connected(quic_conn_t *c, void *u) {
  bench_conn_t *b = u;
  b->conn = c;
  b->connected = true;
}

static void cli_closed(quic_conn_t *c, const quic_close_info_t *i, void *u) {
  bench_conn_t *b = u;
  (void)c;
  if (i->kind != QUIC_CLOSE_LOCAL)
    fprintf(stderr, "connection closed: %s\n", i->error);
  b->closed = true;
  b->connected = true; /* wake run_until */
  b->replied = true;
}

static void cli_data(quic_conn_t *c, int64_t sid, const uint8_t *d, size_t n,
                     void *u) {
  bench_conn_t *b = u;
  (void)c;
  (void)sid;
  (void)d;
  b->received += n;
}

static void cli_fin(quic_conn_t *c, int64_t sid, void *u) {
  bench_conn_t *b = u;
  (void)c;
  (void)sid;
  b->replied = true;
}

static void cli_writable(quic_conn_t *c, int64_t sid, void *u) {
  (void)c;
  (void)sid;
  pump(u);
}

static const quic_handler_t cli_handler = {
    .on_connected = cli_connected,
    .on_closed = cli_closed,
    .on_stream_data = cli_data,
    .on_stream_fin = cli_fin,
    .on_stream_writable = cli_writable,
};

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void handshakes(uv_loop_t *loop, const identity_t *srv,
                       const struct sockaddr_in *to, int n) {
  identity_t id;
  quic_endpoint_t *ep;
  char err[200];
  identity_new(&id);
  int rc =
      quic_endpoint_new(loop, &id, "127.0.0.1:0", NULL, &ep, err, sizeof(err));
  if (rc != 0)
    die(err, rc);
  uint64_t *t = calloc((size_t)n, sizeof(*t));
  for (int i = 0; i < n; i++) {
    bench_conn_t b = {0};
    quic_conn_t *c;
    uint64_t t0 = uv_hrtime();
    rc = quic_dial(ep, srv->public_key, (const struct sockaddr *)to,
                   QUIC_ALPN_DM, NULL, &cli_handler, &b, &c);
    if (rc != 0)
      die("dial", rc);
    if (!run_until(loop, &b.connected, 10000) || b.closed)
      die("handshake", -ETIMEDOUT);
    t[i] = uv_hrtime() - t0;
    quic_conn_close(c, 0, "bench");
    run_until(loop, &b.closed, 1000);
  }
  qsort(t, (size_t)n, sizeof(*t), cmp_u64);
  double med = (double)t[n / 2] / 1e6;
  double p99 = (double)t[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e6;
  printf("| handshake (dial to on_connected), %d runs | median %.2f ms, "
         "p99 %.2f ms |\n",
         n, med, p99);
  fflush(stdout);
  fprintf(stderr, "handshakes: median %.2f ms p99 %.2f ms\n", med, p99);
  free(t);
  quic_endpoint_free(ep);
  uv_run(loop, UV_RUN_DEFAULT);
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *mode_name(enum quic_batch_mode m) {
  switch (m) {
  case QUIC_BATCH_GSO:
    return "GSO + sendmmsg";
  case QUIC_BATCH_SENDMMSG:
    return "sendmmsg";
  case QUIC_BATCH_NONE:
    return "sendmsg per packet";
  default:
    return "auto";
  }
}

typedef struct bulk_result {
  double mbps, per_call, cpu_per_gib;
  uint64_t lost, sent;
} bulk_result_t;

static void bulk(uv_loop_t *loop, const identity_t *srv,
                 const struct sockaddr_in *to, unsigned mib,
                 enum quic_batch_mode mode, bool count_lost, bulk_result_t *r) {
  identity_t id;
  quic_endpoint_t *ep;
  char err[200];
  quic_endpoint_opts_t o;
  identity_new(&id);
  quic_endpoint_opts_default(&o);
  o.batch = mode;
  o.count_lost_packets = count_lost;
  o.conn.cc_algo = cc_algo;
  int rc =
      quic_endpoint_new(loop, &id, "127.0.0.1:0", &o, &ep, err, sizeof(err));
  if (rc != 0)
    die(err, rc);
  bench_conn_t b = {0};
  quic_conn_t *c;
  rc = quic_dial(ep, srv->public_key, (const struct sockaddr *)to, QUIC_ALPN_DM,
                 &o.conn, &cli_handler, &b, &c);
  if (rc != 0 || !run_until(loop, &b.connected, 10000) || b.closed)
    die("connect", rc ? rc : -ETIMEDOUT);
  rc = quic_stream_open_bidi(c, &b.sid);
  if (rc != 0)
    die("open", rc);

  quic_endpoint_stats_t s0, s1;
  quic_endpoint_stats(ep, &s0);
  double cpu0 = cpu_seconds();
  uint64_t t0 = uv_hrtime();
  b.to_send = (uint64_t)mib << 20;
  pump(&b);
  if (!run_until(loop, &b.replied, 300000) || b.closed)
    die("transfer", -ETIMEDOUT);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  double cpu = cpu_seconds() - cpu0;
  quic_endpoint_stats(ep, &s1);
  quic_conn_stats_t cs;
  quic_conn_stats(c, &cs);

  r->mbps = (double)b.to_send * 8 / secs / 1e6;
  r->per_call = (double)(s1.packets_sent - s0.packets_sent) /
                (double)(s1.send_calls - s0.send_calls);
  r->cpu_per_gib = cpu / ((double)b.to_send / (1u << 30));
  r->lost = cs.packets_lost;
  r->sent = cs.packets_sent;
  fprintf(stderr, "bulk %s: %.0f Mbit/s\n", mode_name(mode), r->mbps);
  quic_conn_close(c, 0, "done");
  run_until(loop, &b.closed, 1000);
  quic_endpoint_free(ep);
  uv_run(loop, UV_RUN_DEFAULT);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Runs one configuration `repeat` times and prints the medians: the
 * machine is shared, so single runs are noisy. */
static void bulk_row(uv_loop_t *loop, const identity_t *srv,
                     const struct sockaddr_in *to, unsigned mib, int repeat,
                     enum quic_batch_mode mode, bool count_lost) {
  double mbps[16], call[16], cpu[16];
  bulk_result_t r = {0};
  uint64_t lost = 0, sent = 0;
  for (int i = 0; i < repeat; i++) {
    bulk(loop, srv, to, mib, mode, count_lost, &r);
    mbps[i] = r.mbps;
    call[i] = r.per_call;
    cpu[i] = r.cpu_per_gib;
    lost += r.lost;
    sent += r.sent;
  }
  qsort(mbps, (size_t)repeat, sizeof(double), cmp_double);
  qsort(call, (size_t)repeat, sizeof(double), cmp_double);
  qsort(cpu, (size_t)repeat, sizeof(double), cmp_double);
  printf("| %u MiB on one stream, %s, %s%s (median of %d) | %.0f Mbit/s "
         "(range %.0f-%.0f), %.1f packets per send call, sender CPU %.2f "
         "s/GiB, %llu of %llu packets lost |\n",
         mib, cc_algo == QUIC_CC_CUBIC ? "CUBIC" : "BBR", mode_name(mode),
         count_lost ? "" : ", loss counting off", repeat, mbps[repeat / 2],
         mbps[0], mbps[repeat - 1], call[repeat / 2], cpu[repeat / 2],
         (unsigned long long)lost, (unsigned long long)sent);
  fflush(stdout);
}

int main(int argc, char **argv) {
  int n = 200, repeat = 3;
  unsigned mib = 512;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--handshakes") == 0 && i + 1 < argc)
      n = atoi(argv[++i]);
    else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc)
      mib = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
      repeat = atoi(argv[++i]);
    else if (strcmp(argv[i], "--quick") == 0) {
      n = 20;
      mib = 32;
      repeat = 1;
    } else {
      fprintf(stderr,
              "usage: %s [--handshakes N] [--mib M] [--repeat R] "
              "[--quick]\n",
              argv[0]);
      return 2;
    }
  }
  if (sodium_init() < 0 || n < 1 || mib < 1 || repeat < 1 || repeat > 16)
    return 1;
  log_set_level(LOG_LEVEL_WARN);
  randombytes_buf(chunk, sizeof(chunk));

  identity_t srv;
  identity_new(&srv);
  int fds[2];
  if (pipe(fds) != 0)
    return 1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    run_server(fds[1], &srv);
  }
  close(fds[1]);
  uint16_t port;
  if (read(fds[0], &port, sizeof(port)) != sizeof(port))
    return 1;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  uv_loop_t loop;
  uv_loop_init(&loop);
  printf("| measurement | result |\n|---|---|\n");
  handshakes(&loop, &srv, &to, n);
  bulk_row(&loop, &srv, &to, mib, repeat, QUIC_BATCH_GSO, true);
  bulk_row(&loop, &srv, &to, mib, repeat, QUIC_BATCH_SENDMMSG, true);
  bulk_row(&loop, &srv, &to, mib, repeat, QUIC_BATCH_NONE, true);
  bulk_row(&loop, &srv, &to, mib, repeat, QUIC_BATCH_GSO, false);
  cc_algo = QUIC_CC_CUBIC;
  bulk_row(&loop, &srv, &to, mib, repeat, QUIC_BATCH_GSO, true);

  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  uv_loop_close(&loop);
  return 0;
}
