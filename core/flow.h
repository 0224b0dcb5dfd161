/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow health: recent traffic per authkey, in memory only.  A series counts
 * one kind of event (messages published on a channel, messages delivered,
 * sessions opened) for one ident in 60 one-minute and 24 one-hour buckets,
 * so the console can say "published 1,234 in the last hour on
 * dionaea.captures" and when a key last connected or published.  Series
 * are bounded in number: past the cap, the least recently counted one is
 * reused for the new pair.  Nothing survives a restart.  Loop thread only.
 */
#ifndef HPF_FLOW_H
#define HPF_FLOW_H

#include <glib.h>

#define FLOW_MINUTES    60
#define FLOW_HOURS      24
/* Series kept at most: ~150 bytes each plus the names, and 450 more for the
 * buckets of those counted at two moments or more; a few MiB in all. */
#define FLOW_MAX_SERIES 8192

enum flow_kind {
    FLOW_PUBLISHED, /* messages an ident published on a channel */
    FLOW_DELIVERED, /* messages delivered to an ident (channel "") */
    FLOW_CONNECTED, /* sessions an ident opened (channel "") */
};

struct flow_key {
    const char *ident, *chan; /* owned by the series (the key of the table) */
    enum flow_kind kind;
};

struct flow_series {
    struct flow_key key;
    char *owner;   /* the key's owner when the series was made (an ident changes hands) */
    guint gen;     /* bumped each time the series is reused for another key */
    gint64 last;   /* unix seconds of the last count; 0: never */
    guint64 total; /* since the series was made */
    /* The buckets, made at the first count in a second other than last's:
     * until then every count of the series was in the second last (most
     * series of sessions opened count one, an idle sensor's connect). */
    struct flow_rings *rings;
    GList link; /* place in the recency list; data is the series */
};

enum flow_ring { FLOW_RING_MINUTES, FLOW_RING_HOURS };

struct flow_rings {
    /* The unit (unix seconds / its span) each ring runs up to: the minute
     * minutes[] ends at, the hour hours[] ends at. */
    gint64 at[2];
    guint32 minutes[FLOW_MINUTES];
    guint64 hours[FLOW_HOURS];
};

struct flow;

/** A table of at most max_series series (at least 1). */
struct flow *flow_new(guint max_series);
void flow_free(struct flow *f);
/**
 * The series of (kind, ident, chan), made when missing: past the cap the
 * least recently counted series is taken over (its gen changes, so holders
 * of a pointer to it can tell).  Never NULL.
 */
struct flow_series *flow_series(struct flow *f, enum flow_kind kind, const char *ident,
                                const char *chan, const char *owner);
/** Count n at now (unix seconds): constant time, no allocation. */
void flow_count(struct flow *f, struct flow_series *s, guint64 n, gint64 now);
/** flow_series() then flow_count(); nothing for a NULL ident. */
void flow_note(struct flow *f, enum flow_kind kind, const char *ident, const char *chan,
               const char *owner, guint64 n, gint64 now);
/** Counts of the current minute and the 59 before it. */
guint64 flow_last_hour(const struct flow_series *s, gint64 now);
/** Counts of the current hour and the 23 before it. */
guint64 flow_last_day(const struct flow_series *s, gint64 now);
/** Each series, most recently counted first. */
void flow_foreach(const struct flow *f, void (*fn)(const struct flow_series *s, void *data),
                  void *data);
guint flow_size(const struct flow *f);
/**
 * Forget the series keep() declines, given their ident and owner (a
 * deleted authkey, or one given to another user, who must not see the old
 * counts).  Their memory stays, to be reused first.
 */
void flow_forget(struct flow *f, gboolean (*keep)(const char *ident, const char *owner, void *data),
                 void *data);
/** When the table was made (unix seconds): the counts cover no time before it. */
gint64 flow_since(const struct flow *f);

#endif
