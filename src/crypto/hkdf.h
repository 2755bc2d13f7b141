/* HMAC-SHA256 and HKDF-SHA256 (RFC 5869) on libsodium's
 * crypto_auth_hmacsha256, which 1.0.18 has while it lacks HKDF.
 *
 * Pure functions without shared state: any thread may call them. Callers own
 * every buffer; outputs may not overlap inputs. Intermediate secrets are
 * wiped before returning.
 */
#ifndef PARLEY_CRYPTO_HKDF_H
#define PARLEY_CRYPTO_HKDF_H

#include <stddef.h>
#include <stdint.h>

#define HKDF_HASH_LEN 32
#define HKDF_MAX_OUT (255 * HKDF_HASH_LEN)

/* out = HMAC-SHA256(key, msg). Any key length (longer than 64 bytes is
 * hashed first, as HMAC specifies). key may be NULL when key_len is 0. */
void hmac_sha256(uint8_t out[HKDF_HASH_LEN], const uint8_t *key, size_t key_len,
                 const uint8_t *msg, size_t msg_len);

/* HKDF-Extract: prk = HMAC-SHA256(salt, ikm). An absent salt (NULL or
 * length 0) is HashLen zero bytes, as RFC 5869 section 2.2 says. */
void hkdf_extract(uint8_t prk[HKDF_HASH_LEN], const uint8_t *salt,
                  size_t salt_len, const uint8_t *ikm, size_t ikm_len);

/* HKDF-Expand: out_len bytes (1..HKDF_MAX_OUT) of output keying material
 * from prk and info (info may be NULL when info_len is 0).
 * Returns 0, or -1 if out_len is 0 or above HKDF_MAX_OUT. */
int hkdf_expand(uint8_t *out, size_t out_len, const uint8_t prk[HKDF_HASH_LEN],
                const uint8_t *info, size_t info_len);

/* Extract then expand. Returns 0 or -1 as hkdf_expand. */
int hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *salt,
                size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len);

#endif
