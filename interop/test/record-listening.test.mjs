// Record listening: providers learn which records matching a pattern have
// subscribers, accept or reject to provide them, and subscribers see
// through `record.hasProvider` whether a provider is active.
//
// Client 7.0.5 does not forward the hasProviderChanged event from its
// internal record to the Record object an application holds, so the tests
// poll `record.hasProvider` and check the SUBSCRIPTION_HAS_PROVIDER messages.

import assert from 'node:assert/strict'
import { describe } from 'node:test'
import { C, describeErrors, sleep, waitFor, waitForAck } from './helpers/clients.mjs'
import {
  QUIET_MS, RECORD_CLIENT_OPTIONS, UPDATE_TIMEOUT_MS, readyRecord, receivedRecordMessages, waitForData
} from './helpers/records.mjs'
import { serverSuite } from './helpers/suite.mjs'

const ASK_TIMEOUT_MS = 3000

/**
 * Makes `client` listen for records matching `pattern` and waits for the
 * server's ack. Each request runs `decide(name, response)`, which accepts by
 * default. The returned object lists each name asked for and each stop.
 */
async function listen (client, pattern, decide = (name, response) => response.accept()) {
  const provider = { asked: [], stopped: [] }
  client.record.listen(pattern, (name, response) => {
    provider.asked.push(name)
    response.onStop((stoppedName) => provider.stopped.push(stoppedName))
    decide(name, response)
  })
  await waitForAck(client, C.TOPIC.RECORD, C.RECORD_ACTION.LISTEN, pattern)
  return provider
}

/** Waits until `record.hasProvider` is `expected`. */
function waitForHasProvider (record, expected) {
  return waitFor(() => record.hasProvider === expected, ASK_TIMEOUT_MS,
    `hasProvider of '${record.name}' to become ${expected}`)
}

