/*
 * address.h - yoton addresses: [protocol://]host:port (spec 7).
 */
#ifndef YT_ADDRESS_H
#define YT_ADDRESS_H

#include <stdint.h>

#define YTI_HOST_MAX 256
#define YTI_PROTO_MAX 32
/* sizeof(((struct sockaddr_un *)0)->sun_path) on Linux: a path must fit with its NUL. */
#define YTI_PATH_MAX 108

/* The transport an address selects. */
typedef enum yti_addr_kind {
    YTI_ADDR_TCP4 = 0, /* [tcp://]host:port, and any protocol the reference would take as TCP */
    YTI_ADDR_TCP6,     /* tcp6://host:port, [v6]:port, tcp://[v6]:port */
    YTI_ADDR_IPC       /* ipc://path, unix://path: a Unix domain stream socket */
} yti_addr_kind;

typedef struct yti_address {
    char protocol[YTI_PROTO_MAX]; /* lower-case; "tcp" when absent or empty */
    char host[YTI_HOST_MAX];      /* "127.0.0.1" for localhost ("::1" for IPv6), the publichostN
                                     address, or the host text verbatim (without brackets);
                                     "" for ipc */
    int port;                     /* 0..65535; 0 for ipc */
    yti_addr_kind kind;
    char path[YTI_PATH_MAX];      /* the socket path for ipc, "" otherwise */
} yti_address;

/*
 * Parses an address as the reference's split_address (for TCP over IPv4), except that ports outside 0..65535 are
 * refused (the reference accepts 65536 and negative ports). Returns YT_OK or YT_EADDR with one
 * of these details: "Address should be in format 'host:port'.", "Invalid offset in address",
 * "The port must be in the range [0, 2^16>.", "Invalid index (<i>) in public host addresses.",
 * "Host name too long", "Protocol name too long", "Address is not valid UTF-8", or (publichost)
 * "Cannot resolve the local host name '<name>': <why>".
 * Our extensions (not in the reference): "tcp6://host:port" (split at the last ':'),
 * "[v6]:port" and "tcp://[v6]:port" select IPv6 ("Address should be in format '[host]:port'."
 * when the bracket is not followed by ":port"); "ipc://path" and "unix://path" select a Unix
 * socket ("The socket path is empty.", "Socket path too long: <n> bytes, at most 107 fit.").
 */
int yti_address_parse(const char *text, yti_address *out);

#endif
