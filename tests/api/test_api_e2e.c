/* End-to-end tests of the API against a real parleyd in a temporary XDG
 * home: bad requests never cost the connection, big and cut-off lines, many
 * clients, file modes, the socat one-liner, restarts, a second instance and
 * SIGTERM. */
#include "testsupport.h"

#include "api/api.h"
#include "crypto/identity.h"
#include "store/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fx {
  char *home;
  ts_daemon_t d;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  f->home = ts_tmpdir("e2e");
  assert_non_null(f->home);
  if (ts_daemon_start(&f->d, f->home, NULL) != 0) {
    ts_rm_rf(f->home);
    free(f->home);
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

/* Fails the test if the daemon does not exit cleanly on SIGTERM (under
 * sanitizers that includes leaks and memory errors at shutdown). */
static int teardown(void **state) {
  fx_t *f = *state;
  int st = 0;
  if (f->d.pid > 0) {
    st = ts_daemon_stop(&f->d);
    if (st != 0) {
      fprintf(stderr, "parleyd exited with status %d\n", st);
      ts_daemon_dump(&f->d);
    }
  }
  ts_kill_all();
  ts_rm_rf(f->home);
  free(f->home);
  free(f);
  return st == 0 ? 0 : -1;
}

static ts_rpc_t *connect_ok(const fx_t *f) {
  ts_rpc_t *c = ts_rpc_connect(f->d.socket, ts_timeout_ms(5000));
  assert_non_null(c);
  return c;
}

/* `status` answers on this connection with our peer ID. */
static void assert_status_ok(const fx_t *f, ts_rpc_t *c) {
  json_t *r = ts_rpc_call_ok(c, "status", NULL);
  assert_string_equal(json_string_value(json_object_get(r, "peer_id")),
                      f->d.peer_id);
  json_decref(r);
}

static void send_line(ts_rpc_t *c, const char *line) {
  assert_int_equal(ts_rpc_send_raw(c, line, strlen(line)), 0);
}

/* --- tests -------------------------------------------------------------- */

static void test_bad_requests_keep_connection(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  static const struct {
    const char *line;
    int code;
    long long id; /* -1: null */
    const char *message;
  } cases[] = {
      {"not json at all\n", API_ERR_PARSE, -1, "parse error"},
      {"[1,2,3]\n", API_ERR_INVALID_REQUEST, -1, "batch"},
      {"\"status\"\n", API_ERR_INVALID_REQUEST, -1, "JSON object"},
      {"42\n", API_ERR_INVALID_REQUEST, -1, "JSON object"},
      {"{\"id\":11,\"method\":\"status\"}\n", API_ERR_INVALID_REQUEST, 11,
       "jsonrpc"},
      {"{\"jsonrpc\":\"1.0\",\"id\":12,\"method\":\"status\"}\n",
       API_ERR_INVALID_REQUEST, 12, "jsonrpc"},
      {"{\"jsonrpc\":\"2.0\",\"id\":13}\n", API_ERR_INVALID_REQUEST, 13,
       "method"},
      {"{\"jsonrpc\":\"2.0\",\"id\":14,\"method\":[\"status\"]}\n",
       API_ERR_INVALID_REQUEST, 14, "method"},
      {"{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"get_call_history\","
       "\"params\":{\"limit\":\"x\"}}\n",
       API_ERR_INVALID_PARAMS, 15, "limit"},
      {"{\"jsonrpc\":\"2.0\",\"id\":16,\"method\":\"get_call_history\","
       "\"params\":{\"before\":\"yesterday\"}}\n",
       API_ERR_INVALID_PARAMS, 16, "before"},
      {"{\"jsonrpc\":\"2.0\",\"id\":17,\"method\":\"status\","
       "\"params\":\"x\"}\n",
       API_ERR_INVALID_PARAMS, 17, "params"},
      {"{\"jsonrpc\":\"2.0\",\"id\":18,\"method\":\"add_contact\","
       "\"params\":{\"peer\":12}}\n",
       API_ERR_INVALID_PARAMS, 18, "peer"},
      {"{\"jsonrpc\":\"2.0\",\"id\":19,\"method\":\"nope\"}\n",
       API_ERR_METHOD_NOT_FOUND, 19, "unknown method 'nope'"},
      {"{\"jsonrpc\":\"2.0\",\"id\":20,\"method\":\"subscribe\","
       "\"params\":{\"events\":[\"no-such-event\"]}}\n",
       API_ERR_INVALID_PARAMS, 20, "no-such-event"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    send_line(c, cases[i].line);
    json_t *r = ts_rpc_read_json(c, ts_timeout_ms(10000));
    ts_assert_rpc_error(r, cases[i].code, cases[i].id);
    ts_assert_contains(ts_rpc_error_message(r), cases[i].message);
    json_decref(r);
    assert_status_ok(f, c);
  }
  /* A notification with an unknown method: no answer at all, the next line
   * is answered normally. */
  send_line(c, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n");
  assert_status_ok(f, c);
  ts_rpc_close(c);
}

static void test_two_mib_line(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f);
  size_t len = 2 * 1024 * 1024;
  char *line = malloc(len + 1);
  memset(line, 'q', len);
  line[len] = '\n';
  assert_int_equal(ts_rpc_send_raw(c, line, len + 1), 0);
  free(line);
  json_t *r = ts_rpc_read_json(c, ts_timeout_ms(10000));
  ts_assert_rpc_error(r, API_ERR_INVALID_REQUEST, -1);
  assert_string_equal(ts_rpc_error_message(r),
                      "line too long (limit 1048576 bytes)");
  json_decref(r);
  assert_status_ok(f, c);
  ts_rpc_close(c);
}

static void test_client_gone_mid_line(void **state) {
  fx_t *f = *state;
  ts_rpc_t *other = connect_ok(f);
  ts_rpc_t *c = connect_ok(f);
  send_line(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sta");
  ts_rpc_close(c);
  /* A long line cut off too. */
  c = connect_ok(f);
  char *junk = malloc(300000);
  memset(junk, '[', 300000);
  assert_int_equal(ts_rpc_send_raw(c, junk, 300000), 0);
  free(junk);
  ts_rpc_close(c);
  ts_rpc_t *fresh = connect_ok(f);
  assert_status_ok(f, fresh);
  assert_status_ok(f, other);
  json_t *r = ts_rpc_call_ok(fresh, "status", NULL);
  assert_int_equal(json_integer_value(json_object_get(r, "clients")), 2);
  json_decref(r);
  ts_rpc_close(fresh);
  ts_rpc_close(other);
}

static void test_fifty_clients(void **state) {
  fx_t *f = *state;
  enum { N = 50 };
  ts_rpc_t *c[N];
  for (int i = 0; i < N; i++)
    c[i] = connect_ok(f);
  for (int i = 0; i < N; i++) {
    char line[128];
    snprintf(line, sizeof(line),
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"status\"}\n",
             500 + i);
    send_line(c[i], line);
  }
  for (int i = 0; i < N; i++) {
    json_t *r = ts_rpc_read_json(c[i], ts_timeout_ms(15000));
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 500 + i);
    json_t *res = json_object_get(r, "result");
    assert_string_equal(json_string_value(json_object_get(res, "peer_id")),
                        f->d.peer_id);
    assert_true(json_integer_value(json_object_get(res, "clients")) >= N);
    json_decref(r);
  }
  for (int i = 0; i < N; i++)
    ts_rpc_close(c[i]);
}

static void test_file_modes(void **state) {
  fx_t *f = *state;
  struct stat st;
  assert_int_equal(lstat(f->d.socket, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  char *sockdir = ts_path(f->d.runtime_dir, "parley");
  assert_int_equal(ts_file_mode(sockdir), 0700);
  free(sockdir);
  assert_int_equal(ts_file_mode(f->d.data_dir), 0700);
  char *idf = ts_path(f->d.data_dir, IDENTITY_FILE);
  assert_int_equal(ts_file_mode(idf), 0600);
  free(idf);
}

static void test_socat_one_liner(void **state) {
  fx_t *f = *state;
  ts_output_t o;
  assert_int_equal(ts_run_sh("command -v socat", &o), 0);
  bool have = o.status == 0;
  ts_output_free(&o);
  if (!have) {
    fprintf(stderr, "socat is not installed; skipping\n");
    skip();
  }
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}' | "
           "socat - UNIX-CONNECT:%s",
           f->d.socket);
  assert_int_equal(ts_run_sh(cmd, &o), 0);
  assert_int_equal(o.status, 0);
  json_error_t err;
  json_t *r = json_loads(o.out, 0, &err);
  if (!r)
    fprintf(stderr, "socat printed: %s / %s\n", o.out, o.err);
  assert_non_null(r);
  assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
  assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(r, "result"), "peer_id")),
                      f->d.peer_id);
  json_decref(r);
  ts_output_free(&o);
}

