/* Call media: the per-call voice pipeline and its threads; see media.h. */
#include "call/media.h"

#include "call/apidev.h"
#include "call/video.h"
#include "core/log.h"
#include "core/util.h"
#include "device/device.h"
#include "device/vdevice.h"
#include "device/portaudio.h"
#include "media/audio.h"
#include "media/audioframe.h"
#include "media/audioproc.h"
#include "media/jitter.h"
#include "media/opus_codec.h"
#include "media/ring.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEDIA_RING_SLOTS 64 /* 1.28 s of 20 ms frames */
#define MEDIA_REPORT_MS 500
#define MEDIA_REDIAL_MS 1000
#define MEDIA_LATENCIES 500 /* last 10 s of played frames */
/* DTX frames sent at the start of each DTX run: the first tells the peer
 * that the frames it will not get are silence, not loss (media/jitter.h);
 * the second covers the first being lost, which would make the whole run
 * (up to ~400 ms until Opus's next comfort-noise update) count as loss. */
#define MEDIA_DTX_SENT 2

typedef struct tx_pkt {
  uint32_t seq;
  uint16_t len;
  uint64_t ts_us;
  uint8_t data[OPUS_CODEC_MAX_PACKET];
} tx_pkt_t;

typedef struct rx_pkt {
  uint32_t seq;
  uint16_t len;
  uint64_t ts_us;
  int64_t arrival_us;
  uint8_t data[AUDIOFRAME_MAX_DATA];
} rx_pkt_t;

/* What the playout thread measured; copied out under the lock. */
typedef struct play_stats {
  jitter_stats_t jb;
  uint32_t latencies_us[MEDIA_LATENCIES];
  size_t n_latencies, next_latency;
  double level_dbfs; /* RMS of the last second played */
} play_stats_t;

typedef struct call_media {
  struct call_media *next;
  media_mgr_t *mm;
  char call_id[CALLSIGNAL_CALL_ID_MAX + 1];
  bool caller;
  call_link_t *link;
  audio_source_t *src;
  audio_sink_t *sink;
  opus_codec_enc_t *enc;
  opus_codec_dec_t *dec;
  jitter_t *jb;
  audioproc_t *ap;     /* AEC, NS, AGC on the capture path; see media__ap_* */
  uint64_t ap_silence; /* playout thread: the sink's silence count */
  bool ap_silence_seen;
  ring_t *tx, *rx;
  uv_async_t tx_async;
  uv_timer_t report_timer, redial_timer;
  uv_thread_t capture_thread, playout_thread;
  bool threads_started;
  int open_handles;
  atomic_bool running, muted;
  bool dtx; /* Opus DTX: silence sends next to nothing (set at start) */
  bool peer_muted;
  uv_mutex_t lock; /* guards play */
  play_stats_t play;
  atomic_uint_fast64_t dtx_skipped; /* DTX frames not sent (capture) */
  /* Loop-side counters. */
  uint64_t frames_sent, bytes_sent, frames_received, bytes_received;
  uint64_t send_errors;
  uint64_t bytes_received_last, bytes_sent_last, last_report_ms;
  uint32_t recv_bitrate, send_bitrate;
  link_report_t peer_report;
  bool have_peer_report;
  unsigned ticks;
  /* Video, from the first time it is sent or received (the playout thread
   * reads the pointer to pass on the audio delay for lip sync). */
  _Atomic(cvideo_t *) video;
  cvideo_t *dying_video; /* being stopped */
  uv_work_t join_req;
  char vsource[MEDIA_DEVICE_MAX], vsink[MEDIA_DEVICE_MAX];
} call_media_t;

/* Devices asked for one call before it started. */
typedef struct call_devices {
  struct call_devices *next;
  char call_id[CALLSIGNAL_CALL_ID_MAX + 1];
  char source[MEDIA_DEVICE_MAX], sink[MEDIA_DEVICE_MAX];
  char vsource[MEDIA_DEVICE_MAX], vsink[MEDIA_DEVICE_MAX];
} call_devices_t;

struct media_mgr {
  uv_loop_t *loop;
  link_listener_t *links;
  media_mgr_ops_t ops;
  void *ctx;
  char source[MEDIA_DEVICE_MAX], sink[MEDIA_DEVICE_MAX];
  char vsource[MEDIA_DEVICE_MAX], vsink[MEDIA_DEVICE_MAX];
  bool video_rgba;
  call_media_t *calls;
  call_media_t *stopping; /* hung up, threads being joined */
  call_devices_t *call_devices;
  media_audio_processing_t ap_defaults;
  bool dtx; /* for calls that start later */
};

static const link_ops_t media__link_ops;
static void media__on_video(call_link_t *l, const videoframe_t *f, void *user);
static cvideo_t *media__video(call_media_t *m, bool send);
static void media__ap_capture(call_media_t *m, int16_t *pcm);
static void media__ap_render(call_media_t *m, const int16_t *pcm);
static audioproc_t *media__ap_new(media_mgr_t *mm, call_media_t *m);
static json_t *media__ap_json(call_media_t *m);

/* ---- time ---- */

static int64_t media__mono_us(void) {
  return (int64_t)(time_mono_ns() / 1000u);
}

/* Asks for real-time scheduling for a media thread, as audio programs do:
 * a frame that waits behind a compile or a browser tab is a glitch. The
 * threads sleep most of every 20 ms, so they cannot starve the machine.
 * Refused without the privilege (no root, no rtkit): then they run as
 * normal threads and the jitter buffer absorbs what it can. */
static void media__realtime(const char *what) {
  static atomic_bool warned;
  struct sched_param sp = {.sched_priority = 10};
  int r = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
  if (r != 0 && !atomic_exchange(&warned, true))
    LOG_INFO("media",
             "%s thread: no real-time priority (%s); running as a "
             "normal thread",
             what, strerror(r));
}

/* ---- capture thread: source -> Opus -> tx ring ---- */

