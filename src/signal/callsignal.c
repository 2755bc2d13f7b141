/* CallSignal encoder and its single, strict decoder; see callsignal.h for
 * the layout. */
#include "signal/callsignal.h"

#include "core/util.h"

#include <string.h>

/* A cursor over the bytes being decoded. */
typedef struct cs__reader {
  const uint8_t *p;
  size_t left;
} cs__reader_t;

static int cs__get_u8(cs__reader_t *r, uint8_t *v);
static int cs__get_text(cs__reader_t *r, size_t len_bytes, size_t min,
                        size_t max, bool space, int err_len, int err_char,
                        char *out);
static int cs__text_ok(const char *p, size_t len, bool space);
static int cs__check_media(unsigned codec, unsigned video, unsigned transport);
static int cs__check_text(const char *s, size_t max_plus_one, size_t min,
                          size_t max, bool space, int err_len, int err_char,
                          size_t *len);

/* ---- encoding ---- */

int callsignal_encode(const callsignal_t *cs, uint8_t *buf, size_t cap,
                      size_t *len) {
  size_t id_len, text_len = 0;
  int rc;
  if (cs->kind < CALLSIGNAL_OFFER || cs->kind > CALLSIGNAL_ICE_CANDIDATE)
    return CALLSIGNAL_ERR_KIND;
  rc = cs__check_text(cs->call_id, sizeof(cs->call_id), 1,
                      CALLSIGNAL_CALL_ID_MAX, false, CALLSIGNAL_ERR_CALL_ID_LEN,
                      CALLSIGNAL_ERR_CALL_ID_CHAR, &id_len);
  if (rc != 0)
    return rc;
  size_t need = 3 + id_len;
  switch (cs->kind) {
  case CALLSIGNAL_OFFER:
  case CALLSIGNAL_ANSWER:
    rc = cs__check_media((unsigned)cs->audio_codec, cs->video ? 1 : 0,
                         (unsigned)cs->transport);
    need += 3 + (cs->kind == CALLSIGNAL_OFFER ? CALLSIGNAL_SECRET_LEN : 0);
    break;
  case CALLSIGNAL_REJECT:
    rc = cs__check_text(cs->reason, sizeof(cs->reason), 0,
                        CALLSIGNAL_REASON_MAX, true, CALLSIGNAL_ERR_REASON_LEN,
                        CALLSIGNAL_ERR_REASON_CHAR, &text_len);
    need += 1 + text_len;
    break;
  case CALLSIGNAL_END:
    break;
  case CALLSIGNAL_ICE_CANDIDATE:
    rc = cs__check_text(
        cs->candidate, sizeof(cs->candidate), 1, CALLSIGNAL_CANDIDATE_MAX, true,
        CALLSIGNAL_ERR_CANDIDATE_LEN, CALLSIGNAL_ERR_CANDIDATE_CHAR, &text_len);
    need += 2 + text_len;
    break;
  }
  if (rc != 0)
    return rc;
  if (cap < need)
    return CALLSIGNAL_ERR_BUFFER;

  uint8_t *p = buf;
  *p++ = CALLSIGNAL_VERSION;
  *p++ = (uint8_t)cs->kind;
  *p++ = (uint8_t)id_len;
  memcpy(p, cs->call_id, id_len);
  p += id_len;
  switch (cs->kind) {
  case CALLSIGNAL_OFFER:
  case CALLSIGNAL_ANSWER:
    *p++ = (uint8_t)cs->audio_codec;
    *p++ = cs->video ? 1 : 0;
    *p++ = (uint8_t)cs->transport;
    if (cs->kind == CALLSIGNAL_OFFER) {
      memcpy(p, cs->call_secret, CALLSIGNAL_SECRET_LEN);
      p += CALLSIGNAL_SECRET_LEN;
    }
    break;
  case CALLSIGNAL_REJECT:
    *p++ = (uint8_t)text_len;
    memcpy(p, cs->reason, text_len);
    p += text_len;
    break;
  case CALLSIGNAL_END:
    break;
  case CALLSIGNAL_ICE_CANDIDATE:
    be16_put(p, (uint16_t)text_len);
    memcpy(p + 2, cs->candidate, text_len);
    p += 2 + text_len;
    break;
  }
  *len = (size_t)(p - buf);
  return 0;
}

