/* HMAC-SHA256 and HKDF-SHA256 (RFC 5869) built on libsodium's HMAC; see
 * hkdf.h. */
#include "crypto/hkdf.h"

#include <sodium.h>
#include <string.h>

void hmac_sha256(uint8_t out[HKDF_HASH_LEN], const uint8_t *key, size_t key_len,
                 const uint8_t *msg, size_t msg_len) {
  static const uint8_t none = 0;
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key_len ? key : &none, key_len);
  crypto_auth_hmacsha256_update(&st, msg_len ? msg : &none, msg_len);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof(st));
}

void hkdf_extract(uint8_t prk[HKDF_HASH_LEN], const uint8_t *salt,
                  size_t salt_len, const uint8_t *ikm, size_t ikm_len) {
  static const uint8_t zeros[HKDF_HASH_LEN] = {0};
  if (salt == NULL || salt_len == 0) {
    salt = zeros;
    salt_len = sizeof(zeros);
  }
  hmac_sha256(prk, salt, salt_len, ikm, ikm_len);
}

/* T(0) = empty; T(i) = HMAC(PRK, T(i-1) | info | i); OKM = T(1) | T(2) ... */
int hkdf_expand(uint8_t *out, size_t out_len, const uint8_t prk[HKDF_HASH_LEN],
                const uint8_t *info, size_t info_len) {
  if (out_len == 0 || out_len > HKDF_MAX_OUT)
    return -1;
  crypto_auth_hmacsha256_state st;
  uint8_t t[HKDF_HASH_LEN];
  size_t t_len = 0, done = 0;
  for (uint8_t i = 1; done < out_len; i++) {
    crypto_auth_hmacsha256_init(&st, prk, HKDF_HASH_LEN);
    crypto_auth_hmacsha256_update(&st, t, t_len);
    if (info_len)
      crypto_auth_hmacsha256_update(&st, info, info_len);
    crypto_auth_hmacsha256_update(&st, &i, 1);
    crypto_auth_hmacsha256_final(&st, t);
    t_len = HKDF_HASH_LEN;
    size_t take = out_len - done < t_len ? out_len - done : t_len;
    memcpy(out + done, t, take);
    done += take;
  }
  sodium_memzero(&st, sizeof(st));
  sodium_memzero(t, sizeof(t));
  return 0;
}

int hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt,
                size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len) {
  uint8_t prk[HKDF_HASH_LEN];
  hkdf_extract(prk, salt, salt_len, ikm, ikm_len);
  int r = hkdf_expand(out, out_len, prk, info, info_len);
  sodium_memzero(prk, sizeof(prk));
  return r;
}
