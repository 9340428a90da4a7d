'use strict'
// The official Couchbase Node.js SDK keeps working through a topology change made with
// couchbase_ffi.mock's control endpoints (POST <rest>/mock/<action>): a failover, then vbucket
// moves.  Prints "OK <name>" / "FAIL <name>: <why>" lines and "DONE <passed>/<total>".
//
//   node sdk_failover.js <connstr> <username> <password> <bucket> <rest base url>

const http = require('http')
const couchbase = require('couchbase')
const { ok, fail, run } = require('./harness')

const [connstr, username, password, bucketName, restBase] = process.argv.slice(2)
if (!restBase) {
  console.error('usage: node sdk_failover.js <connstr> <username> <password> <bucket> <rest base url>')
  process.exit(2)
}

function control (action, params) {
  const body = JSON.stringify(params)
  const url = new URL('/mock/' + action, restBase)
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      auth: username + ':' + password,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }
    }, (res) => {
      let data = ''
      res.on('data', (c) => { data += c })
      res.on('end', () => res.statusCode === 200 ? resolve(JSON.parse(data)) : reject(new Error(res.statusCode + ' ' + data)))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function step (name, fn) {
  try {
    const why = await fn()
    if (why) fail(name, why); else ok(name)
  } catch (e) {
    fail(name, (e && e.constructor ? e.constructor.name : '') + ': ' + (e && e.message))
  }
}

async function main () {
  const cluster = await couchbase.connect(connstr, {
    username, password, timeouts: { kvTimeout: 10000, bootstrapTimeout: 15000 }
  })
  ok('connect')
  const coll = cluster.bucket(bucketName).defaultCollection()
  const keys = []
  for (let i = 0; i < 64; i++) keys.push('fo-' + process.pid + '-' + i)
  const readAll = async (tag) => {
    const got = await Promise.all(keys.map((k) => coll.get(k)))
    for (let i = 0; i < keys.length; i++) {
      if (got[i].content.v !== tag + i) return keys[i] + ' -> ' + JSON.stringify(got[i].content)
    }
  }
  try {
    await step('write_before', async () => {
      await Promise.all(keys.map((k, i) => coll.upsert(k, { v: 'a' + i })))
      return readAll('a')
    })
    // let replication finish (the mock's delay is a millisecond)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await step('failover', async () => {
      const r = await control('failover', { node: 1 })
      if (!r.changed) return 'node 1 was not failed over'
    })
    await step('read_after_failover', () => readAll('a'))
    await step('write_after_failover', async () => {
      await Promise.all(keys.map((k, i) => coll.upsert(k, { v: 'b' + i })))
      return readAll('b')
    })
    await step('move_vbuckets', async () => {
      const vbs = []
      for (let vb = 0; vb < 1024; vb += 3) vbs.push(vb)
      await control('move_vbuckets', { bucket: bucketName, vbuckets: vbs, to_node: 3 })
    })
    await step('read_after_move', async () => {
      const why = await readAll('b')
      if (why) return why
      await Promise.all(keys.map((k, i) => coll.upsert(k, { v: 'c' + i })))
      return readAll('c')
    })
  } finally {
    await cluster.close()
  }
}

run(main)
