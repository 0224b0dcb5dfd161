/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The checks of a storage mutation that need no stored data; see
 * mutation_check.h.  Every name and secret passes hpf_name_check(), the
 * rule the front ends apply too.  The order below is the order the errors win in.
 */
#include "mutation_check.h"

#include <hpfriends/names.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

/* The fields a mutation may require, in the order they are checked. */
enum field { F_END, F_USER, F_GROUP, F_TARGET, F_CHANNEL, F_IDENT };

static const struct rule {
    const char *name;
    struct {
        enum field field;
        const char *what;
    } need[3];
} rules[MUT_OP_COUNT] = {
    [HPF_MUT_USER_ADD] = {"user_add", {{F_USER, "user name"}}},
    [HPF_MUT_USER_DEL] = {"user_del", {{F_USER, "user name"}}},
    [HPF_MUT_GROUP_ADD] = {"group_add", {{F_GROUP, "group name"}, {F_USER, "group owner"}}},
    [HPF_MUT_GROUP_DEL] = {"group_del", {{F_GROUP, "group name"}}},
    [HPF_MUT_MEMBER_ADD] = {"member_add", {{F_GROUP, "group name"}, {F_USER, "user name"}}},
    [HPF_MUT_MEMBER_DEL] = {"member_del", {{F_GROUP, "group name"}, {F_USER, "user name"}}},
    [HPF_MUT_SHARE_ADD] = {"share_add",
                           {{F_USER, "sharing user"},
                            {F_TARGET, "share target"},
                            {F_CHANNEL, "channel"}}},
    [HPF_MUT_SHARE_DEL] = {"share_del",
                           {{F_USER, "sharing user"},
                            {F_TARGET, "share target"},
                            {F_CHANNEL, "channel"}}},
    [HPF_MUT_ACCEPT_ADD] = {"accept_add",
                            {{F_USER, "accepting user"},
                             {F_TARGET, "offering user"},
                             {F_CHANNEL, "channel"}}},
    [HPF_MUT_ACCEPT_DEL] = {"accept_del",
                            {{F_USER, "accepting user"},
                             {F_TARGET, "offering user"},
                             {F_CHANNEL, "channel"}}},
    [HPF_MUT_AUTHKEY_ADD] = {"authkey_add", {{F_IDENT, "authkey ident"}}},
    [HPF_MUT_AUTHKEY_DEL] = {"authkey_del", {{F_IDENT, "authkey ident"}}},
    [HPF_MUT_CLEAR] = {"clear", {{F_END, NULL}}},
    [HPF_MUT_USER_SET_ADMIN] = {"user_set_admin", {{F_USER, "user name"}}},
    [HPF_MUT_USER_SET_PASSWORD] = {"user_set_password", {{F_USER, "user name"}}},
    [HPF_MUT_DECLINE_ADD] = {"decline_add",
                             {{F_USER, "declining user"},
                              {F_TARGET, "offering user"},
                              {F_CHANNEL, "channel"}}},
    [HPF_MUT_DECLINE_DEL] = {"decline_del",
                             {{F_USER, "declining user"},
                              {F_TARGET, "offering user"},
                              {F_CHANNEL, "channel"}}},
    [HPF_MUT_AUDIT] = {"audit", {{F_END, NULL}}},
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
invalid(char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return HPF_ERR_INVALID;
}

static const char *field_value(const struct hpf_mutation *m, enum field f)
{
    switch (f) {
    case F_USER:
        return m->user;
    case F_GROUP:
        return m->group;
    case F_TARGET:
        return m->target;
    case F_CHANNEL:
        return m->channel;
    case F_IDENT:
        return m->authkey ? m->authkey->ident : NULL;
    case F_END:
        break;
    }
    return NULL;
}

/*
 * Refused values are not repeated in err: they may hold exactly what must
 * not reach a log or a terminal.
 */
static int check_channels(const char *ident, const char *what, const char *const *chans, size_t n,
                          char *err, size_t err_len)
{
    if (n > 0 && !chans)
        return invalid(err, err_len, "authkey '%s': %s list is missing", ident, what);
    if (n > HPF_KEY_CHANNELS_MAX)
        return invalid(err, err_len, "authkey '%s': %zu %s channels, more than %d", ident, n, what,
                       HPF_KEY_CHANNELS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!chans[i] || !*chans[i])
            return invalid(err, err_len, "authkey '%s': empty %s channel", ident, what);
        const char *why = hpf_name_check(chans[i], HPF_NAME_MAX);
        if (why)
            return invalid(err, err_len, "authkey '%s': %s channel %zu %s", ident, what, i + 1,
                           why);
    }
    return HPF_OK;
}

/*
 * What a mutation removes is matched against what is stored, whatever that
 * holds (data from before the rule, or written by other tools): only what
 * it adds must pass the name rule, so bad names can still be deleted.
 */
static int removes(int op)
{
    return op == HPF_MUT_USER_DEL || op == HPF_MUT_GROUP_DEL || op == HPF_MUT_MEMBER_DEL ||
           op == HPF_MUT_SHARE_DEL || op == HPF_MUT_ACCEPT_DEL || op == HPF_MUT_AUTHKEY_DEL ||
           op == HPF_MUT_DECLINE_DEL;
}

