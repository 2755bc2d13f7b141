/* Echo cancellation in a real call, with real PortAudio audio through a
 * private PulseAudio server (see test_portaudio.c and docs/devices.md):
 *
 *   B (file source: espeak-ng speech) --call--> A --PortAudio--> spk_a
 *   spk_a.monitor --module-loopback (echo delay, -6 dB)--> mic_a
 *   paplay near.wav (the near-end talker) -------------------> mic_a
 *   mic_a.monitor --PortAudio--> A --call--> B (file sink: recorded)
 *
 * parecord records mic_a (what A's microphone hears: echo + near end).
 * The analysis aligns the known far-end speech and the near-end talker in
 * that recording, and the near-end talker in B's recording, then compares
 * 100 ms blocks: ERLE = echo energy in A's microphone / energy B received,
 * over far-end single-talk blocks from 2 s after the far end started
 * (the convergence allowance); double-talk attenuation = near-end level
 * in the microphone - level B received, median over blocks with both.
 *
 * Three calls: processing off (the echo must be clearly there, so this
 * test can fail), AEC alone (ERLE >= 25 dB, double talk attenuated by
 * <= 10 dB), and the defaults for a microphone (AEC, NS, AGC all on:
 * ERLE >= 35 dB) during which the echo delay jumps by +20 ms (a second,
 * muted loopback with 20 ms more latency takes over): ERLE back above
 * 10 dB within 1 s. Skips, saying why, only when the sound server cannot
 * start. PARLEY_TEST_KEEP=1 keeps the recordings and logs. */
#include "pulsetest.h"

#include "device/device.h"
#include "media/audio.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE AUDIO_RATE
#define BLK (RATE / 10)
#define ECHO_MS 40
#define JUMP_MS 20

static struct {
  ts_daemon_t a, b;
  char ticket_b[1024];
  pt_pcm_t far, near;
  char far_path[TS_PATH_MAX], near_path[TS_PATH_MAX];
  int echo_in[2]; /* sink inputs of the two echo loopbacks */
  int calls;
} g;

/* ---- files ---- */

/* espeak-ng speech resampled to 48 kHz into path (sox). */
static void speech(const char *path, const char *voice, const char *text) {
  char *raw = ts_path(pt_dir(), "espeak.wav");
  const char *argv[] = {"espeak-ng", "-v", voice, "-s", "150",
                        "-w",        raw,  text,  NULL};
  ts_output_t o;
  assert_int_equal(ts_run(argv, NULL, 20000, &o), 0);
  if (o.status != 0)
    fail_msg("espeak-ng: %s", o.err);
  ts_output_free(&o);
  /* Padded with 300 ms of silence: a stopping stream drops its tail. */
  const char *sx[] = {"sox", raw, "-r", "48000", path, "pad", "0", "0.3", NULL};
  assert_int_equal(ts_run(sx, NULL, 20000, &o), 0);
  if (o.status != 0)
    fail_msg("sox: %s", o.err);
  ts_output_free(&o);
  free(raw);
}

/* ---- the sound server ---- */

/* The sink input of module index `module` ("Owner Module: N"). */
static int sink_input_of(const char *module) {
  const char *args[] = {"list", "sink-inputs", NULL};
  char *text = pt_pactl(args);
  int idx = -1, cur = -1;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    while (*line == ' ' || *line == '\t')
      line++;
    if (sscanf(line, "Sink Input #%d", &cur) == 1)
      continue;
    char want[64];
    snprintf(want, sizeof(want), "Owner Module: %s", module);
    if (strcmp(line, want) == 0)
      idx = cur;
  }
  free(text);
  assert_true(idx >= 0);
  return idx;
}

/* A loopback spk_a.monitor -> mic_a of latency ms at -6 dB, muted or not;
 * returns its sink input. */
static int echo_path(int ms, bool muted) {
  char lat[32];
  snprintf(lat, sizeof(lat), "latency_msec=%d", ms);
  const char *args[] = {"load-module",
                        "module-loopback",
                        "source=spk_a.monitor",
                        "sink=mic_a",
                        lat,
                        "adjust_time=0",
                        "source_dont_move=1",
                        "sink_dont_move=1",
                        NULL};
  char *module = pt_pactl(args);
  module[strcspn(module, "\n")] = '\0';
  int si = sink_input_of(module);
  char idx[16];
  snprintf(idx, sizeof(idx), "%d", si);
  const char *vol[] = {"set-sink-input-volume", idx, "0.5", NULL};
  free(pt_pactl(vol));
  const char *mute[] = {"set-sink-input-mute", idx, muted ? "1" : "0", NULL};
  free(pt_pactl(mute));
  free(module);
  return si;
}

