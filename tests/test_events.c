/*
 * Tests of the event system: loop ordering, blocking and waking, signals (threads, coalescing,
 * unbinding, lifetime), timers, embedding and closing a loop under blocked threads.
 *
 * Timing checks use a tight lower bound and a loose upper bound, so they hold under valgrind and
 * the sanitizers.
 */
#include "platform.h"
#include "core.h"
#include "testutil.h"
#include "yoton.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Test seam in events.c: threads blocked waiting on the loop. */

static yt_loop *new_loop(void)
{
    yt_loop *l = NULL;
    CU_ASSERT_EQUAL_FATAL(yt_loop_new(&l), YT_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    return l;
}

static double since(uint64_t t0)
{
    return (double)(yti_now() - t0) / 1e9;
}

/* Processes l until *c reaches target or max seconds pass; returns *c. */
static int process_until(yt_loop *l, atomic_int *c, int target, double max)
{
    uint64_t end = yti_deadline(max);
    while (atomic_load(c) < target && yti_now() < end)
        yt_loop_process(l, 0.01);
    return atomic_load(c);
}

/* Processes l for about `seconds`. */
static void process_for(yt_loop *l, double seconds)
{
    uint64_t end = yti_deadline(seconds);
    double left;
    while ((left = yti_remaining(end)) > 0)
        yt_loop_process(l, left);
}

/* Waits (without processing) until pred-like counter reaches target; false on time-out. */
static bool wait_count(atomic_int *c, int target, double max)
{
    uint64_t end = yti_deadline(max);
    while (atomic_load(c) < target) {
        if (yti_now() >= end)
            return false;
        yti_sleep(0.001);
    }
    return true;
}

static bool wait_blocked(yt_loop *l, size_t n, double max)
{
    uint64_t end = yti_deadline(max);
    while (yti_loop_waiting(l) < n) {
        if (yti_now() >= end)
            return false;
        yti_sleep(0.001);
    }
    return true;
}

/* ---- recording calls in order ---- */

typedef struct rec {
    int order[64];
    int n;
    yt_loop *loop;
    uint64_t at[64];
} rec;

typedef struct tag {
    rec *r;
    int id;
} tag;

static void rec_call(void *p)
{
    tag *t = p;
    if (t->r->n < 64) {
        t->r->at[t->r->n] = yti_now();
        t->r->order[t->r->n++] = t->id;
    }
}

static void counter_cb(void *p)
{
    atomic_fetch_add((atomic_int *)p, 1);
}

/* FIFO for delay 0; a negative delay goes to the front (latest first). */
static void test_fifo_order(void)
{
    yt_loop *l = new_loop();
    rec r = {.n = 0};
    tag t[5];
    for (int i = 0; i < 5; i++)
        t[i] = (tag){&r, i};
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, rec_call, &t[1]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, rec_call, &t[2]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, -1, rec_call, &t[0]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, rec_call, &t[3]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, -0.5, rec_call, &t[4]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 5);
    static const int want[] = {4, 0, 1, 2, 3};
    CU_ASSERT_EQUAL(r.n, 5);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(r.order[i], want[i]);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    yt_loop_free(l);
}

typedef struct poster {
    yt_loop *l;
    tag front, back;
} poster;

static void post_two(void *p)
{
    poster *ps = p;
    CU_ASSERT_EQUAL(yt_loop_call_later(ps->l, 0, rec_call, &ps->back), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(ps->l, -1, rec_call, &ps->front), YT_OK);
}

/* Events queued by a handler (even at the front) wait for the next call. */
static void test_handler_posts_run_next_call(void)
{
    yt_loop *l = new_loop();
    rec r = {.n = 0};
    poster ps = {l, {&r, 1}, {&r, 2}};
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, post_two, &ps), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    CU_ASSERT_EQUAL(r.n, 0);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 2);
    CU_ASSERT_EQUAL(r.n, 2);
    CU_ASSERT_EQUAL(r.order[0], 1);
    CU_ASSERT_EQUAL(r.order[1], 2);
    yt_loop_free(l);
}

/* ---- signals ---- */

#define EMITTERS 4
#define EMITS 1000

typedef struct emit_ctx {
    yt_signal *sig;
    pthread_t main;
    int source_marker;
    unsigned char seen[2][EMITTERS * EMITS];
    int count[2];
    int bad;
} emit_ctx;

typedef struct emitter {
    emit_ctx *ctx;
    int id;
    int failures;
} emitter;

static void *emit_thread(void *p)
{
    emitter *e = p;
    for (int i = 0; i < EMITS; i++) {
        char text[32];
        int flag = e->id * EMITS + i;
        snprintf(text, sizeof text, "%d", flag);
        if (yt_signal_emit(e->ctx->sig, flag, text) != YT_OK)
            e->failures++;
    }
    return NULL;
}

static void check_emission(emit_ctx *c, int h, const yt_event *ev)
{
    char text[32];
    snprintf(text, sizeof text, "%d", ev->flag);
    if (!pthread_equal(pthread_self(), c->main) || ev->signal != c->sig ||
        ev->source != &c->source_marker || ev->flag < 0 || ev->flag >= EMITTERS * EMITS ||
        !ev->text || strcmp(ev->text, text) != 0) {
        c->bad++;
        return;
    }
    c->seen[h][ev->flag]++;
    c->count[h]++;
}

