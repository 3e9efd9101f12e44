/*
 * state.c - state channels (spec 16): one value shared by every StateChannel on a slot.
 *
 * A state channel sends and receives on the same slot, base.type.state. It keeps the current
 * state as a package: the last one it sent or received (last arrival wins; there are no
 * timestamps), reference-counted, so yt_channel_recv() hands out a new reference to it without
 * copying and never waits. Sending a value equal to the current one (same bytes) sends nothing;
 * an empty value is ignored (base.c returns before any hook). When the network gains a
 * connection, the context calls on_new_connection and the channel broadcasts its state again as
 * a new package, so newcomers learn it (yt_state_send_last() does the same on request).
 *
 * For zlib types ("zlib-txt", ...) the channel keeps both the package as it travels (compressed)
 * and its inflated payload ("inner"): recv returns the inner bytes, comparisons use them, and
 * send_last re-sends the compressed bytes. A received package is inflated on the receiver
 * thread after the context lock is released (after_deposit), never under it; one that does not
 * inflate is dropped and counted in yt_channel_discarded(), and the previous state stays.
 *
 * Threads and locks. `lock` (a channel lock in the order of core.h) guards the current state and
 * is only ever held for a few pointer swaps: deposits take it under the context lock. Sends are
 * serialised by `send_lock`, taken before and never under the context lock, so a value is
 * compared, sent and installed as one step with respect to other sends. The version of a state
 * is its package's recv_seq, which the context assigns under its lock to every package sent or
 * received, in one order: so the state kept here is always the one that came last at this
 * context, exactly the order in which it forwarded them (a value sent here and one arriving
 * while it is being sent can no longer end up in opposite orders here and downstream), and a
 * slow inflate finishing late never replaces a newer state.
 */
#include "channel.h"

#include "../util.h"

#include <stdlib.h>
#include <string.h>

typedef struct state_impl {
    yti_mutex lock;      /* guards everything below except send_lock */
    yti_mutex send_lock; /* serialises sends and send_last */
    yti_pkg *wire;       /* the current state as sent/received, or NULL */
    yti_pkg *inner;      /* its payload as the user sees it (== wire for plain types) */
    uint64_t version;    /* version (recv_seq) of wire/inner */
    yti_pkg *incoming;   /* zlib: arrived, not inflated yet */
    uint64_t incoming_version;
} state_impl;