/* ---- decoding ---- */

static int cs__decode(callsignal_t *cs, cs__reader_t *r) {
  uint8_t version, kind, codec, video, transport;
  if (r->left == 0)
    return CALLSIGNAL_ERR_EMPTY;
  cs__get_u8(r, &version);
  if (version != CALLSIGNAL_VERSION)
    return CALLSIGNAL_ERR_VERSION;
  if (cs__get_u8(r, &kind) != 0)
    return CALLSIGNAL_ERR_TRUNCATED;
  if (kind < CALLSIGNAL_OFFER || kind > CALLSIGNAL_ICE_CANDIDATE)
    return CALLSIGNAL_ERR_KIND;
  cs->kind = (enum callsignal_kind)kind;
  int rc = cs__get_text(r, 1, 1, CALLSIGNAL_CALL_ID_MAX, false,
                        CALLSIGNAL_ERR_CALL_ID_LEN, CALLSIGNAL_ERR_CALL_ID_CHAR,
                        cs->call_id);
  if (rc != 0)
    return rc;
  switch (cs->kind) {
  case CALLSIGNAL_OFFER:
  case CALLSIGNAL_ANSWER:
    if (cs__get_u8(r, &codec) != 0 || cs__get_u8(r, &video) != 0 ||
        cs__get_u8(r, &transport) != 0)
      return CALLSIGNAL_ERR_TRUNCATED;
    rc = cs__check_media(codec, video, transport);
    if (rc != 0)
      return rc;
    cs->audio_codec = (enum audio_codec)codec;
    cs->video = video == 1;
    cs->transport = (enum media_transport)transport;
    if (cs->kind == CALLSIGNAL_OFFER) {
      if (r->left < CALLSIGNAL_SECRET_LEN)
        return CALLSIGNAL_ERR_TRUNCATED;
      memcpy(cs->call_secret, r->p, CALLSIGNAL_SECRET_LEN);
      r->p += CALLSIGNAL_SECRET_LEN;
      r->left -= CALLSIGNAL_SECRET_LEN;
    }
    break;
  case CALLSIGNAL_REJECT:
    rc = cs__get_text(r, 1, 0, CALLSIGNAL_REASON_MAX, true,
                      CALLSIGNAL_ERR_REASON_LEN, CALLSIGNAL_ERR_REASON_CHAR,
                      cs->reason);
    break;
  case CALLSIGNAL_END:
    break;
  case CALLSIGNAL_ICE_CANDIDATE:
    rc = cs__get_text(r, 2, 1, CALLSIGNAL_CANDIDATE_MAX, true,
                      CALLSIGNAL_ERR_CANDIDATE_LEN,
                      CALLSIGNAL_ERR_CANDIDATE_CHAR, cs->candidate);
    break;
  }
  if (rc != 0)
    return rc;
  return r->left == 0 ? 0 : CALLSIGNAL_ERR_TRAILING;
}

int callsignal_decode(callsignal_t *cs, const uint8_t *buf, size_t len) {
  cs__reader_t r = {buf, len};
  memset(cs, 0, sizeof(*cs));
  int rc = cs__decode(cs, &r);
  if (rc != 0)
    memset(cs, 0, sizeof(*cs));
  return rc;
}

/* ---- helpers ---- */

static int cs__get_u8(cs__reader_t *r, uint8_t *v) {
  if (r->left == 0)
    return -1;
  *v = *r->p++;
  r->left--;
  return 0;
}

/* Reads [length][bytes] with a 1- or 2-byte length into out (which holds
 * max + 1 bytes). */
