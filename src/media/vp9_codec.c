/* The VP9 encoder and decoder wrappers around libvpx, and the key-frame test
 * on the uncompressed header; the settings and threading are in
 * vp9_codec.h. */
#include "media/vp9_codec.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vpx_encoder.h>

/* Real-time speed (libvpx 1.12 takes 5..9 for VP9 real time). Measured
 * with tests/bench/bench_vp9_floor on this project's 2-core machine, 240
 * pictures of ffmpeg testsrc2 with grain, call settings: 640x480 at
 * 1000 kbps costs about 5 ms of CPU a picture at 8 (12% of a core at
 * 24 fps), 6 ms at 7, 7 ms at 6, 3.5 ms at 9; 1280x720 at 2000 kbps
 * about 10 ms at 8 and 12 ms at 7. 8 keeps a call's encoder well under
 * a core with room for 720p; 9 gives up more quality than it saves. */
#define VP9__CPU_USED 8
#define VP9__MAX_THREADS 8
#define VP9__MIN_TILE_WIDTH 256 /* VP9's minimum tile width in pixels */

struct vp9_enc {
  vpx_codec_ctx_t ctx;
  vpx_codec_enc_cfg_t cfg;
  vp9_enc_config_t conf; /* what the caller asked for, current size */
  int init_w, init_h;    /* the size libvpx allocated for */
  int64_t pts;
  unsigned since_key; /* frames since the last key frame */
  bool want_key;      /* next frame must be a key frame (size change) */
  uint8_t *out;
  size_t out_len, out_cap;
};

struct vp9_dec {
  vpx_codec_ctx_t ctx;
  bool need_key; /* after a failure: inter frames refused until a key */
};

static int vp9__threads(int want, int width, int height);
static int vp9__tile_log2(int threads, int width);
static int vp9__enc_init(vp9_enc_t *e);
static void vp9__fill_cfg(vp9_enc_t *e);
static int vp9__append(vp9_enc_t *e, const void *p, size_t n);
static bool vp9__bits(const uint8_t *data, size_t len, size_t *bit, int n,
                      uint32_t *out);
static bool vp9__sizes_ok(const uint8_t *data, size_t len);
static bool vp9__frame_size_ok(const uint8_t *data, size_t len);
static bool vp9__color_config(const uint8_t *data, size_t len, size_t *bit,
                              uint32_t profile);

vp9_enc_config_t vp9_enc_config_default(void) {
  vp9_enc_config_t c = {
      .width = 640,
      .height = 480,
      .fps = 24,
      .bitrate_kbps = 1000,
      .keyframe_interval = 48,
      .threads = 0,
  };
  return c;
}

vp9_enc_t *vp9_enc_new(const vp9_enc_config_t *cfg) {
  if (cfg->width < 2 || cfg->height < 2 || cfg->width > VIDEO_MAX_WIDTH ||
      cfg->height > VIDEO_MAX_HEIGHT || cfg->fps < 1 || cfg->fps > 120 ||
      cfg->bitrate_kbps < 10 || cfg->bitrate_kbps > 50000 ||
      cfg->keyframe_interval < 1 || cfg->threads < 0) {
    LOG_ERROR("vp9", "bad encoder configuration");
    return NULL;
  }
  vp9_enc_t *e = calloc(1, sizeof(*e));
  if (!e)
    return NULL;
  e->conf = *cfg;
  if (vp9__enc_init(e) != 0) {
    free(e);
    return NULL;
  }
  return e;
}

void vp9_enc_free(vp9_enc_t *e) {
  if (!e)
    return;
  vpx_codec_destroy(&e->ctx);
  free(e->out);
  free(e);
}

int vp9_enc_reconfigure(vp9_enc_t *e, int width, int height, int bitrate_kbps) {
  if (width < 2 || height < 2 || width > VIDEO_MAX_WIDTH ||
      height > VIDEO_MAX_HEIGHT || bitrate_kbps < 10 || bitrate_kbps > 50000)
    return -EINVAL;
  bool resize = width != e->conf.width || height != e->conf.height;
  e->conf.width = width;
  e->conf.height = height;
  e->conf.bitrate_kbps = bitrate_kbps;
  if (resize && (width > e->init_w || height > e->init_h)) {
    /* libvpx 1.12 can change the size in place (one pass, no lag), but
     * growing past the size it first allocated for reallocates inside the
     * encoder, the path of CVE-2023-44488; a fresh encoder costs only the
     * key frame the change needs anyway. */
    vpx_codec_destroy(&e->ctx);
    if (vp9__enc_init(e) != 0)
      return -EIO; /* e is unusable; logged */
    return 0;
  }
  vp9__fill_cfg(e);
  if (vpx_codec_enc_config_set(&e->ctx, &e->cfg) != VPX_CODEC_OK) {
    LOG_ERROR("vp9", "reconfigure to %dx%d at %d kbps: %s", width, height,
              bitrate_kbps,
              vpx_codec_error_detail(&e->ctx) ? vpx_codec_error_detail(&e->ctx)
                                              : vpx_codec_error(&e->ctx));
    return -EINVAL;
  }
  if (resize)
    e->want_key = true;
  return 0;
}

