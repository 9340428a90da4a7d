'use strict'
// Runs the official Couchbase Node.js SDK (4.x) against a cluster (here: couchbase_ffi.mock) and
// prints one line per check: "OK <name>" or "FAIL <name>: <why>", then "DONE <passed>/<total>".
// Exit code 0 only if every check passed.
//
//   node sdk_check.js <connstr> <username> <password> <bucket>

const couchbase = require('couchbase')

const [connstr, username, password, bucketName] = process.argv.slice(2)
if (!connstr || !username || password === undefined || !bucketName) {
  console.error('usage: node sdk_check.js <connstr> <username> <password> <bucket>')
  process.exit(2)
}

const timeouts = { kvTimeout: 5000, connectTimeout: 10000, bootstrapTimeout: 15000, managementTimeout: 5000 }
let passed = 0
let total = 0

function ok (name) { passed++; total++; console.log('OK ' + name) }
function fail (name, why) { total++; console.log('FAIL ' + name + ': ' + why) }

async function check (name, fn) {
  try {
    const why = await fn()
    if (why) fail(name, why); else ok(name)
  } catch (e) {
    fail(name, 'unexpected ' + (e && e.constructor ? e.constructor.name : '') + ': ' + (e && e.message))
  }
}

// fn must throw an instance of errorClass
async function expectError (name, errorClass, fn) {
  try {
    await fn()
    fail(name, 'no error, expected ' + errorClass.name)
  } catch (e) {
    if (e instanceof errorClass) ok(name)
    else fail(name, 'got ' + (e && e.constructor ? e.constructor.name : e) + ' (' + (e && e.message) + '), expected ' + errorClass.name)
  }
}

function sameCas (a, b) { return a.toString() === b.toString() }

