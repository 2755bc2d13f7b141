/* The sine tone source. */
#include "device/tone.h"

#include "media/audio.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

typedef struct tone_source {
  audio_source_t base;
  double amp, step, phase; /* step and phase in radians */
} tone_source_t;

static int tone__read(audio_source_t *s, int16_t *pcm);
static void tone__close(audio_source_t *s);

static const audio_source_ops_t tone__ops = {tone__read, tone__close};

int tone_source_open(double hz, double dbfs, audio_source_t **out) {
  if (!(hz > 0 && hz < AUDIO_RATE / 2) || !(dbfs >= -120 && dbfs <= 0))
    return -EINVAL;
  tone_source_t *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  t->base.ops = &tone__ops;
  t->base.paced = false;
  t->amp = 32767.0 * pow(10.0, dbfs / 20.0);
  t->step = 2 * M_PI * hz / AUDIO_RATE;
  *out = &t->base;
  return 0;
}

static int tone__read(audio_source_t *s, int16_t *pcm) {
  tone_source_t *t = (tone_source_t *)s;
  for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++) {
    pcm[i] = (int16_t)lrint(t->amp * sin(t->phase));
    t->phase += t->step;
  }
  t->phase = fmod(t->phase, 2 * M_PI); /* keep precision over hours */
  return AUDIO_FRAME_SAMPLES;
}

static void tone__close(audio_source_t *s) {
  free(s);
}
