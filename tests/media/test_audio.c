/* Tests of media/audio: level, tone frequency, correlation, SNR and
 * alignment on signals with known answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "media/audio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void sine(int16_t *out, size_t n, double hz, double peak) {
  for (size_t i = 0; i < n; i++)
    out[i] = (int16_t)lrint(peak * sin(2 * M_PI * hz * (double)i / AUDIO_RATE));
}

static void test_level_and_frequency(void **state) {
  (void)state;
  static int16_t s[AUDIO_RATE];
  sine(s, AUDIO_RATE, 1000, 32767 * pow(10, -20 / 20.0));
  assert_float_equal(audio_rms_dbfs(s, AUDIO_RATE), -23.01, 0.02);
  assert_float_equal(audio_tone_hz(s, AUDIO_RATE, AUDIO_RATE), 1000, 0.01);
  sine(s, AUDIO_RATE, 441.5, 1000);
  assert_float_equal(audio_tone_hz(s, AUDIO_RATE, AUDIO_RATE), 441.5, 0.05);
  memset(s, 0, sizeof(s));
  assert_float_equal(audio_rms_dbfs(s, AUDIO_RATE), -120, 0);
  assert_float_equal(audio_tone_hz(s, AUDIO_RATE, AUDIO_RATE), 0, 0);
  assert_float_equal(audio_rms_dbfs(s, 0), -120, 0);
}

static void test_correlation_and_snr(void **state) {
  (void)state;
  enum { N = 4800 };
  static int16_t a[N], b[N], c[N];
  srand(1);
  for (size_t i = 0; i < N; i++) {
    a[i] = (int16_t)(rand() % 20001 - 10000);
    b[i] = (int16_t)(-a[i] / 2);
    c[i] = (int16_t)(rand() % 20001 - 10000);
  }
  assert_float_equal(audio_correlation(a, a, N), 1.0, 1e-9);
  assert_float_equal(audio_correlation(a, b, N), -1.0, 1e-3);
  assert_true(fabs(audio_correlation(a, c, N)) < 0.05);
  assert_float_equal(audio_snr_db(a, a, N), 120, 0);
  /* out = ref + ref/10: noise is 20 dB below. */
  for (size_t i = 0; i < N; i++)
    b[i] = (int16_t)(a[i] + a[i] / 10);
  assert_float_equal(audio_snr_db(a, b, N), 20.0, 0.1);
}

static void test_align(void **state) {
  (void)state;
  enum { N = AUDIO_RATE };
  int16_t *ref = malloc(N * sizeof(int16_t));
  int16_t *sig = calloc(N + 20000, sizeof(int16_t));
  /* Band-limited noise (speech-like spectrum) so the peak is unique. */
  srand(2);
  double y = 0;
  for (size_t i = 0; i < N; i++) {
    y = 0.9 * y + (rand() % 2001 - 1000);
    ref[i] = (int16_t)(y * 2);
  }
  const size_t lags[] = {0, 1, 7, 313, 4801, 12345};
  for (size_t k = 0; k < sizeof(lags) / sizeof(*lags); k++) {
    memset(sig, 0, (N + 20000) * sizeof(int16_t));
    for (size_t i = 0; i < N; i++)
      sig[lags[k] + i] = (int16_t)(ref[i] / 2 + (rand() % 201 - 100));
    size_t lag = 0;
    double corr = 0;
    assert_int_equal(audio_align(ref, N, sig, N + 20000, 15000, &lag, &corr),
                     0);
    assert_int_equal(lag, lags[k]);
    assert_true(corr > 0.95);
  }
  size_t lag;
  double corr;
  assert_int_equal(audio_align(ref, 10, sig, N, 100, &lag, &corr), -1);
  free(ref);
  free(sig);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_level_and_frequency),
      cmocka_unit_test(test_correlation_and_snr),
      cmocka_unit_test(test_align),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
