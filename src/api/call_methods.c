/* The API methods of calls; see call_methods.h and docs/api.md. */
#include "api/call_methods.h"

#include "api/params.h"
#include "core/util.h"
#include "crypto/identity.h"
#include "device/device.h"
#include "device/vdevice.h"
#include "media/video.h"
#include "net/ticket.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char *const call_id_only[] = {"call_id"};

/* The peer to call: a contact's peer ID, or a ticket (whose addresses are
 * saved in the contact, creating it if needed: calling someone is trusting
 * them to call back). */
static int resolve_peer(api_call_deps_t *d, const char *text, uint8_t out[32],
                        api_error_t *err) {
  if (strncmp(text, TICKET_PREFIX, strlen(TICKET_PREFIX)) != 0) {
    contact_t c;
    if (peer_id_parse(text, out) != 0)
      return api_fail(err, API_ERR_INVALID_PARAMS,
                      "peer must be a 64-hex peer ID or a ticket");
    if (store_contact_get(d->store, text, &c) != 0)
      return api_fail(err, API_ERR_UNKNOWN_PEER,
                      "unknown peer %.16s...: add it as a contact or call "
                      "its ticket",
                      text);
    return 0;
  }
  ticket_t t;
  char why[128];
  if (ticket_parse(text, &t, why, sizeof(why)) != 0)
    return api_fail(err, API_ERR_INVALID_PARAMS, "%s", why);
  if (t.n_addrs == 0)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "the ticket has no address to call");
  if (d->me && memcmp(t.peer, d->me, 32) == 0)
    return api_fail(err, API_ERR_INVALID_PARAMS, "cannot call yourself");
  contact_t c = {0};
  hex_encode(c.peer, t.peer, 32);
  contact_t old;
  if (store_contact_get(d->store, c.peer, &old) == 0)
    memcpy(c.name, old.name, sizeof(c.name));
  for (size_t i = 0; i < t.n_addrs && i < STORE_ADDRS_MAX; i++)
    addr_format((const struct sockaddr *)&t.addrs[i], c.addrs[c.n_addrs++],
                sizeof(c.addrs[0]));
  if (store_contact_put(d->store, &c) != 0)
    return api_fail(err, API_ERR_STORAGE, "cannot save the contact");
  memcpy(out, t.peer, 32);
  return 0;
}

static int call_error(int r, api_error_t *err) {
  switch (r) {
  case CALL_ERR_NOT_FOUND:
    return api_fail(err, API_ERR_NO_SUCH_CALL, "no such call");
  case CALL_ERR_BUSY:
    return api_fail(err, API_ERR_BUSY, "already in a call");
  case CALL_ERR_STATE:
    return api_fail(err, API_ERR_INVALID_STATE,
                    "not possible in the call's current state");
  case CALL_ERR_SEND:
    return api_fail(err, API_ERR_PEER_UNREACHABLE,
                    "peer unreachable: no address known or none answered");
  case CALL_ERR_SELF:
    return api_fail(err, API_ERR_INVALID_PARAMS, "cannot call yourself");
  default:
    return api_fail(err, API_ERR_INTERNAL, "call error %d", r);
  }
}

/* Optional per-call devices: "audio_source", "audio_sink" at index i, i+1. */
static int call_devices(json_t *params, size_t i, const char **src,
                        const char **sink, api_error_t *err) {
  if (api_param_string(params, i, "audio_source", false, MEDIA_DEVICE_MAX - 1,
                       src, err) != 0 ||
      api_param_string(params, i + 1, "audio_sink", false, MEDIA_DEVICE_MAX - 1,
                       sink, err) != 0)
    return -1;
  return 0;
}

/* Optional per-call video devices at index i, i+1. */
static int video_devices(json_t *params, size_t i, const char **src,
                         const char **sink, api_error_t *err) {
  if (api_param_string(params, i, "video_source", false, MEDIA_DEVICE_MAX - 1,
                       src, err) != 0 ||
      api_param_string(params, i + 1, "video_sink", false, MEDIA_DEVICE_MAX - 1,
                       sink, err) != 0)
    return -1;
  return 0;
}

