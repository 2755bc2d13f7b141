/* Tests of media/jitter, driven by a deterministic simulation: a sender
 * emitting one frame every 20 ms, a network with chosen delay, jitter,
 * reordering, loss and duplicates, and a playout tick every 20 ms. Each
 * frame carries its own sequence number, so the test checks that every
 * tick gets the right frame, in order, and that the counts and the delay
 * come out as jitter.h promises. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "media/jitter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000
#define FRAME_US 20000

typedef struct pkt {
  int64_t t; /* arrival */
  uint32_t seq;
  bool dtx;
} pkt_t;

/* Deterministic PRNG (xorshift64*). */
static uint64_t rng_state;
static void rng_seed(uint64_t s) {
  rng_state = s * 0x9e3779b97f4a7c15ull + 1;
}
static double rng_unit(void) { /* [0, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) /
         9007199254740992.0;
}

typedef struct net {
  size_t frames;
  uint32_t seq0;
  int64_t base_us;                        /* one-way delay */
  int64_t (*jitter)(size_t i, void *arg); /* extra delay of frame i */
  void *jitter_arg;
  bool (*lost)(size_t i); /* dropped by the network */
  bool (*dup)(size_t i);  /* delivered twice (+1 ms) */
  bool (*dtx)(size_t i);  /* a 1-byte DTX frame */
} net_t;

