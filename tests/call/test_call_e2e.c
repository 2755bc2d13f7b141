/* End-to-end tests of call signaling: two or three real parleyd processes
 * on loopback, driven only through the JSON-RPC API (and parleyctl).
 *
 * Every test ends by reading get_call_history on each daemon and checking
 * that it holds exactly the records the scenario must leave: one per call
 * per side that took part, with the right direction, reason, peer, duration
 * and had_video. Waits are on events with generous timeouts (scaled by
 * PARLEY_TEST_TIMEOUT_SCALE); ring timeouts are shortened by config so the
 * whole file runs in well under a minute. */
#include "testsupport.h"

#include "api/api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ID_LEN 32 /* hex characters of a call ID */
#define NODES_MAX 3
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

typedef struct fx fx_t;

/* One daemon and the two connections the test keeps to it: rpc for
 * requests, ev subscribed to every event. seen holds every notification
 * read from ev, so a wait never loses an event read while waiting for
 * another one. */
typedef struct node {
  fx_t *fx;
  char name; /* 'A', 'B', 'C' in messages */
  char *home;
  ts_daemon_t d;
  ts_rpc_t *rpc;
  ts_rpc_t *ev;
  json_t *seen;
  char ticket[1024];
  char listen[64];
  size_t log_mark; /* bytes of stderr to skip in log checks */
} node_t;

struct fx {
  node_t n[NODES_MAX];
  int count;
  time_t t0;
};

typedef struct call_id {
  char s[ID_LEN + 1];
} call_id_t;

/* What one CallRecord must say. */
typedef struct want_rec {
  const char *call_id;
  const node_t *peer;
  const char *direction;
  const char *reason;
  long long min_duration, max_duration;
  bool had_video;
} want_rec_t;

static const char *str_of(const json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "";
}

static int ev_ms(void) {
  return ts_timeout_ms(10000);
}

/* --- diagnostics -------------------------------------------------------- */

static void fx_dump(const fx_t *f) {
  for (int i = 0; i < f->count; i++) {
    const node_t *n = &f->n[i];
    char *s = json_dumps(n->seen, JSON_COMPACT);
    fprintf(stderr, "==== %c (%s) events: %s\n", n->name, n->d.peer_id,
            s ? s : "[]");
    free(s);
    ts_daemon_dump(&n->d);
  }
}

