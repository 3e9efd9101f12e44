/*
 * net.c - small socket helpers shared by connections and the client/server module: name
 * resolution (IPv4, IPv6 through getaddrinfo; Unix paths), complete writes without SIGPIPE,
 * complete reads and polling for input against a monotonic deadline. Every call retries on
 * EINTR. No state; any thread (getaddrinfo may block on the system's resolver).
 */
#include "net.h"

#include "platform.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int yti_net_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Milliseconds from now until deadline for poll/epoll_wait: -1 for YTI_FOREVER, rounded up
 * (a deadline is never met early), at most 1000 s (the caller loops). */
static int ms_until(uint64_t deadline)
{
    if (deadline == YTI_FOREVER)
        return -1;
    uint64_t now = yti_now();
    uint64_t m = deadline > now ? (deadline - now + 999999u) / 1000000u : 0;
    return m > 1000000u ? 1000000 : (int)m;
}

int yti_net_poll_in(int fd, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, ms_until(deadline));
        if (rc > 0)
            return 1;
        if (rc == 0) {
            if (deadline != YTI_FOREVER && yti_now() >= deadline)
                return 0;
            continue;
        }
        if (errno != EINTR)
            return -errno;
    }
}

int yti_net_epoll_wait(int ep, struct epoll_event *ev, int max, uint64_t deadline)
{
    static atomic_bool no_pwait2;
    struct timespec ts, *tsp = NULL;
    if (deadline != YTI_FOREVER) {
        uint64_t now = yti_now();
        uint64_t rel = deadline > now ? deadline - now : 0;
        ts.tv_sec = (time_t)(rel / 1000000000u);
        ts.tv_nsec = (long)(rel % 1000000000u);
        tsp = &ts;
    }
    int n = -1;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        n = epoll_pwait2(ep, ev, max, tsp, NULL);
        if (n < 0 && errno == ENOSYS)
            atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
        else
            return n < 0 ? -errno : n;
    }
    /* Before Linux 5.11 (and under valgrind): milliseconds. */
    n = epoll_wait(ep, ev, max, ms_until(deadline));
    return n < 0 ? -errno : n;
}

int yti_net_resolve_host(const char *host, int family, yti_sockaddr *out)
{
    char buf[YTI_HOST_MAX];
    size_t n = strlen(host);
    /* Brackets are how IPv6 literals are written in addresses; getaddrinfo wants them off. */
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        const char *fam = family == AF_INET6 ? "IPv6" : "IPv4";
        /* EAI_NONAME/EAI_NODATA/EAI_ADDRFAMILY: the name exists, or not, but has no address of
         * this family; say which family was asked for so the fix (tcp6:// or not) is obvious. */
        return yti_error(YT_EADDR, "Cannot resolve host '%s' to an %s address: %s", host, fam,
                         rc ? gai_strerror(rc) : "no address");
    }
    memset(out, 0, sizeof *out);
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return YT_OK;
}

int yti_net_sockaddr(const yti_address *a, bool passive, yti_sockaddr *out)
{
    memset(out, 0, sizeof *out);
    if (a->kind == YTI_ADDR_IPC) {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
        size_t n = strlen(a->path);
        if (n == 0 || n >= sizeof un->sun_path)
            return yti_error(YT_EADDR, "Invalid socket path '%s'", a->path);
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, a->path, n + 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return YT_OK;
    }
    bool v6 = a->kind == YTI_ADDR_TCP6;
    if (a->host[0] == '\0') {
        if (v6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_addr = passive ? in6addr_any : in6addr_loopback;
            s6->sin6_port = htons((uint16_t)a->port);
            out->len = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
            s4->sin_family = AF_INET;
            s4->sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
            s4->sin_port = htons((uint16_t)a->port);
            out->len = sizeof *s4;
        }
        return YT_OK;
    }
    int rc = yti_net_resolve_host(a->host, v6 ? AF_INET6 : AF_INET, out);
    if (rc)
        return rc;
    if (v6)
        ((struct sockaddr_in6 *)&out->ss)->sin6_port = htons((uint16_t)a->port);
    else
        ((struct sockaddr_in *)&out->ss)->sin_port = htons((uint16_t)a->port);
    return YT_OK;
}

void yti_net_sockaddr_text(const yti_sockaddr *sa, char *host, size_t hsize, int *port)
{
    const struct sockaddr *s = (const struct sockaddr *)&sa->ss;
    if (s->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&sa->ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, (socklen_t)hsize);
        *port = ntohs(s4->sin_port);
    } else if (s->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa->ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, (socklen_t)hsize);
        *port = ntohs(s6->sin6_port);
    } else if (s->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&sa->ss;
        size_t max = sa->len > offsetof(struct sockaddr_un, sun_path)
                         ? sa->len - offsetof(struct sockaddr_un, sun_path)
                         : 0;
        /* An unnamed socket (a client's end, a socketpair) has no path: "". An abstract one
         * starts with NUL and is shown as "" too. */
        size_t n = strnlen(un->sun_path, max);
        if (n >= hsize)
            n = hsize - 1;
        memcpy(host, un->sun_path, n);
        host[n] = '\0';
        *port = -1;
    }
}

