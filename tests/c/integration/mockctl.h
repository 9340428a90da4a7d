/*
 * mockctl.h - test helper: a mock Couchbase cluster (python -m
 * couchbase_ffi.mock, a child process) and its HTTP control API.
 */
#ifndef CBFFI_TEST_MOCKCTL_H
#define CBFFI_TEST_MOCKCTL_H

#include <json-c/json.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct mock {
    pid_t pid;
    FILE *out;          /* the mock's stdout (kept open: it exits on EOF) */
    int rest_port;
    char connstr[512];  /* couchbase://<every KV port>/default */
} mock;

/* Start `python3 -m couchbase_ffi.mock ARGS... --json` (args: a NULL-ended
   list) and read the ports it prints.  Returns 0 or -1. */
int mock_start(mock *m, const char *const *args);
/* SIGTERM, reap, close. */
void mock_stop(mock *m);
/* POST /mock/<action> with a JSON body: the parsed answer (the caller puts
   it), NULL unless the status is 200. */
json_object *mock_control(const mock *m, const char *action, const char *body);
/* mock_control that must succeed (fails the running cmocka test if not). */
void mock_control_ok(const mock *m, const char *action, const char *body);

#endif
