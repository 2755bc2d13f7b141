/* The API methods of calls and their media: start_call, answer_call,
 * reject_call, end_call, list_calls, toggle_mute, call_stats, list_devices,
 * set_devices. ctx is an api_call_deps_t. Threads: loop thread only. */
#ifndef PARLEY_API_CALL_METHODS_H
#define PARLEY_API_CALL_METHODS_H

#include "api/api.h"
#include "call/call.h"
#include "call/media.h"
#include "store/store.h"

typedef struct api_call_deps {
  call_mgr_t *calls;
  media_mgr_t *media;
  store_t *store;
  const uint8_t *me; /* our identity key, 32 bytes */
} api_call_deps_t;

extern const api_method_t api_call_methods[];
extern const size_t api_call_methods_count;

#endif
