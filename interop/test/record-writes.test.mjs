// Writes through client.record.setData (no subscription needed), write
// acknowledgements, and client.record.notify.

import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { describe } from 'node:test'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { C, describeErrors, sleep, waitFor, withTimeout } from './helpers/clients.mjs'
import {
  QUIET_MS, RECORD_CLIENT_OPTIONS, UPDATE_TIMEOUT_MS,
  readyRecord, receivedRecordMessages, recordChanges, sentRecordMessages, waitForChanges, waitForData
} from './helpers/records.mjs'
import { target } from './helpers/server.mjs'
import { serverSuite } from './helpers/suite.mjs'

const IN_FLIGHT_WRITES = 20
const NODE_MEMORY_STORAGE = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'node-memory-storage.cjs')

/** Returns a promise of the write-ack callback's `(error, name)` arguments, and the callback. */
function ackCallback () {
  const calls = []
  let resolveFirst
  const first = new Promise((resolve) => { resolveFirst = resolve })
  const callback = (error, name) => {
    calls.push({ error, name })
    resolveFirst({ error, name })
  }
  return { calls, callback, first }
}

/** Counts the WRITE_ACKNOWLEDGEMENT messages `client` received, per correlation id. */
function writeAcksByCorrelationId (client) {
  const counts = new Map()
  for (const message of receivedRecordMessages(client, C.RECORD_ACTION.WRITE_ACKNOWLEDGEMENT)) {
    counts.set(message.correlationId, (counts.get(message.correlationId) ?? 0) + 1)
  }
  return counts
}

