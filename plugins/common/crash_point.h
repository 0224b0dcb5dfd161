/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test-only crash points for the storage plugins.
 *
 * tests/system/test_kill_import.py proves that a process killed with
 * SIGKILL in the middle of a write (hpfriendsctl import, say) leaves the
 * previous consistent data.  Killing from outside at a random moment
 * rarely lands inside the short write itself, so the plugins name the
 * moments that matter, and the test asks for one of them through the
 * environment: HPF_TEST_CRASH_AT=NAME makes the process SIGKILL itself
 * there, exactly as kill -9 would.
 *
 * Nothing else reads HPF_TEST_CRASH_AT, and no configuration key or flag
 * leads here: unless that variable is set in the process's environment
 * this is one getenv() and a return.  Production never sets it.
 */
#ifndef HPF_CRASH_POINT_H
#define HPF_CRASH_POINT_H

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Is the crash point NAME the one asked for? */
static inline int hpf_crash_point_armed(const char *name)
{
    const char *at = getenv("HPF_TEST_CRASH_AT");
    return at && strcmp(at, name) == 0;
}

static inline void hpf_crash_point(const char *name)
{
    if (hpf_crash_point_armed(name))
        raise(SIGKILL);
}

#endif
