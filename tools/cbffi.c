/*
 * cbffi - command-line client for libcbffi, in the spirit of libcouchbase's
 * cbc.
 *
 *   cbffi COMMAND -U CONNSTR [options] ARGS...
 *
 * Exit codes: 0 success; 1 an operation failed (not found, exists, ...);
 * 2 usage error or invalid input; 3 network / connection / timeout error.
 */
#include "cbffi.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OPFAIL = 1, EXIT_USAGE = 2, EXIT_NET = 3 };

typedef struct opts {
    const char *connstr;
    const char *user, *pass;
    uint32_t exptime;
    uint32_t flags;
    uint64_t cas;
    int64_t delta;
    uint64_t initial;
    int create;
    double timeout;
    int verbose;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbffi COMMAND -U CONNSTR [options] ARGS...\n"
"\n"
"commands:\n"
"  get KEY...                print values (stdout) and metadata (stderr, -v)\n"
"  set|add|replace KEY VALUE store VALUE ('-' reads stdin)\n"
"  append|prepend KEY VALUE  add VALUE after / before the stored value\n"
"  rm KEY...                 remove keys\n"
"  incr|decr KEY             counter (-d delta, -i initial, --no-create)\n"
"  touch KEY...              set the expiry (-e)\n"
"  stats [GROUP]             server statistics\n"
"  version                   server versions\n"
"  query STATEMENT           N1QL (couchbase://): result rows on stdout, one per line,\n"
"                            as they arrive;\n"
"                            -a JSON positional argument ($1, $2...; repeatable),\n"
"                            -n NAME=JSON named argument ($NAME), -C request_plus\n"
"  bench                     load generator (cbffi bench --help)\n"
"\n"
"options:\n"
"  -U, --spec CONNSTR        e.g. memcached://127.0.0.1:11211,host2:11212\n"
"  -u, --username USER       -P, --password PASS\n"
"  -e, --expiry SECONDS      -f, --flags FLAGS      -c, --cas CAS\n"
"  -d, --delta N             -i, --initial N        --no-create\n"
"  -t, --timeout SECONDS     operation timeout (default 2.5)\n"
"  -v, --verbose             print metadata\n"
"\n"
"exit status: 0 ok, 1 operation failed, 2 usage or input error,\n"
"             3 network, connection or timeout error\n");
}

static int exit_for_rc(int rc)
{
    if (rc == CBFFI_OK)
        return 0;
    uint32_t f = cbffi_errflags(rc);
    if (f & CBFFI_ERRTYPE_NETWORK)
        return EXIT_NET;
    if ((f & CBFFI_ERRTYPE_INPUT) && !(f & CBFFI_ERRTYPE_SRVGEN))
        return EXIT_USAGE;
    return EXIT_OPFAIL;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"spec", required_argument, 0, 'U'},
        {"username", required_argument, 0, 'u'},
        {"password", required_argument, 0, 'P'},
        {"expiry", required_argument, 0, 'e'},
        {"flags", required_argument, 0, 'f'},
        {"cas", required_argument, 0, 'c'},
        {"delta", required_argument, 0, 'd'},
        {"initial", required_argument, 0, 'i'},
        {"no-create", no_argument, 0, 'N'},
        {"timeout", required_argument, 0, 't'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    uint64_t v;
    memset(o, 0, sizeof(*o));
    o->delta = 1;
    o->create = 1;
    while ((ch = getopt_long(argc, argv, "U:u:P:e:f:c:d:i:t:vh", longs, NULL)) != -1) {
        switch (ch) {
        case 'U': o->connstr = optarg; break;
        case 'u': o->user = optarg; break;
        case 'P': o->pass = optarg; break;
        case 'N': o->create = 0; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        case 'e':
            if (parse_u64(optarg, &v) || v > UINT32_MAX) goto bad;
            o->exptime = (uint32_t)v; break;
        case 'f':
            if (parse_u64(optarg, &v) || v > UINT32_MAX) goto bad;
            o->flags = (uint32_t)v; break;
        case 'c':
            if (parse_u64(optarg, &o->cas)) goto bad;
            break;
        case 'i':
            if (parse_u64(optarg, &o->initial)) goto bad;
            break;
        case 'd': {
            char *end;
            errno = 0;
            o->delta = strtoll(optarg, &end, 0);
            if (errno || *end || end == optarg) goto bad;
            break;
        }
        case 't':
            o->timeout = strtod(optarg, NULL);
            if (!(o->timeout > 0)) goto bad;
            break;
        default:
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "cbffi: invalid value '%s' for -%c\n", optarg, ch);
        return -1;
    }
    if (!o->connstr)
        o->connstr = getenv("CBFFI_CONNSTR");
    if (!o->connstr) {
        fprintf(stderr, "cbffi: no connection string: pass -U CONNSTR\n");
        return -1;
    }
    return 0;
}

