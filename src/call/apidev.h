/* The "api" audio ends: a call's microphone fed by an API client
 * (send_audio_frame) and a call's speaker heard by API clients (audio-frame
 * events), as the seed's frontends capture and play audio themselves.
 *
 * The source is filled on the loop thread and read by the call's capture
 * thread; the sink is written by the playout thread and delivers each frame
 * on the loop thread. Both are unpaced (the pipeline's 20 ms clocks drive
 * them) and pass through fixed-size rings that drop the oldest frame when a
 * side falls behind. Threads: as said per function.
 */
#ifndef PARLEY_CALL_APIDEV_H
#define PARLEY_CALL_APIDEV_H

#include "device/device.h"

#include <stdint.h>
#include <uv.h>

#define APIDEV_NAME "api"

/* Lists "api" (source and sink) in the device registry; idempotent. */
int apidev_register(void);

/* A source of frames pushed by apidev_source_push (silence when none is
 * waiting). Any thread creates it. */
audio_source_t *apidev_source_new(void);
/* Loop thread: queues one 960-sample frame. Returns 0. */
int apidev_source_push(audio_source_t *s, const int16_t *pcm);
/* True if s was made by apidev_source_new. */
bool apidev_is_source(const audio_source_t *s);

/* A sink whose frames reach on_frame on the loop thread. Create and close
 * it on the loop thread. */
audio_sink_t *apidev_sink_new(uv_loop_t *loop,
                              void (*on_frame)(void *ctx, const int16_t *pcm),
                              void *ctx);

#endif