static void media__capture_main(void *arg) {
  call_media_t *m = arg;
  int16_t pcm[AUDIO_FRAME_SAMPLES];
  tx_pkt_t pkt;
  uint32_t seq = 0;
  unsigned dtx_run = 0; /* DTX frames in a row so far */
  bool ended = false;
  media__realtime("capture");
  uint64_t next = time_mono_ns();
  while (atomic_load(&m->running)) {
    /* An unpaced source, or one that ended (silence from then on), runs
     * on our own 20 ms clock; a device paces itself. */
    if (!m->src->paced || ended) {
      time_sleep_until_ns(next);
      next += AUDIO_FRAME_US * 1000u;
    } else {
      next = time_mono_ns();
    }
    int r = ended ? 0 : audio_source_read(m->src, pcm);
    if (r == -EAGAIN)
      continue;
    if (r <= 0) { /* ended or failed: silence keeps the call alive */
      if (!ended && r < 0)
        LOG_WARN("media", "call %s: source failed: %s", m->call_id,
                 strerror(-r));
      ended = true;
      memset(pcm, 0, sizeof(pcm));
    }
    pkt.ts_us = time_now_us();
    if (!ended)
      media__ap_capture(m, pcm);
    if (atomic_load(&m->muted))
      memset(pcm, 0, sizeof(pcm));
    /* DTX only for quiet frames. libopus (1.3, complexity 5) decides
     * activity with SILK's VAD, which after about a second takes any
     * steady sound for background noise: a -12 dBFS tone came out as
     * comfort noise 20 dB down. Speech pauses, a quiet room and mute are
     * below the threshold; a steady loud sound is sent as it is. */
    if (m->dtx)
      opus_codec_enc_set_dtx(m->enc, audio_rms_dbfs(pcm, AUDIO_FRAME_SAMPLES) <
                                         AUDIO_QUIET_DBFS);
    int len = opus_codec_encode(m->enc, pcm, pkt.data, sizeof(pkt.data));
    if (len < 0) {
      LOG_WARN("media", "call %s: encode: %s", m->call_id,
               opus_codec_strerror(len));
      continue;
    }
    /* Every frame takes its number, sent or not: the receiver's timeline
     * runs on them. Past the first DTX frames of a run, a DTX frame says
     * nothing the peer does not know (its decoder goes on with comfort
     * noise by itself), so it is not sent; Opus's periodic comfort-noise
     * updates are normal packets and go out. */
    pkt.seq = seq++;
    pkt.len = (uint16_t)len;
    dtx_run = m->dtx && opus_codec_packet_is_dtx((size_t)len) ? dtx_run + 1 : 0;
    if (dtx_run > MEDIA_DTX_SENT) {
      atomic_fetch_add(&m->dtx_skipped, 1);
      continue;
    }
    ring_push(m->tx, &pkt);
    uv_async_send(&m->tx_async);
  }
}

/* ---- playout thread: rx ring -> jitter buffer -> Opus -> sink ---- */

static void media__record_latency(call_media_t *m, uint64_t ts_us) {
  uint64_t now = time_now_us();
  if (ts_us == 0 || ts_us > now)
    return;
  uint64_t lat = now - ts_us;
  m->play.latencies_us[m->play.next_latency] =
      lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
  m->play.next_latency = (m->play.next_latency + 1) % MEDIA_LATENCIES;
  if (m->play.n_latencies < MEDIA_LATENCIES)
    m->play.n_latencies++;
}

/* Decodes this tick's audio; returns how long past its due time the
 * played frame waited beyond the jitter target (-1 if no frame played). */
static int64_t media__decode_tick(call_media_t *m, int16_t *pcm, bool quiet) {
  jitter_out_t out;
  int r = 0;
  switch (jitter_pop(m->jb, media__mono_us(), quiet, &out)) {
  case JITTER_WAIT:
    memset(pcm, 0, AUDIO_FRAME_SAMPLES * sizeof(int16_t));
    return -1;
  case JITTER_FRAME:
    r = opus_codec_decode(m->dec, out.data, out.len, pcm);
    break;
  case JITTER_FEC:
    r = opus_codec_decode_fec(m->dec, out.data, out.len, pcm);
    break;
  case JITTER_CONCEAL:
  case JITTER_STRETCH:
  case JITTER_DTX: /* after a DTX frame: Opus's comfort noise goes on */
    r = opus_codec_conceal(m->dec, pcm);
    break;
  }
  if (r < 0)
    memset(pcm, 0, AUDIO_FRAME_SAMPLES * sizeof(int16_t));
  if (out.kind == JITTER_FRAME || out.kind == JITTER_FEC) {
    uv_mutex_lock(&m->lock);
    media__record_latency(m, out.timestamp_us);
    uint32_t lat =
        m->play.latencies_us[(m->play.next_latency + MEDIA_LATENCIES - 1) %
                             MEDIA_LATENCIES];
    uv_mutex_unlock(&m->lock);
    cvideo_t *v = atomic_load(&m->video);
    if (v)
      cvideo_set_audio_latency(v, lat);
  }
  if (out.kind != JITTER_FRAME)
    return -1;
  jitter_stats_t st;
  jitter_get_stats(m->jb, &st);
  return out.delay_us - st.target_us;
}

/* Playout phase, for sinks that run on our clock (files, null, the API):
 * the jitter buffer's delay moves in whole frames, so a tick lands anywhere
 * up to 20 ms after the frame could have played -- 10 ms of needless delay
 * on average. Every half second, the smallest excess (delay beyond the
 * target) of the frames played is looked at: above 4 ms the clock steps
 * earlier by all but 2 ms of it (at most 10 ms at a time), below 1 ms it
 * steps 1 ms later, so ticks come 1-4 ms after the target. A device sink
 * keeps its own clock and is left alone. Returns the step for `next`, in
 * ns (negative: earlier). */
#define MEDIA_PHASE_TICKS 25
static int64_t media__phase(int64_t *min_excess, unsigned *n, int64_t excess) {
  if (excess >= 0 && (*min_excess < 0 || excess < *min_excess))
    *min_excess = excess;
  if (++*n < MEDIA_PHASE_TICKS)
    return 0;
  int64_t e = *min_excess, step = 0;
  *n = 0;
  *min_excess = -1;
  if (e > 4000)
    step = -(e - 2000 < 10000 ? e - 2000 : 10000);
  else if (e >= 0 && e < 1000)
    step = 1000;
  return step * 1000;
}

