/* The "api" audio source and sink; see apidev.h. */
#include "call/apidev.h"

#include "media/audio.h"
#include "media/ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APIDEV_SLOTS 25 /* 0.5 s of frames */

typedef struct api_source {
  audio_source_t base;
  ring_t *ring;
} api_source_t;

typedef struct api_sink {
  audio_sink_t base;
  ring_t *ring;
  uv_async_t async;
  void (*on_frame)(void *ctx, const int16_t *pcm);
  void *ctx;
} api_sink_t;

/* ---- source ---- */

static int apidev__read(audio_source_t *s, int16_t *pcm) {
  api_source_t *a = (api_source_t *)s;
  if (!ring_pop(a->ring, pcm))
    memset(pcm, 0, AUDIO_FRAME_SAMPLES * sizeof(int16_t));
  return AUDIO_FRAME_SAMPLES;
}

static void apidev__source_close(audio_source_t *s) {
  api_source_t *a = (api_source_t *)s;
  ring_free(a->ring);
  free(a);
}

static const audio_source_ops_t apidev__source_ops = {apidev__read,
                                                      apidev__source_close};

audio_source_t *apidev_source_new(void) {
  api_source_t *a = calloc(1, sizeof(*a));
  if (!a)
    return NULL;
  a->ring = ring_new(APIDEV_SLOTS, AUDIO_FRAME_SAMPLES * sizeof(int16_t),
                     RING_DROP_OLDEST);
  if (!a->ring) {
    free(a);
    return NULL;
  }
  a->base.ops = &apidev__source_ops;
  a->base.paced = false;
  return &a->base;
}

int apidev_source_push(audio_source_t *s, const int16_t *pcm) {
  ring_push(((api_source_t *)s)->ring, pcm);
  return 0;
}

bool apidev_is_source(const audio_source_t *s) {
  return s && s->ops == &apidev__source_ops;
}

/* ---- sink ---- */

static int apidev__write(audio_sink_t *s, const int16_t *pcm) {
  api_sink_t *a = (api_sink_t *)s;
  ring_push(a->ring, pcm);
  uv_async_send(&a->async);
  return 0;
}

static void apidev__on_async(uv_async_t *h) {
  api_sink_t *a = h->data;
  int16_t pcm[AUDIO_FRAME_SAMPLES];
  while (ring_pop(a->ring, pcm))
    a->on_frame(a->ctx, pcm);
}

static void apidev__on_closed(uv_handle_t *h) {
  api_sink_t *a = h->data;
  ring_free(a->ring);
  free(a);
}

static int apidev__sink_close(audio_sink_t *s) {
  api_sink_t *a = (api_sink_t *)s;
  uv_close((uv_handle_t *)&a->async, apidev__on_closed);
  return 0;
}

static const audio_sink_ops_t apidev__sink_ops = {apidev__write,
                                                  apidev__sink_close};

audio_sink_t *apidev_sink_new(uv_loop_t *loop,
                              void (*on_frame)(void *ctx, const int16_t *pcm),
                              void *ctx) {
  api_sink_t *a = calloc(1, sizeof(*a));
  if (!a)
    return NULL;
  a->ring = ring_new(APIDEV_SLOTS, AUDIO_FRAME_SAMPLES * sizeof(int16_t),
                     RING_DROP_OLDEST);
  if (!a->ring || uv_async_init(loop, &a->async, apidev__on_async) != 0) {
    ring_free(a->ring);
    free(a);
    return NULL;
  }
  a->async.data = a;
  a->on_frame = on_frame;
  a->ctx = ctx;
  a->base.ops = &apidev__sink_ops;
  a->base.paced = false;
  return &a->base;
}

/* ---- registry ---- */

static size_t apidev__list(device_info_t *out, size_t max) {
  static const char *const desc[2] = {
      "frames sent by an API client (send_audio_frame)",
      "frames delivered to API clients (audio-frame events)"};
  for (size_t i = 0; i < 2 && i < max; i++) {
    snprintf(out[i].name, sizeof(out[i].name), "%s", APIDEV_NAME);
    snprintf(out[i].description, sizeof(out[i].description), "%s", desc[i]);
    out[i].kind = i == 0 ? DEVICE_SOURCE : DEVICE_SINK;
    out[i].type = DEVICE_TYPE_API;
  }
  return 2;
}

static int apidev__open_refused(const char *arg, char *err, size_t err_size) {
  snprintf(err, err_size,
           "the api device belongs to a call: choose it with set_devices, "
           "start_call or answer_call");
  return -ENOTSUP;
}

static int apidev__open_source(const char *arg, audio_source_t **out, char *err,
                               size_t err_size) {
  return apidev__open_refused(arg, err, err_size);
}

static int apidev__open_sink(const char *arg, audio_sink_t **out, char *err,
                             size_t err_size) {
  return apidev__open_refused(arg, err, err_size);
}

int apidev_register(void) {
  static const device_driver_t drv = {APIDEV_NAME, DEVICE_TYPE_API,
                                      apidev__list, apidev__open_source,
                                      apidev__open_sink};
  int r = device_register(&drv);
  return r == -EEXIST ? 0 : r;
}
