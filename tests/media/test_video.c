/* Tests of media/video: allocation rules, I420 packing both ways, RGBA
 * conversion of known colours (byte order R, G, B, A), and scaling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "media/video.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void fill(video_image_t *im, uint8_t y, uint8_t u, uint8_t v) {
  int cw = (im->width + 1) / 2, ch = (im->height + 1) / 2;
  for (int r = 0; r < im->height; r++)
    memset(im->planes[0] + (size_t)r * im->strides[0], y, im->width);
  for (int r = 0; r < ch; r++) {
    memset(im->planes[1] + (size_t)r * im->strides[1], u, cw);
    memset(im->planes[2] + (size_t)r * im->strides[2], v, cw);
  }
}

static void test_alloc(void **state) {
  (void)state;
  video_image_t im = {0};
  assert_int_equal(video_i420_size(640, 480), 640 * 480 * 3 / 2);
  assert_int_equal(video_i420_size(5, 3), 15 + 2 * 3 * 2);
  assert_int_equal(video_image_alloc(&im, 1, 10), -EINVAL);
  assert_int_equal(video_image_alloc(&im, 10, VIDEO_MAX_HEIGHT + 1), -EINVAL);
  assert_int_equal(video_image_alloc(&im, 5, 3), 0);
  assert_int_equal(im.strides[0], 5);
  assert_int_equal(im.strides[1], 3);
  assert_ptr_equal(im.planes[1], im.buf + 15);
  assert_ptr_equal(im.planes[2], im.buf + 21);
  uint8_t *b = im.buf;
  assert_int_equal(video_image_alloc(&im, 4, 2), 0); /* smaller: kept */
  assert_ptr_equal(im.buf, b);
  assert_int_equal(video_image_alloc(&im, 640, 480), 0);
  assert_true(im.buf_size >= video_i420_size(640, 480));
  video_image_free(&im);
  assert_null(im.buf);
  video_image_free(&im); /* twice is fine */
}

static void test_i420_round_trip(void **state) {
  (void)state;
  int w = 7, h = 5;
  size_t n = video_i420_size(w, h);
  uint8_t *in = malloc(n), *out = malloc(n);
  for (size_t i = 0; i < n; i++)
    in[i] = (uint8_t)(i * 7 + 3);
  video_image_t im = {0};
  assert_int_equal(video_image_from_i420(&im, w, h, in, n - 1), -EINVAL);
  assert_int_equal(video_image_from_i420(&im, w, h, in, n), 0);
  assert_int_equal(im.width, w);
  assert_int_equal(im.height, h);
  assert_int_equal(im.planes[1][0], in[w * h]);
  video_image_to_i420(&im, out);
  assert_memory_equal(in, out, n);
  free(in);
  free(out);
  video_image_free(&im);
}

static void test_rgba_known_colours(void **state) {
  (void)state;
  /* BT.601 limited range. */
  static const struct {
    uint8_t y, u, v, r, g, b;
  } c[] = {
      {16, 128, 128, 0, 0, 0},        {235, 128, 128, 255, 255, 255},
      {81, 90, 240, 255, 0, 0},       {145, 54, 34, 0, 255, 0},
      {41, 240, 110, 0, 0, 255},      {210, 16, 146, 255, 255, 0},
      {126, 128, 128, 128, 128, 128},
  };
  video_image_t im = {0};
  assert_int_equal(video_image_alloc(&im, 6, 4), 0);
  uint8_t rgba[6 * 4 * 4];
  for (size_t k = 0; k < sizeof(c) / sizeof(*c); k++) {
    fill(&im, c[k].y, c[k].u, c[k].v);
    memset(rgba, 0x55, sizeof(rgba));
    video_image_to_rgba(&im, rgba);
    for (int p = 0; p < 6 * 4; p++) {
      assert_in_range(rgba[p * 4 + 0], c[k].r > 3 ? c[k].r - 3 : 0, c[k].r + 3);
      assert_in_range(rgba[p * 4 + 1], c[k].g > 3 ? c[k].g - 3 : 0, c[k].g + 3);
      assert_in_range(rgba[p * 4 + 2], c[k].b > 3 ? c[k].b - 3 : 0, c[k].b + 3);
      assert_int_equal(rgba[p * 4 + 3], 255);
    }
  }
  video_image_free(&im);
}

static void test_scale(void **state) {
  (void)state;
  video_image_t a = {0}, b = {0};
  assert_int_equal(video_image_alloc(&a, 64, 48), 0);
  /* Left half black, right half white: stays so at any size (up to
   * the filter's rounding). */
  fill(&a, 16, 128, 128);
  for (int r = 0; r < 48; r++)
    memset(a.planes[0] + (size_t)r * a.strides[0] + 32, 235, 32);
  a.seq = 42;
  a.ts_us = 123456789;
  assert_int_equal(video_image_alloc(&b, 160, 120), 0);
  assert_int_equal(video_image_scale(&a, &b), 0);
  assert_int_equal(b.seq, 42);
  assert_int_equal(b.ts_us, 123456789);
  assert_in_range(b.planes[0][10 * b.strides[0] + 10], 14, 18);
  assert_in_range(b.planes[0][10 * b.strides[0] + 150], 233, 237);
  assert_int_equal(b.planes[1][5 * b.strides[1] + 5], 128);
  assert_int_equal(video_image_alloc(&b, 17, 9), 0);
  assert_int_equal(video_image_scale(&a, &b), 0);
  assert_in_range(b.planes[0][4 * b.strides[0] + 1], 14, 18);
  assert_in_range(b.planes[0][4 * b.strides[0] + 15], 233, 237);
  video_image_t empty = {0};
  assert_int_equal(video_image_scale(&empty, &b), -EINVAL);
  video_image_free(&a);
  video_image_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alloc),
      cmocka_unit_test(test_i420_round_trip),
      cmocka_unit_test(test_rgba_known_colours),
      cmocka_unit_test(test_scale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
