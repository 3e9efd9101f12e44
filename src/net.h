/*
 * net.h - socket helpers (see net.c).
 */
#ifndef YT_NET_H
#define YT_NET_H

#include "address.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A socket address of any family we speak (IPv4, IPv6, Unix). */
typedef struct yti_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
} yti_sockaddr;

/* The socket address of a parsed address: getaddrinfo in the address's family for TCP ("" means
 * any address when passive, loopback otherwise), the path for ipc. YT_EADDR with a message
 * naming the host and the family when it resolves to nothing usable. */
int yti_net_sockaddr(const yti_address *a, bool passive, yti_sockaddr *out);
/* Resolves a host (a local source address: numeric or name, IPv6 with or without brackets)
 * in the given family, port 0. YT_EADDR. */
int yti_net_resolve_host(const char *host, int family, yti_sockaddr *out);
/* Text of a socket address: numeric host (or the Unix path) and port (-1 for Unix sockets). */
void yti_net_sockaddr_text(const yti_sockaddr *sa, char *host, size_t hsize, int *port);
/* The socket file a Unix listener created: removed on close only if it is still that file. */
typedef struct yti_unix_file {
    char path[YTI_PATH_MAX]; /* "": none */
    dev_t dev;
    ino_t ino;
} yti_unix_file;
/*
 * A listening socket for a parsed address, in the address's family. TCP: SO_REUSEADDR, IPv6
 * addresses IPv6 only (plain tcp keeps serving IPv4), the port as given (0: ephemeral). ipc: the
 * file is created owner-only (0600) and recorded in *file; a stale file (a socket nobody listens
 * on) is replaced, a live listener or a non-socket file is YT_EBIND. sndbuf/rcvbuf > 0 are set
 * before bind. On success *fd is the listening descriptor (close-on-exec). YT_EADDR, YT_EBIND,
 * YT_ESYS; errno-like detail in the message.
 */
int yti_net_listen(const yti_address *a, int backlog, int sndbuf, int rcvbuf, int *fd,
                   yti_unix_file *file);
/* Removes file's socket if it is still the one recorded (someone may have replaced it), then
 * clears the record. */
void yti_net_unix_remove(yti_unix_file *file);
/* Sets SO_SNDBUF/SO_RCVBUF when > 0. */
void yti_net_set_buffers(int fd, int sndbuf, int rcvbuf);
/* Reads exactly n bytes until deadline; returns the number read (< n on EOF, error, time-out). */
size_t yti_net_read_full(int fd, void *buf, size_t n, uint64_t deadline);
/* Writes all of buf (MSG_NOSIGNAL); 0 or -errno. */
int yti_net_write_all(int fd, const void *buf, size_t len);
/* Polls fd for reading until deadline (monotonic ns, YTI_FOREVER); 1 ready, 0 timed out,
 * -errno on error. */
int yti_net_poll_in(int fd, uint64_t deadline);
struct epoll_event;
/* epoll_wait on ep until deadline (monotonic ns, YTI_FOREVER), with nanosecond precision where
 * the kernel has epoll_pwait2. Returns the number of events (0: the deadline passed), or -errno
 * (-EINTR included). */
int yti_net_epoll_wait(int ep, struct epoll_event *ev, int max, uint64_t deadline);

#endif
