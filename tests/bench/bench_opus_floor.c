/* The codec floor of a voice call: the CPU time bare Opus encode + decode of
 * the same audio costs, with the project's own wrapper at the call's settings.
 *
 * parleyd's media pipeline (src/call/media.c) encodes every 20 ms frame it
 * captures and decodes every frame it plays; this program does exactly that
 * work and nothing else, so tests/bench/voice.sh can put a daemon's CPU
 * during a call next to the least any implementation of the call could
 * spend. Settings as media.c: opus_codec_config_default() (Opus48k, in-band
 * FEC with the 5% expected loss a clean call keeps) with the bitrate at
 * OPUS_CODEC_MAX_BITRATE; complexity 5 is the wrapper's own.
 *
 * The WAV file (48 kHz mono 16-bit, so no resampling) is read into memory
 * first, looped up to SECONDS; only the codec calls are timed (getrusage,
 * user + system, this process). Output: one line of key=value pairs
 *
 *   frames=3000 audio_s=60.0 encode_cpu_s=... decode_cpu_s=...
 *   floor_cpu_s=... kbps=... paced=0 (one line)
 *
 * With `paced`, the frames are coded as a call codes them instead of back
 * to back: one every 20 ms (clock_nanosleep to the next tick), each encoded
 * and its packet decoded, each call timed on its own with the thread's CPU
 * clock (so the sleeps are not counted). This takes SECONDS of real time,
 * and shows what the same codec work costs when the caches and branch
 * predictors have gone cold between frames, as in any real-time pipeline.
 * The same frames are first coded back to back, timed the same way
 * (hot_encode_cpu_s, hot_decode_cpu_s), to compare like with like.
 *
 *   bench_opus_floor FILE.wav [SECONDS (60)] [paced]
 */
#include "device/device.h"
#include "media/audio.h"
#include "media/opus_codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double bench__cpu_s(void);
static double bench__thread_s(void);
static void bench__sleep_until(const struct timespec *t);
static int16_t *bench__load(const char *path, size_t frames);

