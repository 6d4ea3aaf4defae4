// File authentication with the official client: a users file whose password
// hashes come from the Node.js deepstream server's own hash function, and
// (against our server) the `deepstream hash` command checked by that function.
//
// deepstream 7.0.2 sets the expectations:
// - A right password logs in and returns the user's clientData.
// - A wrong password and an unknown user are both rejected without data, so
//   the client reports INVALID_AUTHENTICATION_DETAILS for both.
// - A login without a password is rejected with the reason as client data.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { C, settle } from './helpers/clients.mjs'
import { target } from './helpers/server.mjs'
import { serverSuite } from './helpers/suite.mjs'

const require = createRequire(import.meta.url)
const { createHash } = require('@deepstream/server/dist/src/utils/utils')

const INTEROP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const LOGIN_TIMEOUT_MS = 5000
// The hash settings of deepstream's shipped config.yml.
const HASH = { algorithm: 'md5', iterations: 100, keyLength: 32 }

/** Hashes `password` the way deepstream's `hash` command does: key, then salt. */
async function nodeHash (password, settings = HASH) {
  const { hash, salt } = await createHash(password, settings)
  return hash.toString('base64') + salt
}

/** Returns whether `stored` is the hash of `password` under `settings`, by deepstream's check. */
async function nodeVerifies (password, stored, settings = HASH) {
  const keyLength = 4 * Math.ceil(settings.keyLength / 3)
  const { hash } = await createHash(password, settings, stored.slice(keyLength))
  return hash.toString('base64') === stored.slice(0, keyLength)
}

const USERS = {
  ada: {
    password: await nodeHash('lovelace'),
    clientData: { favouriteColor: 'red' },
    serverData: { role: 'admin' }
  },
  bob: { password: await nodeHash('builder') }
}

describe('file authentication', () => {
  const suite = serverSuite({
    auth: [{
      type: 'file',
      options: { path: 'users.json', hash: HASH.algorithm, iterations: HASH.iterations, keyLength: HASH.keyLength }
    }],
    files: { 'users.json': JSON.stringify(USERS) }
  })

  /** Logs a new client in with `authData` and settles to `{ ok, value }` or `{ ok, error }`. */
  function tryLogin (authData) {
    const client = suite.pool.create()
    return settle(client.login(authData), LOGIN_TIMEOUT_MS, `login of ${authData.username}`)
  }

  suite.test('right password logs in with clientData', async () => {
    const client = suite.pool.create()

    const clientData = await client.login({ username: 'ada', password: 'lovelace' })

    assert.deepEqual(clientData, { favouriteColor: 'red' })
    assert.equal(client.getConnectionState(), C.CONNECTION_STATE.OPEN)
  })

  suite.test('user without clientData logs in', async () => {
    const result = await tryLogin({ username: 'bob', password: 'builder' })

    assert.equal(result.ok, true, `login failed: ${JSON.stringify(result.error)}`)
    assert.equal(result.value, null)
  })

  suite.test('wrong password and unknown user are rejected alike', async () => {
    const wrong = await tryLogin({ username: 'ada', password: 'builder' })
    const unknown = await tryLogin({ username: 'eve', password: 'lovelace' })

    assert.equal(wrong.ok, false)
    assert.deepEqual(wrong.error, { reason: C.EVENT.INVALID_AUTHENTICATION_DETAILS })
    assert.deepEqual(unknown, wrong)
  })

  suite.test('missing password gets the reason', async () => {
    const result = await tryLogin({ username: 'ada' })

    assert.equal(result.ok, false)
    assert.deepEqual(result.error, {
      reason: { error: 'missing authentication parameter: username or/and password' }
    })
  })

  suite.test('rejected client can log in again', async () => {
    const client = suite.pool.create()
    await assert.rejects(client.login({ username: 'ada', password: 'wrong' }))

    const clientData = await client.login({ username: 'ada', password: 'lovelace' })

    assert.deepEqual(clientData, { favouriteColor: 'red' })
  })
})

describe('deepstream hash', { skip: target() === 'node' && 'runs our binary, which the Node.js target does not build' }, () => {
  const binary = process.env.DEEPSTREAM_BIN
    ? resolve(process.env.DEEPSTREAM_BIN)
    : resolve(INTEROP_DIR, '..', 'target', 'debug', 'deepstream')

  it('prints a hash that deepstream verifies', async () => {
    const settings = { algorithm: 'sha256', iterations: 1000, keyLength: 64 }
    const folder = await mkdtemp(join(tmpdir(), 'deepstream-interop-hash-'))
    try {
      const config = join(folder, 'config.yml')
      await writeFile(config, [
        'auth:',
        '  - type: file',
        '    options:',
        '      path: users.json',
        `      hash: ${settings.algorithm}`,
        `      iterations: ${settings.iterations}`,
        `      keyLength: ${settings.keyLength}`,
        ''
      ].join('\n'))

      const { stdout } = await promisify(execFile)(binary, ['hash', 'pässwörd ✓', '-c', config], { timeout: 10000 })

      const match = /^Password hash: (\S+)\n$/.exec(stdout)
      assert.ok(match, `unexpected output ${JSON.stringify(stdout)}`)
      assert.equal(await nodeVerifies('pässwörd ✓', match[1], settings), true)
      assert.equal(await nodeVerifies('password', match[1], settings), false)
    } finally {
      await rm(folder, { recursive: true, force: true })
    }
  })
})
