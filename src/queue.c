/*
 * queue.c - bounded FIFO queues of packages (spec 12): the reference's PackageQueue and, through
 * yti_queue_push_throttled, its TinyPackageQueue (the connection out-queue).
 *
 * Storage: a ring buffer of package pointers, each with its size on the wire, that starts small
 * (at most 16 slots) and doubles when full, never beyond `max` for bounded pushes, so the many
 * mostly-empty queues of a process (one per channel and connection, default max 10000) cost
 * little. push_front and
 * push_unbounded may grow it past `max`. The ring never shrinks, except that clear() returns it
 * to its initial size.
 *
 * Threads: any thread may call anything except yti_queue_free. One mutex guards all state. Two
 * condition variables (CLOCK_MONOTONIC, via platform.h): `nonempty` for pop/pop_many/wait, and
 * `drained` for throttled pushers. Each side counts its sleepers, and a push or pop signals only
 * when somebody sleeps, so the uncontended path is a lock, a store and an unlock. A push signals
 * one popper per package; if a yti_queue_wait() caller (who takes nothing) sleeps too, it
 * broadcasts instead, so the one wake-up is never spent on a thread that leaves the package
 * queued while a popper sleeps on. Packages released by a push (discarded or refused) are unref'd
 * after the lock is dropped, so a free never runs under it on the hot path (clear() is the
 * exception).
 *
 * Ordering: FIFO per queue; push_front puts a package before all others. No order between
 * queues.
 *
 * Throttling: every sleeping throttled pusher has a record on a list with its own threshold; a
 * pop (or clear) that leaves len <= threshold marks that record released and wakes the pushers.
 * So a pusher waits for the event "a pop brought the queue down to the threshold" (as the
 * reference's notifyAll in TinyPackageQueue.pop), not for a state that a competing pusher might
 * spoil again before it runs. Like the reference (spec 12), a throttled push into a queue that is
 * already full does not wait: it discards at once. A negative max_wait waits without a time
 * limit (the platform.h convention); 0 does not wait. yti_queue_wait_below sleeps on the same
 * list but waits for the state len <= threshold (re-checked after every wake-up).
 *
 * Counters: `pushed` counts every package accepted by push, push_throttled or push_unbounded,
 * including ones later dropped as the oldest by YT_DISCARD_OLD. A package refused under
 * YT_DISCARD_NEW never entered the queue and is counted in `discarded` only. push_front is a
 * put-back of a package already counted (after a pop/peek), so it does not count. Hence, when
 * nothing is put back, pushed == popped + cleared + discarded_old + len at all times, and
 * pushed + discarded_new == packages offered to accepting pushes. Packages refused after close
 * (or for lack of memory) count in neither.
 *
 * A full queue with len > max (after push_unbounded/push_front) stays over its bound: a bounded
 * push then drops one package (as the reference's deque does), it does not trim to max.
 *
 * Errors: YT_ECLOSED and YT_ETIMEDOUT set the thread's detail string; YT_ENOMEM (ring growth)
 * consumes the package as every other outcome does.
 */
#include "queue.h"

#include "platform.h"
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>

#define INITIAL_CAP 16

typedef struct throttle_waiter {
    size_t threshold;
    size_t max_bytes;
    bool released;
    struct throttle_waiter *next;
} throttle_waiter;

/* A queued package and its size on the wire, so that a pop need not read the package (its
 * memory was written last by the pushing thread, on another core: a cache miss per package
 * under the mutex, with the pusher waiting for it). */
typedef struct slot {
    yti_pkg *p;
    size_t w;
} slot;