#define FAIL_DUMP(f, ...)                                                      \
  do {                                                                         \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n");                                                     \
    fx_dump(f);                                                                \
    fail();                                                                    \
  } while (0)

/* --- daemons ------------------------------------------------------------ */

static void write_config(const node_t *n, const char *conf) {
  char *cfg_home = ts_path(n->home, "config");
  mkdir(cfg_home, 0700);
  mkdir(n->d.config_dir, 0700);
  free(cfg_home);
  char *path = ts_path(n->d.config_dir, "parleyd.conf");
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fprintf(fp, "log_level = debug\n%s", conf ? conf : "");
  assert_int_equal(fclose(fp), 0);
  free(path);
}

/* Connects both connections, subscribes ev to every event, reads the
 * ticket and the bound address. */
static void node_connect(node_t *n) {
  n->rpc = ts_rpc_connect(n->d.socket, ts_timeout_ms(5000));
  n->ev = ts_rpc_connect(n->d.socket, ts_timeout_ms(5000));
  assert_non_null(n->rpc);
  assert_non_null(n->ev);
  json_decref(ts_rpc_call_ok(n->ev, "subscribe", NULL));
  n->seen = json_array();
  json_t *t = ts_rpc_call_ok(n->rpc, "get_ticket", NULL);
  snprintf(n->ticket, sizeof(n->ticket), "%s",
           json_string_value(json_object_get(t, "ticket")));
  json_decref(t);
  json_t *st = ts_rpc_call_ok(n->rpc, "status", NULL);
  snprintf(n->listen, sizeof(n->listen), "%s",
           json_string_value(json_array_get(json_object_get(st, "listen"), 0)));
  json_decref(st);
  assert_true(n->ticket[0] && n->listen[0]);
}

static void node_disconnect(node_t *n) {
  ts_rpc_close(n->rpc);
  ts_rpc_close(n->ev);
  json_decref(n->seen);
  n->rpc = n->ev = NULL;
  n->seen = NULL;
}

/* Starts the next daemon of f with conf appended to its config file. */
static node_t *node_start(fx_t *f, const char *conf) {
  assert_true(f->count < NODES_MAX);
  node_t *n = &f->n[f->count];
  n->fx = f;
  n->name = (char)('A' + f->count);
  char tag[8];
  snprintf(tag, sizeof(tag), "call%c", n->name);
  n->home = ts_tmpdir(tag);
  assert_non_null(n->home);
  f->count++;
  ts_daemon_init(&n->d, n->home);
  write_config(n, conf);
  if (ts_daemon_spawn(&n->d, NULL) != 0 ||
      ts_daemon_wait_ready(&n->d, ts_timeout_ms(20000)) != 0)
    FAIL_DUMP(f, "parleyd %c did not start", n->name);
  node_connect(n);
  return n;
}

/* SIGTERM (must exit 0), then the same daemon again on the same XDG dirs
 * and the same UDP address, so the peer's stored address stays right. */
static void node_restart(node_t *n) {
  node_disconnect(n);
  int st = ts_daemon_stop(&n->d);
  if (st != 0)
    FAIL_DUMP(n->fx, "parleyd %c exited with %d on SIGTERM", n->name, st);
  char listen[64];
  snprintf(listen, sizeof(listen), "%s", n->listen);
  const char *args[] = {"--listen", listen, NULL};
  char peer_id[65];
  snprintf(peer_id, sizeof(peer_id), "%s", n->d.peer_id);
  if (ts_daemon_spawn(&n->d, args) != 0 ||
      ts_daemon_wait_ready(&n->d, ts_timeout_ms(20000)) != 0)
    FAIL_DUMP(n->fx, "parleyd %c did not restart", n->name);
  assert_string_equal(n->d.peer_id, peer_id);
  n->log_mark = 0; /* a new stderr file */
  node_connect(n);
  assert_string_equal(n->listen, listen);
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->t0 = time(NULL);
  *state = f;
  return 0;
}

/* Every daemon must exit 0 on SIGTERM: under sanitizers that also means no
 * leak and no memory error at shutdown. */
static int teardown(void **state) {
  fx_t *f = *state;
  int bad = 0;
  for (int i = 0; i < f->count; i++) {
    node_t *n = &f->n[i];
    node_disconnect(n);
    if (n->d.pid > 0) {
      int st = ts_daemon_stop(&n->d);
      if (st != 0) {
        fprintf(stderr, "parleyd %c exited with status %d\n", n->name, st);
        ts_daemon_dump(&n->d);
        bad = 1;
      }
    }
  }
  ts_kill_all();
  for (int i = 0; i < f->count; i++) {
    ts_rm_rf(f->n[i].home);
    free(f->n[i].home);
  }
  free(f);
  return bad ? -1 : 0;
}

/* --- requests ----------------------------------------------------------- */

/* A request that must succeed; returns its result (new reference). */
static json_t *rpc_ok(node_t *n, const char *method, json_t *params) {
  json_t *resp = ts_rpc_call(n->rpc, method, params, 0);
  json_t *res = json_object_get(resp, "result");
  if (!res) {
    char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    fprintf(stderr, "%c: %s failed: %s\n", n->name, method,
            s ? s : "(no response)");
    free(s);
    json_decref(resp);
    FAIL_DUMP(n->fx, "%c: %s failed", n->name, method);
  }
  json_incref(res);
  json_decref(resp);
  return res;
}

/* A request that must fail with code; returns the error message (static
 * copy, for ts_assert_contains). */
static const char *rpc_err(node_t *n, const char *method, json_t *params,
                           int code) {
  static char msg[256];
  json_t *resp = ts_rpc_call(n->rpc, method, params, 0);
  int got = ts_rpc_error_code(resp);
  snprintf(msg, sizeof(msg), "%s", ts_rpc_error_message(resp));
  if (got != code || !msg[0]) {
    char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    fprintf(stderr, "%c: %s: want error %d, got %s\n", n->name, method, code,
            s ? s : "(no response)");
    free(s);
  }
  json_decref(resp);
  assert_int_equal(got, code);
  assert_true(msg[0] != '\0');
  return msg;
}

static void add_contact(node_t *n, const node_t *other) {
  json_decref(
      rpc_ok(n, "add_contact", json_pack("{s:s}", "ticket", other->ticket)));
}

/* start_call; checks the result and returns the call ID. */
static call_id_t start_call(node_t *n, const char *peer_arg,
                            const char *peer_hex, bool video) {
  json_t *r = rpc_ok(n, "start_call",
                     json_pack("{s:s, s:b}", "peer", peer_arg, "video", video));
  call_id_t id;
  const char *s = json_string_value(json_object_get(r, "call_id"));
  assert_non_null(s);
  assert_int_equal(strlen(s), ID_LEN);
  snprintf(id.s, sizeof(id.s), "%s", s);
  assert_string_equal(json_string_value(json_object_get(r, "peer")), peer_hex);
  assert_string_equal(json_string_value(json_object_get(r, "state")),
                      "ringing");
  assert_string_equal(json_string_value(json_object_get(r, "direction")),
                      "outgoing");
  assert_int_equal(json_is_true(json_object_get(r, "video")), video);
  json_decref(r);
  return id;
}

static void call_action(node_t *n, const char *method, const call_id_t *id) {
  json_t *r = rpc_ok(n, method, json_pack("{s:s}", "call_id", id->s));
  assert_true(json_is_object(r) && json_object_size(r) == 0);
  json_decref(r);
}

/* list_calls: the live calls as an array (new reference). */
static json_t *list_calls(node_t *n) {
  json_t *r = rpc_ok(n, "list_calls", NULL);
  assert_true(json_is_array(r));
  return r;
}

/* Exactly one live call, with this ID, direction and state. */
static void expect_one_call(node_t *n, const call_id_t *id, const char *dir,
                            const char *state) {
  json_t *r = list_calls(n);
  json_t *c = json_array_get(r, 0);
  if (json_array_size(r) != 1 || strcmp(str_of(c, "call_id"), id->s) != 0 ||
      strcmp(str_of(c, "direction"), dir) != 0 ||
      strcmp(str_of(c, "state"), state) != 0) {
    char *s = json_dumps(r, JSON_COMPACT);
    fprintf(stderr, "%c: want one %s %s call %s, list_calls says %s\n", n->name,
            dir, state, id->s, s);
    free(s);
    json_decref(r);
    FAIL_DUMP(n->fx, "unexpected list_calls");
  }
  json_decref(r);
}

static void expect_no_calls(node_t *n) {
  json_t *r = list_calls(n);
  if (json_array_size(r) != 0) {
    char *s = json_dumps(r, JSON_COMPACT);
    fprintf(stderr, "%c: want no live call, list_calls says %s\n", n->name, s);
    free(s);
    json_decref(r);
    FAIL_DUMP(n->fx, "unexpected live call");
  }
  json_decref(r);
}

/* --- events ------------------------------------------------------------- */

static bool ev_match(const json_t *ev, const char *name, const char *call_id,
                     const char *key, const char *val) {
  const json_t *p = json_object_get(ev, "params");
  return strcmp(str_of(ev, "method"), name) == 0 &&
         (!call_id || strcmp(str_of(p, "call_id"), call_id) == 0) &&
         (!key || strcmp(str_of(p, key), val) == 0);
}

static json_t *find_seen(const node_t *n, const char *name, const char *call_id,
                         const char *key, const char *val) {
  size_t i;
  json_t *ev;
  json_array_foreach(n->seen, i, ev) {
    if (ev_match(ev, name, call_id, key, val))
      return json_object_get(ev, "params");
  }
  return NULL;
}

/* Reads events until none comes for quiet_ms. */
static void drain_events(node_t *n, int quiet_ms) {
  json_t *ev;
  while ((ev = ts_rpc_next_notification(n->ev, quiet_ms)) != NULL)
    json_array_append_new(n->seen, ev);
}

/* Waits for an event (already seen or yet to come) named name for call_id
 * (any if NULL) whose params[key] is val (if key). Returns its params,
 * borrowed from n->seen; fails the test after timeout_ms. */
static json_t *wait_event_ms(node_t *n, const char *name, const char *call_id,
                             const char *key, const char *val, int timeout_ms) {
  json_t *p = find_seen(n, name, call_id, key, val);
  int64_t deadline = ts_now_ms() + timeout_ms;
  while (!p) {
    int64_t left = deadline - ts_now_ms();
    json_t *ev = left > 0 ? ts_rpc_next_notification(n->ev, (int)left) : NULL;
    if (!ev)
      FAIL_DUMP(n->fx, "%c: no %s%s%s%s%s event for call %s in %d ms", n->name,
                name, key ? " with " : "", key ? key : "", key ? "=" : "",
                key ? val : "", call_id ? call_id : "(any)", timeout_ms);
    json_array_append_new(n->seen, ev);
    if (ev_match(ev, name, call_id, key, val))
      p = json_object_get(ev, "params");
  }
  return p;
}

static json_t *wait_event(node_t *n, const char *name, const call_id_t *id) {
  return wait_event_ms(n, name, id ? id->s : NULL, NULL, NULL, ev_ms());
}

static void wait_state(node_t *n, const call_id_t *id, const char *state) {
  wait_event_ms(n, "call-state", id->s, "state", state, ev_ms());
}

static size_t count_seen(const node_t *n, const char *name,
                         const call_id_t *id) {
  size_t i, k = 0;
  json_t *ev;
  json_array_foreach(n->seen, i, ev) {
    k += ev_match(ev, name, id ? id->s : NULL, NULL, NULL);
  }
  return k;
}

/* Waits for call-ended of id at n and checks its reason (and detail when
 * not NULL); returns its duration_seconds. */
static long long wait_ended(node_t *n, const call_id_t *id, const char *reason,
                            const char *detail) {
  json_t *p = wait_event(n, "call-ended", id);
  const char *r = json_string_value(json_object_get(p, "reason"));
  const char *d = json_string_value(json_object_get(p, "detail"));
  if (!r || strcmp(r, reason) != 0 || !d || (detail && strcmp(d, detail) != 0))
    FAIL_DUMP(n->fx, "%c: call %s ended with %s (%s), want %s (%s)", n->name,
              id->s, r ? r : "?", d ? d : "?", reason, detail ? detail : "*");
  json_t *dur = json_object_get(p, "duration_seconds");
  assert_true(json_is_integer(dur));
  wait_state(n, id, "ended");
  return json_integer_value(dur);
}

/* The caller rings, the callee sees the offer: returns the call ID. */
static call_id_t ring(node_t *caller, node_t *callee, bool video) {
  call_id_t id = start_call(caller, callee->ticket, callee->d.peer_id, video);
  wait_state(caller, &id, "ringing");
  json_t *in = wait_event(callee, "incoming-call", &id);
  assert_string_equal(json_string_value(json_object_get(in, "peer")),
                      caller->d.peer_id);
  assert_int_equal(json_is_true(json_object_get(in, "video")), video);
  wait_state(callee, &id, "incoming");
  return id;
}

/* The callee answers; both sides see call-answered and reach active. */
static void answer(node_t *caller, node_t *callee, const call_id_t *id) {
  call_action(callee, "answer_call", id);
  wait_event(callee, "call-answered", id);
  wait_event(caller, "call-answered", id);
  wait_state(callee, id, "active");
  wait_state(caller, id, "active");
}

/* --- history ------------------------------------------------------------ */

/* n's history must hold exactly the records in want (any order). */
static void expect_history(node_t *n, const want_rec_t *want, size_t count) {
  json_t *h = rpc_ok(n, "get_call_history", json_pack("{s:i}", "limit", 100));
  char *dump = json_dumps(h, JSON_COMPACT);
  if (json_array_size(h) != count)
    FAIL_DUMP(n->fx, "%c: want %zu records, history is %s", n->name, count,
              dump);
  time_t now = time(NULL);
  for (size_t w = 0; w < count; w++) {
    const want_rec_t *x = &want[w];
    json_t *rec = NULL, *r;
    size_t i;
    json_array_foreach(h, i, r) {
      if (strcmp(str_of(r, "call_id"), x->call_id) == 0)
        rec = r;
    }
    if (!rec)
      FAIL_DUMP(n->fx, "%c: no record of call %s in %s", n->name, x->call_id,
                dump);
    const char *peer = x->peer->d.peer_id;
    long long dur =
        json_integer_value(json_object_get(rec, "duration_seconds"));
    long long ts = json_integer_value(json_object_get(rec, "timestamp"));
    bool ok = strcmp(str_of(rec, "peer"), peer) == 0 &&
              strcmp(str_of(rec, "direction"), x->direction) == 0 &&
              strcmp(str_of(rec, "ended_reason"), x->reason) == 0 &&
              json_is_boolean(json_object_get(rec, "had_video")) &&
              json_is_true(json_object_get(rec, "had_video")) == x->had_video &&
              dur >= x->min_duration && dur <= x->max_duration &&
              ts >= (long long)n->fx->t0 - 1 && ts <= (long long)now + 1;
    if (!ok)
      FAIL_DUMP(n->fx,
                "%c: record of %s is wrong: want peer %.8s, %s, %s, duration "
                "%lld..%lld, had_video %d, timestamp %lld..%lld; history is %s",
                n->name, x->call_id, peer, x->direction, x->reason,
                x->min_duration, x->max_duration, x->had_video,
                (long long)n->fx->t0 - 1, (long long)now + 1, dump);
  }
  free(dump);
  json_decref(h);
}

/* Shorthands for records of calls that never got answered. */
static want_rec_t unanswered(const call_id_t *id, const node_t *peer,
                             const char *dir, const char *reason) {
  return (want_rec_t){id->s, peer, dir, reason, 0, 0, false};
}

/* --- logs --------------------------------------------------------------- */

/* Messages the signaling layer logs when it throws a session away and
 * starts a new one (src/signal/signal.c). */
static const char *const session_restarts[] = {
    "starting anew", "starting a newer one", "starting over", "syncing ours"};

static void mark_log(node_t *n) {
  char *s = ts_daemon_stderr(&n->d);
  n->log_mark = strlen(s);
  free(s);
}

static void expect_no_session_restart(node_t *n) {
  char *s = ts_daemon_stderr(&n->d);
  const char *tail = strlen(s) >= n->log_mark ? s + n->log_mark : s;
  for (size_t i = 0; i < ARRAY_SIZE(session_restarts); i++)
    if (strstr(tail, session_restarts[i]))
      FAIL_DUMP(n->fx, "%c re-initiated the session (\"%s\") after a restart",
                n->name, session_restarts[i]);
  free(s);
}

/* --- tests -------------------------------------------------------------- */

/* The whole happy path, with every event both subscribers must see, the
 * live call in list_calls, status and parleyctl, and a duration that counts
 * from the answer. */
static void test_answer_end(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(b, a);
  call_id_t id = ring(a, b, false);
  expect_one_call(a, &id, "outgoing", "ringing");
  expect_one_call(b, &id, "incoming", "incoming");
  /* No duration before the answer. */
  json_t *l = list_calls(b);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0),
                                                      "duration_seconds")),
                   0);
  json_decref(l);

  answer(a, b, &id);
  int64_t answered = ts_now_ms();
  expect_one_call(a, &id, "outgoing", "active");
  expect_one_call(b, &id, "incoming", "active");
  json_t *st = rpc_ok(a, "status", NULL);
  json_t *active = json_object_get(st, "active_calls");
  assert_int_equal(json_array_size(active), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(active, 0), "call_id")),
      id.s);
  json_decref(st);

  /* parleyctl shows the live call, in a table and as JSON. */
  ts_output_t o;
  const char *calls[] = {"calls", NULL};
  assert_int_equal(ts_run_ctl(b->d.socket, calls, &o), 0);
  assert_int_equal(o.status, 0);
  ts_assert_contains(o.out, id.s);
  ts_assert_contains(o.out, "incoming");
  ts_assert_contains(o.out, "active");
  ts_output_free(&o);
  const char *calls_json[] = {"--json", "calls", NULL};
  assert_int_equal(ts_run_ctl(a->d.socket, calls_json, &o), 0);
  assert_int_equal(o.status, 0);
  json_t *arr = json_loads(o.out, 0, NULL);
  assert_int_equal(json_array_size(arr), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(arr, 0), "state")),
      "active");
  json_decref(arr);
  ts_output_free(&o);

  /* Let the call last more than a second, then hang up at the caller. */
  while (ts_now_ms() - answered < 1500)
    ts_sleep_ms(50);
  call_action(a, "end_call", &id);
  long long da = wait_ended(a, &id, "completed", "hung up");
  long long db = wait_ended(b, &id, "completed", "peer hung up");
  long long max = (ts_now_ms() - answered) / 1000 + 1;
  assert_true(da >= 1 && da <= max);
  assert_true(db >= 1 && db <= max);
  expect_no_calls(a);
  expect_no_calls(b);
  /* Each side saw each event once, in order. */
  assert_int_equal(count_seen(b, "incoming-call", &id), 1);
  assert_int_equal(count_seen(a, "incoming-call", NULL), 0);
  assert_int_equal(count_seen(a, "call-answered", &id), 1);
  assert_int_equal(count_seen(b, "call-answered", &id), 1);
  assert_int_equal(count_seen(a, "call-ended", &id), 1);
  assert_int_equal(count_seen(b, "call-ended", &id), 1);

  want_rec_t ra = {id.s, b, "outgoing", "completed", 1, max, false};
  want_rec_t rb = {id.s, a, "incoming", "completed", 1, max, false};
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

