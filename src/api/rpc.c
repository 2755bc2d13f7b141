/* JSON-RPC 2.0 for one line: parse, validate, dispatch, build responses;
 * plus the event names and `subscribe` params. See rpc.h. */
#include "api/rpc.h"

#include "api/params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const api__event_names[API_EVENT_COUNT] = {
    [API_EVENT_INCOMING_CALL] = "incoming-call",
    [API_EVENT_CALL_ANSWERED] = "call-answered",
    [API_EVENT_CALL_ENDED] = "call-ended",
    [API_EVENT_CALL_STATE] = "call-state",
    [API_EVENT_CALL_QUALITY] = "call-quality",
    [API_EVENT_AUDIO_FRAME] = "audio-frame",
    [API_EVENT_VIDEO_FRAME] = "video-frame",
    [API_EVENT_VIDEO_LADDER] = "video-ladder",
};

static bool api__is_blank(const char *p, size_t len);
static void api__utf8_clean(char *out, size_t size, const char *in);
static const api_method_t *api__lookup(const api_rpc_table_t *tables,
                                       size_t n_tables, const char *name,
                                       void **ctx);
static json_t *api__call(const api_method_t *m, void *ctx, api_client_t *client,
                         json_t *id, json_t *params);

int api_fail(api_error_t *err, int code, const char *fmt, ...) {
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof(err->message), fmt, ap);
  va_end(ap);
  return -1;
}

json_t *api_rpc_handle_line(const char *line, size_t len,
                            const api_rpc_table_t *tables, size_t n_tables,
                            api_client_t *client) {
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (api__is_blank(line, len))
    return NULL;

  json_error_t jerr;
  json_t *req = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
  if (!req) {
    char msg[200];
    snprintf(msg, sizeof(msg), "parse error: %s (column %d)", jerr.text,
             jerr.column);
    return api_rpc_error_response(NULL, API_ERR_PARSE, msg);
  }

  json_t *resp = NULL;
  bool notification = false;
  if (json_is_array(req)) {
    resp = api_rpc_error_response(
        NULL, API_ERR_INVALID_REQUEST,
        "batch requests are not supported: send one request per line");
    goto out;
  }
  if (!json_is_object(req)) {
    resp = api_rpc_error_response(NULL, API_ERR_INVALID_REQUEST,
                                  "a request must be a JSON object");
    goto out;
  }

  /* A valid id is echoed even when the rest of the request is invalid; an
   * invalid one is answered with id null, as JSON-RPC asks. */
  json_t *id = json_object_get(req, "id");
  notification = id == NULL;
  if (id && !json_is_string(id) && !json_is_number(id) && !json_is_null(id)) {
    resp = api_rpc_error_response(NULL, API_ERR_INVALID_REQUEST,
                                  "\"id\" must be a string, a number or null");
    goto out;
  }

  json_t *version = json_object_get(req, "jsonrpc");
  if (!json_is_string(version) ||
      strcmp(json_string_value(version), "2.0") != 0) {
    resp = api_rpc_error_response(id, API_ERR_INVALID_REQUEST,
                                  "\"jsonrpc\" must be \"2.0\"");
    goto out;
  }
  json_t *method = json_object_get(req, "method");
  if (!json_is_string(method)) {
    resp = api_rpc_error_response(id, API_ERR_INVALID_REQUEST,
                                  "\"method\" must be a string");
    goto out;
  }
  json_t *params = json_object_get(req, "params");
  if (params && !json_is_object(params) && !json_is_array(params)) {
    resp = api_rpc_error_response(id, API_ERR_INVALID_PARAMS,
                                  "\"params\" must be an object or an array");
    goto out;
  }

  const char *name = json_string_value(method);
  void *ctx = NULL;
  const api_method_t *m = NULL;
  if (strlen(name) == json_string_length(method)) /* no NUL inside */
    m = api__lookup(tables, n_tables, name, &ctx);
  if (!m) {
    char msg[200];
    snprintf(msg, sizeof(msg), "unknown method '%.100s'", name);
    resp = api_rpc_error_response(id, API_ERR_METHOD_NOT_FOUND, msg);
    goto out;
  }
  resp = api__call(m, ctx, client, id, params);

out:
  /* Notifications are never answered, not even with an error. */
  if (resp && notification) {
    json_decref(resp);
    resp = NULL;
  }
  json_decref(req);
  return resp;
}

json_t *api_rpc_error_response(json_t *id, int code, const char *message) {
  /* Messages quote client input cut to a length, possibly inside a UTF-8
   * sequence; JSON strings must be valid UTF-8. */
  char clean[512];
  api__utf8_clean(clean, sizeof(clean), message);
  json_t *resp = json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                           id, "error", "code", code, "message", clean);
  if (!resp)
    abort(); /* out of memory */
  return resp;
}

