/* Unit tests: clustermap.c - the libcouchbase config fixtures in
   tests/data/cluster-configs, the CRC32 vbucket vectors of vectors.md,
   and hostile / mutated input (run under ASan in the sanitizer build). */
#include "cmocka_inc.h"
#include "clustermap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, CBFFI_TESTDATA "/cluster-configs/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* Parse a fixture; fails the test on error. */
static void load(cb_clustermap *m, const char *name, const char *src)
{
    size_t n;
    char *json = slurp(name, &n), err[256];
    int rc = cb_clustermap_parse(m, json, n, src, err, sizeof err);
    if (rc != CB_CM_OK)
        fail_msg("%s: %d %s", name, rc, err);
    free(json);
}

/* Parse a string expecting failure with `why` in the message. */
static void reject(const char *json, size_t n, const char *why)
{
    cb_clustermap m;
    char err[256];
    int rc = cb_clustermap_parse(&m, json, n, "10.0.0.9", err, sizeof err);
    if (rc != CB_CM_EINPUT || !strstr(err, why))
        fail_msg("rc %d err '%s', want '%s' for %.80s", rc, err, why, json);
    assert_null(m.servers);
    assert_null(m.vbmap);
}

static void check_chain(const cb_clustermap *m, uint32_t vb, int a, int r)
{
    assert_int_equal(cb_clustermap_vb_server(m, vb, 0), a);
    assert_int_equal(cb_clustermap_vb_server(m, vb, 1), r);
}

static void terse_25(void **state)
{
    (void)state;
    cb_clustermap m;
    load(&m, "terse_25.json", "192.168.0.5");
    assert_int_equal(m.locator, CB_CM_VBUCKET);
    assert_int_equal(m.rev, 19);
    assert_int_equal(m.rev_epoch, -1);
    assert_string_equal(m.name, "default");
    assert_int_equal(m.nservers, 1);
    assert_string_equal(m.servers[0].authority, "192.168.0.5:11210");
    assert_int_equal(m.servers[0].port, 11210);
    assert_int_equal(m.nreplicas, 1);
    assert_int_equal(m.nvbuckets, 64);
    check_chain(&m, 0, 0, -1);
    check_chain(&m, 63, 0, -1);
    assert_null(m.vbmap_forward);
    assert_int_equal(m.nnodes, 1);
    assert_string_equal(m.nodes[0].hostname, "192.168.0.5:8091");
    assert_string_equal(m.nodes[0].couch_api_base, "http://192.168.0.5:8092/default");
    assert_int_equal(m.nodes[0].direct, 11210);
    assert_int_equal(m.caps, CB_CM_CAP_COUCHAPI);
    assert_int_equal(m.cluster_caps, 0);     /* no clusterCapabilities before 5.5 */
    cb_clustermap_free(&m);
}

static void terse_30_ipv6_host(void **state)
{
    (void)state;
    cb_clustermap m;
    load(&m, "terse_30.json", "fe80::1");
    assert_int_equal(m.rev, 17);
    assert_int_equal(m.nvbuckets, 1024);
    assert_int_equal(m.nservers, 1);
    assert_string_equal(m.servers[0].authority, "[fe80::1]:11210");
    assert_string_equal(m.servers[0].host, "fe80::1");
    assert_true(m.servers[0].ipv6);
    check_chain(&m, 1023, 0, -1);
    assert_string_equal(m.nodes[0].hostname, "[fe80::1]:8091");
    assert_string_equal(m.nodes[0].couch_api_base, "http://[fe80::1]:8092/default");
    assert_int_equal(m.nnodes_ext, 1);
    assert_string_equal(m.nodes_ext[0].hostname, "fe80::1");   /* missing */
    assert_true(m.nodes_ext[0].ipv6);
    assert_int_equal(m.nodes_ext[0].ports[CB_SVC_KV], 11210);
    assert_int_equal(m.nodes_ext[0].ports[CB_SVC_KV_SSL], 11207);
    assert_int_equal(m.nodes_ext[0].ports[CB_SVC_MGMT_SSL], 18091);
    assert_int_equal(m.nodes_ext[0].ports[CB_SVC_N1QL], 0);
    assert_int_equal(m.caps, CB_CM_CAP_COUCHAPI | CB_CM_CAP_CCCP);
    cb_clustermap_free(&m);
}