struct yti_queue {
    yti_mutex mu;
    yti_cond nonempty;
    yti_cond drained;
    slot *ring;
    size_t cap;  /* slots in ring */
    size_t head; /* index of the first package */
    size_t len;
    atomic_size_t alen; /* len, mirrored for readers that take no lock (yti_queue_len_hint) */
    size_t bytes;       /* the queued packages' size on the wire (header and payload) */
    atomic_size_t abytes; /* bytes, mirrored (yti_queue_bytes_hint) */
    size_t max;
    yt_discard_mode mode;
    bool closed;
    bool consumer;
    bool kicked;               /* yti_queue_kick: the next yti_queue_wait returns at once */
    size_t poppers;            /* threads asleep in pop / pop_many */
    size_t watchers;           /* threads asleep in yti_queue_wait */
    throttle_waiter *throttled; /* throttled pushers asleep */
    uint64_t discarded;
    uint64_t pushed;
    yti_lead_fn lead;          /* see yti_queue_set_leader */
    void *lead_arg;
    bool leading;              /* a popper is in lead() */
    bool poked;                /* yti_queue_poke with no leader armed */
    void (*kick)(void *);      /* an armed leader's wake-up */
    void *kick_arg;
};

yti_queue *yti_queue_new(size_t max, yt_discard_mode mode)
{
    if (max < 1) {
        yti_error(YT_EINVAL, "Queue size must be at least 1");
        return NULL;
    }
    yti_queue *q = calloc(1, sizeof *q);
    if (!q) {
        yti_error(YT_ENOMEM, "Out of memory creating a queue");
        return NULL;
    }
    q->cap = max < INITIAL_CAP ? max : INITIAL_CAP;
    q->ring = malloc(q->cap * sizeof *q->ring);
    if (!q->ring) {
        free(q);
        yti_error(YT_ENOMEM, "Out of memory creating a queue");
        return NULL;
    }
    q->max = max;
    atomic_init(&q->alen, 0);
    atomic_init(&q->abytes, 0);
    q->mode = mode;
    yti_mutex_init(&q->mu);
    yti_cond_init(&q->nonempty);
    yti_cond_init(&q->drained);
    return q;
}

void yti_queue_free(yti_queue *q)
{
    if (!q)
        return;
    for (size_t i = 0, k = q->head; i < q->len; i++) {
        yti_pkg_unref(q->ring[k].p);
        if (++k == q->cap)
            k = 0;
    }
    free(q->ring);
    yti_cond_destroy(&q->drained);
    yti_cond_destroy(&q->nonempty);
    yti_mutex_destroy(&q->mu);
    free(q);
}

/* ---- ring helpers (mutex held) ---- */

/* Makes room for one more package. Bounded growth stops at max; unbounded growth doubles. */
static int grow(yti_queue *q, bool bounded)
{
    if (q->len < q->cap)
        return YT_OK;
    if (q->cap > SIZE_MAX / 2 / sizeof *q->ring)
        return yti_error(YT_ENOMEM, "Queue cannot grow beyond %zu packages", q->cap);
    size_t ncap = q->cap * 2;
    if (bounded && ncap > q->max && q->max > q->cap)
        ncap = q->max;
    slot *nring = malloc(ncap * sizeof *nring);
    if (!nring)
        return yti_error(YT_ENOMEM, "Out of memory growing a queue to %zu packages", ncap);
    /* Unwrap into the new ring so head becomes 0. */
    for (size_t i = 0, k = q->head; i < q->len; i++) {
        nring[i] = q->ring[k];
        if (++k == q->cap)
            k = 0;
    }
    free(q->ring);
    q->ring = nring;
    q->cap = ncap;
    q->head = 0;
    return YT_OK;
}

/* Counts a package of w bytes on the wire in (sign 1) or out (-1) of len and bytes. */
static void count(yti_queue *q, size_t w, int sign)
{
    if (sign > 0) {
        q->len++;
        q->bytes += w;
    } else {
        q->len--;
        q->bytes -= w;
    }
    atomic_store_explicit(&q->alen, q->len, memory_order_relaxed);
    atomic_store_explicit(&q->abytes, q->bytes, memory_order_relaxed);
}

