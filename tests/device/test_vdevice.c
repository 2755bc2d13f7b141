/* Tests of the video devices: the test pattern (determinism, motion, the
 * index squares), the Y4M parser (accepted headers, every refusal with its
 * message, truncation), the Y4M source and sink (byte-exact round trip,
 * Xseq, looping, scaling, a cut file), the null sink, the registry, and
 * the V4L2 source (skipped when the machine has no camera). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "device/v4l2.h"
#include "device/vdevice.h"
#include "device/vpattern.h"
#include "device/y4m.h"
#include "device/y4mfile.h"
#include "media/video.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/parley-vdev-XXXXXX");
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

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)len + 1);
  assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

static bool same_image(const video_image_t *a, const video_image_t *b) {
  if (a->width != b->width || a->height != b->height)
    return false;
  size_t n = video_i420_size(a->width, a->height);
  uint8_t *pa = malloc(n), *pb = malloc(n);
  video_image_to_i420(a, pa);
  video_image_to_i420(b, pb);
  bool same = memcmp(pa, pb, n) == 0;
  free(pa);
  free(pb);
  return same;
}

/* ---- Pattern ---- */

static void test_pattern(void **state) {
  (void)state;
  video_source_t *s;
  char err[256];
  assert_int_equal(vdevice_open_source("pattern", &s, err, sizeof(err)), 0);
  assert_int_equal(s->width, 640);
  assert_int_equal(s->height, 480);
  assert_int_equal(s->fps, 24);
  assert_false(s->paced);
  video_image_t a = {0}, b = {0}, ref = {0};
  assert_int_equal(video_image_alloc(&ref, 640, 480), 0);
  for (uint32_t i = 0; i < 5; i++) {
    assert_int_equal(video_source_read(s, i % 2 ? &b : &a), 1);
    vpattern_draw(&ref, i);
    assert_true(same_image(i % 2 ? &b : &a, &ref)); /* deterministic */
    assert_false(same_image(&a, &b));               /* moving */
    uint32_t idx;
    assert_int_equal(vpattern_read_index(&ref, &idx), 0);
    assert_int_equal(idx, i);
  }
  /* The box moves: luma differs outside the grain's +-3. */
  vpattern_draw(&a, 10);
  vpattern_draw(&b, 11);
  int moved = 0;
  for (size_t i = 0; i < 640 * 320; i++)
    moved += abs(a.planes[0][i] - b.planes[0][i]) > 6;
  assert_true(moved > 100);
  vpattern_draw(&a, 54321);
  uint32_t idx;
  assert_int_equal(vpattern_read_index(&a, &idx), 0);
  assert_int_equal(idx, 54321);
  video_source_close(s);

  assert_int_equal(
      vdevice_open_source("pattern:320x240@30", &s, err, sizeof(err)), 0);
  assert_int_equal(s->width, 320);
  assert_int_equal(s->fps, 30);
  assert_int_equal(video_source_read(s, &a), 1);
  assert_int_equal(a.width, 320);
  assert_int_equal(a.height, 240);
  video_source_close(s);
  static const char *const bad[] = {"pattern:640",      "pattern:640x",
                                    "pattern:640x480@", "pattern:8x8",
                                    "pattern:640x480x", "pattern:640x480@0"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    err[0] = '\0';
    assert_int_equal(vdevice_open_source(bad[i], &s, err, sizeof(err)),
                     -EINVAL);
    assert_true(strlen(err) > 0);
  }
  video_image_free(&a);
  video_image_free(&b);
  video_image_free(&ref);
}

/* ---- Y4M parser ---- */

