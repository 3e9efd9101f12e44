/*
 * Suite "queue": bounded package queues (spec 12): order, both discard modes and their counters,
 * ring growth and wrap-around, deadlines, batching, peek/put-back, close waking every kind of
 * waiter, the throttled (connection out-queue) push, and multi-threaded stress with exact
 * accounting.
 */
#include "package.h"
#include "platform.h"
#include "queue.h"
#include "testutil.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A package whose slot tells which one it is. */
static yti_pkg *mk(uint64_t n)
{
    yti_pkg *p = yti_pkg_from("p", 1, n, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

/* Pops without waiting and returns the slot (UINT64_MAX when nothing came out). */
static uint64_t pop_slot(yti_queue *q)
{
    yti_pkg *p = NULL;
    if (yti_queue_pop(q, 0, &p) != YT_OK)
        return UINT64_MAX;
    uint64_t s = p->slot;
    yti_pkg_unref(p);
    return s;
}

static double elapsed_since(uint64_t t0)
{
    return (double)(yti_now() - t0) / 1e9;
}

static void test_fifo(void)
{
    yti_queue *q = yti_queue_new(1000, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(yti_queue_max(q), 1000);
    CU_ASSERT_EQUAL(yti_queue_len(q), 0);
    CU_ASSERT_FALSE(yti_queue_closed(q));
    for (uint64_t i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(yti_queue_push(q, mk(i)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_len(q), 100);
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 100);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 0);
    for (uint64_t i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(pop_slot(q), i);
    CU_ASSERT_EQUAL(yti_queue_len(q), 0);
    CU_ASSERT_EQUAL(pop_slot(q), UINT64_MAX);
    yti_queue_free(q);
    CU_ASSERT_PTR_NULL(yti_queue_new(0, YT_DISCARD_OLD));
}

/* Full + "old": the oldest goes, the new one is queued; every push counts. The dropped packages
 * are released (we hold an extra reference to see it). */
static void test_discard_old(void)
{
    yti_queue *q = yti_queue_new(3, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_pkg *held[5];
    for (uint64_t i = 0; i < 5; i++) {
        held[i] = mk(i);
        CU_ASSERT_EQUAL(yti_queue_push(q, yti_pkg_ref(held[i])), YT_OK);
    }
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 2);
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 5);
    CU_ASSERT_EQUAL(atomic_load(&held[0]->refs), 1u);
    CU_ASSERT_EQUAL(atomic_load(&held[1]->refs), 1u);
    CU_ASSERT_EQUAL(atomic_load(&held[2]->refs), 2u);
    CU_ASSERT_EQUAL(pop_slot(q), 2);
    CU_ASSERT_EQUAL(pop_slot(q), 3);
    CU_ASSERT_EQUAL(pop_slot(q), 4);
    CU_ASSERT_EQUAL(pop_slot(q), UINT64_MAX);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(atomic_load(&held[i]->refs), 1u);
        yti_pkg_unref(held[i]);
    }
    /* pushed == popped + discarded + len */
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 3 + yti_queue_discarded(q) + yti_queue_len(q));
    yti_queue_free(q);
}

/* Full + "new": the new one is dropped (and not counted as pushed), the queue keeps the first. */
static void test_discard_new(void)
{
    yti_queue *q = yti_queue_new(3, YT_DISCARD_NEW);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_pkg *held[5];
    for (uint64_t i = 0; i < 5; i++) {
        held[i] = mk(i);
        CU_ASSERT_EQUAL(yti_queue_push(q, yti_pkg_ref(held[i])), YT_OK);
    }
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 2);
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 3);
    CU_ASSERT_EQUAL(atomic_load(&held[3]->refs), 1u);
    CU_ASSERT_EQUAL(atomic_load(&held[4]->refs), 1u);
    CU_ASSERT_EQUAL(atomic_load(&held[0]->refs), 2u);
    CU_ASSERT_EQUAL(pop_slot(q), 0);
    /* Room again: the next push is accepted. */
    CU_ASSERT_EQUAL(yti_queue_push(q, mk(9)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 2);
    CU_ASSERT_EQUAL(pop_slot(q), 1);
    CU_ASSERT_EQUAL(pop_slot(q), 2);
    CU_ASSERT_EQUAL(pop_slot(q), 9);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(atomic_load(&held[i]->refs), 1u);
        yti_pkg_unref(held[i]);
    }
    yti_queue_free(q);

    /* max = 1, the smallest queue. */
    q = yti_queue_new(1, YT_DISCARD_NEW);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint64_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(yti_queue_push(q, mk(i)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 3);
    CU_ASSERT_EQUAL(pop_slot(q), 0);
    yti_queue_free(q);
}

/* The ring starts small and grows; growing while the contents wrap around the end of the ring
 * must keep their order. Every start offset up to 40 is tried. */
static void test_growth_wrap(void)
{
    for (uint64_t off = 0; off <= 40; off++) {
        yti_queue *q = yti_queue_new(5000, YT_DISCARD_OLD);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        uint64_t next_in = 0, next_out = 0;
        bool ok = true;
        /* Move the head by `off`, with the ring partly filled. */
        for (uint64_t i = 0; i < off; i++) {
            yti_queue_push(q, mk(next_in++));
            if (i % 3 == 2)
                ok &= pop_slot(q) == next_out++;
        }
        for (uint64_t i = 0; i < 300; i++) {
            yti_queue_push(q, mk(next_in++));
            if (i % 7 == 0)
                ok &= pop_slot(q) == next_out++;
        }
        CU_ASSERT_EQUAL(yti_queue_len(q), next_in - next_out);
        while (next_out < next_in)
            ok &= pop_slot(q) == next_out++;
        CU_ASSERT_TRUE(ok);
        CU_ASSERT_EQUAL(yti_queue_discarded(q), 0);
        CU_ASSERT_EQUAL(yti_queue_len(q), 0);
        yti_queue_free(q);
    }

    /* Growth stops at max (not a power of two): the 101st push discards. */
    yti_queue *q = yti_queue_new(100, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint64_t i = 0; i < 101; i++)
        yti_queue_push(q, mk(i));
    CU_ASSERT_EQUAL(yti_queue_len(q), 100);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 1);
    bool ok = true;
    for (uint64_t i = 1; i < 101; i++)
        ok &= pop_slot(q) == i;
    CU_ASSERT_TRUE(ok);
    /* Queued packages are released by free (leak check under ASan/valgrind). */
    for (uint64_t i = 0; i < 50; i++)
        yti_queue_push(q, mk(i));
    yti_queue_free(q);
}

