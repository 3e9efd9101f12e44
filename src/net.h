/*
 * net.h - socket helpers (see net.c).
 */
#ifndef YT_NET_H
#define YT_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Resolves an IPv4 host: "" means any address when passive (binding), loopback otherwise.
 * YT_EADDR with the resolver's message. */
int yti_net_resolve4(const char *host, bool passive, struct in_addr *out);
/* Writes all of buf (MSG_NOSIGNAL); 0 or -errno. */
int yti_net_write_all(int fd, const void *buf, size_t len);
/* Polls fd for reading until deadline (monotonic ns, YTI_FOREVER); 1 ready, 0 timed out,
 * -errno on error. */
int yti_net_poll_in(int fd, uint64_t deadline);

#endif