static void test_y4m_parse_headers(void **state) {
  (void)state;
  static const struct {
    const char *hdr;
    long r;
    const char *msg; /* part of the message */
  } cases[] = {
      {"YUV4MPEG2 W640 H480 F24:1\n", 26, NULL},
      {"YUV4MPEG2 W640 H480 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG\n", 64,
       NULL},
      {"YUV4MPEG2 W4 H2 F1:1 C420\n", 26, NULL},
      {"YUV4MPEG2 W4 H2 F1:1 C420paldv\n", 31, NULL},
      {"YUV4MPEG2 W4 H2 F1:1 C420mpeg2\n", 31, NULL},
      {"YUV4MPEG2 W640 H480 F24:1 C422\n", Y4M_ERR_UNSUPPORTED, "C422"},
      {"YUV4MPEG2 W640 H480 F24:1 C444\n", Y4M_ERR_UNSUPPORTED, "4:2:0"},
      {"YUV4MPEG2 W640 H480 F24:1 Cmono\n", Y4M_ERR_UNSUPPORTED, "Cmono"},
      {"YUV4MPEG2 W640 H480 F24:1 C420p10\n", Y4M_ERR_UNSUPPORTED, "8-bit"},
      {"YUV4MPEG2 W4000 H480 F24:1\n", Y4M_ERR_UNSUPPORTED, "width 4000"},
      {"YUV4MPEG2 W1 H480 F24:1\n", Y4M_ERR_UNSUPPORTED, "width 1"},
      {"YUV4MPEG2 H480 F24:1\n", Y4M_ERR_FORMAT, "lacks the W"},
      {"YUV4MPEG2 W640 F24:1\n", Y4M_ERR_FORMAT, "lacks the H"},
      {"YUV4MPEG2 W640 H480\n", Y4M_ERR_FORMAT, "lacks the F"},
      {"YUV4MPEG2 W640 H480 F24\n", Y4M_ERR_FORMAT, "frame rate"},
      {"YUV4MPEG2 W640 H480 F0:1\n", Y4M_ERR_FORMAT, "frame rate"},
      {"YUV4MPEG2 W640 H480 F24:0\n", Y4M_ERR_FORMAT, "frame rate"},
      {"YUV4MPEG2 W64x H480 F24:1\n", Y4M_ERR_FORMAT, "bad width"},
      {"YUV4MPEG2 W640 W640 H480 F24:1\n", Y4M_ERR_FORMAT, "twice"},
      {"YUV4MPEG2 W640 H480 F24:1 Z9\n", Y4M_ERR_FORMAT, "unknown"},
      {"YUV4MPEG2 W640  H480 F24:1\n", Y4M_ERR_FORMAT, "empty"},
      {"YUV4MPEG2 W640 H480 F24:1 Iq\n", Y4M_ERR_FORMAT, "interlacing"},
      {"YUV4MPEG2W640 H480 F24:1\n", Y4M_ERR_FORMAT, "signature"},
      {"RIFF\n", Y4M_ERR_FORMAT, "signature"},
      {"YUV4MPEG2 W640 H480 F24:1", Y4M_ERR_TRUNCATED, "ends inside"},
      {"YUV4MP", Y4M_ERR_TRUNCATED, "ends inside"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    y4m_info_t info;
    char err[256] = "";
    long r = y4m_parse_header((const uint8_t *)cases[i].hdr,
                              strlen(cases[i].hdr), &info, err, sizeof(err));
    if (r != cases[i].r)
      fail_msg("'%s': got %ld (%s), want %ld", cases[i].hdr, r, err,
               cases[i].r);
    if (cases[i].msg && !strstr(err, cases[i].msg))
      fail_msg("'%s': message '%s' lacks '%s'", cases[i].hdr, err,
               cases[i].msg);
  }
  y4m_info_t info;
  assert_int_equal(y4m_parse_header((const uint8_t *)"YUV4MPEG2 W7 H5 F25:2\n",
                                    22, &info, NULL, 0),
                   22);
  assert_int_equal(info.width, 7);
  assert_int_equal(info.height, 5);
  assert_int_equal(info.fps_num, 25);
  assert_int_equal(info.fps_den, 2);
  assert_int_equal(info.frame_size, video_i420_size(7, 5));
  /* A header without '\n' in Y4M_LINE_MAX bytes is malformed. */
  char *big = malloc(Y4M_LINE_MAX + 10);
  memset(big, 'X', Y4M_LINE_MAX + 10);
  memcpy(big, "YUV4MPEG2 W640 H480 F24:1 ", 26);
  char err[256];
  assert_int_equal(y4m_parse_header((const uint8_t *)big, Y4M_LINE_MAX + 10,
                                    &info, err, sizeof(err)),
                   Y4M_ERR_FORMAT);
  assert_non_null(strstr(err, "longer"));
  free(big);

  bool has;
  uint32_t seq;
  assert_int_equal(y4m_parse_frame((const uint8_t *)"FRAME\n", 6, &has, &seq,
                                   err, sizeof(err)),
                   6);
  assert_false(has);
  assert_int_equal(
      y4m_parse_frame((const uint8_t *)"FRAME Ip Xseq=4294967295\n", 25, &has,
                      &seq, err, sizeof(err)),
      25);
  assert_true(has);
  assert_int_equal(seq, 4294967295u);
  assert_int_equal(y4m_parse_frame((const uint8_t *)"FRAME Xseq=4294967296\n",
                                   22, &has, &seq, err, sizeof(err)),
                   22);
  assert_false(has);
  assert_int_equal(y4m_parse_frame((const uint8_t *)"FRAMEX\n", 7, &has, &seq,
                                   err, sizeof(err)),
                   Y4M_ERR_FORMAT);
  assert_int_equal(
      y4m_parse_frame((const uint8_t *)"FRAM", 4, &has, &seq, err, sizeof(err)),
      Y4M_ERR_TRUNCATED);
  assert_int_equal(y4m_parse_frame((const uint8_t *)"JUNK\n", 5, &has, &seq,
                                   err, sizeof(err)),
                   Y4M_ERR_FORMAT);
  assert_non_null(strstr(err, "FRAME"));
}

/* A file of n pattern pictures at w x h with the sink; returns its size. */
static void write_pattern_y4m(const char *path, int w, int h, uint32_t n) {
  char name[256], err[256];
  snprintf(name, sizeof(name), "y4m:%s", path);
  video_sink_t *k;
  assert_int_equal(vdevice_open_sink(name, &k, err, sizeof(err)), 0);
  video_image_t im = {0};
  assert_int_equal(video_image_alloc(&im, w, h), 0);
  for (uint32_t i = 0; i < n; i++) {
    vpattern_draw(&im, i);
    im.seq = 1000 + i;
    assert_int_equal(video_sink_write(k, &im), 0);
  }
  assert_int_equal(video_sink_close(k), 0);
  video_image_free(&im);
}

static void test_y4m_round_trip(void **state) {
  (void)state;
  const char *p = path_in("rt.y4m");
  write_pattern_y4m(p, 320, 240, 5);
  size_t n;
  uint8_t *bytes = read_file(p, &n);
  const char *hdr = "YUV4MPEG2 W320 H240 F24:1 Ip A1:1 C420jpeg\nFRAME "
                    "Xseq=1000\n";
  assert_memory_equal(bytes, hdr, strlen(hdr));
  y4m_info_t info;
  char err[256];
  assert_int_equal(y4m_parse_buffer(bytes, n, &info, err, sizeof(err)), 5);
  free(bytes);

  char name[256];
  snprintf(name, sizeof(name), "y4m:%s", p);
  video_source_t *s;
  assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), 0);
  assert_int_equal(s->width, 320);
  assert_int_equal(s->height, 240);
  assert_int_equal(s->fps, 24);
  assert_false(s->paced);
  video_image_t im = {0}, ref = {0};
  assert_int_equal(video_image_alloc(&ref, 320, 240), 0);
  for (uint32_t i = 0; i < 5; i++) {
    assert_int_equal(video_source_read(s, &im), 1);
    vpattern_draw(&ref, i);
    assert_true(same_image(&im, &ref)); /* byte-exact */
    uint32_t seq;
    assert_true(y4m_source_last_seq(s, &seq));
    assert_int_equal(seq, 1000 + i);
  }
  assert_int_equal(video_source_read(s, &im), 0);
  assert_int_equal(video_source_read(s, &im), 0);
  video_source_close(s);

  /* Looping: 5 pictures, then the first again. */
  snprintf(name, sizeof(name), "y4m-loop:%s", p);
  assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), 0);
  for (uint32_t i = 0; i < 12; i++) {
    assert_int_equal(video_source_read(s, &im), 1);
    vpattern_draw(&ref, i % 5);
    assert_true(same_image(&im, &ref));
  }
  video_source_close(s);
  video_image_free(&im);
  video_image_free(&ref);
}