void vp9_enc_get_size(const vp9_enc_t *e, int *width, int *height) {
  *width = e->conf.width;
  *height = e->conf.height;
}

int vp9_enc_encode(vp9_enc_t *e, const video_image_t *img, bool force_key,
                   const uint8_t **out, size_t *len, bool *key) {
  if (!img->buf || img->width != e->conf.width || img->height != e->conf.height)
    return -EINVAL;
  vpx_image_t vi;
  /* Wrapped for the header fields only; planes and strides are ours (an odd
   * width's chroma stride is rounded up, which vpx_img_wrap does not do). */
  if (!vpx_img_wrap(&vi, VPX_IMG_FMT_I420, (unsigned)img->width,
                    (unsigned)img->height, 1, img->buf))
    return -EINVAL;
  for (int p = 0; p < 3; p++) {
    vi.planes[p] = img->planes[p];
    vi.stride[p] = img->strides[p];
  }
  bool want_key = force_key || e->want_key ||
                  e->since_key + 1 >= (unsigned)e->conf.keyframe_interval;
  vpx_enc_frame_flags_t flags = want_key ? VPX_EFLAG_FORCE_KF : 0;
  if (vpx_codec_encode(&e->ctx, &vi, e->pts++, 1, flags, VPX_DL_REALTIME) !=
      VPX_CODEC_OK) {
    LOG_ERROR("vp9", "encode: %s", vpx_codec_error(&e->ctx));
    return -EIO;
  }
  e->out_len = 0;
  bool is_key = false;
  vpx_codec_iter_t it = NULL;
  const vpx_codec_cx_pkt_t *pkt;
  while ((pkt = vpx_codec_get_cx_data(&e->ctx, &it)) != NULL) {
    if (pkt->kind != VPX_CODEC_CX_FRAME_PKT)
      continue;
    if (vp9__append(e, pkt->data.frame.buf, pkt->data.frame.sz) != 0)
      return -EIO;
    if (pkt->data.frame.flags & VPX_FRAME_IS_KEY)
      is_key = true;
  }
  if (e->out_len > 0) {
    e->since_key = is_key ? 0 : e->since_key + 1;
    if (is_key)
      e->want_key = false;
  }
  *out = e->out;
  *len = e->out_len;
  *key = is_key;
  return 0;
}

vp9_dec_t *vp9_dec_new(int threads) {
  if (threads < 0)
    return NULL;
  vp9_dec_t *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  /* Decoding costs a third of encoding (1.3 ms a 640x480 picture, 2.7 ms
   * at 720p here): one thread does, and a second only adds wake-ups. */
  vpx_codec_dec_cfg_t cfg = {
      .threads = (unsigned)(threads ? vp9__threads(threads, 0, 0) : 1),
      .w = 0,
      .h = 0,
  };
  /* No VPX_CODEC_USE_ERROR_CONCEALMENT: a damaged picture is reported, not
   * shown, and the sender is asked for a key frame. */
  if (vpx_codec_dec_init(&d->ctx, vpx_codec_vp9_dx(), &cfg, 0) !=
      VPX_CODEC_OK) {
    LOG_ERROR("vp9", "decoder: %s", vpx_codec_error(&d->ctx));
    free(d);
    return NULL;
  }
  return d;
}

void vp9_dec_free(vp9_dec_t *d) {
  if (!d)
    return;
  vpx_codec_destroy(&d->ctx);
  free(d);
}

