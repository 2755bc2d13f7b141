/* Unit tests of one-line JSON-RPC handling (api/rpc.c), the params helpers
 * (api/params.c) and the default socket path (api/paths.c): no sockets. */
#include "testsupport.h"

#include "api/params.h"
#include "api/paths.h"
#include "api/rpc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int echo(void *ctx, api_client_t *client, json_t *params,
                json_t **result, api_error_t *err) {
  *result = params ? json_incref(params) : json_null();
  return 0;
}

static int fails(void *ctx, api_client_t *client, json_t *params,
                 json_t **result, api_error_t *err) {
  return api_fail(err, API_ERR_NOT_FOUND, "no contact %s", "abc");
}

static int broken(void *ctx, api_client_t *client, json_t *params,
                  json_t **result, api_error_t *err) {
  return 0; /* success without a result: a bug the server must absorb */
}

static int calls;
static int counting(void *ctx, api_client_t *client, json_t *params,
                    json_t **result, api_error_t *err) {
  calls++;
  *(int *)ctx += 1;
  *result = json_object();
  return 0;
}

static int ctx_a, ctx_b;
static const api_method_t table_a[] = {
    {"echo", echo}, {"fails", fails}, {"broken", broken}, {"count", counting}};
static const api_method_t table_b[] = {{"count", counting},
                                       {"count_b", counting}};
static const api_rpc_table_t tables[] = {{table_a, 4, &ctx_a},
                                         {table_b, 2, &ctx_b}};

static json_t *handle(const char *line) {
  return api_rpc_handle_line(line, strlen(line), tables, 2, NULL);
}

static void expect_error(const char *line, int code, long long id) {
  json_t *r = handle(line);
  ts_assert_rpc_error(r, code, id);
  json_decref(r);
}

static void test_parse_errors(void **state) {
  expect_error("{", API_ERR_PARSE, -1);
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"} x",
               API_ERR_PARSE, -1);
  expect_error("\xff\xfe", API_ERR_PARSE, -1);
  expect_error("nul\x01", API_ERR_PARSE, -1);
  /* An embedded NUL byte is not JSON either. */
  json_t *r = api_rpc_handle_line("{\"a\":\0}", 8, tables, 2, NULL);
  ts_assert_rpc_error(r, API_ERR_PARSE, -1);
  json_decref(r);
}

static void test_invalid_requests(void **state) {
  expect_error("[]", API_ERR_INVALID_REQUEST, -1);
  expect_error("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}]",
               API_ERR_INVALID_REQUEST, -1);
  json_t *r = handle("[1]");
  ts_assert_contains(ts_rpc_error_message(r), "batch");
  json_decref(r);
  expect_error("42", API_ERR_INVALID_REQUEST, -1);
  expect_error("\"status\"", API_ERR_INVALID_REQUEST, -1);
  expect_error("null", API_ERR_INVALID_REQUEST, -1);
  expect_error("{\"id\":3,\"method\":\"echo\"}", API_ERR_INVALID_REQUEST, 3);
  expect_error("{\"jsonrpc\":\"1.0\",\"id\":3,\"method\":\"echo\"}",
               API_ERR_INVALID_REQUEST, 3);
  expect_error("{\"jsonrpc\":2,\"id\":3,\"method\":\"echo\"}",
               API_ERR_INVALID_REQUEST, 3);
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":4}", API_ERR_INVALID_REQUEST, 4);
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":7}",
               API_ERR_INVALID_REQUEST, 4);
  /* An id that is not a string, number or null is answered with null. */
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}",
               API_ERR_INVALID_REQUEST, -1);
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"echo\"}",
               API_ERR_INVALID_REQUEST, -1);
}

static void test_params_and_methods(void **state) {
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"echo\","
               "\"params\":\"x\"}",
               API_ERR_INVALID_PARAMS, 5);
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"echo\","
               "\"params\":3}",
               API_ERR_INVALID_PARAMS, 5);
  json_t *r = handle("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"nope\"}");
  ts_assert_rpc_error(r, API_ERR_METHOD_NOT_FOUND, 6);
  assert_string_equal(ts_rpc_error_message(r), "unknown method 'nope'");
  json_decref(r);
  /* \u0000 never reaches a method (jansson refuses it in any string). */
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"echo\\u0000x\"}",
               API_ERR_PARSE, -1);

  r = handle("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"fails\"}");
  ts_assert_rpc_error(r, API_ERR_NOT_FOUND, 7);
  assert_string_equal(ts_rpc_error_message(r), "no contact abc");
  json_decref(r);
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"broken\"}",
               API_ERR_INTERNAL, 8);
}

