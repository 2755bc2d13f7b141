/* The moving test pattern: a video source that needs no file or camera,
 * and the drawing function tests use to regenerate any of its pictures.
 *
 * Picture n (any size) is a function of n alone: colour bars over the top
 * two thirds, a grey ramp below, a white box moving across the bars, a row
 * of VPATTERN_BITS black/white squares along the bottom spelling n in
 * binary (most significant first, readable back after lossy coding with
 * vpattern_read_index), and a faint grain (+-3 luma levels) that changes
 * every picture, so an encoder meets some of the noise of a real camera.
 *
 * Owns nothing but the source's state. Pure functions; a source belongs
 * to one thread at a time (unpaced, device/vdevice.h).
 */
#ifndef PARLEY_DEVICE_VPATTERN_H
#define PARLEY_DEVICE_VPATTERN_H

#include "device/vdevice.h"
#include "media/video.h"

#include <stdint.h>

#define VPATTERN_BITS 16 /* frame index bits drawn (it wraps at 65536) */

/* Draws picture `index` into img at img's allocated size (at least 32x16
 * for the index squares to be readable). */
void vpattern_draw(video_image_t *img, uint32_t index);

/* Reads the index squares back (luma threshold at mid grey). Returns 0 and
 * the index modulo 2^VPATTERN_BITS, or -EINVAL if img is too small. */
int vpattern_read_index(const video_image_t *img, uint32_t *index);

/* A source of pictures 0, 1, 2, ... at width x height, `fps` advertised.
 * Returns 0, -EINVAL for a size outside 32x16..VIDEO_MAX_* or fps outside
 * 1..120, or -ENOMEM. */
int vpattern_source_open(int width, int height, int fps, video_source_t **out);

#endif
