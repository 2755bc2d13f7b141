/* Tests of media/opus_codec: the seed's configuration, a 1 kHz tone and
 * speech (espeak-ng, when installed) through encode -> decode compared with
 * the input after aligning by the codec delay, FEC against PLC for lost
 * frames, Opus24k's bandwidth cap, DTX, the bitrate setter and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "device/wavfile.h"
#include "media/audio.h"
#include "media/opus_codec.h"

#include <math.h>
#include <opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FR OPUS_CODEC_FRAME

typedef struct coded {
  uint8_t pkt[OPUS_CODEC_MAX_PACKET];
  int len;
} coded_t;

/* ---- Signals ---- */

static void gen_tone(int16_t *pcm, size_t n, double hz, double dbfs) {
  double amp = 32767 * pow(10, dbfs / 20);
  for (size_t i = 0; i < n; i++)
    pcm[i] = (int16_t)lrint(amp * sin(2 * M_PI * hz * (double)i / 48000));
}

/* Voiced, speech-like: a gliding pitch with decaying harmonics, syllables
 * at 4 Hz. Stands in for speech when espeak-ng is missing. */
static void gen_voiced(int16_t *pcm, size_t n) {
  double ph = 0;
  for (size_t i = 0; i < n; i++) {
    double t = (double)i / 48000;
    double f0 = 140 + 60 * sin(2 * M_PI * 0.7 * t);
    ph += 2 * M_PI * f0 / 48000;
    double v = 0;
    for (int h = 1; h <= 12; h++)
      v += sin(h * ph) / h;
    double env = 0.55 + 0.45 * sin(2 * M_PI * 4 * t);
    pcm[i] = (int16_t)lrint(6000 * env * v);
  }
}

/* Speech from espeak-ng, read through the WAV source (its 22050 Hz output
 * resampled to 48 kHz). Returns frames, or 0 if espeak-ng is missing. */
static size_t gen_speech(int16_t **out) {
  char dir[] = "/tmp/parley-opus-XXXXXX";
  if (!mkdtemp(dir))
    return 0;
  char path[128], cmd[512];
  snprintf(path, sizeof(path), "%s/speech.wav", dir);
  snprintf(cmd, sizeof(cmd),
           "espeak-ng -w %s \"Two people can talk now. The quick brown fox "
           "jumps over the lazy dog, and parley carries every word.\" "
           ">/dev/null 2>&1",
           path);
  size_t frames = 0;
  audio_source_t *src = NULL;
  char err[256];
  if (system(cmd) == 0 &&
      wav_source_open(path, false, &src, err, sizeof(err)) == 0) {
    size_t cap = 64;
    int16_t *pcm = malloc(cap * FR * sizeof(int16_t));
    while (audio_source_read(src, pcm + frames * FR) == FR) {
      if (++frames == cap) {
        cap *= 2;
        pcm = realloc(pcm, cap * FR * sizeof(int16_t));
      }
    }
    audio_source_close(src);
    *out = pcm;
  }
  unlink(path);
  rmdir(dir);
  return frames;
}

/* Power of pcm at hz (Goertzel over n samples). */
static double band_power(const int16_t *pcm, size_t n, double hz) {
  double w = 2 * cos(2 * M_PI * hz / 48000), s1 = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) {
    double s0 = pcm[i] + w * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - w * s1 * s2) / ((double)n * n);
}

/* ---- Codec round trips ---- */

static coded_t *encode_all(const opus_codec_config_t *cfg, const int16_t *pcm,
                           size_t frames) {
  opus_codec_enc_t *e = opus_codec_enc_new(cfg);
  assert_non_null(e);
  coded_t *c = calloc(frames, sizeof(*c));
  for (size_t f = 0; f < frames; f++) {
    c[f].len = opus_codec_encode(e, pcm + f * FR, c[f].pkt, sizeof(c[f].pkt));
    assert_true(c[f].len > 0);
  }
  opus_codec_enc_free(e);
  return c;
}

static int16_t *decode_all(const coded_t *c, size_t frames) {
  opus_codec_dec_t *d = opus_codec_dec_new();
  assert_non_null(d);
  int16_t *out = malloc(frames * FR * sizeof(int16_t));
  for (size_t f = 0; f < frames; f++)
    assert_int_equal(
        opus_codec_decode(d, c[f].pkt, (size_t)c[f].len, out + f * FR), FR);
  opus_codec_dec_free(d);
  return out;
}

/* Encodes and decodes pcm, aligns output to input, and reports the lag,
 * correlation and SNR over the aligned part (the first 100 ms skipped).
 * A periodic signal matches itself every period, so for it the lag is
 * searched only within +-24 samples of the codec delay. */
