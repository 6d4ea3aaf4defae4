// Event listening: providers learn about subscriptions that match a pattern,
// accept or reject them, and get SUBSCRIPTION_FOR_PATTERN_REMOVED when the
// last subscriber leaves.

import assert from 'node:assert/strict'
import { describe } from 'node:test'
import { C, describeErrors, sleep, waitFor, waitForAck } from './helpers/clients.mjs'
import { serverSuite } from './helpers/suite.mjs'

const ASK_TIMEOUT_MS = 3000
// Time in which a message that should not come would have arrived.
const QUIET_MS = 300

/**
 * Makes `client` listen on `pattern` and waits for the server's ack. Each
 * SUBSCRIPTION_FOR_PATTERN_FOUND runs `decide(subscription, response)`, which
 * accepts by default. The returned record lists each request and each stop.
 */
async function listen (client, pattern, decide = (subscription, response) => response.accept()) {
  const record = { asked: [], stopped: [] }
  client.event.listen(pattern, (subscription, response) => {
    record.asked.push(subscription)
    response.onStop((name) => record.stopped.push(name))
    decide(subscription, response)
  })
  await waitForAck(client, C.TOPIC.EVENT, C.EVENT_ACTION.LISTEN, pattern)
  return record
}

async function subscribe (client, name) {
  const received = []
  client.event.subscribe(name, (data) => received.push(data))
  await waitForAck(client, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, name)
  return received
}

async function unsubscribe (client, name) {
  client.event.unsubscribe(name)
  await waitForAck(client, C.TOPIC.EVENT, C.EVENT_ACTION.UNSUBSCRIBE, name)
}

