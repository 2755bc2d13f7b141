/* libsamplerate behind resample.h. */
#include "device/resample.h"

#include "core/log.h"

#include <samplerate.h>
#include <stdlib.h>

struct resample {
  SRC_STATE *src;
  double ratio;
};

resample_t *resample_new(unsigned in_rate, unsigned out_rate,
                         enum resample_quality q) {
  if (in_rate < 1000 || in_rate > 384000 || out_rate < 1000 ||
      out_rate > 384000)
    return NULL;
  double ratio = (double)out_rate / in_rate;
  if (!src_is_valid_ratio(ratio))
    return NULL;
  int type = q == RESAMPLE_BEST     ? SRC_SINC_BEST_QUALITY
             : q == RESAMPLE_MEDIUM ? SRC_SINC_MEDIUM_QUALITY
                                    : SRC_SINC_FASTEST;
  resample_t *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  int err;
  r->src = src_new(type, 1, &err);
  if (!r->src) {
    LOG_ERROR("resample", "%s", src_strerror(err));
    free(r);
    return NULL;
  }
  r->ratio = ratio;
  return r;
}

void resample_free(resample_t *r) {
  if (!r)
    return;
  src_delete(r->src);
  free(r);
}

long resample_process(resample_t *r, const float *in, size_t n_in, size_t *used,
                      float *out, size_t out_max, bool end) {
  SRC_DATA d = {
      .data_in = in,
      .data_out = out,
      .input_frames = (long)n_in,
      .output_frames = (long)out_max,
      .end_of_input = end ? 1 : 0,
      .src_ratio = r->ratio,
  };
  int err = src_process(r->src, &d);
  if (err) {
    LOG_ERROR("resample", "%s", src_strerror(err));
    *used = 0;
    return -1;
  }
  *used = (size_t)d.input_frames_used;
  return d.output_frames_gen;
}

void resample_reset(resample_t *r) {
  src_reset(r->src);
}

double resample_ratio(const resample_t *r) {
  return r->ratio;
}

void resample_s16_to_float(const int16_t *in, float *out, size_t n) {
  src_short_to_float_array(in, out, (int)n);
}

void resample_float_to_s16(const float *in, int16_t *out, size_t n) {
  src_float_to_short_array(in, out, (int)n);
}
