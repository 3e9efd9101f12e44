/*
 * pubsub.c - publish/subscribe channels (spec 14): sync mode and ordered reading of several
 * subscribers.
 *
 * A PubChannel sends on base.type.pub-sub and listens on base.type.sub-pub for the sync-mode
 * status of subscribers; a SubChannel the reverse. Every SubChannel on the slot anywhere in the
 * network queues each message (bounded, discarding per the context's options).
 *
 * Sync mode, subscriber side: a check compares the queue length with the high (32) and low (16)
 * water marks and sends "full" or "ok" (raw ASCII, whatever the channel's type, as the
 * reference) on a transition, and repeats the current status every 4 s while checks run. The
 * reference runs the check from its event loop; here it runs on the receiver thread right after
 * each arrival (after_deposit, no locks held) and on every recv/recv_all/select, so it works
 * without any event loop on either side.
 *
 * Sync mode, publisher side: the set of subscriber ids whose last status was "full" (anything
 * else, including undecodable bytes, removes the sender: Q23). While the set is non-empty the
 * channel is locked until 10 s after the last status; a send on a locked channel waits up to 1 s
 * for the unlock and then sends anyway, so a vanished subscriber delays each message by at most
 * 1 s and blocks nothing forever.
 *
 * Ordered select: every package deposited at a context gets the next receive sequence number
 * (recv_seq), so the heads of several subscribers' queues tell which message arrived first.
 * yt_sub_select waits on all of them at once through channel watchers (channel.h).
 */
#include "channel.h"

#include "../util.h"

#include <stdlib.h>
#include <string.h>

#define SYNC_HWM 32
#define SYNC_LWM 16
#define SYNC_RESEND 4.0
#define PUB_HOLD_MAX 1.0
#define PUB_LOCK_EXPIRY 10.0

enum { SYNC_OFF, SYNC_OK, SYNC_FULL };

typedef struct sub_impl {
    yti_mutex lock;
    atomic_int sync; /* written under lock; read without it for the per-message fast path */
    uint64_t deadline;   /* monotonic ns: resend the status after this */
    uint64_t select_lim; /* recv_selected takes messages with recv_seq below this */
} sub_impl;

typedef struct pub_impl {
    yti_mutex lock;
    yti_cond unlocked;
    uint64_t *full; /* subscriber ids whose last status was "full" */
    size_t nfull, capfull;
    uint64_t expiry; /* monotonic ns; meaningful while nfull > 0 */
    atomic_bool held; /* nfull > 0, readable without the lock (the per-send fast path) */
    int waiters;
} pub_impl;

/* ------------------------------------------------------------------------------------------ */
/* Publisher                                                                                   */

static void pub_deposit(yt_channel *ch, yti_pkg *p)
{
    /* Called under the context lock on a receiver thread: only the channel's own lock. */
    pub_impl *pi = ch->impl;
    bool full = p->len == 4 && memcmp(p->data, "full", 4) == 0;
    uint64_t src = p->source_id;
    yti_pkg_unref(p);
    yti_mutex_lock(&pi->lock);
    size_t i = 0;
    while (i < pi->nfull && pi->full[i] != src)
        i++;
    if (full && i == pi->nfull) {
        if (pi->nfull == pi->capfull) {
            size_t ncap = pi->capfull ? pi->capfull * 2 : 4;
            uint64_t *nv = realloc(pi->full, ncap * sizeof *nv);
            if (nv) {
                pi->full = nv;
                pi->capfull = ncap;
            }
        }
        if (pi->nfull < pi->capfull)
            pi->full[pi->nfull++] = src;
    } else if (!full && i < pi->nfull) {
        pi->full[i] = pi->full[--pi->nfull];
    }
    pi->expiry = yti_deadline(PUB_LOCK_EXPIRY);
    atomic_store(&pi->held, pi->nfull > 0);
    if (pi->nfull == 0 && pi->waiters)
        yti_cond_broadcast(&pi->unlocked);
    yti_mutex_unlock(&pi->lock);
}