static int m_start_call(void *ctx, api_client_t *client, json_t *params,
                        json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {
      "peer",      "video",        "audio_source", "audio_sink",
      "transport", "video_source", "video_sink",   "audio_codec"};
  const char *peer_text, *src, *sink, *tr = NULL, *vsrc, *vsink, *codec;
  bool video = false;
  uint8_t peer[32];
  enum media_transport transport = 0;
  if (api_params_only(params, names, 8, err) != 0 ||
      api_param_string(params, 0, "peer", true, TICKET_MAX_LEN, &peer_text,
                       err) != 0 ||
      api_param_bool(params, 1, "video", false, &video, NULL, err) != 0 ||
      call_devices(params, 2, &src, &sink, err) != 0 ||
      api_param_string(params, 4, "transport", false, 16, &tr, err) != 0 ||
      video_devices(params, 5, &vsrc, &vsink, err) != 0 ||
      api_param_string(params, 7, "audio_codec", false, 16, &codec, err) != 0)
    return -1;
  enum audio_codec ac = 0;
  if (codec && strcmp(codec, "opus48k") == 0)
    ac = AUDIO_CODEC_OPUS48K;
  else if (codec && strcmp(codec, "opus24k") == 0)
    ac = AUDIO_CODEC_OPUS24K;
  else if (codec)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "audio_codec must be \"opus48k\" or \"opus24k\"");
  if (tr && strcmp(tr, "datagram") == 0)
    transport = MEDIA_TRANSPORT_DATAGRAM;
  else if (tr && strcmp(tr, "stream") == 0)
    transport = MEDIA_TRANSPORT_STREAM;
  else if (tr)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "transport must be \"datagram\" or \"stream\"");
  if (resolve_peer(d, peer_text, peer, err) != 0)
    return -1;
  call_info_t info;
  int r = call_start_codec(d->calls, peer, video, transport, ac, &info);
  if (r != 0)
    return call_error(r, err);
  if ((src || sink) && d->media)
    media_mgr_set_call_devices(d->media, info.call_id, src, sink);
  if ((vsrc || vsink) && d->media)
    media_mgr_set_call_video_devices(d->media, info.call_id, vsrc, vsink);
  *result = call_info_json(&info);
  return 0;
}

/* answer_call, end_call: {call_id}. */
static int with_call_id(json_t *params, const char **id, api_error_t *err) {
  if (api_params_only(params, call_id_only, 1, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, id, err) != 0)
    return -1;
  return 0;
}

static int m_answer_call(void *ctx, api_client_t *client, json_t *params,
                         json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"call_id", "audio_source", "audio_sink",
                                      "video_source", "video_sink"};
  const char *id, *src, *sink, *vsrc, *vsink;
  if (api_params_only(params, names, 5, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, &id, err) != 0 ||
      call_devices(params, 1, &src, &sink, err) != 0 ||
      video_devices(params, 3, &vsrc, &vsink, err) != 0)
    return -1;
  if (call_mgr_get(d->calls, id, &(call_info_t){0}) != 0)
    return call_error(CALL_ERR_NOT_FOUND, err);
  if ((src || sink) && d->media)
    media_mgr_set_call_devices(d->media, id, src, sink);
  if ((vsrc || vsink) && d->media)
    media_mgr_set_call_video_devices(d->media, id, vsrc, vsink);
  int r = call_answer(d->calls, id);
  if (r != 0)
    return call_error(r, err);
  *result = json_object();
  return 0;
}

static int m_end_call(void *ctx, api_client_t *client, json_t *params,
                      json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  const char *id;
  if (with_call_id(params, &id, err) != 0)
    return -1;
  int r = call_end(d->calls, id);
  if (r != 0)
    return call_error(r, err);
  *result = json_object();
  return 0;
}

static int m_reject_call(void *ctx, api_client_t *client, json_t *params,
                         json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"call_id", "reason"};
  const char *id, *reason;
  if (api_params_only(params, names, 2, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, &id, err) != 0 ||
      api_param_string(params, 1, "reason", false, CALLSIGNAL_REASON_MAX,
                       &reason, err) != 0)
    return -1;
  for (const char *p = reason; p && *p; p++)
    if (*p < 0x20 || *p > 0x7e)
      return api_fail(err, API_ERR_INVALID_PARAMS,
                      "reason must be printable ASCII");
  int r = call_reject(d->calls, id, reason);
  if (r != 0)
    return call_error(r, err);
  *result = json_object();
  return 0;
}