static void test_pop_timeout(void)
{
    yti_queue *q = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_pkg *p = (yti_pkg *)q; /* must stay untouched on failure */

    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_pop(q, 0, &p), YT_ETIMEDOUT);
    CU_ASSERT(elapsed_since(t0) < 0.5);
    CU_ASSERT_PTR_EQUAL(p, (yti_pkg *)q);

    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_pop(q, yti_deadline(0.05), &p), YT_ETIMEDOUT);
    double e = elapsed_since(t0);
    CU_ASSERT(e >= 0.05);
    CU_ASSERT(e < 1.0);

    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_wait(q, yti_deadline(0.05)), YT_ETIMEDOUT);
    e = elapsed_since(t0);
    CU_ASSERT(e >= 0.05);
    CU_ASSERT(e < 1.0);

    yti_pkg *batch[4];
    size_t n = 99;
    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_pop_many(q, yti_deadline(0.05), batch, 4, &n), YT_ETIMEDOUT);
    e = elapsed_since(t0);
    CU_ASSERT(e >= 0.05);
    CU_ASSERT(e < 1.0);
    CU_ASSERT_EQUAL(n, 0);

    /* A deadline already passed does not wait either. */
    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_pop(q, yti_now() - 1, &p), YT_ETIMEDOUT);
    CU_ASSERT(elapsed_since(t0) < 0.5);

    /* With a package there, the deadline does not matter. */
    yti_queue_push(q, mk(7));
    CU_ASSERT_EQUAL(yti_queue_wait(q, 0), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_len(q), 1);
    CU_ASSERT_EQUAL(yti_queue_pop(q, YTI_FOREVER, &p), YT_OK);
    CU_ASSERT_EQUAL(p->slot, 7);
    yti_pkg_unref(p);
    yti_queue_free(q);
}

static void test_pop_many(void)
{
    yti_queue *q = yti_queue_new(100, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    /* Wrap the ring first so a batch crosses its end. */
    for (uint64_t i = 0; i < 12; i++)
        yti_queue_push(q, mk(1000 + i));
    for (uint64_t i = 0; i < 12; i++)
        pop_slot(q);
    for (uint64_t i = 0; i < 10; i++)
        yti_queue_push(q, mk(i));
    yti_pkg *b[4];
    size_t n = 0;
    uint64_t next = 0;
    static const size_t expect[] = {4, 4, 2};
    for (int round = 0; round < 3; round++) {
        CU_ASSERT_EQUAL(yti_queue_pop_many(q, 0, b, 4, &n), YT_OK);
        CU_ASSERT_EQUAL(n, expect[round]);
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT_EQUAL(b[i]->slot, next++);
            yti_pkg_unref(b[i]);
        }
    }
    CU_ASSERT_EQUAL(yti_queue_pop_many(q, 0, b, 4, &n), YT_ETIMEDOUT);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(yti_queue_pop_many(q, 0, b, 0, &n), YT_EINVAL);
    yti_queue_free(q);
}

/* peek gives a new reference without removing; push_front restores the order after a pop that
 * could not be used, also past the bound and also when the head is at slot 0 of the ring. */