static void test_success_and_ids(void **state) {
  json_t *r = handle("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"echo\","
                     "\"params\":{\"x\":[1,2]}}\r");
  assert_non_null(r);
  assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
  assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
  json_t *x = json_object_get(json_object_get(r, "result"), "x");
  assert_int_equal(json_array_size(x), 2);
  assert_null(json_object_get(r, "error"));
  json_decref(r);

  r = handle("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"echo\"}");
  assert_non_null(r);
  assert_true(json_is_null(json_object_get(r, "id")));
  assert_true(json_is_null(json_object_get(r, "result")));
  json_decref(r);

  r = handle("{\"jsonrpc\":\"2.0\",\"id\":2.5,\"method\":\"echo\","
             "\"params\":[]}");
  assert_true(json_is_real(json_object_get(r, "id")));
  json_decref(r);

  /* The first table wins; later tables are searched too. */
  ctx_a = ctx_b = 0;
  json_decref(handle("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"count\"}"));
  json_decref(handle("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"count_b\"}"));
  assert_int_equal(ctx_a, 1);
  assert_int_equal(ctx_b, 1);
}

static void test_notifications_get_no_answer(void **state) {
  calls = 0;
  assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"count\"}"));
  assert_int_equal(calls, 1);
  assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}"));
  assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"fails\"}"));
  assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":1}"));
  /* Blank lines are ignored. */
  assert_null(handle(""));
  assert_null(handle("  \t\r"));
}

static void test_error_messages_are_utf8(void **state) {
  /* A long method name made of 2- and 3-byte characters is cut inside the
   * message; the response must still be valid JSON (it is built). */
  char line[2048];
  char name[1200] = "";
  for (int i = 0; i < 300; i++)
    strcat(name, i % 2 ? "\xc3\xa9" : "\xe2\x82\xac");
  snprintf(line, sizeof(line),
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\"}", name);
  json_t *r = handle(line);
  ts_assert_rpc_error(r, API_ERR_METHOD_NOT_FOUND, 1);
  size_t len;
  char *dumped = api_rpc_dump_line(r, &len);
  assert_non_null(dumped);
  assert_int_equal(dumped[len - 1], '\n');
  assert_null(memchr(dumped, '\n', len - 1));
  json_t *back = json_loadb(dumped, len, 0, NULL);
  assert_non_null(back);
  json_decref(back);
  free(dumped);
  json_decref(r);
}

static void test_subscribe_params(void **state) {
  uint32_t mask = 0;
  bool media = true;
  api_error_t err;
  assert_int_equal(api_rpc_parse_subscribe(NULL, &mask, &media, &err), 0);
  assert_int_equal(mask, API_EVENT_ALL_MASK & ~API_EVENT_MEDIA_MASK);
  assert_false(media);

  json_t *p = json_pack("{s:b}", "media", 1);
  assert_int_equal(api_rpc_parse_subscribe(p, &mask, &media, &err), 0);
  assert_int_equal(mask, API_EVENT_ALL_MASK);
  assert_true(media);
  json_decref(p);

  p = json_pack("{s:[s,s]}", "events", "call-ended", "incoming-call");
  assert_int_equal(api_rpc_parse_subscribe(p, &mask, &media, &err), 0);
  assert_int_equal(mask, API_EVENT_BIT(API_EVENT_CALL_ENDED) |
                             API_EVENT_BIT(API_EVENT_INCOMING_CALL));
  json_decref(p);

  p = json_pack("[[s], b]", "video-frame", 1); /* positional */
  assert_int_equal(api_rpc_parse_subscribe(p, &mask, &media, &err), 0);
  assert_int_equal(mask, API_EVENT_BIT(API_EVENT_VIDEO_FRAME));
  json_decref(p);

  static const char *const bad[] = {"{\"events\":[\"nope\"]}",
                                    "{\"events\":\"call-ended\"}",
                                    "{\"events\":[1]}",
                                    "{\"media\":\"yes\"}",
                                    "{\"events\":[\"audio-frame\"]}",
                                    "{\"evnets\":[]}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    p = json_loads(bad[i], 0, NULL);
    assert_non_null(p);
    err.code = 0;
    assert_int_equal(api_rpc_parse_subscribe(p, &mask, &media, &err), -1);
    assert_int_equal(err.code, API_ERR_INVALID_PARAMS);
    json_decref(p);
  }
  p = json_loads("{\"events\":[\"nope\"]}", 0, NULL);
  api_rpc_parse_subscribe(p, &mask, &media, &err);
  ts_assert_contains(err.message, "unknown event 'nope'");
  json_decref(p);

  for (int e = 0; e < API_EVENT_COUNT; e++)
    assert_int_equal(api_event_parse(api_event_name(e)), e);
  assert_int_equal(api_event_parse("status"), -1);
}

