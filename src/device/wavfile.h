/* WAV files as a source and a sink.
 *
 * The source reads a 16-bit PCM WAV file (mono, or stereo mixed down to
 * mono) at any rate device/wav.h accepts, converts it to 48 kHz with
 * device/resample.h when needed, and plays it once (the last frame padded
 * with silence, then end of input) or in a loop. It streams from the file:
 * memory does not grow with the file's length.
 *
 * The sink writes 48 kHz mono 16-bit WAV. Its header is written at open and
 * rewritten every WAV_SINK_HEADER_EVERY frames (one second) and at close,
 * and each frame goes to the file with one write(2); so if the process is
 * killed, the file is still a valid WAV holding all but at most the last
 * second (the samples past the stated length are ignored by readers).
 *
 * Owns one file descriptor each (and the source its converter). Both are
 * unpaced (device.h); one thread at a time.
 */
#ifndef PARLEY_DEVICE_WAVFILE_H
#define PARLEY_DEVICE_WAVFILE_H

#include "device/device.h"

#include <stdbool.h>

#define WAV_SINK_HEADER_EVERY 50 /* frames between header rewrites */

/* Opens path. Returns 0; -errno from open(2); -EINVAL for a malformed or
 * truncated file (and for looping a file without samples); -ENOTSUP for a
 * well-formed WAV of another format; -ENOMEM. err says which and why,
 * prefixed with the path. */
int wav_source_open(const char *path, bool loop, audio_source_t **out,
                    char *err, size_t err_size);

/* Creates (or truncates) path, mode 0644. Returns 0 or -errno, with err.
 * A write fails with -EFBIG once the file would pass 4 GiB (12 hours). */
int wav_sink_open(const char *path, audio_sink_t **out, char *err,
                  size_t err_size);

#endif
