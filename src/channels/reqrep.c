/*
 * reqrep.c - request/reply channels and their futures (spec 15).
 *
 * Wire: a ReqChannel sends on base.obj.req-rep and receives on base.obj.rep-req; a RepChannel
 * the reverse. A call broadcasts `req?` with dest_seq = 2^63 + id; every idle replier answers
 * `req!` directed at the requester; the requester sends the request (name, args, kwargs) to the
 * first one only (dest_seq = id), then broadcasts `req-`; the replier answers directed at the
 * requester with dest_seq = id. Exactly the reference's packages, in the reference's order.
 *
 * Requester. Packages for it are deposited (under the context lock) into a private inbox and
 * handled right after, in the after_deposit hook on the receiver thread, without locks: an
 * acknowledgement is answered with the request from there, so a call makes progress with no
 * event loop running. Periodic work - resending `req?` every 0.5 s while unacknowledged, the
 * auto-cancel (default 10 s), failing running requests whose link died, failing everything once
 * the channel is closed - happens in req_tick(), which runs from every place that can drive it:
 * a caller waiting in yt_future_result() (polling every 20 ms while waiting on the future's
 * condition variable, which a completion signals at once), every package arriving for the
 * channel, new calls, NEW_CONNECTION, the status queries (done/running/cancelled) and, as a
 * supplement, a 0.1 s timer on the context's loop while calls are outstanding. A caller that
 * neither waits, nor polls, nor runs the loop, and receives nothing, sees no resends.
 *
 * Futures are reference counted: the caller's handle, the channel's table of outstanding calls,
 * and every queued done callback hold one each. The handle also holds a reference on the
 * channel, so a future can always reach its channel (closed or not). Lock order: the
 * requester's send lock (held while a request's packages go out, so they leave in the order
 * of its state changes: never a `req?` after its `req-`), then its req lock, then a future's
 * lock, then (innermost) the loop's. Nothing sends under the last three: work is collected
 * under them and done after. The send lock comes before the context lock, which sending
 * takes; nothing takes it under another lock. Done callbacks are posted to the context's
 * loop in the order they were added; one whose future was freed before it ran is
 * skipped (the queued call keeps the future's memory alive until then; a callback still queued
 * when its loop is freed is never run and its small record leaks, see yt_loop_free).
 *
 * Close (the on_close hook, by the owner or the context): every outstanding call ends at once,
 * waking its waiters: unacknowledged ones as cancelled with YT_ECLOSED (yt_future_cancelled()
 * true), running ones failed with YT_ECLOSED. Ticks check for a closed channel as well.
 *
 * Link loss: the link an acknowledgement came over is remembered; if it stops being connected
 * before the reply came, the call fails with YT_ECONNLOST (the reference waits forever, Q15).
 * Only that first hop is watched: a replier lost further away still leaves the call running.
 *
 * Replier. Everything for it queues in the channel's queue, in arrival order. One "handling
 * step" takes a package: `req?` joins the pending list (bounded by the context's queue size,
 * oldest dropped), `req-` removes its entry and forgets the current acknowledgement if it is
 * that one, a request is decoded and dispatched (registered methods and the built-in echo
 * only, Q15) and answered. After each step and whenever the queue is found empty, an
 * acknowledgement older than 10 s is forgotten and, if none is current, the oldest pending
 * `req?` is acknowledged. Acknowledging only from the handling loop is what balances the load:
 * a replier busy in a handler, or one in mode OFF outside yt_rep_process(), acknowledges
 * nothing, so a free replier elsewhere gets the request. Modes: OFF (yt_rep_process on the
 * caller's thread), EVENT (the context's loop: posted on arrival through a coalescing signal,
 * and a 2 s timer), THREAD (thread "yt-rep", blocking on the queue, waking at least every 2 s).
 *
 * Replier lifetime: its state (rep_impl) has its own reference count, held by the channel and
 * by every handling loop while it runs, so a handler may close or free its own channel: the
 * loop then notices `gone` and stops touching the channel. The thread holds a reference on the
 * channel; it is joined by whoever stops it, except when it stops itself (a handler changing the
 * mode or freeing the channel), then it detaches itself. Signal and timer frees wait for their
 * handlers running on other threads, so the state never disappears under a running handler.
 */
#include "channel.h"

#include "../util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERROR_OBJECT "yoton_ERROR_HANDLING_REQUEST"
#define CONNLOST_MSG "Connection lost: the replier's connection closed before it replied."
#define CLOSED_MSG "The request channel was closed before the reply came."

#define NS_PER_S 1000000000ull
#define RESEND_NS (NS_PER_S / 2)      /* `req?` again after this long unacknowledged */
#define CHECK_NS (NS_PER_S / 100)     /* periodic checks at most this often */
#define WAIT_STEP_S 0.02              /* a waiting caller drives progress this often */
#define TIMER_S 0.1                   /* the loop timer's period while calls are outstanding */
#define AUTO_CANCEL_S 10.0            /* default auto-cancel timeout */
#define ACK_EXPIRY_NS (10 * NS_PER_S) /* a replier forgets an unanswered acknowledgement */
#define REP_WAKE_S 2.0                /* a replier loop wakes at least this often */
#define EVENT_BATCH 1000              /* packages one event-mode run handles before yielding */
#define ERR_MAX 1024                  /* handler error buffer */

/* ------------------------------------------------------------------------------------------ */
/* Futures                                                                                     */

enum { F_PENDING, F_RUNNING, F_DONE };

typedef void (*done_fn)(yt_future *f, void *user);

typedef struct cb_entry {
    done_fn fn;
    void *user;
} cb_entry;

struct yt_future {
    atomic_uint refs;
    yti_mutex lock;
    yti_cond cond;
    /* Fixed at creation. */
    uint64_t id;
    unsigned char *req; /* the encoded (name, args, kwargs) */
    size_t req_len;
    yt_loop *loop;
    yti_queue *inbox; /* the channel's; used while ch is set (a waiter leads on it) */
    /* Guarded by the channel's req lock. */
    bool listed; /* in the channel's table */
    /* Guarded by lock. */
    yt_channel *ch; /* the handle's channel reference; NULL once the handle is freed */
    int state;
    int rc; /* when F_DONE */
    bool cancelled;
    bool user_freed;
    uint64_t replier, via;
    uint64_t first_send, next_send;
    double auto_cancel;
    yt_value *value;
    char *message;
    cb_entry *cbs;
    size_t ncbs, capcbs;
    bool cbs_flushed; /* done, and every callback added so far was posted */
    int leading;      /* waiters reading the socket instead of sleeping on cond */
};

typedef struct req_impl {
    /* Held while sending a request's control packages and the request itself, so they leave
     * in the order of the state changes: a resend checks "still unacknowledged" under it and
     * can never follow the withdrawal. (A `req?` arriving after its `req-` would leave a
     * stale announcement at every replier, which each would acknowledge once free and then
     * wait 10 s for a request that never comes.) First in the lock order: taken with no other
     * lock held; sending under it takes the context lock. */
    yti_mutex send_lock;
    yti_mutex lock; /* guards everything below but inbox (a queue with its own lock) */
    yt_future **table;
    size_t n, cap;
    uint64_t counter;
    double auto_cancel;
    uint64_t next_check;
    yti_queue *inbox;
    uint64_t own_id;
    yt_loop *loop;
    yt_timer *timer;
    yt_channel *ch; /* set once, before the timer can first run */
} req_impl;

static void future_unref(yt_future *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    yt_value_free(f->value);
    free(f->message);
    free(f->req);
    free(f->cbs);
    yti_cond_destroy(&f->cond);
    yti_mutex_destroy(&f->lock);
    free(f);
}

