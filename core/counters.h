/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-authkey traffic counters: what each ident published and received and
 * the broker has not saved to storage yet.  Connections count their own
 * traffic (struct conn); it moves here when they close and before every
 * save, and a save hands the table to storage on the worker thread.
 * Loop thread only.
 */
#ifndef HPF_COUNTERS_H
#define HPF_COUNTERS_H

#include <glib.h>

#include <hpfriends/storage.h>

struct broker;
struct conn;
struct counters;

struct counters *counters_new(void);
void counters_free(struct counters *cs);
/** Add d's counts (d->ident is not read) to ident's; NULL ident or all zero: nothing. */
void counters_add(struct counters *cs, const char *ident, const struct hpf_counters *d);
/** ident's counts in the table (zeros and FALSE when it has none); out->ident is ident. */
gboolean counters_get(const struct counters *cs, const char *ident, struct hpf_counters *out);
/** Idents in the table. */
guint counters_size(const struct counters *cs);
/** Empty the table into an array of struct hpf_counters whose idents the array owns. */
GArray *counters_take(struct counters *cs);
/** Free what counters_take returned. */
void counters_array_free(GArray *a);

/** Move a connection's traffic into the broker's table. */
void counters_collect(struct broker *b, struct conn *c);
/** counters_collect() for every connection (flow health's delivered counts catch up too). */
void counters_collect_all(struct broker *b);
/** Hand the broker's table to storage; synchronously when `now`. */
void counters_flush(struct broker *b, gboolean now);
/**
 * What the broker counts and has not saved, per ident: its table plus the
 * live connections' own.  ident (owned) -> struct hpf_counters (owned; its
 * ident is the key).
 */
GHashTable *counters_unsaved(struct broker *b);

#endif
