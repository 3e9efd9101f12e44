/*
 * channel.h - what every channel kind shares (channels/base.c) and the hooks a kind provides.
 */
#ifndef YT_CHANNEL_H
#define YT_CHANNEL_H

#include "../core.h"

typedef enum yti_channel_kind {
    YTI_PUB,
    YTI_SUB,
    YTI_REQ,
    YTI_REP,
    YTI_STATE
} yti_channel_kind;

/* A thread waiting for any of several channels to receive (yt_sub_select): every enqueue on a
 * watched channel bumps seq and wakes it. */
typedef struct yti_watch {
    yti_mutex lock;
    yti_cond cond;
    uint64_t seq;
} yti_watch;

typedef struct yti_channel_ops {
    /* A package arrived for this channel (consumed). Called under the context lock on a
     * receiver thread: must not block. NULL = queue it and emit received. */
    void (*deposit)(yt_channel *ch, yti_pkg *p);
    /* After a deposit, without locks, on the receiver thread (may send). May be NULL. */
    void (*after_deposit)(yt_channel *ch);
    /* After a deposit: true when the receiver should stop reading its connection until the
     * channel's queue has room again (sync mode). Without locks. May be NULL. */
    bool (*wants_pause)(yt_channel *ch);
    /* yt_channel_recv() for kinds that keep no queue (state channels): called instead of
     * waiting on the queue, after the argument checks, without locks. NULL = the queue. */
    int (*recv)(yt_channel *ch, double timeout, yt_msg **out);
    /* After the user took messages (recv, recv_all, select), without locks. May be NULL. */
    void (*after_recv)(yt_channel *ch);
    /* The channel was closed (by its owner or its context): wake the kind's own waiters. May
     * run under the context lock: must not block. May be NULL. */
    void (*on_close)(yt_channel *ch);
    /* NEW_CONNECTION: called without locks. May be NULL. */
    void (*on_new_connection)(yt_channel *ch);
    /* Sending a message (p consumed, header slot set, source fields not yet): a kind that needs
     * to see what it sends (state channels) intercepts here and calls yti_channel_send_raw to
     * actually send. NULL = send as is. */
    int (*send)(yt_channel *ch, yti_pkg *p);
    /* Frees the kind's own data when the last reference goes. May be NULL. */
    void (*destroy)(yt_channel *ch);
    /* Receivers normally deposit the packages of one read in a batch and run after_deposit
     * once for it; true makes every package its own batch (after_deposit after each). */
    bool per_package;
} yti_channel_ops;

struct yt_channel {
    atomic_uint refs;
    atomic_bool closed;
    yti_mutex lock;
    yt_context *ctx; /* guarded by lock; NULL once closed */
    yti_channel_kind kind;
    char *type;
    uint64_t slot_out, slot_in;
    yti_queue *q; /* incoming messages, for kinds that receive */
    yt_signal *received;
    const yti_channel_ops *ops;
    void *impl;
    atomic_bool refuse_when_full;
    atomic_bool pausable; /* wants_pause may say yes (sync mode): receivers deposit into it one
                             package at a time and ask after each */
    bool text;            /* the (inner) type is text: sends are checked for UTF-8 */
    bool zlib;                 /* type "zlib-<inner>": payloads are zlib streams */
    /* Watchers (guarded by lock; nwatch read without it on the enqueue path). */
    yti_watch **watch;
    size_t nwatch_cap;
    atomic_size_t nwatch;
    atomic_uint_least64_t bad; /* received payloads dropped as undecodable (zlib) */
    /* What the receiver's deposits (under the context lock) left to do once that lock is
     * released (yti_channel_after_deposit): YTI_WAKE_* for q's sleepers, plus DEPOSIT_NOTIFY
     * (emit received, wake watchers). Raised by deposits, taken by after_deposit. */
    atomic_int after;
};

/*
 * Creates and registers a channel: slots are hashed from "base.type.<pattern_out>" and
 * "base.type.<pattern_in>" (NULL pattern = no such slot); a queue is made when with_queue.
 */
int yti_channel_create(yt_context *ctx, yti_channel_kind kind, const char *base,
                       const char *type, const char *pattern_out, const char *pattern_in,
                       bool with_queue, const yti_channel_ops *ops, void *impl,
                       yt_channel **out);

/* A received package as the user sees it: p itself (consumed, returned) for plain types; for
 * zlib types a new package with the inflated payload (p released), or NULL when p does not
 * inflate within the context's maximum package size (counted in ch->bad). */
yti_pkg *yti_channel_unwrap(yt_channel *ch, yti_pkg *p);

/* ---- msgtypes.c ---- */
/* True for "zlib-<inner>" type names with a non-empty inner name. */
bool yti_type_is_zlib(const char *type);
/* The inner type name of a zlib type ("txt" for "zlib-txt"); type itself otherwise. */
const char *yti_type_inner(const char *type);
/* A new package holding the zlib stream (RFC 1950) of data; header fields left 0. YT_ENOMEM. */
int yti_zlib_compress(const void *data, size_t len, yti_pkg **out);
/* A new package with in's header fields and its payload inflated; YT_EDECODE when in is not a
 * complete zlib stream or inflates to more than max bytes (never allocates beyond max). */
int yti_zlib_inflate(const yti_pkg *in, size_t max, yti_pkg **out);

/* Adds or removes a watcher of ch's arrivals. YT_ENOMEM. */
int yti_channel_watch(yt_channel *ch, yti_watch *w);
void yti_channel_unwatch(yt_channel *ch, yti_watch *w);
/* Runs the kind's after_recv hook. */
void yti_channel_after_recv_hook(yt_channel *ch);

/* The channel's context, held (release with yti_context_unhold), or NULL when closed. */
yt_context *yti_channel_hold_ctx(yt_channel *ch);
/* A thread about to sleep until deadline waiting for something that q (a queue of ch's) will
 * receive reads the socket of ch's context instead (yti_context_lead). YTI_LEAD_DONE: look
 * again; YTI_LEAD_NONE: sleep as usual. The caller holds a reference to ch. */
int yti_channel_lead_on(yt_channel *ch, yti_queue *q, uint64_t deadline);
/* Shows the application alive to the channel's context (heartbeat policy "app"). */
void yti_channel_touch(yt_channel *ch);
/* Sends a package (consumed) through the channel's context, through the kind's send hook if it
 * has one. YT_ECLOSED when closed. */
int yti_channel_send_pkg(yt_channel *ch, yti_pkg *p);
/* Sends a package (consumed) through the channel's context, bypassing the send hook. */
int yti_channel_send_raw(yt_channel *ch, yti_pkg *p);
/* Sends v[0..n) (each consumed; n <= YTI_DIRECT_MAX) in order, bypassing the send hook, as one
 * (yti_context_send_many: an idle link gets them in one write). */
int yti_channel_send_raw_many(yt_channel *ch, yti_pkg **v, size_t n);

#endif
