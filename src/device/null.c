/* The null source and sink. */
#include "device/null.h"

#include "media/audio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct null_sink {
  audio_sink_t base;
  uint64_t frames;
} null_sink_t;

static int null__read(audio_source_t *s, int16_t *pcm);
static void null__close_source(audio_source_t *s);
static int null__write(audio_sink_t *s, const int16_t *pcm);
static int null__close_sink(audio_sink_t *s);

static const audio_source_ops_t null__source_ops = {null__read,
                                                    null__close_source};
static const audio_sink_ops_t null__sink_ops = {null__write, null__close_sink};

int null_source_open(audio_source_t **out) {
  audio_source_t *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->ops = &null__source_ops;
  *out = s;
  return 0;
}

int null_sink_open(audio_sink_t **out) {
  null_sink_t *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->base.ops = &null__sink_ops;
  *out = &s->base;
  return 0;
}

uint64_t null_sink_frames(const audio_sink_t *s) {
  return ((const null_sink_t *)s)->frames;
}

static int null__read(audio_source_t *s, int16_t *pcm) {
  memset(pcm, 0, AUDIO_FRAME_SAMPLES * sizeof(int16_t));
  return AUDIO_FRAME_SAMPLES;
}

static void null__close_source(audio_source_t *s) {
  free(s);
}

static int null__write(audio_sink_t *s, const int16_t *pcm) {
  ((null_sink_t *)s)->frames++;
  return 0;
}

static int null__close_sink(audio_sink_t *s) {
  free(s);
  return 0;
}
