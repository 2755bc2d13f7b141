/* End-to-end tests of parleyctl against a real parleyd: output, --json,
 * the contact round trip, exit codes and the default socket path. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER "2222222222222222222222222222222222222222222222222222222222222222"

typedef struct fx {
  char *home;
  ts_daemon_t d;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  f->home = ts_tmpdir("ctl");
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

static int teardown(void **state) {
  fx_t *f = *state;
  int st = f->d.pid > 0 ? ts_daemon_stop(&f->d) : 0;
  if (st != 0)
    ts_daemon_dump(&f->d);
  ts_kill_all();
  ts_rm_rf(f->home);
  free(f->home);
  free(f);
  return st == 0 ? 0 : -1;
}

/* Runs parleyctl --socket <daemon's> args; asserts the exit status. The
 * output is left in *o (free with ts_output_free). */
static void ctl(const fx_t *f, int want_status, ts_output_t *o,
                const char *const *args) {
  assert_int_equal(ts_run_ctl(f->d.socket, args, o), 0);
  if (o->status != want_status)
    fprintf(stderr, "parleyctl exited %d (want %d)\nstdout: %s\nstderr: %s\n",
            o->status, want_status, o->out, o->err);
  assert_int_equal(o->status, want_status);
}

#define CTL(f, status, o, ...)                                                 \
  do {                                                                         \
    const char *const args_[] = {__VA_ARGS__, NULL};                           \
    ctl((f), (status), (o), args_);                                            \
  } while (0)

static void test_status_and_json(void **state) {
  fx_t *f = *state;
  ts_output_t o;
  CTL(f, 0, &o, "status");
  char want[128];
  snprintf(want, sizeof(want), "peer id: %s\n", f->d.peer_id);
  ts_assert_contains(o.out, want);
  ts_assert_contains(o.out, "socket: ");
  ts_output_free(&o);

  CTL(f, 0, &o, "--json", "status");
  json_t *r = json_loads(o.out, 0, NULL);
  assert_non_null(r);
  assert_string_equal(json_string_value(json_object_get(r, "peer_id")),
                      f->d.peer_id);
  assert_string_equal(json_string_value(json_object_get(r, "socket")),
                      f->d.socket);
  json_decref(r);
  ts_output_free(&o);

  /* Options may also follow the command. */
  CTL(f, 0, &o, "status", "--json");
  r = json_loads(o.out, 0, NULL);
  assert_non_null(r);
  json_decref(r);
  ts_output_free(&o);
}

static void test_ticket_and_history(void **state) {
  fx_t *f = *state;
  ts_output_t o;
  CTL(f, 0, &o, "ticket");
  char want[128];
  snprintf(want, sizeof(want), "parley1:%s", f->d.peer_id);
  assert_memory_equal(o.out, want, strlen(want));
  json_t *t = ts_rpc_call_once(f->d.socket, "get_ticket", NULL);
  char line[1024];
  snprintf(line, sizeof(line), "%s\n",
           json_string_value(
               json_object_get(json_object_get(t, "result"), "ticket")));
  assert_string_equal(o.out, line);
  json_decref(t);
  ts_output_free(&o);

  CTL(f, 0, &o, "history");
  assert_string_equal(o.out, "no calls\n");
  ts_output_free(&o);
  CTL(f, 0, &o, "--json", "history", "--limit", "5", "--before=1700000000");
  assert_string_equal(o.out, "[]\n");
  ts_output_free(&o);
}