describe('event listening', () => {
  const suite = serverSuite({ listen: { responseTimeout: 500 } })

  suite.test('provider told of existing subscription', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const provider = await suite.pool.login({ username: 'feed' })
    await subscribe(subscriber, 'existing/1')

    const record = await listen(provider, 'existing/.*')

    await waitFor(() => record.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')
    assert.deepEqual(record.asked, ['existing/1'])
    assert.deepEqual(provider.errors, [], describeErrors(provider))
  })

  suite.test('provider told of new subscription', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const provider = await suite.pool.login({ username: 'feed' })
    const record = await listen(provider, 'fresh/.*')

    await subscribe(subscriber, 'fresh/1')
    await subscribe(subscriber, 'other/1')

    await waitFor(() => record.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')
    await sleep(QUIET_MS)
    assert.deepEqual(record.asked, ['fresh/1'], 'asked only about names matching its pattern')
  })

  suite.test('accepting provider can feed subscriber', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const provider = await suite.pool.login({ username: 'feed' })
    await listen(provider, 'prices/.*', (subscription, response) => {
      response.accept()
      provider.event.emit(subscription, { price: 10 })
    })

    const received = await subscribe(subscriber, 'prices/acme')

    await waitFor(() => received.length === 1, ASK_TIMEOUT_MS, 'the provider\'s event')
    assert.deepEqual(received, [{ price: 10 }])
  })

  suite.test('accepted provider stopped after last unsubscribe', async () => {
    const first = await suite.pool.login({ username: 'ada' })
    const second = await suite.pool.login({ username: 'bob' })
    const provider = await suite.pool.login({ username: 'feed' })
    const record = await listen(provider, 'stop/.*')
    await subscribe(first, 'stop/1')
    await subscribe(second, 'stop/1')
    await waitFor(() => record.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')

    await unsubscribe(first, 'stop/1')
    await sleep(QUIET_MS)
    assert.deepEqual(record.stopped, [], 'stopped while a subscriber remained')

    await unsubscribe(second, 'stop/1')
    await waitFor(() => record.stopped.length === 1, ASK_TIMEOUT_MS, 'the provider\'s onStop callback')
    assert.deepEqual(record.stopped, ['stop/1'])
    assert.deepEqual(record.asked, ['stop/1'], 'asked once for a name with two subscribers')
  })

  suite.test('rejected subscription goes to next provider', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const providerA = await suite.pool.login({ username: 'feed-a' })
    const providerB = await suite.pool.login({ username: 'feed-b' })
    // The server may ask either provider first: the first one asked rejects.
    const decisions = []
    const decide = (providerName) => (subscription, response) => {
      if (decisions.length === 0) {
        decisions.push({ providerName, decision: 'reject' })
        response.reject()
      } else {
        decisions.push({ providerName, decision: 'accept' })
        response.accept()
      }
    }
    const recordA = await listen(providerA, 'choice/.*', decide('a'))
    const recordB = await listen(providerB, 'choice/.*', decide('b'))

    await subscribe(subscriber, 'choice/1')

    await waitFor(() => decisions.length === 2, ASK_TIMEOUT_MS, `a second provider to be asked (${JSON.stringify(decisions)})`)
    await sleep(QUIET_MS)
    assert.equal(decisions.length, 2, `asked again after an accept: ${JSON.stringify(decisions)}`)
    assert.notEqual(decisions[0].providerName, decisions[1].providerName, 'the rejecting provider was asked twice')
    assert.deepEqual(recordA.asked, ['choice/1'])
    assert.deepEqual(recordB.asked, ['choice/1'])

    await unsubscribe(subscriber, 'choice/1')
    const accepting = decisions[1].providerName === 'a' ? recordA : recordB
    const rejecting = decisions[1].providerName === 'a' ? recordB : recordA
    await waitFor(() => accepting.stopped.length === 1, ASK_TIMEOUT_MS, 'the accepting provider\'s onStop callback')
    await sleep(QUIET_MS)
    assert.deepEqual(rejecting.stopped, [], 'a provider that rejected was told to stop')
  })

  suite.test('rejecting provider not stopped', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const provider = await suite.pool.login({ username: 'feed' })
    const record = await listen(provider, 'solo/.*', (subscription, response) => response.reject())
    await subscribe(subscriber, 'solo/1')
    await waitFor(() => record.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')

    await unsubscribe(subscriber, 'solo/1')
    await sleep(QUIET_MS)

    assert.deepEqual(record.stopped, [])
    assert.deepEqual(record.asked, ['solo/1'])
  })

  suite.test('disconnected provider replaced by other', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const first = await suite.pool.login({ username: 'feed-a' })
    const second = await suite.pool.login({ username: 'feed-b' })
    const firstRecord = await listen(first, 'handover/.*')
    await subscribe(subscriber, 'handover/1')
    await waitFor(() => firstRecord.asked.length === 1, ASK_TIMEOUT_MS, 'the first provider to be asked')

    const secondRecord = await listen(second, 'handover/.*')
    await sleep(QUIET_MS)
    assert.deepEqual(secondRecord.asked, [], 'a second provider was asked while the first one provides')

    first.close()

    await waitFor(() => secondRecord.asked.length === 1, ASK_TIMEOUT_MS, 'the second provider to be asked')
    assert.deepEqual(secondRecord.asked, ['handover/1'])
  })

  suite.test('unlisten stops questions', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const provider = await suite.pool.login({ username: 'feed' })
    const record = await listen(provider, 'quiet/.*')
    provider.event.unlisten('quiet/.*')
    await waitForAck(provider, C.TOPIC.EVENT, C.EVENT_ACTION.UNLISTEN, 'quiet/.*')

    await subscribe(subscriber, 'quiet/1')
    await sleep(QUIET_MS)

    assert.deepEqual(record.asked, [])
  })

  suite.test('invalid pattern reports INVALID_LISTEN_REGEX', async () => {
    const provider = await suite.pool.login({ username: 'feed' })

    provider.event.listen('[', () => {})

    const error = await waitFor(
      () => provider.errors.find((entry) => entry.event === 'INVALID_LISTEN_REGEX'),
      ASK_TIMEOUT_MS, `INVALID_LISTEN_REGEX (errors: ${describeErrors(provider)})`
    )
    assert.equal(error.topic, 'EVENT')
    assert.equal(provider.getConnectionState(), C.CONNECTION_STATE.OPEN)

    // The connection keeps working for a valid pattern.
    const subscriber = await suite.pool.login({ username: 'ada' })
    const record = await listen(provider, 'valid/.*')
    await subscribe(subscriber, 'valid/1')
    await waitFor(() => record.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked on its valid pattern')
  })
})
