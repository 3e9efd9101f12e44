/*
 * events.c - event loops, signals and timers.
 *
 * A loop is one mutex guarding a FIFO of pending events (a singly linked deque: a negative
 * call_later delay pushes at the front), a binary min-heap of timer entries ordered by due time
 * (repeating timers and delayed calls), and a condition variable on CLOCK_MONOTONIC on which
 * yt_loop_process() waits. The same mutex also guards the state of every signal and timer made
 * on the loop, so there is a single lock per loop and no lock order to get wrong inside this
 * module; it is the innermost lock of the library (core.h), so nothing here calls out while
 * holding it.
 *
 * Threads: anything may post from any thread. Handlers, timer callbacks and delayed calls run
 * only on a thread inside yt_loop_process()/yt_loop_run(), always with the lock released, and
 * never on the posting thread (yt_signal_emit_now() excepted: it is synchronous by definition).
 * The host notifier of an embedded loop runs on the posting thread, after the loop lock is
 * released, under a separate notifier mutex so that yt_loop_embed() can promise that the old
 * notifier is not running any more when it returns.
 *
 * Ordering: one yt_loop_process() call takes the queue as it is on entry and runs it in order,
 * then the timer entries that are due (in due order, at most TIMER_BATCH of them per call; the
 * rest are due at once in the next call). Events queued by the handlers wait for the next call.
 *
 * Lifetime: the loop, signals and timers are reference counted under the loop lock.
 * - A queued event holds a reference on its signal; yt_signal_free() marks the signal dead and
 *   drops the owner's reference, so events reached later are dropped without touching freed
 *   memory. Each binding has an id; an event names the id, so events of an unbound handler are
 *   dropped even if the same (fn, user) is bound again.
 * - Signals, timers and calls of yt_loop_process()/yt_loop_run() hold a reference on the loop;
 *   yt_loop_free() closes it (drops queued events and timer entries, wakes waiters, waits until
 *   they have left) and drops the owner's reference. Signals and timers of a freed loop stay
 *   valid handles that do nothing.
 * - Freeing a signal or timer waits until its handlers/callbacks running on other threads have
 *   returned. The frames of the handlers running on the calling thread are kept in a
 *   thread-local stack, so a free from inside one's own handler (or from a nested process call
 *   inside it) does not wait for itself.
 *
 * Limits: the default loop is the only global state; it is made once and never freed. A timer
 * that fires late by more than one interval skips the missed ticks instead of bursting.
 */
#include "core.h"
#include "platform.h"
#include "util.h"

#include <stdatomic.h>

#include <stdlib.h>
#include <string.h>

#define NOT_IN_HEAP SIZE_MAX
/* Timer entries run by one process call; bounded so the batch lives on the stack. */
#define TIMER_BATCH 64
/* Timers further away than this (about 285 years) are treated as "never". */
#define MAX_NS 9000000000000000000ull
/* Longest single wait of a blocked process/run call (see process_locked). */
#define ALIVE_NS 250000000ull

/* An entry in the timer heap: a timer, or a delayed call (timer == NULL) owned by the heap. */
typedef struct tnode {
    uint64_t due;
    uint64_t seq; /* push order: entries due at the same time run first come, first served */
    size_t idx;   /* position in the heap, NOT_IN_HEAP when not in it */
    yt_timer *timer;
    yt_callback_fn fn;
    void *user;
} tnode;

/* A queued event: a plain call (sig == NULL) or one handler's share of a signal emission. */
typedef struct event {
    struct event *next;
    yt_signal *sig;
    uint64_t binding;
    yt_callback_fn fn;
    yt_callback_fn drop; /* plain calls: run instead of fn when the call is dropped */
    void *user;
    int flag;
    bool has_text;
    char text[];
} event;

typedef struct binding {
    yt_handler_fn fn;
    void *user;
    uint64_t id;
    bool pending; /* coalescing: an event for this handler is queued and has not started */
} binding;

struct yt_loop {
    yti_mutex mu;
    yti_cond wake; /* process/run waiters: event queued, timer set, stop, close */
    yti_cond idle; /* free/close waiters: a handler finished, a blocked waiter left */
    size_t refs;   /* owner + signals + timers + process/run calls in progress */
    size_t nwaiting;
    size_t idle_waiters;
    bool closed;
    bool stop;
    bool is_default;
    bool embedded; /* a notifier is set; read under mu so posting skips notify_mu otherwise */
    _Atomic uint64_t last_activity; /* monotonic ns of the last process/run call */
    event *head, *tail;
    tnode **heap;
    size_t nheap, heap_cap;
    /* Heap slots promised to live timers and pending delayed calls: pushes never allocate, so
     * rescheduling and putting entries back cannot fail. */
    size_t heap_reserved;
    uint64_t seq;
    yti_mutex notify_mu; /* held while the notifier runs; lock order notify_mu -> mu */
    yt_callback_fn notify;
    void *notify_user;
};

