/* Tests of media/audioframe: known bytes, round trips, the strict datagram
 * decoder's refusals, and the stream parser over every split of a stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "media/audioframe.h"

#include <stdlib.h>
#include <string.h>

static void test_known_bytes(void **state) {
  (void)state;
  const uint8_t data[3] = {0xaa, 0xbb, 0xcc};
  audioframe_t f = {0x01020304, 0x1112131415161718ull, 3, data};
  const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14, 0x15,
                          0x16, 0x17, 0x18, 0x00, 0x03, 0xaa, 0xbb, 0xcc};
  uint8_t out[64];
  assert_int_equal(audioframe_encode(out, sizeof(out), &f), sizeof(want));
  assert_memory_equal(out, want, sizeof(want));

  audioframe_t g;
  assert_int_equal(audioframe_decode(want, sizeof(want), &g), 0);
  assert_int_equal(g.sequence, 0x01020304);
  assert_true(g.timestamp_us == 0x1112131415161718ull);
  assert_int_equal(g.len, 3);
  assert_ptr_equal(g.data, want + 14);
}

static void test_round_trip(void **state) {
  (void)state;
  static uint8_t data[AUDIOFRAME_MAX_DATA];
  static uint8_t buf[AUDIOFRAME_MAX_LEN];
  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (uint8_t)(i * 7 + 1);
  const uint16_t lens[] = {0, 1, 2, 60, 1275, AUDIOFRAME_MAX_DATA};
  for (size_t k = 0; k < sizeof(lens) / sizeof(*lens); k++) {
    audioframe_t f = {0xffffffffu - (uint32_t)k, UINT64_MAX - k, lens[k], data};
    int n = audioframe_encode(buf, sizeof(buf), &f);
    assert_int_equal(n, AUDIOFRAME_HEADER_LEN + lens[k]);
    audioframe_t g;
    assert_int_equal(audioframe_decode(buf, (size_t)n, &g), 0);
    assert_int_equal(g.sequence, f.sequence);
    assert_true(g.timestamp_us == f.timestamp_us);
    assert_int_equal(g.len, f.len);
    if (f.len)
      assert_memory_equal(g.data, data, f.len);
  }
}

static void test_rejects(void **state) {
  (void)state;
  uint8_t data[AUDIOFRAME_MAX_DATA + 1] = {0};
  uint8_t buf[AUDIOFRAME_MAX_LEN + 8];
  audioframe_t f = {1, 2, 10, data}, g;

  /* Encoder: too long, no room. */
  f.len = AUDIOFRAME_MAX_DATA + 1;
  assert_int_equal(audioframe_encode(buf, sizeof(buf), &f),
                   AUDIOFRAME_ERR_TOO_LONG);
  f.len = 10;
  assert_int_equal(audioframe_encode(buf, 23, &f), AUDIOFRAME_ERR_SPACE);
  assert_int_equal(audioframe_encode(buf, 24, &f), 24);

  /* Decoder: every truncation, one byte too many, a wrong length field. */
  for (size_t n = 0; n < AUDIOFRAME_HEADER_LEN; n++)
    assert_int_equal(audioframe_decode(buf, n, &g), AUDIOFRAME_ERR_SHORT);
  for (size_t n = AUDIOFRAME_HEADER_LEN; n < 24; n++)
    assert_int_equal(audioframe_decode(buf, n, &g), AUDIOFRAME_ERR_LENGTH);
  assert_int_equal(audioframe_decode(buf, 25, &g), AUDIOFRAME_ERR_LENGTH);
  assert_int_equal(audioframe_decode(buf, 24, &g), 0);
  buf[12] = 0x05;
  buf[13] = 0xdd; /* 1501 */
  memset(buf + 14, 0, AUDIOFRAME_MAX_DATA + 1);
  assert_int_equal(audioframe_decode(buf, 14 + 1501, &g),
                   AUDIOFRAME_ERR_TOO_LONG);
  buf[12] = 0xff;
  buf[13] = 0xff;
  assert_int_equal(audioframe_decode(buf, 14, &g), AUDIOFRAME_ERR_TOO_LONG);
}

/* ---- Stream parser ---- */

typedef struct got {
  uint32_t seq[64];
  uint16_t len[64];
  size_t n;
  size_t stop_after; /* return 1 after this many frames (0: never) */
} got_t;

static int on_frame(const audioframe_t *f, void *user) {
  got_t *g = user;
  assert_true(g->n < 64);
  g->seq[g->n] = f->sequence;
  g->len[g->n] = f->len;
  /* The data must be the frame's own bytes: every byte = seq + index. */
  for (uint16_t i = 0; i < f->len; i++)
    assert_int_equal(f->data[i], (uint8_t)(f->sequence + i));
  g->n++;
  return g->stop_after && g->n == g->stop_after ? 1 : 0;
}

