#include "netutil.h"

#include "hash.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool is_connected(void *conn)
{
    return yt_connection_is_connected(conn);
}

uint64_t slot_of(const char *base, const char *type, const char *pattern)
{
    uint64_t s = 0;
    CU_ASSERT_EQUAL(yti_slot_id(base, type, pattern, &s), YT_OK);
    return s;
}

void raw_send_pkg(int fd, uint64_t slot, uint64_t src, uint64_t seq, uint64_t dest,
                  uint64_t dest_seq, const void *data, size_t len)
{
    yti_header h = {YTI_CONTROL, slot, src, seq, dest, dest_seq, len};
    unsigned char b[YTI_HEADER_SIZE];
    yti_header_encode(&h, b);
    CU_ASSERT_EQUAL(send(fd, b, sizeof b, MSG_NOSIGNAL), (ssize_t)sizeof b);
    if (len)
        CU_ASSERT_EQUAL(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

bool raw_read_pkg(int fd, yti_header *h, void *data, size_t cap, double timeout)
{
    double end = mono_now() + timeout;
    unsigned char b[YTI_HEADER_SIZE];
    while (mono_now() < end) {
        if (raw_read_n(fd, b, sizeof b, end - mono_now()) != sizeof b)
            return false;
        if (yti_header_decode(b, h) != YT_OK)
            return false;
        if (h->len == 0)
            continue;
        if (h->len >= cap || raw_read_n(fd, data, (size_t)h->len, end - mono_now()) != h->len)
            return false;
        ((char *)data)[h->len] = '\0';
        return true;
    }
    return false;
}

int raw_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    listen(fd, 4);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

void wire_up(wire *w, const yt_context_options *opts, uint64_t raw_id)
{
    memset(w, 0, sizeof *w);
    yt_loop_new(&w->loop);
    yt_context_options o;
    if (opts)
        o = *opts;
    else
        yt_context_options_init(&o);
    o.loop = w->loop;
    CU_ASSERT_EQUAL_FATAL(yt_context_new(&o, &w->ctx), YT_OK);
    w->c = bind_any(w->ctx, &w->port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->c);
    w->fd = raw_connect(w->port);
    CU_ASSERT_FATAL(w->fd >= 0);
    CU_ASSERT_TRUE_FATAL(raw_handshake(w->fd, raw_id));
    CU_ASSERT_TRUE(wait_until(NULL, is_connected, w->c, 3.0));
}

void wire_down(wire *w)
{
    if (w->fd >= 0)
        close(w->fd);
    yt_connection_release(w->c);
    yt_context_free(w->ctx);
    yt_loop_free(w->loop);
}

void rec_handler(const yt_event *ev, void *user)
{
    recorder *r = user;
    if (r->count < REC_MAX) {
        r->source[r->count] = ev->source;
        r->flag[r->count] = ev->flag;
        snprintf(r->text[r->count], sizeof r->text[0], "%s", ev->text ? ev->text : "");
    }
    r->count++;
}

bool wait_until(yt_loop *loop, bool (*pred)(void *), void *arg, double timeout)
{
    double end = mono_now() + timeout;
    while (!pred(arg)) {
        double left = end - mono_now();
        if (left <= 0)
            return pred(arg);
        if (loop)
            yt_loop_process(loop, left < 0.01 ? left : 0.01);
        else
            usleep(2000);
    }
    return true;
}

void spin(yt_loop *loop, double seconds)
{
    double end = mono_now() + seconds;
    for (double left; (left = end - mono_now()) > 0;)
        yt_loop_process(loop, left < 0.02 ? left : 0.02);
}

yt_context *make_ctx(yt_loop *loop)
{
    yt_context_options o;
    yt_context_options_init(&o);
    o.loop = loop;
    yt_context *ctx = NULL;
    if (yt_context_new(&o, &ctx) != YT_OK)
        return NULL;
    return ctx;
}

yt_connection *bind_any(yt_context *ctx, int *port)
{
    yt_connection *c = NULL;
    if (yt_context_bind(ctx, "127.0.0.1:0", 1, "host", &c) != YT_OK)
        return NULL;
    *port = yt_connection_port1(c);
    return c;
}

yt_connection *connect_port(yt_context *ctx, int port)
{
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    yt_connection *c = NULL;
    if (yt_context_connect(ctx, addr, 2.0, "client", &c) != YT_OK)
        return NULL;
    return c;
}

int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool readable(int fd, double timeout)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, (int)(timeout * 1000)) > 0;
}

size_t raw_read_line(int fd, char *buf, size_t cap, double timeout)
{
    double end = mono_now() + timeout;
    size_t n = 0;
    while (n + 1 < cap) {
        double left = end - mono_now();
        if (left <= 0 || !readable(fd, left))
            break;
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0)
            break;
        n++;
        if (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n')
            break;
    }
    buf[n] = '\0';
    return n;
}

size_t raw_read_n(int fd, void *buf, size_t n, double timeout)
{
    double end = mono_now() + timeout;
    size_t got = 0;
    while (got < n) {
        double left = end - mono_now();
        if (left <= 0 || !readable(fd, left))
            break;
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

bool raw_handshake(int fd, uint64_t fake_id)
{
    char greet[64];
    int n = snprintf(greet, sizeof greet, "YOTON!%016llx.%d\r\n", (unsigned long long)fake_id,
                     (int)getpid());
    if (send(fd, greet, (size_t)n, MSG_NOSIGNAL) != n)
        return false;
    char line[128];
    raw_read_line(fd, line, sizeof line, 3.0);
    return strncmp(line, "YOTON!", 6) == 0;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1 * (strcmp(path, "/proc/self/fd") == 0); /* the DIR's own descriptor */
}

int count_fds(void)
{
    return count_dir("/proc/self/fd");
}

int count_threads(void)
{
    return count_dir("/proc/self/task");
}

const char *peer_path(void)
{
    return YT_PEER_PATH;
}

pid_t spawn_peer(char *const argv[], int *out_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        execv(YT_PEER_PATH, argv);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

void kill_peer(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
