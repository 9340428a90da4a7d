'use strict'
// The check harness the SDK scripts share: one line per check, "OK <name>" or
// "FAIL <name>: <why>", then "DONE <passed>/<total>"; the exit code is 0 only if every
// check passed.

let passed = 0
let total = 0

function ok (name) { passed++; total++; console.log('OK ' + name) }
function fail (name, why) { total++; console.log('FAIL ' + name + ': ' + why) }
function errName (e) { return (e && e.constructor ? e.constructor.name : String(e)) + ' (' + (e && e.message) + ')' }
function context (e) { return e && e.context ? ' ' + JSON.stringify(e.context) : '' }

// fn may return a complaint (a string): then the check fails
async function check (name, fn) {
  try {
    const why = await fn()
    if (why) fail(name, why); else ok(name)
  } catch (e) {
    fail(name, 'unexpected ' + errName(e) + context(e))
  }
}

// fn must throw an instance of errorClass; then more(e) may return a complaint
async function expectError (name, errorClass, fn, more) {
  try {
    await fn()
    fail(name, 'no error, expected ' + errorClass.name)
  } catch (e) {
    if (!(e instanceof errorClass)) {
      fail(name, 'got ' + errName(e) + ', expected ' + errorClass.name + context(e))
      return
    }
    const why = more ? more(e) : undefined
    if (why) fail(name, why); else ok(name)
  }
}

// run main(), then print the tally and exit with its verdict
function run (main) {
  main().then(() => {
    console.log('DONE ' + passed + '/' + total)
    process.exit(passed === total && total > 0 ? 0 : 1)
  }, (e) => {
    console.log('FAIL script: ' + (e && e.stack))
    console.log('DONE ' + passed + '/' + total)
    process.exit(1)
  })
}

module.exports = { ok, fail, errName, check, expectError, run }