static void media__playout_main(void *arg) {
  call_media_t *m = arg;
  int16_t pcm[AUDIO_FRAME_SAMPLES];
  rx_pkt_t pkt;
  bool quiet = true;
  double energy = 0;
  unsigned frames = 0, sink_errors = 0;
  media__realtime("playout");
  uint64_t next = time_mono_ns();
  int64_t min_excess = -1;
  unsigned phase_ticks = 0;
  while (atomic_load(&m->running)) {
    if (!m->sink->paced) {
      time_sleep_until_ns(next);
      next += AUDIO_FRAME_US * 1000u;
    }
    while (ring_pop(m->rx, &pkt))
      jitter_insert(m->jb, pkt.seq, pkt.ts_us, pkt.arrival_us, pkt.data,
                    pkt.len);
    int64_t excess = media__decode_tick(m, pcm, quiet);
    if (!m->sink->paced)
      next += (uint64_t)media__phase(&min_excess, &phase_ticks, excess);
    int r = audio_sink_write(m->sink, pcm);
    if (r == 0)
      media__ap_render(m, pcm);
    if (r < 0 && r != -EAGAIN && sink_errors++ % 250 == 0)
      LOG_WARN("media", "call %s: sink: %s (%u times)", m->call_id,
               strerror(-r), sink_errors);
    double db = audio_rms_dbfs(pcm, AUDIO_FRAME_SAMPLES);
    quiet = db < AUDIO_QUIET_DBFS;
    energy += db;
    if (++frames == 50) {
      uv_mutex_lock(&m->lock);
      jitter_get_stats(m->jb, &m->play.jb);
      m->play.level_dbfs = energy / frames;
      uv_mutex_unlock(&m->lock);
      frames = 0;
      energy = 0;
    }
  }
  uv_mutex_lock(&m->lock);
  jitter_get_stats(m->jb, &m->play.jb);
  uv_mutex_unlock(&m->lock);
}

/* ---- loop side ---- */

static void media__on_tx(uv_async_t *h) {
  call_media_t *m = h->data;
  tx_pkt_t pkt;
  uint8_t wire[AUDIOFRAME_MAX_LEN];
  while (ring_pop(m->tx, &pkt)) {
    audioframe_t f = {pkt.seq, pkt.ts_us, pkt.len, pkt.data};
    int n = audioframe_encode(wire, sizeof(wire), &f);
    if (n < 0 || !m->link || !call_link_is_up(m->link))
      continue;
    if (call_link_send_audio(m->link, wire, (size_t)n) != 0) {
      m->send_errors++;
      continue;
    }
    m->frames_sent++;
    m->bytes_sent += (uint64_t)n;
  }
}

static void media__on_audio(call_link_t *l, const audioframe_t *f, void *user) {
  call_media_t *m = user;
  rx_pkt_t pkt;
  pkt.seq = f->sequence;
  pkt.ts_us = f->timestamp_us;
  pkt.arrival_us = media__mono_us();
  pkt.len = f->len;
  memcpy(pkt.data, f->data, f->len);
  ring_push(m->rx, &pkt);
  m->frames_received++;
  m->bytes_received += AUDIOFRAME_HEADER_LEN + f->len;
}

/* p50 and p99 of the recorded latencies, in microseconds. */
static int media__cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void media__latency(const play_stats_t *p, uint32_t *p50,
                           uint32_t *p99) {
  uint32_t v[MEDIA_LATENCIES];
  size_t n = p->n_latencies;
  *p50 = *p99 = 0;
  if (n == 0)
    return;
  memcpy(v, p->latencies_us, n * sizeof(v[0]));
  qsort(v, n, sizeof(v[0]), media__cmp_u32);
  *p50 = v[n / 2];
  *p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
}

static void media__snapshot(call_media_t *m, play_stats_t *p) {
  uv_mutex_lock(&m->lock);
  *p = m->play;
  uv_mutex_unlock(&m->lock);
}

/* good / fair / poor from what both sides see (the seed's connection
 * quality indicator). */
static const char *media__quality(double loss_pct, double rtt_ms,
                                  double jitter_ms, double p99_ms) {
  if (loss_pct > 10 || rtt_ms > 400 || jitter_ms > 80 || p99_ms > 400)
    return "poor";
  if (loss_pct > 2 || rtt_ms > 150 || jitter_ms > 30 || p99_ms > 150)
    return "fair";
  return "good";
}

static json_t *media__stats_json(call_media_t *m) {
  play_stats_t p;
  media__snapshot(m, &p);
  uint32_t p50, p99;
  media__latency(&p, &p50, &p99);
  quic_conn_stats_t qs = {0};
  if (m->link)
    call_link_stats(m->link, &qs);
  uint64_t lost = p.jb.lost;
  uint64_t total = p.jb.played + lost;
  double loss = total ? 100.0 * (double)lost / (double)total : 0;
  double peer_loss =
      m->have_peer_report ? m->peer_report.loss_permille / 10.0 : 0;
  double rtt = qs.smoothed_rtt_us / 1000.0;
  double jitter = p.jb.jitter_us / 1000.0;
  const char *q = media__quality(loss > peer_loss ? loss : peer_loss, rtt,
                                 jitter, p99 / 1000.0);
  json_t *o = json_pack(
      "{s:s, s:s, s:b, s:b, s:b, s:f, s:f, s:f, s:f, s:I, s:I, s:f, s:f, "
      "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I}",
      "call_id", m->call_id, "quality", q, "link_up",
      m->link && call_link_is_up(m->link), "muted", atomic_load(&m->muted),
      "peer_muted", m->peer_muted, "rtt_ms", rtt, "rtt_var_ms",
      qs.rtt_var_us / 1000.0, "loss_percent", loss, "peer_loss_percent",
      peer_loss, "bitrate_sent", (json_int_t)m->send_bitrate,
      "bitrate_received", (json_int_t)m->recv_bitrate, "jitter_ms", jitter,
      "jitter_buffer_ms", p.jb.delay_us / 1000.0, "frames_sent",
      (json_int_t)m->frames_sent, "frames_received",
      (json_int_t)m->frames_received, "frames_played", (json_int_t)p.jb.played,
      "frames_late", (json_int_t)p.jb.late, "frames_recovered_fec",
      (json_int_t)p.jb.recovered_fec, "frames_concealed",
      (json_int_t)p.jb.concealed, "ring_overruns",
      (json_int_t)(ring_overruns(m->tx) + ring_overruns(m->rx)),
      "opus_fec_loss_percent", (json_int_t)opus_codec_enc_loss(m->enc),
      "latency_p50_ms", p50 / 1000.0, "latency_p99_ms", p99 / 1000.0,
      "played_level_dbfs", (json_int_t)p.level_dbfs);
  if (o) {
    json_object_set_new(o, "frames_send_failed",
                        json_integer((json_int_t)m->send_errors));
    json_object_set_new(o, "bytes_sent",
                        json_integer((json_int_t)m->bytes_sent));
    json_object_set_new(o, "bytes_received",
                        json_integer((json_int_t)m->bytes_received));
    json_object_set_new(o, "dtx", json_boolean(m->dtx));
    json_object_set_new(o, "frames_dtx_skipped",
                        json_integer((json_int_t)atomic_load(&m->dtx_skipped)));
    json_object_set_new(o, "frames_dtx", json_integer((json_int_t)p.jb.dtx));
  }
  if (o && m->link)
    json_object_set_new(
        o, "frames_malformed",
        json_integer((json_int_t)call_link_bad_frames(m->link)));
  cvideo_t *v = atomic_load(&m->video);
  if (o)
    json_object_set_new(o, "video", v ? cvideo_stats(v) : json_null());
  if (o && m->ap)
    json_object_set_new(o, "audio_processing", media__ap_json(m));
  return o;
}