static void test_peek_push_front(void)
{
    yti_queue *q = yti_queue_new(3, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_PTR_NULL(yti_queue_peek(q));
    for (uint64_t i = 0; i < 3; i++)
        yti_queue_push(q, mk(i));
    yti_pkg *p = yti_queue_peek(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->slot, 0);
    CU_ASSERT_EQUAL(atomic_load(&p->refs), 2u);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    yti_pkg_unref(p);

    yti_pkg *a = NULL;
    CU_ASSERT_EQUAL(yti_queue_pop(q, 0, &a), YT_OK);
    CU_ASSERT_EQUAL(a->slot, 0);
    yti_queue_push(q, mk(3)); /* full again */
    CU_ASSERT_EQUAL(yti_queue_push_front(q, a), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_len(q), 4); /* the bound does not apply */
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 0);
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 4); /* a put-back is not a new push */
    for (uint64_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(pop_slot(q), i);

    /* push_front into an empty queue, then more in front of it. */
    CU_ASSERT_EQUAL(yti_queue_push_front(q, mk(12)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_push_front(q, mk(11)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_push_front(q, mk(10)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_push_front(q, mk(9)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_push(q, mk(13)), YT_OK); /* over max: the oldest (9) goes */
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 1);
    for (uint64_t i = 10; i < 14; i++)
        CU_ASSERT_EQUAL(pop_slot(q), i);
    yti_queue_free(q);
}

/* Moving a startup queue in: the bound does not apply, nothing is discarded. */
static void test_push_unbounded(void)
{
    yti_queue *q = yti_queue_new(2, YT_DISCARD_NEW);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint64_t i = 0; i < 50; i++)
        CU_ASSERT_EQUAL(yti_queue_push_unbounded(q, mk(i)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_len(q), 50);
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 50);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 0);
    /* A bounded push into the over-full queue drops one (the new one here), as the reference's
     * deque would. */
    CU_ASSERT_EQUAL(yti_queue_push(q, mk(99)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_len(q), 50);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 1);
    bool ok = true;
    for (uint64_t i = 0; i < 50; i++)
        ok &= pop_slot(q) == i;
    CU_ASSERT_TRUE(ok);
    yti_queue_free(q);
}

/* After close: pushes refuse and release, pops/peek/wait report closed although packages are
 * still queued; clear releases those. Close is idempotent. */
static void test_close(void)
{
    yti_queue *q = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_queue_push(q, mk(1));
    yti_queue_push(q, mk(2));
    yti_queue_close(q);
    yti_queue_close(q);
    CU_ASSERT_TRUE(yti_queue_closed(q));

    yti_pkg *h = mk(3);
    CU_ASSERT_EQUAL(yti_queue_push(q, yti_pkg_ref(h)), YT_ECLOSED);
    CU_ASSERT_EQUAL(yti_queue_push_front(q, yti_pkg_ref(h)), YT_ECLOSED);
    CU_ASSERT_EQUAL(yti_queue_push_unbounded(q, yti_pkg_ref(h)), YT_ECLOSED);
    yti_queue_set_consumer(q, true);
    CU_ASSERT_EQUAL(yti_queue_push_throttled(q, yti_pkg_ref(h), 0, 5.0), YT_ECLOSED);
    CU_ASSERT_EQUAL(atomic_load(&h->refs), 1u);
    yti_pkg_unref(h);
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 2);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 0);

    yti_pkg *p = NULL;
    CU_ASSERT_EQUAL(yti_queue_pop(q, YTI_FOREVER, &p), YT_ECLOSED);
    CU_ASSERT_PTR_NULL(p);
    yti_pkg *b[2];
    size_t n = 5;
    CU_ASSERT_EQUAL(yti_queue_pop_many(q, YTI_FOREVER, b, 2, &n), YT_ECLOSED);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(yti_queue_wait(q, YTI_FOREVER), YT_ECLOSED);
    CU_ASSERT_PTR_NULL(yti_queue_peek(q));
    CU_ASSERT_EQUAL(yti_queue_len(q), 2);
    CU_ASSERT_EQUAL(yti_queue_clear(q), 2);
    CU_ASSERT_EQUAL(yti_queue_len(q), 0);
    CU_ASSERT_EQUAL(yti_queue_clear(q), 0);
    yti_queue_free(q);
}

/* clear releases everything (also after growth) and the queue stays usable. */
static void test_clear(void)
{
    yti_queue *q = yti_queue_new(1000, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_pkg *h = mk(0);
    for (int i = 0; i < 200; i++)
        yti_queue_push(q, yti_pkg_ref(h));
    CU_ASSERT_EQUAL(atomic_load(&h->refs), 201u);
    CU_ASSERT_EQUAL(yti_queue_clear(q), 200);
    CU_ASSERT_EQUAL(atomic_load(&h->refs), 1u);
    yti_pkg_unref(h);
    for (uint64_t i = 0; i < 40; i++)
        yti_queue_push(q, mk(i));
    bool ok = true;
    for (uint64_t i = 0; i < 40; i++)
        ok &= pop_slot(q) == i;
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(yti_queue_pushed(q), 240);
    yti_queue_free(q);
}

/* ---- blocking calls on other threads ---- */

enum op { OP_POP, OP_POP_MANY, OP_WAIT, OP_THROTTLED, OP_WAIT_BELOW };

typedef struct job {
    yti_queue *q;
    enum op op;
    uint64_t deadline;
    yti_pkg *pkg; /* for OP_THROTTLED (consumed) */
    size_t threshold;
    size_t max_bytes; /* for OP_WAIT_BELOW; 0: no byte limit */
    double max_wait;
    atomic_int started;
    int rc;
    uint64_t slot; /* slot of the package taken, or UINT64_MAX */
    double elapsed;
    yti_thread t;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    j->slot = UINT64_MAX;
    /* The clock is read before announcing the start, so elapsed covers every settle time. */
    uint64_t t0 = yti_now();
    atomic_store(&j->started, 1);
    switch (j->op) {
    case OP_POP: {
        yti_pkg *p = NULL;
        j->rc = yti_queue_pop(j->q, j->deadline, &p);
        if (j->rc == YT_OK) {
            j->slot = p->slot;
            yti_pkg_unref(p);
        }
        break;
    }
    case OP_POP_MANY: {
        yti_pkg *b[1];
        size_t n = 0;
        j->rc = yti_queue_pop_many(j->q, j->deadline, b, 1, &n);
        if (j->rc == YT_OK && n == 1) {
            j->slot = b[0]->slot;
            yti_pkg_unref(b[0]);
        }
        break;
    }
    case OP_WAIT:
        j->rc = yti_queue_wait(j->q, j->deadline);
        break;
    case OP_THROTTLED:
        j->rc = yti_queue_push_throttled(j->q, j->pkg, j->threshold, j->max_wait);
        break;
    case OP_WAIT_BELOW:
        j->rc = yti_queue_wait_below(j->q, j->threshold, j->max_bytes ? j->max_bytes : SIZE_MAX,
                                     j->deadline);
        break;
    }
    j->elapsed = elapsed_since(t0);
    return NULL;
}

/* Starts j and returns once the thread is about to make its call; `settle` seconds later it is
 * blocked in it (give it time: nothing observable tells us). */
static void job_start(job *j, double settle)
{
    atomic_init(&j->started, 0);
    memset(&j->t, 0, sizeof j->t);
    CU_ASSERT_EQUAL_FATAL(yti_thread_start(&j->t, job_main, j, "yt-qtest", 0), YT_OK);
    while (!atomic_load(&j->started))
        yti_sleep(0.001);
    yti_sleep(settle);
}

/* Close wakes every kind of waiter at once with YT_ECLOSED. */
static void test_close_wakes(void)
{
    yti_queue *q = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_queue_set_consumer(q, true);
    yti_queue_push(q, mk(0)); /* so the throttled push (threshold 1) has to wait */
    yti_pkg *h = mk(42);
    /* Throttled pushers need a non-empty queue (q), poppers an empty one (e). */
    yti_queue *e = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    job jobs[4] = {
        {.q = q, .op = OP_THROTTLED, .pkg = yti_pkg_ref(h), .threshold = 1, .max_wait = -1},
        {.q = e, .op = OP_WAIT, .deadline = YTI_FOREVER},
        {.q = q, .op = OP_THROTTLED, .pkg = yti_pkg_ref(h), .threshold = 1, .max_wait = 30},
        {.q = e, .op = OP_POP, .deadline = YTI_FOREVER},
    };
    job more = {.q = e, .op = OP_POP_MANY, .deadline = yti_deadline(30)};
    for (int i = 0; i < 4; i++)
        job_start(&jobs[i], 0);
    job_start(&more, 0.1);
    CU_ASSERT_EQUAL(yti_queue_len(q), 1); /* the throttled pushes are still waiting */
    uint64_t t0 = yti_now();
    yti_queue_close(q);
    yti_queue_close(e);
    for (int i = 0; i < 4; i++)
        yti_thread_join(&jobs[i].t);
    yti_thread_join(&more.t);
    CU_ASSERT(elapsed_since(t0) < 1.0);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(jobs[i].rc, YT_ECLOSED);
        CU_ASSERT(jobs[i].elapsed >= 0.1);
    }
    CU_ASSERT_EQUAL(more.rc, YT_ECLOSED);
    CU_ASSERT(more.elapsed >= 0.1);
    /* The refused throttled packages were released. */
    CU_ASSERT_EQUAL(atomic_load(&h->refs), 1u);
    yti_pkg_unref(h);
    CU_ASSERT_EQUAL(yti_queue_len(q), 1);
    yti_queue_free(q);
    yti_queue_free(e);
}