cbffi_client *tool_connect(const char *connstr, const char *user,
                           const char *pass, double timeout, int *rc_out)
{
    char err[256];
    cbffi_client *c = NULL;
    int rc = cbffi_client_create(&c, connstr, user, pass, err, sizeof(err));
    if (rc != CBFFI_OK) {
        fprintf(stderr, "cbffi: bad connection string: %s\n", err);
        *rc_out = rc;
        return NULL;
    }
    if (timeout > 0)
        cbffi_client_set_timeout(c, CBFFI_TIMEOUT_OPERATION,
                                 (uint64_t)(timeout * 1e6));
    if (cbffi_client_type_of(c) == CBFFI_TYPE_COUCHBASE) {
        /* Bootstrap first, so that a wrong password or bucket is reported
           once, and every-server commands know the servers. */
        cbffi_result r;
        memset(&r, 0, sizeof(r));
        if (cbffi_connect(c, 0) == CBFFI_OK)
            cbffi_wait(c, &r, 1);
        if (r.rc != CBFFI_OK) {
            fprintf(stderr, "cbffi: cannot connect: %s (0x%02x)\n  detail: %s\n",
                    cbffi_strerror(r.rc), r.rc, cbffi_client_last_error(c));
            *rc_out = r.rc;
            cbffi_client_destroy(c);
            return NULL;
        }
    }
    *rc_out = CBFFI_OK;
    return c;
}

static void print_detail(cbffi_client *c)
{
    const char *detail = cbffi_client_last_error(c);
    if (*detail)
        fprintf(stderr, "  detail: %s\n", detail);
}

/* Read all of stdin into a malloc'd buffer. */
static char *read_stdin(size_t *n)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, stdin);
        len += got;
        if (got == 0)
            break;
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
    }
    *n = len;
    return buf;
}

typedef struct cmd_def {
    const char *name;
    int op;
    int min_args, max_args; /* -1 = unlimited */
} cmd_def;

static const cmd_def commands[] = {
    {"get", CBFFI_OP_GET, 1, -1},        {"set", CBFFI_OP_SET, 2, 2},
    {"add", CBFFI_OP_ADD, 2, 2},         {"replace", CBFFI_OP_REPLACE, 2, 2},
    {"append", CBFFI_OP_APPEND, 2, 2},   {"prepend", CBFFI_OP_PREPEND, 2, 2},
    {"rm", CBFFI_OP_REMOVE, 1, -1},      {"incr", CBFFI_OP_COUNTER, 1, 1},
    {"decr", CBFFI_OP_COUNTER, 1, 1},    {"touch", CBFFI_OP_TOUCH, 1, -1},
    {"stats", CBFFI_OP_STATS, 0, 1},     {"version", CBFFI_OP_VERSION, 0, 0},
};

