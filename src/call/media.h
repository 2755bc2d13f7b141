/* Call media: for each answered call, the call link (call/link.h) and the
 * voice pipeline around it, plus the daemon's default devices.
 *
 *   capture thread: source --(20 ms clock or device)--> Opus encode
 *       --> tx ring --> uv_async --> loop: AudioFrame --> link
 *   loop: link --> AudioFrame --> rx ring
 *   playout thread: rx ring --> jitter buffer --(20 ms clock or device)-->
 *       Opus decode / FEC / PLC --> sink
 *
 * Owns the link listener, each call's link, threads, codec state, rings and
 * statistics; sends receiver reports every 500 ms, feeds the peer's reported
 * loss to the encoder's FEC, and emits `call-quality` once a second.
 * Codec work never runs on the loop; the rings are fixed-size and count
 * what they drop.
 *
 * Video (call/video.h) starts with the call if it was offered with video,
 * or later when either side turns it on (toggle_video).
 *
 * Threads: every function here is for the loop thread; the capture and
 * playout threads are internal.
 */
#ifndef PARLEY_CALL_MEDIA_H
#define PARLEY_CALL_MEDIA_H

#include "call/call.h"
#include "call/link.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define MEDIA_DEVICE_MAX 256

typedef struct media_mgr media_mgr_t;

typedef struct media_mgr_ops {
  /* The media link of a call came up / went down. */
  void (*on_link)(void *ctx, const char *call_id, bool up);
  /* An event for the API (stolen params). */
  void (*event)(void *ctx, const char *name, json_t *params);
  /* Video flowed in the call for the first time (had_video). */
  void (*on_video)(void *ctx, const char *call_id);
} media_mgr_ops_t;

media_mgr_t *media_mgr_new(uv_loop_t *loop, quic_endpoint_t *ep,
                           const uint8_t me[32], const media_mgr_ops_t *ops,
                           void *ctx);
/* Stops every call's media. */
void media_mgr_free(media_mgr_t *mm);

/* Default devices for calls ("tone", "file:PATH", "null", "portaudio"...;
 * see device/device.h). Checked by opening them. Returns 0 or -errno with
 * err set. */
int media_mgr_set_devices(media_mgr_t *mm, const char *source, const char *sink,
                          char *err, size_t err_size);
void media_mgr_get_devices(media_mgr_t *mm, const char **source,
                           const char **sink);
/* Devices for one call only (before its media starts). */
int media_mgr_set_call_devices(media_mgr_t *mm, const char *call_id,
                               const char *source, const char *sink);

/* Video devices (device/vdevice.h names, or "api"): defaults for calls
 * ("pattern" and "null" at start), checked like the audio ones. rgba: 1 or
 * 0 chooses the format of video-frame events, -1 keeps it. */
int media_mgr_set_video_devices(media_mgr_t *mm, const char *source,
                                const char *sink, int rgba, char *err,
                                size_t err_size);
void media_mgr_get_video_devices(media_mgr_t *mm, const char **source,
                                 const char **sink, bool *rgba);
int media_mgr_set_call_video_devices(media_mgr_t *mm, const char *call_id,
                                     const char *source, const char *sink);

/* toggle_video: starts or stops sending video in a call (an audio-only
 * call can add it). Returns 0, -ENOENT, or -errno with err set. */
int media_mgr_set_video(media_mgr_t *mm, const char *call_id, bool on,
                        char *err, size_t err_size);
/* One I420 picture from an API client for a call whose video source is
 * "api": 0, -ENOENT, or cvideo_send_frame's codes. */
int media_mgr_send_video(media_mgr_t *mm, const char *call_id, int width,
                         int height, const uint8_t *i420, size_t len);

/* Starts the media of an answered call. The caller dials peer_addr. */
int media_mgr_start(media_mgr_t *mm, const call_info_t *ci,
                    const uint8_t peer[32],
                    const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                    const struct sockaddr *peer_addr);
void media_mgr_stop(media_mgr_t *mm, const char *call_id);

/* One 20 ms frame (960 samples) from an API client for a call whose
 * source is "api". Returns 0, -ENOENT (no such call with media) or -EINVAL
 * (the call's source is not "api"). */
int media_mgr_send_audio(media_mgr_t *mm, const char *call_id,
                         const int16_t *pcm);

/* Opus DTX for calls that start later (on at first; the config's `dtx`).
 * With DTX, silence is sent as Opus's comfort-noise updates (one packet
 * about every 400 ms) and the first frames of each DTX run, the other
 * frames' sequence numbers left unused (see docs/protocol.md). */
void media_mgr_set_dtx(media_mgr_t *mm, bool on);

/* Mute: the capture sends silence (with DTX, Opus's periodic comfort-noise
 * updates: the peer still gets packets and knows the call is alive) and
 * tells the peer. Returns 0 or -ENOENT. */
int media_mgr_set_mute(media_mgr_t *mm, const char *call_id, bool muted);

/* Audio processing on the capture path (media/audioproc.h): echo
 * cancellation, noise suppression, gain control. Each is on, off, left
 * as it is (KEEP, when changing) or AUTO: on when the call captures from
 * a microphone (a PortAudio source), off for file, tone, API and null
 * sources, which have no acoustic echo. */
enum media_ap_mode {
  MEDIA_AP_KEEP = -1,
  MEDIA_AP_AUTO = 0,
  MEDIA_AP_OFF = 1,
  MEDIA_AP_ON = 2,
};

typedef struct media_audio_processing {
  int aec, ns, agc; /* enum media_ap_mode */
} media_audio_processing_t;

/* call_id NULL: changes the defaults for calls that start later (all
 * AUTO at first); now gets the defaults. Else changes a running call
 * (AUTO resolved for its source) from its next frame; now gets what the
 * call does (ON or OFF). Returns 0 or -ENOENT (no such call with media). */
int media_mgr_set_audio_processing(media_mgr_t *mm, const char *call_id,
                                   const media_audio_processing_t *set,
                                   media_audio_processing_t *now);
/* The configuration's defaults (KEEP fields leave a default alone). */
void media_mgr_set_audio_processing_defaults(
    media_mgr_t *mm, const media_audio_processing_t *defaults);

/* The figures of call_stats and call-quality, or NULL for an unknown
 * call. */
json_t *media_mgr_stats(media_mgr_t *mm, const char *call_id);

#endif