/* A video call hung up by the callee: had_video on both records. */
static void test_video_call_callee_hangs_up(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(b, a);
  call_id_t id = ring(a, b, true);
  int64_t t = ts_now_ms();
  answer(a, b, &id);
  json_t *l = list_calls(a);
  assert_true(json_is_true(json_object_get(json_array_get(l, 0), "video")));
  json_decref(l);
  call_action(b, "end_call", &id);
  long long db = wait_ended(b, &id, "completed", "hung up");
  long long da = wait_ended(a, &id, "completed", "peer hung up");
  long long max = (ts_now_ms() - t) / 1000 + 1;
  assert_true(da >= 0 && da <= max && db >= 0 && db <= max);
  want_rec_t ra = {id.s, b, "outgoing", "completed", 0, max, true};
  want_rec_t rb = {id.s, a, "incoming", "completed", 0, max, true};
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

static void test_reject(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(b, a);
  call_id_t id = ring(a, b, false);
  json_decref(rpc_ok(
      b, "reject_call",
      json_pack("{s:s, s:s}", "call_id", id.s, "reason", "in a meeting")));
  wait_ended(b, &id, "rejected", "in a meeting");
  wait_ended(a, &id, "rejected", "in a meeting");
  assert_int_equal(count_seen(a, "call-answered", &id), 0);
  expect_no_calls(a);
  expect_no_calls(b);
  want_rec_t ra = unanswered(&id, b, "outgoing", "rejected");
  want_rec_t rb = unanswered(&id, a, "incoming", "rejected");
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);

  /* Without a reason the caller is told "rejected". */
  call_id_t id2 = ring(a, b, false);
  call_action(b, "reject_call", &id2);
  wait_ended(a, &id2, "rejected", "rejected");
  wait_ended(b, &id2, "rejected", NULL);
  want_rec_t ra2[] = {ra, unanswered(&id2, b, "outgoing", "rejected")};
  want_rec_t rb2[] = {rb, unanswered(&id2, a, "incoming", "rejected")};
  expect_history(a, ra2, 2);
  expect_history(b, rb2, 2);
}

