/*
 * auth.h - the optional shared-secret authentication after the greeting (see auth.c and
 * docs/transports.md for the wire format).
 */
#ifndef YT_AUTH_H
#define YT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YTI_AUTH_NONCE 32
#define YTI_AUTH_MAC 32
#define YTI_AUTH_MAGIC_LEN 8
/* Host -> client: magic + host nonce. */
#define YTI_AUTH_CHALLENGE_LEN (YTI_AUTH_MAGIC_LEN + YTI_AUTH_NONCE)
/* Keys shorter than this are refused (a guessable key is no protection). */
#define YTI_KEY_MIN 16
/* Keys longer than this are refused (bounds the copy every connection keeps). */
#define YTI_KEY_MAX 1024

/* Fills out with the challenge (magic + fresh random nonce) and keeps the nonce in nonce.
 * YT_ESYS when the random generator fails. */
int yti_auth_challenge(unsigned char out[YTI_AUTH_CHALLENGE_LEN],
                       unsigned char nonce[YTI_AUTH_NONCE]);
/* Host side, after the greeting and challenge were sent: reads and checks the client's answer
 * until deadline, sends the verdict (proof or refusal). true when the client proved the key;
 * otherwise why (at least 160 bytes) says what went wrong. */
bool yti_auth_host(int fd, const unsigned char *key, size_t key_len,
                   const unsigned char host_nonce[YTI_AUTH_NONCE], uint64_t deadline, char *why,
                   size_t whysize);
/* Client side, after the host's greeting: reads the challenge, answers, checks the host's
 * proof, all until deadline. true on success; otherwise why says what went wrong. */
bool yti_auth_client(int fd, const unsigned char *key, size_t key_len, uint64_t deadline,
                     char *why, size_t whysize);
/* True when the bytes waiting on fd (looked at without consuming or waiting) begin with the
 * challenge magic: a host asks for a key this client does not have. */
bool yti_auth_challenge_pending(int fd);

#endif
