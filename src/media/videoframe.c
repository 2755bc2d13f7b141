/* VideoFrame header encoding, strict whole-frame decoding and the stream
 * parser; see videoframe.h for the layout. */
#include "media/videoframe.h"

#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Reads and checks the header fields; data stays NULL. */
static int videoframe__header(const uint8_t *p, videoframe_t *f) {
  f->sequence = be32_get(p);
  f->timestamp_us = be64_get(p + 4);
  uint8_t flags = p[12];
  f->key_frame = (flags & VIDEOFRAME_FLAG_KEY) != 0;
  f->width = be16_get(p + 13);
  f->height = be16_get(p + 15);
  f->len = be32_get(p + 17);
  f->data = NULL;
  if (flags & ~VIDEOFRAME_FLAG_KEY || f->width == 0 || f->height == 0 ||
      f->width > VIDEOFRAME_MAX_DIM || f->height > VIDEOFRAME_MAX_DIM)
    return VIDEOFRAME_ERR_FIELD;
  if (f->len > VIDEOFRAME_MAX_DATA)
    return VIDEOFRAME_ERR_TOO_LONG;
  return 0;
}

int videoframe_encode_header(uint8_t out[VIDEOFRAME_HEADER_LEN],
                             const videoframe_t *f) {
  if (f->len > VIDEOFRAME_MAX_DATA)
    return VIDEOFRAME_ERR_TOO_LONG;
  if (f->width == 0 || f->height == 0 || f->width > VIDEOFRAME_MAX_DIM ||
      f->height > VIDEOFRAME_MAX_DIM)
    return VIDEOFRAME_ERR_FIELD;
  be32_put(out, f->sequence);
  be64_put(out + 4, f->timestamp_us);
  out[12] = f->key_frame ? VIDEOFRAME_FLAG_KEY : 0;
  be16_put(out + 13, f->width);
  be16_put(out + 15, f->height);
  be32_put(out + 17, f->len);
  return VIDEOFRAME_HEADER_LEN;
}

int videoframe_decode(const uint8_t *buf, size_t len, videoframe_t *out) {
  if (len < VIDEOFRAME_HEADER_LEN)
    return VIDEOFRAME_ERR_SHORT;
  int r = videoframe__header(buf, out);
  if (r != 0)
    return r;
  if (out->len != len - VIDEOFRAME_HEADER_LEN)
    return VIDEOFRAME_ERR_LENGTH;
  out->data = buf + VIDEOFRAME_HEADER_LEN;
  return 0;
}

void videoframe_parser_init(videoframe_parser_t *p) {
  memset(p, 0, sizeof(*p));
}

void videoframe_parser_free(videoframe_parser_t *p) {
  free(p->buf);
  memset(p, 0, sizeof(*p));
}

/* Makes room for a whole frame of `need` bytes. */
static int videoframe__reserve(videoframe_parser_t *p, size_t need) {
  if (need <= p->cap)
    return 0;
  size_t cap = p->cap ? p->cap : 64 * 1024;
  while (cap < need)
    cap *= 2;
  uint8_t *b = realloc(p->buf, cap);
  if (!b)
    return -ENOMEM;
  p->buf = b;
  p->cap = cap;
  return 0;
}

int videoframe_parser_feed(videoframe_parser_t *p, const uint8_t *data,
                           size_t len, videoframe_cb cb, void *user) {
  if (p->error)
    return p->error;
  if (videoframe__reserve(p, VIDEOFRAME_HEADER_LEN) != 0)
    return -ENOMEM;
  while (len > 0) {
    videoframe_t f;
    size_t want = VIDEOFRAME_HEADER_LEN;
    if (p->have >= VIDEOFRAME_HEADER_LEN) {
      videoframe__header(p->buf, &f); /* checked when it completed */
      want += f.len;
    }
    size_t n = want - p->have < len ? want - p->have : len;
    memcpy(p->buf + p->have, data, n);
    p->have += n;
    data += n;
    len -= n;
    if (p->have < want)
      continue;
    int r = videoframe__header(p->buf, &f);
    if (r != 0) {
      p->error = r;
      return r;
    }
    if (want == VIDEOFRAME_HEADER_LEN && f.len > 0) {
      if (videoframe__reserve(p, VIDEOFRAME_HEADER_LEN + f.len) != 0)
        return p->error = -ENOMEM;
      continue; /* now gather the data */
    }
    f.data = p->buf + VIDEOFRAME_HEADER_LEN;
    p->have = 0;
    p->frames++;
    r = cb(&f, user);
    if (r != 0)
      return r;
  }
  return 0;
}

size_t videoframe_parser_pending(const videoframe_parser_t *p) {
  return p->have;
}
