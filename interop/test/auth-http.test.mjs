// HTTP webhook authentication with the official client: each login is posted
// to a webhook that this test runs on 127.0.0.1, which accepts one user and
// rejects the others.
//
// deepstream 7.0.2 sets the expectations:
// - The webhook receives a JSON POST of `{ connectionData, authData }`, with
//   the client's address and WebSocket request headers, the client's auth
//   data unchanged, and the `promoteToHeader` fields as request headers.
// - A permitted status logs the client in under the response's `id`, with its
//   `clientData` for the client and its `serverData` for permission rules.
// - Any other status rejects the login with the response's `clientData`, or
//   `{ error: <text> }` for a text body.
// - A retry status makes the server post again after `retryInterval`, and a
//   login that runs out of retries is rejected with
//   `{ error: 'AUTH_RETRY_ATTEMPTS_EXCEEDED' }`.
//
// Responses with `isValid` are avoided: deepstream 7.0.2 lets `isValid: true`
// in the body of a rejected login log the client in, and our server does not.

import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, describe } from 'node:test'
import { C, describeErrors, settle, waitFor, waitForAck } from './helpers/clients.mjs'
import { fileLoad } from './helpers/server.mjs'
import { serverSuite } from './helpers/suite.mjs'

const HOST = '127.0.0.1'
const LOGIN_TIMEOUT_MS = 5000
const DELIVERY_TIMEOUT_MS = 2000
const RETRY_INTERVAL_MS = 50
const RETRY_ATTEMPTS = 2
const MAX_WEBHOOK_BODY_BYTES = 64 * 1024

const ADA = { username: 'ada', password: 'lovelace', token: 'ada-token' }
// The webhook names the user differently from the auth data, so a rule that
// matches user.id 'user-ada' shows that the server took the name from the response.
const ADA_ID = 'user-ada'
const ADA_CLIENT_DATA = { favouriteColor: 'red' }
const ADA_SERVER_DATA = { role: 'admin' }

// Only a user named by the webhook with serverData role admin may emit on
// admin/*, so events show which id and serverData the server kept.
const PERMISSIONS_YML = `
record:
  "*":
    create: true
    read: true
    write: true
    delete: true
    listen: true
    notify: true
event:
  "*":
    publish: true
    subscribe: true
    listen: true
  "admin/$user":
    publish: "user.id === $user && user.data.role === 'admin'"
rpc:
  "*":
    provide: true
    request: true
presence:
  "*":
    allow: true
`

/**
 * A webhook on a free port of 127.0.0.1 that records every request. It
 * accepts ADA. It replies to every login of 'flaky' first with the retry
 * status 503 and then with a text body naming the user, and always replies
 * 503 to 'down'. It rejects the user 'texty' with a text body and everyone
 * else with clientData.
 */
class Webhook {
  constructor () {
    this.requests = []
    this.server = createServer((request, response) => this.handle(request, response))
    // A test process that fails before `close` must still exit.
    this.server.unref()
  }

  async start () {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(0, HOST, resolve)
    })
    this.url = `http://${HOST}:${this.server.address().port}/login`
  }

  close () {
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(resolve))
  }

  /** The requests whose auth data names `username`, in arrival order. */
  requestsFor (username) {
    return this.requests.filter((request) => request.body?.authData?.username === username)
  }

  async handle (request, response) {
    const chunks = []
    let size = 0
    for await (const chunk of request) {
      size += chunk.length
      if (size > MAX_WEBHOOK_BODY_BYTES) {
        reply(response, 413, 'text/plain', 'request body too large')
        return
      }
      chunks.push(chunk)
    }
    const text = Buffer.concat(chunks).toString('utf8')
    let body
    try {
      body = JSON.parse(text)
    } catch (error) {
      body = { invalidJson: text, error: error.message }
    }
    this.requests.push({ method: request.method, url: request.url, headers: request.headers, body })

    const authData = body?.authData ?? {}
    if (authData.username === ADA.username && authData.password === ADA.password) {
      reply(response, 200, 'application/json', JSON.stringify({
        id: ADA_ID, clientData: ADA_CLIENT_DATA, serverData: ADA_SERVER_DATA
      }))
    } else if (authData.username === 'flaky') {
      // Odd requests get the retry status, so every login needs one retry.
      if (this.requestsFor('flaky').length % 2 === 1) {
        reply(response, 503, 'text/plain', 'try again')
      } else {
        reply(response, 200, 'text/plain', 'flaky')
      }
    } else if (authData.username === 'down') {
      reply(response, 503, 'text/plain', 'unavailable')
    } else if (authData.username === 'texty') {
      reply(response, 401, 'text/plain', 'no such user')
    } else {
      reply(response, 403, 'application/json', JSON.stringify({ clientData: { reason: 'wrong credentials' } }))
    }
  }
}

function reply (response, status, contentType, body) {
  response.writeHead(status, { 'content-type': contentType })
  response.end(body)
}

const webhook = new Webhook()
await webhook.start()