static int pkt_cmp(const void *a, const void *b) {
  const pkt_t *x = a, *y = b;
  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The arrivals the network produces, sorted by time. */
static pkt_t *net_run(const net_t *n, size_t *count) {
  pkt_t *p = calloc(2 * n->frames, sizeof(*p));
  size_t k = 0;
  for (size_t i = 0; i < n->frames; i++) {
    if (n->lost && n->lost(i))
      continue;
    int64_t t = (int64_t)i * FRAME_US + n->base_us;
    if (n->jitter)
      t += n->jitter(i, n->jitter_arg);
    bool dtx = n->dtx && n->dtx(i);
    p[k++] = (pkt_t){t, n->seq0 + (uint32_t)i, dtx};
    if (n->dup && n->dup(i))
      p[k++] = (pkt_t){t + 1 * MS, n->seq0 + (uint32_t)i, dtx};
  }
  qsort(p, k, sizeof(*p), pkt_cmp);
  *count = k;
  return p;
}

typedef struct play {
  int64_t tick0_us; /* first tick */
  size_t ticks;
  int64_t tick_jitter; /* each tick early or late by up to this (uniform) */
  bool (*quiet)(size_t tick);
  int64_t measure_from; /* delay statistics from this tick time on */
  bool has_end;
  uint32_t end_seq; /* stop once this frame's turn has come */
  /* Results. */
  uint64_t kinds[6];
  uint64_t late_at_measure, frames_at_measure;
  double delay_sum, delay_max;
  size_t delay_n;
  uint32_t last_seq;
  bool any;
  jitter_stats_t st;
} play_t;

static void payload(uint8_t *b, uint32_t seq) {
  b[0] = (uint8_t)(seq >> 24);
  b[1] = (uint8_t)(seq >> 16);
  b[2] = (uint8_t)(seq >> 8);
  b[3] = (uint8_t)seq;
}

static uint32_t payload_seq(const uint8_t *b, size_t len) {
  assert_true(len >= 4);
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
         ((uint32_t)b[2] << 8) | b[3];
}

/* Runs the ticks against the arrivals, checking each tick's output. */
static void play_run(jitter_t *j, const pkt_t *p, size_t np, play_t *pl) {
  size_t next = 0;
  for (size_t k = 0; k < pl->ticks; k++) {
    int64_t now = pl->tick0_us + (int64_t)k * FRAME_US;
    if (pl->tick_jitter)
      now += (int64_t)((rng_unit() * 2 - 1) * (double)pl->tick_jitter);
    while (next < np && p[next].t <= now) {
      uint8_t b[64];
      payload(b, p[next].seq);
      /* DTX frames are 1-2 bytes on the wire (too short to carry the
       * sequence check: their timestamp is checked instead). */
      size_t len = p[next].dtx ? 2 : 40;
      assert_true(jitter_insert(j, p[next].seq,
                                (uint64_t)p[next].seq * 20000 + 1000000,
                                p[next].t, b, len) >= 0);
      next++;
    }
    if (now >= pl->measure_from && pl->frames_at_measure == 0) {
      jitter_stats_t s;
      jitter_get_stats(j, &s);
      pl->late_at_measure = s.late;
      pl->frames_at_measure = s.received + 1;
    }
    jitter_out_t out;
    bool quiet = pl->quiet ? pl->quiet(k) : false;
    enum jitter_kind kind = jitter_pop(j, now, quiet, &out);
    assert_int_equal(kind, out.kind);
    if (getenv("JITTER_TRACE")) {
      jitter_stats_t s;
      jitter_get_stats(j, &s);
      print_message("    t=%lld kind %d seq %u delay %lld target %lld\n",
                    (long long)now / 1000, kind, out.seq,
                    (long long)out.delay_us / 1000,
                    (long long)s.target_us / 1000);
    }
    pl->kinds[kind]++;
    if (kind == JITTER_FRAME || kind == JITTER_FEC) {
      /* Every frame is its own; FEC hands over the next one. The DTX
       * frames carry only 2 bytes: check those by timestamp. */
      uint32_t want = out.seq + (kind == JITTER_FEC);
      if (out.len >= 4)
        assert_int_equal(payload_seq(out.data, out.len), want);
    }
    if (kind == JITTER_FRAME)
      assert_true(out.timestamp_us == (uint64_t)out.seq * 20000 + 1000000);
    if (kind == JITTER_FRAME || kind == JITTER_FEC || kind == JITTER_CONCEAL ||
        kind == JITTER_DTX) {
      if (pl->any)
        assert_true((int32_t)(out.seq - pl->last_seq) > 0); /* in order */
      pl->last_seq = out.seq;
      pl->any = true;
    }
    if (pl->has_end && kind != JITTER_WAIT && kind != JITTER_STRETCH &&
        out.seq == pl->end_seq)
      break;
    if (now >= pl->measure_from && kind != JITTER_WAIT) {
      double d = (double)out.delay_us / 1000.0;
      pl->delay_sum += d;
      pl->delay_n++;
      if (d > pl->delay_max)
        pl->delay_max = d;
    }
  }
  jitter_get_stats(j, &pl->st);
}

static double play_mean_delay(const play_t *pl) {
  return pl->delay_n ? pl->delay_sum / (double)pl->delay_n : 0;
}

static bool quiet_alternate(size_t tick) { /* 1 s of speech, 1 s pause */
  return (tick / 50) % 2 == 1;
}

/* The counts add up, whatever happened. */
static void check_counts(const play_t *pl) {
  const jitter_stats_t *s = &pl->st;
  if (getenv("JITTER_DEBUG"))
    print_message(
        "  stats: received %llu late %llu dup %llu played %llu "
        "lost %llu fec %llu concealed %llu stretched %llu shrunk "
        "%llu dtx %llu resets %llu\n",
        (unsigned long long)s->received, (unsigned long long)s->late,
        (unsigned long long)s->duplicate, (unsigned long long)s->played,
        (unsigned long long)s->lost, (unsigned long long)s->recovered_fec,
        (unsigned long long)s->concealed, (unsigned long long)s->stretched,
        (unsigned long long)s->shrunk, (unsigned long long)s->dtx,
        (unsigned long long)s->resets);
  assert_true(s->lost == s->recovered_fec + s->concealed);
  assert_true(s->played == pl->kinds[JITTER_FRAME]);
  assert_true(s->recovered_fec == pl->kinds[JITTER_FEC]);
  assert_true(s->concealed == pl->kinds[JITTER_CONCEAL]);
  assert_true(s->stretched == pl->kinds[JITTER_STRETCH]);
  assert_true(s->dtx == pl->kinds[JITTER_DTX]);
}

/* ---- Clean network, reorder, duplicates, loss, late ---- */

static void test_clean(void **state) {
  (void)state;
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 500, .base_us = 30 * MS};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  play_t pl = {.tick0_us = 7 * MS,
               .ticks = 520,
               .quiet = quiet_alternate,
               .measure_from = 5000 * MS,
               .has_end = true,
               .end_seq = 499};
  play_run(j, p, np, &pl);
  check_counts(&pl);
  print_message("  clean: target %.1f ms, delay mean %.1f max %.1f ms, "
                "shrunk %llu, stretched %llu\n",
                pl.st.target_us / 1000.0, play_mean_delay(&pl), pl.delay_max,
                (unsigned long long)pl.st.shrunk,
                (unsigned long long)pl.st.stretched);
  assert_true(pl.st.received == 500);
  assert_true(pl.st.lost == 0 && pl.st.late == 0 && pl.st.duplicate == 0);
  assert_true(pl.st.target_us == 5 * MS); /* the minimum */
  /* Settled within one frame above the target. */
  assert_true(pl.delay_max < 5 + 20 + 2 + 0.5);
  assert_true(pl.st.played + pl.st.shrunk == 500);
  jitter_free(j);
  free(p);
}

