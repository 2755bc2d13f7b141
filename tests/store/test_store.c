/* Tests of the LMDB store: value codecs, history paging, contacts, sessions
 * and survival of committed writes when the writer is SIGKILLed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/util.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_RECORDS 10000
#define BASE_TS 1700000000u

/* ---- fixtures ---- */

/* Record i: three records share each timestamp, and call IDs have varying
 * lengths ("c9" sorts after "c10"), so key order is not insertion order. */
static void make_record(unsigned i, call_record_t *r) {
  uint8_t raw[32];
  memset(r, 0, sizeof(*r));
  snprintf(r->call_id, sizeof(r->call_id), "c%u", i);
  for (size_t j = 0; j < sizeof(raw); j++)
    raw[j] = (uint8_t)(i * 31 + j);
  hex_encode(r->peer, raw, sizeof(raw));
  r->direction = (enum call_direction)(i % 2);
  r->ended_reason = (enum call_end_reason)(i % 4);
  r->duration_seconds = (uint64_t)i * 7;
  r->had_video = i % 3 == 0;
  r->timestamp = BASE_TS + i / 3;
}

static unsigned record_index(const call_record_t *r) {
  return (unsigned)strtoul(r->call_id + 1, NULL, 10);
}

static void assert_record_equal(const call_record_t *a,
                                const call_record_t *b) {
  assert_string_equal(a->call_id, b->call_id);
  assert_string_equal(a->peer, b->peer);
  assert_int_equal(a->direction, b->direction);
  assert_int_equal(a->ended_reason, b->ended_reason);
  assert_int_equal(a->duration_seconds, b->duration_seconds);
  assert_int_equal(a->had_video, b->had_video);
  assert_int_equal(a->timestamp, b->timestamp);
}

/* Builds the call_history key the store uses for r. */
static size_t record_key(const call_record_t *r, uint8_t *key) {
  size_t len = strlen(r->call_id);
  be64_put(key, r->timestamp);
  memcpy(key + 8, r->call_id, len);
  return 8 + len;
}

/* memcmp order with a shorter key first on a tie: LMDB's default. */
static int record_key_cmp(const call_record_t *a, const call_record_t *b) {
  uint8_t ka[80], kb[80];
  size_t la = record_key(a, ka), lb = record_key(b, kb);
  int c = memcmp(ka, kb, la < lb ? la : lb);
  if (c != 0)
    return c;
  return la < lb ? -1 : la > lb;
}

static void make_contact(unsigned i, size_t n_addrs, contact_t *c) {
  uint8_t raw[32];
  memset(c, 0, sizeof(*c));
  for (size_t j = 0; j < sizeof(raw); j++)
    raw[j] = (uint8_t)(i + j * 3);
  hex_encode(c->peer, raw, sizeof(raw));
  snprintf(c->name, sizeof(c->name), "Contact %u \xc3\xa9", i);
  c->n_addrs = n_addrs;
  for (size_t j = 0; j < n_addrs; j++)
    snprintf(c->addrs[j], sizeof(c->addrs[j]), "192.0.2.%zu:%u", j, 4000 + i);
}

static void assert_contact_equal(const contact_t *a, const contact_t *b) {
  assert_string_equal(a->peer, b->peer);
  assert_string_equal(a->name, b->name);
  assert_int_equal(a->n_addrs, b->n_addrs);
  for (size_t j = 0; j < a->n_addrs; j++)
    assert_string_equal(a->addrs[j], b->addrs[j]);
}

static char *make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof(tmpl), "%s/parley-store-XXXXXX", base ? base : "/tmp");
  char *dir = mkdtemp(tmpl);
  assert_non_null(dir);
  return strdup(dir);
}

static void remove_tmpdir(char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    assert_int_equal(unlink(path), 0);
  }
  closedir(d);
  assert_int_equal(rmdir(dir), 0);
  free(dir);
}

