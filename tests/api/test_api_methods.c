/* Tests of the core API methods (api/methods.c) on a real store in a
 * temporary directory, called through the one-line handler exactly as the
 * server calls them. Storage failures are injected by wrapping the store's
 * functions at link time (-Wl,--wrap, see CMakeLists.txt). */
#include "testsupport.h"

#include "api/methods.h"
#include "api/rpc.h"
#include "core/util.h"
#include "net/ticket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- failure injection -------------------------------------------------- */

static int fail_with; /* when non-zero, wrapped store calls return it */

int __real_store_history_page(store_t *s, const history_cursor_t *before,
                              size_t limit, call_record_t *out);
int __real_store_contact_put(store_t *s, const contact_t *c);
int __real_store_contact_list(store_t *s, int (*fn)(const contact_t *, void *),
                              void *arg);
int __real_store_contact_remove(store_t *s, const char *peer);

int __wrap_store_history_page(store_t *s, const history_cursor_t *before,
                              size_t limit, call_record_t *out) {
  return fail_with ? fail_with
                   : __real_store_history_page(s, before, limit, out);
}
int __wrap_store_contact_put(store_t *s, const contact_t *c) {
  return fail_with ? fail_with : __real_store_contact_put(s, c);
}
int __wrap_store_contact_list(store_t *s, int (*fn)(const contact_t *, void *),
                              void *arg) {
  return fail_with ? fail_with : __real_store_contact_list(s, fn, arg);
}
int __wrap_store_contact_remove(store_t *s, const char *peer) {
  return fail_with ? fail_with : __real_store_contact_remove(s, peer);
}

/* --- fixture ------------------------------------------------------------ */

#define PEER_A                                                                 \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PEER_B                                                                 \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct fx {
  char *dir;
  store_t *store;
  identity_t id;
  api_deps_t deps;
  api_rpc_table_t table;
  int next_id;
} fx_t;

static const char *const listen_addrs[] = {"127.0.0.1:7760", "[::1]:7761"};

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  f->dir = ts_tmpdir("apim");
  assert_non_null(f->dir);
  assert_int_equal(store_open(&f->store, f->dir), 0);
  snprintf(f->id.peer_id, sizeof(f->id.peer_id), "%s", PEER_B);
  f->deps = (api_deps_t){.store = f->store,
                         .identity = &f->id,
                         .ticket = "parley1:" PEER_B "@127.0.0.1:7760",
                         .listen = listen_addrs,
                         .n_listen = 2,
                         .socket_path = "/run/x/parleyd.sock",
                         .started_at = time_now_s() - 5,
                         .server = NULL};
  f->table =
      (api_rpc_table_t){api_core_methods, api_core_methods_count, &f->deps};
  fail_with = 0;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  store_close(f->store);
  ts_rm_rf(f->dir);
  free(f->dir);
  free(f);
  fail_with = 0;
  return 0;
}

/* Calls method with params given as JSON text (NULL: none); returns the
 * whole response. */
static json_t *call(fx_t *f, const char *method, const char *params) {
  char *line = NULL;
  int id = ++f->next_id;
  size_t n;
  FILE *m = open_memstream(&line, &n);
  fprintf(m, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\"", id, method);
  if (params)
    fprintf(m, ",\"params\":%s", params);
  fprintf(m, "}");
  fclose(m);
  json_t *r = api_rpc_handle_line(line, n, &f->table, 1, NULL);
  free(line);
  assert_non_null(r);
  assert_int_equal(json_integer_value(json_object_get(r, "id")), id);
  return r;
}

static json_t *call_ok(fx_t *f, const char *method, const char *params) {
  json_t *r = call(f, method, params);
  json_t *res = json_object_get(r, "result");
  if (!res) {
    char *s = json_dumps(r, 0);
    fprintf(stderr, "%s %s: %s\n", method, params ? params : "", s);
    free(s);
  }
  assert_non_null(res);
  json_incref(res);
  json_decref(r);
  return res;
}