static void emit_h0(const yt_event *ev, void *user)
{
    check_emission(user, 0, ev);
}

static void emit_h1(const yt_event *ev, void *user)
{
    check_emission(user, 1, ev);
}

/* 4 threads x 1000 emissions while the main thread processes: every emission reaches every
 * handler exactly once, intact, on the processing thread. */
static void test_emit_from_threads(void)
{
    yt_loop *l = new_loop();
    emit_ctx *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->main = pthread_self();
    CU_ASSERT_EQUAL(yt_signal_new(l, &c->source_marker, false, &c->sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c->sig, emit_h0, c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c->sig, emit_h1, c), YT_OK);
    pthread_t th[EMITTERS];
    emitter em[EMITTERS];
    for (int i = 0; i < EMITTERS; i++) {
        em[i] = (emitter){c, i, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, emit_thread, &em[i]), 0);
    }
    uint64_t end = yti_deadline(20);
    while ((c->count[0] < EMITTERS * EMITS || c->count[1] < EMITTERS * EMITS) &&
           yti_now() < end)
        yt_loop_process(l, 0.01);
    for (int i = 0; i < EMITTERS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(em[i].failures, 0);
    }
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    CU_ASSERT_EQUAL(c->bad, 0);
    CU_ASSERT_EQUAL(c->count[0], EMITTERS * EMITS);
    CU_ASSERT_EQUAL(c->count[1], EMITTERS * EMITS);
    int once = 0;
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < EMITTERS * EMITS; i++)
            once += c->seen[h][i] == 1;
    CU_ASSERT_EQUAL(once, 2 * EMITTERS * EMITS);
    yt_signal_free(c->sig);
    free(c);
    yt_loop_free(l);
}

typedef struct sig_ctx {
    yt_signal *sig;
    int calls;
    int calls2;
    int reemit;
    int last_flag;
    const char *last_text_was_null;
    pthread_t thread;
    int order[8];
    int norder;
} sig_ctx;

static void count_h(const yt_event *ev, void *user)
{
    sig_ctx *c = user;
    c->calls++;
    c->last_flag = ev->flag;
    c->thread = pthread_self();
    if (c->norder < 8)
        c->order[c->norder++] = 1;
    if (c->reemit > 0) {
        c->reemit--;
        CU_ASSERT_EQUAL(yt_signal_emit(c->sig, 100 + c->calls, NULL), YT_OK);
    }
}

static void count_h2(const yt_event *ev, void *user)
{
    sig_ctx *c = user;
    (void)ev;
    c->calls2++;
    if (c->norder < 8)
        c->order[c->norder++] = 2;
}

/* A coalescing signal: a burst runs each handler once, with the first emission's data; an emit
 * from inside the handler posts again. A plain signal runs every emission. */
static void test_coalesce(void)
{
    yt_loop *l = new_loop();
    sig_ctx c = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, true, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h2, &c), YT_OK);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(yt_signal_emit(c.sig, i, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 2);
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_EQUAL(c.calls2, 1);
    CU_ASSERT_EQUAL(c.last_flag, 0);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);

    /* count_h re-emits from inside itself twice: each re-emission posts again. Pending is per
     * handler: the first re-emission happens while count_h2's event is still queued, so it
     * posts for count_h only; the second one, after count_h2 ran, posts for both. */
    c.reemit = 2;
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 7, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 2);
    CU_ASSERT_EQUAL(c.calls, 2);
    CU_ASSERT_EQUAL(c.calls2, 2);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    CU_ASSERT_EQUAL(c.calls, 3);
    CU_ASSERT_EQUAL(c.last_flag, 102);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 2);
    CU_ASSERT_EQUAL(c.calls, 4);
    CU_ASSERT_EQUAL(c.last_flag, 103);
    CU_ASSERT_EQUAL(c.calls2, 3);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    yt_signal_free(c.sig);

    sig_ctx p = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, &p.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(p.sig, count_h, &p), YT_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(yt_signal_emit(p.sig, i, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 3);
    CU_ASSERT_EQUAL(p.calls, 3);
    CU_ASSERT_EQUAL(p.last_flag, 2);
    yt_signal_free(p.sig);
    yt_loop_free(l);
}

/* Unbinding drops that handler's queued events, also when the same (fn, user) is bound again. */
static void test_unbind_drops_queued(void)
{
    yt_loop *l = new_loop();
    sig_ctx c = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_handler_count(c.sig), 0);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h2, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h, &c), YT_EBUSY);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, NULL, &c), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_signal_handler_count(c.sig), 2);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(yt_signal_emit(c.sig, i, "x"), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_unbind(c.sig, count_h, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_unbind(c.sig, count_h, &c), YT_ENOTFOUND);
    CU_ASSERT_EQUAL(yt_signal_handler_count(c.sig), 1);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 3);
    CU_ASSERT_EQUAL(c.calls, 0);
    CU_ASSERT_EQUAL(c.calls2, 3);

    /* Unbind then bind again: the events queued before belong to the old binding. */
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 0, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_unbind(c.sig, count_h2, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h2, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    CU_ASSERT_EQUAL(c.calls2, 3);
    yt_signal_free(c.sig);
    yt_loop_free(l);
}

