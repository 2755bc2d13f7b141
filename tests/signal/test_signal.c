/* Tests of signal/signal with real LMDB stores: an Offer/Answer exchange,
 * sessions surviving daemon restarts, replays and a wrong sender refused, an
 * unreadable stored session, and - through a small simulated network that
 * follows signal.h's rules for acks - convergence after simultaneous
 * initiation and after a peer lost its sessions, with every CallSignal
 * delivered exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"
#include "signal/signal.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_MAX 16
#define QUEUE_MAX 64

/* A CallSignal waiting for its ack, as the network layer would keep it. */
typedef struct pending_msg {
  bool used, sync, held, acked;
  callsignal_t cs;
  session_ref_t ref; /* the session it was (last) sealed under */
} pending_msg_t;

typedef struct node {
  char dir[64];
  identity_t id;
  store_t *st;
  crypto_rng_det_t rng;
  pending_msg_t out[OUTBOX_MAX];
  char got[OUTBOX_MAX][CALLSIGNAL_CALL_ID_MAX + 1]; /* delivered call_ids */
  int n_got;
  int syncs_sent;
} node_t;

typedef struct event {
  bool is_ack;
  int from, to, slot;
  uint8_t bytes[SIGNAL_ENVELOPE_MAX];
  size_t len;
} event_t;

typedef struct net {
  node_t n[2];
  event_t q[QUEUE_MAX];
  int head, tail;
} net_t;

static void node_open(node_t *n) {
  assert_int_equal(store_open(&n->st, n->dir), 0);
}

static void node_init(node_t *n, uint8_t first) {
  uint8_t seed[32];
  memset(n, 0, sizeof(*n));
  strcpy(n->dir, "/tmp/parley-signal-XXXXXX");
  assert_non_null(mkdtemp(n->dir));
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)(first + i);
  crypto_sign_seed_keypair(n->id.public_key, n->id.secret_key, seed);
  hex_encode(n->id.peer_id, n->id.public_key, 32);
  crypto_rng_det_init(&n->rng, seed);
  node_open(n);
}

static void node_restart(node_t *n) {
  store_close(n->st);
  node_open(n);
}

static void node_free(node_t *n) {
  char cmd[128];
  store_close(n->st);
  snprintf(cmd, sizeof(cmd), "rm -rf %.63s", n->dir);
  assert_int_equal(system(cmd), 0);
}

static callsignal_t signal_of(enum callsignal_kind kind, const char *id) {
  callsignal_t cs;
  memset(&cs, 0, sizeof(cs));
  cs.kind = kind;
  snprintf(cs.call_id, sizeof(cs.call_id), "%s", id);
  cs.audio_codec = AUDIO_CODEC_OPUS48K;
  cs.transport = MEDIA_TRANSPORT_DATAGRAM;
  return cs;
}

/* ---- the simulated network ---- */

static void push(net_t *net, event_t *ev) {
  assert_true(net->tail < QUEUE_MAX);
  net->q[net->tail++] = *ev;
}

/* Seals outbox slot of node i and puts the envelope on the wire. */
static void transmit(net_t *net, int i, int slot) {
  node_t *n = &net->n[i], *peer = &net->n[1 - i];
  pending_msg_t *m = &n->out[slot];
  event_t ev = {.from = i, .to = 1 - i, .slot = slot};
  assert_int_equal(signal_seal(n->st, &n->id, peer->id.public_key,
                               m->sync ? NULL : &m->cs, ev.bytes,
                               sizeof(ev.bytes), &ev.len, &m->ref, &n->rng.rng),
                   0);
  m->held = false;
  push(net, &ev);
}

static int enqueue(net_t *net, int i, const callsignal_t *cs) {
  node_t *n = &net->n[i];
  for (int slot = 0; slot < OUTBOX_MAX; slot++) {
    if (n->out[slot].used)
      continue;
    memset(&n->out[slot], 0, sizeof(n->out[slot]));
    n->out[slot].used = true;
    n->out[slot].sync = cs == NULL;
    if (cs)
      n->out[slot].cs = *cs;
    transmit(net, i, slot);
    return slot;
  }
  fail_msg("outbox full");
  return -1;
}

static void reseal_held(net_t *net, int i) {
  for (int slot = 0; slot < OUTBOX_MAX; slot++)
    if (net->n[i].out[slot].used && net->n[i].out[slot].held)
      transmit(net, i, slot);
}

