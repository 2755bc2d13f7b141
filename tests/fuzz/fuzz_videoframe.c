/* Fuzzes both VideoFrame parsers. As one stream's bytes (datagram
 * transport), the input must decode only if its header re-encodes to the
 * very same bytes. As a byte stream, it is fed in chunks whose sizes come
 * from the input itself, and must yield exactly the frames (and the error)
 * that feeding it whole yields, each matching the next bytes. */
#include "media/videoframe.h"

#include <stdlib.h>
#include <string.h>

typedef struct seen {
  const uint8_t *stream;
  size_t off, frames;
  uint64_t hash;
} seen_t;

static int on_frame(const videoframe_t *f, void *user) {
  seen_t *s = user;
  uint8_t hdr[VIDEOFRAME_HEADER_LEN];
  if (videoframe_encode_header(hdr, f) != VIDEOFRAME_HEADER_LEN ||
      memcmp(hdr, s->stream + s->off, sizeof(hdr)) != 0 ||
      (f->len && memcmp(f->data, s->stream + s->off + sizeof(hdr), f->len)))
    abort();
  s->off += sizeof(hdr) + f->len;
  s->frames++;
  s->hash = s->hash * 1000003u ^ f->sequence ^ f->timestamp_us ^ f->len;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  videoframe_t f;
  if (videoframe_decode(data, size, &f) == 0) {
    uint8_t hdr[VIDEOFRAME_HEADER_LEN];
    if (videoframe_encode_header(hdr, &f) != VIDEOFRAME_HEADER_LEN ||
        memcmp(hdr, data, sizeof(hdr)) != 0 ||
        f.len != size - VIDEOFRAME_HEADER_LEN)
      abort();
  }

  videoframe_parser_t p;
  seen_t a = {data, 0, 0, 0};
  videoframe_parser_init(&p);
  int ra = videoframe_parser_feed(&p, data, size, on_frame, &a);
  size_t pending_a = videoframe_parser_pending(&p);
  if (ra == 0 && a.off + pending_a != size)
    abort();
  videoframe_parser_free(&p);

  seen_t b = {data, 0, 0, 0};
  videoframe_parser_init(&p);
  int rb = 0;
  for (size_t off = 0, k = 0; off < size && rb == 0; k++) {
    size_t c = (size_t)(data[k % size] % 64) + 1;
    if (c > size - off)
      c = size - off;
    rb = videoframe_parser_feed(&p, data + off, c, on_frame, &b);
    off += c;
  }
  if (ra != rb || a.frames != b.frames || a.hash != b.hash)
    abort();
  if (rb == 0 && videoframe_parser_pending(&p) != pending_a)
    abort();
  videoframe_parser_free(&p);
  return 0;
}