static bool same_bytes(const yti_pkg *a, const yti_pkg *b)
{
    return a && b && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Makes (wire, inner) the current state if version is newer (both consumed). Returns whether
 * it was installed. Called with st->lock held. */
static bool install_locked(state_impl *st, yti_pkg *wire, yti_pkg *inner, uint64_t version)
{
    if (version <= st->version) {
        yti_pkg_unref(wire);
        yti_pkg_unref(inner);
        return false;
    }
    yti_pkg *old_wire = st->wire, *old_inner = st->inner;
    st->wire = wire;
    st->inner = inner;
    st->version = version;
    /* Freeing under the lock is fine: it is a plain free, it never waits on anything. */
    yti_pkg_unref(old_wire);
    yti_pkg_unref(old_inner);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Receiving                                                                                   */

static void state_deposit(yt_channel *ch, yti_pkg *p)
{
    /* Under the context lock on a receiver thread: only pointer swaps under our own lock. */
    state_impl *st = ch->impl;
    bool emit = false;
    yti_mutex_lock(&st->lock);
    uint64_t v = p->recv_seq;
    if (ch->zlib) {
        /* Inflated in after_deposit, without the context lock. A newer arrival replaces one not
         * yet inflated: it would lose to it anyway. */
        yti_pkg_unref(st->incoming);
        st->incoming = p;
        st->incoming_version = v;
    } else {
        emit = install_locked(st, yti_pkg_ref(p), p, v);
    }
    yti_mutex_unlock(&st->lock);
    if (emit)
        yt_signal_emit(ch->received, 0, NULL);
}

static void state_after_deposit(yt_channel *ch)
{
    if (!ch->zlib)
        return;
    state_impl *st = ch->impl;
    yti_mutex_lock(&st->lock);
    yti_pkg *p = st->incoming;
    uint64_t v = st->incoming_version;
    st->incoming = NULL;
    yti_mutex_unlock(&st->lock);
    if (!p)
        return; /* another receiver thread took it */
    yti_pkg *wire = yti_pkg_ref(p);
    yti_pkg *inner = yti_channel_unwrap(ch, p); /* counts undecodable ones in ch->bad */
    if (!inner || inner->len == 0) {
        /* Undecodable, or an empty inner value (which no channel sends): not a state. */
        yti_pkg_unref(inner);
        yti_pkg_unref(wire);
        return;
    }
    yti_mutex_lock(&st->lock);
    bool emit = install_locked(st, wire, inner, v);
    yti_mutex_unlock(&st->lock);
    if (emit)
        yt_signal_emit(ch->received, 0, NULL);
}

/*
 * The recv of a state channel: the current state as a new reference, at once whatever the
 * timeout (a state is there or not; waiting for one is what the received signal is for).
 */
static int state_recv(yt_channel *ch, double timeout, yt_msg **out)
{
    (void)timeout;
    if (yt_channel_closed(ch))
        return yti_error(YT_ECLOSED, "The channel is closed");
    yti_channel_touch(ch);
    state_impl *st = ch->impl;
    yti_mutex_lock(&st->lock);
    yti_pkg *p = yti_pkg_ref(st->inner);
    yti_mutex_unlock(&st->lock);
    if (!p)
        return yti_error(YT_EAGAIN, "No state yet");
    *out = p;
    return YT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Sending                                                                                     */

/*
 * The send hook: yt_channel_send built p (compressed for zlib types, slot set) from a non-empty,
 * validated value. Sends it unless it equals the current state, then makes it the current one.
 */
static int state_send(yt_channel *ch, yti_pkg *p)
{
    state_impl *st = ch->impl;
    yti_mutex_lock(&st->send_lock);
    yti_mutex_lock(&st->lock);
    yti_pkg *cur_wire = yti_pkg_ref(st->wire);
    yti_pkg *cur_inner = yti_pkg_ref(st->inner);
    yti_mutex_unlock(&st->lock);
    int rc = YT_OK;
    yti_pkg *inner = NULL;
    bool unchanged = same_bytes(cur_wire, p);
    if (!unchanged && ch->zlib) {
        /* Another zlib (a Python peer's) may compress the same value differently: compare
         * what the user sees. Our own output always inflates. */
        rc = yti_zlib_inflate(p, SIZE_MAX, &inner);
        unchanged = rc == YT_OK && same_bytes(cur_inner, inner);
    } else if (!unchanged) {
        inner = yti_pkg_ref(p);
    }
    yti_pkg_unref(cur_wire);
    yti_pkg_unref(cur_inner);
    if (rc != YT_OK || unchanged) {
        yti_pkg_unref(inner);
        yti_pkg_unref(p);
        yti_mutex_unlock(&st->send_lock);
        return rc;
    }
    yti_pkg *wire = yti_pkg_ref(p);
    rc = yti_channel_send_raw(ch, p);
    if (rc == YT_OK) {
        /* Only this thread and the context touched the package so far; the context stamped
         * its source fields before send_raw returned. */
        yti_mutex_lock(&st->lock);
        install_locked(st, wire, inner, wire->recv_seq);
        yti_mutex_unlock(&st->lock);
    } else {
        yti_pkg_unref(wire);
        yti_pkg_unref(inner);
    }
    yti_mutex_unlock(&st->send_lock);
    return rc;
}

int yt_state_send_last(yt_channel *ch)
{
    if (!ch || ch->kind != YTI_STATE)
        return yti_error(YT_EINVAL, "Not a state channel");
    if (yt_channel_closed(ch))
        return yti_error(YT_ECLOSED, "The channel is closed");
    state_impl *st = ch->impl;
    yti_mutex_lock(&st->send_lock);
    yti_mutex_lock(&st->lock);
    yti_pkg *cur = yti_pkg_ref(st->wire);
    yti_mutex_unlock(&st->lock);
    int rc = YT_OK;
    if (cur) {
        /* A new package: the current one carries its own source and sequence number, and
         * packages are never changed once shared. */
        yti_pkg *p = yti_pkg_from(cur->data, cur->len, ch->slot_out, 0, 0);
        yti_pkg_unref(cur);
        rc = p ? yti_channel_send_raw(ch, p) : yti_error(YT_ENOMEM, "Out of memory");
    }
    yti_mutex_unlock(&st->send_lock);
    return rc;
}

static void state_on_new_connection(yt_channel *ch)
{
    /* Nobody to report a failure to: a closed channel or a full queue just skips this round. */
    (void)yt_state_send_last(ch);
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                  */

static void state_destroy(yt_channel *ch)
{
    state_impl *st = ch->impl;
    if (!st)
        return;
    yti_pkg_unref(st->wire);
    yti_pkg_unref(st->inner);
    yti_pkg_unref(st->incoming);
    yti_mutex_destroy(&st->lock);
    yti_mutex_destroy(&st->send_lock);
    free(st);
    ch->impl = NULL;
}

static const yti_channel_ops state_ops = {
    /* Each arrival must be inflated (and a bad one counted) before the next replaces it. */
    .per_package = true,
    .deposit = state_deposit,
    .after_deposit = state_after_deposit,
    .recv = state_recv,
    .on_new_connection = state_on_new_connection,
    .send = state_send,
    .destroy = state_destroy,
};

int yt_state_new(yt_context *ctx, const char *slot_base, const char *type, yt_channel **out)
{
    state_impl *st = calloc(1, sizeof *st);
    if (!st)
        return yti_error(YT_ENOMEM, "Out of memory");
    yti_mutex_init(&st->lock);
    yti_mutex_init(&st->send_lock);
    int rc = yti_channel_create(ctx, YTI_STATE, slot_base, type, "state", "state", false,
                                &state_ops, st, out);
    if (rc != YT_OK) {
        yti_mutex_destroy(&st->lock);
        yti_mutex_destroy(&st->send_lock);
        free(st);
    }
    return rc;
}
