'use strict'
// Runs the official Couchbase Node.js SDK (4.x) against a cluster (here: couchbase_ffi.mock) and
// prints one line per check: "OK <name>" or "FAIL <name>: <why>", then "DONE <passed>/<total>".
// Exit code 0 only if every check passed.
//
//   node sdk_check.js <connstr> <username> <password> <bucket>

const couchbase = require('couchbase')
const { ok, fail, check, expectError, run } = require('./harness')

const [connstr, username, password, bucketName] = process.argv.slice(2)
if (!connstr || !username || password === undefined || !bucketName) {
  console.error('usage: node sdk_check.js <connstr> <username> <password> <bucket>')
  process.exit(2)
}

const timeouts = { kvTimeout: 5000, connectTimeout: 10000, bootstrapTimeout: 15000, managementTimeout: 5000 }

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
    await check('mutation_token', async () => {
      // the mock answers MUTATION_SEQNO extras: the SDK's result.token
      const a = (await coll.upsert(tag + '-tok', { n: 1 })).token
      const b = (await coll.upsert(tag + '-tok', { n: 2 })).token
      if (!a || !b) return 'no token in the result'
      const ta = a.toJSON()
      const tb = b.toJSON()
      if (ta.bucket_name !== bucketName) return 'bucket ' + ta.bucket_name
      if (ta.partition_id !== tb.partition_id || ta.partition_uuid !== tb.partition_uuid) {
        return 'same key, different vbucket/uuid: ' + JSON.stringify([ta, tb])
      }
      if (String(ta.partition_uuid) === '0') return 'vbucket uuid 0'
      if (!(BigInt(tb.sequence_number) > BigInt(ta.sequence_number))) {
        return 'seqno did not grow: ' + JSON.stringify([ta, tb])
      }
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
    // ---- sub-document: lookupIn / mutateIn (the mock's SUBDOC_MULTI_LOOKUP / _MUTATION) ----
    const sdKey = tag + '-sd'
    const L = couchbase.LookupInSpec
    const M = couchbase.MutateInSpec
    await coll.upsert(sdKey, { name: 'sd', n: 1, list: [1, 2, 3], nest: { a: { b: true } } })
    await check('lookup_in', async () => {
      const r = await coll.lookupIn(sdKey, [L.get('name'), L.exists('nest.a.b'), L.count('list'),
        L.get('list[-1]'), L.exists('nope'), L.get('')])
      if (r.content[0].value !== 'sd') return 'get name: ' + JSON.stringify(r.content[0])
      if (r.content[1].value !== true) return 'exists nest.a.b: ' + JSON.stringify(r.content[1])
      if (r.content[2].value !== 3) return 'count list: ' + JSON.stringify(r.content[2].value)
      if (r.content[3].value !== 3) return 'get list[-1]: ' + JSON.stringify(r.content[3].value)
      if (r.content[4].value !== false) return 'exists of a missing path: ' + JSON.stringify(r.content[4])
      if (!r.content[5].value || r.content[5].value.name !== 'sd') return 'whole document: ' + JSON.stringify(r.content[5].value)
      const g = await coll.get(sdKey)
      if (!sameCas(r.cas, g.cas)) return 'cas ' + r.cas + ' != get cas ' + g.cas
    })
    await check('lookup_in_missing_path', async () => {
      const r = await coll.lookupIn(sdKey, [L.get('name'), L.get('no.such.path')])
      if (r.content[0].value !== 'sd') return 'first path: ' + JSON.stringify(r.content[0])
      if (!(r.content[1].error instanceof couchbase.PathNotFoundError)) {
        return 'missing path gave ' + (r.content[1].error && r.content[1].error.constructor.name)
      }
    })
    await check('lookup_in_path_mismatch', async () => {
      const r = await coll.lookupIn(sdKey, [L.get('name[0]')])
      if (!(r.content[0].error instanceof couchbase.PathMismatchError)) {
        return 'mismatch gave ' + (r.content[0].error && r.content[0].error.constructor.name)
      }
    })
    await expectError('lookup_in_missing_doc', couchbase.DocumentNotFoundError,
      () => coll.lookupIn(tag + '-sd-missing', [L.get('a')]))
    await check('mutate_in_paths', async () => {
      const before = await coll.get(sdKey)
      const r = await coll.mutateIn(sdKey, [M.upsert('n', 2), M.insert('fresh', { x: 1 }),
        M.upsert('made.by.mkdir', 'p', { createPath: true }), M.replace('name', 'sd2'),
        M.remove('nest.a')])
      if (sameCas(r.cas, before.cas)) return 'cas did not change'
      const g = await coll.get(sdKey)
      const want = { name: 'sd2', n: 2, list: [1, 2, 3], nest: {}, fresh: { x: 1 }, made: { by: { mkdir: 'p' } } }
      if (JSON.stringify(g.content) !== JSON.stringify(want)) return 'content ' + JSON.stringify(g.content)
      if (!sameCas(r.cas, g.cas)) return 'mutateIn cas ' + r.cas + ' != get cas ' + g.cas
    })
    await check('mutate_in_arrays', async () => {
      await coll.mutateIn(sdKey, [M.arrayAppend('list', 4), M.arrayPrepend('list', 0),
        M.arrayInsert('list[1]', 'i'), M.arrayAddUnique('list', 9), M.arrayAppend('list', [5, 6], { multi: true })])
      const g = await coll.lookupIn(sdKey, [L.get('list')])
      const want = [0, 'i', 1, 2, 3, 4, 9, 5, 6]
      if (JSON.stringify(g.content[0].value) !== JSON.stringify(want)) return 'list ' + JSON.stringify(g.content[0].value)
    })
    await expectError('mutate_in_add_unique_exists', couchbase.PathExistsError,
      () => coll.mutateIn(sdKey, [M.arrayAddUnique('list', 9)]))
    await check('mutate_in_counters', async () => {
      const r = await coll.mutateIn(sdKey, [M.increment('cnt', 5), M.upsert('z', 0), M.decrement('cnt', 2)])
      if (Number(r.content[0].value) !== 5) return 'increment gave ' + JSON.stringify(r.content[0].value)
      if (Number(r.content[2].value) !== 3) return 'decrement gave ' + JSON.stringify(r.content[2].value)
      const g = await coll.lookupIn(sdKey, [L.get('cnt')])
      if (g.content[0].value !== 3) return 'stored counter ' + JSON.stringify(g.content[0].value)
    })
    await expectError('mutate_in_missing_path', couchbase.PathNotFoundError,
      () => coll.mutateIn(sdKey, [M.upsert('n', 3), M.replace('no.such', 1)]))
    await expectError('mutate_in_path_mismatch', couchbase.PathMismatchError,
      () => coll.mutateIn(sdKey, [M.upsert('list.key', 1)]))
    await expectError('mutate_in_insert_existing_path', couchbase.PathExistsError,
      () => coll.mutateIn(sdKey, [M.insert('fresh', 2)]))
    await check('mutate_in_atomic', async () => {
      const g = await coll.get(sdKey)
      try {
        await coll.mutateIn(sdKey, [M.upsert('n', 99), M.insert('fresh', 2)])
        return 'no error'
      } catch (e) {
        if (!(e instanceof couchbase.PathExistsError)) return 'got ' + e.constructor.name
      }
      const after = await coll.get(sdKey)
      if (after.content.n !== 2 || !sameCas(after.cas, g.cas)) return 'document changed: ' + JSON.stringify(after.content)
    })
    await expectError('mutate_in_cas_mismatch', couchbase.CasMismatchError, async () => {
      const g = await coll.get(sdKey)
      await coll.upsert(sdKey, g.content)
      await coll.mutateIn(sdKey, [M.upsert('n', 5)], { cas: g.cas })
    })
    await expectError('mutate_in_missing_doc', couchbase.DocumentNotFoundError,
      () => coll.mutateIn(tag + '-sd-missing', [M.upsert('a', 1)]))
    await check('mutate_in_upsert_document', async () => {
      const k = tag + '-sd-new'
      await coll.mutateIn(k, [M.upsert('a.b', 1), M.arrayAppend('c', 'x')], { storeSemantics: couchbase.StoreSemantics.Upsert })
      const g = await coll.get(k)
      if (JSON.stringify(g.content) !== JSON.stringify({ a: { b: 1 }, c: ['x'] })) return 'content ' + JSON.stringify(g.content)
      await coll.mutateIn(k, [M.upsert('d', 2)], { storeSemantics: couchbase.StoreSemantics.Upsert })
      const g2 = await coll.get(k)
      if (g2.content.d !== 2 || g2.content.a.b !== 1) return 'second upsert: ' + JSON.stringify(g2.content)
      await coll.remove(k)
    })
    await expectError('mutate_in_insert_document_exists', couchbase.DocumentExistsError,
      () => coll.mutateIn(sdKey, [M.upsert('q', 1)], { storeSemantics: couchbase.StoreSemantics.Insert }))
    await check('mutate_in_expiry', async () => {
      // (get withExpiry reads the $document virtual xattr, which the mock does not have)
      const k = tag + '-sd-exp'
      await coll.mutateIn(k, [M.upsert('a', 1)], { storeSemantics: couchbase.StoreSemantics.Insert, expiry: 1 })
      const g = await coll.get(k)
      if (g.content.a !== 1) return 'content ' + JSON.stringify(g.content)
      await new Promise((resolve) => setTimeout(resolve, 2100))
      try {
        await coll.get(k)
        return 'still there after its expiry'
      } catch (e) {
        if (!(e instanceof couchbase.DocumentNotFoundError)) return 'got ' + e.constructor.name
      }
    })
    await coll.remove(sdKey)
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

run(main)