/* The name a mutation creates is held to the stricter rule of new names. */
static const char *name_check(int op, enum field f, const char *v)
{
    if (removes(op))
        return NULL;
    if ((op == HPF_MUT_USER_ADD && f == F_USER) || (op == HPF_MUT_GROUP_ADD && f == F_GROUP))
        return hpf_principal_name_check(v, HPF_NAME_MAX);
    return hpf_name_check(v, HPF_NAME_MAX);
}

const char *mut_op_name(int op)
{
    if (op <= 0 || op >= MUT_OP_COUNT)
        return NULL;
    return rules[op].name;
}

int mut_check_batch(const struct hpf_mutation *mutations, size_t n, char *err, size_t err_len)
{
    if (err && err_len > 0)
        err[0] = '\0';
    if (n > 0 && !mutations)
        return invalid(err, err_len, "apply: no mutations");
    return HPF_OK;
}

/*
 * An audit record: who and what are required, every text is shown to
 * people (console, terminal), so it passes the name rule, at a larger bound.
 */
static int check_audit(const struct hpf_audit_record *r, char *err, size_t err_len)
{
    if (!r)
        return invalid(err, err_len, "audit: no record");
    static const struct {
        size_t offset;
        const char *what;
        size_t max;
        bool required;
    } texts[] = {
        {offsetof(struct hpf_audit_record, actor), "actor", HPF_AUDIT_TEXT_MAX, true},
        {offsetof(struct hpf_audit_record, user), "user", HPF_NAME_MAX, false},
        {offsetof(struct hpf_audit_record, action), "action", HPF_NAME_MAX, true},
        {offsetof(struct hpf_audit_record, object), "object", HPF_AUDIT_TEXT_MAX, false},
        {offsetof(struct hpf_audit_record, detail), "detail", HPF_AUDIT_TEXT_MAX, false},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *v = *(const char *const *)((const char *)r + texts[i].offset);
        if ((!v || !*v) && !texts[i].required)
            continue;
        const char *why = hpf_name_check(v, texts[i].max);
        if (why)
            return invalid(err, err_len, "audit: %s %s", texts[i].what, why);
    }
    return HPF_OK;
}

uint32_t mut_audit_keep(const struct hpf_mutation *m)
{
    return m->audit->keep ? m->audit->keep : HPF_AUDIT_KEEP_DEFAULT;
}

bool mut_audit_query_ok(const struct hpf_audit_query *q)
{
    return q && q->limit >= 1 && q->limit <= HPF_AUDIT_LIST_MAX;
}

int mut_check(const struct hpf_mutation *m, char *err, size_t err_len)
{
    const char *name = mut_op_name(m->op);
    if (!name)
        return invalid(err, err_len, "apply: unknown mutation %d", m->op);
    const struct rule *r = &rules[m->op];
    if (m->op == HPF_MUT_AUDIT)
        return check_audit(m->audit, err, err_len);

    /* Said apart from "ident is empty": there is no key to have one. */
    if (m->op == HPF_MUT_AUTHKEY_ADD && !m->authkey)
        return invalid(err, err_len, "authkey_add: no authkey");

    for (size_t i = 0; i < sizeof r->need / sizeof r->need[0] && r->need[i].field != F_END; i++) {
        const char *v = field_value(m, r->need[i].field);
        if (!v || !*v)
            return invalid(err, err_len, "%s: %s is empty", name, r->need[i].what);
        const char *why = name_check(m->op, r->need[i].field, v);
        if (why)
            return invalid(err, err_len, "%s: %s %s", name, r->need[i].what, why);
    }

    if (m->op == HPF_MUT_SHARE_ADD) {
        if (m->share_type != HPF_SHARE_SHARES && m->share_type != HPF_SHARE_ALL)
            return invalid(err, err_len, "share_add: unknown share type %d", m->share_type);
        if (!m->target_is_group && !strcmp(m->user, m->target))
            return invalid(err, err_len, "user '%s' cannot share with itself", m->user);
    }

    if (m->op == HPF_MUT_USER_SET_PASSWORD && m->password &&
        hpf_name_check(m->password, HPF_SECRET_MAX))
        return invalid(err, err_len, "user_set_password: password hash %s",
                       hpf_name_check(m->password, HPF_SECRET_MAX));

    if (m->op == HPF_MUT_AUTHKEY_ADD) {
        const struct hpf_authkey *k = m->authkey;
        if (!k->secret || !*k->secret)
            return invalid(err, err_len, "authkey '%s': secret is empty", k->ident);
        const char *why = hpf_name_check(k->secret, HPF_SECRET_MAX);
        if (why)
            return invalid(err, err_len, "authkey '%s': secret %s", k->ident, why);
        why = k->owner && *k->owner ? hpf_name_check(k->owner, HPF_NAME_MAX) : NULL;
        if (why)
            return invalid(err, err_len, "authkey '%s': owner %s", k->ident, why);
        int status = check_channels(k->ident, "publish", k->publish, k->n_publish, err, err_len);
        if (status == HPF_OK)
            status =
                check_channels(k->ident, "subscribe", k->subscribe, k->n_subscribe, err, err_len);
        return status;
    }
    return HPF_OK;
}

const char *mut_key_owner(const char *owner, const char *ident)
{
    return owner && *owner ? owner : ident;
}

bool mut_counters_ok(const struct hpf_counters *deltas, size_t n)
{
    if (n > 0 && !deltas)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!deltas[i].ident)
            return false;
    return true;
}
