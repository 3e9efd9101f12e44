/*
 * uid.h - context ids and the TCP handshake line (spec 5 and 9).
 */
#ifndef YT_UID_H
#define YT_UID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A new context id: high 32 bits a strictly increasing millisecond time part, low 32 bits random
 * (from getrandom). Unlike the reference, the time part is kept in [2^28, 2^32), so every id is
 * >= 2^60 and its hex form has 16 significant digits: a peer that right-pads (the reference,
 * quirk Q2) reads it exactly. Thread-safe.
 */
uint64_t yti_uid_new(void);

/* Greeting "YOTON!<16 lower-case hex digits, zero-padded on the left>.<pid>\r\n" written to out
 * (at least YTI_GREETING_MAX bytes, NUL-terminated); returns its length without the NUL. */
#define YTI_GREETING_MAX 48
size_t yti_greeting_format(uint64_t id, long pid, char *out);

/* The longest greeting line read before giving up (a peer sending more is not yoton). */
#define YTI_HANDSHAKE_LINE_MAX 256

typedef enum yti_hs_result {
    YTI_HS_OK = 0,
    YTI_HS_NOT_YOTON, /* does not start with "YOTON!" */
    YTI_HS_BAD_ID,    /* starts with YOTON! but does not parse */
    YTI_HS_SELF,      /* the peer's id is our own */
    YTI_HS_TIMEOUT    /* nothing at all was received */
} yti_hs_result;

/*
 * Parses a received greeting line (raw bytes as read, with or without the trailing CR LF).
 * Invalid UTF-8 bytes are dropped first, as the reference does. The id is hex, the pid decimal,
 * both read with Python int() leniency (spaces, sign, '_', 0x prefix, Unicode digits), but ids
 * must fit 64 bits and neither may be negative (divergence Q19). len 0 gives YTI_HS_TIMEOUT.
 */
yti_hs_result yti_greeting_parse(const void *line, size_t len, uint64_t own_id, uint64_t *peer_id,
                                 long *peer_pid);

/* The failure reason strings of the reference for a result ("Handshake failed." etc.; NULL for
 * YTI_HS_OK). */
const char *yti_hs_reason(yti_hs_result r);
/* What a host sends back for a result: its own greeting (OK, SELF), an ERROR line (NOT_YOTON,
 * BAD_ID) or nothing (TIMEOUT, returns 0). Writes into out (YTI_GREETING_MAX bytes), returns the
 * length. */
size_t yti_hs_host_reply(yti_hs_result r, uint64_t own_id, long own_pid, char *out);

#endif
