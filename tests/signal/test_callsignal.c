/* Tests of signal/callsignal: known-answer bytes of every kind, round
 * trips, truncation at every length, trailing bytes, each invalid field, and
 * an encoder that refuses what the decoder would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"
#include "signal/callsignal.h"

#include <string.h>

static callsignal_t offer(void) {
  callsignal_t cs;
  memset(&cs, 0, sizeof(cs));
  cs.kind = CALLSIGNAL_OFFER;
  strcpy(cs.call_id, "call-0001");
  cs.audio_codec = AUDIO_CODEC_OPUS48K;
  cs.video = true;
  cs.transport = MEDIA_TRANSPORT_DATAGRAM;
  for (int i = 0; i < 32; i++)
    cs.call_secret[i] = (uint8_t)(0xc0 + i);
  return cs;
}

static callsignal_t make(enum callsignal_kind kind) {
  callsignal_t cs = offer();
  cs.kind = kind;
  switch (kind) {
  case CALLSIGNAL_ANSWER:
    cs.audio_codec = AUDIO_CODEC_OPUS24K;
    cs.video = false;
    cs.transport = MEDIA_TRANSPORT_STREAM;
    break;
  case CALLSIGNAL_REJECT:
    strcpy(cs.reason, "busy");
    break;
  case CALLSIGNAL_ICE_CANDIDATE:
    strcpy(cs.candidate, "candidate:1 1 udp 1 192.0.2.1 7761 typ host");
    break;
  default:
    break;
  }
  return cs;
}

/* The exact bytes docs/protocol.md shows, one per kind. */
static const struct {
  enum callsignal_kind kind;
  const char *hex;
} kat[] = {
    {CALLSIGNAL_OFFER,
     "010109"
     "63616c6c2d30303031"
     "010101"
     "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"},
    {CALLSIGNAL_ANSWER, "010209"
                        "63616c6c2d30303031"
                        "020002"},
    {CALLSIGNAL_REJECT, "010309"
                        "63616c6c2d30303031"
                        "04"
                        "62757379"},
    {CALLSIGNAL_END, "010409"
                     "63616c6c2d30303031"},
    {CALLSIGNAL_ICE_CANDIDATE,
     "010509"
     "63616c6c2d30303031"
     "002b"
     "63616e6469646174653a312031207564702031203139322e302e322e31203737"
     "36312074797020686f7374"},
};

static void test_known_answers(void **state) {
  uint8_t buf[CALLSIGNAL_ENCODED_MAX], want[CALLSIGNAL_ENCODED_MAX];
  size_t len;
  for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
    callsignal_t cs = make(kat[i].kind), back;
    assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len), 0);
    size_t want_len = strlen(kat[i].hex) / 2;
    assert_int_equal(hex_decode(want, want_len, kat[i].hex, 2 * want_len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, len);
    assert_int_equal(callsignal_decode(&back, buf, len), 0);
    assert_int_equal(back.kind, cs.kind);
    assert_string_equal(back.call_id, cs.call_id);
    if (cs.kind == CALLSIGNAL_OFFER || cs.kind == CALLSIGNAL_ANSWER) {
      assert_int_equal(back.audio_codec, cs.audio_codec);
      assert_int_equal(back.video, cs.video);
      assert_int_equal(back.transport, cs.transport);
    }
    if (cs.kind == CALLSIGNAL_OFFER)
      assert_memory_equal(back.call_secret, cs.call_secret, 32);
    if (cs.kind == CALLSIGNAL_REJECT)
      assert_string_equal(back.reason, "busy");
    if (cs.kind == CALLSIGNAL_ICE_CANDIDATE)
      assert_string_equal(back.candidate, cs.candidate);
  }
}

static void test_truncated_and_trailing(void **state) {
  uint8_t buf[CALLSIGNAL_ENCODED_MAX + 1];
  size_t len;
  callsignal_t back;
  for (int k = CALLSIGNAL_OFFER; k <= CALLSIGNAL_ICE_CANDIDATE; k++) {
    callsignal_t cs = make((enum callsignal_kind)k);
    assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len), 0);
    assert_int_equal(callsignal_decode(&back, buf, 0), CALLSIGNAL_ERR_EMPTY);
    for (size_t cut = 1; cut < len; cut++) {
      assert_int_equal(callsignal_decode(&back, buf, cut),
                       CALLSIGNAL_ERR_TRUNCATED);
      assert_int_equal(back.kind, 0); /* zeroed on error */
    }
    buf[len] = 0x20;
    assert_int_equal(callsignal_decode(&back, buf, len + 1),
                     CALLSIGNAL_ERR_TRAILING);
  }
}