static bool every_10th(size_t i) {
  return i % 10 == 5;
}

static int64_t swap_pairs(size_t i, void *arg) {
  (void)arg; /* frames 10k+3 arrive 25 ms late, after 10k+4 */
  return i % 10 == 3 ? 25 * MS : 0;
}

static void test_reorder_and_duplicates(void **state) {
  (void)state;
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 500,
             .base_us = 10 * MS,
             .jitter = swap_pairs,
             .dup = every_10th};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  play_t pl = {.tick0_us = 3 * MS,
               .ticks = 530,
               .quiet = quiet_alternate,
               .measure_from = 3000 * MS,
               .has_end = true,
               .end_seq = 499};
  play_run(j, p, np, &pl);
  check_counts(&pl);
  print_message("  reorder 25 ms every 10th + duplicates: target %.1f ms, "
                "delay mean %.1f, late %llu, lost %llu, dup %llu\n",
                pl.st.target_us / 1000.0, play_mean_delay(&pl),
                (unsigned long long)pl.st.late, (unsigned long long)pl.st.lost,
                (unsigned long long)pl.st.duplicate);
  assert_true(pl.st.duplicate == 50);
  assert_true(pl.st.received == 500);
  /* Only the first reordered frames, before the target learned 25 ms. */
  assert_true(pl.st.late <= 3);
  assert_true(pl.st.target_us >= 25 * MS && pl.st.target_us <= 28 * MS);
  assert_true(pl.delay_max < 27 + 20 + 2 + 0.5);
  jitter_free(j);
  free(p);
}

static bool loss_pattern(size_t i) {
  /* Isolated losses every 25 frames; a burst of 3 at 300..302. */
  return (i % 25 == 12 && i < 250) || (i >= 300 && i <= 302);
}

static void test_loss_fec_and_plc(void **state) {
  (void)state;
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 400, .base_us = 10 * MS, .lost = loss_pattern};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  play_t pl = {.tick0_us = 0,
               .ticks = 420,
               .measure_from = 0,
               .has_end = true,
               .end_seq = 399};
  play_run(j, p, np, &pl);
  check_counts(&pl);
  /* 10 isolated losses rebuilt by FEC; the burst: 2 concealed, then the
   * third rebuilt from frame 303. */
  assert_true(pl.st.recovered_fec == 11);
  assert_true(pl.st.concealed == 2);
  assert_true(pl.st.lost == 13);
  assert_true(pl.st.late == 0);
  assert_true(pl.st.played + pl.st.shrunk == 400 - 13);
  assert_true(pl.st.fec_lookahead);
  assert_true(pl.st.target_us == 25 * MS); /* 5 ms + the FEC frame */
  jitter_free(j);
  free(p);
}

static int64_t one_very_late(size_t i, void *arg) {
  (void)arg;
  return i == 200 ? 150 * MS : 0;
}

static void test_late(void **state) {
  (void)state;
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 400, .base_us = 10 * MS, .jitter = one_very_late};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  play_t pl = {.tick0_us = 0,
               .ticks = 420,
               .measure_from = 0,
               .has_end = true,
               .end_seq = 399};
  play_run(j, p, np, &pl);
  check_counts(&pl);
  assert_true(pl.st.late == 1);          /* arrived after its turn */
  assert_true(pl.st.recovered_fec == 1); /* its turn was filled by FEC */
  assert_true(pl.st.received == 400);
  assert_true(pl.st.target_us < 10 * MS); /* one outlier moves nothing */
  jitter_free(j);
  free(p);
}

/* ---- Adaptation to jitter ---- */

typedef struct jit {
  int64_t max_us;
  int smooth; /* 0: independent uniform per frame (reorders); 1: a random
                 walk between knots 2 x max apart (no reorder) */
} jit_t;

static int64_t jitter_uniform(size_t i, void *arg) {
  const jit_t *jt = arg;
  if (!jt->smooth)
    return (int64_t)(rng_unit() * (double)jt->max_us);
  /* Piecewise linear between random knots, like parley-relay. */
  static double k0, k1;
  static size_t seg = (size_t)-1;
  size_t span = (size_t)(2 * jt->max_us / FRAME_US) + 1;
  if (i / span != seg) {
    seg = i / span;
    k0 = seg == 0 ? rng_unit() : k1;
    k1 = rng_unit();
  }
  double f = (double)(i % span) / (double)span;
  return (int64_t)((k0 + (k1 - k0) * f) * (double)jt->max_us);
}

