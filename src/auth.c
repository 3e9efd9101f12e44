/*
 * auth.c - opt-in shared-secret authentication, run right after the yoton greeting exchange.
 *
 * Both ends hold the same key (at least YTI_KEY_MIN bytes). The greeting bytes stay exactly the
 * reference's; only then, when the host has a key:
 *
 *   host   -> client  "YOTON#C1" Nh                      (8 + 32 bytes, sent with the greeting)
 *   client -> host    "YOTON#R1" Nc HMAC(key, "yoton-auth-client" || Nh || Nc)   (8 + 32 + 32)
 *   host   -> client  "YOTON#P1" HMAC(key, "yoton-auth-host" || Nc || Nh)        (8 + 32)
 *               or    "YOTON#X1"                          (refused; the host then hangs up)
 *
 * Nh and Nc are fresh 32-byte nonces from RAND_bytes; HMAC is HMAC-SHA256 from OpenSSL's
 * libcrypto; MACs are compared with CRYPTO_memcmp. Each side proves the key over both nonces
 * with its own label, so neither a recorded exchange nor a proof reflected back to its sender is
 * accepted. The magics differ from the package control field ("YOTON   ") and the greeting
 * ("YOTON!"), so a peer without a key is recognised from its first bytes: a keyless C client
 * sees the challenge waiting behind the greeting, a keyless host sends a package or nothing.
 * This is authentication only: the bytes that follow are neither encrypted nor signed.
 *
 * Every read is bounded by the caller's deadline (CLOCK_MONOTONIC) and by the fixed message
 * sizes: a peer sending garbage or a giant line costs at most 72 bytes read. Pure functions of
 * their arguments and the socket; any thread.
 */
#include "auth.h"

#include "net.h"
#include "platform.h"
#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define MAGIC_CHALLENGE "YOTON#C1"
#define MAGIC_RESPONSE "YOTON#R1"
#define MAGIC_PROOF "YOTON#P1"
#define MAGIC_REFUSED "YOTON#X1"
/* The control field of every package: a peer that starts its package stream right away. */
#define MAGIC_PACKAGE "YOTON   "
#define LABEL_CLIENT "yoton-auth-client"
#define LABEL_HOST "yoton-auth-host"

#define RESPONSE_LEN (YTI_AUTH_MAGIC_LEN + YTI_AUTH_NONCE + YTI_AUTH_MAC)
#define PROOF_LEN (YTI_AUTH_MAGIC_LEN + YTI_AUTH_MAC)

/* HMAC-SHA256(key, label || a || b). */
static bool mac(const unsigned char *key, size_t key_len, const char *label,
                const unsigned char a[YTI_AUTH_NONCE], const unsigned char b[YTI_AUTH_NONCE],
                unsigned char out[YTI_AUTH_MAC])
{
    unsigned char msg[32 + 2 * YTI_AUTH_NONCE];
    size_t ll = strlen(label);
    memcpy(msg, label, ll);
    memcpy(msg + ll, a, YTI_AUTH_NONCE);
    memcpy(msg + ll + YTI_AUTH_NONCE, b, YTI_AUTH_NONCE);
    unsigned int outlen = 0;
    unsigned char *r = HMAC(EVP_sha256(), key, (int)key_len, msg, ll + 2 * YTI_AUTH_NONCE, out,
                            &outlen);
    return r != NULL && outlen == YTI_AUTH_MAC;
}

int yti_auth_challenge(unsigned char out[YTI_AUTH_CHALLENGE_LEN],
                       unsigned char nonce[YTI_AUTH_NONCE])
{
    if (RAND_bytes(nonce, YTI_AUTH_NONCE) != 1)
        return yti_error(YT_ESYS, "Cannot get random bytes for the authentication nonce");
    memcpy(out, MAGIC_CHALLENGE, YTI_AUTH_MAGIC_LEN);
    memcpy(out + YTI_AUTH_MAGIC_LEN, nonce, YTI_AUTH_NONCE);
    return YT_OK;
}