/* Freeing a signal with events queued: nothing runs, nothing is touched (valgrind/ASan). */
static void test_signal_freed_with_pending(void)
{
    yt_loop *l = new_loop();
    sig_ctx c = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h, &c), YT_OK);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(yt_signal_emit(c.sig, i, "some text"), YT_OK);
    CU_ASSERT(yt_loop_next_timeout(l) == 0.0);
    yt_signal_free(c.sig);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    CU_ASSERT_EQUAL(c.calls, 0);
    yt_signal_free(NULL);
    yt_loop_free(l);
}

static void freeing_h(const yt_event *ev, void *user)
{
    sig_ctx *c = user;
    c->calls++;
    yt_signal_free(ev->signal);
}

/* A handler frees its own signal: no deadlock, and the signal's remaining events are dropped. */
static void test_free_in_own_handler(void)
{
    yt_loop *l = new_loop();
    sig_ctx c = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, freeing_h, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 1, "a"), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 2, "b"), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    CU_ASSERT_EQUAL(c.calls, 1);

    /* The same through emit_now: the handler bound after the freeing one is not called. */
    sig_ctx d = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, &d.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(d.sig, freeing_h, &d), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(d.sig, count_h2, &d), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_emit_now(d.sig, 0, NULL), YT_OK);
    CU_ASSERT_EQUAL(d.calls, 1);
    CU_ASSERT_EQUAL(d.calls2, 0);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    yt_loop_free(l);
}

/* emit_now calls the handlers in binding order on the calling thread and queues nothing. */
static void test_emit_now(void)
{
    yt_loop *l = new_loop();
    sig_ctx c = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h2, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_emit_now(c.sig, 7, "now"), YT_OK);
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_EQUAL(c.calls2, 1);
    CU_ASSERT_EQUAL(c.last_flag, 7);
    CU_ASSERT(pthread_equal(c.thread, pthread_self()));
    CU_ASSERT_EQUAL(c.norder, 2);
    CU_ASSERT_EQUAL(c.order[0], 2);
    CU_ASSERT_EQUAL(c.order[1], 1);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    CU_ASSERT(yt_loop_next_timeout(l) < 0);
    yt_signal_free(c.sig);
    yt_loop_free(l);
}

typedef struct field_ctx {
    yt_signal *sig;
    int marker;
    int ok;
    int calls;
} field_ctx;

static void field_h(const yt_event *ev, void *user)
{
    field_ctx *f = user;
    f->calls++;
    if (ev->signal == f->sig && ev->source == &f->marker &&
        ((ev->flag == 1 && ev->text && strcmp(ev->text, "closed: reason") == 0) ||
         (ev->flag == 0 && ev->text == NULL)))
        f->ok++;
}

/* Handlers get the signal, its source, the flag and a copy of the text taken at emit time. */
static void test_event_fields(void)
{
    yt_loop *l = new_loop();
    field_ctx f = {.ok = 0};
    CU_ASSERT_EQUAL(yt_signal_new(l, &f.marker, false, &f.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(f.sig, field_h, &f), YT_OK);
    char buf[32] = "closed: reason";
    CU_ASSERT_EQUAL(yt_signal_emit(f.sig, 1, buf), YT_OK);
    memset(buf, 'Z', sizeof buf - 1);
    CU_ASSERT_EQUAL(yt_signal_emit(f.sig, 0, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 2);
    CU_ASSERT_EQUAL(f.calls, 2);
    CU_ASSERT_EQUAL(f.ok, 2);
    yt_signal_free(f.sig);
    yt_loop_free(l);
}

/* ---- blocking and waking ---- */

static void test_process_timeout(void)
{
    yt_loop *l = new_loop();
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yt_loop_process(l, 0.05), 0);
    double el = since(t0);
    CU_ASSERT(el >= 0.05);
    CU_ASSERT(el < 1.0);
    t0 = yti_now();
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    CU_ASSERT(since(t0) < 0.05);
    yt_loop_free(l);
}

typedef struct late_post {
    yt_loop *l;
    atomic_int calls;
    pthread_t poster;
    pthread_t ran_on;
} late_post;

static void note_thread(void *p)
{
    late_post *lp = p;
    lp->ran_on = pthread_self();
    atomic_fetch_add(&lp->calls, 1);
}

static void *post_after_delay(void *p)
{
    late_post *lp = p;
    yti_sleep(0.03);
    CU_ASSERT_EQUAL(yt_loop_call_later(lp->l, 0, note_thread, lp), YT_OK);
    return NULL;
}

/* A process call waiting for a long time returns as soon as another thread posts, and runs the
 * event on its own thread, not the poster's. */
static void test_process_wakes_on_post(void)
{
    late_post lp = {.l = new_loop()};
    atomic_init(&lp.calls, 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&lp.poster, NULL, post_after_delay, &lp), 0);
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yt_loop_process(lp.l, 10.0), 1);
    double el = since(t0);
    CU_ASSERT(el >= 0.02);
    CU_ASSERT(el < 5.0);
    pthread_join(lp.poster, NULL);
    CU_ASSERT_EQUAL(atomic_load(&lp.calls), 1);
    CU_ASSERT(pthread_equal(lp.ran_on, pthread_self()));
    yt_loop_free(lp.l);
}