static void converge(int64_t jitter_ms, int smooth, int64_t tick_jitter) {
  rng_seed((uint64_t)jitter_ms * 7 + (uint64_t)smooth);
  jit_t jt = {jitter_ms * MS, smooth};
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 1500,
             .base_us = 30 * MS,
             .jitter = jitter_uniform,
             .jitter_arg = &jt};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  play_t pl = {.tick0_us = 11 * MS,
               .ticks = 1600,
               .tick_jitter = tick_jitter,
               .quiet = quiet_alternate,
               .measure_from = 10000 * MS,
               .has_end = true,
               .end_seq = 1499};
  play_run(j, p, np, &pl);
  check_counts(&pl);
  double late_pct = 100.0 * (double)(pl.st.late - pl.late_at_measure) /
                    (double)(pl.st.received - pl.frames_at_measure + 1);
  double jit_ms = pl.st.jitter_us / 1000.0, tgt = pl.st.target_us / 1000.0;
  print_message(
      "  jitter 0..%2lld ms %s, ticks +-%lld ms: measured %5.1f, "
      "target %5.1f, delay mean %5.1f max %5.1f ms; late %.2f%%, "
      "lost %llu (fec %llu), stretched %llu, shrunk %llu\n",
      (long long)jitter_ms, smooth ? "smooth " : "uniform",
      (long long)(tick_jitter / MS), jit_ms, tgt, play_mean_delay(&pl),
      pl.delay_max, late_pct, (unsigned long long)pl.st.lost,
      (unsigned long long)pl.st.recovered_fec,
      (unsigned long long)pl.st.stretched, (unsigned long long)pl.st.shrunk);
  /* The estimate sees the jitter (the 98th percentile of a uniform spread
   * is 0.98 of it), the target adds the margin, the delay sits within a
   * frame above the target, and under 2% of frames come late. */
  assert_true(jit_ms <= (double)jitter_ms + 0.5);
  assert_true(jit_ms >= 0.85 * (double)jitter_ms);
  assert_true(tgt <= fmax(5.0, jit_ms + 2.0) + 0.01);
  assert_true(play_mean_delay(&pl) >= tgt - (double)tick_jitter / MS - 0.01);
  assert_true(play_mean_delay(&pl) <= tgt + 20 + 2 + 0.5);
  assert_true(late_pct < 2.0);
  jitter_free(j);
  free(p);
}

static void test_converges_to_jitter(void **state) {
  (void)state;
  const int64_t js[] = {0, 5, 10, 20, 40, 80};
  for (size_t k = 0; k < sizeof(js) / sizeof(*js); k++)
    converge(js[k], 0, 0);
  converge(20, 1, 0); /* 30 ms +- 10 ms the way parley-relay makes it */
  converge(20, 1, 2 * MS);
  converge(0, 0, 2 * MS);
}

static bool loss_5pct(size_t i) {
  (void)i;
  return rng_unit() < 0.05;
}

/* The impaired path: 5% random loss and 30 +- 10 ms of smooth
 * jitter. FEC lookahead must keep concealment well under 3%. */
static void test_loss_with_jitter(void **state) {
  (void)state;
  rng_seed(5);
  jit_t jt = {20 * MS, 1};
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 1500,
             .base_us = 20 * MS,
             .jitter = jitter_uniform,
             .jitter_arg = &jt,
             .lost = loss_5pct};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  play_t pl = {.tick0_us = 11 * MS,
               .ticks = 1600,
               .quiet = quiet_alternate,
               .measure_from = 5000 * MS,
               .has_end = true,
               .end_seq = 1499};
  play_run(j, p, np, &pl);
  check_counts(&pl);
  double lost_pct = 100.0 * (double)(1500 - np) / 1500;
  double conc_pct = 100.0 * (double)pl.st.concealed / 1500;
  print_message("  5%% loss + 30+-10 ms: %.1f%% lost by the network, "
                "FEC rebuilt %llu, concealed %llu (%.2f%%), late %llu; "
                "target %.1f ms (FEC frame %s), delay mean %.1f max %.1f ms\n",
                lost_pct, (unsigned long long)pl.st.recovered_fec,
                (unsigned long long)pl.st.concealed, conc_pct,
                (unsigned long long)pl.st.late, pl.st.target_us / 1000.0,
                pl.st.fec_lookahead ? "on" : "off", play_mean_delay(&pl),
                pl.delay_max);
  assert_true(pl.st.fec_lookahead);
  assert_true(conc_pct < 1.5);
  assert_true(pl.st.recovered_fec > pl.st.concealed * 5);
  assert_true(pl.delay_max < 20 + 2 + 20 + 20 + 2 + 0.5);
  jitter_free(j);
  free(p);
}

