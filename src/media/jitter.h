/* The receiver's adaptive jitter buffer for 20 ms Opus frames.
 *
 * Owns copies of the frames waiting to be played (a fixed table of
 * JITTER_SLOTS frames, allocated once) and the delay estimator. It is a pure
 * data structure: it reads no clock and decodes nothing. The caller inserts
 * each frame with its arrival time and calls jitter_pop once per playout
 * tick (every 20 ms) with the tick's time, both from the same monotonic
 * clock, and decodes what pop says: the frame, Opus FEC from the next frame,
 * or Opus concealment. One thread at a time (the decoder thread).
 *
 * Sequencing: the sender numbers every 20 ms frame, DTX frames included, so
 * sequence n is due n x 20 ms after sequence 0. (So a sender numbers frames
 * at capture: a frame its own ring dropped, or a DTX frame it chose not to
 * send, must still use up its number.) Frames are reordered by sequence;
 * duplicates and frames arriving after their turn ("late") are counted and
 * dropped. A jump of more than JITTER_RESYNC frames, or JITTER_RESYNC_LATE
 * late frames in a row (the sender's timeline moved), restarts the buffer
 * from the current frame.
 *
 * DTX gaps: during silence an Opus sender with DTX sends the first DTX
 * frames of a run (1-2 bytes: "DTX from here") and then nothing but Opus's
 * own comfort-noise updates (a normal packet about every 400 ms) until the
 * talker resumes. So a frame missing at its turn is lost if the last frame
 * played before it was a normal one, but DTX silence (JITTER_DTX) if it was
 * a DTX frame: the decoder conceals it, which after a DTX frame continues
 * the comfort noise, and it counts as neither lost nor played -- the loss
 * the receiver reports stays the loss of frames the sender sent. No FEC is
 * tried for it (a frame the sender did not send has no FEC data in the next
 * one). The sequence numbers keep time through the gap, so the estimator
 * sees no jitter in it and the talker resumes at the same delay. A DTX
 * frame lost in the network makes the gap after it look lost, which is why
 * a sender sends more than one at the start of a run.
 *
 * Estimator: each arrival gives the frame's relative transit
 *     r = arrival_us - sequence x 20000,
 * i.e. arrival time minus nominal send time plus an unknown constant (clock
 * offset + base network delay). Over a window of the last `window` frames
 * (default 250 = 5 s), r_min is the fastest frame and the jitter is the
 * `quantile` (default 0.98) of r - r_min: the extra wait that would have
 * let 98% of recent frames arrive in time (the rest are mostly rebuilt by
 * FEC). The target is
 *     target = clamp(jitter + margin, min_delay, max_delay)
 * with defaults margin 2 ms, min 5 ms (covers the tick's own timing
 * jitter), max 200 ms; before 16 frames have arrived it is at least
 * start_delay (20 ms). Fast attack, slow release: a burst of jitter raises
 * the target with the frames that show it and lowers it only once they
 * leave the window. Clock drift between the peers moves r slowly; the
 * window follows it.
 *
 * FEC lookahead: Opus rebuilds a lost frame N from frame N + 1, which is
 * only at hand if the buffer holds one frame more than the jitter needs.
 * So when at least `fec_loss` (default 1%) of the last `window` turns found
 * their frame missing (and 16 frames have given a jitter estimate), the
 * target grows by one frame (20 ms); on a loss-free path the delay stays at
 * the jitter's minimum.
 *
 * Delay: at each tick, the frame about to play has waited
 *     delay = tick_us - (r_min + sequence x 20000)
 * beyond the fastest possible arrival. It moves in whole frames:
 *  - grow: if delay < target, the tick plays a concealed frame and does not
 *    advance (JITTER_STRETCH) -- at once, since frames are arriving late; a
 *    missing frame at such a tick gets another 20 ms instead of being lost;
 *  - shrink: if delay - 20 ms >= target + hysteresis (2 ms) has held for
 *    shrink_hold (500 ms), the next frame is dropped unseen -- but only when
 *    the caller says the audio just played was quiet or the frame is a DTX
 *    frame, unless the excess has lasted force_shrink (4 s) without a pause.
 *    In a DTX gap the turn of a frame the sender did not send is skipped
 *    instead: silence, so nothing is dropped at all.
 * So the delay settles in [target, target + 20 ms + hysteresis): the
 * smallest whole-frame delay the jitter allows. Where in that band depends
 * on the phase of the caller's ticks against the arrivals (10 ms above the
 * target on average); going finer needs time-stretching the audio or
 * moving the playout clock's phase, which call/media.c does for sinks that
 * run on its own clock (it steers its ticks to land 1-4 ms after the
 * target using out->delay_us).
 *
 * Counts: received = unique frames inserted (late ones included);
 * lost = recovered_fec + concealed = frames missing at their turn (a frame
 * that turns up later is also counted late), DTX gaps excepted: those turns
 * count as dtx (or as shrunk, if skipped). The loss window of the FEC
 * lookahead and loss_permille leave DTX turns out too.
 */