typedef struct proc_arg {
    yt_loop *l;
    int rc;
    bool run;
} proc_arg;

static void *block_thread(void *p)
{
    proc_arg *a = p;
    a->rc = a->run ? yt_loop_run(a->l) : yt_loop_process(a->l, -1);
    return NULL;
}

/* Freeing a loop wakes the threads blocked on it with YT_ECLOSED. */
static void test_free_while_blocked(void)
{
    yt_loop *l = new_loop();
    proc_arg a = {l, 12345, false}, b = {l, 12345, true};
    pthread_t ta, tb;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ta, NULL, block_thread, &a), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tb, NULL, block_thread, &b), 0);
    bool blocked = wait_blocked(l, 2, 10.0);
    CU_ASSERT_FATAL(blocked);
    yt_loop_free(l);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CU_ASSERT_EQUAL(a.rc, YT_ECLOSED);
    CU_ASSERT_EQUAL(b.rc, YT_ECLOSED);
}

static void *run_thread(void *p)
{
    proc_arg *a = p;
    a->rc = yt_loop_run(a->l);
    return NULL;
}

/* yt_loop_run serves events until another thread stops it; a stop while no run is active makes
 * the next run return at once. */
static void test_run_stop_from_other_thread(void)
{
    yt_loop *l = new_loop();
    atomic_int calls;
    atomic_init(&calls, 0);
    proc_arg a = {l, 12345, true};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, run_thread, &a), 0);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, counter_cb, &calls), YT_OK);
    CU_ASSERT(wait_count(&calls, 1, 10.0));
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.01, counter_cb, &calls), YT_OK);
    CU_ASSERT(wait_count(&calls, 2, 10.0));
    CU_ASSERT(wait_blocked(l, 1, 10.0));
    yt_loop_stop(l);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(a.rc, YT_OK);

    yt_loop_stop(l);
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yt_loop_run(l), YT_OK);
    CU_ASSERT(since(t0) < 1.0);
    yt_loop_free(l);
}

static void stop_cb(void *p)
{
    yt_loop_stop(p);
}

/* A handler stops the run: it returns after that event; the rest stays queued. */
static void test_run_stop_from_handler(void)
{
    yt_loop *l = new_loop();
    atomic_int calls;
    atomic_init(&calls, 0);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, counter_cb, &calls), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, stop_cb, l), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, counter_cb, &calls), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_run(l), YT_OK);
    CU_ASSERT_EQUAL(atomic_load(&calls), 1);
    CU_ASSERT(yt_loop_next_timeout(l) == 0.0);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    CU_ASSERT_EQUAL(atomic_load(&calls), 2);

    /* A stop from a timer callback; the other due timer entry is kept for later. */
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.001, stop_cb, l), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.002, counter_cb, &calls), YT_OK);
    yti_sleep(0.005);
    CU_ASSERT_EQUAL(yt_loop_run(l), YT_OK);
    CU_ASSERT_EQUAL(atomic_load(&calls), 2);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    CU_ASSERT_EQUAL(atomic_load(&calls), 3);
    yt_loop_free(l);
}

/* ---- timers ---- */

typedef struct tmr_ctx {
    yt_timer *t;
    atomic_int calls;
    uint64_t at;
    atomic_int inside;
    atomic_int done;
} tmr_ctx;

static void tmr_cb(void *p)
{
    tmr_ctx *c = p;
    c->at = yti_now();
    atomic_fetch_add(&c->calls, 1);
}

static void test_timer_oneshot(void)
{
    yt_loop *l = new_loop();
    tmr_ctx c = {.t = NULL};
    atomic_init(&c.calls, 0);
    CU_ASSERT_EQUAL(yt_timer_new(l, 0.02, true, tmr_cb, &c, &c.t), YT_OK);
    CU_ASSERT_FALSE(yt_timer_running(c.t));
    CU_ASSERT_EQUAL(yt_loop_process(l, 0.03), 0); /* created stopped */
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    CU_ASSERT_TRUE(yt_timer_running(c.t));
    process_for(l, 0.12);
    CU_ASSERT_EQUAL(atomic_load(&c.calls), 1);
    CU_ASSERT(c.at - t0 >= 20000000u);
    CU_ASSERT_FALSE(yt_timer_running(c.t));

    /* It can be started again after it fired. */
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    CU_ASSERT_EQUAL(process_until(l, &c.calls, 2, 5.0), 2);
    yt_timer_free(c.t);
    yt_timer_free(NULL);
    yt_loop_free(l);
}

