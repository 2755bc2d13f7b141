/* The audio processing stage on a synthetic echo path, off-line: how much
 * echo each canceller configuration removes, how fast it converges and
 * recovers from a delay jump, what it costs and what latency it adds.
 *
 * Echo path: the far-end speech through a 300 ms exponentially decaying
 * room response (a direct path and 400 reflections, fixed seed), delayed
 * 40 ms and attenuated 6 dB, plus a near-end talker (double talk from 6 s
 * to 11.5 s) and white noise at -70 dBFS; at 14 s the echo delay jumps to
 * 60 ms. Render and capture are fed in lock-step, 10 ms each, with the
 * delay reported as the stage reports it (biased low: 20 ms, then still 20
 * after the jump). Figures (100 ms blocks):
 *   erle_db       10 log10(echo energy / output energy) over the far-end
 *                 single-talk blocks from 2 s to 6 s;
 *   converge_s    first time from which every far-active 200 ms window
 *                 until 6 s has ERLE > 10 dB;
 *   recover_s     the same after the jump (time after 14 s);
 *   erle_jump_db  ERLE over 15..20 s (after the jump);
 *   dt_atten_db   median over near-active double-talk blocks of
 *                 near level - output level;
 *   cpu_percent   processing CPU time / audio time (one core = 100);
 *   latency_ms    the stage's algorithmic delay: the lag of the output
 *                 against a clean input with every part on (no echo),
 *                 and with each part alone (latency_parts).
 * One line of key=value pairs per configuration: WebRTC AudioProcessing
 * with and without delay-agnostic mode and the extended filter.
 *
 *   bench_audioproc FAR.wav NEAR.wav
 */
#include "device/device.h"
#include "media/apm.h"
#include "media/audio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATE 48000
#define SECONDS 21
#define N ((size_t)RATE * SECONDS)
#define BLK 4800 /* 100 ms analysis blocks */
#define ECHO_MS 40
#define JUMP_MS 20
#define JUMP_S 14
#define REPORTED_MS 20
#define NEAR_FROM_S 6.0
#define NEAR_TO_S 11.5
#define TAPS 401

static float far_s[N], near_s[N], echo_s[N], mic_s[N], out_s[N], zero_s[N];

static void load(const char *path, float *dst, size_t max, size_t at) {
  char name[1024], err[256];
  audio_source_t *src;
  snprintf(name, sizeof(name), "file:%s", path);
  if (device_open_source(name, &src, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_audioproc: %s\n", err);
    exit(1);
  }
  int16_t pcm[AUDIO_FRAME_SAMPLES];
  size_t n = at;
  while (n + AUDIO_FRAME_SAMPLES <= max &&
         audio_source_read(src, pcm) == AUDIO_FRAME_SAMPLES)
    for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++)
      dst[n++] = pcm[i] / 32768.0f;
  audio_source_close(src);
}

static double energy(const float *s, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++)
    e += (double)s[i] * s[i];
  return e;
}

static double db(double e, size_t n) {
  return 10 * log10(e / (double)n + 1e-20);
}

/* Far end through the room, delayed (ms, changing at JUMP_S), -6 dB. */
static void make_echo(void) {
  size_t off[TAPS];
  double gain[TAPS], sum = 0;
  srand(7);
  off[0] = 0;
  gain[0] = 1;
  for (int k = 1; k < TAPS; k++) {
    off[k] = (size_t)(rand() % (RATE * 3 / 10));
    double t = (double)off[k] / RATE;
    double sign = rand() % 2 ? 1 : -1;
    gain[k] = sign * 0.25 * exp(-t / 0.0434) * (rand() / (double)RAND_MAX);
  }
  for (int k = 0; k < TAPS; k++)
    sum += gain[k] * gain[k];
  double norm = 0.5 / sqrt(sum);
  for (size_t i = 0; i < N; i++) {
    size_t d = (size_t)RATE *
               (ECHO_MS + (i >= (size_t)JUMP_S * RATE ? JUMP_MS : 0)) / 1000;
    double v = 0;
    for (int k = 0; k < TAPS; k++)
      if (i >= d + off[k])
        v += gain[k] * far_s[i - d - off[k]];
    echo_s[i] = (float)(v * norm);
  }
  srand(11);
  double nz = pow(10, -70 / 20.0) * sqrt(3.0); /* uniform: RMS a/sqrt3 */
  for (size_t i = 0; i < N; i++)
    mic_s[i] =
        echo_s[i] + near_s[i] + (float)(nz * (2.0 * rand() / RAND_MAX - 1));
}

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Runs one configuration over mic/far into out; returns CPU seconds. */
static double run(const apm_options_t *o, bool aec, bool ns, bool agc,
                  const float *mic, const float *far, float *out,
                  int reported_ms) {
  apm_t *a = apm_new(o);
  if (!a || apm_enable(a, aec, ns, agc) != 0) {
    fprintf(stderr, "bench_audioproc: the library failed\n");
    exit(1);
  }
  memcpy(out, mic, N * sizeof(float));
  double t0 = cpu_s();
  for (size_t i = 0; i + APM_BLOCK <= N; i += APM_BLOCK) {
    apm_render(a, far + i);
    apm_capture(a, out + i, reported_ms);
  }
  double t = cpu_s() - t0;
  apm_free(a);
  return t;
}

