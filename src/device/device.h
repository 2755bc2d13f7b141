/* Audio sources and sinks: the one small interface every end of the voice
 * pipeline implements, and the registry that lists and opens them by name.
 *
 * A source produces and a sink consumes the pipeline's PCM (media/audio.h):
 * 48 kHz mono int16, one 20 ms frame of AUDIO_FRAME_SAMPLES (960) samples
 * per call. Implementations embed audio_source_t / audio_sink_t as their
 * first member and convert rates and channels themselves.
 *
 * Pacing: `paced` says who keeps time. A paced end (PortAudio) is the
 * clock: its read blocks until the device has captured the next frame (at
 * most about one frame period, then -EAGAIN), its write until the device
 * has room. An unpaced end (file, tone, null, API) returns at once, so the
 * caller must call it once per 20 ms of its own clock -- a WAV file read in
 * a loop would otherwise go by at disk speed.
 *
 * Names: "scheme" or "scheme:argument". Built in:
 *   tone[:HZ[:DBFS]]   source, sine wave (default 1000 Hz, -20 dBFS peak)
 *   null               source of silence; sink that discards
 *   file:PATH          source: 16-bit PCM WAV (mono or stereo, any rate)
 *                      played once; sink: 48 kHz mono 16-bit WAV
 *   file-loop:PATH     source: the same WAV file, looping
 * Other modules add theirs (PortAudio: "portaudio[:DEVICE]", the API:
 * "api") with device_register.
 *
 * Threads: a source or sink belongs to one thread (its capture or playback
 * thread) between open and close. device_register is meant for start-up;
 * the registry itself is guarded by a mutex, so any thread may list and
 * open.
 */
#ifndef PARLEY_DEVICE_DEVICE_H
#define PARLEY_DEVICE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct audio_source audio_source_t;
typedef struct audio_sink audio_sink_t;

typedef struct audio_source_ops {
  /* Writes one frame (960 samples) to pcm and returns 960; returns 0 at the
   * end of a finite source (pcm untouched), -EAGAIN if a paced device had
   * no frame in time, or another -errno on error. */
  int (*read)(audio_source_t *s, int16_t *pcm);
  /* Releases everything; s is freed. */
  void (*close)(audio_source_t *s);
} audio_source_ops_t;

typedef struct audio_sink_ops {
  /* Consumes one frame (960 samples). Returns 0 or -errno. */
  int (*write)(audio_sink_t *s, const int16_t *pcm);
  /* Finishes (e.g. fixes up a file's header) and frees s. Returns 0 or the
   * first -errno met while finishing; s is freed either way. */
  int (*close)(audio_sink_t *s);
} audio_sink_ops_t;

struct audio_source {
  const audio_source_ops_t *ops;
  bool paced;
};

struct audio_sink {
  const audio_sink_ops_t *ops;
  bool paced;
};

static inline int audio_source_read(audio_source_t *s, int16_t *pcm) {
  return s->ops->read(s, pcm);
}
static inline void audio_source_close(audio_source_t *s) {
  if (s)
    s->ops->close(s);
}
static inline int audio_sink_write(audio_sink_t *s, const int16_t *pcm) {
  return s->ops->write(s, pcm);
}
static inline int audio_sink_close(audio_sink_t *s) {
  return s ? s->ops->close(s) : 0;
}

/* ---- Registry ---- */

enum device_kind {
  DEVICE_SOURCE = 1,
  DEVICE_SINK = 2,
};

enum device_type {
  DEVICE_TYPE_FILE = 0,
  DEVICE_TYPE_TONE = 1,
  DEVICE_TYPE_NULL = 2,
  DEVICE_TYPE_API = 3,
  DEVICE_TYPE_PORTAUDIO = 4,
};

#define DEVICE_NAME_MAX 256
#define DEVICE_DESC_MAX 160
#define DEVICE_DRIVERS_MAX 16

typedef struct device_info {
  char name[DEVICE_NAME_MAX]; /* what device_open_* takes, or a pattern
                                 such as "file:PATH" */
  char description[DEVICE_DESC_MAX];
  enum device_kind kind; /* one entry per kind */
  enum device_type type;
} device_info_t;

typedef struct device_driver {
  const char *scheme; /* the name before ':' ("portaudio"); static */
  enum device_type type;
  /* Writes up to max entries and returns how many it has in all. May be
   * NULL (the driver lists nothing). */
  size_t (*list)(device_info_t *out, size_t max);
  /* arg: what follows "scheme:" ("" if nothing does). Return 0 or -errno
   * with a message in err. NULL if the driver has no sources / sinks. */
  int (*open_source)(const char *arg, audio_source_t **out, char *err,
                     size_t err_size);
  int (*open_sink)(const char *arg, audio_sink_t **out, char *err,
                   size_t err_size);
} device_driver_t;

/* Adds a driver (the pointer is kept: static storage). Returns 0, -EEXIST
 * if the scheme is taken, or -ENOSPC beyond DEVICE_DRIVERS_MAX. */
int device_register(const device_driver_t *drv);

/* Every device of every driver, built-ins first. Writes up to max entries
 * and returns the total (which may exceed max). */
size_t device_list(device_info_t *out, size_t max);

/* Opens a device by name. Returns 0, -ENOENT for an unknown scheme,
 * -ENOTSUP if it has no source (sink), or the driver's -errno; err always
 * says why. */
int device_open_source(const char *name, audio_source_t **out, char *err,
                       size_t err_size);
int device_open_sink(const char *name, audio_sink_t **out, char *err,
                     size_t err_size);

const char *device_kind_name(enum device_kind kind); /* "source" | "sink" */
const char *device_type_name(enum device_type type); /* "file", ... */

#endif