static yt_future *future_ref(yt_future *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

/* Ends f (its lock held): result or error, wakes waiters. value is consumed. */
static void finish_locked(yt_future *f, int rc, bool cancelled, yt_value *value, const char *msg)
{
    f->state = F_DONE;
    f->rc = rc;
    f->cancelled = cancelled;
    f->value = value;
    f->message = msg ? strdup(msg) : NULL;
    yti_cond_broadcast(&f->cond);
    if (f->leading)
        yti_queue_poke(f->inbox);
}

typedef struct cb_post {
    yt_future *f;
    done_fn fn;
    void *user;
} cb_post;

static void run_cb(void *arg)
{
    cb_post *c = arg;
    yti_mutex_lock(&c->f->lock);
    bool freed = c->f->user_freed;
    yti_mutex_unlock(&c->f->lock);
    /* A future freed before its callback ran: its owner no longer wants to hear of it. */
    if (!freed)
        c->fn(c->f, c->user);
    future_unref(c->f);
    free(c);
}

/* A posted callback whose loop was freed before it ran: release what it holds. */
static void drop_cb(void *p)
{
    cb_post *c = p;
    future_unref(c->f);
    free(c);
}

/* Posts one callback (f's lock held). If it cannot be posted, it is never called. */
static int post_cb_locked(yt_future *f, done_fn fn, void *user)
{
    cb_post *c = malloc(sizeof *c);
    if (!c)
        return YT_ENOMEM;
    c->f = future_ref(f);
    c->fn = fn;
    c->user = user;
    int rc = yti_loop_call_soon(f->loop, 0, run_cb, drop_cb, c);
    if (rc != YT_OK) {
        atomic_fetch_sub_explicit(&f->refs, 1, memory_order_relaxed); /* never the last */
        free(c);
    }
    return rc;
}

/* Posts the callbacks of a finished future, in the order they were added. Called without the
 * req lock; posting under f's lock keeps the order against concurrent add_done_callback. */
static void flush_callbacks(yt_future *f)
{
    yti_mutex_lock(&f->lock);
    if (!f->user_freed)
        for (size_t i = 0; i < f->ncbs; i++)
            post_cb_locked(f, f->cbs[i].fn, f->cbs[i].user);
    f->ncbs = 0;
    f->cbs_flushed = true;
    yti_mutex_unlock(&f->lock);
}

/* ------------------------------------------------------------------------------------------ */
/* Requester                                                                                   */

static yt_future *table_find(req_impl *r, uint64_t id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->table[i]->id == id)
            return r->table[i];
    return NULL;
}

/* Removes f (listed) from the table; the table's reference passes to the caller. */
static void table_remove(req_impl *r, yt_future *f)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->table[i] == f) {
            memmove(&r->table[i], &r->table[i + 1], (r->n - i - 1) * sizeof *r->table);
            r->n--;
            f->listed = false;
            return;
        }
    }
}

/* Broadcasts `req?` or `req-` for request id; the caller holds the send lock. */
static int req_send_ctl(yt_channel *ch, const char *what, uint64_t id)
{
    yti_pkg *p = yti_pkg_from(what, 4, ch->slot_out, 0, YTI_REF + id);
    if (!p)
        return yti_error(YT_ENOMEM, "Out of memory");
    return yti_channel_send_pkg(ch, p);
}

/* Withdraws request id (cancelled, or given to a replier). */
static void req_withdraw(yt_channel *ch, uint64_t id)
{
    req_impl *r = ch->impl;
    yti_mutex_lock(&r->send_lock);
    req_send_ctl(ch, "req-", id);
    yti_mutex_unlock(&r->send_lock);
}

/* Announces f again unless an acknowledgement or a cancel got there first. */
static void req_announce_again(yt_channel *ch, yt_future *f)
{
    req_impl *r = ch->impl;
    yti_mutex_lock(&r->send_lock);
    yti_mutex_lock(&f->lock);
    bool pending = f->state == F_PENDING;
    yti_mutex_unlock(&f->lock);
    if (pending)
        req_send_ctl(ch, "req?", f->id);
    yti_mutex_unlock(&r->send_lock);
}

/* Futures collected under the req lock for work done after it is released. Sized before the
 * table is walked, so adding never fails halfway. */
typedef struct flist {
    yt_future **v;
    uint64_t *via;
    size_t n;
} flist;

static bool flist_init(flist *l, size_t cap)
{
    l->n = 0;
    l->v = malloc((cap ? cap : 1) * sizeof *l->v);
    l->via = malloc((cap ? cap : 1) * sizeof *l->via);
    if (l->v && l->via)
        return true;
    free(l->v);
    free(l->via);
    l->v = NULL;
    l->via = NULL;
    return false;
}

/* Adds f; with take, the caller's reference moves into the list, else a new one is taken. */
static void flist_add(flist *l, yt_future *f, uint64_t via, bool take)
{
    l->v[l->n] = take ? f : future_ref(f);
    l->via[l->n] = via;
    l->n++;
}

static void flist_free(flist *l)
{
    for (size_t i = 0; i < l->n; i++)
        future_unref(l->v[i]);
    free(l->v);
    free(l->via);
}

/* A finished future taken out of the table: posts its callbacks, drops the table's
 * reference. */
static void release_done(yt_future *f)
{
    flush_callbacks(f);
    future_unref(f);
}

static bool is_error_reply(const yt_value *v)
{
    if (yt_value_type_of(v) != YT_TUPLE || yt_value_len(v) != 2)
        return false;
    const yt_value *tag = yt_value_item(v, 0);
    if (yt_value_type_of(tag) != YT_STRING)
        return false;
    size_t len = 0;
    const char *s = yt_value_as_string(tag, &len);
    return len == strlen(ERROR_OBJECT) && memcmp(s, ERROR_OBJECT, len) == 0;
}

/* The reply to running request f (already out of the table; the table's reference is ours). */
static void complete_with_reply(yt_future *f, const yti_pkg *p)
{
    yt_value *v = NULL;
    int rc = yt_value_decode(p->data, p->len, &v);
    yti_mutex_lock(&f->lock);
    if (rc != YT_OK) {
        finish_locked(f, YT_EDECODE, false, NULL, "The reply could not be decoded.");
    } else if (is_error_reply(v)) {
        const yt_value *m = yt_value_item(v, 1);
        const char *msg = yt_value_type_of(m) == YT_STRING ? yt_value_as_string(m, NULL)
                                                           : "The replier reported an error.";
        finish_locked(f, YT_EREMOTE, false, NULL, msg);
        yt_value_free(v);
    } else {
        finish_locked(f, YT_OK, false, v, NULL);
    }
    yti_mutex_unlock(&f->lock);
    release_done(f);
}

/* Fails running request f with rc unless something else finished it first. */
static void fail_running(req_impl *r, yt_future *f, uint64_t via, int rc, const char *msg)
{
    bool mine = false;
    yti_mutex_lock(&r->lock);
    yti_mutex_lock(&f->lock);
    if (f->listed && f->state == F_RUNNING && (!via || f->via == via)) {
        table_remove(r, f);
        finish_locked(f, rc, false, NULL, msg);
        mine = true;
    }
    yti_mutex_unlock(&f->lock);
    yti_mutex_unlock(&r->lock);
    if (mine)
        release_done(f);
}