static void on_envelope(net_t *net, const event_t *ev) {
  node_t *n = &net->n[ev->to], *from = &net->n[ev->from];
  signal_result_t res;
  int rc = signal_open(n->st, &n->id, from->id.public_key, ev->bytes, ev->len,
                       &res, &n->rng.rng);
  assert_int_equal(rc == 0, res.status == ENVELOPE_ACK_OK);
  event_t ack = {.is_ack = true,
                 .from = ev->to,
                 .to = ev->from,
                 .slot = ev->slot,
                 .len = ENVELOPE_ACK_LEN};
  assert_int_equal(
      envelope_ack_encode(ack.bytes, res.status, (uint32_t)-res.error), 0);
  push(net, &ack);
  if (res.has_signal) {
    assert_true(n->n_got < OUTBOX_MAX);
    strcpy(n->got[n->n_got++], res.signal.call_id);
  }
  if (res.send_sync) {
    n->syncs_sent++;
    enqueue(net, ev->to, NULL);
  }
  if (res.session_changed)
    reseal_held(net, ev->to);
}

static void on_ack(net_t *net, const event_t *ev) {
  node_t *n = &net->n[ev->to], *peer = &net->n[ev->from];
  pending_msg_t *m = &n->out[ev->slot];
  enum envelope_ack_status status;
  uint32_t reason;
  session_ref_t now;
  assert_int_equal(envelope_ack_decode(ev->bytes, ev->len, &status, &reason),
                   0);
  assert_true(m->used);
  switch (status) {
  case ENVELOPE_ACK_OK:
  case ENVELOPE_ACK_REJECTED:
    m->acked = status == ENVELOPE_ACK_OK;
    m->used = false;
    break;
  case ENVELOPE_ACK_RETRY:
    assert_int_equal(
        signal_current_ref(n->st, &n->id, peer->id.public_key, &now), 0);
    if (session_ref_cmp(&now, &m->ref) != 0)
      transmit(net, ev->to, ev->slot);
    else
      m->held = true;
    break;
  case ENVELOPE_ACK_FAILED:
    fail_msg("no store failures expected");
  }
}

/* Runs until nothing is in flight. */
static void run(net_t *net) {
  int steps = 0;
  while (net->head < net->tail) {
    event_t *ev = &net->q[net->head++];
    if (ev->is_ack)
      on_ack(net, ev);
    else
      on_envelope(net, ev);
    assert_true(++steps < 200);
  }
  net->head = net->tail = 0;
}

static void assert_converged(net_t *net) {
  session_ref_t r0, r1;
  node_t *a = &net->n[0], *b = &net->n[1];
  assert_int_equal(signal_current_ref(a->st, &a->id, b->id.public_key, &r0), 0);
  assert_int_equal(signal_current_ref(b->st, &b->id, a->id.public_key, &r1), 0);
  assert_int_equal(session_ref_cmp(&r0, &r1), 0);
  for (int i = 0; i < 2; i++)
    for (int slot = 0; slot < OUTBOX_MAX; slot++)
      assert_false(net->n[i].out[slot].used); /* everything acked */
}

static int count_got(const node_t *n, const char *id) {
  int c = 0;
  for (int i = 0; i < n->n_got; i++)
    c += strcmp(n->got[i], id) == 0;
  return c;
}

/* A round of normal traffic both ways after convergence. */
static void talk(net_t *net, const char *tag) {
  char id[32];
  for (int i = 0; i < 2; i++) {
    snprintf(id, sizeof(id), "%s-%d", tag, i);
    callsignal_t cs = signal_of(CALLSIGNAL_END, id);
    enqueue(net, i, &cs);
    run(net);
    assert_int_equal(count_got(&net->n[1 - i], id), 1);
  }
}

static net_t *net_new(uint8_t first_a, uint8_t first_b) {
  net_t *net = calloc(1, sizeof(*net));
  node_init(&net->n[0], first_a);
  node_init(&net->n[1], first_b);
  return net;
}

static void net_free(net_t *net) {
  node_free(&net->n[0]);
  node_free(&net->n[1]);
  free(net);
}

/* ---- tests ---- */