describe('record writes without subscription', () => {
  const suite = serverSuite({}, RECORD_CLIENT_OPTIONS)

  suite.test('setData replaces whole record', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const watched = await readyRecord(watcher, 'set-data/whole')
    const changes = recordChanges(watched)

    writer.record.setData('set-data/whole', { from: 'setData', list: [1] })

    await waitForChanges(changes, 1, 'the watcher\'s callback')
    assert.deepEqual(changes, [{ data: { from: 'setData', list: [1] }, version: 1 }])
    assert.deepEqual(writer.record.names(), [], 'setData opened a record on the writer')
    const sent = sentRecordMessages(writer, C.RECORD_ACTION.CREATEANDUPDATE)
    assert.equal(sent.length, 1)
    assert.equal(sent[0].isWriteAck, undefined, 'a write without callback asked for an ack')
    await sleep(QUIET_MS)
    assert.deepEqual(receivedRecordMessages(writer, C.RECORD_ACTION.WRITE_ACKNOWLEDGEMENT), [],
      'the server acknowledged a write that asked for no ack')
  })

  suite.test('setData at path patches record', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const watched = await readyRecord(watcher, 'set-data/path')
    writer.record.setData('set-data/path', { user: { name: 'ada' }, keep: 1 })
    await waitForData(watched, { user: { name: 'ada' }, keep: 1 })

    writer.record.setData('set-data/path', 'user.name', 'bob')
    writer.record.setData('set-data/path', 'pets[1]', 'dog')

    await waitForData(watched, { user: { name: 'bob' }, keep: 1, pets: [null, 'dog'] })
    assert.equal(watched.version, 3)
    assert.equal(sentRecordMessages(writer, C.RECORD_ACTION.CREATEANDPATCH).length, 2)
  })

  suite.test('setData with undefined erases path', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const watched = await readyRecord(watcher, 'set-data/erase')
    writer.record.setData('set-data/erase', { user: { name: 'ada', age: 36 } })
    await waitForData(watched, { user: { name: 'ada', age: 36 } })

    writer.record.setData('set-data/erase', 'user.age', undefined)

    await waitForData(watched, { user: { name: 'ada' } })
    assert.equal(watched.version, 2)
    assert.equal(sentRecordMessages(writer, C.RECORD_ACTION.ERASE).length, 1)
  })

  suite.test('setData creates missing record', async () => {
    const writer = await suite.pool.login({ username: 'ada' })

    await withTimeout(writer.record.setDataWithAck('set-data/created', { fresh: true }), UPDATE_TIMEOUT_MS, 'the write ack')

    const reader = await suite.pool.login({ username: 'bob' })
    const record = await readyRecord(reader, 'set-data/created')
    // deepstream 7.0.2 counts the creation and the write as one version.
    assert.deepEqual({ data: record.get(), version: record.version }, { data: { fresh: true }, version: 1 })
  })

  suite.test('setData at path creates missing record', async () => {
    const writer = await suite.pool.login({ username: 'ada' })

    await withTimeout(writer.record.setDataWithAck('set-data/created-by-path', 'a.b', 1), UPDATE_TIMEOUT_MS,
      'the write ack')

    const reader = await suite.pool.login({ username: 'bob' })
    const record = await readyRecord(reader, 'set-data/created-by-path')
    assert.deepEqual({ data: record.get(), version: record.version }, { data: { a: { b: 1 } }, version: 1 })
  })

  suite.test('setDataWithAck resolves after write', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const reader = await suite.pool.login({ username: 'bob' })

    const result = await withTimeout(writer.record.setDataWithAck('set-data/ack', { acked: 1 }), UPDATE_TIMEOUT_MS,
      'the write ack')

    assert.equal(result, undefined)
    // An acknowledged write is visible to the next read from any client.
    const snapshot = await withTimeout(reader.record.snapshot('set-data/ack'), UPDATE_TIMEOUT_MS, 'snapshot')
    assert.deepEqual(snapshot, { acked: 1 })

    await withTimeout(writer.record.setDataWithAck('set-data/ack', 'acked', 2), UPDATE_TIMEOUT_MS, 'the path write ack')
    const patched = await withTimeout(reader.record.snapshot('set-data/ack'), UPDATE_TIMEOUT_MS, 'second snapshot')
    assert.deepEqual(patched, { acked: 2 })
    const sent = [
      ...sentRecordMessages(writer, C.RECORD_ACTION.CREATEANDUPDATE),
      ...sentRecordMessages(writer, C.RECORD_ACTION.CREATEANDPATCH)
    ]
    assert.deepEqual(sent.map((message) => message.isWriteAck), [true, true])
  })

  suite.test('setData callback gets ack', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const whole = ackCallback()
    const path = ackCallback()

    writer.record.setData('set-data/callback', { n: 1 }, whole.callback)
    writer.record.setData('set-data/callback', 'n', 2, path.callback)

    assert.deepEqual(await withTimeout(whole.first, UPDATE_TIMEOUT_MS, 'the whole-data ack callback'),
      { error: null, name: 'set-data/callback' })
    assert.deepEqual(await withTimeout(path.first, UPDATE_TIMEOUT_MS, 'the path ack callback'),
      { error: null, name: 'set-data/callback' })
    await sleep(QUIET_MS)
    assert.equal(whole.calls.length, 1, 'the whole-data callback ran more than once')
    assert.equal(path.calls.length, 1, 'the path callback ran more than once')
    const reader = await suite.pool.login({ username: 'bob' })
    assert.deepEqual(await withTimeout(reader.record.snapshot('set-data/callback'), UPDATE_TIMEOUT_MS, 'snapshot'), { n: 2 })
  })

  suite.test('writes in flight acked once each', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const watched = await readyRecord(watcher, 'set-data/in-flight')
    const changes = recordChanges(watched)

    const acks = []
    for (let i = 0; i < IN_FLIGHT_WRITES; i++) {
      acks.push(writer.record.setDataWithAck('set-data/in-flight', 'n', i))
    }
    await withTimeout(Promise.all(acks), UPDATE_TIMEOUT_MS, `${IN_FLIGHT_WRITES} write acks`)

    await sleep(QUIET_MS)
    const counts = writeAcksByCorrelationId(writer)
    const sentIds = sentRecordMessages(writer, C.RECORD_ACTION.CREATEANDPATCH).map((message) => message.correlationId)
    assert.equal(new Set(sentIds).size, IN_FLIGHT_WRITES, 'the client reused a correlation id')
    assert.deepEqual([...counts.keys()].sort(), [...sentIds].sort(), 'acks do not match the writes')
    assert.deepEqual([...counts.values()].filter((count) => count !== 1), [], 'a write was acknowledged more than once')
    await waitForChanges(changes, IN_FLIGHT_WRITES, 'every write to reach the watcher')
    assert.deepEqual(changes.map((change) => change.data.n), [...Array(IN_FLIGHT_WRITES).keys()])
    assert.deepEqual(changes.map((change) => change.version), [...Array(IN_FLIGHT_WRITES).keys()].map((i) => i + 1))
  })

  suite.test('record.set callback gets ack', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const record = await readyRecord(writer, 'set-data/record-set')
    const whole = ackCallback()
    const path = ackCallback()

    record.set({ n: 1 }, whole.callback)
    record.set('n', 2, path.callback)

    assert.deepEqual(await withTimeout(whole.first, UPDATE_TIMEOUT_MS, 'the set ack callback'),
      { error: null, name: 'set-data/record-set' })
    assert.deepEqual(await withTimeout(path.first, UPDATE_TIMEOUT_MS, 'the path set ack callback'),
      { error: null, name: 'set-data/record-set' })
    await withTimeout(record.setWithAck('n', 3), UPDATE_TIMEOUT_MS, 'setWithAck')
    await withTimeout(record.eraseWithAck('n'), UPDATE_TIMEOUT_MS, 'eraseWithAck')
    await sleep(QUIET_MS)
    assert.equal(whole.calls.length, 1)
    assert.equal(path.calls.length, 1)
    const reader = await suite.pool.login({ username: 'bob' })
    const stored = await readyRecord(reader, 'set-data/record-set')
    assert.deepEqual({ data: stored.get(), version: stored.version }, { data: {}, version: 4 })
    assert.deepEqual(writer.errors, [], describeErrors(writer))
  })
})

