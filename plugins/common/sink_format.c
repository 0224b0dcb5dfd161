/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The normalized honeypot event schema and the text formats built on it
 * (see sink_format.h).  Each known channel has one row in `mappings`: the
 * constant protocol/transport the sensor implies, and where in the sensor's
 * own JSON payload each normalized field is found.  A payload that is not a
 * JSON object, on a known channel, keeps its bytes in `raw` with a
 * `parse_error`; a channel without a row keeps `raw` only.  JSON is written
 * by hand rather than with JsonGenerator: json-glib 1.6 leaves U+001F
 * unescaped, which strict parsers refuse.
 */
#include "sink_format.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0"
#endif

enum field_kind {
    F_STR,   /* a string (a number is written as its decimal text) */
    F_LOWER, /* a string, lower-cased (TCP -> tcp) */
    F_INT,   /* an integer, from a number or a decimal string (ports) */
    F_ANY,   /* copied as it is (lists of credentials, commands, hashes) */
};

struct field_map {
    const char *out;  /* normalized name */
    const char *path; /* "peerIP", "source[0]", "alert.signature" */
    enum field_kind kind;
};

#define MAX_FIELDS 16

struct channel_map {
    const char *channel;
    const char *protocol;  /* implied by the sensor; a mapped field overrides */
    const char *transport; /* likewise */
    int dst_port;          /* implied service port, 0: none */
    struct field_map fields[MAX_FIELDS];
};

#define ENDPOINTS(sip, sport, dip, dport)                                       \
    {"src_ip", sip, F_STR}, {"src_port", sport, F_INT}, {"dst_ip", dip, F_STR}, \
    {                                                                           \
        "dst_port", dport, F_INT                                                \
    }

/*
 * Field names on the right are the sensors' own, as their hpfeeds output
 * code publishes them (tests/sinks/test_sink_format.c names each source).
 * MAX_DEPTH bounds the nesting the parser is handed (json-glib recurses).
 */