static void set_mute(int si, bool muted) {
  char idx[16];
  snprintf(idx, sizeof(idx), "%d", si);
  const char *mute[] = {"set-sink-input-mute", idx, muted ? "1" : "0", NULL};
  free(pt_pactl(mute));
}

static int server_start(void **state) {
  const char *sinks[] = {"spk_a", "mic_a", NULL};
  if (!pt_server_start("aec", sinks, "spk_a", "mic_a.monitor"))
    return 0;

  /* The echo path: 40 ms, and the jump's 60 ms one, muted for now. */
  g.echo_in[0] = echo_path(ECHO_MS, false);
  g.echo_in[1] = echo_path(ECHO_MS + JUMP_MS, true);

  snprintf(g.far_path, sizeof(g.far_path), "%s/far.wav", pt_dir());
  snprintf(g.near_path, sizeof(g.near_path), "%s/near.wav", pt_dir());
  speech(g.far_path, "en-us",
         "The quick brown fox jumps over the lazy dog. Every serious "
         "calling application cancels echo, suppresses noise and levels "
         "the microphone. Data flows one way through each pipeline.");
  speech(g.near_path, "en+f3",
         "Hello, this is the near end, talking over the far end.");
  pt_load_wav(g.far_path, &g.far);
  pt_load_wav(g.near_path, &g.near);

  /* Both daemons on A's devices: B's are files, given in the call. */
  pt_daemon_start(&g.a, "a", "mic_a.monitor", "spk_a");
  pt_daemon_start(&g.b, "b", "mic_a.monitor", "spk_a");
  json_t *tb = ts_rpc_call_once(g.b.socket, "get_ticket", NULL);
  assert_non_null(tb);
  snprintf(g.ticket_b, sizeof(g.ticket_b), "%s",
           json_string_value(
               json_object_get(json_object_get(tb, "result"), "ticket")));
  json_decref(tb);
  json_t *ta = ts_rpc_call_once(g.a.socket, "get_ticket", NULL);
  json_t *r = ts_rpc_call_once(
      g.b.socket, "add_contact",
      json_pack("{s:O}", "ticket",
                json_object_get(json_object_get(ta, "result"), "ticket")));
  assert_non_null(json_object_get(r, "result"));
  json_decref(r);
  json_decref(ta);
  return 0;
}

static int server_stop(void **state) {
  ts_kill_all();
  pt_server_stop();
  free(g.far.s);
  free(g.near.s);
  return 0;
}

/* ---- one call ---- */

typedef struct call_run {
  pt_pcm_t mic;    /* what A's microphone heard */
  pt_pcm_t recv;   /* what B received from A */
  pt_pcm_t played; /* what A's speaker played (jump calls only) */
  long near_mic_ms, near_recv_ms; /* about where the near end starts */
  int64_t jump_ms;                /* after the recording started; 0: no jump */
  json_t *stats;                  /* A's call_stats at the end */
  json_t *stats_b;                /* B's */
} call_run_t;

/* A calls B with processing `ap` (set_audio_processing defaults on A); B
 * sends the far-end speech; the near end talks at near_at_ms after the
 * call is active; the echo delay jumps at jump_at_ms if > 0. */
