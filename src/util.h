/*
 * util.h - error detail, UTF-8 and Python-compatible integer parsing, shared by every module.
 */
#ifndef YT_UTIL_H
#define YT_UTIL_H

#include "yoton.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define YTI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define YTI_PRINTF(a, b)
#endif

/* Sets the calling thread's detail string (printf format) and returns code, so callers can write
 * `return yti_error(YT_EADDR, "Invalid offset in address");`. */
int yti_error(int code, const char *fmt, ...) YTI_PRINTF(2, 3);
/* Like yti_error, with ": strerror(errnum)" appended. */
int yti_error_errno(int code, int errnum, const char *fmt, ...) YTI_PRINTF(3, 4);
/* Clears the detail string. */
void yti_error_clear(void);

/* ---- UTF-8 ---- */

/* Decodes one code point of strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF)
 * at s[*pos], advancing *pos. Returns false, leaving *pos alone, on invalid or truncated input. */
bool yti_utf8_next(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp);
/* True when the whole buffer is strict UTF-8 (as Python's decoder accepts). */
bool yti_utf8_valid(const void *s, size_t len);
/* Writes cp as UTF-8 into out (at least 4 bytes); returns the byte count (0 for invalid cp). */
size_t yti_utf8_encode(uint32_t cp, unsigned char *out);
/* Removes the bytes of invalid sequences in place, as Python's decode(errors="ignore");
 * returns the new length. */
size_t yti_utf8_drop_invalid(unsigned char *s, size_t len);
/* True for the code points Python's str.isspace() accepts. */
bool yti_unicode_isspace(uint32_t cp);
/* The digit value (0..9) of a Unicode decimal digit (category Nd), or -1. */
int yti_unicode_decimal(uint32_t cp);

/* ---- integers as Python's int() reads them (see pyint.c) ---- */

/*
 * Parses UTF-8 text like Python's int(text, base) for base 10 or 16: surrounding whitespace
 * (Unicode whitespace, except that ASCII 0x1C-0x1F, which str.isspace() accepts, are not skipped,
 * exactly as in Python's int()), an optional sign, for base 16 an optional 0x/0X prefix, digits (any Unicode decimal
 * digit; a-f/A-F for base 16) with single underscores between them. Values must fit int64.
 * Returns YT_OK, or YT_EINVAL with the detail "out of range" for a valid integer that does not
 * fit and another detail for text that is not an integer.
 */
int yti_parse_pyint(const char *s, size_t len, int base, int64_t *out);
/* The same for values that must fit uint64 (no minus sign, except "-0"). */
int yti_parse_pyuint(const char *s, size_t len, int base, uint64_t *out);

#endif