static void media__on_report_timer(uv_timer_t *t) {
  call_media_t *m = t->data;
  uint64_t now = uv_now(m->mm->loop);
  uint64_t dt = now - m->last_report_ms;
  if (dt == 0)
    return;
  m->recv_bitrate =
      (uint32_t)((m->bytes_received - m->bytes_received_last) * 8000u / dt);
  m->send_bitrate =
      (uint32_t)((m->bytes_sent - m->bytes_sent_last) * 8000u / dt);
  m->bytes_received_last = m->bytes_received;
  m->bytes_sent_last = m->bytes_sent;
  m->last_report_ms = now;

  play_stats_t p;
  media__snapshot(m, &p);
  uint32_t p50, p99;
  media__latency(&p, &p50, &p99);
  link_report_t r = {
      .frames_received = (uint32_t)p.jb.received,
      .frames_lost = (uint32_t)p.jb.lost,
      .frames_late = (uint32_t)p.jb.late,
      .jitter_us = (uint32_t)p.jb.jitter_us,
      .recv_bitrate = m->recv_bitrate,
      .loss_permille =
          (uint16_t)(p.jb.played + p.jb.lost
                         ? 1000 * p.jb.lost / (p.jb.played + p.jb.lost)
                         : 0),
      .jitter_delay_ms = (uint16_t)(p.jb.delay_us / 1000),
      .latency_p50_us = p50,
  };
  uint8_t buf[LINK_REPORT_LEN];
  link_report_encode(&r, buf);
  if (m->link)
    call_link_send_control(m->link, LINK_MSG_REPORT, buf, sizeof(buf));
  cvideo_t *v = atomic_load(&m->video);
  if (v)
    cvideo_tick(v);
  if (++m->ticks % 2 == 0 && m->mm->ops.event)
    m->mm->ops.event(m->mm->ctx, "call-quality", media__stats_json(m));
}

static void media__on_control(call_link_t *l, enum link_msg type,
                              const uint8_t *p, size_t len, void *user) {
  call_media_t *m = user;
  cvideo_t *v = atomic_load(&m->video);
  switch (type) {
  case LINK_MSG_VIDEO: /* the peer starts video: get ready to show it */
    if (!v && len == 1 && p[0])
      v = media__video(m, false);
    if (v)
      cvideo_on_control(v, type, p, len);
    break;
  case LINK_MSG_KEYFRAME_REQ:
  case LINK_MSG_VIDEO_REPORT:
    if (v)
      cvideo_on_control(v, type, p, len);
    break;
  case LINK_MSG_MUTE:
    if (len == 1)
      m->peer_muted = p[0] != 0;
    break;
  case LINK_MSG_REPORT:
    if (link_report_decode(&m->peer_report, p, len) == 0) {
      m->have_peer_report = true;
      /* In-band FEC sized to what the peer loses, with a floor. */
      int loss = (m->peer_report.loss_permille + 9) / 10;
      opus_codec_enc_set_loss(m->enc, loss < 5 ? 5 : loss);
    }
    break;
  default:
    break;
  }
}

static void media__on_redial(uv_timer_t *t) {
  call_media_t *m = t->data;
  if (m->link && !call_link_is_up(m->link))
    call_link_redial(m->link);
}

static void media__on_up(call_link_t *l, void *user) {
  call_media_t *m = user;
  uv_timer_stop(&m->redial_timer);
  if (atomic_load(&m->muted)) {
    uint8_t one = 1;
    call_link_send_control(l, LINK_MSG_MUTE, &one, 1);
  }
  cvideo_t *v = atomic_load(&m->video);
  if (v)
    cvideo_on_link_up(v);
  if (m->mm->ops.on_link)
    m->mm->ops.on_link(m->mm->ctx, m->call_id, true);
}

static void media__on_down(call_link_t *l, const char *why, void *user) {
  call_media_t *m = user;
  if (m->caller)
    uv_timer_start(&m->redial_timer, media__on_redial, MEDIA_REDIAL_MS,
                   MEDIA_REDIAL_MS);
  if (m->mm->ops.on_link)
    m->mm->ops.on_link(m->mm->ctx, m->call_id, false);
}

static const link_ops_t media__link_ops = {
    .on_up = media__on_up,
    .on_down = media__on_down,
    .on_audio = media__on_audio,
    .on_video = media__on_video,
    .on_control = media__on_control,
};

/* ---- lifecycle ---- */

