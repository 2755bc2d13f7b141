/* JSON-RPC 2.0 for one line: parse, validate, dispatch, build the response.
 *
 * The one place where bytes from API clients are parsed (fuzzed by
 * tests/fuzz/fuzz_api_line.c). Knows nothing of sockets: server.c cuts the
 * stream into lines and hands each to api_rpc_handle_line.
 *
 * Threads: any thread, as long as the methods called are safe there; the
 * daemon calls it on the loop thread only.
 */
#ifndef PARLEY_API_RPC_H
#define PARLEY_API_RPC_H

#include "api/api.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One method table and the ctx its functions receive. Tables are searched
 * in order; the first method with a matching name wins. */
typedef struct api_rpc_table {
  const api_method_t *methods;
  size_t n_methods;
  void *ctx;
} api_rpc_table_t;

/* Handles one line (without its '\n'; a trailing '\r' is ignored): parses
 * it, validates the request and calls the method. Returns the response
 * object to send (a new reference), or NULL when nothing is to be sent: a
 * notification (a valid request without "id", whatever its outcome) or a
 * blank line. Errors follow JSON-RPC 2.0:
 *   not JSON                              -32700, id null
 *   an array (batch; not supported)       -32600
 *   not an object, bad "jsonrpc", "method" not a string, bad "id"  -32600
 *   "params" neither object nor array     -32602
 *   no such method                        -32601 "unknown method 'x'"
 * client is passed through to the method (may be NULL, e.g. when fuzzing). */
json_t *api_rpc_handle_line(const char *line, size_t len,
                            const api_rpc_table_t *tables, size_t n_tables,
                            api_client_t *client);

/* {"jsonrpc":"2.0","id":id,"error":{"code":code,"message":message}}.
 * id is borrowed; NULL means JSON null. Never returns NULL. */
json_t *api_rpc_error_response(json_t *id, int code, const char *message);

/* {"jsonrpc":"2.0","method":method,"params":params}; steals params (NULL
 * means no "params" member). Returns NULL only when out of memory. */
json_t *api_rpc_notification(const char *method, json_t *params);

/* Serialises msg as one compact line ending in '\n' (JSON escapes every
 * newline inside strings, so the line is exactly one frame). Returns a
 * malloc'd buffer and its length in *len, or NULL when out of memory. */
char *api_rpc_dump_line(const json_t *msg, size_t *len);

/* Events a client can subscribe to. Media events are delivered only to
 * clients that subscribed with "media": true. */
enum api_event {
  API_EVENT_INCOMING_CALL,
  API_EVENT_CALL_ANSWERED,
  API_EVENT_CALL_ENDED,
  API_EVENT_CALL_STATE,
  API_EVENT_CALL_QUALITY,
  API_EVENT_AUDIO_FRAME,
  API_EVENT_VIDEO_FRAME,
  API_EVENT_VIDEO_LADDER,
  API_EVENT_COUNT
};

#define API_EVENT_BIT(e) (UINT32_C(1) << (e))
#define API_EVENT_MEDIA_MASK                                                   \
  (API_EVENT_BIT(API_EVENT_AUDIO_FRAME) | API_EVENT_BIT(API_EVENT_VIDEO_FRAME))
#define API_EVENT_ALL_MASK ((UINT32_C(1) << API_EVENT_COUNT) - 1)

/* Name <-> event. api_event_parse returns the event or -1 if unknown. */
const char *api_event_name(enum api_event e);
int api_event_parse(const char *name);

/* Validates the params of `subscribe` ({"events"?: [names], "media"?: bool},
 * or positionally [events, media]) into a bit mask of API_EVENT_BIT()s.
 * Without "events": every event, media ones only if media is true. A media
 * event listed without "media": true is an error. Returns 0, or -1 with err
 * filled (-32602). */
int api_rpc_parse_subscribe(json_t *params, uint32_t *mask, bool *media,
                            api_error_t *err);

#endif
