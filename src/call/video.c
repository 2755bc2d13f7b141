/* Call video: encode and decode threads, reordering, lip sync and the
 * adaptive ladder; see video.h. */
#include "call/video.h"

#include "core/log.h"
#include "core/util.h"
#include "device/vdevice.h"
#include "media/ring.h"
#include "media/video.h"
#include "media/vp9_codec.h"

#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CV_RING 32            /* encoded or received frames between threads */
#define CV_REORDER 16         /* frames held for the one that is missing */
#define CV_REORDER_MS 150     /* how long a missing frame is waited for */
#define CV_PLAYOUT 8          /* decoded pictures waiting for their time */
#define CV_MAX_WAIT_US 500000 /* lip sync never holds a picture longer */
#define CV_LATENCIES 240      /* last 10 s of displayed frames */
#define CV_KEYREQ_MS 250      /* between key frame requests */
#define CV_STEPS 16           /* ladder steps remembered for call_stats */
#define CV_HOLD_MS 500        /* unacknowledged video that pauses encoding */
/* Audio's share of a congested path, reserved before video's: Opus at most
 * 32 kbit/s plus AudioFrame, QUIC, UDP and IP headers on 50 packets/s. */
#define CV_AUDIO_KBPS 64
#define CV_HEADROOM_PCT 90 /* of the measured capacity, for VBR peaks */
#define CV_CEILING_MS 6000 /* a capacity measured lately holds video below */
#define CV_API_NAME "api"

/* The adaptive ladder (heights keep the source's aspect ratio). */
static const struct {
  int height, kbps;
} cv_ladder[] = {{240, 250}, {480, 500}, {480, 1000}, {480, 1500}, {720, 2000}};
#define CV_LEVELS ((int)(sizeof(cv_ladder) / sizeof(cv_ladder[0])))
#define CV_START_LEVEL 2

/* An encoded frame between threads (malloc'd; the rings carry pointers). */
typedef struct vpkt {
  uint32_t seq;
  uint64_t ts_us;
  bool key;
  uint16_t width, height;
  uint64_t arrival_ms;
  uint32_t len;
  uint8_t data[];
} vpkt_t;

/* A picture for the API, already converted and base64-encoded by the
 * decode thread: the loop only wraps it in a video-frame event. */
typedef struct api_pic {
  uint32_t seq;
  uint64_t ts_us;
  int width, height;
  bool rgba;
  char b64[];
} api_pic_t;

typedef struct cv_step {
  uint64_t t_ms;
  int level, width, height, kbps;
  const char *why;
} cv_step_t;

struct cvideo {
  uv_loop_t *loop;
  char call_id[CALLSIGNAL_CALL_ID_MAX + 1];
  call_link_t *link;
  void (*event)(void *ctx, const char *name, json_t *params);
  void (*on_video)(void *ctx);
  void *ctx;
  bool told_video;
  atomic_bool rgba; /* video-frame events carry RGBA (else I420) */

  video_source_t *src; /* NULL for an api source */
  video_sink_t *sink;  /* NULL for an api sink */
  bool api_source, api_sink;
  char source[256];
  int src_w, src_h, fps; /* set when the source opens, before sending */

  ring_t *tx, *rx, *api_in, *api_out; /* of pointers */
  uv_async_t tx_async, ctl_async, api_async;
  int open_handles;
  uv_thread_t enc_thread, dec_thread;
  bool enc_started, dec_started;
  uv_mutex_t lock; /* guards the condition waits and the stats below */
  uv_cond_t enc_cond, dec_cond;
  atomic_bool running, sending, key_req, need_keyreq;
  atomic_bool hold; /* the link holds too much unacknowledged video */
  atomic_int level;
  atomic_uint audio_latency_us;

  /* Encode thread's counters. */
  atomic_uint_fast64_t captured, encoded, skipped, keyframes, enc_us_total;
  /* Decode thread's counters. */
  atomic_uint_fast64_t decoded, displayed, corrupt, lost, waited_key;
  uint32_t latencies_us[CV_LATENCIES];
  int32_t sync_us[CV_LATENCIES];
  size_t n_lat, next_lat; /* under lock */

  /* Loop side. */
  bool peer_sending;
  uint64_t last_keyreq_ms, keyreqs_sent, keyreqs_received;
  uint64_t bytes_sent, bytes_received, bytes_sent_last, bytes_received_last;
  uint64_t last_tick_ms;
  uint32_t send_bitrate, recv_bitrate;
  link_video_report_t peer;
  uint32_t peer_rate_prev; /* recv_bitrate of the report before `peer` */
  bool have_peer;
  uint32_t peer_lost_last;
  uint64_t reset_last, min_rtt_us;
  int bad_ticks, good_ticks;
  uint64_t last_down_ms, last_step_ms;
  int failed_level; /* the level a step down left, retried later */
  /* Video's budget on this path, from the rate the peer received while the
   * path was congested (0: none measured); holds for CV_CEILING_MS. */
  uint32_t ceiling_kbps;
  uint64_t ceiling_ms;
  cv_step_t steps[CV_STEPS];
  size_t n_steps;
};

static int cv__open_source(cvideo_t *v, char *err, size_t err_size);

/* ---- time ---- */

static uint64_t cv__mono_ms(void) {
  return time_mono_ns() / 1000000u;
}

/* ---- the ladder ---- */

/* The size and rate of a level for this source: the level's height (never
 * above the source's), the source's aspect ratio, even dimensions. */
