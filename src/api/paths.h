/* Where the API socket lives by default, shared by parleyd and parleyctl so
 * both always agree.
 *
 * Pure function of the environment; any thread (getenv is not thread-safe
 * against setenv, so call it before starting threads that change the
 * environment).
 */
#ifndef PARLEY_API_PATHS_H
#define PARLEY_API_PATHS_H

#include <stddef.h>

#define API_SOCKET_NAME "parleyd.sock"

/* Writes the default socket path into out:
 *   $PARLEY_SOCKET                                   if set and not empty,
 *   else $XDG_RUNTIME_DIR/parley/parleyd.sock        if set and absolute,
 *   else /tmp/parley-<uid>/parleyd.sock.
 * Returns 0, or -ENAMETOOLONG if it does not fit in size bytes. */
int api_default_socket_path(char *out, size_t size);

#endif
