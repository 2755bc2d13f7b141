/* The audio processing stage (media/audioproc.h) with the real WebRTC
 * library on generated signals: espeak-ng speech, white noise, and a
 * synthetic echo path (delay and attenuation). No daemon: the call path's
 * use of the stage is checked by tests/portaudio/test_aec.c.
 *
 * Levels are RMS over 100 ms blocks; "active" speech blocks are those
 * where the clean talker is above -35 dBFS (relative to its own level
 * scaled as stated), "pauses" those where it is below -60 dBFS. */
#include "testsupport.h"

#include "device/device.h"
#include "media/audio.h"
#include "media/audioproc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RATE AUDIO_RATE
#define BLK (RATE / 10)
#define FRAME AUDIO_FRAME_SAMPLES

static char *g_dir;
static float *g_speech; /* espeak-ng speech, 48 kHz, full level */
static size_t g_speech_n;

static double rms_db(const float *s, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++)
    e += (double)s[i] * s[i];
  return 10 * log10(e / (double)n + 1e-20);
}

/* Active speech level: the RMS over blocks within 20 dB of the loudest. */
static double active_db(const float *s, size_t n) {
  double top = -200, e = 0;
  size_t k = 0;
  for (size_t b = 0; b + BLK <= n; b += BLK)
    top = fmax(top, rms_db(s + b, BLK));
  for (size_t b = 0; b + BLK <= n; b += BLK)
    if (rms_db(s + b, BLK) > top - 20) {
      for (size_t i = 0; i < BLK; i++)
        e += (double)s[b + i] * s[b + i];
      k += BLK;
    }
  return 10 * log10(e / (double)(k ? k : 1) + 1e-20);
}

