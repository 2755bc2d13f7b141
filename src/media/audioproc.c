/* The capture path's audio processing stage: reference ring, delay and
 * gap handling, figures; the DSP is WebRTC's (media/apm.h). */
#include "media/audioproc.h"

#include "media/apm.h"
#include "media/audio.h"
#include "media/ring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AP__RING_BLOCKS 64 /* 640 ms of reference */
#define AP__GAP_US 8000    /* a play-time jump beyond 10 ms + this is a gap */
#define AP__GAP_MAX 50     /* silence inserted for one gap, in blocks */

typedef struct ap__block {
  int64_t play_at_us;
  int16_t s[AUDIOPROC_BLOCK];
} ap__block_t;

enum { AP__AEC = 1, AP__NS = 2, AP__AGC = 4 };

struct audioproc {
  apm_t *apm;
  ring_t *ref;
  atomic_uint want; /* AP__* bits asked for */
  /* Capture thread only. */
  unsigned have; /* AP__* bits applied to apm */
  bool have_ref;
  int64_t last_play_us; /* latest reference block analyzed */
  uint64_t cpu_ns, audio_ns;
  float f[AUDIOPROC_BLOCK];
  /* Guarded by lock: what audioproc_stats reports. */
  pthread_mutex_t lock;
  audioproc_stats_t st;
};

static unsigned ap__bits(const audioproc_settings_t *s) {
  return (s->aec ? AP__AEC : 0) | (s->ns ? AP__NS : 0) | (s->agc ? AP__AGC : 0);
}

audioproc_t *audioproc_new(const audioproc_settings_t *s) {
  audioproc_t *ap = calloc(1, sizeof(*ap));
  if (!ap)
    return NULL;
  apm_options_t o = apm_options_default();
  ap->apm = apm_new(&o);
  ap->ref = ring_new(AP__RING_BLOCKS, sizeof(ap__block_t), RING_DROP_OLDEST);
  if (!ap->apm || !ap->ref) {
    apm_free(ap->apm);
    ring_free(ap->ref);
    free(ap);
    return NULL;
  }
  atomic_init(&ap->want, ap__bits(s));
  pthread_mutex_init(&ap->lock, NULL);
  ap->st.aec_delay_ms = -1;
  ap->st.on = *s;
  return ap;
}

void audioproc_free(audioproc_t *ap) {
  if (!ap)
    return;
  apm_free(ap->apm);
  ring_free(ap->ref);
  pthread_mutex_destroy(&ap->lock);
  free(ap);
}

void audioproc_set(audioproc_t *ap, const audioproc_settings_t *s) {
  atomic_store(&ap->want, ap__bits(s));
}

void audioproc_get(const audioproc_t *ap, audioproc_settings_t *s) {
  unsigned b = atomic_load(&((audioproc_t *)ap)->want);
  s->aec = b & AP__AEC;
  s->ns = b & AP__NS;
  s->agc = b & AP__AGC;
}

void audioproc_render(audioproc_t *ap, const int16_t *pcm, int64_t play_at_us) {
  ap__block_t b;
  for (int i = 0; i < 2; i++) {
    b.play_at_us = play_at_us + i * 10000;
    memcpy(b.s, pcm + i * AUDIOPROC_BLOCK, sizeof(b.s));
    ring_push(ap->ref, &b);
  }
}

/* ---- capture thread ---- */

static void ap__to_float(const int16_t *in, float *out) {
  for (int i = 0; i < AUDIOPROC_BLOCK; i++)
    out[i] = (float)in[i] / 32768.0f;
}

static void ap__to_s16(const float *in, int16_t *out) {
  for (int i = 0; i < AUDIOPROC_BLOCK; i++) {
    float v = in[i] * 32768.0f;
    out[i] = v >= 32767.0f    ? 32767
             : v <= -32768.0f ? -32768
                              : (int16_t)(v < 0 ? v - 0.5f : v + 0.5f);
  }
}