static void test_contact_round_trip(void **state) {
  fx_t *f = *state;
  ts_output_t o;
  CTL(f, 0, &o, "contacts");
  assert_string_equal(o.out, "no contacts\n");
  ts_output_free(&o);

  CTL(f, 0, &o, "add", PEER, "--name", "Dana", "--addr", "192.0.2.9:7760",
      "--addr", "[2001:db8::9]:7760");
  ts_assert_contains(o.out, PEER);
  ts_assert_contains(o.out, "Dana");
  ts_output_free(&o);

  CTL(f, 0, &o, "contacts");
  ts_assert_contains(o.out, PEER);
  ts_assert_contains(o.out, "Dana");
  ts_assert_contains(o.out, "192.0.2.9:7760,[2001:db8::9]:7760");
  ts_output_free(&o);

  CTL(f, 0, &o, "--json", "contacts");
  json_t *r = json_loads(o.out, 0, NULL);
  assert_int_equal(json_array_size(r), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(r, 0), "name")), "Dana");
  json_decref(r);
  ts_output_free(&o);

  /* Add by ticket: the daemon's own ticket is a valid one. */
  json_t *t = ts_rpc_call_once(f->d.socket, "get_ticket", NULL);
  const char *ticket = json_string_value(
      json_object_get(json_object_get(t, "result"), "ticket"));
  CTL(f, 0, &o, "add", ticket, "--name", "me");
  ts_assert_contains(o.out, f->d.peer_id);
  ts_output_free(&o);
  json_decref(t);

  CTL(f, 0, &o, "remove", PEER);
  ts_assert_contains(o.out, "removed " PEER);
  ts_output_free(&o);
  CTL(f, 0, &o, "--json", "contacts");
  r = json_loads(o.out, 0, NULL);
  assert_int_equal(json_array_size(r), 1); /* only "me" is left */
  json_decref(r);
  ts_output_free(&o);

  /* Removing it again: the daemon's error, exit 1. */
  CTL(f, 1, &o, "remove", PEER);
  assert_string_equal(o.err, "parleyctl: no contact " PEER " (code 1005)\n");
  assert_string_equal(o.out, "");
  ts_output_free(&o);

  /* A daemon-side validation error is exit 1 too. */
  CTL(f, 1, &o, "add", "not-a-peer-id");
  ts_assert_contains(o.err, "(code -32602)");
  ts_output_free(&o);
}

static void test_usage_and_connect_errors(void **state) {
  fx_t *f = *state;
  ts_output_t o;
  CTL(f, 2, &o, "frobnicate");
  ts_assert_contains(o.err, "unknown command 'frobnicate'");
  ts_output_free(&o);
  CTL(f, 2, &o, "history", "--limit", "lots");
  ts_assert_contains(o.err, "--limit");
  ts_output_free(&o);
  CTL(f, 2, &o, "status", "--name", "x");
  ts_output_free(&o);
  CTL(f, 2, &o, "remove");
  ts_output_free(&o);
  CTL(f, 2, &o, "status", "--bogus");
  ts_output_free(&o);
  CTL(f, 0, &o, "--help");
  ts_assert_contains(o.out, "usage: parleyctl");
  ts_output_free(&o);
  CTL(f, 0, &o, "--version");
  ts_assert_contains(o.out, "parleyctl " PARLEY_VERSION);
  ts_output_free(&o);

  char *missing = ts_path(f->home, "nobody-here.sock");
  const char *args[] = {"--socket", missing, "status", NULL};
  assert_int_equal(ts_run_ctl(NULL, args, &o), 0);
  assert_int_equal(o.status, 3);
  ts_assert_contains(o.err, "cannot connect to ");
  ts_assert_contains(o.err, missing);
  ts_output_free(&o);
  free(missing);
}

/* Without --socket parleyctl finds the daemon the way the daemon chose its
 * socket: $XDG_RUNTIME_DIR/parley/parleyd.sock, or $PARLEY_SOCKET. */
static void test_default_socket_resolution(void **state) {
  fx_t *f = *state;
  char env_run[600], env_sock[600];
  snprintf(env_run, sizeof(env_run), "XDG_RUNTIME_DIR=%s", f->d.runtime_dir);
  const char *argv[] = {PARLEYCTL_PATH, "--json", "status", NULL};
  const char *env[] = {env_run, NULL};
  ts_output_t o;
  assert_int_equal(ts_run(argv, env, ts_timeout_ms(30000), &o), 0);
  assert_int_equal(o.status, 0);
  ts_assert_contains(o.out, f->d.peer_id);
  ts_output_free(&o);

  snprintf(env_sock, sizeof(env_sock), "PARLEY_SOCKET=%s", f->d.socket);
  const char *env2[] = {"XDG_RUNTIME_DIR=/nonexistent", env_sock, NULL};
  assert_int_equal(ts_run(argv, env2, ts_timeout_ms(30000), &o), 0);
  assert_int_equal(o.status, 0);
  ts_assert_contains(o.out, f->d.peer_id);
  ts_output_free(&o);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_status_and_json),           T(test_ticket_and_history),
      T(test_contact_round_trip),        T(test_usage_and_connect_errors),
      T(test_default_socket_resolution),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