/* Waits (at most 1 s) while a subscriber holds the channel back, then sends anyway. */
static int pub_send(yt_channel *ch, yti_pkg *p)
{
    pub_impl *pi = ch->impl;
    /* No subscriber in sync mode holds the channel: the common case takes no lock. A status
     * arriving right now is honoured from the next send on. */
    if (!atomic_load(&pi->held))
        return yti_channel_send_raw(ch, p);
    yti_mutex_lock(&pi->lock);
    if (pi->nfull > 0) {
        uint64_t now = yti_now();
        if (now > pi->expiry) {
            pi->nfull = 0; /* the subscribers went quiet: the hold expired */
            atomic_store(&pi->held, false);
        } else {
            uint64_t deadline = yti_deadline(PUB_HOLD_MAX);
            pi->waiters++;
            while (pi->nfull > 0 && !yt_channel_closed(ch) &&
                   yti_cond_until(&pi->unlocked, &pi->lock, deadline)) {
            }
            pi->waiters--;
        }
    }
    yti_mutex_unlock(&pi->lock);
    return yti_channel_send_raw(ch, p);
}

static void pub_on_close(yt_channel *ch)
{
    pub_impl *pi = ch->impl;
    yti_mutex_lock(&pi->lock);
    yti_cond_broadcast(&pi->unlocked);
    yti_mutex_unlock(&pi->lock);
}

static void pub_destroy(yt_channel *ch)
{
    pub_impl *pi = ch->impl;
    if (!pi)
        return;
    free(pi->full);
    yti_cond_destroy(&pi->unlocked);
    yti_mutex_destroy(&pi->lock);
    free(pi);
}

static const yti_channel_ops pub_ops = {
    .deposit = pub_deposit, .send = pub_send, .on_close = pub_on_close, .destroy = pub_destroy};

