/*
 * address.h - yoton addresses: [protocol://]host:port (spec 7).
 */
#ifndef YT_ADDRESS_H
#define YT_ADDRESS_H

#include <stdint.h>

#define YTI_HOST_MAX 256
#define YTI_PROTO_MAX 32

typedef struct yti_address {
    char protocol[YTI_PROTO_MAX]; /* lower-case; "tcp" when absent or empty */
    char host[YTI_HOST_MAX];      /* "127.0.0.1" for localhost, the publichostN address, or the
                                     host text verbatim */
    int port;                     /* 0..65535 */
} yti_address;

/*
 * Parses an address as the reference's split_address, except that ports outside 0..65535 are
 * refused (the reference accepts 65536 and negative ports). Returns YT_OK or YT_EADDR with one
 * of these details: "Address should be in format 'host:port'.", "Invalid offset in address",
 * "The port must be in the range [0, 2^16>.", "Invalid index (<i>) in public host addresses.",
 * "Host name too long", "Protocol name too long", "Address is not valid UTF-8", or (publichost)
 * "Cannot resolve the local host name '<name>': <why>".
 */
int yti_address_parse(const char *text, yti_address *out);

#endif
