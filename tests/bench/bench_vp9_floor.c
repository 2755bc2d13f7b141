/* The codec floor of a video call: the CPU time bare VP9 encode + decode of
 * the same pictures costs, with the project's own wrapper at the call's
 * settings.
 *
 * The call's video pipeline encodes every picture it captures and decodes
 * every picture it receives; this program does exactly that work and
 * nothing else, so a benchmark can put a daemon's CPU during a video call
 * next to the least any implementation of the call could spend. Settings:
 * vp9_enc_config_default() (640x480, 24 fps, 1000 kbps, a key frame every
 * 48 pictures, threads chosen for the machine) unless WxH and KBPS are
 * given; the decoder with threads chosen for the machine.
 *
 * The pictures come from a Y4M file (through the y4m-loop device, scaled
 * to the encoder's size if needed) or, with "pattern", from the moving test
 * pattern; all are made before timing. Only the codec calls are timed:
 * CPU by getrusage (user + system, this process, all threads) and wall
 * time by CLOCK_MONOTONIC. Output: one line of key=value pairs
 *
 *   frames=240 video_s=10.0 size=640x480 encode_cpu_s=... decode_cpu_s=...
 *   floor_cpu_s=... encode_wall_s=... decode_wall_s=... encode_ms=...
 *   decode_ms=... kbps=... (one line; *_ms per picture, wall)
 *
 *   bench_vp9_floor [--paced] FILE.y4m|pattern [FRAMES (240)] [WxH] [KBPS]
 *
 * --paced: a diagnostic, not the floor. Each picture is encoded, then
 * decoded, then the program sleeps until the next picture is due at the
 * frame rate, as a call's threads do (FRAMES / fps seconds of wall time):
 * it shows how much of a daemon's CPU above the floor comes from running
 * the codec a picture at a time with idle gaps (cold caches, worker
 * threads waking per picture) rather than from the daemon's own work.
 */
#include "device/vdevice.h"
#include "media/video.h"
#include "media/vp9_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double bench__cpu_s(void);
static double bench__wall_s(void);
static video_image_t *bench__load(const char *what, size_t frames, int w,
                                  int h);

static int bench__paced(vp9_enc_t *enc, vp9_dec_t *dec,
                        const video_image_t *pics, size_t n, int fps);

int main(int argc, char **argv) {
  bool paced = argc >= 2 && strcmp(argv[1], "--paced") == 0;
  if (paced) {
    argv++;
    argc--;
  }
  if (argc < 2 || argc > 5 || strcmp(argv[1], "--help") == 0) {
    fprintf(stderr, "usage: bench_vp9_floor [--paced] FILE.y4m|pattern "
                    "[FRAMES] [WxH] [KBPS]\n");
    return 2;
  }
  vp9_enc_config_t cfg = vp9_enc_config_default();
  long frames = argc >= 3 ? atol(argv[2]) : 240;
  if (argc >= 4 && (sscanf(argv[3], "%dx%d", &cfg.width, &cfg.height) != 2 ||
                    cfg.width < 2 || cfg.height < 2)) {
    fprintf(stderr, "bench_vp9_floor: bad size '%s'\n", argv[3]);
    return 2;
  }
  if (argc == 5)
    cfg.bitrate_kbps = atoi(argv[4]);
  if (frames <= 0) {
    fprintf(stderr, "bench_vp9_floor: FRAMES must be positive\n");
    return 2;
  }
  size_t n = (size_t)frames;
  video_image_t *pics = bench__load(argv[1], n, cfg.width, cfg.height);
  uint8_t **pkts = calloc(n, sizeof(*pkts));
  size_t *lens = calloc(n, sizeof(*lens));
  vp9_enc_t *enc = vp9_enc_new(&cfg);
  vp9_dec_t *dec = vp9_dec_new(0);
  if (!pics || !pkts || !lens || !enc || !dec) {
    fprintf(stderr, "bench_vp9_floor: cannot set up\n");
    return 1;
  }

  if (paced) {
    int rc = bench__paced(enc, dec, pics, n, cfg.fps);
    vp9_enc_free(enc);
    vp9_dec_free(dec);
    for (size_t i = 0; i < n; i++)
      video_image_free(&pics[i]);
    free(pics);
    free(pkts);
    free(lens);
    return rc;
  }

  size_t bytes = 0;
  double c0 = bench__cpu_s(), w0 = bench__wall_s();
  for (size_t i = 0; i < n; i++) {
    const uint8_t *out;
    bool key;
    if (vp9_enc_encode(enc, &pics[i], false, &out, &lens[i], &key) != 0) {
      fprintf(stderr, "bench_vp9_floor: encode failed\n");
      return 1;
    }
    pkts[i] = malloc(lens[i] ? lens[i] : 1);
    memcpy(pkts[i], out, lens[i]);
    bytes += lens[i];
  }
  double c1 = bench__cpu_s(), w1 = bench__wall_s();
  video_image_t dst = {0};
  for (size_t i = 0; i < n; i++) {
    if (lens[i] && vp9_dec_decode(dec, pkts[i], lens[i], &dst) != 1) {
      fprintf(stderr, "bench_vp9_floor: decode failed at %zu\n", i);
      return 1;
    }
  }
  double c2 = bench__cpu_s(), w2 = bench__wall_s();

  double video_s = (double)n / cfg.fps;
  printf("frames=%zu video_s=%.1f size=%dx%d encode_cpu_s=%.3f "
         "decode_cpu_s=%.3f floor_cpu_s=%.3f encode_wall_s=%.3f "
         "decode_wall_s=%.3f encode_ms=%.2f decode_ms=%.2f kbps=%.1f\n",
         n, video_s, cfg.width, cfg.height, c1 - c0, c2 - c1, c2 - c0, w1 - w0,
         w2 - w1, (w1 - w0) * 1000 / n, (w2 - w1) * 1000 / n,
         (double)bytes * 8 / video_s / 1000);
  for (size_t i = 0; i < n; i++) {
    free(pkts[i]);
    video_image_free(&pics[i]);
  }
  video_image_free(&dst);
  vp9_enc_free(enc);
  vp9_dec_free(dec);
  free(pkts);
  free(lens);
  free(pics);
  return 0;
}

