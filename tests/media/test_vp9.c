/* Tests of media/vp9_codec: round trip quality on the test pattern, the
 * produced bitrate, key frames (interval, forced, header parsing), size
 * changes through reconfigure, and what the decoder does with damaged
 * packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "device/vpattern.h"
#include "media/video.h"
#include "media/vp9_codec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Luma + chroma PSNR over the three planes, weighted by their sizes. */
static double psnr(const video_image_t *a, const video_image_t *b) {
  assert_int_equal(a->width, b->width);
  assert_int_equal(a->height, b->height);
  double se = 0;
  size_t n = 0;
  for (int p = 0; p < 3; p++) {
    int w = p ? (a->width + 1) / 2 : a->width;
    int h = p ? (a->height + 1) / 2 : a->height;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        int d = a->planes[p][(size_t)y * a->strides[p] + x] -
                b->planes[p][(size_t)y * b->strides[p] + x];
        se += d * d;
      }
    n += (size_t)w * h;
  }
  if (se == 0)
    return 99;
  return 10 * log10(255.0 * 255.0 / (se / n));
}

typedef struct packet {
  uint8_t *data;
  size_t len;
  bool key;
} packet_t;

/* Encodes pattern pictures first..first+n-1 at w x h into pkts. */
static void encode_pattern(vp9_enc_t *e, int w, int h, uint32_t first, int n,
                           packet_t *pkts) {
  video_image_t img = {0};
  assert_int_equal(video_image_alloc(&img, w, h), 0);
  for (int i = 0; i < n; i++) {
    vpattern_draw(&img, first + (uint32_t)i);
    const uint8_t *out;
    size_t len;
    bool key;
    assert_int_equal(vp9_enc_encode(e, &img, false, &out, &len, &key), 0);
    assert_true(len > 0); /* rc_dropframe_thresh 0: never dropped */
    pkts[i].data = malloc(len);
    memcpy(pkts[i].data, out, len);
    pkts[i].len = len;
    pkts[i].key = key;
    assert_true(key == vp9_is_key_frame(out, len));
  }
  video_image_free(&img);
}

static void free_packets(packet_t *pkts, int n) {
  for (int i = 0; i < n; i++)
    free(pkts[i].data);
}

static void test_round_trip_psnr(void **state) {
  (void)state;
  vp9_enc_config_t cfg = vp9_enc_config_default();
  assert_int_equal(cfg.width, 640);
  assert_int_equal(cfg.height, 480);
  assert_int_equal(cfg.bitrate_kbps, 1000);
  vp9_enc_t *e = vp9_enc_new(&cfg);
  vp9_dec_t *d = vp9_dec_new(0);
  assert_non_null(e);
  assert_non_null(d);
  enum { N = 48 };
  packet_t pkts[N];
  encode_pattern(e, 640, 480, 0, N, pkts);
  video_image_t ref = {0}, out = {0};
  assert_int_equal(video_image_alloc(&ref, 640, 480), 0);
  double worst = 99, sum = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(vp9_dec_decode(d, pkts[i].data, pkts[i].len, &out), 1);
    assert_int_equal(out.width, 640);
    assert_int_equal(out.height, 480);
    vpattern_draw(&ref, (uint32_t)i);
    double q = psnr(&ref, &out);
    sum += q;
    if (q < worst)
      worst = q;
    uint32_t idx;
    assert_int_equal(vpattern_read_index(&out, &idx), 0);
    assert_int_equal(idx, (uint32_t)i);
  }
  printf("# 640x480 @ 1000 kbps: PSNR mean %.2f dB, worst %.2f dB\n", sum / N,
         worst);
  assert_true(worst >= 35.0);
  free_packets(pkts, N);
  video_image_free(&ref);
  video_image_free(&out);
  vp9_dec_free(d);
  vp9_enc_free(e);
}

static void test_bitrate(void **state) {
  (void)state;
  static const int rates[] = {300, 1000, 2000};
  for (size_t r = 0; r < sizeof(rates) / sizeof(*rates); r++) {
    vp9_enc_config_t cfg = vp9_enc_config_default();
    cfg.bitrate_kbps = rates[r];
    vp9_enc_t *e = vp9_enc_new(&cfg);
    assert_non_null(e);
    enum { N = 48 };
    packet_t pkts[N];
    encode_pattern(e, 640, 480, 0, N, pkts);
    size_t bytes = 0;
    for (int i = 0; i < N; i++)
      bytes += pkts[i].len;
    double kbps = bytes * 8.0 / (N / 24.0) / 1000;
    printf("# target %d kbps: %.0f kbps over %d frames (key frame %zu "
           "bytes)\n",
           rates[r], kbps, N, pkts[0].len);
    assert_true(kbps >= rates[r] * 0.7 && kbps <= rates[r] * 1.3);
    free_packets(pkts, N);
    vp9_enc_free(e);
  }
}

