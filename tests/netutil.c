#include "netutil.h"

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    double end = now_s() + timeout;
    while (!pred(arg)) {
        double left = end - now_s();
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
    double end = now_s() + seconds;
    for (double left; (left = end - now_s()) > 0;)
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
    double end = now_s() + timeout;
    size_t n = 0;
    while (n + 1 < cap) {
        double left = end - now_s();
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
    double end = now_s() + timeout;
    size_t got = 0;
    while (got < n) {
        double left = end - now_s();
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