static void full_25(void **state)
{
    (void)state;
    cb_clustermap m;
    load(&m, "full_25.json", NULL);   /* no $HOST in it */
    assert_int_equal(m.rev, -1);
    assert_string_equal(m.bucket_type, "membase");
    assert_int_equal(m.nservers, 1);
    assert_string_equal(m.servers[0].authority, "10.0.0.120:11210");
    assert_int_equal(m.nvbuckets, 64);
    assert_int_equal(m.nreplicas, 1);
    check_chain(&m, 10, 0, -1);
    cb_clustermap_free(&m);
}

static void terse_long_hostname(void **state)
{
    (void)state;
    cb_clustermap m;
    load(&m, "terse_long_hostname.json", "ignored.example");
    assert_int_equal(m.rev, 51);
    assert_string_equal(m.servers[0].authority, "10.0.16.233:11210");
    assert_int_equal(m.nvbuckets, 1024);
    assert_int_equal(m.caps, CB_CM_CAP_COLLECTIONS | CB_CM_CAP_DURABLE_WRITE |
                                 CB_CM_CAP_COUCHAPI | CB_CM_CAP_CCCP |
                                 CB_CM_CAP_NODES_EXT | CB_CM_CAP_XATTR);
    /* "n1ql": [..., "enhancedPreparedStatements"] among other names */
    assert_int_equal(m.cluster_caps, CB_CM_CCAP_N1QL_ENHANCED_PREPARED);
    const cb_cm_node_ext *ne = &m.nodes_ext[0];
    assert_string_equal(ne->hostname, "10.0.16.233");
    assert_true(ne->this_node);
    assert_int_equal(ne->ports[CB_SVC_N1QL_SSL], 18093);
    assert_int_equal(ne->ports[CB_SVC_CBAS], 8095);
    assert_int_equal(ne->ports[CB_SVC_EVENTING], 8096);
    assert_int_equal(ne->ports[CB_SVC_FTS], 8094);
    cb_clustermap_free(&m);
}

static void bad_json_empty_vbucket_map(void **state)
{
    (void)state;
    /* bad.json is a vbucket bucket whose vBucketMap is [] - nothing can be
       routed with it. */
    size_t n;
    char *json = slurp("bad.json", &n);
    reject(json, n, "vBucketMap is missing or empty");
    free(json);
}