describe('http authentication', () => {
  const suite = serverSuite({
    auth: [{
      type: 'http',
      options: {
        endpointUrl: webhook.url,
        permittedStatusCodes: [200],
        requestTimeout: 2000,
        retryStatusCodes: [503],
        retryAttempts: RETRY_ATTEMPTS,
        retryInterval: RETRY_INTERVAL_MS,
        promoteToHeader: ['token']
      }
    }],
    permission: { type: 'config', options: { permissions: fileLoad('permissions.yml') } },
    files: { 'permissions.yml': PERMISSIONS_YML }
  })

  after(() => webhook.close())

  /** Logs a new client in with `authData` and settles to `{ ok, value }` or `{ ok, error }`. */
  function tryLogin (authData) {
    const client = suite.pool.create()
    return settle(client.login(authData), LOGIN_TIMEOUT_MS, `login of ${authData.username}`)
  }

  suite.test('accepted user gets clientData', async () => {
    const client = suite.pool.create()

    const clientData = await client.login(ADA)

    assert.deepEqual(clientData, ADA_CLIENT_DATA)
    assert.equal(client.getConnectionState(), C.CONNECTION_STATE.OPEN)
    assert.deepEqual(client.errors, [], describeErrors(client))
  })

  suite.test('webhook receives authData', async () => {
    const earlier = webhook.requestsFor(ADA.username).length
    const client = suite.pool.create()

    await client.login(ADA)

    const requests = webhook.requestsFor(ADA.username)
    assert.equal(requests.length, earlier + 1, 'one login should make one webhook request')
    const request = requests.at(-1)
    assert.equal(request.method, 'POST')
    assert.equal(request.url, '/login')
    assert.match(request.headers['content-type'], /^application\/json/)
    assert.equal(request.headers.token, ADA.token, 'promoteToHeader did not send the token as a header')
    assert.deepEqual(request.body.authData, ADA)
    // connectionData describes the client's WebSocket connection to deepstream.
    const { connectionData } = request.body
    assert.equal(connectionData?.remoteAddress, HOST)
    assert.equal(connectionData.headers?.upgrade, 'websocket')
    assert.equal(connectionData.headers.host, `${HOST}:${suite.server.port}`)
  })

  suite.test('serverData and id reach rules', async () => {
    const ada = await suite.pool.login(ADA)
    // A second connection of the same user: the server sends an event to
    // every subscribed connection but the emitting one.
    const subscriber = await suite.pool.login(ADA)
    const received = { own: [], other: [] }
    subscriber.event.subscribe(`admin/${ADA_ID}`, (data) => received.own.push(data))
    await waitForAck(subscriber, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, `admin/${ADA_ID}`)
    subscriber.event.subscribe('admin/ada', (data) => received.other.push(data))
    await waitForAck(subscriber, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, 'admin/ada')

    // The rule needs the webhook's id, not the username of the auth data.
    ada.event.emit('admin/ada', 'as username')
    await waitFor(() => ada.errors.length === 1, DELIVERY_TIMEOUT_MS, 'the denial of admin/ada')
    ada.event.emit(`admin/${ADA_ID}`, 'as webhook id')

    await waitFor(() => received.own.length === 1, DELIVERY_TIMEOUT_MS, `the event on admin/${ADA_ID}`)
    assert.deepEqual(received, { own: ['as webhook id'], other: [] })
    assert.deepEqual(ada.errors.map(({ topic, event }) => `${topic}/${event}`), ['EVENT/MESSAGE_DENIED'])
  })

  suite.test('wrong password is rejected', async () => {
    const earlier = webhook.requestsFor(ADA.username).length

    const result = await tryLogin({ ...ADA, password: 'wrong' })

    assert.deepEqual(result, { ok: false, error: { reason: { reason: 'wrong credentials' } } })
    const requests = webhook.requestsFor(ADA.username)
    assert.equal(requests.length, earlier + 1)
    assert.deepEqual(requests.at(-1).body.authData, { ...ADA, password: 'wrong' })
  })

  suite.test('unknown user is rejected', async () => {
    const result = await tryLogin({ username: 'eve', password: 'lovelace' })

    assert.deepEqual(result, { ok: false, error: { reason: { reason: 'wrong credentials' } } })
  })

  suite.test('text rejection becomes error data', async () => {
    const result = await tryLogin({ username: 'texty', password: 'x' })

    assert.deepEqual(result, { ok: false, error: { reason: { error: 'no such user' } } })
  })

  suite.test('retry status is posted again', async () => {
    const startedAt = Date.now()

    const result = await tryLogin({ username: 'flaky' })

    // A text body of a permitted status is the user name, and there is no clientData.
    assert.deepEqual(result, { ok: true, value: null })
    assert.equal(webhook.requestsFor('flaky').length, 2, 'the server did not post again after 503')
    assert.ok(Date.now() - startedAt >= RETRY_INTERVAL_MS, 'the retry did not wait for retryInterval')
  })

  suite.test('exhausted retries reject login', async () => {
    const result = await tryLogin({ username: 'down' })

    assert.deepEqual(result, { ok: false, error: { reason: { error: 'AUTH_RETRY_ATTEMPTS_EXCEEDED' } } })
    // The first request and each retry.
    assert.equal(webhook.requestsFor('down').length, 1 + RETRY_ATTEMPTS)
  })

  suite.test('rejected client can log in again', async () => {
    const client = suite.pool.create()
    await assert.rejects(client.login({ ...ADA, password: 'wrong' }))

    const clientData = await client.login(ADA)

    assert.deepEqual(clientData, ADA_CLIENT_DATA)
  })
})