/* Per-test fixture: an open store in a fresh directory. */
struct fixture {
  char *dir;
  store_t *s;
};

static int setup_store(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  f->dir = make_tmpdir();
  assert_int_equal(store_open(&f->s, f->dir), 0);
  *state = f;
  return 0;
}

static int teardown_store(void **state) {
  struct fixture *f = *state;
  store_close(f->s);
  remove_tmpdir(f->dir);
  free(f);
  return 0;
}

/* ---- record codec ---- */

static void test_record_roundtrip(void **state) {
  uint8_t key[80], val[STORE_RECORD_ENCODED_MAX];
  call_record_t in, out;
  for (unsigned i = 0; i < 12; i++) {
    make_record(i, &in);
    if (i == 11) {
      in.timestamp = UINT64_MAX;
      in.duration_seconds = UINT64_MAX;
      memset(in.call_id, 'z', STORE_CALL_ID_MAX);
    }
    int len = store_record_encode(&in, val);
    assert_true(len > 0 && len <= STORE_RECORD_ENCODED_MAX);
    assert_int_equal(val[0], 1);
    size_t klen = record_key(&in, key);
    assert_int_equal(store_record_decode(key, klen, val, len, &out), 0);
    assert_record_equal(&in, &out);
  }
}

static void test_record_decode_rejects(void **state) {
  uint8_t key[80], val[STORE_RECORD_ENCODED_MAX + 1];
  call_record_t r, out;
  make_record(5, &r);
  int len = store_record_encode(&r, val);
  size_t klen = record_key(&r, key);
  for (int n = 0; n < len; n++) /* every truncation of the value */
    assert_int_equal(store_record_decode(key, klen, val, n, &out), -EINVAL);
  for (size_t n = 0; n <= 8; n++) /* key without a call_id */
    assert_int_equal(store_record_decode(key, n, val, len, &out), -EINVAL);
  val[len] = 0; /* trailing byte */
  assert_int_equal(store_record_decode(key, klen, val, len + 1, &out), -EINVAL);
  /* version, direction, end reason and had_video out of range */
  const struct {
    size_t at;
    uint8_t v;
  } bad[] = {{0, 0}, {0, 2},   {0, 255}, {1, 2},  {1, 255},
             {2, 4}, {2, 255}, {3, 2},   {3, 255}};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    uint8_t copy[STORE_RECORD_ENCODED_MAX];
    memcpy(copy, val, len);
    copy[bad[i].at] = bad[i].v;
    assert_int_equal(store_record_decode(key, klen, copy, len, &out), -EINVAL);
  }
  /* call_id bytes: NUL, space, DEL, non-ASCII; and one byte too long */
  const uint8_t bad_ch[] = {0, ' ', 0x7f, 0xc3};
  for (size_t i = 0; i < ARRAY_SIZE(bad_ch); i++) {
    uint8_t k2[80];
    memcpy(k2, key, klen);
    k2[9] = bad_ch[i];
    assert_int_equal(store_record_decode(k2, klen, val, len, &out), -EINVAL);
  }
  memset(key + 8, 'a', STORE_CALL_ID_MAX + 1);
  assert_int_equal(
      store_record_decode(key, 8 + STORE_CALL_ID_MAX + 1, val, len, &out),
      -EINVAL);
  assert_int_equal(
      store_record_decode(key, 8 + STORE_CALL_ID_MAX, val, len, &out), 0);
}

static void test_record_encode_rejects(void **state) {
  uint8_t val[STORE_RECORD_ENCODED_MAX];
  call_record_t r;
  make_record(1, &r);
  r.peer[0] = 'A'; /* uppercase hex */
  assert_int_equal(store_record_encode(&r, val), -EINVAL);
  make_record(1, &r);
  r.peer[63] = '\0'; /* 63 characters */
  assert_int_equal(store_record_encode(&r, val), -EINVAL);
  make_record(1, &r);
  r.peer[10] = 'g';
  assert_int_equal(store_record_encode(&r, val), -EINVAL);
  make_record(1, &r);
  r.direction = (enum call_direction)2;
  assert_int_equal(store_record_encode(&r, val), -EINVAL);
  make_record(1, &r);
  r.ended_reason = (enum call_end_reason)4;
  assert_int_equal(store_record_encode(&r, val), -EINVAL);
}

