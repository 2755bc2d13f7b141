/* Tests of device/device (the registry and names), device/tone and
 * device/null: what is listed, what opens, what is refused and why, and the
 * tone's frequency, level and continuity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "device/device.h"
#include "device/null.h"
#include "device/tone.h"
#include "media/audio.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FR AUDIO_FRAME_SAMPLES

static void read_n(audio_source_t *s, int16_t *out, size_t frames) {
  for (size_t f = 0; f < frames; f++)
    assert_int_equal(audio_source_read(s, out + f * FR), FR);
}

static void test_tone(void **state) {
  (void)state;
  static int16_t pcm[100 * FR];
  const struct {
    double hz, dbfs;
  } cases[] = {{1000, -20}, {440, -6}, {3150.5, -40}, {50, 0}};
  for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
    audio_source_t *s;
    assert_int_equal(tone_source_open(cases[k].hz, cases[k].dbfs, &s), 0);
    assert_false(s->paced);
    read_n(s, pcm, 100);
    audio_source_close(s);
    double hz = audio_tone_hz(pcm, 100 * FR, AUDIO_RATE);
    double db = audio_rms_dbfs(pcm, 100 * FR);
    print_message("  tone %.1f Hz at %.0f dBFS peak: measured %.3f Hz, RMS "
                  "%.2f dBFS\n",
                  cases[k].hz, cases[k].dbfs, hz, db);
    assert_true(fabs(hz - cases[k].hz) < 0.01 * cases[k].hz / 100 + 0.01);
    assert_true(fabs(db - (cases[k].dbfs - 3.01)) < 0.05);
    /* Continuous across frame edges: no step larger than the sine's own
     * steepest one. */
    double amp = 32767 * pow(10, cases[k].dbfs / 20);
    double max_step = amp * 2 * M_PI * cases[k].hz / AUDIO_RATE + 1.5;
    for (size_t i = 1; i < 100 * FR; i++)
      assert_true(fabs((double)pcm[i] - pcm[i - 1]) <= max_step);
  }
  audio_source_t *s = NULL;
  assert_int_equal(tone_source_open(0, -20, &s), -EINVAL);
  assert_int_equal(tone_source_open(24000, -20, &s), -EINVAL);
  assert_int_equal(tone_source_open(1000, 0.5, &s), -EINVAL);
  assert_int_equal(tone_source_open(NAN, -20, &s), -EINVAL);
  assert_null(s);
}

static void test_null(void **state) {
  (void)state;
  audio_source_t *s;
  audio_sink_t *k;
  int16_t pcm[FR];
  memset(pcm, 0x5a, sizeof(pcm));
  assert_int_equal(null_source_open(&s), 0);
  assert_int_equal(audio_source_read(s, pcm), FR);
  for (int i = 0; i < FR; i++)
    assert_int_equal(pcm[i], 0);
  audio_source_close(s);
  assert_int_equal(null_sink_open(&k), 0);
  for (int i = 0; i < 7; i++)
    assert_int_equal(audio_sink_write(k, pcm), 0);
  assert_true(null_sink_frames(k) == 7);
  assert_int_equal(audio_sink_close(k), 0);
}

static bool has(const device_info_t *l, size_t n, const char *name,
                enum device_kind kind, enum device_type type) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(l[i].name, name) == 0 && l[i].kind == kind &&
        l[i].type == type && l[i].description[0])
      return true;
  return false;
}

