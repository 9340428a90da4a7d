'use strict'
// The official Couchbase Node.js SDK (4.x) against couchbase_ffi.mock's query service (n1ql port)
// and view service (capi port).  tests/python/test_node_sdk.py registers the statements and view
// results named below before it runs this script, and afterwards checks from the mock's Python
// API what the SDK sent.  One line per check: "OK <name>" or "FAIL <name>: <why>", then
// "DONE <passed>/<total>"; exit code 0 only if every check passed.
//
//   node sdk_services.js <connstr> <username> <password> <bucket> <limited user> <limited password> <its bucket>
//
// <limited user> may use <its bucket> only, not <bucket> (the query service answers 13014).

const couchbase = require('couchbase')
const { ok, fail, errName, check, expectError, run } = require('./harness')

const [connstr, username, password, bucketName, limitedUser, limitedPassword, limitedBucket] = process.argv.slice(2)
if (!connstr || !username || password === undefined || !bucketName || !limitedUser || !limitedBucket) {
  console.error('usage: node sdk_services.js <connstr> <username> <password> <bucket> <limited user> <limited password> <its bucket>')
  process.exit(2)
}

const timeouts = {
  kvTimeout: 5000, connectTimeout: 10000, bootstrapTimeout: 15000, managementTimeout: 5000,
  queryTimeout: 10000, viewTimeout: 10000
}

// JSON equality, object keys in any order (the SDK re-encodes rows: its keys come sorted)
function canon (v) {
  if (Array.isArray(v)) return v.map(canon)
  if (v && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k])
    return o
  }
  return v
}
function same (a, b) { return JSON.stringify(canon(a)) === JSON.stringify(canon(b)) }

// the first N1QL error code of the response (the SDK's QueryErrorContext has the body, not the code)
function firstError (e) {
  try {
    return JSON.parse(e.context.http_response_body).errors[0].code
  } catch (_) {
    return undefined
  }
}

