/* Tests of the call state machine (call/call.h): two managers on one loop,
 * joined by an in-process signal carrier that delivers each CallSignal on
 * the next loop turn (or drops it, to play an unreachable peer). The real
 * transport is exercised end to end in tests/call/test_call_e2e.c; this
 * file checks the decisions: states, records, events, policy, glare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "call/call.h"
#include "core/util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct side side_t;

typedef struct pending {
  struct pending *next;
  side_t *to;
  uint8_t from[32];
  callsignal_t cs;
  side_t *sender;
  uint64_t token;
} pending_t;

struct side {
  uint8_t key[32];
  call_mgr_t *mgr;
  store_t *store;
  char dir[64];
  side_t *peer;
  bool reachable;  /* signals to this side arrive */
  bool is_contact; /* the other side is in our contacts */
  json_t *events;  /* [[name, params], ...] */
};

static uv_loop_t *loop;
static pending_t *queue;
static uv_idle_t pump;

static void on_pump(uv_idle_t *h) {
  pending_t *p = queue;
  queue = NULL;
  if (!p)
    uv_idle_stop(h);
  while (p) {
    pending_t *next = p->next;
    bool ok = p->to->reachable;
    if (ok)
      call_mgr_on_signal(p->to->mgr, p->from, &p->cs);
    call_mgr_send_done(p->sender->mgr, p->token, ok);
    free(p);
    p = next;
  }
}

static int send_signal(void *ctx, const uint8_t peer[32],
                       const callsignal_t *cs, uint64_t token) {
  side_t *s = ctx;
  assert_memory_equal(peer, s->peer->key, 32);
  pending_t *p = calloc(1, sizeof(*p));
  p->to = s->peer;
  p->sender = s;
  memcpy(p->from, s->key, 32);
  p->cs = *cs;
  p->token = token;
  pending_t **pp = &queue;
  while (*pp)
    pp = &(*pp)->next;
  *pp = p;
  uv_idle_start(&pump, on_pump);
  return 0;
}

static void on_event(void *ctx, const char *name, json_t *params) {
  side_t *s = ctx;
  json_array_append_new(s->events, json_pack("[s, o]", name, params));
}

static bool is_contact(void *ctx, const uint8_t peer[32]) {
  side_t *s = ctx;
  return s->is_contact;
}

static const call_mgr_ops_t ops = {
    .send_signal = send_signal, .event = on_event, .is_contact = is_contact};

static void side_init(side_t *s, uint8_t first_byte, call_mgr_opts_t *o) {
  memset(s->key, 0x11, 32);
  s->key[0] = first_byte;
  strcpy(s->dir, "/tmp/parley-call-XXXXXX");
  assert_non_null(mkdtemp(s->dir));
  assert_int_equal(store_open(&s->store, s->dir), 0);
  s->mgr = call_mgr_new(loop, s->store, s->key, o, &ops, s);
  s->reachable = true;
  s->is_contact = true;
  s->events = json_array();
}

static void side_fini(side_t *s) {
  call_mgr_free(s->mgr);
  store_close(s->store);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
  assert_int_equal(system(cmd), 0);
  json_decref(s->events);
}

typedef struct pair {
  side_t a, b; /* a's key sorts first */
} pair_t;

static int setup_opts(void **state, uint32_t ring_ms) {
  static uv_loop_t l;
  loop = &l;
  uv_loop_init(loop);
  uv_idle_init(loop, &pump);
  pair_t *p = calloc(1, sizeof(*p));
  call_mgr_opts_t o;
  call_mgr_opts_default(&o);
  o.ring_timeout_ms = ring_ms;
  side_init(&p->a, 0x01, &o);
  side_init(&p->b, 0x02, &o);
  p->a.peer = &p->b;
  p->b.peer = &p->a;
  *state = p;
  return 0;
}

static int setup(void **state) {
  return setup_opts(state, 45000);
}
static int setup_short_ring(void **state) {
  return setup_opts(state, 200);
}

