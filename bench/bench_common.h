/*
 * bench_common.h - small helpers shared by the benchmark programs (not part of the library).
 *
 * Every benchmark program is one side of a two-process measurement on 127.0.0.1. A side that
 * listens prints "READY port=N" (or "READY ports=a,b,...") on stdout; every side ends by
 * printing one "RESULT key=value ..." line that bench/run.py parses. Times are CLOCK_MONOTONIC
 * seconds, which is one clock for every process of the machine, so the runner may subtract a
 * sender's start from a receiver's end. Nothing here is timed by CTest.
 */
#ifndef YT_BENCH_COMMON_H
#define YT_BENCH_COMMON_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Peak resident set of this process (KiB): VmHWM from /proc/self/status. (getrusage's
 * ru_maxrss is not used: Linux carries it across execve, so a child started by a big runner
 * would report the runner's peak.) */
static inline long bench_peak_rss_kb(void)
{
    char line[256];
    long kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Current resident set (KiB), from /proc/self/statm. */
static inline long bench_rss_kb(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * 4; /* 4 KiB pages on the machines this runs on */
}

/* User + system CPU seconds of the whole process. */
static inline double bench_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v and returns the q-quantile (0..1), nearest rank. */
static inline double bench_quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* "--name value" argument parsing: returns the value or def. */
static inline const char *bench_arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static inline long long bench_argl(int argc, char **argv, const char *name, long long def)
{
    const char *v = bench_arg(argc, argv, name, NULL);
    return v ? strtoll(v, NULL, 10) : def;
}

static inline double bench_argd(int argc, char **argv, const char *name, double def)
{
    const char *v = bench_arg(argc, argv, name, NULL);
    return v ? strtod(v, NULL) : def;
}

/* Common tail of every RESULT line. */
static inline void bench_result_tail(void)
{
    printf(" peak_rss_kb=%ld cpu_s=%.4f\n", bench_peak_rss_kb(), bench_cpu_s());
    fflush(stdout);
}

#endif