/* The acknowledgement of request id from p's source: the first one gets the request. */
static void req_handle_ack(yt_channel *ch, const yti_pkg *p, uint64_t id)
{
    req_impl *r = ch->impl;
    yt_future *f = NULL;
    yti_mutex_lock(&r->lock);
    yt_future *cand = table_find(r, id);
    if (cand) {
        yti_mutex_lock(&cand->lock);
        /* Later acknowledgements, and those for cancelled requests, are ignored, so a request
         * is never executed twice. */
        if (cand->state == F_PENDING && !cand->replier) {
            cand->state = F_RUNNING;
            cand->replier = p->source_id;
            cand->via = p->via;
            f = future_ref(cand);
        }
        yti_mutex_unlock(&cand->lock);
    }
    yti_mutex_unlock(&r->lock);
    if (!f)
        return;
    yti_mutex_lock(&r->send_lock);
    /* The request, then the withdrawal that moves every other replier that acknowledged (or
     * was about to) on: sent as one, so an idle link gets both in one write. */
    yti_pkg *v[2] = {yti_pkg_from(f->req, f->req_len, ch->slot_out, p->source_id, id),
                     yti_pkg_from("req-", 4, ch->slot_out, 0, YTI_REF + id)};
    int rc;
    if (v[0] && v[1]) {
        rc = yti_channel_send_raw_many(ch, v, 2);
    } else {
        /* The request cannot go; the withdrawal still should. */
        yti_pkg_unref(v[0]);
        if (v[1])
            yti_channel_send_pkg(ch, v[1]);
        rc = yti_error(YT_ENOMEM, "Out of memory");
    }
    yti_mutex_unlock(&r->send_lock);
    if (rc != YT_OK) {
        if (yt_channel_closed(ch))
            fail_running(r, f, 0, YT_ECLOSED, CLOSED_MSG);
        else
            fail_running(r, f, 0, rc, "The request could not be sent.");
    }
    future_unref(f);
}

/* A package addressed to this requester (consumed). */
static void req_handle(yt_channel *ch, yti_pkg *p)
{
    req_impl *r = ch->impl;
    if (p->dest_seq > YTI_REF) {
        req_handle_ack(ch, p, p->dest_seq - YTI_REF);
    } else if (p->dest_seq > 0) {
        yti_mutex_lock(&r->lock);
        yt_future *f = table_find(r, p->dest_seq);
        if (f) {
            yti_mutex_lock(&f->lock);
            /* Only the replier that got the request answers it. */
            bool ok = f->state == F_RUNNING && f->replier == p->source_id;
            yti_mutex_unlock(&f->lock);
            if (ok)
                table_remove(r, f);
            else
                f = NULL;
        }
        yti_mutex_unlock(&r->lock);
        if (f)
            complete_with_reply(f, p);
    }
    yti_pkg_unref(p);
}

static void req_drain(yt_channel *ch)
{
    req_impl *r = ch->impl;
    yti_pkg *p;
    while (yti_queue_pop(r->inbox, 0, &p) == YT_OK)
        req_handle(ch, p);
}

/*
 * Drives every outstanding call of the channel: handles arrived packages and (at most every
 * 10 ms unless forced) resends, auto-cancels, notices lost links and a closed channel. Any
 * thread, no locks held.
 */
static void req_tick(yt_channel *ch, bool force)
{
    req_impl *r = ch->impl;
    uint64_t now = yti_now();
    bool closed = yt_channel_closed(ch);
    flist resend, withdraw, check, done;
    yti_mutex_lock(&r->lock);
    if (!force && !closed && now < r->next_check) {
        yti_mutex_unlock(&r->lock);
        req_drain(ch);
        return;
    }
    size_t n = r->n;
    bool ok = flist_init(&resend, n);
    ok = flist_init(&withdraw, n) && ok;
    ok = flist_init(&check, n) && ok;
    ok = flist_init(&done, n) && ok;
    if (!ok) {
        /* Out of memory: try again at the next tick. */
        yti_mutex_unlock(&r->lock);
        free(resend.v), free(resend.via), free(withdraw.v), free(withdraw.via);
        free(check.v), free(check.via), free(done.v), free(done.via);
        req_drain(ch);
        return;
    }
    r->next_check = now + CHECK_NS;
    for (size_t i = 0; i < r->n;) {
        yt_future *f = r->table[i];
        bool remove = false;
        yti_mutex_lock(&f->lock);
        if (closed) {
            bool pending = f->state == F_PENDING;
            finish_locked(f, YT_ECLOSED, pending, NULL,
                          pending ? "The request channel was closed." : CLOSED_MSG);
            remove = true;
        } else if (f->state == F_PENDING) {
            double ac = f->auto_cancel;
            if (ac >= 0 && (double)(now - f->first_send) >= ac * 1e9) {
                finish_locked(f, YT_ECANCELED, true, NULL, NULL);
                remove = true;
                flist_add(&withdraw, f, 0, false);
            } else if (now >= f->next_send) {
                f->next_send = now + RESEND_NS;
                flist_add(&resend, f, 0, false);
            }
        } else if (f->state == F_RUNNING && f->via) {
            flist_add(&check, f, f->via, false);
        }
        yti_mutex_unlock(&f->lock);
        if (remove) {
            table_remove(r, f);
            flist_add(&done, f, 0, true); /* the table's reference moves there */
        } else {
            i++;
        }
    }
    if (r->n == 0)
        yt_timer_stop(r->timer);
    yti_mutex_unlock(&r->lock);

    for (size_t i = 0; i < resend.n; i++)
        req_announce_again(ch, resend.v[i]);
    for (size_t i = 0; i < withdraw.n; i++)
        req_withdraw(ch, withdraw.v[i]->id);
    /* Which links died is decided before the inbox is drained: a reply deposited before its
     * link closed is then handled first and wins over the loss. */
    yt_context *ctx = check.n ? yti_channel_hold_ctx(ch) : NULL;
    for (size_t i = 0; i < check.n; i++)
        if (!ctx || yti_context_link_alive(ctx, check.via[i]))
            check.via[i] = 0; /* alive (or closed just now: the next tick says so) */
    if (ctx)
        yti_context_unhold(ctx);
    req_drain(ch);
    for (size_t i = 0; i < check.n; i++)
        if (check.via[i])
            fail_running(r, check.v[i], check.via[i], YT_ECONNLOST, CONNLOST_MSG);
    for (size_t i = 0; i < done.n; i++)
        flush_callbacks(done.v[i]);
    flist_free(&resend);
    flist_free(&withdraw);
    flist_free(&check);
    flist_free(&done);
}

/* Under the context lock: keep only what is addressed to this context (broadcasts, dest_id 0,
 * are for repliers), in the inbox; after_deposit handles it. */
static void req_deposit(yt_channel *ch, yti_pkg *p)
{
    req_impl *r = ch->impl;
    if (p->dest_id != r->own_id) {
        yti_pkg_unref(p);
        return;
    }
    yti_queue_push(r->inbox, p);
}

static void req_after_deposit(yt_channel *ch)
{
    req_tick(ch, false);
}

/* The network grew: a replier may just have become reachable, so announce pending calls now
 * rather than at their next resend. */
static void req_on_new_connection(yt_channel *ch)
{
    req_impl *r = ch->impl;
    yti_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++) {
        yt_future *f = r->table[i];
        yti_mutex_lock(&f->lock);
        if (f->state == F_PENDING)
            f->next_send = 0;
        yti_mutex_unlock(&f->lock);
    }
    yti_mutex_unlock(&r->lock);
    req_tick(ch, true);
}

/* The channel closed (its owner, or its context; maybe under the context lock, so nothing
 * here blocks or sends): every outstanding call ends with YT_ECLOSED at once, waking its
 * waiters; unacknowledged ones count as cancelled. */
static void req_on_close(yt_channel *ch)
{
    req_impl *r = ch->impl;
    if (!r)
        return;
    flist done;
    yti_mutex_lock(&r->lock);
    if (!flist_init(&done, r->n)) {
        /* Out of memory: wake the waiters; their next tick ends the calls. */
        for (size_t i = 0; i < r->n; i++) {
            yti_mutex_lock(&r->table[i]->lock);
            yti_cond_broadcast(&r->table[i]->cond);
            yti_mutex_unlock(&r->table[i]->lock);
        }
        yti_mutex_unlock(&r->lock);
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        yt_future *f = r->table[i];
        yti_mutex_lock(&f->lock);
        bool pending = f->state == F_PENDING;
        finish_locked(f, YT_ECLOSED, pending, NULL,
                      pending ? "The request channel was closed." : CLOSED_MSG);
        f->listed = false;
        yti_mutex_unlock(&f->lock);
        flist_add(&done, f, 0, true); /* the table's reference moves there */
    }
    r->n = 0;
    yt_timer_stop(r->timer);
    yti_mutex_unlock(&r->lock);
    /* The handles still hold their references: nothing is freed here. */
    for (size_t i = 0; i < done.n; i++)
        flush_callbacks(done.v[i]);
    flist_free(&done);
}

