/* PortAudio sources and sinks: lazy, serialized PortAudio start-up, device
 * lookup and listing, and callback streams over lock-free sample rings. */
#include "device/portaudio.h"

#include "core/log.h"
#include "device/resample.h"
#include "media/audio.h"

#include <errno.h>
#include <portaudio.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PA__FRAME AUDIO_FRAME_SAMPLES
#define PA__CHUNK 1024         /* device samples converted at a time */
#define PA__SOURCE_RING_MS 500 /* capture the ring can hold */
#define PA__BACKLOG_MS 200     /* a reader further behind skips ahead */
#define PA__DRAIN_MS 100       /* a closing sink plays out at most this */
/* Looking for devices again while none are found: at most this often,
 * doubling from MIN to MAX. Each look costs a Pa_Terminate/Pa_Initialize
 * cycle, and ALSA's plugins leak ~13 KB per cycle as they are unloaded and
 * loaded again, so a client polling list_devices must not drive it. */
#define PA__RESCAN_MIN_MS 1000
#define PA__RESCAN_MAX_MS 60000

/* A single-producer single-consumer FIFO of mono samples. The counters
 * only grow (wrapping is harmless: their difference is what counts); the
 * producer alone moves head, the consumer alone moves tail. Sized in
 * samples rather than frames because the callback's buffer (10 ms, or
 * whatever a device's rate makes of it) is not a 960-sample frame. */
typedef struct pa__ring {
  int16_t *buf;
  size_t mask; /* capacity - 1, capacity a power of two */
  atomic_size_t head, tail;
} pa__ring_t;

/* What a source and a sink share: the stream, its ring and how a waiting
 * thread is woken. */
typedef struct pa__stream {
  PaStream *pa;
  bool input;
  char name[DEVICE_NAME_MAX];
  unsigned rate, channels;
  size_t limit;  /* sink: samples that may be queued ahead of the device */
  size_t prebuf; /* sink: samples queued before playing (re)starts */
  bool playing;  /* sink: callback thread only */
  double latency;
  pa__ring_t ring;
  sem_t wake;
  bool wake_ok;
  atomic_bool waiting;  /* the reader (writer) sleeps on wake */
  atomic_bool finished; /* the stream stopped by itself */
  atomic_bool draining; /* sink: closing, play whatever is queued */
  atomic_uint_fast64_t callbacks, samples, overruns, underruns, xruns;
  atomic_uint_fast64_t silence; /* sink: samples played as silence */
} pa__stream_t;

typedef struct pa__source {
  audio_source_t base;
  pa__stream_t st;
  /* Only when converting: device-rate samples taken from the ring but not
   * yet converted, and 48 kHz samples converted but not yet read. */
  resample_t *rs;
  int16_t *chunk;
  float *in, *out;
  size_t in_off, in_n, out_n, out_max;
} pa__source_t;

typedef struct pa__sink {
  audio_sink_t base;
  pa__stream_t st;
  resample_t *rs; /* only when converting */
  float *in, *out;
  int16_t *chunk;
  size_t out_max;
} pa__sink_t;

static int pa__source_read(audio_source_t *s, int16_t *pcm);
static void pa__source_close(audio_source_t *s);
static int pa__sink_write(audio_sink_t *s, const int16_t *pcm);
static int pa__sink_close(audio_sink_t *s);
static size_t pa__list(device_info_t *out, size_t max);
static int pa__open_source_arg(const char *arg, audio_source_t **out, char *err,
                               size_t err_size);
static int pa__open_sink_arg(const char *arg, audio_sink_t **out, char *err,
                             size_t err_size);
static int pa__open(pa__stream_t *st, bool input, const char *device,
                    const portaudio_options_t *opts, char *err,
                    size_t err_size);
static int pa__close(pa__stream_t *st);
static int pa__wait(pa__stream_t *st, size_t want, const struct timespec *t);
static void pa__deadline(struct timespec *t, int ms);
static void pa__stats(const pa__stream_t *st, portaudio_stats_t *out);

static const audio_source_ops_t pa__source_ops = {pa__source_read,
                                                  pa__source_close};
static const audio_sink_ops_t pa__sink_ops = {pa__sink_write, pa__sink_close};

