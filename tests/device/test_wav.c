/* Tests of device/wav (the strict parser) and device/wavfile (source and
 * sink): accepted layouts, every refusal with its message, every truncation,
 * round trips at 48 kHz and through the resampler at other rates, looping,
 * and a sink killed mid-write leaving a valid file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "device/wav.h"
#include "device/wavfile.h"
#include "media/audio.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FR AUDIO_FRAME_SAMPLES

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/parley-wav-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *path_in(const char *name) {
  static char p[128];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  return p;
}

/* ---- Building WAV files in memory ---- */

typedef struct buf {
  uint8_t b[1 << 20];
  size_t n;
} buf_t;

static void put(buf_t *w, const void *p, size_t n) {
  assert_true(w->n + n <= sizeof(w->b));
  memcpy(w->b + w->n, p, n);
  w->n += n;
}
static void put16(buf_t *w, unsigned v) {
  uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  put(w, b, 2);
}
static void put32(buf_t *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                  (uint8_t)(v >> 24)};
  put(w, b, 4);
}
static void chunk(buf_t *w, const char *id, uint32_t size) {
  put(w, id, 4);
  put32(w, size);
}
static void fmt16(buf_t *w, unsigned tag, unsigned ch, uint32_t rate,
                  unsigned bits) {
  chunk(w, "fmt ", 16);
  put16(w, tag);
  put16(w, ch);
  put32(w, rate);
  put32(w, rate * ch * bits / 8);
  put16(w, ch * bits / 8);
  put16(w, bits);
}
static void riff_fix(buf_t *w) {
  uint32_t v = (uint32_t)w->n - 8;
  w->b[4] = (uint8_t)v;
  w->b[5] = (uint8_t)(v >> 8);
  w->b[6] = (uint8_t)(v >> 16);
  w->b[7] = (uint8_t)(v >> 24);
}

/* A tone at hz / peak dBFS in a 16-bit PCM WAV (channels 1 or 2). */
static void tone_wav(buf_t *w, uint32_t rate, unsigned ch, double hz,
                     size_t frames) {
  w->n = 0;
  chunk(w, "RIFF", 0);
  put(w, "WAVE", 4);
  fmt16(w, 1, ch, rate, 16);
  chunk(w, "data", (uint32_t)(frames * 2 * ch));
  for (size_t i = 0; i < frames; i++) {
    int16_t v = (int16_t)lrint(3276.7 * sin(2 * M_PI * hz * (double)i / rate));
    for (unsigned c = 0; c < ch; c++)
      put16(w, (uint16_t)v);
  }
  riff_fix(w);
}