/* ---- contact codec ---- */

static void test_contact_roundtrip(void **state) {
  uint8_t val[STORE_CONTACT_ENCODED_MAX];
  contact_t in, out;
  for (size_t n = 0; n <= STORE_ADDRS_MAX; n++) {
    make_contact((unsigned)n, n, &in);
    int len = store_contact_encode(&in, val);
    assert_true(len > 0 && len <= STORE_CONTACT_ENCODED_MAX);
    assert_int_equal(store_contact_decode(val, len, &out), 0);
    assert_contact_equal(&in, &out);
  }
  /* every field at its maximum, and an empty name */
  memset(in.name, 'n', STORE_NAME_MAX);
  for (size_t j = 0; j < STORE_ADDRS_MAX; j++)
    memset(in.addrs[j], 'a' + (char)j, STORE_ADDR_MAX);
  int len = store_contact_encode(&in, val);
  assert_true(len > 0 && len <= STORE_CONTACT_ENCODED_MAX);
  assert_int_equal(store_contact_decode(val, len, &out), 0);
  assert_contact_equal(&in, &out);
  in.name[0] = '\0';
  len = store_contact_encode(&in, val);
  assert_int_equal(store_contact_decode(val, len, &out), 0);
  assert_contact_equal(&in, &out);
}

static void test_contact_decode_rejects(void **state) {
  uint8_t val[STORE_CONTACT_ENCODED_MAX + 1];
  contact_t c, out;
  make_contact(7, 3, &c);
  int len = store_contact_encode(&c, val);
  for (int n = 0; n < len; n++)
    assert_int_equal(store_contact_decode(val, n, &out), -EINVAL);
  val[len] = 0;
  assert_int_equal(store_contact_decode(val, len + 1, &out), -EINVAL);

  size_t name_at = 33, name_len = val[name_at];
  size_t count_at = name_at + 1 + name_len, addr_at = count_at + 1;
  const struct {
    size_t at;
    uint8_t v;
  } bad[] = {
      {0, 0},                              /* version */
      {0, 2},                              /* version */
      {name_at, STORE_NAME_MAX + 1},       /* name longer than allowed */
      {name_at, (uint8_t)(len - name_at)}, /* name past the end */
      {name_at + 1, 0},                    /* NUL in the name */
      {count_at, STORE_ADDRS_MAX + 1},
      {count_at, 4}, /* more addresses than present */
      {count_at, 2}, /* fewer: trailing bytes */
      {addr_at, 0},  /* empty address */
      {addr_at, STORE_ADDR_MAX + 1},
      {addr_at + 1, ' '},  /* space in an address */
      {addr_at + 1, 0x80}, /* non-ASCII in an address */
  };
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    uint8_t copy[STORE_CONTACT_ENCODED_MAX];
    memcpy(copy, val, len);
    copy[bad[i].at] = bad[i].v;
    assert_int_equal(store_contact_decode(copy, len, &out), -EINVAL);
  }
}

static void test_contact_encode_rejects(void **state) {
  uint8_t val[STORE_CONTACT_ENCODED_MAX];
  contact_t c;
  make_contact(1, 2, &c);
  c.n_addrs = STORE_ADDRS_MAX + 1;
  assert_int_equal(store_contact_encode(&c, val), -EINVAL);
  make_contact(1, 2, &c);
  c.addrs[1][0] = '\0';
  assert_int_equal(store_contact_encode(&c, val), -EINVAL);
  make_contact(1, 2, &c);
  strcpy(c.addrs[0], "bad addr");
  assert_int_equal(store_contact_encode(&c, val), -EINVAL);
  make_contact(1, 2, &c);
  strcpy(c.peer, "00");
  assert_int_equal(store_contact_encode(&c, val), -EINVAL);
}

