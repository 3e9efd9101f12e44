/*
 * handshake.c - the pure half of the TCP handshake (spec 5): parsing a received greeting line,
 * the reference's failure reasons, and what a host answers. The socket half (reading byte by byte
 * with a 2 s deadline, sending the reply) lives with the connection code.
 *
 * Parsing follows the reference: invalid UTF-8 bytes are dropped, the text must start with
 * "YOTON!", the rest is split at the first '.', and id (hex) and pid (decimal, with the trailing
 * CR LF counted as whitespace) are read with Python int() leniency. Divergence Q19: the
 * reference also accepts negative ids and pids and ids wider than 64 bits; those are BAD_ID here.
 * A line longer than YTI_HANDSHAKE_LINE_MAX is not a yoton greeting (a real one is at most 45
 * bytes), which bounds the work and the stack buffer.
 *
 * Pure functions: no state, any thread; out-parameters are written only on YTI_HS_OK.
 */
#include "uid.h"

#include "util.h"

#include <limits.h>
#include <string.h>

#define PREFIX "YOTON!"
#define PREFIX_LEN 6

yti_hs_result yti_greeting_parse(const void *line, size_t len, uint64_t own_id, uint64_t *peer_id,
                                 long *peer_pid)
{
    if (len == 0 || line == NULL)
        return YTI_HS_TIMEOUT;
    if (len > YTI_HANDSHAKE_LINE_MAX)
        return YTI_HS_NOT_YOTON;

    unsigned char buf[YTI_HANDSHAKE_LINE_MAX];
    memcpy(buf, line, len);
    len = yti_utf8_drop_invalid(buf, len);
    /* The reference tests `if not text` after decoding, so bytes that all decode to nothing count
     * as nothing received. */
    if (len == 0)
        return YTI_HS_TIMEOUT;
    if (len < PREFIX_LEN || memcmp(buf, PREFIX, PREFIX_LEN) != 0)
        return YTI_HS_NOT_YOTON;

    const char *rest = (const char *)buf + PREFIX_LEN;
    size_t rest_len = len - PREFIX_LEN;
    const char *dot = memchr(rest, '.', rest_len);
    if (dot == NULL)
        return YTI_HS_BAD_ID;
    size_t id_len = (size_t)(dot - rest);

    uint64_t id;
    int64_t pid;
    /* pyuint refuses negative ids and ids over 64 bits; a negative pid is refused below (Q19). */
    if (yti_parse_pyuint(rest, id_len, 16, &id) != YT_OK)
        return YTI_HS_BAD_ID;
    if (yti_parse_pyint(dot + 1, rest_len - id_len - 1, 10, &pid) != YT_OK || pid < 0 ||
        (uint64_t)pid > (uint64_t)LONG_MAX)
        return YTI_HS_BAD_ID;
    if (id == own_id)
        return YTI_HS_SELF;
    if (peer_id != NULL)
        *peer_id = id;
    if (peer_pid != NULL)
        *peer_pid = (long)pid;
    return YTI_HS_OK;
}

const char *yti_hs_reason(yti_hs_result r)
{
    switch (r) {
    case YTI_HS_OK:
        return NULL;
    case YTI_HS_TIMEOUT:
        return "Handshake timed out.";
    case YTI_HS_SELF:
        return "Handshake failed (context cannot connect to self).";
    case YTI_HS_NOT_YOTON:
    case YTI_HS_BAD_ID:
    default:
        return "Handshake failed.";
    }
}

size_t yti_hs_host_reply(yti_hs_result r, uint64_t own_id, long own_pid, char *out)
{
    const char *text;
    switch (r) {
    case YTI_HS_OK:
    case YTI_HS_SELF:
        /* The reference answers a peer with our own id with its greeting too, and only then
         * refuses the connection. */
        return yti_greeting_format(own_id, own_pid, out);
    case YTI_HS_NOT_YOTON:
        text = "ERROR: this is Yoton.\r\n";
        break;
    case YTI_HS_BAD_ID:
        text = "ERROR: could not parse id.\r\n";
        break;
    case YTI_HS_TIMEOUT:
    default:
        text = "";
        break;
    }
    size_t n = strlen(text);
    memcpy(out, text, n + 1);
    return n;
}