static void put_records(const char *data_dir, unsigned n, uint64_t base) {
  store_t *s = NULL;
  assert_int_equal(store_open(&s, data_dir), 0);
  for (unsigned i = 0; i < n; i++) {
    call_record_t r = {0};
    snprintf(r.call_id, sizeof(r.call_id), "r%u", i);
    memset(r.peer, 'c', STORE_PEER_ID_LEN);
    r.direction = CALL_DIR_OUTGOING;
    r.duration_seconds = 60 + i;
    r.had_video = true;
    r.timestamp = base + i;
    r.ended_reason = CALL_END_COMPLETED;
    assert_int_equal(store_history_put(s, &r), 0);
  }
  store_close(s);
}

static void test_restart_keeps_contacts_and_history(void **state) {
  fx_t *f = *state;
  static const char *const peer =
      "1111111111111111111111111111111111111111111111111111111111111111";
  ts_rpc_t *c = connect_ok(f);
  json_decref(
      ts_rpc_call_ok(c, "add_contact",
                     json_pack("{s:s, s:s, s:[s]}", "peer", peer, "name",
                               "Carol", "addresses", "203.0.113.5:7760")));
  ts_rpc_close(c);
  char peer_id[65];
  snprintf(peer_id, sizeof(peer_id), "%s", f->d.peer_id);
  assert_int_equal(ts_daemon_stop(&f->d), 0);
  put_records(f->d.data_dir, 3, 1700000000);

  for (int round = 0; round < 2; round++) {
    assert_int_equal(ts_daemon_start(&f->d, f->home, NULL), 0);
    assert_string_equal(f->d.peer_id, peer_id); /* same identity */
    c = connect_ok(f);
    json_t *list = ts_rpc_call_ok(c, "list_contacts", NULL);
    assert_int_equal(json_array_size(list), 1);
    json_t *ct = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(ct, "peer")), peer);
    assert_string_equal(json_string_value(json_object_get(ct, "name")),
                        "Carol");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(ct, "addresses"), 0)),
        "203.0.113.5:7760");
    json_decref(list);
    json_t *h = ts_rpc_call_ok(c, "get_call_history", NULL);
    assert_int_equal(json_array_size(h), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(h, 0), "call_id")),
        "r2");
    json_decref(h);
    ts_rpc_close(c);
    assert_int_equal(ts_daemon_stop(&f->d), 0);
  }
}