static const device_driver_t pa__driver = {"portaudio", DEVICE_TYPE_PORTAUDIO,
                                           pa__list, pa__open_source_arg,
                                           pa__open_sink_arg};

/* PortAudio's API is not thread-safe: every call outside the callbacks is
 * made under this lock. */
static pthread_mutex_t pa__lock = PTHREAD_MUTEX_INITIALIZER;
static bool pa__up;              /* Pa_Initialize succeeded */
static int pa__streams;          /* open streams (no rescan while any is) */
static int64_t pa__next_scan_ms; /* no rescan before (monotonic) */
static int pa__scan_gap_ms;      /* the current gap; 0 after success */
static pthread_once_t pa__register_once = PTHREAD_ONCE_INIT;
static int pa__register_result;

/* ---- registration ---- */

static void pa__register(void) {
  int r = device_register(&pa__driver);
  pa__register_result = r == -EEXIST ? 0 : r;
}

int portaudio_register(void) {
  pthread_once(&pa__register_once, pa__register);
  return pa__register_result;
}

/* ---- sources ---- */

int portaudio_source_open(const char *device, const portaudio_options_t *opts,
                          audio_source_t **out, char *err, size_t err_size) {
  pa__source_t *p = calloc(1, sizeof(*p));
  if (!p) {
    snprintf(err, err_size, "portaudio: out of memory");
    return -ENOMEM;
  }
  p->base.ops = &pa__source_ops;
  p->base.paced = true;
  int r = pa__open(&p->st, true, device, opts, err, err_size);
  if (r != 0) {
    free(p);
    return r;
  }
  if (p->st.rate != AUDIO_RATE) {
    p->out_max = 2 * PA__FRAME;
    p->rs = resample_new(p->st.rate, AUDIO_RATE, RESAMPLE_FAST);
    p->chunk = malloc(PA__CHUNK * sizeof(int16_t));
    p->in = malloc(PA__CHUNK * sizeof(float));
    p->out = malloc(p->out_max * sizeof(float));
    if (!p->rs || !p->chunk || !p->in || !p->out) {
      snprintf(err, err_size, "portaudio: no converter from %u Hz", p->st.rate);
      pa__source_close(&p->base);
      return -ENOMEM;
    }
  }
  *out = &p->base;
  return 0;
}

/* Pops n samples (available) and converts them to floats in p->in. */
static void pa__source_take(pa__source_t *p, size_t n) {
  pa__ring_t *r = &p->st.ring;
  size_t tail = atomic_load(&r->tail);
  for (size_t i = 0; i < n; i++)
    p->chunk[i] = r->buf[(tail + i) & r->mask];
  atomic_store(&r->tail, tail + n);
  resample_s16_to_float(p->chunk, p->in, n);
  p->in_off = 0;
  p->in_n = n;
}

/* The converting read: device-rate samples through the resampler until a
 * whole 48 kHz frame is there. */
static int pa__source_read_converted(pa__source_t *p, int16_t *pcm,
                                     const struct timespec *deadline) {
  while (p->out_n < PA__FRAME) {
    if (p->in_n == 0) {
      int r = pa__wait(&p->st, 1, deadline);
      if (r != 0)
        return r;
      pa__ring_t *ring = &p->st.ring;
      size_t avail = atomic_load(&ring->head) - atomic_load(&ring->tail);
      pa__source_take(p, avail < PA__CHUNK ? avail : PA__CHUNK);
    }
    size_t used;
    long got =
        resample_process(p->rs, p->in + p->in_off, p->in_n, &used,
                         p->out + p->out_n, p->out_max - p->out_n, false);
    if (got < 0)
      return -EIO;
    p->in_off += used;
    p->in_n -= used;
    p->out_n += (size_t)got;
  }
  resample_float_to_s16(p->out, pcm, PA__FRAME);
  p->out_n -= PA__FRAME;
  memmove(p->out, p->out + PA__FRAME, p->out_n * sizeof(float));
  return PA__FRAME;
}

/* A reader that fell far behind (its thread stalled) skips to the last
 * frame instead of sending stale audio, so that a stall does not turn
 * into lasting delay or a burst of old frames. The skipped samples count
 * as overruns. */
