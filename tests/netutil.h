/*
 * Helpers for network tests: a private event loop that records signals, polling waits with
 * deadlines, raw sockets speaking bytes at a context, and descriptor/thread counting.
 */
#ifndef YT_NETUTIL_H
#define YT_NETUTIL_H

#include "package.h"
#include "yoton.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REC_MAX 64

/* Records signal events (handlers run on the thread processing the loop). */
typedef struct recorder {
    int count;
    void *source[REC_MAX];
    int flag[REC_MAX];
    char text[REC_MAX][160];
} recorder;

void rec_handler(const yt_event *ev, void *user);

/* Processes loop (if not NULL) until pred(arg) is true or timeout seconds passed; returns
 * pred's last value. */
bool wait_until(yt_loop *loop, bool (*pred)(void *), void *arg, double timeout);
/* Processes loop for `seconds`. */
void spin(yt_loop *loop, double seconds);

/* A context with a private loop and optional options changes. */
yt_context *make_ctx(yt_loop *loop);

/* Binds ctx at 127.0.0.1:0; returns the connection (a reference) and writes the port. */
yt_connection *bind_any(yt_context *ctx, int *port);
/* Connects ctx to 127.0.0.1:port; returns the connection reference. */
yt_connection *connect_port(yt_context *ctx, int port);

/* A raw TCP socket connected to 127.0.0.1:port (blocking), or -1. */
int raw_connect(int port);
/* Reads until CR LF, EOF or timeout; returns bytes read (NUL-terminated in buf). */
size_t raw_read_line(int fd, char *buf, size_t cap, double timeout);
/* Reads exactly n bytes within timeout; returns bytes read. */
size_t raw_read_n(int fd, void *buf, size_t n, double timeout);
/* Does the client handshake with a fake id; returns true when the host answered YOTON!. */
bool raw_handshake(int fd, uint64_t fake_id);

int count_fds(void);
int count_threads(void);

/* Monotonic time in seconds. */
double mono_now(void);
/* A predicate for wait_until: the connection is connected. */
bool is_connected(void *conn);
/* The slot id of base.type.pattern, as the library computes it. */
uint64_t slot_of(const char *base, const char *type, const char *pattern);

/* Writes one package (header + payload) as a peer would. */
void raw_send_pkg(int fd, uint64_t slot, uint64_t src, uint64_t seq, uint64_t dest,
                  uint64_t dest_seq, const void *data, size_t len);
/* Reads the next package that has a payload (heartbeats skipped) within timeout; the payload is
 * NUL-terminated in data (cap bytes). False on time-out, EOF, a bad header or a payload that does
 * not fit. */
bool raw_read_pkg(int fd, yti_header *h, void *data, size_t cap, double timeout);
/* A listening socket on 127.0.0.1:0 played by the test; *port receives the port. */
int raw_listen(int *port);

/* A context bound at an ephemeral port with a raw client (fd) that did the handshake. */
typedef struct wire {
    yt_loop *loop;
    yt_context *ctx;
    yt_connection *c;
    int fd;
    int port;
} wire;
/* opts may be NULL; its loop is replaced by a private one. raw_id is the raw peer's id. */
void wire_up(wire *w, const yt_context_options *opts, uint64_t raw_id);
void wire_down(wire *w);

/* Path of the yt_peer helper program. */
const char *peer_path(void);
/* Starts yt_peer with args (NULL-terminated); its stdout is readable through *out_fd. */
pid_t spawn_peer(char *const argv[], int *out_fd);
/* SIGKILLs and reaps pid (no-op for pid <= 0). */
void kill_peer(pid_t pid);

#endif