/* Jitter jumps from 0 to 60 ms for 4 s, then calms down again. */
static int64_t jitter_spike(size_t i, void *arg) {
  (void)arg;
  return i >= 300 && i < 500 ? (int64_t)(rng_unit() * 60 * MS) : 0;
}

static void test_burst_then_calm(void **state) {
  (void)state;
  rng_seed(99);
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 1500, .base_us = 20 * MS, .jitter = jitter_spike};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  /* Phase 1: up to 1 s into the spike. */
  play_t pl = {.tick0_us = 5 * MS,
               .ticks = 350,
               .quiet = quiet_alternate,
               .measure_from = INT64_MAX};
  play_run(j, p, np, &pl);
  jitter_stats_t mid = pl.st;
  /* Phase 2: the rest, measuring the last 10 s. */
  size_t done = 0;
  while (done < np && p[done].t <= 5 * MS + 349 * FRAME_US)
    done++;
  play_t pl2 = {.tick0_us = 5 * MS + 350 * FRAME_US,
                .ticks = 1250,
                .quiet = quiet_alternate,
                .measure_from = 5 * MS + 1000 * FRAME_US,
                .has_end = true,
                .end_seq = 1499};
  pl2.any = true;
  pl2.last_seq = pl.last_seq;
  memcpy(pl2.kinds, pl.kinds, sizeof(pl.kinds)); /* counts span both */
  play_run(j, p + done, np - done, &pl2);
  check_counts(&pl2);
  print_message(
      "  spike 0 -> 60 ms: target %.1f ms 1 s into it; "
      "after calm: target %.1f, delay mean %.1f max %.1f ms; "
      "late %llu, stretched %llu, shrunk %llu\n",
      mid.target_us / 1000.0, pl2.st.target_us / 1000.0, play_mean_delay(&pl2),
      pl2.delay_max, (unsigned long long)pl2.st.late,
      (unsigned long long)pl2.st.stretched, (unsigned long long)pl2.st.shrunk);
  assert_true(mid.target_us >= 50 * MS);   /* attack: within a second */
  assert_true(pl2.st.target_us == 5 * MS); /* release once it left */
  assert_true(pl2.delay_max < 5 + 20 + 2 + 0.5);
  assert_true(pl2.st.late < 20); /* a few while it attacked */
  jitter_free(j);
  free(p);
}

/* ---- Shrinking only in silence ---- */

static bool never_quiet(size_t tick) {
  (void)tick;
  return false;
}

static bool dtx_after_2s(size_t i) {
  return i >= 100;
}

static void shrink_case(bool (*dtx)(size_t), bool (*unsent)(size_t),
                        int64_t *first_shrink_ms) {
  /* A short window forgets the start-up burst at once, so the excess
   * begins within half a second. */
  jitter_config_t c = jitter_config_default();
  c.window = 16;
  jitter_t *j = jitter_new(&c);
  /* Frames 0..9 all arrive together at 200 ms (a burst at start-up), so
   * the buffer starts ~180 ms too deep on a jitter-free network. */
  net_t n = {.frames = 400, .base_us = 10 * MS, .dtx = dtx, .lost = unsent};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  for (size_t i = 0; i < 10; i++)
    p[i].t = 200 * MS;
  *first_shrink_ms = -1;
  for (size_t k = 0; k < 380; k++) { /* while frames keep coming */
    play_t pl = {.tick0_us = 200 * MS + (int64_t)k * FRAME_US,
                 .ticks = 1,
                 .quiet = never_quiet,
                 .measure_from = INT64_MAX};
    size_t from = 0;
    while (from < np && p[from].t < pl.tick0_us - FRAME_US + 1)
      from++;
    size_t to = from;
    while (to < np && p[to].t <= pl.tick0_us)
      to++;
    play_run(j, p + from, to - from, &pl);
    if (pl.st.shrunk && *first_shrink_ms < 0)
      *first_shrink_ms = (int64_t)k * 20;
  }
  jitter_stats_t s;
  jitter_get_stats(j, &s);
  assert_true(s.delay_us < 5 * MS + 20 * MS + 2 * MS + 500);
  jitter_free(j);
  free(p);
}

/* A DTX sender from 2 s on that sends only the first two DTX frames. */
static bool unsent_after_2s(size_t i) {
  return i >= 102;
}

