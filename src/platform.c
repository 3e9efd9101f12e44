/*
 * platform.c - POSIX threads and the monotonic clock (see platform.h).
 */
#include "platform.h"

#include "util.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void yti_fatal(const char *what, int err)
{
    fprintf(stderr, "libyoton: fatal: %s: %s\n", what, strerror(err));
    abort();
}

void yti_mutex_init(yti_mutex *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
#ifndef NDEBUG
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
#endif
    int rc = pthread_mutex_init(&m->m, &a);
    pthread_mutexattr_destroy(&a);
    if (rc)
        yti_fatal("pthread_mutex_init", rc);
}

void yti_mutex_destroy(yti_mutex *m)
{
    int rc = pthread_mutex_destroy(&m->m);
    if (rc)
        yti_fatal("pthread_mutex_destroy", rc);
}

void yti_mutex_lock(yti_mutex *m)
{
    int rc = pthread_mutex_lock(&m->m);
    if (rc)
        yti_fatal("pthread_mutex_lock", rc);
}

bool yti_mutex_trylock(yti_mutex *m)
{
    int rc = pthread_mutex_trylock(&m->m);
    if (rc && rc != EBUSY)
        yti_fatal("pthread_mutex_trylock", rc);
    return rc == 0;
}

void yti_mutex_unlock(yti_mutex *m)
{
    int rc = pthread_mutex_unlock(&m->m);
    if (rc)
        yti_fatal("pthread_mutex_unlock", rc);
}

_Static_assert(sizeof(atomic_uint) == sizeof(int), "a futex word is 32 bits");

void yti_cond_init(yti_cond *c)
{
    atomic_init(&c->seq, 0);
    atomic_init(&c->waiters, 0);
}

void yti_cond_destroy(yti_cond *c)
{
    if (atomic_load(&c->waiters))
        yti_fatal("yti_cond_destroy", EBUSY);
}

static long futex(atomic_uint *word, int op, unsigned val, const struct timespec *ts)
{
    return syscall(SYS_futex, (unsigned *)word, op, val, ts, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* One sleep: false when the deadline passed. The caller holds m; it is held again on return. */
static bool cond_sleep(yti_cond *c, yti_mutex *m, uint64_t deadline)
{
    /* The waiter count goes up and seq is read while m is held: a signaller that changed the
     * state under m afterwards sees the count, and the futex sees its new seq. */
    atomic_fetch_add(&c->waiters, 1);
    unsigned seq = atomic_load(&c->seq);
    yti_mutex_unlock(m);
    struct timespec ts, *tsp = NULL;
    if (deadline != YTI_FOREVER) {
        ts.tv_sec = (time_t)(deadline / 1000000000u);
        ts.tv_nsec = (long)(deadline % 1000000000u);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute time on CLOCK_MONOTONIC (no FUTEX_CLOCK_REALTIME). */
    long rc = futex(&c->seq, FUTEX_WAIT_BITSET_PRIVATE, seq, tsp);
    int err = rc == -1 ? errno : 0;
    atomic_fetch_sub(&c->waiters, 1);
    yti_mutex_lock(m);
    if (rc == -1 && err != EAGAIN && err != EINTR && err != ETIMEDOUT)
        yti_fatal("futex wait", err);
    return err != ETIMEDOUT;
}

void yti_cond_wait(yti_cond *c, yti_mutex *m)
{
    cond_sleep(c, m, YTI_FOREVER);
}

bool yti_cond_until(yti_cond *c, yti_mutex *m, uint64_t deadline)
{
    if (deadline != YTI_FOREVER && yti_now() >= deadline)
        return false;
    return cond_sleep(c, m, deadline);
}

static void cond_wake(yti_cond *c, unsigned n)
{
    atomic_fetch_add(&c->seq, 1);
    if (atomic_load(&c->waiters))
        futex(&c->seq, FUTEX_WAKE_PRIVATE, n, NULL);
}

void yti_cond_signal(yti_cond *c)
{
    cond_wake(c, 1);
}

void yti_cond_broadcast(yti_cond *c)
{
    cond_wake(c, INT_MAX);
}

uint64_t yti_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t yti_deadline(double seconds)
{
    if (seconds < 0 || seconds != seconds)
        return YTI_FOREVER;
    uint64_t now = yti_now();
    double ns = seconds * 1e9;
    if (ns >= (double)(YTI_FOREVER - now))
        return YTI_FOREVER - 1;
    return now + (uint64_t)ns;
}

double yti_remaining(uint64_t deadline)
{
    if (deadline == YTI_FOREVER)
        return -1.0;
    uint64_t now = yti_now();
    return deadline > now ? (double)(deadline - now) / 1e9 : 0.0;
}

void yti_sleep(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

typedef struct thread_start {
    void *(*fn)(void *);
    void *arg;
    char name[16];
} thread_start;

static void *thread_trampoline(void *p)
{
    thread_start ts = *(thread_start *)p;
    free(p);
    if (ts.name[0])
        pthread_setname_np(pthread_self(), ts.name);
    return ts.fn(ts.arg);
}

int yti_thread_start(yti_thread *t, void *(*fn)(void *), void *arg, const char *name,
                     size_t stack_size)
{
    thread_start *ts = malloc(sizeof *ts);
    if (!ts)
        return yti_error(YT_ENOMEM, "Out of memory starting a thread");
    ts->fn = fn;
    ts->arg = arg;
    snprintf(ts->name, sizeof ts->name, "%s", name ? name : "");

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack_size ? stack_size : 256 * 1024);

    /* The new thread inherits this mask: block the signals a library thread must never take. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&t->t, &attr, thread_trampoline, ts);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc) {
        free(ts);
        atomic_store(&t->started, false);
        return yti_error_errno(YT_ESYS, rc, "Cannot start thread %s", name ? name : "");
    }
    atomic_store(&t->started, true);
    return YT_OK;
}

void yti_thread_join(yti_thread *t)
{
    if (!atomic_load(&t->started))
        return;
    int rc = pthread_join(t->t, NULL);
    if (rc)
        yti_fatal("pthread_join", rc);
    atomic_store(&t->started, false);
}

void yti_thread_detach(yti_thread *t)
{
    if (atomic_load(&t->started)) {
        pthread_detach(t->t);
        atomic_store(&t->started, false);
    }
}

bool yti_thread_is_self(const yti_thread *t)
{
    return atomic_load(&t->started) && pthread_equal(t->t, pthread_self());
}
