'use strict'
// The official Couchbase Node.js SDK (4.x) against couchbase_ffi.mock's management endpoints
// (mock/manage.py: buckets and RBAC users) and its index statements (mock/indexes.py), through
// the SDK's own bucket, user and query-index managers.  One line per check: "OK <name>" or
// "FAIL <name>: <why>", then "DONE <passed>/<total>"; exit code 0 only if every check passed.
//
//   node sdk_manage.js <connstr> <admin user> <admin password> <existing bucket>

const couchbase = require('couchbase')
const { ok, fail, errName, check, expectError, run } = require('./harness')

const [connstr, username, password, bucketName] = process.argv.slice(2)
if (!connstr || !username || password === undefined || !bucketName) {
  console.error('usage: node sdk_manage.js <connstr> <admin user> <admin password> <existing bucket>')
  process.exit(2)
}

const timeouts = { kvTimeout: 5000, connectTimeout: 10000, bootstrapTimeout: 15000, managementTimeout: 5000, queryTimeout: 10000 }
async function retry (fn, tries) {
  for (let i = 0; ; i++) {
    try {
      return await fn()
    } catch (e) {
      if (i + 1 >= tries) throw e
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

async function bucketChecks (cluster) {
  const mgr = cluster.buckets()
  await check('bucket_create', async () => {
    await mgr.createBucket({ name: 'sdkb', ramQuotaMB: 128, bucketType: couchbase.BucketType.Couchbase, numReplicas: 1, flushEnabled: true })
  })
  await expectError('bucket_create_existing', couchbase.BucketExistsError,
    () => mgr.createBucket({ name: 'sdkb', ramQuotaMB: 128 }))
  await check('bucket_get', async () => {
    const b = await mgr.getBucket('sdkb')
    if (b.name !== 'sdkb') return 'name ' + b.name
    if (b.ramQuotaMB !== 128) return 'ramQuotaMB ' + b.ramQuotaMB
    if (b.numReplicas !== 1) return 'numReplicas ' + b.numReplicas
    if (b.flushEnabled !== true) return 'flushEnabled ' + b.flushEnabled
  })
  await check('bucket_list', async () => {
    const all = await mgr.getAllBuckets()
    const names = all.map((b) => b.name).sort()
    if (!names.includes('sdkb') || !names.includes(bucketName)) return 'names ' + JSON.stringify(names)
  })
  await check('bucket_use_and_flush', async () => {
    const coll = cluster.bucket('sdkb').defaultCollection()
    await retry(() => coll.upsert('made-by-sdk', { v: 1 }), 25)
    const r = await coll.get('made-by-sdk')
    if (r.content.v !== 1) return 'content ' + JSON.stringify(r.content)
    await mgr.flushBucket('sdkb')
    try {
      await coll.get('made-by-sdk')
      return 'still there after flush'
    } catch (e) {
      if (!(e instanceof couchbase.DocumentNotFoundError)) return 'after flush: ' + errName(e)
    }
  })
  await check('bucket_drop', async () => {
    await mgr.dropBucket('sdkb')
    const names = (await mgr.getAllBuckets()).map((b) => b.name)
    if (names.includes('sdkb')) return 'still listed'
  })
  await expectError('bucket_get_missing', couchbase.BucketNotFoundError, () => mgr.getBucket('sdkb'))
  await expectError('bucket_drop_missing', couchbase.BucketNotFoundError, () => mgr.dropBucket('sdkb'))
}

async function userChecks (cluster) {
  const users = cluster.users()
  await check('user_upsert_and_get', async () => {
    await users.upsertUser({ username: 'sdkuser', password: 'sdkpw', displayName: 'SDK user', roles: [{ name: 'bucket_full_access', bucket: bucketName }] })
    const u = await users.getUser('sdkuser')
    if (u.username !== 'sdkuser') return 'username ' + u.username
    if (u.displayName !== 'SDK user') return 'displayName ' + u.displayName
    const roles = u.roles.map((r) => r.name + '[' + r.bucket + ']')
    if (roles.join() !== 'bucket_full_access[' + bucketName + ']') return 'roles ' + JSON.stringify(roles)
  })
  await check('user_list', async () => {
    const all = await users.getAllUsers()
    if (!all.map((u) => u.username).includes('sdkuser')) return 'not listed'
  })
  await check('user_logs_in', async () => {
    const c = await couchbase.connect(connstr, { username: 'sdkuser', password: 'sdkpw', timeouts })
    try {
      await c.bucket(bucketName).defaultCollection().upsert('by-sdkuser', { ok: true })
    } finally {
      await c.close()
    }
  })
  await check('user_drop', async () => {
    await users.dropUser('sdkuser')
    try {
      await users.getUser('sdkuser')
      return 'still there'
    } catch (e) {
      if (!(e instanceof couchbase.UserNotFoundError)) return 'getUser after drop: ' + errName(e)
    }
  })
  await expectError('user_dropped_cannot_log_in', couchbase.AuthenticationFailureError, async () => {
    const c = await couchbase.connect(connstr, { username: 'sdkuser', password: 'sdkpw', timeouts })
    await c.close()
  })
}

async function indexChecks (cluster) {
  const ix = cluster.queryIndexes()
  await check('index_create_primary', async () => {
    await ix.createPrimaryIndex(bucketName)
  })
  await expectError('index_create_primary_existing', couchbase.IndexExistsError,
    () => ix.createPrimaryIndex(bucketName))
  await check('index_create_primary_ignore', async () => {
    await ix.createPrimaryIndex(bucketName, { ignoreIfExists: true })
  })
  await check('index_create_deferred', async () => {
    await ix.createIndex(bucketName, 'sdk_city', ['city', 'country'], { deferred: true })
  })
  await check('index_list', async () => {
    const all = await ix.getAllIndexes(bucketName)
    const got = all.map((i) => i.name + ':' + i.state + ':' + i.isPrimary).sort()
    const want = ['#primary:online:true', 'sdk_city:deferred:false']
    if (JSON.stringify(got) !== JSON.stringify(want)) return 'indexes ' + JSON.stringify(got)
    const city = all.find((i) => i.name === 'sdk_city')
    if (JSON.stringify(city.indexKey) !== JSON.stringify(['city', 'country']) && JSON.stringify(city.indexKey) !== JSON.stringify(['`city`', '`country`'])) {
      return 'indexKey ' + JSON.stringify(city.indexKey)
    }
  })
  await check('index_build_and_watch', async () => {
    await ix.buildDeferredIndexes(bucketName)
    await ix.watchIndexes(bucketName, ['sdk_city'], 5000)
    const city = (await ix.getAllIndexes(bucketName)).find((i) => i.name === 'sdk_city')
    if (city.state !== 'online') return 'state ' + city.state
  })
  await check('index_drop', async () => {
    await ix.dropIndex(bucketName, 'sdk_city')
    await ix.dropPrimaryIndex(bucketName)
    const left = await ix.getAllIndexes(bucketName)
    if (left.length !== 0) return 'left ' + JSON.stringify(left.map((i) => i.name))
  })
  await expectError('index_drop_missing', couchbase.IndexNotFoundError, () => ix.dropIndex(bucketName, 'sdk_city'))
}

async function main () {
  let cluster
  try {
    cluster = await couchbase.connect(connstr, { username, password, timeouts })
    await cluster.bucket(bucketName).defaultCollection().upsert('sdk-warmup', { ready: true })
    ok('connect')
  } catch (e) {
    fail('connect', errName(e))
    return
  }
  try {
    await bucketChecks(cluster)
    await userChecks(cluster)
    await indexChecks(cluster)
  } finally {
    await cluster.close()
  }
}

run(main)
