/* The adaptive jitter buffer: frame table, delay estimator and the playout
 * decision at each tick; the rules are in jitter.h. Sequences are extended
 * to 64 bits so they never wrap inside the buffer. */
#include "media/jitter.h"

#include <stdlib.h>
#include <string.h>

typedef struct jitter_slot {
  uint64_t seq; /* extended sequence held (valid if seen) */
  bool seen;    /* seq was received (it may have been played since) */
  bool present; /* seq is waiting to be played */
  uint64_t timestamp_us;
  uint16_t len;
  uint8_t data[JITTER_MAX_DATA];
} jitter_slot_t;

struct jitter {
  jitter_config_t cfg;
  jitter_slot_t slots[JITTER_SLOTS];
  bool have_seq;        /* a frame arrived since the last (re)start */
  uint64_t top;         /* highest extended sequence seen */
  bool started;         /* playing: `next` is the next frame's turn */
  uint64_t next;        /* next to play (or, before start, lowest held) */
  uint64_t last_ts;     /* capture time of the last frame played, or 0 */
  bool in_dtx;          /* the last frame played was a DTX frame: a missing
                           frame is a DTX gap, not a loss */
  unsigned late_run;    /* late frames in a row */
  int64_t excess_since; /* when the delay first exceeded target + a frame */
  bool excess;
  /* Estimator: the last cfg.window values of r, as a ring, and the same
   * values kept sorted (so the minimum and the quantile are lookups). */
  int64_t *r;
  int64_t *sorted;
  unsigned r_n, r_pos;
  int64_t r_min;
  int64_t jitter_target; /* the target the jitter alone asks for */
  /* Turns that found their frame missing, over the last cfg.window. */
  uint8_t *turn_lost;
  unsigned t_n, t_pos, t_lost;
  jitter_stats_t st;
};

static void jitter__restart(jitter_t *j);
static uint64_t jitter__extend(const jitter_t *j, uint32_t seq);
static void jitter__sample(jitter_t *j, uint64_t ext, int64_t arrival_us);
static jitter_slot_t *jitter__held(jitter_t *j, uint64_t ext);
static enum jitter_kind jitter__out(jitter_t *j, jitter_out_t *out,
                                    enum jitter_kind kind, uint64_t ext,
                                    const jitter_slot_t *s);
static unsigned jitter__lower_bound(const int64_t *v, unsigned n, int64_t x);
static void jitter__turn(jitter_t *j, bool lost);
static void jitter__retarget(jitter_t *j);
static bool jitter__is_dtx(const jitter_slot_t *s);

jitter_config_t jitter_config_default(void) {
  jitter_config_t c = {
      .min_delay_us = 5000,
      .max_delay_us = 200000,
      .start_delay_us = 20000,
      .margin_us = 2000,
      .hysteresis_us = 2000,
      .shrink_hold_us = 500000,
      .force_shrink_us = 4000000,
      .quantile = 0.98,
      .window = 250,
      .fec_loss = 0.01,
  };
  return c;
}

jitter_t *jitter_new(const jitter_config_t *cfg) {
  jitter_config_t c = cfg ? *cfg : jitter_config_default();
  if (c.window < 16 || c.window > 4096 || !(c.quantile > 0) || c.quantile > 1 ||
      c.min_delay_us < 0 || c.max_delay_us < c.min_delay_us ||
      !(c.fec_loss >= 0) || c.fec_loss > 1)
    return NULL;
  jitter_t *j = calloc(1, sizeof(*j));
  if (!j)
    return NULL;
  j->cfg = c;
  j->r = calloc(2 * (size_t)c.window, sizeof(int64_t));
  j->turn_lost = calloc(c.window, 1);
  if (!j->r || !j->turn_lost) {
    free(j->r);
    free(j->turn_lost);
    free(j);
    return NULL;
  }
  j->sorted = j->r + c.window;
  jitter__restart(j);
  return j;
}

void jitter_free(jitter_t *j) {
  if (!j)
    return;
  free(j->r);
  free(j->turn_lost);
  free(j);
}

