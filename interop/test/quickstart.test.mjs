// Runs examples/quickstart.mjs against the server, as a new user would.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { describe } from 'node:test'
import { fileURLToPath } from 'node:url'
import { serverSuite } from './helpers/suite.mjs'

const INTEROP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')
const SCRIPT_TIMEOUT_MS = 30000

function runQuickstart (...args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [join('examples', 'quickstart.mjs'), ...args],
      { cwd: INTEROP_DIR, timeout: SCRIPT_TIMEOUT_MS, encoding: 'utf8' },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }))
  })
}

describe('quickstart example', () => {
  const suite = serverSuite()

  suite.test('passes every step', async () => {
    const run = await runQuickstart(suite.server.url)

    assert.equal(run.code, 0, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
    assert.match(run.stdout, /all steps passed/)
    assert.doesNotMatch(run.stdout, /reported/, 'a client reported an error')
  }, { timeout: SCRIPT_TIMEOUT_MS + 5000 })

  suite.test('rejects non-WebSocket URL', async () => {
    const run = await runQuickstart('http://127.0.0.1:1/deepstream')

    assert.equal(run.code, 2)
    assert.match(run.stderr, /expected a ws:\/\/ or wss:\/\/ URL/)
  })
})