static void test_offer_answer(void **state) {
  node_t a, b;
  uint8_t env[SIGNAL_ENVELOPE_MAX];
  size_t len;
  signal_result_t res;
  session_ref_t ref;
  node_init(&a, 0x00);
  node_init(&b, 0x20);
  assert_int_equal(signal_current_ref(a.st, &a.id, b.id.public_key, &ref),
                   SIGNAL_ERR_NO_SESSION);
  callsignal_t offer = signal_of(CALLSIGNAL_OFFER, "c1");
  offer.video = true;
  memset(offer.call_secret, 0x5a, 32);
  assert_int_equal(signal_seal(a.st, &a.id, b.id.public_key, &offer, env,
                               sizeof(env), &len, &ref, &a.rng.rng),
                   0);
  assert_int_equal(ref.epoch, 1);
  assert_int_equal(
      signal_open(b.st, &b.id, a.id.public_key, env, len, &res, &b.rng.rng), 0);
  assert_int_equal(res.status, ENVELOPE_ACK_OK);
  assert_true(res.has_signal);
  assert_true(res.session_changed); /* created */
  assert_false(res.send_sync);
  assert_int_equal(res.signal.kind, CALLSIGNAL_OFFER);
  assert_string_equal(res.signal.call_id, "c1");
  assert_true(res.signal.video);
  assert_memory_equal(res.signal.call_secret, offer.call_secret, 32);

  /* A replay is refused, with the ratchet's reason. */
  assert_int_equal(
      signal_open(b.st, &b.id, a.id.public_key, env, len, &res, &b.rng.rng),
      RATCHET_ERR_DUPLICATE);
  assert_int_equal(res.status, ENVELOPE_ACK_REJECTED);
  assert_false(res.has_signal);

  /* Both daemons restart; the sessions come back from LMDB. */
  node_restart(&a);
  node_restart(&b);
  callsignal_t answer = signal_of(CALLSIGNAL_ANSWER, "c1");
  assert_int_equal(signal_seal(b.st, &b.id, a.id.public_key, &answer, env,
                               sizeof(env), &len, NULL, &b.rng.rng),
                   0);
  assert_int_equal(env[1], ENVELOPE_NORMAL);
  assert_int_equal(
      signal_open(a.st, &a.id, b.id.public_key, env, len, &res, &a.rng.rng), 0);
  assert_int_equal(res.signal.kind, CALLSIGNAL_ANSWER);
  assert_false(res.session_changed);
  for (int i = 0; i < 3; i++) {
    node_restart(&a);
    callsignal_t end = signal_of(CALLSIGNAL_END, "c1");
    assert_int_equal(signal_seal(a.st, &a.id, b.id.public_key, &end, env,
                                 sizeof(env), &len, NULL, &a.rng.rng),
                     0);
    assert_int_equal(env[1], ENVELOPE_NORMAL);
    node_restart(&b);
    assert_int_equal(
        signal_open(b.st, &b.id, a.id.public_key, env, len, &res, &b.rng.rng),
        0);
    assert_int_equal(res.signal.kind, CALLSIGNAL_END);
    assert_int_equal(signal_seal(b.st, &b.id, a.id.public_key, &end, env,
                                 sizeof(env), &len, NULL, &b.rng.rng),
                     0);
    assert_int_equal(
        signal_open(a.st, &a.id, b.id.public_key, env, len, &res, &a.rng.rng),
        0);
  }
  node_free(&a);
  node_free(&b);
}

static void test_wrong_sender_and_garbage(void **state) {
  node_t a, b, c;
  uint8_t env[SIGNAL_ENVELOPE_MAX];
  size_t len;
  signal_result_t res;
  node_init(&a, 0x00);
  node_init(&b, 0x20);
  node_init(&c, 0x40);
  callsignal_t cs = signal_of(CALLSIGNAL_END, "x");
  assert_int_equal(signal_seal(a.st, &a.id, b.id.public_key, &cs, env,
                               sizeof(env), &len, NULL, &a.rng.rng),
                   0);
  /* QUIC authenticated c, but the envelope says a. */
  assert_int_equal(
      signal_open(b.st, &b.id, c.id.public_key, env, len, &res, &b.rng.rng),
      SESSION_ERR_WRONG_SENDER);
  assert_int_equal(res.status, ENVELOPE_ACK_REJECTED);
  assert_int_equal(
      signal_open(b.st, &b.id, a.id.public_key, env, 10, &res, &b.rng.rng),
      ENVELOPE_ERR_SHORT_HEADER);
  assert_int_equal(res.status, ENVELOPE_ACK_REJECTED);
  assert_string_equal(signal_strerror(res.error), "envelope header truncated");
  /* Nothing was stored by the refusals; the real one still works. */
  assert_int_equal(store_session_get(b.st, a.id.public_key, NULL, 0), -ENOENT);
  assert_int_equal(
      signal_open(b.st, &b.id, a.id.public_key, env, len, &res, &b.rng.rng), 0);
  node_free(&a);
  node_free(&b);
  node_free(&c);
}

static void test_unreadable_stored_session(void **state) {
  node_t a, b;
  uint8_t env[SIGNAL_ENVELOPE_MAX], junk[100];
  size_t len;
  session_ref_t ref;
  node_init(&a, 0x00);
  node_init(&b, 0x20);
  memset(junk, 0x01, sizeof(junk));
  assert_int_equal(store_session_put(a.st, b.id.public_key, junk, 100), 0);
  assert_int_equal(signal_current_ref(a.st, &a.id, b.id.public_key, &ref),
                   SIGNAL_ERR_NO_SESSION);
  callsignal_t cs = signal_of(CALLSIGNAL_END, "x");
  assert_int_equal(signal_seal(a.st, &a.id, b.id.public_key, &cs, env,
                               sizeof(env), &len, &ref, &a.rng.rng),
                   0);
  assert_int_equal(ref.epoch, 1); /* started over */
  assert_int_equal(signal_current_ref(a.st, &a.id, b.id.public_key, &ref), 0);
  node_free(&a);
  node_free(&b);
}

