/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the daemon needs to run as a system service: switching for good to
 * the unprivileged [broker] user once the listeners are bound (and checking
 * that root cannot come back), the pid file (locked with fcntl for the
 * life of the process, so a second broker on the same file refuses to
 * start, and a stale file left by a crash is simply taken over), and the
 * sd_notify protocol: READY=1, RELOADING=1/READY=1 around SIGHUP,
 * STOPPING=1, STATUS= lines and WATCHDOG=1 pings from a timer on the event
 * loop, so that a stuck loop, not just a dead process, gets the broker
 * restarted.  Built without libsystemd, or started without NOTIFY_SOCKET,
 * the notifications cost nothing and do nothing.
 */
#include "autoconfig.h"

#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"

/* ---- the user ---- */

static gboolean fail_key(GError **error, const struct config *cfg, const char *key, const char *fmt,
                         ...) G_GNUC_PRINTF(4, 5);

static gboolean fail_key(GError **error, const struct config *cfg, const char *key, const char *fmt,
                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, CONFIG_ERROR, 0, "[broker] %s: %s", key, why);
    g_free(why);
    config_prefix_error(cfg, error);
    return FALSE;
}

/* getpwnam(3): these errno values also just mean "not found". */
static const char *lookup_error(int err)
{
    return (err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM)
               ? ""
               : g_strerror(err);
}

gboolean service_identity_resolve(const struct config *cfg, struct service_identity *id,
                                  GError **error)
{
    memset(id, 0, sizeof *id);
    if (!cfg->user) {
        if (cfg->group)
            return fail_key(error, cfg, "group", "needs [broker] user (or --user) as well");
        return TRUE;
    }
    errno = 0;
    const struct passwd *pw = getpwnam(cfg->user);
    if (!pw) {
        const char *why = lookup_error(errno);
        return fail_key(error, cfg, "user", "no such user '%s'%s%s", cfg->user, *why ? ": " : "",
                        why);
    }
    if (pw->pw_uid == 0)
        return fail_key(error, cfg, "user", "'%s' is root (uid 0): name an unprivileged user",
                        cfg->user);
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    if (cfg->group) {
        errno = 0;
        const struct group *gr = getgrnam(cfg->group);
        if (!gr) {
            const char *why = lookup_error(errno);
            return fail_key(error, cfg, "group", "no such group '%s'%s%s", cfg->group,
                            *why ? ": " : "", why);
        }
        id->gid = gr->gr_gid;
    }
    if (id->gid == 0)
        return fail_key(error, cfg, cfg->group ? "group" : "user",
                        "the group would be root (gid 0): name an unprivileged group");
    id->user = g_strdup(cfg->user);
    return TRUE;
}

void service_identity_clear(struct service_identity *id)
{
    g_free(id->user);
    memset(id, 0, sizeof *id);
}

static gboolean already_there(const struct service_identity *id)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    return getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0 && ru == id->uid &&
           eu == id->uid && su == id->uid && rg == id->gid && eg == id->gid && sg == id->gid;
}

/* Groups first: once the uid is no longer 0 they cannot be changed. */
static gboolean switch_user(const struct service_identity *id, GError **error)
{
    const char *step = NULL;
    if (initgroups(id->user, id->gid) != 0)
        step = "set the supplementary groups";
    else if (setresgid(id->gid, id->gid, id->gid) != 0)
        step = "set the group id";
    else if (setresuid(id->uid, id->uid, id->uid) != 0)
        step = "set the user id";
    if (!step)
        return TRUE;
    int err = errno;
    g_set_error(error, CONFIG_ERROR, 0,
                "cannot switch to user %s (uid %u, gid %u): cannot %s: %s%s", id->user,
                (unsigned)id->uid, (unsigned)id->gid, step, g_strerror(err),
                err == EPERM ? " (switching users needs root; or start as that user)" : "");
    return FALSE;
}

/* The switch must be one way: if root can come back, something is wrong. */
static gboolean verify_dropped(const struct service_identity *id, GError **error)
{
    const char *why = NULL;
    if (!already_there(id))
        why = "real, effective or saved ids differ from the ones asked for";
    else if (setuid(0) == 0 || seteuid(0) == 0)
        why = "uid 0 could be regained";
    else if (setgid(0) == 0 || setegid(0) == 0)
        why = "gid 0 could be regained";
    int n = why ? 0 : getgroups(0, NULL);
    gid_t *groups = g_new0(gid_t, n > 0 ? n : 1);
    if (n > 0)
        n = getgroups(n, groups);
    if (n < 0)
        why = "cannot read the supplementary groups";
    for (int i = 0; i < n && !why; i++)
        if (groups[i] == 0)
            why = "the user is a member of group root (gid 0)";
    g_free(groups);
    if (!why)
        return TRUE;
    g_set_error(error, CONFIG_ERROR, 0, "switching to user %s: %s: refusing to run", id->user, why);
    return FALSE;
}

