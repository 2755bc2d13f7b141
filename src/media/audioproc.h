/* The capture path's audio processing stage: acoustic echo cancellation
 * (AEC), noise suppression (NS), automatic gain control (AGC) and a
 * high-pass filter between the source and the Opus encoder, in 10 ms
 * blocks of the pipeline's 48 kHz mono (WebRTC's AudioProcessing through
 * media/apm.h; see docs/architecture.md for why that library).
 *
 * Owns the library instance, the far-end reference ring and the figures.
 * The far-end reference is exactly what the playout thread handed to the
 * sink, with the time it will be heard; the capture thread drains it
 * before processing each microphone frame and tells the canceller how far
 * the latest reference is ahead of that frame (biased low: a reference
 * that arrives after its echo cannot be cancelled). Silence the device played
 * in an underrun is inserted into the reference too, so the reference stays
 * aligned with what was heard. Device times arrive in steps of the device's
 * callback period and are smoothed.
 *
 * Threads: exactly one render thread (audioproc_render) and one capture
 * thread (audioproc_process); they meet in a lock-free SPSC ring.
 * audioproc_set, audioproc_get and audioproc_stats may be called from any
 * thread. new/free from the owner while neither side runs.
 */
#ifndef PARLEY_MEDIA_AUDIOPROC_H
#define PARLEY_MEDIA_AUDIOPROC_H

#include <stdbool.h>
#include <stdint.h>

#define AUDIOPROC_FRAME                                                        \
  960 /* 20 ms at 48 kHz: what render and process take                         \
       */

#define AUDIOPROC_BLOCK 480 /* 10 ms at 48 kHz */
/* A reference block is handed to the canceller once it is heard before
 * the capture block being processed starts plus this: slack for PortAudio
 * latencies that are too large (a reference analyzed after its echo
 * arrived cannot cancel it). */
#define AUDIOPROC_LEAD_MS 30
/* The reported delay is lowered by this much (see above). */
#define AUDIOPROC_DELAY_MARGIN_MS 10
/* Where the gain control puts a talker: the active speech level (RMS of
 * the blocks within 20 dB of the loudest), dBFS. */
#define AUDIOPROC_AGC_TARGET_DBFS (-20)
/* The canceller counts as converged while its ERLE is at least this. */
#define AUDIOPROC_CONVERGED_DB 10.0

typedef struct audioproc audioproc_t;

typedef struct audioproc_settings {
  bool aec, ns, agc;
} audioproc_settings_t;

typedef struct audioproc_stats {
  audioproc_settings_t on;
  bool converged;           /* aec on and erle_db >= AUDIOPROC_CONVERGED_DB */
  bool erle_valid;          /* the canceller has measured ERLE yet */
  double erle_db;           /* the canceller's echo return loss enhancement */
  double erl_db;            /* echo return loss: far end to microphone */
  int delay_ms;             /* the delay estimate handed to the canceller */
  int aec_delay_ms;         /* the canceller's own estimate, -1 if none */
  uint64_t blocks;          /* capture blocks processed */
  uint64_t render_blocks;   /* reference blocks analyzed */
  uint64_t render_gaps_ms;  /* silence inserted for playback gaps */
  uint64_t render_overruns; /* reference blocks lost to a full ring */
  double cpu_percent;       /* processing time per audio time, one core = 100 */
} audioproc_stats_t;

/* A stage with the parts in s on. NULL if out of memory or the library
 * failed. */
audioproc_t *audioproc_new(const audioproc_settings_t *s);
void audioproc_free(audioproc_t *ap);

/* Switches parts on or off from the next capture frame (any thread). */
void audioproc_set(audioproc_t *ap, const audioproc_settings_t *s);
void audioproc_get(const audioproc_t *ap, audioproc_settings_t *s);

/* Render thread: one 20 ms frame (960 samples) exactly as handed to the
 * sink, whose first sample will be heard at play_at_us (monotonic
 * microseconds, time_mono_ns()/1000), after silence_before samples (48 kHz)
 * of silence the device played since the previous frame because nothing
 * was queued (an underrun). Never blocks; a full ring drops its oldest
 * block (counted). */
void audioproc_render(audioproc_t *ap, const int16_t *pcm, int64_t play_at_us,
                      uint64_t silence_before);

/* Capture thread: processes one 20 ms frame (960 samples) in place; its
 * first sample reached the microphone at captured_at_us (monotonic). With
 * every part off the frame is left untouched. Returns 0, or -1 if the
 * library failed (the frame is then left as it was). */
int audioproc_process(audioproc_t *ap, int16_t *pcm, int64_t captured_at_us);

/* A snapshot of the figures (any thread). */
void audioproc_stats(audioproc_t *ap, audioproc_stats_t *out);

#endif