#define MAX_DEPTH 64
static const struct channel_map mappings[] = {
    {"cowrie.sessions",
     "ssh",
     "tcp",
     0,
     {ENDPOINTS("peerIP", "peerPort", "hostIP", "hostPort"),
      {"protocol", "protocol", F_LOWER},
      {"session", "session", F_STR},
      {"start_time", "startTime", F_STR},
      {"end_time", "endTime", F_STR},
      {"login", "loggedin", F_ANY},
      {"credentials", "credentials", F_ANY},
      {"commands", "commands", F_ANY},
      {"unknown_commands", "unknownCommands", F_ANY},
      {"urls", "urls", F_ANY},
      {"hashes", "hashes", F_ANY},
      {"client_version", "version", F_STR}}},
    {"kippo.sessions",
     "ssh",
     "tcp",
     0,
     {ENDPOINTS("peerIP", "peerPort", "hostIP", "hostPort"),
      {"session", "session", F_STR},
      {"start_time", "startTime", F_STR},
      {"end_time", "endTime", F_STR},
      {"login", "loggedin", F_ANY},
      {"credentials", "credentials", F_ANY},
      {"commands", "commands", F_ANY},
      {"unknown_commands", "unknownCommands", F_ANY},
      {"urls", "urls", F_ANY},
      {"client_version", "version", F_STR}}},
    {"dionaea.connections",
     NULL,
     NULL,
     0,
     {ENDPOINTS("remote_host", "remote_port", "local_host", "local_port"),
      {"protocol", "connection_protocol", F_LOWER},
      {"transport", "connection_transport", F_LOWER},
      {"connection_type", "connection_type", F_STR},
      {"src_hostname", "remote_hostname", F_STR}}},
    {"dionaea.capture",
     NULL,
     "tcp",
     0,
     {ENDPOINTS("saddr", "sport", "daddr", "dport"),
      {"url", "url", F_STR},
      {"md5", "md5", F_STR},
      {"sha512", "sha512", F_STR}}},
    {"conpot.events",
     NULL,
     "tcp",
     0,
     {ENDPOINTS("remote[0]", "remote[1]", "public_ip", "dst_port"),
      {"protocol", "data_type", F_LOWER},
      {"conpot_id", "id", F_STR},
      {"details", "data", F_ANY}}},
    {"glastopf.events",
     "http",
     "tcp",
     80,
     {ENDPOINTS("source[0]", "source[1]", "dst_ip", "dst_port"),
      {"url", "request.url", F_STR},
      {"method", "request.method", F_STR},
      {"http_host", "request.header.Host", F_STR},
      {"pattern", "pattern", F_STR},
      {"file", "filename", F_STR}}},
    {"p0f.events",
     NULL,
     "tcp",
     0,
     {ENDPOINTS("client_ip", "client_port", "server_ip", "server_port"),
      {"os", "os", F_STR},
      {"app", "app", F_STR},
      {"link", "link", F_STR},
      {"uptime", "uptime", F_STR}}},
    {"snort.alerts",
     NULL,
     NULL,
     0,
     {ENDPOINTS("source_ip", "source_port", "destination_ip", "destination_port"),
      {"transport", "protocol", F_LOWER},
      {"signature", "signature", F_STR},
      {"classification", "classification", F_STR},
      {"priority", "priority", F_INT},
      {"header", "header", F_STR}}},
    {"suricata.events",
     NULL,
     NULL,
     0,
     {ENDPOINTS("source_ip", "source_port", "destination_ip", "destination_port"),
      {"transport", "protocol", F_LOWER},
      {"signature", "signature", F_STR},
      {"signature_id", "signature_id", F_INT},
      {"action", "action", F_STR}}},
    {"wordpot.events",
     "http",
     "tcp",
     0,
     {ENDPOINTS("source_ip", "source_port", "dest_ip", "dest_port"), {"url", "url", F_STR}}},
    {"shockpot.events",
     "http",
     "tcp",
     0,
     {ENDPOINTS("source_ip", "source_port", "dest_ip", "dest_port"),
      {"url", "url", F_STR},
      {"command", "command", F_STR}}},
    {"elastichoney.events",
     "http",
     "tcp",
     9200,
     {ENDPOINTS("source", "source_port", "honeypot", "dst_port"),
      {"url", "url", F_STR},
      {"method", "method", F_STR},
      {"user_agent", "headers.user_agent", F_STR},
      {"form", "form", F_STR},
      {"payload", "payload", F_ANY}}},
};

static const char *const kind_names[] = {"raw", "normalized", "cef", "splunk"};

bool sinkfmt_parse(const char *word, enum sinkfmt_kind *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(kind_names); i++) {
        if (word && !strcmp(word, kind_names[i])) {
            *out = (enum sinkfmt_kind)i;
            return true;
        }
    }
    return false;
}

const char *sinkfmt_name(enum sinkfmt_kind kind)
{
    return (unsigned)kind < G_N_ELEMENTS(kind_names) ? kind_names[kind] : "?";
}

/* ---- JSON writing ---- */

static void append_json_string(GString *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    g_string_append_c(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            g_string_append_c(out, '\\');
            g_string_append_c(out, (char)c);
        } else if (c == '\n') {
            g_string_append(out, "\\n");
        } else if (c == '\t') {
            g_string_append(out, "\\t");
        } else if (c == '\r') {
            g_string_append(out, "\\r");
        } else if (c < 0x20) {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
            g_string_append(out, u);
        } else {
            g_string_append_c(out, (char)c);
        }
    }
    g_string_append_c(out, '"');
}

/* Wire strings (idents, channels) may be any bytes: made valid UTF-8. */
static void append_text(GString *out, const char *s)
{
    size_t n = strlen(s);
    if (g_utf8_validate_len(s, n, NULL)) {
        append_json_string(out, s, n);
        return;
    }
    char *valid = g_utf8_make_valid(s, (gssize)n);
    append_json_string(out, valid, strlen(valid));
    g_free(valid);
}