static void test_keyframes(void **state) {
  (void)state;
  vp9_enc_config_t cfg = vp9_enc_config_default();
  cfg.width = 320;
  cfg.height = 240;
  cfg.keyframe_interval = 10;
  vp9_enc_t *e = vp9_enc_new(&cfg);
  assert_non_null(e);
  video_image_t img = {0};
  assert_int_equal(video_image_alloc(&img, 320, 240), 0);
  for (int i = 0; i < 35; i++) {
    vpattern_draw(&img, (uint32_t)i);
    bool force = i == 13;
    const uint8_t *out;
    size_t len;
    bool key;
    assert_int_equal(vp9_enc_encode(e, &img, force, &out, &len, &key), 0);
    /* 0, 10, forced 13, then the interval counts from there: 23, 33 */
    bool expect = i == 0 || i == 10 || i == 13 || i == 23 || i == 33;
    assert_int_equal(key, expect);
    assert_int_equal(vp9_is_key_frame(out, len), expect);
  }
  video_image_free(&img);
  vp9_enc_free(e);
}

static void test_is_key_frame_header(void **state) {
  (void)state;
  /* frame_marker 2, profile 0, show_existing 0, frame_type 0, show 1,
   * error_res 0, sync code 49 83 42 */
  const uint8_t key[] = {0x82, 0x49, 0x83, 0x42, 0x00};
  assert_true(vp9_is_key_frame(key, sizeof(key)));
  const uint8_t inter[] = {0x86, 0x49, 0x83, 0x42, 0x00}; /* frame_type 1 */
  assert_false(vp9_is_key_frame(inter, sizeof(inter)));
  const uint8_t existing[] = {0x88, 0x00, 0x00, 0x00}; /* show_existing */
  assert_false(vp9_is_key_frame(existing, sizeof(existing)));
  const uint8_t marker[] = {0x42, 0x49, 0x83, 0x42, 0x00}; /* marker 1 */
  assert_false(vp9_is_key_frame(marker, sizeof(marker)));
  const uint8_t nosync[] = {0x82, 0x49, 0x83, 0x43, 0x00};
  assert_false(vp9_is_key_frame(nosync, sizeof(nosync)));
  /* profile 1 (low bit set): 10 1 0 0 0 1 0 | sync shifted by one bit */
  const uint8_t p1[] = {0xa2, 0x49, 0x83, 0x42, 0x00};
  assert_true(vp9_is_key_frame(p1, sizeof(p1)));
  assert_false(vp9_is_key_frame(key, 3));
  assert_false(vp9_is_key_frame(NULL, 0));
}