static int schedule(cbffi_client *c, const cmd_def *cmd, const opts *o,
                    char **args, int nargs, char **value_buf)
{
    int rc = CBFFI_OK;
    const char *a0 = nargs ? args[0] : NULL;
    switch (cmd->op) {
    case CBFFI_OP_GET:
    case CBFFI_OP_REMOVE:
    case CBFFI_OP_TOUCH:
        for (int i = 0; i < nargs && rc == CBFFI_OK; i++) {
            const char *k = args[i];
            if (cmd->op == CBFFI_OP_GET)
                rc = cbffi_get(c, k, strlen(k), CBFFI_GET_PLAIN, 0, (uint64_t)i);
            else if (cmd->op == CBFFI_OP_REMOVE)
                rc = cbffi_remove(c, k, strlen(k), o->cas, (uint64_t)i);
            else
                rc = cbffi_touch(c, k, strlen(k), o->exptime, (uint64_t)i);
        }
        return rc;
    case CBFFI_OP_COUNTER: {
        int64_t d = strcmp(cmd->name, "decr") == 0 ? -o->delta : o->delta;
        return cbffi_counter(c, a0, strlen(a0), d, o->initial, o->create,
                             o->exptime, 0);
    }
    case CBFFI_OP_STATS:
        return cbffi_stats(c, a0, a0 ? strlen(a0) : 0, 0);
    case CBFFI_OP_VERSION:
        return cbffi_version(c, 0);
    default: {
        size_t nv;
        const char *v = args[1];
        if (strcmp(v, "-") == 0) {
            *value_buf = read_stdin(&nv);
            if (!*value_buf)
                return CBFFI_CLIENT_ENOMEM;
            v = *value_buf;
        } else {
            nv = strlen(v);
        }
        return cbffi_store(c, cmd->op, a0, strlen(a0), v, nv, o->flags,
                           o->exptime, o->cas, 0);
    }
    }
}

static void print_result(const cmd_def *cmd, const cbffi_result *r,
                         char **args, cbffi_client *c, const opts *o)
{
    const char *key = r->op == CBFFI_OP_STATS || !args ? "" : args[r->cookie];
    if (r->op == CBFFI_OP_STATS) {
        if (r->nkey)
            printf("%s\t%.*s\t%.*s\n", cbffi_client_server_name(c, r->server),
                   (int)r->nkey, r->key, (int)r->nvalue, r->value);
        return;
    }
    if (r->op == CBFFI_OP_VERSION) {
        if (!r->final && r->rc == CBFFI_OK)
            printf("%s\t%.*s\n", cbffi_client_server_name(c, r->server),
                   (int)r->nvalue, r->value);
        return;
    }
    if (r->rc != CBFFI_OK) {
        fprintf(stderr, "%s: %s (0x%02x)\n", key, cbffi_strerror(r->rc), r->rc);
        return;
    }
    if (o->verbose)
        fprintf(stderr, "%s\tCAS=0x%" PRIx64 " Flags=0x%x Size=%u\n", key,
                r->cas, r->flags, r->nvalue);
    if (r->op == CBFFI_OP_GET) {
        fwrite(r->value, 1, r->nvalue, stdout);
        fputc('\n', stdout);
    } else if (r->op == CBFFI_OP_COUNTER) {
        printf("%" PRIu64 "\n", r->u64);
    } else if (cmd->op != CBFFI_OP_REMOVE && cmd->op != CBFFI_OP_TOUCH) {
        fprintf(stderr, "%s\tstored, CAS=0x%" PRIx64 "\n", key, r->cas);
    }
}

static int run_command(const cmd_def *cmd, int argc, char **argv)
{
    opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return EXIT_USAGE;
    int nargs = argc - optind;
    char **args = argv + optind;
    if (nargs < cmd->min_args || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
        fprintf(stderr, "cbffi %s: wrong number of arguments\n", cmd->name);
        return EXIT_USAGE;
    }
    int rc;
    cbffi_client *c = tool_connect(o.connstr, o.user, o.pass, o.timeout, &rc);
    if (!c)
        return EXIT_USAGE;
    char *value_buf = NULL;
    rc = schedule(c, cmd, &o, args, nargs, &value_buf);
    int status = 0;
    if (rc != CBFFI_OK) {
        fprintf(stderr, "cbffi %s: %s: %s\n", cmd->name, cbffi_strerror(rc),
                cbffi_client_last_error(c));
        status = exit_for_rc(rc);
    } else {
        cbffi_result res[64];
        size_t n = cbffi_wait(c, res, 64);
        do {
            for (size_t i = 0; i < n; i++) {
                print_result(cmd, &res[i], nargs ? args : NULL, c, &o);
                if (res[i].final && res[i].rc != CBFFI_OK) {
                    int st = exit_for_rc(res[i].rc);
                    if (st > status)
                        status = st;
                    if (st == EXIT_NET && res[i].final)
                        print_detail(c);
                }
            }
        } while ((n = cbffi_harvest(c, res, 64)) > 0);
    }
    free(value_buf);
    cbffi_client_destroy(c);
    return status;
}