static void cv__level_size(const cvideo_t *v, int level, int *w, int *h,
                           int *kbps) {
  int sw = v->src_w ? v->src_w : 640, sh = v->src_h ? v->src_h : 480;
  int hh = cv_ladder[level].height;
  if (hh > sh)
    hh = sh;
  int ww = (int)((int64_t)sw * hh / sh);
  *w = (ww + 1) & ~1;
  *h = (hh + 1) & ~1;
  *kbps = cv_ladder[level].kbps;
}

/* The highest level whose height the source can fill. */
static int cv__top_level(const cvideo_t *v) {
  int top = 0;
  for (int i = 0; i < CV_LEVELS; i++)
    if (cv_ladder[i].height <= (v->src_h ? v->src_h : 480))
      top = i;
  return top;
}

/* ---- encode thread ---- */

static int cv__read_api(cvideo_t *v, video_image_t *img) {
  video_image_t *in;
  int got = 0;
  while (ring_pop(v->api_in, &in)) { /* the newest wins */
    video_image_free(img);
    *img = *in;
    free(in);
    got = 1;
  }
  return got ? 1 : -EAGAIN;
}

static void cv__enc_main(void *arg) {
  cvideo_t *v = arg;
  video_image_t img = {0}, scaled = {0};
  vp9_enc_config_t ec = vp9_enc_config_default();
  int level = -1;
  vp9_enc_t *enc = NULL;
  uint32_t cap_seq = 0, enc_seq = 0;
  bool ended = false;
  uint64_t next = time_mono_ns();
  while (atomic_load(&v->running)) {
    if (!atomic_load(&v->sending) || ended) {
      uv_mutex_lock(&v->lock);
      if (atomic_load(&v->running) && (!atomic_load(&v->sending) || ended))
        uv_cond_timedwait(&v->enc_cond, &v->lock, 200 * 1000000ull);
      uv_mutex_unlock(&v->lock);
      next = time_mono_ns();
      continue;
    }
    if (v->api_source || !v->src->paced) {
      uint64_t period_ns = 1000000000u / (uint64_t)v->fps;
      uint64_t now = time_mono_ns();
      if (next > now)
        time_sleep_until_ns(next);
      else if (now - next > 4 * period_ns)
        next = now; /* far behind (a stall): don't rush to catch up */
      next += period_ns;
    }
    int r =
        v->api_source ? cv__read_api(v, &img) : video_source_read(v->src, &img);
    if (r == -EAGAIN)
      continue;
    if (r <= 0) {
      if (r < 0)
        LOG_WARN("video", "call %s: source failed: %s", v->call_id,
                 strerror(-r));
      ended = true;
      continue;
    }
    img.seq = cap_seq++;
    img.ts_us = time_now_us();
    atomic_fetch_add(&v->captured, 1);

    int want = atomic_load(&v->level);
    if (want != level) {
      int w, h, k;
      cv__level_size(v, want, &w, &h, &k);
      if (!enc) {
        ec.width = w;
        ec.height = h;
        ec.bitrate_kbps = k;
        ec.fps = v->fps;
        enc = vp9_enc_new(&ec);
        if (!enc) {
          LOG_ERROR("video", "call %s: cannot start the VP9 encoder",
                    v->call_id);
          ended = true;
          continue;
        }
      } else if (vp9_enc_reconfigure(enc, w, h, k) != 0) {
        LOG_WARN("video", "call %s: cannot switch to %dx%d", v->call_id, w, h);
      }
      level = want;
    }
    if (atomic_load(&v->hold)) { /* let the link drain: skip, don't queue */
      atomic_fetch_add(&v->skipped, 1);
      continue;
    }
    int ew, eh;
    vp9_enc_get_size(enc, &ew, &eh);
    const video_image_t *in = &img;
    if (img.width != ew || img.height != eh) {
      if (video_image_alloc(&scaled, ew, eh) != 0 ||
          video_image_scale(&img, &scaled) != 0)
        continue;
      in = &scaled;
    }
    bool force = atomic_exchange(&v->key_req, false);
    const uint8_t *out;
    size_t len;
    bool key;
    uint64_t t0 = time_mono_ns();
    if (vp9_enc_encode(enc, in, force, &out, &len, &key) != 0 || len == 0) {
      atomic_fetch_add(&v->skipped, 1);
      continue;
    }
    atomic_fetch_add(&v->enc_us_total, (time_mono_ns() - t0) / 1000u);
    vpkt_t *p = malloc(sizeof(*p) + len);
    if (!p)
      continue;
    *p = (vpkt_t){.seq = enc_seq++,
                  .ts_us = img.ts_us,
                  .key = key,
                  .width = (uint16_t)ew,
                  .height = (uint16_t)eh,
                  .len = (uint32_t)len};
    memcpy(p->data, out, len);
    atomic_fetch_add(&v->encoded, 1);
    if (key)
      atomic_fetch_add(&v->keyframes, 1);
    if (!ring_push(v->tx, &p)) { /* the loop is far behind */
      free(p);
      atomic_store(&v->key_req, true);
      continue;
    }
    uv_async_send(&v->tx_async);
  }
  vp9_enc_free(enc);
  video_image_free(&img);
  video_image_free(&scaled);
}

/* ---- decode thread ---- */

typedef struct cv_dec {
  vp9_dec_t *dec;
  vpkt_t *hold[CV_REORDER]; /* out-of-order frames, by seq */
  size_t n_hold;
  bool have_next, wait_key;
  uint32_t next_seq;
  video_image_t play[CV_PLAYOUT];
  uint64_t play_at[CV_PLAYOUT];
  size_t play_head, play_n;
} cv_dec_t;

