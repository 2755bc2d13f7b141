/* Tests of crypto/identity: creation with the right modes, reload, and every
 * kind of corrupt key file refused without being replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"
#include "crypto/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char dir[64];
  char path[128];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  strcpy(f->dir, "/tmp/parley-id-XXXXXX");
  if (!mkdtemp(f->dir))
    return -1;
  chmod(f->dir, 0700);
  snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, IDENTITY_FILE);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  int r = system(cmd);
  free(f);
  return r;
}

static void test_create_then_load(void **state) {
  fixture_t *f = *state;
  identity_t a, b;
  char err[256];
  assert_int_equal(identity_load_or_create(&a, f->dir, err, sizeof(err)), 0);
  struct stat st;
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, IDENTITY_FILE_LEN);
  assert_int_equal(strlen(a.peer_id), 64);
  for (int i = 0; i < 64; i++)
    assert_true(strchr("0123456789abcdef", a.peer_id[i]) != NULL);

  assert_int_equal(identity_load_or_create(&b, f->dir, err, sizeof(err)), 0);
  assert_string_equal(a.peer_id, b.peer_id);
  assert_memory_equal(a.secret_key, b.secret_key, 64);

  /* The key works: a signature verifies under the peer ID's key. */
  uint8_t sig[64], pk[32];
  crypto_sign_detached(sig, NULL, (const uint8_t *)"hi", 2, b.secret_key);
  assert_int_equal(peer_id_parse(a.peer_id, pk), 0);
  assert_int_equal(
      crypto_sign_verify_detached(sig, (const uint8_t *)"hi", 2, pk), 0);
}

/* Rewrites the key file with len bytes of buf. */
static void write_file(const char *path, const uint8_t *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, buf, len), (ssize_t)len);
  close(fd);
}

static void assert_refused(fixture_t *f, const uint8_t *buf, size_t len,
                           const char *why) {
  identity_t id;
  char err[512] = "";
  write_file(f->path, buf, len);
  assert_int_equal(identity_load_or_create(&id, f->dir, err, sizeof(err)),
                   -EINVAL);
  if (!strstr(err, why))
    fail_msg("error '%s' does not say '%s'", err, why);
  /* Never silently replaced: the bad bytes are still there. */
  uint8_t *back = NULL;
  long n = file_read_all(f->path, 4096, &back);
  assert_int_equal(n, (long)len);
  if (len)
    assert_memory_equal(back, buf, len);
  free(back);
}

static void test_corrupt_files(void **state) {
  fixture_t *f = *state;
  identity_t id;
  char err[256];
  assert_int_equal(identity_load_or_create(&id, f->dir, err, sizeof(err)), 0);
  uint8_t good[IDENTITY_FILE_LEN + 8];
  uint8_t *back = NULL;
  assert_int_equal(file_read_all(f->path, IDENTITY_FILE_LEN, &back),
                   IDENTITY_FILE_LEN);
  memcpy(good, back, IDENTITY_FILE_LEN);
  free(back);

  assert_refused(f, good, 0, "wrong size");
  assert_refused(f, good, 40, "wrong size");
  assert_refused(f, good, IDENTITY_FILE_LEN - 1, "wrong size");
  memset(good + IDENTITY_FILE_LEN, 0, 8);
  assert_refused(f, good, IDENTITY_FILE_LEN + 8, "too long");

  uint8_t bad[IDENTITY_FILE_LEN];
  memcpy(bad, good, sizeof(bad));
  bad[0] ^= 1;
  assert_refused(f, bad, sizeof(bad), "bad magic");
  memcpy(bad, good, sizeof(bad));
  bad[50] ^= 0x40; /* public key no longer matches the seed */
  assert_refused(f, bad, sizeof(bad), "does not match");
  memcpy(bad, good, sizeof(bad));
  bad[10] ^= 0x01; /* seed damaged */
  assert_refused(f, bad, sizeof(bad), "does not match");
}

static void test_peer_id_parse(void **state) {
  (void)state;
  uint8_t k[32];
  char hex[65];
  memset(k, 0xab, 32);
  hex_encode(hex, k, 32);
  uint8_t out[32];
  assert_int_equal(peer_id_parse(hex, out), 0);
  assert_memory_equal(out, k, 32);
  hex[5] = 'A';
  assert_int_equal(peer_id_parse(hex, out), -1);
  hex[5] = 'b';
  hex[63] = '\0';
  assert_int_equal(peer_id_parse(hex, out), -1);
  assert_int_equal(peer_id_parse(NULL, out), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_then_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
      cmocka_unit_test(test_peer_id_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
