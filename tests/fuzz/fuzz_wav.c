/* Fuzzes the WAV header parser on any bytes as a whole file. What it
 * accepts must describe samples that lie inside the file, in whole frames,
 * of a format the sources can play; whatever it refuses must say why. */
#include "device/wav.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wav_info_t info;
  char err[256];
  err[0] = '\0';
  int r = wav_parse_buffer(data, size, &info, err, sizeof(err));
  if (r == 0) {
    if (info.channels < 1 || info.channels > 2 ||
        info.block_align != 2 * info.channels || info.rate < WAV_MIN_RATE ||
        info.rate > WAV_MAX_RATE || info.data_offset < 12 + 8 + 16 + 8 ||
        info.data_offset + info.data_len > size ||
        info.frames * info.block_align != info.data_len)
      abort();
  } else if (r != WAV_ERR_FORMAT && r != WAV_ERR_UNSUPPORTED &&
             r != WAV_ERR_TRUNCATED) {
    abort();
  } else if (strlen(err) == 0) {
    abort();
  }
  return 0;
}
