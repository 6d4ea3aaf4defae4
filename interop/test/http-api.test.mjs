// deepstream's HTTP API: batches posted with Node's fetch to `/api` and
// `/api/auth`, next to official clients that subscribe, provide RPCs and stay
// online. Every test runs unchanged against both servers and checks the exact
// JSON of each response: field names, `result`, `success`, `errorTopic` and
// `errorEvent` values. Only the `error` texts differ between the servers, so
// the tests check that each is a non-empty string.
//
// deepstream 7.0.2 sets the expectations, apart from these documented
// differences (docs/configuration.md, "HTTP API"), each checked per target:
// - `/api/auth` returns a token only on our server.
// - A body over `maxMessageSize` gets 413 from our server and 400 from
//   deepstream, and an unknown top-level field gets 400 only from ours.
// - A preflight allows `POST, OPTIONS` on our server and also GET on deepstream.
// deepstream 7.0.2 hands every item of a request to its handlers at once. A
// read after a write of the same record in one request can miss the write
// there, and two writes of one record in one request can time out. The tests
// therefore write and read a record in separate requests.

import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { C, ClientPool, waitFor, waitForAck } from './helpers/clients.mjs'
import { readyRecord, waitForData } from './helpers/records.mjs'
import { buildConfig, fileLoad, restartServer, startServer, target, toYaml } from './helpers/server.mjs'

const require = createRequire(import.meta.url)
const { createHash } = require('@deepstream/server/dist/src/utils/utils')

const TEST_TIMEOUT_MS = 15000
const FETCH_TIMEOUT_MS = 5000
const DELIVERY_TIMEOUT_MS = 2000
const MAX_BODY_BYTES = 4096
// The hash settings of deepstream's shipped config.yml.
const HASH = { algorithm: 'md5', iterations: 100, keyLength: 32 }

async function nodeHash (password) {
  const { hash, salt } = await createHash(password, HASH)
  return hash.toString('base64') + salt
}

const USERS = {
  ada: { password: await nodeHash('lovelace'), clientData: { favouriteColor: 'red' } },
  math: { password: await nodeHash('numbers') },
  reader: { password: await nodeHash('books') }
}
const ADA = { username: 'ada', password: 'lovelace' }

const PERMISSIONS_YML = `
record:
  "*":
    create: true
    read: true
    write: true
    delete: true
    listen: true
    notify: true
  "secret/*":
    create: false
    read: false
    write: false
    delete: false
    notify: false
event:
  "*":
    publish: true
    subscribe: true
    listen: true
  "private/*":
    publish: false
rpc:
  "*":
    provide: true
    request: true
  "forbidden":
    request: false
presence:
  "*":
    allow: true
`

const OVERRIDES = {
  auth: [{
    type: 'file',
    options: { path: 'users.json', hash: HASH.algorithm, iterations: HASH.iterations, keyLength: HASH.keyLength }
  }],
  permission: { type: 'config', options: { permissions: fileLoad('permissions.yml') } },
  files: { 'users.json': JSON.stringify(USERS), 'permissions.yml': PERMISSIONS_YML }
}

/**
 * Starts the target with OVERRIDES plus an `http` endpoint. The harness writes
 * a config with the WebSocket endpoint only, so the first start is halted, the
 * endpoint is added to its config.yml, and the server starts again from it.
 */
async function startWithHttpApi () {
  const first = await startServer(OVERRIDES)
  await first.halt()
  const config = buildConfig(first.port, OVERRIDES)
  config.httpServer.options.maxMessageSize = MAX_BODY_BYTES
  config.connectionEndpoints.push({
    type: 'http',
    options: {
      allowAuthData: true,
      enableAuthEndpoint: true,
      authPath: '/api/auth',
      postPath: '/api',
      getPath: '/api'
    }
  })
  await writeFile(join(first.folder, 'config.yml'), toYaml(config) + '\n')
  return restartServer(first)
}

/** Returns `result` with each `error` text replaced by a marker, after checking it is a non-empty string. */
function withoutErrorTexts (result) {
  if (!('error' in result)) {
    return result
  }
  assert.equal(typeof result.error, 'string', `error is not a string in ${JSON.stringify(result)}`)
  assert.ok(result.error.length > 0, `empty error in ${JSON.stringify(result)}`)
  return { ...result, error: '<text>' }
}

