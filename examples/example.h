/*
 * example.h - the process plumbing shared by the example programs. None of this is yoton: it
 * starts processes, stamps the transcript and fails loudly. Read the examples for yoton.
 *
 * Each example is one program that plays every role of its network: the first process starts
 * the others by running its own executable again (found through /proc/self/exe) with a role
 * name and the port to connect to. Every process prints to the same terminal, one whole line
 * per write() (so lines from different processes never mix), stamped with the seconds since
 * the first process started (the start time is handed down in the environment;
 * CLOCK_MONOTONIC is the same clock in every process), so the transcript reads in order.
 *
 * Every process arms a watchdog (alarm): a process that is still running after EX_WATCHDOG
 * seconds has hung, and SIGALRM ends it. The first process reaps every child it started and
 * fails when one of them failed.
 */
#ifndef YT_EXAMPLE_H
#define YT_EXAMPLE_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <yoton.h>

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EX_WATCHDOG 30 /* seconds */
#define EX_MAX_CHILDREN 8

static double ex_t0;
static const char *ex_who = "main";
static const char *ex_prog = "example";
static char ex_self[4096]; /* this program's path, read from /proc/self/exe */
static pid_t ex_pids[EX_MAX_CHILDREN];
static const char *ex_roles[EX_MAX_CHILDREN];
static int ex_nchildren;

static inline double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds since the first process of the example started. */
static inline double ex_elapsed(void)
{
    return ex_now() - ex_t0;
}

/* Call first: names this process in the transcript, starts (or inherits) the clock and arms
 * the watchdog. */
static inline void ex_start(const char *argv0, const char *who)
{
    ex_prog = argv0;
    ex_who = who;
    /* The path, rather than exec'ing "/proc/self/exe" itself: under valgrind that link names
     * valgrind, while reading it gives the program (valgrind answers for it). */
    ssize_t n = readlink("/proc/self/exe", ex_self, sizeof ex_self - 1);
    ex_self[n > 0 ? n : 0] = '\0';
    const char *t = getenv("YT_EXAMPLE_T0");
    if (t) {
        ex_t0 = strtod(t, NULL);
    } else {
        char buf[64];
        ex_t0 = ex_now();
        snprintf(buf, sizeof buf, "%.9f", ex_t0);
        setenv("YT_EXAMPLE_T0", buf, 1);
    }
    alarm(EX_WATCHDOG);
}

/* One transcript line: "[ 0.123] who       text". One write per line, so the lines of several
 * processes sharing a pipe never interleave. */
static void ex_vsay_as(const char *who, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), unused));
static void ex_vsay_as(const char *who, const char *fmt, va_list ap)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "[%6.3f] %-9s ", ex_elapsed(), who);
    if (n >= 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = strlen(line);
    if (len + 1 < sizeof line) {
        line[len++] = '\n';
        line[len] = '\0';
    }
    /* Straight to the descriptor, not through stdout: a kernel may have redirected stdout. */
    (void)!write(STDOUT_FILENO, line, len);
}

/* A transcript line in the name of this process. */
static void ex_say(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void ex_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ex_vsay_as(ex_who, fmt, ap);
    va_end(ap);
}

/* A transcript line in the name of `who` (for several actors in one process). */
static void ex_say_as(const char *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));
static void ex_say_as(const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ex_vsay_as(who, fmt, ap);
    va_end(ap);
}

/* Kills and reaps every child started so far (used on failure). */
static inline void ex_kill_children(void)
{
    for (int i = 0; i < ex_nchildren; i++) {
        if (ex_pids[i] > 0) {
            kill(ex_pids[i], SIGKILL);
            waitpid(ex_pids[i], NULL, 0);
            ex_pids[i] = 0;
        }
    }
}

/* Reports a failure, ends the children and exits with status 1. */
static void ex_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn, unused));
static void ex_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "%s (%s): FAILED: %s\n", ex_prog, ex_who, msg);
    ex_kill_children();
    exit(1);
}

/* Fails unless a yoton call returned YT_OK, with the library's detail of the failure. */
static inline void ex_ok(int rc, const char *what)
{
    if (rc != YT_OK)
        ex_fail("%s returned %s: %s", what, yt_strerror(rc), yt_last_error());
}

/* Starts this program again as `role` with up to three more arguments (NULL ends the list). */
static inline pid_t ex_spawn(const char *role, const char *a1, const char *a2, const char *a3)
{
    if (ex_nchildren == EX_MAX_CHILDREN)
        ex_fail("too many children");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        ex_fail("fork failed");
    if (pid == 0) {
        execl(ex_self, ex_prog, role, a1, a2, a3, (char *)NULL);
        perror(ex_self);
        _exit(127);
    }
    ex_pids[ex_nchildren] = pid;
    ex_roles[ex_nchildren++] = role;
    return pid;
}

/*
 * Waits up to timeout seconds for every child to exit, running the default event loop
 * meanwhile (so signal handlers of this process keep running). Returns the number of children
 * that failed (exit status not 0, killed, or still running at the deadline: those are killed).
 */
static inline int ex_reap_all(double timeout)
{
    double end = ex_now() + timeout;
    int failed = 0, left = 0;
    for (int i = 0; i < ex_nchildren; i++)
        left += ex_pids[i] > 0;
    while (left > 0) {
        for (int i = 0; i < ex_nchildren; i++) {
            int status;
            if (ex_pids[i] <= 0 || waitpid(ex_pids[i], &status, WNOHANG) != ex_pids[i])
                continue;
            ex_pids[i] = 0;
            left--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                failed++;
                if (WIFSIGNALED(status))
                    fprintf(stderr, "%s: child '%s' died of signal %d\n", ex_prog, ex_roles[i],
                            WTERMSIG(status));
                else
                    fprintf(stderr, "%s: child '%s' exited with status %d\n", ex_prog,
                            ex_roles[i], WEXITSTATUS(status));
            }
        }
        if (left == 0)
            break;
        if (ex_now() > end) {
            for (int i = 0; i < ex_nchildren; i++)
                if (ex_pids[i] > 0)
                    fprintf(stderr, "%s: child '%s' still running: killed\n", ex_prog,
                            ex_roles[i]);
            failed += left;
            ex_kill_children();
            break;
        }
        yt_loop_process(yt_loop_default(), 0.02);
    }
    ex_nchildren = 0;
    return failed;
}

/* Runs the default event loop until pred(arg) holds or timeout seconds passed; returns pred's
 * last value. */
static inline bool ex_wait_for(bool (*pred)(void *), void *arg, double timeout)
{
    double end = ex_now() + timeout;
    while (!pred(arg)) {
        if (ex_now() > end)
            return pred(arg);
        yt_loop_process(yt_loop_default(), 0.02);
    }
    return true;
}

static inline bool ex_connected(void *conn)
{
    return yt_connection_is_connected(conn);
}

/* "localhost:<port>" into buf. */
static inline const char *ex_address(char *buf, size_t size, int port)
{
    snprintf(buf, size, "localhost:%d", port);
    return buf;
}

#endif
