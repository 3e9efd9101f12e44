/*
 * platform.h - threads, locks, condition variables and the monotonic clock.
 *
 * The only place that includes <pthread.h>. Every wait is an absolute deadline on
 * CLOCK_MONOTONIC in nanoseconds (YTI_FOREVER = no deadline). Wrappers abort on pthread errors
 * that can only come from a bug (unlocking a mutex not held, destroying a busy one), so callers
 * never carry error paths for them.
 */
#ifndef YT_PLATFORM_H
#define YT_PLATFORM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YTI_FOREVER UINT64_MAX

typedef struct yti_mutex {
    pthread_mutex_t m;
} yti_mutex;

typedef struct yti_cond {
    pthread_cond_t c;
} yti_cond;

typedef struct yti_thread {
    pthread_t t;
    /* Atomic: yti_thread_is_self() may run on other threads while the owner joins it. */
    atomic_bool started;
} yti_thread;

void yti_mutex_init(yti_mutex *m);
void yti_mutex_destroy(yti_mutex *m);
void yti_mutex_lock(yti_mutex *m);
void yti_mutex_unlock(yti_mutex *m);
/* Takes m if it is free; true when taken. Never waits. */
bool yti_mutex_trylock(yti_mutex *m);

void yti_cond_init(yti_cond *c);
void yti_cond_destroy(yti_cond *c);
void yti_cond_wait(yti_cond *c, yti_mutex *m);
/* Waits until signalled or deadline (monotonic ns) passes; returns false on time-out. */
bool yti_cond_until(yti_cond *c, yti_mutex *m, uint64_t deadline);
void yti_cond_signal(yti_cond *c);
void yti_cond_broadcast(yti_cond *c);

/* Monotonic clock in nanoseconds. */
uint64_t yti_now(void);
/* now + seconds; YTI_FOREVER for negative seconds; now for 0. Saturates instead of wrapping. */
uint64_t yti_deadline(double seconds);
/* Seconds between now and deadline (0 when passed, negative for YTI_FOREVER). */
double yti_remaining(uint64_t deadline);
/* Sleeps for seconds (monotonic, retried on EINTR). */
void yti_sleep(double seconds);

/*
 * Starts a thread with SIGPIPE (and the other asynchronous signals a library must not steal:
 * SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGUSR1/2) blocked, named `name` (at most 15 characters) and
 * with the given stack size (0 = 256 KiB). Returns YT_OK or YT_ESYS/YT_ENOMEM.
 */
int yti_thread_start(yti_thread *t, void *(*fn)(void *), void *arg, const char *name,
                     size_t stack_size);
/* Joins a started thread; does nothing for one never started. Must not be its own thread. */
void yti_thread_join(yti_thread *t);
/* Detaches a started thread: nobody joins it; its resources go when it returns. */
void yti_thread_detach(yti_thread *t);
/* True when called on thread t. */
bool yti_thread_is_self(const yti_thread *t);

#endif