describe('record listening', () => {
  const suite = serverSuite({ listen: { responseTimeout: 500 } }, RECORD_CLIENT_OPTIONS)

  suite.test('provider told of existing subscription', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feed = await suite.pool.login({ username: 'feed' })
    await readyRecord(subscriber, 'existing/1')

    const provider = await listen(feed, 'existing/.*')

    await waitFor(() => provider.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')
    assert.deepEqual(provider.asked, ['existing/1'])
    assert.deepEqual(feed.errors, [], describeErrors(feed))
  })

  suite.test('provider told of new subscription', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feed = await suite.pool.login({ username: 'feed' })
    const provider = await listen(feed, 'fresh/.*')

    await readyRecord(subscriber, 'fresh/1')
    await readyRecord(subscriber, 'other/1')

    await waitFor(() => provider.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')
    await sleep(QUIET_MS)
    assert.deepEqual(provider.asked, ['fresh/1'], 'asked only about names matching its pattern')
  })

  suite.test('accept sets hasProvider', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feed = await suite.pool.login({ username: 'feed' })
    await listen(feed, 'provided/.*')

    const record = await readyRecord(subscriber, 'provided/1')

    await waitForHasProvider(record, true)
    const notices = receivedRecordMessages(subscriber, C.RECORD_ACTION.SUBSCRIPTION_HAS_PROVIDER, 'provided/1')
    assert.equal(notices.length, 1)
    assert.deepEqual(subscriber.errors, [], describeErrors(subscriber))
  })

  suite.test('accepting provider feeds record', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feed = await suite.pool.login({ username: 'feed' })
    await listen(feed, 'prices/.*', (name, response) => {
      response.accept()
      feed.record.setData(name, { price: 10 })
    })

    const record = await readyRecord(subscriber, 'prices/acme')

    await waitForData(record, { price: 10 }, 'the provider\'s data')
    await waitForHasProvider(record, true)
  })

  suite.test('provider stopped after last discard', async () => {
    const first = await suite.pool.login({ username: 'ada' })
    const second = await suite.pool.login({ username: 'bob' })
    const feed = await suite.pool.login({ username: 'feed' })
    const provider = await listen(feed, 'stop/.*')
    const firstRecord = await readyRecord(first, 'stop/1')
    const secondRecord = await readyRecord(second, 'stop/1')
    await waitFor(() => provider.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')

    firstRecord.discard()
    await waitForAck(first, C.TOPIC.RECORD, C.RECORD_ACTION.UNSUBSCRIBE, 'stop/1')
    await sleep(QUIET_MS)
    assert.deepEqual(provider.stopped, [], 'stopped while a subscriber remained')

    secondRecord.discard()
    await waitFor(() => provider.stopped.length === 1, ASK_TIMEOUT_MS, 'the provider\'s onStop callback')
    assert.deepEqual(provider.stopped, ['stop/1'])
    assert.deepEqual(provider.asked, ['stop/1'], 'asked once for a record with two subscribers')
  })

  suite.test('rejected record goes to next provider', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feedA = await suite.pool.login({ username: 'feed-a' })
    const feedB = await suite.pool.login({ username: 'feed-b' })
    // The server may ask either provider first: the first one asked rejects.
    const decisions = []
    const decide = (providerName) => (name, response) => {
      if (decisions.length === 0) {
        decisions.push({ providerName, decision: 'reject' })
        response.reject()
      } else {
        decisions.push({ providerName, decision: 'accept' })
        response.accept()
      }
    }
    const providerA = await listen(feedA, 'choice/.*', decide('a'))
    const providerB = await listen(feedB, 'choice/.*', decide('b'))

    const record = await readyRecord(subscriber, 'choice/1')

    await waitFor(() => decisions.length === 2, ASK_TIMEOUT_MS,
      `a second provider to be asked (${JSON.stringify(decisions)})`)
    await waitForHasProvider(record, true)
    await sleep(QUIET_MS)
    assert.equal(decisions.length, 2, `asked again after an accept: ${JSON.stringify(decisions)}`)
    assert.notEqual(decisions[0].providerName, decisions[1].providerName, 'the rejecting provider was asked twice')
    assert.deepEqual(providerA.asked, ['choice/1'])
    assert.deepEqual(providerB.asked, ['choice/1'])

    record.discard()
    const accepting = decisions[1].providerName === 'a' ? providerA : providerB
    const rejecting = decisions[1].providerName === 'a' ? providerB : providerA
    await waitFor(() => accepting.stopped.length === 1, ASK_TIMEOUT_MS, 'the accepting provider\'s onStop callback')
    await sleep(QUIET_MS)
    assert.deepEqual(rejecting.stopped, [], 'a provider that rejected was told to stop')
  })

  suite.test('rejection leaves hasProvider false', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feed = await suite.pool.login({ username: 'feed' })
    const provider = await listen(feed, 'refused/.*', (name, response) => response.reject())

    const record = await readyRecord(subscriber, 'refused/1')

    await waitFor(() => provider.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked')
    await sleep(QUIET_MS)
    assert.equal(record.hasProvider, false)
    assert.deepEqual(receivedRecordMessages(subscriber, C.RECORD_ACTION.SUBSCRIPTION_HAS_PROVIDER, 'refused/1'), [])
  })

  suite.test('unlisten clears hasProvider', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feed = await suite.pool.login({ username: 'feed' })
    await listen(feed, 'leaving/.*')
    const record = await readyRecord(subscriber, 'leaving/1')
    await waitForHasProvider(record, true)

    feed.record.unlisten('leaving/.*')

    await waitForHasProvider(record, false)
    assert.equal(receivedRecordMessages(subscriber, C.RECORD_ACTION.SUBSCRIPTION_HAS_NO_PROVIDER, 'leaving/1').length, 1)
  })

  suite.test('disconnected provider replaced by other', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const first = await suite.pool.login({ username: 'feed-a' })
    const second = await suite.pool.login({ username: 'feed-b' })
    const firstProvider = await listen(first, 'handover/.*')
    const record = await readyRecord(subscriber, 'handover/1')
    await waitForHasProvider(record, true)
    const secondProvider = await listen(second, 'handover/.*')
    await sleep(QUIET_MS)
    assert.deepEqual(secondProvider.asked, [], 'a second provider was asked while the first one provides')

    first.close()

    await waitFor(() => secondProvider.asked.length === 1, ASK_TIMEOUT_MS, 'the second provider to be asked')
    assert.deepEqual(secondProvider.asked, ['handover/1'])
    assert.deepEqual(firstProvider.asked, ['handover/1'])
    await waitForHasProvider(record, true)
  })

  suite.test('invalid pattern reports INVALID_LISTEN_REGEX', async () => {
    const feed = await suite.pool.login({ username: 'feed' })

    feed.record.listen('[', () => {})

    // Client 7.0.5 reports this RECORD error as UNSOLICITED_MESSAGE, so the
    // message itself is checked.
    const errors = await waitFor(() => {
      const found = receivedRecordMessages(feed, C.RECORD_ACTION.INVALID_LISTEN_REGEX)
      return found.length > 0 && found
    }, ASK_TIMEOUT_MS, 'RECORD INVALID_LISTEN_REGEX')
    assert.equal(errors[0].name, '[')
    assert.equal(feed.getConnectionState(), C.CONNECTION_STATE.OPEN)

    // The connection keeps working for a valid pattern.
    const subscriber = await suite.pool.login({ username: 'ada' })
    const provider = await listen(feed, 'valid/.*')
    await readyRecord(subscriber, 'valid/1')
    await waitFor(() => provider.asked.length === 1, ASK_TIMEOUT_MS, 'the provider to be asked on its valid pattern')
  })

  suite.test('event and record listens are separate', async () => {
    const subscriber = await suite.pool.login({ username: 'ada' })
    const feed = await suite.pool.login({ username: 'feed' })
    const recordProvider = await listen(feed, 'shared/.*')
    const eventAsks = []
    feed.event.listen('shared/.*', (name, response) => {
      eventAsks.push(name)
      response.accept()
    })
    await waitForAck(feed, C.TOPIC.EVENT, C.EVENT_ACTION.LISTEN, 'shared/.*')

    await readyRecord(subscriber, 'shared/record')
    subscriber.event.subscribe('shared/event', () => {})
    await waitForAck(subscriber, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, 'shared/event')

    await waitFor(() => recordProvider.asked.length === 1 && eventAsks.length === 1, ASK_TIMEOUT_MS,
      'both providers to be asked')
    await sleep(QUIET_MS)
    assert.deepEqual(recordProvider.asked, ['shared/record'])
    assert.deepEqual(eventAsks, ['shared/event'])
    await waitFor(() => receivedRecordMessages(subscriber, C.RECORD_ACTION.SUBSCRIPTION_HAS_PROVIDER).length === 1,
      UPDATE_TIMEOUT_MS, 'the record subscriber to learn of its provider')
  })
})
