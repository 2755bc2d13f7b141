/* End-to-end voice calls: two real parleyd processes talk over QUIC on
 * loopback (directly, or through parley-relay for loss and delay); each
 * sends speech from a WAV file and records what it hears to a WAV file.
 * The test aligns what was heard with what was sent and measures how well
 * they match, on both media transports; it also checks mute by level.
 * Speech comes from espeak-ng; without it these tests skip, visibly. */
#include "testsupport.h"

#include "device/device.h"
#include "media/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALL_SECONDS 10

typedef struct pcm {
  int16_t *s;
  size_t n;
} pcm_t;

typedef struct fixture {
  char *dir;
  ts_daemon_t a, b;
  pid_t relay;
  char relay_addr[64];
} fixture_t;

/* ---- audio files ---- */

static int load_wav(const char *path, pcm_t *out) {
  char name[1024], err[256];
  audio_source_t *src;
  snprintf(name, sizeof(name), "file:%s", path);
  if (device_open_source(name, &src, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  size_t cap = 48000 * 30;
  out->s = malloc(cap * sizeof(int16_t));
  out->n = 0;
  while (out->n + AUDIO_FRAME_SAMPLES <= cap &&
         audio_source_read(src, out->s + out->n) == AUDIO_FRAME_SAMPLES)
    out->n += AUDIO_FRAME_SAMPLES;
  audio_source_close(src);
  return 0;
}

static bool make_speech(const char *path, const char *text) {
  char cmd[2048];
  snprintf(cmd, sizeof(cmd), "espeak-ng -s 150 -w '%s' '%s' 2>/dev/null", path,
           text);
  return system(cmd) == 0 && ts_exists(path);
}

/* Mean correlation over the speech windows of ref (0.5 s each, RMS above
 * -40 dBFS), each aligned on its own within +-250 ms of where the global
 * alignment puts it: the jitter buffer legitimately moves the delay during
 * a call (it grows by concealing a frame and shrinks by dropping one, up to
 * its 200 ms maximum), which a single global lag would count as a
 * mismatch. */
static double speech_correlation(const pcm_t *ref, const pcm_t *heard) {
  size_t lag;
  double corr;
  assert_int_equal(
      audio_align(ref->s, ref->n, heard->s, heard->n, 48000 * 2, &lag, &corr),
      0);
  const size_t w = 24000, slack = 48 * 250;
  double sum = 0;
  int windows = 0;
  for (size_t at = 0; at + w <= ref->n; at += w) {
    if (audio_rms_dbfs(ref->s + at, w) < -40)
      continue;
    size_t lo = lag + at > slack ? lag + at - slack : 0;
    if (lo + w > heard->n)
      break;
    size_t span = heard->n - lo < w + 2 * slack ? heard->n - lo : w + 2 * slack;
    size_t local;
    double c = 0;
    if (audio_align(ref->s + at, w, heard->s + lo, span, span - w, &local,
                    &c) != 0)
      c = 0;
    sum += c;
    windows++;
  }
  assert_true(windows >= 4);
  printf("  global lag %.1f ms (corr %.3f), %d speech windows\n", lag / 48.0,
         corr, windows);
  return sum / windows;
}

/* ---- calls ---- */

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->dir = ts_tmpdir("voice");
  *state = f;
  return f->dir ? 0 : -1;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  if (f->relay > 0) {
    kill(f->relay, SIGTERM);
    ts_wait_pid(f->relay, 5000);
    char *log = ts_path(f->dir, "relay.out");
    char *text = ts_read_file(log, NULL);
    printf("  relay: %s\n", text ? text : "");
    free(text);
    free(log);
  }
  ts_kill_all();
  ts_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static void start_daemons(fixture_t *f) {
  assert_int_equal(ts_daemon_pair_start(f->dir, &f->a, &f->b), 0);
}

/* B knows A; what A dials: B's ticket, or B behind the relay. */
static char *tickets(fixture_t *f) {
  char *t =
      ts_pair_contacts(&f->a, &f->b, f->relay_addr[0] ? f->relay_addr : NULL);
  assert_non_null(t);
  return t;
}

/* The audio codec start_call offers (NULL: the default, Opus48k). */
static const char *g_codec;

typedef struct call_result {
  json_t *stats_a, *stats_b;
} call_result_t;

/* A calls B; each sends its file and records what it hears; the call lasts
 * CALL_SECONDS; mute_at > 0 mutes A from mute_at to mute_at + 3 s. */
static void run_call(fixture_t *f, const char *transport, const char *src_a,
                     const char *src_b, int mute_at, call_result_t *res) {
  char *ticket = tickets(f);
  ts_rpc_t *ca = ts_rpc_connect(f->a.socket, 5000);
  ts_rpc_t *cb = ts_rpc_connect(f->b.socket, 5000);
  json_decref(ts_rpc_call_ok(cb, "subscribe", NULL));
  json_decref(ts_rpc_call_ok(ca, "subscribe", NULL));
  char *heard_a = ts_path(f->dir, "a_heard.wav");
  char *heard_b = ts_path(f->dir, "b_heard.wav");
  char sink_a[1024], sink_b[1024];
  snprintf(sink_a, sizeof(sink_a), "file:%s", heard_a);
  snprintf(sink_b, sizeof(sink_b), "file:%s", heard_b);

  json_t *params =
      json_pack("{s:s, s:s, s:s, s:s}", "peer", ticket, "transport", transport,
                "audio_source", src_a, "audio_sink", sink_a);
  if (g_codec)
    json_object_set_new(params, "audio_codec", json_string(g_codec));
  json_t *call = ts_rpc_call_ok(ca, "start_call", params);
  const char *id = json_string_value(json_object_get(call, "call_id"));
  json_t *inc = ts_rpc_wait_event(cb, "incoming-call", 10000);
  json_decref(inc);
  json_decref(
      ts_rpc_call_ok(cb, "answer_call",
                     json_pack("{s:s, s:s, s:s}", "call_id", id, "audio_source",
                               src_b, "audio_sink", sink_b)));
  ts_rpc_wait_call_state(ca, "active");
  int64_t t0 = ts_now_ms();
  if (mute_at > 0) {
    ts_sleep_ms(mute_at * 1000);
    json_decref(ts_rpc_call_ok(
        ca, "toggle_mute", json_pack("{s:s, s:b}", "call_id", id, "muted", 1)));
    ts_sleep_ms(3000);
    json_decref(ts_rpc_call_ok(
        ca, "toggle_mute", json_pack("{s:s, s:b}", "call_id", id, "muted", 0)));
  }
  int64_t left = CALL_SECONDS * 1000 - (ts_now_ms() - t0);
  if (left > 0)
    ts_sleep_ms((int)left);
  res->stats_a =
      ts_rpc_call_ok(ca, "call_stats", json_pack("{s:s}", "call_id", id));
  res->stats_b =
      ts_rpc_call_ok(cb, "call_stats", json_pack("{s:s}", "call_id", id));
  const char *want = g_codec ? g_codec : "opus48k";
  assert_string_equal(
      json_string_value(json_object_get(res->stats_a, "audio_codec")), want);
  assert_string_equal(
      json_string_value(json_object_get(res->stats_b, "audio_codec")), want);
  char *da = json_dumps(res->stats_a, JSON_COMPACT);
  char *db = json_dumps(res->stats_b, JSON_COMPACT);
  printf("  A: %s\n  B: %s\n", da, db);
  free(da);
  free(db);
  json_decref(
      ts_rpc_call_ok(ca, "end_call", json_pack("{s:s}", "call_id", id)));
  json_decref(ts_rpc_wait_event(cb, "call-ended", 10000));
  json_decref(call);
  ts_rpc_close(ca);
  ts_rpc_close(cb);
  /* The sinks are closed (headers written) when the call's media stops. */
  assert_int_equal(ts_daemon_stop(&f->a), 0);
  assert_int_equal(ts_daemon_stop(&f->b), 0);
  free(heard_a);
  free(heard_b);
  free(ticket);
}

static void voice_call(void **state, const char *transport,
                       const char *relay_opts, double min_corr) {
  fixture_t *f = *state;
  char *wa = ts_path(f->dir, "a.wav"), *wb = ts_path(f->dir, "b.wav");
  if (!make_speech(wa, "Hello Bob, this is Alice calling from parley. The "
                       "quick brown fox jumps over the lazy dog, and the "
                       "five boxing wizards jump quickly.") ||
      !make_speech(wb, "Hi Alice, Bob here. I hear you well over this "
                       "encrypted peer to peer connection. Pack my box "
                       "with five dozen liquor jugs.")) {
    printf("SKIP: espeak-ng is not available to make speech\n");
    skip();
  }
  start_daemons(f);
  if (relay_opts)
    f->relay = ts_relay_start(f->dir, ts_daemon_port(&f->b), relay_opts, NULL,
                              f->relay_addr, sizeof(f->relay_addr));
  assert_true(!relay_opts || f->relay > 0);
  char src_a[1024], src_b[1024];
  snprintf(src_a, sizeof(src_a), "file:%s", wa);
  snprintf(src_b, sizeof(src_b), "file:%s", wb);
  call_result_t res;
  run_call(f, transport, src_a, src_b, 0, &res);

  pcm_t ref_a, ref_b, heard_a, heard_b;
  char *ha = ts_path(f->dir, "a_heard.wav"),
       *hb = ts_path(f->dir, "b_heard.wav");
  assert_int_equal(load_wav(wa, &ref_a), 0);
  assert_int_equal(load_wav(wb, &ref_b), 0);
  assert_int_equal(load_wav(hb, &heard_b), 0);
  assert_int_equal(load_wav(ha, &heard_a), 0);
  double c_ab = speech_correlation(&ref_a, &heard_b);
  double c_ba = speech_correlation(&ref_b, &heard_a);
  printf("  %s%s: A->B correlation %.3f, B->A %.3f (need >= %.2f)\n", transport,
         relay_opts ? " via relay" : "", c_ab, c_ba, min_corr);
  assert_true(c_ab >= min_corr);
  assert_true(c_ba >= min_corr);
  if (relay_opts) {
    /* Loss was met and dealt with, and said so. */
    json_int_t fec = json_integer_value(
        json_object_get(res.stats_b, "frames_recovered_fec"));
    json_int_t conc =
        json_integer_value(json_object_get(res.stats_b, "frames_concealed"));
    printf("  B recovered %lld frames by FEC, concealed %lld\n", (long long)fec,
           (long long)conc);
    assert_true(fec + conc > 0);
  }
  json_decref(res.stats_a);
  json_decref(res.stats_b);
  free(ref_a.s);
  free(ref_b.s);
  free(heard_a.s);
  free(heard_b.s);
  free(ha);
  free(hb);
  free(wa);
  free(wb);
}

static void test_datagram_clean(void **state) {
  voice_call(state, "datagram", NULL, 0.9);
}

/* Opus24k offered: both sides run it (call_stats says so) and speech still
 * comes through as well. */
static void test_opus24k_clean(void **state) {
  g_codec = "opus24k";
  voice_call(state, "datagram", NULL, 0.9);
  g_codec = NULL;
}
static void test_stream_clean(void **state) {
  voice_call(state, "stream", NULL, 0.9);
}
static void test_datagram_impaired(void **state) {
  voice_call(state, "datagram", "--loss 10 --delay 30 --jitter 10", 0.7);
}
static void test_stream_impaired(void **state) {
  voice_call(state, "stream", "--loss 10 --delay 30 --jitter 10", 0.7);
}

/* Mute: a steady tone from A; while A is muted, B hears silence, and the
 * tone comes back after. */
static void test_mute(void **state) {
  fixture_t *f = *state;
  start_daemons(f);
  call_result_t res;
  run_call(f, "datagram", "tone:440:-12", "null", 3, &res);
  json_decref(res.stats_a);
  json_decref(res.stats_b);
  pcm_t heard;
  char *hb = ts_path(f->dir, "b_heard.wav");
  assert_int_equal(load_wav(hb, &heard), 0);
  /* The second before muting, the inner second of the mute, and the
   * second after unmuting (+1 s margin each side for setup and delay). */
  const size_t s = 48000;
  assert_true(heard.n >= 9 * s);
  double before = audio_rms_dbfs(heard.s + 1 * s, s);
  double during = audio_rms_dbfs(heard.s + (size_t)(4.5 * s), s / 2);
  double after = audio_rms_dbfs(heard.s + 8 * s, s);
  printf("  level before mute %.1f dBFS, muted %.1f, after %.1f\n", before,
         during, after);
  assert_true(before > -25);
  assert_true(during < -60);
  assert_true(after > -25);
  free(heard.s);
  free(hb);
}

/* The API as both ends: a client feeds A's microphone with a 600 Hz tone
 * (send_audio_frame, paced at 20 ms); another, subscribed to media, takes
 * what B plays from audio-frame events. What B's client hears must be that
 * tone. */
static void test_api_audio(void **state) {
  fixture_t *f = *state;
  start_daemons(f);
  char *ticket = tickets(f);
  ts_rpc_t *ca = ts_rpc_connect(f->a.socket, 5000);
  ts_rpc_t *cb = ts_rpc_connect(f->b.socket, 5000);
  json_decref(ts_rpc_call_ok(cb, "subscribe", json_pack("{s:b}", "media", 1)));
  json_decref(ts_rpc_call_ok(ca, "subscribe", NULL));
  json_t *call =
      ts_rpc_call_ok(ca, "start_call",
                     json_pack("{s:s, s:s, s:s}", "peer", ticket,
                               "audio_source", "api", "audio_sink", "null"));
  const char *id = json_string_value(json_object_get(call, "call_id"));
  json_decref(ts_rpc_wait_event(cb, "incoming-call", 10000));
  json_decref(
      ts_rpc_call_ok(cb, "answer_call",
                     json_pack("{s:s, s:s, s:s}", "call_id", id, "audio_source",
                               "null", "audio_sink", "api")));
  ts_rpc_wait_call_state(ca, "active"); /* A's media runs from here */
  /* A wrong frame size is refused with a clear error. */
  json_t *bad =
      ts_rpc_call(ca, "send_audio_frame",
                  json_pack("{s:s, s:s}", "call_id", id, "data", "AAAA"), 0);
  assert_int_equal(ts_rpc_error_code(bad), -32602);
  json_decref(bad);

  int16_t pcm[AUDIO_FRAME_SAMPLES];
  char b64[4096];
  double phase = 0;
  const size_t want = 150; /* 3 s */
  pcm_t heard = {malloc(want * 2 * AUDIO_FRAME_SAMPLES * sizeof(int16_t)), 0};
  int64_t next = ts_now_ms();
  for (size_t i = 0; i < want; i++) {
    for (size_t k = 0; k < AUDIO_FRAME_SAMPLES; k++) {
      pcm[k] = (int16_t)(8000 * sin(phase));
      phase += 2 * M_PI * 600 / 48000;
    }
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)pcm, sizeof(pcm),
                      sodium_base64_VARIANT_ORIGINAL);
    json_decref(
        ts_rpc_call_ok(ca, "send_audio_frame",
                       json_pack("{s:s, s:s}", "call_id", id, "data", b64)));
    /* Take what B played meanwhile. */
    json_t *n;
    while ((n = ts_rpc_next_notification(cb, 1)) != NULL) {
      json_t *p = json_object_get(n, "params");
      if (strcmp(json_string_value(json_object_get(n, "method")),
                 "audio-frame") == 0 &&
          heard.n + AUDIO_FRAME_SAMPLES <= want * 2 * AUDIO_FRAME_SAMPLES) {
        size_t len = 0;
        const char *d = json_string_value(json_object_get(p, "data"));
        assert_int_equal(sodium_base642bin((unsigned char *)(heard.s + heard.n),
                                           AUDIO_FRAME_SAMPLES * 2, d,
                                           strlen(d), NULL, &len, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        assert_int_equal(len, AUDIO_FRAME_SAMPLES * 2);
        heard.n += AUDIO_FRAME_SAMPLES;
      }
      json_decref(n);
    }
    next += 20;
    int64_t wait = next - ts_now_ms();
    if (wait > 0)
      ts_sleep_ms((int)wait);
  }
  json_decref(
      ts_rpc_call_ok(ca, "end_call", json_pack("{s:s}", "call_id", id)));
  /* The middle second of what B's client got is the tone. */
  assert_true(heard.n >= 100 * AUDIO_FRAME_SAMPLES);
  const int16_t *mid = heard.s + heard.n / 2 - 24000;
  double hz = audio_tone_hz(mid, 48000, 48000);
  double db = audio_rms_dbfs(mid, 48000);
  printf("  api audio: %zu frames heard, %.1f Hz at %.1f dBFS\n",
         heard.n / AUDIO_FRAME_SAMPLES, hz, db);
  assert_true(hz > 595 && hz < 605);
  assert_true(db > -20 && db < -10);
  free(heard.s);
  json_decref(call);
  ts_rpc_close(ca);
  ts_rpc_close(cb);
  free(ticket);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_datagram_clean, setup, teardown),
      cmocka_unit_test_setup_teardown(test_opus24k_clean, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_clean, setup, teardown),
      cmocka_unit_test_setup_teardown(test_datagram_impaired, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_impaired, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mute, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_audio, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
