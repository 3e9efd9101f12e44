/*
 * pool_bench.c - the package pool in isolation (src/package.c): one thread makes packages, as
 * an application thread sending does, and hands them over a ring to a second thread that reads
 * their header and frees them, as a connection's sender thread does (in batches of up to 256,
 * yti_pkg_unref_many) or as a subscriber does (one at a time, yti_pkg_unref). Prints the time
 * per package. Internal API: links the static library.
 *
 *   pool_bench [--count N] [--size BYTES] [--single]
 */
#define _POSIX_C_SOURCE 200809L

#include "package.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 4096 /* a power of two */
#define BATCH 256

static yti_pkg *ring[RING];
static _Alignas(64) atomic_size_t written; /* packages put into the ring */
static _Alignas(64) atomic_size_t taken;   /* packages taken out of it */
static size_t count = 10000000, size = 16;
static int single;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *maker(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < count; i++) {
        yti_pkg *p = yti_pkg_new(size);
        if (!p) {
            fprintf(stderr, "pool_bench: out of memory\n");
            exit(1);
        }
        p->slot = i;
        p->data[0] = (unsigned char)i;
        while (i - atomic_load_explicit(&taken, memory_order_acquire) >= RING) {
        }
        ring[i % RING] = p;
        atomic_store_explicit(&written, i + 1, memory_order_release);
    }
    return NULL;
}

static void *freer(void *arg)
{
    (void)arg;
    yti_pkg *batch[BATCH];
    unsigned char hdr[YTI_HEADER_SIZE];
    size_t k = 0, r = 0;
    while (r < count) {
        size_t w = atomic_load_explicit(&written, memory_order_acquire);
        for (; r < w; r++) {
            yti_pkg *p = ring[r % RING];
            yti_header_encode_pkg(p, hdr);
            if (single) {
                yti_pkg_unref(p);
            } else {
                batch[k++] = p;
                if (k == BATCH) {
                    yti_pkg_unref_many(batch, k);
                    k = 0;
                }
            }
        }
        if (k) {
            yti_pkg_unref_many(batch, k);
            k = 0;
        }
        atomic_store_explicit(&taken, r, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--single"))
            single = 1;
        else {
            fprintf(stderr, "usage: pool_bench [--count N] [--size BYTES] [--single]\n");
            return 2;
        }
    }
    pthread_t a, b;
    double t0 = now();
    if (pthread_create(&a, NULL, maker, NULL) || pthread_create(&b, NULL, freer, NULL)) {
        fprintf(stderr, "pool_bench: cannot start threads\n");
        return 1;
    }
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    double dt = now() - t0;
    printf("RESULT mode=%s size=%zu count=%zu ns_per_pkg=%.1f pool=%d\n",
           single ? "single" : "batch", size, count, dt * 1e9 / (double)count,
           (int)yti_pkg_pool_enabled());
    return 0;
}