static void test_y4m_sink_scales(void **state) {
  (void)state;
  const char *p = path_in("scaled.y4m");
  char name[256], err[256];
  snprintf(name, sizeof(name), "y4m:%s", p);
  video_sink_t *k;
  assert_int_equal(vdevice_open_sink(name, &k, err, sizeof(err)), 0);
  video_image_t a = {0}, b = {0};
  assert_int_equal(video_image_alloc(&a, 160, 120), 0);
  assert_int_equal(video_image_alloc(&b, 640, 480), 0);
  vpattern_draw(&a, 3);
  vpattern_draw(&b, 3);
  a.seq = 1;
  b.seq = 2;
  assert_int_equal(video_sink_write(k, &a), 0);
  assert_int_equal(video_sink_write(k, &b), 0);
  assert_int_equal(video_sink_close(k), 0);
  video_source_t *s;
  assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), 0);
  assert_int_equal(s->width, 160);
  video_image_t im = {0}, want = {0};
  assert_int_equal(video_source_read(s, &im), 1);
  assert_true(same_image(&im, &a));
  assert_int_equal(video_source_read(s, &im), 1);
  assert_int_equal(im.width, 160);
  assert_int_equal(im.height, 120);
  assert_int_equal(video_image_alloc(&want, 160, 120), 0);
  assert_int_equal(video_image_scale(&b, &want), 0);
  assert_true(same_image(&im, &want));
  uint32_t seq;
  assert_true(y4m_source_last_seq(s, &seq));
  assert_int_equal(seq, 2);
  assert_int_equal(video_source_read(s, &im), 0);
  video_source_close(s);
  video_image_free(&a);
  video_image_free(&b);
  video_image_free(&im);
  video_image_free(&want);
}