static void cv__ask_key(cvideo_t *v) {
  atomic_store(&v->need_keyreq, true);
  uv_async_send(&v->ctl_async);
}

/* Converts and encodes a picture for the API's video-frame event (on the
 * decode thread: a 640x480 picture is 600 KB of base64). */
static void cv__push_api(cvideo_t *v, const video_image_t *img) {
  bool rgba = atomic_load(&v->rgba);
  size_t n = rgba ? (size_t)img->width * img->height * 4
                  : video_i420_size(img->width, img->height);
  size_t b64n = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  uint8_t *raw = malloc(n);
  api_pic_t *pic = malloc(sizeof(*pic) + b64n);
  if (raw && pic) {
    if (rgba)
      video_image_to_rgba(img, raw);
    else
      video_image_to_i420(img, raw);
    *pic = (api_pic_t){img->seq, img->ts_us, img->width, img->height, rgba};
    sodium_bin2base64(pic->b64, b64n, raw, n, sodium_base64_VARIANT_ORIGINAL);
    if (ring_push(v->api_out, &pic)) {
      uv_async_send(&v->api_async);
      pic = NULL;
    }
  }
  free(raw);
  free(pic);
}

static void cv__show(cvideo_t *v, const video_image_t *img) {
  uint64_t now = time_now_us();
  int64_t lat =
      img->ts_us && img->ts_us <= now ? (int64_t)(now - img->ts_us) : 0;
  uint32_t alat = atomic_load(&v->audio_latency_us);
  uv_mutex_lock(&v->lock);
  v->latencies_us[v->next_lat] = (uint32_t)lat;
  v->sync_us[v->next_lat] = alat ? (int32_t)(lat - (int64_t)alat) : 0;
  v->next_lat = (v->next_lat + 1) % CV_LATENCIES;
  if (v->n_lat < CV_LATENCIES)
    v->n_lat++;
  uv_mutex_unlock(&v->lock);
  if (v->api_sink) {
    cv__push_api(v, img);
  } else {
    int r = video_sink_write(v->sink, img);
    if (r < 0)
      LOG_WARN("video", "call %s: sink: %s", v->call_id, strerror(-r));
  }
  atomic_fetch_add(&v->displayed, 1);
}

/* Shows the pictures whose time has come; returns when the next is due
 * (monotonic ns), or 0 if none waits. */
static uint64_t cv__play_due(cvideo_t *v, cv_dec_t *d) {
  while (d->play_n > 0) {
    uint64_t now = time_now_us();
    uint64_t at = d->play_at[d->play_head];
    if (at > now)
      return time_mono_ns() + (at - now) * 1000u;
    cv__show(v, &d->play[d->play_head]);
    d->play_head = (d->play_head + 1) % CV_PLAYOUT;
    d->play_n--;
  }
  return 0;
}

static void cv__decode_one(cvideo_t *v, cv_dec_t *d, vpkt_t *p) {
  if (d->wait_key && !p->key) {
    atomic_fetch_add(&v->waited_key, 1);
    return;
  }
  if (d->play_n == CV_PLAYOUT) { /* full: the oldest goes out now */
    cv__show(v, &d->play[d->play_head]);
    d->play_head = (d->play_head + 1) % CV_PLAYOUT;
    d->play_n--;
  }
  size_t slot = (d->play_head + d->play_n) % CV_PLAYOUT;
  video_image_t *img = &d->play[slot];
  int r = vp9_dec_decode(d->dec, p->data, p->len, img);
  if (r < 0) {
    atomic_fetch_add(&v->corrupt, 1);
    d->wait_key = true;
    cv__ask_key(v);
    return;
  }
  d->wait_key = false;
  if (r == 0)
    return;
  atomic_fetch_add(&v->decoded, 1);
  img->seq = p->seq;
  img->ts_us = p->ts_us;
  /* Lip sync: show it when the audio captured with it plays. */
  uint32_t alat = atomic_load(&v->audio_latency_us);
  uint64_t at = p->ts_us + alat, now = time_now_us();
  if (alat == 0 || at < now)
    at = now;
  else if (at > now + CV_MAX_WAIT_US)
    at = now + CV_MAX_WAIT_US;
  d->play_at[slot] = at;
  d->play_n++;
}

/* Feeds the decoder in sequence order; a gap is waited for briefly (the
 * frames of the datagram transport travel on separate streams and may
 * finish out of order), then skipped, and a key frame asked for. */
