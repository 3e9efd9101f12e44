/*
 * uid.c - context ids (spec 9) and the greeting line that carries them (spec 5).
 *
 * An id is T << 32 | R. T is a millisecond clock made strictly increasing within the process, as
 * in the reference, but mapped into [2^28, 2^32) instead of truncated to 32 bits: that keeps every
 * id >= 2^60, so its hex form always has 16 significant digits and a reference peer, which pads
 * ids on the right (Q2), still reads it exactly. T wraps every 2^32 - 2^28 ms (about 46.6 days)
 * instead of 2^32 ms. R is uniform in [0, 2^32 - 2] like the reference's randrange(0xFFFFFFFF).
 *
 * Threads: yti_uid_new is safe from any thread. The only shared state is the last millisecond
 * value handed out, advanced with an atomic compare-and-swap, so two calls never get the same T
 * and ids of one process are distinct whatever the random part (until T wraps).
 *
 * Randomness comes from getrandom(); if the kernel lacks it, from /dev/urandom; if that cannot be
 * read either (no /dev in a chroot), from a splitmix64 mix of the clock, the pid and a counter.
 * The last one is not unpredictable, but ids only need to be unique, not secret.
 */
#include "uid.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define T_LOW (UINT64_C(1) << 28)
#define T_SPAN ((UINT64_C(1) << 32) - T_LOW)

/* The last (unwrapped) millisecond value used for T; process-wide by design. */
static _Atomic uint64_t last_ms;
/* Distinguishes successive calls of the last-resort random source. */
static _Atomic uint64_t fallback_counter;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0; /* cannot happen with CLOCK_REALTIME; the counter below still advances */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t next_time_part(void)
{
    uint64_t now = wall_ms();
    uint64_t prev = atomic_load(&last_ms);
    uint64_t next;
    /* As the reference: the clock, or one more than last time if the clock has not moved on
     * (or went back). On failure the CAS reloads prev and we recompute. */
    do {
        next = now > prev ? now : prev + 1;
    } while (!atomic_compare_exchange_weak(&last_ms, &prev, next));
    return (uint32_t)(T_LOW + next % T_SPAN);
}

static bool read_urandom(void *buf, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return got == len;
}

static uint64_t splitmix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint32_t random32(void)
{
    uint32_t r;
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom((char *)&r + got, sizeof r - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == sizeof r)
        return r;
    if (read_urandom(&r, sizeof r))
        return r;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    seed ^= (uint64_t)getpid() << 32;
    seed ^= splitmix64(atomic_fetch_add(&fallback_counter, 1));
    return (uint32_t)(splitmix64(seed) >> 32);
}

uint64_t yti_uid_new(void)
{
    uint64_t t = next_time_part();
    uint32_t r;
    /* Rejecting the one value above 2^32 - 2 keeps R uniform over [0, 2^32 - 2]. */
    do {
        r = random32();
    } while (r == UINT32_MAX);
    return t << 32 | r;
}

size_t yti_greeting_format(uint64_t id, long pid, char *out)
{
    /* Left-padded to 16 digits (spec 5): exact for every id, and identical to the reference's
     * text for ids >= 2^60, which are all this library generates. */
    int n = snprintf(out, YTI_GREETING_MAX, "YOTON!%016" PRIx64 ".%ld\r\n", id, pid);
    /* At most 6 + 16 + 1 + 20 + 2 = 45 characters, so it always fits. */
    return n < 0 ? 0 : (size_t)n;
}