static void req_timer_cb(void *user)
{
    req_impl *r = user;
    req_tick(r->ch, false);
}

static void req_impl_free(req_impl *r)
{
    if (!r)
        return;
    yt_timer_free(r->timer);
    yti_mutex_destroy(&r->send_lock);
    /* Every listed future holds a channel reference through its handle, so by the time the
     * channel goes the table is empty; release anything left all the same. */
    for (size_t i = 0; i < r->n; i++)
        future_unref(r->table[i]);
    free(r->table);
    yti_queue_free(r->inbox);
    yti_mutex_destroy(&r->lock);
    free(r);
}

static void req_destroy(yt_channel *ch)
{
    req_impl_free(ch->impl);
    ch->impl = NULL;
}

static const yti_channel_ops req_ops = {
    .deposit = req_deposit,
    .after_deposit = req_after_deposit,
    .on_new_connection = req_on_new_connection,
    .on_close = req_on_close,
    .destroy = req_destroy,
};

int yt_req_new(yt_context *ctx, const char *slot_base, yt_channel **out)
{
    if (!ctx || !slot_base || !out)
        return yti_error(YT_EINVAL, "Invalid argument");
    req_impl *r = calloc(1, sizeof *r);
    if (!r)
        return yti_error(YT_ENOMEM, "Out of memory");
    yti_mutex_init(&r->lock);
    yti_mutex_init(&r->send_lock);
    const yti_conn_config *cfg = yti_context_config(ctx);
    r->own_id = yti_context_own_id(ctx);
    r->loop = yti_context_loop(ctx);
    r->auto_cancel = AUTO_CANCEL_S;
    r->inbox = yti_queue_new(cfg->queue_size, cfg->discard);
    if (!r->inbox) {
        req_impl_free(r);
        return yti_error(YT_ENOMEM, "Out of memory");
    }
    /* The timer supplements the other drivers for callers that rely on the event loop. It is
     * made before the channel is registered (receiver threads may call in from then on) and
     * started by the first call, after r->ch is set. Its callback reaches the channel without
     * a reference: req_destroy frees the timer, which waits for a callback running elsewhere,
     * before anything goes. */
    int rc = yt_timer_new(r->loop, TIMER_S, false, req_timer_cb, r, &r->timer);
    if (rc != YT_OK) {
        req_impl_free(r);
        return rc;
    }
    yt_channel *ch = NULL;
    rc = yti_channel_create(ctx, YTI_REQ, slot_base, YT_OBJECT, "req-rep", "rep-req", false,
                            &req_ops, r, &ch);
    if (rc != YT_OK) {
        req_impl_free(r);
        return rc;
    }
    r->ch = ch;
    *out = ch;
    return YT_OK;
}

static bool is_req(const yt_channel *ch)
{
    return ch && ch->kind == YTI_REQ && ch->impl;
}

/* Encodes (method, args as a tuple, kwargs) without copying the arguments: a list encodes
 * exactly as a tuple but for its tag. */
static int encode_request(const char *method, const yt_value *args, const yt_value *kwargs,
                          unsigned char **out, size_t *len)
{
    yt_value *name = yt_value_string(method);
    if (!name)
        return yti_error(YT_EINVAL, "The method name must be UTF-8");
    void *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t l1 = 0, l2 = 2, l3 = 2;
    static const unsigned char empty_tuple[2] = {'t', 0}, empty_dict[2] = {'d', 0};
    int rc = yt_value_encode(name, &b1, &l1);
    yt_value_free(name);
    if (rc == YT_OK && args)
        rc = yt_value_encode(args, &b2, &l2);
    if (rc == YT_OK && kwargs)
        rc = yt_value_encode(kwargs, &b3, &l3);
    unsigned char *buf = NULL;
    if (rc == YT_OK) {
        buf = malloc(2 + l1 + l2 + l3);
        if (!buf)
            rc = yti_error(YT_ENOMEM, "Out of memory");
    }
    if (rc == YT_OK) {
        buf[0] = 't';
        buf[1] = 3;
        memcpy(buf + 2, b1, l1);
        memcpy(buf + 2 + l1, b2 ? b2 : empty_tuple, l2);
        buf[2 + l1] = 't';
        memcpy(buf + 2 + l1 + l2, b3 ? b3 : empty_dict, l3);
        *out = buf;
        *len = 2 + l1 + l2 + l3;
    }
    free(b1);
    free(b2);
    free(b3);
    return rc;
}

int yt_req_call(yt_channel *req, const char *method, const yt_value *args,
                const yt_value *kwargs, yt_future **out)
{
    if (!is_req(req) || !method || !out)
        return yti_error(YT_EINVAL, "Not a request channel, or no method/out given");
    yt_value_type at = yt_value_type_of(args), kt = yt_value_type_of(kwargs);
    if ((args && at != YT_LIST && at != YT_TUPLE) || (kwargs && kt != YT_DICT))
        return yti_error(YT_EINVAL, "args must be a list or tuple and kwargs a dict");
    if (yt_channel_closed(req))
        return yti_error(YT_ECLOSED, "The channel is closed");
    req_impl *r = req->impl;
    yt_future *f = calloc(1, sizeof *f);
    if (!f)
        return yti_error(YT_ENOMEM, "Out of memory");
    int rc = encode_request(method, args, kwargs, &f->req, &f->req_len);
    if (rc != YT_OK) {
        free(f);
        return rc;
    }
    atomic_init(&f->refs, 2); /* the handle's and the table's */
    yti_mutex_init(&f->lock);
    yti_cond_init(&f->cond);
    f->loop = r->loop;
    f->inbox = r->inbox;
    f->ch = yti_channel_ref(req);
    f->state = F_PENDING;
    f->first_send = yti_now();
    f->next_send = f->first_send + RESEND_NS;

    yti_mutex_lock(&r->lock);
    if (r->n == r->cap) {
        size_t ncap = r->cap ? 2 * r->cap : 8;
        yt_future **nv = realloc(r->table, ncap * sizeof *nv);
        if (!nv) {
            yti_mutex_unlock(&r->lock);
            atomic_store(&f->refs, 1);
            f->user_freed = true;
            yti_channel_unref(req);
            future_unref(f);
            return yti_error(YT_ENOMEM, "Out of memory");
        }
        r->table = nv;
        r->cap = ncap;
    }
    f->id = ++r->counter;
    f->auto_cancel = r->auto_cancel;
    f->listed = true;
    r->table[r->n++] = f;
    if (r->n == 1)
        yt_timer_start(r->timer);
    yti_mutex_unlock(&r->lock);

    /* Listed first, so an acknowledgement racing this send finds it. */
    yti_mutex_lock(&r->send_lock);
    rc = req_send_ctl(req, "req?", f->id);
    yti_mutex_unlock(&r->send_lock);
    if (rc != YT_OK) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s", yt_last_error());
        yti_mutex_lock(&r->lock);
        yti_mutex_lock(&f->lock);
        bool listed = f->listed;
        if (listed)
            table_remove(r, f);
        f->user_freed = true;
        yti_mutex_unlock(&f->lock);
        yti_mutex_unlock(&r->lock);
        if (listed)
            future_unref(f);
        future_unref(f);
        yti_channel_unref(req);
        return yti_error(rc, "%s", detail);
    }
    /* Older calls get a chance to move on, too. */
    req_tick(req, false);
    *out = f;
    return YT_OK;
}