static void append(yti_queue *q, yti_pkg *p)
{
    size_t k = q->head + q->len;
    if (k >= q->cap)
        k -= q->cap;
    size_t w = YTI_HEADER_SIZE + p->len;
    q->ring[k] = (slot){p, w};
    count(q, w, 1);
}

static yti_pkg *take_first(yti_queue *q)
{
    slot e = q->ring[q->head];
    if (++q->head == q->cap)
        q->head = 0;
    count(q, e.w, -1);
    return e.p;
}

/* Wakes an armed leader (mutex held). */
static void kick_leader(yti_queue *q)
{
    if (q->kick)
        q->kick(q->kick_arg);
}

/* Wakes sleepers in pop/pop_many/wait after a package was added. */
static void wake_poppers(yti_queue *q)
{
    if (q->watchers)
        yti_cond_broadcast(&q->nonempty);
    else if (q->poppers)
        yti_cond_signal(&q->nonempty);
}

/* After the queue shrank: releases every throttled pusher whose threshold is now met. */
static void release_throttled(yti_queue *q)
{
    bool any = false;
    for (throttle_waiter *w = q->throttled; w; w = w->next) {
        if (!w->released && q->len <= w->threshold && q->bytes <= w->max_bytes) {
            w->released = true;
            any = true;
        }
    }
    if (any)
        yti_cond_broadcast(&q->drained);
}

/*
 * The bounded push, mutex held. Returns the result and in *drop the package to unref after
 * unlocking (the refused, discarded or pushed-out one), or NULL.
 */
static int push_locked(yti_queue *q, yti_pkg *p, yti_pkg **drop, bool wake)
{
    *drop = NULL;
    if (q->closed) {
        *drop = p;
        return yti_error(YT_ECLOSED, "Queue is closed");
    }
    if (q->len >= q->max) {
        if (q->mode == YT_DISCARD_NEW) {
            q->discarded++;
            *drop = p;
            return YT_OK;
        }
        *drop = take_first(q);
        q->discarded++;
        /* A slot is free again, so no growth (and no failure) is needed. */
        append(q, p);
        q->pushed++;
        return YT_OK;
    }
    int rc = grow(q, true);
    if (rc) {
        *drop = p;
        return rc;
    }
    append(q, p);
    q->pushed++;
    kick_leader(q);
    if (wake)
        wake_poppers(q);
    return YT_OK;
}

/* ---- pushes ---- */

int yti_queue_push(yti_queue *q, yti_pkg *p)
{
    yti_pkg *drop;
    yti_mutex_lock(&q->mu);
    int rc = push_locked(q, p, &drop, true);
    yti_mutex_unlock(&q->mu);
    yti_pkg_unref(drop);
    return rc;
}

/* Pushes v[0..n) under one lock; returns in *wake whom to wake (YTI_WAKE_*). */
static int push_many(yti_queue *q, yti_pkg **v, size_t n, int *wake)
{
    int rc = YT_OK;
    *wake = YTI_WAKE_NONE;
    yti_mutex_lock(&q->mu);
    size_t before = q->len;
    for (size_t i = 0; i < n; i++) {
        /* v[i] now belongs to the queue; its slot carries what to release after unlocking. */
        int r = push_locked(q, v[i], &v[i], false);
        if (r && rc == YT_OK)
            rc = r;
    }
    if (q->len > before) {
        if (q->watchers || (q->poppers > 1 && q->len - before > 1))
            *wake = YTI_WAKE_ALL;
        else if (q->poppers)
            *wake = YTI_WAKE_ONE;
    }
    return rc;
}

int yti_queue_push_many(yti_queue *q, yti_pkg **v, size_t n)
{
    int wake;
    int rc = push_many(q, v, n, &wake);
    yti_mutex_unlock(&q->mu);
    yti_queue_wake(q, wake);
    for (size_t i = 0; i < n; i++)
        yti_pkg_unref(v[i]);
    return rc;
}

