/* The pipeline's PCM format and small measurements on it.
 *
 * Every stage between a source and a sink speaks one format: 48 kHz, mono,
 * signed 16-bit samples, in frames of 20 ms (960 samples) -- the seed's Opus
 * frame. Devices that run at other rates convert at the edge (device/
 * resample.h). The measurements (level, frequency, alignment, correlation,
 * SNR) serve the jitter buffer's silence test, call quality figures and the
 * tests that check what came out of a call.
 *
 * Pure functions with no shared state; any thread may call them. None
 * allocates except audio_align (a temporary buffer, freed before return).
 */
#ifndef PARLEY_MEDIA_AUDIO_H
#define PARLEY_MEDIA_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#define AUDIO_RATE 48000         /* samples per second */
#define AUDIO_FRAME_SAMPLES 960  /* one 20 ms frame */
#define AUDIO_FRAME_US 20000     /* its duration */
#define AUDIO_QUIET_DBFS (-50.0) /* below this RMS level a frame is quiet */

/* RMS level of n samples in dBFS, where a full-scale square wave is 0 dBFS
 * (so a full-scale sine is -3.01 dBFS). Silence (or n == 0) gives -120. */
double audio_rms_dbfs(const int16_t *pcm, size_t n);

/* Frequency in Hz of a tone, from the first and last upward zero crossings
 * (linearly interpolated) and how many lie between. Returns 0 when there are
 * fewer than two crossings. Meant for clean tones, not for speech. */
double audio_tone_hz(const int16_t *pcm, size_t n, int rate);

/* Normalized cross-correlation of a and b (n samples each): 1 for identical
 * shapes at any gain, 0 for unrelated signals. 0 if either is silent. */
double audio_correlation(const int16_t *a, const int16_t *b, size_t n);

/* Signal-to-noise ratio in dB of `out` against the reference `ref`, the
 * noise being out - ref (n samples each). Caps at 120 dB. */
double audio_snr_db(const int16_t *ref, const int16_t *out, size_t n);

/* Finds where ref appears in sig: the lag in [0, max_lag] such that
 * sig[lag + i] best matches ref[i], searching coarsely on a 1:8 decimated
 * copy and then exactly around the best coarse lag, so seconds of audio and
 * lags of a second take milliseconds. The compared length is
 * min(n_ref, n_sig - lag). Writes the lag and the normalized correlation at
 * it. Returns 0, or -1 if the inputs are too short (fewer than 64 samples to
 * compare) or memory runs out. */
int audio_align(const int16_t *ref, size_t n_ref, const int16_t *sig,
                size_t n_sig, size_t max_lag, size_t *lag, double *corr);

#endif
