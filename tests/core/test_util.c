/* Tests of core/util: hex, big-endian helpers, directories, atomic files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_hex(void **state) {
  (void)state;
  const uint8_t in[4] = {0x00, 0xab, 0x10, 0xff};
  char out[9];
  uint8_t back[4];
  hex_encode(out, in, 4);
  assert_string_equal(out, "00ab10ff");
  assert_int_equal(hex_decode(back, 4, out, 8), 0);
  assert_memory_equal(back, in, 4);
  assert_int_equal(hex_decode(back, 4, "00AB10FF", 8), -1); /* uppercase */
  assert_int_equal(hex_decode(back, 4, "00ab10f", 7), -1);  /* short */
  assert_int_equal(hex_decode(back, 4, "00ab10fg", 8), -1); /* not hex */
}

static void test_be(void **state) {
  (void)state;
  uint8_t b[8];
  be64_put(b, 0x0102030405060708ull);
  assert_int_equal(b[0], 1);
  assert_int_equal(b[7], 8);
  assert_true(be64_get(b) == 0x0102030405060708ull);
  be32_put(b, 0xdeadbeef);
  assert_int_equal(be32_get(b), 0xdeadbeef);
  be16_put(b, 0xbeef);
  assert_int_equal(be16_get(b), 0xbeef);
}

static void test_mkdir_and_files(void **state) {
  (void)state;
  char tmpl[] = "/tmp/parley-util-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  char dir[256], file[300];
  snprintf(dir, sizeof(dir), "%s/a/b/c", tmpl);
  assert_int_equal(path_mkdir_p(dir, 0700), 0);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(path_mkdir_p(dir, 0700), 0); /* exists: fine */

  snprintf(file, sizeof(file), "%s/f", dir);
  assert_int_equal(file_write_atomic(file, "hello", 5, 0600), 0);
  assert_int_equal(stat(file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  uint8_t *buf = NULL;
  assert_int_equal(file_read_all(file, 5, &buf), 5);
  assert_memory_equal(buf, "hello", 5);
  free(buf);
  assert_int_equal(file_read_all(file, 4, &buf), -EFBIG);
  char missing[320];
  snprintf(missing, sizeof(missing), "%s/nope", dir);
  assert_int_equal(file_read_all(missing, 4, &buf), -ENOENT);
  /* A file where a directory should be. */
  assert_int_equal(path_mkdir_p(file, 0700), -ENOTDIR);

  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
  assert_int_equal(system(cmd), 0);
}

/* The pipelines' clock: never wakes early, and a deadline already past
 * does not sleep. */
static void test_sleep_until(void **state) {
  (void)state;
  uint64_t t0 = time_mono_ns();
  time_sleep_until_ns(t0 + 20000000u);
  assert_true(time_mono_ns() >= t0 + 20000000u);
  uint64_t t1 = time_mono_ns();
  time_sleep_until_ns(t0);
  assert_true(time_mono_ns() - t1 < 1000000000u);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hex),
      cmocka_unit_test(test_be),
      cmocka_unit_test(test_mkdir_and_files),
      cmocka_unit_test(test_sleep_until),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