static void memd_configs(void **state)
{
    (void)state;
    cb_clustermap m;
    load(&m, "memd_25.json", "h");
    assert_int_equal(m.locator, CB_CM_KETAMA);
    assert_string_equal(m.bucket_type, "memcached");
    assert_int_equal(m.nservers, 1);
    assert_string_equal(m.servers[0].authority, "10.0.0.120:11210");
    assert_null(m.vbmap);
    cb_clustermap_free(&m);

    load(&m, "memd_30.json", "10.1.1.1");
    assert_int_equal(m.nservers, 1);
    assert_string_equal(m.servers[0].authority, "10.1.1.1:11210");
    assert_string_equal(m.nodes_ext[0].hostname, "10.1.1.1");
    cb_clustermap_free(&m);

    load(&m, "memd_45.json", "10.0.0.195");
    static const char *want45[] = {"10.0.0.195:12000", "10.0.0.195:12002",
                                   "10.0.0.195:12004", "10.0.0.195:12006"};
    assert_int_equal(m.nservers, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(m.servers[i].authority, want45[i]);
    assert_int_equal(m.nodes_ext[2].ports[CB_SVC_KV_SSL], 11988);
    cb_clustermap_free(&m);

    load(&m, "memd_ketama_config.json", "192.168.1.104");
    static const char *wantk[] = {"192.168.1.103:11210", "192.168.1.101:11210",
                                  "192.168.1.102:11210", "192.168.1.104:11210"};
    assert_int_equal(m.nservers, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(m.servers[i].authority, wantk[i]);
    cb_clustermap_free(&m);
}

/* "nodes" lists the bucket's servers; "nodesExt" lists every node of the
   cluster.  10.0.0.4 appears only in nodesExt: it is a cluster member that
   does not serve this memcached bucket, so it must not join the ketama ring
   (which would move keys to a server without the bucket).  It is kept in
   nodes_ext for service discovery. */
static void nodesext_extra_node_not_a_server(void **state)
{
    (void)state;
    cb_clustermap m;
    load(&m, "map_node_present_nodesext_missing_nodes.json", NULL);
    assert_int_equal(m.locator, CB_CM_KETAMA);
    assert_int_equal(m.rev, 32470);
    assert_int_equal(m.nservers, 3);
    assert_string_equal(m.servers[0].authority, "10.0.0.1:11210");
    assert_string_equal(m.servers[2].authority, "10.0.0.3:11210");
    assert_int_equal(m.nnodes_ext, 4);
    assert_string_equal(m.nodes_ext[3].hostname, "10.0.0.4");
    cb_clustermap_free(&m);
}

static void ketama_expected_is_not_a_config(void **state)
{
    (void)state;
    size_t n;
    char *json = slurp("ketama_expected.json", &n);
    reject(json, n, "not a JSON object");
    free(json);
}

static void vbucket_vectors(void **state)
{
    (void)state;
    static const struct { const char *key; uint32_t v1024, v64; } v[] = {
        {"Hello", 977, 17}, {"foo", 115, 51}, {"counter", 290, 34},
        {"a", 183, 55}, {"user::1234", 495, 47}, {"\xc3\xa9t\xc3\xa9", 209, 17},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(cb_vbucket_of(v[i].key, strlen(v[i].key), 1024), v[i].v1024);
        assert_int_equal(cb_vbucket_of(v[i].key, strlen(v[i].key), 64), v[i].v64);
    }
    assert_int_equal(cb_vbucket_of("x", 1, 0), 0);
}

static void newer_by_epoch_then_rev(void **state)
{
    (void)state;
    cb_clustermap a = {.rev = 10, .rev_epoch = -1}, b = a;
    assert_true(cb_clustermap_is_newer(NULL, &b));
    assert_false(cb_clustermap_is_newer(&a, &b));
    b.rev = 11;
    assert_true(cb_clustermap_is_newer(&a, &b));
    assert_false(cb_clustermap_is_newer(&b, &a));
    b.rev = 1;
    b.rev_epoch = 0;      /* a new epoch wins even with a lower rev */
    assert_true(cb_clustermap_is_newer(&a, &b));
    assert_false(cb_clustermap_is_newer(&b, &a));
}

#define MAP(extra, servers, vbmap)                                          \
    "{\"rev\":1,\"nodeLocator\":\"vbucket\"" extra ",\"vBucketServerMap\":" \
    "{\"numReplicas\":1,\"serverList\":" servers ",\"vBucketMap\":" vbmap "}}"

static void hostile_inputs(void **state)
{
    (void)state;
    static const struct { const char *json, *why; } cases[] = {
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,2]]"), "vBucketMap[0][1] out of range -1..1"},
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,-2]]"), "vBucketMap[0][1] out of range"},
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,1],[0]]"), "vBucketMap[1] has 1 entries"},
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,1,1]]"), "expected numReplicas+1 = 2"},
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,\"1\"]]"), "vBucketMap[0][1] is not an integer"},
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,1.0]]"), "is not an integer"},
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,99999999999999999999999]]"), ""},
        {MAP("", "[\"a:1\",\"b:2\"]", "[[0,9223372036854775808]]"), "out of range"},
        {MAP("", "[\"a:1\",\"b:2\"]", "[0]"), "vBucketMap[0] is not an array"},
        {MAP("", "[\"a:1\",\"b:2\"]", "{}"), "\"vBucketMap\" is not an array"},
        {MAP("", "[\"a:0\"]", "[[0,0]]"), "serverList[0]: \"a:0\" has a bad port"},
        {MAP("", "[\"a:65536\"]", "[[0,0]]"), "bad port"},
        {MAP("", "[\"a\"]", "[[0,0]]"), "has no port"},
        {MAP("", "[\":11210\"]", "[[0,0]]"), "empty host"},
        {MAP("", "[\"[::1:11210\"]", "[[0,0]]"), "bad IPv6"},
        {MAP("", "[7]", "[[0,0]]"), "serverList[0] is not a string"},
        {MAP("", "[]", "[[0,0]]"), "serverList is missing or empty"},
        {MAP(",\"rev\":-5", "[\"a:1\"]", "[[0,0]]"), "rev out of range"},
        {MAP(",\"revEpoch\":\"x\"", "[\"a:1\"]", "[[0,0]]"), "revEpoch is not an integer"},
        {MAP(",\"name\":5", "[\"a:1\"]", "[[0,0]]"), "\"name\" is not a string"},
        {MAP(",\"name\":\"a\\u0000b\"", "[\"a:1\"]", "[[0,0]]"), "NUL byte"},
        {MAP(",\"nodes\":{}", "[\"a:1\"]", "[[0,0]]"), "\"nodes\" is not an array"},
        {MAP(",\"nodes\":[{\"hostname\":\"a:1\",\"ports\":{\"direct\":70000}}]",
             "[\"a:1\"]", "[[0,0]]"), "nodes[0].ports.direct out of range"},
        {MAP(",\"nodes\":[5]", "[\"a:1\"]", "[[0,0]]"), "nodes[0] is not an object"},
        {MAP(",\"nodesExt\":[{\"services\":{\"kv\":-1}}]", "[\"a:1\"]", "[[0,0]]"),
         "nodesExt[0].services.kv out of range"},
        {MAP(",\"nodesExt\":[{\"hostname\":\"x\"}]", "[\"a:1\"]", "[[0,0]]"),
         "nodesExt[0]: missing \"services\""},
        {MAP(",\"bucketCapabilities\":[1]", "[\"a:1\"]", "[[0,0]]"),
         "bucketCapabilities[0] is not a string"},
        {MAP(",\"clusterCapabilities\":[]", "[\"a:1\"]", "[[0,0]]"),
         "\"clusterCapabilities\" is not an object"},
        {MAP(",\"clusterCapabilities\":{\"n1ql\":\"x\"}", "[\"a:1\"]", "[[0,0]]"),
         "\"n1ql\" is not an array"},
        {MAP(",\"clusterCapabilities\":{\"n1ql\":[\"a\",2]}", "[\"a:1\"]", "[[0,0]]"),
         "clusterCapabilities.n1ql[1] is not a string"},
        {"{\"nodeLocator\":\"vbucket\",\"vBucketServerMap\":{\"numReplicas\":4,"
         "\"serverList\":[\"a:1\"],\"vBucketMap\":[[0,0,0,0,0]]}}",
         "numReplicas out of range 0..3"},
        {"{\"nodeLocator\":\"vbucket\",\"vBucketServerMap\":{\"hashAlgorithm\":"
         "\"MD5\",\"serverList\":[\"a:1\"],\"vBucketMap\":[[0]]}}", "hashAlgorithm"},
        {"{\"nodeLocator\":\"vbucket\",\"vBucketServerMap\":{\"serverList\":"
         "[\"a:1\"],\"vBucketMap\":[[0]],\"vBucketMapForward\":[[0],[0]]}}",
         "vBucketMapForward has 2 vbuckets"},
        {"{\"nodeLocator\":\"vbucket\",\"vBucketServerMap\":{\"serverList\":"
         "[\"a:1\"],\"vBucketMap\":[[0]],\"vBucketMapForward\":[[1]]}}",
         "vBucketMapForward[0][0] out of range"},
        {"{\"nodeLocator\":\"vbucket\"}", "without a vBucketServerMap"},
        {"{\"nodeLocator\":\"random\"}", "unknown nodeLocator"},
        {"{\"nodeLocator\":\"ketama\"}", "without nodes or nodesExt"},
        {"{\"nodeLocator\":\"ketama\",\"nodes\":[{\"hostname\":\"a:1\"}]}",
         "nodes[0] has no ports.direct"},
        {"{\"nodeLocator\":\"ketama\",\"nodesExt\":[{\"services\":{}}]}",
         "no nodesExt entry has kv"},
        {"[1,2]", "not a JSON object"},
        {"", "truncated"},
        {"{\"rev\":1} x", "invalid JSON"},
        {"{\"rev\":1}\n\n", "without nodes"},
        {"{\"rev\":1,}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        reject(cases[i].json, strlen(cases[i].json), cases[i].why);
}

