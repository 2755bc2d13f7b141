/* Tests of the API server (api/server.c) over a real Unix socket: the server
 * runs on its own libuv loop in a second thread of this process, so tests
 * can broadcast events and look at its state; clients are plain sockets. */
#include "testsupport.h"

#include "api/api.h"
#include "api/rpc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

/* --- a server on a loop thread ------------------------------------------ */

typedef struct srv {
  uv_loop_t loop;
  uv_async_t async;
  uv_sem_t done;
  uv_thread_t thread;
  api_server_t *server;
  char *dir;
  char path[256];
  void (*fn)(struct srv *, void *);
  void *arg;
} srv_t;

/* Test methods: echo params; "big" answers {"s": n bytes}; "clients"
 * answers the client count. */
static int m_echo(void *ctx, api_client_t *client, json_t *params,
                  json_t **result, api_error_t *err) {
  *result = params ? json_incref(params) : json_object();
  return 0;
}

static int m_big(void *ctx, api_client_t *client, json_t *params,
                 json_t **result, api_error_t *err) {
  json_int_t n = json_integer_value(json_object_get(params, "n"));
  if (n < 0 || n > 16 * 1024 * 1024)
    return api_fail(err, API_ERR_INVALID_PARAMS, "bad n");
  char *s = malloc((size_t)n + 1);
  memset(s, 'x', (size_t)n);
  s[n] = '\0';
  *result = json_pack("{s:s}", "s", s);
  free(s);
  return 0;
}

static int m_clients(void *ctx, api_client_t *client, json_t *params,
                     json_t **result, api_error_t *err) {
  srv_t *t = ctx;
  *result = json_integer((json_int_t)api_client_count(t->server));
  return 0;
}

static const api_method_t methods[] = {
    {"echo", m_echo}, {"big", m_big}, {"clients", m_clients}};

static void on_async(uv_async_t *a) {
  srv_t *t = a->data;
  t->fn(t, t->arg);
  uv_sem_post(&t->done);
}