static void write_file(const char *path, const uint8_t *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

static int parse(const buf_t *w, wav_info_t *info, char *err) {
  return wav_parse_buffer(w->b, w->n, info, err, 200);
}

/* ---- Parser ---- */

static void test_parse_accepts(void **state) {
  (void)state;
  static buf_t w;
  wav_info_t info;
  char err[200];

  tone_wav(&w, 48000, 1, 1000, 100);
  assert_int_equal(parse(&w, &info, err), 0);
  assert_int_equal(info.channels, 1);
  assert_int_equal(info.rate, 48000);
  assert_true(info.data_offset == 44 && info.frames == 100);

  /* Unknown chunks before fmt and data, one of odd size (padded), and
   * trailing bytes after the RIFF chunk. */
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  chunk(&w, "LIST", 5);
  put(&w, "abcde\0", 6);
  fmt16(&w, 1, 2, 44100, 16);
  chunk(&w, "fact", 4);
  put32(&w, 7);
  chunk(&w, "data", 8);
  put32(&w, 0x00010002);
  put32(&w, 0x00030004);
  riff_fix(&w);
  put(&w, "junk", 4);
  assert_int_equal(parse(&w, &info, err), 0);
  assert_int_equal(info.channels, 2);
  assert_int_equal(info.rate, 44100);
  assert_true(info.frames == 2);
  assert_true(info.data_offset == 12 + 14 + 24 + 12 + 8);

  /* WAVE_FORMAT_EXTENSIBLE with the PCM sub-format. */
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  chunk(&w, "fmt ", 40);
  put16(&w, 0xfffe);
  put16(&w, 1);
  put32(&w, 16000);
  put32(&w, 32000);
  put16(&w, 2);
  put16(&w, 16);
  put16(&w, 22);
  put16(&w, 16);
  put32(&w, 4);
  static const uint8_t guid[16] = {1,    0, 0, 0,    0, 0,    0x10, 0,
                                   0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71};
  put(&w, guid, 16);
  chunk(&w, "data", 0);
  riff_fix(&w);
  assert_int_equal(parse(&w, &info, err), 0);
  assert_int_equal(info.rate, 16000);
  assert_true(info.frames == 0);

  uint8_t h[WAV_HEADER_LEN];
  wav_header(h, 48000, 1, 1920);
  assert_int_equal(wav_parse_buffer(h, sizeof(h), &info, err, sizeof(err)),
                   WAV_ERR_TRUNCATED); /* header promises 1920 bytes */
}

typedef struct bad {
  const char *what;
  int code;
  const char *msg; /* a substring the error must contain */
} bad_t;

static void expect(const buf_t *w, int code, const char *msg) {
  wav_info_t info;
  char err[200] = "";
  int r = parse(w, &info, err);
  if (r != code || !strstr(err, msg))
    fail_msg("want %d '%s', got %d '%s'", code, msg, r, err);
}

static void test_parse_rejects(void **state) {
  (void)state;
  static buf_t w;

  w.n = 0;
  expect(&w, WAV_ERR_TRUNCATED, "truncated");
  put(&w, "RIFX\0\0\0\0WAVE", 12);
  expect(&w, WAV_ERR_FORMAT, "not a RIFF file");
  w.n = 0;
  chunk(&w, "RIFF", 4);
  put(&w, "AVI ", 4);
  expect(&w, WAV_ERR_FORMAT, "not WAVE");
  w.n = 0;
  chunk(&w, "RIFF", 2);
  put(&w, "WAVE", 4);
  expect(&w, WAV_ERR_FORMAT, "too small");
  w.n = 0;
  chunk(&w, "RIFF", 4);
  put(&w, "WAVE", 4);
  expect(&w, WAV_ERR_FORMAT, "no fmt chunk");

  /* One field wrong at a time. */
  struct {
    unsigned tag, ch;
    uint32_t rate;
    unsigned bits;
    int code;
    const char *msg;
  } f[] = {
      {3, 1, 48000, 32, WAV_ERR_UNSUPPORTED, "format tag 0x0003 is not PCM"},
      {1, 1, 48000, 8, WAV_ERR_UNSUPPORTED, "8-bit samples"},
      {1, 1, 48000, 24, WAV_ERR_UNSUPPORTED, "24-bit samples"},
      {1, 3, 48000, 16, WAV_ERR_UNSUPPORTED, "3 channels"},
      {1, 0, 48000, 16, WAV_ERR_UNSUPPORTED, "0 channels"},
      {1, 1, 4000, 16, WAV_ERR_UNSUPPORTED, "sample rate 4000 Hz"},
      {1, 1, 400000, 16, WAV_ERR_UNSUPPORTED, "sample rate 400000 Hz"},
  };
  for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++) {
    w.n = 0;
    chunk(&w, "RIFF", 0);
    put(&w, "WAVE", 4);
    fmt16(&w, f[i].tag, f[i].ch, f[i].rate, f[i].bits);
    chunk(&w, "data", 0);
    riff_fix(&w);
    expect(&w, f[i].code, f[i].msg);
  }

  /* Inconsistent block align. */
  tone_wav(&w, 48000, 1, 1000, 10);
  w.b[32] = 4;
  expect(&w, WAV_ERR_FORMAT, "inconsistent fmt");
  /* Wrong byte rate. */
  tone_wav(&w, 48000, 1, 1000, 10);
  w.b[28] ^= 1;
  expect(&w, WAV_ERR_FORMAT, "inconsistent fmt");
  /* fmt too short. */
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  chunk(&w, "fmt ", 14);
  put(&w, "\1\0\1\0\x80\xbb\0\0\0\x77\1\0\2\0", 14);
  riff_fix(&w);
  expect(&w, WAV_ERR_FORMAT, "fmt chunk of 14 bytes");
  /* data before fmt, two fmt chunks, no data, partial sample frames. */
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  chunk(&w, "data", 0);
  fmt16(&w, 1, 1, 48000, 16);
  riff_fix(&w);
  expect(&w, WAV_ERR_FORMAT, "data chunk before the fmt chunk");
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  fmt16(&w, 1, 1, 48000, 16);
  fmt16(&w, 1, 1, 48000, 16);
  riff_fix(&w);
  expect(&w, WAV_ERR_FORMAT, "two fmt chunks");
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  fmt16(&w, 1, 1, 48000, 16);
  riff_fix(&w);
  expect(&w, WAV_ERR_FORMAT, "no data chunk");
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  fmt16(&w, 1, 2, 48000, 16);
  chunk(&w, "data", 6);
  put(&w, "\0\0\0\0\0\0", 6);
  riff_fix(&w);
  expect(&w, WAV_ERR_FORMAT, "not whole 4-byte frames");
  /* A chunk running past the RIFF chunk (the file goes on). */
  tone_wav(&w, 48000, 1, 1000, 10);
  w.b[4] -= 4;
  expect(&w, WAV_ERR_FORMAT, "chunk overruns RIFF");
  /* Extensible, but floating point; control bytes in an ID are masked. */
  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  chunk(&w, "fmt ", 40);
  put16(&w, 0xfffe);
  put16(&w, 1);
  put32(&w, 48000);
  put32(&w, 96000);
  put16(&w, 2);
  put16(&w, 16);
  put16(&w, 22);
  put16(&w, 16);
  put32(&w, 4);
  put(&w, "\3\0\0\0\0\0\x10\0\x80\0\0\xaa\0\x38\x9b\x71", 16);
  riff_fix(&w);
  expect(&w, WAV_ERR_UNSUPPORTED, "sub-format is not PCM");
  w.n = 0;
  chunk(&w, "RIFF", 4);
  put(&w, "W\nV\x01", 4);
  expect(&w, WAV_ERR_FORMAT, "'W?V?'");
}

