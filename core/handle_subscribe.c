/* SPDX-License-Identifier: BSD-3-Clause */
/* SUBSCRIBE and UNSUBSCRIBE. */
#include "broker.h"
#include "log.h"
#include "router.h"

/* The channel of a SUBSCRIBE or UNSUBSCRIBE on the heap (the subscription
 * table keeps it), or NULL (the connection failed). */
static char *sub_channel(struct conn *c, const struct wire_msg *m)
{
    char buf[WIRE_MAX_NAME + 1];
    return handle_channel(c, m, buf) ? g_strdup(buf) : NULL;
}

gboolean handle_subscribe(struct conn *c, const struct wire_msg *m)
{
    if (!handle_check_ident(c, m))
        return FALSE;
    char *chan = sub_channel(c, m);
    if (!chan)
        return FALSE;
    if (!g_hash_table_contains(c->may_subscribe, chan)) {
        gboolean go_on = handle_denied(c, DENY_SUB, chan);
        g_free(chan);
        return go_on;
    }
    if (router_subscribe(c->b->router, chan, c)) {
        g_hash_table_add(c->subscribed, chan);
        log_debug("%s@%s: subscribed to %s", c->ident, c->peer, chan);
    } else {
        g_free(chan);
    }
    return TRUE;
}

gboolean handle_unsubscribe(struct conn *c, const struct wire_msg *m)
{
    if (!handle_check_ident(c, m))
        return FALSE;
    char *chan = sub_channel(c, m);
    if (!chan)
        return FALSE;
    if (router_unsubscribe(c->b->router, chan, c))
        g_hash_table_remove(c->subscribed, chan);
    g_free(chan);
    return TRUE;
}