// deepstream 7.0.2's default storage keeps nothing. After a notify drops a
// record from its cache, that server finds no copy in storage and sends every
// subscriber DELETED. Our server's default storage keeps every record, so
// against the Node.js server this suite loads a storage plugin that keeps
// records in memory. Both servers then have the copy in storage that these
// tests expect.
describe('record notify', () => {
  const storage = target() === 'node' ? { path: NODE_MEMORY_STORAGE } : undefined
  const suite = serverSuite({ storage }, RECORD_CLIENT_OPTIONS)

  suite.test('notify resolves without visible change', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'notify/1')
    await withTimeout(written.setWithAck({ n: 1, nested: { ok: true } }), UPDATE_TIMEOUT_MS, 'the write ack')
    const watched = await readyRecord(watcher, 'notify/1')
    const changes = recordChanges(watched)
    const events = []
    watched.on('delete', () => events.push('delete'))
    watched.on('error', (...args) => events.push(['error', ...args]))

    const result = await withTimeout(writer.record.notify(['notify/1']), UPDATE_TIMEOUT_MS, 'the notify ack')

    assert.equal(result, undefined)
    await sleep(QUIET_MS)
    assert.deepEqual(events, [])
    // The server may send the subscribers the record as re-read from
    // storage. It has not changed, so any callback that runs gets the same data.
    const unchanged = { n: 1, nested: { ok: true } }
    assert.deepEqual(changes.filter((change) => !isDeepStrictEqual(change.data, unchanged)), [])
    assert.deepEqual({ data: watched.get(), version: watched.version }, { data: unchanged, version: 1 })
    assert.deepEqual(watcher.errors, [], describeErrors(watcher))
    assert.deepEqual(writer.errors, [], describeErrors(writer))

    // The record keeps working after the notify.
    written.set('n', 2)
    await waitForData(watched, { n: 2, nested: { ok: true } })
    assert.equal(watched.version, 2)
  })

  suite.test('notify of several names acked once', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    await withTimeout(writer.record.setDataWithAck('notify/2', { n: 2 }), UPDATE_TIMEOUT_MS, 'the write ack')

    await withTimeout(writer.record.notify(['notify/2', 'notify/never-written', 'notify/3']), UPDATE_TIMEOUT_MS,
      'the notify ack')

    await sleep(QUIET_MS)
    const acks = writer.tap.received.filter((message) => message.isAck && message.action === C.RECORD_ACTION.NOTIFY)
    assert.equal(acks.length, 1, 'a bulk notify is acknowledged once')
    const reader = await suite.pool.login({ username: 'bob' })
    assert.deepEqual(await withTimeout(reader.record.snapshot('notify/2'), UPDATE_TIMEOUT_MS, 'snapshot'), { n: 2 })
    assert.equal(await withTimeout(reader.record.has('notify/never-written'), UPDATE_TIMEOUT_MS, 'has'), false,
      'notify created a record')
    assert.deepEqual(writer.errors, [], describeErrors(writer))
  })

  suite.test('notify from subscriber keeps its record', async () => {
    const client = await suite.pool.login({ username: 'ada' })
    const record = await readyRecord(client, 'notify/4')
    await withTimeout(record.setWithAck({ mine: true }), UPDATE_TIMEOUT_MS, 'the write ack')
    let deleted = false
    record.on('delete', () => { deleted = true })

    await withTimeout(client.record.notify(['notify/4']), UPDATE_TIMEOUT_MS, 'the notify ack')

    await sleep(QUIET_MS)
    assert.equal(deleted, false)
    assert.deepEqual({ data: record.get(), version: record.version }, { data: { mine: true }, version: 1 })
    await waitFor(() => record.isReady, UPDATE_TIMEOUT_MS, 'the record to be ready')
    await withTimeout(record.setWithAck('more', 1), UPDATE_TIMEOUT_MS, 'a write after notify')
    const reader = await suite.pool.login({ username: 'bob' })
    assert.deepEqual(await withTimeout(reader.record.snapshot('notify/4'), UPDATE_TIMEOUT_MS, 'snapshot'),
      { mine: true, more: 1 })
    assert.deepEqual(client.errors, [], describeErrors(client))
  })
})
