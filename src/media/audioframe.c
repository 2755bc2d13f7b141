/* AudioFrame encoding, strict datagram decoding and the stream parser; see
 * audioframe.h for the layout. */
#include "media/audioframe.h"

#include "core/util.h"

#include <string.h>

static void audioframe__header(const uint8_t *p, audioframe_t *f);

int audioframe_encode(uint8_t *out, size_t out_size, const audioframe_t *f) {
  if (f->len > AUDIOFRAME_MAX_DATA)
    return AUDIOFRAME_ERR_TOO_LONG;
  if (out_size < (size_t)AUDIOFRAME_HEADER_LEN + f->len)
    return AUDIOFRAME_ERR_SPACE;
  be32_put(out, f->sequence);
  be64_put(out + 4, f->timestamp_us);
  be16_put(out + 12, f->len);
  if (f->len)
    memcpy(out + AUDIOFRAME_HEADER_LEN, f->data, f->len);
  return AUDIOFRAME_HEADER_LEN + f->len;
}

int audioframe_decode(const uint8_t *buf, size_t len, audioframe_t *out) {
  if (len < AUDIOFRAME_HEADER_LEN)
    return AUDIOFRAME_ERR_SHORT;
  audioframe__header(buf, out);
  if (out->len > AUDIOFRAME_MAX_DATA)
    return AUDIOFRAME_ERR_TOO_LONG;
  if (out->len != len - AUDIOFRAME_HEADER_LEN)
    return AUDIOFRAME_ERR_LENGTH;
  out->data = buf + AUDIOFRAME_HEADER_LEN;
  return 0;
}

void audioframe_parser_init(audioframe_parser_t *p) {
  p->have = 0;
  p->error = 0;
  p->frames = 0;
}

int audioframe_parser_feed(audioframe_parser_t *p, const uint8_t *data,
                           size_t len, audioframe_cb cb, void *user) {
  if (p->error)
    return p->error;
  while (len > 0) {
    /* Gather the header first, then exactly the frame's data. */
    size_t want = AUDIOFRAME_HEADER_LEN;
    if (p->have >= AUDIOFRAME_HEADER_LEN) {
      uint16_t flen = be16_get(p->buf + 12);
      want += flen;
    }
    size_t n = want - p->have;
    if (n > len)
      n = len;
    memcpy(p->buf + p->have, data, n);
    p->have += n;
    data += n;
    len -= n;
    if (p->have < want)
      continue;
    if (want == AUDIOFRAME_HEADER_LEN) {
      uint16_t flen = be16_get(p->buf + 12);
      if (flen > AUDIOFRAME_MAX_DATA) {
        p->error = AUDIOFRAME_ERR_TOO_LONG;
        return p->error;
      }
      if (flen > 0)
        continue; /* now gather the data */
    }
    audioframe_t f;
    audioframe__header(p->buf, &f);
    f.data = p->buf + AUDIOFRAME_HEADER_LEN;
    p->have = 0;
    p->frames++;
    int r = cb(&f, user);
    if (r != 0)
      return r;
  }
  return 0;
}

size_t audioframe_parser_pending(const audioframe_parser_t *p) {
  return p->have;
}

static void audioframe__header(const uint8_t *p, audioframe_t *f) {
  f->sequence = be32_get(p);
  f->timestamp_us = be64_get(p + 4);
  f->len = be16_get(p + 12);
  f->data = NULL;
}
