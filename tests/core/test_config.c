/* Tests of core/config: defaults from XDG variables, the file format and its
 * errors (file:line: reason), and settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int load_text(parley_config_t *cfg, const char *text, char *err,
                     size_t size) {
  FILE *f = fmemopen((void *)text, strlen(text), "r");
  assert_non_null(f);
  int r = config_load_stream(cfg, f, "test.conf", err, size);
  fclose(f);
  return r;
}

static void test_defaults(void **state) {
  (void)state;
  parley_config_t cfg;
  char err[256];
  setenv("XDG_CONFIG_HOME", "/x/conf", 1);
  setenv("XDG_DATA_HOME", "/x/data", 1);
  assert_int_equal(config_defaults(&cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.config_path, "/x/conf/parley/parleyd.conf");
  assert_string_equal(cfg.data_dir, "/x/data/parley");
  assert_string_equal(cfg.listen, "0.0.0.0:7760");
  assert_int_equal(cfg.dtx, 1); /* DTX on unless turned off */

  unsetenv("XDG_CONFIG_HOME");
  unsetenv("XDG_DATA_HOME");
  setenv("HOME", "/home/u", 1);
  assert_int_equal(config_defaults(&cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.config_path, "/home/u/.config/parley/parleyd.conf");
  assert_string_equal(cfg.data_dir, "/home/u/.local/share/parley");
}

static void test_file(void **state) {
  (void)state;
  parley_config_t cfg;
  char err[256];
  setenv("HOME", "/home/u", 1);
  assert_int_equal(config_defaults(&cfg, err, sizeof(err)), 0);
  assert_int_equal(load_text(&cfg,
                             "# comment\n\n"
                             "listen = [::1]:5001 # trailing\n"
                             "  data_dir=/srv/parley\n"
                             "log_level = debug\n"
                             "socket = /run/p.sock\n"
                             "accept_calls_from = anyone\n"
                             "ring_timeout = 1.5\n"
                             "offers_per_minute = 20\n"
                             "aec = off\n"
                             "ns = on\n"
                             "dtx = off\n",
                             err, sizeof(err)),
                   0);
  assert_string_equal(cfg.listen, "[::1]:5001");
  assert_string_equal(cfg.data_dir, "/srv/parley");
  assert_string_equal(cfg.socket_path, "/run/p.sock");
  assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
  assert_int_equal(cfg.accept_calls_from_anyone, 1);
  assert_int_equal(cfg.ring_timeout_ms, 1500);
  assert_int_equal(cfg.offers_per_minute, 20);
  assert_int_equal(cfg.audio_aec, CONFIG_OFF);
  assert_int_equal(cfg.audio_ns, CONFIG_ON);
  assert_int_equal(cfg.audio_agc, CONFIG_AUTO);
  assert_int_equal(cfg.dtx, 0);
}

static void test_file_errors(void **state) {
  (void)state;
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"colour = blue\n", "test.conf:1: unknown setting 'colour'"},
      {"\n\nlisten\n", "test.conf:3: expected \"key = value\""},
      {"log_level = loud\n", "test.conf:1: log_level must be"},
      {"data_dir = relative/dir\n", "test.conf:1: path must be absolute"},
      {"listen = nowhere\n", "test.conf:1: bad listen address"},
      {"listen = 1.1.1.1:1,1.1.1.1:2\n", "test.conf:1: only one listen"},
      {"accept_calls_from = friends\n", "test.conf:1: accept_calls_from"},
      {"ring_timeout = soon\n", "test.conf:1: ring_timeout must be"},
      {"ring_timeout = 0\n", "test.conf:1: ring_timeout must be"},
      {"offers_per_minute = -1\n", "test.conf:1: offers_per_minute"},
      {"aec = yes\n", "test.conf:1: aec must be auto, on or off"},
      {"agc=\n", "test.conf:1: agc must be auto, on or off"},
      {"dtx = auto\n", "test.conf:1: dtx must be on or off"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    parley_config_t cfg;
    char err[256] = "";
    setenv("HOME", "/home/u", 1);
    assert_int_equal(config_defaults(&cfg, err, sizeof(err)), 0);
    assert_int_equal(load_text(&cfg, cases[i].text, err, sizeof(err)), -1);
    if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
      fail_msg("case %zu: got '%s', want prefix '%s'", i, err, cases[i].want);
  }
}

static void test_create_missing(void **state) {
  (void)state;
  char tmpl[] = "/tmp/parley-config-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  setenv("XDG_CONFIG_HOME", tmpl, 1);
  parley_config_t cfg;
  char err[256];
  assert_int_equal(config_defaults(&cfg, err, sizeof(err)), 0);
  assert_int_equal(config_load_file(&cfg, 1, err, sizeof(err)), 0);
  struct stat st;
  assert_int_equal(stat(cfg.config_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* The template it wrote loads back to the defaults. */
  parley_config_t again = cfg;
  assert_int_equal(config_load_file(&again, 0, err, sizeof(err)), 0);
  assert_memory_equal(&again, &cfg, sizeof(cfg));
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
  assert_int_equal(system(cmd), 0);
  unsetenv("XDG_CONFIG_HOME");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_file),
      cmocka_unit_test(test_file_errors),
      cmocka_unit_test(test_create_missing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
