#include "platform.h"
#include "testutil.h"
#include "yoton.h"

#include <signal.h>

typedef struct waiter {
    yti_mutex m;
    yti_cond c;
    bool flag;
} waiter;

static void test_clock_monotonic(void)
{
    uint64_t a = yti_now();
    yti_sleep(0.02);
    uint64_t b = yti_now();
    CU_ASSERT(b - a >= 20000000u);
    CU_ASSERT(b - a < 2000000000u);
    CU_ASSERT_EQUAL(yti_deadline(-1), YTI_FOREVER);
    CU_ASSERT(yti_remaining(YTI_FOREVER) < 0);
    CU_ASSERT(yti_remaining(yti_deadline(10)) > 9.0);
    CU_ASSERT(yti_remaining(yti_now() - 1) == 0.0);
    /* Huge values saturate instead of wrapping into the past. */
    CU_ASSERT(yti_deadline(1e30) > yti_now());
}

static void test_cond_timeout(void)
{
    waiter w = {.flag = false};
    yti_mutex_init(&w.m);
    yti_cond_init(&w.c);
    yti_mutex_lock(&w.m);
    uint64_t t0 = yti_now();
    bool woke = yti_cond_until(&w.c, &w.m, t0 + 50000000u);
    uint64_t el = yti_now() - t0;
    yti_mutex_unlock(&w.m);
    CU_ASSERT_FALSE(woke);
    CU_ASSERT(el >= 50000000u);
    CU_ASSERT(el < 1000000000u);
    yti_cond_destroy(&w.c);
    yti_mutex_destroy(&w.m);
}

static void *setter(void *arg)
{
    waiter *w = arg;
    yti_sleep(0.02);
    yti_mutex_lock(&w->m);
    w->flag = true;
    yti_cond_broadcast(&w->c);
    yti_mutex_unlock(&w->m);
    /* The library's threads must have SIGPIPE blocked. */
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, SIGPIPE) ? arg : NULL;
}

static void test_thread_and_wake(void)
{
    waiter w = {.flag = false};
    yti_mutex_init(&w.m);
    yti_cond_init(&w.c);
    yti_thread t;
    CU_ASSERT_EQUAL(yti_thread_start(&t, setter, &w, "yt-test", 0), YT_OK);
    CU_ASSERT_FALSE(yti_thread_is_self(&t));
    yti_mutex_lock(&w.m);
    uint64_t dl = yti_deadline(5);
    while (!w.flag && yti_cond_until(&w.c, &w.m, dl)) {
    }
    CU_ASSERT_TRUE(w.flag);
    yti_mutex_unlock(&w.m);
    void *res = NULL;
    pthread_join(t.t, &res);
    t.started = false;
    CU_ASSERT_PTR_EQUAL(res, &w);
    yti_thread_join(&t); /* a joined thread is a no-op */
    yti_cond_destroy(&w.c);
    yti_mutex_destroy(&w.m);
}

void yt_suite_platform(void)
{
    static const yt_test_def t[] = {{"clock_monotonic", test_clock_monotonic},
                                    {"cond_timeout", test_cond_timeout},
                                    {"thread_and_wake", test_thread_and_wake},
                                    {NULL, NULL}};
    yt_add_suite("platform", t);
}
