/* The C face of WebRTC's AudioProcessing module (libwebrtc-audio-processing
 * 0.3, a C++ library): echo cancellation, noise suppression, gain control
 * and a high-pass filter on 10 ms blocks of 48 kHz mono floats in [-1, 1].
 * Implemented in apm_webrtc.cpp, the project's one C++ file; everything
 * else (media/audioproc.h) is C and sees only this.
 *
 * Owns one webrtc::AudioProcessing instance. One thread at a time (the
 * capture thread that owns the call's audioproc_t); no locking here.
 */
#ifndef PARLEY_MEDIA_APM_H
#define PARLEY_MEDIA_APM_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define APM_RATE 48000
#define APM_BLOCK 480 /* 10 ms at 48 kHz */

typedef struct apm apm_t;

/* What the library may be tuned with; the defaults (apm_options_default)
 * are what parley uses, the others exist for the benchmark that chose
 * them (tests/bench/audioproc.sh). */
typedef struct apm_options {
  bool delay_agnostic;  /* webrtc::DelayAgnostic: estimate the delay
                           internally instead of trusting set_stream_delay */
  bool extended_filter; /* webrtc::ExtendedFilter: a longer echo filter
                           (~128 ms tail) and steadier delay tracking */
  int aec_level;        /* canceller's suppression: 0 low .. 2 high */
  int ns_level;         /* 0 low .. 3 very high */
  int agc_target_dbfs;  /* AGC's target peak level below full scale, 0..31 */
  int agc_gain_db;      /* AGC's largest compression gain, 0..90 */
} apm_options_t;

apm_options_t apm_options_default(void);

/* A new instance with everything off; NULL if the library fails. */
apm_t *apm_new(const apm_options_t *o);
void apm_free(apm_t *a);

/* Switches the parts on or off (the high-pass filter is on while any of
 * them is). Switching the canceller on starts it afresh. 0, or -1 if the
 * library refused. */
int apm_enable(apm_t *a, bool aec, bool ns, bool agc);

/* One 10 ms block of the far end (what was played), APM_BLOCK samples. */
int apm_render(apm_t *a, const float *block);
/* One 10 ms block of the microphone, processed in place; delay_ms is how
 * long ago (about) the latest render block's echo would reach the
 * microphone (see set_stream_delay_ms). 0 or -1. */
int apm_capture(apm_t *a, float *block, int delay_ms);

typedef struct apm_metrics {
  bool valid;         /* the canceller has produced metrics yet */
  double erle_db;     /* echo return loss enhancement, recent average */
  double erl_db;      /* echo return loss (far end to microphone) */
  int delay_ms;       /* the canceller's delay estimate (median), -1 if none */
  int delay_std_ms;   /* its spread */
  bool echo;          /* the last block held echo */
  double speech_prob; /* noise suppressor's speech probability, or -1 */
} apm_metrics_t;

/* The canceller's figures (zeros with valid false while it is off). */
void apm_get_metrics(apm_t *a, apm_metrics_t *m);

#ifdef __cplusplus
}
#endif

#endif