static void loop_thread(void *arg) {
  srv_t *t = arg;
  uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* Runs fn on the loop thread and waits for it. */
static void on_loop(srv_t *t, void (*fn)(srv_t *, void *), void *arg) {
  t->fn = fn;
  t->arg = arg;
  uv_async_send(&t->async);
  uv_sem_wait(&t->done);
}

static srv_t *srv_start_at(const char *dir, const char *path) {
  srv_t *t = calloc(1, sizeof(*t));
  t->dir = strdup(dir);
  snprintf(t->path, sizeof(t->path), "%s", path);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  uv_async_init(&t->loop, &t->async, on_async);
  t->async.data = t;
  uv_sem_init(&t->done, 0);
  int rc = api_server_start(&t->server, &t->loop, t->path, methods, 3, t);
  assert_int_equal(rc, 0);
  assert_int_equal(uv_thread_create(&t->thread, loop_thread, t), 0);
  return t;
}

static void do_close(srv_t *t, void *arg) {
  api_server_close(t->server);
  uv_close((uv_handle_t *)&t->async, NULL);
}

static void srv_stop(srv_t *t) {
  on_loop(t, do_close, NULL);
  uv_thread_join(&t->thread);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  uv_sem_destroy(&t->done);
  free(t->dir);
  free(t);
}

typedef struct bcast {
  const char *event;
  size_t payload; /* bytes of "data" */
  int count;
} bcast_t;

static void do_broadcast(srv_t *t, void *arg) {
  bcast_t *b = arg;
  char *data = malloc(b->payload + 1);
  memset(data, 'A', b->payload);
  data[b->payload] = '\0';
  for (int i = 0; i < b->count; i++)
    api_broadcast(t->server, b->event,
                  json_pack("{s:s, s:i}", "data", data, "seq", i));
  free(data);
}

static void broadcast(srv_t *t, const char *event, size_t payload, int count) {
  bcast_t b = {event, payload, count};
  on_loop(t, do_broadcast, &b);
}

/* --- fixtures ----------------------------------------------------------- */

typedef struct fx {
  char *dir;
  srv_t *srv;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  f->dir = ts_tmpdir("apisrv");
  assert_non_null(f->dir);
  char path[256];
  snprintf(path, sizeof(path), "%s/run/parley/parleyd.sock", f->dir);
  f->srv = srv_start_at(f->dir, path);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (f->srv)
    srv_stop(f->srv);
  ts_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static ts_rpc_t *connect_ok(fx_t *f) {
  ts_rpc_t *c = ts_rpc_connect(f->srv->path, ts_timeout_ms(5000));
  assert_non_null(c);
  return c;
}

static void send_str(ts_rpc_t *c, const char *s) {
  assert_int_equal(ts_rpc_send_raw(c, s, strlen(s)), 0);
}

static json_t *read_json(ts_rpc_t *c) {
  json_t *v = ts_rpc_read_json(c, ts_timeout_ms(10000));
  assert_non_null(v);
  return v;
}

/* The connection still works: an echo round trip. */
static void assert_alive(ts_rpc_t *c) {
  json_t *r = ts_rpc_call_ok(c, "echo", json_pack("{s:i}", "alive", 1));
  assert_int_equal(json_integer_value(json_object_get(r, "alive")), 1);
  json_decref(r);
}

/* --- tests -------------------------------------------------------------- */

static void test_socket_and_dir_modes(void **state) {
  fx_t *f = *state;
  struct stat st;
  assert_int_equal(lstat(f->srv->path, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  char *run = ts_path(f->dir, "run");
  char *dir = ts_path(run, "parley");
  assert_int_equal(ts_file_mode(dir), 0700);
  assert_int_equal(ts_file_mode(run), 0700); /* created by the server too */
  free(run);
  free(dir);
}

static void test_framing(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  /* Two requests in one write, one with CRLF, and blank lines between. */
  send_str(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\r\n\n  \n"
              "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n");
  json_t *r = read_json(c);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
  json_decref(r);
  r = read_json(c);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
  json_decref(r);

  /* One request dribbled a byte at a time. */
  const char *req =
      "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":[7]}\n";
  for (size_t i = 0; req[i]; i++) {
    assert_int_equal(ts_rpc_send_raw(c, req + i, 1), 0);
    if (i % 16 == 0)
      ts_sleep_ms(1);
  }
  r = read_json(c);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 3);
  assert_int_equal(
      json_integer_value(json_array_get(json_object_get(r, "result"), 0)), 7);
  json_decref(r);

  /* A notification gets nothing back: the next line answers id 4. */
  send_str(c, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}\n"
              "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n"
              "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"echo\"}\n");
  r = read_json(c);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 4);
  json_decref(r);
  ts_rpc_close(c);
}

static void test_last_line_without_newline(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  send_str(c, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"echo\"}");
  shutdown(ts_rpc_fd(c), SHUT_WR);
  json_t *r = read_json(c);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 9);
  json_decref(r);
  assert_true(ts_rpc_wait_closed(c, ts_timeout_ms(5000)));
  ts_rpc_close(c);
}

static void test_errors_keep_connection(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  static const struct {
    const char *line;
    int code;
    long long id;
  } cases[] = {
      {"this is not json\n", API_ERR_PARSE, -1},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\n", API_ERR_PARSE, -1},
      {"[1,2]\n", API_ERR_INVALID_REQUEST, -1},
      {"17\n", API_ERR_INVALID_REQUEST, -1},
      {"{\"id\":5,\"method\":\"echo\"}\n", API_ERR_INVALID_REQUEST, 5},
      {"{\"jsonrpc\":\"2.0\",\"id\":6}\n", API_ERR_INVALID_REQUEST, 6},
      {"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\",\"params\":1}\n",
       API_ERR_INVALID_PARAMS, 7},
      {"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"zzz\"}\n",
       API_ERR_METHOD_NOT_FOUND, 8},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    send_str(c, cases[i].line);
    /* The unterminated object above swallows nothing: it is its own line. */
    json_t *r = read_json(c);
    ts_assert_rpc_error(r, cases[i].code, cases[i].id);
    json_decref(r);
    assert_alive(c);
  }
  ts_rpc_close(c);
}

/* Builds an echo request line of exactly len bytes (without '\n'). */
static char *request_of_len(size_t len, int id) {
  char head[80];
  int n = snprintf(head, sizeof(head),
                   "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\","
                   "\"params\":{\"s\":\"",
                   id);
  const char *tail = "\"}}";
  char *buf = malloc(len + 2);
  memcpy(buf, head, (size_t)n);
  memset(buf + n, 'y', len - (size_t)n - strlen(tail));
  memcpy(buf + len - strlen(tail), tail, strlen(tail));
  buf[len] = '\n';
  buf[len + 1] = '\0';
  return buf;
}