static void run_call(json_t *ap, int near_at_ms, int jump_at_ms,
                     call_run_t *out) {
  ts_daemon_t *a = &g.a, *b = &g.b;
  char mic_path[TS_PATH_MAX], recv_path[TS_PATH_MAX];
  int n = ++g.calls;
  snprintf(mic_path, sizeof(mic_path), "%s/mic_%d.wav", pt_dir(), n);
  snprintf(recv_path, sizeof(recv_path), "%s/recv_%d.wav", pt_dir(), n);
  ts_rpc_t *ca = ts_rpc_connect(a->socket, 5000);
  ts_rpc_t *cb = ts_rpc_connect(b->socket, 5000);
  json_decref(ts_rpc_call_ok(ca, "set_audio_processing", ap));
  json_decref(ts_rpc_call_ok(ca, "subscribe", NULL));
  json_decref(ts_rpc_call_ok(cb, "subscribe", NULL));

  pid_t recorder = pt_record("mic_a.monitor", mic_path);
  int64_t rec_t0 = ts_now_ms();
  char spk_path[TS_PATH_MAX];
  snprintf(spk_path, sizeof(spk_path), "%s/spk_%d.wav", pt_dir(), n);
  pid_t spk_recorder =
      jump_at_ms > 0 ? pt_record("spk_a.monitor", spk_path) : 0;
  char far_dev[TS_PATH_MAX + 8], recv_dev[TS_PATH_MAX + 8];
  snprintf(far_dev, sizeof(far_dev), "file:%s", g.far_path);
  snprintf(recv_dev, sizeof(recv_dev), "file:%s", recv_path);
  json_t *call = ts_rpc_call_ok(ca, "start_call",
                                json_pack("{s:s, s:s, s:s}", "peer", g.ticket_b,
                                          "audio_source", "portaudio",
                                          "audio_sink", "portaudio"));
  const char *id = json_string_value(json_object_get(call, "call_id"));
  json_decref(ts_rpc_wait_event(cb, "incoming-call", 10000));
  json_decref(
      ts_rpc_call_ok(cb, "answer_call",
                     json_pack("{s:s, s:s, s:s}", "call_id", id, "audio_source",
                               far_dev, "audio_sink", recv_dev)));
  ts_rpc_wait_call_state(ca, "active");
  int64_t t0 = ts_now_ms();
  int far_ms = (int)(g.far.n * 1000 / RATE);
  int end_ms = far_ms + 600;
  pid_t talker = 0;
  out->jump_ms = 0;
  for (;;) {
    int64_t t = ts_now_ms() - t0;
    if (!talker && t >= near_at_ms) {
      talker = pt_play("mic_a", g.near_path);
      out->near_mic_ms = (long)(ts_now_ms() - rec_t0);
      out->near_recv_ms = (long)(ts_now_ms() - t0);
    }
    if (jump_at_ms > 0 && !out->jump_ms && t >= jump_at_ms) {
      set_mute(g.echo_in[1], false);
      set_mute(g.echo_in[0], true);
      out->jump_ms = ts_now_ms() - rec_t0;
    }
    if (t >= end_ms && t >= near_at_ms + 3500)
      break;
    ts_sleep_ms(10);
  }
  out->stats =
      ts_rpc_call_ok(ca, "call_stats", json_pack("{s:s}", "call_id", id));
  out->stats_b =
      ts_rpc_call_ok(cb, "call_stats", json_pack("{s:s}", "call_id", id));
  json_decref(
      ts_rpc_call_ok(ca, "end_call", json_pack("{s:s}", "call_id", id)));
  json_decref(ts_rpc_wait_event(cb, "call-ended", 10000));
  if (jump_at_ms > 0) { /* back to the 40 ms path for the next call */
    set_mute(g.echo_in[0], false);
    set_mute(g.echo_in[1], true);
  }
  ts_sleep_ms(200);
  pt_stop_recording(recorder, mic_path, &out->mic);
  out->played = (pt_pcm_t){NULL, 0};
  if (spk_recorder)
    pt_stop_recording(spk_recorder, spk_path, &out->played);
  pt_stop_pid(talker, SIGKILL, 1000);
  ts_rpc_close(ca);
  ts_rpc_close(cb);
  json_decref(call);
  pt_load_wav(recv_path, &out->recv);
  json_t *apst = json_object_get(out->stats, "audio_processing");
  char *js = json_dumps(apst, JSON_COMPACT);
  printf("  call %d: mic %.1f s, received %.1f s; A's audio_processing: %s\n",
         n, (double)out->mic.n / RATE, (double)out->recv.n / RATE,
         js ? js : "(none)");
  free(js);
}

static void free_run(call_run_t *r) {
  free(r->mic.s);
  free(r->recv.s);
  free(r->played.s);
  json_decref(r->stats);
  json_decref(r->stats_b);
}

/* ---- analysis ---- */

static double blk_energy(const pt_pcm_t *p, long at, long n) {
  double e = 0;
  for (long i = at; i < at + n; i++)
    if (i >= 0 && (size_t)i < p->n)
      e += (double)p->s[i] * p->s[i];
  return e;
}

static double blk_db(const pt_pcm_t *p, long at, long n) {
  return 10 *
         log10(blk_energy(p, at, n) / (double)n / (32768.0 * 32768.0) + 1e-20);
}

/* Where ref starts in sig (samples), searched from `from` to `to`, with
 * the correlation there. */
static long find(const int16_t *ref, size_t n_ref, const pt_pcm_t *sig,
                 long from, long to, double *corr) {
  size_t lag = 0;
  from = from < 0 ? 0 : from;
  to = to > (long)sig->n ? (long)sig->n : to;
  assert_true(to > from);
  size_t n = (size_t)(to - from) + n_ref;
  n = from + n > sig->n ? sig->n - (size_t)from : n;
  if (audio_align(ref, n_ref, sig->s + from, n, (size_t)(to - from), &lag,
                  corr) != 0)
    fail_msg("cannot align");
  return from + (long)lag;
}

