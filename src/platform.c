/*
 * platform.c - POSIX threads and the monotonic clock (see platform.h).
 */
#include "platform.h"

#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void yti_cond_init(yti_cond *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->c, &a);
    pthread_condattr_destroy(&a);
    if (rc)
        yti_fatal("pthread_cond_init", rc);
}

void yti_cond_destroy(yti_cond *c)
{
    int rc = pthread_cond_destroy(&c->c);
    if (rc)
        yti_fatal("pthread_cond_destroy", rc);
}

void yti_cond_wait(yti_cond *c, yti_mutex *m)
{
    int rc = pthread_cond_wait(&c->c, &m->m);
    if (rc)
        yti_fatal("pthread_cond_wait", rc);
}

bool yti_cond_until(yti_cond *c, yti_mutex *m, uint64_t deadline)
{
    if (deadline == YTI_FOREVER) {
        yti_cond_wait(c, m);
        return true;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline / 1000000000u);
    ts.tv_nsec = (long)(deadline % 1000000000u);
    int rc = pthread_cond_timedwait(&c->c, &m->m, &ts);
    if (rc == ETIMEDOUT)
        return false;
    if (rc)
        yti_fatal("pthread_cond_timedwait", rc);
    return true;
}

void yti_cond_signal(yti_cond *c)
{
    pthread_cond_signal(&c->c);
}

void yti_cond_broadcast(yti_cond *c)
{
    pthread_cond_broadcast(&c->c);
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