static void test_timer_repeating(void)
{
    yt_loop *l = new_loop();
    tmr_ctx c = {.t = NULL};
    atomic_init(&c.calls, 0);
    CU_ASSERT_EQUAL(yt_timer_new(l, 0.01, false, tmr_cb, &c, &c.t), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    process_for(l, 0.2);
    int n = atomic_load(&c.calls);
    /* 20 ticks fit (21 with rounding); never more (no bursts), and at least a few even when slowed. */
    CU_ASSERT(n >= 4);
    CU_ASSERT(n <= 21);
    CU_ASSERT_TRUE(yt_timer_running(c.t));
    yt_timer_stop(c.t);
    CU_ASSERT_FALSE(yt_timer_running(c.t));
    process_for(l, 0.05);
    CU_ASSERT_EQUAL(atomic_load(&c.calls), n);
    yt_timer_free(c.t);
    yt_loop_free(l);
}

/* A repeating timer that is late by several intervals fires once and schedules the next tick
 * one interval from now, not in the past. */
static void test_timer_late_no_burst(void)
{
    yt_loop *l = new_loop();
    tmr_ctx c = {.t = NULL};
    atomic_init(&c.calls, 0);
    CU_ASSERT_EQUAL(yt_timer_new(l, 0.05, false, tmr_cb, &c, &c.t), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    yti_sleep(0.25);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 0);
    double next = yt_loop_next_timeout(l);
    CU_ASSERT(next > 0.0);
    CU_ASSERT(next <= 0.05);
    yt_timer_free(c.t);
    yt_loop_free(l);
}

/* Restarting moves the due time to interval-from-now. */
static void test_timer_restart(void)
{
    yt_loop *l = new_loop();
    tmr_ctx c = {.t = NULL};
    atomic_init(&c.calls, 0);
    CU_ASSERT_EQUAL(yt_timer_new(l, 0.06, true, tmr_cb, &c, &c.t), YT_OK);
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    process_for(l, 0.03);
    uint64_t t1 = yti_now();
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    CU_ASSERT_EQUAL(process_until(l, &c.calls, 1, 5.0), 1);
    CU_ASSERT(c.at - t1 >= 60000000u);
    CU_ASSERT(c.at - t0 >= 90000000u);
    process_for(l, 0.02);
    CU_ASSERT_EQUAL(atomic_load(&c.calls), 1);
    yt_timer_free(c.t);
    yt_loop_free(l);
}

/* A new interval applies from the next start. */
static void test_timer_set_interval(void)
{
    yt_loop *l = new_loop();
    tmr_ctx c = {.t = NULL};
    atomic_init(&c.calls, 0);
    CU_ASSERT_EQUAL(yt_timer_new(l, 10.0, true, tmr_cb, &c, &c.t), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    CU_ASSERT(yt_loop_next_timeout(l) > 5.0);
    CU_ASSERT_EQUAL(yt_timer_set_interval(c.t, 0.01), YT_OK);
    CU_ASSERT(yt_loop_next_timeout(l) > 5.0);
    CU_ASSERT_EQUAL(yt_timer_set_interval(c.t, -1), YT_EINVAL);
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    CU_ASSERT(yt_loop_next_timeout(l) <= 0.01);
    CU_ASSERT_EQUAL(process_until(l, &c.calls, 1, 5.0), 1);
    CU_ASSERT(c.at - t0 >= 10000000u);
    CU_ASSERT(since(t0) < 4.0);
    yt_timer_free(c.t);
    yt_loop_free(l);
}

static void self_freeing_cb(void *p)
{
    tmr_ctx *c = p;
    atomic_fetch_add(&c->calls, 1);
    yt_timer_free(c->t);
}

/* A repeating timer frees itself from its callback: no deadlock, never fires again. */
static void test_timer_free_in_callback(void)
{
    yt_loop *l = new_loop();
    tmr_ctx c = {.t = NULL};
    atomic_init(&c.calls, 0);
    CU_ASSERT_EQUAL(yt_timer_new(l, 0.001, false, self_freeing_cb, &c, &c.t), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(c.t), YT_OK);
    CU_ASSERT_EQUAL(process_until(l, &c.calls, 1, 5.0), 1);
    process_for(l, 0.02);
    CU_ASSERT_EQUAL(atomic_load(&c.calls), 1);
    CU_ASSERT(yt_loop_next_timeout(l) < 0);
    yt_loop_free(l);
}

/* Delayed calls run in due order, after the immediate ones, not before their time. */
static void test_call_later_delays(void)
{
    yt_loop *l = new_loop();
    rec r = {.n = 0};
    tag t[4];
    for (int i = 0; i < 4; i++)
        t[i] = (tag){&r, i};
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.03, rec_call, &t[1]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.01, rec_call, &t[2]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.02, rec_call, &t[3]), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, rec_call, &t[0]), YT_OK);
    uint64_t end = yti_deadline(5.0);
    while (r.n < 4 && yti_now() < end)
        yt_loop_process(l, 0.1);
    static const int want[] = {0, 2, 3, 1};
    static const uint64_t min_ns[] = {0, 10000000u, 20000000u, 30000000u};
    CU_ASSERT_EQUAL(r.n, 4);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(r.order[i], want[i]);
        CU_ASSERT(r.at[i] - t0 >= min_ns[i]);
    }
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, NULL, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_loop_call_later(NULL, 0, rec_call, &t[0]), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, NAN, rec_call, &t[0]), YT_EINVAL);
    yt_loop_free(l);
}

/* ---- waiting for a running handler ---- */