static void test_y4m_truncated(void **state) {
  (void)state;
  const char *p = path_in("cut.y4m");
  write_pattern_y4m(p, 64, 48, 3);
  size_t n;
  uint8_t *bytes = read_file(p, &n);
  size_t fs = video_i420_size(64, 48);
  char name[256], err[256];
  video_image_t im = {0};
  /* Cut inside the third picture, inside its FRAME line, and right after
   * the header: the source ends at the last whole picture. */
  size_t hdr = strlen("YUV4MPEG2 W64 H48 F24:1 Ip A1:1 C420jpeg\n");
  size_t line = strlen("FRAME Xseq=1000\n");
  const size_t cuts[] = {n - fs / 2, hdr + 2 * (line + fs) + 3, hdr};
  const int whole[] = {2, 2, 0};
  for (int c = 0; c < 3; c++) {
    write_file(p, bytes, cuts[c]);
    y4m_info_t info;
    long r = y4m_parse_buffer(bytes, cuts[c], &info, err, sizeof(err));
    assert_int_equal(r, c == 2 ? 0 : Y4M_ERR_TRUNCATED);
    snprintf(name, sizeof(name), "y4m:%s", p);
    video_source_t *s;
    assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), 0);
    for (int i = 0; i < whole[c]; i++)
      assert_int_equal(video_source_read(s, &im), 1);
    assert_int_equal(video_source_read(s, &im), 0);
    video_source_close(s);
    /* Looping wraps at the last whole picture; none: refused. */
    snprintf(name, sizeof(name), "y4m-loop:%s", p);
    if (whole[c] == 0) {
      err[0] = '\0';
      assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)),
                       -EINVAL);
      assert_non_null(strstr(err, "no whole picture"));
      continue;
    }
    assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), 0);
    for (int i = 0; i < 7; i++)
      assert_int_equal(video_source_read(s, &im), 1);
    video_source_close(s);
  }
  /* A header cut short, a bad FRAME line mid-file. */
  write_file(p, bytes, 10);
  snprintf(name, sizeof(name), "y4m:%s", p);
  video_source_t *s;
  assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, p));
  memcpy(bytes + hdr + line + fs, "JUNK!", 5);
  write_file(p, bytes, n);
  assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), 0);
  assert_int_equal(video_source_read(s, &im), 1);
  assert_int_equal(video_source_read(s, &im), -EINVAL);
  video_source_close(s);
  free(bytes);
  video_image_free(&im);
}