static void test_line_limit(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  /* Exactly API_LINE_MAX bytes: accepted. */
  char *line = request_of_len(API_LINE_MAX, 1);
  assert_int_equal(ts_rpc_send_raw(c, line, API_LINE_MAX + 1), 0);
  free(line);
  json_t *r = read_json(c);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
  assert_non_null(json_object_get(r, "result"));
  json_decref(r);

  /* One byte more: an error, the rest of the line is dropped, and the next
   * line works. */
  line = request_of_len(API_LINE_MAX + 1, 2);
  assert_int_equal(ts_rpc_send_raw(c, line, API_LINE_MAX + 2), 0);
  free(line);
  r = read_json(c);
  ts_assert_rpc_error(r, API_ERR_INVALID_REQUEST, -1);
  assert_string_equal(ts_rpc_error_message(r),
                      "line too long (limit 1048576 bytes)");
  json_decref(r);
  assert_alive(c);

  /* 2 MiB of garbage sent in pieces, then a request in the same write as
   * the end of the long line. */
  char *junk = malloc(256 * 1024);
  memset(junk, 'z', 256 * 1024);
  for (int i = 0; i < 8; i++)
    assert_int_equal(ts_rpc_send_raw(c, junk, 256 * 1024), 0);
  free(junk);
  send_str(c, "zzz\n{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\"}\n");
  r = read_json(c);
  ts_assert_rpc_error(r, API_ERR_INVALID_REQUEST, -1);
  json_decref(r);
  r = read_json(c);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 3);
  json_decref(r);
  ts_rpc_close(c);
}

static void test_disconnect_mid_line(void **state) {
  fx_t *f = *state;
  ts_rpc_t *other = connect_ok(f);
  ts_rpc_t *c = connect_ok(f);
  send_str(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"meth");
  ts_rpc_close(c);
  assert_alive(other);
  ts_rpc_t *c2 = connect_ok(f);
  assert_alive(c2);
  ts_rpc_close(c2);
  ts_rpc_close(other);
}

static void test_many_clients(void **state) {
  fx_t *f = *state;
  enum { N = 50 };
  ts_rpc_t *c[N];
  for (int i = 0; i < N; i++)
    c[i] = connect_ok(f);
  char line[128];
  for (int i = 0; i < N; i++) {
    snprintf(line, sizeof(line),
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\","
             "\"params\":[%d]}\n",
             1000 + i, i);
    send_str(c[i], line);
  }
  for (int i = N - 1; i >= 0; i--) {
    json_t *r = read_json(c[i]);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1000 + i);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(r, "result"), 0)), i);
    json_decref(r);
  }
  json_t *n = ts_rpc_call_ok(c[0], "clients", NULL);
  assert_int_equal(json_integer_value(n), N);
  json_decref(n);
  for (int i = 0; i < N; i++)
    ts_rpc_close(c[i]);
}

/* Counts notifications already received, by method, after a round trip
 * guarantees everything broadcast before has arrived. */
static int count_events(ts_rpc_t *c, const char *method) {
  json_decref(ts_rpc_call_ok(c, "echo", NULL));
  int n = 0;
  json_t *ev;
  while ((ev = ts_rpc_next_notification(c, 0)) != NULL) {
    if (strcmp(json_string_value(json_object_get(ev, "method")), method) == 0)
      n++;
    json_decref(ev);
  }
  return n;
}