/* A push wakes a blocked pop, pop_many and wait; with a waiter that takes nothing (wait) asleep
 * beside two poppers, both poppers still get a package. */
static void test_push_wakes(void)
{
    yti_queue *q = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    job w = {.q = q, .op = OP_WAIT, .deadline = yti_deadline(5)};
    job p1 = {.q = q, .op = OP_POP, .deadline = yti_deadline(5)};
    job p2 = {.q = q, .op = OP_POP_MANY, .deadline = yti_deadline(5)};
    job_start(&w, 0);
    job_start(&p1, 0);
    job_start(&p2, 0.1);
    yti_queue_push(q, mk(1));
    yti_queue_push(q, mk(2));
    yti_thread_join(&p1.t);
    yti_thread_join(&p2.t);
    /* wait() reports a non-empty queue when it runs: if the poppers emptied it first, it sleeps
     * on until the close. */
    yti_queue_close(q);
    yti_thread_join(&w.t);
    CU_ASSERT(w.rc == YT_OK || w.rc == YT_ECLOSED);
    CU_ASSERT_EQUAL(p1.rc, YT_OK);
    CU_ASSERT_EQUAL(p2.rc, YT_OK);
    CU_ASSERT(p1.elapsed < 2.0);
    CU_ASSERT(p2.elapsed < 2.0);
    CU_ASSERT((p1.slot == 1 && p2.slot == 2) || (p1.slot == 2 && p2.slot == 1));
    CU_ASSERT_EQUAL(yti_queue_len(q), 0);

    /* A lone wait() is woken by a push and leaves the package queued. */
    yti_queue *r = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    job w2 = {.q = r, .op = OP_WAIT, .deadline = yti_deadline(5)};
    job_start(&w2, 0.1);
    yti_queue_push(r, mk(3));
    yti_thread_join(&w2.t);
    CU_ASSERT_EQUAL(w2.rc, YT_OK);
    CU_ASSERT(w2.elapsed >= 0.1);
    CU_ASSERT(w2.elapsed < 2.0);
    CU_ASSERT_EQUAL(yti_queue_len(r), 1);
    yti_queue_free(r);
    yti_queue_free(q);
}