static void test_builtin_list(void **state) {
  (void)state;
  device_info_t l[32];
  size_t n = device_list(l, 32);
  assert_true(n == device_list(NULL, 0)); /* the count alone */
  assert_true(n >= 6);
  assert_true(has(l, n, "tone", DEVICE_SOURCE, DEVICE_TYPE_TONE));
  assert_true(has(l, n, "null", DEVICE_SOURCE, DEVICE_TYPE_NULL));
  assert_true(has(l, n, "null", DEVICE_SINK, DEVICE_TYPE_NULL));
  assert_true(has(l, n, "file:PATH", DEVICE_SOURCE, DEVICE_TYPE_FILE));
  assert_true(has(l, n, "file-loop:PATH", DEVICE_SOURCE, DEVICE_TYPE_FILE));
  assert_true(has(l, n, "file:PATH", DEVICE_SINK, DEVICE_TYPE_FILE));
  /* A short array gets the first entries and the full count. */
  device_info_t two[2];
  assert_true(device_list(two, 2) == n);
  assert_string_equal(two[0].name, l[0].name);
  for (size_t i = 0; i < n; i++)
    print_message("  %-16s %-6s %-5s %s\n", l[i].name,
                  device_kind_name(l[i].kind), device_type_name(l[i].type),
                  l[i].description);
  assert_string_equal(device_type_name(DEVICE_TYPE_PORTAUDIO), "portaudio");
  assert_string_equal(device_kind_name(DEVICE_SINK), "sink");
}

static void test_open_by_name(void **state) {
  (void)state;
  char err[256];
  audio_source_t *s;
  audio_sink_t *k;
  static int16_t pcm[50 * FR];

  assert_int_equal(device_open_source("tone", &s, err, sizeof(err)), 0);
  read_n(s, pcm, 50);
  audio_source_close(s);
  assert_float_equal(audio_tone_hz(pcm, 50 * FR, AUDIO_RATE), 1000, 0.01);
  assert_float_equal(audio_rms_dbfs(pcm, 50 * FR), -23.01, 0.05);

  assert_int_equal(device_open_source("tone:440:-6", &s, err, sizeof(err)), 0);
  read_n(s, pcm, 50);
  audio_source_close(s);
  assert_float_equal(audio_tone_hz(pcm, 50 * FR, AUDIO_RATE), 440, 0.01);
  assert_float_equal(audio_rms_dbfs(pcm, 50 * FR), -9.01, 0.05);

  assert_int_equal(device_open_source("tone:250", &s, err, sizeof(err)), 0);
  audio_source_close(s);

  const char *bad_tones[] = {"tone:abc",   "tone:440:",  "tone:440:x",
                             "tone:30000", "tone:440:3", "tone:440:-6:1"};
  for (size_t i = 0; i < sizeof(bad_tones) / sizeof(*bad_tones); i++) {
    err[0] = '\0';
    assert_int_equal(device_open_source(bad_tones[i], &s, err, sizeof(err)),
                     -EINVAL);
    assert_true(strlen(err) > 0);
  }

  assert_int_equal(device_open_source("null", &s, err, sizeof(err)), 0);
  audio_source_close(s);
  assert_int_equal(device_open_sink("null", &k, err, sizeof(err)), 0);
  assert_int_equal(audio_sink_close(k), 0);
  assert_int_equal(device_open_sink("null:x", &k, err, sizeof(err)), -EINVAL);

  assert_int_equal(device_open_source("speaker", &s, err, sizeof(err)),
                   -ENOENT);
  assert_string_equal(err, "unknown device 'speaker'");
  assert_int_equal(device_open_sink("tone", &k, err, sizeof(err)), -ENOTSUP);
  assert_string_equal(err, "tone: not an audio sink");
  assert_int_equal(device_open_source("file:", &s, err, sizeof(err)), -EINVAL);
  assert_int_equal(device_open_sink("file", &k, err, sizeof(err)), -EINVAL);
  assert_int_equal(
      device_open_sink("file-loop:/tmp/x.wav", &k, err, sizeof(err)), -ENOTSUP);

  /* A file written through the registry reads back through it. */
  char dir[] = "/tmp/parley-dev-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char name[128];
  snprintf(name, sizeof(name), "file:%s/t.wav", dir);
  assert_int_equal(device_open_source("tone:700:-12", &s, err, sizeof(err)), 0);
  assert_int_equal(device_open_sink(name, &k, err, sizeof(err)), 0);
  for (int f = 0; f < 50; f++) {
    assert_int_equal(audio_source_read(s, pcm), FR);
    assert_int_equal(audio_sink_write(k, pcm), 0);
  }
  audio_source_close(s);
  assert_int_equal(audio_sink_close(k), 0);
  assert_int_equal(device_open_source(name, &s, err, sizeof(err)), 0);
  read_n(s, pcm, 50);
  assert_int_equal(audio_source_read(s, pcm + 49 * FR), 0);
  audio_source_close(s);
  assert_float_equal(audio_tone_hz(pcm, 49 * FR, AUDIO_RATE), 700, 0.01);
  snprintf(name, sizeof(name), "file-loop:%s/t.wav", dir);
  assert_int_equal(device_open_source(name, &s, err, sizeof(err)), 0);
  read_n(s, pcm, 50);
  read_n(s, pcm, 50); /* still going */
  audio_source_close(s);
  snprintf(name, sizeof(name), "%s/t.wav", dir);
  unlink(name);
  rmdir(dir);
}