static void pa__source_skip_stale(pa__stream_t *st) {
  pa__ring_t *r = &st->ring;
  size_t tail = atomic_load(&r->tail);
  size_t queued = atomic_load(&r->head) - tail;
  size_t keep = (size_t)PA__FRAME * st->rate / AUDIO_RATE;
  if (queued <= st->rate * PA__BACKLOG_MS / 1000)
    return;
  atomic_store(&r->tail, tail + queued - keep);
  atomic_fetch_add(&st->overruns, queued - keep);
}

static int pa__source_read(audio_source_t *s, int16_t *pcm) {
  pa__source_t *p = (pa__source_t *)s;
  pa__source_skip_stale(&p->st);
  struct timespec deadline;
  pa__deadline(&deadline, PORTAUDIO_WAIT_MS);
  if (p->rs)
    return pa__source_read_converted(p, pcm, &deadline);
  int r = pa__wait(&p->st, PA__FRAME, &deadline);
  if (r != 0)
    return r;
  pa__ring_t *ring = &p->st.ring;
  size_t tail = atomic_load(&ring->tail);
  for (size_t i = 0; i < PA__FRAME; i++)
    pcm[i] = ring->buf[(tail + i) & ring->mask];
  atomic_store(&ring->tail, tail + PA__FRAME);
  return PA__FRAME;
}

static void pa__source_close(audio_source_t *s) {
  pa__source_t *p = (pa__source_t *)s;
  pa__close(&p->st);
  resample_free(p->rs);
  free(p->chunk);
  free(p->in);
  free(p->out);
  free(p);
}

/* The capture callback: device samples (mixed to mono) into the ring. */
static int pa__source_cb(const void *input, void *output, unsigned long n,
                         const PaStreamCallbackTimeInfo *ti,
                         PaStreamCallbackFlags flags, void *user) {
  pa__stream_t *st = user;
  pa__ring_t *r = &st->ring;
  const int16_t *in = input;
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t room = r->mask + 1 - (head - atomic_load(&r->tail));
  size_t take = n < room ? n : room;
  for (size_t i = 0; i < take; i++) {
    int v = !in                 ? 0
            : st->channels == 1 ? in[i]
                                : (in[2 * i] + in[2 * i + 1]) / 2;
    r->buf[(head + i) & r->mask] = (int16_t)v;
  }
  atomic_store(&r->head, head + take);
  atomic_fetch_add_explicit(&st->callbacks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->samples, n, memory_order_relaxed);
  if (take < n)
    atomic_fetch_add_explicit(&st->overruns, n - take, memory_order_relaxed);
  if (flags & paInputOverflow)
    atomic_fetch_add_explicit(&st->xruns, 1, memory_order_relaxed);
  if (atomic_exchange(&st->waiting, false))
    sem_post(&st->wake); /* lock-free: a futex wake, never a wait */
  return paContinue;
}

/* ---- sinks ---- */

int portaudio_sink_open(const char *device, const portaudio_options_t *opts,
                        audio_sink_t **out, char *err, size_t err_size) {
  pa__sink_t *p = calloc(1, sizeof(*p));
  if (!p) {
    snprintf(err, err_size, "portaudio: out of memory");
    return -ENOMEM;
  }
  p->base.ops = &pa__sink_ops;
  p->base.paced = true;
  int r = pa__open(&p->st, false, device, opts, err, err_size);
  if (r != 0) {
    free(p);
    return r;
  }
  if (p->st.rate != AUDIO_RATE) {
    p->out_max = (size_t)PA__FRAME * p->st.rate / AUDIO_RATE + 256;
    p->rs = resample_new(AUDIO_RATE, p->st.rate, RESAMPLE_FAST);
    p->in = malloc(PA__FRAME * sizeof(float));
    p->out = malloc(p->out_max * sizeof(float));
    p->chunk = malloc(p->out_max * sizeof(int16_t));
    if (!p->rs || !p->in || !p->out || !p->chunk) {
      snprintf(err, err_size, "portaudio: no converter to %u Hz", p->st.rate);
      pa__sink_close(&p->base);
      return -ENOMEM;
    }
  }
  *out = &p->base;
  return 0;
}