/* Without a consumer the throttled push never waits, whatever the length. */
static void test_throttled_no_consumer(void)
{
    yti_queue *q = yti_queue_new(100, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    uint64_t t0 = yti_now();
    for (uint64_t i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(yti_queue_push_throttled(q, mk(i), 4, 10.0), YT_OK);
    CU_ASSERT(elapsed_since(t0) < 1.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 20);
    /* Detaching again after attaching restores that. */
    yti_queue_set_consumer(q, true);
    yti_queue_set_consumer(q, false);
    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_push_throttled(q, mk(20), 4, 10.0), YT_OK);
    CU_ASSERT(elapsed_since(t0) < 1.0);
    /* Below the threshold a consumer does not slow the push either. */
    yti_queue_clear(q);
    yti_queue_set_consumer(q, true);
    t0 = yti_now();
    for (uint64_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(yti_queue_push_throttled(q, mk(i), 4, 10.0), YT_OK);
    CU_ASSERT(elapsed_since(t0) < 1.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 4);
    yti_queue_free(q);
}

/* With a consumer and len >= threshold the push waits for a pop that leaves at most threshold;
 * a pop that leaves more does not release it. */
static void test_throttled_released_by_pop(void)
{
    yti_queue *q = yti_queue_new(100, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_queue_set_consumer(q, true);
    for (uint64_t i = 0; i < 4; i++)
        yti_queue_push(q, mk(i));
    job j = {.q = q, .op = OP_THROTTLED, .pkg = mk(99), .threshold = 2, .max_wait = 10.0};
    job_start(&j, 0.1);
    CU_ASSERT_EQUAL(yti_queue_len(q), 4);
    CU_ASSERT_EQUAL(pop_slot(q), 0); /* leaves 3 > 2: still waiting */
    yti_sleep(0.1);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    CU_ASSERT_EQUAL(pop_slot(q), 1); /* leaves 2: released */
    yti_thread_join(&j.t);
    CU_ASSERT_EQUAL(j.rc, YT_OK);
    CU_ASSERT(j.elapsed >= 0.2);
    CU_ASSERT(j.elapsed < 5.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    CU_ASSERT_EQUAL(pop_slot(q), 2);
    CU_ASSERT_EQUAL(pop_slot(q), 3);
    CU_ASSERT_EQUAL(pop_slot(q), 99);

    /* pop_many and clear release too. */
    for (uint64_t i = 0; i < 4; i++)
        yti_queue_push(q, mk(i));
    job k = {.q = q, .op = OP_THROTTLED, .pkg = mk(98), .threshold = 3, .max_wait = 10.0};
    job_start(&k, 0.1);
    yti_pkg *b[2];
    size_t n = 0;
    CU_ASSERT_EQUAL(yti_queue_pop_many(q, 0, b, 2, &n), YT_OK);
    CU_ASSERT_EQUAL(n, 2);
    yti_pkg_unref(b[0]);
    yti_pkg_unref(b[1]);
    yti_thread_join(&k.t);
    CU_ASSERT_EQUAL(k.rc, YT_OK);
    CU_ASSERT(k.elapsed < 5.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    job c = {.q = q, .op = OP_THROTTLED, .pkg = mk(97), .threshold = 3, .max_wait = 10.0};
    job_start(&c, 0.1);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    CU_ASSERT_EQUAL(yti_queue_clear(q), 3);
    yti_thread_join(&c.t);
    CU_ASSERT_EQUAL(c.rc, YT_OK);
    CU_ASSERT(c.elapsed < 5.0);
    CU_ASSERT_EQUAL(pop_slot(q), 97);
    yti_queue_free(q);
}

/* Detaching the consumer releases a waiting throttled push. */
static void test_throttled_released_by_detach(void)
{
    yti_queue *q = yti_queue_new(100, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_queue_set_consumer(q, true);
    yti_queue_push(q, mk(0));
    job j = {.q = q, .op = OP_THROTTLED, .pkg = mk(1), .threshold = 1, .max_wait = 10.0};
    job_start(&j, 0.1);
    CU_ASSERT_EQUAL(yti_queue_len(q), 1);
    yti_queue_set_consumer(q, false);
    yti_thread_join(&j.t);
    CU_ASSERT_EQUAL(j.rc, YT_OK);
    CU_ASSERT(j.elapsed >= 0.1);
    CU_ASSERT(j.elapsed < 5.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 2);
    yti_queue_free(q);
}

/* Nobody pops: the push goes ahead after max_wait; 0 does not wait. A full queue discards at
 * once (as the reference's TinyPackageQueue: only 64 <= len < N waits, spec 12). */
static void test_throttled_max_wait(void)
{
    yti_queue *q = yti_queue_new(3, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_queue_set_consumer(q, true);
    yti_queue_push(q, mk(0));
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_push_throttled(q, mk(1), 1, 0.1), YT_OK);
    double e = elapsed_since(t0);
    CU_ASSERT(e >= 0.1);
    CU_ASSERT(e < 1.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 2);

    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_push_throttled(q, mk(2), 1, 0), YT_OK);
    CU_ASSERT(elapsed_since(t0) < 0.5);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);

    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_push_throttled(q, mk(3), 1, 10.0), YT_OK);
    CU_ASSERT(elapsed_since(t0) < 1.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);
    CU_ASSERT_EQUAL(yti_queue_discarded(q), 1);
    CU_ASSERT_EQUAL(pop_slot(q), 1);
    yti_queue_free(q);
}

/* wait_below: returns at once without a consumer or at len <= threshold; otherwise waits for
 * that state (a pop that leaves more does not end it), the deadline, a detach or close. */
/* The byte count follows every way in and out (wire size: header plus payload), and
 * wait_below also waits for it to come down to max_bytes. */
static void test_wait_below_bytes(void)
{
    const size_t w = YTI_HEADER_SIZE + 1000;
    char big[1000] = {0};
    yti_queue *q = yti_queue_new(100, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint64_t i = 0; i < 5; i++)
        yti_queue_push(q, yti_pkg_from(big, sizeof big, i, 0, 0));
    CU_ASSERT_EQUAL(yti_queue_bytes_hint(q), 5 * w);
    yti_pkg *p = NULL;
    CU_ASSERT_EQUAL_FATAL(yti_queue_pop(q, 0, &p), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_bytes_hint(q), 4 * w);
    yti_queue_push_front(q, p);
    CU_ASSERT_EQUAL(yti_queue_bytes_hint(q), 5 * w);
    yti_queue_push(q, mk(5)); /* 1-byte payload */
    CU_ASSERT_EQUAL(yti_queue_bytes_hint(q), 5 * w + YTI_HEADER_SIZE + 1);
    yti_queue_set_consumer(q, true);
    /* Few enough packages, too many bytes: waits. */
    CU_ASSERT_EQUAL(yti_queue_wait_below(q, 100, 2 * w, 0), YT_ETIMEDOUT);
    CU_ASSERT_EQUAL(yti_queue_wait_below(q, 100, 6 * w, 0), YT_OK);

    job j = {.q = q, .op = OP_WAIT_BELOW, .threshold = 100, .max_bytes = 3 * w,
             .deadline = yti_deadline(10)};
    job_start(&j, 0.1);
    CU_ASSERT_EQUAL(pop_slot(q), 0); /* 4 big and the small one: still waiting */
    CU_ASSERT_EQUAL(pop_slot(q), 1);
    yti_sleep(0.1);
    CU_ASSERT_EQUAL(pop_slot(q), 2); /* 2 big and the small one: done */
    yti_thread_join(&j.t);
    CU_ASSERT_EQUAL(j.rc, YT_OK);
    CU_ASSERT(j.elapsed >= 0.2);
    CU_ASSERT(j.elapsed < 5.0);
    CU_ASSERT_EQUAL(yti_queue_clear(q), 3);
    CU_ASSERT_EQUAL(yti_queue_bytes_hint(q), 0);
    yti_queue_free(q);
}

static void test_wait_below(void)
{
    yti_queue *q = yti_queue_new(100, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint64_t i = 0; i < 5; i++)
        yti_queue_push(q, mk(i));
    uint64_t t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_wait_below(q, 2, SIZE_MAX, YTI_FOREVER), YT_OK); /* no consumer */
    yti_queue_set_consumer(q, true);
    /* 5 is not more than 5 */
    CU_ASSERT_EQUAL(yti_queue_wait_below(q, 5, SIZE_MAX, YTI_FOREVER), YT_OK);
    CU_ASSERT(elapsed_since(t0) < 0.5);
    CU_ASSERT_EQUAL(yti_queue_wait_below(q, 4, SIZE_MAX, 0), YT_ETIMEDOUT);
    CU_ASSERT(elapsed_since(t0) < 0.5);

    t0 = yti_now();
    CU_ASSERT_EQUAL(yti_queue_wait_below(q, 4, SIZE_MAX, yti_deadline(0.05)), YT_ETIMEDOUT);
    double e = elapsed_since(t0);
    CU_ASSERT(e >= 0.05);
    CU_ASSERT(e < 1.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 5); /* nothing pushed */

    /* Released by pops. */
    job j = {.q = q, .op = OP_WAIT_BELOW, .threshold = 3, .deadline = yti_deadline(10)};
    job_start(&j, 0.1);
    CU_ASSERT_EQUAL(pop_slot(q), 0); /* 4 left: still waiting */
    yti_sleep(0.1);
    CU_ASSERT_EQUAL(pop_slot(q), 1); /* 3 left: done */
    yti_thread_join(&j.t);
    CU_ASSERT_EQUAL(j.rc, YT_OK);
    CU_ASSERT(j.elapsed >= 0.2);
    CU_ASSERT(j.elapsed < 5.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 3);

    /* Released by a detach. */
    job d = {.q = q, .op = OP_WAIT_BELOW, .threshold = 1, .deadline = yti_deadline(10)};
    job_start(&d, 0.1);
    yti_queue_set_consumer(q, false);
    yti_thread_join(&d.t);
    CU_ASSERT_EQUAL(d.rc, YT_OK);
    CU_ASSERT(d.elapsed >= 0.1);
    CU_ASSERT(d.elapsed < 5.0);

    /* Woken by close. */
    yti_queue_set_consumer(q, true);
    job c = {.q = q, .op = OP_WAIT_BELOW, .threshold = 1, .deadline = YTI_FOREVER};
    job_start(&c, 0.1);
    yti_queue_close(q);
    yti_thread_join(&c.t);
    CU_ASSERT_EQUAL(c.rc, YT_ECLOSED);
    CU_ASSERT(c.elapsed >= 0.1);
    CU_ASSERT(c.elapsed < 5.0);
    CU_ASSERT_EQUAL(yti_queue_wait_below(q, 1000, SIZE_MAX, 0), YT_ECLOSED);
    yti_queue_free(q);
}

/* ---- stress: 2 producers, 2 consumers ---- */

#define STRESS_PER_PRODUCER 100000
#define SENTINEL UINT64_C(77)

typedef struct stress {
    yti_queue *q;
    bool throttled;
    atomic_uchar *seen; /* [2][STRESS_PER_PRODUCER] */
    atomic_uint_fast64_t popped;
} stress;

typedef struct worker {
    stress *s;
    int id;
    bool batch;
    int errors; /* out of order, duplicate, or unexpected error */
    yti_thread t;
} worker;

static void *producer_main(void *arg)
{
    worker *w = arg;
    for (uint64_t i = 0; i < STRESS_PER_PRODUCER; i++) {
        yti_pkg *p = yti_pkg_new(0);
        if (!p) {
            w->errors++;
            continue;
        }
        p->slot = (uint64_t)w->id;
        p->source_seq = i;
        int rc = w->s->throttled ? yti_queue_push_throttled(w->s->q, p, 64, 1.0)
                                 : yti_queue_push(w->s->q, p);
        if (rc != YT_OK)
            w->errors++;
    }
    return NULL;
}

/* Returns false on the sentinel. */
static bool consume(worker *w, yti_pkg *p, uint64_t last[2])
{
    bool go_on = true;
    if (p->slot == SENTINEL) {
        go_on = false;
    } else if (p->slot > 1 || p->source_seq >= STRESS_PER_PRODUCER) {
        w->errors++;
    } else {
        /* Each producer's packages come out in order, also as seen by one of two consumers. */
        if (last[p->slot] != UINT64_MAX && p->source_seq <= last[p->slot])
            w->errors++;
        last[p->slot] = p->source_seq;
        if (atomic_exchange(&w->s->seen[p->slot * STRESS_PER_PRODUCER + p->source_seq], 1))
            w->errors++;
    }
    atomic_fetch_add(&w->s->popped, 1);
    yti_pkg_unref(p);
    return go_on;
}

static void *consumer_main(void *arg)
{
    worker *w = arg;
    uint64_t last[2] = {UINT64_MAX, UINT64_MAX};
    for (;;) {
        if (w->batch) {
            yti_pkg *b[32];
            size_t n = 0;
            if (yti_queue_pop_many(w->s->q, yti_deadline(20), b, 32, &n) != YT_OK) {
                w->errors++;
                return NULL;
            }
            bool go_on = true;
            for (size_t i = 0; i < n; i++)
                go_on &= consume(w, b[i], last);
            if (!go_on)
                return NULL;
        } else {
            yti_pkg *p = NULL;
            if (yti_queue_pop(w->s->q, yti_deadline(20), &p) != YT_OK) {
                w->errors++;
                return NULL;
            }
            if (!consume(w, p, last))
                return NULL;
        }
    }
}

/* Runs the four threads; after the producers finish, one sentinel per consumer goes in with
 * push_unbounded (never discarded), and FIFO order puts it after everything else. */
static void run_stress(stress *s)
{
    s->seen = calloc(2 * STRESS_PER_PRODUCER, sizeof *s->seen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->seen);
    atomic_init(&s->popped, 0);
    worker prod[2], cons[2];
    memset(prod, 0, sizeof prod);
    memset(cons, 0, sizeof cons);
    for (int i = 0; i < 2; i++) {
        cons[i].s = s;
        cons[i].batch = i == 1;
        CU_ASSERT_EQUAL_FATAL(yti_thread_start(&cons[i].t, consumer_main, &cons[i], "yt-cons", 0),
                              YT_OK);
    }
    for (int i = 0; i < 2; i++) {
        prod[i].s = s;
        prod[i].id = i;
        CU_ASSERT_EQUAL_FATAL(yti_thread_start(&prod[i].t, producer_main, &prod[i], "yt-prod", 0),
                              YT_OK);
    }
    for (int i = 0; i < 2; i++)
        yti_thread_join(&prod[i].t);
    /* One sentinel per consumer, the second only after the first was taken, so the batching
     * consumer cannot take both. */
    yti_queue_push_unbounded(s->q, yti_pkg_from("s", 1, SENTINEL, 0, 0));
    while (yti_queue_len(s->q) != 0)
        yti_sleep(0.001);
    yti_queue_push_unbounded(s->q, yti_pkg_from("s", 1, SENTINEL, 0, 0));
    for (int i = 0; i < 2; i++) {
        yti_thread_join(&cons[i].t);
        CU_ASSERT_EQUAL(cons[i].errors, 0);
        CU_ASSERT_EQUAL(prod[i].errors, 0);
    }
}

static uint64_t count_seen(const stress *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < 2 * STRESS_PER_PRODUCER; i++)
        n += atomic_load(&s->seen[i]);
    return n;
}

/* Large max: nothing is lost, nothing duplicated, per-producer order kept. */
/* push_many: in order, with the discard modes and counters of n single pushes; the length
 * hint follows; one wake-up reaches a sleeping popper. */
static void test_push_many_and_hint(void)
{
    for (int mode = 0; mode < 2; mode++) {
        yti_queue *q = yti_queue_new(5, mode ? YT_DISCARD_NEW : YT_DISCARD_OLD);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        yti_pkg *v[8];
        for (uint64_t i = 0; i < 8; i++)
            v[i] = mk(i);
        CU_ASSERT_EQUAL(yti_queue_push_many(q, v, 8), YT_OK);
        CU_ASSERT_EQUAL(yti_queue_len(q), 5);
        CU_ASSERT_EQUAL(yti_queue_len_hint(q), 5);
        CU_ASSERT_EQUAL(yti_queue_discarded(q), 3);
        CU_ASSERT_EQUAL(yti_queue_pushed(q), mode ? 5 : 8);
        for (uint64_t i = 0; i < 5; i++)
            CU_ASSERT_EQUAL(pop_slot(q), mode ? i : i + 3); /* new: 0..4 kept; old: 3..7 */
        CU_ASSERT_EQUAL(yti_queue_len_hint(q), 0);
        yti_queue_close(q);
        v[0] = mk(9);
        CU_ASSERT_EQUAL(yti_queue_push_many(q, v, 1), YT_ECLOSED); /* consumed anyway */
        yti_queue_free(q);
    }
    yti_queue *q = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    job j = {.q = q, .op = OP_POP, .deadline = yti_deadline(5)};
    job_start(&j, 0.05);
    yti_pkg *v[3] = {mk(7), mk(8), mk(9)};
    CU_ASSERT_EQUAL(yti_queue_push_many(q, v, 3), YT_OK);
    yti_thread_join(&j.t);
    CU_ASSERT_EQUAL(j.rc, YT_OK);
    CU_ASSERT_EQUAL(j.slot, 7);
    CU_ASSERT(j.elapsed < 2.0);
    CU_ASSERT_EQUAL(yti_queue_len_hint(q), 2);
    yti_queue_free(q);
}

/* push_many_later leaves the wake-up to the caller: what it reports wakes a sleeping popper
 * (which would otherwise sleep until its 5 s deadline); nobody asleep asks for nothing, and
 * the caller's *wake is only ever raised. */
static void test_push_later_and_wake(void)
{
    yti_queue *q = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    yti_pkg *v[2] = {mk(1), mk(2)};
    int wake = YTI_WAKE_NONE;
    CU_ASSERT_EQUAL(yti_queue_push_many_later(q, v, 2, &wake), YT_OK);
    CU_ASSERT_EQUAL(wake, YTI_WAKE_NONE);
    CU_ASSERT_EQUAL(yti_queue_len(q), 2);
    wake = YTI_WAKE_ALL;
    v[0] = mk(3);
    CU_ASSERT_EQUAL(yti_queue_push_many_later(q, v, 1, &wake), YT_OK);
    CU_ASSERT_EQUAL(wake, YTI_WAKE_ALL);
    for (uint64_t i = 1; i <= 3; i++)
        CU_ASSERT_EQUAL(pop_slot(q), i);

    job j = {.q = q, .op = OP_POP, .deadline = yti_deadline(5)};
    job_start(&j, 0.05);
    v[0] = mk(7);
    wake = YTI_WAKE_NONE;
    CU_ASSERT_EQUAL(yti_queue_push_many_later(q, v, 1, &wake), YT_OK);
    yti_queue_wake(q, wake);
    yti_thread_join(&j.t);
    CU_ASSERT_EQUAL(j.rc, YT_OK);
    CU_ASSERT_EQUAL(j.slot, 7);
    CU_ASSERT(j.elapsed < 2.0);
    yti_queue_close(q);
    v[0] = mk(9);
    CU_ASSERT_EQUAL(yti_queue_push_many_later(q, v, 1, &wake), YT_ECLOSED); /* consumed */
    yti_queue_free(q);
}

/* A kick ends a yti_queue_wait on an empty queue with YT_OK, once; the next wait times out. */
static void test_kick(void)
{
    yti_queue *q = yti_queue_new(10, YT_DISCARD_OLD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    job j = {.q = q, .op = OP_WAIT, .deadline = yti_deadline(5)};
    job_start(&j, 0.05);
    yti_queue_kick(q);
    yti_thread_join(&j.t);
    CU_ASSERT_EQUAL(j.rc, YT_OK);
    CU_ASSERT(j.elapsed < 2.0);
    CU_ASSERT_EQUAL(yti_queue_len(q), 0);
    /* A kick before the wait is kept for it; it is used up once. */
    yti_queue_kick(q);
    CU_ASSERT_EQUAL(yti_queue_wait(q, yti_deadline(0.05)), YT_OK);
    CU_ASSERT_EQUAL(yti_queue_wait(q, yti_deadline(0.05)), YT_ETIMEDOUT);
    /* Closed wins over a kick. */
    yti_queue_kick(q);
    yti_queue_close(q);
    CU_ASSERT_EQUAL(yti_queue_wait(q, 0), YT_ECLOSED);
    yti_queue_free(q);
}

static void test_stress_lossless(void)
{
    for (int throttled = 0; throttled < 2; throttled++) {
        stress s = {.q = yti_queue_new(2 * STRESS_PER_PRODUCER + 10, YT_DISCARD_OLD),
                    .throttled = throttled};
        CU_ASSERT_PTR_NOT_NULL_FATAL(s.q);
        if (throttled)
            yti_queue_set_consumer(s.q, true);
        run_stress(&s);
        CU_ASSERT_EQUAL(count_seen(&s), 2 * STRESS_PER_PRODUCER);
        CU_ASSERT_EQUAL(atomic_load(&s.popped), 2 * STRESS_PER_PRODUCER + 2);
        CU_ASSERT_EQUAL(yti_queue_pushed(s.q), 2 * STRESS_PER_PRODUCER + 2);
        CU_ASSERT_EQUAL(yti_queue_discarded(s.q), 0);
        CU_ASSERT_EQUAL(yti_queue_len(s.q), 0);
        free(s.seen);
        yti_queue_free(s.q);
    }
}

/* Small max: packages are dropped, but every one is accounted for exactly. */
static void test_stress_accounting(void)
{
    const uint64_t offered = 2 * STRESS_PER_PRODUCER + 2; /* with the sentinels */
    for (int mode = 0; mode < 2; mode++) {
        stress s = {.q = yti_queue_new(16, mode ? YT_DISCARD_NEW : YT_DISCARD_OLD)};
        CU_ASSERT_PTR_NOT_NULL_FATAL(s.q);
        run_stress(&s);
        uint64_t popped = atomic_load(&s.popped), pushed = yti_queue_pushed(s.q),
                 discarded = yti_queue_discarded(s.q);
        CU_ASSERT_EQUAL(yti_queue_len(s.q), 0);
        CU_ASSERT_EQUAL(count_seen(&s) + 2, popped);
        if (mode == 0) {
            /* "old": every push is counted, the dropped ones come out of the queue. */
            CU_ASSERT_EQUAL(pushed, offered);
            CU_ASSERT_EQUAL(pushed, popped + discarded + yti_queue_len(s.q));
        } else {
            /* "new": a dropped package never entered, so it is not counted as pushed. */
            CU_ASSERT_EQUAL(pushed + discarded, offered);
            CU_ASSERT_EQUAL(pushed, popped + yti_queue_len(s.q));
        }
        free(s.seen);
        yti_queue_free(s.q);
    }
}

void yt_suite_queue(void)
{
    static const yt_test_def t[] = {{"fifo", test_fifo},
                                    {"discard_old", test_discard_old},
                                    {"discard_new", test_discard_new},
                                    {"growth_wrap", test_growth_wrap},
                                    {"pop_timeout", test_pop_timeout},
                                    {"pop_many", test_pop_many},
                                    {"peek_push_front", test_peek_push_front},
                                    {"push_unbounded", test_push_unbounded},
                                    {"close", test_close},
                                    {"clear", test_clear},
                                    {"close_wakes", test_close_wakes},
                                    {"push_wakes", test_push_wakes},
                                    {"throttled_no_consumer", test_throttled_no_consumer},
                                    {"throttled_released_by_pop", test_throttled_released_by_pop},
                                    {"throttled_released_by_detach",
                                     test_throttled_released_by_detach},
                                    {"throttled_max_wait", test_throttled_max_wait},
                                    {"wait_below", test_wait_below},
                                    {"wait_below_bytes", test_wait_below_bytes},
                                    {"push_many_and_hint", test_push_many_and_hint},
                                    {"kick", test_kick},
                                    {"push_later_and_wake", test_push_later_and_wake},
                                    {"stress_lossless", test_stress_lossless},
                                    {"stress_accounting", test_stress_accounting},
                                    {NULL, NULL}};
    yt_add_suite("queue", t);
}