int vp9_dec_decode(vp9_dec_t *d, const uint8_t *data, size_t len,
                   video_image_t *out) {
  if (!data || len == 0 || len > UINT32_MAX)
    return -EIO;
  if (d->need_key && !vp9_is_key_frame(data, len))
    return -EIO;
  /* libvpx allocates whatever size a header states (up to 65536 squared):
   * a peer must not make us allocate gigabytes for a picture the pipeline
   * would refuse anyway. */
  if (!vp9__sizes_ok(data, len)) {
    d->need_key = true;
    return -EIO;
  }
  int corrupt = 0;
  vpx_codec_err_t err = vpx_codec_decode(&d->ctx, data, (unsigned)len, NULL, 0);
  if (err == VPX_CODEC_OK &&
      vpx_codec_control(&d->ctx, VP8D_GET_FRAME_CORRUPTED, &corrupt) !=
          VPX_CODEC_OK)
    corrupt = 1;
  /* Drain whatever libvpx holds, even when the packet is refused, so no
   * picture of a damaged packet is ever given out later. */
  vpx_image_t *vi, *last = NULL;
  vpx_codec_iter_t it = NULL;
  while ((vi = vpx_codec_get_frame(&d->ctx, &it)) != NULL)
    last = vi;
  if (err != VPX_CODEC_OK || corrupt) {
    const char *detail = vpx_codec_error_detail(&d->ctx);
    LOG_DEBUG("vp9", "undecodable packet (%zu bytes): %s%s%s", len,
              err != VPX_CODEC_OK ? vpx_codec_error(&d->ctx) : "corrupt",
              detail ? ": " : "", detail ? detail : "");
    d->need_key = true;
    return -EIO;
  }
  d->need_key = false;
  if (!last)
    return 0;
  if (last->fmt != VPX_IMG_FMT_I420 || last->d_w < 2 || last->d_h < 2 ||
      last->d_w > VIDEO_MAX_WIDTH || last->d_h > VIDEO_MAX_HEIGHT) {
    /* Another profile, bit depth or a size the pipeline does not carry. */
    d->need_key = true;
    return -EIO;
  }
  int w = (int)last->d_w, h = (int)last->d_h;
  if (video_image_alloc(out, w, h) != 0)
    return -EIO;
  int cw = (w + 1) / 2, ch = (h + 1) / 2;
  for (int y = 0; y < h; y++)
    memcpy(out->planes[0] + (size_t)y * out->strides[0],
           last->planes[0] + (size_t)y * last->stride[0], (size_t)w);
  for (int p = 1; p < 3; p++)
    for (int y = 0; y < ch; y++)
      memcpy(out->planes[p] + (size_t)y * out->strides[p],
             last->planes[p] + (size_t)y * last->stride[p], (size_t)cw);
  return 1;
}

/* VP9 bitstream section 6.2 (uncompressed header): frame_marker(2) = 2,
 * profile_low_bit, profile_high_bit, reserved_zero if profile 3,
 * show_existing_frame, frame_type (0 = key), show_frame,
 * error_resilient_mode, then a key frame's sync code 0x49 0x83 0x42. */
bool vp9_is_key_frame(const uint8_t *data, size_t len) {
  size_t bit = 0;
  uint32_t marker, profile, v;
  if (!data || !vp9__bits(data, len, &bit, 2, &marker) || marker != 2 ||
      !vp9__bits(data, len, &bit, 2, &profile))
    return false;
  /* profile_low_bit comes first */
  profile = (profile & 1) << 1 | profile >> 1;
  if (profile == 3 && (!vp9__bits(data, len, &bit, 1, &v) || v != 0))
    return false;
  if (!vp9__bits(data, len, &bit, 1, &v) || v != 0) /* show_existing */
    return false;
  if (!vp9__bits(data, len, &bit, 1, &v) || v != 0) /* frame_type */
    return false;
  /* show_frame, error_resilient_mode, then the sync code */
  return vp9__bits(data, len, &bit, 2, &v) &&
         vp9__bits(data, len, &bit, 24, &v) && v == 0x498342;
}

/* Reads n (<= 32) bits MSB first at *bit; false past the end. */
static bool vp9__bits(const uint8_t *data, size_t len, size_t *bit, int n,
                      uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < n; i++, (*bit)++) {
    if ((*bit >> 3) >= len)
      return false;
    v = v << 1 | ((data[*bit >> 3] >> (7 - (*bit & 7))) & 1u);
  }
  *out = v;
  return true;
}

/* Threads for a picture: one per ~500k pixels (640x480 gets one, 1280x720
 * two), at most the machine's cores. Measured with tests/bench/video.sh:
 * at 640x480 a second encoder thread saved little encode time (3.1 vs 3.4
 * ms a picture) but cost the call 9 % more CPU in all, waking libvpx's
 * worker 24 times a second, and 6 MiB of memory. */