int yti_queue_push_many_later(yti_queue *q, yti_pkg **v, size_t n, int *wake)
{
    int w;
    int rc = push_many(q, v, n, &w);
    yti_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n; i++)
        yti_pkg_unref(v[i]);
    if (w > *wake)
        *wake = w;
    return rc;
}

void yti_queue_wake(yti_queue *q, int wake)
{
    /* Without the mutex is fine: a sleeper counted at the push either is still asleep and is
     * woken here, or woke meanwhile and found the packages under the mutex. */
    if (wake == YTI_WAKE_ALL)
        yti_cond_broadcast(&q->nonempty);
    else if (wake == YTI_WAKE_ONE)
        yti_cond_signal(&q->nonempty);
}

int yti_queue_push_throttled(yti_queue *q, yti_pkg *p, size_t threshold, double max_wait)
{
    yti_pkg *drop;
    yti_mutex_lock(&q->mu);
    if (q->consumer && !q->closed && q->len >= threshold && q->len < q->max) {
        uint64_t deadline = yti_deadline(max_wait);
        throttle_waiter self = {threshold, SIZE_MAX, false, q->throttled};
        q->throttled = &self;
        bool timed_out = false;
        while (!self.released && q->consumer && !q->closed && !timed_out)
            timed_out = !yti_cond_until(&q->drained, &q->mu, deadline);
        throttle_waiter **pp = &q->throttled;
        while (*pp != &self)
            pp = &(*pp)->next;
        *pp = self.next;
    }
    int rc = push_locked(q, p, &drop, true);
    yti_mutex_unlock(&q->mu);
    yti_pkg_unref(drop);
    return rc;
}

int yti_queue_wait_below(yti_queue *q, size_t threshold, size_t max_bytes, uint64_t deadline)
{
    int rc = YT_OK;
    yti_mutex_lock(&q->mu);
    /* Unlike push_throttled this waits for a state (len <= threshold), so the caller is not let
     * through by a pop whose effect a competing pusher already undid. It shares the throttled
     * list so pops and clear wake it the same way. */
    throttle_waiter self = {threshold, max_bytes, false, NULL};
    bool listed = false;
    for (;;) {
        if (q->closed) {
            rc = yti_error(YT_ECLOSED, "Queue is closed");
            break;
        }
        if (!q->consumer || (q->len <= threshold && q->bytes <= max_bytes))
            break;
        if (deadline == 0 || (deadline != YTI_FOREVER && yti_now() >= deadline)) {
            rc = yti_error(YT_ETIMEDOUT, "Timed out waiting for the queue to drain");
            break;
        }
        if (!listed) {
            self.next = q->throttled;
            q->throttled = &self;
            listed = true;
        }
        self.released = false;
        yti_cond_until(&q->drained, &q->mu, deadline);
    }
    if (listed) {
        throttle_waiter **pp = &q->throttled;
        while (*pp != &self)
            pp = &(*pp)->next;
        *pp = self.next;
    }
    yti_mutex_unlock(&q->mu);
    return rc;
}

/* A push that ignores the size bound: at the front (a put-back, not counted as pushed) or at the
 * back (counted). Consumes p. */
static int push_beyond_bound(yti_queue *q, yti_pkg *p, bool front)
{
    int rc = YT_OK;
    yti_mutex_lock(&q->mu);
    if (q->closed)
        rc = yti_error(YT_ECLOSED, "Queue is closed");
    else
        rc = grow(q, false);
    if (rc == YT_OK) {
        if (front) {
            q->head = q->head == 0 ? q->cap - 1 : q->head - 1;
            size_t w = YTI_HEADER_SIZE + p->len;
            q->ring[q->head] = (slot){p, w};
            count(q, w, 1);
        } else {
            append(q, p);
            q->pushed++;
        }
        kick_leader(q);
        wake_poppers(q);
    }
    yti_mutex_unlock(&q->mu);
    if (rc)
        yti_pkg_unref(p);
    return rc;
}