async function main () {
  const tag = 'sdk-' + process.pid + '-' + Date.now()
  const key = tag + '-doc'
  const counter = tag + '-counter'

  let cluster
  try {
    cluster = await couchbase.connect(connstr, { username, password, timeouts })
    ok('connect')
  } catch (e) {
    fail('connect', e.constructor.name + ': ' + e.message)
    return
  }
  try {
    const coll = cluster.bucket(bucketName).defaultCollection()
    const doc = { name: 'mock', n: 1, list: [1, 2, 3] }
    let upsertCas

    await check('upsert', async () => {
      const r = await coll.upsert(key, doc)
      upsertCas = r.cas
      if (!r.cas || r.cas.toString() === '0') return 'no cas in the result'
    })
    await check('get', async () => {
      const r = await coll.get(key)
      if (JSON.stringify(r.content) !== JSON.stringify(doc)) return 'content ' + JSON.stringify(r.content)
      if (!sameCas(r.cas, upsertCas)) return 'cas ' + r.cas + ' != upsert cas ' + upsertCas
    })
    await expectError('get_missing', couchbase.DocumentNotFoundError, () => coll.get(tag + '-missing'))
    await check('exists', async () => {
      const yes = await coll.exists(key)
      const no = await coll.exists(tag + '-missing')
      if (yes.exists !== true) return 'exists of a stored document: ' + yes.exists
      if (no.exists !== false) return 'exists of a missing document: ' + no.exists
    })
    await expectError('insert_existing', couchbase.DocumentExistsError, () => coll.insert(key, doc))
    await check('replace_cas', async () => {
      const cur = await coll.get(key)
      const r = await coll.replace(key, { name: 'replaced' }, { cas: cur.cas })
      if (sameCas(r.cas, cur.cas)) return 'cas did not change'
      const after = await coll.get(key)
      if (after.content.name !== 'replaced') return 'content ' + JSON.stringify(after.content)
    })
    await expectError('replace_cas_mismatch', couchbase.CasMismatchError,
      () => coll.replace(key, { name: 'stale' }, { cas: upsertCas }))
    await check('touch', async () => {
      const r = await coll.touch(key, 3600)
      if (!r.cas) return 'no cas'
      const g = await coll.get(key, { withExpiry: false })
      if (g.content.name !== 'replaced') return 'content changed by touch'
    })
    await check('append_prepend', async () => {
      const raw = new couchbase.RawStringTranscoder()
      const bkey = tag + '-bin'
      await coll.upsert(bkey, 'mid', { transcoder: raw })
      await coll.binary().append(bkey, '>')
      await coll.binary().prepend(bkey, '<')
      const g = await coll.get(bkey, { transcoder: raw })
      await coll.remove(bkey)
      if (g.content !== '<mid>') return 'content ' + JSON.stringify(g.content)
    })
    await check('get_and_touch', async () => {
      const r = await coll.getAndTouch(key, 3600)
      if (r.content.name !== 'replaced') return 'content ' + JSON.stringify(r.content)
    })
    await check('legacy_durability', async () => {
      // persistTo / replicateTo: the SDK polls OBSERVE on the active and the replicas
      const r = await coll.upsert(key, { name: 'replaced', durable: true },
        { durabilityPersistTo: 1, durabilityReplicateTo: 1, timeout: 5000 })
      if (!r.cas) return 'no cas'
      const g = await coll.get(key)
      if (g.content.durable !== true) return 'content ' + JSON.stringify(g.content)
      await coll.upsert(key, { name: 'replaced' })
    })
    // more replicas than the bucket has: the SDK must refuse, not wait for the timeout
    await expectError('legacy_durability_impossible', couchbase.DurabilityImpossibleError,
      () => coll.upsert(key, { name: 'replaced' }, { durabilityReplicateTo: 3, timeout: 3000 }))
    await check('get_all_replicas', async () => {
      for (let i = 0; i < 50; i++) {
        const rs = await coll.getAllReplicas(key)
        const fresh = rs.filter((r) => r.content && r.content.name === 'replaced')
        if (fresh.length >= 2 && rs.some((r) => !r.isReplica)) return
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      return 'the active and a replica never both answered with the document'
    })
    await check('get_any_replica', async () => {
      // replication is asynchronous: give it a moment
      for (let i = 0; i < 50; i++) {
        try {
          const r = await coll.getAnyReplica(key)
          if (r.content.name === 'replaced') return
        } catch (e) {
          if (!(e instanceof couchbase.DocumentUnretrievableError)) throw e
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      return 'no replica had the document'
    })
    await check('get_and_lock_unlock', async () => {
      const locked = await coll.getAndLock(key, 10)
      try {
        await coll.upsert(key, { name: 'while locked' }, { timeout: 500 })
        return 'upsert of a locked document succeeded'
      } catch (e) {
        if (!(e instanceof couchbase.DocumentLockedError) && !(e instanceof couchbase.TimeoutError) &&
            !(e instanceof couchbase.AmbiguousTimeoutError)) {
          return 'upsert of a locked document gave ' + e.constructor.name
        }
      }
      await coll.unlock(key, locked.cas)
      await coll.upsert(key, { name: 'replaced' })
    })
    await check('remove', async () => {
      const r = await coll.remove(key)
      if (!r.cas) return 'no cas'
    })
    await expectError('get_after_remove', couchbase.DocumentNotFoundError, () => coll.get(key))
    await check('exists_after_remove', async () => {
      const r = await coll.exists(key)
      if (r.exists !== false) return 'exists of a removed document: ' + r.exists
    })
    await expectError('remove_missing', couchbase.DocumentNotFoundError, () => coll.remove(key))
    await check('increment_initial', async () => {
      const r = await coll.binary().increment(counter, 5, { initial: 10 })
      if (Number(r.value) !== 10) return 'value ' + r.value + ', expected the initial 10'
    })
    await check('increment', async () => {
      const r = await coll.binary().increment(counter, 5)
      if (Number(r.value) !== 15) return 'value ' + r.value + ', expected 15'
    })
    await check('decrement', async () => {
      const r = await coll.binary().decrement(counter, 3)
      if (Number(r.value) !== 12) return 'value ' + r.value + ', expected 12'
    })
    await check('decrement_clamps_at_zero', async () => {
      const r = await coll.binary().decrement(counter, 100)
      if (Number(r.value) !== 0) return 'value ' + r.value + ', expected 0'
    })
    await expectError('increment_missing_no_initial', couchbase.DocumentNotFoundError,
      () => coll.binary().increment(tag + '-nocounter', 1))
    await check('counter_is_a_document', async () => {
      const r = await coll.get(counter)
      if (Number(r.content) !== 0) return 'content ' + JSON.stringify(r.content)
    })
    await check('many_keys_across_nodes', async () => {
      const keys = []
      for (let i = 0; i < 40; i++) keys.push(tag + '-many-' + i)
      await Promise.all(keys.map((k, i) => coll.upsert(k, { i })))
      const got = await Promise.all(keys.map((k) => coll.get(k)))
      for (let i = 0; i < keys.length; i++) {
        if (got[i].content.i !== i) return keys[i] + ' -> ' + JSON.stringify(got[i].content)
      }
      await Promise.all(keys.map((k) => coll.remove(k)))
    })
  } finally {
    await cluster.close()
  }

  // A wrong password must fail in the SDK.
  try {
    const bad = await couchbase.connect(connstr, { username, password: password + '-wrong', timeouts })
    try {
      await bad.bucket(bucketName).defaultCollection().get(key, { timeout: 3000 })
      fail('wrong_password', 'connected and read with a wrong password')
    } catch (e) {
      if (e instanceof couchbase.AuthenticationFailureError) ok('wrong_password')
      else fail('wrong_password', 'got ' + e.constructor.name + ': ' + e.message)
    } finally {
      await bad.close()
    }
  } catch (e) {
    if (e instanceof couchbase.AuthenticationFailureError) ok('wrong_password')
    else fail('wrong_password', 'got ' + e.constructor.name + ': ' + e.message)
  }
}

main().then(() => {
  console.log('DONE ' + passed + '/' + total)
  process.exit(passed === total && total > 0 ? 0 : 1)
}, (e) => {
  console.log('FAIL script: ' + (e && e.stack))
  console.log('DONE ' + passed + '/' + total)
  process.exit(1)
})