static int vp9__threads(int want, int width, int height) {
  if (want > 0)
    return want > VP9__MAX_THREADS ? VP9__MAX_THREADS : want;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1)
    cores = 1;
  long n = ((long)width * height + 499999) / 500000;
  if (n > cores)
    n = cores;
  if (n > VP9__MAX_THREADS)
    n = VP9__MAX_THREADS;
  return n < 1 ? 1 : (int)n;
}

/* log2 of the tile columns: enough for the threads, none narrower than
 * VP9's minimum tile width. */
static int vp9__tile_log2(int threads, int width) {
  int l = 0;
  while ((1 << (l + 1)) <= threads && (width >> (l + 1)) >= VP9__MIN_TILE_WIDTH)
    l++;
  return l;
}

static void vp9__fill_cfg(vp9_enc_t *e) {
  vpx_codec_enc_cfg_t *c = &e->cfg;
  c->g_w = (unsigned)e->conf.width;
  c->g_h = (unsigned)e->conf.height;
  c->g_threads =
      (unsigned)vp9__threads(e->conf.threads, e->conf.width, e->conf.height);
  c->rc_target_bitrate = (unsigned)e->conf.bitrate_kbps;
}

static int vp9__enc_init(vp9_enc_t *e) {
  vpx_codec_enc_cfg_t *c = &e->cfg;
  if (vpx_codec_enc_config_default(vpx_codec_vp9_cx(), c, 0) != VPX_CODEC_OK) {
    LOG_ERROR("vp9", "no default encoder configuration");
    return -EIO;
  }
  vp9__fill_cfg(e);
  c->g_timebase.num = 1;
  c->g_timebase.den = e->conf.fps;
  c->g_pass = VPX_RC_ONE_PASS;
  c->g_lag_in_frames = 0;
  c->g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
  c->rc_end_usage = VPX_CBR;
  /* Never drop a frame to hold the rate: the receiver's jitter buffer and
   * the sender's rate control (media/) handle congestion; a dropped frame
   * would be a freeze the call did not decide on. */
  c->rc_dropframe_thresh = 0;
  c->rc_resize_allowed = 0;
  c->rc_min_quantizer = 2;
  c->rc_max_quantizer = 56;
  c->rc_undershoot_pct = 50;
  c->rc_overshoot_pct = 50;
  c->rc_buf_initial_sz = 500;
  c->rc_buf_optimal_sz = 600;
  c->rc_buf_sz = 1000;
  c->kf_mode = VPX_KF_AUTO;
  c->kf_min_dist = 0;
  c->kf_max_dist = (unsigned)e->conf.keyframe_interval;
  vpx_codec_err_t err = vpx_codec_enc_init(&e->ctx, vpx_codec_vp9_cx(), c, 0);
  if (err != VPX_CODEC_OK) {
    LOG_ERROR("vp9", "encoder: %s", vpx_codec_err_to_string(err));
    return -EIO;
  }
  int tiles = vp9__tile_log2((int)c->g_threads, e->conf.width);
  if (vpx_codec_control(&e->ctx, VP8E_SET_CPUUSED, VP9__CPU_USED) ||
      vpx_codec_control(&e->ctx, VP9E_SET_ROW_MT, 1) ||
      vpx_codec_control(&e->ctx, VP9E_SET_TILE_COLUMNS, tiles) ||
      vpx_codec_control(&e->ctx, VP9E_SET_AQ_MODE, 3) ||
      vpx_codec_control(&e->ctx, VP8E_SET_MAX_INTRA_BITRATE_PCT, 300) ||
      vpx_codec_control(&e->ctx, VP9E_SET_NOISE_SENSITIVITY, 0) ||
      vpx_codec_control(&e->ctx, VP8E_SET_STATIC_THRESHOLD, 1) ||
      vpx_codec_control(&e->ctx, VP9E_SET_TUNE_CONTENT, VP9E_CONTENT_DEFAULT)) {
    LOG_ERROR("vp9", "encoder control refused: %s", vpx_codec_error(&e->ctx));
    vpx_codec_destroy(&e->ctx);
    return -EIO;
  }
  e->init_w = e->conf.width;
  e->init_h = e->conf.height;
  e->since_key = 0;
  e->want_key = true;
  return 0;
}

static int vp9__append(vp9_enc_t *e, const void *p, size_t n) {
  if (e->out_len + n > e->out_cap) {
    size_t cap = e->out_cap ? e->out_cap : 65536;
    while (cap < e->out_len + n)
      cap *= 2;
    uint8_t *b = realloc(e->out, cap);
    if (!b)
      return -ENOMEM;
    e->out = b;
    e->out_cap = cap;
  }
  memcpy(e->out + e->out_len, p, n);
  e->out_len += n;
  return 0;
}

