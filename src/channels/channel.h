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

typedef struct yti_channel_ops {
    /* A package arrived for this channel (consumed). Called under the context lock on a
     * receiver thread: must not block. NULL = queue it and emit received. */
    void (*deposit)(yt_channel *ch, yti_pkg *p);
    /* After a deposit, without locks, on the receiver thread (may send). May be NULL. */
    void (*after_deposit)(yt_channel *ch);
    /* NEW_CONNECTION: called without locks. May be NULL. */
    void (*on_new_connection)(yt_channel *ch);
    /* Frees the kind's own data when the last reference goes. May be NULL. */
    void (*destroy)(yt_channel *ch);
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
};

/*
 * Creates and registers a channel: slots are hashed from "base.type.<pattern_out>" and
 * "base.type.<pattern_in>" (NULL pattern = no such slot); a queue is made when with_queue.
 */
int yti_channel_create(yt_context *ctx, yti_channel_kind kind, const char *base,
                       const char *type, const char *pattern_out, const char *pattern_in,
                       bool with_queue, const yti_channel_ops *ops, void *impl,
                       yt_channel **out);
/* Queues p (consumed) and emits received: the default deposit. */
void yti_channel_enqueue(yt_channel *ch, yti_pkg *p);
/* The channel's context with the channel's lock held briefly; NULL when closed. */
yt_context *yti_channel_ctx(yt_channel *ch);
/* Sends a package (consumed) through the channel's context. YT_ECLOSED when closed. */
int yti_channel_send_pkg(yt_channel *ch, yti_pkg *p);

#endif