struct yt_signal {
    yt_loop *loop;
    void *source;
    bool coalesce;
    bool dead;
    size_t refs;    /* owner + queued events + emit_now calls in progress */
    size_t running; /* handlers running now, on any thread */
    binding *b;
    size_t nb, capb;
    atomic_size_t nbound; /* nb, readable without the lock: emitting to nobody costs nothing */
    uint64_t next_id;
    /* Optional: every queued event holds a reference on the source (yti_signal_set_source_hooks),
     * taken under the lock (ref must not lock anything) and dropped with the lock released. */
    void (*src_ref)(void *);
    void (*src_unref)(void *);
};

struct yt_timer {
    tnode node;
    yt_loop *loop;
    yt_callback_fn fn;
    void *user;
    uint64_t interval_ns; /* as configured */
    uint64_t period_ns;   /* as used since the last start */
    uint64_t gen;         /* bumped by start/stop: entries taken before belong to an old run */
    bool oneshot;
    bool armed;
    bool dead;
    size_t refs; /* owner + entries taken by a process call */
    size_t running;
};

/* What this thread is running right now (innermost first): lets free() from inside a handler
 * know that one of the running handlers is its own caller. */
typedef struct run_frame {
    const void *obj;
    const struct run_frame *prev;
} run_frame;

static _Thread_local const run_frame *running_here;

static size_t frames_of(const void *obj)
{
    size_t n = 0;
    for (const run_frame *f = running_here; f; f = f->prev)
        if (f->obj == obj)
            n++;
    return n;
}

static uint64_t secs_to_ns(double s)
{
    if (!(s > 0))
        return 0;
    if (s * 1e9 >= (double)MAX_NS)
        return MAX_NS;
    return (uint64_t)(s * 1e9);
}

static uint64_t add_ns(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - 1 - b ? UINT64_MAX - 1 : a + b;
}

/* ---- the timer heap ---- */

static bool before(const tnode *a, const tnode *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(yt_loop *l, size_t i, tnode *n)
{
    l->heap[i] = n;
    n->idx = i;
}

static void sift_up(yt_loop *l, size_t i)
{
    tnode *n = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(n, l->heap[p]))
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, n);
}

static void sift_down(yt_loop *l, size_t i)
{
    tnode *n = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!before(l->heap[c], n))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, n);
}

/* Makes room for one more reserved entry. */
static int heap_reserve(yt_loop *l)
{
    if (l->heap_reserved == l->heap_cap) {
        size_t cap = l->heap_cap ? 2 * l->heap_cap : 8;
        tnode **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            return yti_error(YT_ENOMEM, "Out of memory for a timer");
        l->heap = h;
        l->heap_cap = cap;
    }
    l->heap_reserved++;
    return YT_OK;
}

/* Never allocates: every entry that can be pushed holds a reservation. */
static void heap_push(yt_loop *l, tnode *n)
{
    n->seq = l->seq++;
    heap_set(l, l->nheap++, n);
    sift_up(l, n->idx);
}

static void heap_remove(yt_loop *l, tnode *n)
{
    size_t i = n->idx;
    if (i == NOT_IN_HEAP)
        return;
    n->idx = NOT_IN_HEAP;
    tnode *last = l->heap[--l->nheap];
    if (last != n) {
        heap_set(l, i, last);
        sift_down(l, i);
        sift_up(l, last->idx);
    }
}

/* ---- references ---- */

/* Drops one reference to sig (lock held). The last one frees it and its reference on the loop;
 * that is never the loop's last, because whoever calls this holds one more or checks after. */
static void signal_unref_locked(yt_signal *sig)
{
    if (--sig->refs > 0)
        return;
    sig->loop->refs--;
    free(sig->b);
    free(sig);
}

static void timer_unref_locked(yt_timer *t)
{
    if (--t->refs > 0)
        return;
    t->loop->refs--;
    free(t);
}