bool yti_auth_host(int fd, const unsigned char *key, size_t key_len,
                   const unsigned char host_nonce[YTI_AUTH_NONCE], uint64_t deadline, char *why,
                   size_t whysize)
{
    unsigned char resp[RESPONSE_LEN];
    /* The magic first: a peer without a key is told apart at once, without waiting for bytes
     * it will never send. */
    size_t n = yti_net_read_full(fd, resp, YTI_AUTH_MAGIC_LEN, deadline);
    if (n < YTI_AUTH_MAGIC_LEN) {
        snprintf(why, whysize, "Authentication failed: %s", n == 0 && yti_remaining(deadline) == 0
                 ? "no answer to the challenge in time (the peer has no key?)"
                 : "the peer hung up during authentication (it has no key?)");
        return false;
    }
    if (memcmp(resp, MAGIC_RESPONSE, YTI_AUTH_MAGIC_LEN) != 0) {
        snprintf(why, whysize, "Authentication failed: %s",
                 memcmp(resp, MAGIC_PACKAGE, YTI_AUTH_MAGIC_LEN) == 0
                     ? "the peer has no key (it sent packages instead of an answer)"
                     : "the peer did not answer the challenge (it is not a keyed yoton peer)");
        return false;
    }
    n = yti_net_read_full(fd, resp + YTI_AUTH_MAGIC_LEN, RESPONSE_LEN - YTI_AUTH_MAGIC_LEN,
                          deadline);
    if (n < RESPONSE_LEN - YTI_AUTH_MAGIC_LEN) {
        snprintf(why, whysize, "Authentication failed: the answer to the challenge is incomplete");
        return false;
    }
    const unsigned char *client_nonce = resp + YTI_AUTH_MAGIC_LEN;
    unsigned char expect[YTI_AUTH_MAC];
    if (!mac(key, key_len, LABEL_CLIENT, host_nonce, client_nonce, expect)) {
        snprintf(why, whysize, "Authentication failed: HMAC computation failed");
        return false;
    }
    if (CRYPTO_memcmp(expect, resp + YTI_AUTH_MAGIC_LEN + YTI_AUTH_NONCE, YTI_AUTH_MAC) != 0) {
        /* Tell the client, so that its connect fails with a clear reason instead of EOF. */
        yti_net_write_all(fd, MAGIC_REFUSED, YTI_AUTH_MAGIC_LEN);
        snprintf(why, whysize, "Authentication failed: the peer has a different key");
        OPENSSL_cleanse(expect, sizeof expect);
        return false;
    }
    unsigned char proof[PROOF_LEN];
    memcpy(proof, MAGIC_PROOF, YTI_AUTH_MAGIC_LEN);
    bool ok = mac(key, key_len, LABEL_HOST, client_nonce, host_nonce, proof + YTI_AUTH_MAGIC_LEN);
    if (!ok || yti_net_write_all(fd, proof, PROOF_LEN) != 0) {
        snprintf(why, whysize, "Authentication failed: cannot send the proof to the peer");
        return false;
    }
    return true;
}

bool yti_auth_client(int fd, const unsigned char *key, size_t key_len, uint64_t deadline,
                     char *why, size_t whysize)
{
    unsigned char ch[YTI_AUTH_CHALLENGE_LEN];
    size_t n = yti_net_read_full(fd, ch, YTI_AUTH_MAGIC_LEN, deadline);
    if (n < YTI_AUTH_MAGIC_LEN) {
        snprintf(why, whysize, "Authentication failed: %s",
                 n == 0 && yti_remaining(deadline) == 0
                     ? "the host sent no challenge in time (it has no key)"
                     : "the host hung up before its challenge (it has no key?)");
        return false;
    }
    if (memcmp(ch, MAGIC_CHALLENGE, YTI_AUTH_MAGIC_LEN) != 0) {
        snprintf(why, whysize, "Authentication failed: %s",
                 memcmp(ch, MAGIC_PACKAGE, YTI_AUTH_MAGIC_LEN) == 0
                     ? "the host did not ask for a key (it has none)"
                     : "the host sent something else than a challenge");
        return false;
    }
    if (yti_net_read_full(fd, ch + YTI_AUTH_MAGIC_LEN, YTI_AUTH_NONCE, deadline) <
        YTI_AUTH_NONCE) {
        snprintf(why, whysize, "Authentication failed: the challenge is incomplete");
        return false;
    }
    const unsigned char *host_nonce = ch + YTI_AUTH_MAGIC_LEN;
    unsigned char resp[RESPONSE_LEN];
    memcpy(resp, MAGIC_RESPONSE, YTI_AUTH_MAGIC_LEN);
    unsigned char *client_nonce = resp + YTI_AUTH_MAGIC_LEN;
    if (RAND_bytes(client_nonce, YTI_AUTH_NONCE) != 1 ||
        !mac(key, key_len, LABEL_CLIENT, host_nonce, client_nonce,
             resp + YTI_AUTH_MAGIC_LEN + YTI_AUTH_NONCE)) {
        snprintf(why, whysize, "Authentication failed: cannot compute the answer");
        return false;
    }
    if (yti_net_write_all(fd, resp, RESPONSE_LEN) != 0) {
        snprintf(why, whysize, "Authentication failed: cannot send the answer");
        return false;
    }
    unsigned char proof[PROOF_LEN];
    n = yti_net_read_full(fd, proof, YTI_AUTH_MAGIC_LEN, deadline);
    if (n == YTI_AUTH_MAGIC_LEN && memcmp(proof, MAGIC_REFUSED, YTI_AUTH_MAGIC_LEN) == 0) {
        snprintf(why, whysize, "Authentication failed: the host refused our key (it has a "
                 "different key)");
        return false;
    }
    if (n < YTI_AUTH_MAGIC_LEN || memcmp(proof, MAGIC_PROOF, YTI_AUTH_MAGIC_LEN) != 0 ||
        yti_net_read_full(fd, proof + YTI_AUTH_MAGIC_LEN, YTI_AUTH_MAC, deadline) <
            YTI_AUTH_MAC) {
        snprintf(why, whysize, "Authentication failed: no proof of the key from the host");
        return false;
    }
    unsigned char expect[YTI_AUTH_MAC];
    if (!mac(key, key_len, LABEL_HOST, client_nonce, host_nonce, expect) ||
        CRYPTO_memcmp(expect, proof + YTI_AUTH_MAGIC_LEN, YTI_AUTH_MAC) != 0) {
        snprintf(why, whysize, "Authentication failed: the host has a different key");
        return false;
    }
    return true;
}

bool yti_auth_challenge_pending(int fd)
{
    unsigned char buf[YTI_AUTH_MAGIC_LEN];
    ssize_t n;
    do {
        n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n == YTI_AUTH_MAGIC_LEN && memcmp(buf, MAGIC_CHALLENGE, YTI_AUTH_MAGIC_LEN) == 0;
}