static int m_list_calls(void *ctx, api_client_t *client, json_t *params,
                        json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  const char *id = NULL;
  if (api_params_only(params, call_id_only, 1, err) != 0 ||
      api_param_string(params, 0, "call_id", false, 64, &id, err) != 0)
    return -1;
  call_info_t infos[16];
  size_t n;
  if (id) {
    if (call_mgr_get(d->calls, id, &infos[0]) != 0)
      return api_fail(err, API_ERR_NO_SUCH_CALL, "no such call");
    n = 1;
  } else {
    n = call_mgr_list(d->calls, infos, ARRAY_SIZE(infos));
  }
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, call_info_json(&infos[i]));
  *result = arr;
  return 0;
}

static int m_toggle_mute(void *ctx, api_client_t *client, json_t *params,
                         json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"call_id", "muted"};
  const char *id;
  bool muted;
  if (api_params_only(params, names, 2, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, &id, err) != 0 ||
      api_param_bool(params, 1, "muted", true, &muted, NULL, err) != 0)
    return -1;
  if (!d->media || media_mgr_set_mute(d->media, id, muted) != 0)
    return api_fail(err, API_ERR_NO_SUCH_CALL, "no call with media %s", id);
  *result = json_object();
  return 0;
}

static int m_call_stats(void *ctx, api_client_t *client, json_t *params,
                        json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  const char *id;
  if (api_params_only(params, call_id_only, 1, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, &id, err) != 0)
    return -1;
  call_info_t info;
  if (call_mgr_get(d->calls, id, &info) != 0)
    return api_fail(err, API_ERR_NO_SUCH_CALL, "no such call");
  json_t *o = d->media ? media_mgr_stats(d->media, id) : NULL;
  if (!o)
    o = json_object();
  json_object_set_new(o, "state", json_string(call_state_name(info.state)));
  json_object_set_new(o, "audio_codec",
                      json_string(info.audio_codec == AUDIO_CODEC_OPUS24K
                                      ? "opus24k"
                                      : "opus48k"));
  json_object_set_new(o, "duration_seconds",
                      json_integer((json_int_t)info.duration_seconds));
  *result = o;
  return 0;
}

/* The current default devices, with `devices` set to arr (stolen). */
static json_t *devices_json(api_call_deps_t *d, json_t *arr) {
  const char *src = "", *sink = "", *vsrc = "", *vsink = "";
  bool rgba = false;
  if (d->media) {
    media_mgr_get_devices(d->media, &src, &sink);
    media_mgr_get_video_devices(d->media, &vsrc, &vsink, &rgba);
  }
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "audio_source", src,
                        "audio_sink", sink, "video_source", vsrc, "video_sink",
                        vsink, "video_format", rgba ? "rgba" : "i420");
  if (arr)
    json_object_set_new(o, "devices", arr);
  return o;
}

static int m_list_devices(void *ctx, api_client_t *client, json_t *params,
                          json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  if (api_params_only(params, NULL, 0, err) != 0)
    return -1;
  device_info_t infos[64];
  size_t n = device_list(infos, ARRAY_SIZE(infos));
  json_t *arr = json_array();
  for (size_t i = 0; i < n && i < ARRAY_SIZE(infos); i++)
    json_array_append_new(
        arr, json_pack("{s:s, s:s, s:s, s:s}", "name", infos[i].name, "kind",
                       device_kind_name(infos[i].kind), "type",
                       device_type_name(infos[i].type), "description",
                       infos[i].description));
  n = vdevice_list(infos, ARRAY_SIZE(infos));
  for (size_t i = 0; i < n && i < ARRAY_SIZE(infos); i++)
    json_array_append_new(
        arr,
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", infos[i].name, "kind",
                  device_kind_name(infos[i].kind), "media", "video", "type",
                  vdevice_type_name((enum vdevice_type)infos[i].type),
                  "description", infos[i].description));
  static const char *const api_kinds[] = {"source", "sink"};
  for (size_t i = 0; i < 2; i++)
    json_array_append_new(
        arr,
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "api", "kind",
                  api_kinds[i], "media", "video", "type", "api", "description",
                  i ? "video-frame events to clients subscribed to media"
                    : "send_video_frame from an API client"));
  *result = devices_json(d, arr);
  return 0;
}

