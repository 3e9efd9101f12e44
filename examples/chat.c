/*
 * chat - a chat room of four nodes, each publishing and subscribing on "chat", connected in a
 * star through one of them.
 *
 *                    node1
 *                      |
 *          node2 --- node0 (hub: binds three times) --- node3
 *
 * Every node has a PubChannel and a SubChannel on "chat". node0 binds three ephemeral ports and
 * starts node1..node3, one per port. There is no broker: node0 is a node like the others, but
 * since every context routes for the others, what node1 says reaches node2 and node3 through
 * node0. Each package carries its sender's id and sequence number, so no node receives a line
 * twice, and none gets its own lines back.
 *
 * A StateChannel "chat-room" tells the nodes when to start talking: node0 sets it to "open"
 * once all three links are up. A state is re-sent whenever a context joins, so a node that was
 * still connecting when it was set learns it too. Then every node says NLINES lines and waits
 * for the 3 * NLINES lines of the others, checking that each arrives exactly once.
 *
 * Run: yt_example_chat (no arguments). Exit status 0 when every node saw every other node's
 * lines exactly once.
 */
#include "example.h"

#define NNODES 4
#define NLINES 2

static const char *const PHRASES[NLINES] = {"hello everyone", "see you later"};

/* A node's part, once its links are up: talk, listen, check. */
static void chat(int me, yt_channel *pub, yt_channel *sub, yt_channel *room)
{
    /* Wait until the room is open (the hub sets the state once everybody is connected). */
    double end = ex_now() + 10.0;
    for (;;) {
        yt_msg *m = NULL;
        bool open = yt_channel_recv(room, 0, &m) == YT_OK && strcmp(yt_msg_text(m), "open") == 0;
        yt_msg_free(m);
        if (open)
            break;
        if (ex_now() > end)
            ex_fail("the room never opened");
        yt_loop_process(yt_loop_default(), 0.02);
    }

    for (int k = 0; k < NLINES; k++) {
        char line[128];
        snprintf(line, sizeof line, "node%d/%d: %s", me, k + 1, PHRASES[k]);
        ex_say("says    \"%s\"", line);
        ex_ok(yt_channel_send_text(pub, line), "yt_channel_send_text");
    }

    /* Listen until every other node's lines are in, then a little longer: a duplicate would
     * arrive right behind the original. */
    int seen[NNODES][NLINES] = {{0}};
    int got = 0, want = (NNODES - 1) * NLINES;
    end = ex_now() + 10.0;
    double linger_until = 0;
    for (;;) {
        double t = ex_now();
        if (got == want && linger_until == 0)
            linger_until = t + 0.3;
        if (linger_until && t > linger_until)
            break;
        if (t > end)
            ex_fail("only %d of the %d lines arrived", got, want);
        yt_msg *m;
        if (yt_channel_recv(sub, 0.05, &m) != YT_OK)
            continue;
        int from, k;
        const char *text = yt_msg_text(m);
        if (sscanf(text, "node%d/%d:", &from, &k) != 2 || from < 0 || from >= NNODES || k < 1 ||
            k > NLINES)
            ex_fail("unexpected line \"%s\"", text);
        ex_say("hears   \"%s\"", text);
        if (from == me)
            ex_fail("got my own line back");
        if (++seen[from][k - 1] > 1)
            ex_fail("got \"%s\" twice", text);
        got++;
        yt_msg_free(m);
    }
    ex_say("heard all %d lines of the other %d nodes, each once", want, NNODES - 1);
}

static int node(int me, const char *port)
{
    yt_context *ctx;
    yt_channel *pub, *sub, *room;
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    ex_ok(yt_pub_new(ctx, "chat", YT_TEXT, &pub), "yt_pub_new");
    ex_ok(yt_sub_new(ctx, "chat", YT_TEXT, &sub), "yt_sub_new");
    ex_ok(yt_state_new(ctx, "chat-room", YT_TEXT, &room), "yt_state_new");
    char addr[64];
    ex_ok(yt_context_connect(ctx, ex_address(addr, sizeof addr, atoi(port)), 5.0, "hub", NULL),
          "yt_context_connect");
    chat(me, pub, sub, room);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_channel_free(room);
    yt_context_free(ctx);
    return 0;
}

static int hub(void)
{
    yt_context *ctx;
    yt_channel *pub, *sub, *room;
    yt_connection *conns[NNODES - 1];
    ex_ok(yt_context_new(NULL, &ctx), "yt_context_new");
    ex_ok(yt_pub_new(ctx, "chat", YT_TEXT, &pub), "yt_pub_new");
    ex_ok(yt_sub_new(ctx, "chat", YT_TEXT, &sub), "yt_sub_new");
    ex_ok(yt_state_new(ctx, "chat-room", YT_TEXT, &room), "yt_state_new");
    for (int i = 0; i < NNODES - 1; i++) {
        char name[16], port[16];
        snprintf(name, sizeof name, "node%d", i + 1);
        ex_ok(yt_context_bind(ctx, "localhost:0", 1, name, &conns[i]), "yt_context_bind");
        snprintf(port, sizeof port, "%d", yt_connection_port1(conns[i]));
        ex_say("hosting %s on port %s", name, port);
        static const char *const ROLES[] = {"node1", "node2", "node3"};
        ex_spawn(ROLES[i], port, NULL, NULL);
    }
    for (int i = 0; i < NNODES - 1; i++)
        if (!ex_wait_for(ex_connected, conns[i], 10.0))
            ex_fail("node%d did not connect", i + 1);
    ex_say("everybody is here: opening the room");
    ex_ok(yt_channel_send_text(room, "open"), "yt_channel_send_text");

    chat(0, pub, sub, room);
    /* The hub routes for the others: it stays until they are all done. */
    int failed = ex_reap_all(15.0);
    for (int i = 0; i < NNODES - 1; i++)
        yt_connection_release(conns[i]);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_channel_free(room);
    yt_context_free(ctx);
    if (failed)
        ex_fail("%d node(s) failed", failed);
    ex_say("done: every node heard every other node exactly once");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strncmp(argv[1], "node", 4) == 0) {
        ex_start(argv[0], argv[1]);
        return node(atoi(argv[1] + 4), argv[2]);
    }
    ex_start(argv[0], "node0");
    ex_say("libyoton %s: a chat room of %d nodes", yt_version_string(), NNODES);
    return hub();
}