static void test_enum_names(void **state) {
  enum call_direction d;
  enum call_end_reason r;
  assert_string_equal(call_direction_name(CALL_DIR_INCOMING), "incoming");
  assert_string_equal(call_direction_name(CALL_DIR_OUTGOING), "outgoing");
  const char *reasons[] = {"completed", "rejected", "missed", "failed"};
  for (int i = 0; i < 4; i++) {
    assert_string_equal(call_end_reason_name((enum call_end_reason)i),
                        reasons[i]);
    assert_int_equal(call_end_reason_parse(reasons[i], &r), 0);
    assert_int_equal(r, i);
  }
  assert_int_equal(call_direction_parse("outgoing", &d), 0);
  assert_int_equal(d, CALL_DIR_OUTGOING);
  assert_int_equal(call_direction_parse("sideways", &d), -1);
  assert_int_equal(call_end_reason_parse("Completed", &r), -1);
}

/* ---- call history ---- */

/* Inserts records 0..n-1 in a scrambled order (7919 is prime, so i * 7919
 * mod n visits every index once when n is not a multiple of it). */
static void insert_records(store_t *s, unsigned n) {
  call_record_t r;
  for (unsigned i = 0; i < n; i++) {
    make_record((unsigned)(((uint64_t)i * 7919) % n), &r);
    assert_int_equal(store_history_put(s, &r), 0);
  }
  assert_int_equal(store_history_count(s), n);
}

static void test_history_paging(void **state) {
  struct fixture *f = *state;
  insert_records(f->s, N_RECORDS);
  /* Reopen: paging works from what is on disk. */
  store_close(f->s);
  assert_int_equal(store_open(&f->s, f->dir), 0);

  static call_record_t page[37];
  static unsigned char seen[N_RECORDS];
  call_record_t prev, want;
  history_cursor_t cur;
  size_t total = 0;
  int n = store_history_page(f->s, NULL, 37, page);
  while (n > 0) {
    for (int i = 0; i < n; i++) {
      unsigned idx = record_index(&page[i]);
      assert_true(idx < N_RECORDS);
      assert_int_equal(seen[idx], 0);
      seen[idx] = 1;
      make_record(idx, &want);
      assert_record_equal(&page[i], &want);
      if (total > 0)
        assert_true(record_key_cmp(&page[i], &prev) < 0);
      prev = page[i];
      total++;
    }
    assert_true(n == 37 || total == N_RECORDS);
    cur.timestamp = prev.timestamp;
    strcpy(cur.call_id, prev.call_id);
    n = store_history_page(f->s, &cur, 37, page);
  }
  assert_int_equal(n, 0);
  assert_int_equal(total, N_RECORDS);
}

/* The records strictly older than timestamp ts, newest first. */
static void check_older_than(store_t *s, uint64_t ts, call_record_t *out) {
  history_cursor_t cur = {.timestamp = ts};
  int n = store_history_page(s, &cur, N_RECORDS + 1, out);
  size_t want = ts <= BASE_TS ? 0
                : ts - BASE_TS >= (N_RECORDS + 2) / 3
                    ? N_RECORDS
                    : (size_t)(ts - BASE_TS) * 3;
  assert_int_equal(n, want);
  for (int i = 0; i < n; i++) {
    assert_true(out[i].timestamp < ts);
    if (i > 0)
      assert_true(record_key_cmp(&out[i], &out[i - 1]) < 0);
  }
}