int jitter_insert(jitter_t *j, uint32_t seq, uint64_t timestamp_us,
                  int64_t arrival_us, const uint8_t *data, size_t len) {
  if (len > JITTER_MAX_DATA)
    return JITTER_ERR_LEN;
  uint64_t ext = jitter__extend(j, seq);
  if (j->have_seq) {
    uint64_t ref = j->started ? j->next : j->top;
    uint64_t dist = ext > ref ? ext - ref : ref - ext;
    if (dist > JITTER_RESYNC) {
      jitter__restart(j);
      j->st.resets++;
      ext = jitter__extend(j, seq);
    }
  }
  jitter_slot_t *s = &j->slots[ext % JITTER_SLOTS];
  if (s->seen && s->seq == ext) {
    j->st.duplicate++;
    return JITTER_DUPLICATE;
  }
  /* Its turn has passed, or (before start) the table cannot hold it
   * alongside the newest frame. */
  bool late =
      j->started ? ext < j->next : j->have_seq && ext + JITTER_SLOTS <= j->top;
  /* Late frames in a row: the sender's timeline moved back. Further ahead
   * than the table reaches: it moved forward. Start over from here. */
  if ((late && j->late_run + 1 >= JITTER_RESYNC_LATE) ||
      (j->started && ext >= j->next + JITTER_SLOTS)) {
    jitter__restart(j);
    j->st.resets++;
    ext = jitter__extend(j, seq);
    s = &j->slots[ext % JITTER_SLOTS];
    late = false;
  }
  j->st.received++;
  jitter__sample(j, ext, arrival_us);
  if (late) {
    j->st.late++;
    j->late_run++;
    return JITTER_LATE;
  }
  j->late_run = 0;
  s->seq = ext;
  s->seen = true;
  s->present = true;
  s->timestamp_us = timestamp_us;
  s->len = (uint16_t)len;
  if (len)
    memcpy(s->data, data, len);
  if (!j->have_seq || ext > j->top)
    j->top = ext;
  if (!j->started && (!j->have_seq || ext < j->next))
    j->next = ext;
  if (!j->started && ext >= j->next + JITTER_SLOTS) {
    /* A burst before playout began overran the table: play from the
     * oldest frame still held. */
    j->next = ext - JITTER_SLOTS + 1;
    while (!jitter__held(j, j->next))
      j->next++;
  }
  j->have_seq = true;
  return JITTER_OK;
}

enum jitter_kind jitter_pop(jitter_t *j, int64_t now_us, bool quiet,
                            jitter_out_t *out) {
  memset(out, 0, sizeof(*out));
  if (!j->have_seq)
    return JITTER_WAIT;
  const int64_t frame = JITTER_FRAME_US;
  int64_t target = j->st.target_us;
  int64_t delay = now_us - (j->r_min + (int64_t)j->next * frame);
  j->st.delay_us = delay;
  out->delay_us = delay;
  if (!j->started) {
    if (delay < target)
      return JITTER_WAIT;
    j->started = true;
  }

  /* Shrink: one frame too many has been held long enough. */
  bool excess = delay - frame >= target + j->cfg.hysteresis_us;
  if (!excess) {
    j->excess = false;
  } else if (!j->excess) {
    j->excess = true;
    j->excess_since = now_us;
  }
  jitter_slot_t *cur = jitter__held(j, j->next);
  jitter_slot_t *after = jitter__held(j, j->next + 1);
  /* A frame is dropped only if the next one is here to take its place; a
   * DTX gap's turn is silence whatever follows it. */
  bool gap = !cur && j->in_dtx;
  if (j->excess && ((cur && after) || gap) &&
      now_us - j->excess_since >= j->cfg.shrink_hold_us &&
      (quiet || gap || jitter__is_dtx(cur) ||
       now_us - j->excess_since >= j->cfg.force_shrink_us)) {
    if (cur) {
      cur->present = false;
      j->last_ts = cur->timestamp_us;
      j->in_dtx = jitter__is_dtx(cur);
    } else if (j->last_ts) {
      j->last_ts += JITTER_FRAME_US;
    }
    j->next++;
    j->st.shrunk++;
    delay -= frame;
    j->st.delay_us = out->delay_us = delay;
    cur = jitter__held(j, j->next);
    after = jitter__held(j, j->next + 1);
  }

  /* Grow: frames are arriving later than the delay allows. */
  if (delay < target) {
    j->st.stretched++;
    return jitter__out(j, out, JITTER_STRETCH, j->next, NULL);
  }
  uint64_t n = j->next++;
  if (cur) {
    jitter__turn(j, false);
    cur->present = false;
    j->in_dtx = jitter__is_dtx(cur);
    j->st.played++;
    return jitter__out(j, out, JITTER_FRAME, n, cur);
  }
  if (j->in_dtx) { /* not sent: neither a turn of the loss window nor lost */
    j->st.dtx++;
    return jitter__out(j, out, JITTER_DTX, n, NULL);
  }
  jitter__turn(j, true);
  j->st.lost++;
  if (after) {
    j->st.recovered_fec++;
    return jitter__out(j, out, JITTER_FEC, n, after);
  }
  j->st.concealed++;
  return jitter__out(j, out, JITTER_CONCEAL, n, NULL);
}

void jitter_get_stats(const jitter_t *j, jitter_stats_t *out) {
  *out = j->st;
}

int64_t jitter_delay_us(const jitter_t *j) {
  return j->st.delay_us;
}

/* Forgets every frame and the estimator; counters stay. */
static void jitter__restart(jitter_t *j) {
  for (unsigned i = 0; i < JITTER_SLOTS; i++) {
    j->slots[i].seen = false;
    j->slots[i].present = false;
  }
  j->have_seq = false;
  j->started = false;
  j->top = j->next = 0;
  j->last_ts = 0;
  j->in_dtx = false;
  j->late_run = 0;
  j->excess = false;
  j->r_n = j->r_pos = 0;
  j->r_min = 0;
  j->t_n = j->t_pos = j->t_lost = 0;
  j->jitter_target = j->cfg.start_delay_us;
  jitter__retarget(j);
}