/* Whether every frame of the packet (a superframe's frames one by one,
 * Annex B) states no size beyond VIDEO_MAX_*. */
static bool vp9__sizes_ok(const uint8_t *data, size_t len) {
  uint8_t last = data[len - 1];
  if ((last & 0xe0) != 0xc0)
    return vp9__frame_size_ok(data, len);
  size_t frames = (last & 7u) + 1, mag = ((last >> 3) & 3u) + 1;
  size_t index = 2 + mag * frames;
  if (len < index || data[len - index] != last)
    return vp9__frame_size_ok(data, len);
  const uint8_t *p = data + len - index + 1;
  size_t off = 0;
  for (size_t f = 0; f < frames; f++) {
    size_t sz = 0;
    for (size_t b = 0; b < mag; b++)
      sz |= (size_t)*p++ << (8 * b);
    if (sz > len - index - off)
      return true; /* a broken index: libvpx refuses it */
    if (sz > 0 && !vp9__frame_size_ok(data + off, sz))
      return false;
    off += sz;
  }
  return true;
}

/* Section 6.2: the size a key, intra-only or inter frame states outright
 * (an inter frame may take a reference's size instead, which was checked
 * when that reference arrived). An unreadable header passes: libvpx then
 * refuses the frame itself. */
static bool vp9__frame_size_ok(const uint8_t *data, size_t len) {
  size_t bit = 0;
  uint32_t v, profile, show, error_res, intra_only = 0, w, h;
  if (!vp9__bits(data, len, &bit, 2, &v) || v != 2 ||
      !vp9__bits(data, len, &bit, 2, &profile))
    return true;
  profile = (profile & 1) << 1 | profile >> 1;
  if (profile == 3 && !vp9__bits(data, len, &bit, 1, &v))
    return true;
  if (!vp9__bits(data, len, &bit, 1, &v) || v == 1) /* show_existing */
    return true;
  uint32_t type;
  if (!vp9__bits(data, len, &bit, 1, &type) ||
      !vp9__bits(data, len, &bit, 1, &show) ||
      !vp9__bits(data, len, &bit, 1, &error_res))
    return true;
  if (type == 0) {
    if (!vp9__bits(data, len, &bit, 24, &v) ||
        !vp9__color_config(data, len, &bit, profile))
      return true;
  } else {
    if (!show && !vp9__bits(data, len, &bit, 1, &intra_only))
      return true;
    if (!error_res && !vp9__bits(data, len, &bit, 2, &v))
      return true;
    if (intra_only) {
      if (!vp9__bits(data, len, &bit, 24, &v) ||
          (profile > 0 && !vp9__color_config(data, len, &bit, profile)) ||
          !vp9__bits(data, len, &bit, 8, &v))
        return true;
    } else {
      /* refresh_frame_flags, 3 x (ref_frame_idx, sign_bias), then
       * found_ref for each reference until one is found */
      if (!vp9__bits(data, len, &bit, 8 + 3 * 4, &v))
        return true;
      for (int i = 0; i < 3; i++) {
        if (!vp9__bits(data, len, &bit, 1, &v))
          return true;
        if (v)
          return true; /* the size of a reference */
      }
    }
  }
  if (!vp9__bits(data, len, &bit, 16, &w) ||
      !vp9__bits(data, len, &bit, 16, &h))
    return true;
  return w + 1 <= VIDEO_MAX_WIDTH && h + 1 <= VIDEO_MAX_HEIGHT;
}

/* Skips color_config() (section 6.2.2). False past the end. */
static bool vp9__color_config(const uint8_t *data, size_t len, size_t *bit,
                              uint32_t profile) {
  uint32_t v, cs;
  if (profile >= 2 && !vp9__bits(data, len, bit, 1, &v))
    return false;
  if (!vp9__bits(data, len, bit, 3, &cs))
    return false;
  if (cs != 7) /* not CS_RGB: color_range, then subsampling in 1 and 3 */
    return vp9__bits(data, len, bit, 1, &v) &&
           (profile != 1 && profile != 3 ? true
                                         : vp9__bits(data, len, bit, 3, &v));
  /* RGB: reserved_zero in profiles 1 and 3 */
  return profile != 1 && profile != 3 ? true : vp9__bits(data, len, bit, 1, &v);
}