gboolean service_drop_privileges(const struct config *cfg, GError **error)
{
    struct service_identity id;
    if (!service_identity_resolve(cfg, &id, error))
        return FALSE;
    if (!id.user)
        return TRUE;
    gboolean ok = TRUE;
    if (already_there(&id))
        log_info("service: running as %s (uid %u, gid %u) already", id.user, (unsigned)id.uid,
                 (unsigned)id.gid);
    else
        ok = switch_user(&id, error);
    ok = ok && verify_dropped(&id, error);
    if (ok)
        log_notice("service: now running as user %s (uid %u, gid %u)", id.user, (unsigned)id.uid,
                   (unsigned)id.gid);
    service_identity_clear(&id);
    return ok;
}

/* ---- the pid file ---- */

struct pidfile {
    char *path;
    int fd;
};

/* The pid of the process holding a lock on fd's file, or 0. */
static pid_t lock_holder(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
        return fl.l_pid;
    return 0;
}

static void set_held_error(GError **error, const char *path, pid_t pid)
{
    g_set_error(error, CONFIG_ERROR, 0,
                "pid file %s: held by running process %ld: is another hpfriendsd using it?", path,
                (long)pid);
}

gboolean service_pidfile_check(const char *path, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return TRUE; /* missing or unreadable: acquiring it will tell */
    pid_t pid = lock_holder(fd);
    close(fd);
    if (pid > 0) {
        set_held_error(error, path, pid);
        return FALSE;
    }
    return TRUE;
}

/*
 * As root, a missing directory (/run/hpfriends when not started by systemd)
 * is made for the user we switch to, so that the pid file can still be
 * removed after the switch.
 */
static void make_parent(const char *path, const struct service_identity *id)
{
    char *dir = g_path_get_dirname(path);
    if (geteuid() == 0 && id && id->user && !g_file_test(dir, G_FILE_TEST_EXISTS)) {
        if (mkdir(dir, 0755) == 0) {
            if (chown(dir, id->uid, id->gid) != 0)
                log_warn("service: pid file directory %s: chown: %s", dir, g_strerror(errno));
        } else {
            log_warn("service: pid file directory %s: %s", dir, g_strerror(errno));
        }
    }
    g_free(dir);
}

static gboolean write_pid(int fd, GError **error)
{
    char buf[32];
    int n = g_snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        g_set_error(error, CONFIG_ERROR, 0, "%s", g_strerror(errno ? errno : EIO));
        return FALSE;
    }
    return TRUE;
}

struct pidfile *service_pidfile_acquire(const char *path, const struct service_identity *id,
                                        GError **error)
{
    make_parent(path, id);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        g_set_error(error, CONFIG_ERROR, 0, "pid file %s: %s", path, g_strerror(errno));
        return NULL;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int err = errno;
        pid_t pid = (err == EAGAIN || err == EACCES) ? lock_holder(fd) : 0;
        if (pid > 0)
            set_held_error(error, path, pid);
        else
            g_set_error(error, CONFIG_ERROR, 0, "pid file %s: cannot lock: %s", path,
                        g_strerror(err));
        close(fd);
        return NULL;
    }
    GError *e = NULL;
    if (!write_pid(fd, &e)) {
        g_set_error(error, CONFIG_ERROR, 0, "pid file %s: %s", path, e->message);
        g_error_free(e);
        unlink(path);
        close(fd);
        return NULL;
    }
    struct pidfile *pf = g_new0(struct pidfile, 1);
    pf->path = g_strdup(path);
    pf->fd = fd;
    return pf;
}

void service_pidfile_release(struct pidfile *pf)
{
    if (!pf)
        return;
    if (unlink(pf->path) != 0 && errno != ENOENT) {
        /* The directory is not ours after the switch: leave an empty file. */
        log_notice("service: cannot remove pid file %s (%s): emptied instead", pf->path,
                   g_strerror(errno));
        if (ftruncate(pf->fd, 0) != 0)
            log_warn("service: pid file %s: %s", pf->path, g_strerror(errno));
    }
    close(pf->fd); /* drops the lock */
    g_free(pf->path);
    g_free(pf);
}