/* The N1QL request body for `statement` and the -a / -n / -C options, or NULL
   (a message printed) if an argument is not JSON.  Caller frees with
   json_object_put. */
static json_object *query_body(const char *statement, char **pos, int npos,
                               char **named, int nnamed, const char *consistency)
{
    json_object *body = json_object_new_object();
    json_object_object_add(body, "statement", json_object_new_string(statement));
    if (npos) {
        json_object *args = json_object_new_array();
        json_object_object_add(body, "args", args);
        for (int i = 0; i < npos; i++) {
            json_object *v = json_tokener_parse(pos[i]);
            if (!v && strcmp(pos[i], "null") != 0) {
                fprintf(stderr, "cbffi query: -a %s is not JSON (a string is \"quoted\")\n",
                        pos[i]);
                json_object_put(body);
                return NULL;
            }
            json_object_array_add(args, v);
        }
    }
    for (int i = 0; i < nnamed; i++) {
        const char *eq = strchr(named[i], '=');
        json_object *v = eq ? json_tokener_parse(eq + 1) : NULL;
        if (!eq || eq == named[i] || (!v && strcmp(eq + 1, "null") != 0)) {
            fprintf(stderr, "cbffi query: -n takes NAME=JSON, not %s\n", named[i]);
            json_object_put(v);
            json_object_put(body);
            return NULL;
        }
        char name[256];
        snprintf(name, sizeof name, "$%.*s", (int)(eq - named[i]), named[i]);
        json_object_object_add(body, name, v);
    }
    if (consistency)
        json_object_object_add(body, "scan_consistency",
                               json_object_new_string(consistency));
    return body;
}

/* Print the rows of a N1QL response, one JSON value per line, and its errors
   (stderr).  Returns the exit status the response asks for. */