/* Every cut of a valid file is refused as truncated. */
static void test_parse_truncations(void **state) {
  (void)state;
  static buf_t w;
  tone_wav(&w, 44100, 2, 1000, 50);
  /* Put an unknown chunk in front so cuts also land inside it. */
  static buf_t v;
  v.n = 0;
  put(&v, w.b, 12);
  chunk(&v, "LIST", 10);
  put(&v, "0123456789", 10);
  put(&v, w.b + 12, w.n - 12);
  riff_fix(&v);
  wav_info_t info;
  char err[200];
  assert_int_equal(wav_parse_buffer(v.b, v.n, &info, err, sizeof(err)), 0);
  for (size_t cut = 0; cut < v.n; cut++) {
    int r = wav_parse_buffer(v.b, cut, &info, err, sizeof(err));
    if (r != WAV_ERR_TRUNCATED || !strstr(err, "truncated"))
      fail_msg("cut at %zu: %d '%s'", cut, r, err);
  }
  wav_parse_buffer(v.b, v.n - 1, &info, err, sizeof(err));
  print_message("  e.g. one byte short: \"%s\"\n", err);
}

/* ---- Source and sink ---- */

static void test_round_trip_48k(void **state) {
  (void)state;
  const char *p = path_in("rt48.wav");
  char err[256];
  audio_sink_t *sink;
  assert_int_equal(wav_sink_open(p, &sink, err, sizeof(err)), 0);
  enum { FRAMES = 60 };
  static int16_t in[FRAMES * FR], out[(FRAMES + 2) * FR];
  srand(4);
  for (size_t i = 0; i < FRAMES * FR; i++)
    in[i] = (int16_t)(rand() - RAND_MAX / 2);
  in[0] = INT16_MIN;
  in[1] = INT16_MAX;
  for (size_t f = 0; f < FRAMES; f++)
    assert_int_equal(audio_sink_write(sink, in + f * FR), 0);
  assert_int_equal(audio_sink_close(sink), 0);

  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_size, 44 + FRAMES * FR * 2);

  audio_source_t *src;
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), 0);
  assert_false(src->paced);
  for (size_t f = 0; f < FRAMES; f++)
    assert_int_equal(audio_source_read(src, out + f * FR), FR);
  assert_int_equal(audio_source_read(src, out + FRAMES * FR), 0); /* end */
  assert_int_equal(audio_source_read(src, out + FRAMES * FR), 0);
  assert_memory_equal(in, out, sizeof(in));
  audio_source_close(src);

  /* Looping: frame FRAMES is frame 0 again. */
  assert_int_equal(wav_source_open(p, true, &src, err, sizeof(err)), 0);
  for (size_t f = 0; f < FRAMES + 2; f++)
    assert_int_equal(audio_source_read(src, out + f * FR), FR);
  assert_memory_equal(out + FRAMES * FR, in, 2 * FR * sizeof(int16_t));
  audio_source_close(src);
}