json_t *api_rpc_notification(const char *method, json_t *params) {
  json_t *msg = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
  if (!msg) {
    json_decref(params);
    return NULL;
  }
  if (params && json_object_set_new(msg, "params", params) != 0) {
    json_decref(msg);
    return NULL;
  }
  return msg;
}

char *api_rpc_dump_line(const json_t *msg, size_t *len) {
  size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
  if (n == 0)
    return NULL;
  char *buf = malloc(n + 1);
  if (!buf)
    return NULL;
  if (json_dumpb(msg, buf, n, JSON_COMPACT) != n) {
    free(buf);
    return NULL;
  }
  buf[n] = '\n';
  *len = n + 1;
  return buf;
}

const char *api_event_name(enum api_event e) {
  return (unsigned)e < API_EVENT_COUNT ? api__event_names[e] : NULL;
}

int api_event_parse(const char *name) {
  for (int i = 0; i < API_EVENT_COUNT; i++)
    if (strcmp(name, api__event_names[i]) == 0)
      return i;
  return -1;
}

int api_rpc_parse_subscribe(json_t *params, uint32_t *mask, bool *media,
                            api_error_t *err) {
  static const char *const names[] = {"events", "media"};
  if (api_params_only(params, names, 2, err) != 0)
    return -1;
  bool want_media = false;
  if (api_param_bool(params, 1, "media", false, &want_media, NULL, err) != 0)
    return -1;

  json_t *events = api_param(params, 0, "events");
  uint32_t m = 0;
  if (!events) {
    m = API_EVENT_ALL_MASK;
    if (!want_media)
      m &= ~API_EVENT_MEDIA_MASK;
  } else {
    if (!json_is_array(events))
      return api_fail(err, API_ERR_INVALID_PARAMS,
                      "parameter 'events' must be an array of event names");
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
      if (!json_is_string(ev))
        return api_fail(err, API_ERR_INVALID_PARAMS,
                        "parameter 'events' must be an array of event names");
      int e = api_event_parse(json_string_value(ev));
      if (e < 0)
        return api_fail(err, API_ERR_INVALID_PARAMS,
                        "parameter 'events': unknown event '%.64s'",
                        json_string_value(ev));
      if ((API_EVENT_BIT(e) & API_EVENT_MEDIA_MASK) && !want_media)
        return api_fail(err, API_ERR_INVALID_PARAMS,
                        "parameter 'events': '%s' needs \"media\": true",
                        api__event_names[e]);
      m |= API_EVENT_BIT(e);
    }
  }
  *mask = m;
  *media = want_media;
  return 0;
}

static bool api__is_blank(const char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
      return false;
  return true;
}

static const api_method_t *api__lookup(const api_rpc_table_t *tables,
                                       size_t n_tables, const char *name,
                                       void **ctx) {
  for (size_t t = 0; t < n_tables; t++) {
    for (size_t i = 0; i < tables[t].n_methods; i++) {
      if (strcmp(tables[t].methods[i].name, name) == 0) {
        *ctx = tables[t].ctx;
        return &tables[t].methods[i];
      }
    }
  }
  return NULL;
}

static json_t *api__call(const api_method_t *m, void *ctx, api_client_t *client,
                         json_t *id, json_t *params) {
  api_error_t err = {0};
  json_t *result = NULL;
  int rc = m->fn(ctx, client, params, &result, &err);
  if (rc == 0 && result) {
    json_t *resp = json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", id,
                             "result", result);
    if (!resp)
      abort(); /* out of memory */
    return resp;
  }
  json_decref(result);
  if (rc == 0 || err.code == 0) /* a method broke its contract */
    return api_rpc_error_response(id, API_ERR_INTERNAL, "internal error");
  return api_rpc_error_response(id, err.code, err.message);
}

/* Copies in to out (truncating to size - 1 bytes on a character boundary),
 * replacing each byte that does not start a valid UTF-8 sequence with '?'. */
static void api__utf8_clean(char *out, size_t size, const char *in) {
  const unsigned char *p = (const unsigned char *)in;
  size_t o = 0;
  while (*p) {
    size_t n = 0;
    uint32_t cp = 0;
    if (p[0] < 0x80)
      n = 1, cp = p[0];
    else if ((p[0] & 0xe0) == 0xc0)
      n = 2, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
      n = 3, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
      n = 4, cp = p[0] & 0x07;
    bool ok = n > 0;
    for (size_t i = 1; ok && i < n; i++) {
      ok = (p[i] & 0xc0) == 0x80;
      cp = cp << 6 | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if (ok)
      ok = !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) &&
           !(n == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
           !(cp >= 0xd800 && cp <= 0xdfff);
    if (!ok)
      n = 1;
    if (o + n >= size)
      break;
    if (ok)
      memcpy(out + o, p, n);
    else
      out[o] = '?';
    o += n;
    p += n;
  }
  out[o] = '\0';
}
