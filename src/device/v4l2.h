/* Cameras through Video4Linux2 as a paced video source.
 *
 * Opens a capture device by path (/dev/video0) or by its card name (the
 * first capture device when none is given), asks for 640x480 at 24 fps
 * (the driver answers with the nearest it has), and lets libv4l2 convert
 * whatever the camera sends (YUYV, NV12, MJPEG, ...) to I420 through
 * libv4lconvert. read waits for the next picture with poll(2) for at most
 * about one frame period, then gives -EAGAIN.
 *
 * Owns the device's file descriptor. A source belongs to one thread (the
 * call's video capture thread); v4l2_list may be called from any thread.
 */
#ifndef PARLEY_DEVICE_V4L2_H
#define PARLEY_DEVICE_V4L2_H

#include "device/vdevice.h"

#define V4L2_WANT_WIDTH 640
#define V4L2_WANT_HEIGHT 480
#define V4L2_WANT_FPS 24

/* Every capture device under /dev/video*, as "v4l2:/dev/videoN" with its
 * card name for description. Writes up to max and returns the total. */
size_t v4l2_list(device_info_t *out, size_t max);

/* arg: "" (the first capture device), a path, or a card name. Returns 0,
 * -ENOENT (no such camera), -ENOTSUP (not a capture device, or no format
 * libv4l2 can turn into I420), or another -errno, with err. */
int v4l2_source_open(const char *arg, video_source_t **out, char *err,
                     size_t err_size);

#endif
