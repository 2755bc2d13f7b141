/* The daemon's Ed25519 identity: creation, loading and checking of the key
 * file; see identity.h for the file format. */
#include "crypto/identity.h"

#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char identity__magic[8] = {'P', 'R', 'L', 'Y', 'I', 'D', '0', '1'};

static int identity__fail(char *err, size_t size, int code, const char *fmt,
                          const char *path) {
  if (err)
    snprintf(err, size, fmt, path);
  return code;
}

static int identity__create(identity_t *id, const char *path, char *err,
                            size_t err_size) {
  uint8_t buf[IDENTITY_FILE_LEN];
  crypto_sign_keypair(id->public_key, id->secret_key);
  memcpy(buf, identity__magic, 8);
  memcpy(buf + 8, id->secret_key, 32);
  memcpy(buf + 40, id->public_key, 32);
  int r = file_write_atomic(path, buf, sizeof(buf), 0600);
  sodium_memzero(buf, sizeof(buf));
  if (r < 0) {
    if (err)
      snprintf(err, err_size, "cannot write %s: %s", path, strerror(-r));
    return r;
  }
  LOG_INFO("identity", "created a new identity in %s", path);
  return 0;
}

int identity_decode(identity_t *id, const uint8_t *buf, size_t len,
                    const char **why) {
  uint8_t pk[32];
  memset(id, 0, sizeof(*id));
  if (len != IDENTITY_FILE_LEN) {
    *why = "wrong size (truncated or damaged)";
    return -EINVAL;
  }
  if (memcmp(buf, identity__magic, 8) != 0) {
    *why = "not a parley identity file (bad magic)";
    return -EINVAL;
  }
  crypto_sign_seed_keypair(pk, id->secret_key, buf + 8);
  if (sodium_memcmp(pk, buf + 40, 32) != 0) {
    sodium_memzero(id->secret_key, sizeof(id->secret_key));
    *why = "public key does not match the secret key";
    return -EINVAL;
  }
  memcpy(id->public_key, pk, 32);
  hex_encode(id->peer_id, id->public_key, 32);
  return 0;
}

int identity_load_or_create(identity_t *id, const char *dir, char *err,
                            size_t err_size) {
  char path[4096];
  if (sodium_init() < 0)
    return identity__fail(err, err_size, -EIO, "libsodium failed to start%s",
                          "");
  if (path_join(path, sizeof(path), dir, IDENTITY_FILE) != 0)
    return identity__fail(err, err_size, -ENAMETOOLONG, "path too long: %s",
                          dir);
  memset(id, 0, sizeof(*id));

  uint8_t *buf = NULL;
  long len = file_read_all(path, IDENTITY_FILE_LEN, &buf);
  if (len == -ENOENT) {
    int r = identity__create(id, path, err, err_size);
    if (r == 0)
      hex_encode(id->peer_id, id->public_key, 32);
    return r;
  }
  if (len < 0 && len != -EFBIG) {
    if (err)
      snprintf(err, err_size, "cannot read %s: %s", path, strerror((int)-len));
    return (int)len;
  }
  const char *why = "too long";
  int r = len < 0 ? -EINVAL : identity_decode(id, buf, (size_t)len, &why);
  if (buf) {
    sodium_memzero(buf, (size_t)len);
    free(buf);
  }
  if (r != 0 && err)
    snprintf(err, err_size, "%s is corrupt: %s; refusing to replace it", path,
             why);
  return r;
}

int peer_id_parse(const char *text, uint8_t out[32]) {
  if (!text)
    return -1;
  return hex_decode(out, 32, text, strlen(text));
}

void identity_wipe(identity_t *id) {
  sodium_memzero(id->secret_key, sizeof(id->secret_key));
}