static void test_params_helpers(void **state) {
  api_error_t err;
  json_t *p = json_loads("{\"limit\":5,\"on\":true,\"s\":\"abc\","
                         "\"n\":null}",
                         0, NULL);
  int64_t v = 0;
  bool given = false, b = false;
  const char *s;
  assert_int_equal(api_param_int(p, 0, "limit", true, 1, 10, &v, &given, &err),
                   0);
  assert_int_equal(v, 5);
  assert_true(given);
  assert_int_equal(api_param_int(p, 0, "limit", true, 6, 10, &v, NULL, &err),
                   -1);
  ts_assert_contains(err.message, "'limit' must be between 6 and 10");
  assert_int_equal(api_param_int(p, 0, "s", true, 0, 10, &v, NULL, &err), -1);
  ts_assert_contains(err.message, "'s' must be an integer");
  /* null and absent are "not given". */
  v = 42;
  assert_int_equal(api_param_int(p, 0, "n", false, 0, 10, &v, &given, &err), 0);
  assert_false(given);
  assert_int_equal(v, 42);
  assert_int_equal(api_param_int(p, 0, "n", true, 0, 10, &v, NULL, &err), -1);
  assert_string_equal(err.message, "missing parameter 'n'");
  assert_int_equal(api_param_bool(p, 0, "on", true, &b, NULL, &err), 0);
  assert_true(b);
  assert_int_equal(api_param_bool(p, 0, "s", true, &b, NULL, &err), -1);
  assert_int_equal(api_param_string(p, 0, "s", true, 3, &s, &err), 0);
  assert_string_equal(s, "abc");
  assert_int_equal(api_param_string(p, 0, "s", true, 2, &s, &err), -1);
  assert_int_equal(err.code, API_ERR_INVALID_PARAMS);
  static const char *const names[] = {"limit", "on", "s", "n"};
  assert_int_equal(api_params_only(p, names, 4, &err), 0);
  assert_int_equal(api_params_only(p, names, 3, &err), -1);
  assert_string_equal(err.message, "unknown parameter 'n'");
  json_decref(p);

  p = json_loads("[\"0123456789abcdef0123456789abcdef0123456789abcdef"
                 "0123456789abcdef\", \"0123\"]",
                 0, NULL);
  assert_int_equal(api_param_peer(p, 0, "peer", true, &s, &err), 0);
  assert_int_equal(strlen(s), 64);
  assert_int_equal(api_param_peer(p, 1, "other", true, &s, &err), -1);
  ts_assert_contains(err.message, "'other' must be a peer ID");
  assert_int_equal(api_params_only(p, names, 1, &err), -1);
  json_decref(p);
  p = json_loads("[\"0123456789ABCDEF0123456789abcdef0123456789abcdef"
                 "0123456789abcdef\"]",
                 0, NULL);
  assert_int_equal(api_param_peer(p, 0, "peer", true, &s, &err), -1);
  json_decref(p);
}

static void test_default_socket_path(void **state) {
  char out[256];
  setenv("PARLEY_SOCKET", "/x/y.sock", 1);
  assert_int_equal(api_default_socket_path(out, sizeof(out)), 0);
  assert_string_equal(out, "/x/y.sock");
  setenv("PARLEY_SOCKET", "", 1);
  setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
  assert_int_equal(api_default_socket_path(out, sizeof(out)), 0);
  assert_string_equal(out, "/run/user/7/parley/parleyd.sock");
  setenv("XDG_RUNTIME_DIR", "relative", 1);
  assert_int_equal(api_default_socket_path(out, sizeof(out)), 0);
  char want[64];
  snprintf(want, sizeof(want), "/tmp/parley-%u/parleyd.sock",
           (unsigned)getuid());
  assert_string_equal(out, want);
  unsetenv("XDG_RUNTIME_DIR");
  assert_int_equal(api_default_socket_path(out, sizeof(out)), 0);
  assert_string_equal(out, want);
  assert_int_equal(api_default_socket_path(out, 10), -ENAMETOOLONG);
  assert_string_equal(out, "");
  unsetenv("PARLEY_SOCKET");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_invalid_requests),
      cmocka_unit_test(test_params_and_methods),
      cmocka_unit_test(test_success_and_ids),
      cmocka_unit_test(test_notifications_get_no_answer),
      cmocka_unit_test(test_error_messages_are_utf8),
      cmocka_unit_test(test_subscribe_params),
      cmocka_unit_test(test_params_helpers),
      cmocka_unit_test(test_default_socket_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
