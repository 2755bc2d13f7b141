/* The Opus encoder and decoder wrappers; the configuration and the threading
 * contract are in opus_codec.h. */
#include "media/opus_codec.h"

#include "core/log.h"

#include <opus.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct opus_codec_enc {
  OpusEncoder *enc;
  int delay;
  /* What the setters asked for (any thread) and what the encoder runs with
   * (encoder thread). */
  _Atomic int want_bitrate, want_loss, want_dtx;
  int bitrate, loss, dtx;
};

struct opus_codec_dec {
  OpusDecoder *dec;
};

static int opus_codec__clamp(int v, int lo, int hi);
static void opus_codec__apply(opus_codec_enc_t *e);

opus_codec_config_t opus_codec_config_default(void) {
  opus_codec_config_t c = {
      .mode = OPUS_CODEC_48K,
      .bitrate = OPUS_CODEC_START_BITRATE,
      .loss_perc = OPUS_CODEC_START_LOSS,
      .dtx = false,
  };
  return c;
}

opus_codec_enc_t *opus_codec_enc_new(const opus_codec_config_t *cfg) {
  opus_codec_enc_t *e = calloc(1, sizeof(*e));
  if (!e)
    return NULL;
  int err;
  e->enc = opus_encoder_create(OPUS_CODEC_RATE, 1, OPUS_APPLICATION_VOIP, &err);
  if (!e->enc) {
    LOG_ERROR("opus", "encoder: %s", opus_strerror(err));
    free(e);
    return NULL;
  }
  int maxbw = cfg->mode == OPUS_CODEC_24K ? OPUS_BANDWIDTH_SUPERWIDEBAND
                                          : OPUS_BANDWIDTH_FULLBAND;
  if (opus_encoder_ctl(e->enc, OPUS_SET_COMPLEXITY(OPUS_CODEC_COMPLEXITY)) !=
          OPUS_OK ||
      opus_encoder_ctl(e->enc, OPUS_SET_VBR(1)) != OPUS_OK ||
      opus_encoder_ctl(e->enc, OPUS_SET_INBAND_FEC(1)) != OPUS_OK ||
      opus_encoder_ctl(e->enc, OPUS_SET_MAX_BANDWIDTH(maxbw)) != OPUS_OK ||
      opus_encoder_ctl(e->enc, OPUS_GET_LOOKAHEAD(&e->delay)) != OPUS_OK) {
    LOG_ERROR("opus", "encoder configuration refused");
    opus_encoder_destroy(e->enc);
    free(e);
    return NULL;
  }
  e->bitrate = e->loss = e->dtx = -1; /* force the first apply */
  atomic_init(&e->want_bitrate,
              opus_codec__clamp(cfg->bitrate, OPUS_CODEC_MIN_BITRATE,
                                OPUS_CODEC_MAX_BITRATE));
  atomic_init(&e->want_loss, opus_codec__clamp(cfg->loss_perc, 0, 100));
  atomic_init(&e->want_dtx, cfg->dtx ? 1 : 0);
  opus_codec__apply(e);
  return e;
}

void opus_codec_enc_free(opus_codec_enc_t *e) {
  if (!e)
    return;
  opus_encoder_destroy(e->enc);
  free(e);
}

int opus_codec_encode(opus_codec_enc_t *e, const int16_t *pcm, uint8_t *out,
                      size_t out_size) {
  opus_codec__apply(e);
  if (out_size > OPUS_CODEC_MAX_PACKET)
    out_size = OPUS_CODEC_MAX_PACKET;
  return opus_encode(e->enc, pcm, OPUS_CODEC_FRAME, out, (opus_int32)out_size);
}

void opus_codec_enc_set_bitrate(opus_codec_enc_t *e, int bitrate) {
  atomic_store(&e->want_bitrate,
               opus_codec__clamp(bitrate, OPUS_CODEC_MIN_BITRATE,
                                 OPUS_CODEC_MAX_BITRATE));
}

void opus_codec_enc_set_loss(opus_codec_enc_t *e, int percent) {
  atomic_store(&e->want_loss, opus_codec__clamp(percent, 0, 100));
}

