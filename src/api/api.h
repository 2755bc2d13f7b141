/* The local JSON-RPC 2.0 API on a Unix stream socket (see docs/api.md).
 *
 * Owns the listening socket, its clients, their line buffers, write queues
 * and event subscriptions. Framing is one JSON message per line; a line over
 * API_LINE_MAX is answered with an error and discarded, and a bad line never
 * closes the connection. The built-in method `subscribe` is handled here;
 * every other method comes from the table given to api_server_start.
 *
 * Threads: loop thread only. Other threads hand events to the loop first.
 */
#ifndef PARLEY_API_API_H
#define PARLEY_API_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define API_LINE_MAX (1024 * 1024)

/* JSON-RPC codes, then the project's domain codes (docs/api.md). */
enum api_error_code {
  API_ERR_PARSE = -32700,
  API_ERR_INVALID_REQUEST = -32600,
  API_ERR_METHOD_NOT_FOUND = -32601,
  API_ERR_INVALID_PARAMS = -32602,
  API_ERR_INTERNAL = -32603,
  API_ERR_UNKNOWN_PEER = 1001,
  API_ERR_NO_SUCH_CALL = 1002,
  API_ERR_BUSY = 1003,
  API_ERR_PEER_UNREACHABLE = 1004,
  API_ERR_NOT_FOUND = 1005,
  API_ERR_INVALID_STATE = 1006,
  API_ERR_STORAGE = 1007,
};

typedef struct api_server api_server_t;
typedef struct api_client api_client_t;

typedef struct api_error {
  int code;
  char message[256];
} api_error_t;

/* A method: on success sets *result (a new reference) and returns 0; on
 * failure fills err and returns -1. params is the request's "params" (an
 * object or array) or NULL when absent; borrowed. */
typedef int (*api_method_fn)(void *ctx, api_client_t *client, json_t *params,
                             json_t **result, api_error_t *err);

typedef struct api_method {
  const char *name;
  api_method_fn fn;
} api_method_t;

/* Creates the socket's directory (0700) if needed, removes a stale socket
 * (only if nothing answers on it), binds, chmods the socket 0600 and
 * listens. methods must outlive the server. Returns 0 or -errno (logged). */
int api_server_start(api_server_t **out, uv_loop_t *loop,
                     const char *socket_path, const api_method_t *methods,
                     size_t n_methods, void *ctx);

/* Adds another method table (e.g. the calls' methods) with its own ctx.
 * Tables are searched in the order added; the first match wins. Returns 0,
 * -EINVAL, or -ENOSPC beyond 8 tables. */
int api_server_add_methods(api_server_t *s, const api_method_t *methods,
                           size_t n_methods, void *ctx);

/* Closes every client and the listener and unlinks the socket. The server
 * is freed once libuv has closed its handles (run the loop afterwards). */
void api_server_close(api_server_t *s);

/* Sends a notification {"jsonrpc":"2.0","method":event,"params":params} to
 * every client subscribed to event. Media events (audio-frame, video-frame)
 * go only to clients that subscribed with "media": true. Steals params. */
void api_broadcast(api_server_t *s, const char *event, json_t *params);

/* Number of connected clients (for status). */
size_t api_client_count(const api_server_t *s);

/* Helper for methods: fill err and return -1. */
int api_fail(api_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
