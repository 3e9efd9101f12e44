/*
 * Suite "uid": context ids (yti_uid_new) and the greeting line (yti_greeting_format), including
 * every line of tests/vectors/handshake.txt.
 */
#include "testutil.h"
#include "uid.h"
#include "util.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Data lines in tests/vectors/handshake.txt. */
#define HANDSHAKE_LINES 14

#define T_LOW (UINT64_C(1) << 28)
#define T_SPAN ((UINT64_C(1) << 32) - T_LOW)
#define TWO60 (UINT64_C(1) << 60)

static uint64_t time_part(uint64_t id)
{
    return id >> 32;
}

/* How far time part b is after a, modulo the wrap of the time part (uid.h). */
static uint64_t t_after(uint64_t a, uint64_t b)
{
    return ((b + T_SPAN) - a) % T_SPAN;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts ids in place and counts adjacent duplicates. */
static size_t count_duplicates(uint64_t *ids, size_t n)
{
    qsort(ids, n, sizeof ids[0], cmp_u64);
    size_t dups = 0;
    for (size_t i = 1; i < n; i++)
        dups += ids[i] == ids[i - 1];
    return dups;
}

/* The time part follows the wall clock in milliseconds, mapped into [2^28, 2^32). It may run
 * ahead of the clock (by one millisecond per id made faster than the clock ticks, as in the
 * reference), never behind. */
static void test_clock(void)
{
    uint64_t before = wall_ms();
    uint64_t id = yti_uid_new();
    uint64_t mapped = T_LOW + before % T_SPAN;
    CU_ASSERT(id >= TWO60);
    /* Ids made earlier in this process may have pushed it ahead; a million ms is far more than
     * the whole test run makes. */
    CU_ASSERT(t_after(mapped, time_part(id)) < 1000000u);
}

#define MANY 100000

static void test_many(void)
{
    uint64_t *ids = malloc(MANY * sizeof *ids);
    uint32_t *rnd = malloc(MANY * sizeof *rnd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rnd);
    size_t below = 0, not_increasing = 0, bad_random = 0, high_half = 0;
    for (size_t i = 0; i < MANY; i++) {
        ids[i] = yti_uid_new();
        uint64_t t = time_part(ids[i]);
        rnd[i] = (uint32_t)ids[i];
        below += ids[i] < TWO60 || t < T_LOW;
        bad_random += rnd[i] > UINT32_C(0xFFFFFFFE);
        high_half += rnd[i] >= UINT32_C(0x80000000);
        /* Strictly increasing: one step forward at least, and never a jump back (which modulo
         * the wrap would look like a huge step forward). */
        if (i > 0) {
            uint64_t d = t_after(time_part(ids[i - 1]), t);
            not_increasing += d == 0 || d > 1000000u;
        }
    }
    CU_ASSERT_EQUAL(below, 0);
    CU_ASSERT_EQUAL(not_increasing, 0);
    CU_ASSERT_EQUAL(bad_random, 0);
    /* The random part is random: both halves of the range occur (the chance that one does not is
     * 2^-100000), and 100,000 draws from 2^32 - 1 values collide about once on average; more
     * than 20 collisions has probability far below 1e-20. */
    CU_ASSERT(high_half > 0 && high_half < MANY);
    CU_ASSERT_EQUAL(count_duplicates(ids, MANY), 0);
    uint64_t *r64 = malloc(MANY * sizeof *r64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r64);
    for (size_t i = 0; i < MANY; i++)
        r64[i] = rnd[i];
    CU_ASSERT(count_duplicates(r64, MANY) < 20);
    free(r64);
    free(rnd);
    free(ids);
}

#define THREADS 4
#define PER_THREAD 25000

static void *make_ids(void *arg)
{
    uint64_t *out = arg;
    for (size_t i = 0; i < PER_THREAD; i++)
        out[i] = yti_uid_new();
    return NULL;
}

static void test_threads(void)
{
    uint64_t *ids = malloc(THREADS * PER_THREAD * sizeof *ids);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, make_ids, ids + i * PER_THREAD), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* Each thread sees its own ids in increasing time order ... */
    size_t not_increasing = 0;
    for (int k = 0; k < THREADS; k++)
        for (size_t i = 1; i < PER_THREAD; i++) {
            uint64_t d = t_after(time_part(ids[k * PER_THREAD + i - 1]),
                                 time_part(ids[k * PER_THREAD + i]));
            not_increasing += d == 0 || d > 1000000u;
        }
    CU_ASSERT_EQUAL(not_increasing, 0);
    /* ... and no two threads ever got the same time part, so no id repeats. */
    uint64_t *times = malloc(THREADS * PER_THREAD * sizeof *times);
    CU_ASSERT_PTR_NOT_NULL_FATAL(times);
    for (size_t i = 0; i < THREADS * PER_THREAD; i++)
        times[i] = time_part(ids[i]);
    CU_ASSERT_EQUAL(count_duplicates(times, THREADS * PER_THREAD), 0);
    CU_ASSERT_EQUAL(count_duplicates(ids, THREADS * PER_THREAD), 0);
    free(times);
    free(ids);
}