/* Frees an event (lock held on entry and exit). The source reference it may hold is dropped
 * with the lock released, because dropping it can free the source and with it the signal's
 * owner reference (yt_signal_free takes this lock); the event's own reference keeps sig alive
 * meanwhile. */
static void event_drop_locked(yt_loop *l, event *ev)
{
    yt_signal *sig = ev->sig;
    yt_callback_fn drop = ev->drop;
    void *user = ev->user;
    free(ev);
    if (!sig) {
        /* A plain call that will never run: let its owner release what it carries. */
        if (drop) {
            yti_mutex_unlock(&l->mu);
            drop(user);
            yti_mutex_lock(&l->mu);
        }
        return;
    }
    if (sig->src_unref) {
        void (*unref)(void *) = sig->src_unref;
        void *src = sig->source;
        yti_mutex_unlock(&l->mu);
        unref(src);
        yti_mutex_lock(&l->mu);
    }
    signal_unref_locked(sig);
}

static void loop_destroy(yt_loop *l)
{
    free(l->heap);
    yti_cond_destroy(&l->wake);
    yti_cond_destroy(&l->idle);
    yti_mutex_destroy(&l->notify_mu);
    yti_mutex_destroy(&l->mu);
    free(l);
}

/* Unlocks, and frees the loop if the caller's operation dropped its last reference. Nobody else
 * can be inside then: every way in holds a reference. */
static void loop_unlock(yt_loop *l)
{
    bool last = l->refs == 0;
    yti_mutex_unlock(&l->mu);
    if (last)
        loop_destroy(l);
}

static void wait_idle(yt_loop *l)
{
    l->idle_waiters++;
    yti_cond_wait(&l->idle, &l->mu);
    l->idle_waiters--;
}

static void wake_idle(yt_loop *l)
{
    if (l->idle_waiters)
        yti_cond_broadcast(&l->idle);
}

/* Calls the host notifier (lock not held). `embedded` was read under the lock when posting. */
static void notify_host(yt_loop *l, bool embedded)
{
    if (!embedded)
        return;
    yti_mutex_lock(&l->notify_mu);
    if (l->notify)
        l->notify(l->notify_user);
    yti_mutex_unlock(&l->notify_mu);
}

/* ---- loops ---- */

static yt_loop *loop_create(void)
{
    yt_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    yti_mutex_init(&l->mu);
    yti_mutex_init(&l->notify_mu);
    yti_cond_init(&l->wake);
    yti_cond_init(&l->idle);
    l->refs = 1;
    return l;
}

static yt_loop *default_loop;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void make_default(void)
{
    default_loop = loop_create();
    if (default_loop)
        default_loop->is_default = true;
}

yt_loop *yt_loop_default(void)
{
    pthread_once(&default_once, make_default);
    if (!default_loop)
        yti_error(YT_ENOMEM, "Out of memory for the default loop");
    return default_loop;
}

int yt_loop_new(yt_loop **out)
{
    if (!out)
        return yti_error(YT_EINVAL, "No place for the new loop");
    yt_loop *l = loop_create();
    if (!l)
        return yti_error(YT_ENOMEM, "Out of memory for a loop");
    *out = l;
    return YT_OK;
}

void yt_loop_free(yt_loop *l)
{
    /* The default loop is shared by the whole process; freeing it would pull it from under
     * every connection, so the call is ignored. */
    if (!l || l->is_default)
        return;
    yti_mutex_lock(&l->mu);
    l->closed = true;
    while (l->head) {
        event *ev = l->head;
        l->head = ev->next;
        event_drop_locked(l, ev);
    }
    l->tail = NULL;
    for (size_t i = 0; i < l->nheap; i++) {
        tnode *n = l->heap[i];
        n->idx = NOT_IN_HEAP;
        if (n->timer) {
            n->timer->armed = false;
        } else {
            l->heap_reserved--;
            free(n);
        }
    }
    l->nheap = 0;
    yti_cond_broadcast(&l->wake);
    while (l->nwaiting > 0)
        wait_idle(l);
    l->refs--;
    loop_unlock(l);
}

/* Splices the events from `batch` on (not run yet) back to the front of the queue. */
static void put_back_events(yt_loop *l, event *batch)
{
    if (!batch)
        return;
    event *last = batch;
    while (last->next)
        last = last->next;
    last->next = l->head;
    if (!l->head)
        l->tail = last;
    l->head = batch;
}

/* Calls one handler of sig (lock held on entry and exit, released around the call), marking it
 * running here so that freeing the signal from inside the handler does not wait for itself. */
