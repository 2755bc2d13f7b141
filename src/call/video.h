/* Call video: one call's video pipeline around its call link, driven by
 * call/media.c (which owns the link and the call's audio).
 *
 *   encode thread: source --(1/fps clock or camera)--> scale to the
 *       ladder's size --> VP9 encode --> tx ring --> uv_async --> loop:
 *       VideoFrame --> link (own stream per frame, or the video stream)
 *   loop: link --> VideoFrame --> rx ring --> decode thread: VP9 decode
 *       --> playout buffer (shown at capture time + the audio's current
 *       mouth-to-ear delay: lip sync) --> sink
 *
 * The loop side adapts the rate every 500 ms (cvideo_tick): the ladder
 * goes from 320x240 @ 250 kbps to 1280x720 @ 2000 kbps (never above the
 * source's size), stepping down on congestion (video backlog, stale
 * frames, loss or queueing delay reported by QUIC and the peer) to the
 * level the path's measured capacity allows once audio's share is reserved
 * (one or two levels at a time), and up after a few clean seconds, waiting
 * longer to retry a step that just failed or to go above a capacity measured
 * lately. Key frames every 48 frames and when the peer asks; a receiver that
 * loses a frame or cannot decode one asks, and shows nothing until a key frame
 * arrives (never a corrupt picture).
 *
 * Threads: the cvideo_* functions are for the loop thread, except
 * cvideo_set_audio_latency and cvideo_join (any thread). The rings between the
 * threads are lock-free with fixed capacity; a condition variable only wakes
 * the threads.
 */
#ifndef PARLEY_CALL_VIDEO_H
#define PARLEY_CALL_VIDEO_H

#include "call/link.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct cvideo cvideo_t;

typedef struct cvideo_config {
  uv_loop_t *loop;
  const char *call_id;
  const char *source, *sink; /* device names (device/vdevice.h, "api") */
  call_link_t *link;
  bool send; /* start sending at once (the call was offered with video) */
  /* Events for the API (stolen params): video-frame, video-ladder. */
  void (*event)(void *ctx, const char *name, json_t *params);
  /* Video flowed for the first time (either way). */
  void (*on_video)(void *ctx);
  void *ctx;
} cvideo_config_t;

/* Opens the devices and starts the threads. NULL with err set on failure. */
cvideo_t *cvideo_new(const cvideo_config_t *cfg, char *err, size_t err_size);
/* Stops the threads, closes the devices (finishing a file sink). */
void cvideo_free(cvideo_t *v);
/* cvideo_free in steps, so the joins can wait off the loop: stop (loop
 * thread; no callback or event follows), join (any thread), then free. */
void cvideo_stop(cvideo_t *v);
void cvideo_join(cvideo_t *v);

/* Starts or stops sending (toggle_video) and tells the peer. The source
 * opens the first time (an audio-only call leaves the camera off): 0 or
 * -errno with err set. */
int cvideo_set_sending(cvideo_t *v, bool on, char *err, size_t err_size);
bool cvideo_sending(const cvideo_t *v);

/* From the link (loop thread). */
void cvideo_on_frame(cvideo_t *v, const videoframe_t *f);
void cvideo_on_control(cvideo_t *v, enum link_msg type, const uint8_t *p,
                       size_t len);
void cvideo_on_link_up(cvideo_t *v);

/* Every 500 ms: rate adaptation and the video receiver report. */
void cvideo_tick(cvideo_t *v);

/* The audio's current capture-to-playout delay, for lip sync. */
void cvideo_set_audio_latency(cvideo_t *v, uint32_t us);

/* One API frame for an "api" source: I420, width x height (the ladder
 * scales it). Returns 0, -EINVAL (not an api source, or a bad size),
 * -EAGAIN (video is not being sent) or -ENOBUFS (frames come faster than
 * they are encoded). */
int cvideo_send_frame(cvideo_t *v, int width, int height, const uint8_t *i420,
                      size_t len);
/* video-frame events carry RGBA instead of I420. */
void cvideo_set_rgba(cvideo_t *v, bool rgba);

/* The "video" object of call_stats / call-quality. */
json_t *cvideo_stats(cvideo_t *v);

#endif