static void test_history_older_than(void **state) {
  struct fixture *f = *state;
  insert_records(f->s, N_RECORDS);
  call_record_t *out = calloc(N_RECORDS + 1, sizeof(*out));
  const uint64_t ts[] = {0,
                         BASE_TS,
                         BASE_TS + 1,
                         BASE_TS + 2,
                         BASE_TS + 1234,
                         BASE_TS + 3333,
                         BASE_TS + 3334,
                         BASE_TS + 3335,
                         UINT64_MAX};
  for (size_t i = 0; i < ARRAY_SIZE(ts); i++)
    check_older_than(f->s, ts[i], out);

  /* A cursor between two records of the same second keeps the rest of it:
   * BASE_TS + 4 holds c12 < c13 < c14 in key order, and the second before
   * it c10 < c11 < c9 (memcmp order, not numeric). */
  history_cursor_t cur = {.timestamp = BASE_TS + 4, .call_id = "c13"};
  assert_int_equal(store_history_page(f->s, &cur, 3, out), 3);
  assert_string_equal(out[0].call_id, "c12");
  assert_string_equal(out[1].call_id, "c9");
  assert_string_equal(out[2].call_id, "c11");
  /* A call_id that is not stored still positions the walk. */
  strcpy(cur.call_id, "c125");
  assert_int_equal(store_history_page(f->s, &cur, 1, out), 1);
  assert_string_equal(out[0].call_id, "c12");
  assert_int_equal(store_history_page(f->s, &cur, 0, out), 0);
  free(out);
}

static void test_history_put_replace_and_reject(void **state) {
  struct fixture *f = *state;
  call_record_t r, out;
  assert_int_equal(store_history_page(f->s, NULL, 10, &out), 0);
  assert_int_equal(store_history_count(f->s), 0);
  make_record(3, &r);
  assert_int_equal(store_history_put(f->s, &r), 0);
  r.duration_seconds = 99;
  r.ended_reason = CALL_END_MISSED;
  assert_int_equal(store_history_put(f->s, &r), 0);
  assert_int_equal(store_history_count(f->s), 1);
  assert_int_equal(store_history_page(f->s, NULL, 10, &out), 1);
  assert_record_equal(&out, &r);

  call_record_t bad = r;
  bad.call_id[0] = '\0';
  assert_int_equal(store_history_put(f->s, &bad), -EINVAL);
  bad = r;
  strcpy(bad.call_id, "has space");
  assert_int_equal(store_history_put(f->s, &bad), -EINVAL);
  bad = r;
  memset(bad.call_id, 'x', sizeof(bad.call_id)); /* no NUL */
  assert_int_equal(store_history_put(f->s, &bad), -EINVAL);
  bad = r;
  bad.peer[5] = 'X';
  assert_int_equal(store_history_put(f->s, &bad), -EINVAL);
  assert_int_equal(store_history_count(f->s), 1);
}

/* ---- contacts ---- */

struct list_ctx {
  store_t *s;
  contact_t got[8];
  size_t n;
  size_t stop_after;
  bool remove;
};

static int list_cb(const contact_t *c, void *arg) {
  struct list_ctx *ctx = arg;
  ctx->got[ctx->n++] = *c;
  if (ctx->remove)
    assert_int_equal(store_contact_remove(ctx->s, c->peer), 0);
  return ctx->n == ctx->stop_after;
}