async function queryChecks (cluster, coll) {
  const QSC = couchbase.QueryScanConsistency
  // ---- registered statements (test_node_sdk.py registers them) -------------------------------
  await check('query_registered_rows', async () => {
    const r = await cluster.query('SELECT name, n FROM `' + bucketName + '` WHERE kind = "sdk"',
      { clientContextId: 'sdk-ctx-1' })
    if (!same(r.rows, [{ name: 'a', n: 1 }, { name: 'b', n: 2 }])) return 'rows ' + JSON.stringify(r.rows)
    if (r.meta.status !== 'success') return 'status ' + r.meta.status
    if (!r.meta.requestId) return 'no requestId'
    if (r.meta.clientContextId !== 'sdk-ctx-1') return 'clientContextId ' + r.meta.clientContextId
    if (!same(r.meta.signature, { '*': '*' })) return 'signature ' + JSON.stringify(r.meta.signature)
    // metrics were not asked for: the SDK sends "metrics": false and the service leaves them out
    if (r.meta.metrics !== undefined) return 'metrics without asking: ' + JSON.stringify(r.meta.metrics)
  })
  await check('query_metrics', async () => {
    const r = await cluster.query('SELECT name, n FROM `' + bucketName + '` WHERE kind = "sdk"', { metrics: true })
    const m = r.meta.metrics
    if (!m) return 'no metrics'
    if (m.resultCount !== 2) return 'resultCount ' + m.resultCount
    if (!(m.resultSize > 0)) return 'resultSize ' + m.resultSize
    if (m.sortCount !== 2) return 'sortCount (registered) ' + m.sortCount
    if (typeof m.elapsedTime !== 'number' || typeof m.executionTime !== 'number') {
      return 'times ' + JSON.stringify([m.elapsedTime, m.executionTime])
    }
  })
  await check('query_warnings', async () => {
    const r = await cluster.query('SELECT warned FROM `' + bucketName + '`', { metrics: true })
    if (!same(r.rows, [{ warned: true }])) return 'rows ' + JSON.stringify(r.rows)
    const w = r.meta.warnings
    if (!w || w.length !== 1 || w[0].code !== 4000 || w[0].message !== 'a registered warning') {
      return 'warnings ' + JSON.stringify(w)
    }
    if (r.meta.metrics.warningCount !== 1) return 'warningCount ' + r.meta.metrics.warningCount
  })
  await check('query_streaming_rows', async () => {
    const rows = []
    let meta
    await new Promise((resolve, reject) => {
      cluster.query('SELECT name, n FROM `' + bucketName + '` WHERE kind = "sdk"')
        .on('row', (row) => rows.push(row))
        .on('meta', (m) => { meta = m })
        .on('error', reject)
        .on('end', resolve)
    })
    if (rows.length !== 2 || rows[1].name !== 'b') return 'rows ' + JSON.stringify(rows)
    if (!meta || meta.status !== 'success') return 'meta ' + JSON.stringify(meta)
  })
  await check('query_positional_parameters', async () => {
    const r = await cluster.query('SELECT p FROM `' + bucketName + '` WHERE a = $1 AND b = $2',
      { parameters: ['x', { y: [1, 2] }] })
    if (!same(r.rows, [{ p: 1 }])) return 'rows ' + JSON.stringify(r.rows)
  })
  await check('query_named_parameters', async () => {
    const r = await cluster.query('SELECT p FROM `' + bucketName + '` WHERE a = $a AND b = $b',
      { parameters: { a: 'x', b: 7 }, scanConsistency: QSC.RequestPlus })
    if (!same(r.rows, [{ p: 2 }])) return 'rows ' + JSON.stringify(r.rows)
  })
  await check('query_not_bounded_readonly', async () => {
    const r = await cluster.query('SELECT p FROM `' + bucketName + '` WHERE a = $1 AND b = $2',
      { parameters: ['nb', null], scanConsistency: QSC.NotBounded, readOnly: true })
    if (!same(r.rows, [{ p: 1 }])) return 'rows ' + JSON.stringify(r.rows)
  })
  await check('query_consistent_with', async () => {
    const res = await coll.upsert('sdkq-token', { kind: 'token' })
    const r = await cluster.query('SELECT RAW COUNT(*) FROM `' + bucketName + '`',
      { consistentWith: new couchbase.MutationState(res.token) })
    if (typeof r.rows[0] !== 'number' || r.rows[0] < 1) return 'rows ' + JSON.stringify(r.rows)
  })
  await expectError('query_registered_syntax_error', couchbase.ParsingFailureError,
    () => cluster.query('SELEKT broken'), (e) => {
      if (firstError(e) !== 3000) return 'first_error_code ' + firstError(e)
      if (e.context.http_response_code !== 400) return 'http ' + e.context.http_response_code
      if (e.context.statement !== 'SELEKT broken') return 'statement ' + e.context.statement
    })
  await expectError('query_unknown_statement', couchbase.ParsingFailureError,
    () => cluster.query('SELECT something FROM nowhere WHERE nobody = "registered it"'),
    (e) => { if (firstError(e) !== 3000) return 'first_error_code ' + firstError(e) })
  await expectError('query_index_not_found', couchbase.IndexNotFoundError,
    () => cluster.query('SELECT needs_an_index FROM `' + bucketName + '`'),
    (e) => { if (firstError(e) !== 12004) return 'first_error_code ' + firstError(e) })
  await expectError('query_planning_failure', couchbase.PlanningFailureError,
    () => cluster.query('SELECT unplannable FROM `' + bucketName + '`'))
  await expectError('query_dml_cas_mismatch', couchbase.CasMismatchError,
    () => cluster.query('UPDATE `' + bucketName + '` SET a = 1'))
  await expectError('query_rate_limited', couchbase.RateLimitedError,
    () => cluster.query('SELECT too_often FROM `' + bucketName + '`'))
  await expectError('query_registered_auth_failure', couchbase.AuthenticationFailureError,
    () => cluster.query('SELECT secret FROM `' + bucketName + '`'),
    (e) => { if (e.context.http_response_code !== 401) return 'http ' + e.context.http_response_code })
  await expectError('query_timeout', couchbase.TimeoutError,
    () => cluster.query('SELECT never_answers FROM `' + bucketName + '`', { timeout: 1500 }))
  await expectError('query_server_500', couchbase.InternalServerFailureError,
    () => cluster.query('SELECT internal_error FROM `' + bucketName + '`'))

  // ---- the built-in subset, answered from the KV data this script writes ----------------------
  const keys = []
  for (let i = 0; i < 5; i++) keys.push('sdkq-' + i)
  await Promise.all(keys.map((k, i) => coll.upsert(k, { kind: 'q', i })))
  await coll.upsert('sdkq-raw', 'not json', { transcoder: new couchbase.RawStringTranscoder() })
  await check('query_builtin_use_keys', async () => {
    const r = await cluster.query('SELECT * FROM `' + bucketName + '` USE KEYS $1',
      { parameters: [['sdkq-1', 'sdkq-missing', 'sdkq-3', 'sdkq-raw']] })
    const want = [{ [bucketName]: { kind: 'q', i: 1 } }, { [bucketName]: { kind: 'q', i: 3 } }]
    if (!same(r.rows, want)) return 'rows ' + JSON.stringify(r.rows)
  })
  await check('query_builtin_use_keys_named', async () => {
    const r = await cluster.query('SELECT * FROM ' + bucketName + ' USE KEYS $k', { parameters: { k: 'sdkq-4' } })
    if (!same(r.rows, [{ [bucketName]: { kind: 'q', i: 4 } }])) return 'rows ' + JSON.stringify(r.rows)
  })
  await check('query_builtin_ids', async () => {
    const r = await cluster.query('SELECT RAW META().id FROM `' + bucketName + '`',
      { scanConsistency: QSC.RequestPlus })
    const mine = r.rows.filter((k) => k.startsWith('sdkq-'))
    const want = keys.concat(['sdkq-raw', 'sdkq-token']).sort()
    if (!same(mine, want)) return 'ids ' + JSON.stringify(r.rows)
    const r2 = await cluster.query('SELECT META().id FROM `' + bucketName + '`')
    if (!same(r2.rows.map((o) => o.id), r.rows)) return 'SELECT META().id: ' + JSON.stringify(r2.rows)
  })
  await check('query_builtin_count', async () => {
    const ids = (await cluster.query('SELECT RAW META().id FROM `' + bucketName + '`')).rows
    const r = await cluster.query('SELECT COUNT(*) FROM `' + bucketName + '`', { metrics: true })
    if (!same(r.rows, [{ $1: ids.length }])) return 'rows ' + JSON.stringify(r.rows) + ' for ' + ids.length + ' ids'
    if (r.meta.metrics.resultCount !== 1) return 'resultCount ' + r.meta.metrics.resultCount
  })
  await expectError('query_builtin_missing_parameter', couchbase.InternalServerFailureError,
    () => cluster.query('SELECT * FROM `' + bucketName + '` USE KEYS $2', { parameters: ['only one'] }),
    (e) => { if (firstError(e) !== 5010) return 'first_error_code ' + firstError(e) })
  // 12003 (keyspace not found): the SDK says BucketNotFoundError
  await expectError('query_builtin_unknown_keyspace', couchbase.BucketNotFoundError,
    () => cluster.query('SELECT RAW COUNT(*) FROM `no_such_bucket`'),
    (e) => { if (firstError(e) !== 12003) return 'first_error_code ' + firstError(e) })
}

