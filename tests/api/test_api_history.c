/* Call history through a real parleyd: records are written into its data
 * directory with the store while it is stopped (the daemon makes no call
 * records before calls exist), then read back through get_call_history.
 *   - 10 000 records, many sharing a timestamp, paged with the object
 *     cursor until empty: each exactly once, newest first;
 *   - a writer SIGKILLed mid-stream: every record it reported as committed
 *     is served after parleyd starts on that directory. */
#include "testsupport.h"

#include "core/util.h"
#include "store/store.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_TS 1700000000u

typedef struct fx {
  char *home;
  ts_daemon_t d;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  f->home = ts_tmpdir("hist");
  assert_non_null(f->home);
  ts_daemon_init(&f->d, f->home);
  assert_int_equal(path_mkdir_p(f->d.data_dir, 0700), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  int st = f->d.pid > 0 ? ts_daemon_stop(&f->d) : 0;
  if (st != 0)
    ts_daemon_dump(&f->d);
  ts_kill_all();
  ts_rm_rf(f->home);
  free(f->home);
  free(f);
  return st == 0 ? 0 : -1;
}

/* Record i: five records per second and call IDs whose text order differs
 * from their number order ("c10" < "c9"), so only the key order is right. */
static void make_record(unsigned i, call_record_t *r) {
  memset(r, 0, sizeof(*r));
  snprintf(r->call_id, sizeof(r->call_id), "c%u", i);
  uint8_t raw[32];
  for (size_t j = 0; j < sizeof(raw); j++)
    raw[j] = (uint8_t)(i + j);
  hex_encode(r->peer, raw, sizeof(raw));
  r->direction = (enum call_direction)(i % 2);
  r->ended_reason = (enum call_end_reason)(i % 4);
  r->duration_seconds = i % 3600;
  r->had_video = i % 5 == 0;
  r->timestamp = BASE_TS + i / 5;
}

/* Pages through the whole history with the object cursor; marks each
 * record in seen (which must be clear) and checks order and contents.
 * Returns how many records came. */
static unsigned page_all(const fx_t *f, unsigned n_max, unsigned char *seen,
                         int limit) {
  ts_rpc_t *c = ts_rpc_connect(f->d.socket, ts_timeout_ms(5000));
  assert_non_null(c);
  json_t *before = NULL;
  unsigned total = 0;
  uint64_t last_ts = UINT64_MAX;
  char last_id[STORE_CALL_ID_MAX + 2] = "\x7f";
  for (int pages = 0;; pages++) {
    assert_true(pages <= (int)(n_max / (unsigned)limit) + 2);
    json_t *params = json_pack("{s:i}", "limit", limit);
    if (before)
      json_object_set(params, "before", before);
    json_t *page = ts_rpc_call_ok(c, "get_call_history", params);
    assert_true(json_is_array(page));
    if (json_array_size(page) == 0) {
      json_decref(page);
      break;
    }
    assert_true(json_array_size(page) <= (size_t)limit);
    size_t i;
    json_t *rec;
    json_array_foreach(page, i, rec) {
      const char *id = json_string_value(json_object_get(rec, "call_id"));
      uint64_t ts =
          (uint64_t)json_integer_value(json_object_get(rec, "timestamp"));
      assert_non_null(id);
      assert_true(ts < last_ts || (ts == last_ts && strcmp(id, last_id) < 0));
      unsigned idx = (unsigned)strtoul(id + 1, NULL, 10);
      assert_true(idx < n_max);
      assert_int_equal(seen[idx], 0);
      seen[idx] = 1;
      call_record_t want;
      make_record(idx, &want);
      assert_int_equal(ts, want.timestamp);
      assert_string_equal(json_string_value(json_object_get(rec, "peer")),
                          want.peer);
      assert_int_equal(
          json_integer_value(json_object_get(rec, "duration_seconds")),
          want.duration_seconds);
      assert_int_equal(json_is_true(json_object_get(rec, "had_video")),
                       want.had_video);
      assert_string_equal(json_string_value(json_object_get(rec, "direction")),
                          call_direction_name(want.direction));
      assert_string_equal(
          json_string_value(json_object_get(rec, "ended_reason")),
          call_end_reason_name(want.ended_reason));
      last_ts = ts;
      snprintf(last_id, sizeof(last_id), "%s", id);
      total++;
    }
    json_decref(page);
    json_decref(before);
    before = json_pack("{s:I, s:s}", "timestamp", (json_int_t)last_ts,
                       "call_id", last_id);
  }
  json_decref(before);
  ts_rpc_close(c);
  return total;
}

static void test_page_ten_thousand(void **state) {
  fx_t *f = *state;
  enum { N = 10000 };
  store_t *s = NULL;
  assert_int_equal(store_open(&s, f->d.data_dir), 0);
  /* Inserted in a scrambled order; the store keeps key order. */
  for (unsigned k = 0; k < N; k++) {
    call_record_t r;
    make_record((k * 7919u) % N, &r);
    assert_int_equal(store_history_put(s, &r), 0);
  }
  assert_int_equal(store_history_count(s), N);
  store_close(s);

  assert_int_equal(ts_daemon_start(&f->d, f->home, NULL), 0);
  unsigned char *seen = calloc(N, 1);
  /* 997 does not divide 10 000 nor line up with the 5-per-second groups. */
  assert_int_equal(page_all(f, N, seen, 997), N);
  for (unsigned i = 0; i < N; i++)
    assert_int_equal(seen[i], 1);
  memset(seen, 0, N);
  assert_int_equal(page_all(f, N, seen, 1000), N);
  free(seen);

  /* parleyctl's table: a header, then the newest record, c9999. */
  const char *args[] = {"history", "--limit", "2", NULL};
  ts_output_t o;
  assert_int_equal(ts_run_ctl(f->d.socket, args, &o), 0);
  assert_int_equal(o.status, 0);
  char *row = strchr(o.out, '\n');
  assert_non_null(row);
  ts_assert_contains(o.out, "DIRECTION");
  row++;
  ts_assert_contains(row, "outgoing");
  ts_assert_contains(row, "0f1011121314"); /* the peer, shortened */
  ts_assert_contains(row, "46:39");
  ts_assert_contains(row, "failed");
  assert_null(strstr(row, "0f10111213141")); /* only 12 characters */
  int lines = 0;
  for (const char *p = o.out; *p; p++)
    lines += *p == '\n';
  assert_int_equal(lines, 3);
  ts_output_free(&o);
}

/* The child: writes records 0, 1, 2... one committed transaction each and
 * reports each index on fd after its put returned. Never returns. */
static void writer_child(const char *dir, int fd) {
  store_t *s = NULL;
  if (store_open(&s, dir) != 0)
    _exit(1);
  for (unsigned i = 0;; i++) {
    call_record_t r;
    make_record(i, &r);
    if (store_history_put(s, &r) != 0)
      _exit(2);
    uint32_t v = i;
    if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
      _exit(3);
  }
}

static void test_sigkilled_writer_loses_nothing_committed(void **state) {
  fx_t *f = *state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    writer_child(f->d.data_dir, p[1]);
  }
  close(p[1]);
  /* Let it commit a few hundred records, then kill it mid-stream. */
  unsigned reported = 0;
  int64_t deadline = ts_now_ms() + ts_timeout_ms(60000);
  while (reported < 300 && ts_now_ms() < deadline) {
    uint32_t v;
    ssize_t n = read(p[0], &v, sizeof(v));
    if (n < 0 && errno == EINTR)
      continue;
    assert_int_equal(n, sizeof(v));
    assert_int_equal(v, reported);
    reported++;
  }
  assert_int_equal(kill(pid, SIGKILL), 0);
  int ws;
  assert_int_equal(waitpid(pid, &ws, 0), pid);
  assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
  /* Reports still in the pipe were written after their commit too. */
  uint32_t v;
  ssize_t n;
  while ((n = read(p[0], &v, sizeof(v))) == (ssize_t)sizeof(v)) {
    assert_int_equal(v, reported);
    reported++;
  }
  close(p[0]);
  assert_true(reported >= 300);

  assert_int_equal(ts_daemon_start(&f->d, f->home, NULL), 0);
  unsigned max = reported + 1; /* at most one more than reported */
  unsigned char *seen = calloc(max, 1);
  unsigned total = page_all(f, max, seen, 1000);
  for (unsigned i = 0; i < reported; i++) {
    if (!seen[i])
      fprintf(stderr, "record c%u was reported committed but is gone\n", i);
    assert_int_equal(seen[i], 1);
  }
  assert_true(total == reported || total == reported + 1);
  free(seen);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_page_ten_thousand),
      T(test_sigkilled_writer_loses_nothing_committed),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