static void test_contacts(void **state) {
  struct fixture *f = *state;
  contact_t c[3], out;
  unsigned ids[3] = {200, 5, 90}; /* put out of peer ID order */
  for (int i = 0; i < 3; i++) {
    make_contact(ids[i], (size_t)i + 1, &c[i]);
    assert_int_equal(store_contact_put(f->s, &c[i]), 0);
  }
  for (int i = 0; i < 3; i++) {
    assert_int_equal(store_contact_get(f->s, c[i].peer, &out), 0);
    assert_contact_equal(&out, &c[i]);
  }
  char unknown[65];
  memset(unknown, 'f', 64);
  unknown[64] = '\0';
  assert_int_equal(store_contact_get(f->s, unknown, &out), -ENOENT);
  assert_int_equal(store_contact_remove(f->s, unknown), -ENOENT);
  assert_int_equal(store_contact_get(f->s, "nothex", &out), -EINVAL);

  /* list: peer ID order (ids 5, 90, 200), every contact once */
  struct list_ctx ctx = {.s = f->s};
  assert_int_equal(store_contact_list(f->s, list_cb, &ctx), 0);
  assert_int_equal(ctx.n, 3);
  assert_contact_equal(&ctx.got[0], &c[1]);
  assert_contact_equal(&ctx.got[1], &c[2]);
  assert_contact_equal(&ctx.got[2], &c[0]);
  ctx = (struct list_ctx){.s = f->s, .stop_after = 2};
  assert_int_equal(store_contact_list(f->s, list_cb, &ctx), 0);
  assert_int_equal(ctx.n, 2);

  /* put replaces */
  strcpy(c[2].name, "Renamed");
  c[2].n_addrs = 0;
  assert_int_equal(store_contact_put(f->s, &c[2]), 0);
  assert_int_equal(store_contact_get(f->s, c[2].peer, &out), 0);
  assert_contact_equal(&out, &c[2]);

  assert_int_equal(store_contact_remove(f->s, c[1].peer), 0);
  assert_int_equal(store_contact_get(f->s, c[1].peer, &out), -ENOENT);
  assert_int_equal(store_contact_remove(f->s, c[1].peer), -ENOENT);

  /* fn may call back into the store, even to remove what it was given */
  ctx = (struct list_ctx){.s = f->s, .remove = true};
  assert_int_equal(store_contact_list(f->s, list_cb, &ctx), 0);
  assert_int_equal(ctx.n, 2);
  ctx = (struct list_ctx){.s = f->s};
  assert_int_equal(store_contact_list(f->s, list_cb, &ctx), 0);
  assert_int_equal(ctx.n, 0);
}

/* ---- sessions ---- */

static void test_sessions(void **state) {
  struct fixture *f = *state;
  uint8_t peer[32], other[32], blob[1000], buf[1100];
  memset(peer, 0xab, sizeof(peer));
  memset(other, 0xcd, sizeof(other));
  for (size_t i = 0; i < sizeof(blob); i++)
    blob[i] = (uint8_t)(i * 13);
  assert_int_equal(store_session_get(f->s, peer, buf, sizeof(buf)), -ENOENT);
  assert_int_equal(store_session_put(f->s, peer, blob, sizeof(blob)), 0);
  assert_int_equal(store_session_put(f->s, other, blob, 10), 0);
  assert_int_equal(store_session_get(f->s, peer, buf, sizeof(buf)),
                   sizeof(blob));
  assert_memory_equal(buf, blob, sizeof(blob));

  /* a short buffer gets a prefix and the full length */
  memset(buf, 0xee, sizeof(buf));
  assert_int_equal(store_session_get(f->s, peer, buf, 16), sizeof(blob));
  assert_memory_equal(buf, blob, 16);
  assert_int_equal(buf[16], 0xee);
  assert_int_equal(store_session_get(f->s, peer, NULL, 0), sizeof(blob));

  /* replace, including with an empty blob */
  assert_int_equal(store_session_put(f->s, peer, blob + 1, 5), 0);
  assert_int_equal(store_session_get(f->s, peer, buf, sizeof(buf)), 5);
  assert_memory_equal(buf, blob + 1, 5);
  assert_int_equal(store_session_put(f->s, peer, NULL, 0), 0);
  assert_int_equal(store_session_get(f->s, peer, buf, sizeof(buf)), 0);

  assert_int_equal(store_session_remove(f->s, peer), 0);
  assert_int_equal(store_session_get(f->s, peer, buf, sizeof(buf)), -ENOENT);
  assert_int_equal(store_session_remove(f->s, peer), -ENOENT);
  assert_int_equal(store_session_get(f->s, other, buf, sizeof(buf)), 10);
}