static void call_handler(yt_loop *l, yt_signal *sig, yt_handler_fn fn, void *user, int flag,
                         const char *text)
{
    yt_event e = {sig, sig->source, flag, text};
    run_frame f = {sig, running_here};
    sig->running++;
    running_here = &f;
    yti_mutex_unlock(&l->mu);
    fn(&e, user);
    yti_mutex_lock(&l->mu);
    running_here = f.prev;
    sig->running--;
    wake_idle(l);
}

/* Runs one event (lock held on entry and exit, released around the handler). Frees ev.
 * Returns 1 if a handler ran, 0 if the event was stale. */
static int run_event(yt_loop *l, event *ev)
{
    if (!ev->sig) {
        yt_callback_fn fn = ev->fn;
        void *user = ev->user;
        free(ev);
        yti_mutex_unlock(&l->mu);
        fn(user);
        yti_mutex_lock(&l->mu);
        return 1;
    }
    yt_signal *sig = ev->sig;
    binding *b = NULL;
    if (!sig->dead)
        for (size_t i = 0; i < sig->nb && !b; i++)
            if (sig->b[i].id == ev->binding)
                b = &sig->b[i];
    if (!b) {
        event_drop_locked(l, ev);
        return 0;
    }
    /* Cleared before the handler runs, so an emission from inside it is not swallowed. */
    b->pending = false;
    call_handler(l, sig, b->fn, b->user, ev->flag, ev->has_text ? ev->text : NULL);
    event_drop_locked(l, ev);
    return 1;
}

typedef struct taken {
    tnode *node;
    uint64_t due;
    uint64_t gen;
} taken;

static bool taken_current(const taken *it)
{
    const yt_timer *t = it->node->timer;
    return !t->dead && t->armed && t->gen == it->gen;
}

/* Releases a taken entry that will not run. With put_back, a still-current one goes back into
 * the heap with its old due time, so it runs first thing in the next call. */
static void release_taken(yt_loop *l, taken *it, bool put_back)
{
    tnode *n = it->node;
    if (!n->timer) {
        if (put_back) {
            heap_push(l, n);
        } else {
            l->heap_reserved--;
            free(n);
        }
        return;
    }
    if (put_back && taken_current(it) && n->idx == NOT_IN_HEAP) {
        n->due = it->due;
        heap_push(l, n);
    }
    timer_unref_locked(n->timer);
}

/* Runs one taken timer entry (lock held on entry and exit). Returns 1 if a callback ran. */
static int run_taken(yt_loop *l, taken *it)
{
    tnode *n = it->node;
    if (!n->timer) {
        yt_callback_fn fn = n->fn;
        void *user = n->user;
        l->heap_reserved--;
        free(n);
        yti_mutex_unlock(&l->mu);
        fn(user);
        yti_mutex_lock(&l->mu);
        return 1;
    }
    yt_timer *t = n->timer;
    if (!taken_current(it)) {
        timer_unref_locked(t);
        return 0;
    }
    if (t->oneshot) {
        t->armed = false;
    } else {
        /* From the due time, so ticks do not drift; from now when so late that the next tick
         * would already be in the past, so a stalled loop does not get a burst. */
        uint64_t now = yti_now();
        uint64_t next = add_ns(it->due, t->period_ns);
        if (next < now)
            next = add_ns(now, t->period_ns);
        n->due = next;
        heap_push(l, n);
    }
    yt_callback_fn fn = t->fn;
    void *user = t->user;
    run_frame f = {t, running_here};
    t->running++;
    running_here = &f;
    yti_mutex_unlock(&l->mu);
    fn(user);
    yti_mutex_lock(&l->mu);
    running_here = f.prev;
    t->running--;
    wake_idle(l);
    timer_unref_locked(t);
    return 1;
}

static bool must_pause(const yt_loop *l, bool for_run)
{
    return l->closed || (for_run && l->stop);
}