int yt_req_set_auto_cancel_timeout(yt_channel *req, double seconds)
{
    if (!is_req(req) || isnan(seconds))
        return yti_error(YT_EINVAL, "Not a request channel, or NaN");
    req_impl *r = req->impl;
    yti_mutex_lock(&r->lock);
    r->auto_cancel = seconds;
    yti_mutex_unlock(&r->lock);
    return YT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Futures: the public side                                                                    */

static yt_channel *future_channel(yt_future *f)
{
    yti_mutex_lock(&f->lock);
    yt_channel *ch = f->ch;
    yti_mutex_unlock(&f->lock);
    return ch;
}

/* Lets the requester make progress (the caller holds the handle, so the channel lives). */
static void future_tick(yt_future *f)
{
    yt_channel *ch = future_channel(f);
    if (ch)
        req_tick(ch, false);
}

/* Waits until f is done or deadline passes, driving the requester meanwhile. */
static bool future_wait(yt_future *f, uint64_t deadline)
{
    for (;;) {
        yt_channel *ch = future_channel(f);
        if (ch) {
            yti_channel_touch(ch);
            req_tick(ch, false);
        }
        yti_mutex_lock(&f->lock);
        uint64_t now = yti_now();
        if (f->state != F_DONE && now < deadline) {
            uint64_t step = yti_deadline(WAIT_STEP_S);
            uint64_t until = step < deadline ? step : deadline;
            int led = YTI_LEAD_NONE;
            if (ch && f->ch) {
                /* Read the socket rather than wait for the receiver thread to (see
                 * connection.c, "Who reads the socket"): the reply is handled on this thread.
                 * A completion from elsewhere pokes the inbox, which wakes this thread. */
                f->leading++;
                yti_mutex_unlock(&f->lock);
                led = yti_channel_lead_on(ch, f->inbox, until);
                yti_mutex_lock(&f->lock);
                f->leading--;
            }
            if (led == YTI_LEAD_NONE && f->state != F_DONE)
                yti_cond_until(&f->cond, &f->lock, until);
        }
        bool done = f->state == F_DONE;
        yti_mutex_unlock(&f->lock);
        if (done)
            return true;
        if (yti_now() >= deadline)
            return false;
    }
}

/* The outcome of a done future: YT_OK with a copy of the value, or its error. */
static int future_outcome(yt_future *f, yt_value **out)
{
    yti_mutex_lock(&f->lock);
    int rc = f->rc;
    yt_value *copy = NULL;
    if (rc == YT_OK && !(copy = yt_value_copy(f->value)))
        rc = YT_ENOMEM;
    char detail[512];
    if (rc == YT_ECANCELED)
        snprintf(detail, sizeof detail, "Result unavailable because request was cancelled.");
    else if (rc == YT_ENOMEM)
        snprintf(detail, sizeof detail, "Out of memory");
    else
        snprintf(detail, sizeof detail, "%s", f->message ? f->message : "");
    yti_mutex_unlock(&f->lock);
    if (rc != YT_OK)
        return yti_error(rc, "%s", detail);
    *out = copy;
    return YT_OK;
}

int yt_future_result(yt_future *f, double timeout, yt_value **out)
{
    if (!f || !out || isnan(timeout))
        return yti_error(YT_EINVAL, "Invalid argument");
    if (!future_wait(f, yti_deadline(timeout)))
        return yti_error(YT_ETIMEDOUT, "Result unavailable within the specified time.");
    return future_outcome(f, out);
}

int yt_future_result_or_cancel(yt_future *f, double timeout, yt_value **out)
{
    if (!f || !out || isnan(timeout))
        return yti_error(YT_EINVAL, "Invalid argument");
    if (!future_wait(f, yti_deadline(timeout))) {
        yt_future_cancel(f); /* refused while running */
        yti_mutex_lock(&f->lock);
        bool done = f->state == F_DONE;
        yti_mutex_unlock(&f->lock);
        if (!done)
            return yti_error(YT_ETIMEDOUT, "Result unavailable within the specified time.");
    }
    return future_outcome(f, out);
}

const char *yt_future_exception(yt_future *f)
{
    if (!f)
        return NULL;
    yti_mutex_lock(&f->lock);
    const char *m = f->state == F_DONE ? f->message : NULL;
    yti_mutex_unlock(&f->lock);
    return m;
}

bool yt_future_cancel(yt_future *f)
{
    if (!f)
        return false;
    yt_channel *ch = future_channel(f);
    if (!ch)
        return false;
    req_impl *r = ch->impl;
    yti_mutex_lock(&r->lock);
    yti_mutex_lock(&f->lock);
    bool now = f->state == F_PENDING;
    if (now) {
        finish_locked(f, YT_ECANCELED, true, NULL, NULL);
        table_remove(r, f);
    }
    bool cancelled = f->cancelled;
    yti_mutex_unlock(&f->lock);
    yti_mutex_unlock(&r->lock);
    if (now) {
        req_withdraw(ch, f->id);
        release_done(f);
    }
    return cancelled;
}

bool yt_future_cancelled(yt_future *f)
{
    if (!f)
        return false;
    future_tick(f);
    yti_mutex_lock(&f->lock);
    bool v = f->cancelled;
    yti_mutex_unlock(&f->lock);
    return v;
}

bool yt_future_running(yt_future *f)
{
    if (!f)
        return false;
    future_tick(f);
    yti_mutex_lock(&f->lock);
    bool v = f->state == F_RUNNING;
    yti_mutex_unlock(&f->lock);
    return v;
}

bool yt_future_done(yt_future *f)
{
    if (!f)
        return false;
    future_tick(f);
    yti_mutex_lock(&f->lock);
    bool v = f->state == F_DONE;
    yti_mutex_unlock(&f->lock);
    return v;
}

int yt_future_add_done_callback(yt_future *f, void (*fn)(yt_future *f, void *user), void *user)
{
    if (!f || !fn)
        return yti_error(YT_EINVAL, "Invalid argument");
    int rc = YT_OK;
    yti_mutex_lock(&f->lock);
    if (f->state == F_DONE && f->cbs_flushed) {
        rc = post_cb_locked(f, fn, user);
    } else {
        if (f->ncbs == f->capcbs) {
            size_t ncap = f->capcbs ? 2 * f->capcbs : 4;
            cb_entry *nv = realloc(f->cbs, ncap * sizeof *nv);
            if (!nv)
                rc = YT_ENOMEM;
            else
                f->cbs = nv, f->capcbs = ncap;
        }
        if (rc == YT_OK)
            f->cbs[f->ncbs++] = (cb_entry){fn, user};
    }
    yti_mutex_unlock(&f->lock);
    return rc == YT_OK ? YT_OK : yti_error(rc, "Could not add the callback");
}

int yt_future_set_auto_cancel_timeout(yt_future *f, double seconds)
{
    if (!f || isnan(seconds))
        return yti_error(YT_EINVAL, "Invalid argument");
    yti_mutex_lock(&f->lock);
    f->auto_cancel = seconds;
    yti_mutex_unlock(&f->lock);
    future_tick(f);
    return YT_OK;
}

void yt_future_free(yt_future *f)
{
    if (!f)
        return;
    yt_channel *ch = future_channel(f);
    req_impl *r = ch->impl;
    yti_mutex_lock(&r->lock);
    yti_mutex_lock(&f->lock);
    bool cancel = f->state == F_PENDING;
    if (cancel)
        finish_locked(f, YT_ECANCELED, true, NULL, NULL);
    bool listed = f->listed;
    if (listed)
        table_remove(r, f); /* a running one: its reply, if it ever comes, is ignored */
    f->user_freed = true;
    f->ch = NULL;
    f->ncbs = 0;
    yti_mutex_unlock(&f->lock);
    yti_mutex_unlock(&r->lock);
    if (cancel)
        req_withdraw(ch, f->id);
    if (listed)
        future_unref(f);
    future_unref(f);
    yti_channel_unref(ch);
}

/* ------------------------------------------------------------------------------------------ */
/* Replier                                                                                     */

typedef struct method {
    char *name;
    yt_rep_fn fn;
    void *user;
} method;

typedef struct rep_impl rep_impl;

/* One replier thread. Whoever takes it out of rep_impl.thr stops it (stop_thread). */
typedef struct rep_thread {
    yti_thread t;
    yt_channel *ch; /* a reference, dropped when the thread ends */
    rep_impl *r;    /* a reference, dropped when the thread ends */
    atomic_bool stop;
    atomic_bool self_detach; /* it was stopped from its own thread: nobody joins it */
} rep_thread;

struct rep_impl {
    atomic_uint refs;
    /* The channel was destroyed (from inside a handler of this very loop): stop touching it. */
    atomic_bool gone;
    atomic_int mode;
    yt_channel *ch;
    uint64_t own_id;
    size_t max_pending;
    yt_signal *evsig; /* EVENT mode: "packages arrived", coalescing */
    yt_timer *timer;  /* EVENT mode: every 2 s */
    yti_mutex lock;   /* guards everything below */
    method *methods;
    size_t nmethods, capmethods;
    yti_pkg **pending; /* pre-requests not yet acknowledged, oldest first */
    size_t npending, cappending;
    bool have_cur; /* the acknowledged pre-request whose request we wait for */
    uint64_t cur_src, cur_seq, cur_time;
    rep_thread *thr;
};

static rep_impl *rep_ref(rep_impl *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

static void rep_unref(rep_impl *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < r->nmethods; i++)
        free(r->methods[i].name);
    free(r->methods);
    for (size_t i = 0; i < r->npending; i++)
        yti_pkg_unref(r->pending[i]);
    free(r->pending);
    yti_mutex_destroy(&r->lock);
    free(r);
}

static bool is_rep(const yt_channel *ch)
{
    return ch && ch->kind == YTI_REP && ch->impl;
}

/* printf into a new string (NULL when out of memory). */
static char *fmt_alloc(const char *fmt, ...) YTI_PRINTF(1, 2);
static char *fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Sleeps seconds in short steps, giving up when the channel closes (nobody would get the
 * reply, and a closing replier must not be held up). */
static void sleep_unless_closed(rep_impl *r, double seconds)
{
    uint64_t end = yti_deadline(seconds);
    while (!yt_channel_closed(r->ch)) {
        double left = yti_remaining(end);
        if (left <= 0)
            break;
        yti_sleep(left < 0.05 ? left : 0.05);
    }
}

/* The built-in echo(arg1, sleep=0.0): (arg1, hex(replier's context id)) after sleeping. */
static yt_value *builtin_echo(rep_impl *r, const yt_value *args, const yt_value *kwargs,
                              char *err, size_t errsize)
{
    size_t na = yt_value_len(args);
    const yt_value *arg1 = na > 0 ? yt_value_item(args, 0) : NULL;
    const yt_value *sl = na > 1 ? yt_value_item(args, 1) : NULL;
    if (na > 2) {
        snprintf(err, errsize, "echo() takes from 2 to 3 positional arguments but %zu were given",
                 na + 1);
        return NULL;
    }
    for (size_t i = 0; i < yt_value_len(kwargs); i++) {
        const yt_value *k, *v;
        yt_value_dict_entry(kwargs, i, &k, &v);
        const char *ks = yt_value_type_of(k) == YT_STRING ? yt_value_as_string(k, NULL) : "";
        const yt_value **slot = strcmp(ks, "arg1") == 0    ? &arg1
                                : strcmp(ks, "sleep") == 0 ? &sl
                                                           : NULL;
        if (!slot) {
            snprintf(err, errsize, "echo() got an unexpected keyword argument '%s'", ks);
            return NULL;
        }
        if (*slot) {
            snprintf(err, errsize, "echo() got multiple values for argument '%s'", ks);
            return NULL;
        }
        *slot = v;
    }
    if (!arg1) {
        snprintf(err, errsize, "echo() missing 1 required positional argument: 'arg1'");
        return NULL;
    }
    double s = 0;
    bool b;
    if (sl && yt_value_type_of(sl) == YT_BOOL && yt_value_as_bool(sl, &b) == YT_OK) {
        s = b ? 1 : 0;
    } else if (sl && (yt_value_type_of(sl) == YT_NONE || yt_value_as_float(sl, &s) != YT_OK)) {
        snprintf(err, errsize, "an integer or float is required for sleep");
        return NULL;
    }
    if (isnan(s)) {
        snprintf(err, errsize, "Invalid value NaN (not a number)");
        return NULL;
    }
    if (s < 0) {
        snprintf(err, errsize, "sleep length must be non-negative");
        return NULL;
    }
    if (s > 0)
        sleep_unless_closed(r, s);
    char hex[24];
    snprintf(hex, sizeof hex, "0x%" PRIx64, r->own_id); /* Python's hex() */
    yt_value *t = yt_value_tuple();
    if (!t || yt_value_append(t, yt_value_copy(arg1)) != YT_OK ||
        yt_value_append(t, yt_value_string(hex)) != YT_OK) {
        yt_value_free(t);
        snprintf(err, errsize, "Out of memory");
        return NULL;
    }
    return t;
}

/* A request's name, args (as a tuple) and kwargs, or an error message (malloc'd). */
static char *split_request(const yt_value *req, const char **name, yt_value **args,
                           const yt_value **kwargs)
{
    yt_value_type t = yt_value_type_of(req);
    const yt_value *n = yt_value_item(req, 0), *a = yt_value_item(req, 1);
    *kwargs = yt_value_item(req, 2);
    if ((t != YT_TUPLE && t != YT_LIST) || yt_value_len(req) != 3 ||
        yt_value_type_of(n) != YT_STRING ||
        (yt_value_type_of(a) != YT_TUPLE && yt_value_type_of(a) != YT_LIST) ||
        yt_value_type_of(*kwargs) != YT_DICT)
        return fmt_alloc("Invalid request: expected (name, args, kwargs).\n");
    size_t len = 0;
    *name = yt_value_as_string(n, &len);
    if (strlen(*name) != len)
        return fmt_alloc("Method name contains a NUL character.\n");
    /* Handlers always see a tuple; a list (never sent by the reference) is copied. */
    yt_value *targs = yt_value_tuple();
    for (size_t i = 0; targs && i < yt_value_len(a); i++)
        if (yt_value_append(targs, yt_value_copy(yt_value_item(a, i))) != YT_OK) {
            yt_value_free(targs);
            targs = NULL;
        }
    if (!targs)
        return fmt_alloc("Out of memory\n");
    *args = targs;
    return NULL;
}

/* Decodes request p, calls the method and sends the reply (the value or the error tuple). */
static void rep_answer(rep_impl *r, const yti_pkg *p)
{
    yt_value *req = NULL, *args = NULL, *result = NULL;
    const char *name = NULL;
    const yt_value *kwargs = NULL;
    char *errmsg = NULL;
    char err[ERR_MAX];
    if (yt_value_decode(p->data, p->len, &req) != YT_OK)
        errmsg = fmt_alloc("Invalid request: %s\n", yt_last_error());
    else
        errmsg = split_request(req, &name, &args, &kwargs);
    if (!errmsg) {
        yt_rep_fn fn = NULL;
        void *user = NULL;
        yti_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->nmethods; i++)
            if (strcmp(r->methods[i].name, name) == 0) {
                fn = r->methods[i].fn;
                user = r->methods[i].user;
            }
        yti_mutex_unlock(&r->lock);
        err[0] = '\0';
        if (fn) {
            result = fn(args, kwargs, user, err, sizeof err);
            err[sizeof err - 1] = '\0';
        } else if (strcmp(name, "echo") == 0) {
            result = builtin_echo(r, args, kwargs, err, sizeof err);
        } else {
            errmsg = fmt_alloc("Method '%s' not implemented.", name);
        }
        /* A failure's message ends with "\n", where the reference adds the location (Q18). */
        if (!result && !errmsg)
            errmsg = fmt_alloc("%s\n", err[0] ? err : "Error handling request.");
    }
    void *buf = NULL;
    size_t len = 0;
    if (result && yt_value_encode(result, &buf, &len) != YT_OK)
        errmsg = fmt_alloc("The result could not be encoded: %s\n", yt_last_error());
    if (!result || !buf) {
        free(buf);
        buf = NULL;
        yt_value *t = yt_value_tuple();
        if (t && yt_value_append(t, yt_value_string(ERROR_OBJECT)) == YT_OK &&
            yt_value_append(t, yt_value_string(errmsg ? errmsg : "Out of memory\n")) == YT_OK)
            yt_value_encode(t, &buf, &len);
        yt_value_free(t);
    }
    /* The handler may have closed or freed this very channel. */
    if (buf && !atomic_load(&r->gone)) {
        yti_pkg *q = yti_pkg_from(buf, len, r->ch->slot_out, p->source_id, p->dest_seq);
        if (q)
            yti_channel_send_pkg(r->ch, q);
    }
    free(buf);
    free(errmsg);
    yt_value_free(result);
    yt_value_free(args);
    yt_value_free(req);
}