typedef struct analysis {
  long far_at;  /* the far end's echo in mic, first sample */
  long near_at; /* the near end in mic */
  long offset;  /* recv index = mic index + offset */
  double jump_ms;
} analysis_t;

static void analyse(const call_run_t *r, analysis_t *an) {
  double c1, c2, c3;
  /* Two seconds of the far end from its second 1: the echo's delay
   * drifts as A's jitter buffer adapts, so not all of it at once. */
  an->far_at = find(g.far.s + RATE, 2 * RATE, &r->mic, 0, 8 * RATE, &c1) - RATE;
  long near_mic = r->near_mic_ms * RATE / 1000;
  long near_recv = r->near_recv_ms * RATE / 1000;
  an->near_at = find(g.near.s, g.near.n, &r->mic, near_mic - RATE,
                     near_mic + 2 * RATE, &c2);
  near_recv = find(g.near.s, g.near.n, &r->recv, near_recv - 2 * RATE,
                   near_recv + 2 * RATE, &c3);
  an->offset = near_recv - an->near_at;
  printf("  far end in the mic at %.3f s (corr %.2f), near end at %.3f s "
         "(%.2f), in B's recording at %.3f s (%.2f)\n",
         (double)an->far_at / RATE, c1, (double)an->near_at / RATE, c2,
         (double)near_recv / RATE, c3);
  assert_true(c1 > 0.3 && c2 > 0.3 && c3 > 0.3);
  an->jump_ms = 0;
}

/* True when the far end (as echoed) is talking in mic block at. */
static bool far_active(const analysis_t *an, long at) {
  pt_pcm_t f = g.far;
  return blk_db(&f, at - an->far_at, BLK) > -45;
}

/* The near end talks in [at - margin, at + BLK + margin). */
static bool near_active(const analysis_t *an, long at, long margin) {
  pt_pcm_t nr = g.near;
  for (long m = at - margin; m < at + BLK + margin; m += BLK / 2)
    if (blk_db(&nr, m - an->near_at, BLK / 2) > -50)
      return true;
  return false;
}