#ifndef PARLEY_MEDIA_JITTER_H
#define PARLEY_MEDIA_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JITTER_FRAME_US 20000
#define JITTER_SLOTS 64       /* frames held at most: 1.28 s */
#define JITTER_MAX_DATA 1500  /* = AUDIOFRAME_MAX_DATA */
#define JITTER_RESYNC 500     /* frames (10 s) */
#define JITTER_RESYNC_LATE 50 /* late frames in a row (1 s) */
#define JITTER_DTX_MAX_LEN 2  /* Opus DTX frames are 1-2 bytes */

typedef struct jitter_config {
  int64_t min_delay_us;    /* default 5000 */
  int64_t max_delay_us;    /* default 200000 */
  int64_t start_delay_us;  /* default 20000 */
  int64_t margin_us;       /* default 2000 */
  int64_t hysteresis_us;   /* default 2000 */
  int64_t shrink_hold_us;  /* default 500000 */
  int64_t force_shrink_us; /* default 4000000 */
  double quantile;         /* default 0.98, in (0, 1] */
  unsigned window;         /* frames, default 250, 16..4096 */
  double fec_loss;         /* default 0.01; 0: never add the FEC frame */
} jitter_config_t;

enum jitter_kind {
  JITTER_WAIT = 0,    /* not started (no frame yet or filling up): play
                         silence; nothing is lost */
  JITTER_FRAME = 1,   /* decode data/len normally */
  JITTER_FEC = 2,     /* frame `seq` is missing but seq + 1 is here:
                         decode data/len (frame seq + 1) with FEC */
  JITTER_CONCEAL = 3, /* frame `seq` is lost: conceal (PLC) */
  JITTER_STRETCH = 4, /* growing the delay: conceal (PLC); nothing lost */
  JITTER_DTX = 5,     /* frame `seq` was not sent (DTX gap): conceal, which
                         continues the comfort noise; nothing lost */
};

typedef struct jitter_out {
  enum jitter_kind kind;
  uint32_t seq;          /* the frame this tick stands for */
  uint64_t timestamp_us; /* its capture time: exact for JITTER_FRAME,
                            estimated from neighbours for FEC, CONCEAL and
                            DTX (0 if none), 0 for WAIT and STRETCH */
  const uint8_t *data;   /* FRAME, FEC: valid until the next insert/pop */
  size_t len;
  int64_t delay_us; /* the buffer's delay at this tick */
} jitter_out_t;

typedef struct jitter_stats {
  uint64_t received, late, duplicate;
  uint64_t played; /* frames played from their own packet */
  uint64_t lost;   /* = recovered_fec + concealed */
  uint64_t recovered_fec, concealed;
  uint64_t stretched;     /* concealed frames inserted to grow the delay */
  uint64_t shrunk;        /* frames dropped (or DTX turns skipped) to
                             shrink it */
  uint64_t dtx;           /* turns of frames the sender did not send (DTX
                             gaps), concealed; not lost */
  uint64_t resets;        /* restarts after a sequence jump */
  int64_t delay_us;       /* at the last tick */
  int64_t target_us;      /* current target (FEC frame included) */
  int64_t jitter_us;      /* current quantile of r - r_min */
  unsigned loss_permille; /* turns missing their frame, last window */
  bool fec_lookahead;     /* the target includes the FEC frame */
} jitter_stats_t;

typedef struct jitter jitter_t;

jitter_config_t jitter_config_default(void);

/* Returns NULL if out of memory or cfg is invalid (NULL cfg: defaults). */
jitter_t *jitter_new(const jitter_config_t *cfg);
void jitter_free(jitter_t *j);

/* Insert results. */
#define JITTER_OK 0
#define JITTER_LATE 1      /* its turn has passed: dropped, counted */
#define JITTER_DUPLICATE 2 /* already held or played: dropped, counted */
#define JITTER_ERR_LEN (-1)

/* Copies one received frame in. arrival_us: when it arrived (the clock of
 * jitter_pop). Returns JITTER_OK, JITTER_LATE, JITTER_DUPLICATE or
 * JITTER_ERR_LEN (len > JITTER_MAX_DATA). */
int jitter_insert(jitter_t *j, uint32_t seq, uint64_t timestamp_us,
                  int64_t arrival_us, const uint8_t *data, size_t len);

/* One playout tick at now_us (call every 20 ms). quiet: the audio the
 * caller played last was quiet (e.g. audio_rms_dbfs < AUDIO_QUIET_DBFS), so
 * dropping a frame now is inaudible. Fills *out and returns out->kind. */
enum jitter_kind jitter_pop(jitter_t *j, int64_t now_us, bool quiet,
                            jitter_out_t *out);

void jitter_get_stats(const jitter_t *j, jitter_stats_t *out);
/* The delay at the last tick, in microseconds (see above). */
int64_t jitter_delay_us(const jitter_t *j);

#endif
