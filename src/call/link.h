/* The call link: the QUIC connection on the CALL ALPN ("iroh-social/call/1")
 * that carries one call's media and in-call control messages.
 *
 * Owns, per call, the connection, its control stream and its audio stream
 * (stream transport) and the proof exchange that binds the connection to the
 * call: the caller dials and opens the control stream with HELLO (call ID +
 * a proof computed from the Offer's per-call secret); the callee checks the
 * call exists, the QUIC-authenticated peer is the call's peer and the proof
 * is right, and answers HELLO_ACK with its own proof. A connection that
 * cannot prove a call is closed with LINK_CLOSE_BAD_PROOF before any media
 * flows. docs/protocol.md has the bytes.
 *
 * Media: each AudioFrame travels in one QUIC DATAGRAM (transport datagram)
 * or back to back on one unidirectional stream per direction (transport
 * stream); the link delivers whole frames either way. Each VideoFrame
 * travels on its own unidirectional stream (transport datagram), which the
 * link resets when the frame goes stale -- older than a key frame sent
 * after it, or unacknowledged past LINK_VIDEO_DEADLINE_MS -- or back to back
 * on one unidirectional stream per direction (transport stream). Video
 * streams have a lower priority than audio and control: video never delays
 * audio. Incoming video is bounded (LINK_VIDEO_RX_MAX frames being
 * received, LINK_VIDEO_RX_BYTES buffered); beyond that streams are stopped.
 *
 * Threads: loop thread only.
 */
#ifndef PARLEY_CALL_LINK_H
#define PARLEY_CALL_LINK_H

#include "media/audioframe.h"
#include "media/videoframe.h"
#include "net/quic.h"
#include "signal/callsignal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINK_PROOF_LEN 32
#define LINK_CONTROL_MAX 1024 /* largest control message payload */
#define LINK_CLOSE_NORMAL 0
#define LINK_CLOSE_BAD_PROOF 0x101
#define LINK_CLOSE_NO_CALL 0x102
#define LINK_RESET_STALE 0x103 /* a video frame's stream, reset: stale */
#define LINK_VIDEO_DEADLINE_MS 400
#define LINK_VIDEO_TX_MAX 64            /* video frames in flight */
#define LINK_VIDEO_RX_MAX 32            /* video frames being received */
#define LINK_VIDEO_RX_BYTES (16u << 20) /* bytes of them buffered */

/* Control message types (payload layouts in docs/protocol.md). */
enum link_msg {
  LINK_MSG_HELLO = 1,
  LINK_MSG_HELLO_ACK = 2,
  LINK_MSG_MUTE = 3,         /* u8 muted */
  LINK_MSG_VIDEO = 4,        /* u8 enabled */
  LINK_MSG_KEYFRAME_REQ = 5, /* empty */
  LINK_MSG_REPORT = 6,       /* link_report_t, 28 bytes */
  LINK_MSG_VIDEO_REPORT = 7, /* link_video_report_t, 20 bytes */
};

/* A receiver report, sent about every 500 ms by each side about what it
 * receives. */
typedef struct link_report {
  uint32_t frames_received; /* since the call started */
  uint32_t frames_lost;     /* never arrived in time (concealed) */
  uint32_t frames_late;     /* arrived after their playout time */
  uint32_t jitter_us;       /* interarrival jitter estimate */
  uint32_t recv_bitrate;    /* bits/s of media received, last interval */
  uint16_t loss_permille;   /* loss over the last interval */
  uint16_t jitter_delay_ms; /* the jitter buffer's current delay */
  uint32_t latency_p50_us;  /* capture to playout */
} link_report_t;
#define LINK_REPORT_LEN 28

/* A receiver report about video, sent with each LINK_MSG_REPORT while
 * video is received. */
typedef struct link_video_report {
  uint32_t frames_received; /* since the call started */
  uint32_t frames_lost;     /* sequence gaps and aborted frames */
  uint32_t recv_bitrate;    /* bits/s of video received, last interval */
  uint32_t frames_decoded;  /* since the call started */
  uint32_t latency_p50_us;  /* capture to display */
} link_video_report_t;
#define LINK_VIDEO_REPORT_LEN 20

/* What the link saw of video (loop thread's counters). */
typedef struct link_video_stats {
  uint64_t frames_sent, frames_reset, frames_refused;
  uint64_t frames_received, frames_aborted, frames_malformed;
  uint64_t backlog_bytes; /* sent, not yet acknowledged */
} link_video_stats_t;

