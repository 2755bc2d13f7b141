/* Helpers for API methods to read and check their "params".
 *
 * A method's params are an object ({"limit": 10}) or an array of the same
 * values by position ([10]); every helper takes both the name and the
 * position so each method accepts both forms. Absent and JSON null are the
 * same: "not given". Every failure fills err with -32602 and a message that
 * names the parameter, and returns -1.
 *
 * Pure functions; any thread.
 */
#ifndef PARLEY_API_PARAMS_H
#define PARLEY_API_PARAMS_H

#include "api/api.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The parameter at name / index, or NULL when absent or null. Borrowed. */
json_t *api_param(json_t *params, size_t index, const char *name);

/* Fails if params has a member whose name is not in names, or (array
 * form) more than n elements. Catches typos such as "limt". */
int api_params_only(json_t *params, const char *const *names, size_t n,
                    api_error_t *err);

/* Reads an integer in [min, max]. When not given: required fails, otherwise
 * *out is left alone and 0 is returned (*given, if not NULL, says which). */
int api_param_int(json_t *params, size_t index, const char *name, bool required,
                  int64_t min, int64_t max, int64_t *out, bool *given,
                  api_error_t *err);

/* Reads a boolean; same conventions as api_param_int. */
int api_param_bool(json_t *params, size_t index, const char *name,
                   bool required, bool *out, bool *given, api_error_t *err);

/* Reads a string of at most max_len bytes (borrowed pointer into params);
 * when not given and not required, *out is set to NULL. */
int api_param_string(json_t *params, size_t index, const char *name,
                     bool required, size_t max_len, const char **out,
                     api_error_t *err);

/* Reads a peer ID: exactly 64 lowercase hex characters; as for strings. */
int api_param_peer(json_t *params, size_t index, const char *name,
                   bool required, const char **out, api_error_t *err);

#endif