/* Asserts an error with code whose message contains needle. */
static void call_err(fx_t *f, const char *method, const char *params, int code,
                     const char *needle) {
  json_t *r = call(f, method, params);
  if (ts_rpc_error_code(r) != code) {
    char *s = json_dumps(r, 0);
    fprintf(stderr, "%s %s: want %d, got %s\n", method, params, code, s);
    free(s);
  }
  assert_int_equal(ts_rpc_error_code(r), code);
  ts_assert_contains(ts_rpc_error_message(r), needle);
  json_decref(r);
}

static void put_record(fx_t *f, unsigned i, uint64_t ts) {
  call_record_t r = {0};
  snprintf(r.call_id, sizeof(r.call_id), "call-%04u", i);
  snprintf(r.peer, sizeof(r.peer), "%s", i % 2 ? PEER_A : PEER_B);
  r.direction = i % 2 ? CALL_DIR_OUTGOING : CALL_DIR_INCOMING;
  r.duration_seconds = i * 10;
  r.had_video = i % 3 == 0;
  r.timestamp = ts;
  r.ended_reason = (enum call_end_reason)(i % 4);
  assert_int_equal(store_history_put(f->store, &r), 0);
}

/* --- tests -------------------------------------------------------------- */

static void test_status(void **state) {
  fx_t *f = *state;
  json_t *r = call_ok(f, "status", NULL);
  assert_string_equal(json_string_value(json_object_get(r, "version")),
                      PARLEY_VERSION);
  assert_string_equal(json_string_value(json_object_get(r, "peer_id")), PEER_B);
  json_t *l = json_object_get(r, "listen");
  assert_int_equal(json_array_size(l), 2);
  assert_string_equal(json_string_value(json_array_get(l, 1)), "[::1]:7761");
  assert_string_equal(json_string_value(json_object_get(r, "socket")),
                      "/run/x/parleyd.sock");
  json_int_t up = json_integer_value(json_object_get(r, "uptime_seconds"));
  assert_true(up >= 5 && up < 60);
  assert_int_equal(json_integer_value(json_object_get(r, "clients")), 0);
  assert_true(json_is_array(json_object_get(r, "active_calls")));
  json_decref(r);
  json_decref(call_ok(f, "status", "{}"));
  json_decref(call_ok(f, "status", "[]"));
  call_err(f, "status", "{\"verbose\":true}", API_ERR_INVALID_PARAMS,
           "unknown parameter 'verbose'");
}

static void test_get_ticket(void **state) {
  fx_t *f = *state;
  json_t *r = call_ok(f, "get_ticket", NULL);
  assert_string_equal(json_string_value(json_object_get(r, "ticket")),
                      "parley1:" PEER_B "@127.0.0.1:7760");
  json_decref(r);
}

