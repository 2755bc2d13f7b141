/* The daemon's identity: an Ed25519 key pair (libsodium crypto_sign).
 *
 * The peer ID is the public key as 64 lowercase hex characters. The key file
 * ("identity.key" in the data directory, mode 0600) is:
 *   8 bytes  magic "PRLYID01"
 *   32 bytes Ed25519 seed
 *   32 bytes Ed25519 public key (checked against the seed on load)
 * Anything else (short, long, bad magic, key not matching seed) is a load
 * error: the file is never silently replaced.
 *
 * Threads: loaded once at start-up on the loop thread; afterwards read-only,
 * so any thread may read an identity_t.
 */
#ifndef PARLEY_CRYPTO_IDENTITY_H
#define PARLEY_CRYPTO_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define IDENTITY_FILE "identity.key"
#define IDENTITY_FILE_LEN 72
#define PEER_ID_HEX_LEN 64

typedef struct identity {
  uint8_t public_key[32]; /* Ed25519 */
  uint8_t secret_key[64]; /* libsodium layout: seed || public key */
  char peer_id[PEER_ID_HEX_LEN + 1];
} identity_t;

/* Loads dir/identity.key, creating a fresh key pair if it does not exist.
 * Returns 0; -EINVAL for a corrupt or truncated file (err says why); or
 * -errno. err (may be NULL) receives a human-readable reason. */
int identity_load_or_create(identity_t *id, const char *dir, char *err,
                            size_t err_size);

/* Decodes the key file's bytes. Returns 0, or -EINVAL with *why set to a
 * static reason. Exposed for tests and fuzzing. */
int identity_decode(identity_t *id, const uint8_t *buf, size_t len,
                    const char **why);

/* Parses a peer ID (exactly 64 lowercase hex characters) into 32 bytes.
 * Returns 0 or -1. */
int peer_id_parse(const char *text, uint8_t out[32]);

/* Wipes the secret key. */
void identity_wipe(identity_t *id);

#endif
