/* Tests of signal/envelope: the parser's checks one by one, truncation at
 * every length, trailing bytes, the writer refusing what the parser would,
 * the stream's length prefix and the ack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"
#include "signal/envelope.h"

#include <stdlib.h>
#include <string.h>

static uint8_t sender[32], ek[32], dh[32], nonce[ENVELOPE_NONCE_LEN];

/* A valid envelope with a ct_len-byte ciphertext of 0xcc. */
static size_t build(uint8_t *buf, uint8_t type, uint8_t role, uint32_t pn,
                    uint32_t ct_len) {
  memset(sender, 0x11, 32);
  memset(ek, 0x22, 32);
  memset(dh, 0x33, 32);
  memset(nonce, 0x44, sizeof(nonce));
  envelope_fields_t f = {.type = type,
                         .sender = sender,
                         .ek = ek,
                         .dh = dh,
                         .nonce = nonce,
                         .epoch = 7,
                         .role = role,
                         .pn = pn,
                         .n = 9,
                         .ct_len = ct_len};
  assert_int_equal(envelope_write_header(buf, &f), 0);
  memset(buf + ENVELOPE_HEADER_LEN, 0xcc, ct_len);
  return ENVELOPE_HEADER_LEN + ct_len;
}

static void test_round_trip(void **state) {
  uint8_t buf[ENVELOPE_HEADER_LEN + 40];
  envelope_t e;
  size_t len = build(buf, ENVELOPE_NORMAL, ENVELOPE_ROLE_RECIPIENT, 3, 40);
  assert_int_equal(envelope_parse(&e, buf, len), 0);
  assert_int_equal(e.type, ENVELOPE_NORMAL);
  assert_int_equal(e.role, ENVELOPE_ROLE_RECIPIENT);
  assert_int_equal(e.epoch, 7);
  assert_int_equal(e.pn, 3);
  assert_int_equal(e.n, 9);
  assert_int_equal(e.ct_len, 40);
  assert_memory_equal(e.sender, sender, 32);
  assert_memory_equal(e.ek, ek, 32);
  assert_memory_equal(e.dh, dh, 32);
  assert_memory_equal(e.nonce, nonce, sizeof(nonce));
  assert_ptr_equal(e.ciphertext, buf + ENVELOPE_HEADER_LEN);
  assert_ptr_equal(e.header, buf);
  /* The documented offsets. */
  assert_int_equal(buf[0], 1);
  assert_int_equal(be32_get(buf + 34), 7);
  assert_int_equal(buf[38], 1);
  assert_int_equal(be32_get(buf + 103), 3);
  assert_int_equal(be32_get(buf + 107), 9);
  assert_int_equal(buf[111], 0x44);
  assert_int_equal(be32_get(buf + 135), 40);
}

static void test_truncated_at_every_length(void **state) {
  uint8_t buf[ENVELOPE_HEADER_LEN + 20];
  envelope_t e;
  size_t len = build(buf, ENVELOPE_INITIAL, ENVELOPE_ROLE_SENDER, 0, 20);
  assert_int_equal(envelope_parse(&e, buf, 0), ENVELOPE_ERR_EMPTY);
  for (size_t cut = 1; cut < len; cut++) {
    int want = cut < ENVELOPE_HEADER_LEN ? ENVELOPE_ERR_SHORT_HEADER
                                         : ENVELOPE_ERR_TRUNCATED;
    assert_int_equal(envelope_parse(&e, buf, cut), want);
  }
  assert_int_equal(envelope_parse(&e, buf, len), 0);
}

static void test_trailing(void **state) {
  uint8_t buf[ENVELOPE_HEADER_LEN + 21];
  envelope_t e;
  size_t len = build(buf, ENVELOPE_NORMAL, ENVELOPE_ROLE_SENDER, 0, 20);
  buf[len] = 0;
  assert_int_equal(envelope_parse(&e, buf, len + 1), ENVELOPE_ERR_TRAILING);
}

static void test_each_field(void **state) {
  uint8_t buf[ENVELOPE_HEADER_LEN + 16];
  envelope_t e;
  size_t len;
#define MUTATE(stmt, err)                                                      \
  do {                                                                         \
    len = build(buf, ENVELOPE_NORMAL, ENVELOPE_ROLE_SENDER, 5, 16);            \
    stmt;                                                                      \
    assert_int_equal(envelope_parse(&e, buf, len), err);                       \
  } while (0)
  MUTATE(buf[0] = 2, ENVELOPE_ERR_VERSION);
  MUTATE(buf[0] = 0, ENVELOPE_ERR_VERSION);
  MUTATE(buf[1] = 0, ENVELOPE_ERR_TYPE);
  MUTATE(buf[1] = 3, ENVELOPE_ERR_TYPE);
  MUTATE(be32_put(buf + 34, 0), ENVELOPE_ERR_EPOCH);
  MUTATE(buf[38] = 2, ENVELOPE_ERR_ROLE);
  MUTATE((buf[1] = ENVELOPE_INITIAL, buf[38] = 1), ENVELOPE_ERR_INITIAL_ROLE);
  MUTATE((buf[1] = ENVELOPE_INITIAL, buf[38] = 0), ENVELOPE_ERR_INITIAL_PN);
  MUTATE(be32_put(buf + 135, 15), ENVELOPE_ERR_CT_SHORT);
  MUTATE(be32_put(buf + 135, ENVELOPE_CT_MAX + 1), ENVELOPE_ERR_CT_LONG);
  MUTATE(be32_put(buf + 135, UINT32_MAX), ENVELOPE_ERR_CT_LONG);
  MUTATE(be32_put(buf + 135, 17), ENVELOPE_ERR_TRUNCATED);
#undef MUTATE
  uint8_t *big = calloc(1, ENVELOPE_MAX + 1);
  big[0] = 1;
  assert_int_equal(envelope_parse(&e, big, ENVELOPE_MAX + 1),
                   ENVELOPE_ERR_TOO_LONG);
  /* The largest envelope parses. */
  size_t max_len =
      build(big, ENVELOPE_NORMAL, ENVELOPE_ROLE_SENDER, 0, ENVELOPE_CT_MAX);
  assert_int_equal(max_len, ENVELOPE_MAX);
  assert_int_equal(envelope_parse(&e, big, max_len), 0);
  free(big);
}