/* ---- detaching, with the start's outcome reported to the parent ---- */

/* The child's end of the pipe the parent reads; -1 when not detached. */
static int report_fd = -1;

/* The parent: wait for one report, then exit with it.  'R' is ready; any
 * other bytes are the error text; nothing at all means the child died. */
static void G_GNUC_NORETURN wait_for_child(int fd)
{
    GString *got = g_string_new(NULL);
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || got->len > 4096)
            break;
        g_string_append_len(got, buf, n);
    }
    if (got->len == 1 && got->str[0] == 'R')
        _exit(0);
    if (got->len > 1 && got->str[0] == 'E')
        fprintf(stderr, "hpfriendsd: %s\n", got->str + 1);
    else
        fprintf(stderr, "hpfriendsd: the detached broker stopped before it was ready "
                        "(see the system log)\n");
    _exit(1);
}

gboolean service_daemonize(void)
{
    int p[2];
    if (pipe(p) != 0)
        return FALSE;
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(p[0]);
        close(p[1]);
        errno = saved;
        return FALSE;
    }
    if (pid > 0) {
        close(p[1]);
        wait_for_child(p[0]);
    }
    close(p[0]);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    report_fd = p[1];
    /* The rest of daemon(3): a session of its own, /, no terminal streams. */
    if (setsid() < 0 || chdir("/") != 0)
        return FALSE;
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        return FALSE;
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO)
        close(null);
    return TRUE;
}

static void report(const char *what, size_t len)
{
    if (report_fd < 0)
        return;
    while (len > 0) {
        ssize_t n = write(report_fd, what, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        what += n;
        len -= (size_t)n;
    }
    close(report_fd);
    report_fd = -1;
}

void service_daemon_ready(void) { report("R", 1); }

void service_daemon_failed(const char *why)
{
    char *text = g_strdup_printf("E%s", why ? why : "start-up failed");
    report(text, strlen(text));
    g_free(text);
}

/* ---- systemd ---- */

static struct event *watchdog_ev;

static void notify(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
    if (!g_getenv("NOTIFY_SOCKET"))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    int rc = sd_notify(0, msg);
    if (rc < 0) {
        static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60);
        if (log_ratelimit_ok(&rl, NULL))
            log_warn("service: sd_notify: %s", g_strerror(-rc));
    }
    g_free(msg);
#else
    (void)fmt;
#endif
}

/* A STATUS= value is one line. */
static char *one_line(const char *s)
{
    char *t = g_strdup(s ? s : "");
    g_strdelimit(t, "\r\n", ' ');
    return t;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg) { notify("WATCHDOG=1"); }

static void watchdog_start(struct event_base *base)
{
#ifdef HAVE_SYSTEMD
    uint64_t usec = 0;
    if (watchdog_ev || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    /* Twice per period, as sd_watchdog_enabled(3) advises. */
    uint64_t half = usec / 2;
    struct timeval tv = {(time_t)(half / G_USEC_PER_SEC), (suseconds_t)(half % G_USEC_PER_SEC)};
    watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
    if (watchdog_ev)
        evtimer_add(watchdog_ev, &tv);
    log_info("service: watchdog: pinging every %.3f s", (double)half / G_USEC_PER_SEC);
#else
    (void)base;
#endif
}

void service_notify_ready(struct event_base *base, const char *status)
{
    char *st = one_line(status);
    notify("READY=1\nSTATUS=%s", st);
    g_free(st);
    watchdog_start(base);
}

void service_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    guint64 usec = (guint64)ts.tv_sec * G_USEC_PER_SEC + (guint64)ts.tv_nsec / 1000;
    notify("RELOADING=1\nMONOTONIC_USEC=%" G_GUINT64_FORMAT "\nSTATUS=reloading", usec);
}

void service_notify_reloaded(const char *status)
{
    char *st = one_line(status);
    notify("READY=1\nSTATUS=%s", st);
    g_free(st);
}

void service_notify_stopping(const char *status)
{
    char *st = one_line(status);
    notify("STOPPING=1\nSTATUS=%s", st);
    g_free(st);
}

void service_notify_status(const char *status)
{
    char *st = one_line(status);
    notify("STATUS=%s", st);
    g_free(st);
}

void service_notify_close(void)
{
    if (watchdog_ev) {
        event_free(watchdog_ev);
        watchdog_ev = NULL;
    }
}
