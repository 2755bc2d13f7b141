/* The default API socket path; see paths.h. */
#include "api/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int api_default_socket_path(char *out, size_t size) {
  const char *env = getenv("PARLEY_SOCKET");
  int n;
  if (env && env[0]) {
    n = snprintf(out, size, "%s", env);
  } else {
    const char *run = getenv("XDG_RUNTIME_DIR");
    /* The XDG spec says to ignore a relative XDG_* path. */
    if (run && run[0] == '/')
      n = snprintf(out, size, "%s/parley/" API_SOCKET_NAME, run);
    else
      n = snprintf(out, size, "/tmp/parley-%u/" API_SOCKET_NAME,
                   (unsigned)getuid());
  }
  if (n < 0 || (size_t)n >= size) {
    if (size > 0)
      out[0] = '\0';
    return -ENAMETOOLONG;
  }
  return 0;
}