static bool is_ctl(const yti_pkg *p, const char *what)
{
    return p->len == 4 && memcmp(p->data, what, 4) == 0;
}

/* One handling step on package p (consumed). Returns true when it was a request. */
static bool rep_step(rep_impl *r, yti_pkg *p)
{
    if (p->len == 0 || (p->dest_seq == 0)) {
        /* A wake-up marker (stop_thread), or not a request id (requests count from 1). */
        yti_pkg_unref(p);
        return false;
    }
    if (p->dest_seq > YTI_REF) {
        yti_mutex_lock(&r->lock);
        /* Either way an earlier entry of the same pre-request goes: a withdrawal cancels it, a
         * repeated announcement must not queue twice. */
        size_t w = 0;
        for (size_t i = 0; i < r->npending; i++) {
            yti_pkg *e = r->pending[i];
            if (e->source_id == p->source_id && e->dest_seq == p->dest_seq)
                yti_pkg_unref(e);
            else
                r->pending[w++] = e;
        }
        r->npending = w;
        if (is_ctl(p, "req-")) {
            if (r->have_cur && r->cur_src == p->source_id && r->cur_seq == p->dest_seq)
                r->have_cur = false;
        } else if (is_ctl(p, "req?")) {
            if (r->npending == r->max_pending) {
                /* Bounded like every queue: the oldest announcement goes. */
                yti_pkg_unref(r->pending[0]);
                memmove(r->pending, r->pending + 1, (r->npending - 1) * sizeof *r->pending);
                r->npending--;
            }
            if (r->npending == r->cappending) {
                size_t ncap = r->cappending ? 2 * r->cappending : 8;
                yti_pkg **nv = realloc(r->pending, ncap * sizeof *nv);
                if (nv) {
                    r->pending = nv;
                    r->cappending = ncap;
                }
            }
            if (r->npending < r->cappending) {
                r->pending[r->npending++] = p;
                p = NULL;
            }
        }
        yti_mutex_unlock(&r->lock);
        yti_pkg_unref(p);
        return false;
    }
    yti_mutex_lock(&r->lock);
    r->have_cur = false;
    yti_mutex_unlock(&r->lock);
    rep_answer(r, p);
    yti_pkg_unref(p);
    return true;
}