static void test_subscribe_and_broadcast(void **state) {
  fx_t *f = *state;
  ts_rpc_t *all = connect_ok(f), *ended = connect_ok(f), *none = connect_ok(f),
           *media = connect_ok(f);
  json_t *r = ts_rpc_call_ok(all, "subscribe", NULL);
  assert_true(json_is_object(r) && json_object_size(r) == 0);
  json_decref(r);
  json_decref(ts_rpc_call_ok(ended, "subscribe",
                             json_pack("{s:[s]}", "events", "call-ended")));
  json_decref(
      ts_rpc_call_ok(media, "subscribe", json_pack("{s:b}", "media", 1)));

  broadcast(f->srv, "incoming-call", 10, 1);
  assert_int_equal(count_events(all, "incoming-call"), 1);
  assert_int_equal(count_events(ended, "incoming-call"), 0);
  assert_int_equal(count_events(none, "incoming-call"), 0);
  assert_int_equal(count_events(media, "incoming-call"), 1);

  broadcast(f->srv, "audio-frame", 100, 3);
  assert_int_equal(count_events(all, "audio-frame"), 0);
  assert_int_equal(count_events(media, "audio-frame"), 3);

  broadcast(f->srv, "call-ended", 10, 2);
  assert_int_equal(count_events(ended, "call-ended"), 2);
  assert_int_equal(count_events(all, "call-ended"), 2);

  /* A notification's shape. */
  broadcast(f->srv, "call-state", 5, 1);
  json_t *ev = ts_rpc_next_notification(all, ts_timeout_ms(5000));
  assert_non_null(ev);
  assert_string_equal(json_string_value(json_object_get(ev, "jsonrpc")), "2.0");
  assert_string_equal(json_string_value(json_object_get(ev, "method")),
                      "call-state");
  assert_null(json_object_get(ev, "id"));
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(ev, "params"), "data")),
      "AAAAA");
  json_decref(ev);

  /* Subscribing again replaces; an empty list unsubscribes. */
  json_decref(ts_rpc_call_ok(all, "subscribe", json_pack("{s:[]}", "events")));
  broadcast(f->srv, "call-ended", 10, 1);
  assert_int_equal(count_events(all, "call-ended"), 0);

  /* Bad params. */
  json_t *resp = ts_rpc_call(none, "subscribe",
                             json_pack("{s:[s]}", "events", "bogus"), 0);
  assert_int_equal(ts_rpc_error_code(resp), API_ERR_INVALID_PARAMS);
  ts_assert_contains(ts_rpc_error_message(resp), "bogus");
  json_decref(resp);
  resp = ts_rpc_call(none, "subscribe", json_pack("{s:s}", "media", "yes"), 0);
  assert_int_equal(ts_rpc_error_code(resp), API_ERR_INVALID_PARAMS);
  json_decref(resp);
  broadcast(f->srv, "call-ended", 10, 1);
  assert_int_equal(count_events(none, "call-ended"), 0);

  ts_rpc_close(all);
  ts_rpc_close(ended);
  ts_rpc_close(none);
  ts_rpc_close(media);
}

/* A subscriber that never reads is cut off once its queue passes the bound;
 * a reading subscriber keeps up. */
static void test_slow_subscriber_disconnected(void **state) {
  fx_t *f = *state;
  ts_rpc_t *slow = connect_ok(f), *fast = connect_ok(f);
  json_decref(ts_rpc_call_ok(slow, "subscribe", NULL));
  json_decref(ts_rpc_call_ok(fast, "subscribe",
                             json_pack("{s:[s]}", "events", "call-ended")));
  /* 48 x 256 KiB = 12 MiB > 8 MiB for slow; fast is not subscribed. */
  broadcast(f->srv, "call-quality", 256 * 1024, 48);
  assert_true(ts_rpc_wait_closed(slow, ts_timeout_ms(10000)));
  assert_alive(fast);
  json_t *n = ts_rpc_call_ok(fast, "clients", NULL);
  assert_int_equal(json_integer_value(n), 1);
  json_decref(n);
  ts_rpc_close(slow);
  ts_rpc_close(fast);
}

/* Media frames to a slow reader are dropped, not queued without bound, and
 * do not cost it its connection. */
static void test_slow_media_subscriber_drops(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  json_decref(ts_rpc_call_ok(c, "subscribe", json_pack("{s:b}", "media", 1)));
  broadcast(f->srv, "video-frame", 256 * 1024, 64); /* 16 MiB */
  int frames = count_events(c, "video-frame");
  assert_true(frames > 0);
  assert_true(frames < 64);
  ts_rpc_close(c);
}

typedef struct pipeliner {
  ts_rpc_t *c;
  int n;
  int rc;
} pipeliner_t;

static void *pipeline_writer(void *arg) {
  pipeliner_t *p = arg;
  char line[128];
  for (int i = 0; i < p->n && p->rc == 0; i++) {
    snprintf(line, sizeof(line),
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"big\","
             "\"params\":{\"n\":8192}}\n",
             i);
    p->rc = ts_rpc_send_raw(p->c, line, strlen(line));
  }
  return NULL;
}