static call_media_t *media__find(media_mgr_t *mm, const char *call_id) {
  for (call_media_t *m = mm->calls; m; m = m->next)
    if (strcmp(m->call_id, call_id) == 0)
      return m;
  return NULL;
}

static void media__free_parts(call_media_t *m) {
  audio_source_close(m->src);
  int r = audio_sink_close(m->sink);
  if (r != 0)
    LOG_WARN("media", "call %s: closing the sink: %s", m->call_id,
             strerror(-r));
  opus_codec_enc_free(m->enc);
  opus_codec_dec_free(m->dec);
  jitter_free(m->jb);
  audioproc_free(m->ap);
  ring_free(m->tx);
  ring_free(m->rx);
  uv_mutex_destroy(&m->lock);
}

static void media__on_handle_closed(uv_handle_t *h) {
  call_media_t *m = h->data;
  if (--m->open_handles == 0) {
    media__free_parts(m);
    free(m);
  }
}

/* Joining the media threads can take a frame's time or more (a video
 * encode in progress), so a hang-up waits for them in libuv's thread pool,
 * not on the loop; then the handles close and the devices are finished. */
static void media__join(uv_work_t *w) {
  call_media_t *m = w->data;
  if (m->threads_started) {
    uv_thread_join(&m->capture_thread);
    uv_thread_join(&m->playout_thread);
    m->threads_started = false;
  }
  if (m->dying_video)
    cvideo_join(m->dying_video);
}

static void media__joined(uv_work_t *w, int status) {
  call_media_t *m = w->data;
  call_media_t **pp = m->mm ? &m->mm->stopping : NULL;
  while (pp && *pp && *pp != m)
    pp = &(*pp)->next;
  if (pp && *pp)
    *pp = m->next;
  cvideo_free(m->dying_video);
  m->open_handles = 3;
  uv_close((uv_handle_t *)&m->tx_async, media__on_handle_closed);
  uv_close((uv_handle_t *)&m->report_timer, media__on_handle_closed);
  uv_close((uv_handle_t *)&m->redial_timer, media__on_handle_closed);
}

/* Stops a call's media: at once when wait (the daemon is shutting down),
 * else with the joins off the loop. */
static void media__stop(call_media_t *m, bool wait) {
  atomic_store(&m->running, false);
  uv_timer_stop(&m->report_timer);
  uv_timer_stop(&m->redial_timer);
  m->dying_video = atomic_exchange(&m->video, NULL);
  if (m->dying_video)
    cvideo_stop(m->dying_video);
  call_link_free(m->link);
  m->link = NULL;
  m->join_req.data = m;
  if (wait || uv_queue_work(m->mm->loop, &m->join_req, media__join,
                            media__joined) != 0) {
    media__join(&m->join_req);
    media__joined(&m->join_req, 0);
  }
}

/* A frame the call played, for API clients subscribed to media. */
static void media__on_api_frame(void *ctx, const int16_t *pcm) {
  call_media_t *m = ctx;
  if (!m->mm || !atomic_load(&m->running))
    return; /* the call is being stopped */
  char b64[sodium_base64_ENCODED_LEN(AUDIO_FRAME_SAMPLES * 2,
                                     sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)pcm,
                    AUDIO_FRAME_SAMPLES * 2, sodium_base64_VARIANT_ORIGINAL);
  if (m->mm->ops.event)
    m->mm->ops.event(m->mm->ctx, "audio-frame",
                     json_pack("{s:s, s:s, s:s, s:i, s:i}", "call_id",
                               m->call_id, "data", b64, "format", "s16le",
                               "rate", AUDIO_RATE, "channels", 1));
}

int media_mgr_send_audio(media_mgr_t *mm, const char *call_id,
                         const int16_t *pcm) {
  call_media_t *m = media__find(mm, call_id);
  if (!m)
    return -ENOENT;
  if (!apidev_is_source(m->src))
    return -EINVAL;
  return apidev_source_push(m->src, pcm);
}

/* ---- video ---- */

static void media__video_event(void *ctx, const char *name, json_t *params) {
  call_media_t *m = ctx;
  if (m->mm->ops.event)
    m->mm->ops.event(m->mm->ctx, name, params);
  else
    json_decref(params);
}

static void media__video_flowed(void *ctx) {
  call_media_t *m = ctx;
  if (m->mm->ops.on_video)
    m->mm->ops.on_video(m->mm->ctx, m->call_id);
}

/* The call's video, created the first time it is sent or received. */
static cvideo_t *media__video(call_media_t *m, bool send) {
  cvideo_t *v = atomic_load(&m->video);
  if (v)
    return v;
  char err[256] = "";
  cvideo_config_t cfg = {
      .loop = m->mm->loop,
      .call_id = m->call_id,
      .source = m->vsource,
      .sink = m->vsink,
      .link = m->link,
      .send = send,
      .event = media__video_event,
      .on_video = media__video_flowed,
      .ctx = m,
  };
  v = cvideo_new(&cfg, err, sizeof(err));
  if (!v) {
    LOG_ERROR("media", "call %s: video: %s", m->call_id, err);
    return NULL;
  }
  cvideo_set_rgba(v, m->mm->video_rgba);
  atomic_store(&m->video, v);
  if (m->link && call_link_is_up(m->link))
    cvideo_on_link_up(v);
  return v;
}

static void media__on_video(call_link_t *l, const videoframe_t *f, void *user) {
  call_media_t *m = user;
  cvideo_t *v = media__video(m, false);
  if (v)
    cvideo_on_frame(v, f);
}

int media_mgr_set_video(media_mgr_t *mm, const char *call_id, bool on,
                        char *err, size_t err_size) {
  call_media_t *m = media__find(mm, call_id);
  if (!m) {
    snprintf(err, err_size, "no call with media %s", call_id);
    return -ENOENT;
  }
  cvideo_t *v = atomic_load(&m->video);
  if (!v && !on)
    return 0;
  if (!v) {
    snprintf(err, err_size, "video cannot start (see the daemon's log)");
    v = media__video(m, true);
    return v ? 0 : -EIO;
  }
  return cvideo_set_sending(v, on, err, err_size);
}