static void cv__reorder(cvideo_t *v, cv_dec_t *d, vpkt_t *p) {
  if (p) {
    if (!d->have_next || p->key) {
      if (p->key && d->have_next && (int32_t)(p->seq - d->next_seq) < 0) {
        free(p);
        return;
      }
      if (p->key) { /* everything before it is moot */
        for (size_t i = 0; i < d->n_hold; i++)
          if ((int32_t)(d->hold[i]->seq - p->seq) < 0) {
            free(d->hold[i]);
            d->hold[i--] = d->hold[--d->n_hold];
          }
        if (d->have_next && p->seq != d->next_seq)
          atomic_fetch_add(&v->lost, p->seq - d->next_seq);
        d->next_seq = p->seq;
      } else if (!d->have_next) {
        d->next_seq = p->seq;
      }
      d->have_next = true;
    }
    if ((int32_t)(p->seq - d->next_seq) < 0) { /* late or duplicate */
      free(p);
      return;
    }
    if (d->n_hold == CV_REORDER) {
      free(p);
      return;
    }
    d->hold[d->n_hold++] = p;
  }
  for (;;) {
    size_t found = SIZE_MAX, oldest = SIZE_MAX;
    for (size_t i = 0; i < d->n_hold; i++) {
      if (d->hold[i]->seq == d->next_seq)
        found = i;
      if (oldest == SIZE_MAX ||
          (int32_t)(d->hold[i]->seq - d->hold[oldest]->seq) < 0)
        oldest = i;
    }
    if (found == SIZE_MAX && oldest != SIZE_MAX &&
        (d->n_hold == CV_REORDER ||
         cv__mono_ms() - d->hold[oldest]->arrival_ms > CV_REORDER_MS)) {
      /* Give up on what is missing. */
      atomic_fetch_add(&v->lost, d->hold[oldest]->seq - d->next_seq);
      d->next_seq = d->hold[oldest]->seq;
      if (!d->hold[oldest]->key) {
        d->wait_key = true;
        cv__ask_key(v);
      }
      found = oldest;
    }
    if (found == SIZE_MAX)
      return;
    vpkt_t *q = d->hold[found];
    d->hold[found] = d->hold[--d->n_hold];
    d->next_seq = q->seq + 1;
    cv__decode_one(v, d, q);
    free(q);
  }
}

static void cv__dec_main(void *arg) {
  cvideo_t *v = arg;
  cv_dec_t d = {0};
  d.dec = vp9_dec_new(0);
  if (!d.dec) {
    LOG_ERROR("video", "call %s: cannot start the VP9 decoder", v->call_id);
    return;
  }
  while (atomic_load(&v->running)) {
    vpkt_t *p;
    bool any = false;
    while (ring_pop(v->rx, &p)) {
      any = true;
      cv__reorder(v, &d, p);
    }
    if (!any && d.n_hold)
      cv__reorder(v, &d, NULL); /* time out a gap */
    uint64_t due = cv__play_due(v, &d);
    uint64_t now = time_mono_ns();
    uint64_t wait = 100 * 1000000ull;
    if (due && due > now && due - now < wait)
      wait = due - now;
    if (d.n_hold && wait > 20 * 1000000ull)
      wait = 20 * 1000000ull;
    if (due && due <= now)
      continue;
    uv_mutex_lock(&v->lock);
    if (atomic_load(&v->running) && ring_count(v->rx) == 0)
      uv_cond_timedwait(&v->dec_cond, &v->lock, wait);
    uv_mutex_unlock(&v->lock);
  }
  for (size_t i = 0; i < d.n_hold; i++)
    free(d.hold[i]);
  for (size_t i = 0; i < CV_PLAYOUT; i++)
    video_image_free(&d.play[i]);
  vp9_dec_free(d.dec);
}

/* ---- loop side ---- */

static void cv__tell_video(cvideo_t *v) {
  if (!v->told_video && v->on_video) {
    v->told_video = true;
    v->on_video(v->ctx);
  }
}

/* Pauses the encoder while the link holds more than CV_HOLD_MS of video
 * unacknowledged: on the stream transport nothing else would bound that
 * queue, and frames encoded into it would only arrive late. Skipping before
 * encoding keeps the reference chain whole (no key frame needed). */
static void cv__update_hold(cvideo_t *v, const link_video_stats_t *ls) {
  int w, h, kbps;
  cv__level_size(v, atomic_load(&v->level), &w, &h, &kbps);
  atomic_store(&v->hold, ls->backlog_bytes * 8u / (uint64_t)kbps > CV_HOLD_MS);
}

static void cv__on_tx(uv_async_t *h) {
  cvideo_t *v = h->data;
  vpkt_t *p;
  while (ring_pop(v->tx, &p)) {
    videoframe_t f = {p->seq,    p->ts_us, p->key, p->width,
                      p->height, p->len,   p->data};
    if (v->link && call_link_is_up(v->link)) {
      if (call_link_send_video(v->link, &f) == 0) {
        v->bytes_sent += VIDEOFRAME_HEADER_LEN + p->len;
        cv__tell_video(v);
      } else {
        atomic_store(&v->key_req, true); /* the chain is broken */
      }
    }
    free(p);
  }
  if (v->link) {
    link_video_stats_t ls;
    call_link_video_stats(v->link, &ls);
    cv__update_hold(v, &ls);
  }
}

static void cv__on_ctl(uv_async_t *h) {
  cvideo_t *v = h->data;
  uint64_t now = cv__mono_ms();
  if (!atomic_load(&v->need_keyreq) || now - v->last_keyreq_ms < CV_KEYREQ_MS)
    return; /* cvideo_tick retries */
  if (v->link &&
      call_link_send_control(v->link, LINK_MSG_KEYFRAME_REQ, NULL, 0) == 0) {
    atomic_store(&v->need_keyreq, false);
    v->last_keyreq_ms = now;
    v->keyreqs_sent++;
  }
}

static void cv__on_api_out(uv_async_t *h) {
  cvideo_t *v = h->data;
  api_pic_t *pic;
  while (ring_pop(v->api_out, &pic)) {
    if (v->event)
      v->event(v->ctx, "video-frame",
               json_pack("{s:s, s:I, s:I, s:i, s:i, s:s, s:s}", "call_id",
                         v->call_id, "sequence", (json_int_t)pic->seq,
                         "timestamp_us", (json_int_t)pic->ts_us, "width",
                         pic->width, "height", pic->height, "format",
                         pic->rgba ? "rgba" : "i420", "data", pic->b64));
    free(pic);
  }
}

