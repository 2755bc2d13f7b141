/* Tests of media/ring: order, both full-ring policies and their counters,
 * and a two-thread stress test that checks every item arrives whole, in
 * order, once, or is counted as an overrun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "media/ring.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void test_basics(void **state) {
  (void)state;
  assert_null(ring_new(0, 4, RING_DROP_OLDEST));
  assert_null(ring_new(4, 0, RING_DROP_OLDEST));
  ring_t *r = ring_new(3, sizeof(int), RING_DROP_OLDEST);
  assert_non_null(r);
  assert_int_equal(ring_capacity(r), 3);
  assert_int_equal(ring_slot_size(r), sizeof(int));
  int v = 0;
  assert_false(ring_pop(r, &v));
  for (int i = 1; i <= 3; i++)
    assert_true(ring_push(r, &i));
  assert_int_equal(ring_count(r), 3);
  for (int i = 1; i <= 3; i++) {
    assert_true(ring_pop(r, &v));
    assert_int_equal(v, i);
  }
  assert_false(ring_pop(r, &v));
  /* Wrap around the slots many times. */
  for (int i = 0; i < 100; i++) {
    assert_true(ring_push(r, &i));
    assert_true(ring_pop(r, &v));
    assert_int_equal(v, i);
  }
  assert_true(ring_overruns(r) == 0);
  assert_true(ring_pushed(r) == 103 && ring_popped(r) == 103);
  ring_free(r);
}

static void test_drop_oldest(void **state) {
  (void)state;
  ring_t *r = ring_new(4, sizeof(int), RING_DROP_OLDEST);
  for (int i = 0; i < 10; i++)
    assert_true(ring_push(r, &i)); /* always accepted */
  assert_int_equal(ring_count(r), 4);
  assert_true(ring_overruns(r) == 6);
  int v;
  for (int i = 6; i < 10; i++) { /* the freshest four remain */
    assert_true(ring_pop(r, &v));
    assert_int_equal(v, i);
  }
  assert_false(ring_pop(r, &v));
  ring_free(r);
}

static void test_refuse_newest(void **state) {
  (void)state;
  ring_t *r = ring_new(4, sizeof(int), RING_REFUSE_NEWEST);
  for (int i = 0; i < 10; i++)
    assert_int_equal(ring_push(r, &i), i < 4);
  assert_true(ring_overruns(r) == 6);
  assert_true(ring_pushed(r) == 4);
  int v;
  for (int i = 0; i < 4; i++) { /* the first four stay */
    assert_true(ring_pop(r, &v));
    assert_int_equal(v, i);
  }
  assert_false(ring_pop(r, &v));
  ring_free(r);
}

/* ---- Two threads ---- */

#define STRESS_N 200000
#define ITEM_WORDS 16 /* 128-byte items: torn copies would show */
#define MIX 0x9e3779b97f4a7c15ull

typedef struct item {
  uint64_t w[ITEM_WORDS];
} item_t;

typedef struct stress {
  ring_t *r;
  atomic_bool done;
  uint8_t *accepted; /* producer: push returned true */
  uint8_t *seen;     /* consumer: popped */
  uint64_t popped, bad_order, torn;
} stress_t;

static void *producer(void *arg) {
  stress_t *s = arg;
  item_t it;
  for (uint64_t i = 0; i < STRESS_N; i++) {
    it.w[0] = i;
    for (int k = 1; k < ITEM_WORDS; k++)
      it.w[k] = i * MIX + (uint64_t)k;
    s->accepted[i] = ring_push(s->r, &it);
    if (i % 1024 == 0)
      sched_yield();
  }
  atomic_store(&s->done, true);
  return NULL;
}

static void *consumer(void *arg) {
  stress_t *s = arg;
  item_t it;
  int64_t last = -1;
  for (;;) {
    bool finished = atomic_load(&s->done);
    if (!ring_pop(s->r, &it)) {
      if (finished)
        break;
      continue;
    }
    uint64_t i = it.w[0];
    for (int w = 1; w < ITEM_WORDS; w++)
      if (it.w[w] != i * MIX + (uint64_t)w)
        s->torn++;
    if (i >= STRESS_N || (int64_t)i <= last)
      s->bad_order++;
    else
      s->seen[i] = 1;
    last = (int64_t)i;
    s->popped++;
  }
  return NULL;
}

static void run_stress(enum ring_policy policy, size_t capacity) {
  stress_t s;
  memset(&s, 0, sizeof(s));
  s.r = ring_new(capacity, sizeof(item_t), policy);
  s.accepted = calloc(STRESS_N, 1);
  s.seen = calloc(STRESS_N, 1);
  atomic_init(&s.done, false);
  pthread_t p, c;
  assert_int_equal(pthread_create(&c, NULL, consumer, &s), 0);
  assert_int_equal(pthread_create(&p, NULL, producer, &s), 0);
  pthread_join(p, NULL);
  pthread_join(c, NULL);

  assert_true(s.torn == 0);
  assert_true(s.bad_order == 0);
  uint64_t accepted = 0;
  for (size_t i = 0; i < STRESS_N; i++) {
    accepted += s.accepted[i];
    if (s.seen[i])
      assert_true(s.accepted[i]); /* nothing refused was delivered */
    if (policy == RING_REFUSE_NEWEST && s.accepted[i])
      assert_true(s.seen[i]); /* nothing accepted was lost */
  }
  /* Every item was delivered once or counted as an overrun. */
  assert_true(s.popped + ring_overruns(s.r) == STRESS_N);
  assert_true(ring_popped(s.r) == s.popped);
  assert_true(ring_pushed(s.r) == accepted);
  print_message("  %s cap %zu: %llu delivered, %llu overruns\n",
                policy == RING_DROP_OLDEST ? "drop-oldest" : "refuse-newest",
                capacity, (unsigned long long)s.popped,
                (unsigned long long)ring_overruns(s.r));
  free(s.accepted);
  free(s.seen);
  ring_free(s.r);
}

static void test_threads_drop_oldest(void **state) {
  (void)state;
  run_stress(RING_DROP_OLDEST, 2);
  run_stress(RING_DROP_OLDEST, 64);
}

static void test_threads_refuse_newest(void **state) {
  (void)state;
  run_stress(RING_REFUSE_NEWEST, 2);
  run_stress(RING_REFUSE_NEWEST, 64);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basics),
      cmocka_unit_test(test_drop_oldest),
      cmocka_unit_test(test_refuse_newest),
      cmocka_unit_test(test_threads_drop_oldest),
      cmocka_unit_test(test_threads_refuse_newest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
