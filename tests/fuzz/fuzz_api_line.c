/* Fuzzes the API's per-line handling (api_rpc_handle_line): parse, request
 * validation, method lookup, the params helpers and `subscribe` params, as
 * a client's line reaches them. Whatever the input, the answer must be
 * absent (notification, blank line) or a JSON-RPC response that serialises
 * to exactly one line and parses back. */
#include "api/params.h"
#include "api/rpc.h"

#include <stdlib.h>
#include <string.h>

/* Reads every kind of parameter the helpers know, as real methods do. */
static int fuzz_params(void *ctx, api_client_t *client, json_t *params,
                       json_t **result, api_error_t *err) {
  static const char *const names[] = {"limit", "on", "name", "peer"};
  int64_t limit = 50;
  bool on = false;
  const char *name, *peer;
  if (api_params_only(params, names, 4, err) != 0 ||
      api_param_int(params, 0, "limit", false, 1, 1000, &limit, NULL, err) !=
          0 ||
      api_param_bool(params, 1, "on", false, &on, NULL, err) != 0 ||
      api_param_string(params, 2, "name", false, 128, &name, err) != 0 ||
      api_param_peer(params, 3, "peer", false, &peer, err) != 0)
    return -1;
  *result = json_pack("{s:I, s:b, s:s?, s:s?}", "limit", (json_int_t)limit,
                      "on", on, "name", name, "peer", peer);
  return *result ? 0 : api_fail(err, API_ERR_INTERNAL, "pack");
}

static int fuzz_subscribe(void *ctx, api_client_t *client, json_t *params,
                          json_t **result, api_error_t *err) {
  uint32_t mask;
  bool media;
  if (api_rpc_parse_subscribe(params, &mask, &media, err) != 0)
    return -1;
  *result = json_object();
  return 0;
}

static int fuzz_fail(void *ctx, api_client_t *client, json_t *params,
                     json_t **result, api_error_t *err) {
  /* Quotes client input into the message, cut at a byte count. */
  const char *s = json_string_value(json_array_get(params, 0));
  return api_fail(err, API_ERR_NOT_FOUND, "no contact %.37s", s ? s : "");
}

static const api_method_t fuzz_methods[] = {
    {"status", fuzz_params},
    {"subscribe", fuzz_subscribe},
    {"remove_contact", fuzz_fail},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const api_rpc_table_t tables[] = {{fuzz_methods, 3, NULL}};
  json_t *resp = api_rpc_handle_line((const char *)data, size, tables, 1, NULL);
  if (!resp)
    return 0;
  if (!json_is_object(resp) || !json_object_get(resp, "jsonrpc") ||
      (!json_object_get(resp, "result") == !json_object_get(resp, "error")))
    abort();
  size_t len;
  char *line = api_rpc_dump_line(resp, &len);
  if (!line || len == 0 || line[len - 1] != '\n' ||
      memchr(line, '\n', len - 1) != NULL)
    abort();
  json_t *back = json_loadb(line, len - 1, 0, NULL);
  if (!back)
    abort();
  json_decref(back);
  free(line);
  json_decref(resp);
  return 0;
}