void cvideo_on_frame(cvideo_t *v, const videoframe_t *f) {
  vpkt_t *p = malloc(sizeof(*p) + f->len);
  if (!p)
    return;
  *p = (vpkt_t){.seq = f->sequence,
                .ts_us = f->timestamp_us,
                .key = f->key_frame,
                .width = f->width,
                .height = f->height,
                .arrival_ms = cv__mono_ms(),
                .len = f->len};
  memcpy(p->data, f->data, f->len);
  v->bytes_received += VIDEOFRAME_HEADER_LEN + f->len;
  cv__tell_video(v);
  if (!ring_push(v->rx, &p)) {
    free(p);
    return;
  }
  uv_mutex_lock(&v->lock);
  uv_cond_signal(&v->dec_cond);
  uv_mutex_unlock(&v->lock);
}

void cvideo_on_control(cvideo_t *v, enum link_msg type, const uint8_t *p,
                       size_t len) {
  switch (type) {
  case LINK_MSG_VIDEO:
    if (len == 1)
      v->peer_sending = p[0] != 0;
    break;
  case LINK_MSG_KEYFRAME_REQ:
    v->keyreqs_received++;
    atomic_store(&v->key_req, true);
    break;
  case LINK_MSG_VIDEO_REPORT: {
    uint32_t prev = v->peer.recv_bitrate;
    if (link_video_report_decode(&v->peer, p, len) == 0) {
      v->peer_rate_prev = v->have_peer ? prev : 0;
      v->have_peer = true;
    }
    break;
  }
  default:
    break;
  }
}

void cvideo_on_link_up(cvideo_t *v) {
  uint8_t on = atomic_load(&v->sending);
  call_link_send_control(v->link, LINK_MSG_VIDEO, &on, 1);
  atomic_store(&v->key_req, true); /* frames may have been lost */
}

int cvideo_set_sending(cvideo_t *v, bool on, char *err, size_t err_size) {
  if (on && !v->src_w) {
    int r = cv__open_source(v, err, err_size);
    if (r != 0)
      return r;
  }
  if (on && !atomic_load(&v->sending))
    atomic_store(&v->key_req, true);
  atomic_store(&v->sending, on);
  uv_mutex_lock(&v->lock);
  uv_cond_signal(&v->enc_cond);
  uv_mutex_unlock(&v->lock);
  uint8_t b = on;
  if (v->link && call_link_is_up(v->link))
    call_link_send_control(v->link, LINK_MSG_VIDEO, &b, 1);
  return 0;
}

bool cvideo_sending(const cvideo_t *v) {
  return atomic_load(&v->sending);
}

void cvideo_set_audio_latency(cvideo_t *v, uint32_t us) {
  atomic_store(&v->audio_latency_us, us);
}

void cvideo_set_rgba(cvideo_t *v, bool rgba) {
  atomic_store(&v->rgba, rgba);
}

int cvideo_send_frame(cvideo_t *v, int width, int height, const uint8_t *i420,
                      size_t len) {
  if (!v->api_source)
    return -EINVAL;
  if (!atomic_load(&v->sending))
    return -EAGAIN;
  video_image_t *img = calloc(1, sizeof(*img));
  if (!img)
    return -ENOMEM;
  int r = video_image_from_i420(img, width, height, i420, len);
  if (r != 0 || !ring_push(v->api_in, &img)) {
    video_image_free(img);
    free(img);
    return r ? r : -ENOBUFS;
  }
  return 0;
}

/* ---- latency figures ---- */

typedef struct cv_lat {
  uint32_t p50_us, p99_us; /* capture to display, pictures shown lately */
  int32_t sync_p50_us;     /* median of video minus audio latency */
} cv_lat_t;

static int cv__cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return x < y ? -1 : x > y;
}

static cv_lat_t cv__latency(cvideo_t *v) {
  int32_t lat[CV_LATENCIES], sync[CV_LATENCIES];
  uv_mutex_lock(&v->lock);
  size_t n = v->n_lat;
  for (size_t i = 0; i < n; i++) {
    lat[i] = (int32_t)(v->latencies_us[i] > INT32_MAX ? INT32_MAX
                                                      : v->latencies_us[i]);
    sync[i] = v->sync_us[i];
  }
  uv_mutex_unlock(&v->lock);
  cv_lat_t l = {0, 0, 0};
  if (n == 0)
    return l;
  qsort(lat, n, sizeof(lat[0]), cv__cmp_i32);
  qsort(sync, n, sizeof(sync[0]), cv__cmp_i32);
  l.p50_us = (uint32_t)lat[n / 2];
  l.p99_us = (uint32_t)lat[(n * 99) / 100];
  l.sync_p50_us = sync[n / 2];
  return l;
}

/* ---- rate adaptation ---- */

static void cv__step(cvideo_t *v, int level, const char *why) {
  int w, h, kbps;
  cv__level_size(v, level, &w, &h, &kbps);
  atomic_store(&v->level, level);
  uint64_t now = cv__mono_ms();
  v->last_step_ms = now;
  v->bad_ticks = v->good_ticks = 0;
  cv_step_t s = {now, level, w, h, kbps, why};
  if (v->n_steps == CV_STEPS) {
    memmove(v->steps, v->steps + 1, sizeof(v->steps[0]) * (CV_STEPS - 1));
    v->n_steps--;
  }
  v->steps[v->n_steps++] = s;
  LOG_INFO("video", "call %s: ladder %d: %dx%d @ %d kbps (%s)", v->call_id,
           level, w, h, kbps, why);
  if (v->event)
    v->event(v->ctx, "video-ladder",
             json_pack("{s:s, s:i, s:i, s:i, s:i, s:s}", "call_id", v->call_id,
                       "level", level, "width", w, "height", h, "bitrate_kbps",
                       kbps, "reason", why));
}

