'use strict'
// The official Couchbase Node.js SDK (4.x) over TLS against couchbase_ffi.mock: it must validate
// the mock's certificate with the test CA (and refuse it with another CA), then work as usual.
// Prints "OK <name>" / "FAIL <name>: <why>" per check, then "DONE <passed>/<total>".
//
//   node sdk_tls.js <couchbases connstr> <username> <password> <bucket> <ca.pem> <other-ca.pem>

const couchbase = require('couchbase')
const { ok, fail, run } = require('./harness')

const [connstr, username, password, bucketName, caPath, otherCaPath] = process.argv.slice(2)
if (!connstr || !username || password === undefined || !bucketName || !caPath || !otherCaPath) {
  console.error('usage: node sdk_tls.js <connstr> <username> <password> <bucket> <ca.pem> <other-ca.pem>')
  process.exit(2)
}

const timeouts = { kvTimeout: 5000, connectTimeout: 5000, bootstrapTimeout: 8000, managementTimeout: 5000 }

async function main () {
  // 1. the right CA: connect and use the bucket
  let cluster
  try {
    cluster = await couchbase.connect(connstr, { username, password, timeouts, security: { trustStorePath: caPath } })
    ok('connect_tls')
  } catch (e) {
    fail('connect_tls', e.constructor.name + ': ' + e.message)
  }
  if (cluster) {
    try {
      const coll = cluster.bucket(bucketName).defaultCollection()
      const key = 'tls-' + process.pid + '-' + Date.now()
      const up = await coll.upsert(key, { over: 'tls', n: 1 })
      ok('upsert')
      const got = await coll.get(key)
      if (got.content.over === 'tls' && got.cas.toString() === up.cas.toString()) ok('get')
      else fail('get', JSON.stringify(got.content))
      const many = []
      for (let i = 0; i < 32; i++) many.push(coll.upsert(key + '-' + i, 'v' + i))
      await Promise.all(many)
      const back = await Promise.all(many.map((_, i) => coll.get(key + '-' + i)))
      if (back.every((r, i) => r.content === 'v' + i)) ok('many_keys_across_nodes')
      else fail('many_keys_across_nodes', 'values differ')
      await coll.remove(key)
      try {
        await coll.get(key)
        fail('get_after_remove', 'no error')
      } catch (e) {
        if (e instanceof couchbase.DocumentNotFoundError) ok('get_after_remove')
        else fail('get_after_remove', e.constructor.name + ': ' + e.message)
      }
    } catch (e) {
      fail('operations', e.constructor.name + ': ' + e.message)
    } finally {
      await cluster.close()
    }
  }
  // 2. another CA: the SDK must refuse the mock's certificate
  try {
    const bad = await couchbase.connect(connstr, {
      username, password, timeouts: { ...timeouts, bootstrapTimeout: 3000, kvTimeout: 2000 },
      security: { trustStorePath: otherCaPath }
    })
    try {
      await bad.bucket(bucketName).defaultCollection().get('x')
      fail('wrong_ca_refused', 'connected and read with an unrelated CA')
    } catch (e) {
      ok('wrong_ca_refused')
    } finally {
      await bad.close()
    }
  } catch (e) {
    ok('wrong_ca_refused')
  }
}

run(main)
