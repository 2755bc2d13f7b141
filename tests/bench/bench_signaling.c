/* Signaling round trip on loopback: start_call to call-answered between two
 * real parleyd processes, with an auto-answering client on the callee.
 *
 *   bench_signaling [--calls N] [--warmup N] [--samples]
 *
 * A forked child plays the callee's frontend: subscribed to incoming-call
 * on B, it sends answer_call the moment one arrives. The parent, A's
 * frontend, times each start_call request until A's call-answered event,
 * then ends the call and waits for call-ended on both sides before the
 * next one. Warm-up calls (not counted) set up the QUIC connection and the
 * Double Ratchet session first. Prints a Markdown table for
 * tests/bench/signaling.sh. Not a ctest test. */
#include "testsupport.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONF "log_level = warn\noffers_per_minute = 10000\n"

typedef struct side {
  char *home;
  ts_daemon_t d;
  ts_rpc_t *rpc; /* requests */
  ts_rpc_t *ev;  /* events */
} side_t;

static side_t bench__a, bench__b;
static pid_t bench__answerer;

static void bench__die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void bench__die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_signaling: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (bench__a.d.pid > 0)
    ts_daemon_dump(&bench__a.d);
  if (bench__b.d.pid > 0)
    ts_daemon_dump(&bench__b.d);
  if (bench__answerer > 0)
    kill(bench__answerer, SIGKILL);
  exit(1); /* the daemons are killed at exit by testsupport */
}

static double bench__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A request that must succeed; returns its result (new reference). */
static json_t *bench__call(ts_rpc_t *c, const char *method, json_t *params) {
  json_t *resp = ts_rpc_call(c, method, params, ts_timeout_ms(10000));
  json_t *res = json_object_get(resp, "result");
  if (!res) {
    char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    bench__die("%s failed: %s", method, s ? s : "no response");
  }
  json_incref(res);
  json_decref(resp);
  return res;
}

static void bench__subscribe(ts_rpc_t *c, const char *events) {
  json_error_t err;
  json_t *list = json_loads(events, 0, &err);
  json_decref(bench__call(c, "subscribe", json_pack("{s:o}", "events", list)));
}

static void bench__start(side_t *s, const char *tag, const char *events) {
  s->home = ts_tmpdir(tag);
  if (!s->home)
    bench__die("no temporary directory");
  ts_daemon_init(&s->d, s->home);
  char *cfg = ts_path(s->home, "config");
  mkdir(cfg, 0700);
  mkdir(s->d.config_dir, 0700);
  free(cfg);
  char *conf = ts_path(s->d.config_dir, "parleyd.conf");
  FILE *f = fopen(conf, "w");
  if (!f || fputs(CONF, f) < 0 || fclose(f) != 0)
    bench__die("cannot write %s", conf);
  free(conf);
  if (ts_daemon_spawn(&s->d, NULL) != 0 ||
      ts_daemon_wait_ready(&s->d, ts_timeout_ms(20000)) != 0)
    bench__die("parleyd did not start");
  s->rpc = ts_rpc_connect(s->d.socket, ts_timeout_ms(5000));
  s->ev = ts_rpc_connect(s->d.socket, ts_timeout_ms(5000));
  if (!s->rpc || !s->ev)
    bench__die("cannot connect to %s", s->d.socket);
  bench__subscribe(s->ev, events);
}

static void bench__stop(side_t *s) {
  ts_rpc_close(s->rpc);
  ts_rpc_close(s->ev);
  int st = ts_daemon_stop(&s->d);
  if (st != 0)
    fprintf(stderr, "bench_signaling: parleyd exited with %d\n", st);
  ts_rm_rf(s->home);
  free(s->home);
}

/* The callee's frontend: answers every incoming call at once, reading and
 * ignoring the responses. Runs until killed. */
static void bench__answer_loop(const char *socket) {
  ts_rpc_t *c = ts_rpc_connect(socket, ts_timeout_ms(5000));
  if (!c)
    _exit(2);
  static const char sub[] = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":"
                            "\"subscribe\",\"params\":{\"events\":"
                            "[\"incoming-call\"]}}\n";
  if (ts_rpc_send_raw(c, sub, sizeof(sub) - 1) != 0)
    _exit(2);
  for (long id = 1;; id++) {
    json_t *msg = ts_rpc_read_json(c, 3600 * 1000);
    if (!msg) {
      if (getppid() == 1)
        _exit(0);
      continue;
    }
    const char *method = json_string_value(json_object_get(msg, "method"));
    const char *call_id = json_string_value(
        json_object_get(json_object_get(msg, "params"), "call_id"));
    if (method && strcmp(method, "incoming-call") == 0 && call_id) {
      char line[256];
      int n = snprintf(line, sizeof(line),
                       "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":"
                       "\"answer_call\",\"params\":{\"call_id\":\"%s\"}}\n",
                       id, call_id);
      if (n <= 0 || (size_t)n >= sizeof(line) ||
          ts_rpc_send_raw(c, line, (size_t)n) != 0)
        _exit(2);
    }
    json_decref(msg);
  }
}