static int teardown(void **state) {
  pair_t *p = *state;
  side_fini(&p->a);
  side_fini(&p->b);
  uv_close((uv_handle_t *)&pump, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
  free(p);
  return 0;
}

static void run_for(uint64_t ms) {
  uint64_t end = uv_now(loop) + ms;
  while (uv_now(loop) < end) {
    uv_run(loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(loop);
  }
}

/* The only record of a side, checked field by field. */
static void assert_record(side_t *s, const char *call_id,
                          enum call_direction dir,
                          enum call_end_reason reason) {
  call_record_t recs[4];
  int n = store_history_page(s->store, NULL, 4, recs);
  if (n != 1)
    fail_msg("expected exactly one record, got %d", n);
  if (call_id)
    assert_string_equal(recs[0].call_id, call_id);
  assert_int_equal(recs[0].direction, dir);
  if (recs[0].ended_reason != reason)
    fail_msg("reason %s, want %s", call_end_reason_name(recs[0].ended_reason),
             call_end_reason_name(reason));
  char peer[65];
  hex_encode(peer, s->peer->key, 32);
  assert_string_equal(recs[0].peer, peer);
}

static int count_events(side_t *s, const char *name) {
  int n = 0;
  size_t i;
  json_t *e;
  json_array_foreach(s->events, i, e) {
    if (strcmp(json_string_value(json_array_get(e, 0)), name) == 0)
      n++;
  }
  return n;
}

static const char *incoming_id(side_t *s) {
  size_t i;
  json_t *e;
  json_array_foreach(s->events, i, e) {
    if (strcmp(json_string_value(json_array_get(e, 0)), "incoming-call") == 0)
      return json_string_value(
          json_object_get(json_array_get(e, 1), "call_id"));
  }
  return NULL;
}

static void test_answer_end(void **state) {
  pair_t *p = *state;
  call_info_t ci;
  assert_int_equal(call_start(p->a.mgr, p->b.key, true, &ci), 0);
  assert_int_equal(ci.state, CALL_STATE_RINGING);
  run_for(20);
  const char *id = incoming_id(&p->b);
  assert_non_null(id);
  assert_string_equal(id, ci.call_id);
  assert_int_equal(call_answer(p->b.mgr, id), 0);
  run_for(20);
  assert_int_equal(count_events(&p->a, "call-answered"), 1);
  call_info_t now;
  assert_int_equal(call_mgr_get(p->a.mgr, ci.call_id, &now), 0);
  assert_int_equal(now.state, CALL_STATE_ACTIVE);
  run_for(1100);
  assert_int_equal(call_end(p->a.mgr, ci.call_id), 0);
  run_for(20);
  assert_int_equal(call_mgr_list(p->b.mgr, &now, 1), 0);
  assert_record(&p->a, ci.call_id, CALL_DIR_OUTGOING, CALL_END_COMPLETED);
  assert_record(&p->b, ci.call_id, CALL_DIR_INCOMING, CALL_END_COMPLETED);
  call_record_t r;
  assert_int_equal(store_history_page(p->a.store, NULL, 1, &r), 1);
  assert_true(r.duration_seconds >= 1);
  assert_true(r.had_video);
  assert_int_equal(count_events(&p->b, "call-ended"), 1);
}

static void test_reject(void **state) {
  pair_t *p = *state;
  call_info_t ci;
  assert_int_equal(call_start(p->a.mgr, p->b.key, false, &ci), 0);
  run_for(20);
  assert_int_equal(call_reject(p->b.mgr, ci.call_id, "not now"), 0);
  run_for(20);
  assert_record(&p->a, ci.call_id, CALL_DIR_OUTGOING, CALL_END_REJECTED);
  assert_record(&p->b, ci.call_id, CALL_DIR_INCOMING, CALL_END_REJECTED);
  /* Answering an ended call is refused. */
  assert_int_equal(call_answer(p->b.mgr, ci.call_id), CALL_ERR_NOT_FOUND);
}

static void test_ring_timeout(void **state) {
  pair_t *p = *state;
  call_info_t ci;
  assert_int_equal(call_start(p->a.mgr, p->b.key, false, &ci), 0);
  run_for(400);
  assert_record(&p->a, ci.call_id, CALL_DIR_OUTGOING, CALL_END_MISSED);
  assert_record(&p->b, ci.call_id, CALL_DIR_INCOMING, CALL_END_MISSED);
}

static void test_cancel(void **state) {
  pair_t *p = *state;
  call_info_t ci;
  assert_int_equal(call_start(p->a.mgr, p->b.key, false, &ci), 0);
  run_for(20);
  assert_int_equal(call_end(p->a.mgr, ci.call_id), 0);
  run_for(20);
  assert_record(&p->a, ci.call_id, CALL_DIR_OUTGOING, CALL_END_MISSED);
  assert_record(&p->b, ci.call_id, CALL_DIR_INCOMING, CALL_END_MISSED);
}

static void test_unreachable(void **state) {
  pair_t *p = *state;
  p->b.reachable = false;
  call_info_t ci;
  assert_int_equal(call_start(p->a.mgr, p->b.key, false, &ci), 0);
  run_for(20);
  assert_record(&p->a, ci.call_id, CALL_DIR_OUTGOING, CALL_END_FAILED);
  call_record_t r;
  assert_int_equal(store_history_page(p->b.store, NULL, 1, &r), 0);
}

static void test_unknown_caller_refused(void **state) {
  pair_t *p = *state;
  p->b.is_contact = false;
  call_info_t ci;
  assert_int_equal(call_start(p->a.mgr, p->b.key, false, &ci), 0);
  run_for(20);
  assert_null(incoming_id(&p->b));
  assert_record(&p->a, ci.call_id, CALL_DIR_OUTGOING, CALL_END_REJECTED);
  assert_record(&p->b, ci.call_id, CALL_DIR_INCOMING, CALL_END_REJECTED);
}

static void test_glare(void **state) {
  pair_t *p = *state;
  call_info_t ca, cb;
  assert_int_equal(call_start(p->a.mgr, p->b.key, false, &ca), 0);
  assert_int_equal(call_start(p->b.mgr, p->a.key, false, &cb), 0);
  run_for(50);
  /* a's key is smaller: a's call survives, answered by b at once. */
  call_info_t la[2], lb[2];
  assert_int_equal(call_mgr_list(p->a.mgr, la, 2), 1);
  assert_int_equal(call_mgr_list(p->b.mgr, lb, 2), 1);
  assert_string_equal(la[0].call_id, ca.call_id);
  assert_string_equal(lb[0].call_id, ca.call_id);
  assert_int_equal(la[0].state, CALL_STATE_ACTIVE);
  assert_int_equal(lb[0].state, CALL_STATE_ACTIVE);
  assert_int_equal(call_end(p->b.mgr, ca.call_id), 0);
  run_for(20);
  assert_record(&p->a, ca.call_id, CALL_DIR_OUTGOING, CALL_END_COMPLETED);
  assert_record(&p->b, ca.call_id, CALL_DIR_INCOMING, CALL_END_COMPLETED);
}

/* A third party calls while a call is active: refused as busy. */
static void test_busy(void **state) {
  pair_t *p = *state;
  call_info_t ci;
  assert_int_equal(call_start(p->a.mgr, p->b.key, false, &ci), 0);
  run_for(20);
  assert_int_equal(call_answer(p->b.mgr, ci.call_id), 0);
  run_for(20);
  /* b starting another call is refused locally... */
  assert_int_equal(call_start(p->b.mgr, p->a.key, false, NULL), CALL_ERR_BUSY);
  /* ...and an offer from a stranger with a new call id gets "busy". */
  callsignal_t cs = {.kind = CALLSIGNAL_OFFER,
                     .audio_codec = AUDIO_CODEC_OPUS48K,
                     .transport = MEDIA_TRANSPORT_DATAGRAM};
  memset(cs.call_id, 'c', CALL_ID_LEN);
  call_mgr_on_signal(p->b.mgr, p->a.key, &cs);
  run_for(20);
  call_info_t live[2];
  assert_int_equal(call_mgr_list(p->b.mgr, live, 2), 1);
  assert_string_equal(live[0].call_id, ci.call_id);
  call_record_t r[2];
  assert_int_equal(store_history_page(p->b.store, NULL, 2, r), 1);
  assert_int_equal(r[0].ended_reason, CALL_END_MISSED);
}

static void test_rate_limit(void **state) {
  pair_t *p = *state;
  /* Default 6 offers a minute: offers 7..10 from the same peer are dropped
   * without a reply or a record. Each offer is rejected right away so the
   * callee is never busy. */
  int rung = 0;
  for (int i = 0; i < 10; i++) {
    callsignal_t cs = {.kind = CALLSIGNAL_OFFER,
                       .audio_codec = AUDIO_CODEC_OPUS48K,
                       .transport = MEDIA_TRANSPORT_DATAGRAM};
    snprintf(cs.call_id, sizeof(cs.call_id), "%032d", i);
    call_mgr_on_signal(p->b.mgr, p->a.key, &cs);
    call_info_t live;
    if (call_mgr_list(p->b.mgr, &live, 1) == 1) {
      rung++;
      assert_int_equal(call_reject(p->b.mgr, live.call_id, NULL), 0);
    }
  }
  assert_int_equal(rung, 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_answer_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reject, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ring_timeout, setup_short_ring,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_caller_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_glare, setup, teardown),
      cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