static int print_query_response(const char *body, size_t n, int verbose)
{
    json_tokener *tok = json_tokener_new();
    json_object *doc = tok ? json_tokener_parse_ex(tok, body, (int)n) : NULL;
    json_tokener_free(tok);
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        fprintf(stderr, "cbffi query: the response is not a JSON object (%zu bytes)\n", n);
        json_object_put(doc);
        return EXIT_OPFAIL;
    }
    json_object *rows, *errors, *v;
    if (json_object_object_get_ex(doc, "results", &rows) &&
        json_object_is_type(rows, json_type_array))
        for (size_t i = 0; i < json_object_array_length(rows); i++)
            printf("%s\n", json_object_to_json_string_ext(
                               json_object_array_get_idx(rows, i), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    int status = 0;
    if (json_object_object_get_ex(doc, "errors", &errors) &&
        json_object_is_type(errors, json_type_array) && json_object_array_length(errors)) {
        fprintf(stderr, "errors: %s\n",
                json_object_to_json_string_ext(errors, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        status = EXIT_OPFAIL;
    }
    if (verbose) {
        if (json_object_object_get_ex(doc, "status", &v))
            fprintf(stderr, "status: %s\n", json_object_get_string(v));
        if (json_object_object_get_ex(doc, "metrics", &v))
            fprintf(stderr, "metrics: %s\n",
                    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put(doc);
    return status;
}

static int run_query(int argc, char **argv)
{
    static const struct option longs[] = {
        {"spec", required_argument, 0, 'U'}, {"username", required_argument, 0, 'u'},
        {"password", required_argument, 0, 'P'}, {"timeout", required_argument, 0, 't'},
        {"arg", required_argument, 0, 'a'}, {"named", required_argument, 0, 'n'},
        {"consistency", required_argument, 0, 'C'}, {"verbose", no_argument, 0, 'v'},
        {0, 0, 0, 0}};
    const char *connstr = getenv("CBFFI_CONNSTR"), *user = NULL, *pass = NULL,
               *consistency = NULL;
    double timeout = 0;
    int verbose = 0, npos = 0, nnamed = 0, ch;
    char **pos = calloc((size_t)argc, sizeof(char *));
    char **named = calloc((size_t)argc, sizeof(char *));
    int status = EXIT_USAGE;
    if (!pos || !named)
        goto out;
    while ((ch = getopt_long(argc, argv, "U:u:P:t:a:n:C:v", longs, NULL)) != -1) {
        switch (ch) {
        case 'U': connstr = optarg; break;
        case 'u': user = optarg; break;
        case 'P': pass = optarg; break;
        case 'a': pos[npos++] = optarg; break;
        case 'n': named[nnamed++] = optarg; break;
        case 'C': consistency = optarg; break;
        case 'v': verbose = 1; break;
        case 't':
            timeout = strtod(optarg, NULL);
            if (!(timeout > 0)) {
                fprintf(stderr, "cbffi: invalid value '%s' for -t\n", optarg);
                goto out;
            }
            break;
        default: goto out;
        }
    }
    if (!connstr || optind != argc - 1) {
        fprintf(stderr, "usage: cbffi query -U CONNSTR [-a JSON]... [-n NAME=JSON]... "
                        "[-C CONSISTENCY] STATEMENT\n");
        goto out;
    }
    json_object *body = query_body(argv[optind], pos, npos, named, nnamed, consistency);
    if (!body)
        goto out;
    int rc;
    cbffi_client *c = tool_connect(connstr, user, pass, 0, &rc);
    if (!c) {
        json_object_put(body);
        status = exit_for_rc(rc) == EXIT_NET ? EXIT_NET : EXIT_USAGE;
        goto out;
    }
    size_t nbody;
    const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &nbody);
    cbffi_stream *st = NULL;
    rc = cbffi_query_stream(c, text, nbody, (uint64_t)(timeout * 1e6), 0, &st);
    json_object_put(body);
    if (rc != CBFFI_OK) {
        fprintf(stderr, "cbffi query: %s: %s\n", cbffi_strerror(rc), cbffi_client_last_error(c));
        status = exit_for_rc(rc);
    } else {
        /* rows printed as they arrive, as sent; then the end: its errors and meta */
        cbffi_result res[64];
        for (int done = 0; !done;) {
            size_t n = cbffi_stream_wait(c, st, res, 64);
            for (size_t i = 0; i < n; i++) {
                const cbffi_result *r = &res[i];
                if (!r->final) {
                    fwrite(r->value, 1, r->nvalue, stdout);
                    fputc('\n', stdout);
                    continue;
                }
                done = 1;
                if (r->nvalue) {    /* an answer, 2xx or not: its errors (and meta) */
                    status = print_query_response(r->value, r->nvalue, verbose);
                    if (r->rc != CBFFI_OK) {
                        fprintf(stderr, "cbffi query: %s (0x%02x), HTTP %u\n",
                                cbffi_strerror(r->rc), r->rc, r->status);
                        if (!status)
                            status = exit_for_rc(r->rc);
                    }
                } else {
                    fprintf(stderr, "cbffi query: %s (0x%02x)\n  detail: %s\n",
                            cbffi_strerror(r->rc), r->rc, cbffi_stream_error(st));
                    status = exit_for_rc(r->rc);
                }
            }
            if (n == 0)
                break;      /* cannot happen: a stream always ends with its final */
        }
        cbffi_stream_close(c, st);
    }
    cbffi_client_destroy(c);
out:
    free(pos);
    free(named);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *name = argv[1];
    if (strcmp(name, "bench") == 0)
        return tool_bench(argc - 1, argv + 1);
    if (strcmp(name, "query") == 0)
        return run_query(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return run_command(&commands[i], argc - 1, argv + 1);
    fprintf(stderr, "cbffi: unknown command '%s' (cbffi --help lists them)\n",
            name);
    return EXIT_USAGE;
}