int main(int argc, char **argv) {
  bool paced = argc == 4 && strcmp(argv[3], "paced") == 0;
  if (argc < 2 || argc > 4 || (argc == 4 && !paced) ||
      strcmp(argv[1], "--help") == 0) {
    fprintf(stderr, "usage: bench_opus_floor FILE.wav [SECONDS [paced]]\n");
    return 2;
  }
  double seconds = argc >= 3 ? atof(argv[2]) : 60;
  size_t frames = (size_t)(seconds * 1e6 / AUDIO_FRAME_US);
  if (frames == 0) {
    fprintf(stderr, "bench_opus_floor: SECONDS must be positive\n");
    return 2;
  }
  int16_t *pcm = bench__load(argv[1], frames);
  uint8_t *packets = malloc(frames * OPUS_CODEC_MAX_PACKET);
  size_t *lens = malloc(frames * sizeof(*lens));
  opus_codec_config_t cfg = opus_codec_config_default();
  cfg.bitrate = OPUS_CODEC_MAX_BITRATE;
  opus_codec_enc_t *enc = opus_codec_enc_new(&cfg);
  opus_codec_dec_t *dec = opus_codec_dec_new();
  if (!pcm || !packets || !lens || !enc || !dec) {
    fprintf(stderr, "bench_opus_floor: cannot set up\n");
    return 1;
  }

  size_t bytes = 0;
  if (paced) {
    /* The same frames twice, each call timed alike: back to back with a
     * fresh codec pair, then paced with another. */
    double enc_s[2] = {0, 0}, dec_s[2] = {0, 0};
    for (int p = 0; p < 2; p++) {
      opus_codec_enc_t *e = opus_codec_enc_new(&cfg);
      opus_codec_dec_t *d = opus_codec_dec_new();
      int16_t out[AUDIO_FRAME_SAMPLES];
      struct timespec tick;
      clock_gettime(CLOCK_MONOTONIC, &tick);
      for (size_t i = 0; e && d && i < frames; i++) {
        tick.tv_nsec += AUDIO_FRAME_US * 1000;
        if (tick.tv_nsec >= 1000000000) {
          tick.tv_nsec -= 1000000000;
          tick.tv_sec++;
        }
        if (p == 1)
          bench__sleep_until(&tick);
        double t0 = bench__thread_s();
        int n = opus_codec_encode(e, pcm + i * AUDIO_FRAME_SAMPLES, packets,
                                  OPUS_CODEC_MAX_PACKET);
        double t1 = bench__thread_s();
        if (n < 0 || opus_codec_decode(d, packets, (size_t)n, out) < 0) {
          fprintf(stderr, "bench_opus_floor: encode/decode failed\n");
          return 1;
        }
        dec_s[p] += bench__thread_s() - t1;
        enc_s[p] += t1 - t0;
        bytes += p == 1 ? (size_t)n : 0;
      }
      opus_codec_enc_free(e);
      opus_codec_dec_free(d);
    }
    printf("frames=%zu audio_s=%.1f encode_cpu_s=%.3f decode_cpu_s=%.3f "
           "floor_cpu_s=%.3f kbps=%.1f paced=1 hot_encode_cpu_s=%.3f "
           "hot_decode_cpu_s=%.3f\n",
           frames, frames * AUDIO_FRAME_US / 1e6, enc_s[1], dec_s[1],
           enc_s[1] + dec_s[1],
           (double)bytes * 8 / (frames * AUDIO_FRAME_US / 1e6) / 1000, enc_s[0],
           dec_s[0]);
    goto done;
  }
  double t0 = bench__cpu_s();
  for (size_t i = 0; i < frames; i++) {
    int n = opus_codec_encode(enc, pcm + i * AUDIO_FRAME_SAMPLES,
                              packets + i * OPUS_CODEC_MAX_PACKET,
                              OPUS_CODEC_MAX_PACKET);
    if (n < 0) {
      fprintf(stderr, "bench_opus_floor: encode: %s\n", opus_codec_strerror(n));
      return 1;
    }
    lens[i] = (size_t)n;
    bytes += (size_t)n;
  }
  double t1 = bench__cpu_s();
  int16_t out[AUDIO_FRAME_SAMPLES];
  for (size_t i = 0; i < frames; i++) {
    int n = opus_codec_decode(dec, packets + i * OPUS_CODEC_MAX_PACKET, lens[i],
                              out);
    if (n < 0) {
      fprintf(stderr, "bench_opus_floor: decode: %s\n", opus_codec_strerror(n));
      return 1;
    }
  }
  double t2 = bench__cpu_s();

  printf("frames=%zu audio_s=%.1f encode_cpu_s=%.3f decode_cpu_s=%.3f "
         "floor_cpu_s=%.3f kbps=%.1f paced=0\n",
         frames, frames * AUDIO_FRAME_US / 1e6, t1 - t0, t2 - t1, t2 - t0,
         (double)bytes * 8 / (frames * AUDIO_FRAME_US / 1e6) / 1000);
done:
  opus_codec_enc_free(enc);
  opus_codec_dec_free(dec);
  free(lens);
  free(packets);
  free(pcm);
  return 0;
}

/* User + system CPU seconds of this process so far. */
static double bench__cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds of this thread so far. */
static double bench__thread_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void bench__sleep_until(const struct timespec *t) {
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
    ;
}

/* `frames` frames of the file, looped, as the call's file-loop source reads
 * them (the same device code). NULL if it cannot be read. */
static int16_t *bench__load(const char *path, size_t frames) {
  char name[4096], err[256];
  audio_source_t *src;
  snprintf(name, sizeof(name), "file-loop:%s", path);
  if (device_open_source(name, &src, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_opus_floor: %s\n", err);
    return NULL;
  }
  int16_t *pcm = malloc(frames * AUDIO_FRAME_SAMPLES * sizeof(int16_t));
  for (size_t i = 0; pcm && i < frames; i++)
    if (audio_source_read(src, pcm + i * AUDIO_FRAME_SAMPLES) !=
        AUDIO_FRAME_SAMPLES) {
      fprintf(stderr, "bench_opus_floor: %s: short read\n", path);
      free(pcm);
      pcm = NULL;
    }
  audio_source_close(src);
  return pcm;
}
