#define _POSIX_C_SOURCE 200809L
/*
 * yt_peer - a yoton context in a separate process, for the tests.
 *
 *   yt_peer bind            binds 127.0.0.1:0 and prints "PORT <n>"
 *   yt_peer connect PORT    connects to 127.0.0.1:PORT and prints "CONNECTED"
 *   yt_peer adopt FD        adopts the inherited connected socket FD as the client end
 *                           (yt_context_adopt) and prints "CONNECTED"
 *
 * Then it echoes: every text message on the "ping" channel comes back on "pong" prefixed with
 * "pong:". "quit" makes it close its context and exit 0; it also exits when its connection
 * closes. It never runs longer than 60 s.
 */
#include "yoton.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    yt_context *ctx;
    if (yt_context_new(NULL, &ctx) != YT_OK)
        return 3;
    yt_channel *sub, *pub;
    if (yt_sub_new(ctx, "ping", YT_TEXT, &sub) || yt_pub_new(ctx, "pong", YT_TEXT, &pub))
        return 4;
    yt_connection *c = NULL;
    if (strcmp(argv[1], "bind") == 0) {
        if (yt_context_bind(ctx, "127.0.0.1:0", 1, "peer", &c) != YT_OK)
            return 5;
        printf("PORT %d\n", yt_connection_port1(c));
    } else if (strcmp(argv[1], "connect") == 0 && argc > 2) {
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%s", argv[2]);
        if (yt_context_connect(ctx, addr, 5.0, "peer", &c) != YT_OK) {
            fprintf(stderr, "yt_peer: %s\n", yt_last_error());
            return 6;
        }
        printf("CONNECTED %llu\n", (unsigned long long)yt_context_id(ctx));
    } else if (strcmp(argv[1], "adopt") == 0 && argc > 2) {
        if (yt_context_adopt(ctx, atoi(argv[2]), YT_ROLE_CLIENT, "peer", &c) != YT_OK) {
            fprintf(stderr, "yt_peer: %s\n", yt_last_error());
            return 6;
        }
        printf("CONNECTED %llu\n", (unsigned long long)yt_context_id(ctx));
    } else {
        return 2;
    }
    fflush(stdout);
    time_t start = time(NULL);
    int rc = 0;
    while (time(NULL) - start < 60) {
        yt_msg *m = NULL;
        int r = yt_channel_recv(sub, 0.1, &m);
        if (r == YT_OK) {
            if (strcmp(yt_msg_text(m), "quit") == 0) {
                yt_msg_free(m);
                break;
            }
            char buf[4096];
            snprintf(buf, sizeof buf, "pong:%s", yt_msg_text(m));
            yt_channel_send_text(pub, buf);
            yt_msg_free(m);
        }
        if (!yt_connection_is_alive(c)) {
            rc = 0;
            break;
        }
    }
    yt_connection_release(c);
    yt_channel_free(sub);
    yt_channel_free(pub);
    yt_context_free(ctx);
    return rc;
}
