// Event subscribe, emit and unsubscribe between official clients.

import assert from 'node:assert/strict'
import { describe } from 'node:test'
import { C, describeErrors, sleep, waitFor, waitForAck } from './helpers/clients.mjs'
import { serverSuite } from './helpers/suite.mjs'

const DELIVERY_TIMEOUT_MS = 2000

/** Subscribes `client` to `name`, waits for the server's ack and returns the received data list. */
async function subscribe (client, name) {
  const received = []
  client.event.subscribe(name, (data) => received.push(data))
  await waitForAck(client, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, name)
  return received
}

function emitsReceived (client, name) {
  return client.tap.received.filter((message) =>
    message.topic === C.TOPIC.EVENT && message.action === C.EVENT_ACTION.EMIT && message.name === name)
}

describe('events', () => {
  const suite = serverSuite()

  suite.test('emit reaches subscriber on other client', async () => {
    const emitter = await suite.pool.login({ username: 'ada' })
    const subscriber = await suite.pool.login({ username: 'bob' })
    const received = await subscribe(subscriber, 'events/basic')

    emitter.event.emit('events/basic', { greeting: 'hello' })

    await waitFor(() => received.length === 1, DELIVERY_TIMEOUT_MS, 'the subscriber to receive the event')
    assert.deepEqual(received, [{ greeting: 'hello' }])
    assert.deepEqual(emitter.errors, [], describeErrors(emitter))
    assert.deepEqual(subscriber.errors, [], describeErrors(subscriber))
  })

  suite.test('emitter gets no echo from server', async () => {
    const emitter = await suite.pool.login({ username: 'ada' })
    const other = await suite.pool.login({ username: 'bob' })
    const ownCallbacks = await subscribe(emitter, 'events/echo')
    const otherReceived = await subscribe(other, 'events/echo')

    emitter.event.emit('events/echo', 'once')
    // An event emitted afterwards on another name shows that the server has
    // handled the first one by the time it arrives.
    const sentinel = await subscribe(emitter, 'events/echo-sentinel')
    other.event.emit('events/echo-sentinel', 'done')
    await waitFor(() => sentinel.length === 1, DELIVERY_TIMEOUT_MS, 'the sentinel event')
    await waitFor(() => otherReceived.length === 1, DELIVERY_TIMEOUT_MS, 'the other client to receive the event')

    // The client calls its own subscribers locally, so a server echo would be a second call.
    assert.deepEqual(ownCallbacks, ['once'])
    assert.equal(emitsReceived(emitter, 'events/echo').length, 0, 'the server sent the event back to its emitter')
    assert.deepEqual(otherReceived, ['once'])
  })

  suite.test('unsubscribe stops delivery', async () => {
    const emitter = await suite.pool.login({ username: 'ada' })
    const subscriber = await suite.pool.login({ username: 'bob' })
    const received = await subscribe(subscriber, 'events/unsubscribe')
    const sentinel = await subscribe(subscriber, 'events/unsubscribe-sentinel')
    emitter.event.emit('events/unsubscribe', 'before')
    await waitFor(() => received.length === 1, DELIVERY_TIMEOUT_MS, 'the event before unsubscribing')

    subscriber.event.unsubscribe('events/unsubscribe')
    await waitForAck(subscriber, C.TOPIC.EVENT, C.EVENT_ACTION.UNSUBSCRIBE, 'events/unsubscribe')
    emitter.event.emit('events/unsubscribe', 'after')
    emitter.event.emit('events/unsubscribe-sentinel', 'done')

    await waitFor(() => sentinel.length === 1, DELIVERY_TIMEOUT_MS, 'the sentinel event')
    assert.deepEqual(received, ['before'])
    assert.equal(emitsReceived(subscriber, 'events/unsubscribe').length, 1, 'the server sent an event after unsubscribe')
    assert.deepEqual(subscriber.errors, [], describeErrors(subscriber))
  })

  suite.test('subscriptions in one tick share one bulk message', async () => {
    const emitter = await suite.pool.login({ username: 'ada' })
    const subscriber = await suite.pool.login({ username: 'bob' })
    const names = ['events/bulk-1', 'events/bulk-2', 'events/bulk-3']
    const received = new Map(names.map((name) => [name, []]))

    for (const name of names) {
      subscriber.event.subscribe(name, (data) => received.get(name).push(data))
    }
    await waitForAck(subscriber, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, names[0])

    const subscribes = subscriber.tap.sent.filter((message) =>
      message.topic === C.TOPIC.EVENT && message.action === C.EVENT_ACTION.SUBSCRIBE)
    assert.equal(subscribes.length, 1, `expected one SUBSCRIBE message, sent ${subscribes.length}`)
    assert.deepEqual(subscribes[0].names, names)
    const acks = subscriber.tap.received.filter((message) =>
      message.isAck && message.topic === C.TOPIC.EVENT && message.action === C.EVENT_ACTION.SUBSCRIBE)
    assert.equal(acks.length, 1, 'a bulk subscription is acknowledged once')
    assert.equal(acks[0].correlationId, subscribes[0].correlationId)

    for (const name of names) {
      emitter.event.emit(name, name)
    }
    await waitFor(() => names.every((name) => received.get(name).length === 1), DELIVERY_TIMEOUT_MS,
      'an event on every name of the bulk subscription')
    for (const name of names) {
      assert.deepEqual(received.get(name), [name])
    }
    assert.deepEqual(subscriber.errors, [], describeErrors(subscriber))
  })

  suite.test('payloads of every JSON type arrive unchanged', async () => {
    const emitter = await suite.pool.login({ username: 'ada' })
    const subscriber = await suite.pool.login({ username: 'bob' })
    const received = await subscribe(subscriber, 'events/payloads')
    const payloads = [
      { nested: { list: [1, 'two', { three: 3 }] }, flag: false },
      42,
      -1.5,
      0,
      'text',
      '',
      'ünïcødé ✓ 漢字',
      true,
      null,
      [1, 2, 3],
      undefined
    ]

    for (const payload of payloads) {
      emitter.event.emit('events/payloads', payload)
    }

    await waitFor(() => received.length === payloads.length, DELIVERY_TIMEOUT_MS,
      `${payloads.length} events (got ${received.length})`)
    assert.deepEqual(received, payloads)
    // An emit without data carries no data field at all.
    const last = emitsReceived(subscriber, 'events/payloads').at(-1)
    assert.equal(last.data, undefined)
    assert.deepEqual(subscriber.errors, [], describeErrors(subscriber))
  })

  suite.test('one emit reaches many subscribers', async () => {
    const emitter = await suite.pool.login({ username: 'ada' })
    const subscribers = []
    for (let i = 0; i < 20; i++) {
      subscribers.push(await suite.pool.login({ username: `reader-${i}` }))
    }
    const received = await Promise.all(subscribers.map((client) => subscribe(client, 'events/fan-out')))

    emitter.event.emit('events/fan-out', { n: 1 })

    await waitFor(() => received.every((list) => list.length >= 1), DELIVERY_TIMEOUT_MS,
      'every subscriber to receive the event')
    await sleep(100)
    for (const list of received) {
      assert.deepEqual(list, [{ n: 1 }])
    }
  })

  suite.test('two subscribers on one client share one subscription', async () => {
    const emitter = await suite.pool.login({ username: 'ada' })
    const subscriber = await suite.pool.login({ username: 'bob' })
    const first = await subscribe(subscriber, 'events/shared')
    const second = []
    subscriber.event.subscribe('events/shared', (data) => second.push(data))

    emitter.event.emit('events/shared', 'x')

    await waitFor(() => first.length === 1 && second.length === 1, DELIVERY_TIMEOUT_MS, 'both callbacks')
    assert.equal(emitsReceived(subscriber, 'events/shared').length, 1, 'the server sent the event once per connection')
  })
})
