/*
 * pubsub.c - publish/subscribe channels (spec 14).
 *
 * A PubChannel sends on base.type.pub-sub and listens on base.type.sub-pub for the sync-mode
 * status of subscribers; a SubChannel the reverse. Every SubChannel on the slot anywhere in the
 * network queues each message (bounded, discarding per the context's options).
 */
#include "channel.h"

#include "../util.h"

static void pub_deposit(yt_channel *ch, yti_pkg *p)
{
    /* Sync-mode status from subscribers ("full"/"ok"): not acted upon yet. */
    (void)ch;
    yti_pkg_unref(p);
}

static const yti_channel_ops pub_ops = {.deposit = pub_deposit};

int yt_pub_new(yt_context *ctx, const char *slot_base, const char *type, yt_channel **out)
{
    return yti_channel_create(ctx, YTI_PUB, slot_base, type, "pub-sub", "sub-pub", false,
                              &pub_ops, NULL, out);
}

int yt_sub_new(yt_context *ctx, const char *slot_base, const char *type, yt_channel **out)
{
    return yti_channel_create(ctx, YTI_SUB, slot_base, type, "sub-pub", "pub-sub", true, NULL,
                              NULL, out);
}
