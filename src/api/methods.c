/* The core API methods: status, ticket, call history and contacts. See
 * methods.h; the wire format is documented in docs/api.md. */
#include "api/methods.h"

#include "api/params.h"
#include "core/util.h"
#include "net/ticket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_LIMIT_DEFAULT 50
#define HISTORY_LIMIT_MAX 1000

static int api__storage(api_error_t *err, int rc);
static json_t *api__record_json(const call_record_t *r);
static json_t *api__contact_json(const contact_t *c);
static json_int_t api__json_u64(uint64_t v);
static int api__parse_before(json_t *before, history_cursor_t *cur,
                             api_error_t *err);
static int api__parse_addresses(json_t *addrs, contact_t *c, api_error_t *err);
static int api__add_addr(contact_t *c, const struct sockaddr_storage *ss,
                         const char *param, api_error_t *err);

static int api__status(void *ctx, api_client_t *client, json_t *params,
                       json_t **result, api_error_t *err) {
  const api_deps_t *d = ctx;
  if (api_params_only(params, NULL, 0, err) != 0)
    return -1;
  json_t *listen = json_array();
  for (size_t i = 0; i < d->n_listen; i++)
    json_array_append_new(listen, json_string(d->listen[i]));
  uint64_t now = time_now_s();
  uint64_t up = now > d->started_at ? now - d->started_at : 0;
  json_t *calls = json_array();
  if (d->calls) {
    call_info_t infos[16];
    size_t n = call_mgr_list(d->calls, infos, 16);
    for (size_t i = 0; i < n; i++)
      json_array_append_new(calls, call_info_json(&infos[i]));
  }
  *result = json_pack(
      "{s:s, s:s, s:o, s:s, s:I, s:I, s:o}", "version", PARLEY_VERSION,
      "peer_id", d->identity ? d->identity->peer_id : "", "listen", listen,
      "socket", d->socket_path ? d->socket_path : "", "uptime_seconds",
      api__json_u64(up), "clients", (json_int_t)api_client_count(d->server),
      "active_calls", calls);
  return *result ? 0 : api_fail(err, API_ERR_INTERNAL, "out of memory");
}

static int api__get_ticket(void *ctx, api_client_t *client, json_t *params,
                           json_t **result, api_error_t *err) {
  const api_deps_t *d = ctx;
  if (api_params_only(params, NULL, 0, err) != 0)
    return -1;
  if (!d->ticket)
    return api_fail(err, API_ERR_INTERNAL, "this daemon has no ticket yet");
  *result = json_pack("{s:s}", "ticket", d->ticket);
  return *result ? 0 : api_fail(err, API_ERR_INTERNAL, "out of memory");
}

static int api__get_call_history(void *ctx, api_client_t *client,
                                 json_t *params, json_t **result,
                                 api_error_t *err) {
  const api_deps_t *d = ctx;
  static const char *const names[] = {"limit", "before"};
  if (api_params_only(params, names, 2, err) != 0)
    return -1;
  int64_t limit = HISTORY_LIMIT_DEFAULT;
  if (api_param_int(params, 0, "limit", false, 1, HISTORY_LIMIT_MAX, &limit,
                    NULL, err) != 0)
    return -1;
  history_cursor_t cur = {0};
  json_t *before = api_param(params, 1, "before");
  if (before && api__parse_before(before, &cur, err) != 0)
    return -1;

  call_record_t *recs = calloc((size_t)limit, sizeof(*recs));
  if (!recs)
    return api_fail(err, API_ERR_INTERNAL, "out of memory");
  int n =
      store_history_page(d->store, before ? &cur : NULL, (size_t)limit, recs);
  if (n < 0) {
    free(recs);
    return api__storage(err, n);
  }
  json_t *arr = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(arr, api__record_json(&recs[i]));
  free(recs);
  *result = arr;
  return 0;
}