void opus_codec_enc_set_dtx(opus_codec_enc_t *e, bool on) {
  atomic_store(&e->want_dtx, on ? 1 : 0);
}

int opus_codec_enc_bitrate(const opus_codec_enc_t *e) {
  return atomic_load(&((opus_codec_enc_t *)e)->want_bitrate);
}

int opus_codec_enc_loss(const opus_codec_enc_t *e) {
  return atomic_load(&((opus_codec_enc_t *)e)->want_loss);
}

int opus_codec_enc_delay(const opus_codec_enc_t *e) {
  return e->delay;
}

bool opus_codec_packet_is_dtx(size_t len) {
  return len >= 1 && len <= 2;
}

opus_codec_dec_t *opus_codec_dec_new(void) {
  opus_codec_dec_t *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  int err;
  d->dec = opus_decoder_create(OPUS_CODEC_RATE, 1, &err);
  if (!d->dec) {
    LOG_ERROR("opus", "decoder: %s", opus_strerror(err));
    free(d);
    return NULL;
  }
  return d;
}

void opus_codec_dec_free(opus_codec_dec_t *d) {
  if (!d)
    return;
  opus_decoder_destroy(d->dec);
  free(d);
}

/* Decodes one 20 ms packet, normally or from its FEC data. Packets of other
 * durations are refused before libopus sees them: the pipeline moves
 * exactly 960 samples per tick. */
static int opus_codec__decode(opus_codec_dec_t *d, const uint8_t *data,
                              size_t len, int16_t *pcm, int fec) {
  int r = OPUS_CODEC_ERR_FORMAT;
  if (len > 0 && len <= OPUS_CODEC_MAX_PACKET &&
      opus_packet_get_nb_samples(data, (opus_int32)len, OPUS_CODEC_RATE) ==
          OPUS_CODEC_FRAME)
    r = opus_decode(d->dec, data, (opus_int32)len, pcm, OPUS_CODEC_FRAME, fec);
  if (r == OPUS_CODEC_FRAME)
    return r;
  memset(pcm, 0, OPUS_CODEC_FRAME * sizeof(int16_t));
  return r < 0 ? r : OPUS_CODEC_ERR_FORMAT;
}

int opus_codec_decode(opus_codec_dec_t *d, const uint8_t *data, size_t len,
                      int16_t *pcm) {
  return opus_codec__decode(d, data, len, pcm, 0);
}

int opus_codec_decode_fec(opus_codec_dec_t *d, const uint8_t *next, size_t len,
                          int16_t *pcm) {
  return opus_codec__decode(d, next, len, pcm, 1);
}

int opus_codec_conceal(opus_codec_dec_t *d, int16_t *pcm) {
  int r = opus_decode(d->dec, NULL, 0, pcm, OPUS_CODEC_FRAME, 0);
  if (r == OPUS_CODEC_FRAME)
    return r;
  memset(pcm, 0, OPUS_CODEC_FRAME * sizeof(int16_t));
  return r < 0 ? r : OPUS_CODEC_ERR_FORMAT;
}

const char *opus_codec_strerror(int err) {
  if (err == OPUS_CODEC_ERR_FORMAT)
    return "not a single 20 ms Opus frame";
  return opus_strerror(err);
}

static int opus_codec__clamp(int v, int lo, int hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* Encoder thread: hands libopus whatever the setters changed. */
static void opus_codec__apply(opus_codec_enc_t *e) {
  int b = atomic_load_explicit(&e->want_bitrate, memory_order_relaxed);
  int l = atomic_load_explicit(&e->want_loss, memory_order_relaxed);
  int x = atomic_load_explicit(&e->want_dtx, memory_order_relaxed);
  if (b != e->bitrate &&
      opus_encoder_ctl(e->enc, OPUS_SET_BITRATE(b)) == OPUS_OK)
    e->bitrate = b;
  if (l != e->loss &&
      opus_encoder_ctl(e->enc, OPUS_SET_PACKET_LOSS_PERC(l)) == OPUS_OK)
    e->loss = l;
  if (x != e->dtx && opus_encoder_ctl(e->enc, OPUS_SET_DTX(x)) == OPUS_OK)
    e->dtx = x;
}