static void test_history_shape_and_limits(void **state) {
  fx_t *f = *state;
  json_t *r = call_ok(f, "get_call_history", NULL);
  assert_true(json_is_array(r));
  assert_int_equal(json_array_size(r), 0);
  json_decref(r);

  for (unsigned i = 0; i < 120; i++)
    put_record(f, i, 1700000000u + i);
  r = call_ok(f, "get_call_history", NULL);
  assert_int_equal(json_array_size(r), 50); /* the default limit */
  json_t *rec = json_array_get(r, 0);       /* the newest: i = 119 */
  assert_string_equal(json_string_value(json_object_get(rec, "call_id")),
                      "call-0119");
  assert_string_equal(json_string_value(json_object_get(rec, "peer")), PEER_A);
  assert_string_equal(json_string_value(json_object_get(rec, "direction")),
                      "outgoing");
  assert_int_equal(json_integer_value(json_object_get(rec, "duration_seconds")),
                   1190);
  assert_true(json_is_false(json_object_get(rec, "had_video")));
  assert_int_equal(json_integer_value(json_object_get(rec, "timestamp")),
                   1700000119);
  assert_string_equal(json_string_value(json_object_get(rec, "ended_reason")),
                      "failed");
  assert_int_equal(json_object_size(rec), 7);
  rec = json_array_get(r, 1); /* i = 118 */
  assert_string_equal(json_string_value(json_object_get(rec, "direction")),
                      "incoming");
  assert_string_equal(json_string_value(json_object_get(rec, "ended_reason")),
                      "missed");
  json_decref(r);

  r = call_ok(f, "get_call_history", "{\"limit\":1000}");
  assert_int_equal(json_array_size(r), 120);
  json_decref(r);
  r = call_ok(f, "get_call_history", "[3]"); /* positional */
  assert_int_equal(json_array_size(r), 3);
  json_decref(r);
  /* before as a timestamp: strictly older. */
  r = call_ok(f, "get_call_history", "{\"limit\":2,\"before\":1700000010}");
  assert_int_equal(json_array_size(r), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(r, 0), "call_id")),
      "call-0009");
  json_decref(r);
  r = call_ok(f, "get_call_history", "{\"before\":0}");
  assert_int_equal(json_array_size(r), 0);
  json_decref(r);

  static const char *const bad_limit[] = {
      "{\"limit\":0}",   "{\"limit\":1001}", "{\"limit\":\"x\"}",
      "{\"limit\":1.5}", "{\"limit\":[]}",   "{\"limit\":-5}"};
  for (size_t i = 0; i < sizeof(bad_limit) / sizeof(bad_limit[0]); i++)
    call_err(f, "get_call_history", bad_limit[i], API_ERR_INVALID_PARAMS,
             "'limit'");
  static const char *const bad_before[] = {
      "{\"before\":\"x\"}",
      "{\"before\":-1}",
      "{\"before\":true}",
      "{\"before\":1.5}",
      "{\"before\":{\"timestamp\":\"a\",\"call_id\":\"x\"}}",
      "{\"before\":{\"timestamp\":1}}",
      "{\"before\":{\"call_id\":\"x\"}}",
      "{\"before\":{\"timestamp\":1,\"call_id\":5}}",
      "{\"before\":{\"timestamp\":1,\"call_id\":\"x\",\"more\":1}}",
      "{\"before\":{\"timestamp\":1,\"call_id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
  };
  for (size_t i = 0; i < sizeof(bad_before) / sizeof(bad_before[0]); i++)
    call_err(f, "get_call_history", bad_before[i], API_ERR_INVALID_PARAMS,
             "'before");
  call_err(f, "get_call_history", "{\"limt\":5}", API_ERR_INVALID_PARAMS,
           "unknown parameter 'limt'");
  call_err(f, "get_call_history", "[1,2,3]", API_ERR_INVALID_PARAMS,
           "too many parameters");
}

/* Paging with the object cursor is exact even when many records share a
 * timestamp; the integer form skips the rest of a timestamp. */
static void test_history_cursor_paging(void **state) {
  fx_t *f = *state;
  enum { N = 500 };
  for (unsigned i = 0; i < N; i++)
    put_record(f, i, 1700000000u + i / 7); /* 7 records per second */
  char *seen = calloc(N, 1);
  json_t *cursor = NULL;
  unsigned total = 0;
  uint64_t last_ts = UINT64_MAX;
  char last_id[80] = "\x7f";
  for (;;) {
    char params[256];
    if (cursor) {
      char *c = json_dumps(cursor, JSON_COMPACT);
      snprintf(params, sizeof(params), "{\"limit\":13,\"before\":%s}", c);
      free(c);
    } else {
      snprintf(params, sizeof(params), "{\"limit\":13}");
    }
    json_t *page = call_ok(f, "get_call_history", params);
    if (json_array_size(page) == 0) {
      json_decref(page);
      break;
    }
    size_t i;
    json_t *rec;
    json_array_foreach(page, i, rec) {
      const char *id = json_string_value(json_object_get(rec, "call_id"));
      uint64_t ts =
          (uint64_t)json_integer_value(json_object_get(rec, "timestamp"));
      /* Newest first, in (timestamp, call_id) key order. */
      assert_true(ts < last_ts || (ts == last_ts && strcmp(id, last_id) < 0));
      last_ts = ts;
      snprintf(last_id, sizeof(last_id), "%s", id);
      unsigned idx = (unsigned)atoi(id + 5);
      assert_true(idx < N);
      assert_int_equal(seen[idx], 0);
      seen[idx] = 1;
      total++;
    }
    json_decref(cursor);
    cursor = json_pack("{s:I, s:s}", "timestamp", (json_int_t)last_ts,
                       "call_id", last_id);
    json_decref(page);
  }
  json_decref(cursor);
  assert_int_equal(total, N);
  free(seen);
}

