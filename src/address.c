/*
 * address.c - parsing "[protocol://]host:port" as the reference's split_address (spec 7).
 *
 * Steps, in the reference's order: the text must contain ':'; an optional protocol before the
 * first "://" (lower-cased, "tcp" when empty); host and port split at the next ':'; the host
 * "localhost" becomes 127.0.0.1, "publichost[N]" the N-th IPv4 address of this machine's name,
 * anything else is kept verbatim; the port is a Python int, or a name hashed with port_hash,
 * optionally followed by "+offset".
 *
 * Divergences from the reference, on purpose: ports outside 0..65535 are refused (the reference
 * lets 65536 and negative ports through, Q11); the protocol is lower-cased for ASCII letters only
 * (it is informational, only TCP exists); text that does not fit the fixed-size fields of
 * yti_address is an error, never truncated. The publichost index rule is the reference's own
 * (Q11): the remainder after "publichost" must be a substring of "0123456789", so "publichost12"
 * selects address 12 while "publichost21" is an ordinary host name.
 *
 * Extensions beyond the reference (which only speaks IPv4 TCP): the protocol "tcp6", or a host
 * in brackets ("[::1]:5000", "tcp://[::1]:5000"), selects IPv6, where "localhost" means ::1 (the
 * loopback both sides agree on, as 127.0.0.1 is for plain TCP); an unbracketed tcp6 host is split
 * from the port at the LAST ':' so that "tcp6://::1:5000" reads naturally. The protocols "ipc"
 * and "unix" select a Unix domain socket; everything after "://" is the path ("ipc:///tmp/s" is
 * absolute, "ipc://rel/s" relative to the working directory), which must fit sun_path. These
 * forms only change addresses the reference would have rejected or taken as TCP to a strange
 * host ("[" or "ipc" protocol names are informational there), so plain host:port addresses keep
 * their exact reference meaning, vectors included.
 *
 * Threads: no state; any thread. "publichost" calls gethostname() and getaddrinfo(), which may
 * block on name resolution; every other address is parsed without system calls. The output is
 * written only on success.
 */
#include "address.h"

#include "hash.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG_FORMAT "Address should be in format 'host:port'."
#define MSG_OFFSET "Invalid offset in address"
#define MSG_RANGE "The port must be in the range [0, 2^16>."

/* ASCII-only case folding. For "localhost" and "publichost" this is exact: the only non-ASCII
 * characters Python lower-cases to ASCII letters are KELVIN SIGN (to 'k', in neither word) and
 * U+0130 (to "i" plus a combining dot, which cannot match). */
static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_iprefix(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(s[i]) != word[i])
            return false;
    return true;
}

/* The text of the index-th distinct IPv4 address of gethostname(), in resolver order, as the
 * reference's gethostbyname_ex(gethostname())[2][index]. */