/* Analyzes every queued reference block (silence first for a gap in their
 * play times: the speaker played silence then). Returns the render blocks
 * analyzed. Drained even while the canceller is off, so that switching it
 * on starts from current audio. */
static uint64_t ap__drain(audioproc_t *ap, bool aec, uint64_t *gap_ms) {
  ap__block_t b;
  uint64_t n = 0;
  while (ring_pop(ap->ref, &b)) {
    if (!aec) {
      ap->have_ref = false;
      continue;
    }
    int64_t jump = ap->have_ref ? b.play_at_us - ap->last_play_us : 10000;
    if (jump > 10000 + AP__GAP_US) {
      int gap = (int)((jump - 10000 + 5000) / 10000);
      gap = gap > AP__GAP_MAX ? AP__GAP_MAX : gap;
      memset(ap->f, 0, sizeof(ap->f));
      for (int i = 0; i < gap; i++, n++)
        apm_render(ap->apm, ap->f);
      *gap_ms += (uint64_t)gap * 10;
    }
    ap__to_float(b.s, ap->f);
    apm_render(ap->apm, ap->f);
    n++;
    ap->have_ref = true;
    ap->last_play_us = b.play_at_us;
  }
  return n;
}

static uint64_t ap__thread_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int audioproc_process(audioproc_t *ap, int16_t *pcm, int64_t captured_at_us) {
  unsigned want = atomic_load(&ap->want);
  uint64_t t0 = ap__thread_ns();
  int r = 0;
  if (want != ap->have) {
    r = apm_enable(ap->apm, want & AP__AEC, want & AP__NS, want & AP__AGC);
    ap->have = want;
  }
  bool aec = want & AP__AEC;
  uint64_t gap_ms = 0;
  uint64_t rendered = ap__drain(ap, aec, &gap_ms);
  int delay_ms = 0;
  for (int i = 0; i < 2 && want && r == 0; i++) {
    int16_t *blk = pcm + i * AUDIOPROC_BLOCK;
    if (aec && ap->have_ref) {
      int64_t d = ap->last_play_us - (captured_at_us + i * 10000);
      delay_ms = (int)(d / 1000) - AUDIOPROC_DELAY_MARGIN_MS;
      delay_ms = delay_ms < 0 ? 0 : delay_ms;
    }
    ap__to_float(blk, ap->f);
    r = apm_capture(ap->apm, ap->f, delay_ms);
    if (r == 0)
      ap__to_s16(ap->f, blk);
  }
  apm_metrics_t m = {0};
  if (want)
    apm_get_metrics(ap->apm, &m);
  if (want) {
    ap->cpu_ns += ap__thread_ns() - t0;
    ap->audio_ns += 20000000u;
  }
  pthread_mutex_lock(&ap->lock);
  audioproc_stats_t *st = &ap->st;
  audioproc_get(ap, &st->on);
  st->blocks += want ? 2 : 0;
  st->render_blocks += rendered;
  st->render_gaps_ms += gap_ms;
  st->render_overruns = ring_overruns(ap->ref);
  st->delay_ms = aec ? delay_ms : 0;
  st->erle_valid = aec && m.valid;
  st->erle_db = st->erle_valid ? m.erle_db : 0;
  st->erl_db = st->erle_valid ? m.erl_db : 0;
  st->aec_delay_ms = aec ? m.delay_ms : -1;
  st->converged = st->erle_valid && m.erle_db >= AUDIOPROC_CONVERGED_DB;
  st->cpu_percent =
      ap->audio_ns ? 100.0 * (double)ap->cpu_ns / (double)ap->audio_ns : 0;
  pthread_mutex_unlock(&ap->lock);
  return r;
}

void audioproc_stats(audioproc_t *ap, audioproc_stats_t *out) {
  pthread_mutex_lock(&ap->lock);
  *out = ap->st;
  pthread_mutex_unlock(&ap->lock);
  audioproc_get(ap, &out->on);
}