static void test_contacts(void **state) {
  fx_t *f = *state;
  json_t *r = call_ok(f, "list_contacts", NULL);
  assert_int_equal(json_array_size(r), 0);
  json_decref(r);

  r = call_ok(f, "add_contact",
              "{\"peer\":\"" PEER_A "\",\"name\":\"Alice\","
              "\"addresses\":[\"192.0.2.1:7760\",\"[2001:db8::1]:7761\","
              "\"192.0.2.1:7760\"]}");
  assert_string_equal(json_string_value(json_object_get(r, "peer")), PEER_A);
  assert_string_equal(json_string_value(json_object_get(r, "name")), "Alice");
  json_t *a = json_object_get(r, "addresses");
  assert_int_equal(json_array_size(a), 2); /* duplicates dropped */
  assert_string_equal(json_string_value(json_array_get(a, 1)),
                      "[2001:db8::1]:7761");
  json_decref(r);

  /* Re-adding updates only what is given. */
  r = call_ok(f, "add_contact", "{\"peer\":\"" PEER_A "\",\"name\":\"Al\"}");
  assert_string_equal(json_string_value(json_object_get(r, "name")), "Al");
  assert_int_equal(json_array_size(json_object_get(r, "addresses")), 2);
  json_decref(r);

  /* By ticket: its addresses come along. */
  ticket_t t = {0};
  uint8_t raw[32];
  assert_int_equal(hex_decode(raw, 32, PEER_B, 64), 0);
  memcpy(t.peer, raw, 32);
  assert_int_equal(addr_parse("198.51.100.7:9000", 17, &t.addrs[0]), 0);
  t.n_addrs = 1;
  char text[TICKET_MAX_LEN + 1];
  assert_true(ticket_format(&t, text, sizeof(text)) > 0);
  char params[1024];
  snprintf(params, sizeof(params), "{\"ticket\":\"%s\",\"name\":\"Bob\"}",
           text);
  r = call_ok(f, "add_contact", params);
  assert_string_equal(json_string_value(json_object_get(r, "peer")), PEER_B);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(r, "addresses"), 0)),
      "198.51.100.7:9000");
  json_decref(r);

  r = call_ok(f, "list_contacts", NULL);
  assert_int_equal(json_array_size(r), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(r, 0), "peer")),
      PEER_B); /* peer ID order: "0123..." < "aaaa..." */
  json_decref(r);

  r = call_ok(f, "remove_contact", "{\"peer\":\"" PEER_A "\"}");
  assert_true(json_is_object(r) && json_object_size(r) == 0);
  json_decref(r);
  call_err(f, "remove_contact", "{\"peer\":\"" PEER_A "\"}", API_ERR_NOT_FOUND,
           "no contact " PEER_A);
  r = call_ok(f, "list_contacts", NULL);
  assert_int_equal(json_array_size(r), 1);
  json_decref(r);
}