typedef struct slow_ctx {
    yt_loop *l;
    yt_signal *sig;
    atomic_int inside;
    atomic_int done;
} slow_ctx;

static void slow_h(const yt_event *ev, void *user)
{
    (void)ev;
    slow_ctx *s = user;
    atomic_store(&s->inside, 1);
    yti_sleep(0.05);
    atomic_store(&s->done, 1);
}

static void slow_cb(void *p)
{
    slow_h(NULL, p);
}

static void *process_once(void *p)
{
    yt_loop_process(p, 5.0);
    return NULL;
}

/* yt_signal_free / yt_timer_free from another thread wait for the running handler. */
static void test_free_waits_for_running(void)
{
    slow_ctx s = {.l = new_loop()};
    atomic_init(&s.inside, 0);
    atomic_init(&s.done, 0);
    CU_ASSERT_EQUAL(yt_signal_new(s.l, NULL, false, &s.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(s.sig, slow_h, &s), YT_OK);
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, process_once, s.l), 0);
    CU_ASSERT_EQUAL(yt_signal_emit(s.sig, 0, NULL), YT_OK);
    CU_ASSERT_FATAL(wait_count(&s.inside, 1, 10.0));
    yt_signal_free(s.sig);
    CU_ASSERT_EQUAL(atomic_load(&s.done), 1);
    pthread_join(t, NULL);

    atomic_store(&s.inside, 0);
    atomic_store(&s.done, 0);
    yt_timer *tm = NULL;
    CU_ASSERT_EQUAL(yt_timer_new(s.l, 0.001, true, slow_cb, &s, &tm), YT_OK);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, process_once, s.l), 0);
    CU_ASSERT_EQUAL(yt_timer_start(tm), YT_OK);
    CU_ASSERT_FATAL(wait_count(&s.inside, 1, 10.0));
    yt_timer_free(tm);
    CU_ASSERT_EQUAL(atomic_load(&s.done), 1);
    pthread_join(t, NULL);
    yt_loop_free(s.l);
}

/* ---- two processors ---- */

#define SHARED_CALLS 2000

typedef struct shared_ctx {
    yt_loop *l;
    atomic_int total;
    atomic_int hits[SHARED_CALLS];
} shared_ctx;

typedef struct shared_tag {
    shared_ctx *c;
    int i;
} shared_tag;

static void shared_cb(void *p)
{
    shared_tag *t = p;
    atomic_fetch_add(&t->c->hits[t->i], 1);
    atomic_fetch_add(&t->c->total, 1);
}

static void *shared_proc(void *p)
{
    shared_ctx *c = p;
    process_until(c->l, &c->total, SHARED_CALLS, 20.0);
    return NULL;
}

/* Two threads processing one loop share the events: each runs exactly once. */
static void test_two_processors(void)
{
    shared_ctx *c = calloc(1, sizeof *c);
    shared_tag *tags = calloc(SHARED_CALLS, sizeof *tags);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tags);
    c->l = new_loop();
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, shared_proc, c), 0);
    for (int i = 0; i < SHARED_CALLS; i++) {
        tags[i] = (shared_tag){c, i};
        CU_ASSERT_EQUAL(yt_loop_call_later(c->l, 0, shared_cb, &tags[i]), YT_OK);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&c->total), SHARED_CALLS);
    int once = 0;
    for (int i = 0; i < SHARED_CALLS; i++)
        once += atomic_load(&c->hits[i]) == 1;
    CU_ASSERT_EQUAL(once, SHARED_CALLS);
    yt_loop_free(c->l);
    free(tags);
    free(c);
}

/* ---- freeing a loop under its signals and timers ---- */

static void test_loop_free_detaches(void)
{
    yt_loop *l = new_loop();
    sig_ctx c = {.calls = 0};
    atomic_int calls;
    atomic_init(&calls, 0);
    tmr_ctx tc = {.t = NULL};
    atomic_init(&tc.calls, 0);
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_new(l, 0.001, false, tmr_cb, &tc, &tc.t), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(tc.t), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 1, "queued"), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, counter_cb, &calls), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.001, counter_cb, &calls), YT_OK);
    yti_sleep(0.005);
    yt_loop_free(l);

    /* The handles stay valid and do nothing. */
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 2, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_emit_now(c.sig, 3, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_handler_count(c.sig), 1);
    CU_ASSERT_EQUAL(yt_signal_unbind(c.sig, count_h, &c), YT_OK);
    CU_ASSERT_FALSE(yt_timer_running(tc.t));
    CU_ASSERT_EQUAL(yt_timer_start(tc.t), YT_ECLOSED);
    CU_ASSERT_EQUAL(yt_timer_set_interval(tc.t, 1.0), YT_OK);
    yt_timer_stop(tc.t);
    CU_ASSERT_EQUAL(c.calls, 0);
    CU_ASSERT_EQUAL(atomic_load(&calls), 0);
    CU_ASSERT_EQUAL(atomic_load(&tc.calls), 0);
    yt_signal_free(c.sig);
    yt_timer_free(tc.t);
}

/* ---- embedding ---- */

typedef struct embed_ctx {
    yt_loop *l;
    atomic_int calls;
    pthread_t last;
} embed_ctx;

