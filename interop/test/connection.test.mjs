// Connection handshake, login, heartbeats and the timeouts that close idle
// sockets.

import assert from 'node:assert/strict'
import { describe } from 'node:test'
import { C, describeErrors, sleep, waitFor, waitForAck } from './helpers/clients.mjs'
import { CONNECTION_ACTION, RawSocket, TOPIC } from './helpers/raw.mjs'
import { serverSuite } from './helpers/suite.mjs'

const HEARTBEAT_MS = 200

describe('connection with short heartbeat', () => {
  // Every client here must ping at least as often as the server expects.
  const suite = serverSuite(
    { endpoint: { heartbeatInterval: HEARTBEAT_MS, unauthenticatedClientTimeout: 60000 } },
    { heartbeatInterval: HEARTBEAT_MS }
  )

  suite.test('login with username opens connection', async () => {
    const client = suite.pool.create()
    const states = []
    client.on('connectionStateChanged', (state) => states.push(state))

    await client.login({ username: 'ada' })

    assert.equal(client.getConnectionState(), C.CONNECTION_STATE.OPEN)
    assert.deepEqual(states.slice(-1), [C.CONNECTION_STATE.OPEN])
    assert.ok(states.includes(C.CONNECTION_STATE.AWAITING_AUTHENTICATION), `states: ${states}`)
    assert.deepEqual(client.errors, [], describeErrors(client))
  })

  suite.test('login without username opens connection', async () => {
    const client = suite.pool.create()
    await client.login()

    assert.equal(client.getConnectionState(), C.CONNECTION_STATE.OPEN)
    assert.deepEqual(client.errors, [], describeErrors(client))
  })

  suite.test('anonymous client can use events', async () => {
    const anonymous = await suite.pool.login()
    const named = await suite.pool.login({ username: 'ada' })
    const received = []
    anonymous.event.subscribe('connection/anonymous', (data) => received.push(data))
    await waitForAck(anonymous, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, 'connection/anonymous')

    named.event.emit('connection/anonymous', 'hello')

    await waitFor(() => received.length === 1, 2000, 'the anonymous client to receive the event')
    assert.deepEqual(received, ['hello'])
  })

  suite.test('heartbeat keeps connection open', async () => {
    const sender = await suite.pool.login({ username: 'ada' })
    const receiver = await suite.pool.login({ username: 'bob' })
    const states = []
    sender.on('connectionStateChanged', (state) => states.push(state))
    receiver.on('connectionStateChanged', (state) => states.push(state))

    await sleep(HEARTBEAT_MS * 8)

    assert.equal(sender.getConnectionState(), C.CONNECTION_STATE.OPEN)
    assert.equal(receiver.getConnectionState(), C.CONNECTION_STATE.OPEN)
    assert.deepEqual(states, [], 'no connection state change while idle')
    const pongs = sender.tap.received.filter((message) =>
      message.topic === C.TOPIC.CONNECTION && message.action === C.CONNECTION_ACTION.PONG)
    assert.ok(pongs.length >= 4, `expected a PONG for each PING, got ${pongs.length} PONGs`)

    // The connection still carries messages after the idle period.
    const received = []
    receiver.event.subscribe('connection/after-idle', (data) => received.push(data))
    await waitForAck(receiver, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, 'connection/after-idle')
    sender.event.emit('connection/after-idle', 1)
    await waitFor(() => received.length === 1, 2000, 'the event after the idle period')
    assert.deepEqual(sender.errors, [], describeErrors(sender))
    assert.deepEqual(receiver.errors, [], describeErrors(receiver))
  })

  suite.test('silent socket after challenge is closed', async () => {
    const raw = await new RawSocket(suite.server.url).open()
    try {
      await raw.challenge()
      const challengedAt = Date.now()

      const closed = await raw.waitForClose(HEARTBEAT_MS * 10)

      // deepstream checks every interval and closes once more than two
      // intervals passed without a message from the socket.
      const silence = closed.at - challengedAt
      assert.ok(silence >= HEARTBEAT_MS * 1.5, `closed after only ${silence} ms of silence`)
      assert.ok(silence <= HEARTBEAT_MS * 5 + 500, `closed after ${silence} ms of silence`)
    } finally {
      raw.terminate()
    }
  })

  suite.test('pinging socket is kept open', async () => {
    // Guard for the test above: the same socket stays open while it pings.
    const raw = await new RawSocket(suite.server.url).open()
    try {
      await raw.challenge()
      for (let i = 0; i < 8; i++) {
        raw.send({ topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.PING })
        await sleep(HEARTBEAT_MS / 2)
      }
      assert.ok(raw.isOpen(), `closed: ${JSON.stringify(raw.closed)}`)
    } finally {
      raw.terminate()
    }
  })
})

describe('connection with short unauthenticated timeout', () => {
  const UNAUTHENTICATED_TIMEOUT_MS = 500
  const suite = serverSuite({
    endpoint: { unauthenticatedClientTimeout: UNAUTHENTICATED_TIMEOUT_MS, heartbeatInterval: 20000 }
  })

  suite.test('silent socket is closed after timeout', async () => {
    const raw = await new RawSocket(suite.server.url).open()
    try {
      const closed = await raw.waitForClose(UNAUTHENTICATED_TIMEOUT_MS + 3000)

      const lifetime = closed.at - raw.openedAt
      assert.ok(lifetime >= UNAUTHENTICATED_TIMEOUT_MS - 100, `closed after only ${lifetime} ms`)
      assert.ok(lifetime <= UNAUTHENTICATED_TIMEOUT_MS + 2000, `closed after ${lifetime} ms`)
      // deepstream sends CONNECTION AUTHENTICATION_TIMEOUT before it closes the socket.
      assert.deepEqual(
        raw.messages.map(({ topic, action }) => ({ topic, action })),
        [{ topic: TOPIC.CONNECTION, action: CONNECTION_ACTION.AUTHENTICATION_TIMEOUT }],
        raw.describeMessages()
      )
    } finally {
      raw.terminate()
    }
  })

  suite.test('client that never logs in sees AUTHENTICATION_TIMEOUT', async () => {
    const client = suite.pool.create()

    await waitFor(
      () => client.getConnectionState() === C.CONNECTION_STATE.AUTHENTICATION_TIMEOUT,
      UNAUTHENTICATED_TIMEOUT_MS + 3000,
      `connection state AUTHENTICATION_TIMEOUT (state is ${client.getConnectionState()})`
    )
    assert.ok(
      client.errors.some((error) => error.event === 'AUTHENTICATION_TIMEOUT' && error.topic === 'CONNECTION'),
      describeErrors(client)
    )
  })

  suite.test('logged-in client outlives timeout', async () => {
    const client = await suite.pool.login({ username: 'ada' })

    await sleep(UNAUTHENTICATED_TIMEOUT_MS * 3)

    assert.equal(client.getConnectionState(), C.CONNECTION_STATE.OPEN)
    assert.deepEqual(client.errors, [], describeErrors(client))
  })
})