static void test_writer_refuses(void **state) {
  uint8_t buf[ENVELOPE_HEADER_LEN];
  uint8_t k[32] = {0}, n[24] = {0};
  envelope_fields_t f = {.type = ENVELOPE_INITIAL,
                         .sender = k,
                         .ek = k,
                         .dh = k,
                         .nonce = n,
                         .epoch = 1,
                         .role = ENVELOPE_ROLE_SENDER,
                         .ct_len = 16};
  assert_int_equal(envelope_write_header(buf, &f), 0);
  f.pn = 1;
  assert_int_equal(envelope_write_header(buf, &f), ENVELOPE_ERR_INITIAL_PN);
  f.pn = 0;
  f.role = ENVELOPE_ROLE_RECIPIENT;
  assert_int_equal(envelope_write_header(buf, &f), ENVELOPE_ERR_INITIAL_ROLE);
  f.type = ENVELOPE_NORMAL;
  f.epoch = 0;
  assert_int_equal(envelope_write_header(buf, &f), ENVELOPE_ERR_EPOCH);
  f.epoch = 1;
  f.ct_len = 15;
  assert_int_equal(envelope_write_header(buf, &f), ENVELOPE_ERR_CT_SHORT);
  f.ct_len = ENVELOPE_CT_MAX + 1;
  assert_int_equal(envelope_write_header(buf, &f), ENVELOPE_ERR_CT_LONG);
  f.ct_len = 16;
  f.type = 9;
  assert_int_equal(envelope_write_header(buf, &f), ENVELOPE_ERR_TYPE);
}

static void test_prefix(void **state) {
  uint8_t p[4];
  uint32_t len;
  assert_int_equal(envelope_prefix_encode(p, 300), 0);
  assert_memory_equal(p, "\x00\x00\x01\x2c", 4);
  assert_int_equal(envelope_prefix_decode(p, &len), 0);
  assert_int_equal(len, 300);
  assert_int_equal(envelope_prefix_encode(p, 0), ENVELOPE_ERR_PREFIX_ZERO);
  assert_int_equal(envelope_prefix_encode(p, ENVELOPE_MAX + 1),
                   ENVELOPE_ERR_PREFIX_LONG);
  assert_int_equal(envelope_prefix_encode(p, ENVELOPE_MAX), 0);
  assert_int_equal(envelope_prefix_decode(p, &len), 0);
  assert_int_equal(len, ENVELOPE_MAX);
  be32_put(p, 0);
  assert_int_equal(envelope_prefix_decode(p, &len), ENVELOPE_ERR_PREFIX_ZERO);
  be32_put(p, ENVELOPE_MAX + 1);
  assert_int_equal(envelope_prefix_decode(p, &len), ENVELOPE_ERR_PREFIX_LONG);
}

static void test_ack(void **state) {
  uint8_t a[ENVELOPE_ACK_LEN + 1];
  enum envelope_ack_status st;
  uint32_t reason;
  assert_int_equal(envelope_ack_encode(a, ENVELOPE_ACK_RETRY, 43), 0);
  assert_memory_equal(a, "\x01\x02\x00\x00\x00\x2b", 6);
  assert_int_equal(envelope_ack_decode(a, 6, &st, &reason), 0);
  assert_int_equal(st, ENVELOPE_ACK_RETRY);
  assert_int_equal(reason, 43);
  for (size_t cut = 0; cut < 6; cut++)
    assert_int_equal(envelope_ack_decode(a, cut, &st, &reason),
                     ENVELOPE_ERR_ACK_LEN);
  assert_int_equal(envelope_ack_decode(a, 7, &st, &reason),
                   ENVELOPE_ERR_ACK_LEN);
  a[1] = 4;
  assert_int_equal(envelope_ack_decode(a, 6, &st, &reason),
                   ENVELOPE_ERR_ACK_STATUS);
  a[0] = 2;
  assert_int_equal(envelope_ack_decode(a, 6, &st, &reason),
                   ENVELOPE_ERR_ACK_VERSION);
  assert_int_equal(envelope_ack_encode(a, (enum envelope_ack_status)4, 0),
                   ENVELOPE_ERR_ACK_STATUS);
}

/* Every error has its own reason string. */
static void test_reasons_distinct(void **state) {
  for (int a = ENVELOPE_ERR_ACK_STATUS; a <= ENVELOPE_ERR_EMPTY; a++) {
    assert_string_not_equal(envelope_strerror(a), "unknown error");
    for (int b = a + 1; b <= ENVELOPE_ERR_EMPTY; b++)
      assert_string_not_equal(envelope_strerror(a), envelope_strerror(b));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_truncated_at_every_length),
      cmocka_unit_test(test_trailing),
      cmocka_unit_test(test_each_field),
      cmocka_unit_test(test_writer_refuses),
      cmocka_unit_test(test_prefix),
      cmocka_unit_test(test_ack),
      cmocka_unit_test(test_reasons_distinct),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