/* Runs the queue as it is now, then the due timer entries (lock held). */
static int run_batch(yt_loop *l, bool for_run)
{
    int ran = 0;
    event *batch = l->head;
    l->head = l->tail = NULL;
    while (batch) {
        if (l->closed) {
            while (batch) {
                event *ev = batch;
                batch = ev->next;
                event_drop_locked(l, ev);
            }
            break;
        }
        if (for_run && l->stop) {
            put_back_events(l, batch);
            break;
        }
        event *ev = batch;
        batch = ev->next;
        ran += run_event(l, ev);
    }
    if (must_pause(l, for_run))
        return ran;

    taken items[TIMER_BATCH];
    size_t k = 0;
    uint64_t now = yti_now();
    while (k < TIMER_BATCH && l->nheap > 0 && l->heap[0]->due <= now) {
        tnode *n = l->heap[0];
        heap_remove(l, n);
        items[k].node = n;
        items[k].due = n->due;
        items[k].gen = 0;
        if (n->timer) {
            items[k].gen = n->timer->gen;
            n->timer->refs++;
        }
        k++;
    }
    for (size_t i = 0; i < k; i++) {
        if (must_pause(l, for_run)) {
            for (; i < k; i++)
                release_taken(l, &items[i], !l->closed);
            break;
        }
        ran += run_taken(l, &items[i]);
    }
    return ran;
}

/* The body of yt_loop_process (lock and a loop reference held). */
static int process_locked(yt_loop *l, uint64_t deadline, bool for_run)
{
    for (;;) {
        if (l->closed)
            return yti_error(YT_ECLOSED, "The loop was freed");
        if (for_run && l->stop)
            return 0;
        uint64_t now = yti_now();
        if (l->head || (l->nheap > 0 && l->heap[0]->due <= now)) {
            int ran = run_batch(l, for_run);
            if (ran > 0)
                return ran;
            continue; /* everything was stale: keep waiting for real work */
        }
        if (now >= deadline)
            return 0;
        uint64_t until = deadline;
        if (l->nheap > 0 && l->heap[0]->due < until)
            until = l->heap[0]->due;
        /* A thread waiting here is a live application (heartbeat policy "app"): wake now and
         * then to say so. */
        if (until - now > ALIVE_NS)
            until = now + ALIVE_NS;
        l->nwaiting++;
        yti_cond_until(&l->wake, &l->mu, until);
        l->nwaiting--;
        atomic_store_explicit(&l->last_activity, yti_now(), memory_order_relaxed);
        if (l->closed)
            wake_idle(l);
    }
}

int yt_loop_process(yt_loop *l, double timeout)
{
    if (!l)
        return yti_error(YT_EINVAL, "No loop");
    atomic_store_explicit(&l->last_activity, yti_now(), memory_order_relaxed);
    uint64_t deadline = yti_deadline(timeout);
    yti_mutex_lock(&l->mu);
    l->refs++;
    int rc = process_locked(l, deadline, false);
    l->refs--;
    loop_unlock(l);
    return rc;
}

int yt_loop_run(yt_loop *l)
{
    if (!l)
        return yti_error(YT_EINVAL, "No loop");
    yti_mutex_lock(&l->mu);
    l->refs++;
    int rc;
    for (;;) {
        if (l->closed) {
            rc = yti_error(YT_ECLOSED, "The loop was freed");
            break;
        }
        if (l->stop) {
            l->stop = false;
            rc = YT_OK;
            break;
        }
        rc = process_locked(l, YTI_FOREVER, true);
        if (rc < 0)
            break;
    }
    l->refs--;
    loop_unlock(l);
    return rc;
}

void yt_loop_stop(yt_loop *l)
{
    if (!l)
        return;
    yti_mutex_lock(&l->mu);
    l->stop = true;
    yti_cond_broadcast(&l->wake);
    yti_mutex_unlock(&l->mu);
}

int yt_loop_call_later(yt_loop *l, double delay, yt_callback_fn fn, void *user)
{
    return yti_loop_call_soon(l, delay, fn, NULL, user);
}

int yti_loop_call_soon(yt_loop *l, double delay, yt_callback_fn fn, yt_callback_fn drop,
                       void *user)
{
    if (drop && delay > 0)
        return yti_error(YT_EINVAL, "a drop hook needs delay <= 0");
    if (!l || !fn)
        return yti_error(YT_EINVAL, "call_later needs a loop and a function");
    if (delay != delay)
        return yti_error(YT_EINVAL, "call_later delay is not a number");
    bool embedded;
    if (delay > 0) {
        tnode *n = calloc(1, sizeof *n);
        if (!n)
            return yti_error(YT_ENOMEM, "Out of memory for a delayed call");
        n->fn = fn;
        n->user = user;
        n->idx = NOT_IN_HEAP;
        n->due = add_ns(yti_now(), secs_to_ns(delay));
        yti_mutex_lock(&l->mu);
        int rc = l->closed ? yti_error(YT_ECLOSED, "The loop was freed") : heap_reserve(l);
        if (rc != YT_OK) {
            yti_mutex_unlock(&l->mu);
            free(n);
            return rc;
        }
        heap_push(l, n);
    } else {
        event *ev = calloc(1, sizeof *ev);
        if (!ev)
            return yti_error(YT_ENOMEM, "Out of memory for an event");
        ev->fn = fn;
        ev->drop = drop;
        ev->user = user;
        yti_mutex_lock(&l->mu);
        if (l->closed) {
            yti_mutex_unlock(&l->mu);
            free(ev);
            return yti_error(YT_ECLOSED, "The loop was freed");
        }
        if (delay < 0) {
            ev->next = l->head;
            l->head = ev;
            if (!l->tail)
                l->tail = ev;
        } else {
            if (l->tail)
                l->tail->next = ev;
            else
                l->head = ev;
            l->tail = ev;
        }
    }
    yti_cond_broadcast(&l->wake);
    embedded = l->embedded;
    yti_mutex_unlock(&l->mu);
    notify_host(l, embedded);
    return YT_OK;
}

