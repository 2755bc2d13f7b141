/* Sample-rate conversion for devices and files that do not run at the
 * pipeline's 48 kHz, on libsamplerate (band-limited sinc interpolation).
 *
 * Owns one libsamplerate converter for a mono float stream; streaming:
 * input may be fed in pieces of any size and output taken as it comes.
 * One thread at a time (the thread of the device or file that owns it).
 */
#ifndef PARLEY_DEVICE_RESAMPLE_H
#define PARLEY_DEVICE_RESAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum resample_quality {
  RESAMPLE_FAST = 0,   /* SRC_SINC_FASTEST: 97 dB SNR, 80% bandwidth;
                          cheap enough for a live call */
  RESAMPLE_MEDIUM = 1, /* SRC_SINC_MEDIUM_QUALITY: 97 dB, 90% */
  RESAMPLE_BEST = 2,   /* SRC_SINC_BEST_QUALITY: 97 dB, 97%; costly */
};

typedef struct resample resample_t;

/* A converter from in_rate to out_rate (each 1000..384000 Hz, ratio within
 * libsamplerate's 1:256). Returns NULL on bad rates or failure (logged). */
resample_t *resample_new(unsigned in_rate, unsigned out_rate,
                         enum resample_quality q);
void resample_free(resample_t *r);

/* Converts from n_in input samples into at most out_max output samples;
 * *used says how many inputs were taken (the rest must be passed again).
 * end: no input follows these, so flush the filter's tail (keep calling
 * with end until it returns 0). Returns the samples written, or -1 on
 * error (logged). */
long resample_process(resample_t *r, const float *in, size_t n_in, size_t *used,
                      float *out, size_t out_max, bool end);

/* Forgets the stream (filter state, end flag) to start a new one. */
void resample_reset(resample_t *r);

/* out_rate / in_rate. */
double resample_ratio(const resample_t *r);

/* int16 <-> float in [-1, 1), the scale libsamplerate uses. */
void resample_s16_to_float(const int16_t *in, float *out, size_t n);
void resample_float_to_s16(const float *in, int16_t *out, size_t n);

#endif
