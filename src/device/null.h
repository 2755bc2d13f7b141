/* The null source (silence, forever) and the null sink (discards audio,
 * counting frames): ends for a side of a call that neither captures nor
 * plays, and for tests.
 *
 * Unpaced. One thread at a time, like every source and sink.
 */
#ifndef PARLEY_DEVICE_NULL_H
#define PARLEY_DEVICE_NULL_H

#include "device/device.h"

/* Return 0 or -ENOMEM. */
int null_source_open(audio_source_t **out);
int null_sink_open(audio_sink_t **out);

/* Frames a null sink has been given. */
uint64_t null_sink_frames(const audio_sink_t *s);

#endif
