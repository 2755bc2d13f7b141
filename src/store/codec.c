/* Byte encodings of the store's values (call records, contacts) and the
 * names of the call enums; pure functions, no LMDB. See store.h. */
#include "store/store.h"

#include "core/util.h"

#include <errno.h>
#include <string.h>

/* CallRecord v1, fixed length; timestamp and call_id live in the key only:
 *   [0] version = 1
 *   [1] direction (enum call_direction)
 *   [2] ended_reason (enum call_end_reason)
 *   [3] had_video (0 | 1)
 *   [4..11]  duration_seconds, u64 big-endian
 *   [12..43] peer ID, 32 raw bytes (so a decoded peer is always 64 lowercase
 *            hex characters: there is no way to store a malformed one)
 *
 * Contact v1, variable length, nothing may follow the last address:
 *   [0] version = 1
 *   [1..32] peer ID, 32 raw bytes (the table key too; the store checks both
 *           agree, and it lets the decoder work without the key)
 *   u8 name length (0..STORE_NAME_MAX), name bytes (no NUL)
 *   u8 address count (0..STORE_ADDRS_MAX), then per address
 *   u8 length (1..STORE_ADDR_MAX), printable ASCII without spaces
 */
#define STORE__VERSION 1
#define STORE__TS_LEN 8
#define STORE__PEER_RAW 32
#define STORE__RECORD_LEN (4 + 8 + STORE__PEER_RAW)

static int store__peer_raw(const char *hex, uint8_t raw[32]);
static int store__call_id_ok(const char *id, size_t len);
static int store__text_ok(const char *p, size_t len, bool strict);

/* ---- call records ---- */

int store_record_encode(const call_record_t *rec, uint8_t *buf) {
  if ((unsigned)rec->direction > CALL_DIR_OUTGOING ||
      (unsigned)rec->ended_reason > CALL_END_FAILED)
    return -EINVAL;
  if (store__peer_raw(rec->peer, buf + 12) != 0)
    return -EINVAL;
  buf[0] = STORE__VERSION;
  buf[1] = (uint8_t)rec->direction;
  buf[2] = (uint8_t)rec->ended_reason;
  buf[3] = rec->had_video ? 1 : 0;
  be64_put(buf + 4, rec->duration_seconds);
  return STORE__RECORD_LEN;
}

/* timestamp and call_id come from the key, which is the only place they are
 * stored: a record cannot disagree with its own position in the table. */
int store_record_decode(const uint8_t *key, size_t key_len, const uint8_t *val,
                        size_t val_len, call_record_t *out) {
  if (key_len < STORE__TS_LEN ||
      !store__call_id_ok((const char *)key + STORE__TS_LEN,
                         key_len - STORE__TS_LEN))
    return -EINVAL;
  size_t id_len = key_len - STORE__TS_LEN;
  if (val_len != STORE__RECORD_LEN || val[0] != STORE__VERSION ||
      val[1] > CALL_DIR_OUTGOING || val[2] > CALL_END_FAILED || val[3] > 1)
    return -EINVAL;
  memset(out, 0, sizeof(*out));
  out->timestamp = be64_get(key);
  memcpy(out->call_id, key + STORE__TS_LEN, id_len);
  out->direction = (enum call_direction)val[1];
  out->ended_reason = (enum call_end_reason)val[2];
  out->had_video = val[3] == 1;
  out->duration_seconds = be64_get(val + 4);
  hex_encode(out->peer, val + 12, STORE__PEER_RAW);
  return 0;
}

/* ---- contacts ---- */

/* Appends [u8 len][bytes]; the caller has checked len fits in a byte. */
static size_t store__put_text(uint8_t *p, const char *s, size_t len) {
  p[0] = (uint8_t)len;
  memcpy(p + 1, s, len);
  return 1 + len;
}