static void notify_cb(void *p)
{
    embed_ctx *e = p;
    e->last = pthread_self();
    atomic_fetch_add(&e->calls, 1);
}

static void noop_cb(void *p)
{
    (void)p;
}

static void *post_noop(void *p)
{
    embed_ctx *e = p;
    CU_ASSERT_EQUAL(yt_loop_call_later(e->l, 0, noop_cb, NULL), YT_OK);
    return (void *)(uintptr_t)pthread_equal(e->last, pthread_self());
}

static void test_embed(void)
{
    embed_ctx e = {.l = new_loop()};
    atomic_init(&e.calls, 0);
    sig_ctx c = {.calls = 0};
    yt_timer *t = NULL;
    CU_ASSERT_EQUAL(yt_signal_new(e.l, NULL, false, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h2, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_new(e.l, 1.0, true, noop_cb, NULL, &t), YT_OK);

    yt_loop_embed(e.l, notify_cb, &e);
    CU_ASSERT_EQUAL(yt_loop_call_later(e.l, 0, noop_cb, NULL), YT_OK);
    CU_ASSERT_EQUAL(atomic_load(&e.calls), 1);
    CU_ASSERT(pthread_equal(e.last, pthread_self()));
    CU_ASSERT_EQUAL(yt_loop_call_later(e.l, 0.5, noop_cb, NULL), YT_OK);
    CU_ASSERT_EQUAL(atomic_load(&e.calls), 2);
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 0, NULL), YT_OK);
    CU_ASSERT_EQUAL(atomic_load(&e.calls), 3);
    CU_ASSERT_EQUAL(yt_timer_start(t), YT_OK);
    CU_ASSERT_EQUAL(atomic_load(&e.calls), 4);
    pthread_t th;
    void *same = NULL;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, post_noop, &e), 0);
    pthread_join(th, &same);
    CU_ASSERT_EQUAL(atomic_load(&e.calls), 5);
    CU_ASSERT_PTR_NOT_NULL(same); /* called on the posting thread */
    /* Processing itself does not notify. */
    CU_ASSERT_EQUAL(yt_loop_process(e.l, 0), 4);
    CU_ASSERT_EQUAL(atomic_load(&e.calls), 5);

    yt_loop_embed(e.l, NULL, NULL);
    CU_ASSERT_EQUAL(yt_loop_call_later(e.l, 0, noop_cb, NULL), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(t), YT_OK);
    CU_ASSERT_EQUAL(atomic_load(&e.calls), 5);
    yt_timer_free(t);
    yt_signal_free(c.sig);
    yt_loop_free(e.l);
}

static void test_next_timeout(void)
{
    yt_loop *l = new_loop();
    CU_ASSERT(yt_loop_next_timeout(l) < 0);
    CU_ASSERT(yt_loop_next_timeout(NULL) < 0);
    yt_timer *t = NULL, *z = NULL;
    CU_ASSERT_EQUAL(yt_timer_new(l, 0.5, false, noop_cb, NULL, &t), YT_OK);
    CU_ASSERT(yt_loop_next_timeout(l) < 0);
    CU_ASSERT_EQUAL(yt_timer_start(t), YT_OK);
    double v = yt_loop_next_timeout(l);
    CU_ASSERT(v > 0.3 && v <= 0.5);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0.2, noop_cb, NULL), YT_OK);
    v = yt_loop_next_timeout(l);
    CU_ASSERT(v > 0.0 && v <= 0.2);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, noop_cb, NULL), YT_OK);
    CU_ASSERT(yt_loop_next_timeout(l) == 0.0);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    v = yt_loop_next_timeout(l);
    CU_ASSERT(v > 0.0 && v <= 0.2);
    CU_ASSERT_EQUAL(yt_loop_process(l, 1.0), 1); /* the delayed call */
    v = yt_loop_next_timeout(l);
    CU_ASSERT(v > 0.0 && v <= 0.5);
    /* A zero-interval timer is due at once. */
    CU_ASSERT_EQUAL(yt_timer_new(l, 0, true, noop_cb, NULL, &z), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(z), YT_OK);
    CU_ASSERT(yt_loop_next_timeout(l) == 0.0);
    yt_timer_free(z);
    yt_timer_stop(t);
    CU_ASSERT(yt_loop_next_timeout(l) < 0);
    yt_timer_free(t);
    yt_loop_free(l);
}

/* ---- the default loop ---- */

static void *get_default(void *p)
{
    (void)p;
    return yt_loop_default();
}

static void test_default_loop(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, get_default, NULL), 0);
    yt_loop *d = yt_loop_default();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        CU_ASSERT_PTR_EQUAL(r, d);
    }
    CU_ASSERT_PTR_EQUAL(yt_loop_default(), d);

    /* NULL as loop means the default loop, for signals and timers. */
    sig_ctx c = {.calls = 0};
    CU_ASSERT_EQUAL(yt_signal_new(NULL, NULL, false, &c.sig), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_bind(c.sig, count_h2, &c), YT_OK);
    CU_ASSERT_EQUAL(yt_signal_emit(c.sig, 0, NULL), YT_OK);
    uint64_t end = yti_deadline(5.0);
    while (c.calls2 < 1 && yti_now() < end)
        yt_loop_process(d, 0.01);
    CU_ASSERT_EQUAL(c.calls2, 1);
    yt_signal_free(c.sig);

    tmr_ctx tc = {.t = NULL};
    atomic_init(&tc.calls, 0);
    CU_ASSERT_EQUAL(yt_timer_new(NULL, 0.001, true, tmr_cb, &tc, &tc.t), YT_OK);
    CU_ASSERT_EQUAL(yt_timer_start(tc.t), YT_OK);
    CU_ASSERT_EQUAL(process_until(d, &tc.calls, 1, 5.0), 1);
    yt_timer_free(tc.t);
}

