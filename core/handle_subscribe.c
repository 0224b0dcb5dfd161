/* SUBSCRIBE and UNSUBSCRIBE. */
#include "broker.h"
#include "log.h"
#include "router.h"

/*
 * The channel of a SUBSCRIBE or UNSUBSCRIBE, or NULL (the connection
 * failed).  Its name runs to the frame's end, so unlike PUBLISH's it has no
 * length byte to bound it; a name over 255 bytes can never match a PUBLISH,
 * and would only be kept (in the subscription table, in events and logs).
 */
static char *sub_channel(struct conn *c, const struct wire_msg *m)
{
    if (m->channel.len > WIRE_MAX_NAME) {
        conn_fail(c, "bad-frame", "Bad frame: %s channel name of %zu bytes exceeds %u",
                  wire_op_name(m->op), m->channel.len, WIRE_MAX_NAME);
        return NULL;
    }
    return handle_channel(c, m);
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