/* Queues n samples once they fit under the sink's limit. */
static int pa__sink_push(pa__sink_t *p, const int16_t *pcm, size_t n) {
  struct timespec deadline;
  pa__deadline(&deadline, PORTAUDIO_SINK_WAIT_MS);
  int r = pa__wait(&p->st, n, &deadline);
  if (r != 0)
    return r;
  pa__ring_t *ring = &p->st.ring;
  size_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
  for (size_t i = 0; i < n; i++)
    ring->buf[(head + i) & ring->mask] = pcm[i];
  atomic_store(&ring->head, head + n);
  return 0;
}

static int pa__sink_write(audio_sink_t *s, const int16_t *pcm) {
  pa__sink_t *p = (pa__sink_t *)s;
  if (!p->rs)
    return pa__sink_push(p, pcm, PA__FRAME);
  resample_s16_to_float(pcm, p->in, PA__FRAME);
  size_t off = 0, n = 0;
  while (off < PA__FRAME && n < p->out_max) {
    size_t used;
    long got = resample_process(p->rs, p->in + off, PA__FRAME - off, &used,
                                p->out + n, p->out_max - n, false);
    if (got < 0)
      return -EIO;
    if (got == 0 && used == 0)
      break;
    off += used;
    n += (size_t)got;
  }
  resample_float_to_s16(p->out, p->chunk, n);
  return pa__sink_push(p, p->chunk, n);
}

static int pa__sink_close(audio_sink_t *s) {
  pa__sink_t *p = (pa__sink_t *)s;
  pa__ring_t *ring = &p->st.ring;
  atomic_store(&p->st.draining, true);
  /* Let what is queued play (briefly: closing must not hang on a stalled
   * device); Pa_StopStream then plays PortAudio's own buffers out. */
  for (int ms = 0;
       ms < PA__DRAIN_MS && p->st.pa && !atomic_load(&p->st.finished) &&
       atomic_load(&ring->head) != atomic_load(&ring->tail);
       ms += 5)
    nanosleep(&(struct timespec){0, 5000000}, NULL);
  int r = pa__close(&p->st);
  resample_free(p->rs);
  free(p->in);
  free(p->out);
  free(p->chunk);
  free(p);
  return r;
}

/* The playback callback: ring into the device's buffer (mono duplicated to
 * every channel), silence for whatever is missing. Like a sound server's
 * prebuffering, it starts (and after an underrun restarts) only once a
 * frame is queued: a writer paced by another clock (a capture device, the
 * network) then keeps a frame of slack instead of running just in time
 * and underrunning at every jitter. */
static int pa__sink_cb(const void *input, void *output, unsigned long n,
                       const PaStreamCallbackTimeInfo *ti,
                       PaStreamCallbackFlags flags, void *user) {
  pa__stream_t *st = user;
  pa__ring_t *r = &st->ring;
  int16_t *out = output;
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  size_t avail = atomic_load(&r->head) - tail;
  if (!st->playing && (avail >= st->prebuf ||
                       (avail > 0 && atomic_load_explicit(
                                         &st->draining, memory_order_relaxed))))
    st->playing = true;
  size_t take = !st->playing ? 0 : n < avail ? n : avail;
  for (size_t i = 0; i < n; i++) {
    int16_t v = i < take ? r->buf[(tail + i) & r->mask] : 0;
    for (unsigned c = 0; c < st->channels; c++)
      out[i * st->channels + c] = v;
  }
  atomic_store(&r->tail, tail + take);
  atomic_fetch_add_explicit(&st->callbacks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->samples, n, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->silence, n - take, memory_order_relaxed);
  if (st->playing && take < n) {
    st->playing = false;
    atomic_fetch_add_explicit(&st->underruns, 1, memory_order_relaxed);
  }
  if (flags & paOutputUnderflow)
    atomic_fetch_add_explicit(&st->xruns, 1, memory_order_relaxed);
  if (atomic_exchange(&st->waiting, false))
    sem_post(&st->wake);
  return paContinue;
}

/* ---- statistics ---- */

int portaudio_source_stats(const audio_source_t *s, portaudio_stats_t *out) {
  if (!s || s->ops != &pa__source_ops)
    return -EINVAL;
  pa__stats(&((const pa__source_t *)s)->st, out);
  return 0;
}