/* --paced: encode + decode a picture at a time at fps, sleeping between
 * them; prints the same keys as the floor (wall times are per picture's
 * work, not the sleeps) plus paced=1. */
static int bench__paced(vp9_enc_t *enc, vp9_dec_t *dec,
                        const video_image_t *pics, size_t n, int fps) {
  video_image_t dst = {0};
  size_t bytes = 0;
  double enc_cpu = 0, dec_cpu = 0, enc_wall = 0, dec_wall = 0;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *out;
    size_t len;
    bool key;
    double c0 = bench__cpu_s(), w0 = bench__wall_s();
    if (vp9_enc_encode(enc, &pics[i], false, &out, &len, &key) != 0) {
      fprintf(stderr, "bench_vp9_floor: encode failed\n");
      return 1;
    }
    double c1 = bench__cpu_s(), w1 = bench__wall_s();
    if (len && vp9_dec_decode(dec, out, len, &dst) != 1) {
      fprintf(stderr, "bench_vp9_floor: decode failed at %zu\n", i);
      return 1;
    }
    double c2 = bench__cpu_s(), w2 = bench__wall_s();
    enc_cpu += c1 - c0;
    dec_cpu += c2 - c1;
    enc_wall += w1 - w0;
    dec_wall += w2 - w1;
    bytes += len;
    next.tv_nsec += 1000000000L / fps;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_sec++;
      next.tv_nsec -= 1000000000L;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  double video_s = (double)n / fps;
  printf("paced=1 frames=%zu video_s=%.1f encode_cpu_s=%.3f decode_cpu_s=%.3f "
         "floor_cpu_s=%.3f encode_wall_s=%.3f decode_wall_s=%.3f "
         "encode_ms=%.2f decode_ms=%.2f kbps=%.1f\n",
         n, video_s, enc_cpu, dec_cpu, enc_cpu + dec_cpu, enc_wall, dec_wall,
         enc_wall * 1000 / n, dec_wall * 1000 / n,
         (double)bytes * 8 / video_s / 1000);
  video_image_free(&dst);
  return 0;
}

/* User + system CPU seconds of this process so far. */
static double bench__cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double bench__wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `frames` pictures at w x h from the looping Y4M file or the pattern, as
 * the call's source reads them (the same device code). NULL on failure. */
static video_image_t *bench__load(const char *what, size_t frames, int w,
                                  int h) {
  char name[4096], err[256];
  video_source_t *src;
  if (strcmp(what, "pattern") == 0)
    snprintf(name, sizeof(name), "pattern:%dx%d", w, h);
  else
    snprintf(name, sizeof(name), "y4m-loop:%s", what);
  if (vdevice_open_source(name, &src, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench_vp9_floor: %s\n", err);
    return NULL;
  }
  video_image_t *pics = calloc(frames, sizeof(*pics));
  video_image_t raw = {0};
  for (size_t i = 0; pics && i < frames; i++) {
    if (video_source_read(src, &raw) != 1 ||
        video_image_alloc(&pics[i], w, h) != 0 ||
        video_image_scale(&raw, &pics[i]) != 0) {
      fprintf(stderr, "bench_vp9_floor: %s: short read\n", what);
      for (size_t j = 0; j <= i; j++)
        video_image_free(&pics[j]);
      free(pics);
      pics = NULL;
    }
  }
  video_image_free(&raw);
  video_source_close(src);
  return pics;
}