/* A stream of 6 frames of lengths 0, 1, 2, 13, 300, 1500. */
static size_t make_stream(uint8_t *out) {
  static const uint16_t lens[6] = {0, 1, 2, 13, 300, AUDIOFRAME_MAX_DATA};
  static uint8_t data[AUDIOFRAME_MAX_DATA];
  size_t n = 0;
  for (uint32_t k = 0; k < 6; k++) {
    for (size_t i = 0; i < lens[k]; i++)
      data[i] = (uint8_t)(k + 100 + i);
    audioframe_t f = {k + 100, 1000 * k, lens[k], data};
    n += (size_t)audioframe_encode(out + n, AUDIOFRAME_MAX_LEN, &f);
  }
  return n;
}

static void check_stream(const got_t *g) {
  static const uint16_t lens[6] = {0, 1, 2, 13, 300, AUDIOFRAME_MAX_DATA};
  assert_int_equal(g->n, 6);
  for (size_t k = 0; k < 6; k++) {
    assert_int_equal(g->seq[k], 100 + k);
    assert_int_equal(g->len[k], lens[k]);
  }
}

static void test_parser_splits(void **state) {
  (void)state;
  static uint8_t stream[6 * AUDIOFRAME_MAX_LEN];
  size_t n = make_stream(stream);
  audioframe_parser_t p;
  got_t g;

  /* Whole, byte by byte, and cut at every single position. */
  memset(&g, 0, sizeof(g));
  audioframe_parser_init(&p);
  assert_int_equal(audioframe_parser_feed(&p, stream, n, on_frame, &g), 0);
  check_stream(&g);
  assert_int_equal(audioframe_parser_pending(&p), 0);

  memset(&g, 0, sizeof(g));
  audioframe_parser_init(&p);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(audioframe_parser_feed(&p, stream + i, 1, on_frame, &g),
                     0);
  check_stream(&g);

  for (size_t cut = 0; cut <= n; cut += 7) {
    memset(&g, 0, sizeof(g));
    audioframe_parser_init(&p);
    assert_int_equal(audioframe_parser_feed(&p, stream, cut, on_frame, &g), 0);
    assert_int_equal(
        audioframe_parser_feed(&p, stream + cut, n - cut, on_frame, &g), 0);
    check_stream(&g);
    assert_true(p.frames == 6);
  }

  /* Random chunk sizes, including empty ones. */
  srand(7);
  for (int round = 0; round < 50; round++) {
    memset(&g, 0, sizeof(g));
    audioframe_parser_init(&p);
    size_t off = 0;
    while (off < n) {
      size_t c = (size_t)(rand() % 700);
      if (c > n - off)
        c = n - off;
      assert_int_equal(
          audioframe_parser_feed(&p, stream + off, c, on_frame, &g), 0);
      off += c;
    }
    check_stream(&g);
  }

  /* A stream cut mid-frame reports its pending bytes. */
  memset(&g, 0, sizeof(g));
  audioframe_parser_init(&p);
  assert_int_equal(audioframe_parser_feed(&p, stream, n - 5, on_frame, &g), 0);
  assert_int_equal(g.n, 5);
  assert_int_equal(audioframe_parser_pending(&p),
                   AUDIOFRAME_HEADER_LEN + AUDIOFRAME_MAX_DATA - 5);
}

static void test_parser_errors(void **state) {
  (void)state;
  static uint8_t stream[6 * AUDIOFRAME_MAX_LEN];
  size_t n = make_stream(stream);
  audioframe_parser_t p;
  got_t g;

  /* An absurd length after two good frames: error, sticky. */
  uint8_t bad[AUDIOFRAME_HEADER_LEN] = {0, 0, 0, 9, 0, 0,    0,
                                        0, 0, 0, 0, 0, 0x05, 0xdd};
  memset(&g, 0, sizeof(g));
  audioframe_parser_init(&p);
  assert_int_equal(
      audioframe_parser_feed(&p, stream, 14 + 0 + 14 + 1, on_frame, &g), 0);
  assert_int_equal(g.n, 2);
  assert_int_equal(audioframe_parser_feed(&p, bad, 13, on_frame, &g), 0);
  assert_int_equal(audioframe_parser_feed(&p, bad + 13, 1, on_frame, &g),
                   AUDIOFRAME_ERR_TOO_LONG);
  assert_int_equal(audioframe_parser_feed(&p, stream, n, on_frame, &g),
                   AUDIOFRAME_ERR_TOO_LONG);
  assert_int_equal(g.n, 2);

  /* A callback that stops: its value comes back, the parser is reusable. */
  memset(&g, 0, sizeof(g));
  g.stop_after = 3;
  audioframe_parser_init(&p);
  assert_int_equal(audioframe_parser_feed(&p, stream, n, on_frame, &g), 1);
  assert_int_equal(g.n, 3);
  assert_int_equal(audioframe_parser_pending(&p), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_bytes),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_parser_splits),
      cmocka_unit_test(test_parser_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