void yt_loop_embed(yt_loop *l, yt_callback_fn notify, void *user)
{
    if (!l)
        return;
    /* Taking notify_mu waits out a notifier call in progress, so the old notifier is not
     * running any more once this returns. */
    yti_mutex_lock(&l->notify_mu);
    l->notify = notify;
    l->notify_user = user;
    yti_mutex_lock(&l->mu);
    l->embedded = notify != NULL;
    yti_mutex_unlock(&l->mu);
    yti_mutex_unlock(&l->notify_mu);
}

double yt_loop_next_timeout(yt_loop *l)
{
    if (!l)
        return -1.0;
    double r = -1.0;
    yti_mutex_lock(&l->mu);
    if (l->closed) {
        r = -1.0;
    } else if (l->head) {
        r = 0.0;
    } else if (l->nheap > 0) {
        uint64_t due = l->heap[0]->due, now = yti_now();
        r = due > now ? (double)(due - now) / 1e9 : 0.0;
    }
    yti_mutex_unlock(&l->mu);
    return r;
}

/* ---- signals ---- */

int yt_signal_new(yt_loop *loop, void *source, bool coalesce, yt_signal **out)
{
    if (!out)
        return yti_error(YT_EINVAL, "No place for the new signal");
    if (!loop && !(loop = yt_loop_default()))
        return YT_ENOMEM;
    yt_signal *sig = calloc(1, sizeof *sig);
    if (!sig)
        return yti_error(YT_ENOMEM, "Out of memory for a signal");
    sig->loop = loop;
    sig->source = source;
    sig->coalesce = coalesce;
    sig->refs = 1;
    sig->next_id = 1;
    yti_mutex_lock(&loop->mu);
    loop->refs++;
    yti_mutex_unlock(&loop->mu);
    *out = sig;
    return YT_OK;
}

void yt_signal_free(yt_signal *sig)
{
    if (!sig)
        return;
    yt_loop *l = sig->loop;
    yti_mutex_lock(&l->mu);
    sig->dead = true;
    size_t mine = frames_of(sig);
    while (sig->running > mine)
        wait_idle(l);
    signal_unref_locked(sig);
    loop_unlock(l);
}

static binding *find_binding(yt_signal *sig, yt_handler_fn fn, void *user, size_t *pos)
{
    for (size_t i = 0; i < sig->nb; i++)
        if (sig->b[i].fn == fn && sig->b[i].user == user) {
            if (pos)
                *pos = i;
            return &sig->b[i];
        }
    return NULL;
}

int yt_signal_bind(yt_signal *sig, yt_handler_fn fn, void *user)
{
    if (!sig || !fn)
        return yti_error(YT_EINVAL, "bind needs a signal and a handler");
    yt_loop *l = sig->loop;
    yti_mutex_lock(&l->mu);
    int rc = YT_OK;
    if (find_binding(sig, fn, user, NULL)) {
        rc = yti_error(YT_EBUSY, "Handler already bound to this signal");
    } else if (sig->nb == sig->capb) {
        size_t cap = sig->capb ? 2 * sig->capb : 4;
        binding *b = realloc(sig->b, cap * sizeof *b);
        if (!b) {
            rc = yti_error(YT_ENOMEM, "Out of memory binding a handler");
        } else {
            sig->b = b;
            sig->capb = cap;
        }
    }
    if (rc == YT_OK) {
        sig->b[sig->nb++] = (binding){fn, user, sig->next_id++, false};
        atomic_store_explicit(&sig->nbound, sig->nb, memory_order_relaxed);
    }
    yti_mutex_unlock(&l->mu);
    return rc;
}