static bool mentions_other_instance(const char *text) {
  return strstr(text, "another") || strstr(text, "lock") ||
         strstr(text, "already running");
}

static void test_second_instance_refused(void **state) {
  fx_t *f = *state;
  /* Same home: same data directory and same socket. */
  ts_daemon_t d2;
  ts_daemon_init(&d2, f->home);
  assert_int_equal(ts_daemon_spawn(&d2, NULL), 0);
  int st = ts_daemon_wait_exit(&d2, ts_timeout_ms(15000));
  assert_true(st > 0);
  char *err = ts_daemon_stderr(&d2);
  if (!mentions_other_instance(err))
    fprintf(stderr, "second parleyd said: %s\n", err);
  assert_true(mentions_other_instance(err));
  free(err);

  /* Same data directory, another socket: the data directory decides. */
  char *other_sock = ts_path(f->home, "other.sock");
  const char *args[] = {"--socket", other_sock, NULL};
  ts_daemon_init(&d2, f->home);
  assert_int_equal(ts_daemon_spawn(&d2, args), 0);
  st = ts_daemon_wait_exit(&d2, ts_timeout_ms(15000));
  assert_true(st > 0);
  err = ts_daemon_stderr(&d2);
  assert_true(mentions_other_instance(err));
  free(err);
  assert_false(ts_exists(other_sock));
  free(other_sock);

  /* The first one is untouched, socket included. */
  assert_true(ts_exists(f->d.socket));
  ts_rpc_t *c = connect_ok(f);
  assert_status_ok(f, c);
  ts_rpc_close(c);
}

static void test_sigterm_removes_socket(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = connect_ok(f); /* a connected client does not block exit */
  assert_status_ok(f, c);
  char *out = ts_daemon_stdout(&f->d);
  ts_assert_contains(out, f->d.peer_id);
  ts_assert_contains(out, f->d.socket);
  size_t n = strlen(out);
  assert_true(n >= 15 && strcmp(out + n - 15, "parleyd: ready\n") == 0);
  free(out);
  assert_true(ts_exists(f->d.socket));
  assert_int_equal(ts_daemon_stop(&f->d), 0);
  assert_false(ts_exists(f->d.socket));
  assert_true(ts_rpc_wait_closed(c, ts_timeout_ms(5000)));
  ts_rpc_close(c);
}

static void test_stale_socket_replaced(void **state) {
  fx_t *f = *state;
  assert_int_equal(ts_daemon_kill(&f->d), 128 + SIGKILL);
  assert_true(ts_exists(f->d.socket)); /* left behind by the dead daemon */
  assert_int_equal(ts_daemon_start(&f->d, f->home, NULL), 0);
  ts_rpc_t *c = connect_ok(f);
  assert_status_ok(f, c);
  ts_rpc_close(c);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_bad_requests_keep_connection),
      T(test_two_mib_line),
      T(test_client_gone_mid_line),
      T(test_fifty_clients),
      T(test_file_modes),
      T(test_socat_one_liner),
      T(test_restart_keeps_contacts_and_history),
      T(test_second_instance_refused),
      T(test_sigterm_removes_socket),
      T(test_stale_socket_replaced),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