size_t yti_net_read_full(int fd, void *buf, size_t n, uint64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        if (yti_net_poll_in(fd, deadline) <= 0)
            break;
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

void yti_net_set_buffers(int fd, int sndbuf, int rcvbuf)
{
    if (sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
}

/*
 * Someone else holds path. A socket file whose process died refuses connections: it is stale and
 * removed (YT_OK: bind again). A listener there, or a file that is not a socket, is YT_EBIND.
 * The probe is a non-blocking connect: a live yoton host sees a peer that sends nothing and goes
 * back to waiting. Two processes binding the same stale path at the same instant may both
 * remove it; the loser then fails with "address in use" on its second try.
 */
static int clear_stale_socket(const yti_sockaddr *sa, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? YT_OK : yti_error_errno(YT_EBIND, errno, "Cannot bind to %s",
                                                         path);
    if (!S_ISSOCK(st.st_mode))
        return yti_error(YT_EBIND, "Cannot bind to %s: the file exists and is not a socket",
                         path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return yti_error_errno(YT_ESYS, errno, "Cannot create socket");
    int rc = connect(fd, (const struct sockaddr *)&sa->ss, sa->len);
    int err = rc == 0 ? 0 : errno;
    close(fd);
    if (err == ECONNREFUSED) {
        if (unlink(path) != 0 && errno != ENOENT)
            return yti_error_errno(YT_EBIND, errno, "Cannot remove the stale socket file %s",
                                   path);
        return YT_OK;
    }
    if (err == ENOENT)
        return YT_OK;
    return yti_error(YT_EBIND, "Cannot bind to %s: address in use (a process listens there)",
                     path);
}

static int listen_unix(const yti_address *a, int backlog, int sndbuf, int rcvbuf, int *out,
                       yti_unix_file *file)
{
    yti_sockaddr sa;
    int rc = yti_net_sockaddr(a, true, &sa);
    if (rc)
        return rc;
    int fd = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return yti_error_errno(YT_ESYS, errno, "Cannot create socket");
        /* Owner only. Linux creates the file with the socket inode's mode (minus the umask), so
         * this is race-free, unlike changing the process-wide umask around bind. */
        fchmod(fd, S_IRUSR | S_IWUSR);
        yti_net_set_buffers(fd, sndbuf, rcvbuf);
        if (bind(fd, (const struct sockaddr *)&sa.ss, sa.len) == 0)
            break;
        int err = errno;
        close(fd);
        fd = -1;
        if (err != EADDRINUSE || attempt > 0)
            return yti_error_errno(YT_EBIND, err, "Cannot bind to %s", a->path);
        if ((rc = clear_stale_socket(&sa, a->path)) != YT_OK)
            return rc;
    }
    struct stat st;
    if (listen(fd, backlog) != 0 || stat(a->path, &st) != 0) {
        int err = errno;
        close(fd);
        return yti_error_errno(YT_EBIND, err, "Cannot listen on %s", a->path);
    }
    if ((st.st_mode & 077) != 0 && chmod(a->path, S_IRUSR | S_IWUSR) != 0) {
        /* Only on a kernel that ignores the mode set before bind; never leave it open. */
        int err = errno;
        unlink(a->path);
        close(fd);
        return yti_error_errno(YT_EBIND, err, "Cannot make %s private", a->path);
    }
    snprintf(file->path, sizeof file->path, "%s", a->path);
    file->dev = st.st_dev;
    file->ino = st.st_ino;
    *out = fd;
    return YT_OK;
}

int yti_net_listen(const yti_address *a, int backlog, int sndbuf, int rcvbuf, int *out,
                   yti_unix_file *file)
{
    *out = -1;
    file->path[0] = '\0';
    if (a->kind == YTI_ADDR_IPC)
        return listen_unix(a, backlog, sndbuf, rcvbuf, out, file);
    yti_sockaddr sa;
    int rc = yti_net_sockaddr(a, true, &sa);
    if (rc)
        return rc;
    int family = sa.ss.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return yti_error_errno(family == AF_INET6 ? YT_EADDR : YT_ESYS, errno,
                               "Cannot create %s socket", family == AF_INET6 ? "an IPv6" : "a");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* An IPv6 address means IPv6 only; plain tcp addresses keep serving IPv4. */
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    yti_net_set_buffers(fd, sndbuf, rcvbuf);
    if (bind(fd, (struct sockaddr *)&sa.ss, sa.len) != 0 || listen(fd, backlog) != 0) {
        int err = errno;
        close(fd);
        return yti_error_errno(err == EADDRNOTAVAIL && family == AF_INET6 ? YT_EADDR : YT_EBIND,
                               err, "Cannot bind to %s on %d", a->host, a->port);
    }
    *out = fd;
    return YT_OK;
}

void yti_net_unix_remove(yti_unix_file *file)
{
    if (!file->path[0])
        return;
    struct stat st;
    if (lstat(file->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == file->dev &&
        st.st_ino == file->ino)
        unlink(file->path);
    file->path[0] = '\0';
}
