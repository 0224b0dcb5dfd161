/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Router: channel -> subscribers.  Knows nothing about connections; a
 * subscriber is an opaque pointer.  O(1) subscribe and unsubscribe,
 * subscribers of a channel kept in an array for a tight fanout loop.
 */
#ifndef HPF_ROUTER_H
#define HPF_ROUTER_H

#include <glib.h>

struct router;

struct router *router_new(void);
void router_free(struct router *r);

/** FALSE when sub was already subscribed to chan (no change). */
gboolean router_subscribe(struct router *r, const char *chan, void *sub);
/** FALSE when sub was not subscribed to chan (no change). */
gboolean router_unsubscribe(struct router *r, const char *chan, void *sub);

/**
 * Subscribers of chan, or NULL when none.  Valid until the next
 * subscribe/unsubscribe; do not keep it across those.
 */
const GPtrArray *router_subscribers(struct router *r, const char *chan);

/** Does sub receive what the view is asked for (ctx: the caller's question). */
typedef gboolean (*router_keep_fn)(void *sub, void *ctx);

/**
 * The subscribers of chan that keep() accepts, for a question named key
 * (e.g. a publisher's owner), decided once and cached: keep() runs again
 * only after chan's subscribers changed or when stamp differs from the
 * stamp the view was made under (the caller changes it whenever keep()'s
 * answers may have changed).  At most ROUTER_MAX_VIEWS keys are kept per
 * channel.  NULL when chan has no subscribers.  Valid as router_subscribers'
 * answer is.
 */
#define ROUTER_MAX_VIEWS 64
const GPtrArray *router_view(struct router *r, const char *chan, const char *key, guint64 stamp,
                             router_keep_fn keep, void *ctx);

/**
 * Called when a channel gets its first subscriber (on) and when it loses
 * its last one (!on), whoever causes it; fn must not subscribe or
 * unsubscribe.  NULL turns it off.
 */
typedef void (*router_interest_fn)(void *data, const char *chan, gboolean on);
void router_set_interest(struct router *r, router_interest_fn fn, void *data);

guint router_channel_count(const struct router *r);
/** Total subscriptions over all channels. */
guint router_subscription_count(const struct router *r);

#endif