int yt_signal_unbind(yt_signal *sig, yt_handler_fn fn, void *user)
{
    if (!sig)
        return yti_error(YT_EINVAL, "No signal");
    yt_loop *l = sig->loop;
    yti_mutex_lock(&l->mu);
    size_t i;
    int rc = YT_OK;
    if (!find_binding(sig, fn, user, &i)) {
        rc = yti_error(YT_ENOTFOUND, "Handler not bound to this signal");
    } else {
        /* Keeps binding order; the binding id goes with it, so its queued events are stale. */
        memmove(&sig->b[i], &sig->b[i + 1], (sig->nb - i - 1) * sizeof sig->b[0]);
        sig->nb--;
        atomic_store_explicit(&sig->nbound, sig->nb, memory_order_relaxed);
    }
    yti_mutex_unlock(&l->mu);
    return rc;
}

size_t yt_signal_handler_count(yt_signal *sig)
{
    if (!sig)
        return 0;
    yti_mutex_lock(&sig->loop->mu);
    size_t n = sig->nb;
    yti_mutex_unlock(&sig->loop->mu);
    return n;
}

int yt_signal_emit(yt_signal *sig, int flag, const char *text)
{
    if (!sig)
        return yti_error(YT_EINVAL, "No signal");
    /* Channels emit on every arrival: with no handler bound, skip the loop lock. A handler
     * bound concurrently may miss this emission, as it would had it been bound a moment
     * later. */
    if (atomic_load_explicit(&sig->nbound, memory_order_relaxed) == 0)
        return YT_OK;
    yt_loop *l = sig->loop;
    size_t tlen = text ? strlen(text) + 1 : 0;
    yti_mutex_lock(&l->mu);
    if (l->closed) {
        /* A signal of a freed loop stays a valid handle that does nothing. */
        yti_mutex_unlock(&l->mu);
        return YT_OK;
    }
    /* Everything is allocated before anything is queued: an emission posts all or nothing. */
    event *first = NULL, *last = NULL;
    size_t n = 0;
    for (size_t i = 0; i < sig->nb; i++) {
        if (sig->coalesce && sig->b[i].pending)
            continue;
        event *ev = malloc(sizeof *ev + tlen);
        if (!ev) {
            while (first) {
                event *nx = first->next;
                free(first);
                first = nx;
            }
            yti_mutex_unlock(&l->mu);
            return yti_error(YT_ENOMEM, "Out of memory emitting a signal");
        }
        ev->next = NULL;
        ev->sig = sig;
        ev->binding = sig->b[i].id;
        ev->fn = NULL;
        ev->user = NULL;
        ev->flag = flag;
        ev->has_text = text != NULL;
        if (text)
            memcpy(ev->text, text, tlen);
        if (last)
            last->next = ev;
        else
            first = ev;
        last = ev;
        n++;
    }
    if (n == 0) {
        yti_mutex_unlock(&l->mu);
        return YT_OK;
    }
    if (sig->coalesce)
        for (size_t i = 0; i < sig->nb; i++)
            sig->b[i].pending = true;
    sig->refs += n;
    if (sig->src_ref)
        for (size_t i = 0; i < n; i++)
            sig->src_ref(sig->source);
    if (l->tail)
        l->tail->next = first;
    else
        l->head = first;
    l->tail = last;
    yti_cond_broadcast(&l->wake);
    bool embedded = l->embedded;
    yti_mutex_unlock(&l->mu);
    notify_host(l, embedded);
    return YT_OK;
}

int yt_signal_emit_now(yt_signal *sig, int flag, const char *text)
{
    if (!sig)
        return yti_error(YT_EINVAL, "No signal");
    yt_loop *l = sig->loop;
    yti_mutex_lock(&l->mu);
    if (l->closed) {
        yti_mutex_unlock(&l->mu);
        return YT_OK;
    }
    /* A reference keeps sig alive if a handler frees it. Handlers are found by id, one at a
     * time, so (un)binding from inside a handler neither skips nor repeats the others. */
    sig->refs++;
    uint64_t done = 0;
    while (!sig->dead) {
        binding *b = NULL;
        for (size_t i = 0; i < sig->nb && !b; i++)
            if (sig->b[i].id > done)
                b = &sig->b[i];
        if (!b)
            break;
        done = b->id;
        call_handler(l, sig, b->fn, b->user, flag, text);
    }
    signal_unref_locked(sig);
    loop_unlock(l);
    return YT_OK;
}