static void append_value(GString *out, JsonNode *node)
{
    GType t = json_node_get_value_type(node);
    if (t == G_TYPE_STRING) {
        append_text(out, json_node_get_string(node));
    } else if (t == G_TYPE_INT64) {
        g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
    } else if (t == G_TYPE_BOOLEAN) {
        g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
    } else if (t == G_TYPE_DOUBLE) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        g_string_append(out, g_ascii_dtostr(buf, sizeof buf, json_node_get_double(node)));
    } else {
        g_string_append(out, "null");
    }
}

void sinkfmt_append_json(GString *out, JsonNode *node)
{
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_OBJECT: {
        JsonObject *o = json_node_get_object(node);
        GList *members = json_object_get_members(o);
        g_string_append_c(out, '{');
        for (GList *m = members; m; m = m->next) {
            if (m != members)
                g_string_append_c(out, ',');
            append_text(out, m->data);
            g_string_append_c(out, ':');
            sinkfmt_append_json(out, json_object_get_member(o, m->data));
        }
        g_string_append_c(out, '}');
        g_list_free(members);
        break;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *a = json_node_get_array(node);
        g_string_append_c(out, '[');
        for (guint i = 0; i < json_array_get_length(a); i++) {
            if (i)
                g_string_append_c(out, ',');
            sinkfmt_append_json(out, json_array_get_element(a, i));
        }
        g_string_append_c(out, ']');
        break;
    }
    case JSON_NODE_VALUE:
        append_value(out, node);
        break;
    case JSON_NODE_NULL:
        g_string_append(out, "null");
        break;
    }
}