/* A file that is not whole frames: the last frame is padded. */
static void test_once_padding(void **state) {
  (void)state;
  static buf_t w;
  tone_wav(&w, 48000, 1, 1000, FR + 100);
  const char *p = path_in("pad.wav");
  write_file(p, w.b, w.n);
  char err[256];
  audio_source_t *src;
  int16_t pcm[FR];
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), 0);
  assert_int_equal(audio_source_read(src, pcm), FR);
  assert_int_equal(audio_source_read(src, pcm), FR);
  assert_true(pcm[99] != 0 || pcm[98] != 0);
  for (size_t i = 100; i < FR; i++)
    assert_int_equal(pcm[i], 0);
  assert_int_equal(audio_source_read(src, pcm), 0);
  audio_source_close(src);
}

/* A 1 kHz tone at other rates (stereo at 44.1 kHz) comes out at 48 kHz
 * still 1 kHz at the same level, and about as long. */
static void check_rate(uint32_t rate, unsigned ch) {
  static buf_t w;
  size_t in_frames = rate * 3 / 2; /* 1.5 s */
  tone_wav(&w, rate, ch, 1000, in_frames);
  char name[32];
  snprintf(name, sizeof(name), "r%u_%u.wav", rate, ch);
  const char *p = path_in(name);
  write_file(p, w.b, w.n);
  char err[256];
  audio_source_t *src;
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), 0);
  static int16_t out[200 * FR];
  size_t frames = 0;
  while (frames < 200 && audio_source_read(src, out + frames * FR) == FR)
    frames++;
  audio_source_close(src);
  size_t n = frames * FR;
  double want = (double)in_frames * 48000 / rate;
  /* Skip the first and last 100 ms (filter edges, padding). */
  double hz = audio_tone_hz(out + 4800, 48000, 48000);
  double db = audio_rms_dbfs(out + 4800, 48000);
  print_message("  %6u Hz %s -> 48 kHz: %zu samples (want %.0f), tone "
                "%.3f Hz, %.2f dBFS\n",
                rate, ch == 2 ? "stereo" : "mono  ", n, want, hz, db);
  assert_true(fabs(hz - 1000) < 5);
  assert_true(fabs(db - (-20 - 3.01)) < 0.3);
  assert_true(fabs((double)n - want) <= FR);
}

