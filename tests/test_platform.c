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

/* A bounded counter handed between one producer and several consumers, each consumer waking on
 * yti_cond_signal only: a lost wake-up leaves a token untaken and the test times out. Half the
 * signals come after the unlock, as the library's deferred wake-ups do. */
enum { STRESS_TOKENS = 20000, STRESS_CONSUMERS = 4 };

typedef struct stress {
    yti_mutex m;
    yti_cond c;
    int tokens, taken, done_producing;
    int per[STRESS_CONSUMERS];
} stress;

typedef struct stress_arg {
    stress *s;
    int i;
} stress_arg;

static void *stress_consumer(void *arg)
{
    stress_arg *a = arg;
    stress *s = a->s;
    uint64_t dl = yti_deadline(30);
    yti_mutex_lock(&s->m);
    for (;;) {
        while (s->tokens == 0 && !s->done_producing && yti_now() < dl)
            yti_cond_until(&s->c, &s->m, dl);
        if (s->tokens == 0)
            break;
        s->tokens--;
        s->taken++;
        s->per[a->i]++;
    }
    yti_mutex_unlock(&s->m);
    return NULL;
}

static void test_cond_no_lost_wakeup(void)
{
    stress s = {.tokens = 0};
    yti_mutex_init(&s.m);
    yti_cond_init(&s.c);
    yti_thread t[STRESS_CONSUMERS];
    stress_arg a[STRESS_CONSUMERS];
    for (int i = 0; i < STRESS_CONSUMERS; i++) {
        a[i] = (stress_arg){&s, i};
        CU_ASSERT_FATAL(yti_thread_start(&t[i], stress_consumer, &a[i], "yt-test", 0) == YT_OK);
    }
    for (int i = 0; i < STRESS_TOKENS; i++) {
        yti_mutex_lock(&s.m);
        s.tokens++;
        if (i & 1) {
            yti_cond_signal(&s.c);
            yti_mutex_unlock(&s.m);
        } else {
            yti_mutex_unlock(&s.m);
            yti_cond_signal(&s.c);
        }
    }
    /* Every token is taken before the producer says it is done. */
    uint64_t dl = yti_deadline(30);
    for (;;) {
        yti_mutex_lock(&s.m);
        int taken = s.taken;
        yti_mutex_unlock(&s.m);
        if (taken == STRESS_TOKENS || yti_now() > dl)
            break;
        yti_sleep(0.001);
    }
    yti_mutex_lock(&s.m);
    CU_ASSERT_EQUAL(s.taken, STRESS_TOKENS);
    CU_ASSERT_EQUAL(s.tokens, 0);
    s.done_producing = 1;
    yti_cond_broadcast(&s.c);
    yti_mutex_unlock(&s.m);
    for (int i = 0; i < STRESS_CONSUMERS; i++)
        yti_thread_join(&t[i]);
    yti_cond_destroy(&s.c);
    yti_mutex_destroy(&s.m);
}

/* A deadline already passed returns false without sleeping; a signal with nobody waiting is
 * not remembered (the next wait still times out). */
static void test_cond_past_deadline(void)
{
    waiter w = {.flag = false};
    yti_mutex_init(&w.m);
    yti_cond_init(&w.c);
    yti_cond_signal(&w.c);
    yti_cond_broadcast(&w.c);
    yti_mutex_lock(&w.m);
    CU_ASSERT_FALSE(yti_cond_until(&w.c, &w.m, yti_now() - 1));
    CU_ASSERT_FALSE(yti_cond_until(&w.c, &w.m, 0));
    uint64_t t0 = yti_now();
    CU_ASSERT_FALSE(yti_cond_until(&w.c, &w.m, t0 + 20000000u));
    CU_ASSERT(yti_now() - t0 >= 20000000u);
    yti_mutex_unlock(&w.m);
    yti_cond_destroy(&w.c);
    yti_mutex_destroy(&w.m);
}

void yt_suite_platform(void)
{
    static const yt_test_def t[] = {{"clock_monotonic", test_clock_monotonic},
                                    {"cond_timeout", test_cond_timeout},
                                    {"thread_and_wake", test_thread_and_wake},
                                    {"cond_no_lost_wakeup", test_cond_no_lost_wakeup},
                                    {"cond_past_deadline", test_cond_past_deadline},
                                    {NULL, NULL}};
    yt_add_suite("platform", t);
}
