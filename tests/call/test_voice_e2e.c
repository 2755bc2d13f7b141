/* End-to-end voice calls: two real parleyd processes talk over QUIC on
 * loopback (directly, or through parley-relay for loss and delay); each
 * sends speech from a WAV file and records what it hears to a WAV file.
 * The test aligns what was heard with what was sent and measures how well
 * they match, on both media transports; it also checks mute by level, and
 * with Opus DTX (and without) what a long silence costs the sender.
 * Speech comes from espeak-ng; without it these tests skip, visibly. */
#include "testsupport.h"

#include "device/device.h"
#include "device/wavfile.h"
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

typedef ts_pcm_t pcm_t;

typedef struct fixture {
  char *dir;
  ts_daemon_t a, b;
  pid_t relay;
  char relay_addr[64];
} fixture_t;

/* ---- audio files ---- */

static int load_wav(const char *path, pcm_t *out) {
  return ts_load_wav(path, 30, out);
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
static double window_align(const pcm_t *ref, size_t at, size_t w,
                           const pcm_t *heard, size_t lag, size_t *own_lag);

static double speech_correlation(const pcm_t *ref, const pcm_t *heard,
                                 size_t *lag_out) {
  size_t lag;
  double corr;
  assert_int_equal(
      audio_align(ref->s, ref->n, heard->s, heard->n, 48000 * 2, &lag, &corr),
      0);
  if (lag_out)
    *lag_out = lag;
  const size_t w = 24000;
  double sum = 0;
  int windows = 0;
  for (size_t at = 0; at + w <= ref->n; at += w) {
    if (audio_rms_dbfs(ref->s + at, w) < -40)
      continue;
    size_t own;
    double c = window_align(ref, at, w, heard, lag, &own);
    if (c < 0)
      break;
    sum += c;
    windows++;
  }
  assert_true(windows >= 4);
  printf("  global lag %.1f ms (corr %.3f), %d speech windows\n", lag / 48.0,
         corr, windows);
  return sum / windows;
}

/* ref[at, at + w) aligned on its own within +-250 ms of where lag puts it
 * in heard: its correlation there (0 if none) and its own lag; -1 if heard
 * ends first. */
static double window_align(const pcm_t *ref, size_t at, size_t w,
                           const pcm_t *heard, size_t lag, size_t *own_lag) {
  const size_t slack = 48 * 250;
  size_t lo = lag + at > slack ? lag + at - slack : 0;
  if (lo + w > heard->n)
    return -1;
  size_t span = heard->n - lo < w + 2 * slack ? heard->n - lo : w + 2 * slack;
  size_t local = 0;
  double c = 0;
  if (audio_align(ref->s + at, w, heard->s + lo, span, span - w, &local, &c) !=
      0)
    c = 0;
  *own_lag = lo + local - at;
  return c;
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

/* What A has sent at one moment of the call (ms since it went active). */
typedef struct send_sample {
  int64_t t_ms;
  long long frames, bytes;
} send_sample_t;

#define MAX_SAMPLES 200

typedef struct call_result {
  json_t *stats_a, *stats_b;
  bool sample; /* fill samples[] with A's call_stats every 50 ms */
  send_sample_t samples[MAX_SAMPLES];
  size_t n_samples;
} call_result_t;

/* An integer of call_stats, which must be there. */
static json_int_t stat_int(const json_t *stats, const char *key) {
  const json_t *v = json_object_get(stats, key);
  assert_true(json_is_integer(v));
  return json_integer_value(v);
}

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
  while (res->sample && left > 0 && res->n_samples < MAX_SAMPLES) {
    json_t *st =
        ts_rpc_call_ok(ca, "call_stats", json_pack("{s:s}", "call_id", id));
    res->samples[res->n_samples++] =
        (send_sample_t){ts_now_ms() - t0,
                        json_integer_value(json_object_get(st, "frames_sent")),
                        json_integer_value(json_object_get(st, "bytes_sent"))};
    json_decref(st);
    ts_sleep_ms(50);
    left = CALL_SECONDS * 1000 - (ts_now_ms() - t0);
  }
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
  call_result_t res = {0};
  run_call(f, transport, src_a, src_b, 0, &res);

  pcm_t ref_a, ref_b, heard_a, heard_b;
  char *ha = ts_path(f->dir, "a_heard.wav"),
       *hb = ts_path(f->dir, "b_heard.wav");
  assert_int_equal(load_wav(wa, &ref_a), 0);
  assert_int_equal(load_wav(wb, &ref_b), 0);
  assert_int_equal(load_wav(hb, &heard_b), 0);
  assert_int_equal(load_wav(ha, &heard_a), 0);
  double c_ab = speech_correlation(&ref_a, &heard_b, NULL);
  double c_ba = speech_correlation(&ref_b, &heard_a, NULL);
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
  call_result_t res = {0};
  run_call(f, "datagram", "tone:440:-12", "null", 3, &res);
  /* Muted, A sent silence as DTX: B's jitter buffer played DTX turns
   * (a steady tone alone never goes DTX: see media.c), and lost nothing. */
  json_int_t dtx = stat_int(res.stats_b, "frames_dtx");
  json_int_t conc = stat_int(res.stats_b, "frames_concealed");
  printf("  B: %lld DTX turns, %lld concealed\n", (long long)dtx,
         (long long)conc);
  assert_true(dtx > 50);
  assert_true(conc <= 2);
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

/* ---- DTX: silence costs next to nothing ---- */

/* A's source: 2.5 s of speech, 4 s of digital silence, 3 s of speech. */
#define DTX_SPEECH1_MS 2500
#define DTX_SILENCE_MS 4000
#define DTX_SPEECH2_MS 3000

static void write_wav(const char *path, const pcm_t *p) {
  audio_sink_t *sink;
  char err[256];
  assert_int_equal(wav_sink_open(path, &sink, err, sizeof(err)), 0);
  for (size_t at = 0; at + AUDIO_FRAME_SAMPLES <= p->n;
       at += AUDIO_FRAME_SAMPLES)
    assert_int_equal(audio_sink_write(sink, p->s + at), 0);
  assert_int_equal(audio_sink_close(sink), 0);
}

/* Frames and bytes A sent per second between from_ms and to_ms (after
 * the call went active), from the samples. */
static void send_rate(const call_result_t *res, int64_t from_ms, int64_t to_ms,
                      double *frames, double *bytes) {
  const send_sample_t *a = NULL, *b = NULL;
  for (size_t i = 0; i < res->n_samples; i++) {
    if (!a && res->samples[i].t_ms >= from_ms)
      a = &res->samples[i];
    if (res->samples[i].t_ms <= to_ms)
      b = &res->samples[i];
  }
  assert_non_null(a);
  assert_non_null(b);
  assert_true(b->t_ms - a->t_ms >= (to_ms - from_ms) / 2);
  double secs = (double)(b->t_ms - a->t_ms) / 1000.0;
  *frames = (double)(b->frames - a->frames) / secs;
  *bytes = (double)(b->bytes - a->bytes) / secs;
}

/* The latency B measured with DTX off (test_dtx_off runs first), to hold
 * the DTX call to it; -1 if not measured. */
static double g_p50_without_dtx = -1;

/* A sends speech, a long silence and speech again. What is sent in the
 * silence (after Opus's 200 ms hangover) is compared with the speech
 * before it; what B heard must be the speech, silence in between, and the
 * second sentence must play at the delay of the first. */
static void dtx_call(void **state, bool dtx) {
  fixture_t *f = *state;
  char *speech = ts_path(f->dir, "speech.wav"), *wa = ts_path(f->dir, "a.wav");
  if (!make_speech(speech, "Hello Bob, this is Alice calling from parley. "
                           "The quick brown fox jumps over the lazy dog.")) {
    printf("SKIP: espeak-ng is not available to make speech\n");
    skip();
  }
  pcm_t sp, ref;
  assert_int_equal(load_wav(speech, &sp), 0);
  const size_t ms = 48, n1 = DTX_SPEECH1_MS * ms, gap = DTX_SILENCE_MS * ms,
               n2 = DTX_SPEECH2_MS * ms;
  assert_true(sp.n >= n2);
  ref.n = n1 + gap + n2;
  ref.s = calloc(ref.n, sizeof(int16_t));
  memcpy(ref.s, sp.s, n1 * sizeof(int16_t));
  memcpy(ref.s + n1 + gap, sp.s, n2 * sizeof(int16_t));
  write_wav(wa, &ref);

  assert_int_equal(ts_daemon_pair_start_config(f->dir, &f->a, &f->b,
                                               dtx ? NULL : "dtx = off\n"),
                   0);
  char src_a[1024];
  snprintf(src_a, sizeof(src_a), "file:%s", wa);
  call_result_t res = {.sample = true};
  run_call(f, "datagram", src_a, "null", 0, &res);

  /* Speech: 0.4..2.2 s; silence: from 0.8 s after it began (the hangover,
   * and slack for when A's capture started) to 0.5 s before it ends. */
  double sp_frames, sp_bytes, si_frames, si_bytes;
  send_rate(&res, 400, 2200, &sp_frames, &sp_bytes);
  send_rate(&res, DTX_SPEECH1_MS + 800, DTX_SPEECH1_MS + DTX_SILENCE_MS - 500,
            &si_frames, &si_bytes);
  const json_t *sa = res.stats_a, *sb = res.stats_b;
  double p50 = json_real_value(json_object_get(sb, "latency_p50_ms"));
  printf("  DTX %s: A sent %.1f frames/s, %.0f B/s in speech; %.1f frames/s, "
         "%.0f B/s in silence (%.1f%% of the frames, %.1f%% of the bytes); "
         "A skipped %lld DTX frames; B: %lld DTX turns, %lld concealed, "
         "%lld FEC, latency p50 %.1f ms\n",
         dtx ? "on" : "off", sp_frames, sp_bytes, si_frames, si_bytes,
         100 * si_frames / sp_frames, 100 * si_bytes / sp_bytes,
         (long long)stat_int(sa, "frames_dtx_skipped"),
         (long long)stat_int(sb, "frames_dtx"),
         (long long)stat_int(sb, "frames_concealed"),
         (long long)stat_int(sb, "frames_recovered_fec"), p50);
  assert_true(sp_frames > 40);
  assert_true(json_is_true(json_object_get(sa, "dtx")) == dtx);
  if (dtx) {
    assert_true(si_frames < 0.2 * sp_frames);
    assert_true(si_bytes < 0.2 * sp_bytes);
    assert_true(stat_int(sa, "frames_dtx_skipped") > 100);
    assert_true(stat_int(sb, "frames_dtx") > 100);
  } else {
    assert_true(si_frames > 0.9 * sp_frames);
    assert_int_equal(stat_int(sa, "frames_dtx_skipped"), 0);
    assert_int_equal(stat_int(sb, "frames_dtx"), 0);
  }
  /* Clean loopback: nothing lost, the gaps included. */
  assert_true(stat_int(sb, "frames_concealed") <= 2);
  assert_true(json_real_value(json_object_get(sb, "loss_percent")) < 1);

  pcm_t heard;
  char *hb = ts_path(f->dir, "b_heard.wav");
  assert_int_equal(load_wav(hb, &heard), 0);
  size_t lag;
  double c = speech_correlation(&ref, &heard, &lag);
  /* The last half second before the silence and the first after it: the
   * talker resumes at the delay it had. Had the gap counted as jitter, the
   * delay would jump by up to the buffer's 200 ms; one frame (20 ms) of
   * slack is left for a stretch from a busy machine, which can happen
   * anywhere. */
  size_t lag1 = 0, lag2 = 0, w = 500 * ms;
  double c1 = window_align(&ref, n1 - w, w, &heard, lag, &lag1);
  double c2 = window_align(&ref, n1 + gap, w, &heard, lag, &lag2);
  double quiet =
      audio_rms_dbfs(heard.s + lag1 + n1 + 500 * ms, gap - 1000 * ms);
  printf("  B heard: correlation %.3f; speech before the silence at %.1f ms "
         "(%.3f), after it at %.1f ms (%.3f); %.1f dBFS in the silence\n",
         c, lag1 / 48.0, c1, lag2 / 48.0, c2, quiet);
  assert_true(c >= 0.9);
  assert_true(c1 >= 0.8 && c2 >= 0.8);
  assert_true(lag2 <= lag1 + 22 * ms);
  assert_true(quiet < -60);
  /* Latency within a frame of the call without DTX (plus slack for the
   * machine's load, which moves a call's delay by a frame at times). */
  if (dtx && g_p50_without_dtx >= 0)
    assert_true(p50 <= g_p50_without_dtx + 25);
  if (!dtx)
    g_p50_without_dtx = p50;

  json_decref(res.stats_a);
  json_decref(res.stats_b);
  free(sp.s);
  free(ref.s);
  free(heard.s);
  free(hb);
  free(speech);
  free(wa);
}

static void test_dtx_off(void **state) {
  dtx_call(state, false);
}

/* DTX is on by default (no config). */
static void test_dtx_silence(void **state) {
  dtx_call(state, true);
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
      cmocka_unit_test_setup_teardown(test_dtx_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dtx_silence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_audio, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
