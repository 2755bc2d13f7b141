/* The sine tone source: a test signal of known frequency and level.
 *
 * Owns its phase. Unpaced (device.h): the caller reads once per 20 ms.
 * One thread at a time, like every source.
 */
#ifndef PARLEY_DEVICE_TONE_H
#define PARLEY_DEVICE_TONE_H

#include "device/device.h"

#define TONE_DEFAULT_HZ 1000.0
#define TONE_DEFAULT_DBFS (-20.0)

/* A sine of hz (0 < hz < 24000) whose peak is dbfs (-120..0) relative to
 * full scale (so its RMS level, as audio_rms_dbfs measures, is 3.01 dB
 * lower). Phase-continuous across frames; never ends. Returns 0 or
 * -EINVAL / -ENOMEM. */
int tone_source_open(double hz, double dbfs, audio_source_t **out);

#endif