static void test_resize(void **state) {
  (void)state;
  vp9_enc_config_t cfg = vp9_enc_config_default();
  vp9_enc_t *e = vp9_enc_new(&cfg);
  vp9_dec_t *d = vp9_dec_new(0);
  assert_non_null(e);
  assert_non_null(d);
  static const int sizes[][3] = {
      {640, 480, 1000}, {320, 240, 300}, {1280, 720, 2000}, {640, 480, 800}};
  video_image_t img = {0}, out = {0}, ref = {0};
  uint32_t n = 0;
  for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
    int w = sizes[s][0], h = sizes[s][1];
    if (s > 0)
      assert_int_equal(vp9_enc_reconfigure(e, w, h, sizes[s][2]), 0);
    int gw, gh;
    vp9_enc_get_size(e, &gw, &gh);
    assert_int_equal(gw, w);
    assert_int_equal(gh, h);
    assert_int_equal(video_image_alloc(&img, w, h), 0);
    assert_int_equal(video_image_alloc(&ref, w, h), 0);
    /* A picture of the old size is refused. */
    if (s > 0) {
      video_image_t old = {0};
      assert_int_equal(
          video_image_alloc(&old, sizes[s - 1][0], sizes[s - 1][1]), 0);
      const uint8_t *o;
      size_t l;
      bool k;
      assert_int_equal(vp9_enc_encode(e, &old, false, &o, &l, &k), -EINVAL);
      video_image_free(&old);
    }
    for (int i = 0; i < 12; i++, n++) {
      vpattern_draw(&img, n);
      const uint8_t *pkt;
      size_t len;
      bool key;
      assert_int_equal(vp9_enc_encode(e, &img, false, &pkt, &len, &key), 0);
      assert_int_equal(key, i == 0); /* a new size starts with a key frame */
      assert_int_equal(vp9_dec_decode(d, pkt, len, &out), 1);
      assert_int_equal(out.width, w);
      assert_int_equal(out.height, h);
      vpattern_draw(&ref, n);
      if (i == 11) {
        printf("# %dx%d @ %d kbps: PSNR %.2f dB\n", w, h, sizes[s][2],
               psnr(&ref, &out));
        assert_true(psnr(&ref, &out) >= 30.0);
      }
    }
  }
  assert_int_equal(vp9_enc_reconfigure(e, 1, 480, 1000), -EINVAL);
  assert_int_equal(vp9_enc_reconfigure(e, 640, 480, 0), -EINVAL);
  video_image_free(&img);
  video_image_free(&ref);
  video_image_free(&out);
  vp9_dec_free(d);
  vp9_enc_free(e);
}

/* Damaged packets. libvpx 1.12 fails vpx_codec_decode on a VP9 frame cut
 * in half (VPX_CODEC_CORRUPT_FRAME); the wrapper returns -EIO and leaves
 * out untouched. libvpx then refuses the following inter frames on its own
 * (CORRUPT_FRAME again: it wants a key or intra-only frame to resync);
 * the wrapper refuses them too, before libvpx sees them, so callers get
 * -EIO for every inter frame until a key frame, which decodes cleanly. */
static void test_corrupt(void **state) {
  (void)state;
  vp9_enc_config_t cfg = vp9_enc_config_default();
  cfg.width = 320;
  cfg.height = 240;
  cfg.keyframe_interval = 1000;
  vp9_enc_t *e = vp9_enc_new(&cfg);
  assert_non_null(e);
  enum { N = 12 };
  packet_t pkts[N];
  video_image_t img = {0};
  assert_int_equal(video_image_alloc(&img, 320, 240), 0);
  for (int i = 0; i < N; i++) {
    vpattern_draw(&img, (uint32_t)i);
    const uint8_t *out;
    size_t len;
    bool key;
    assert_int_equal(vp9_enc_encode(e, &img, i == 8, &out, &len, &key), 0);
    pkts[i].data = malloc(len);
    memcpy(pkts[i].data, out, len);
    pkts[i].len = len;
    pkts[i].key = key;
    assert_int_equal(key, i == 0 || i == 8);
  }
  vp9_dec_t *d = vp9_dec_new(1);
  assert_non_null(d);
  video_image_t out = {0};
  for (int i = 0; i < 3; i++)
    assert_int_equal(vp9_dec_decode(d, pkts[i].data, pkts[i].len, &out), 1);
  out.seq = 77;
  uint8_t *before = malloc(video_i420_size(320, 240));
  video_image_to_i420(&out, before);
  /* Frame 3 cut in half. */
  assert_int_equal(vp9_dec_decode(d, pkts[3].data, pkts[3].len / 2, &out),
                   -EIO);
  uint8_t *after = malloc(video_i420_size(320, 240));
  video_image_to_i420(&out, after);
  assert_memory_equal(before, after, video_i420_size(320, 240));
  assert_int_equal(out.seq, 77);
  for (int i = 4; i < 8; i++)
    assert_int_equal(vp9_dec_decode(d, pkts[i].data, pkts[i].len, &out), -EIO);
  for (int i = 8; i < N; i++)
    assert_int_equal(vp9_dec_decode(d, pkts[i].data, pkts[i].len, &out), 1);
  /* Garbage and empty packets. */
  uint8_t junk[200];
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (uint8_t)(i * 37 + 11);
  assert_int_equal(vp9_dec_decode(d, junk, sizeof(junk), &out), -EIO);
  assert_int_equal(vp9_dec_decode(d, junk, 0, &out), -EIO);
  free(before);
  free(after);
  free_packets(pkts, N);
  video_image_free(&img);
  video_image_free(&out);
  vp9_dec_free(d);
  vp9_enc_free(e);
}

