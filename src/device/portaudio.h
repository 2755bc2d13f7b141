/* PortAudio capture and playback: the "portaudio" driver of the device
 * registry (device/device.h), and what only PortAudio ends can tell.
 *
 * Names: "portaudio" opens the default input (output) device;
 * "portaudio:NAME" the device called NAME exactly, else the only one whose
 * name contains NAME (case-insensitive; several matches are an error that
 * lists them). `list` shows every input and output device with its host API.
 *
 * Streams run at 48 kHz mono int16 when the device takes it, else at the
 * device's default rate and/or in stereo, converted at this edge (device/
 * resample.h; stereo input is mixed down, mono output duplicated). Both ends
 * are paced (device.h): a source's read waits for the device to capture the
 * next 960 samples (-EAGAIN after PORTAUDIO_WAIT_MS), a sink's write until
 * the device has taken enough that a frame fits in PORTAUDIO_SINK_QUEUE_MS.
 *
 * Threads: the PortAudio callback only copies between PortAudio's buffer
 * and a fixed-size lock-free sample ring, counts, and posts a semaphore when
 * the other side waits; it never blocks or allocates. Opening, listing and
 * closing may happen on any thread (they are serialized here, because
 * PortAudio's own API is not thread-safe); a source or sink then belongs to
 * one thread, as every end does. PortAudio is initialized lazily, once, by
 * the first list or open. While it finds no device, later lists and opens
 * look again (so a sound server started after the daemon is found), at
 * most once a second at first and backing off to once a minute: every
 * look reloads ALSA's plugins, which leak a little each time.
 */
#ifndef PARLEY_DEVICE_PORTAUDIO_H
#define PARLEY_DEVICE_PORTAUDIO_H

#include "device/device.h"

#include <stdint.h>

#define PORTAUDIO_WAIT_MS 40       /* a source's read gives up after this */
#define PORTAUDIO_SINK_WAIT_MS 200 /* a sink's write gives up after this */
#define PORTAUDIO_SINK_QUEUE_MS 40 /* audio queued ahead of the device */
#define PORTAUDIO_BUFFER_MS 10     /* PortAudio callback period */

/* Registers the driver with device_register. Idempotent and thread-safe;
 * initializes nothing (PortAudio starts at the first list or open). Returns
 * 0 or device_register's -errno. */
int portaudio_register(void);

/* How to open a stream when the defaults do not fit (tests, odd devices).
 * Zero fields mean "pick": 48000 Hz (else the device's default rate), mono
 * (else stereo). A field set is used as given, or the open fails. */
typedef struct portaudio_options {
  unsigned rate;     /* 0, or 8000..192000: the device's rate */
  unsigned channels; /* 0, 1 or 2 */
} portaudio_options_t;

/* Opens device ("" or NULL: the default one; else as "portaudio:NAME") and
 * starts its stream. opts may be NULL. Returns 0 or: -ENODEV (no such
 * device, no devices at all, or no default one), -EINVAL (bad options or
 * an ambiguous name), -ENOTSUP (the device refused every format tried),
 * -EIO (PortAudio failed), -ENOMEM; err always says why. */
int portaudio_source_open(const char *device, const portaudio_options_t *opts,
                          audio_source_t **out, char *err, size_t err_size);
int portaudio_sink_open(const char *device, const portaudio_options_t *opts,
                        audio_sink_t **out, char *err, size_t err_size);

/* What an open stream did so far; counters are snapshots (any thread). */
typedef struct portaudio_stats {
  double latency_s;  /* Pa_GetStreamInfo: input (source) / output (sink)
                        latency of the stream, in seconds */
  unsigned rate;     /* the stream's rate (48000 unless converted) */
  unsigned channels; /* the stream's channels (1 unless mixed) */
  uint64_t callbacks;
  uint64_t samples;   /* device-rate samples the callback moved */
  uint64_t overruns;  /* source: samples lost to a full ring (the reader was
                         late by more than the ring holds) */
  uint64_t underruns; /* sink: times playback ran dry once started (filled
                         with silence; it restarts when a frame is queued) */
  uint64_t xruns;     /* PortAudio's own input overflow / output underflow */
  uint64_t queued;    /* device-rate samples in the ring right now: source,
                         captured but not yet read; sink, written but not
                         yet handed to the device (echo cancellation's
                         delay estimate) */
  uint64_t silence;   /* sink: device-rate samples played as silence
                         because nothing was queued (before the first
                         frame, and in underruns) */
} portaudio_stats_t;

/* 0, or -EINVAL if s is not a PortAudio end. */
int portaudio_source_stats(const audio_source_t *s, portaudio_stats_t *out);
int portaudio_sink_stats(const audio_sink_t *s, portaudio_stats_t *out);

/* The stream's input (output) latency in seconds as PortAudio reports it
 * (for echo cancellation), or -1 if s is not a PortAudio end. Any thread. */
double portaudio_source_latency(const audio_source_t *s);
double portaudio_sink_latency(const audio_sink_t *s);

#endif