typedef struct call_link call_link_t;
typedef struct link_listener link_listener_t;

typedef struct link_ops {
  /* Both sides proved the call: media may flow. */
  void (*on_up)(call_link_t *l, void *user);
  /* The connection is gone (why: human-readable). The link stays and may
   * come up again (redial by the caller, new HELLO at the callee) until
   * call_link_free(). */
  void (*on_down)(call_link_t *l, const char *why, void *user);
  /* One AudioFrame, parsed (media/audioframe.h); f->data is valid during
   * the call only. Malformed frames are counted, not delivered. */
  void (*on_audio)(call_link_t *l, const audioframe_t *f, void *user);
  /* One VideoFrame, whole and parsed; f->data valid during the call. */
  void (*on_video)(call_link_t *l, const videoframe_t *f, void *user);
  /* A control message other than HELLO / HELLO_ACK. */
  void (*on_control)(call_link_t *l, enum link_msg type, const uint8_t *p,
                     size_t len, void *user);
} link_ops_t;

/* Accepts CALL connections on ep and routes each to the link expecting its
 * call ID. Returns NULL on failure (logged). */
link_listener_t *link_listener_new(quic_endpoint_t *ep, const uint8_t me[32]);
void link_listener_free(link_listener_t *ls);

/* Caller side: dials peer at addr and proves the call. */
call_link_t *call_link_dial(link_listener_t *ls, const uint8_t peer[32],
                            const struct sockaddr *addr, const char *call_id,
                            const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                            enum media_transport transport,
                            const link_ops_t *ops, void *user);
/* Callee side: waits for the caller's connection proving call_id. */
call_link_t *call_link_expect(link_listener_t *ls, const uint8_t peer[32],
                              const char *call_id,
                              const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                              enum media_transport transport,
                              const link_ops_t *ops, void *user);
/* Closes the connection (if any) with LINK_CLOSE_NORMAL and frees the link.
 * No callback follows. */
void call_link_free(call_link_t *l);

/* The caller redials after on_down (the callee just waits). Returns 0 or a
 * negative code. */
int call_link_redial(call_link_t *l);

bool call_link_is_up(const call_link_t *l);
/* Sends one AudioFrame's bytes by the link's transport. Returns 0, or a
 * negative code (not up, queue full): the frame is dropped either way. */
int call_link_send_audio(call_link_t *l, const uint8_t *frame, size_t len);
/* Sends one VideoFrame (f->data holds f->len bytes) by the link's
 * transport. A key frame makes every older frame still in flight stale
 * (reset). Returns 0, QUIC_ERR_STATE (not up), QUIC_ERR_STREAM_LIMIT (the
 * peer allows no more streams now) or another negative code: the frame is
 * dropped and the next one sent should be a key frame. */
int call_link_send_video(call_link_t *l, const videoframe_t *f);
void call_link_video_stats(call_link_t *l, link_video_stats_t *out);
/* Sends a control message on the control stream. */
int call_link_send_control(call_link_t *l, enum link_msg type,
                           const uint8_t *payload, size_t len);
int call_link_stats(const call_link_t *l, quic_conn_stats_t *out);
/* AudioFrames that arrived malformed (and were dropped). */
uint64_t call_link_bad_frames(const call_link_t *l);

/* The proof one side sends: HMAC-SHA256(secret, label || call_id ||
 * caller key || callee key), label "parley/call/1/caller" or
 * "parley/call/1/callee". Exposed for tests. */
void call_link_proof(uint8_t out[LINK_PROOF_LEN],
                     const uint8_t secret[CALLSIGNAL_SECRET_LEN],
                     const char *call_id, const uint8_t caller[32],
                     const uint8_t callee[32], bool from_caller);

/* Report encoding (LINK_REPORT_LEN bytes, big-endian). decode returns 0 or
 * -1 for a wrong length. */
void link_report_encode(const link_report_t *r, uint8_t out[LINK_REPORT_LEN]);
int link_report_decode(link_report_t *r, const uint8_t *in, size_t len);
void link_video_report_encode(const link_video_report_t *r,
                              uint8_t out[LINK_VIDEO_REPORT_LEN]);
int link_video_report_decode(link_video_report_t *r, const uint8_t *in,
                             size_t len);

#endif