int portaudio_sink_stats(const audio_sink_t *s, portaudio_stats_t *out) {
  if (!s || s->ops != &pa__sink_ops)
    return -EINVAL;
  pa__stats(&((const pa__sink_t *)s)->st, out);
  return 0;
}

double portaudio_source_latency(const audio_source_t *s) {
  return s && s->ops == &pa__source_ops ? ((const pa__source_t *)s)->st.latency
                                        : -1;
}

double portaudio_sink_latency(const audio_sink_t *s) {
  return s && s->ops == &pa__sink_ops ? ((const pa__sink_t *)s)->st.latency
                                      : -1;
}

static void pa__stats(const pa__stream_t *st, portaudio_stats_t *out) {
  out->latency_s = st->latency;
  out->rate = st->rate;
  out->channels = st->channels;
  out->callbacks = atomic_load(&st->callbacks);
  out->samples = atomic_load(&st->samples);
  out->overruns = atomic_load(&st->overruns);
  out->underruns = atomic_load(&st->underruns);
  out->xruns = atomic_load(&st->xruns);
  out->queued = atomic_load(&st->ring.head) - atomic_load(&st->ring.tail);
  out->silence = atomic_load(&st->silence);
}

/* ---- waiting ---- */

static void pa__deadline(struct timespec *t, int ms) {
  clock_gettime(CLOCK_MONOTONIC, t);
  t->tv_nsec += (long)(ms % 1000) * 1000000L;
  t->tv_sec += ms / 1000 + t->tv_nsec / 1000000000L;
  t->tv_nsec %= 1000000000L;
}

/* True when a source has want samples to read, or a sink room for want. */
static bool pa__ready(pa__stream_t *st, size_t want) {
  size_t queued = atomic_load(&st->ring.head) - atomic_load(&st->ring.tail);
  return st->input ? queued >= want : queued + want <= st->limit;
}

/* Waits until pa__ready or the deadline (-EAGAIN). The callback wakes us
 * only when `waiting` is set, so the semaphore does not count up while
 * nobody waits; setting it and then checking again closes the race with a
 * callback that ran in between (sequentially consistent atomics). A stream
 * that stopped by itself gives -EIO, after a frame period so that a caller
 * retrying in a loop stays paced. */
static int pa__wait(pa__stream_t *st, size_t want, const struct timespec *t) {
  for (;;) {
    if (pa__ready(st, want))
      return 0;
    if (atomic_load(&st->finished)) {
      nanosleep(&(struct timespec){0, AUDIO_FRAME_US * 1000L}, NULL);
      return -EIO;
    }
    atomic_store(&st->waiting, true);
    if (pa__ready(st, want)) {
      atomic_store(&st->waiting, false);
      return 0;
    }
    if (sem_clockwait(&st->wake, CLOCK_MONOTONIC, t) != 0 &&
        errno == ETIMEDOUT) {
      atomic_store(&st->waiting, false);
      return pa__ready(st, want) ? 0 : -EAGAIN;
    }
  }
}

static void pa__on_finished(void *user) {
  pa__stream_t *st = user;
  atomic_store(&st->finished, true);
  sem_post(&st->wake);
}

/* ---- PortAudio itself (pa__lock held) ---- */

static int64_t pa__now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Starts PortAudio, or starts it again while it sees no device and no
 * stream is open (devices are enumerated only by Pa_Initialize), backing
 * off between fruitless looks. */