void sinkfmt_append_time(GString *out, int64_t time_us)
{
    int64_t secs = time_us / G_USEC_PER_SEC, frac = time_us % G_USEC_PER_SEC;
    if (frac < 0) {
        frac += G_USEC_PER_SEC;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    g_string_append_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

/* ---- normalizing ---- */

/* g_utf8_validate_len() refuses NUL bytes too: JSON strings here never hold them. */
static bool payload_is_text(const struct hpf_message *msg)
{
    return !msg->payload_len ||
           g_utf8_validate_len((const char *)msg->payload, msg->payload_len, NULL);
}

/* `raw` (text) or `raw_b64` (anything else). */
static void set_raw(JsonObject *rec, const struct hpf_message *msg)
{
    if (payload_is_text(msg)) {
        char *s = g_strndup((const char *)msg->payload, msg->payload_len);
        json_object_set_string_member(rec, "raw", s);
        g_free(s);
    } else {
        char *b64 = g_base64_encode(msg->payload, msg->payload_len);
        json_object_set_string_member(rec, "raw_b64", b64);
        g_free(b64);
    }
}

/* One step of a path: "name" or "name[N]". */
static JsonNode *path_step(JsonNode *node, const char *step)
{
    if (!node || !JSON_NODE_HOLDS_OBJECT(node))
        return NULL;
    const char *bracket = strchr(step, '[');
    char *name = bracket ? g_strndup(step, bracket - step) : g_strdup(step);
    JsonNode *child = json_object_get_member(json_node_get_object(node), name);
    g_free(name);
    if (child && bracket) {
        guint64 idx = g_ascii_strtoull(bracket + 1, NULL, 10);
        if (!JSON_NODE_HOLDS_ARRAY(child))
            return NULL;
        JsonArray *a = json_node_get_array(child);
        child = idx < json_array_get_length(a) ? json_array_get_element(a, (guint)idx) : NULL;
    }
    return child;
}

static JsonNode *lookup(JsonNode *root, const char *path)
{
    char **steps = g_strsplit(path, ".", 0);
    JsonNode *node = root;
    for (char **s = steps; *s && node; s++)
        node = path_step(node, *s);
    g_strfreev(steps);
    return node;
}

/* A port or a count: a JSON integer, or a string holding only digits. */
static bool node_int(JsonNode *node, gint64 *out)
{
    if (!JSON_NODE_HOLDS_VALUE(node))
        return false;
    GType t = json_node_get_value_type(node);
    if (t == G_TYPE_INT64) {
        *out = json_node_get_int(node);
        return true;
    }
    if (t != G_TYPE_STRING)
        return false;
    const char *s = json_node_get_string(node);
    char *end = NULL;
    gint64 v = g_ascii_strtoll(s, &end, 10);
    if (!*s || *end)
        return false;
    *out = v;
    return true;
}

static char *node_text(JsonNode *node)
{
    if (!JSON_NODE_HOLDS_VALUE(node))
        return NULL;
    GType t = json_node_get_value_type(node);
    if (t == G_TYPE_STRING)
        return g_strdup(json_node_get_string(node));
    if (t == G_TYPE_INT64)
        return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
    return NULL;
}

static void map_field(JsonObject *rec, JsonNode *root, const struct field_map *f)
{
    JsonNode *node = lookup(root, f->path);
    if (!node || JSON_NODE_HOLDS_NULL(node))
        return;
    gint64 v;
    char *text;
    switch (f->kind) {
    case F_INT:
        if (node_int(node, &v))
            json_object_set_int_member(rec, f->out, v);
        break;
    case F_STR:
    case F_LOWER:
        if ((text = node_text(node))) {
            char *lower = f->kind == F_LOWER ? g_ascii_strdown(text, -1) : NULL;
            if (*text)
                json_object_set_string_member(rec, f->out, lower ? lower : text);
            g_free(lower);
            g_free(text);
        }
        break;
    case F_ANY:
        json_object_set_member(rec, f->out, json_node_copy(node));
        break;
    }
}

static const struct channel_map *find_mapping(const char *channel)
{
    for (size_t i = 0; channel && i < G_N_ELEMENTS(mappings); i++)
        if (!strcmp(mappings[i].channel, channel))
            return &mappings[i];
    return NULL;
}

/*
 * Deepest [ / { nesting of a JSON text, brackets inside strings skipped:
 * json-glib's parser recurses once per level, and a payload is anyone's.
 */
static unsigned json_depth(const char *s, size_t n, unsigned stop)
{
    unsigned depth = 0, max = 0;
    bool in_string = false;
    for (size_t i = 0; i < n && max <= stop; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return max;
}

/*
 * True when a JSON text escapes a NUL (\u0000): json-glib keeps strings as C
 * strings, so the value would be cut short there.  An escaped backslash
 * is skipped with the character after it.
 */
static bool json_has_nul(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < n && !strncmp(s + i + 2, "0000", 4))
            return true;
        i++;
    }
    return false;
}

/* Parses the payload as one JSON object into p; on failure says why in *why. */
static JsonObject *parse_payload(JsonParser *p, const struct hpf_message *msg, char **why)
{
    const char *text = (const char *)msg->payload;
    GError *err = NULL;
    if (!msg->payload_len) {
        *why = g_strdup("payload is empty");
    } else if (!payload_is_text(msg)) {
        *why = g_strdup("payload is not UTF-8 text");
    } else if (json_depth(text, msg->payload_len, MAX_DEPTH) > MAX_DEPTH) {
        *why = g_strdup_printf("payload is nested more than %d deep", MAX_DEPTH);
    } else if (!json_parser_load_from_data(p, text, (gssize)msg->payload_len, &err)) {
        *why = g_strdup_printf("payload is not JSON: %s", err->message);
        g_error_free(err);
    } else if (json_has_nul(text, msg->payload_len)) {
        *why = g_strdup("payload holds a NUL character (\\u0000) in a string");
    } else if (!json_parser_get_root(p) || !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
        *why = g_strdup("payload is not a JSON object");
    } else {
        return json_node_get_object(json_parser_get_root(p));
    }
    return NULL;
}

static void set_wire_string(JsonObject *rec, const char *name, const char *value)
{
    if (!value)
        return;
    char *valid = g_utf8_make_valid(value, -1);
    json_object_set_string_member(rec, name, valid);
    g_free(valid);
}

static void apply_mapping(JsonObject *rec, const struct channel_map *map, JsonNode *root)
{
    if (map->protocol)
        json_object_set_string_member(rec, "protocol", map->protocol);
    if (map->transport)
        json_object_set_string_member(rec, "transport", map->transport);
    if (map->dst_port)
        json_object_set_int_member(rec, "dst_port", map->dst_port);
    for (size_t i = 0; i < MAX_FIELDS && map->fields[i].out; i++)
        map_field(rec, root, &map->fields[i]);
}

JsonObject *sinkfmt_normalize(const struct hpf_message *msg)
{
    JsonObject *rec = json_object_new();
    GString *t = g_string_new(NULL);
    sinkfmt_append_time(t, msg->time_us);
    json_object_set_string_member(rec, "time", t->str);
    g_string_free(t, TRUE);
    set_wire_string(rec, "sensor", msg->ident);
    set_wire_string(rec, "owner", msg->owner);
    set_wire_string(rec, "channel", msg->channel);

    const struct channel_map *map = find_mapping(msg->channel);
    if (!map) {
        set_raw(rec, msg);
        return rec;
    }
    char *why = NULL;
    JsonParser *p = json_parser_new_immutable();
    JsonObject *payload = parse_payload(p, msg, &why);
    if (!payload) {
        set_raw(rec, msg);
        json_object_set_string_member(rec, "parse_error", why);
        g_free(why);
    } else {
        apply_mapping(rec, map, json_parser_get_root(p));
    }
    g_object_unref(p);
    return rec;
}

/* ---- CEF and Splunk: flat text from the normalized record ---- */

/* A member's value as flat text: strings as they are, the rest as JSON. */
static char *flat_value(JsonNode *node)
{
    if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
        return g_strdup(json_node_get_string(node));
    GString *s = g_string_new(NULL);
    sinkfmt_append_json(s, node);
    return g_string_free(s, FALSE);
}

/*
 * A control character at p: C0, DEL, C1 (U+0080..U+009F, as UTF-8) or the
 * line and paragraph separators U+2028/U+2029, which line-oriented readers
 * may take as a line end.  Returns its length in bytes (0: none) and its
 * code point in *cp.
 */
static size_t control_at(const char *s, gunichar *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] < 0x20 || p[0] == 0x7f) {
        *cp = p[0];
        return 1;
    }
    if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
        *cp = p[1];
        return 2;
    }
    if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
        *cp = 0x2000 + p[2] - 0x80;
        return 3;
    }
    return 0;
}