static void test_contact_params(void **state) {
  fx_t *f = *state;
  static const struct {
    const char *method, *params, *needle;
  } cases[] = {
      {"add_contact", NULL, "missing parameter 'peer'"},
      {"add_contact", "{\"name\":\"x\"}", "missing parameter 'peer'"},
      {"add_contact", "{\"peer\":5}", "'peer' must be a string"},
      {"add_contact", "{\"peer\":\"abc\"}", "'peer' must be a peer ID"},
      {"add_contact", "{\"peer\":\"" PEER_A "0\"}", "'peer' must be a peer ID"},
      {"add_contact",
       "{\"peer\":"
       "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
       "AAAA\"}",
       "'peer' must be a peer ID"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"name\":7}",
       "'name' must be a string"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"name\":\"a\\nb\"}",
       "'name' must not contain control"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"addresses\":\"1.2.3.4:5\"}",
       "'addresses' must be an array"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"addresses\":[\"nope\"]}",
       "'addresses': element 0"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"addresses\":[\"1.2.3.4:0\"]}",
       "'addresses': element 0"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"addresses\":[3]}",
       "'addresses': element 0"},
      {"add_contact",
       "{\"peer\":\"" PEER_A "\",\"addresses\":[\"1.1.1.1:1\",\"1.1.1.1:2\","
       "\"1.1.1.1:3\",\"1.1.1.1:4\",\"1.1.1.1:5\",\"1.1.1.1:6\",\"1.1.1.1:7\","
       "\"1.1.1.1:8\",\"1.1.1.1:9\"]}",
       "at most 8 addresses"},
      {"add_contact", "{\"ticket\":\"parley1:zz\"}", "'ticket' is not a valid"},
      {"add_contact", "{\"ticket\":42}", "'ticket' must be a string"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"ticket\":\"parley1:x\"}",
       "either 'peer' or 'ticket'"},
      {"add_contact", "{\"peer\":\"" PEER_A "\",\"nick\":\"x\"}",
       "unknown parameter 'nick'"},
      {"remove_contact", NULL, "missing parameter 'peer'"},
      {"remove_contact", "{\"peer\":[]}", "'peer' must be a string"},
      {"remove_contact", "{\"peer\":\"xyz\"}", "'peer' must be a peer ID"},
      {"list_contacts", "{\"all\":true}", "unknown parameter 'all'"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    call_err(f, cases[i].method, cases[i].params, API_ERR_INVALID_PARAMS,
             cases[i].needle);
  /* A name at the limit is fine, one byte more is not. */
  char params[512], name[STORE_NAME_MAX + 2];
  memset(name, 'n', sizeof(name));
  name[STORE_NAME_MAX] = '\0';
  snprintf(params, sizeof(params), "{\"peer\":\"%s\",\"name\":\"%s\"}", PEER_A,
           name);
  json_decref(call_ok(f, "add_contact", params));
  name[STORE_NAME_MAX] = 'n';
  name[STORE_NAME_MAX + 1] = '\0';
  snprintf(params, sizeof(params), "{\"peer\":\"%s\",\"name\":\"%s\"}", PEER_A,
           name);
  call_err(f, "add_contact", params, API_ERR_INVALID_PARAMS,
           "'name' is too long");
  /* Nothing of the failed calls was stored. */
  json_t *r = call_ok(f, "list_contacts", NULL);
  assert_int_equal(json_array_size(r), 1);
  json_decref(r);
}

static void test_storage_failures(void **state) {
  fx_t *f = *state;
  fail_with = -EIO;
  call_err(f, "get_call_history", NULL, API_ERR_STORAGE, "storage error");
  call_err(f, "add_contact", "{\"peer\":\"" PEER_A "\"}", API_ERR_STORAGE,
           "storage error");
  call_err(f, "list_contacts", NULL, API_ERR_STORAGE, "storage error");
  call_err(f, "remove_contact", "{\"peer\":\"" PEER_A "\"}", API_ERR_STORAGE,
           "storage error");
  fail_with = 0;
  json_decref(call_ok(f, "list_contacts", NULL));
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_status),
      T(test_get_ticket),
      T(test_history_shape_and_limits),
      T(test_history_cursor_paging),
      T(test_contacts),
      T(test_contact_params),
      T(test_storage_failures),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
