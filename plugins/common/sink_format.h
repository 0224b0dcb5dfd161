/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sink_format: the record formats every networked sink offers (`format =
 * raw | normalized | cef | splunk`), and the normalized honeypot event
 * schema they share.  Compiled into each sink that uses it (plugins link
 * nothing of the core); it needs only the SDK headers, GLib and json-glib,
 * so a sink built out of tree can take the two files as they are.
 *
 * Not thread-safe per `struct sinkfmt`: one per sink thread.
 */
#ifndef HPF_SINK_FORMAT_H
#define HPF_SINK_FORMAT_H

#include <stdbool.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <hpfriends/sink.h>

enum sinkfmt_kind {
    SINKFMT_RAW,        /* the payload bytes as published */
    SINKFMT_NORMALIZED, /* one JSON object in the normalized schema */
    SINKFMT_CEF,        /* ArcSight Common Event Format, one line */
    SINKFMT_SPLUNK,     /* key="value" pairs, one line */
};

/* "raw", "normalized", "cef", "splunk" -> *out; false for anything else. */
bool sinkfmt_parse(const char *word, enum sinkfmt_kind *out);
const char *sinkfmt_name(enum sinkfmt_kind kind);

/*
 * The normalized record of one message as a new JSON object (free with
 * json_object_unref): time, sensor, owner, channel, then the fields the
 * channel's mapping finds, then `raw` (or `raw_b64`) and `parse_error` when
 * the payload of a known channel does not parse, or `raw` alone for a
 * channel without a mapping.  Never NULL: no message is dropped.
 */
JsonObject *sinkfmt_normalize(const struct hpf_message *msg);

/* Appends msg in `kind` to out (no trailing newline). */
void sinkfmt_append(GString *out, enum sinkfmt_kind kind, const struct hpf_message *msg);

/*
 * The JSON envelope sink_file writes: {"time","ident","owner","channel",
 * "payload" or "payload_b64"}, for sinks whose transport needs text.
 */
void sinkfmt_append_envelope(GString *out, const struct hpf_message *msg);

/* Writes a JSON node as compact JSON (strings escaped per RFC 8259). */
void sinkfmt_append_json(GString *out, JsonNode *node);

/* "2026-11-26T22:50:39.958123Z" */
void sinkfmt_append_time(GString *out, int64_t time_us);

#endif