static void round_trip(const char *what, const int16_t *pcm, size_t frames,
                       int bitrate, bool periodic, size_t *lag, double *corr,
                       double *snr) {
  opus_codec_config_t cfg = opus_codec_config_default();
  cfg.bitrate = bitrate;
  coded_t *c = encode_all(&cfg, pcm, frames);
  int16_t *out = decode_all(c, frames);
  size_t bytes = 0;
  for (size_t f = 0; f < frames; f++)
    bytes += (size_t)c[f].len;
  size_t n = frames * FR;
  double whole = -2;
  size_t skip = 5 * FR;
  if (periodic) {
    for (size_t l = 312 - 24; l <= 312 + 24; l++) {
      double cc = audio_correlation(pcm + skip, out + l + skip, n - l - skip);
      if (cc > whole) {
        whole = cc;
        *lag = l;
      }
    }
  } else {
    assert_int_equal(audio_align(pcm, n, out, n, 2000, lag, &whole), 0);
  }
  size_t m = n - *lag - skip;
  *corr = audio_correlation(pcm + skip, out + *lag + skip, m);
  *snr = audio_snr_db(pcm + skip, out + *lag + skip, m);
  print_message("  %s @ %d bit/s: %.1f kbit/s actual, lag %zu samples, "
                "correlation %.4f, SNR %.1f dB\n",
                what, bitrate, (double)bytes * 8 / (frames * 0.02) / 1000, *lag,
                *corr, *snr);
  free(c);
  free(out);
}

static void test_config(void **state) {
  (void)state;
  opus_codec_config_t cfg = opus_codec_config_default();
  assert_int_equal(cfg.mode, OPUS_CODEC_48K);
  assert_int_equal(cfg.bitrate, 24000);
  assert_int_equal(cfg.loss_perc, OPUS_CODEC_START_LOSS);
  assert_false(cfg.dtx);
  cfg.bitrate = 100000;
  cfg.loss_perc = -4;
  opus_codec_enc_t *e = opus_codec_enc_new(&cfg);
  assert_non_null(e);
  assert_int_equal(opus_codec_enc_bitrate(e), OPUS_CODEC_MAX_BITRATE);
  assert_int_equal(opus_codec_enc_loss(e), 0);
  opus_codec_enc_set_bitrate(e, 1000);
  assert_int_equal(opus_codec_enc_bitrate(e), OPUS_CODEC_MIN_BITRATE);
  opus_codec_enc_set_bitrate(e, 20000);
  assert_int_equal(opus_codec_enc_bitrate(e), 20000);
  opus_codec_enc_set_loss(e, 250);
  assert_int_equal(opus_codec_enc_loss(e), 100);
  assert_int_equal(opus_codec_enc_delay(e), 312); /* 6.5 ms at 48 kHz */
  opus_codec_enc_free(e);
}

static void test_tone(void **state) {
  (void)state;
  enum { FRAMES = 100 };
  int16_t *pcm = malloc(FRAMES * FR * sizeof(int16_t));
  gen_tone(pcm, FRAMES * FR, 1000, -10);
  size_t lag = 0;
  double corr, snr;
  round_trip("1 kHz tone", pcm, FRAMES, 24000, true, &lag, &corr, &snr);
  assert_true(lag >= 312 - 24 && lag <= 312 + 24); /* the codec delay */
  assert_true(corr > 0.99);
  assert_true(snr > 15.0);
  /* Frequency and level survive. */
  int16_t *out = NULL;
  opus_codec_config_t cfg = opus_codec_config_default();
  coded_t *c = encode_all(&cfg, pcm, FRAMES);
  out = decode_all(c, FRAMES);
  assert_float_equal(audio_tone_hz(out + 10 * FR, 80 * FR, 48000), 1000, 1);
  assert_float_equal(audio_rms_dbfs(out + 10 * FR, 80 * FR),
                     audio_rms_dbfs(pcm + 10 * FR, 80 * FR), 1.0);
  free(c);
  free(out);
  free(pcm);
}

static void test_speech(void **state) {
  (void)state;
  int16_t *pcm = NULL;
  size_t frames = gen_speech(&pcm);
  if (frames == 0) {
    print_message("  espeak-ng not available: speech case SKIPPED\n");
    skip();
  }
  assert_true(frames > 50);
  size_t lag = 0;
  double corr, snr;
  round_trip("espeak-ng speech", pcm, frames, 24000, false, &lag, &corr, &snr);
  assert_true(lag >= 312 - 24 && lag <= 312 + 24);
  assert_true(corr > 0.9);
  round_trip("espeak-ng speech", pcm, frames, 16000, false, &lag, &corr, &snr);
  assert_true(corr > 0.85);
  free(pcm);
}