int store_contact_encode(const contact_t *c, uint8_t *buf) {
  size_t name_len = strnlen(c->name, sizeof(c->name));
  if (store__peer_raw(c->peer, buf + 1) != 0 || name_len > STORE_NAME_MAX ||
      !store__text_ok(c->name, name_len, false) || c->n_addrs > STORE_ADDRS_MAX)
    return -EINVAL;
  buf[0] = STORE__VERSION;
  size_t off = 1 + STORE__PEER_RAW;
  off += store__put_text(buf + off, c->name, name_len);
  buf[off++] = (uint8_t)c->n_addrs;
  for (size_t i = 0; i < c->n_addrs; i++) {
    size_t len = strnlen(c->addrs[i], sizeof(c->addrs[i]));
    if (len == 0 || len > STORE_ADDR_MAX ||
        !store__text_ok(c->addrs[i], len, true))
      return -EINVAL;
    off += store__put_text(buf + off, c->addrs[i], len);
  }
  return (int)off;
}

/* Reads [u8 len][bytes] at *off into out (NUL-terminated); -EINVAL if it
 * runs past end, exceeds max or holds a forbidden byte. */
static int store__get_text(const uint8_t *val, size_t val_len, size_t *off,
                           char *out, size_t max, bool strict) {
  if (*off >= val_len)
    return -EINVAL;
  size_t len = val[*off];
  const char *p = (const char *)val + *off + 1;
  if (len > max || len > val_len - *off - 1 || !store__text_ok(p, len, strict))
    return -EINVAL;
  memcpy(out, p, len);
  out[len] = '\0';
  *off += 1 + len;
  return 0;
}

int store_contact_decode(const uint8_t *val, size_t val_len, contact_t *out) {
  size_t off = 1 + STORE__PEER_RAW;
  if (val_len < off || val[0] != STORE__VERSION)
    return -EINVAL;
  memset(out, 0, sizeof(*out));
  hex_encode(out->peer, val + 1, STORE__PEER_RAW);
  if (store__get_text(val, val_len, &off, out->name, STORE_NAME_MAX, false))
    return -EINVAL;
  if (off >= val_len || val[off] > STORE_ADDRS_MAX)
    return -EINVAL;
  out->n_addrs = val[off++];
  for (size_t i = 0; i < out->n_addrs; i++) {
    char *a = out->addrs[i];
    if (store__get_text(val, val_len, &off, a, STORE_ADDR_MAX, true) != 0 ||
        a[0] == '\0')
      return -EINVAL;
  }
  return off == val_len ? 0 : -EINVAL;
}

/* ---- enum names ---- */

static const char *const store__dir_names[] = {"incoming", "outgoing"};
static const char *const store__reason_names[] = {"completed", "rejected",
                                                  "missed", "failed"};

const char *call_direction_name(enum call_direction d) {
  if ((unsigned)d >= ARRAY_SIZE(store__dir_names))
    return "unknown";
  return store__dir_names[d];
}

const char *call_end_reason_name(enum call_end_reason r) {
  if ((unsigned)r >= ARRAY_SIZE(store__reason_names))
    return "unknown";
  return store__reason_names[r];
}

int call_direction_parse(const char *name, enum call_direction *out) {
  for (size_t i = 0; i < ARRAY_SIZE(store__dir_names); i++) {
    if (strcmp(name, store__dir_names[i]) == 0) {
      *out = (enum call_direction)i;
      return 0;
    }
  }
  return -1;
}

int call_end_reason_parse(const char *name, enum call_end_reason *out) {
  for (size_t i = 0; i < ARRAY_SIZE(store__reason_names); i++) {
    if (strcmp(name, store__reason_names[i]) == 0) {
      *out = (enum call_end_reason)i;
      return 0;
    }
  }
  return -1;
}

/* ---- helpers ---- */

/* A peer ID is exactly 64 lowercase hex characters. */
static int store__peer_raw(const char *hex, uint8_t raw[32]) {
  size_t len = strnlen(hex, STORE_PEER_ID_LEN + 1);
  return hex_decode(raw, STORE__PEER_RAW, hex, len);
}

/* Call IDs are 1..STORE_CALL_ID_MAX bytes of printable ASCII without spaces
 * (they travel in JSON and log lines; UUIDs and hex fit). */
static int store__call_id_ok(const char *id, size_t len) {
  if (len == 0 || len > STORE_CALL_ID_MAX)
    return 0;
  return store__text_ok(id, len, true);
}

/* Names may hold any byte but NUL (UTF-8 is the API's business); strict
 * text (addresses, call IDs) is printable ASCII without spaces. */
static int store__text_ok(const char *p, size_t len, bool strict) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == 0 || (strict && (c <= 0x20 || c >= 0x7f)))
      return 0;
  }
  return 1;
}
