/* Opus encoder and decoder configured as the seed says: 48 kHz, mono,
 * 20 ms frames (960 samples), OPUS_APPLICATION_VOIP, complexity 5, VBR
 * between 16 and 32 kbps (24 kbps to start; libopus's default constrained
 * VBR, which bounds how far one frame strays from the average), in-band
 * FEC on with the expected packet loss settable, DTX optional.
 *
 * Opus24k: the API stays 48 kHz / 960 samples / 20 ms and the decoder is the
 * same (an Opus stream says its own bandwidth); the encoder is capped at
 * OPUS_BANDWIDTH_SUPERWIDEBAND, i.e. 12 kHz of audio, which is what a 24 kHz
 * internal rate holds. Encoding at a 24 kHz API rate instead would add a
 * resampler and a second frame size to the pipeline for nothing the cap does
 * not give: the bits above 12 kHz are simply not spent. Opus48k caps at
 * OPUS_BANDWIDTH_FULLBAND (20 kHz).
 *
 * Owns one libopus encoder or decoder. Threads: the encoder belongs to the
 * encoder thread and the decoder to the decoder thread -- except the
 * encoder's setters (bitrate, loss, DTX), which any thread may call (the
 * rate controller runs on the loop): they store the wish atomically and the
 * next opus_codec_encode applies it, so the encoder never needs a lock.
 */
#ifndef PARLEY_MEDIA_OPUS_CODEC_H
#define PARLEY_MEDIA_OPUS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPUS_CODEC_RATE 48000
#define OPUS_CODEC_FRAME 960       /* samples per 20 ms frame */
#define OPUS_CODEC_MAX_PACKET 1275 /* largest Opus packet of one frame */
#define OPUS_CODEC_MIN_BITRATE 16000
#define OPUS_CODEC_MAX_BITRATE 32000
#define OPUS_CODEC_START_BITRATE 24000
#define OPUS_CODEC_COMPLEXITY 5
/* Expected loss to start with, before any receiver report: enough for the
 * encoder to carry FEC data from the first frame. */
#define OPUS_CODEC_START_LOSS 5

/* Errors besides libopus's own (which are -1 .. -7). */
#define OPUS_CODEC_ERR_FORMAT (-100) /* decode: not one 20 ms frame */

enum opus_codec_mode {
  OPUS_CODEC_48K = 0, /* Opus48k: full band */
  OPUS_CODEC_24K = 1, /* Opus24k: capped at super-wideband (see above) */
};

typedef struct opus_codec_config {
  enum opus_codec_mode mode;
  int bitrate;   /* bits/s; clamped to 16000..32000 */
  int loss_perc; /* expected packet loss for in-band FEC, 0..100 */
  bool dtx;      /* discontinuous transmission during silence */
} opus_codec_config_t;

typedef struct opus_codec_enc opus_codec_enc_t;
typedef struct opus_codec_dec opus_codec_dec_t;

/* {OPUS_CODEC_48K, 24000 bit/s, OPUS_CODEC_START_LOSS %, DTX off}. */
opus_codec_config_t opus_codec_config_default(void);

/* Creates an encoder. Returns NULL on failure (logged). */
opus_codec_enc_t *opus_codec_enc_new(const opus_codec_config_t *cfg);
void opus_codec_enc_free(opus_codec_enc_t *e);

/* Encodes one frame of 960 samples into out (room for
 * OPUS_CODEC_MAX_PACKET bytes is always enough). Returns the packet length,
 * which is 1 or 2 bytes while DTX suppresses silence (decoding such a
 * packet is the same as concealing a lost one: the comfort noise goes on;
 * the first of a run tells the peer that silence starts, the rest need not
 * be sent -- see call/media.c), or a negative libopus error. Encoder
 * thread. */
int opus_codec_encode(opus_codec_enc_t *e, const int16_t *pcm, uint8_t *out,
                      size_t out_size);

/* Any thread; applied at the next encode. bitrate is clamped to 16..32 kbps,
 * percent to 0..100. */
void opus_codec_enc_set_bitrate(opus_codec_enc_t *e, int bitrate);
void opus_codec_enc_set_loss(opus_codec_enc_t *e, int percent);
void opus_codec_enc_set_dtx(opus_codec_enc_t *e, bool on);
/* The values the next encode uses (any thread). */
int opus_codec_enc_bitrate(const opus_codec_enc_t *e);
int opus_codec_enc_loss(const opus_codec_enc_t *e);

/* Samples the decoded signal lags the input by (the encoder's lookahead,
 * 312 at 48 kHz for VOIP). Any thread. */
int opus_codec_enc_delay(const opus_codec_enc_t *e);

/* True for a packet DTX sent during silence (1 or 2 bytes). */
bool opus_codec_packet_is_dtx(size_t len);

/* Creates a 48 kHz mono decoder (for either mode). NULL on failure. */
opus_codec_dec_t *opus_codec_dec_new(void);
void opus_codec_dec_free(opus_codec_dec_t *d);

/* Decoder thread. Each writes exactly 960 samples to pcm and returns 960,
 * or a negative error (pcm then holds silence; the caller may conceal
 * instead).
 *
 * decode: a received packet. Fails with OPUS_CODEC_ERR_FORMAT if the
 * packet is not one 20 ms frame and with a libopus error if it is corrupt.
 * decode_fec: frame N, lost, rebuilt from the FEC data in packet N + 1
 * (`next`). Call it instead of conceal when N + 1 is already there, then
 * decode N + 1 normally. A packet without FEC data yields concealment.
 * conceal: frame N, lost, extrapolated from what came before (PLC). */
int opus_codec_decode(opus_codec_dec_t *d, const uint8_t *data, size_t len,
                      int16_t *pcm);
int opus_codec_decode_fec(opus_codec_dec_t *d, const uint8_t *next, size_t len,
                          int16_t *pcm);
int opus_codec_conceal(opus_codec_dec_t *d, int16_t *pcm);

/* A human-readable name for a negative code from this module. */
const char *opus_codec_strerror(int err);

#endif