/* Frames lost every 7th (from 10): rebuilt by FEC from the next packet in
 * one decoder, concealed in another; each compared with a clean decode. */
static void fec_vs_plc(const char *what, const int16_t *pcm, size_t frames) {
  opus_codec_config_t cfg = opus_codec_config_default();
  cfg.loss_perc = 20;
  coded_t *c = encode_all(&cfg, pcm, frames);
  int16_t *clean = decode_all(c, frames);
  opus_codec_dec_t *dfec = opus_codec_dec_new(), *dplc = opus_codec_dec_new();
  int16_t a[FR], b[FR];
  double sum_fec = 0, sum_plc = 0;
  int lost = 0;
  for (size_t f = 0; f + 1 < frames; f++) {
    const int16_t *ref = clean + f * FR;
    if (f >= 10 && f % 7 == 3 && audio_rms_dbfs(ref, FR) > -40) {
      assert_int_equal(
          opus_codec_decode_fec(dfec, c[f + 1].pkt, (size_t)c[f + 1].len, a),
          FR);
      assert_int_equal(opus_codec_conceal(dplc, b), FR);
      sum_fec += audio_correlation(ref, a, FR);
      sum_plc += audio_correlation(ref, b, FR);
      lost++;
    } else {
      assert_int_equal(opus_codec_decode(dfec, c[f].pkt, (size_t)c[f].len, a),
                       FR);
      assert_int_equal(opus_codec_decode(dplc, c[f].pkt, (size_t)c[f].len, b),
                       FR);
    }
  }
  double mf = sum_fec / lost, mp = sum_plc / lost;
  print_message("  %s: %d lost frames, mean correlation with the clean "
                "decode: FEC %.3f, PLC %.3f\n",
                what, lost, mf, mp);
  assert_true(lost >= 5);
  assert_true(mf > mp + 0.1);
  assert_true(mf > 0.6);
  opus_codec_dec_free(dfec);
  opus_codec_dec_free(dplc);
  free(clean);
  free(c);
}

static void test_fec_vs_plc(void **state) {
  (void)state;
  enum { FRAMES = 150 };
  int16_t *pcm = malloc(FRAMES * FR * sizeof(int16_t));
  gen_voiced(pcm, FRAMES * FR);
  fec_vs_plc("voiced synthetic", pcm, FRAMES);
  free(pcm);
  pcm = NULL;
  size_t frames = gen_speech(&pcm);
  if (frames == 0) {
    print_message("  espeak-ng not available: speech case SKIPPED\n");
    skip();
  }
  fec_vs_plc("espeak-ng speech", pcm, frames);
  free(pcm);
}

/* White noise has energy everywhere: Opus48k codes it full band, Opus24k
 * never above super-wideband (12 kHz of audio). */
static void test_opus24k(void **state) {
  (void)state;
  enum { FRAMES = 50 };
  int16_t *pcm = malloc(FRAMES * FR * sizeof(int16_t));
  srand(3);
  for (size_t i = 0; i < FRAMES * FR; i++)
    pcm[i] = (int16_t)(rand() % 6001 - 3000);
  for (int mode = 0; mode < 2; mode++) {
    opus_codec_config_t cfg = opus_codec_config_default();
    cfg.mode = mode ? OPUS_CODEC_24K : OPUS_CODEC_48K;
    cfg.bitrate = 32000;
    coded_t *c = encode_all(&cfg, pcm, FRAMES);
    int fb = 0, above_swb = 0;
    for (size_t f = 0; f < FRAMES; f++) {
      int bw = opus_packet_get_bandwidth(c[f].pkt);
      fb += bw == OPUS_BANDWIDTH_FULLBAND;
      above_swb += bw > OPUS_BANDWIDTH_SUPERWIDEBAND;
    }
    /* Decoded level at 14..18 kHz against 2..10 kHz (Goertzel). */
    int16_t *out = decode_all(c, FRAMES);
    double hi = 0, lo = 0;
    for (int k = 0; k < 5; k++) {
      hi += band_power(out + 10 * FR, 40 * FR, 14000 + 1000 * k);
      lo += band_power(out + 10 * FR, 40 * FR, 2000 + 2000 * k);
    }
    double ratio_db = 10 * log10(hi / lo + 1e-12);
    print_message("  %s: %d/%d packets full band; 14-18 kHz is %.1f dB "
                  "against 2-10 kHz\n",
                  mode ? "Opus24k" : "Opus48k", fb, FRAMES, ratio_db);
    if (mode) {
      assert_int_equal(above_swb, 0);
      assert_true(ratio_db < -30);
    } else {
      assert_true(fb > FRAMES / 2);
      assert_true(ratio_db > -10);
    }
    free(out);
    free(c);
  }
  free(pcm);
}