/* Why sending video is congested now, or NULL. */
static const char *cv__congested(cvideo_t *v, const link_video_stats_t *ls,
                                 const quic_conn_stats_t *qs) {
  int w, h, kbps;
  cv__level_size(v, atomic_load(&v->level), &w, &h, &kbps);
  uint64_t queue_ms =
      kbps ? ls->backlog_bytes * 8u / (uint64_t)kbps : 0; /* kbit/ms */
  if (queue_ms > 250)
    return "send backlog";
  if (ls->frames_reset > v->reset_last)
    return "stale frames";
  if (qs->smoothed_rtt_us && v->min_rtt_us &&
      qs->smoothed_rtt_us > v->min_rtt_us + 80000)
    return "queueing delay";
  if (v->have_peer) {
    uint32_t lost = v->peer.frames_lost - v->peer_lost_last;
    if (lost > 2)
      return "frames lost";
    if (v->send_bitrate > 150000 &&
        v->peer.recv_bitrate < v->send_bitrate * 6 / 10)
      return "peer receives less";
  }
  return NULL;
}

/* A path that queues (backlog, stale frames, queueing delay, the peer
 * receiving less than is sent) delivers what it can carry, so the rate the
 * peer reports then is its capacity, video's part of it: the higher of its
 * last two reports (a second), as frames held up by losses make any one of
 * them read low. Audio's share comes off first, then a margin for the
 * encoder's peaks: what is left is video's budget. (QUIC's congestion
 * window is no rate measure here: BBR sizes it from the path's minimum RTT,
 * so under queueing cwnd / RTT reads far below capacity.) */
static bool cv__measure_capacity(cvideo_t *v, const char *why, uint64_t now) {
  if (strcmp(why, "frames lost") == 0 || !v->have_peer ||
      v->peer.recv_bitrate == 0)
    return false; /* loss alone says nothing of the rate */
  uint32_t rate = v->peer.recv_bitrate > v->peer_rate_prev
                      ? v->peer.recv_bitrate
                      : v->peer_rate_prev;
  int64_t total = rate / 1000 + CV_AUDIO_KBPS;
  int64_t budget = total * CV_HEADROOM_PCT / 100 - CV_AUDIO_KBPS;
  v->ceiling_kbps = budget > 0 ? (uint32_t)budget : 1;
  v->ceiling_ms = now;
  return true;
}

/* Video's budget while it holds (a step down measured it in the last
 * CV_CEILING_MS), else 0. */
static uint32_t cv__budget(const cvideo_t *v, uint64_t now) {
  return v->ceiling_kbps && now - v->ceiling_ms < CV_CEILING_MS
             ? v->ceiling_kbps
             : 0;
}

/* The highest level up to `below` - 1, and at most two under it, that fits
 * video's budget (the lowest of those when none does), or `below` - 1 when
 * no budget is known. Two at most: a budget measured in the first second
 * of an overload can still read low. */
static int cv__fitting_level(const cvideo_t *v, int below, uint64_t now) {
  uint32_t budget = cv__budget(v, now);
  if (!budget)
    return below - 1;
  int l = below - 1, lowest = below - 2 > 0 ? below - 2 : 0;
  while (l > lowest && cv_ladder[l].kbps > (int)budget)
    l--;
  return l;
}

static void cv__adapt(cvideo_t *v, const link_video_stats_t *ls) {
  quic_conn_stats_t qs = {0};
  call_link_stats(v->link, &qs);
  if (qs.min_rtt_us && (!v->min_rtt_us || qs.min_rtt_us < v->min_rtt_us))
    v->min_rtt_us = qs.min_rtt_us;
  const char *why = cv__congested(v, ls, &qs);
  v->reset_last = ls->frames_reset;
  if (v->have_peer)
    v->peer_lost_last = v->peer.frames_lost;
  int level = atomic_load(&v->level);
  uint64_t now = cv__mono_ms();
  if (why) {
    v->good_ticks = 0;
    /* Frames piling up, going stale or lost say so at once; a delay or
     * rate signal must last a second. Down to the level the capacity
     * measured now allows, at least one step. */
    bool strong = why[0] == 's' || why[0] == 'f';
    if (++v->bad_ticks >= (strong ? 1 : 2) && level > 0 &&
        now - v->last_step_ms >= 1000) {
      /* A measured budget holds the levels above it for a while; without
       * one, the level just left waits longer to be tried again. */
      v->failed_level = cv__measure_capacity(v, why, now) ? -1 : level;
      v->last_down_ms = now;
      cv__step(v, cv__fitting_level(v, level, now), why);
    }
    return;
  }
  v->bad_ticks = 0;
  v->good_ticks++;
  /* Up after 2 s clean; 4 s to retry the level that failed lately (for a
   * reason that measured no budget); never above a budget measured in the
   * last CV_CEILING_MS (the probe above it waits until then). */
  int need =
      level + 1 == v->failed_level && now - v->last_down_ms < 15000 ? 8 : 4;
  if (level < cv__top_level(v) && v->good_ticks >= need &&
      cv__fitting_level(v, level + 2, now) == level + 1)
    cv__step(v, level + 1, "clean");
}