int yti_queue_push_front(yti_queue *q, yti_pkg *p)
{
    return push_beyond_bound(q, p, true);
}

int yti_queue_push_unbounded(yti_queue *q, yti_pkg *p)
{
    return push_beyond_bound(q, p, false);
}

/* ---- pops ---- */

/* Waits (mutex held) until the queue has a package; YT_OK, YT_ECLOSED or YT_ETIMEDOUT. A
 * sleeper that times out still takes a package that arrived meanwhile, so a signal it may have
 * swallowed is never lost. */
static int wait_nonempty(yti_queue *q, uint64_t deadline, size_t *sleepers)
{
    for (;;) {
        if (q->closed)
            return yti_error(YT_ECLOSED, "Queue is closed");
        if (q->len)
            return YT_OK;
        if (deadline == 0 || (deadline != YTI_FOREVER && yti_now() >= deadline))
            return yti_error(YT_ETIMEDOUT, "Timed out waiting for a package");
        if (q->lead && !q->leading) {
            q->leading = true;
            yti_mutex_unlock(&q->mu);
            int r = q->lead(q->lead_arg, q, deadline);
            yti_mutex_lock(&q->mu);
            q->leading = false;
            if (r == YTI_LEAD_DONE)
                continue;
            if (q->closed || q->len)
                continue;
        }
        (*sleepers)++;
        yti_cond_until(&q->nonempty, &q->mu, deadline);
        (*sleepers)--;
    }
}

int yti_queue_pop(yti_queue *q, uint64_t deadline, yti_pkg **out)
{
    yti_mutex_lock(&q->mu);
    int rc = wait_nonempty(q, deadline, &q->poppers);
    if (rc == YT_OK) {
        *out = take_first(q);
        if (q->throttled)
            release_throttled(q);
    }
    yti_mutex_unlock(&q->mu);
    return rc;
}

int yti_queue_pop_many(yti_queue *q, uint64_t deadline, yti_pkg **out, size_t cap, size_t *n)
{
    *n = 0;
    if (cap == 0)
        return yti_error(YT_EINVAL, "pop_many needs room for at least one package");
    yti_mutex_lock(&q->mu);
    int rc = wait_nonempty(q, deadline, &q->poppers);
    if (rc == YT_OK) {
        size_t k = 0;
        while (k < cap && q->len)
            out[k++] = take_first(q);
        *n = k;
        if (q->throttled)
            release_throttled(q);
    }
    yti_mutex_unlock(&q->mu);
    return rc;
}

yti_pkg *yti_queue_peek(yti_queue *q)
{
    yti_pkg *p = NULL;
    yti_mutex_lock(&q->mu);
    if (!q->closed && q->len)
        p = yti_pkg_ref(q->ring[q->head].p);
    yti_mutex_unlock(&q->mu);
    return p;
}

int yti_queue_wait(yti_queue *q, uint64_t deadline)
{
    int rc;
    yti_mutex_lock(&q->mu);
    for (;;) {
        if (q->closed) {
            rc = yti_error(YT_ECLOSED, "Queue is closed");
            break;
        }
        if (q->len || q->kicked) {
            rc = YT_OK;
            break;
        }
        if (deadline == 0 || (deadline != YTI_FOREVER && yti_now() >= deadline)) {
            rc = yti_error(YT_ETIMEDOUT, "Timed out waiting for a package");
            break;
        }
        q->watchers++;
        yti_cond_until(&q->nonempty, &q->mu, deadline);
        q->watchers--;
    }
    q->kicked = false;
    yti_mutex_unlock(&q->mu);
    return rc;
}

void yti_queue_kick(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    q->kicked = true;
    if (q->watchers)
        yti_cond_broadcast(&q->nonempty);
    yti_mutex_unlock(&q->mu);
}