static int m_set_devices(void *ctx, api_client_t *client, json_t *params,
                         json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"audio_source", "audio_sink",
                                      "video_source", "video_sink",
                                      "video_format"};
  const char *src, *sink, *vsrc, *vsink, *fmt;
  char why[256];
  if (api_params_only(params, names, 5, err) != 0 ||
      call_devices(params, 0, &src, &sink, err) != 0 ||
      video_devices(params, 2, &vsrc, &vsink, err) != 0 ||
      api_param_string(params, 4, "video_format", false, 16, &fmt, err) != 0)
    return -1;
  if (fmt && strcmp(fmt, "i420") != 0 && strcmp(fmt, "rgba") != 0)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "video_format must be \"i420\" or \"rgba\"");
  if (!d->media)
    return api_fail(err, API_ERR_INTERNAL, "no media");
  if (media_mgr_set_devices(d->media, src, sink, why, sizeof(why)) != 0 ||
      media_mgr_set_video_devices(d->media, vsrc, vsink,
                                  fmt ? strcmp(fmt, "rgba") == 0 : -1, why,
                                  sizeof(why)) != 0)
    return api_fail(err, API_ERR_INVALID_PARAMS, "%s", why);
  *result = devices_json(d, NULL);
  return 0;
}

/* send_audio_frame: {call_id, data: base64 of 960 s16le samples (48 kHz
 * mono, 20 ms), format?: "s16le"}. */
static int m_send_audio_frame(void *ctx, api_client_t *client, json_t *params,
                              json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"call_id", "data", "format"};
  const char *id, *data, *format;
  int16_t pcm[960];
  size_t len = 0;
  if (api_params_only(params, names, 3, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, &id, err) != 0 ||
      api_param_string(params, 1, "data", true, 4096, &data, err) != 0 ||
      api_param_string(params, 2, "format", false, 16, &format, err) != 0)
    return -1;
  if (format && strcmp(format, "s16le") != 0)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "format must be \"s16le\" (48 kHz mono)");
  if (sodium_base642bin((unsigned char *)pcm, sizeof(pcm), data, strlen(data),
                        NULL, &len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != sizeof(pcm))
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "data must be base64 of exactly 960 s16le samples "
                    "(1920 bytes, 20 ms at 48 kHz mono)");
  int r = d->media ? media_mgr_send_audio(d->media, id, pcm) : -ENOENT;
  if (r == -ENOENT)
    return api_fail(err, API_ERR_NO_SUCH_CALL, "no call with media %s", id);
  if (r != 0)
    return api_fail(err, API_ERR_INVALID_STATE,
                    "the call's audio source is not \"api\"");
  *result = json_object();
  return 0;
}

/* toggle_video: {call_id, enabled}. */
static int m_toggle_video(void *ctx, api_client_t *client, json_t *params,
                          json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"call_id", "enabled"};
  const char *id;
  bool on;
  char why[256] = "";
  if (api_params_only(params, names, 2, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, &id, err) != 0 ||
      api_param_bool(params, 1, "enabled", true, &on, NULL, err) != 0)
    return -1;
  int r = d->media ? media_mgr_set_video(d->media, id, on, why, sizeof(why))
                   : -ENOENT;
  if (r == -ENOENT)
    return api_fail(err, API_ERR_NO_SUCH_CALL, "no call with media %s", id);
  if (r != 0)
    return api_fail(err, API_ERR_INVALID_STATE, "video: %s", why);
  *result = json_pack("{s:b}", "enabled", on);
  return 0;
}

/* send_video_frame: {call_id, width, height, data: base64 of an I420
 * picture, format?: "i420"}. The API's line limit bounds it (640x480 fits
 * with room to spare). */