void cvideo_tick(cvideo_t *v) {
  uint64_t now = cv__mono_ms();
  uint64_t dt = now - v->last_tick_ms;
  if (dt == 0)
    return;
  v->send_bitrate =
      (uint32_t)((v->bytes_sent - v->bytes_sent_last) * 8000 / dt);
  v->recv_bitrate =
      (uint32_t)((v->bytes_received - v->bytes_received_last) * 8000 / dt);
  v->bytes_sent_last = v->bytes_sent;
  v->bytes_received_last = v->bytes_received;
  v->last_tick_ms = now;
  if (!v->link || !call_link_is_up(v->link))
    return;
  if (atomic_load(&v->need_keyreq))
    cv__on_ctl(&v->ctl_async);
  link_video_stats_t ls;
  call_link_video_stats(v->link, &ls);
  if (v->bytes_received) {
    link_video_report_t r = {
        .frames_received = (uint32_t)ls.frames_received,
        .frames_lost = (uint32_t)atomic_load(&v->lost),
        .recv_bitrate = v->recv_bitrate,
        .frames_decoded = (uint32_t)atomic_load(&v->decoded),
        .latency_p50_us = cv__latency(v).p50_us,
    };
    uint8_t buf[LINK_VIDEO_REPORT_LEN];
    link_video_report_encode(&r, buf);
    call_link_send_control(v->link, LINK_MSG_VIDEO_REPORT, buf, sizeof(buf));
  }
  if (atomic_load(&v->sending))
    cv__adapt(v, &ls);
  cv__update_hold(v, &ls);
}

/* ---- stats ---- */

json_t *cvideo_stats(cvideo_t *v) {
  cv_lat_t l = cv__latency(v);
  double p50 = l.p50_us / 1000.0, p99 = l.p99_us / 1000.0;
  double lipsync = l.sync_p50_us / 1000.0;
  link_video_stats_t ls = {0};
  if (v->link)
    call_link_video_stats(v->link, &ls);
  int w, h, kbps;
  cv__level_size(v, atomic_load(&v->level), &w, &h, &kbps);
  uint64_t enc = atomic_load(&v->encoded);
  json_t *o = json_pack(
      "{s:b, s:b, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
      "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
      "s:f}",
      "sending", atomic_load(&v->sending), "peer_sending", v->peer_sending,
      "level", atomic_load(&v->level), "width", w, "height", h,
      "bitrate_target_kbps", kbps, "frames_captured",
      (json_int_t)atomic_load(&v->captured), "frames_encoded", (json_int_t)enc,
      "frames_skipped", (json_int_t)atomic_load(&v->skipped), "keyframes_sent",
      (json_int_t)atomic_load(&v->keyframes), "keyframe_requests_received",
      (json_int_t)v->keyreqs_received, "keyframe_requests_sent",
      (json_int_t)v->keyreqs_sent, "frames_sent", (json_int_t)ls.frames_sent,
      "frames_reset", (json_int_t)ls.frames_reset, "frames_refused",
      (json_int_t)ls.frames_refused, "frames_received",
      (json_int_t)ls.frames_received, "frames_aborted",
      (json_int_t)ls.frames_aborted, "frames_malformed",
      (json_int_t)ls.frames_malformed, "frames_decoded",
      (json_int_t)atomic_load(&v->decoded), "frames_displayed",
      (json_int_t)atomic_load(&v->displayed), "frames_lost",
      (json_int_t)atomic_load(&v->lost), "frames_corrupt",
      (json_int_t)atomic_load(&v->corrupt), "bitrate_sent",
      (json_int_t)v->send_bitrate, "latency_p50_ms", p50, "latency_p99_ms", p99,
      "lipsync_ms", lipsync, "encode_ms",
      enc ? atomic_load(&v->enc_us_total) / 1000.0 / (double)enc : 0.0);
  if (!o)
    return NULL;
  json_object_set_new(o, "bitrate_received",
                      json_integer((json_int_t)v->recv_bitrate));
  json_object_set_new(o, "frames_waiting_key",
                      json_integer((json_int_t)atomic_load(&v->waited_key)));
  json_object_set_new(o, "backlog_bytes",
                      json_integer((json_int_t)ls.backlog_bytes));
  uint32_t budget = cv__budget(v, cv__mono_ms());
  json_object_set_new(o, "budget_kbps",
                      budget ? json_integer(budget) : json_null());
  json_t *steps = json_array();
  for (size_t i = 0; i < v->n_steps; i++)
    json_array_append_new(
        steps,
        json_pack("{s:I, s:i, s:i, s:i, s:i, s:s}", "t_ms",
                  (json_int_t)v->steps[i].t_ms, "level", v->steps[i].level,
                  "width", v->steps[i].width, "height", v->steps[i].height,
                  "bitrate_kbps", v->steps[i].kbps, "reason", v->steps[i].why));
  json_object_set_new(o, "ladder_steps", steps);
  return o;
}

/* ---- lifecycle ---- */

/* Opens the source (the first time video is sent: an audio-only call
 * leaves the camera off) and starts the ladder where the source allows. */