static void host_required_and_bounded(void **state)
{
    (void)state;
    const char *j = MAP("", "[\"$HOST:11210\"]", "[[0,-1]]");
    cb_clustermap m;
    char err[128];
    assert_int_equal(cb_clustermap_parse(&m, j, strlen(j), NULL, err, sizeof err),
                     CB_CM_EINPUT);
    assert_non_null(strstr(err, "contains $HOST but no source host"));
    assert_int_equal(cb_clustermap_parse(&m, j, strlen(j), "[::1]", err, sizeof err),
                     CB_CM_EINPUT);
    assert_int_equal(cb_clustermap_parse(&m, j, strlen(j), "::1", err, sizeof err),
                     CB_CM_OK);
    assert_string_equal(m.servers[0].authority, "[::1]:11210");
    cb_clustermap_free(&m);
    /* an enormous string is refused */
    size_t big = CB_CM_MAX_STRING + 100;
    char *s = malloc(big + 64);
    int k = snprintf(s, 64, "{\"nodeLocator\":\"ketama\",\"name\":\"");
    memset(s + k, 'x', big);
    strcpy(s + k + big, "\"}");
    reject(s, strlen(s), "\"name\" is too long");
    free(s);
}

static void deep_nesting_and_size(void **state)
{
    (void)state;
    char deep[400];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"x\":");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    reject(deep, n, "invalid JSON");
    /* the size cap is checked before anything is read */
    reject("{}", (size_t)CB_CM_MAX_BYTES + 1, "config too large");
}