/* Waits for event name of call_id on c; fails the run after 10 s. */
static void bench__wait(ts_rpc_t *c, const char *name, const char *call_id) {
  for (;;) {
    json_t *n = ts_rpc_next_notification(c, ts_timeout_ms(10000));
    if (!n)
      bench__die("no %s for call %s", name, call_id);
    json_t *p = json_object_get(n, "params");
    const char *m = json_string_value(json_object_get(n, "method"));
    const char *id = json_string_value(json_object_get(p, "call_id"));
    bool match = m && id && strcmp(m, name) == 0 && strcmp(id, call_id) == 0;
    if (match && strcmp(name, "call-ended") == 0 &&
        strcmp(json_string_value(json_object_get(p, "reason")), "completed"))
      bench__die("call %s ended %s (%s)", call_id,
                 json_string_value(json_object_get(p, "reason")),
                 json_string_value(json_object_get(p, "detail")));
    json_decref(n);
    if (match)
      return;
  }
}

static int bench__cmp(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of sorted samples. */
static double bench__pct(const double *v, size_t n, double p) {
  size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (rank < 1)
    rank = 1;
  return v[(rank > n ? n : rank) - 1];
}

static double bench__median(const double *v, size_t n) {
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench__arg(int argc, char **argv, int *i, long *out) {
  char *end;
  if (*i + 1 >= argc)
    return -1;
  errno = 0;
  *out = strtol(argv[++*i], &end, 10);
  return errno || *end || *out < 0 || *out > 100000 ? -1 : 0;
}

int main(int argc, char **argv) {
  long calls = 100, warmup = 5;
  bool samples = false;
  for (int i = 1; i < argc; i++) {
    int bad = 1;
    if (strcmp(argv[i], "--samples") == 0)
      bad = !(samples = true);
    else if (strcmp(argv[i], "--calls") == 0)
      bad = bench__arg(argc, argv, &i, &calls) || calls == 0;
    else if (strcmp(argv[i], "--warmup") == 0)
      bad = bench__arg(argc, argv, &i, &warmup);
    if (bad) {
      fprintf(stderr, "usage: bench_signaling [--calls N] [--warmup N] "
                      "[--samples]\n");
      return 2;
    }
  }

  bench__start(&bench__a, "benchA", "[\"call-answered\", \"call-ended\"]");
  bench__start(&bench__b, "benchB", "[\"call-ended\"]");
  json_t *t = bench__call(bench__a.rpc, "get_ticket", NULL);
  json_decref(
      bench__call(bench__b.rpc, "add_contact",
                  json_pack("{s:O}", "ticket", json_object_get(t, "ticket"))));
  json_decref(t);
  t = bench__call(bench__b.rpc, "get_ticket", NULL);
  json_decref(
      bench__call(bench__a.rpc, "add_contact",
                  json_pack("{s:O}", "ticket", json_object_get(t, "ticket"))));
  json_decref(t);

  fflush(NULL);
  bench__answerer = fork();
  if (bench__answerer < 0)
    bench__die("fork: %s", strerror(errno));
  if (bench__answerer == 0)
    bench__answer_loop(bench__b.d.socket); /* never returns */
  ts_sleep_ms(200);                        /* let it subscribe */

  double *rtt = calloc((size_t)calls, sizeof(double));
  double *cycle = calloc((size_t)calls, sizeof(double));
  if (!rtt || !cycle)
    bench__die("out of memory");
  for (long i = 0; i < warmup + calls; i++) {
    double t0 = bench__now_ms();
    json_t *r = bench__call(bench__a.rpc, "start_call",
                            json_pack("{s:s}", "peer", bench__b.d.peer_id));
    char id[64];
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(r, "call_id")));
    json_decref(r);
    bench__wait(bench__a.ev, "call-answered", id);
    double t1 = bench__now_ms();
    json_decref(bench__call(bench__a.rpc, "end_call",
                            json_pack("{s:s}", "call_id", id)));
    bench__wait(bench__a.ev, "call-ended", id);
    bench__wait(bench__b.ev, "call-ended", id);
    double t2 = bench__now_ms();
    if (i >= warmup) {
      rtt[i - warmup] = t1 - t0;
      cycle[i - warmup] = t2 - t0;
    }
    if (samples) /* to stderr: the table stays clean */
      fprintf(stderr, "call %ld%s: round trip %.2f ms, whole call %.2f ms\n", i,
              i < warmup ? " (warm-up)" : "", t1 - t0, t2 - t0);
  }

  kill(bench__answerer, SIGTERM);
  waitpid(bench__answerer, NULL, 0);
  json_t *h = bench__call(bench__b.rpc, "get_call_history",
                          json_pack("{s:i}", "limit", 1000));
  size_t records = json_array_size(h);
  json_decref(h);
  bench__stop(&bench__a);
  bench__stop(&bench__b);
  if (records != (size_t)(warmup + calls))
    bench__die("callee has %zu records, want %ld", records, warmup + calls);

  size_t n = (size_t)calls;
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += rtt[i];
  qsort(rtt, n, sizeof(double), bench__cmp);
  qsort(cycle, n, sizeof(double), bench__cmp);
  printf("| measurement | result |\n|---|---|\n");
  printf("| start_call to call-answered, %zu calls | median %.2f ms, p99 "
         "%.2f ms (min %.2f, mean %.2f, max %.2f) |\n",
         n, bench__median(rtt, n), bench__pct(rtt, n, 99), rtt[0], sum / n,
         rtt[n - 1]);
  printf("| whole call: start_call to call-ended on both sides | median "
         "%.2f ms, p99 %.2f ms |\n",
         bench__median(cycle, n), bench__pct(cycle, n, 99));
  free(rtt);
  free(cycle);
  return 0;
}
