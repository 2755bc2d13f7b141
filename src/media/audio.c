/* Measurements on 16-bit PCM: level, tone frequency, correlation, SNR and
 * alignment of a received signal against the one that was sent. */
#include "media/audio.h"

#include <math.h>
#include <stdlib.h>

static double audio__ncc(const int16_t *a, const int16_t *b, size_t n);

double audio_rms_dbfs(const int16_t *pcm, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += (double)pcm[i] * pcm[i];
  if (n == 0 || sum == 0)
    return -120.0;
  double db = 10.0 * log10(sum / (double)n / (32768.0 * 32768.0));
  return db < -120.0 ? -120.0 : db;
}

double audio_tone_hz(const int16_t *pcm, size_t n, int rate) {
  double first = -1, last = -1;
  size_t count = 0;
  for (size_t i = 1; i < n; i++) {
    if (pcm[i - 1] < 0 && pcm[i] >= 0) {
      /* Where the line between the two samples crosses zero. */
      double t =
          (double)(i - 1) + (double)-pcm[i - 1] / (double)(pcm[i] - pcm[i - 1]);
      if (first < 0)
        first = t;
      last = t;
      count++;
    }
  }
  if (count < 2 || last <= first)
    return 0;
  return (double)(count - 1) * rate / (last - first);
}

double audio_correlation(const int16_t *a, const int16_t *b, size_t n) {
  return audio__ncc(a, b, n);
}

double audio_snr_db(const int16_t *ref, const int16_t *out, size_t n) {
  double sig = 0, noise = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)out[i] - ref[i];
    sig += (double)ref[i] * ref[i];
    noise += d * d;
  }
  if (noise == 0)
    return 120.0;
  if (sig == 0)
    return -120.0;
  double snr = 10.0 * log10(sig / noise);
  return snr > 120.0 ? 120.0 : snr;
}

int audio_align(const int16_t *ref, size_t n_ref, const int16_t *sig,
                size_t n_sig, size_t max_lag, size_t *lag, double *corr) {
  enum { D = 8, MIN_N = 64 };
  if (n_sig < MIN_N || n_ref < MIN_N)
    return -1;
  if (max_lag > n_sig - MIN_N)
    max_lag = n_sig - MIN_N;
  /* Box-filtered 1:8 copies; speech energy sits well below the 3 kHz the
   * decimated rate keeps, and aliasing only blurs the coarse peak. */
  size_t nr = n_ref / D, ns = n_sig / D;
  int16_t *dr = malloc((nr + ns) * sizeof(int16_t));
  if (!dr)
    return -1;
  int16_t *ds = dr + nr;
  for (size_t i = 0; i < nr; i++) {
    int32_t s = 0;
    for (size_t k = 0; k < D; k++)
      s += ref[i * D + k];
    dr[i] = (int16_t)(s / D);
  }
  for (size_t i = 0; i < ns; i++) {
    int32_t s = 0;
    for (size_t k = 0; k < D; k++)
      s += sig[i * D + k];
    ds[i] = (int16_t)(s / D);
  }
  size_t best_coarse = 0;
  double best = -2;
  for (size_t l = 0; l <= max_lag / D && l < ns; l++) {
    size_t n = ns - l < nr ? ns - l : nr;
    if (n < MIN_N / D)
      break;
    double c = audio__ncc(dr, ds + l, n);
    if (c > best) {
      best = c;
      best_coarse = l;
    }
  }
  free(dr);

  size_t lo = best_coarse * D > 2 * D ? best_coarse * D - 2 * D : 0;
  size_t hi = best_coarse * D + 2 * D;
  if (hi > max_lag)
    hi = max_lag;
  best = -2;
  for (size_t l = lo; l <= hi; l++) {
    size_t n = n_sig - l < n_ref ? n_sig - l : n_ref;
    double c = audio__ncc(ref, sig + l, n);
    if (c > best) {
      best = c;
      *lag = l;
    }
  }
  *corr = best;
  return 0;
}

static double audio__ncc(const int16_t *a, const int16_t *b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; i++) {
    ab += (double)a[i] * b[i];
    aa += (double)a[i] * a[i];
    bb += (double)b[i] * b[i];
  }
  if (aa == 0 || bb == 0)
    return 0;
  return ab / sqrt(aa * bb);
}
