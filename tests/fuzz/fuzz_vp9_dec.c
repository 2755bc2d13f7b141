/* Fuzzes the VP9 decoder wrapper on any bytes, read as a sequence of
 * packets each preceded by its 16-bit big-endian length (so that inter
 * frames meet the state earlier packets left). It must neither crash nor
 * leak, and give only pictures of a size the pipeline carries. */
#include "core/log.h"
#include "media/video.h"
#include "media/vp9_codec.h"

#include <errno.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool quiet;
  if (!quiet) {
    log_set_level(LOG_LEVEL_ERROR);
    quiet = true;
  }
  vp9_dec_t *d = vp9_dec_new(1);
  if (!d)
    abort();
  video_image_t out = {0};
  size_t off = 0;
  for (int n = 0; n < 16 && off + 2 <= size; n++) {
    size_t len = (size_t)data[off] << 8 | data[off + 1];
    off += 2;
    if (len > size - off)
      len = size - off;
    /* Exercised here too: it reads the same untrusted header. */
    (void)vp9_is_key_frame(data + off, len);
    int r = vp9_dec_decode(d, data + off, len, &out);
    if (r == 1 && (out.width < 2 || out.width > VIDEO_MAX_WIDTH ||
                   out.height < 2 || out.height > VIDEO_MAX_HEIGHT))
      abort();
    if (r != 1 && r != 0 && r != -EIO)
      abort();
    off += len;
  }
  video_image_free(&out);
  vp9_dec_free(d);
  return 0;
}