static int pa__ensure(char *err, size_t err_size) {
  if (pa__up && Pa_GetDeviceCount() > 0)
    return 0;
  bool may_scan = pa__streams == 0 && pa__now_ms() >= pa__next_scan_ms;
  if (pa__up && may_scan) {
    Pa_Terminate();
    pa__up = false;
  }
  PaError e = paNoError;
  if (!pa__up && may_scan) {
    e = Pa_Initialize();
    pa__up = e == paNoError;
  }
  if (pa__up && Pa_GetDeviceCount() > 0) {
    pa__scan_gap_ms = 0;
    return 0;
  }
  if (may_scan) {
    pa__scan_gap_ms = pa__scan_gap_ms ? 2 * pa__scan_gap_ms : PA__RESCAN_MIN_MS;
    if (pa__scan_gap_ms > PA__RESCAN_MAX_MS)
      pa__scan_gap_ms = PA__RESCAN_MAX_MS;
    pa__next_scan_ms = pa__now_ms() + pa__scan_gap_ms;
  }
  if (e != paNoError || !pa__up) {
    snprintf(err, err_size, "portaudio: cannot initialize: %s",
             e != paNoError ? Pa_GetErrorText(e) : "failed before");
    return -EIO;
  }
  snprintf(err, err_size,
           "portaudio: no audio devices (no sound card, and no sound "
           "server such as PulseAudio answered; looking again in %d s at "
           "the earliest)",
           pa__next_scan_ms > pa__now_ms()
               ? (int)((pa__next_scan_ms - pa__now_ms() + 999) / 1000)
               : 0);
  return -ENODEV;
}

static int pa__channels(PaDeviceIndex i, bool input) {
  const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
  return !d ? 0 : input ? d->maxInputChannels : d->maxOutputChannels;
}

/* The device named want ("" or NULL: the default one) of that direction. */
static int pa__find(const char *want, bool input, PaDeviceIndex *out, char *err,
                    size_t err_size) {
  const char *dir = input ? "input" : "output";
  if (!want || !*want) {
    *out = input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
    if (*out == paNoDevice || pa__channels(*out, input) <= 0) {
      snprintf(err, err_size, "portaudio: there is no default %s device", dir);
      return -ENODEV;
    }
    return 0;
  }
  int n = Pa_GetDeviceCount(), found = 0;
  for (PaDeviceIndex i = 0; i < n; i++)
    if (pa__channels(i, input) > 0 &&
        strcmp(Pa_GetDeviceInfo(i)->name, want) == 0) {
      *out = i;
      return 0;
    }
  char names[160] = "";
  for (PaDeviceIndex i = 0; i < n; i++) {
    const char *name = Pa_GetDeviceInfo(i)->name;
    if (pa__channels(i, input) <= 0 || !strcasestr(name, want))
      continue;
    if (found++ == 0)
      *out = i;
    size_t len = strlen(names);
    snprintf(names + len, sizeof(names) - len, "%s'%s'", len ? ", " : "", name);
  }
  if (found == 1)
    return 0;
  if (found > 1) {
    snprintf(err, err_size, "portaudio: '%s' matches several %s devices: %s",
             want, dir, names);
    return -EINVAL;
  }
  snprintf(err, err_size,
           "portaudio: no %s device named '%s' (list_devices shows them)", dir,
           want);
  return -ENODEV;
}

/* The first of the candidate formats the device takes. */
static int pa__pick(PaStreamParameters *pp, bool input,
                    const portaudio_options_t *o, const PaDeviceInfo *d,
                    unsigned *rate, char *err, size_t err_size) {
  unsigned rates[2] = {o->rate ? o->rate : AUDIO_RATE,
                       o->rate ? 0 : (unsigned)d->defaultSampleRate};
  unsigned chans[2] = {o->channels ? o->channels : 1, o->channels ? 0 : 2};
  for (int ri = 0; ri < 2; ri++) {
    if (rates[ri] < 8000 || rates[ri] > 192000 || (ri && rates[1] == rates[0]))
      continue;
    for (int ci = 0; ci < 2; ci++) {
      if (chans[ci] == 0 || (int)chans[ci] > pa__channels(pp->device, input))
        continue;
      pp->channelCount = (int)chans[ci];
      PaError e =
          Pa_IsFormatSupported(input ? pp : NULL, input ? NULL : pp, rates[ri]);
      if (e == paFormatIsSupported) {
        *rate = rates[ri];
        return 0;
      }
    }
  }
  char tried[64];
  snprintf(tried, sizeof(tried), "%u", rates[0]);
  if (rates[1] && rates[1] != rates[0] && rates[1] >= 8000)
    snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), " or %u",
             rates[1]);
  snprintf(err, err_size, "portaudio: '%s' refuses int16 %s at %s Hz", d->name,
           chans[1]        ? "mono and stereo"
           : chans[0] == 1 ? "mono"
                           : "stereo",
           tried);
  return -ENOTSUP;
}