static bool far_active(size_t b) {
  return db(energy(echo_s + b * BLK, BLK), BLK) > -50;
}
static bool near_active(size_t b) {
  return db(energy(near_s + b * BLK, BLK), BLK) > -50;
}

/* ERLE over far-active, near-silent blocks in [from_s, to_s). */
static double erle(double from_s, double to_s) {
  double e = 0, o = 0;
  for (size_t b = (size_t)(from_s * 10); b < (size_t)(to_s * 10); b++)
    if (far_active(b) && !near_active(b)) {
      e += energy(echo_s + b * BLK, BLK);
      o += energy(out_s + b * BLK, BLK);
    }
  return 10 * log10((e + 1e-20) / (o + 1e-20));
}

/* Seconds from from_s until every far-only 200 ms window up to to_s has
 * ERLE above 10 dB (to_s - from_s if never). */
static double settle(double from_s, double to_s) {
  double last_bad = from_s;
  for (size_t b = (size_t)(from_s * 10); b + 2 <= (size_t)(to_s * 10); b++) {
    if (!far_active(b) || !far_active(b + 1) || near_active(b) ||
        near_active(b + 1))
      continue;
    double e = energy(echo_s + b * BLK, 2 * BLK);
    double o = energy(out_s + b * BLK, 2 * BLK);
    if (10 * log10((e + 1e-20) / (o + 1e-20)) < 10)
      last_bad = (double)(b + 2) / 10;
  }
  return last_bad - from_s;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double dt_attenuation(void) {
  double v[SECONDS * 10];
  size_t n = 0;
  for (size_t b = (size_t)(NEAR_FROM_S * 10); b < (size_t)(NEAR_TO_S * 10); b++)
    if (near_active(b) && far_active(b))
      v[n++] = db(energy(near_s + b * BLK, BLK), BLK) -
               db(energy(out_s + b * BLK, BLK), BLK);
  if (n == 0)
    return 0;
  qsort(v, n, sizeof(v[0]), cmp_d);
  return v[n / 2];
}

/* The lag (ms) of out against in, by cross-correlation over 0..40 ms. */
static double lag_ms(const float *in, const float *out) {
  size_t from = RATE * 2, len = RATE * 4;
  double best = -1;
  int best_lag = 0;
  for (int lag = 0; lag < RATE / 25; lag++) {
    double c = 0;
    for (size_t i = from; i < from + len; i++)
      c += (double)in[i] * out[i + (size_t)lag];
    if (c > best) {
      best = c;
      best_lag = lag;
    }
  }
  return best_lag * 1000.0 / RATE;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: bench_audioproc FAR.wav NEAR.wav\n");
    return 2;
  }
  load(argv[1], far_s, N, 0);
  load(argv[2], near_s, (size_t)(NEAR_TO_S * RATE),
       (size_t)(NEAR_FROM_S * RATE));
  make_echo();
  printf("echo path: %d ms then %d ms, -6 dB, 300 ms room; echo %.1f dBFS, "
         "near %.1f dBFS RMS\n",
         ECHO_MS, ECHO_MS + JUMP_MS, db(energy(echo_s, N), N),
         db(energy(near_s + (size_t)(NEAR_FROM_S * RATE),
                   (size_t)((NEAR_TO_S - NEAR_FROM_S) * RATE)),
            (size_t)((NEAR_TO_S - NEAR_FROM_S) * RATE)));
  static const struct {
    const char *name;
    bool da, ef, ns;
  } cfgs[] = {
      {"webrtc_da_ef", true, true, false},
      {"webrtc_da", true, false, false},
      {"webrtc_ef", false, true, false},
      {"webrtc_plain", false, false, false},
      {"webrtc_da_ef_ns", true, true, true},
  };
  for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
    apm_options_t o = apm_options_default();
    o.delay_agnostic = cfgs[c].da;
    o.extended_filter = cfgs[c].ef;
    double cpu =
        run(&o, true, cfgs[c].ns, false, mic_s, far_s, out_s, REPORTED_MS);
    printf("config=%s erle_db=%.1f converge_s=%.2f erle_jump_db=%.1f "
           "recover_s=%.2f dt_atten_db=%.1f cpu_percent=%.2f\n",
           cfgs[c].name, erle(2, NEAR_FROM_S), settle(0, NEAR_FROM_S),
           erle(JUMP_S + 1, SECONDS), settle(JUMP_S, SECONDS), dt_attenuation(),
           100 * cpu / SECONDS);
    fflush(stdout);
  }
  /* Cost and latency of the whole stage as parley runs it (AEC, NS, AGC,
   * high-pass filter) on clean speech: nothing to cancel, so the output is
   * the input, delayed by whatever the stage adds. */
  apm_options_t o = apm_options_default();
  double cpu = run(&o, true, true, true, far_s, zero_s, out_s, REPORTED_MS);
  printf("config=stage_all cpu_percent=%.2f latency_ms=%.2f\n",
         100 * cpu / SECONDS, lag_ms(far_s, out_s));
  double parts[3];
  for (int i = 0; i < 3; i++) {
    run(&o, i == 0, i == 1, i == 2, far_s, zero_s, out_s, REPORTED_MS);
    parts[i] = lag_ms(far_s, out_s);
  }
  printf("config=latency_parts aec_ms=%.2f ns_ms=%.2f agc_ms=%.2f\n", parts[0],
         parts[1], parts[2]);
  return 0;
}