static int api__add_contact(void *ctx, api_client_t *client, json_t *params,
                            json_t **result, api_error_t *err) {
  const api_deps_t *d = ctx;
  static const char *const names[] = {"peer", "name", "addresses", "ticket"};
  if (api_params_only(params, names, 4, err) != 0)
    return -1;
  const char *peer, *name, *ticket_text;
  if (api_param_peer(params, 0, "peer", false, &peer, err) != 0 ||
      api_param_string(params, 1, "name", false, STORE_NAME_MAX, &name, err) !=
          0 ||
      api_param_string(params, 3, "ticket", false, TICKET_MAX_LEN, &ticket_text,
                       err) != 0)
    return -1;
  if (!peer && !ticket_text)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "missing parameter 'peer' (or 'ticket')");
  if (peer && ticket_text)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "give either 'peer' or 'ticket', not both");
  if (name) {
    for (const char *p = name; *p; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f)
        return api_fail(err, API_ERR_INVALID_PARAMS,
                        "parameter 'name' must not contain control "
                        "characters");
  }

  contact_t from_ticket = {0};
  if (ticket_text) {
    ticket_t t;
    char why[128] = "";
    if (ticket_parse(ticket_text, &t, why, sizeof(why)) != 0)
      return api_fail(err, API_ERR_INVALID_PARAMS,
                      "parameter 'ticket' is not a valid ticket: %s",
                      why[0] ? why : "malformed");
    hex_encode(from_ticket.peer, t.peer, sizeof(t.peer));
    for (size_t i = 0; i < t.n_addrs; i++)
      if (api__add_addr(&from_ticket, &t.addrs[i], "ticket", err) != 0)
        return -1;
    peer = from_ticket.peer;
  }

  /* Adding a known peer updates it: what is not given stays as it was. */
  contact_t c = {0};
  int rc = store_contact_get(d->store, peer, &c);
  if (rc == -ENOENT)
    memset(&c, 0, sizeof(c));
  else if (rc < 0)
    return api__storage(err, rc);
  snprintf(c.peer, sizeof(c.peer), "%s", peer);
  if (name)
    snprintf(c.name, sizeof(c.name), "%s", name);
  json_t *addrs = api_param(params, 2, "addresses");
  if (addrs) {
    if (api__parse_addresses(addrs, &c, err) != 0)
      return -1;
  } else if (ticket_text) {
    c.n_addrs = from_ticket.n_addrs;
    memcpy(c.addrs, from_ticket.addrs, sizeof(c.addrs));
  }

  rc = store_contact_put(d->store, &c);
  if (rc < 0)
    return api__storage(err, rc);
  *result = api__contact_json(&c);
  return 0;
}

static int api__list_contacts_one(const contact_t *c, void *arg) {
  return json_array_append_new(arg, api__contact_json(c));
}

static int api__list_contacts(void *ctx, api_client_t *client, json_t *params,
                              json_t **result, api_error_t *err) {
  const api_deps_t *d = ctx;
  if (api_params_only(params, NULL, 0, err) != 0)
    return -1;
  json_t *arr = json_array();
  int rc = store_contact_list(d->store, api__list_contacts_one, arr);
  if (rc < 0) {
    json_decref(arr);
    return api__storage(err, rc);
  }
  *result = arr;
  return 0;
}

static int api__remove_contact(void *ctx, api_client_t *client, json_t *params,
                               json_t **result, api_error_t *err) {
  const api_deps_t *d = ctx;
  static const char *const names[] = {"peer"};
  const char *peer;
  if (api_params_only(params, names, 1, err) != 0 ||
      api_param_peer(params, 0, "peer", true, &peer, err) != 0)
    return -1;
  int rc = store_contact_remove(d->store, peer);
  if (rc == -ENOENT)
    return api_fail(err, API_ERR_NOT_FOUND, "no contact %s", peer);
  if (rc < 0)
    return api__storage(err, rc);
  *result = json_object();
  return 0;
}

const api_method_t api_core_methods[] = {
    {"status", api__status},
    {"get_ticket", api__get_ticket},
    {"get_call_history", api__get_call_history},
    {"add_contact", api__add_contact},
    {"list_contacts", api__list_contacts},
    {"remove_contact", api__remove_contact},
};
const size_t api_core_methods_count = ARRAY_SIZE(api_core_methods);

/* --- helpers ------------------------------------------------------------ */

/* The store checks what it encodes; params were checked before, so its
 * -EINVAL would mean a value this file let through. */
static int api__storage(api_error_t *err, int rc) {
  if (rc == -EINVAL)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "a parameter has a value the store cannot hold");
  return api_fail(err, API_ERR_STORAGE, "storage error: %s", strerror(-rc));
}

static json_int_t api__json_u64(uint64_t v) {
  return v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v;
}

