/*
 * Helpers shared by the test suites: reading the reference's vector files, hex and C-escape
 * decoding, and suite registration.
 */
#ifndef YT_TESTUTIL_H
#define YT_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YT_MAX_FIELDS 12

/* One data line of a vector file, split on TAB (fields are not trimmed). */
typedef struct yt_vec_line {
    int lineno;
    int nfields;
    char *field[YT_MAX_FIELDS];
    const char *comment; /* the '#' line right before this one (without "# "), or "" */
} yt_vec_line;

typedef struct yt_vec_file yt_vec_file;

/* Opens tests/vectors/<name>; fails the current test (and returns NULL) if it cannot. */
yt_vec_file *yt_vec_open(const char *name);
/* The next data line, or NULL at the end. Valid until the next call. */
const yt_vec_line *yt_vec_next(yt_vec_file *f);
void yt_vec_close(yt_vec_file *f);

/* Hex text to bytes (malloc'd; *len set). "-" or "" gives zero bytes. NULL on bad hex. */
unsigned char *yt_hex_decode(const char *hex, size_t *len);
/* Bytes to lower-case hex (malloc'd, NUL-terminated). */
char *yt_hex_encode(const void *data, size_t len);
/* C escapes \r \n \t \\ \xHH to bytes (malloc'd, NUL-terminated; *len without the NUL). */
unsigned char *yt_unescape(const char *text, size_t *len);

/* Adds a suite with its tests; tests is a NULL-terminated list of {name, fn}. */
typedef struct yt_test_def {
    const char *name;
    void (*fn)(void);
} yt_test_def;
void yt_add_suite(const char *name, const yt_test_def *tests);

#endif