int media_mgr_send_video(media_mgr_t *mm, const char *call_id, int width,
                         int height, const uint8_t *i420, size_t len) {
  call_media_t *m = media__find(mm, call_id);
  if (!m)
    return -ENOENT;
  cvideo_t *v = atomic_load(&m->video);
  return v ? cvideo_send_frame(v, width, height, i420, len) : -EAGAIN;
}

/* The devices for a call: its own if asked for, else the defaults. */
static int media__open_devices(media_mgr_t *mm, call_media_t *m) {
  const char *src = mm->source, *sink = mm->sink;
  call_devices_t **pp = &mm->call_devices, *cd = NULL;
  for (; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->call_id, m->call_id) == 0) {
      cd = *pp;
      *pp = cd->next;
      break;
    }
  snprintf(m->vsource, sizeof(m->vsource), "%s", mm->vsource);
  snprintf(m->vsink, sizeof(m->vsink), "%s", mm->vsink);
  if (cd) {
    src = cd->source[0] ? cd->source : src;
    sink = cd->sink[0] ? cd->sink : sink;
    if (cd->vsource[0])
      snprintf(m->vsource, sizeof(m->vsource), "%s", cd->vsource);
    if (cd->vsink[0])
      snprintf(m->vsink, sizeof(m->vsink), "%s", cd->vsink);
  }
  char err[256] = "out of memory";
  int r = 0;
  if (strcmp(src, APIDEV_NAME) == 0)
    r = (m->src = apidev_source_new()) ? 0 : -ENOMEM;
  else
    r = device_open_source(src, &m->src, err, sizeof(err));
  if (r == 0 && strcmp(sink, APIDEV_NAME) == 0)
    r = (m->sink = apidev_sink_new(mm->loop, media__on_api_frame, m)) ? 0
                                                                      : -ENOMEM;
  else if (r == 0)
    r = device_open_sink(sink, &m->sink, err, sizeof(err));
  if (r != 0) {
    audio_source_close(m->src);
    m->src = NULL;
  }
  if (r != 0)
    LOG_ERROR("media", "call %s: %s", m->call_id, err);
  else
    LOG_INFO("media", "call %s: source %s, sink %s", m->call_id, src, sink);
  free(cd);
  return r;
}

int media_mgr_start(media_mgr_t *mm, const call_info_t *ci,
                    const uint8_t peer[32],
                    const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                    const struct sockaddr *peer_addr) {
  call_media_t *m = calloc(1, sizeof(*m));
  if (!m)
    return -ENOMEM;
  m->mm = mm;
  snprintf(m->call_id, sizeof(m->call_id), "%s", ci->call_id);
  m->caller = ci->direction == CALL_DIR_OUTGOING;
  uv_mutex_init(&m->lock);
  opus_codec_config_t oc = opus_codec_config_default();
  oc.bitrate = OPUS_CODEC_MAX_BITRATE;
  oc.dtx = m->dtx = mm->dtx;
  oc.mode =
      ci->audio_codec == AUDIO_CODEC_OPUS24K ? OPUS_CODEC_24K : OPUS_CODEC_48K;
  m->enc = opus_codec_enc_new(&oc);
  m->dec = opus_codec_dec_new();
  m->jb = jitter_new(NULL);
  m->tx = ring_new(MEDIA_RING_SLOTS, sizeof(tx_pkt_t), RING_DROP_OLDEST);
  m->rx = ring_new(MEDIA_RING_SLOTS, sizeof(rx_pkt_t), RING_DROP_OLDEST);
  uv_async_init(mm->loop, &m->tx_async, media__on_tx);
  uv_timer_init(mm->loop, &m->report_timer);
  uv_timer_init(mm->loop, &m->redial_timer);
  m->tx_async.data = m->report_timer.data = m->redial_timer.data = m;
  m->next = mm->calls;
  mm->calls = m;
  if (!m->enc || !m->dec || !m->jb || !m->tx || !m->rx ||
      media__open_devices(mm, m) != 0 || !(m->ap = media__ap_new(mm, m))) {
    media_mgr_stop(mm, m->call_id);
    return -EINVAL;
  }

  m->link = m->caller
                ? call_link_dial(mm->links, peer, peer_addr, ci->call_id,
                                 secret, ci->transport, &media__link_ops, m)
                : call_link_expect(mm->links, peer, ci->call_id, secret,
                                   ci->transport, &media__link_ops, m);
  atomic_store(&m->running, true);
  if (!m->link ||
      uv_thread_create(&m->capture_thread, media__capture_main, m) != 0 ||
      uv_thread_create(&m->playout_thread, media__playout_main, m) != 0) {
    media_mgr_stop(mm, m->call_id);
    return -ENOMEM;
  }
  m->threads_started = true;
  if (ci->video && !media__video(m, true))
    LOG_WARN("media", "call %s: goes on without sending video", m->call_id);
  m->last_report_ms = uv_now(mm->loop);
  uv_timer_start(&m->report_timer, media__on_report_timer, MEDIA_REPORT_MS,
                 MEDIA_REPORT_MS);
  return 0;
}

static void media__remove(media_mgr_t *mm, const char *call_id, bool wait) {
  call_media_t **pp = &mm->calls;
  while (*pp && strcmp((*pp)->call_id, call_id) != 0)
    pp = &(*pp)->next;
  call_media_t *m = *pp;
  if (!m)
    return;
  *pp = m->next;
  if (!wait) { /* until joined */
    m->next = mm->stopping;
    mm->stopping = m;
  }
  media__stop(m, wait);
}

void media_mgr_stop(media_mgr_t *mm, const char *call_id) {
  media__remove(mm, call_id, false);
}

void media_mgr_set_dtx(media_mgr_t *mm, bool on) {
  mm->dtx = on;
}

int media_mgr_set_mute(media_mgr_t *mm, const char *call_id, bool muted) {
  call_media_t *m = media__find(mm, call_id);
  if (!m)
    return -ENOENT;
  atomic_store(&m->muted, muted);
  uint8_t b = muted;
  if (m->link)
    call_link_send_control(m->link, LINK_MSG_MUTE, &b, 1);
  return 0;
}

json_t *media_mgr_stats(media_mgr_t *mm, const char *call_id) {
  call_media_t *m = media__find(mm, call_id);
  return m ? media__stats_json(m) : NULL;
}