/*
 * Appends s with each control character escaped (\n, \r, \t, else \uXXXX)
 * so that no record can end a line or forge another; `special` characters
 * (and the backslash) get a backslash before them.
 */
static void append_escaped(GString *out, const char *s, const char *special)
{
    for (const char *p = s; *p;) {
        gunichar cp;
        size_t n = control_at(p, &cp);
        if (n) {
            if (cp == '\n')
                g_string_append(out, "\\n");
            else if (cp == '\r')
                g_string_append(out, "\\r");
            else if (cp == '\t')
                g_string_append(out, "\\t");
            else
                g_string_append_printf(out, "\\u%04X", (unsigned)cp);
            p += n;
            continue;
        }
        if (*p == '\\' || strchr(special, *p))
            g_string_append_c(out, '\\');
        g_string_append_c(out, *p++);
    }
}

/* CEF escaping: backslash always; '|' in the header, '=' in extensions; controls. */
static void append_cef_escaped(GString *out, const char *s, char special)
{
    char sp[2] = {special, 0};
    append_escaped(out, s, sp);
}

/* Normalized names that have a CEF key of their own; the rest go as cs labels. */
static const char *cef_key(const char *name)
{
    static const char *const keys[][2] = {
        {"src_ip", "src"},           {"src_port", "spt"},    {"dst_ip", "dst"},
        {"dst_port", "dpt"},         {"transport", "proto"}, {"protocol", "app"},
        {"sensor", "dvchost"},       {"username", "suser"},  {"url", "request"},
        {"method", "requestMethod"}, {"md5", "fileHash"},    {"channel", "cs1"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (!strcmp(name, keys[i][0]))
            return keys[i][1];
    return NULL;
}

static void append_cef(GString *out, JsonObject *rec, const struct hpf_message *msg)
{
    g_string_append(out, "CEF:0|hpfriends|hpfriends|" PLUGIN_VERSION "|");
    append_cef_escaped(out, json_object_get_string_member_with_default(rec, "channel", ""), '|');
    g_string_append_c(out, '|');
    append_cef_escaped(out, json_object_get_string_member_with_default(rec, "channel", ""), '|');
    g_string_append_printf(out, "|%d|rt=%" G_GINT64_FORMAT " cs1Label=channel",
                           json_object_has_member(rec, "parse_error") ? 5 : 3, msg->time_us / 1000);
    GList *members = json_object_get_members(rec);
    for (GList *m = members; m; m = m->next) {
        const char *name = m->data, *key = cef_key(name);
        if (!strcmp(name, "time"))
            continue;
        char *v = flat_value(json_object_get_member(rec, name));
        g_string_append_c(out, ' ');
        append_cef_escaped(out, key ? key : name, '=');
        g_string_append_c(out, '=');
        append_cef_escaped(out, v, '=');
        g_free(v);
    }
    g_list_free(members);
}

/* Splunk key="value": quotes and backslashes escaped, control characters too. */
static void append_splunk(GString *out, JsonObject *rec)
{
    GList *members = json_object_get_members(rec);
    for (GList *m = members; m; m = m->next) {
        char *v = flat_value(json_object_get_member(rec, m->data));
        if (m != members)
            g_string_append_c(out, ' ');
        append_escaped(out, m->data, " =\"");
        g_string_append(out, "=\"");
        append_escaped(out, v, "\"");
        g_string_append_c(out, '"');
        g_free(v);
    }
    g_list_free(members);
}

void sinkfmt_append(GString *out, enum sinkfmt_kind kind, const struct hpf_message *msg)
{
    if (kind == SINKFMT_RAW) {
        if (msg->payload_len)
            g_string_append_len(out, (const char *)msg->payload, (gssize)msg->payload_len);
        return;
    }
    JsonObject *rec = sinkfmt_normalize(msg);
    if (kind == SINKFMT_NORMALIZED) {
        JsonNode *node = json_node_init_object(json_node_alloc(), rec);
        sinkfmt_append_json(out, node);
        json_node_unref(node);
    } else if (kind == SINKFMT_CEF) {
        append_cef(out, rec, msg);
    } else {
        append_splunk(out, rec);
    }
    json_object_unref(rec);
}

void sinkfmt_append_envelope(GString *out, const struct hpf_message *msg)
{
    g_string_append(out, "{\"time\":\"");
    sinkfmt_append_time(out, msg->time_us);
    g_string_append_c(out, '"');
    const char *names[] = {"ident", "owner", "channel"};
    const char *values[] = {msg->ident, msg->owner, msg->channel};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (!values[i])
            continue;
        g_string_append_printf(out, ",\"%s\":", names[i]);
        append_text(out, values[i]);
    }
    if (payload_is_text(msg)) {
        g_string_append(out, ",\"payload\":");
        append_json_string(out, msg->payload_len ? (const char *)msg->payload : "",
                           msg->payload_len);
    } else {
        char *b64 = g_base64_encode(msg->payload, msg->payload_len);
        g_string_append_printf(out, ",\"payload_b64\":\"%s\"", b64);
        g_free(b64);
    }
    g_string_append_c(out, '}');
}
