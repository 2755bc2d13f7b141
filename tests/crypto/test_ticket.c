/* Tests of net/ticket: round trips and strict rejection of malformed
 * tickets and addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/ticket.h"

#include <arpa/inet.h>
#include <string.h>

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_round_trip(void **state) {
  (void)state;
  const char *texts[] = {
      "parley1:" ID,
      "parley1:" ID "@127.0.0.1:7760",
      "parley1:" ID "@192.168.1.20:1,[::1]:65535,[fe80::1]:7760",
  };
  for (size_t i = 0; i < 3; i++) {
    ticket_t t;
    char err[128], out[TICKET_MAX_LEN + 1];
    assert_int_equal(ticket_parse(texts[i], &t, err, sizeof(err)), 0);
    assert_int_equal(ticket_format(&t, out, sizeof(out)),
                     (int)strlen(texts[i]));
    assert_string_equal(out, texts[i]);
  }
  ticket_t t;
  assert_int_equal(ticket_parse(texts[2], &t, NULL, 0), 0);
  assert_int_equal(t.n_addrs, 3);
  assert_int_equal(t.addrs[0].ss_family, AF_INET);
  assert_int_equal(ntohs(((struct sockaddr_in *)&t.addrs[0])->sin_port), 1);
  assert_int_equal(t.addrs[1].ss_family, AF_INET6);
  assert_int_equal(t.peer[0], 0x01);
  assert_int_equal(t.peer[31], 0xef);
}

static void test_rejects(void **state) {
  (void)state;
  const char *bad[] = {
      "",
      "parley1:",
      "parley2:" ID,
      "PARLEY1:" ID,
      "parley1:" ID "0", /* 65 hex */
      "parley1:"
      "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
      "parley1:" ID "@",                /* empty address */
      "parley1:" ID "@127.0.0.1",       /* no port */
      "parley1:" ID "@127.0.0.1:0",     /* port 0 */
      "parley1:" ID "@127.0.0.1:65536", /* port too big */
      "parley1:" ID "@127.0.0.1:07760", /* leading zero */
      "parley1:" ID "@127.0.0.256:1",   /* bad IPv4 */
      "parley1:" ID "@::1:7760",        /* IPv6 without brackets */
      "parley1:" ID "@[::1]7760",
      "parley1:" ID "@127.0.0.1:1,", /* trailing comma */
      "parley1:" ID "@127.0.0.1:1 ", /* trailing space */
      "parley1:" ID "@1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,1.1.1.1:5,"
      "1.1.1.1:6,1.1.1.1:7,1.1.1.1:8,1.1.1.1:9", /* too many */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ticket_t t;
    char err[128] = "";
    if (ticket_parse(bad[i], &t, err, sizeof(err)) != -1)
      fail_msg("accepted bad ticket #%zu '%s'", i, bad[i]);
    assert_true(strncmp(err, "invalid ticket: ", 16) == 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