/* Forgets a stale acknowledgement; when free, acknowledges the oldest pending pre-request. */
static void rep_ack_next(rep_impl *r)
{
    if (atomic_load(&r->gone))
        return;
    uint64_t now = yti_now();
    yti_pkg *ack = NULL;
    yti_mutex_lock(&r->lock);
    if (r->have_cur && now - r->cur_time > ACK_EXPIRY_NS)
        r->have_cur = false; /* the requester never answered; do not wait for it forever */
    if (!r->have_cur && r->npending > 0) {
        ack = r->pending[0];
        memmove(r->pending, r->pending + 1, (r->npending - 1) * sizeof *r->pending);
        r->npending--;
        r->have_cur = true;
        r->cur_src = ack->source_id;
        r->cur_seq = ack->dest_seq;
        r->cur_time = now;
    }
    yti_mutex_unlock(&r->lock);
    if (!ack)
        return;
    yti_pkg *q = yti_pkg_from("req!", 4, r->ch->slot_out, ack->source_id, ack->dest_seq);
    if (q)
        yti_channel_send_pkg(r->ch, q);
    yti_pkg_unref(ack);
}

/* EVENT mode: handles what is queued, on the loop's thread. */
static void rep_event_run(rep_impl *r)
{
    rep_ref(r);
    for (int n = 0;; n++) {
        if (atomic_load(&r->gone) || atomic_load(&r->mode) != YT_REP_EVENT ||
            yt_channel_closed(r->ch))
            break;
        if (n == EVENT_BATCH) {
            /* Let other events run; continue in a fresh event. */
            yt_signal_emit(r->evsig, 0, NULL);
            break;
        }
        yti_pkg *p = NULL;
        if (yti_queue_pop(r->ch->q, 0, &p) != YT_OK) {
            rep_ack_next(r);
            break;
        }
        rep_step(r, p);
        rep_ack_next(r);
    }
    rep_unref(r);
}

static void rep_evsig_handler(const yt_event *ev, void *user)
{
    (void)ev;
    rep_event_run(user);
}

static void rep_timer_cb(void *user)
{
    rep_event_run(user);
}

static void *rep_thread_main(void *arg)
{
    rep_thread *t = arg;
    rep_impl *r = t->r;
    yt_channel *ch = t->ch;
    while (!atomic_load(&t->stop)) {
        yti_pkg *p = NULL;
        int rc = yti_queue_pop(ch->q, yti_deadline(REP_WAKE_S), &p);
        if (rc == YT_ECLOSED)
            break;
        if (rc == YT_OK)
            rep_step(r, p);
        /* A stopped replier acknowledges nothing more: it will not take the request. */
        if (atomic_load(&t->stop))
            break;
        rep_ack_next(r);
    }
    /* The last channel reference may go here, and the channel's destroy then stops this very
     * thread: it marks it self-detaching instead of joining. */
    yti_channel_unref(ch);
    bool detach = atomic_load(&t->self_detach);
    rep_unref(r);
    if (detach) {
        yti_thread_detach(&t->t);
        free(t);
    }
    return NULL;
}

/* Starts a replier thread (r's lock held). */
static int start_thread(rep_impl *r, yt_channel *ch)
{
    rep_thread *t = calloc(1, sizeof *t);
    if (!t)
        return yti_error(YT_ENOMEM, "Out of memory");
    atomic_init(&t->stop, false);
    atomic_init(&t->self_detach, false);
    t->ch = yti_channel_ref(ch);
    t->r = rep_ref(r);
    int rc = yti_thread_start(&t->t, rep_thread_main, t, "yt-rep", 0);
    if (rc != YT_OK) {
        atomic_fetch_sub_explicit(&r->refs, 1, memory_order_relaxed); /* never the last */
        atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_relaxed);
        free(t);
        return rc;
    }
    r->thr = t;
    return YT_OK;
}

/* Stops a thread taken out of rep_impl.thr: wakes and joins it, or, on the thread itself,
 * lets it detach itself when it ends. */