static void test_resampled_rates(void **state) {
  (void)state;
  check_rate(44100, 1);
  check_rate(44100, 2);
  check_rate(22050, 1);
  check_rate(8000, 1);
  check_rate(96000, 2);
}

static void test_source_errors(void **state) {
  (void)state;
  char err[256];
  audio_source_t *src = NULL;
  assert_int_equal(
      wav_source_open(path_in("none.wav"), false, &src, err, sizeof(err)),
      -ENOENT);
  assert_non_null(strstr(err, "none.wav"));
  assert_int_equal(wav_source_open(dir, false, &src, err, sizeof(err)),
                   -EINVAL);

  static buf_t w;
  tone_wav(&w, 48000, 1, 1000, 1000);
  const char *p = path_in("cut.wav");
  write_file(p, w.b, w.n - 1);
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), -EINVAL);
  print_message("  truncated file: \"%s\"\n", err);
  assert_non_null(strstr(err, "truncated"));
  assert_non_null(strstr(err, "cut.wav"));

  w.n = 0;
  chunk(&w, "RIFF", 0);
  put(&w, "WAVE", 4);
  fmt16(&w, 1, 1, 48000, 24);
  chunk(&w, "data", 0);
  riff_fix(&w);
  p = path_in("24bit.wav");
  write_file(p, w.b, w.n);
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), -ENOTSUP);
  print_message("  24-bit file: \"%s\"\n", err);

  p = path_in("text.wav");
  write_file(p, (const uint8_t *)"hello, this is not audio", 24);
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "not a RIFF file"));

  tone_wav(&w, 48000, 1, 1000, 0);
  p = path_in("empty.wav");
  write_file(p, w.b, w.n);
  assert_int_equal(wav_source_open(p, true, &src, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "no samples"));
  int16_t pcm[FR];
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), 0);
  assert_int_equal(audio_source_read(src, pcm), 0);
  audio_source_close(src);

  audio_sink_t *sink;
  assert_int_equal(
      wav_sink_open("/nonexistent-dir/x.wav", &sink, err, sizeof(err)),
      -ENOENT);
}

/* A sink whose process is killed leaves a valid WAV with all but the last
 * second: the header is rewritten every 50 frames. */
static void test_sink_killed(void **state) {
  (void)state;
  const char *p = path_in("killed.wav");
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char err[256];
    audio_sink_t *sink;
    int16_t pcm[FR];
    if (wav_sink_open(p, &sink, err, sizeof(err)) != 0)
      _exit(2);
    for (int f = 0; f < 120; f++) {
      for (int i = 0; i < FR; i++)
        pcm[i] = (int16_t)(f * 100 + i % 50);
      if (audio_sink_write(sink, pcm) != 0)
        _exit(3);
    }
    raise(SIGKILL);
    _exit(4);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  char err[256];
  audio_source_t *src;
  assert_int_equal(wav_source_open(p, false, &src, err, sizeof(err)), 0);
  int16_t pcm[FR];
  int frames = 0;
  while (audio_source_read(src, pcm) == FR) {
    assert_int_equal(pcm[0], frames * 100);
    frames++;
  }
  audio_source_close(src);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  print_message("  killed after 120 frames: header says %d frames, the file "
                "holds %lld\n",
                frames, (long long)(st.st_size - 44) / (FR * 2));
  assert_int_equal(frames, 100);
  assert_int_equal(st.st_size, 44 + 120 * FR * 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_accepts),
      cmocka_unit_test(test_parse_rejects),
      cmocka_unit_test(test_parse_truncations),
      cmocka_unit_test(test_round_trip_48k),
      cmocka_unit_test(test_once_padding),
      cmocka_unit_test(test_resampled_rates),
      cmocka_unit_test(test_source_errors),
      cmocka_unit_test(test_sink_killed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