static size_t pa__pow2(size_t n) {
  size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

/* Opens and starts st's stream (st is what the callbacks get). On failure
 * nothing is left allocated in st. */
static int pa__open_locked(pa__stream_t *st, bool input, const char *device,
                           const portaudio_options_t *o, char *err,
                           size_t err_size) {
  int r = pa__ensure(err, err_size);
  PaStreamParameters pp = {0};
  if (r == 0)
    r = pa__find(device, input, &pp.device, err, err_size);
  if (r != 0)
    return r;
  const PaDeviceInfo *d = Pa_GetDeviceInfo(pp.device);
  pp.sampleFormat = paInt16;
  pp.suggestedLatency =
      input ? d->defaultLowInputLatency : d->defaultLowOutputLatency;
  r = pa__pick(&pp, input, o, d, &st->rate, err, err_size);
  if (r != 0)
    return r;
  st->input = input;
  st->channels = (unsigned)pp.channelCount;
  snprintf(st->name, sizeof(st->name), "%s", d->name);
  size_t buffer = st->rate * PORTAUDIO_BUFFER_MS / 1000;
  size_t frame = (size_t)PA__FRAME * st->rate / AUDIO_RATE + 1;
  st->limit = st->rate * PORTAUDIO_SINK_QUEUE_MS / 1000;
  if (st->limit < frame + buffer)
    st->limit = frame + buffer;
  st->prebuf = frame - 1;
  size_t cap = input ? st->rate * PA__SOURCE_RING_MS / 1000 : st->limit;
  st->ring.mask = pa__pow2(cap) - 1;
  st->ring.buf = calloc(st->ring.mask + 1, sizeof(int16_t));
  if (!st->ring.buf) {
    snprintf(err, err_size, "portaudio: out of memory");
    return -ENOMEM;
  }
  if (sem_init(&st->wake, 0, 0) != 0) {
    free(st->ring.buf);
    snprintf(err, err_size, "portaudio: sem_init: %s", strerror(errno));
    return -errno;
  }
  st->wake_ok = true;
  PaError e =
      Pa_OpenStream(&st->pa, input ? &pp : NULL, input ? NULL : &pp, st->rate,
                    buffer, paClipOff, input ? pa__source_cb : pa__sink_cb, st);
  if (e == paNoError)
    e = Pa_SetStreamFinishedCallback(st->pa, pa__on_finished);
  if (e == paNoError) {
    const PaStreamInfo *si = Pa_GetStreamInfo(st->pa);
    st->latency = !si ? 0 : input ? si->inputLatency : si->outputLatency;
    e = Pa_StartStream(st->pa);
  }
  if (e != paNoError) {
    snprintf(err, err_size, "portaudio: cannot open '%s' for %s: %s", d->name,
             input ? "capture" : "playback", Pa_GetErrorText(e));
    if (st->pa)
      Pa_CloseStream(st->pa);
    st->pa = NULL;
    sem_destroy(&st->wake);
    st->wake_ok = false;
    free(st->ring.buf);
    st->ring.buf = NULL;
    return -EIO;
  }
  pa__streams++;
  const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
  LOG_INFO("portaudio", "%s '%s' (%s): %u Hz %s, latency %.1f ms%s",
           input ? "capture" : "playback", d->name, h ? h->name : "?", st->rate,
           st->channels == 1 ? "mono" : "stereo", st->latency * 1000,
           st->rate != AUDIO_RATE ? ", converted to 48 kHz" : "");
  return 0;
}

static int pa__open(pa__stream_t *st, bool input, const char *device,
                    const portaudio_options_t *opts, char *err,
                    size_t err_size) {
  portaudio_options_t o = opts ? *opts : (portaudio_options_t){0};
  if ((o.rate && (o.rate < 8000 || o.rate > 192000)) || o.channels > 2) {
    snprintf(err, err_size,
             "portaudio: rate must be 8000..192000 Hz, channels 1 or 2");
    return -EINVAL;
  }
  pthread_mutex_lock(&pa__lock);
  int r = pa__open_locked(st, input, device, &o, err, err_size);
  pthread_mutex_unlock(&pa__lock);
  return r;
}

/* Stops and closes the stream (if open) and frees what st holds. Returns 0,
 * or -EIO if PortAudio failed to stop it. */
static int pa__close(pa__stream_t *st) {
  int r = 0;
  if (st->pa) {
    pthread_mutex_lock(&pa__lock);
    PaError e = st->input ? Pa_AbortStream(st->pa) : Pa_StopStream(st->pa);
    if (e != paNoError && e != paStreamIsStopped) {
      LOG_WARN("portaudio", "stopping '%s': %s", st->name, Pa_GetErrorText(e));
      r = -EIO;
    }
    Pa_CloseStream(st->pa);
    pa__streams--;
    pthread_mutex_unlock(&pa__lock);
    portaudio_stats_t s;
    pa__stats(st, &s);
    LOG_INFO("portaudio", "%s '%s' closed: %llu callbacks, %llu %s, %llu xruns",
             st->input ? "capture" : "playback", st->name,
             (unsigned long long)s.callbacks,
             (unsigned long long)(st->input ? s.overruns : s.underruns),
             st->input ? "samples skipped (overruns)" : "underruns",
             (unsigned long long)s.xruns);
  }
  if (st->wake_ok)
    sem_destroy(&st->wake);
  free(st->ring.buf);
  return r;
}

/* ---- the registry's side ---- */

static int pa__open_source_arg(const char *arg, audio_source_t **out, char *err,
                               size_t err_size) {
  return portaudio_source_open(arg, NULL, out, err, err_size);
}

static int pa__open_sink_arg(const char *arg, audio_sink_t **out, char *err,
                             size_t err_size) {
  return portaudio_sink_open(arg, NULL, out, err, err_size);
}

static size_t pa__add(device_info_t *out, size_t max, size_t i,
                      enum device_kind kind, const char *name, const char *fmt,
                      ...) __attribute__((format(printf, 6, 7)));

static size_t pa__add(device_info_t *out, size_t max, size_t i,
                      enum device_kind kind, const char *name, const char *fmt,
                      ...) {
  if (i < max) {
    snprintf(out[i].name, sizeof(out[i].name), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out[i].description, sizeof(out[i].description), fmt, ap);
    va_end(ap);
    out[i].kind = kind;
    out[i].type = DEVICE_TYPE_PORTAUDIO;
  }
  return i + 1;
}

static const char *pa__host(const PaDeviceInfo *d) {
  const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
  return h ? h->name : "?";
}

/* "portaudio" for each default device, then "portaudio:NAME" for every
 * device and direction it has. Nothing when PortAudio sees no device. */
static size_t pa__list(device_info_t *out, size_t max) {
  char err[160];
  size_t n = 0;
  pthread_mutex_lock(&pa__lock);
  if (pa__ensure(err, sizeof(err)) != 0) {
    pthread_mutex_unlock(&pa__lock);
    return 0;
  }
  for (int k = 0; k < 2; k++) {
    bool input = k == 0;
    PaDeviceIndex def =
        input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
    if (def == paNoDevice || pa__channels(def, input) <= 0)
      continue;
    const PaDeviceInfo *d = Pa_GetDeviceInfo(def);
    n = pa__add(out, max, n, input ? DEVICE_SOURCE : DEVICE_SINK, "portaudio",
                "default %s: %s (%s)", input ? "input" : "output", d->name,
                pa__host(d));
  }
  int count = Pa_GetDeviceCount();
  for (PaDeviceIndex i = 0; i < count; i++) {
    const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
    char name[DEVICE_NAME_MAX];
    snprintf(name, sizeof(name), "portaudio:%s", d->name);
    for (int k = 0; k < 2; k++) {
      bool input = k == 0;
      int ch = pa__channels(i, input);
      if (ch > 0)
        n = pa__add(out, max, n, input ? DEVICE_SOURCE : DEVICE_SINK, name,
                    "%s (%s), %d channel%s, %.0f Hz native", d->name,
                    pa__host(d), ch, ch == 1 ? "" : "s", d->defaultSampleRate);
    }
  }
  pthread_mutex_unlock(&pa__lock);
  return n;
}