static void test_bad_fields(void **state) {
  uint8_t buf[CALLSIGNAL_ENCODED_MAX];
  size_t len;
  callsignal_t back;
#define MUTATE(kind, stmt, err)                                                \
  do {                                                                         \
    callsignal_t cs = make(kind);                                              \
    assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len), 0);       \
    stmt;                                                                      \
    assert_int_equal(callsignal_decode(&back, buf, len), err);                 \
  } while (0)
  MUTATE(CALLSIGNAL_END, buf[0] = 0, CALLSIGNAL_ERR_VERSION);
  MUTATE(CALLSIGNAL_END, buf[0] = 2, CALLSIGNAL_ERR_VERSION);
  MUTATE(CALLSIGNAL_END, buf[1] = 0, CALLSIGNAL_ERR_KIND);
  MUTATE(CALLSIGNAL_END, buf[1] = 6, CALLSIGNAL_ERR_KIND);
  MUTATE(CALLSIGNAL_END, buf[2] = 0, CALLSIGNAL_ERR_CALL_ID_LEN);
  MUTATE(CALLSIGNAL_END, buf[2] = 65, CALLSIGNAL_ERR_CALL_ID_LEN);
  MUTATE(CALLSIGNAL_END, buf[3] = ' ', CALLSIGNAL_ERR_CALL_ID_CHAR);
  MUTATE(CALLSIGNAL_END, buf[3] = 0x7f, CALLSIGNAL_ERR_CALL_ID_CHAR);
  MUTATE(CALLSIGNAL_END, buf[3] = 0, CALLSIGNAL_ERR_CALL_ID_CHAR);
  MUTATE(CALLSIGNAL_OFFER, buf[12] = 0, CALLSIGNAL_ERR_CODEC);
  MUTATE(CALLSIGNAL_OFFER, buf[12] = 3, CALLSIGNAL_ERR_CODEC);
  MUTATE(CALLSIGNAL_OFFER, buf[13] = 2, CALLSIGNAL_ERR_VIDEO);
  MUTATE(CALLSIGNAL_ANSWER, buf[14] = 0, CALLSIGNAL_ERR_TRANSPORT);
  MUTATE(CALLSIGNAL_ANSWER, buf[14] = 3, CALLSIGNAL_ERR_TRANSPORT);
  MUTATE(CALLSIGNAL_REJECT, (buf[12] = 129, len = 13 + 129),
         CALLSIGNAL_ERR_REASON_LEN);
  MUTATE(CALLSIGNAL_REJECT, buf[13] = '\n', CALLSIGNAL_ERR_REASON_CHAR);
  MUTATE(CALLSIGNAL_ICE_CANDIDATE, be16_put(buf + 12, 0),
         CALLSIGNAL_ERR_CANDIDATE_LEN);
  MUTATE(CALLSIGNAL_ICE_CANDIDATE, be16_put(buf + 12, 513),
         CALLSIGNAL_ERR_CANDIDATE_LEN);
  MUTATE(CALLSIGNAL_ICE_CANDIDATE, buf[14] = 0x80,
         CALLSIGNAL_ERR_CANDIDATE_CHAR);
#undef MUTATE
}

static void test_limits(void **state) {
  uint8_t buf[CALLSIGNAL_ENCODED_MAX];
  size_t len;
  callsignal_t cs = make(CALLSIGNAL_ICE_CANDIDATE), back;
  memset(cs.call_id, 'x', CALLSIGNAL_CALL_ID_MAX);
  cs.call_id[CALLSIGNAL_CALL_ID_MAX] = '\0';
  memset(cs.candidate, 'c', CALLSIGNAL_CANDIDATE_MAX);
  cs.candidate[CALLSIGNAL_CANDIDATE_MAX] = '\0';
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len), 0);
  assert_int_equal(len, CALLSIGNAL_ENCODED_MAX);
  assert_int_equal(callsignal_decode(&back, buf, len), 0);
  assert_string_equal(back.candidate, cs.candidate);
  assert_int_equal(callsignal_encode(&cs, buf, len - 1, &len),
                   CALLSIGNAL_ERR_BUFFER);
  cs = make(CALLSIGNAL_REJECT);
  cs.reason[0] = '\0'; /* an empty reason is allowed */
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len), 0);
  assert_int_equal(callsignal_decode(&back, buf, len), 0);
  assert_string_equal(back.reason, "");
}

static void test_encoder_refuses(void **state) {
  uint8_t buf[CALLSIGNAL_ENCODED_MAX];
  size_t len;
  callsignal_t cs = offer();
  cs.kind = (enum callsignal_kind)0;
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_KIND);
  cs = offer();
  cs.call_id[0] = '\0';
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_CALL_ID_LEN);
  cs = offer();
  memset(cs.call_id, 'x', sizeof(cs.call_id)); /* unterminated */
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_CALL_ID_LEN);
  cs = offer();
  strcpy(cs.call_id, "has space");
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_CALL_ID_CHAR);
  cs = offer();
  cs.audio_codec = (enum audio_codec)257; /* would truncate to 1 */
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_CODEC);
  cs = offer();
  cs.transport = (enum media_transport)0;
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_TRANSPORT);
  cs = make(CALLSIGNAL_REJECT);
  strcpy(cs.reason, "tab\there");
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_REASON_CHAR);
  cs = make(CALLSIGNAL_ICE_CANDIDATE);
  cs.candidate[0] = '\0';
  assert_int_equal(callsignal_encode(&cs, buf, sizeof(buf), &len),
                   CALLSIGNAL_ERR_CANDIDATE_LEN);
}

static void test_reasons_distinct(void **state) {
  for (int a = CALLSIGNAL_ERR_BUFFER; a <= CALLSIGNAL_ERR_EMPTY; a++) {
    assert_string_not_equal(callsignal_strerror(a), "unknown error");
    for (int b = a + 1; b <= CALLSIGNAL_ERR_EMPTY; b++)
      assert_string_not_equal(callsignal_strerror(a), callsignal_strerror(b));
  }
  assert_string_equal(callsignal_kind_name(CALLSIGNAL_OFFER), "offer");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_answers),
      cmocka_unit_test(test_truncated_and_trailing),
      cmocka_unit_test(test_bad_fields),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_encoder_refuses),
      cmocka_unit_test(test_reasons_distinct),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
