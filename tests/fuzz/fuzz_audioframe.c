/* Fuzzes both AudioFrame parsers. As a datagram, the input must decode only
 * if it re-encodes to the very same bytes. As a stream, it is fed in chunks
 * whose sizes come from the input itself, and must yield exactly the frames
 * (and the error) that feeding it whole yields, each frame re-encoding to
 * the next bytes of the stream. */
#include "media/audioframe.h"

#include <stdlib.h>
#include <string.h>

typedef struct seen {
  const uint8_t *stream; /* the bytes being parsed, to compare against */
  size_t off;
  size_t frames;
  uint64_t hash;
} seen_t;

static int on_frame(const audioframe_t *f, void *user) {
  seen_t *s = user;
  uint8_t buf[AUDIOFRAME_MAX_LEN];
  int n = audioframe_encode(buf, sizeof(buf), f);
  if (n < 0 || memcmp(buf, s->stream + s->off, (size_t)n) != 0)
    abort();
  s->off += (size_t)n;
  s->frames++;
  s->hash = s->hash * 1000003u ^ f->sequence ^ f->timestamp_us ^ f->len;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  audioframe_t f;
  if (audioframe_decode(data, size, &f) == 0) {
    uint8_t buf[AUDIOFRAME_MAX_LEN];
    int n = audioframe_encode(buf, sizeof(buf), &f);
    if (n != (int)size || memcmp(buf, data, size) != 0)
      abort();
  }

  /* Whole. */
  audioframe_parser_t p;
  seen_t a = {data, 0, 0, 0};
  audioframe_parser_init(&p);
  int ra = audioframe_parser_feed(&p, data, size, on_frame, &a);
  size_t pending_a = audioframe_parser_pending(&p);
  if (ra == 0 && a.off + pending_a != size)
    abort();

  /* In chunks of 1..64 bytes, sizes drawn from the data. */
  seen_t b = {data, 0, 0, 0};
  audioframe_parser_init(&p);
  int rb = 0;
  for (size_t off = 0, k = 0; off < size && rb == 0; k++) {
    size_t c = (size_t)(data[k % size] % 64) + 1;
    if (c > size - off)
      c = size - off;
    rb = audioframe_parser_feed(&p, data + off, c, on_frame, &b);
    off += c;
  }
  if (ra != rb || a.frames != b.frames || a.hash != b.hash)
    abort();
  if (rb == 0 && audioframe_parser_pending(&p) != pending_a)
    abort();
  return 0;
}