static uint32_t get_bits(const uint8_t *d, size_t bit, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; i++, bit++)
    v = v << 1 | ((d[bit >> 3] >> (7 - (bit & 7))) & 1u);
  return v;
}

static void put_bits(uint8_t *d, size_t bit, int n, uint32_t v) {
  for (int i = n - 1; i >= 0; i--, bit++) {
    uint8_t m = (uint8_t)(0x80 >> (bit & 7));
    d[bit >> 3] = (uint8_t)((v >> i) & 1 ? d[bit >> 3] | m : d[bit >> 3] & ~m);
  }
}

/* A key frame stating a size beyond VIDEO_MAX_* is refused before libvpx
 * allocates for it. Profile 0 key frame: 8 header bits, the 24-bit sync
 * code, color_space (3) and color_range (1), then width-1 and height-1 in
 * 16 bits each, at bit 36. */
static void test_oversize(void **state) {
  (void)state;
  vp9_enc_config_t cfg = vp9_enc_config_default();
  vp9_enc_t *e = vp9_enc_new(&cfg);
  assert_non_null(e);
  packet_t pkt;
  encode_pattern(e, 640, 480, 0, 1, &pkt);
  assert_true(pkt.key);
  assert_int_equal(get_bits(pkt.data, 36, 16), 639);
  assert_int_equal(get_bits(pkt.data, 52, 16), 479);
  vp9_dec_t *d = vp9_dec_new(1);
  video_image_t out = {0};
  put_bits(pkt.data, 36, 16, 3999);
  assert_int_equal(vp9_dec_decode(d, pkt.data, pkt.len, &out), -EIO);
  assert_null(out.buf);
  put_bits(pkt.data, 36, 16, 639);
  put_bits(pkt.data, 52, 16, 60000);
  assert_int_equal(vp9_dec_decode(d, pkt.data, pkt.len, &out), -EIO);
  put_bits(pkt.data, 52, 16, 479);
  assert_int_equal(vp9_dec_decode(d, pkt.data, pkt.len, &out), 1);
  assert_int_equal(out.width, 640);
  free_packets(&pkt, 1);
  video_image_free(&out);
  vp9_dec_free(d);
  vp9_enc_free(e);
}

/* Odd sizes: chroma planes of (w + 1) / 2 columns go through intact. */
static void test_odd_size(void **state) {
  (void)state;
  vp9_enc_config_t cfg = vp9_enc_config_default();
  cfg.width = 161;
  cfg.height = 121;
  cfg.bitrate_kbps = 400;
  vp9_enc_t *e = vp9_enc_new(&cfg);
  vp9_dec_t *d = vp9_dec_new(1);
  assert_non_null(e);
  assert_non_null(d);
  enum { N = 6 };
  packet_t pkts[N];
  encode_pattern(e, 161, 121, 0, N, pkts);
  video_image_t out = {0}, ref = {0};
  assert_int_equal(video_image_alloc(&ref, 161, 121), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(vp9_dec_decode(d, pkts[i].data, pkts[i].len, &out), 1);
    assert_int_equal(out.width, 161);
    assert_int_equal(out.height, 121);
    assert_int_equal(out.strides[1], 81);
    vpattern_draw(&ref, (uint32_t)i);
    assert_true(psnr(&ref, &out) >= 30.0);
  }
  free_packets(pkts, N);
  video_image_free(&out);
  video_image_free(&ref);
  vp9_dec_free(d);
  vp9_enc_free(e);
}

static void test_bad_config(void **state) {
  (void)state;
  vp9_enc_config_t cfg = vp9_enc_config_default();
  cfg.width = 0;
  assert_null(vp9_enc_new(&cfg));
  cfg = vp9_enc_config_default();
  cfg.keyframe_interval = 0;
  assert_null(vp9_enc_new(&cfg));
  cfg = vp9_enc_config_default();
  cfg.width = 4000;
  assert_null(vp9_enc_new(&cfg));
  assert_null(vp9_dec_new(-1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_psnr),
      cmocka_unit_test(test_bitrate),
      cmocka_unit_test(test_keyframes),
      cmocka_unit_test(test_is_key_frame_header),
      cmocka_unit_test(test_resize),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_odd_size),
      cmocka_unit_test(test_bad_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