static void stop_thread(rep_thread *t)
{
    atomic_store(&t->stop, true);
    if (yti_thread_is_self(&t->t)) {
        atomic_store(&t->self_detach, true);
        return;
    }
    /* An empty package is never deposited, so it can serve as a wake-up: it makes a blocked
     * pop return at once, and whoever takes it ignores it. */
    yti_pkg *m = yti_pkg_new(0);
    if (m)
        yti_queue_push_front(t->ch->q, m);
    yti_thread_join(&t->t);
    free(t);
}

/* Closed: the queue's close already woke the thread and yt_rep_process; the event timer has
 * nothing more to do. Must not block (may run under the context lock). */
static void rep_on_close(yt_channel *ch)
{
    rep_impl *r = ch->impl;
    if (r)
        yt_timer_stop(r->timer);
}

static void rep_after_deposit(yt_channel *ch)
{
    rep_impl *r = ch->impl;
    if (atomic_load(&r->mode) == YT_REP_EVENT)
        yt_signal_emit(r->evsig, 0, NULL);
}

static void rep_destroy(yt_channel *ch)
{
    rep_impl *r = ch->impl;
    if (!r)
        return;
    atomic_store(&r->gone, true);
    /* Both wait for a handler running on another thread; from inside one's own handler they
     * return at once and the running loop sees `gone`. */
    yt_timer_free(r->timer);
    yt_signal_free(r->evsig);
    yti_mutex_lock(&r->lock);
    rep_thread *t = r->thr;
    r->thr = NULL;
    yti_mutex_unlock(&r->lock);
    if (t)
        stop_thread(t);
    ch->impl = NULL;
    rep_unref(r);
}

static const yti_channel_ops rep_ops = {
    .after_deposit = rep_after_deposit,
    .on_close = rep_on_close,
    .destroy = rep_destroy,
};

int yt_rep_new(yt_context *ctx, const char *slot_base, yt_channel **out)
{
    if (!ctx || !slot_base || !out)
        return yti_error(YT_EINVAL, "Invalid argument");
    rep_impl *r = calloc(1, sizeof *r);
    if (!r)
        return yti_error(YT_ENOMEM, "Out of memory");
    atomic_init(&r->refs, 1);
    atomic_init(&r->gone, false);
    atomic_init(&r->mode, YT_REP_OFF);
    yti_mutex_init(&r->lock);
    r->own_id = yti_context_own_id(ctx);
    r->max_pending = yti_context_config(ctx)->queue_size;
    yt_loop *loop = yti_context_loop(ctx);
    /* Made before the channel is registered: receiver threads may call in from then on. */
    int rc;
    if ((rc = yt_signal_new(loop, NULL, true, &r->evsig)) != YT_OK ||
        (rc = yt_signal_bind(r->evsig, rep_evsig_handler, r)) != YT_OK ||
        (rc = yt_timer_new(loop, REP_WAKE_S, false, rep_timer_cb, r, &r->timer)) != YT_OK) {
        yt_signal_free(r->evsig);
        rep_unref(r);
        return rc;
    }
    yt_channel *ch = NULL;
    rc = yti_channel_create(ctx, YTI_REP, slot_base, YT_OBJECT, "rep-req", "req-rep", true,
                            &rep_ops, r, &ch);
    if (rc != YT_OK) {
        yt_timer_free(r->timer);
        yt_signal_free(r->evsig);
        rep_unref(r);
        return rc;
    }
    /* Read only by handling loops, which start after this returns (modes, yt_rep_process). */
    r->ch = ch;
    *out = ch;
    return YT_OK;
}

int yt_rep_register(yt_channel *rep, const char *name, yt_rep_fn fn, void *user)
{
    if (!is_rep(rep) || !name || !name[0] || !fn || !yti_utf8_valid(name, strlen(name)))
        return yti_error(YT_EINVAL, "Not a replier, or an empty/invalid method name or no fn");
    rep_impl *r = rep->impl;
    int rc = YT_OK;
    yti_mutex_lock(&r->lock);
    method *m = NULL;
    for (size_t i = 0; i < r->nmethods && !m; i++)
        if (strcmp(r->methods[i].name, name) == 0)
            m = &r->methods[i];
    if (!m) {
        char *copy = strdup(name);
        if (copy && r->nmethods == r->capmethods) {
            size_t ncap = r->capmethods ? 2 * r->capmethods : 8;
            method *nv = realloc(r->methods, ncap * sizeof *nv);
            if (nv) {
                r->methods = nv;
                r->capmethods = ncap;
            }
        }
        if (copy && r->nmethods < r->capmethods) {
            m = &r->methods[r->nmethods++];
            m->name = copy;
        } else {
            free(copy);
            rc = YT_ENOMEM;
        }
    }
    if (m) {
        m->fn = fn;
        m->user = user;
    }
    yti_mutex_unlock(&r->lock);
    return rc == YT_OK ? YT_OK : yti_error(rc, "Out of memory");
}

int yt_rep_set_mode(yt_channel *rep, yt_rep_mode mode)
{
    if (!is_rep(rep) || (mode != YT_REP_OFF && mode != YT_REP_EVENT && mode != YT_REP_THREAD))
        return yti_error(YT_EINVAL, "Not a replier, or an unknown mode");
    if (mode != YT_REP_OFF && yt_channel_closed(rep))
        return yti_error(YT_ECLOSED, "The channel is closed");
    rep_impl *r = rep->impl;
    rep_thread *stop = NULL;
    int rc = YT_OK;
    yti_mutex_lock(&r->lock);
    if (mode != YT_REP_THREAD && r->thr) {
        stop = r->thr;
        r->thr = NULL;
        atomic_store(&stop->stop, true);
    }
    if (mode == YT_REP_THREAD && !r->thr)
        rc = start_thread(r, rep);
    if (rc == YT_OK)
        atomic_store(&r->mode, mode);
    yti_mutex_unlock(&r->lock);
    if (rc == YT_OK && mode == YT_REP_EVENT) {
        yt_timer_start(r->timer);
        yt_signal_emit(r->evsig, 0, NULL); /* what already waits */
    } else if (rc == YT_OK) {
        yt_timer_stop(r->timer);
    }
    /* Joined without any lock: the thread may be finishing a handler that takes them. */
    if (stop)
        stop_thread(stop);
    return rc;
}

int yt_rep_process(yt_channel *rep, double timeout)
{
    if (!is_rep(rep) || isnan(timeout))
        return yti_error(YT_EINVAL, "Not a replier");
    if (yt_channel_closed(rep))
        return yti_error(YT_ECLOSED, "The channel is closed");
    rep_impl *r = rep_ref(rep->impl);
    uint64_t deadline = yti_deadline(timeout);
    int handled = 0, rc = YT_OK;
    for (;;) {
        /* Acknowledging here, and only while this call runs, is what makes a replier in mode
         * OFF take requests only when it is ready for them. */
        rep_ack_next(r);
        if (atomic_load(&r->gone))
            break;
        yti_channel_touch(rep);
        yti_mutex_lock(&r->lock);
        bool outstanding = r->have_cur;
        yti_mutex_unlock(&r->lock);
        /* Wait for the first request; after that only for one already acknowledged (it is on
         * its way here), then return what was handled. */
        uint64_t until = handled == 0 || outstanding ? deadline : 0;
        uint64_t step = yti_deadline(REP_WAKE_S);
        bool last = until <= step;
        yti_pkg *p = NULL;
        int prc = yti_queue_pop(rep->q, last ? until : step, &p);
        if (prc == YT_ECLOSED) {
            if (handled == 0)
                rc = yti_error(YT_ECLOSED, "The channel is closed");
            break;
        }
        if (prc == YT_OK) {
            if (rep_step(r, p))
                handled++;
            if (atomic_load(&r->gone))
                break;
            continue;
        }
        if (last)
            break;
    }
    rep_unref(r);
    return rc != YT_OK ? rc : handled;
}