/* The 64-bit sequence nearest to the highest seen. The first frame gets
 * 2^32 + seq so frames just before it stay positive. */
static uint64_t jitter__extend(const jitter_t *j, uint32_t seq) {
  if (!j->have_seq)
    return (1ull << 32) + seq;
  return j->top + (uint64_t)(int64_t)(int32_t)(seq - (uint32_t)j->top);
}

/* Adds r = arrival - nominal send time and recomputes r_min, the jitter
 * quantile and the target. The sorted copy of the window changes by one
 * value out and one in: two binary searches and a memmove of at most the
 * window (2 KB by default), 50 times a second. */
static void jitter__sample(jitter_t *j, uint64_t ext, int64_t arrival_us) {
  const jitter_config_t *c = &j->cfg;
  int64_t v = arrival_us - (int64_t)ext * JITTER_FRAME_US;
  int64_t *s = j->sorted;
  if (j->r_n == c->window) { /* the oldest value leaves the window */
    unsigned at = jitter__lower_bound(s, j->r_n, j->r[j->r_pos]);
    memmove(s + at, s + at + 1, (j->r_n - at - 1) * sizeof(*s));
    j->r_n--;
  }
  unsigned at = jitter__lower_bound(s, j->r_n, v);
  memmove(s + at + 1, s + at, (j->r_n - at) * sizeof(*s));
  s[at] = v;
  j->r_n++;
  j->r[j->r_pos] = v;
  j->r_pos = (j->r_pos + 1) % c->window;
  int64_t lo = s[0], hi = s[j->r_n - 1];
  unsigned k = (unsigned)(c->quantile * j->r_n + 0.999999);
  k = k == 0 ? 0 : k - 1;
  if (k >= j->r_n)
    k = j->r_n - 1;
  int64_t q = j->r_n >= 16 ? s[k] : hi;
  int64_t target = q - lo + c->margin_us;
  if (j->r_n < 16 && target < c->start_delay_us)
    target = c->start_delay_us;
  if (target < c->min_delay_us)
    target = c->min_delay_us;
  if (target > c->max_delay_us)
    target = c->max_delay_us;
  j->r_min = lo;
  j->st.jitter_us = q - lo;
  j->jitter_target = target;
  jitter__retarget(j);
}

/* Records whether this turn's frame was missing. */
static void jitter__turn(jitter_t *j, bool lost) {
  unsigned w = j->cfg.window;
  if (j->t_n == w)
    j->t_lost -= j->turn_lost[j->t_pos];
  else
    j->t_n++;
  j->turn_lost[j->t_pos] = lost;
  j->t_lost += lost;
  j->t_pos = (j->t_pos + 1) % w;
  jitter__retarget(j);
}

/* The target: the jitter's, plus a frame for FEC while frames go missing. */
static void jitter__retarget(jitter_t *j) {
  bool fec = j->cfg.fec_loss > 0 && j->r_n >= 16 && j->t_lost > 0 &&
             j->t_lost >= j->cfg.fec_loss * j->t_n;
  int64_t target = j->jitter_target + (fec ? JITTER_FRAME_US : 0);
  if (target > j->cfg.max_delay_us)
    target = j->cfg.max_delay_us;
  j->st.target_us = target;
  j->st.fec_lookahead = fec;
  j->st.loss_permille = j->t_n ? j->t_lost * 1000 / j->t_n : 0;
}

/* Opus DTX frames are 1-2 bytes; an empty frame carries no more. */
static bool jitter__is_dtx(const jitter_slot_t *s) {
  return s->len <= JITTER_DTX_MAX_LEN;
}

static jitter_slot_t *jitter__held(jitter_t *j, uint64_t ext) {
  jitter_slot_t *s = &j->slots[ext % JITTER_SLOTS];
  return s->present && s->seq == ext ? s : NULL;
}

static enum jitter_kind jitter__out(jitter_t *j, jitter_out_t *out,
                                    enum jitter_kind kind, uint64_t ext,
                                    const jitter_slot_t *s) {
  out->kind = kind;
  out->seq = (uint32_t)ext;
  if (s) {
    out->data = s->data;
    out->len = s->len;
  }
  if (kind == JITTER_STRETCH)
    return kind; /* stands for no frame: no timestamp */
  if (kind == JITTER_FRAME)
    out->timestamp_us = s->timestamp_us;
  else if (kind == JITTER_FEC && s->timestamp_us >= JITTER_FRAME_US)
    out->timestamp_us = s->timestamp_us - JITTER_FRAME_US;
  else if (j->last_ts)
    out->timestamp_us = j->last_ts + JITTER_FRAME_US;
  j->last_ts = out->timestamp_us;
  return kind;
}

/* The first index of v[0..n) (sorted) whose value is not below x. */
static unsigned jitter__lower_bound(const int64_t *v, unsigned n, int64_t x) {
  unsigned lo = 0, hi = n;
  while (lo < hi) {
    unsigned mid = lo + (hi - lo) / 2;
    if (v[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}
