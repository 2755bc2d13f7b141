/* Tests of crypto/hkdf: RFC 5869's SHA-256 test cases 1-3, RFC 4231's HMAC
 * case with a key longer than the block, and the output length bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"
#include "crypto/hkdf.h"

#include <sodium.h>
#include <string.h>

static void unhex(uint8_t *out, size_t n, const char *hex) {
  assert_int_equal(strlen(hex), 2 * n);
  assert_int_equal(hex_decode(out, n, hex, 2 * n), 0);
}

static void fill_range(uint8_t *out, size_t n, uint8_t first) {
  for (size_t i = 0; i < n; i++)
    out[i] = (uint8_t)(first + i);
}

/* Checks PRK and OKM of one RFC case, through both the split and the
 * one-shot functions. */
static void check_case(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                       size_t ikm_len, const uint8_t *info, size_t info_len,
                       const char *prk_hex, size_t okm_len,
                       const char *okm_hex) {
  uint8_t prk[32], want_prk[32], okm[128], want_okm[128];
  unhex(want_prk, 32, prk_hex);
  unhex(want_okm, okm_len, okm_hex);
  hkdf_extract(prk, salt, salt_len, ikm, ikm_len);
  assert_memory_equal(prk, want_prk, 32);
  memset(okm, 0xaa, sizeof(okm));
  assert_int_equal(hkdf_expand(okm, okm_len, prk, info, info_len), 0);
  assert_memory_equal(okm, want_okm, okm_len);
  assert_int_equal(okm[okm_len], 0xaa); /* nothing written past the end */
  memset(okm, 0, sizeof(okm));
  assert_int_equal(
      hkdf_sha256(okm, okm_len, salt, salt_len, ikm, ikm_len, info, info_len),
      0);
  assert_memory_equal(okm, want_okm, okm_len);
}

static void test_rfc5869_case1(void **state) {
  uint8_t ikm[22], salt[13], info[10];
  memset(ikm, 0x0b, sizeof(ikm));
  fill_range(salt, sizeof(salt), 0x00);
  fill_range(info, sizeof(info), 0xf0);
  check_case(salt, sizeof(salt), ikm, sizeof(ikm), info, sizeof(info),
             "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
             42,
             "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
             "34007208d5b887185865");
}

static void test_rfc5869_case2(void **state) {
  uint8_t ikm[80], salt[80], info[80];
  fill_range(ikm, sizeof(ikm), 0x00);
  fill_range(salt, sizeof(salt), 0x60);
  fill_range(info, sizeof(info), 0xb0);
  check_case(salt, sizeof(salt), ikm, sizeof(ikm), info, sizeof(info),
             "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
             82,
             "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
             "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
             "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

/* Zero-length salt and info: the salt defaults to 32 zero bytes. */
static void test_rfc5869_case3(void **state) {
  uint8_t ikm[22], zeros[32] = {0};
  memset(ikm, 0x0b, sizeof(ikm));
  const char *prk =
      "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04";
  const char *okm = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c"
                    "738d2d9d201395faa4b61a96c8";
  check_case(NULL, 0, ikm, sizeof(ikm), NULL, 0, prk, 42, okm);
  /* An explicit all-zero salt of HashLen is the same thing. */
  check_case(zeros, sizeof(zeros), ikm, sizeof(ikm), NULL, 0, prk, 42, okm);
}

/* RFC 4231 test case 6: a 131-byte key is hashed before use. */
static void test_hmac_long_key(void **state) {
  uint8_t key[131], mac[32], want[32];
  const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
  memset(key, 0xaa, sizeof(key));
  hmac_sha256(mac, key, sizeof(key), (const uint8_t *)msg, strlen(msg));
  unhex(want, 32,
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  assert_memory_equal(mac, want, 32);
}

static void test_expand_bounds(void **state) {
  static uint8_t out[HKDF_MAX_OUT + 1];
  uint8_t prk[32], t1[32];
  memset(prk, 7, sizeof(prk));
  assert_int_equal(hkdf_expand(out, 0, prk, NULL, 0), -1);
  assert_int_equal(hkdf_expand(out, HKDF_MAX_OUT + 1, prk, NULL, 0), -1);
  assert_int_equal(hkdf_expand(out, HKDF_MAX_OUT, prk, NULL, 0), 0);
  /* The first block is T(1) = HMAC(prk, 0x01); shorter requests are
   * prefixes of longer ones. */
  const uint8_t one = 1;
  hmac_sha256(t1, prk, 32, &one, 1);
  assert_memory_equal(out, t1, 32);
  uint8_t short_out[33];
  assert_int_equal(hkdf_expand(short_out, 33, prk, NULL, 0), 0);
  assert_memory_equal(short_out, out, 33);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc5869_case1),
      cmocka_unit_test(test_rfc5869_case2),
      cmocka_unit_test(test_rfc5869_case3),
      cmocka_unit_test(test_hmac_long_key),
      cmocka_unit_test(test_expand_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