static void test_shrink_waits_for_silence(void **state) {
  (void)state;
  int64_t t_speech, t_dtx, t_gap;
  shrink_case(NULL, NULL, &t_speech);      /* never quiet: forced after 4 s */
  shrink_case(dtx_after_2s, NULL, &t_dtx); /* DTX from 2 s: shrinks then */
  /* The same, the DTX frames after the first two not sent: the gap's
   * turns are skipped instead. */
  shrink_case(dtx_after_2s, unsent_after_2s, &t_gap);
  print_message("  excess delay at start: first shrink after %lld ms in "
                "continuous speech, %lld ms when DTX starts at 2000 ms, "
                "%lld ms when DTX frames are not sent from 2040 ms\n",
                (long long)t_speech, (long long)t_dtx, (long long)t_gap);
  assert_true(t_speech >= 4000 && t_speech <= 4600);
  assert_true(t_dtx >= 2000 && t_dtx <= 2100);
  assert_true(t_gap >= 2000 && t_gap <= 2100);
}

/* ---- DTX gaps ---- */

/* Silence from frame 100 to 299 as call/media.c sends it with Opus DTX:
 * each DTX run starts with two DTX frames (sent), then frames that are
 * not sent, until Opus's comfort-noise update (a normal frame), every
 * 21st frame. */
static bool silent(size_t i) {
  return i >= 100 && i < 300;
}
static bool dtx_sent(size_t i) {
  return silent(i) && (i - 100) % 21 < 2;
}
static bool dtx_unsent(size_t i) {
  return silent(i) && (i - 100) % 21 >= 2 && (i - 100) % 21 < 20;
}
/* The network loses both DTX frames of the run at 163 (its gap follows
 * the update at 162) and the first of the run at 184. */
static bool dtx_unsent_or_lost(size_t i) {
  return dtx_unsent(i) || i == 163 || i == 164 || i == 184;
}

static size_t count_unsent(bool (*unsent)(size_t), size_t frames) {
  size_t n = 0;
  for (size_t i = 0; i < frames; i++)
    n += unsent(i);
  return n;
}

/* Plays the silence above (with lost: the frames missing, unsent or lost
 * by the network) on a clean 10 ms path; returns how many frames arrived. */
static size_t dtx_play(bool (*lost)(size_t), play_t *pl) {
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 400, .base_us = 10 * MS, .lost = lost, .dtx = dtx_sent};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  *pl = (play_t){.tick0_us = 0,
                 .ticks = 440,
                 .measure_from = 0,
                 .has_end = true,
                 .end_seq = 399};
  play_run(j, p, np, pl);
  check_counts(pl);
  jitter_free(j);
  free(p);
  return np;
}

/* Frames the sender did not send after a DTX frame are DTX turns: played
 * as concealment (comfort noise), not lost, no FEC, no loss in the window
 * that decides the FEC frame. */
static void test_dtx_gap_not_lost(void **state) {
  (void)state;
  play_t pl;
  size_t np = dtx_play(dtx_unsent, &pl);
  size_t unsent = count_unsent(dtx_unsent, 400);
  print_message("  DTX gaps: %zu frames not sent, %llu DTX turns, %llu "
                "shrunk, lost %llu\n",
                unsent, (unsigned long long)pl.st.dtx,
                (unsigned long long)pl.st.shrunk,
                (unsigned long long)pl.st.lost);
  assert_int_equal(np, 400 - unsent);
  assert_true(pl.st.lost == 0);
  assert_true(pl.st.concealed == 0 && pl.st.recovered_fec == 0);
  assert_true(pl.st.loss_permille == 0);
  assert_false(pl.st.fec_lookahead);
  /* Every turn is a frame played, a DTX turn, or skipped to shrink. */
  assert_true(pl.st.played + pl.st.dtx + pl.st.shrunk == 400);
  assert_true(pl.st.played + pl.st.shrunk >= np);
  assert_true(pl.st.dtx + pl.st.shrunk >= unsent);
  assert_true(pl.st.dtx > 100);
}

/* A gap after a normal frame is loss, as before, even in silence: here the
 * network lost a run's two DTX frames (20 turns after the update at 162:
 * 19 concealed, the last rebuilt from the next update by FEC) and another
 * run's first (rebuilt from its second, which starts the DTX run). */
static void test_dtx_gap_after_normal_is_lost(void **state) {
  (void)state;
  play_t pl;
  dtx_play(dtx_unsent_or_lost, &pl);
  print_message(
      "  DTX frames lost: lost %llu (fec %llu, concealed %llu), "
      "%llu DTX turns\n",
      (unsigned long long)pl.st.lost, (unsigned long long)pl.st.recovered_fec,
      (unsigned long long)pl.st.concealed, (unsigned long long)pl.st.dtx);
  assert_true(pl.st.lost == 21);
  assert_true(pl.st.recovered_fec == 2);
  assert_true(pl.st.concealed == 19);
  assert_true(pl.st.played + pl.st.dtx + pl.st.shrunk + pl.st.lost == 400);
  assert_true(pl.st.dtx + pl.st.shrunk >= count_unsent(dtx_unsent, 400) - 18);
}

