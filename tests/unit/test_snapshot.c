/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Snapshot (core/snapshot.c): rows added by hand are copied and found again
 * by the look-ups the graph flattener, the console and hpfriendsctl use;
 * an authkey's owner counts as a user; the first authkey of an ident wins;
 * share type names parse and print both ways.
 */
#include <glib.h>
#include <string.h>

#include "../common/cunit_run.h"
#include "snapshot.h"

static struct snapshot *sample(void)
{
    struct snapshot *s = snapshot_new();
    snapshot_add_user(s, "alice", TRUE);
    snapshot_add_user(s, "bob", FALSE);
    snapshot_set_password(s, "alice", "hash-a");
    snapshot_add_group(s, "partners", "alice");
    snapshot_add_member(s, "partners", "bob");
    snapshot_add_share(s, "alice", "partners", TRUE, "cowrie.sessions", HPF_SHARE_ALL);
    snapshot_add_share(s, "bob", "alice", FALSE, "dionaea.capture", HPF_SHARE_SHARES);
    snapshot_add_accept(s, "bob", "alice", "cowrie.sessions");

    char ident[] = "sensor1", owner[] = "carol", secret[] = "s3cret";
    char p0[] = "cowrie.sessions", s0[] = "a", s1[] = "b";
    const char *pubs[] = {p0}, *subs[] = {s0, s1};
    struct hpf_authkey k = {.ident = ident,
                            .owner = owner,
                            .secret = secret,
                            .publish = pubs,
                            .n_publish = 1,
                            .subscribe = subs,
                            .n_subscribe = 2};
    snapshot_add_authkey(s, &k);
    /* The caller's buffers are not kept: change them after the copy. */
    strcpy(ident, "xxxxxxx");
    strcpy(p0, "changed.channel");
    struct hpf_authkey dup = {.ident = "sensor1", .owner = "dave", .secret = "other"};
    snapshot_add_authkey(s, &dup);
    return s;
}

static void test_users(void)
{
    struct snapshot *s = sample();
    CU_ASSERT(snapshot_has_user(s, "alice"));
    CU_ASSERT(snapshot_has_user(s, "bob"));
    CU_ASSERT(snapshot_has_user(s, "carol")); /* owns an authkey */
    CU_ASSERT(!snapshot_has_user(s, "partners"));
    CU_ASSERT(!snapshot_has_user(s, "eve"));
    CU_ASSERT(g_hash_table_contains(s->admins, "alice"));
    CU_ASSERT(!g_hash_table_contains(s->admins, "bob"));
    CU_ASSERT_STRING_EQUAL(g_hash_table_lookup(s->passwords, "alice"), "hash-a");
    CU_ASSERT_PTR_NULL(g_hash_table_lookup(s->passwords, "bob"));
    snapshot_free(s);
}

static void test_groups_members_accepts(void)
{
    struct snapshot *s = sample();
    const struct snap_group *g = snapshot_find_group(s, "partners");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->owner, "alice");
    CU_ASSERT_PTR_NULL(snapshot_find_group(s, "nobody"));
    CU_ASSERT(snapshot_is_member(s, "partners", "bob"));
    CU_ASSERT(!snapshot_is_member(s, "partners", "alice"));
    CU_ASSERT(!snapshot_is_member(s, "bob", "partners"));
    CU_ASSERT(snapshot_has_accept(s, "bob", "alice", "cowrie.sessions"));
    CU_ASSERT(!snapshot_has_accept(s, "alice", "bob", "cowrie.sessions"));
    CU_ASSERT(!snapshot_has_accept(s, "bob", "alice", "dionaea.capture"));
    CU_ASSERT_EQUAL(s->shares->len, 2);
    const struct snap_share *sh = s->shares->pdata[0];
    CU_ASSERT_STRING_EQUAL(sh->from, "alice");
    CU_ASSERT_STRING_EQUAL(sh->to, "partners");
    CU_ASSERT(sh->to_group);
    CU_ASSERT_EQUAL(sh->type, HPF_SHARE_ALL);
    snapshot_free(s);
}

static void test_authkeys(void)
{
    struct snapshot *s = sample();
    CU_ASSERT_EQUAL(s->authkeys->len, 2);
    const struct snap_authkey *k = g_hash_table_lookup(s->authkey_by_ident, "sensor1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k->owner, "carol"); /* the first of an ident wins */
    CU_ASSERT_STRING_EQUAL(k->secret, "s3cret");
    CU_ASSERT_EQUAL(k->publish->len, 1);
    CU_ASSERT_STRING_EQUAL(k->publish->pdata[0], "cowrie.sessions");
    CU_ASSERT_EQUAL(k->subscribe->len, 2);
    CU_ASSERT_STRING_EQUAL(k->subscribe->pdata[1], "b");
    CU_ASSERT_PTR_NULL(g_hash_table_lookup(s->authkey_by_ident, "xxxxxxx"));
    const struct snap_authkey *empty = s->authkeys->pdata[1];
    CU_ASSERT_EQUAL(empty->publish->len, 0);
    CU_ASSERT_EQUAL(empty->subscribe->len, 0);
    snapshot_free(s);
}

static void test_share_types(void)
{
    CU_ASSERT_EQUAL(share_type_parse("shares"), HPF_SHARE_SHARES);
    CU_ASSERT_EQUAL(share_type_parse("shares_all"), HPF_SHARE_ALL);
    CU_ASSERT_EQUAL(share_type_parse("shares_al"), -1);
    CU_ASSERT_EQUAL(share_type_parse(""), -1);
    CU_ASSERT_EQUAL(share_type_parse(share_type_name(HPF_SHARE_ALL)), HPF_SHARE_ALL);
    CU_ASSERT_EQUAL(share_type_parse(share_type_name(HPF_SHARE_SHARES)), HPF_SHARE_SHARES);
}

static void test_empty(void)
{
    struct snapshot *s = snapshot_new();
    CU_ASSERT(!snapshot_has_user(s, "alice"));
    CU_ASSERT_PTR_NULL(snapshot_find_group(s, "g"));
    CU_ASSERT(!snapshot_is_member(s, "g", "alice"));
    CU_ASSERT(!snapshot_has_accept(s, "a", "b", "c"));
    snapshot_free(s);
    snapshot_free(NULL);
}

int main(void)
{
    static const struct test_case cases[] = {
        {"users, admins, passwords; an authkey owner is a user", test_users},
        {"groups, members, shares, accepts", test_groups_members_accepts},
        {"authkeys copied, first of an ident wins", test_authkeys},
        {"share type names both ways", test_share_types},
        {"an empty snapshot", test_empty},
        {NULL, NULL},
    };
    return cunit_run("snapshot", cases);
}