/* ---- timers ---- */

int yt_timer_new(yt_loop *loop, double interval, bool oneshot, yt_callback_fn fn, void *user,
                 yt_timer **out)
{
    if (!out || !fn)
        return yti_error(YT_EINVAL, "A timer needs a callback");
    if (!(interval >= 0))
        return yti_error(YT_EINVAL, "Timer interval must be a number >= 0");
    if (!loop && !(loop = yt_loop_default()))
        return YT_ENOMEM;
    yt_timer *t = calloc(1, sizeof *t);
    if (!t)
        return yti_error(YT_ENOMEM, "Out of memory for a timer");
    t->node.idx = NOT_IN_HEAP;
    t->node.timer = t;
    t->loop = loop;
    t->fn = fn;
    t->user = user;
    t->interval_ns = secs_to_ns(interval);
    t->oneshot = oneshot;
    t->refs = 1;
    yti_mutex_lock(&loop->mu);
    int rc = heap_reserve(loop);
    if (rc == YT_OK)
        loop->refs++;
    yti_mutex_unlock(&loop->mu);
    if (rc != YT_OK) {
        free(t);
        return rc;
    }
    *out = t;
    return YT_OK;
}

int yt_timer_start(yt_timer *t)
{
    if (!t)
        return yti_error(YT_EINVAL, "No timer");
    yt_loop *l = t->loop;
    yti_mutex_lock(&l->mu);
    if (l->closed) {
        yti_mutex_unlock(&l->mu);
        return yti_error(YT_ECLOSED, "The timer's loop was freed");
    }
    heap_remove(l, &t->node);
    t->gen++;
    t->period_ns = t->interval_ns;
    t->armed = true;
    t->node.due = add_ns(yti_now(), t->period_ns);
    heap_push(l, &t->node);
    yti_cond_broadcast(&l->wake);
    bool embedded = l->embedded;
    yti_mutex_unlock(&l->mu);
    notify_host(l, embedded);
    return YT_OK;
}

static void timer_stop_locked(yt_timer *t)
{
    heap_remove(t->loop, &t->node);
    t->gen++;
    t->armed = false;
}

void yt_timer_stop(yt_timer *t)
{
    if (!t)
        return;
    yti_mutex_lock(&t->loop->mu);
    timer_stop_locked(t);
    yti_mutex_unlock(&t->loop->mu);
}

bool yt_timer_running(yt_timer *t)
{
    if (!t)
        return false;
    yti_mutex_lock(&t->loop->mu);
    bool r = t->armed;
    yti_mutex_unlock(&t->loop->mu);
    return r;
}

int yt_timer_set_interval(yt_timer *t, double interval)
{
    if (!t || !(interval >= 0))
        return yti_error(YT_EINVAL, "Timer interval must be a number >= 0");
    yti_mutex_lock(&t->loop->mu);
    t->interval_ns = secs_to_ns(interval);
    yti_mutex_unlock(&t->loop->mu);
    return YT_OK;
}

void yt_timer_free(yt_timer *t)
{
    if (!t)
        return;
    yt_loop *l = t->loop;
    yti_mutex_lock(&l->mu);
    timer_stop_locked(t);
    t->dead = true;
    /* A dead timer is never pushed again, so its heap slot can go now. */
    l->heap_reserved--;
    size_t mine = frames_of(t);
    while (t->running > mine)
        wait_idle(l);
    timer_unref_locked(t);
    loop_unlock(l);
}

/* ---- test seam ---- */

/* Threads blocked waiting in yt_loop_process()/yt_loop_run() on l. Not public: the tests use it
 * to know that a thread is really blocked before freeing the loop under it. */
size_t yti_loop_waiting(yt_loop *l)
{
    yti_mutex_lock(&l->mu);
    size_t n = l->nwaiting;
    yti_mutex_unlock(&l->mu);
    return n;
}

void yti_signal_set_source_hooks(yt_signal *sig, void (*ref)(void *), void (*unref)(void *))
{
    yt_loop *l = sig->loop;
    yti_mutex_lock(&l->mu);
    sig->src_ref = ref;
    sig->src_unref = unref;
    yti_mutex_unlock(&l->mu);
}

uint64_t yti_loop_last_activity(yt_loop *l)
{
    return l ? atomic_load_explicit(&l->last_activity, memory_order_relaxed) : 0;
}