/* Speech until frame 200, two DTX frames, then 6 s with nothing at all (a
 * long pause whose comfort-noise updates were lost too), then speech from
 * frame 500, over 20 ms +- 5 ms of jitter. */
static bool long_gap_dtx(size_t i) {
  return i == 200 || i == 201;
}
static bool long_gap_unsent(size_t i) {
  return i >= 202 && i < 500;
}

/* The talker resumes after a long DTX gap at the delay the buffer had: the
 * gap is no jitter to the estimator (the sequence numbers kept time), the
 * first frame after it is on time, nothing is stretched or lost. */
static void test_dtx_resume_keeps_delay(void **state) {
  (void)state;
  rng_seed(11);
  jit_t jt = {10 * MS, 1};
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 600,
             .base_us = 20 * MS,
             .jitter = jitter_uniform,
             .jitter_arg = &jt,
             .lost = long_gap_unsent,
             .dtx = long_gap_dtx};
  size_t np, next = 0;
  pkt_t *p = net_run(&n, &np);
  jitter_stats_t before = {0}, after = {0};
  int64_t delay_before = -1, delay_after = -1;
  uint64_t resumed_frames = 0;
  for (size_t k = 0; k < 700; k++) {
    int64_t now = 13 * MS + (int64_t)k * FRAME_US;
    uint8_t b[64];
    for (; next < np && p[next].t <= now; next++) {
      payload(b, p[next].seq);
      assert_int_equal(
          jitter_insert(j, p[next].seq, 0, p[next].t, b, p[next].dtx ? 1 : 40),
          JITTER_OK);
    }
    jitter_out_t out;
    enum jitter_kind kind = jitter_pop(j, now, false, &out);
    if (kind == JITTER_WAIT)
      continue;
    if (kind == JITTER_FRAME && out.seq == 199) {
      delay_before = out.delay_us;
      jitter_get_stats(j, &before);
    }
    if (out.seq >= 500) { /* every turn after the gap plays its frame */
      assert_int_equal(kind, JITTER_FRAME);
      resumed_frames++;
    }
    if (out.seq == 500) {
      delay_after = out.delay_us;
      jitter_get_stats(j, &after);
    }
    if (out.seq == 560)
      break;
  }
  jitter_stats_t end;
  jitter_get_stats(j, &end);
  print_message("  after a 6 s DTX gap: delay %.1f ms before, %.1f ms at "
                "resume; target %.1f -> %.1f ms; %llu DTX turns, %llu "
                "shrunk\n",
                delay_before / 1000.0, delay_after / 1000.0,
                before.target_us / 1000.0, after.target_us / 1000.0,
                (unsigned long long)end.dtx, (unsigned long long)end.shrunk);
  assert_true(delay_before > 0 && delay_after > 0);
  assert_true(resumed_frames == 61);
  /* The target did not move with the gap; the delay did not grow, and did
   * not drop below the target (a shrink in the gap is allowed). */
  assert_true(llabs(after.target_us - before.target_us) <= 1 * MS);
  assert_true(delay_after <= delay_before);
  assert_true(delay_after >= after.target_us);
  assert_true(end.stretched == before.stretched);
  assert_true(end.late == 0 && end.lost == 0);
  assert_true(end.dtx + (end.shrunk - before.shrunk) == 298);
  jitter_free(j);
  free(p);
}

/* ---- Sequence handling ---- */

static void test_wraparound(void **state) {
  (void)state;
  jitter_t *j = jitter_new(NULL);
  net_t n = {.frames = 300,
             .seq0 = 0xffffffffu - 100,
             .base_us = 10 * MS,
             .lost = every_10th};
  size_t np;
  pkt_t *p = net_run(&n, &np);
  play_t pl = {.tick0_us = 0,
               .ticks = 320,
               .measure_from = 0,
               .has_end = true,
               .end_seq = 0xffffffffu - 100 + 299};
  play_run(j, p, np, &pl); /* checks the order across the wrap */
  check_counts(&pl);
  assert_true(pl.st.recovered_fec == 30);
  assert_true(pl.st.played + pl.st.shrunk == 270);
  assert_true(pl.st.resets == 0);
  jitter_free(j);
  free(p);
}

