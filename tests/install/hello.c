/*
 * A tiny program built against an INSTALLED libyoton (tests/install/check_install.sh): checks
 * that the header and the library agree on the version, then passes one OBJECT message from a
 * publisher to a subscriber in another context over 127.0.0.1 (port 0) and checks the value
 * that arrives. Exit 0 and "hello-yoton ok" on success.
 */
#include <yoton.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, int rc)
{
    fprintf(stderr, "hello-yoton: %s: %s (%s)\n", what, yt_strerror(rc), yt_last_error());
    return 1;
}

int main(void)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", YT_VERSION_MAJOR, YT_VERSION_MINOR, YT_VERSION_PATCH);
    if (yt_version() != YT_VERSION_NUMBER || strcmp(yt_version_string(), want) != 0) {
        fprintf(stderr, "hello-yoton: header %s, library %s\n", want, yt_version_string());
        return 1;
    }

    yt_context *a = NULL, *b = NULL;
    yt_channel *pub = NULL, *sub = NULL;
    yt_connection *host = NULL;
    yt_msg *m = NULL;
    yt_value *sent = NULL, *got = NULL;
    int rc, status = 1;

    if ((rc = yt_context_new(NULL, &a)) != YT_OK || (rc = yt_context_new(NULL, &b)) != YT_OK) {
        status = fail("context", rc);
        goto out;
    }
    if ((rc = yt_pub_new(a, "hello", YT_OBJECT, &pub)) != YT_OK ||
        (rc = yt_sub_new(b, "hello", YT_OBJECT, &sub)) != YT_OK) {
        status = fail("channel", rc);
        goto out;
    }
    if ((rc = yt_context_bind(a, "127.0.0.1:0", 1, NULL, &host)) != YT_OK) {
        status = fail("bind", rc);
        goto out;
    }
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", yt_connection_port1(host));
    if ((rc = yt_context_connect(b, addr, 5.0, NULL, NULL)) != YT_OK) {
        status = fail("connect", rc);
        goto out;
    }

    sent = yt_value_dict();
    yt_value_dict_set_str(sent, "greeting", yt_value_string("hello"));
    yt_value *list = yt_value_list();
    yt_value_append(list, yt_value_int(42));
    yt_value_append(list, yt_value_float(2.5));
    yt_value_dict_set_str(sent, "numbers", list);
    if ((rc = yt_channel_send_value(pub, sent)) != YT_OK) {
        status = fail("send", rc);
        goto out;
    }
    if ((rc = yt_channel_recv(sub, 10.0, &m)) != YT_OK) {
        status = fail("recv", rc);
        goto out;
    }
    if ((rc = yt_msg_value(m, &got)) != YT_OK) {
        status = fail("decode", rc);
        goto out;
    }
    if (!yt_value_equal(sent, got)) {
        fprintf(stderr, "hello-yoton: the value changed on the way\n");
        goto out;
    }
    printf("hello-yoton ok (libyoton %s)\n", yt_version_string());
    status = 0;
out:
    yt_value_free(sent);
    yt_value_free(got);
    yt_msg_free(m);
    yt_connection_release(host);
    yt_channel_free(pub);
    yt_channel_free(sub);
    yt_context_free(a);
    yt_context_free(b);
    yt_loop_process(yt_loop_default(), 0);
    return status;
}
