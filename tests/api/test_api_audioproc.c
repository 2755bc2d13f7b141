/* set_audio_processing and `parleyctl audio-processing` against a real
 * parleyd whose config file sets one default (aec = off): the defaults it
 * reports and changes, its errors, and parleyctl's output and usage
 * errors. That a call uses the defaults is tests/portaudio/test_aec.c's. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fx {
  char *home;
  ts_daemon_t d;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  f->home = ts_tmpdir("apctl");
  assert_non_null(f->home);
  ts_daemon_init(&f->d, f->home);
  char *cfg_home = ts_path(f->home, "config");
  assert_int_equal(mkdir(cfg_home, 0700), 0);
  assert_int_equal(mkdir(f->d.config_dir, 0700), 0);
  char *conf = ts_path(f->d.config_dir, "parleyd.conf");
  FILE *c = fopen(conf, "w");
  assert_non_null(c);
  fprintf(c, "aec = off\nns = auto\n");
  fclose(c);
  free(conf);
  free(cfg_home);
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

static void assert_mode(const json_t *r, const char *key, const char *want) {
  const json_t *v = json_object_get(r, key);
  const char *got = json_is_string(v)  ? json_string_value(v)
                    : json_is_true(v)  ? "on"
                    : json_is_false(v) ? "off"
                                       : "?";
  if (strcmp(got, want) != 0)
    fail_msg("%s is %s, want %s", key, got, want);
}

static void test_defaults_and_errors(void **state) {
  fx_t *f = *state;
  ts_rpc_t *c = ts_rpc_connect(f->d.socket, 5000);
  /* Nothing asked: the defaults, from the config file. */
  json_t *r = ts_rpc_call_ok(c, "set_audio_processing", NULL);
  assert_mode(r, "aec", "off");
  assert_mode(r, "ns", "auto");
  assert_mode(r, "agc", "auto");
  assert_null(json_object_get(r, "call_id"));
  json_decref(r);
  r = ts_rpc_call_ok(c, "set_audio_processing",
                     json_pack("{s:b, s:s}", "ns", 1, "aec", "auto"));
  assert_mode(r, "aec", "auto");
  assert_mode(r, "ns", "on");
  assert_mode(r, "agc", "auto");
  json_decref(r);

  json_t *e = ts_rpc_call(c, "set_audio_processing",
                          json_pack("{s:s}", "agc", "loud"), 0);
  assert_int_equal(ts_rpc_error_code(e), -32602);
  ts_assert_contains(ts_rpc_error_message(e), "agc");
  json_decref(e);
  e = ts_rpc_call(c, "set_audio_processing", json_pack("{s:i}", "echo", 1), 0);
  assert_int_equal(ts_rpc_error_code(e), -32602);
  json_decref(e);
  e = ts_rpc_call(c, "set_audio_processing",
                  json_pack("{s:s, s:b}", "call_id", "nope", "aec", 1), 0);
  assert_int_equal(ts_rpc_error_code(e), 1002);
  json_decref(e);
  /* "auto" is for the defaults only. */
  e = ts_rpc_call(c, "set_audio_processing",
                  json_pack("{s:s, s:s}", "call_id", "nope", "aec", "auto"), 0);
  assert_int_equal(ts_rpc_error_code(e), -32602);
  json_decref(e);
  ts_rpc_close(c);
}

static void test_parleyctl(void **state) {
  fx_t *f = *state;
  ts_output_t o;
  const char *set[] = {"audio-processing", "agc=off", "aec=on", NULL};
  assert_int_equal(ts_run_ctl(f->d.socket, set, &o), 0);
  assert_int_equal(o.status, 0);
  ts_assert_contains(o.out, "aec on  ns auto  agc off  (defaults for new "
                            "calls)");
  ts_output_free(&o);
  const char *bad[] = {"audio-processing", "aec=maybe", NULL};
  assert_int_equal(ts_run_ctl(f->d.socket, bad, &o), 0);
  assert_int_equal(o.status, 2);
  ts_assert_contains(o.err, "aec=maybe");
  ts_output_free(&o);
  const char *call[] = {"audio-processing", "nosuchcall", "ns=off", NULL};
  assert_int_equal(ts_run_ctl(f->d.socket, call, &o), 0);
  assert_int_equal(o.status, 1);
  ts_assert_contains(o.err, "no call with media");
  ts_output_free(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults_and_errors, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_parleyctl, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