static void many_servers_and_vbuckets(void **state)
{
    (void)state;
    char *j = malloc(40 * 1024);
    size_t n = (size_t)sprintf(j, "{\"vBucketServerMap\":{\"serverList\":[");
    for (int i = 0; i <= CB_CM_MAX_SERVERS; i++)
        n += (size_t)sprintf(j + n, "%s\"h:1\"", i ? "," : "");
    n += (size_t)sprintf(j + n, "],\"vBucketMap\":[[0]]}}");
    reject(j, n, "\"serverList\" has too many entries");
    free(j);
}

static void truncated_every_97th_byte(void **state)
{
    (void)state;
    static const char *files[] = {"terse_25.json", "terse_30.json",
                                  "full_25.json", "memd_45.json",
                                  "terse_long_hostname.json"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        char *json = slurp(files[f], &n), err[256];
        for (size_t cut = 0; cut < n; cut += 97) {
            char *copy = malloc(cut ? cut : 1);   /* exact size: ASan checks */
            memcpy(copy, json, cut);
            cb_clustermap m;
            int rc = cb_clustermap_parse(&m, copy, cut, "h", err, sizeof err);
            if (rc != CB_CM_EINPUT)
                fail_msg("%s cut at %zu: rc %d", files[f], cut, rc);
            free(copy);
        }
        free(json);
    }
}

static void fuzz_mutations(void **state)
{
    (void)state;
    static const char *files[] = {"terse_25.json", "memd_45.json",
                                  "terse_30.json", "bad.json",
                                  "map_node_present_nodesext_missing_nodes.json"};
    static const char tokens[] = "{}[],:\"-0123456789$eE.\\ ntf";
    srand(4242);
    for (int iter = 0; iter < 2000; iter++) {
        size_t n;
        char *json = slurp(files[iter % 5], &n), err[256];
        int flips = 1 + rand() % 8;
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)rand() % n;
            json[at] = rand() % 2 ? tokens[rand() % (sizeof tokens - 1)]
                                  : (char)(rand() % 256);
        }
        if (rand() % 4 == 0)
            n = (size_t)rand() % n;
        cb_clustermap m;
        int rc = cb_clustermap_parse(&m, json, n, "10.0.0.1", err, sizeof err);
        if (rc == CB_CM_OK) {
            for (uint32_t vb = 0; vb < m.nvbuckets; vb++)
                for (uint32_t i = 0; i <= m.nreplicas; i++)
                    assert_true(cb_clustermap_vb_server(&m, vb, i) <
                                (int)m.nservers);
            cb_clustermap_free(&m);
        } else {
            assert_int_equal(rc, CB_CM_EINPUT);
            assert_true(err[0] != '\0');
        }
        free(json);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(terse_25),
        cmocka_unit_test(terse_30_ipv6_host),
        cmocka_unit_test(full_25),
        cmocka_unit_test(terse_long_hostname),
        cmocka_unit_test(bad_json_empty_vbucket_map),
        cmocka_unit_test(memd_configs),
        cmocka_unit_test(nodesext_extra_node_not_a_server),
        cmocka_unit_test(ketama_expected_is_not_a_config),
        cmocka_unit_test(vbucket_vectors),
        cmocka_unit_test(newer_by_epoch_then_rev),
        cmocka_unit_test(hostile_inputs),
        cmocka_unit_test(host_required_and_bounded),
        cmocka_unit_test(deep_nesting_and_size),
        cmocka_unit_test(many_servers_and_vbuckets),
        cmocka_unit_test(truncated_every_97th_byte),
        cmocka_unit_test(fuzz_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