// adhoc: false.  The mock advertises enhancedPreparedStatements, so the SDK sends the whole query
// as "PREPARE <statement>" with auto_execute, keeps the name the response gives in "prepared",
// and executes by that name alone from then on.  (This SDK's re-prepare and its legacy flow --
// PREPARE, then prepared + encoded_plan -- go through the C++ core's retry_http_request, after
// which the query never completes: its handler was moved out before the retry.  So neither is
// checked here; tests/python/test_n1ql.py checks the mock's side of both with our client.)
async function preparedChecks (cluster, coll) {
  const useKeys = 'SELECT * FROM `' + bucketName + '` USE KEYS $1'
  await Promise.all([1, 2, 3].map((i) => coll.upsert('sdkp-' + i, { kind: 'p', i })))
  const row = (i) => ({ [bucketName]: { kind: 'p', i } })
  await check('query_prepared_use_keys', async () => {
    const r1 = await cluster.query(useKeys, { adhoc: false, parameters: [['sdkp-1']] })
    if (!same(r1.rows, [row(1)])) return 'first rows ' + JSON.stringify(r1.rows)
    const r2 = await cluster.query(useKeys, { adhoc: false, parameters: [['sdkp-2', 'sdkp-3']] })
    if (!same(r2.rows, [row(2), row(3)])) return 'second rows ' + JSON.stringify(r2.rows)
  })
  await check('query_prepared_named_parameters', async () => {
    for (let n = 0; n < 2; n++) {
      const r = await cluster.query('SELECT p FROM `' + bucketName + '` WHERE a = $a AND b = $b',
        { adhoc: false, parameters: { a: 'px', b: n } })
      if (!same(r.rows, [{ p: 2 }])) return 'rows ' + JSON.stringify(r.rows)
    }
  })
  await check('query_prepared_metrics', async () => {
    const r = await cluster.query(useKeys, { adhoc: false, parameters: [['sdkp-3']], metrics: true })
    if (!same(r.rows, [row(3)])) return 'rows ' + JSON.stringify(r.rows)
    if (r.meta.metrics.resultCount !== 1) return 'resultCount ' + r.meta.metrics.resultCount
  })
  // the statement fails to prepare: the PREPARE's error is the query's
  await expectError('query_prepared_syntax_error', couchbase.ParsingFailureError,
    () => cluster.query('SELECT nothing FROM nowhere WHERE nobody = "registered it"', { adhoc: false }),
    (e) => { if (firstError(e) !== 3000) return 'first_error_code ' + firstError(e) })
  await expectError('query_prepared_planning_failure', couchbase.PlanningFailureError,
    () => cluster.query('SELECT unplannable FROM `' + bucketName + '`', { adhoc: false }),
    (e) => { if (firstError(e) !== 4000) return 'first_error_code ' + firstError(e) })
}