/* ---- state ---- */

void yti_queue_set_consumer(yti_queue *q, bool active)
{
    yti_mutex_lock(&q->mu);
    q->consumer = active;
    /* Without a consumer nothing would ever drain the queue: let throttled pushers go. */
    if (!active && q->throttled)
        yti_cond_broadcast(&q->drained);
    yti_mutex_unlock(&q->mu);
}

void yti_queue_set_leader(yti_queue *q, yti_lead_fn lead, void *arg)
{
    yti_mutex_lock(&q->mu);
    q->lead = lead;
    q->lead_arg = arg;
    yti_mutex_unlock(&q->mu);
}

bool yti_queue_lead_arm(yti_queue *q, void (*kick)(void *), void *kick_arg)
{
    yti_mutex_lock(&q->mu);
    bool arm = !q->closed && !q->len && !q->poked;
    q->poked = false;
    if (arm) {
        q->kick = kick;
        q->kick_arg = kick_arg;
    }
    yti_mutex_unlock(&q->mu);
    return arm;
}

void yti_queue_poke(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    if (q->kick)
        kick_leader(q);
    else
        q->poked = true;
    yti_mutex_unlock(&q->mu);
}

void yti_queue_lead_disarm(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    q->kick = NULL;
    q->kick_arg = NULL;
    yti_mutex_unlock(&q->mu);
}

void yti_queue_close(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    if (!q->closed) {
        q->closed = true;
        kick_leader(q);
        if (q->poppers || q->watchers)
            yti_cond_broadcast(&q->nonempty);
        if (q->throttled)
            yti_cond_broadcast(&q->drained);
    }
    yti_mutex_unlock(&q->mu);
}

bool yti_queue_closed(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    bool c = q->closed;
    yti_mutex_unlock(&q->mu);
    return c;
}

size_t yti_queue_clear(yti_queue *q)
{
    /* Clearing is rare (closing a channel or connection), so the packages are released under the
     * lock. A ring that grew during a burst goes back to its initial size; the small one is
     * allocated before locking, and without it the big ring is simply kept. */
    slot *spare = malloc(INITIAL_CAP * sizeof *spare);
    yti_mutex_lock(&q->mu);
    size_t n = q->len;
    for (size_t i = 0, k = q->head; i < n; i++) {
        yti_pkg_unref(q->ring[k].p);
        if (++k == q->cap)
            k = 0;
    }
    q->head = 0;
    q->len = 0;
    q->bytes = 0;
    atomic_store_explicit(&q->alen, 0, memory_order_relaxed);
    atomic_store_explicit(&q->abytes, 0, memory_order_relaxed);
    if (spare && q->cap > INITIAL_CAP) {
        slot *big = q->ring;
        q->ring = spare;
        q->cap = INITIAL_CAP;
        spare = big;
    }
    if (q->throttled)
        release_throttled(q);
    yti_mutex_unlock(&q->mu);
    free(spare);
    return n;
}

size_t yti_queue_len(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    size_t n = q->len;
    yti_mutex_unlock(&q->mu);
    return n;
}

size_t yti_queue_len_hint(yti_queue *q)
{
    return atomic_load_explicit(&q->alen, memory_order_relaxed);
}

size_t yti_queue_bytes_hint(yti_queue *q)
{
    return atomic_load_explicit(&q->abytes, memory_order_relaxed);
}

size_t yti_queue_max(yti_queue *q)
{
    /* Fixed at creation: no lock needed. */
    return q->max;
}

uint64_t yti_queue_discarded(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    uint64_t n = q->discarded;
    yti_mutex_unlock(&q->mu);
    return n;
}

uint64_t yti_queue_pushed(yti_queue *q)
{
    yti_mutex_lock(&q->mu);
    uint64_t n = q->pushed;
    yti_mutex_unlock(&q->mu);
    return n;
}