/* ERLE over far-end single-talk blocks of mic in [from, to). */
static double erle(const call_run_t *r, const analysis_t *an, long from,
                   long to, int *blocks) {
  double e = 0, o = 0;
  *blocks = 0;
  for (long b = from; b + BLK <= to; b += BLK) {
    if (!far_active(an, b) || near_active(an, b, RATE / 2) ||
        b + an->offset < 0 || (size_t)(b + an->offset + BLK) > r->recv.n)
      continue;
    e += blk_energy(&r->mic, b, BLK);
    o += blk_energy(&r->recv, b + an->offset, BLK);
    (*blocks)++;
  }
  return 10 * log10((e + 1) / (o + 1));
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median over double-talk blocks of near-end level - received level. */
static double dt_attenuation(const call_run_t *r, const analysis_t *an,
                             int *blocks) {
  double v[600];
  int n = 0;
  pt_pcm_t nr = g.near;
  for (long b = an->near_at; b + BLK <= an->near_at + (long)g.near.n && n < 600;
       b += BLK) {
    if (!far_active(an, b) || blk_db(&nr, b - an->near_at, BLK) < -40)
      continue;
    v[n++] = blk_db(&nr, b - an->near_at, BLK) -
             blk_db(&r->recv, b + an->offset, BLK);
  }
  *blocks = n;
  if (n == 0)
    return 0;
  qsort(v, (size_t)n, sizeof(v[0]), cmp_d);
  return v[n / 2];
}

/* ---- tests ---- */

static json_t *ap_params(json_t *aec, json_t *ns, json_t *agc) {
  return json_pack("{s:o, s:o, s:o}", "aec", aec, "ns", ns, "agc", agc);
}

static void test_aec_off_echo_present(void **state) {
  pt_need_server();
  call_run_t r;
  run_call(ap_params(json_false(), json_false(), json_false()), 4000, 0, &r);
  analysis_t an;
  analyse(&r, &an);
  int nb;
  double e = erle(&r, &an, an.far_at + 2 * RATE, (long)r.mic.n, &nb);
  printf("  processing off: ERLE %.1f dB over %d blocks (the echo reaches "
         "B)\n",
         e, nb);
  json_t *apst = json_object_get(r.stats, "audio_processing");
  assert_false(json_is_true(json_object_get(apst, "aec")));
  assert_true(nb >= 20);
  assert_true(e < 6);
  free_run(&r);
}

static void test_aec_single_and_double_talk(void **state) {
  pt_need_server();
  call_run_t r;
  run_call(ap_params(json_true(), json_false(), json_false()), 6000, 0, &r);
  analysis_t an;
  analyse(&r, &an);
  int nb, nd;
  double e = erle(&r, &an, an.far_at + 2 * RATE, (long)r.mic.n, &nb);
  double dt = dt_attenuation(&r, &an, &nd);
  printf("  AEC on: ERLE %.1f dB over %d far-end single-talk blocks; double "
         "talk: near end attenuated %.1f dB (median of %d blocks)\n",
         e, nb, dt, nd);
  json_t *apst = json_object_get(r.stats, "audio_processing");
  assert_true(json_is_true(json_object_get(apst, "aec")));
  assert_false(json_is_true(json_object_get(apst, "ns")));
  assert_true(json_is_number(json_object_get(apst, "erle_db")));
  assert_true(nb >= 20 && nd >= 10);
  assert_true(e >= 25);
  assert_true(dt <= 10);
  free_run(&r);
}

static void test_defaults_and_delay_jump(void **state) {
  pt_need_server();
  call_run_t r;
  int jump_at = 6500;
  run_call(
      ap_params(json_string("auto"), json_string("auto"), json_string("auto")),
      (int)(g.far.n * 1000 / RATE), jump_at, &r);
  analysis_t an;
  analyse(&r, &an);
  long jump = (long)(r.jump_ms * RATE / 1000);
  /* The echo delay before and after the jump, measured: the speaker's
   * recording against the microphone's (their starts differ by some
   * unknown amount, which cancels out). */
  double c1, c2;
  long before = jump - 3 * RATE, after = jump + RATE / 2;
  assert_true(before > RATE && r.played.n > (size_t)(after + 2 * RATE));
  long l1 = find(r.played.s + before, 2 * RATE, &r.mic, before - RATE / 2,
                 before + RATE / 2, &c1) -
            before;
  long l2 = find(r.played.s + after, 2 * RATE, &r.mic, after - RATE / 2,
                 after + RATE / 2, &c2) -
            after;
  double jump_ms = (double)(l2 - l1) * 1000 / RATE;
  int nb;
  double e = erle(&r, &an, an.far_at + 2 * RATE, jump, &nb);
  /* Recovery: the last 200 ms window under 10 dB within 3 s after. */
  double last_bad = 0;
  for (long b = jump; b + 2 * BLK <= jump + 3 * RATE; b += BLK) {
    int k;
    double w = erle(&r, &an, b, b + 2 * BLK, &k);
    if (k == 2 && w < 10)
      last_bad = (double)(b + 2 * BLK - jump) / RATE;
  }
  int na;
  double e_after = erle(&r, &an, jump + RATE, jump + 4 * RATE, &na);
  json_t *apst = json_object_get(r.stats, "audio_processing");
  printf("  defaults (AEC, NS, AGC): ERLE %.1f dB over %d blocks before the "
         "jump; echo delay jumped %+.1f ms (corr %.2f, %.2f); ERLE above "
         "10 dB again %.1f s after it; %.1f dB over 1..4 s after\n",
         e, nb, jump_ms, c1, c2, last_bad, e_after);
  assert_true(json_is_true(json_object_get(apst, "aec")));
  assert_true(json_is_true(json_object_get(apst, "ns")));
  assert_true(json_is_true(json_object_get(apst, "agc")));
  assert_true(json_is_true(json_object_get(apst, "aec_converged")));
  /* B sends a file: nothing to cancel, so its defaults leave all off. */
  json_t *apb = json_object_get(r.stats_b, "audio_processing");
  assert_true(json_is_false(json_object_get(apb, "aec")));
  assert_true(json_is_false(json_object_get(apb, "ns")));
  assert_true(json_is_false(json_object_get(apb, "agc")));
  assert_true(nb >= 20);
  assert_true(e >= 35);
  assert_true(jump_ms >= 15 && jump_ms <= 25);
  assert_true(last_bad <= 1.0);
  free_run(&r);
}

static int teardown(void **state) {
  unsetenv("PULSE_SOURCE");
  unsetenv("PULSE_SINK");
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_aec_off_echo_present, teardown),
      cmocka_unit_test_teardown(test_aec_single_and_double_talk, teardown),
      cmocka_unit_test_teardown(test_defaults_and_delay_jump, teardown),
  };
  int r = cmocka_run_group_tests(tests, server_start, server_stop);
  return r == 0 && !pt_server_up() ? 77 : r;
}