/* ---- argument checks ---- */

static void test_invalid_arguments(void)
{
    yt_loop *l = new_loop();
    yt_timer *t = NULL;
    yt_signal *s = NULL;
    CU_ASSERT_EQUAL(yt_loop_new(NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_timer_new(l, 1.0, true, NULL, NULL, &t), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_timer_new(l, -0.1, true, noop_cb, NULL, &t), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_timer_new(l, NAN, true, noop_cb, NULL, &t), YT_EINVAL);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_EQUAL(yt_signal_new(l, NULL, false, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_loop_process(NULL, 0), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_loop_run(NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_signal_emit(NULL, 0, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_signal_emit_now(NULL, 0, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_signal_bind(NULL, count_h, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_signal_unbind(NULL, count_h, NULL), YT_EINVAL);
    CU_ASSERT_EQUAL(yt_signal_handler_count(NULL), 0);
    CU_ASSERT_EQUAL(yt_timer_start(NULL), YT_EINVAL);
    CU_ASSERT_FALSE(yt_timer_running(NULL));
    CU_ASSERT_EQUAL(yt_timer_set_interval(NULL, 1.0), YT_EINVAL);
    yt_timer_stop(NULL);
    yt_loop_stop(NULL);
    yt_loop_embed(NULL, NULL, NULL);
    yt_loop_free(NULL);
    CU_ASSERT_PTR_NULL(s);
    yt_loop_free(l);
}

static void count_up(void *user)
{
    (*(int *)user)++;
}

static void test_call_soon_drop_hook(void)
{
    /* A call that runs: fn, never drop. */
    yt_loop *l;
    CU_ASSERT_EQUAL_FATAL(yt_loop_new(&l), YT_OK);
    int ran = 0, dropped = 0;
    CU_ASSERT_EQUAL(yti_loop_call_soon(l, 0, count_up, count_up, &ran), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_process(l, 0), 1);
    CU_ASSERT_EQUAL(ran, 1);
    /* Calls still queued when the loop goes: drop, never fn (one at the front, one behind). */
    int never = 0;
    CU_ASSERT_EQUAL(yti_loop_call_soon(l, 0, count_up, count_up, &dropped), YT_OK);
    CU_ASSERT_EQUAL(yti_loop_call_soon(l, -1, count_up, count_up, &dropped), YT_OK);
    CU_ASSERT_EQUAL(yt_loop_call_later(l, 0, count_up, &never), YT_OK);
    yt_loop_free(l);
    CU_ASSERT_EQUAL(dropped, 2);
    CU_ASSERT_EQUAL(never, 0);
    /* A drop hook is for immediate calls only. */
    yt_loop_new(&l);
    CU_ASSERT_EQUAL(yti_loop_call_soon(l, 1.0, count_up, count_up, &ran), YT_EINVAL);
    yt_loop_free(l);
}

void yt_suite_events(void)
{
    static const yt_test_def t[] = {
        {"fifo_order", test_fifo_order},
        {"handler_posts_run_next_call", test_handler_posts_run_next_call},
        {"emit_from_threads", test_emit_from_threads},
        {"coalesce", test_coalesce},
        {"unbind_drops_queued", test_unbind_drops_queued},
        {"signal_freed_with_pending", test_signal_freed_with_pending},
        {"free_in_own_handler", test_free_in_own_handler},
        {"emit_now", test_emit_now},
        {"event_fields", test_event_fields},
        {"process_timeout", test_process_timeout},
        {"process_wakes_on_post", test_process_wakes_on_post},
        {"free_while_blocked", test_free_while_blocked},
        {"run_stop_from_other_thread", test_run_stop_from_other_thread},
        {"run_stop_from_handler", test_run_stop_from_handler},
        {"timer_oneshot", test_timer_oneshot},
        {"timer_repeating", test_timer_repeating},
        {"timer_late_no_burst", test_timer_late_no_burst},
        {"timer_restart", test_timer_restart},
        {"timer_set_interval", test_timer_set_interval},
        {"timer_free_in_callback", test_timer_free_in_callback},
        {"call_later_delays", test_call_later_delays},
        {"free_waits_for_running", test_free_waits_for_running},
        {"two_processors", test_two_processors},
        {"loop_free_detaches", test_loop_free_detaches},
        {"embed", test_embed},
        {"next_timeout", test_next_timeout},
        {"default_loop", test_default_loop},
        {"invalid_arguments", test_invalid_arguments},
        {"call_soon_drop_hook", test_call_soon_drop_hook},
        {NULL, NULL}};
    yt_add_suite("events", t);
}
