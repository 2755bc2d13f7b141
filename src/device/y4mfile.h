/* Y4M files as a video source and sink.
 *
 * The source reads an 8-bit 4:2:0 Y4M file (device/y4m.h) picture by
 * picture, streaming from the file, and plays it once or in a loop. A file
 * cut inside a picture ends (or, looping, wraps) at the last whole picture,
 * with a warning in the log.
 *
 * The sink writes a Y4M file at the size of the first picture it gets,
 * F24:1, each picture after "FRAME Xseq=<seq>\n" (the picture's seq), and
 * scales pictures of another size to that first size (libyuv box filter).
 *
 * Owns one FILE each (and the sink a scratch picture). Both are unpaced
 * (device/vdevice.h); one thread at a time.
 */
#ifndef PARLEY_DEVICE_Y4MFILE_H
#define PARLEY_DEVICE_Y4MFILE_H

#include "device/vdevice.h"

#include <stdbool.h>
#include <stdint.h>

#define Y4M_SINK_FPS 24

/* Opens path. Returns 0; -errno from fopen; -EINVAL for a malformed or
 * truncated header (and for looping a file without a whole picture);
 * -ENOTSUP for another colour space or a size beyond VIDEO_MAX_*;
 * -ENOMEM. err says which and why, prefixed with the path. */
int y4m_source_open(const char *path, bool loop, video_source_t **out,
                    char *err, size_t err_size);

/* The Xseq=N of the FRAME line of the picture read last; false if it had
 * none (or nothing was read). */
bool y4m_source_last_seq(const video_source_t *s, uint32_t *seq);

/* Creates (or truncates) path. Returns 0 or -errno, with err. */
int y4m_sink_open(const char *path, video_sink_t **out, char *err,
                  size_t err_size);

#endif