static int public_host(int index, char *out, size_t outsize)
{
    char name[256];
    if (gethostname(name, sizeof name) != 0)
        return yti_error_errno(YT_EADDR, errno, "Cannot get the local host name");
    name[sizeof name - 1] = '\0';

    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address instead of one per socket type */
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(name, NULL, &hints, &list);
    if (gai != 0)
        return yti_error(YT_EADDR, "Cannot resolve the local host name '%s': %s", name,
                         gai_strerror(gai));

    int rc = YT_EADDR;
    int seen = 0;
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET || ai->ai_addr == NULL)
            continue;
        struct in_addr a = ((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        /* De-duplicate without allocating: count an address only at its first occurrence. */
        bool dup = false;
        for (const struct addrinfo *p = list; p != ai; p = p->ai_next) {
            if (p->ai_family == AF_INET && p->ai_addr != NULL &&
                ((const struct sockaddr_in *)(const void *)p->ai_addr)->sin_addr.s_addr ==
                    a.s_addr) {
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        if (seen == index) {
            if (inet_ntop(AF_INET, &a, out, (socklen_t)outsize) != NULL)
                rc = YT_OK;
            break;
        }
        seen++;
    }
    freeaddrinfo(list);
    if (rc != YT_OK)
        return yti_error(YT_EADDR, "Invalid index (%d) in public host addresses.", index);
    return YT_OK;
}

/* The host part: localhost, publichost[N] or verbatim. For IPv6, localhost is ::1 and
 * publichost is not special (its lookup is IPv4 only in the reference). */
static int parse_host(const char *host, size_t len, bool v6, char *out)
{
    if (len > YTI_HOST_MAX - 1)
        return yti_error(YT_EADDR, "Host name too long");
    if (len == 9 && ascii_iprefix(host, len, "localhost")) {
        strcpy(out, v6 ? "::1" : "127.0.0.1");
        return YT_OK;
    }
    if (!v6 && ascii_iprefix(host, len, "publichost")) {
        /* The reference tests the remainder with `in "0123456789"`, a substring test (Q11);
         * the empty remainder ("publichost") is a substring too and means index 0. */
        char rest[YTI_HOST_MAX];
        memcpy(rest, host + 10, len - 10);
        rest[len - 10] = '\0';
        if (strstr("0123456789", rest) != NULL) {
            int index = 0;
            for (size_t i = 0; rest[i] != '\0'; i++)
                index = index * 10 + (rest[i] - '0'); /* at most 123456789: no overflow */
            return public_host(index, out, YTI_HOST_MAX);
        }
    }
    memcpy(out, host, len);
    out[len] = '\0';
    return YT_OK;
}

/* True when the last pyint failure was a valid int that does not fit: Python's int() would have
 * accepted it, so for a port it means "out of range", not "not a number" (util.h documents the
 * detail text). */
static bool last_was_range(void)
{
    return strcmp(yt_last_error(), "out of range") == 0;
}

/* The port part: an int, name+offset or name. */
static int parse_port(const char *text, size_t len, int *out)
{
    int64_t port;
    int rc = yti_parse_pyint(text, len, 10, &port);
    if (rc != YT_OK) {
        if (last_was_range())
            return yti_error(YT_EADDR, MSG_RANGE);
        const char *plus = memchr(text, '+', len);
        size_t name_len = plus != NULL ? (size_t)(plus - text) : len;
        int64_t offset = 0;
        if (plus != NULL) {
            const char *off = plus + 1;
            if (yti_parse_pyint(off, len - name_len - 1, 10, &offset) != YT_OK)
                return yti_error(YT_EADDR, last_was_range() ? MSG_RANGE : MSG_OFFSET);
        }
        uint32_t h;
        rc = yti_port_hash(text, name_len, &h);
        if (rc != YT_OK)
            return rc == YT_ENOMEM ? rc : yti_error(YT_EADDR, "Cannot hash the port name");
        /* The hash is at most 65535, so any offset beyond +-65535 is out of range; testing that
         * first keeps the sum from overflowing. */
        if (offset > 65535 || offset < -65535)
            return yti_error(YT_EADDR, MSG_RANGE);
        port = (int64_t)h + offset;
    }
    if (port < 0 || port > 65535)
        return yti_error(YT_EADDR, MSG_RANGE);
    *out = (int)port;
    return YT_OK;
}

int yti_address_parse(const char *text, yti_address *out)
{
    if (text == NULL || out == NULL)
        return yti_error(YT_EADDR, MSG_FORMAT);
    size_t len = strlen(text);
    if (!yti_utf8_valid(text, len))
        return yti_error(YT_EADDR, "Address is not valid UTF-8");
    if (memchr(text, ':', len) == NULL)
        return yti_error(YT_EADDR, MSG_FORMAT);

    yti_address a;
    memset(&a, 0, sizeof a);
    const char *rest = text;
    const char *sep = strstr(text, "://");
    if (sep != NULL) {
        size_t plen = (size_t)(sep - text);
        if (plen > YTI_PROTO_MAX - 1)
            return yti_error(YT_EADDR, "Protocol name too long");
        for (size_t i = 0; i < plen; i++)
            a.protocol[i] = ascii_lower(text[i]);
        a.protocol[plen] = '\0';
        rest = sep + 3;
    }
    if (a.protocol[0] == '\0')
        strcpy(a.protocol, "tcp");

    if (strcmp(a.protocol, "ipc") == 0 || strcmp(a.protocol, "unix") == 0) {
        size_t n = strlen(rest);
        if (n == 0)
            return yti_error(YT_EADDR, "The socket path is empty.");
        if (n >= YTI_PATH_MAX)
            return yti_error(YT_EADDR, "Socket path too long: %zu bytes, at most %d fit.", n,
                             YTI_PATH_MAX - 1);
        a.kind = YTI_ADDR_IPC;
        memcpy(a.path, rest, n + 1);
        *out = a;
        return YT_OK;
    }

    const char *host = rest, *colon;
    size_t host_len;
    if (rest[0] == '[') {
        /* A bracketed host is an IPv6 literal (or name): the port follows the ']'. */
        const char *close = strchr(rest, ']');
        if (close == NULL || close[1] != ':')
            return yti_error(YT_EADDR, "Address should be in format '[host]:port'.");
        host = rest + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
        a.kind = YTI_ADDR_TCP6;
    } else if (strcmp(a.protocol, "tcp6") == 0) {
        colon = strrchr(rest, ':');
        if (colon == NULL)
            return yti_error(YT_EADDR, MSG_FORMAT);
        host_len = (size_t)(colon - rest);
        a.kind = YTI_ADDR_TCP6;
    } else {
        /* The ':' may have been part of "://" only ("tcp://localhost"); the reference then
         * fails to unpack the split, which is the same format error. */
        colon = strchr(rest, ':');
        if (colon == NULL)
            return yti_error(YT_EADDR, MSG_FORMAT);
        host_len = (size_t)(colon - rest);
    }

    int rc = parse_host(host, host_len, a.kind == YTI_ADDR_TCP6, a.host);
    if (rc != YT_OK)
        return rc;
    rc = parse_port(colon + 1, strlen(colon + 1), &a.port);
    if (rc != YT_OK)
        return rc;
    *out = a;
    return YT_OK;
}
