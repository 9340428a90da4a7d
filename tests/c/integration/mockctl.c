/*
 * mockctl.c - see mockctl.h.
 */
#include "mockctl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CBFFI_PYTHONPATH
#error "CBFFI_PYTHONPATH must name the repository's python/ folder"
#endif

int mock_start(mock *m, const char *const *args)
{
    const char *argv[32] = {"python3", "-m", "couchbase_ffi.mock"};
    size_t n = 3;
    while (*args && n < 30)
        argv[n++] = *args++;
    argv[n++] = "--json";
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    m->pid = fork();
    if (m->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        setenv("PYTHONPATH", CBFFI_PYTHONPATH, 1);
        execv("/usr/bin/python3", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[8192];
    m->out = fdopen(fds[0], "r");
    if (!m->out || !fgets(line, sizeof line, m->out))
        return -1;
    json_object *o = json_tokener_parse(line), *ports, *rp;
    if (!o || !json_object_object_get_ex(o, "kv_ports", &ports) ||
        !json_object_object_get_ex(o, "rest_port", &rp))
        return -1;
    int w = snprintf(m->connstr, sizeof m->connstr, "couchbase://");
    for (size_t i = 0; i < json_object_array_length(ports); i++)
        w += snprintf(m->connstr + w, sizeof m->connstr - (size_t)w, "%s127.0.0.1:%d",
                      i ? "," : "",
                      json_object_get_int(json_object_array_get_idx(ports, i)));
    snprintf(m->connstr + w, sizeof m->connstr - (size_t)w, "/default");
    m->rest_port = json_object_get_int(rp);
    json_object_put(o);
    return 0;
}

void mock_stop(mock *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        waitpid(m->pid, NULL, 0);
        m->pid = -1;
    }
    if (m->out)
        fclose(m->out);
    m->out = NULL;
}

typedef struct {
    char *p;
    size_t n;
} membuf;

static size_t keep(char *p, size_t s, size_t n, void *u)
{
    membuf *b = u;
    char *q = realloc(b->p, b->n + s * n + 1);
    if (!q)
        return 0;
    memcpy(q + b->n, p, s * n);
    b->n += s * n;
    q[b->n] = 0;
    b->p = q;
    return s * n;
}

json_object *mock_control(const mock *m, const char *action, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/mock/%s", m->rest_port, action);
    membuf b = {NULL, 0};
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_USERPWD, "Administrator:password");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    json_object *o = status == 200 && b.p ? json_tokener_parse(b.p) : NULL;
    free(b.p);
    return o;
}

void mock_control_ok(const mock *m, const char *action, const char *body)
{
    json_object *o = mock_control(m, action, body);
    if (!o)
        fail_msg("control %s %s failed", action, body);
    json_object_put(o);
}