static int media__check(const char *source, const char *sink, char *err,
                        size_t err_size) {
  audio_source_t *s = NULL;
  audio_sink_t *k = NULL;
  int r = source ? device_open_source(source, &s, err, err_size) : 0;
  if (r == 0 && sink)
    r = device_open_sink(sink, &k, err, err_size);
  audio_source_close(s);
  audio_sink_close(k);
  return r;
}

int media_mgr_set_devices(media_mgr_t *mm, const char *source, const char *sink,
                          char *err, size_t err_size) {
  if ((source && strlen(source) >= MEDIA_DEVICE_MAX) ||
      (sink && strlen(sink) >= MEDIA_DEVICE_MAX)) {
    snprintf(err, err_size, "device name too long");
    return -ENAMETOOLONG;
  }
  /* A sink check would create or truncate a file: only sources and
   * non-file sinks are opened to check them. */
  bool skip_sink =
      sink && (strncmp(sink, "file", 4) == 0 || strcmp(sink, APIDEV_NAME) == 0);
  bool skip_source = source && strcmp(source, APIDEV_NAME) == 0;
  int r = media__check(skip_source ? NULL : source, skip_sink ? NULL : sink,
                       err, err_size);
  if (r != 0)
    return r;
  if (source)
    snprintf(mm->source, sizeof(mm->source), "%s", source);
  if (sink)
    snprintf(mm->sink, sizeof(mm->sink), "%s", sink);
  return 0;
}

void media_mgr_get_devices(media_mgr_t *mm, const char **source,
                           const char **sink) {
  *source = mm->source;
  *sink = mm->sink;
}

/* The devices asked for one call, created empty if none were. */
static call_devices_t *media__call_devices(media_mgr_t *mm,
                                           const char *call_id) {
  for (call_devices_t *cd = mm->call_devices; cd; cd = cd->next)
    if (strcmp(cd->call_id, call_id) == 0)
      return cd;
  call_devices_t *cd = calloc(1, sizeof(*cd));
  if (!cd)
    return NULL;
  snprintf(cd->call_id, sizeof(cd->call_id), "%s", call_id);
  cd->next = mm->call_devices;
  mm->call_devices = cd;
  return cd;
}

int media_mgr_set_call_devices(media_mgr_t *mm, const char *call_id,
                               const char *source, const char *sink) {
  call_devices_t *cd = media__call_devices(mm, call_id);
  if (!cd)
    return -ENOMEM;
  if (source)
    snprintf(cd->source, sizeof(cd->source), "%s", source);
  if (sink)
    snprintf(cd->sink, sizeof(cd->sink), "%s", sink);
  return 0;
}

int media_mgr_set_call_video_devices(media_mgr_t *mm, const char *call_id,
                                     const char *source, const char *sink) {
  call_devices_t *cd = media__call_devices(mm, call_id);
  if (!cd)
    return -ENOMEM;
  if (source)
    snprintf(cd->vsource, sizeof(cd->vsource), "%s", source);
  if (sink)
    snprintf(cd->vsink, sizeof(cd->vsink), "%s", sink);
  return 0;
}

int media_mgr_set_video_devices(media_mgr_t *mm, const char *source,
                                const char *sink, int rgba, char *err,
                                size_t err_size) {
  if ((source && strlen(source) >= MEDIA_DEVICE_MAX) ||
      (sink && strlen(sink) >= MEDIA_DEVICE_MAX)) {
    snprintf(err, err_size, "device name too long");
    return -ENAMETOOLONG;
  }
  /* As for audio: sources are opened to check them; file and api sinks
   * are not (a check would create the file). */
  video_source_t *vs = NULL;
  video_sink_t *vk = NULL;
  int r = 0;
  if (source && strcmp(source, "api") != 0)
    r = vdevice_open_source(source, &vs, err, err_size);
  if (r == 0 && sink && strcmp(sink, "api") != 0 &&
      strncmp(sink, "y4m", 3) != 0)
    r = vdevice_open_sink(sink, &vk, err, err_size);
  video_source_close(vs);
  video_sink_close(vk);
  if (r != 0)
    return r;
  if (source)
    snprintf(mm->vsource, sizeof(mm->vsource), "%s", source);
  if (sink)
    snprintf(mm->vsink, sizeof(mm->vsink), "%s", sink);
  if (rgba >= 0)
    mm->video_rgba = rgba != 0;
  return 0;
}

void media_mgr_get_video_devices(media_mgr_t *mm, const char **source,
                                 const char **sink, bool *rgba) {
  *source = mm->vsource;
  *sink = mm->vsink;
  *rgba = mm->video_rgba;
}

media_mgr_t *media_mgr_new(uv_loop_t *loop, quic_endpoint_t *ep,
                           const uint8_t me[32], const media_mgr_ops_t *ops,
                           void *ctx) {
  media_mgr_t *mm = calloc(1, sizeof(*mm));
  if (!mm)
    return NULL;
  mm->loop = loop;
  mm->ops = *ops;
  mm->ctx = ctx;
  strcpy(mm->source, "tone");
  strcpy(mm->sink, "null");
  strcpy(mm->vsource, "pattern");
  strcpy(mm->vsink, "null");
  mm->ap_defaults =
      (media_audio_processing_t){MEDIA_AP_AUTO, MEDIA_AP_AUTO, MEDIA_AP_AUTO};
  mm->dtx = true;
  apidev_register();
  mm->links = link_listener_new(ep, me);
  if (!mm->links) {
    free(mm);
    return NULL;
  }
  return mm;
}

void media_mgr_free(media_mgr_t *mm) {
  if (!mm)
    return;
  while (mm->calls)
    media__remove(mm, mm->calls->call_id, true);
  /* Calls still being joined finish on their own, without the manager. */
  for (call_media_t *m = mm->stopping; m; m = m->next)
    m->mm = NULL;
  while (mm->call_devices) {
    call_devices_t *cd = mm->call_devices;
    mm->call_devices = cd->next;
    free(cd);
  }
  link_listener_free(mm->links);
  free(mm);
}