async function viewChecks (bucket, coll) {
  const mgr = bucket.viewIndexes()
  const NS = couchbase.DesignDocumentNamespace
  const DDoc = couchbase.DesignDocument
  const DView = couchbase.DesignDocumentView
  const byIdMap = 'function (doc, meta) { emit(meta.id, null); }'
  const byNMap = 'function (doc, meta) { if (doc.n) { emit(doc.n, doc.name); } }'

  await check('ddoc_upsert', async () => {
    await mgr.upsertDesignDocument(new DDoc({
      name: 'sdk',
      views: {
        by_id: new DView({ map: byIdMap }),
        by_n: new DView({ map: byNMap }),
        count_n: new DView({ map: byNMap, reduce: '_count' }),
        js: new DView({ map: 'function (doc, meta) { if (doc.n > 2) emit(doc.n * 2, null); }' })
      }
    }))
  })
  await check('ddoc_get', async () => {
    const d = await mgr.getDesignDocument('sdk')
    if (d.name !== 'sdk') return 'name ' + d.name
    const names = Object.keys(d.views).sort()
    if (!same(names, ['by_id', 'by_n', 'count_n', 'js'])) return 'views ' + JSON.stringify(names)
    if (d.views.by_n.map !== byNMap || d.views.count_n.reduce !== '_count') return 'view ' + JSON.stringify(d.views)
  })
  await check('ddoc_upsert_dev_and_publish', async () => {
    await mgr.upsertDesignDocument(new DDoc({ name: 'pub', views: { by_id: new DView({ map: byIdMap }) } }), NS.Development)
    const dev = await mgr.getDesignDocument('pub', NS.Development)
    if (!dev.views.by_id) return 'dev document ' + JSON.stringify(dev)
    await mgr.publishDesignDocument('pub')
    const prod = await mgr.getDesignDocument('pub', NS.Production)
    if (!prod.views.by_id || prod.views.by_id.map !== byIdMap) return 'published ' + JSON.stringify(prod)
  })
  await check('ddoc_get_all', async () => {
    const prod = await mgr.getAllDesignDocuments()
    const names = prod.map((d) => d.name).sort()
    if (!same(names, ['pub', 'sdk'])) return 'production ' + JSON.stringify(names)
    const sdk = prod.find((d) => d.name === 'sdk')
    if (!sdk.views.count_n || sdk.views.count_n.reduce !== '_count') return 'sdk ' + JSON.stringify(sdk)
    const dev = await mgr.getAllDesignDocuments(NS.Development)
    if (!same(dev.map((d) => d.name), ['pub'])) return 'development ' + JSON.stringify(dev.map((d) => d.name))
  })
  await expectError('ddoc_get_missing', couchbase.DesignDocumentNotFoundError,
    () => mgr.getDesignDocument('no_such_ddoc'))
  await check('ddoc_drop', async () => {
    await mgr.dropDesignDocument('pub', NS.Development)
    try {
      await mgr.getDesignDocument('pub', NS.Development)
      return 'still there'
    } catch (e) {
      if (!(e instanceof couchbase.DesignDocumentNotFoundError)) return 'get after drop: ' + errName(e)
    }
  })
  await expectError('ddoc_drop_missing', couchbase.DesignDocumentNotFoundError,
    () => mgr.dropDesignDocument('pub', NS.Development))

  // ---- the built-in subset on KV data the script writes -----------------------------------------
  const docs = [['sdkv-a', 3, 'three'], ['sdkv-b', 1, 'one'], ['sdkv-c', 2, 'two'], ['sdkv-d', 2, 'two-b'],
    ['sdkv-e', 0, 'zero']]
  await Promise.all(docs.map(([k, n, name]) => coll.upsert(k, { n, name })))
  const V = couchbase.ViewScanConsistency
  const by = (o) => o.rows.map((r) => [r.id, r.key, r.value])
  await check('view_builtin_by_n', async () => {
    const r = await bucket.viewQuery('sdk', 'by_n', { scanConsistency: V.RequestPlus })
    const want = [['sdkv-b', 1, 'one'], ['sdkv-c', 2, 'two'], ['sdkv-d', 2, 'two-b'], ['sdkv-a', 3, 'three']]
    if (!same(by(r), want)) return 'rows ' + JSON.stringify(by(r))
    if (r.meta.totalRows !== 4) return 'totalRows ' + r.meta.totalRows
  })
  await check('view_limit_skip', async () => {
    const r = await bucket.viewQuery('sdk', 'by_n', { limit: 2, skip: 1 })
    if (!same(by(r).map((x) => x[0]), ['sdkv-c', 'sdkv-d'])) return 'rows ' + JSON.stringify(by(r))
    if (r.meta.totalRows !== 4) return 'totalRows ' + r.meta.totalRows
  })
  await check('view_key', async () => {
    const r = await bucket.viewQuery('sdk', 'by_n', { key: 2 })
    if (!same(by(r).map((x) => x[0]), ['sdkv-c', 'sdkv-d'])) return 'rows ' + JSON.stringify(by(r))
  })
  await check('view_keys', async () => {
    const r = await bucket.viewQuery('sdk', 'by_n', { keys: [3, 1, 7] })
    if (!same(by(r).map((x) => x[0]), ['sdkv-a', 'sdkv-b'])) return 'rows ' + JSON.stringify(by(r))
  })
  await check('view_range', async () => {
    const r = await bucket.viewQuery('sdk', 'by_n', { range: { start: 2, end: 3, inclusiveEnd: false } })
    if (!same(by(r).map((x) => x[0]), ['sdkv-c', 'sdkv-d'])) return 'rows ' + JSON.stringify(by(r))
    const r2 = await bucket.viewQuery('sdk', 'by_n', { range: { start: 2, end: 3 } })
    if (!same(by(r2).map((x) => x[0]), ['sdkv-c', 'sdkv-d', 'sdkv-a'])) return 'inclusive ' + JSON.stringify(by(r2))
  })
  await check('view_id_range', async () => {
    const r = await bucket.viewQuery('sdk', 'by_n', { range: { start: 2, end: 2 }, idRange: { start: 'sdkv-d', end: 'sdkv-d' } })
    if (!same(by(r).map((x) => x[0]), ['sdkv-d'])) return 'rows ' + JSON.stringify(by(r))
  })
  await check('view_descending', async () => {
    const r = await bucket.viewQuery('sdk', 'by_n', { order: couchbase.ViewOrdering.Descending, limit: 3 })
    if (!same(by(r).map((x) => x[0]), ['sdkv-a', 'sdkv-d', 'sdkv-c'])) return 'rows ' + JSON.stringify(by(r))
    const r2 = await bucket.viewQuery('sdk', 'by_n', { order: couchbase.ViewOrdering.Ascending, limit: 1 })
    if (!same(by(r2).map((x) => x[0]), ['sdkv-b'])) return 'ascending ' + JSON.stringify(by(r2))
  })
  await check('view_by_meta_id', async () => {
    const r = await bucket.viewQuery('sdk', 'by_id', { range: { start: 'sdkv-', end: 'sdkv-\uffff' } })
    if (!same(by(r), docs.map(([k]) => [k, k, null]))) return 'rows ' + JSON.stringify(by(r))
  })
  await check('view_reduce_count', async () => {
    const r = await bucket.viewQuery('sdk', 'count_n')
    if (!same(r.rows.map((x) => [x.key, x.value]), [[null, 4]])) return 'reduce ' + JSON.stringify(r.rows)
    const g = await bucket.viewQuery('sdk', 'count_n', { group: true })
    if (!same(g.rows.map((x) => [x.key, x.value]), [[1, 1], [2, 2], [3, 1]])) return 'group ' + JSON.stringify(g.rows)
    const m = await bucket.viewQuery('sdk', 'count_n', { reduce: false, limit: 1 })
    if (!same(by(m), [['sdkv-b', 1, 'one']])) return 'reduce=false ' + JSON.stringify(by(m))
  })
  await check('view_sees_kv_changes', async () => {
    await coll.upsert('sdkv-f', { n: 9, name: 'nine' })
    const r = await bucket.viewQuery('sdk', 'by_n', { key: 9 })
    await coll.remove('sdkv-f')
    const r2 = await bucket.viewQuery('sdk', 'by_n', { key: 9 })
    if (!same(by(r), [['sdkv-f', 9, 'nine']]) || r2.rows.length !== 0) return 'rows ' + JSON.stringify([by(r), by(r2)])
  })
  await check('view_development_namespace', async () => {
    await mgr.upsertDesignDocument(new DDoc({ name: 'devonly', views: { v: new DView({ map: byNMap }) } }), NS.Development)
    const r = await bucket.viewQuery('devonly', 'v', { namespace: NS.Development, limit: 1 })
    if (!same(by(r).map((x) => x[0]), ['sdkv-b'])) return 'rows ' + JSON.stringify(by(r))
    try {
      await bucket.viewQuery('devonly', 'v')
      return 'the production namespace answered a development-only design document'
    } catch (e) {
      if (!(e instanceof couchbase.DesignDocumentNotFoundError)) return 'production: ' + errName(e)
    }
  })
  // ---- registered results (test_node_sdk.py registers them) ----------------------------------
  await check('view_registered', async () => {
    const r = await bucket.viewQuery('reg', 'rows', { limit: 10 })
    if (!same(by(r), [['r1', ['k', 1], { v: 1 }], ['r2', ['k', 2], null]])) return 'rows ' + JSON.stringify(by(r))
    if (r.meta.totalRows !== 42) return 'totalRows ' + r.meta.totalRows
  })
  await check('view_registered_streaming', async () => {
    const rows = []
    let meta
    await new Promise((resolve, reject) => {
      bucket.viewQuery('reg', 'rows').on('row', (row) => rows.push(row)).on('meta', (m) => { meta = m })
        .on('error', reject).on('end', resolve)
    })
    if (rows.length !== 2 || rows[0].id !== 'r1') return 'rows ' + JSON.stringify(rows)
    if (!meta || meta.totalRows !== 42) return 'meta ' + JSON.stringify(meta)
  })
  await expectError('view_registered_failure', couchbase.InternalServerFailureError,
    () => bucket.viewQuery('reg', 'fails'))
  await expectError('view_registered_timeout', couchbase.TimeoutError,
    () => bucket.viewQuery('reg', 'never', { timeout: 1500 }))
  // ---- errors -------------------------------------------------------------------------------
  await expectError('view_missing_view', couchbase.DesignDocumentNotFoundError,
    () => bucket.viewQuery('sdk', 'no_such_view'),
    (e) => { if (e.context.http_response_code !== 404) return 'http ' + e.context.http_response_code })
  await expectError('view_missing_ddoc', couchbase.DesignDocumentNotFoundError,
    () => bucket.viewQuery('no_such_ddoc', 'v'))
  await expectError('view_bad_parameter', couchbase.InvalidArgumentError,
    () => bucket.viewQuery('sdk', 'by_n', { group: true }),
    (e) => { if (e.context.http_response_code !== 400) return 'http ' + e.context.http_response_code })
  await expectError('view_javascript', couchbase.InternalServerFailureError,
    () => bucket.viewQuery('sdk', 'js'),
    (e) => {
      if (!/unsupported_map/.test(e.context.http_response_body)) return 'body ' + e.context.http_response_body
    })
}