static void test_greeting_format(void)
{
    char buf[YTI_GREETING_MAX];
    size_t n = yti_greeting_format(UINT64_C(0x0123456789abcdef), 4242, buf);
    CU_ASSERT_STRING_EQUAL(buf, "YOTON!0123456789abcdef.4242\r\n");
    CU_ASSERT_EQUAL(n, strlen(buf));
    n = yti_greeting_format(UINT64_MAX, 1, buf);
    CU_ASSERT_STRING_EQUAL(buf, "YOTON!ffffffffffffffff.1\r\n");
    CU_ASSERT_EQUAL(n, 26);
    n = yti_greeting_format(0, 0, buf);
    CU_ASSERT_STRING_EQUAL(buf, "YOTON!0000000000000000.0\r\n");
    /* The longest possible line still fits YTI_GREETING_MAX with its NUL. */
    n = yti_greeting_format(UINT64_MAX, LONG_MIN, buf);
    CU_ASSERT_EQUAL(n, strlen(buf));
    CU_ASSERT(n < YTI_GREETING_MAX);
    char want[64];
    snprintf(want, sizeof want, "YOTON!ffffffffffffffff.%ld\r\n", LONG_MIN);
    CU_ASSERT_STRING_EQUAL(buf, want);
    /* A fresh id reads back exactly, whatever padding a peer uses (>= 2^60: 16 digits). */
    uint64_t id = yti_uid_new(), got = 0;
    long pid = 0;
    yti_greeting_format(id, 99, buf);
    CU_ASSERT_EQUAL(strlen(buf), 6 + 16 + 1 + 2 + 2);
    CU_ASSERT_EQUAL(yti_greeting_parse(buf, strlen(buf), 1, &got, &pid), YTI_HS_OK);
    CU_ASSERT_EQUAL(got, id);
    CU_ASSERT_EQUAL(pid, 99);
}

/* Every line of handshake.txt: true id, pid, the reference's greeting, the id and pid a
 * reference peer reads from it. */
static void test_vectors(void)
{
    yt_vec_file *f = yt_vec_open("handshake.txt");
    if (!f)
        return;
    const uint64_t own = UINT64_C(0xa5a5a5a5a5a5a5a5); /* not any id of the file */
    int lines = 0, exact = 0, padded = 0;
    const yt_vec_line *l;
    while ((l = yt_vec_next(f)) != NULL) {
        lines++;
        CU_ASSERT_EQUAL_FATAL(l->nfields, 5);
        uint64_t id = strtoull(l->field[0], NULL, 16);
        long pid = strtol(l->field[1], NULL, 10);
        uint64_t believed = strtoull(l->field[3], NULL, 16);
        long believed_pid = strtol(l->field[4], NULL, 10);

        char ours[YTI_GREETING_MAX], want[128], theirs[128];
        size_t n = yti_greeting_format(id, pid, ours);
        /* Ours: the true id as 16 digits padded on the left (the file's first column). */
        snprintf(want, sizeof want, "YOTON!%s.%s\r\n", l->field[0], l->field[1]);
        CU_ASSERT_STRING_EQUAL(ours, want);
        CU_ASSERT_EQUAL(n, strlen(want));
        snprintf(theirs, sizeof theirs, "%s\r\n", l->field[2]);
        if (id >= TWO60 || id == 0) {
            /* 16 significant digits (or zero): left and right padding agree, so our greeting
             * is the reference's byte for byte. */
            exact++;
            CU_ASSERT_STRING_EQUAL(ours, theirs);
            CU_ASSERT_EQUAL(believed, id);
        } else {
            /* Below 2^60 the reference pads on the right (Q2) and a peer misreads it; we pad on
             * the left on purpose, which the reference reads correctly. */
            padded++;
            CU_ASSERT_STRING_NOT_EQUAL(ours, theirs);
            CU_ASSERT_NOT_EQUAL(believed, id);
        }
        /* Parsing our text gives the true id back ... */
        uint64_t got = 0;
        long got_pid = -1;
        CU_ASSERT_EQUAL(yti_greeting_parse(ours, n, own, &got, &got_pid), YTI_HS_OK);
        CU_ASSERT_EQUAL(got, id);
        CU_ASSERT_EQUAL(got_pid, pid);
        /* ... and parsing the reference's gives what the reference believes (column 4). */
        got = 0;
        got_pid = -1;
        CU_ASSERT_EQUAL(yti_greeting_parse(theirs, strlen(theirs), own, &got, &got_pid),
                        YTI_HS_OK);
        CU_ASSERT_EQUAL(got, believed);
        CU_ASSERT_EQUAL(got_pid, believed_pid);
    }
    yt_vec_close(f);
    CU_ASSERT_EQUAL(lines, HANDSHAKE_LINES);
    CU_ASSERT_EQUAL(exact, 6);
    CU_ASSERT_EQUAL(padded, 8);
}

void yt_suite_uid(void)
{
    static const yt_test_def t[] = {{"clock", test_clock},
                                    {"many_ids", test_many},
                                    {"threads", test_threads},
                                    {"greeting_format", test_greeting_format},
                                    {"handshake_vectors", test_vectors},
                                    {NULL, NULL}};
    yt_add_suite("uid", t);
}