/* A client that sends far more requests than it reads is throttled (the
 * server stops reading it), not disconnected: 2000 answers of 8 KiB are
 * twice the queue bound, and all arrive in order. */
static void test_pipelining_client_throttled(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  pipeliner_t p = {c, 2000, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, pipeline_writer, &p), 0);
  ts_sleep_ms(300); /* let the server's queue fill before reading */
  for (int i = 0; i < p.n; i++) {
    json_t *r = read_json(c);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), i);
    json_decref(r);
  }
  pthread_join(th, NULL);
  assert_int_equal(p.rc, 0);
  ts_rpc_close(c);
}

static int m_second(void *ctx, api_client_t *client, json_t *params,
                    json_t **result, api_error_t *err) {
  *result = json_string(ctx);
  return 0;
}

static const api_method_t second_methods[] = {{"echo", m_second},
                                              {"second", m_second}};

static void do_add_methods(srv_t *t, void *arg) {
  *(int *)arg = api_server_add_methods(t->server, second_methods, 2, "two");
}

/* A second table adds methods; a name already taken keeps its first one. */
static void test_add_methods(void **state) {
  fx_t *f = *state;
  int rc = -1;
  on_loop(f->srv, do_add_methods, &rc);
  assert_int_equal(rc, 0);
  ts_rpc_t *c = connect_ok(f);
  json_t *r = ts_rpc_call_ok(c, "second", NULL);
  assert_string_equal(json_string_value(r), "two");
  json_decref(r);
  assert_alive(c); /* "echo" is still the first table's */
  ts_rpc_close(c);
}

static void test_close_unlinks_and_disconnects(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  assert_alive(c);
  char path[256];
  snprintf(path, sizeof(path), "%s", f->srv->path);
  srv_stop(f->srv);
  f->srv = NULL;
  assert_false(ts_exists(path));
  assert_true(ts_rpc_wait_closed(c, ts_timeout_ms(5000)));
  ts_rpc_close(c);
}

static void test_stale_and_live_sockets(void **state) {
  fx_t *f = *state;
  /* A live server on the path: a second one refuses and leaves it alone. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  api_server_t *s2 = NULL;
  assert_int_equal(api_server_start(&s2, &loop, f->srv->path, methods, 3, NULL),
                   -EADDRINUSE);
  assert_null(s2);
  ts_rpc_t *c = connect_ok(f);
  assert_alive(c);
  ts_rpc_close(c);

  /* A socket file nobody listens on (a dead daemon's) is replaced. */
  char *stale = ts_path(f->dir, "stale.sock");
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", stale);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  close(fd);
  assert_true(ts_exists(stale));
  assert_int_equal(api_server_start(&s2, &loop, stale, methods, 3, NULL), 0);
  api_server_close(s2);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_false(ts_exists(stale));

  /* Not a socket: never removed. */
  FILE *file = fopen(stale, "w");
  fputs("precious", file);
  fclose(file);
  assert_int_equal(api_server_start(&s2, &loop, stale, methods, 3, NULL),
                   -EEXIST);
  char *text = ts_read_file(stale, NULL);
  assert_string_equal(text, "precious");
  free(text);

  /* A path longer than sun_path is refused, not truncated. */
  char longp[200];
  memset(longp, 'a', sizeof(longp) - 1);
  longp[0] = '/';
  longp[sizeof(longp) - 1] = '\0';
  assert_int_equal(api_server_start(&s2, &loop, longp, methods, 3, NULL),
                   -ENAMETOOLONG);
  assert_int_equal(uv_loop_close(&loop), 0);
  free(stale);
}

int main(void) {
  /* The server writes to clients that went away, as parleyd does; parleyd
   * ignores SIGPIPE too. */
  signal(SIGPIPE, SIG_IGN);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_socket_and_dir_modes),
      T(test_framing),
      T(test_last_line_without_newline),
      T(test_errors_keep_connection),
      T(test_line_limit),
      T(test_disconnect_mid_line),
      T(test_many_clients),
      T(test_subscribe_and_broadcast),
      T(test_slow_subscriber_disconnected),
      T(test_slow_media_subscriber_drops),
      T(test_pipelining_client_throttled),
      T(test_add_methods),
      T(test_close_unlinks_and_disconnects),
      T(test_stale_and_live_sockets),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
