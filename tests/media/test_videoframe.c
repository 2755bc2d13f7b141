/* Tests of media/videoframe: known bytes, the strict whole-frame decoder's
 * refusals, and the stream parser over many splits of a stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "media/videoframe.h"

#include <stdlib.h>
#include <string.h>

static void test_known_bytes(void **state) {
  (void)state;
  const uint8_t data[2] = {0xaa, 0xbb};
  videoframe_t f = {0x01020304, 0x1112131415161718ull, true, 640, 480, 2, data};
  const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14,
                          0x15, 0x16, 0x17, 0x18, 0x01, 0x02, 0x80, 0x01,
                          0xe0, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb};
  uint8_t out[64];
  assert_int_equal(videoframe_encode_header(out, &f), VIDEOFRAME_HEADER_LEN);
  memcpy(out + VIDEOFRAME_HEADER_LEN, data, 2);
  assert_memory_equal(out, want, sizeof(want));

  videoframe_t g;
  assert_int_equal(videoframe_decode(want, sizeof(want), &g), 0);
  assert_int_equal(g.sequence, 0x01020304);
  assert_true(g.timestamp_us == 0x1112131415161718ull);
  assert_true(g.key_frame);
  assert_int_equal(g.width, 640);
  assert_int_equal(g.height, 480);
  assert_int_equal(g.len, 2);
  assert_ptr_equal(g.data, want + VIDEOFRAME_HEADER_LEN);
}

static void test_refusals(void **state) {
  (void)state;
  uint8_t buf[VIDEOFRAME_HEADER_LEN + 4];
  videoframe_t f = {1, 2, false, 320, 240, 4, NULL}, g;
  assert_int_equal(videoframe_encode_header(buf, &f), VIDEOFRAME_HEADER_LEN);
  memset(buf + VIDEOFRAME_HEADER_LEN, 7, 4);
  assert_int_equal(videoframe_decode(buf, sizeof(buf), &g), 0);
  assert_int_equal(videoframe_decode(buf, 20, &g), VIDEOFRAME_ERR_SHORT);
  assert_int_equal(videoframe_decode(buf, sizeof(buf) - 1, &g),
                   VIDEOFRAME_ERR_LENGTH);
  buf[12] = 0x02; /* unknown flag */
  assert_int_equal(videoframe_decode(buf, sizeof(buf), &g),
                   VIDEOFRAME_ERR_FIELD);
  buf[12] = 0;
  buf[13] = buf[14] = 0; /* width 0 */
  assert_int_equal(videoframe_decode(buf, sizeof(buf), &g),
                   VIDEOFRAME_ERR_FIELD);

  f.len = VIDEOFRAME_MAX_DATA + 1;
  assert_int_equal(videoframe_encode_header(buf, &f), VIDEOFRAME_ERR_TOO_LONG);
  f.len = 4;
  f.width = VIDEOFRAME_MAX_DIM + 1;
  assert_int_equal(videoframe_encode_header(buf, &f), VIDEOFRAME_ERR_FIELD);
}

typedef struct got {
  uint32_t seqs[16];
  size_t n;
  size_t bytes;
} got_t;

static int on_frame(const videoframe_t *f, void *user) {
  got_t *g = user;
  g->seqs[g->n++] = f->sequence;
  g->bytes += f->len;
  for (uint32_t i = 0; i < f->len; i++)
    assert_int_equal(f->data[i], (uint8_t)(f->sequence + i));
  return 0;
}

/* Three frames (one of 300 KiB, beyond the parser's first buffer) fed in
 * chunks of every size from 1 to 97 bytes and in one piece. */
static void test_parser_splits(void **state) {
  (void)state;
  const uint32_t lens[3] = {0, 300 * 1024, 17};
  size_t total = 0;
  for (int i = 0; i < 3; i++)
    total += VIDEOFRAME_HEADER_LEN + lens[i];
  uint8_t *s = malloc(total), *p = s;
  for (uint32_t i = 0; i < 3; i++) {
    videoframe_t f = {i + 10, i, i == 1, 64, 48, lens[i], NULL};
    p += videoframe_encode_header(p, &f);
    for (uint32_t k = 0; k < lens[i]; k++)
      *p++ = (uint8_t)(f.sequence + k);
  }
  for (size_t chunk = 1; chunk <= 97; chunk += (chunk < 8 ? 1 : 13)) {
    videoframe_parser_t vp;
    got_t g = {0};
    videoframe_parser_init(&vp);
    for (size_t off = 0; off < total; off += chunk) {
      size_t n = total - off < chunk ? total - off : chunk;
      assert_int_equal(videoframe_parser_feed(&vp, s + off, n, on_frame, &g),
                       0);
    }
    assert_int_equal(g.n, 3);
    assert_int_equal(g.seqs[0], 10);
    assert_int_equal(g.seqs[2], 12);
    assert_int_equal(g.bytes, lens[1] + lens[2]);
    assert_int_equal(videoframe_parser_pending(&vp), 0);
    videoframe_parser_free(&vp);
  }
  /* A cut-off stream leaves bytes pending. */
  videoframe_parser_t vp;
  got_t g = {0};
  videoframe_parser_init(&vp);
  assert_int_equal(videoframe_parser_feed(&vp, s, total - 5, on_frame, &g), 0);
  assert_int_equal(g.n, 2);
  assert_int_equal(videoframe_parser_pending(&vp),
                   VIDEOFRAME_HEADER_LEN + 17 - 5);
  videoframe_parser_free(&vp);
  free(s);
}

/* A bad header is sticky: the stream cannot be resynchronized. */
static void test_parser_sticky_error(void **state) {
  (void)state;
  uint8_t buf[VIDEOFRAME_HEADER_LEN];
  videoframe_t f = {1, 1, false, 16, 16, 0, NULL};
  videoframe_encode_header(buf, &f);
  buf[17] = 0xff; /* length 4 GiB */
  videoframe_parser_t vp;
  got_t g = {0};
  videoframe_parser_init(&vp);
  assert_int_equal(videoframe_parser_feed(&vp, buf, sizeof(buf), on_frame, &g),
                   VIDEOFRAME_ERR_TOO_LONG);
  assert_int_equal(videoframe_parser_feed(&vp, buf, 1, on_frame, &g),
                   VIDEOFRAME_ERR_TOO_LONG);
  assert_int_equal(g.n, 0);
  videoframe_parser_free(&vp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_bytes),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_parser_splits),
      cmocka_unit_test(test_parser_sticky_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
