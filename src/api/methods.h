/* The API methods of the daemon's core: status, history, contacts, ticket.
 *
 * main.c fills an api_deps_t and passes api_core_methods with it as the
 * ctx of api_server_start. Later modules (calls, media) add their own
 * tables. Threads: loop thread only.
 */
#ifndef PARLEY_API_METHODS_H
#define PARLEY_API_METHODS_H

#include "api/api.h"
#include "call/call.h"
#include "crypto/identity.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct api_deps {
  store_t *store;
  call_mgr_t *calls; /* for status' active_calls; may be NULL */
  const identity_t *identity;
  const char *ticket;        /* this daemon's ticket (net/ticket.h) */
  const char *const *listen; /* listen addresses, "ip:port" */
  size_t n_listen;
  const char *socket_path;
  uint64_t started_at;  /* Unix seconds */
  api_server_t *server; /* set once the server runs */
} api_deps_t;

extern const api_method_t api_core_methods[];
extern const size_t api_core_methods_count;

#endif