static int setup(void **state) {
  g_dir = ts_tmpdir("ap");
  assert_non_null(g_dir);
  char *wav = ts_path(g_dir, "speech.wav");
  const char *argv[] = {
      "espeak-ng",
      "-v",
      "en-us",
      "-s",
      "150",
      "-w",
      wav,
      "The quick brown fox jumps over the lazy dog. Every serious calling "
      "application cancels echo, suppresses noise and levels the "
      "microphone. Data flows one way through each pipeline, and no stage "
      "reaches back into another.",
      NULL};
  ts_output_t o;
  assert_int_equal(ts_run(argv, NULL, 20000, &o), 0);
  if (o.status != 0)
    fail_msg("espeak-ng: %s", o.err);
  ts_output_free(&o);
  char name[TS_PATH_MAX + 8], err[256];
  snprintf(name, sizeof(name), "file:%s", wav);
  audio_source_t *src;
  if (device_open_source(name, &src, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  size_t cap = (size_t)RATE * 30;
  g_speech = calloc(cap, sizeof(float));
  int16_t pcm[FRAME];
  while (g_speech_n + FRAME <= cap && audio_source_read(src, pcm) == FRAME)
    for (int i = 0; i < FRAME; i++)
      g_speech[g_speech_n++] = pcm[i] / 32768.0f;
  audio_source_close(src);
  free(wav);
  printf("  speech: %.1f s, active level %.1f dBFS\n",
         (double)g_speech_n / RATE, active_db(g_speech, g_speech_n));
  return 0;
}

static int teardown(void **state) {
  ts_rm_rf(g_dir);
  free(g_dir);
  free(g_speech);
  return 0;
}

/* n samples of speech (looped) with its active level at level_db, with a
 * second of silence first. */
static float *talker(size_t n, double level_db) {
  float *s = calloc(n, sizeof(float));
  double g = pow(10, (level_db - active_db(g_speech, g_speech_n)) / 20);
  for (size_t i = RATE; i < n; i++)
    s[i] = (float)(g * g_speech[(i - RATE) % g_speech_n]);
  return s;
}

static void add_noise(float *s, size_t n, double level_db, unsigned seed) {
  double a = pow(10, level_db / 20) * sqrt(3.0);
  srand(seed);
  for (size_t i = 0; i < n; i++)
    s[i] += (float)(a * (2.0 * rand() / RAND_MAX - 1));
}

/* Runs in through a stage with settings s (no far end); out gets the
 * result and the count of clipped samples is returned. */
static size_t process(const audioproc_settings_t *s, const float *in,
                      float *out, size_t n) {
  audioproc_t *ap = audioproc_new(s);
  assert_non_null(ap);
  int16_t pcm[FRAME];
  size_t clipped = 0;
  for (size_t f = 0; f + FRAME <= n; f += FRAME) {
    for (int i = 0; i < FRAME; i++) {
      float v = in[f + i] * 32768.0f;
      pcm[i] = (int16_t)lrintf(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
    assert_int_equal(audioproc_process(ap, pcm, 0), 0);
    for (int i = 0; i < FRAME; i++) {
      out[f + i] = pcm[i] / 32768.0f;
      clipped += pcm[i] == 32767 || pcm[i] == -32768;
    }
  }
  audioproc_free(ap);
  return clipped;
}

/* Every part off: the frame is untouched. */
static void test_off_is_transparent(void **state) {
  audioproc_settings_t off = {false, false, false};
  audioproc_t *ap = audioproc_new(&off);
  assert_non_null(ap);
  int16_t pcm[FRAME], ref[FRAME];
  for (int f = 0; f < 50; f++) {
    for (int i = 0; i < FRAME; i++)
      ref[i] = pcm[i] = (int16_t)(8000 * sin(0.05 * (f * FRAME + i)));
    audioproc_render(ap, pcm, 0, 0);
    assert_int_equal(audioproc_process(ap, pcm, 0), 0);
    assert_memory_equal(pcm, ref, sizeof(pcm));
  }
  audioproc_stats_t st;
  audioproc_stats(ap, &st);
  assert_false(st.on.aec || st.on.ns || st.on.agc);
  assert_int_equal(st.blocks, 0);
  audioproc_free(ap);
}

/* Speech plus white noise at -40 dBFS: the noise floor in the pauses
 * drops by at least 10 dB, the speech level stays within 3 dB. */
static void test_noise_suppression(void **state) {
  size_t n = (size_t)RATE * 12;
  float *clean = talker(n, -20), *in = malloc(n * sizeof(float)),
        *out = malloc(n * sizeof(float));
  memcpy(in, clean, n * sizeof(float));
  add_noise(in, n, -40, 1);
  audioproc_settings_t s = {false, true, false};
  process(&s, in, out, n);
  /* After the suppressor's first second of learning. */
  double nin = 0, nout = 0, sin_ = 0, sout = 0;
  size_t kn = 0, ks = 0;
  for (size_t b = RATE * 2; b + BLK <= n; b += BLK) {
    double c = rms_db(clean + b, BLK);
    if (c < -60) {
      nin += pow(10, rms_db(in + b, BLK) / 10);
      nout += pow(10, rms_db(out + b, BLK) / 10);
      kn++;
    } else if (c > -35) {
      sin_ += pow(10, c / 10);
      sout += pow(10, rms_db(out + b, BLK) / 10);
      ks++;
    }
  }
  assert_true(kn >= 5 && ks >= 20);
  double floor_in = 10 * log10(nin / kn), floor_out = 10 * log10(nout / kn);
  double sp_in = 10 * log10(sin_ / ks), sp_out = 10 * log10(sout / ks);
  printf("  noise floor in pauses %.1f -> %.1f dBFS (%.1f dB lower, %zu "
         "blocks); speech %.1f -> %.1f dBFS (%+.1f dB, %zu blocks)\n",
         floor_in, floor_out, floor_in - floor_out, kn, sp_in, sp_out,
         sp_out - sp_in, ks);
  assert_true(floor_in - floor_out >= 10);
  assert_true(fabs(sp_out - sp_in) <= 3);
  free(clean);
  free(in);
  free(out);
}

/* A quiet (-40 dBFS) and a loud (-10 dBFS) talker both come out within
 * 6 dB of the AGC's target, without clipping. */
static void agc_case(double level_db) {
  size_t n = (size_t)RATE * 20;
  float *in = talker(n, level_db), *out = malloc(n * sizeof(float));
  add_noise(in, n, -75, 2);
  audioproc_settings_t s = {false, false, true};
  size_t clipped = process(&s, in, out, n);
  /* The level once the gain settled: the last 8 s. */
  size_t from = n - (size_t)RATE * 8;
  double got = active_db(out + from, n - from);
  printf("  talker at %.0f dBFS: out %.1f dBFS active (target %.0f), %zu "
         "samples clipped\n",
         level_db, got, (double)AUDIOPROC_AGC_TARGET_DBFS, clipped);
  assert_true(fabs(got - AUDIOPROC_AGC_TARGET_DBFS) <= 6);
  assert_int_equal(clipped, 0);
  free(in);
  free(out);
}

static void test_agc_quiet(void **state) {
  agc_case(-40);
}

static void test_agc_loud(void **state) {
  agc_case(-10);
}

/* The canceller through the stage's own timing: the reference is stamped
 * with when it is heard, the microphone with when it was captured; the
 * echo is the far end 60 ms after it is heard, -6 dB. A 60 ms playback
 * underrun at 8 s (silence played, the reference's stamps jump) must not
 * lose alignment: ERLE stays up after it. Also checks the figures. */
static void test_echo_with_gap(void **state) {
  size_t n = (size_t)RATE * 12, gap_at = (size_t)RATE * 8,
         gap = (size_t)RATE * 6 / 100, d = (size_t)RATE * 6 / 100;
  float *far = talker(n, -20);
  /* What the speaker played: far until gap_at, silence, then far on. */
  float *played = calloc(n, sizeof(float)), *mic = calloc(n, sizeof(float)),
        *out = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    played[i] = i < gap_at ? far[i] : i < gap_at + gap ? 0 : far[i - gap];
  for (size_t i = d; i < n; i++)
    mic[i] = 0.5f * played[i - d];
  add_noise(mic, n, -70, 3);
  audioproc_settings_t s = {true, false, false};
  audioproc_t *ap = audioproc_new(&s);
  assert_non_null(ap);
  int16_t pcm[FRAME];
  int64_t t0 = 1000000000; /* microseconds; any origin */
  size_t fi = 0;           /* far frames handed to the sink */
  for (size_t f = 0; f + FRAME <= n; f += FRAME) {
    /* The playout thread hands over a frame 40 ms before it is heard;
     * after the underrun, its frames are heard `gap` later. */
    if (fi + FRAME <= n) {
      for (int i = 0; i < FRAME; i++)
        pcm[i] = (int16_t)lrintf(far[fi + i] * 32768);
      int64_t heard =
          t0 + (int64_t)(fi + (fi >= gap_at ? gap : 0)) * 1000000 / RATE;
      audioproc_render(ap, pcm, heard, fi == gap_at ? gap : 0);
      fi += FRAME;
    }
    for (int i = 0; i < FRAME; i++)
      pcm[i] = (int16_t)lrintf(mic[f + i] * 32768);
    audioproc_process(ap, pcm, t0 + (int64_t)f * 1000000 / RATE);
    for (int i = 0; i < FRAME; i++)
      out[f + i] = pcm[i] / 32768.0f;
  }
  audioproc_stats_t st;
  audioproc_stats(ap, &st);
  audioproc_free(ap);
  /* ERLE over far-active blocks: 2..8 s and 9..12 s. */
  double e1 = 0, o1 = 0, e2 = 0, o2 = 0;
  for (size_t b = 0; b + BLK <= n; b += BLK) {
    if (rms_db(mic + b, BLK) < -50)
      continue;
    double e = pow(10, rms_db(mic + b, BLK) / 10),
           o = pow(10, rms_db(out + b, BLK) / 10);
    if (b >= (size_t)RATE * 2 && b < gap_at) {
      e1 += e;
      o1 += o;
    } else if (b >= (size_t)RATE * 9) {
      e2 += e;
      o2 += o;
    }
  }
  double erle1 = 10 * log10(e1 / o1), erle2 = 10 * log10(e2 / o2);
  printf("  ERLE %.1f dB before the underrun, %.1f dB after; stage: "
         "delay %d ms, canceller's %d ms, ERLE %.1f dB, converged %d, "
         "%llu ms of gap filled, %.2f %% CPU\n",
         erle1, erle2, st.delay_ms, st.aec_delay_ms, st.erle_db, st.converged,
         (unsigned long long)st.render_gaps_ms, st.cpu_percent);
  assert_true(erle1 >= 25);
  assert_true(erle2 >= 25);
  assert_true(st.render_gaps_ms >= 50 && st.render_gaps_ms <= 70);
  /* The reference is handed over AUDIOPROC_LEAD_MS before it is heard,
   * and reported less the margin. */
  assert_int_equal(st.delay_ms, AUDIOPROC_LEAD_MS - AUDIOPROC_DELAY_MARGIN_MS);
  assert_true(st.erle_valid && st.converged);
  assert_true(st.cpu_percent > 0 && st.cpu_percent < 20);
  free(far);
  free(played);
  free(mic);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_off_is_transparent),
      cmocka_unit_test(test_noise_suppression),
      cmocka_unit_test(test_agc_quiet),
      cmocka_unit_test(test_agc_loud),
      cmocka_unit_test(test_echo_with_gap),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
