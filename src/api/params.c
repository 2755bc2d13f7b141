/* Reading and checking API method params by name or position; see
 * params.h. */
#include "api/params.h"

#include <inttypes.h>
#include <string.h>

#define PEER_HEX_LEN 64

json_t *api_param(json_t *params, size_t index, const char *name) {
  json_t *v = NULL;
  if (json_is_object(params))
    v = json_object_get(params, name);
  else if (json_is_array(params))
    v = json_array_get(params, index);
  return json_is_null(v) ? NULL : v;
}

int api_params_only(json_t *params, const char *const *names, size_t n,
                    api_error_t *err) {
  if (json_is_array(params)) {
    if (json_array_size(params) > n)
      return api_fail(err, API_ERR_INVALID_PARAMS,
                      "too many parameters (%zu given, at most %zu)",
                      json_array_size(params), n);
    return 0;
  }
  if (!json_is_object(params))
    return 0;
  const char *key;
  json_t *value;
  json_object_foreach(params, key, value) {
    size_t i = 0;
    while (i < n && strcmp(key, names[i]) != 0)
      i++;
    if (i == n)
      return api_fail(err, API_ERR_INVALID_PARAMS, "unknown parameter '%.64s'",
                      key);
  }
  return 0;
}

static int api__missing(const char *name, api_error_t *err) {
  return api_fail(err, API_ERR_INVALID_PARAMS, "missing parameter '%s'", name);
}

int api_param_int(json_t *params, size_t index, const char *name, bool required,
                  int64_t min, int64_t max, int64_t *out, bool *given,
                  api_error_t *err) {
  json_t *v = api_param(params, index, name);
  if (given)
    *given = v != NULL;
  if (!v)
    return required ? api__missing(name, err) : 0;
  if (!json_is_integer(v))
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s' must be an integer", name);
  json_int_t x = json_integer_value(v);
  if (x < min || x > max)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s' must be between %" PRId64 " and %" PRId64,
                    name, min, max);
  *out = x;
  return 0;
}

int api_param_bool(json_t *params, size_t index, const char *name,
                   bool required, bool *out, bool *given, api_error_t *err) {
  json_t *v = api_param(params, index, name);
  if (given)
    *given = v != NULL;
  if (!v)
    return required ? api__missing(name, err) : 0;
  if (!json_is_boolean(v))
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s' must be true or false", name);
  *out = json_is_true(v);
  return 0;
}

int api_param_string(json_t *params, size_t index, const char *name,
                     bool required, size_t max_len, const char **out,
                     api_error_t *err) {
  json_t *v = api_param(params, index, name);
  *out = NULL;
  if (!v)
    return required ? api__missing(name, err) : 0;
  if (!json_is_string(v))
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s' must be a string", name);
  size_t len = json_string_length(v);
  if (len > max_len)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s' is too long (%zu bytes, at most %zu)", name,
                    len, max_len);
  /* Embedded NULs would make the C string say something else. */
  if (strlen(json_string_value(v)) != len)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s' contains a NUL character", name);
  *out = json_string_value(v);
  return 0;
}

int api_param_peer(json_t *params, size_t index, const char *name,
                   bool required, const char **out, api_error_t *err) {
  const char *s;
  if (api_param_string(params, index, name, required, 1024, &s, err) != 0)
    return -1;
  *out = NULL;
  if (!s)
    return 0;
  size_t len = strlen(s);
  bool ok = len == PEER_HEX_LEN;
  for (size_t i = 0; ok && i < len; i++)
    ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
  if (!ok)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s' must be a peer ID (64 lowercase hex "
                    "characters)",
                    name);
  *out = s;
  return 0;
}