int yt_pub_new(yt_context *ctx, const char *slot_base, const char *type, yt_channel **out)
{
    pub_impl *pi = calloc(1, sizeof *pi);
    if (!pi)
        return yti_error(YT_ENOMEM, "Out of memory");
    yti_mutex_init(&pi->lock);
    atomic_init(&pi->held, false);
    yti_cond_init(&pi->unlocked);
    int rc = yti_channel_create(ctx, YTI_PUB, slot_base, type, "pub-sub", "sub-pub", false,
                                &pub_ops, pi, out);
    if (rc) {
        yti_cond_destroy(&pi->unlocked);
        yti_mutex_destroy(&pi->lock);
        free(pi);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Subscriber                                                                                  */

static void send_status(yt_channel *ch, const char *what)
{
    yt_context *ctx = yti_channel_hold_ctx(ch);
    bool connected = ctx && yti_context_is_connected(ctx);
    if (ctx)
        yti_context_unhold(ctx);
    if (!connected)
        return;
    yti_pkg *p = yti_pkg_from(what, strlen(what), ch->slot_out, 0, 0);
    if (p)
        yti_channel_send_raw(ch, p);
}

/* The sync-mode check (see the top of the file). */
static void sub_check(yt_channel *ch)
{
    sub_impl *si = ch->impl;
    if (atomic_load_explicit(&si->sync, memory_order_relaxed) == SYNC_OFF)
        return; /* runs on every arrival: no lock when sync mode is off */
    const char *what = NULL;
    yti_mutex_lock(&si->lock);
    if (si->sync != SYNC_OFF) {
        size_t n = yti_queue_len(ch->q);
        uint64_t now = yti_now();
        if (n > SYNC_HWM && si->sync == SYNC_OK) {
            si->sync = SYNC_FULL;
            si->deadline = now + (uint64_t)(SYNC_RESEND * 1e9);
            what = "full";
        } else if (n < SYNC_LWM && si->sync == SYNC_FULL) {
            si->sync = SYNC_OK;
            si->deadline = now + (uint64_t)(SYNC_RESEND * 1e9);
            what = "ok";
        } else if (si->deadline < now) {
            si->deadline = now + (uint64_t)(SYNC_RESEND * 1e9);
            what = si->sync == SYNC_OK ? "ok" : "full";
        }
    }
    yti_mutex_unlock(&si->lock);
    if (what)
        send_status(ch, what);
}

/* In sync mode a full queue pauses the connection that feeds it (see connection.c) rather than
 * discarding: the reference relies on its 10 KiB socket buffers to keep little in flight, which
 * a C port with normal buffers cannot. */
static bool sub_wants_pause(yt_channel *ch)
{
    sub_impl *si = ch->impl;
    bool on = atomic_load_explicit(&si->sync, memory_order_relaxed) != SYNC_OFF;
    return on && yti_queue_len(ch->q) >= yti_queue_max(ch->q);
}

static void sub_destroy(yt_channel *ch)
{
    sub_impl *si = ch->impl;
    if (!si)
        return;
    yti_mutex_destroy(&si->lock);
    free(si);
}

static const yti_channel_ops sub_ops = {.after_deposit = sub_check,
                                         .wants_pause = sub_wants_pause,
                                         .after_recv = sub_check,
                                         .destroy = sub_destroy};

int yt_sub_new(yt_context *ctx, const char *slot_base, const char *type, yt_channel **out)
{
    sub_impl *si = calloc(1, sizeof *si);
    if (!si)
        return yti_error(YT_ENOMEM, "Out of memory");
    yti_mutex_init(&si->lock);
    atomic_init(&si->sync, SYNC_OFF);
    si->select_lim = UINT64_MAX;
    int rc = yti_channel_create(ctx, YTI_SUB, slot_base, type, "sub-pub", "pub-sub", true,
                                &sub_ops, si, out);
    if (rc) {
        yti_mutex_destroy(&si->lock);
        free(si);
    }
    return rc;
}

static bool is_sub(const yt_channel *ch)
{
    return ch && ch->kind == YTI_SUB && ch->ops == &sub_ops;
}

int yt_sub_set_sync_mode(yt_channel *sub, bool on)
{
    if (!is_sub(sub))
        return yti_error(YT_EINVAL, "Sync mode is for subscribers");
    sub_impl *si = sub->impl;
    bool send_ok = false;
    yti_mutex_lock(&si->lock);
    /* The queue's waiters (a paused receiver) only wait while a consumer is attached. */
    yti_queue_set_consumer(sub->q, on);
    atomic_store(&sub->pausable, on);
    if (on && si->sync == SYNC_OFF) {
        si->sync = SYNC_OK;
        si->deadline = 0; /* the first check sends the status at once */
    } else if (!on && si->sync != SYNC_OFF) {
        send_ok = si->sync == SYNC_FULL;
        si->sync = SYNC_OFF;
    }
    yti_mutex_unlock(&si->lock);
    if (send_ok)
        send_status(sub, "ok");
    else
        sub_check(sub);
    return YT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Ordered reading                                                                             */

/* The receive sequence number of ch's first pending message, or UINT64_MAX when none. */
static uint64_t head_seq(yt_channel *ch)
{
    yti_pkg *p = yti_queue_peek(ch->q);
    uint64_t s = p ? p->recv_seq : UINT64_MAX;
    yti_pkg_unref(p);
    return s;
}

/* Picks the channel with the oldest head; records in it the limit for recv_selected. */
static int pick(yt_channel *const *subs, size_t n)
{
    int best = -1;
    uint64_t best_seq = UINT64_MAX, second = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = head_seq(subs[i]);
        if (s < best_seq) {
            second = best_seq;
            best_seq = s;
            best = (int)i;
        } else if (s < second) {
            second = s;
        }
    }
    if (best >= 0) {
        sub_impl *si = subs[best]->impl;
        yti_mutex_lock(&si->lock);
        si->select_lim = second;
        yti_mutex_unlock(&si->lock);
    }
    return best;
}

static int check_subs(yt_channel *const *subs, size_t n)
{
    if (!subs || n == 0)
        return yti_error(YT_EINVAL, "No channels to select from");
    for (size_t i = 0; i < n; i++)
        if (!is_sub(subs[i]))
            return yti_error(YT_EINVAL, "Only subscribers can be selected from");
    return YT_OK;
}

/* Waits until one of subs has a message; returns its index, or a negative error. */
static int select_wait(yt_channel *const *subs, size_t n, double timeout)
{
    uint64_t deadline = yti_deadline(timeout);
    yti_watch w;
    yti_mutex_init(&w.lock);
    yti_cond_init(&w.cond);
    w.seq = 0;
    size_t watched = 0;
    int rc = YT_OK;
    for (; watched < n && rc == YT_OK; watched++)
        rc = yti_channel_watch(subs[watched], &w);
    if (rc != YT_OK)
        watched--;
    int found = rc;
    while (rc == YT_OK) {
        yti_mutex_lock(&w.lock);
        uint64_t seen = w.seq;
        yti_mutex_unlock(&w.lock);
        for (size_t i = 0; i < n; i++) {
            yti_channel_touch(subs[i]);
            sub_check(subs[i]);
        }
        int best = pick(subs, n);
        if (best >= 0) {
            found = best;
            break;
        }
        bool all_closed = true;
        for (size_t i = 0; i < n; i++)
            all_closed = all_closed && yt_channel_closed(subs[i]);
        if (all_closed) {
            found = yti_error(YT_ECLOSED, "The channels are closed");
            break;
        }
        if (yti_remaining(deadline) == 0) {
            found = timeout == 0 ? yti_error(YT_EAGAIN, "No message available")
                                 : yti_error(YT_ETIMEDOUT, "No message arrived in time");
            break;
        }
        /* Wake at least every 0.25 s to keep showing the application alive. */
        uint64_t step = yti_deadline(YTI_HEARTBEAT_INTERVAL);
        yti_mutex_lock(&w.lock);
        while (w.seq == seen && yti_cond_until(&w.cond, &w.lock, step < deadline ? step
                                                                                : deadline)) {
        }
        yti_mutex_unlock(&w.lock);
    }
    for (size_t i = 0; i < watched; i++)
        yti_channel_unwatch(subs[i], &w);
    yti_cond_destroy(&w.cond);
    yti_mutex_destroy(&w.lock);
    return found;
}

int yt_sub_select(yt_channel *const *subs, size_t n, double timeout, yt_channel **which)
{
    int rc = check_subs(subs, n);
    if (rc)
        return rc;
    if (!which)
        return yti_error(YT_EINVAL, "which is NULL");
    *which = NULL;
    int i = select_wait(subs, n, timeout);
    if (i < 0)
        return i;
    *which = subs[i];
    return YT_OK;
}

int yt_sub_recv_selected(yt_channel *sub, yt_msg ***msgs, size_t *n)
{
    if (!is_sub(sub) || !msgs || !n)
        return yti_error(YT_EINVAL, "recv_selected is for a subscriber chosen by yt_sub_select");
    *msgs = NULL;
    *n = 0;
    sub_impl *si = sub->impl;
    yti_mutex_lock(&si->lock);
    uint64_t lim = si->select_lim;
    si->select_lim = UINT64_MAX;
    yti_mutex_unlock(&si->lock);
    size_t cap = 0, k = 0;
    yti_pkg **v = NULL;
    for (;;) {
        yti_pkg *p = yti_queue_peek(sub->q);
        if (!p)
            break;
        bool take = p->recv_seq < lim;
        yti_pkg_unref(p);
        if (!take || yti_queue_pop(sub->q, 0, &p) != YT_OK)
            break;
        if ((p = yti_channel_unwrap(sub, p)) == NULL)
            continue;
        if (k == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            yti_pkg **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                yti_queue_push_front(sub->q, p);
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[k++] = p;
    }
    sub_check(sub);
    if (k == 0) {
        free(v);
        return YT_OK;
    }
    *msgs = (yt_msg **)v;
    *n = k;
    return YT_OK;
}

int yt_sub_recv_any(yt_channel *const *subs, size_t n, double timeout, size_t *index,
                    yt_msg **out)
{
    if (out)
        *out = NULL;
    int rc = check_subs(subs, n);
    if (rc)
        return rc;
    if (!out)
        return yti_error(YT_EINVAL, "out is NULL");
    uint64_t deadline = yti_deadline(timeout);
    for (;;) {
        double left = yti_remaining(deadline);
        int i = select_wait(subs, n, timeout < 0 ? -1.0 : left);
        if (i < 0)
            return i;
        yti_pkg *p = NULL;
        /* Another thread may have taken it meanwhile: then select again. */
        if (yti_queue_pop(subs[i]->q, 0, &p) == YT_OK &&
            (p = yti_channel_unwrap(subs[i], p)) != NULL) {
            sub_check(subs[i]);
            if (index)
                *index = (size_t)i;
            *out = p;
            return YT_OK;
        }
    }
}