static void test_dtx(void **state) {
  (void)state;
  enum { FRAMES = 150 };
  int16_t *pcm = calloc(FRAMES * FR, sizeof(int16_t));
  gen_voiced(pcm, 50 * FR); /* 1 s of sound, then 2 s of silence */
  size_t bytes[2] = {0, 0};
  int small[2] = {0, 0};
  for (int dtx = 0; dtx < 2; dtx++) {
    opus_codec_config_t cfg = opus_codec_config_default();
    cfg.dtx = dtx;
    coded_t *c = encode_all(&cfg, pcm, FRAMES);
    for (size_t f = 60; f < FRAMES; f++) {
      bytes[dtx] += (size_t)c[f].len;
      small[dtx] += opus_codec_packet_is_dtx((size_t)c[f].len);
    }
    int16_t *out = decode_all(c, FRAMES); /* DTX packets decode fine */
    assert_true(audio_rms_dbfs(out + 60 * FR, 90 * FR) < -60);
    free(out);
    free(c);
  }
  print_message("  silence, 90 frames: %zu bytes without DTX, %zu with "
                "(%d DTX packets)\n",
                bytes[0], bytes[1], small[1]);
  assert_true(small[1] > 60);
  assert_true(bytes[1] * 2 < bytes[0]);
  free(pcm);
}

static void test_bitrate_setter(void **state) {
  (void)state;
  enum { FRAMES = 100 };
  int16_t *pcm = malloc(FRAMES * FR * sizeof(int16_t));
  gen_voiced(pcm, FRAMES * FR);
  opus_codec_config_t cfg = opus_codec_config_default();
  opus_codec_enc_t *e = opus_codec_enc_new(&cfg);
  uint8_t pkt[OPUS_CODEC_MAX_PACKET];
  double kbps[2];
  const int rates[2] = {16000, 32000};
  for (int k = 0; k < 2; k++) {
    opus_codec_enc_set_bitrate(e, rates[k]);
    size_t bytes = 0;
    for (size_t f = 0; f < FRAMES; f++) {
      int n = opus_codec_encode(e, pcm + f * FR, pkt, sizeof(pkt));
      assert_true(n > 0);
      if (f >= 10)
        bytes += (size_t)n;
    }
    kbps[k] = (double)bytes * 8 / ((FRAMES - 10) * 0.02) / 1000;
  }
  print_message("  set 16 kbit/s -> %.1f, set 32 kbit/s -> %.1f kbit/s\n",
                kbps[0], kbps[1]);
  assert_true(kbps[0] > 10 && kbps[0] < 21);
  assert_true(kbps[1] > 24 && kbps[1] < 40);
  opus_codec_enc_free(e);
  free(pcm);
}

static void test_decode_refusals(void **state) {
  (void)state;
  opus_codec_dec_t *d = opus_codec_dec_new();
  int16_t pcm[FR];
  memset(pcm, 0x55, sizeof(pcm));
  assert_int_equal(opus_codec_decode(d, (const uint8_t *)"", 0, pcm),
                   OPUS_CODEC_ERR_FORMAT);
  assert_int_equal(pcm[0], 0); /* silence on failure */
  /* A valid 10 ms packet is not a 20 ms frame. */
  int err;
  OpusEncoder *raw = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
  int16_t in[480] = {0};
  uint8_t pkt[400];
  int n = opus_encode(raw, in, 480, pkt, sizeof(pkt));
  assert_true(n > 0);
  assert_int_equal(opus_codec_decode(d, pkt, (size_t)n, pcm),
                   OPUS_CODEC_ERR_FORMAT);
  opus_encoder_destroy(raw);
  /* Code 3 packet claiming 0 frames: corrupt. */
  const uint8_t bad[2] = {0x0b, 0x00};
  assert_true(opus_codec_decode(d, bad, sizeof(bad), pcm) < 0);
  assert_non_null(opus_codec_strerror(OPUS_CODEC_ERR_FORMAT));
  /* Concealment always yields a frame. */
  assert_int_equal(opus_codec_conceal(d, pcm), FR);
  opus_codec_dec_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_tone),
      cmocka_unit_test(test_speech),
      cmocka_unit_test(test_fec_vs_plc),
      cmocka_unit_test(test_opus24k),
      cmocka_unit_test(test_dtx),
      cmocka_unit_test(test_bitrate_setter),
      cmocka_unit_test(test_decode_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
