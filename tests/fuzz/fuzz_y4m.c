/* Fuzzes the Y4M parser on any bytes as a whole file. What it accepts must
 * have a size the pipeline carries, a positive rate and only whole
 * pictures; whatever it refuses must say why. */
#include "device/y4m.h"
#include "media/video.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  y4m_info_t info;
  char err[256];
  err[0] = '\0';
  long r = y4m_parse_buffer(data, size, &info, err, sizeof(err));
  if (r >= 0) {
    if (info.width < 2 || info.width > VIDEO_MAX_WIDTH || info.height < 2 ||
        info.height > VIDEO_MAX_HEIGHT || info.fps_num <= 0 ||
        info.fps_den <= 0 ||
        info.frame_size != video_i420_size(info.width, info.height) ||
        (size_t)r * info.frame_size > size)
      abort();
  } else if (r != Y4M_ERR_FORMAT && r != Y4M_ERR_UNSUPPORTED &&
             r != Y4M_ERR_TRUNCATED) {
    abort();
  } else if (strlen(err) == 0) {
    abort();
  }
  /* FRAME lines on their own, with Xseq. */
  bool has;
  uint32_t seq;
  long f = y4m_parse_frame(data, size, &has, &seq, err, sizeof(err));
  if (f > (long)size || f == 0 || (f < 0 && has))
    abort();
  return 0;
}