static void test_y4m_bad_files(void **state) {
  (void)state;
  const char *p = path_in("bad.y4m");
  char name[256], err[256];
  snprintf(name, sizeof(name), "y4m:%s", p);
  video_source_t *s;
  const char *h422 = "YUV4MPEG2 W64 H48 F24:1 C422\nFRAME\n";
  write_file(p, h422, strlen(h422));
  assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), -ENOTSUP);
  assert_non_null(strstr(err, "C422"));
  assert_non_null(strstr(err, "only 8-bit 4:2:0"));
  const char *nof = "YUV4MPEG2 W64 H48\n";
  write_file(p, nof, strlen(nof));
  assert_int_equal(vdevice_open_source(name, &s, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "lacks the F"));
  assert_int_equal(
      vdevice_open_source("y4m:/nonexistent/x.y4m", &s, err, sizeof(err)),
      -ENOENT);
  assert_int_equal(vdevice_open_source("y4m", &s, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "needs a path"));
  video_sink_t *k;
  assert_int_equal(
      vdevice_open_sink("y4m:/nonexistent/x.y4m", &k, err, sizeof(err)),
      -ENOENT);
}

/* ---- Registry, null, V4L2 ---- */

static int test_driver_source(const char *arg, video_source_t **out, char *err,
                              size_t err_size) {
  return vpattern_source_open(64, 32, 10, out);
}

static size_t test_driver_list(device_info_t *out, size_t max) {
  if (max > 0) {
    snprintf(out[0].name, sizeof(out[0].name), "testapi");
    snprintf(out[0].description, sizeof(out[0].description), "test");
    out[0].kind = DEVICE_SOURCE;
    out[0].type = (enum device_type)VDEVICE_TYPE_API;
  }
  return 1;
}

static const vdevice_driver_t test_driver = {
    "testapi", VDEVICE_TYPE_API, test_driver_list, test_driver_source, NULL};