/* ring_timeout = 1.5 on both: nobody answers, both sides record missed
 * after about 1.5 s instead of the default 45 s. */
static void test_ring_timeout(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, "ring_timeout = 1.5\n");
  node_t *b = node_start(f, "ring_timeout = 1.5\n");
  add_contact(b, a);
  int64_t t = ts_now_ms();
  call_id_t id = ring(a, b, false);
  wait_event_ms(a, "call-ended", id.s, "reason", "missed",
                ts_timeout_ms(15000));
  int64_t took = ts_now_ms() - t;
  wait_ended(a, &id, "missed", "no answer");
  wait_ended(b, &id, "missed", NULL);
  fprintf(stderr, "ring timeout ended the call after %lld ms\n",
          (long long)took);
  assert_true(took >= 1400);
  /* Too late to answer now. */
  rpc_err(b, "answer_call", json_pack("{s:s}", "call_id", id.s),
          API_ERR_NO_SUCH_CALL);
  want_rec_t ra = unanswered(&id, b, "outgoing", "missed");
  want_rec_t rb = unanswered(&id, a, "incoming", "missed");
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

/* Only the callee rings for a short time: when it gives up, the caller
 * must stop ringing too instead of waiting for its own 45 s. */
static void test_ring_timeout_at_callee(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL);
  node_t *b = node_start(f, "ring_timeout = 1.5\n");
  add_contact(b, a);
  int64_t t = ts_now_ms();
  call_id_t id = ring(a, b, false);
  wait_ended(b, &id, "missed", "no answer");
  wait_event_ms(a, "call-ended", id.s, NULL, NULL, ts_timeout_ms(10000));
  int64_t took = ts_now_ms() - t;
  wait_ended(a, &id, "missed", "no answer");
  fprintf(stderr, "callee's ring timeout ended the call after %lld ms\n",
          (long long)took);
  assert_true(took >= 1400);
  want_rec_t ra = unanswered(&id, b, "outgoing", "missed");
  want_rec_t rb = unanswered(&id, a, "incoming", "missed");
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