static json_t *api__record_json(const call_record_t *r) {
  const char *dir = call_direction_name(r->direction);
  const char *why = call_end_reason_name(r->ended_reason);
  return json_pack("{s:s, s:s, s:s, s:I, s:b, s:I, s:s}", "call_id", r->call_id,
                   "peer", r->peer, "direction", dir ? dir : "unknown",
                   "duration_seconds", api__json_u64(r->duration_seconds),
                   "had_video", r->had_video, "timestamp",
                   api__json_u64(r->timestamp), "ended_reason",
                   why ? why : "unknown");
}

static json_t *api__contact_json(const contact_t *c) {
  json_t *addrs = json_array();
  for (size_t i = 0; i < c->n_addrs && i < STORE_ADDRS_MAX; i++)
    json_array_append_new(addrs, json_string(c->addrs[i]));
  return json_pack("{s:s, s:s, s:o}", "peer", c->peer, "name", c->name,
                   "addresses", addrs);
}

/* "before": a timestamp, or {"timestamp": t, "call_id": id} to resume
 * exactly after the last record of a page. */
static int api__parse_before(json_t *before, history_cursor_t *cur,
                             api_error_t *err) {
  static const char *const shape =
      "parameter 'before' must be a timestamp (integer >= 0) or an object "
      "{\"timestamp\": integer, \"call_id\": string}";
  if (json_is_integer(before)) {
    if (json_integer_value(before) < 0)
      return api_fail(err, API_ERR_INVALID_PARAMS, "%s", shape);
    cur->timestamp = (uint64_t)json_integer_value(before);
    cur->call_id[0] = '\0';
    return 0;
  }
  if (!json_is_object(before))
    return api_fail(err, API_ERR_INVALID_PARAMS, "%s", shape);
  const char *key;
  json_t *v;
  json_object_foreach(before, key, v) {
    if (strcmp(key, "timestamp") != 0 && strcmp(key, "call_id") != 0)
      return api_fail(err, API_ERR_INVALID_PARAMS,
                      "parameter 'before' has an unknown member '%.64s'", key);
  }
  json_t *ts = json_object_get(before, "timestamp");
  json_t *id = json_object_get(before, "call_id");
  if (!json_is_integer(ts) || json_integer_value(ts) < 0)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter 'before.timestamp' must be an integer >= 0");
  if (!json_is_string(id) || json_string_length(id) > STORE_CALL_ID_MAX ||
      strlen(json_string_value(id)) != json_string_length(id))
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter 'before.call_id' must be a string of at most "
                    "%d bytes",
                    STORE_CALL_ID_MAX);
  cur->timestamp = (uint64_t)json_integer_value(ts);
  snprintf(cur->call_id, sizeof(cur->call_id), "%s", json_string_value(id));
  return 0;
}

static int api__parse_addresses(json_t *addrs, contact_t *c, api_error_t *err) {
  if (!json_is_array(addrs))
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter 'addresses' must be an array of \"ip:port\" "
                    "strings");
  c->n_addrs = 0;
  size_t i;
  json_t *a;
  json_array_foreach(addrs, i, a) {
    struct sockaddr_storage ss;
    if (!json_is_string(a) ||
        addr_parse(json_string_value(a), json_string_length(a), &ss) != 0)
      return api_fail(err, API_ERR_INVALID_PARAMS,
                      "parameter 'addresses': element %zu is not an "
                      "\"ip:port\" or \"[ipv6]:port\" address",
                      i);
    if (api__add_addr(c, &ss, "addresses", err) != 0)
      return -1;
  }
  return 0;
}

/* Appends the canonical text of ss unless already there. */
static int api__add_addr(contact_t *c, const struct sockaddr_storage *ss,
                         const char *param, api_error_t *err) {
  char text[STORE_ADDR_MAX + 1];
  if (addr_format((const struct sockaddr *)ss, text, sizeof(text)) != 0)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s': unusable address", param);
  for (size_t i = 0; i < c->n_addrs; i++)
    if (strcmp(c->addrs[i], text) == 0)
      return 0;
  if (c->n_addrs == STORE_ADDRS_MAX)
    return api_fail(err, API_ERR_INVALID_PARAMS,
                    "parameter '%s': at most %d addresses", param,
                    STORE_ADDRS_MAX);
  memcpy(c->addrs[c->n_addrs++], text, sizeof(text));
  return 0;
}