static int m_send_video_frame(void *ctx, api_client_t *client, json_t *params,
                              json_t **result, api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"call_id", "width", "height", "data",
                                      "format"};
  const char *id, *data, *format;
  int64_t w, h;
  if (api_params_only(params, names, 5, err) != 0 ||
      api_param_string(params, 0, "call_id", true, 64, &id, err) != 0 ||
      api_param_int(params, 1, "width", true, 2, 1920, &w, NULL, err) != 0 ||
      api_param_int(params, 2, "height", true, 2, 1080, &h, NULL, err) != 0 ||
      api_param_string(params, 3, "data", true, 1 << 20, &data, err) != 0 ||
      api_param_string(params, 4, "format", false, 16, &format, err) != 0)
    return -1;
  if (format && strcmp(format, "i420") != 0)
    return api_fail(err, API_ERR_INVALID_PARAMS, "format must be \"i420\"");
  size_t want = video_i420_size((int)w, (int)h), len = 0;
  uint8_t *buf = malloc(want);
  if (!buf)
    return api_fail(err, API_ERR_INTERNAL, "out of memory");
  if (sodium_base642bin(buf, want, data, strlen(data), NULL, &len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != want) {
    free(buf);
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "data must be base64 of exactly one I420 picture of "
                    "width x height (%zu bytes)",
                    want);
  }
  int r = d->media
              ? media_mgr_send_video(d->media, id, (int)w, (int)h, buf, len)
              : -ENOENT;
  free(buf);
  if (r == -ENOENT)
    return api_fail(err, API_ERR_NO_SUCH_CALL, "no call with media %s", id);
  if (r == -EAGAIN)
    return api_fail(err, API_ERR_INVALID_STATE,
                    "the call is not sending video (toggle_video)");
  if (r == -ENOBUFS)
    return api_fail(err, API_ERR_BUSY, "frames come faster than they encode");
  if (r != 0)
    return api_fail(err, API_ERR_INVALID_STATE,
                    "the call's video source is not \"api\"");
  *result = json_object();
  return 0;
}

/* ---- set_audio_processing ---- */

/* aec / ns / agc: true, false, or (defaults only) "auto". */
static int ap_mode(json_t *params, size_t i, const char *name, bool for_call,
                   int *out, api_error_t *err) {
  json_t *v = api_param(params, i, name);
  if (!v)
    *out = MEDIA_AP_KEEP;
  else if (json_is_boolean(v))
    *out = json_is_true(v) ? MEDIA_AP_ON : MEDIA_AP_OFF;
  else if (!for_call && json_is_string(v) &&
           strcmp(json_string_value(v), "auto") == 0)
    *out = MEDIA_AP_AUTO;
  else
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    for_call ? "%s must be true or false"
                             : "%s must be true, false or \"auto\"",
                    name);
  return 0;
}

static json_t *ap_mode_json(int mode) {
  return mode == MEDIA_AP_AUTO ? json_string("auto")
                               : json_boolean(mode == MEDIA_AP_ON);
}

/* {call_id?, aec?, ns?, agc?}: a running call's processing, or without
 * call_id the defaults for calls that start later. */
static int m_set_audio_processing(void *ctx, api_client_t *client,
                                  json_t *params, json_t **result,
                                  api_error_t *err) {
  api_call_deps_t *d = ctx;
  static const char *const names[] = {"call_id", "aec", "ns", "agc"};
  const char *id;
  media_audio_processing_t set, now;
  if (api_params_only(params, names, 4, err) != 0 ||
      api_param_string(params, 0, "call_id", false, 64, &id, err) != 0 ||
      ap_mode(params, 1, "aec", id, &set.aec, err) != 0 ||
      ap_mode(params, 2, "ns", id, &set.ns, err) != 0 ||
      ap_mode(params, 3, "agc", id, &set.agc, err) != 0)
    return -1;
  if (!d->media)
    return api_fail(err, API_ERR_INTERNAL, "no media");
  if (media_mgr_set_audio_processing(d->media, id, &set, &now) != 0)
    return api_fail(err, API_ERR_NO_SUCH_CALL, "no call with media %s", id);
  *result = json_pack("{s:o, s:o, s:o}", "aec", ap_mode_json(now.aec), "ns",
                      ap_mode_json(now.ns), "agc", ap_mode_json(now.agc));
  if (id)
    json_object_set_new(*result, "call_id", json_string(id));
  return 0;
}

const api_method_t api_call_methods[] = {
    {"toggle_video", m_toggle_video},
    {"send_video_frame", m_send_video_frame},
    {"send_audio_frame", m_send_audio_frame},
    {"start_call", m_start_call},
    {"answer_call", m_answer_call},
    {"reject_call", m_reject_call},
    {"end_call", m_end_call},
    {"list_calls", m_list_calls},
    {"toggle_mute", m_toggle_mute},
    {"call_stats", m_call_stats},
    {"list_devices", m_list_devices},
    {"set_devices", m_set_devices},
    {"set_audio_processing", m_set_audio_processing},
};
const size_t api_call_methods_count = ARRAY_SIZE(api_call_methods);