static int cv__open_source(cvideo_t *v, char *err, size_t err_size) {
  if (v->src || v->api_source) {
    if (v->api_source && !v->src_w) {
      v->src_w = 640;
      v->src_h = 480;
      v->fps = 24;
    }
  } else {
    int r = vdevice_open_source(v->source, &v->src, err, err_size);
    if (r != 0)
      return r;
    v->src_w = v->src->width;
    v->src_h = v->src->height;
    v->fps = v->src->fps > 0 && v->src->fps <= 60 ? v->src->fps : 24;
  }
  int top = cv__top_level(v);
  atomic_store(&v->level, CV_START_LEVEL < top ? CV_START_LEVEL : top);
  return 0;
}

static void cv__free_parts(cvideo_t *v) {
  void *p;
  while (v->tx && ring_pop(v->tx, &p))
    free(p);
  while (v->rx && ring_pop(v->rx, &p))
    free(p);
  video_image_t *img;
  while (v->api_in && ring_pop(v->api_in, &img)) {
    video_image_free(img);
    free(img);
  }
  while (v->api_out && ring_pop(v->api_out, &p))
    free(p);
  ring_free(v->tx);
  ring_free(v->rx);
  ring_free(v->api_in);
  ring_free(v->api_out);
  video_source_close(v->src);
  int r = video_sink_close(v->sink);
  if (r != 0)
    LOG_WARN("video", "call %s: closing the sink: %s", v->call_id,
             strerror(-r));
  uv_cond_destroy(&v->enc_cond);
  uv_cond_destroy(&v->dec_cond);
  uv_mutex_destroy(&v->lock);
}

static void cv__on_closed(uv_handle_t *h) {
  cvideo_t *v = h->data;
  if (--v->open_handles == 0) {
    cv__free_parts(v);
    free(v);
  }
}

cvideo_t *cvideo_new(const cvideo_config_t *cfg, char *err, size_t err_size) {
  cvideo_t *v = calloc(1, sizeof(*v));
  if (!v) {
    snprintf(err, err_size, "out of memory");
    return NULL;
  }
  v->loop = cfg->loop;
  snprintf(v->call_id, sizeof(v->call_id), "%s", cfg->call_id);
  v->link = cfg->link;
  v->event = cfg->event;
  v->on_video = cfg->on_video;
  v->ctx = cfg->ctx;
  uv_mutex_init(&v->lock);
  uv_cond_init(&v->enc_cond);
  uv_cond_init(&v->dec_cond);
  v->api_source = strcmp(cfg->source, CV_API_NAME) == 0;
  v->api_sink = strcmp(cfg->sink, CV_API_NAME) == 0;
  snprintf(v->source, sizeof(v->source), "%s", cfg->source);
  int r = cfg->send ? cv__open_source(v, err, err_size) : 0;
  if (r == 0 && !v->api_sink)
    r = vdevice_open_sink(cfg->sink, &v->sink, err, err_size);
  v->tx = ring_new(CV_RING, sizeof(void *), RING_REFUSE_NEWEST);
  v->rx = ring_new(CV_RING, sizeof(void *), RING_REFUSE_NEWEST);
  v->api_in = ring_new(4, sizeof(void *), RING_REFUSE_NEWEST);
  v->api_out = ring_new(CV_RING, sizeof(void *), RING_REFUSE_NEWEST);
  uv_async_init(v->loop, &v->tx_async, cv__on_tx);
  uv_async_init(v->loop, &v->ctl_async, cv__on_ctl);
  uv_async_init(v->loop, &v->api_async, cv__on_api_out);
  v->tx_async.data = v->ctl_async.data = v->api_async.data = v;
  v->last_tick_ms = cv__mono_ms();
  int start =
      CV_START_LEVEL < cv__top_level(v) ? CV_START_LEVEL : cv__top_level(v);
  atomic_store(&v->level, start);
  atomic_store(&v->sending, cfg->send);
  atomic_store(&v->running, true);
  if (r == 0 && (!v->tx || !v->rx || !v->api_in || !v->api_out)) {
    snprintf(err, err_size, "out of memory");
    r = -ENOMEM;
  }
  if (r == 0) {
    v->enc_started = uv_thread_create(&v->enc_thread, cv__enc_main, v) == 0;
    v->dec_started = uv_thread_create(&v->dec_thread, cv__dec_main, v) == 0;
    if (!v->enc_started || !v->dec_started) {
      snprintf(err, err_size, "cannot start the video threads");
      r = -ENOMEM;
    }
  }
  if (r != 0) {
    cvideo_free(v);
    return NULL;
  }
  LOG_INFO("video", "call %s: video source %s, sink %s, %s", v->call_id,
           cfg->source, cfg->sink, cfg->send ? "sending" : "not sending");
  return v;
}

void cvideo_stop(cvideo_t *v) {
  v->event = NULL; /* nothing more reaches the API */
  v->on_video = NULL;
  v->link = NULL;
  atomic_store(&v->running, false);
  uv_mutex_lock(&v->lock);
  uv_cond_broadcast(&v->enc_cond);
  uv_cond_broadcast(&v->dec_cond);
  uv_mutex_unlock(&v->lock);
}

void cvideo_join(cvideo_t *v) {
  if (v->enc_started)
    uv_thread_join(&v->enc_thread);
  if (v->dec_started)
    uv_thread_join(&v->dec_thread);
  v->enc_started = v->dec_started = false;
}

void cvideo_free(cvideo_t *v) {
  if (!v)
    return;
  cvideo_stop(v);
  cvideo_join(v);
  v->open_handles = 3;
  uv_close((uv_handle_t *)&v->tx_async, cv__on_closed);
  uv_close((uv_handle_t *)&v->ctl_async, cv__on_closed);
  uv_close((uv_handle_t *)&v->api_async, cv__on_closed);
}