/* C calls B while A and B talk: C is rejected with reason busy, B records
 * C's call as missed without ringing, and A-B goes on. */
static void test_busy(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL),
         *c = node_start(f, NULL);
  add_contact(b, a);
  add_contact(b, c);
  call_id_t ab = ring(a, b, false);
  answer(a, b, &ab);

  call_id_t cb = start_call(c, b->ticket, b->d.peer_id, false);
  wait_ended(c, &cb, "rejected", "busy");
  wait_ended(b, &cb, "missed", "busy");
  assert_int_equal(count_seen(b, "incoming-call", &cb), 0);
  expect_one_call(a, &ab, "outgoing", "active");
  expect_one_call(b, &ab, "incoming", "active");
  expect_no_calls(c);

  call_action(b, "end_call", &ab);
  wait_ended(a, &ab, "completed", "peer hung up");
  wait_ended(b, &ab, "completed", "hung up");
  want_rec_t ra = {ab.s, b, "outgoing", "completed", 0, 60, false};
  want_rec_t rb[] = {{ab.s, a, "incoming", "completed", 0, 60, false},
                     unanswered(&cb, c, "incoming", "missed")};
  want_rec_t rc = unanswered(&cb, b, "outgoing", "rejected");
  expect_history(a, &ra, 1);
  expect_history(b, rb, 2);
  expect_history(c, &rc, 1);
}