static void test_open_missing_dir(void **state) {
  store_t *s = (store_t *)1;
  assert_int_equal(store_open(&s, "/nonexistent/parley-store"), -ENOENT);
  assert_null(s);
  store_close(NULL);
}

/* ---- crash safety ---- */

#define CRASH_MAX 1000000u
#define CRASH_KILL_AFTER 300

/* The child: one committed put per record, then its index on the pipe. */
static void crash_child(const char *dir, int fd) {
  store_t *s;
  call_record_t r;
  if (store_open(&s, dir) != 0)
    _exit(1);
  for (unsigned i = 0; i < CRASH_MAX; i++) {
    make_record(i, &r);
    if (store_history_put(s, &r) != 0)
      _exit(2);
    if (write(fd, &i, sizeof(i)) != (ssize_t)sizeof(i))
      _exit(3);
  }
  _exit(4); /* never killed: the test fails on this status */
}

static int read_index(int fd, unsigned *out) {
  size_t got = 0;
  while (got < sizeof(*out)) {
    ssize_t n = read(fd, (char *)out + got, sizeof(*out) - got);
    if (n <= 0)
      return -1;
    got += (size_t)n;
  }
  return 0;
}

static void test_crash_safety(void **state) {
  char *dir = make_tmpdir();
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    crash_child(dir, fds[1]);
  }
  close(fds[1]);

  /* Kill while the child is still writing, then drain what it reported
   * before it died: every index on the pipe was committed. */
  unsigned char *reported = calloc(CRASH_MAX, 1);
  unsigned idx, n_reported = 0;
  while (read_index(fds[0], &idx) == 0) {
    assert_true(idx < CRASH_MAX);
    reported[idx] = 1;
    if (++n_reported == CRASH_KILL_AFTER)
      assert_int_equal(kill(pid, SIGKILL), 0);
  }
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  assert_true(n_reported >= CRASH_KILL_AFTER);

  store_t *s;
  assert_int_equal(store_open(&s, dir), 0);
  long count = store_history_count(s);
  assert_true(count >= n_reported);
  call_record_t *all = calloc((size_t)count, sizeof(*all)), want;
  assert_int_equal(store_history_page(s, NULL, (size_t)count, all), count);
  for (long i = 0; i < count; i++) {
    idx = record_index(&all[i]);
    assert_true(idx < CRASH_MAX);
    make_record(idx, &want);
    assert_record_equal(&all[i], &want);
    reported[idx] = 0;
  }
  for (unsigned i = 0; i < CRASH_MAX; i++)
    assert_int_equal(reported[i], 0); /* reported but missing */
  /* the store still takes writes after the crash */
  make_record(CRASH_MAX, &want);
  assert_int_equal(store_history_put(s, &want), 0);
  assert_int_equal(store_history_count(s), count + 1);
  store_close(s);
  free(all);
  free(reported);
  remove_tmpdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_record_roundtrip),
      cmocka_unit_test(test_record_decode_rejects),
      cmocka_unit_test(test_record_encode_rejects),
      cmocka_unit_test(test_contact_roundtrip),
      cmocka_unit_test(test_contact_decode_rejects),
      cmocka_unit_test(test_contact_encode_rejects),
      cmocka_unit_test(test_enum_names),
      cmocka_unit_test_setup_teardown(test_history_paging, setup_store,
                                      teardown_store),
      cmocka_unit_test_setup_teardown(test_history_older_than, setup_store,
                                      teardown_store),
      cmocka_unit_test_setup_teardown(test_history_put_replace_and_reject,
                                      setup_store, teardown_store),
      cmocka_unit_test_setup_teardown(test_contacts, setup_store,
                                      teardown_store),
      cmocka_unit_test_setup_teardown(test_sessions, setup_store,
                                      teardown_store),
      cmocka_unit_test(test_open_missing_dir),
      cmocka_unit_test(test_crash_safety),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
