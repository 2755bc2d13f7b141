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
#define AP__GAP_MAX 50     /* silence inserted for one gap, in blocks */
#define AP__LEAD_US (AUDIOPROC_LEAD_MS * 1000)
/* The canceller's figures mean something while there is echo to cancel:
 * they are updated while the far end talked (a reference block above
 * AP__FAR_DBFS) in the last AP__FAR_HOLD capture blocks, and kept
 * otherwise. */
#define AP__FAR_DBFS (-50.0)
#define AP__FAR_HOLD 50
/* Device times come in steps of the device's callback period (a ring's
 * depth changes 10 ms at a time), so they are smoothed: each frame's time
 * is the last one plus 20 ms (plus any gap), pulled 1/8 of the way to
 * what was measured; a measurement further off than this starts over. */
#define AP__RESYNC_US 30000

typedef struct ap__block {
  int64_t play_at_us;
  int gap_blocks; /* silence played just before this block, 10 ms each */
  int16_t s[AUDIOPROC_BLOCK];
} ap__block_t;

/* A device clock, smoothed (see AP__RESYNC_US). */
typedef struct ap__clock {
  bool set;
  int64_t t_us;
} ap__clock_t;

enum { AP__AEC = 1, AP__NS = 2, AP__AGC = 4 };

struct audioproc {
  apm_t *apm;
  ring_t *ref;
  atomic_uint want; /* AP__* bits asked for */
  /* Render thread only. */
  ap__clock_t play;
  uint64_t gap_samples; /* silence played, not yet turned into blocks */
  /* Capture thread only. */
  ap__clock_t capture;
  /* Capture thread only. */
  unsigned have; /* AP__* bits applied to apm */
  bool have_ref;
  int64_t last_play_us;              /* latest reference block analyzed */
  ap__block_t pend[AP__RING_BLOCKS]; /* queued, not yet due (FIFO) */
  int far_hold; /* capture blocks the far end counts as talking still */
  size_t pend_head, pend_n;
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

/* Smoothed time of a frame measured at t_us, expected step_us after the
 * previous one. */
static int64_t ap__clock(ap__clock_t *c, int64_t t_us, int64_t step_us) {
  int64_t want = c->t_us + step_us;
  int64_t err = t_us - want;
  if (!c->set || err > AP__RESYNC_US || err < -AP__RESYNC_US) {
    c->set = true;
    c->t_us = t_us;
  } else {
    c->t_us = want + err / 8;
  }
  return c->t_us;
}

void audioproc_render(audioproc_t *ap, const int16_t *pcm, int64_t play_at_us,
                      uint64_t silence_before) {
  ap__block_t b;
  /* Whole 10 ms blocks of silence; the remainder waits for the next gap
   * so that nothing is lost to rounding. */
  ap->gap_samples += silence_before;
  b.gap_blocks = (int)(ap->gap_samples / AUDIOPROC_BLOCK);
  ap->gap_samples %= AUDIOPROC_BLOCK;
  int64_t t = ap__clock(&ap->play, play_at_us,
                        AUDIO_FRAME_US + (int64_t)b.gap_blocks * 10000);
  for (int i = 0; i < 2; i++) {
    b.play_at_us = t + i * 10000;
    memcpy(b.s, pcm + i * AUDIOPROC_BLOCK, sizeof(b.s));
    ring_push(ap->ref, &b);
    b.gap_blocks = 0;
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

/* Moves what the render thread queued into the pending FIFO, in play
 * order. A full FIFO (the microphone stalled) analyzes its oldest first. */
static uint64_t ap__analyze(audioproc_t *ap, uint64_t *gap_ms);

static uint64_t ap__collect(audioproc_t *ap, bool aec, uint64_t *gap_ms) {
  uint64_t n = 0;
  for (;;) {
    if (ap->pend_n == AP__RING_BLOCKS)
      n += ap__analyze(ap, gap_ms);
    ap__block_t *b = &ap->pend[(ap->pend_head + ap->pend_n) % AP__RING_BLOCKS];
    if (!ring_pop(ap->ref, b))
      break;
    ap->pend_n++;
  }
  if (!aec) { /* forget it: switching on starts from current audio */
    ap->pend_n = 0;
    ap->have_ref = false;
  }
  return n;
}

/* Analyzes the oldest pending block, after the silence played before it.
 * Returns the blocks analyzed. */
static uint64_t ap__analyze(audioproc_t *ap, uint64_t *gap_ms) {
  ap__block_t *b = &ap->pend[ap->pend_head];
  uint64_t n = 0;
  if (ap->have_ref && b->gap_blocks > 0) {
    int gap = b->gap_blocks > AP__GAP_MAX ? AP__GAP_MAX : b->gap_blocks;
    memset(ap->f, 0, sizeof(ap->f));
    for (int i = 0; i < gap; i++, n++)
      apm_render(ap->apm, ap->f);
    *gap_ms += (uint64_t)gap * 10;
  }
  ap__to_float(b->s, ap->f);
  apm_render(ap->apm, ap->f);
  if (audio_rms_dbfs(b->s, AUDIOPROC_BLOCK) > AP__FAR_DBFS)
    ap->far_hold = AP__FAR_HOLD;
  ap->have_ref = true;
  ap->last_play_us = b->play_at_us;
  ap->pend_head = (ap->pend_head + 1) % AP__RING_BLOCKS;
  ap->pend_n--;
  return n + 1;
}

/* Analyzes the reference blocks heard by the end of the capture block
 * that started at c_us (plus AP__LEAD_US): the canceller gets each at the
 * pace it was played, one per capture block, rather than in the bursts
 * the render thread's scheduling makes. A burst would make the reported
 * delay jump by a frame back and forth, which the canceller takes for a
 * changing echo path. */
static uint64_t ap__due(audioproc_t *ap, int64_t c_us, uint64_t *gap_ms) {
  uint64_t n = 0;
  while (ap->pend_n > 0 &&
         ap->pend[ap->pend_head].play_at_us <= c_us + AP__LEAD_US)
    n += ap__analyze(ap, gap_ms);
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
  captured_at_us = ap__clock(&ap->capture, captured_at_us, AUDIO_FRAME_US);
  uint64_t gap_ms = 0;
  uint64_t rendered = ap__collect(ap, aec, &gap_ms);
  int delay_ms = 0;
  for (int i = 0; i < 2 && want && r == 0; i++) {
    int16_t *blk = pcm + i * AUDIOPROC_BLOCK;
    if (aec)
      rendered += ap__due(ap, captured_at_us + i * 10000, &gap_ms);
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
  ap->far_hold -= ap->far_hold > 0 ? 2 : 0;
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
  if (!aec) {
    st->erle_valid = st->converged = false;
    st->erle_db = st->erl_db = 0;
    st->aec_delay_ms = -1;
  } else if (ap->far_hold > 0 && m.valid) {
    st->erle_valid = true;
    st->erle_db = m.erle_db;
    st->erl_db = m.erl_db;
    st->aec_delay_ms = m.delay_ms;
    st->converged = m.erle_db >= AUDIOPROC_CONVERGED_DB;
  }
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
