/*
 * net.c - small socket helpers shared by connections and the client/server module: IPv4 name
 * resolution, complete writes without SIGPIPE, and polling for input against a monotonic
 * deadline. Every call retries on EINTR.
 */
#include "net.h"

#include "platform.h"
#include "util.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

int yti_net_resolve4(const char *host, bool passive, struct in_addr *out)
{
    if (host[0] == '\0') {
        out->s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
        return YT_OK;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return yti_error(YT_EADDR, "Cannot resolve host '%s': %s", host, gai_strerror(rc));
    *out = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return YT_OK;
}

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

int yti_net_poll_in(int fd, uint64_t deadline)
{
    for (;;) {
        double rem = yti_remaining(deadline);
        int ms = rem < 0 ? -1 : (int)(rem * 1000.0 + 0.999);
        if (ms > 1000000)
            ms = 1000000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, ms);
        if (rc > 0)
            return 1;
        if (rc == 0) {
            if (rem >= 0 && yti_remaining(deadline) <= 0)
                return 0;
            continue;
        }
        if (errno != EINTR)
            return -errno;
    }
}