describe('http api', () => {
  let server = null
  let pool = null

  before(async () => {
    server = await startWithHttpApi()
  })
  after(async () => {
    if (server) {
      await server.stop()
    }
  })
  beforeEach(() => {
    pool = new ClientPool(server.url)
  })
  afterEach(() => {
    pool.closeAll()
  })

  /** Sends a request to `path` and returns `{ status, headers, text, json }`. */
  async function request (path, { method = 'POST', headers = { 'content-type': 'application/json' }, body } = {}) {
    const url = `http://127.0.0.1:${server.port}${path}`
    const response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
    const text = await response.text()
    let json = null
    try {
      json = JSON.parse(text)
    } catch {
      // A plain text response, which `text` contains.
    }
    return { status: response.status, headers: response.headers, text, json }
  }

  /** Posts a batch as `ada`, checks status 200 and returns the response with error texts replaced. */
  async function batch (body, credentials = { authData: ADA }) {
    const response = await request('/api', { body: JSON.stringify({ ...credentials, body }) })
    assert.equal(response.status, 200, `batch failed with ${response.status}: ${response.text}`)
    assert.match(response.headers.get('content-type'), /^application\/json/)
    return { result: response.json.result, body: response.json.body.map(withoutErrorTexts) }
  }

  /** Declares a test with the suite's time limit and the server output on failure. */
  function test (name, fn, options = {}) {
    it(name, { timeout: TEST_TIMEOUT_MS, ...options }, async () => {
      try {
        await fn()
      } catch (error) {
        if (error instanceof Error && server) {
          const lines = server.output().trimEnd().split('\n').slice(-40)
          error.message += `\n--- last ${lines.length} lines of server output ---\n${lines.join('\n')}`
        }
        throw error
      }
    })
  }

  test('mixed batch is PARTIAL_SUCCESS with a result per item', async () => {
    const provider = await pool.login({ username: 'math', password: 'numbers' })
    provider.rpc.provide('add', (data, response) => response.send(data.a + data.b))
    await waitForAck(provider, C.TOPIC.RPC, C.RPC_ACTION.PROVIDE, 'add')
    const subscriber = await pool.login({ username: 'reader', password: 'books' })
    const received = []
    subscriber.event.subscribe('news', (data) => received.push(data))
    await waitForAck(subscriber, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, 'news')

    const response = await batch([
      { topic: 'event', action: 'emit', eventName: 'news', data: { headline: 'hello' } },
      { topic: 'rpc', action: 'make', rpcName: 'add', data: { a: 1, b: 2 } },
      { topic: 'rpc', action: 'make', rpcName: 'nobody-provides-this' },
      { topic: 'record', action: 'read', recordName: 'http/missing' },
      { topic: 'record', action: 'head', recordName: 'http/missing' },
      { topic: 'presence', action: 'query', names: ['math', 'nobody'] }
    ])

    assert.deepEqual(response, {
      result: 'PARTIAL_SUCCESS',
      body: [
        { success: true },
        { data: 3, success: true },
        { errorTopic: 'rpc', errorEvent: C.RPC_ACTION.NO_RPC_PROVIDER, success: false, error: '<text>' },
        { errorTopic: 'record', errorEvent: C.RECORD_ACTION.RECORD_NOT_FOUND, success: false, error: '<text>' },
        { version: -1, success: true },
        { users: { math: true, nobody: false }, success: true }
      ]
    })
    await waitFor(() => received.length === 1, DELIVERY_TIMEOUT_MS, 'the emitted event')
    assert.deepEqual(received, [{ headline: 'hello' }])
  })

  test('presence query of everyone lists online users', async () => {
    await pool.login({ username: 'math', password: 'numbers' })

    const response = await batch([{ topic: 'presence', action: 'query' }])

    assert.deepEqual(response, { result: 'SUCCESS', body: [{ users: ['math'], success: true }] })
  })

  test('rpc error and record write, read, head and delete', async () => {
    const provider = await pool.login({ username: 'math', password: 'numbers' })
    provider.rpc.provide('divide', (data, response) => response.error('division by zero'))
    await waitForAck(provider, C.TOPIC.RPC, C.RPC_ACTION.PROVIDE, 'divide')
    const watcher = await pool.login({ username: 'reader', password: 'books' })
    const record = await readyRecord(watcher, 'http/book')

    const written = await batch([
      { topic: 'record', action: 'write', recordName: 'http/book', data: { title: 'Emma' } },
      { topic: 'rpc', action: 'make', rpcName: 'divide', data: [1, 0] }
    ])
    const read = await batch([
      { topic: 'record', action: 'read', recordName: 'http/book' },
      { topic: 'record', action: 'head', recordName: 'http/book' }
    ])
    const patched = await batch([
      { topic: 'record', action: 'write', recordName: 'http/book', path: 'author', data: 'Austen', version: 2 }
    ])
    await waitForData(record, { title: 'Emma', author: 'Austen' })
    const deleted = await batch([{ topic: 'record', action: 'delete', recordName: 'http/book' }])
    const gone = await batch([{ topic: 'record', action: 'read', recordName: 'http/book' }])

    assert.deepEqual(written, {
      result: 'PARTIAL_SUCCESS',
      body: [{ success: true }, { errorTopic: 'rpc', error: '<text>', success: false }]
    })
    assert.deepEqual(read, {
      result: 'SUCCESS',
      body: [{ version: 1, data: { title: 'Emma' }, success: true }, { version: 1, success: true }]
    })
    assert.deepEqual(patched, { result: 'SUCCESS', body: [{ success: true }] })
    assert.deepEqual(deleted, { result: 'SUCCESS', body: [{ success: true }] })
    assert.deepEqual(gone.body[0].errorEvent, C.RECORD_ACTION.RECORD_NOT_FOUND)
  })

  test('list write and notify', async () => {
    const written = await batch([{ topic: 'list', action: 'write', listName: 'http/todo', data: ['a', 'b'] }])
    const read = await batch([
      { topic: 'list', action: 'read', listName: 'http/todo' },
      { topic: 'record', action: 'notify', recordNames: ['http/todo'] }
    ])

    assert.deepEqual(written, { result: 'SUCCESS', body: [{ success: true }] })
    assert.deepEqual(read, {
      result: 'SUCCESS',
      body: [{ version: 1, data: ['a', 'b'], success: true }, { success: true }]
    })
  })

  test('version conflict reports current version', async () => {
    await batch([{ topic: 'record', action: 'write', recordName: 'http/conflict', data: { v: 1 } }])

    const response = await batch([
      { topic: 'record', action: 'write', recordName: 'http/conflict', data: { v: 2 }, version: 1 }
    ])

    assert.deepEqual(response, {
      result: 'FAILURE',
      body: [{
        errorTopic: 'record',
        errorEvent: C.RECORD_ACTION.VERSION_EXISTS,
        success: false,
        error: '<text>',
        currentVersion: 1,
        currentData: { v: 1 }
      }]
    })
  })

  test('denied items fail with MESSAGE_DENIED', async () => {
    const response = await batch([
      { topic: 'record', action: 'read', recordName: 'secret/plans' },
      { topic: 'record', action: 'write', recordName: 'secret/plans', data: {} },
      { topic: 'rpc', action: 'make', rpcName: 'forbidden' },
      { topic: 'event', action: 'emit', eventName: 'private/news' },
      { topic: 'event', action: 'emit', eventName: 'public/news' }
    ])

    assert.deepEqual(response, {
      result: 'PARTIAL_SUCCESS',
      body: [
        { errorTopic: 'record', errorEvent: C.RECORD_ACTION.MESSAGE_DENIED, success: false, action: C.RECORD_ACTION.READ, error: '<text>' },
        { errorTopic: 'record', errorEvent: C.RECORD_ACTION.MESSAGE_DENIED, success: false, action: C.RECORD_ACTION.CREATEANDUPDATE, error: '<text>' },
        { errorTopic: 'rpc', errorEvent: C.RPC_ACTION.MESSAGE_DENIED, success: false, action: C.RPC_ACTION.REQUEST, error: '<text>' },
        { success: false, error: '<text>', errorEvent: 'MESSAGE_DENIED', errorAction: 'emit', errorTopic: 'event' },
        { success: true }
      ]
    })
  })

  test('auth endpoint takes credentials', async () => {
    const accepted = await request('/api/auth', { body: JSON.stringify(ADA) })
    const rejected = await request('/api/auth', { body: JSON.stringify({ username: 'ada', password: 'wrong' }) })

    assert.equal(accepted.status, 200, accepted.text)
    assert.deepEqual(accepted.json.clientData, { favouriteColor: 'red' })
    assert.equal(rejected.status, 401, rejected.text)
    assert.match(rejected.headers.get('content-type'), /^text\/plain/)
    assert.ok(!rejected.text.includes('wrong'), rejected.text)
    if (target() === 'node') {
      assert.equal(accepted.json.token, undefined, 'deepstream 7.0.2 issues no token of its own')
      return
    }
    const viaToken = await batch([{ topic: 'presence', action: 'query' }], { token: accepted.json.token })
    assert.equal(viaToken.result, 'SUCCESS')
  })

  test('wrong credentials get 401', async () => {
    const response = await request('/api', {
      body: JSON.stringify({ authData: { username: 'ada', password: 'wrong' }, body: [{ topic: 'presence', action: 'query' }] })
    })
    const withoutCredentials = await request('/api', {
      body: JSON.stringify({ body: [{ topic: 'presence', action: 'query' }] })
    })

    assert.equal(response.status, 401, response.text)
    assert.equal(withoutCredentials.status, 401, withoutCredentials.text)
  })

  test('bad requests get 4xx', async () => {
    const emit = { topic: 'event', action: 'emit', eventName: 'news' }
    // Requests with a valid shape carry valid credentials: deepstream checks
    // them before the items.
    const withItems = (...items) => JSON.stringify({ authData: ADA, body: items })
    const cases = [
      ['malformed JSON', '{"body": [', 400],
      ['a string', '"body"', 400],
      ['no body', '{}', 400],
      ['body not a list', '{"body": {}}', 400],
      ['empty list', '{"body": []}', 400],
      ['unknown topic', withItems(emit, { topic: 'mail', action: 'send' }), 400],
      ['unknown action', withItems({ topic: 'event', action: 'fly', eventName: 'a' }), 400],
      ['missing field', withItems({ topic: 'event', action: 'emit' }), 400],
      ['empty name', withItems({ topic: 'event', action: 'emit', eventName: '' }), 400],
      ['extra field', withItems({ topic: 'record', action: 'read', recordName: 'a', data: {} }), 400],
      ['record data not an object', withItems({ topic: 'record', action: 'write', recordName: 'a', data: 5 }), 400],
      ['version below -1', withItems({ topic: 'record', action: 'write', recordName: 'a', data: {}, version: -2 }), 400],
      ['authData not an object', JSON.stringify({ authData: 'ada', body: [emit] }), 400],
      ['empty token', JSON.stringify({ token: '', body: [emit] }), 400],
      ['oversized', withItems({ ...emit, data: 'x'.repeat(MAX_BODY_BYTES) }), target() === 'node' ? 400 : 413]
    ]
    for (const [name, body, status] of cases) {
      const response = await request('/api', { body })
      assert.equal(response.status, status, `${name}: ${response.text}`)
      assert.match(response.headers.get('content-type'), /^text\/plain/, name)
      assert.ok(response.text.trim().length > 0, `${name}: empty message`)
    }

    const unknownField = await request('/api', { body: JSON.stringify({ authData: ADA, authdata: {}, body: [emit] }) })
    assert.equal(unknownField.status, target() === 'node' ? 200 : 400, unknownField.text)
    const textBody = await request('/api', { headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ body: [emit] }) })
    assert.equal(textBody.status, 415, textBody.text)
  })

  test('cors preflight allows POST with JSON', async () => {
    const response = await request('/api', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type'
      }
    })

    assert.equal(response.status, 204, response.text)
    assert.equal(response.headers.get('access-control-allow-origin'), '*')
    assert.match(response.headers.get('access-control-allow-methods'), /POST/)
    assert.match(response.headers.get('access-control-allow-headers'), /Content-Type/)
  })
})