/* ---- audio processing (AEC, NS, AGC; media/audioproc.h) ----
 *
 * The capture thread runs the stage on every frame it read; the playout
 * thread hands it every frame the sink took, with the time it will be
 * heard. Both times come from what the devices report: PortAudio's stream
 * latencies plus what is queued in our rings; other ends have none. */

static int64_t media__ap_device_us(uint64_t samples, unsigned rate) {
  return rate ? (int64_t)(samples * 1000000u / rate) : 0;
}

/* When the first sample of the frame just read reached the microphone. */
static void media__ap_capture(call_media_t *m, int16_t *pcm) {
  int64_t now = media__mono_us();
  int64_t at = now - AUDIO_FRAME_US;
  portaudio_stats_t ps;
  if (portaudio_source_stats(m->src, &ps) == 0)
    at -=
        (int64_t)(ps.latency_s * 1e6) + media__ap_device_us(ps.queued, ps.rate);
  audioproc_process(m->ap, pcm, at);
}

/* When the first sample of the frame just written will be heard, and how
 * much silence the device played since the previous frame (an underrun:
 * the reference gets the same silence). Playout thread. */
static void media__ap_render(call_media_t *m, const int16_t *pcm) {
  int64_t at = media__mono_us();
  uint64_t gap = 0;
  portaudio_stats_t ps;
  if (portaudio_sink_stats(m->sink, &ps) == 0) {
    uint64_t frame = (uint64_t)AUDIO_FRAME_SAMPLES * ps.rate / AUDIO_RATE;
    at +=
        (int64_t)(ps.latency_s * 1e6) +
        media__ap_device_us(ps.queued > frame ? ps.queued - frame : 0, ps.rate);
    if (m->ap_silence_seen)
      gap = (ps.silence - m->ap_silence) * AUDIO_RATE / ps.rate;
    m->ap_silence = ps.silence;
    m->ap_silence_seen = true;
  }
  audioproc_render(m->ap, pcm, at, gap);
}

/* MEDIA_AP_AUTO: on for a microphone (a PortAudio source), off for
 * sources without acoustic echo (file, tone, API, null). */
static bool media__ap_pick(int v, bool mic) {
  return v == MEDIA_AP_AUTO ? mic : v == MEDIA_AP_ON;
}

static audioproc_t *media__ap_new(media_mgr_t *mm, call_media_t *m) {
  bool mic = portaudio_source_latency(m->src) >= 0;
  const media_audio_processing_t *d = &mm->ap_defaults;
  audioproc_settings_t s = {media__ap_pick(d->aec, mic),
                            media__ap_pick(d->ns, mic),
                            media__ap_pick(d->agc, mic)};
  audioproc_t *ap = audioproc_new(&s);
  if (!ap)
    LOG_ERROR("media", "call %s: no audio processing stage", m->call_id);
  return ap;
}

static json_t *media__ap_json(call_media_t *m) {
  audioproc_stats_t st;
  audioproc_stats(m->ap, &st);
  json_t *o =
      json_pack("{s:b, s:b, s:b, s:b, s:i, s:f, s:I, s:I}", "aec", st.on.aec,
                "ns", st.on.ns, "agc", st.on.agc, "aec_converged", st.converged,
                "delay_estimate_ms", st.delay_ms, "cpu_percent", st.cpu_percent,
                "render_gaps_ms", (json_int_t)st.render_gaps_ms,
                "reference_overruns", (json_int_t)st.render_overruns);
  if (!o)
    return NULL;
  json_object_set_new(o, "erle_db",
                      st.erle_valid ? json_real(st.erle_db) : json_null());
  json_object_set_new(o, "erl_db",
                      st.erle_valid ? json_real(st.erl_db) : json_null());
  json_object_set_new(o, "aec_delay_ms",
                      st.aec_delay_ms >= 0 ? json_integer(st.aec_delay_ms)
                                           : json_null());
  return o;
}

static void media__ap_apply(media_audio_processing_t *to,
                            const media_audio_processing_t *from) {
  if (from->aec != MEDIA_AP_KEEP)
    to->aec = from->aec;
  if (from->ns != MEDIA_AP_KEEP)
    to->ns = from->ns;
  if (from->agc != MEDIA_AP_KEEP)
    to->agc = from->agc;
}

int media_mgr_set_audio_processing(media_mgr_t *mm, const char *call_id,
                                   const media_audio_processing_t *set,
                                   media_audio_processing_t *now) {
  if (!call_id) {
    media__ap_apply(&mm->ap_defaults, set);
    *now = mm->ap_defaults;
    return 0;
  }
  call_media_t *m = media__find(mm, call_id);
  if (!m || !m->ap)
    return -ENOENT;
  audioproc_settings_t s;
  audioproc_get(m->ap, &s);
  media_audio_processing_t cur = {s.aec ? MEDIA_AP_ON : MEDIA_AP_OFF,
                                  s.ns ? MEDIA_AP_ON : MEDIA_AP_OFF,
                                  s.agc ? MEDIA_AP_ON : MEDIA_AP_OFF};
  media_audio_processing_t ask = *set;
  bool mic = portaudio_source_latency(m->src) >= 0;
  if (ask.aec == MEDIA_AP_AUTO)
    ask.aec = media__ap_pick(MEDIA_AP_AUTO, mic) ? MEDIA_AP_ON : MEDIA_AP_OFF;
  if (ask.ns == MEDIA_AP_AUTO)
    ask.ns = media__ap_pick(MEDIA_AP_AUTO, mic) ? MEDIA_AP_ON : MEDIA_AP_OFF;
  if (ask.agc == MEDIA_AP_AUTO)
    ask.agc = media__ap_pick(MEDIA_AP_AUTO, mic) ? MEDIA_AP_ON : MEDIA_AP_OFF;
  media__ap_apply(&cur, &ask);
  s = (audioproc_settings_t){cur.aec == MEDIA_AP_ON, cur.ns == MEDIA_AP_ON,
                             cur.agc == MEDIA_AP_ON};
  audioproc_set(m->ap, &s);
  *now = cur;
  return 0;
}

void media_mgr_set_audio_processing_defaults(
    media_mgr_t *mm, const media_audio_processing_t *defaults) {
  media__ap_apply(&mm->ap_defaults, defaults);
}