/* Both offer at once; the envelopes cross. */
static void simultaneous(uint8_t first_a, uint8_t first_b) {
  net_t *net = net_new(first_a, first_b);
  callsignal_t from_a = signal_of(CALLSIGNAL_OFFER, "from-a");
  callsignal_t from_b = signal_of(CALLSIGNAL_OFFER, "from-b");
  enqueue(net, 0, &from_a);
  enqueue(net, 1, &from_b);
  run(net);
  assert_int_equal(count_got(&net->n[1], "from-a"), 1);
  assert_int_equal(count_got(&net->n[0], "from-b"), 1);
  assert_converged(net);
  talk(net, "after");
  assert_converged(net);
  net_free(net);
}

static void test_simultaneous_initiation(void **state) {
  simultaneous(0x00, 0x20);
  simultaneous(0x20, 0x00);
}

/* B loses its sessions table (say, a restored backup without it): A's
 * normal envelopes are of a session B does not know; B starts a newer one,
 * A adopts it and re-sends. Then the other way round, with an old-epoch
 * initial envelope from a forgetful A. */
static void test_lost_state_recovers(void **state) {
  net_t *net = net_new(0x00, 0x20);
  node_t *a = &net->n[0], *b = &net->n[1];
  talk(net, "before");
  assert_int_equal(store_session_remove(b->st, a->id.public_key), 0);
  node_restart(b);
  callsignal_t cs = signal_of(CALLSIGNAL_OFFER, "after-loss");
  enqueue(net, 0, &cs);
  run(net);
  assert_int_equal(count_got(b, "after-loss"), 1);
  assert_converged(net);
  talk(net, "recovered");

  assert_int_equal(store_session_remove(a->st, b->id.public_key), 0);
  callsignal_t cs2 = signal_of(CALLSIGNAL_OFFER, "a-forgot");
  enqueue(net, 0, &cs2); /* epoch 1 again: stale for B */
  run(net);
  assert_int_equal(count_got(b, "a-forgot"), 1);
  assert_converged(net);
  talk(net, "recovered-again");
  net_free(net);
}

/* A late envelope of an abandoned session reaches a peer whose session is
 * already confirmed: it restarts, and everything still arrives exactly
 * once. With these seeds A's key is the smaller, so B's session loses. */
static void test_late_stale_envelope(void **state) {
  net_t *net = net_new(0x00, 0x20);
  node_t *a = &net->n[0], *b = &net->n[1];
  assert_true(memcmp(a->id.public_key, b->id.public_key, 32) < 0);
  callsignal_t from_a = signal_of(CALLSIGNAL_OFFER, "from-a");
  callsignal_t from_b = signal_of(CALLSIGNAL_OFFER, "from-b");
  enqueue(net, 0, &from_a);
  enqueue(net, 1, &from_b);
  event_t *late = malloc(sizeof(*late));
  *late = net->q[1]; /* B's initial envelope is held back */
  net->tail = 1;
  run(net); /* B adopts A's session */
  callsignal_t extra = signal_of(CALLSIGNAL_END, "b-extra");
  enqueue(net, 1, &extra);
  run(net); /* A has now heard from B on its session */
  assert_int_equal(count_got(a, "b-extra"), 1);
  session_ref_t before;
  assert_int_equal(signal_current_ref(a->st, &a->id, b->id.public_key, &before),
                   0);
  push(net, late);
  free(late);
  run(net);
  session_ref_t after;
  assert_int_equal(signal_current_ref(a->st, &a->id, b->id.public_key, &after),
                   0);
  assert_true(session_ref_cmp(&after, &before) > 0); /* A restarted */
  assert_int_equal(after.epoch, 2);
  assert_int_equal(count_got(b, "from-a"), 1);
  assert_int_equal(count_got(a, "from-b"), 1);
  assert_converged(net);
  talk(net, "after");
  net_free(net);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offer_answer),
      cmocka_unit_test(test_wrong_sender_and_garbage),
      cmocka_unit_test(test_unreadable_stored_session),
      cmocka_unit_test(test_simultaneous_initiation),
      cmocka_unit_test(test_lost_state_recovers),
      cmocka_unit_test(test_late_stale_envelope),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