static void test_resync(void **state) {
  (void)state;
  jitter_t *j = jitter_new(NULL);
  uint8_t b[4];
  jitter_out_t out;
  int64_t t = 0;
  /* 100 frames, then the sender restarts its numbering far away. */
  for (uint32_t s = 0; s < 200; s++, t += FRAME_US) {
    uint32_t seq = s < 100 ? s : 5000000 + s;
    payload(b, seq);
    assert_int_equal(jitter_insert(j, seq, 0, t, b, 4), JITTER_OK);
    jitter_pop(j, t + 10 * MS, false, &out);
  }
  jitter_stats_t st;
  jitter_get_stats(j, &st);
  assert_true(st.resets == 1);
  assert_true(st.late == 0);
  assert_true(st.played >= 190);

  /* The sender's timeline moves back by 2 s (frames now arrive 2 s later
   * than their numbers say): after JITTER_RESYNC_LATE late frames in a
   * row the buffer starts over and plays again. */
  jitter_t *k = jitter_new(NULL);
  t = 0;
  for (uint32_t s = 0; s < 300; s++, t += FRAME_US) {
    uint32_t seq = s < 100 ? s : s - 100;
    payload(b, seq);
    jitter_insert(k, seq, 0, t, b, 4);
    jitter_pop(k, t + 10 * MS, false, &out);
  }
  jitter_get_stats(k, &st);
  print_message("  timeline moved back 2 s: %llu late, %llu resets, "
                "%llu played\n",
                (unsigned long long)st.late, (unsigned long long)st.resets,
                (unsigned long long)st.played);
  assert_true(st.resets == 1);
  assert_true(st.late == JITTER_RESYNC_LATE - 1);
  assert_int_equal(out.kind, JITTER_FRAME);
  jitter_free(j);
  jitter_free(k);
}

static void test_api_edges(void **state) {
  (void)state;
  jitter_config_t c = jitter_config_default();
  c.window = 4;
  assert_null(jitter_new(&c));
  c = jitter_config_default();
  c.quantile = 0;
  assert_null(jitter_new(&c));
  jitter_t *j = jitter_new(NULL);
  static uint8_t big[JITTER_MAX_DATA + 1];
  assert_int_equal(jitter_insert(j, 1, 0, 0, big, sizeof(big)), JITTER_ERR_LEN);
  jitter_out_t out;
  assert_int_equal(jitter_pop(j, 0, false, &out), JITTER_WAIT);
  assert_int_equal(jitter_insert(j, 1, 0, 0, big, 10), JITTER_OK);
  assert_int_equal(jitter_insert(j, 1, 0, 0, big, 10), JITTER_DUPLICATE);
  /* Nothing plays before the start delay has passed. */
  assert_int_equal(jitter_pop(j, 19 * MS, false, &out), JITTER_WAIT);
  assert_int_equal(jitter_pop(j, 20 * MS, false, &out), JITTER_FRAME);
  assert_int_equal(out.seq, 1);
  assert_true(jitter_delay_us(j) == 20 * MS);
  assert_int_equal(jitter_insert(j, 1, 0, 21 * MS, big, 10),
                   JITTER_DUPLICATE); /* already played */
  assert_int_equal(jitter_insert(j, 0, 0, 22 * MS, big, 10), JITTER_LATE);
  jitter_free(j);

  /* 100 frames at once before playout starts: the table keeps the newest
   * JITTER_SLOTS and playout starts at the oldest of those. */
  j = jitter_new(NULL);
  for (uint32_t s = 0; s < 100; s++)
    assert_int_equal(jitter_insert(j, s, 0, 0, big, 10), JITTER_OK);
  assert_int_equal(jitter_pop(j, 0, false, &out), JITTER_FRAME);
  assert_int_equal(out.seq, 100 - JITTER_SLOTS);
  assert_int_equal(jitter_pop(j, 20 * MS, false, &out), JITTER_FRAME);
  assert_int_equal(out.seq, 100 - JITTER_SLOTS + 1);
  jitter_free(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean),
      cmocka_unit_test(test_reorder_and_duplicates),
      cmocka_unit_test(test_loss_fec_and_plc),
      cmocka_unit_test(test_late),
      cmocka_unit_test(test_converges_to_jitter),
      cmocka_unit_test(test_loss_with_jitter),
      cmocka_unit_test(test_burst_then_calm),
      cmocka_unit_test(test_shrink_waits_for_silence),
      cmocka_unit_test(test_dtx_gap_not_lost),
      cmocka_unit_test(test_dtx_gap_after_normal_is_lost),
      cmocka_unit_test(test_dtx_resume_keeps_delay),
      cmocka_unit_test(test_wraparound),
      cmocka_unit_test(test_resync),
      cmocka_unit_test(test_api_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