async function main () {
  let cluster
  try {
    cluster = await couchbase.connect(connstr, { username, password, timeouts })
    ok('connect')
  } catch (e) {
    fail('connect', errName(e))
    return
  }
  try {
    const bucket = cluster.bucket(bucketName)
    const coll = bucket.defaultCollection()
    await coll.upsert('sdk-warmup', { ready: true })     // the bucket's config is in
    await queryChecks(cluster, coll)
    await preparedChecks(cluster, coll)
    await viewChecks(bucket, coll)
  } finally {
    await cluster.close()
  }

  // A user the mock knows, without access to the bucket: the built-ins answer 13014.  It opens
  // its own bucket first: the mock (as pre-7.x servers) gives the bucket-less cluster config
  // to admins only, and without a config the SDK knows no query node.
  let limited
  try {
    limited = await couchbase.connect(connstr, { username: limitedUser, password: limitedPassword, timeouts })
    await limited.bucket(limitedBucket).defaultCollection().upsert('limited-warmup', { ok: true })
    await expectError('query_no_access_to_bucket', couchbase.AuthenticationFailureError,
      () => limited.query('SELECT RAW COUNT(*) FROM `' + bucketName + '`'),
      (e) => { if (firstError(e) !== 13014) return 'first_error_code ' + firstError(e) })
  } catch (e) {
    fail('query_no_access_to_bucket', 'connect: ' + errName(e))
  } finally {
    if (limited) await limited.close()
  }
}

run(main)
