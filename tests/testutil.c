#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct yt_vec_file {
    FILE *fp;
    char *buf;
    size_t cap;
    char comment[4096];
    yt_vec_line line;
    int lineno;
};

yt_vec_file *yt_vec_open(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", YT_VECTOR_DIR, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        CU_FAIL_FATAL("cannot open vector file");
        return NULL;
    }
    yt_vec_file *f = calloc(1, sizeof *f);
    f->fp = fp;
    return f;
}

const yt_vec_line *yt_vec_next(yt_vec_file *f)
{
    ssize_t n;
    while ((n = getline(&f->buf, &f->cap, f->fp)) >= 0) {
        f->lineno++;
        if (n > 0 && f->buf[n - 1] == '\n')
            f->buf[--n] = '\0';
        if (f->buf[0] == '#') {
            const char *c = f->buf + 1;
            if (*c == ' ')
                c++;
            snprintf(f->comment, sizeof f->comment, "%s", c);
            continue;
        }
        if (n == 0)
            continue;
        yt_vec_line *l = &f->line;
        l->lineno = f->lineno;
        l->nfields = 0;
        char *p = f->buf;
        for (;;) {
            if (l->nfields < YT_MAX_FIELDS)
                l->field[l->nfields++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        l->comment = f->comment;
        return l;
    }
    return NULL;
}

void yt_vec_close(yt_vec_file *f)
{
    if (!f)
        return;
    fclose(f->fp);
    free(f->buf);
    free(f);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

unsigned char *yt_hex_decode(const char *hex, size_t *len)
{
    if (strcmp(hex, "-") == 0)
        hex = "";
    size_t n = strlen(hex);
    if (n % 2)
        return NULL;
    unsigned char *out = malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)(hi * 16 + lo);
    }
    *len = n / 2;
    return out;
}

char *yt_hex_encode(const void *data, size_t len)
{
    const unsigned char *b = data;
    char *out = malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * len] = '\0';
    return out;
}

unsigned char *yt_unescape(const char *t, size_t *len)
{
    size_t n = strlen(t);
    unsigned char *out = malloc(n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\\' && i + 1 < n) {
            char c = t[++i];
            if (c == 'r')
                out[w++] = '\r';
            else if (c == 'n')
                out[w++] = '\n';
            else if (c == 't')
                out[w++] = '\t';
            else if (c == '\\')
                out[w++] = '\\';
            else if (c == 'x' && i + 2 < n + 1) {
                out[w++] = (unsigned char)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
                i += 2;
            } else
                out[w++] = (unsigned char)c;
        } else {
            out[w++] = (unsigned char)t[i];
        }
    }
    out[w] = '\0';
    *len = w;
    return out;
}

void yt_add_suite(const char *name, const yt_test_def *tests)
{
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    for (; tests->name; tests++)
        CU_add_test(s, tests->name, tests->fn);
}