/* The caller hangs up before the answer: missed on both sides. */
static void test_cancel(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(b, a);
  call_id_t id = ring(a, b, false);
  call_action(a, "end_call", &id);
  wait_ended(a, &id, "missed", "cancelled");
  wait_ended(b, &id, "missed", "cancelled by the caller");
  rpc_err(b, "answer_call", json_pack("{s:s}", "call_id", id.s),
          API_ERR_NO_SUCH_CALL);
  expect_no_calls(a);
  expect_no_calls(b);
  want_rec_t ra = unanswered(&id, b, "outgoing", "missed");
  want_rec_t rb = unanswered(&id, a, "incoming", "missed");
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

/* A UDP port on 127.0.0.1 that was bound a moment ago and is closed now. */
static int closed_udp_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

/* B's real peer ID at an address where nothing listens: the call fails
 * fast, recorded on the caller only (B never hears of it). */
static void test_unreachable(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  char ticket[256];
  snprintf(ticket, sizeof(ticket), "parley1:%s@127.0.0.1:%d", b->d.peer_id,
           closed_udp_port());
  int64_t t = ts_now_ms();
  json_t *resp = ts_rpc_call(a->rpc, "start_call",
                             json_pack("{s:s}", "peer", ticket), ev_ms());
  assert_non_null(resp);
  call_id_t id;
  json_t *res = json_object_get(resp, "result");
  if (res) {
    snprintf(id.s, sizeof(id.s), "%s",
             json_string_value(json_object_get(res, "call_id")));
    wait_event_ms(a, "call-ended", id.s, NULL, NULL, ts_timeout_ms(10000));
    wait_ended(a, &id, "failed", "peer unreachable");
  } else {
    /* Refused at once: the record is written all the same. */
    assert_int_equal(ts_rpc_error_code(resp), API_ERR_PEER_UNREACHABLE);
    json_t *ev =
        wait_event_ms(a, "call-ended", NULL, "reason", "failed", ev_ms());
    snprintf(id.s, sizeof(id.s), "%s",
             json_string_value(json_object_get(ev, "call_id")));
  }
  json_decref(resp);
  int64_t took = ts_now_ms() - t;
  fprintf(stderr, "unreachable peer: call failed after %lld ms\n",
          (long long)took);
  assert_true(took < ts_timeout_ms(6000));
  assert_int_equal(count_seen(a, "call-answered", NULL), 0);
  expect_no_calls(a);
  expect_no_calls(b);
  want_rec_t ra = unanswered(&id, b, "outgoing", "failed");
  expect_history(a, &ra, 1);
  expect_history(b, NULL, 0);
  drain_events(b, 200);
  assert_int_equal(json_array_size(b->seen), 0);
}

/* Under the default policy (contacts) B refuses a caller it does not know:
 * no ring, A's call ends rejected. */
static void test_unknown_caller_refused(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  call_id_t id = start_call(a, b->ticket, b->d.peer_id, false);
  wait_ended(a, &id, "rejected", NULL);
  wait_ended(b, &id, "rejected", NULL);
  assert_int_equal(count_seen(b, "incoming-call", NULL), 0);
  assert_int_equal(count_seen(b, "call-state", &id), 1); /* only "ended" */
  char *log = ts_daemon_stderr(&b->d);
  ts_assert_contains(log, "not a contact");
  free(log);
  expect_no_calls(a);
  expect_no_calls(b);
  want_rec_t ra = unanswered(&id, b, "outgoing", "rejected");
  want_rec_t rb = unanswered(&id, a, "incoming", "rejected");
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

/* accept_calls_from = anyone: the same unknown caller rings. */
static void test_anyone_may_call(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL);
  node_t *b = node_start(f, "accept_calls_from = anyone\n");
  call_id_t id = ring(a, b, false);
  call_action(b, "reject_call", &id);
  wait_ended(a, &id, "rejected", "rejected");
  wait_ended(b, &id, "rejected", NULL);
  want_rec_t ra = unanswered(&id, b, "outgoing", "rejected");
  want_rec_t rb = unanswered(&id, a, "incoming", "rejected");
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

/* Sends start_call to both daemons before reading either answer. */
static void start_both(node_t *a, node_t *b, json_t **ra, json_t **rb) {
  char la[1200], lb[1200];
  snprintf(la, sizeof(la),
           "{\"jsonrpc\":\"2.0\",\"id\":\"glare\",\"method\":\"start_call\","
           "\"params\":{\"peer\":\"%s\"}}\n",
           b->d.peer_id);
  snprintf(lb, sizeof(lb),
           "{\"jsonrpc\":\"2.0\",\"id\":\"glare\",\"method\":\"start_call\","
           "\"params\":{\"peer\":\"%s\"}}\n",
           a->d.peer_id);
  assert_int_equal(ts_rpc_send_raw(a->rpc, la, strlen(la)), 0);
  assert_int_equal(ts_rpc_send_raw(b->rpc, lb, strlen(lb)), 0);
  *ra = ts_rpc_read_json(a->rpc, ev_ms());
  *rb = ts_rpc_read_json(b->rpc, ev_ms());
  assert_non_null(*ra);
  assert_non_null(*rb);
}

/* A and B call each other at the same moment: one call survives, the one
 * offered by the smaller peer ID, active on both sides; one record each. */
static void glare_round(node_t *a, node_t *b, want_rec_t *wa, want_rec_t *wb,
                        size_t *n) {
  json_t *ra, *rb;
  start_both(a, b, &ra, &rb);
  node_t *w = strcmp(a->d.peer_id, b->d.peer_id) < 0 ? a : b;
  node_t *l = w == a ? b : a;
  json_t *rw = w == a ? ra : rb, *rl = w == a ? rb : ra;
  call_id_t id, lost;
  if (!json_object_get(rw, "result") || !json_object_get(rl, "result")) {
    /* One offer arrived before the other side's start_call ran: that side
     * is already ringing and says busy; it answers the incoming call. */
    json_t *ok = json_object_get(rw, "result") ? rw : rl;
    json_t *busy = ok == rw ? rl : rw;
    node_t *caller = ok == rw ? w : l, *callee = caller == w ? l : w;
    assert_int_equal(ts_rpc_error_code(busy), API_ERR_BUSY);
    fprintf(stderr, "glare: %c's offer arrived first; %c answers it\n",
            caller->name, callee->name);
    snprintf(id.s, sizeof(id.s), "%s",
             json_string_value(
                 json_object_get(json_object_get(ok, "result"), "call_id")));
    wait_event(callee, "incoming-call", &id);
    answer(caller, callee, &id);
    w = caller;
    l = callee;
  } else {
    snprintf(id.s, sizeof(id.s), "%s",
             json_string_value(
                 json_object_get(json_object_get(rw, "result"), "call_id")));
    snprintf(lost.s, sizeof(lost.s), "%s",
             json_string_value(
                 json_object_get(json_object_get(rl, "result"), "call_id")));
    assert_string_not_equal(id.s, lost.s);
    /* The loser drops its own offer (no record) and answers the winner's. */
    wait_ended(l, &lost, "missed", "merged with the peer's call");
    wait_state(w, &id, "active");
    wait_state(l, &id, "active");
    assert_int_equal(count_seen(w, "incoming-call", &lost), 0);
  }
  json_decref(ra);
  json_decref(rb);
  expect_one_call(w, &id, "outgoing", "active");
  expect_one_call(l, &id, "incoming", "active");
  call_action(a, "end_call", &id);
  wait_ended(a, &id, "completed", NULL);
  wait_ended(b, &id, "completed", NULL);
  /* A late offer of the dropped call must not leave a trace either. */
  drain_events(w, 300);
  drain_events(l, 300);
  expect_no_calls(a);
  expect_no_calls(b);
  size_t k = *n;
  char *cid = strdup(id.s); /* freed at the end of the test */
  wa[k] = (want_rec_t){
      cid, b, w == a ? "outgoing" : "incoming", "completed", 0, 60, false};
  wb[k] = (want_rec_t){
      cid, a, w == b ? "outgoing" : "incoming", "completed", 0, 60, false};
  *n = k + 1;
  expect_history(a, wa, *n);
  expect_history(b, wb, *n);
}

static void test_glare(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(a, b);
  add_contact(b, a);
  enum { ROUNDS = 3 };
  want_rec_t wa[ROUNDS], wb[ROUNDS];
  size_t n = 0;
  /* Round 1 also starts both Double Ratchet sessions at once. */
  for (int i = 0; i < ROUNDS; i++)
    glare_round(a, b, wa, wb, &n);
  for (size_t i = 0; i < n; i++)
    free((char *)wa[i].call_id);
}

/* After a restart (of either daemon) the next call works on the session
 * stored in LMDB: no side starts a new one. */
static void test_restart_keeps_session(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(b, a);
  want_rec_t wa[4], wb[4];
  call_id_t ids[4];

  ids[0] = ring(a, b, false);
  answer(a, b, &ids[0]);
  call_action(a, "end_call", &ids[0]);
  wait_ended(a, &ids[0], "completed", NULL);
  wait_ended(b, &ids[0], "completed", NULL);

  /* B restarts; A calls it by peer ID (its saved contact). */
  mark_log(a);
  node_restart(b);
  ids[1] = start_call(a, b->d.peer_id, b->d.peer_id, true);
  wait_event(b, "incoming-call", &ids[1]);
  answer(a, b, &ids[1]);
  call_action(b, "end_call", &ids[1]);
  wait_ended(a, &ids[1], "completed", NULL);
  wait_ended(b, &ids[1], "completed", NULL);
  /* And B calls A. */
  ids[2] = start_call(b, a->d.peer_id, a->d.peer_id, false);
  wait_event(a, "incoming-call", &ids[2]);
  answer(b, a, &ids[2]);
  call_action(a, "end_call", &ids[2]);
  wait_ended(a, &ids[2], "completed", NULL);
  wait_ended(b, &ids[2], "completed", NULL);
  expect_no_session_restart(a);
  expect_no_session_restart(b);

  /* Now A restarts; B calls it. */
  mark_log(b);
  node_restart(a);
  ids[3] = start_call(b, a->d.peer_id, a->d.peer_id, false);
  wait_event(a, "incoming-call", &ids[3]);
  answer(b, a, &ids[3]);
  call_action(b, "end_call", &ids[3]);
  wait_ended(a, &ids[3], "completed", NULL);
  wait_ended(b, &ids[3], "completed", NULL);
  expect_no_session_restart(a);
  expect_no_session_restart(b);

  for (int i = 0; i < 4; i++) {
    bool a_calls = i < 2, video = i == 1;
    const char *da = a_calls ? "outgoing" : "incoming";
    const char *db = a_calls ? "incoming" : "outgoing";
    wa[i] = (want_rec_t){ids[i].s, b, da, "completed", 0, 60, video};
    wb[i] = (want_rec_t){ids[i].s, a, db, "completed", 0, 60, video};
  }
  expect_history(a, wa, 4);
  expect_history(b, wb, 4);
}

/* The project's error codes for calls, and -32602 for bad params. */
static void test_api_errors(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(b, a);
  static const char *const unknown_id = "0123456789abcdef0123456789abcdef";
  static const char *const stranger =
      "4444444444444444444444444444444444444444444444444444444444444444";

  rpc_err(a, "answer_call", json_pack("{s:s}", "call_id", unknown_id),
          API_ERR_NO_SUCH_CALL);
  rpc_err(a, "reject_call", json_pack("{s:s}", "call_id", unknown_id),
          API_ERR_NO_SUCH_CALL);
  rpc_err(a, "end_call", json_pack("{s:s}", "call_id", unknown_id),
          API_ERR_NO_SUCH_CALL);
  rpc_err(a, "list_calls", json_pack("{s:s}", "call_id", unknown_id),
          API_ERR_NO_SUCH_CALL);
  ts_assert_contains(rpc_err(a, "start_call",
                             json_pack("{s:s}", "peer", stranger),
                             API_ERR_UNKNOWN_PEER),
                     "unknown peer");

  /* Wrong types, missing and unknown parameters. */
  const struct {
    const char *method, *params, *mentions;
  } bad[] = {
      {"start_call", "{\"peer\":42}", "peer"},
      {"start_call", "{}", "peer"},
      {"start_call", "{\"peer\":\"not a peer\"}", "peer"},
      {"start_call", "{\"peer\":\"parley1:zz\"}", ""},
      {"start_call", "{\"peer\":\"%B\",\"video\":\"yes\"}", "video"},
      {"start_call", "{\"peer\":\"%B\",\"colour\":true}", "colour"},
      {"answer_call", "{\"call_id\":7}", "call_id"},
      {"answer_call", "{}", "call_id"},
      {"answer_call", "[]", "call_id"},
      {"end_call", "{\"call_id\":null}", "call_id"},
      {"end_call", "\"x\"", "params"},
      {"reject_call", "{\"call_id\":\"%I\",\"reason\":5}", "reason"},
      {"reject_call", "{\"call_id\":\"%I\",\"reason\":\"bell\\u0007\"}",
       "reason"},
      {"list_calls", "{\"call_id\":true}", "call_id"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    char text[1500];
    const char *p = bad[i].params;
    size_t k = 0;
    for (; *p && k < sizeof(text) - 100; p++) {
      const char *sub = p[0] == '%' && p[1] == 'B'   ? b->ticket
                        : p[0] == '%' && p[1] == 'I' ? unknown_id
                                                     : NULL;
      if (sub) {
        k += (size_t)snprintf(text + k, sizeof(text) - k, "%s", sub);
        p++;
      } else {
        text[k++] = *p;
      }
    }
    text[k] = '\0';
    json_t *params = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(params);
    ts_assert_contains(
        rpc_err(a, bad[i].method, params, API_ERR_INVALID_PARAMS),
        bad[i].mentions);
  }
  /* Calling yourself. */
  ts_assert_contains(rpc_err(a, "start_call",
                             json_pack("{s:s}", "peer", a->ticket),
                             API_ERR_INVALID_PARAMS),
                     "yourself");

  /* Busy: one call at a time, on both sides, ringing or active. */
  call_id_t id = ring(a, b, false);
  rpc_err(a, "start_call", json_pack("{s:s}", "peer", b->ticket), API_ERR_BUSY);
  rpc_err(b, "start_call", json_pack("{s:s}", "peer", a->d.peer_id),
          API_ERR_BUSY);
  /* Wrong side or wrong state. */
  rpc_err(a, "answer_call", json_pack("{s:s}", "call_id", id.s),
          API_ERR_INVALID_STATE);
  rpc_err(a, "reject_call", json_pack("{s:s}", "call_id", id.s),
          API_ERR_INVALID_STATE);
  answer(a, b, &id);
  rpc_err(b, "answer_call", json_pack("{s:s}", "call_id", id.s),
          API_ERR_INVALID_STATE);
  rpc_err(b, "reject_call", json_pack("{s:s}", "call_id", id.s),
          API_ERR_INVALID_STATE);
  rpc_err(a, "start_call", json_pack("{s:s}", "peer", b->d.peer_id),
          API_ERR_BUSY);
  json_t *one = rpc_ok(a, "list_calls", json_pack("{s:s}", "call_id", id.s));
  assert_int_equal(json_array_size(one), 1);
  json_decref(one);
  call_action(a, "end_call", &id);
  wait_ended(a, &id, "completed", NULL);
  wait_ended(b, &id, "completed", NULL);
  rpc_err(a, "end_call", json_pack("{s:s}", "call_id", id.s),
          API_ERR_NO_SUCH_CALL);

  /* None of the refused requests left a record. */
  want_rec_t ra = {id.s, b, "outgoing", "completed", 0, 60, false};
  want_rec_t rb = {id.s, a, "incoming", "completed", 0, 60, false};
  expect_history(a, &ra, 1);
  expect_history(b, &rb, 1);
}

/* --- parleyctl ---------------------------------------------------------- */

static void ctl(const node_t *n, int want_status, ts_output_t *o,
                const char *const *args) {
  assert_int_equal(ts_run_ctl(n->d.socket, args, o), 0);
  if (o->status != want_status)
    fprintf(stderr, "parleyctl exited %d (want %d)\nstdout: %s\nstderr: %s\n",
            o->status, want_status, o->out, o->err);
  assert_int_equal(o->status, want_status);
}

#define CTL(n, status, o, ...)                                                 \
  do {                                                                         \
    const char *const args_[] = {__VA_ARGS__, NULL};                           \
    ctl((n), (status), (o), args_);                                            \
  } while (0)

/* A call, an answer, a hang-up and a rejected video call, all through
 * parleyctl; its exit codes for a daemon error and for usage errors. */
static void test_parleyctl(void **state) {
  fx_t *f = *state;
  node_t *a = node_start(f, NULL), *b = node_start(f, NULL);
  add_contact(b, a);
  ts_output_t o;

  CTL(a, 0, &o, "calls");
  ts_assert_contains(o.out, "no live calls");
  ts_output_free(&o);

  CTL(a, 0, &o, "call", b->ticket);
  call_id_t id;
  assert_int_equal(strlen(o.out), ID_LEN + 1);
  snprintf(id.s, sizeof(id.s), "%.*s", ID_LEN, o.out);
  ts_output_free(&o);
  wait_event(b, "incoming-call", &id);

  CTL(b, 0, &o, "calls");
  ts_assert_contains(o.out, id.s);
  ts_assert_contains(o.out, "incoming");
  ts_output_free(&o);
  CTL(b, 0, &o, "answer", id.s);
  ts_assert_contains(o.out, id.s);
  ts_output_free(&o);
  wait_state(a, &id, "active");
  wait_state(b, &id, "active");
  CTL(a, 0, &o, "calls");
  ts_assert_contains(o.out, "outgoing");
  ts_assert_contains(o.out, "active");
  ts_output_free(&o);
  CTL(a, 0, &o, "status");
  ts_assert_contains(o.out, "active calls: 1");
  ts_output_free(&o);
  CTL(a, 0, &o, "hangup", id.s);
  ts_output_free(&o);
  wait_ended(a, &id, "completed", "hung up");
  wait_ended(b, &id, "completed", "peer hung up");
  /* The call is gone: the daemon's error, exit 1, with its code. */
  CTL(b, 1, &o, "answer", id.s);
  ts_assert_contains(o.err, "(code 1002)");
  ts_output_free(&o);

  /* A video call by peer ID, --json, rejected with a reason. */
  CTL(a, 0, &o, "--json", "call", b->d.peer_id, "--video");
  json_t *r = json_loads(o.out, 0, NULL);
  assert_non_null(r);
  assert_true(json_is_true(json_object_get(r, "video")));
  call_id_t id2;
  snprintf(id2.s, sizeof(id2.s), "%s",
           json_string_value(json_object_get(r, "call_id")));
  json_decref(r);
  ts_output_free(&o);
  json_t *in = wait_event(b, "incoming-call", &id2);
  assert_true(json_is_true(json_object_get(in, "video")));
  CTL(b, 0, &o, "reject", id2.s, "--reason", "not now");
  ts_output_free(&o);
  wait_ended(a, &id2, "rejected", "not now");
  wait_ended(b, &id2, "rejected", "not now");

  /* Usage errors: exit 2, nothing sent. */
  CTL(a, 2, &o, "call");
  ts_output_free(&o);
  CTL(a, 2, &o, "calls", "--reason", "x");
  ts_output_free(&o);
  CTL(a, 2, &o, "answer", id.s, "--video");
  ts_output_free(&o);

  want_rec_t ra[] = {{id.s, b, "outgoing", "completed", 0, 60, false},
                     unanswered(&id2, b, "outgoing", "rejected")};
  want_rec_t rb[] = {{id.s, a, "incoming", "completed", 0, 60, false},
                     unanswered(&id2, a, "incoming", "rejected")};
  expect_history(a, ra, 2);
  expect_history(b, rb, 2);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_answer_end),
      T(test_video_call_callee_hangs_up),
      T(test_reject),
      T(test_ring_timeout),
      T(test_ring_timeout_at_callee),
      T(test_busy),
      T(test_cancel),
      T(test_unreachable),
      T(test_unknown_caller_refused),
      T(test_anyone_may_call),
      T(test_glare),
      T(test_restart_keeps_session),
      T(test_api_errors),
      T(test_parleyctl),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
