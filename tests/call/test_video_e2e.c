/* End-to-end video calls: two real parleyd processes on loopback (directly,
 * or through parley-relay for a bandwidth cap). A sends a Y4M file made by
 * ffmpeg (testsrc2, 640x480@24, looping); B writes what it shows to a Y4M
 * file whose FRAME lines carry the sender's sequence numbers. The test
 * matches each received frame to the source frame it came from and lets
 * ffmpeg compute the PSNR; it checks how many frames arrived, that the
 * sender adapts to a 600 kbit/s cap and recovers, and that toggle_video
 * stops and resumes the pictures without touching the audio.
 * Without ffmpeg these tests skip, visibly. */
#include "testsupport.h"

#include <errno.h>
#include <sodium.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALL_SECONDS 10
#define SRC_FRAMES 48 /* two seconds, looped */
#define W 640
#define H 480
#define FRAME_BYTES (W * H * 3 / 2)

typedef struct fixture {
  char *dir;
  ts_daemon_t a, b;
  pid_t relay;
  FILE *relay_ctl;
  char relay_addr[64];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->dir = ts_tmpdir("video");
  *state = f;
  return f->dir ? 0 : -1;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  if (f->relay_ctl)
    fclose(f->relay_ctl);
  if (f->relay > 0) {
    kill(f->relay, SIGTERM);
    ts_wait_pid(f->relay, 5000);
  }
  ts_kill_all();
  ts_rm_rf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static bool have_ffmpeg(void) {
  return system("ffmpeg -version >/dev/null 2>&1") == 0;
}

/* The source: SRC_FRAMES of ffmpeg's testsrc2 (moving, detailed). */
static char *make_source(fixture_t *f) {
  char *path = ts_path(f->dir, "src.y4m");
  char cmd[2048];
  snprintf(cmd, sizeof(cmd),
           "ffmpeg -v error -y -f lavfi -i testsrc2=size=%dx%d:rate=24 "
           "-frames:v %d -pix_fmt yuv420p '%s'",
           W, H, SRC_FRAMES, path);
  assert_int_equal(system(cmd), 0);
  return path;
}

/* parley-relay in front of B, with a pipe to its control channel. */
static void start_relay(fixture_t *f) {
  f->relay = ts_relay_start(f->dir, ts_daemon_port(&f->b), NULL, &f->relay_ctl,
                            f->relay_addr, sizeof(f->relay_addr));
  assert_true(f->relay > 0);
}

static void relay_set(fixture_t *f, const char *line) {
  fprintf(f->relay_ctl, "%s\n", line);
  fflush(f->relay_ctl);
}

static void start_daemons(fixture_t *f) {
  assert_int_equal(ts_daemon_pair_start(f->dir, &f->a, &f->b), 0);
}

/* B knows A; what A dials: B's ticket, or B behind the relay. */
static char *ticket_of_b(fixture_t *f) {
  char *t =
      ts_pair_contacts(&f->a, &f->b, f->relay_addr[0] ? f->relay_addr : NULL);
  assert_non_null(t);
  return t;
}

typedef struct call {
  ts_rpc_t *ca, *cb;
  char id[80];
} call_t;

/* A calls B (video or not) and B answers; B's video goes to out_b (a Y4M
 * file; NULL: the null sink). */
static void call_up(fixture_t *f, call_t *c, const char *transport, bool video,
                    const char *src_a, const char *out_b) {
  char *ticket = ticket_of_b(f);
  c->ca = ts_rpc_connect(f->a.socket, 5000);
  c->cb = ts_rpc_connect(f->b.socket, 5000);
  json_decref(ts_rpc_call_ok(c->ca, "subscribe", NULL));
  json_decref(ts_rpc_call_ok(c->cb, "subscribe", NULL));
  char vsink[1024];
  snprintf(vsink, sizeof(vsink), "%s%s", out_b ? "y4m:" : "null",
           out_b ? out_b : "");
  json_t *call = ts_rpc_call_ok(c->ca, "start_call",
                                json_pack("{s:s, s:s, s:b, s:s, s:s}", "peer",
                                          ticket, "transport", transport,
                                          "video", video, "video_source", src_a,
                                          "audio_source", "tone:440:-20"));
  snprintf(c->id, sizeof(c->id), "%s",
           json_string_value(json_object_get(call, "call_id")));
  json_decref(call);
  json_decref(ts_rpc_wait_event(c->cb, "incoming-call", 10000));
  json_decref(ts_rpc_call_ok(c->cb, "answer_call",
                             json_pack("{s:s, s:s, s:s}", "call_id", c->id,
                                       "video_sink", vsink, "audio_source",
                                       "tone:600:-20")));
  ts_rpc_wait_call_state(c->ca, "active");
  free(ticket);
}

static json_t *stats(ts_rpc_t *c, const char *id) {
  return ts_rpc_call_ok(c, "call_stats", json_pack("{s:s}", "call_id", id));
}

static json_int_t vstat(json_t *s, const char *key) {
  return json_integer_value(json_object_get(json_object_get(s, "video"), key));
}

static double vstat_f(json_t *s, const char *key) {
  return json_number_value(json_object_get(json_object_get(s, "video"), key));
}

/* Ends the call and stops both daemons (which finishes B's Y4M file). */
static void call_down(fixture_t *f, call_t *c) {
  json_decref(
      ts_rpc_call_ok(c->ca, "end_call", json_pack("{s:s}", "call_id", c->id)));
  json_decref(ts_rpc_wait_event(c->cb, "call-ended", 10000));
  ts_rpc_close(c->ca);
  ts_rpc_close(c->cb);
  assert_int_equal(ts_daemon_stop(&f->a), 0);
  assert_int_equal(ts_daemon_stop(&f->b), 0);
}

/* ---- matching received frames to sent ones ---- */

/* Reads B's Y4M: each frame's Xseq and pictures. Writes, in order, the
 * received frames (dist) and the source frames they came from (ref), both
 * at 640x480, and returns how many frames were received. */
static int match_frames(const char *recv, const char *src, const char *dist,
                        const char *ref) {
  size_t rlen, slen;
  char *r = ts_read_file(recv, &rlen);
  char *s = ts_read_file(src, &slen);
  assert_non_null(r);
  assert_non_null(s);
  char *rh = memchr(r, '\n', rlen), *sh = memchr(s, '\n', slen);
  assert_non_null(rh);
  assert_non_null(sh);
  printf("  received file header: %.*s\n", (int)(rh - r), r);
  assert_non_null(strstr(r, " W640 H480"));
  /* Source frames: after each "FRAME...\n". */
  const char *sf[SRC_FRAMES];
  const char *p = sh + 1;
  for (int i = 0; i < SRC_FRAMES; i++) {
    const char *nl = memchr(p, '\n', slen - (size_t)(p - s));
    assert_non_null(nl);
    sf[i] = nl + 1;
    p = nl + 1 + FRAME_BYTES;
  }
  FILE *fd = fopen(dist, "w"), *fr = fopen(ref, "w");
  const char *hdr = "YUV4MPEG2 W640 H480 F24:1 Ip A1:1 C420jpeg\n";
  fputs(hdr, fd);
  fputs(hdr, fr);
  int n = 0;
  p = rh + 1;
  while ((size_t)(p - r) + 6 < rlen) {
    const char *nl = memchr(p, '\n', rlen - (size_t)(p - r));
    if (!nl || (size_t)(nl + 1 - r) + FRAME_BYTES > rlen)
      break;
    const char *x = strstr(p, "Xseq=");
    assert_true(x && x < nl);
    long seq = atol(x + 5);
    fputs("FRAME\n", fd);
    fwrite(nl + 1, 1, FRAME_BYTES, fd);
    fputs("FRAME\n", fr);
    fwrite(sf[seq % SRC_FRAMES], 1, FRAME_BYTES, fr);
    n++;
    p = nl + 1 + FRAME_BYTES;
  }
  fclose(fd);
  fclose(fr);
  free(r);
  free(s);
  return n;
}

/* ffmpeg's average PSNR of dist against ref. */
static double psnr(fixture_t *f, const char *dist, const char *ref) {
  char *log = ts_path(f->dir, "psnr.txt");
  char cmd[4096];
  snprintf(cmd, sizeof(cmd),
           "ffmpeg -hide_banner -nostats -i '%s' -i '%s' -lavfi psnr -f null "
           "- 2>'%s'",
           dist, ref, log);
  assert_int_equal(system(cmd), 0);
  char *text = ts_read_file(log, NULL);
  const char *a = text ? strstr(text, "average:") : NULL;
  assert_non_null(a);
  double v = atof(a + 8);
  const char *line = strstr(text, "PSNR");
  printf("  ffmpeg: %.*s\n", line ? (int)strcspn(line, "\n") : 0,
         line ? line : "");
  free(text);
  free(log);
  return v;
}

static void video_quality(void **state, const char *transport) {
  fixture_t *f = *state;
  if (!have_ffmpeg()) {
    printf("SKIP: ffmpeg is not available\n");
    skip();
  }
  char *src = make_source(f);
  char *out = ts_path(f->dir, "b_seen.y4m");
  char vsrc[1024];
  snprintf(vsrc, sizeof(vsrc), "y4m-loop:%s", src);
  start_daemons(f);
  call_t c;
  call_up(f, &c, transport, true, vsrc, out);
  ts_sleep_ms(CALL_SECONDS * 1000);
  json_t *sa = stats(c.ca, c.id), *sb = stats(c.cb, c.id);
  char *da = json_dumps(json_object_get(sa, "video"), JSON_COMPACT);
  char *db = json_dumps(json_object_get(sb, "video"), JSON_COMPACT);
  printf("  A video: %s\n  B video: %s\n", da, db);
  free(da);
  free(db);
  json_int_t sent = vstat(sa, "frames_sent");
  json_int_t skipped = vstat(sa, "frames_skipped");
  printf("  B lip sync %.1f ms (video latency p50 %.1f ms)\n",
         vstat_f(sb, "lipsync_ms"), vstat_f(sb, "latency_p50_ms"));
  call_down(f, &c);

  char *dist = ts_path(f->dir, "dist.y4m"), *ref = ts_path(f->dir, "ref.y4m");
  int got = match_frames(out, src, dist, ref);
  double db_psnr = psnr(f, dist, ref);
  printf("  %s: %d of %lld frames shown (%.1f %%), PSNR %.2f dB\n", transport,
         got, (long long)sent, sent ? 100.0 * got / (double)sent : 0.0,
         db_psnr);
  /* Sequence numbers map to source frames only if none was skipped. */
  assert_int_equal(skipped, 0);
  assert_true(sent >= CALL_SECONDS * 24 * 9 / 10);
  assert_true(got >= sent * 95 / 100);
  assert_true(db_psnr >= 32.0);
  json_decref(sa);
  json_decref(sb);
  free(dist);
  free(ref);
  free(src);
  free(out);
}

static void test_quality_datagram(void **state) {
  video_quality(state, "datagram");
}
static void test_quality_stream(void **state) {
  video_quality(state, "stream");
}

/* A 600 kbit/s cap from A to B: A steps down within 5 s, B's audio stays
 * timely (p99 <= 150 ms on the datagram transport), and A steps back up
 * within 15 s of the cap being lifted. */
/* The ladder steps A's call_stats remembers, printed. */
static void print_ladder(ts_rpc_t *ca, const char *id) {
  json_t *s = stats(ca, id);
  json_t *steps = json_object_get(json_object_get(s, "video"), "ladder_steps");
  json_int_t t0 =
      json_integer_value(json_object_get(json_array_get(steps, 0), "t_ms"));
  printf("  ladder steps seen:\n");
  for (size_t i = 0; i < json_array_size(steps); i++) {
    json_t *st = json_array_get(steps, i);
    printf("    t=%lld ms level %lld %lldx%lld @ %lld kbps (%s)\n",
           (long long)(json_integer_value(json_object_get(st, "t_ms")) - t0),
           (long long)json_integer_value(json_object_get(st, "level")),
           (long long)json_integer_value(json_object_get(st, "width")),
           (long long)json_integer_value(json_object_get(st, "height")),
           (long long)json_integer_value(json_object_get(st, "bitrate_kbps")),
           json_string_value(json_object_get(st, "reason")));
  }
  json_decref(s);
}

static void adapts_to_cap(void **state, const char *transport,
                          double max_audio_p99) {
  fixture_t *f = *state;
  start_daemons(f);
  start_relay(f);
  char *out = ts_path(f->dir, "b_seen.y4m");
  call_t c;
  call_up(f, &c, transport, true, "pattern", out);
  ts_sleep_ms(4000);
  json_t *s = stats(c.ca, c.id);
  json_int_t before = vstat(s, "bitrate_target_kbps");
  json_int_t level0 = vstat(s, "level");
  json_decref(s);
  printf("  before the cap: level %lld, %lld kbps\n", (long long)level0,
         (long long)before);
  assert_true(before >= 1000);

  relay_set(f, "set up-rate 600");
  int64_t t_cap = ts_now_ms(), t_down = -1;
  json_int_t budget = -1;
  double worst_p99 = 0;
  while (ts_now_ms() - t_cap < 12000) {
    ts_sleep_ms(500);
    s = stats(c.ca, c.id);
    json_int_t kbps = vstat(s, "bitrate_target_kbps");
    json_t *b = json_object_get(json_object_get(s, "video"), "budget_kbps");
    if (t_down < 0 && kbps <= 500) {
      t_down = ts_now_ms() - t_cap;
      /* The step down measured the path: video's budget is known. */
      assert_true(json_is_integer(b));
      budget = json_integer_value(b);
    }
    json_decref(s);
    json_t *sb = stats(c.cb, c.id);
    double p99 = json_number_value(json_object_get(sb, "latency_p99_ms"));
    json_decref(sb);
    if (ts_now_ms() - t_cap > 2000 && p99 > worst_p99)
      worst_p99 = p99;
  }
  printf("  stepped down to <= 500 kbps %.1f s after the cap (video's "
         "budget measured: %lld kbps); B's audio latency p99 at most %.1f ms "
         "while adapting\n",
         t_down / 1000.0, (long long)budget, worst_p99);
  assert_true(t_down >= 0 && t_down <= 5000);
  assert_true(worst_p99 <= max_audio_p99);

  relay_set(f, "set up-rate 0");
  int64_t t_lift = ts_now_ms(), t_up = -1;
  while (ts_now_ms() - t_lift < 16000 && t_up < 0) {
    ts_sleep_ms(500);
    s = stats(c.ca, c.id);
    if (vstat(s, "bitrate_target_kbps") >= before)
      t_up = ts_now_ms() - t_lift;
    json_decref(s);
  }
  print_ladder(c.ca, c.id);
  printf("  back to %lld kbps %.1f s after the cap was lifted\n",
         (long long)before, t_up / 1000.0);
  assert_true(t_up >= 0 && t_up <= 15000);
  call_down(f, &c);
  free(out);
}

static void test_adapts_to_cap(void **state) {
  adapts_to_cap(state, "datagram", 150.0);
}
/* The stream transport adapts the same way; its audio, one QUIC stream,
 * waits for retransmissions of what the cap's queue drops (head-of-line
 * blocking), so its latency is only reported (docs/benchmarks.md). */
static void test_adapts_to_cap_stream(void **state) {
  adapts_to_cap(state, "stream", 1e9);
}

/* A 1280x720 source on a clean path: the ladder climbs from its 640x480
 * start to the top step, 1280x720 @ 2000 kbps, and B shows those pictures
 * at that rate (B's sink is null: a 720p Y4M file would be ~33 MB/s). */
static void test_top_step(void **state) {
  fixture_t *f = *state;
  start_daemons(f);
  call_t c;
  call_up(f, &c, "datagram", true, "pattern:1280x720", NULL);
  int64_t t0 = ts_now_ms(), t_top = -1;
  while (ts_now_ms() - t0 < 20000 && t_top < 0) {
    ts_sleep_ms(250);
    json_t *s = stats(c.ca, c.id);
    if (vstat(s, "level") == 4)
      t_top = ts_now_ms() - t0;
    json_decref(s);
  }
  print_ladder(c.ca, c.id);
  printf("  top step reached %.1f s after the call went active\n",
         t_top / 1000.0);
  assert_true(t_top >= 0);
  json_t *s = stats(c.ca, c.id);
  assert_int_equal(vstat(s, "width"), 1280);
  assert_int_equal(vstat(s, "height"), 720);
  assert_int_equal(vstat(s, "bitrate_target_kbps"), 2000);
  json_decref(s);

  /* Three seconds at the top: pictures keep coming, at the top's rate. */
  json_t *b0 = stats(c.cb, c.id);
  ts_sleep_ms(3000);
  json_t *b1 = stats(c.cb, c.id);
  s = stats(c.ca, c.id);
  json_int_t shown =
      vstat(b1, "frames_displayed") - vstat(b0, "frames_displayed");
  double kbps = vstat_f(b1, "bitrate_received") / 1000.0;
  printf("  at the top: B showed %lld pictures in 3 s, received %.0f kbit/s; "
         "A encodes in %.1f ms a picture; still level %lld\n",
         (long long)shown, kbps, vstat_f(s, "encode_ms"),
         (long long)vstat(s, "level"));
  assert_true(shown >= 60); /* of 72 */
  assert_true(kbps >= 1000);
  assert_int_equal(vstat(b1, "frames_corrupt"), 0);
  json_decref(b0);
  json_decref(b1);
  json_decref(s);
  call_down(f, &c);
}

/* toggle_video off and on: pictures stop and resume at B, audio plays on;
 * an audio-only call can add video, and the history says it had some. */
static void test_toggle(void **state) {
  fixture_t *f = *state;
  start_daemons(f);
  char *out = ts_path(f->dir, "b_seen.y4m");
  call_t c;
  call_up(f, &c, "datagram", false, "pattern", out);
  ts_sleep_ms(1500);
  json_t *s = stats(c.cb, c.id);
  assert_true(json_is_null(json_object_get(s, "video")));
  json_decref(s);

  json_decref(
      ts_rpc_call_ok(c.ca, "toggle_video",
                     json_pack("{s:s, s:b}", "call_id", c.id, "enabled", 1)));
  ts_sleep_ms(2500);
  s = stats(c.cb, c.id);
  json_int_t shown_on = vstat(s, "frames_displayed");
  json_int_t played_on =
      json_integer_value(json_object_get(s, "frames_played"));
  assert_true(json_is_true(
      json_object_get(json_object_get(s, "video"), "peer_sending")));
  json_decref(s);
  printf("  video added: %lld frames shown in 2.5 s\n", (long long)shown_on);
  assert_true(shown_on >= 40);

  json_decref(
      ts_rpc_call_ok(c.ca, "toggle_video",
                     json_pack("{s:s, s:b}", "call_id", c.id, "enabled", 0)));
  ts_sleep_ms(500);
  s = stats(c.cb, c.id);
  json_int_t shown_off = vstat(s, "frames_displayed");
  json_int_t conc0 = json_integer_value(json_object_get(s, "frames_concealed"));
  json_decref(s);
  ts_sleep_ms(2000);
  s = stats(c.cb, c.id);
  json_int_t shown_off2 = vstat(s, "frames_displayed");
  json_int_t played_off =
      json_integer_value(json_object_get(s, "frames_played"));
  json_int_t conc1 = json_integer_value(json_object_get(s, "frames_concealed"));
  assert_true(json_is_false(
      json_object_get(json_object_get(s, "video"), "peer_sending")));
  json_decref(s);
  printf("  video off: %lld frames shown in 2 s; audio played %lld frames, "
         "%lld concealed\n",
         (long long)(shown_off2 - shown_off),
         (long long)(played_off - played_on), (long long)(conc1 - conc0));
  assert_true(shown_off2 - shown_off <= 1);
  /* 2.5 s of 20 ms frames; the count moves once a second */
  assert_true(played_off - played_on >= 75);
  assert_true(conc1 - conc0 <= 5);

  json_decref(
      ts_rpc_call_ok(c.ca, "toggle_video",
                     json_pack("{s:s, s:b}", "call_id", c.id, "enabled", 1)));
  ts_sleep_ms(2000);
  s = stats(c.cb, c.id);
  json_int_t shown_again = vstat(s, "frames_displayed");
  json_decref(s);
  printf("  video on again: %lld frames shown in 2 s\n",
         (long long)(shown_again - shown_off2));
  assert_true(shown_again - shown_off2 >= 30);

  json_decref(
      ts_rpc_call_ok(c.ca, "end_call", json_pack("{s:s}", "call_id", c.id)));
  json_decref(ts_rpc_wait_event(c.cb, "call-ended", 10000));
  json_t *h = ts_rpc_call_ok(c.cb, "get_call_history", NULL);
  json_t *rec = json_array_get(json_object_get(h, "calls"), 0);
  if (!rec)
    rec = json_array_get(h, 0);
  assert_non_null(rec);
  assert_true(json_is_true(json_object_get(rec, "had_video")));
  json_decref(h);
  ts_rpc_close(c.ca);
  ts_rpc_close(c.cb);
  assert_int_equal(ts_daemon_stop(&f->a), 0);
  assert_int_equal(ts_daemon_stop(&f->b), 0);
  free(out);
}

/* The API as both ends: A's client sends flat grey I420 pictures with
 * send_video_frame; B's client, subscribed to media, gets video-frame
 * events (I420, or RGBA when B asked for it) and finds the same grey in
 * them: luma 180, or R = G = B = 191 (BT.601, limited range). */
static void api_frames(void **state, bool rgba) {
  fixture_t *f = *state;
  start_daemons(f);
  char *ticket = ticket_of_b(f);
  ts_rpc_t *ca = ts_rpc_connect(f->a.socket, 5000);
  ts_rpc_t *cb = ts_rpc_connect(f->b.socket, 5000);
  json_t *bad_fmt = ts_rpc_call(
      cb, "set_devices", json_pack("{s:s}", "video_format", "yuyv"), 5000);
  assert_int_equal(ts_rpc_error_code(bad_fmt), -32602);
  json_decref(bad_fmt);
  if (rgba)
    json_decref(ts_rpc_call_ok(cb, "set_devices",
                               json_pack("{s:s}", "video_format", "rgba")));
  json_decref(ts_rpc_call_ok(cb, "subscribe", json_pack("{s:b}", "media", 1)));
  json_t *call = ts_rpc_call_ok(ca, "start_call",
                                json_pack("{s:s, s:b, s:s}", "peer", ticket,
                                          "video", 1, "video_source", "api"));
  char id[80];
  snprintf(id, sizeof(id), "%s",
           json_string_value(json_object_get(call, "call_id")));
  json_decref(call);
  json_decref(ts_rpc_wait_event(cb, "incoming-call", 10000));
  json_decref(ts_rpc_call_ok(
      cb, "answer_call",
      json_pack("{s:s, s:s}", "call_id", id, "video_sink", "api")));
  json_decref(ts_rpc_wait_event(cb, "call-state", 10000));

  /* A wrong size is refused with a clear error, and the call goes on. */
  json_t *bad =
      ts_rpc_call(ca, "send_video_frame",
                  json_pack("{s:s, s:i, s:i, s:s}", "call_id", id, "width", 320,
                            "height", 240, "data", "AAAA"),
                  5000);
  assert_int_equal(ts_rpc_error_code(bad), -32602);
  json_decref(bad);

  const int w = 320, h = 240;
  size_t n = (size_t)w * h * 3 / 2;
  uint8_t *pic = malloc(n);
  memset(pic, 180, (size_t)w * h);
  memset(pic + (size_t)w * h, 128, n - (size_t)w * h);
  size_t b64n = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  char *b64 = malloc(b64n);
  sodium_bin2base64(b64, b64n, pic, n, sodium_base64_VARIANT_ORIGINAL);
  int seen = 0;
  double mean = 0;
  int ew = 0, eh = 0;
  int64_t t0 = ts_now_ms();
  for (int i = 0; i < 72 && seen < 10; i++) {
    json_t *r = ts_rpc_call(ca, "send_video_frame",
                            json_pack("{s:s, s:i, s:i, s:s}", "call_id", id,
                                      "width", w, "height", h, "data", b64),
                            5000);
    /* Refused while the link comes up or the queue is full: that's fine */
    json_decref(r);
    json_t *ev;
    while ((ev = ts_rpc_next_notification(cb, 1)) != NULL) {
      const char *m = json_string_value(json_object_get(ev, "method"));
      json_t *p = json_object_get(ev, "params");
      if (m && strcmp(m, "video-frame") == 0) {
        assert_string_equal(json_string_value(json_object_get(p, "format")),
                            rgba ? "rgba" : "i420");
        ew = (int)json_integer_value(json_object_get(p, "width"));
        eh = (int)json_integer_value(json_object_get(p, "height"));
        const char *d = json_string_value(json_object_get(p, "data"));
        size_t want = (size_t)ew * eh * (rgba ? 4 : 3) / (rgba ? 1 : 2),
               len = 0;
        uint8_t *got = malloc(want);
        assert_int_equal(sodium_base642bin(got, want, d, strlen(d), NULL, &len,
                                           NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        assert_int_equal(len, want);
        /* Luma, or each pixel's red (and green, blue: grey), alpha 255. */
        double sum = 0;
        size_t step = rgba ? 4 : 1;
        for (size_t k = 0; k < (size_t)ew * eh; k++) {
          sum += got[k * step];
          if (rgba) {
            assert_int_equal(got[k * 4], got[k * 4 + 2]);
            assert_int_equal(got[k * 4 + 3], 255);
          }
        }
        mean = sum / ((double)ew * eh);
        free(got);
        seen++;
      }
      json_decref(ev);
    }
    ts_sleep_ms(40);
  }
  printf("  %d video-frame events (%s) in %.1f s; last %dx%d, mean %s %.1f "
         "(sent luma 180)\n",
         seen, rgba ? "rgba" : "i420", (ts_now_ms() - t0) / 1000.0, ew, eh,
         rgba ? "red" : "luma", mean);
  assert_true(seen >= 10);
  if (rgba)
    assert_true(mean > 185 && mean < 197);
  else
    assert_true(mean > 175 && mean < 185);
  json_decref(
      ts_rpc_call_ok(ca, "end_call", json_pack("{s:s}", "call_id", id)));
  ts_rpc_close(ca);
  ts_rpc_close(cb);
  /* A clean exit (under ASan: nothing leaked). */
  assert_int_equal(ts_daemon_stop(&f->a), 0);
  assert_int_equal(ts_daemon_stop(&f->b), 0);
  free(pic);
  free(b64);
  free(ticket);
}

static void test_api_frames(void **state) {
  api_frames(state, false);
}
static void test_api_frames_rgba(void **state) {
  api_frames(state, true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_quality_datagram, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quality_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_toggle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_frames, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_frames_rgba, setup, teardown),
      cmocka_unit_test_setup_teardown(test_top_step, setup, teardown),
      cmocka_unit_test_setup_teardown(test_adapts_to_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_adapts_to_cap_stream, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