static int cs__get_text(cs__reader_t *r, size_t len_bytes, size_t min,
                        size_t max, bool space, int err_len, int err_char,
                        char *out) {
  if (r->left < len_bytes)
    return CALLSIGNAL_ERR_TRUNCATED;
  size_t len = len_bytes == 1 ? r->p[0] : be16_get(r->p);
  r->p += len_bytes;
  r->left -= len_bytes;
  if (len < min || len > max)
    return err_len;
  if (len > r->left)
    return CALLSIGNAL_ERR_TRUNCATED;
  if (!cs__text_ok((const char *)r->p, len, space))
    return err_char;
  memcpy(out, r->p, len);
  out[len] = '\0';
  r->p += len;
  r->left -= len;
  return 0;
}

static int cs__text_ok(const char *p, size_t len, bool space) {
  unsigned char lo = space ? 0x20 : 0x21;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c < lo || c > 0x7e)
      return 0;
  }
  return 1;
}

static int cs__check_media(unsigned codec, unsigned video, unsigned transport) {
  if (codec != AUDIO_CODEC_OPUS48K && codec != AUDIO_CODEC_OPUS24K)
    return CALLSIGNAL_ERR_CODEC;
  if (video > 1)
    return CALLSIGNAL_ERR_VIDEO;
  if (transport != MEDIA_TRANSPORT_DATAGRAM &&
      transport != MEDIA_TRANSPORT_STREAM)
    return CALLSIGNAL_ERR_TRANSPORT;
  return 0;
}

/* The encoder's view of a NUL-terminated field: its length must be within
 * [min, max] (an unterminated buffer counts as too long). */
static int cs__check_text(const char *s, size_t max_plus_one, size_t min,
                          size_t max, bool space, int err_len, int err_char,
                          size_t *len) {
  *len = strnlen(s, max_plus_one);
  if (*len < min || *len > max)
    return err_len;
  return cs__text_ok(s, *len, space) ? 0 : err_char;
}

const char *callsignal_strerror(int err) {
  switch (err) {
  case CALLSIGNAL_ERR_EMPTY:
    return "empty CallSignal";
  case CALLSIGNAL_ERR_VERSION:
    return "unsupported CallSignal version";
  case CALLSIGNAL_ERR_KIND:
    return "unknown CallSignal kind";
  case CALLSIGNAL_ERR_TRUNCATED:
    return "CallSignal truncated";
  case CALLSIGNAL_ERR_CALL_ID_LEN:
    return "call_id length not in 1..64";
  case CALLSIGNAL_ERR_CALL_ID_CHAR:
    return "call_id byte not printable ASCII (0x21..0x7e)";
  case CALLSIGNAL_ERR_CODEC:
    return "unknown audio codec";
  case CALLSIGNAL_ERR_VIDEO:
    return "video flag not 0 or 1";
  case CALLSIGNAL_ERR_TRANSPORT:
    return "unknown media transport";
  case CALLSIGNAL_ERR_REASON_LEN:
    return "reason longer than 128 bytes";
  case CALLSIGNAL_ERR_REASON_CHAR:
    return "reason byte not printable ASCII (0x20..0x7e)";
  case CALLSIGNAL_ERR_CANDIDATE_LEN:
    return "candidate length not in 1..512";
  case CALLSIGNAL_ERR_CANDIDATE_CHAR:
    return "candidate byte not printable ASCII (0x20..0x7e)";
  case CALLSIGNAL_ERR_TRAILING:
    return "trailing bytes after the CallSignal";
  case CALLSIGNAL_ERR_BUFFER:
    return "output buffer too small";
  default:
    return "unknown error";
  }
}

const char *callsignal_kind_name(enum callsignal_kind kind) {
  switch (kind) {
  case CALLSIGNAL_OFFER:
    return "offer";
  case CALLSIGNAL_ANSWER:
    return "answer";
  case CALLSIGNAL_REJECT:
    return "reject";
  case CALLSIGNAL_END:
    return "end";
  case CALLSIGNAL_ICE_CANDIDATE:
    return "ice_candidate";
  }
  return "unknown";
}