/* ---- A driver from another module (as PortAudio will be) ---- */

static int fake_opened;

static size_t fake_list(device_info_t *out, size_t max) {
  static const char *names[] = {"fake:Built-in Mic", "fake:USB Headset"};
  for (size_t i = 0; i < 2 && i < max; i++) {
    snprintf(out[i].name, sizeof(out[i].name), "%s", names[i]);
    snprintf(out[i].description, sizeof(out[i].description), "fake device");
    out[i].kind = DEVICE_SOURCE;
    out[i].type = DEVICE_TYPE_PORTAUDIO;
  }
  return 2;
}

static int fake_open(const char *arg, audio_source_t **out, char *err,
                     size_t err_size) {
  if (strcmp(arg, "USB Headset") != 0) {
    snprintf(err, err_size, "no device '%s'", arg);
    return -ENODEV;
  }
  fake_opened++;
  int r = null_source_open(out);
  (*out)->paced = true;
  return r;
}

static const device_driver_t fake = {"fake", DEVICE_TYPE_PORTAUDIO, fake_list,
                                     fake_open, NULL};

static void test_register(void **state) {
  (void)state;
  size_t before = device_list(NULL, 0);
  assert_int_equal(device_register(&fake), 0);
  assert_int_equal(device_register(&fake), -EEXIST);
  static const device_driver_t clash = {"tone", DEVICE_TYPE_TONE, NULL, NULL,
                                        NULL};
  assert_int_equal(device_register(&clash), -EEXIST);

  device_info_t l[32];
  size_t n = device_list(l, 32);
  assert_true(n == before + 2);
  assert_true(
      has(l, n, "fake:USB Headset", DEVICE_SOURCE, DEVICE_TYPE_PORTAUDIO));
  /* Built-ins come first. */
  assert_string_equal(l[before].name, "fake:Built-in Mic");

  char err[256];
  audio_source_t *s;
  assert_int_equal(device_open_source("fake:USB Headset", &s, err, sizeof(err)),
                   0);
  assert_true(s->paced);
  assert_int_equal(fake_opened, 1);
  audio_source_close(s);
  assert_int_equal(device_open_source("fake:Nope", &s, err, sizeof(err)),
                   -ENODEV);
  assert_string_equal(err, "no device 'Nope'");
  audio_sink_t *k;
  assert_int_equal(device_open_sink("fake", &k, err, sizeof(err)), -ENOTSUP);

  /* The table is bounded. */
  static device_driver_t many[DEVICE_DRIVERS_MAX];
  static char names[DEVICE_DRIVERS_MAX][16];
  int r = 0, added = 0;
  for (int i = 0; i < DEVICE_DRIVERS_MAX && r == 0; i++) {
    snprintf(names[i], sizeof(names[i]), "x%d", i);
    many[i] = (device_driver_t){names[i], DEVICE_TYPE_API, NULL, NULL, NULL};
    r = device_register(&many[i]);
    added += r == 0;
  }
  assert_int_equal(r, -ENOSPC);
  assert_int_equal(added, DEVICE_DRIVERS_MAX - 1); /* "fake" took one */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tone),         cmocka_unit_test(test_null),
      cmocka_unit_test(test_builtin_list), cmocka_unit_test(test_open_by_name),
      cmocka_unit_test(test_register),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