static void test_registry(void **state) {
  (void)state;
  device_info_t list[32];
  size_t n = vdevice_list(list, 32);
  assert_true(n >= 5 && n <= 32);
  bool pattern = false, y4m_src = false, y4m_sink = false, null_sink = false;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(list[i].name, "pattern") == 0 && list[i].kind == DEVICE_SOURCE &&
        (int)list[i].type == VDEVICE_TYPE_PATTERN)
      pattern = true;
    if (strcmp(list[i].name, "y4m:PATH") == 0)
      *(list[i].kind == DEVICE_SOURCE ? &y4m_src : &y4m_sink) = true;
    if (strcmp(list[i].name, "null") == 0 && list[i].kind == DEVICE_SINK)
      null_sink = true;
  }
  assert_true(pattern && y4m_src && y4m_sink && null_sink);
  assert_int_equal(vdevice_list(NULL, 0), n);
  assert_int_equal(vdevice_list(list, 2), n);
  assert_string_equal(list[0].name, "pattern"); /* built-ins first */

  char err[256] = "";
  video_source_t *s;
  video_sink_t *k;
  assert_int_equal(vdevice_open_source("webcam:0", &s, err, sizeof(err)),
                   -ENOENT);
  assert_non_null(strstr(err, "unknown video device 'webcam'"));
  assert_int_equal(vdevice_open_source("null", &s, err, sizeof(err)), -ENOTSUP);
  assert_int_equal(vdevice_open_sink("pattern", &k, err, sizeof(err)),
                   -ENOTSUP);
  assert_int_equal(vdevice_open_sink("null:x", &k, err, sizeof(err)), -EINVAL);
  assert_int_equal(vdevice_open_sink("null", &k, err, sizeof(err)), 0);
  video_image_t im = {0};
  assert_int_equal(video_image_alloc(&im, 32, 16), 0);
  assert_int_equal(video_sink_write(k, &im), 0);
  assert_int_equal(video_sink_close(k), 0);
  video_image_free(&im);

  assert_int_equal(vdevice_register(&test_driver), 0);
  assert_int_equal(vdevice_register(&test_driver), -EEXIST);
  static const vdevice_driver_t clash = {"pattern", VDEVICE_TYPE_API, NULL,
                                         NULL, NULL};
  assert_int_equal(vdevice_register(&clash), -EEXIST);
  assert_int_equal(vdevice_list(list, 32), n + 1);
  assert_string_equal(list[n].name, "testapi");
  assert_int_equal(vdevice_open_source("testapi", &s, err, sizeof(err)), 0);
  assert_int_equal(s->width, 64);
  video_source_close(s);
  assert_string_equal(vdevice_type_name(VDEVICE_TYPE_V4L2), "v4l2");
  assert_string_equal(vdevice_type_name(VDEVICE_TYPE_PATTERN), "pattern");
  assert_string_equal(vdevice_type_name(VDEVICE_TYPE_FILE), "file");
}

static void test_v4l2(void **state) {
  (void)state;
  glob_t g;
  bool any = glob("/dev/video*", 0, NULL, &g) == 0 && g.gl_pathc > 0;
  if (glob("/dev/video*", 0, NULL, &g) == 0)
    globfree(&g);
  char err[256] = "";
  video_source_t *s;
  if (!any) {
    /* Without a camera: listing gives nothing and opening says why. */
    device_info_t list[4];
    assert_int_equal(v4l2_list(list, 4), 0);
    assert_int_equal(vdevice_open_source("v4l2", &s, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "no camera"));
    assert_int_equal(
        vdevice_open_source("v4l2:/dev/video0", &s, err, sizeof(err)), -ENOENT);
    printf("# v4l2: skipped, no /dev/video* on this machine (no camera)\n");
    skip();
  }
  device_info_t list[8];
  size_t n = v4l2_list(list, 8);
  if (n == 0) {
    printf("# v4l2: skipped, /dev/video* exists but none captures video\n");
    skip();
  }
  int r = vdevice_open_source(list[0].name, &s, err, sizeof(err));
  if (r != 0) {
    printf("# v4l2: skipped, %s: %s\n", list[0].name, err);
    skip();
  }
  assert_true(s->paced);
  video_image_t im = {0};
  int got = 0;
  for (int i = 0; i < 48 && got < 5; i++) {
    r = video_source_read(s, &im);
    assert_true(r == 1 || r == -EAGAIN);
    got += r == 1;
  }
  assert_true(got > 0);
  assert_int_equal(im.width, s->width);
  video_source_close(s);
  video_image_free(&im);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pattern),
      cmocka_unit_test(test_y4m_parse_headers),
      cmocka_unit_test(test_y4m_round_trip),
      cmocka_unit_test(test_y4m_sink_scales),
      cmocka_unit_test(test_y4m_truncated),
      cmocka_unit_test(test_y4m_bad_files),
      cmocka_unit_test(test_registry),
      cmocka_unit_test(test_v4l2),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
