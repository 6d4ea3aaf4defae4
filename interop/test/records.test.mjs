// Records through the official client: creation, whole and path writes seen
// by other clients, versions, path subscriptions, reads without a
// subscription, bulk subscriptions, discard and delete.
//
// A second client's view shows what the server broadcast, and a third
// client that opens the record afterwards shows what the server stored.

import assert from 'node:assert/strict'
import { describe } from 'node:test'
import { C, describeErrors, settle, sleep, waitFor, waitForAck, withTimeout } from './helpers/clients.mjs'
import {
  QUIET_MS, READY_TIMEOUT_MS, RECORD_CLIENT_OPTIONS, UPDATE_TIMEOUT_MS,
  describeRecordMessages, readyRecord, receivedRecordMessages, recordChanges, sentRecordMessages,
  waitForChanges, waitForData
} from './helpers/records.mjs'
import { serverSuite } from './helpers/suite.mjs'

const BULK_RECORD_COUNT = 100
const WRITE_TYPES = [C.RECORD_ACTION.UPDATE, C.RECORD_ACTION.PATCH, C.RECORD_ACTION.ERASE]

/** Opens `name` on a client that has not seen it yet and returns its data and version. */
async function storedState (pool, name) {
  const reader = await pool.login({ username: 'reader' })
  const record = await readyRecord(reader, name)
  return { data: record.get(), version: record.version }
}

describe('records', () => {
  const suite = serverSuite({}, RECORD_CLIENT_OPTIONS)

  suite.test('new record is empty at version 0', async () => {
    const client = await suite.pool.login({ username: 'ada' })

    const record = await readyRecord(client, 'records/new')

    assert.equal(record.isReady, true)
    assert.deepEqual(record.get(), {})
    assert.equal(record.version, 0)
    const subscriptions = sentRecordMessages(client, C.RECORD_ACTION.SUBSCRIBECREATEANDREAD)
    assert.deepEqual(subscriptions.map((message) => message.names), [['records/new']])
    assert.deepEqual(client.errors, [], describeErrors(client))
  })

  suite.test('whole data reaches other client', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'records/whole')
    const watched = await readyRecord(watcher, 'records/whole')
    const changes = recordChanges(watched)

    written.set({ user: { name: 'ada' }, tags: ['a', 'b'], count: 1 })

    await waitForChanges(changes, 1, 'the watcher\'s subscription callback')
    const expected = { user: { name: 'ada' }, tags: ['a', 'b'], count: 1 }
    assert.deepEqual(changes, [{ data: expected, version: 1 }])
    assert.deepEqual(watched.get(), expected)
    assert.deepEqual(await storedState(suite.pool, 'records/whole'), { data: expected, version: 1 })
    assert.deepEqual(watcher.errors, [], describeErrors(watcher))
  })

  suite.test('path writes reach other client', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'records/paths')
    const watched = await readyRecord(watcher, 'records/paths')
    const changes = recordChanges(watched)

    written.set('user.name', 'ada')
    written.set('pets[2]', 'cat')
    // `items` does not exist yet: the path creates an array for it.
    written.set('items[0]', 'first')
    written.set('user.name', 'bob')

    await waitForChanges(changes, 4, 'four path updates')
    assert.deepEqual(changes, [
      { data: { user: { name: 'ada' } }, version: 1 },
      { data: { user: { name: 'ada' }, pets: [null, null, 'cat'] }, version: 2 },
      { data: { user: { name: 'ada' }, pets: [null, null, 'cat'], items: ['first'] }, version: 3 },
      { data: { user: { name: 'bob' }, pets: [null, null, 'cat'], items: ['first'] }, version: 4 }
    ])
    const patches = receivedRecordMessages(watcher, C.RECORD_ACTION.PATCH, 'records/paths')
    assert.deepEqual(patches.map((message) => message.path), ['user.name', 'pets[2]', 'items[0]', 'user.name'],
      'the server forwards path writes as PATCH messages with their path')
    assert.deepEqual(watched.get(), changes[3].data)
    assert.deepEqual(watched.get('pets[2]'), 'cat')
    assert.deepEqual(await storedState(suite.pool, 'records/paths'), changes[3])
  })

  suite.test('erase removes path everywhere', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'records/erase')
    const watched = await readyRecord(watcher, 'records/erase')
    written.set({ user: { name: 'ada', age: 36 }, keep: true })
    await waitForData(watched, { user: { name: 'ada', age: 36 }, keep: true })

    written.erase('user.age')

    await waitForData(watched, { user: { name: 'ada' }, keep: true })
    assert.equal(watched.version, 2)
    // deepstream 7.0.2 forwards an ERASE as a PATCH without data, which the
    // client also applies as an erase. Either form passes, once.
    const erases = watcher.tap.received.filter((message) =>
      [C.RECORD_ACTION.ERASE, C.RECORD_ACTION.PATCH].includes(message.action) && message.name === 'records/erase')
    assert.deepEqual(erases.map((message) => message.path), ['user.age'])
    assert.equal(erases[0].data, undefined, `the erase carried data ${erases[0].data}`)
    assert.deepEqual(await storedState(suite.pool, 'records/erase'),
      { data: { user: { name: 'ada' }, keep: true }, version: 2 })
  })

  suite.test('path subscription sees its path only', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'records/path-subscription')
    const watched = await readyRecord(watcher, 'records/path-subscription')
    const names = recordChanges(watched, 'user.name')

    written.set('user.age', 36)
    written.set('other', 'x')
    written.set('user.name', 'ada')

    // Updates arrive in order, so a callback for the first two writes would
    // come before the one for the third.
    await waitForChanges(names, 1, 'the path subscription callback')
    await sleep(QUIET_MS)
    assert.deepEqual(names, [{ data: 'ada', version: 3 }])
    assert.deepEqual(watched.get(), { user: { age: 36, name: 'ada' }, other: 'x' })
  })

  suite.test('subscribe with triggerNow gets current data', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const written = await readyRecord(writer, 'records/trigger-now')
    await withTimeout(written.setWithAck({ colour: 'red' }), UPDATE_TIMEOUT_MS, 'the write ack')
    const watcher = await suite.pool.login({ username: 'bob' })
    const watched = watcher.record.getRecord('records/trigger-now')
    const whole = []
    const colour = []

    watched.subscribe((data) => whole.push(data), true)
    watched.subscribe('colour', (value) => colour.push(value), true)

    await waitFor(() => whole.length === 1 && colour.length === 1, READY_TIMEOUT_MS, 'the triggerNow callbacks')
    assert.deepEqual(whole, [{ colour: 'red' }])
    assert.deepEqual(colour, ['red'])
  })

  suite.test('version increases by one per write', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'records/versions')
    const watched = await readyRecord(watcher, 'records/versions')
    const changes = recordChanges(watched)
    const localVersions = []

    for (let i = 1; i <= 6; i++) {
      if (i % 2 === 0) {
        written.set({ step: i })
      } else {
        written.set('step', i)
      }
      localVersions.push(written.version)
    }

    await waitForChanges(changes, 6, 'six updates')
    assert.deepEqual(localVersions, [1, 2, 3, 4, 5, 6])
    assert.deepEqual(changes.map((change) => change.version), [1, 2, 3, 4, 5, 6])
    assert.deepEqual(changes.map((change) => change.data.step), [1, 2, 3, 4, 5, 6])
    const broadcast = watcher.tap.received.filter((message) =>
      WRITE_TYPES.includes(message.action) && message.name === 'records/versions')
    assert.deepEqual(broadcast.map((message) => message.version), [1, 2, 3, 4, 5, 6])
    assert.equal(await withTimeout(watcher.record.head('records/versions'), UPDATE_TIMEOUT_MS, 'head'), 6)
  })

  suite.test('writer gets no echo of own writes', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'records/no-echo')
    const watched = await readyRecord(watcher, 'records/no-echo')

    written.set({ n: 1 })
    written.set('n', 2)
    await waitForData(watched, { n: 2 })
    await sleep(QUIET_MS)

    const echoes = writer.tap.received.filter((message) =>
      WRITE_TYPES.includes(message.action) && message.name === 'records/no-echo')
    assert.equal(describeRecordMessages(echoes), '', 'the server sent the writer its own writes')
    assert.equal(written.version, 2)
  })

  suite.test('unsubscribe stops callbacks only', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyRecord(writer, 'records/unsubscribe')
    const watched = await readyRecord(watcher, 'records/unsubscribe')
    const changes = recordChanges(watched)
    written.set({ n: 1 })
    await waitForChanges(changes, 1, 'the first update')

    watched.unsubscribe(changes.callback)
    written.set({ n: 2 })

    // unsubscribe() only removes a callback: the record itself stays up to date.
    await waitForData(watched, { n: 2 })
    assert.deepEqual(changes, [{ data: { n: 1 }, version: 1 }])
  })

  suite.test('discard stops updates from server', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const leaver = await suite.pool.login({ username: 'bob' })
    const stayer = await suite.pool.login({ username: 'cy' })
    const written = await readyRecord(writer, 'records/discard')
    const left = await readyRecord(leaver, 'records/discard')
    const stayed = await readyRecord(stayer, 'records/discard')
    const leftChanges = recordChanges(left)

    left.discard()
    await waitForAck(leaver, C.TOPIC.RECORD, C.RECORD_ACTION.UNSUBSCRIBE, 'records/discard')
    const receivedBefore = leaver.tap.received.length
    written.set({ after: 'discard' })

    await waitForData(stayed, { after: 'discard' }, 'the remaining subscriber')
    await sleep(QUIET_MS)
    const late = leaver.tap.received.slice(receivedBefore).filter((message) => message.name === 'records/discard')
    assert.equal(describeRecordMessages(late), '', 'the server kept sending a discarded record')
    assert.deepEqual(leftChanges, [])
  })

  suite.test('snapshot reads without subscribing', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const written = await readyRecord(writer, 'records/snapshot')
    await withTimeout(written.setWithAck({ title: 'snap', list: [1, 2] }), UPDATE_TIMEOUT_MS, 'the write ack')
    const reader = await suite.pool.login({ username: 'bob' })

    const data = await withTimeout(reader.record.snapshot('records/snapshot'), UPDATE_TIMEOUT_MS, 'snapshot')

    assert.deepEqual(data, { title: 'snap', list: [1, 2] })
    assert.equal(sentRecordMessages(reader, C.RECORD_ACTION.READ).length, 1, 'the snapshot was not read from the server')
    assert.deepEqual(sentRecordMessages(reader, C.RECORD_ACTION.SUBSCRIBECREATEANDREAD), [], 'a snapshot subscribed')
    assert.deepEqual(reader.record.names(), [], 'a snapshot left a record behind')
  })

  suite.test('snapshot of missing record fails', async () => {
    const reader = await suite.pool.login({ username: 'bob' })

    const outcome = await settle(reader.record.snapshot('records/never-written'), UPDATE_TIMEOUT_MS, 'snapshot')

    assert.equal(outcome.ok, false, `snapshot returned ${JSON.stringify(outcome.value)}`)
    assert.equal(outcome.error, 'RECORD_NOT_FOUND')
    assert.deepEqual(await withTimeout(reader.record.has('records/never-written'), UPDATE_TIMEOUT_MS, 'has'), false,
      'a failed snapshot created the record')
  })

  suite.test('has and head for existing record', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const written = await readyRecord(writer, 'records/head')
    await withTimeout(written.setWithAck({ n: 1 }), UPDATE_TIMEOUT_MS, 'first write ack')
    await withTimeout(written.setWithAck('n', 2), UPDATE_TIMEOUT_MS, 'second write ack')
    const reader = await suite.pool.login({ username: 'bob' })

    assert.equal(await withTimeout(reader.record.has('records/head'), UPDATE_TIMEOUT_MS, 'has'), true)
    assert.equal(await withTimeout(reader.record.head('records/head'), UPDATE_TIMEOUT_MS, 'head'), 2)
    assert.equal(sentRecordMessages(reader, C.RECORD_ACTION.HEAD).length, 2, 'has and head were not asked of the server')
  })

  suite.test('has and head for missing record', async () => {
    const reader = await suite.pool.login({ username: 'bob' })

    assert.equal(await withTimeout(reader.record.has('records/missing'), UPDATE_TIMEOUT_MS, 'has'), false)
    assert.equal(await withTimeout(reader.record.head('records/missing'), UPDATE_TIMEOUT_MS, 'head'), -1)
    // Asking did not create it.
    assert.equal(await withTimeout(reader.record.has('records/missing'), UPDATE_TIMEOUT_MS, 'second has'), false)
  })

  suite.test('bulk subscription of new records', async () => {
    const creator = await suite.pool.login({ username: 'ada' })
    const names = Array.from({ length: BULK_RECORD_COUNT }, (_, i) => `records/bulk/${i}`)

    // All in one tick: the client sends one SUBSCRIBECREATEANDREAD with every name.
    const records = names.map((name) => creator.record.getRecord(name))
    await withTimeout(Promise.all(records.map((record) => record.whenReady())), READY_TIMEOUT_MS,
      `${BULK_RECORD_COUNT} records to be ready`)

    const requests = sentRecordMessages(creator, C.RECORD_ACTION.SUBSCRIBECREATEANDREAD)
    assert.equal(requests.length, 1, `the client sent ${requests.length} subscribe messages`)
    assert.deepEqual(requests[0].names, names)
    const acks = creator.tap.received.filter((message) =>
      message.isAck && message.action === C.RECORD_ACTION.SUBSCRIBECREATEANDREAD)
    assert.equal(acks.length, 1, 'a bulk subscription is acknowledged once')
    assert.equal(acks[0].correlationId, requests[0].correlationId)
    for (const record of records) {
      assert.deepEqual({ name: record.name, data: record.get(), version: record.version },
        { name: record.name, data: {}, version: 0 })
    }

    await withTimeout(Promise.all(records.map((record, i) => record.setWithAck({ index: i }))),
      UPDATE_TIMEOUT_MS, `${BULK_RECORD_COUNT} write acks`)
    const reader = await suite.pool.login({ username: 'bob' })
    const read = names.map((name) => reader.record.getRecord(name))
    await withTimeout(Promise.all(read.map((record) => record.whenReady())), READY_TIMEOUT_MS,
      `${BULK_RECORD_COUNT} existing records to be ready`)
    assert.equal(sentRecordMessages(reader, C.RECORD_ACTION.SUBSCRIBECREATEANDREAD).length, 1)
    read.forEach((record, i) => {
      assert.deepEqual({ name: record.name, data: record.get(), version: record.version },
        { name: record.name, data: { index: i }, version: 1 })
    })
    assert.deepEqual(creator.errors, [], describeErrors(creator))
    assert.deepEqual(reader.errors, [], describeErrors(reader))
  })
})

describe('record deletion', () => {
  const suite = serverSuite({}, RECORD_CLIENT_OPTIONS)

  suite.test('delete resolves and notifies subscribers', async () => {
    const deleter = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const doomed = await readyRecord(deleter, 'deletion/1')
    await withTimeout(doomed.setWithAck({ n: 1 }), UPDATE_TIMEOUT_MS, 'the write ack')
    const watched = await readyRecord(watcher, 'deletion/1')
    const events = []
    watched.on('delete', () => events.push('watcher delete'))
    doomed.on('delete', () => events.push('deleter delete'))

    await withTimeout(doomed.delete(), UPDATE_TIMEOUT_MS, 'delete() to resolve')

    await waitFor(() => events.includes('watcher delete'), UPDATE_TIMEOUT_MS,
      `the watcher's delete event (events: ${events})`)
    assert.ok(events.includes('deleter delete'), `events: ${events}`)
    assert.equal(receivedRecordMessages(deleter, C.RECORD_ACTION.DELETE_SUCCESS, 'deletion/1').length, 1)
    assert.equal(receivedRecordMessages(watcher, C.RECORD_ACTION.DELETED, 'deletion/1').length, 1)
    assert.equal(watched.isReady, false, 'a deleted record still claims to be ready')
    assert.deepEqual(deleter.errors, [], describeErrors(deleter))
    assert.deepEqual(watcher.errors, [], describeErrors(watcher))
  })

  suite.test('deleted record is gone for readers', async () => {
    const deleter = await suite.pool.login({ username: 'ada' })
    const doomed = await readyRecord(deleter, 'deletion/2')
    await withTimeout(doomed.setWithAck({ n: 1 }), UPDATE_TIMEOUT_MS, 'the write ack')
    await withTimeout(doomed.delete(), UPDATE_TIMEOUT_MS, 'delete() to resolve')
    const reader = await suite.pool.login({ username: 'bob' })

    assert.equal(await withTimeout(reader.record.has('deletion/2'), UPDATE_TIMEOUT_MS, 'has'), false)
    assert.equal(await withTimeout(reader.record.head('deletion/2'), UPDATE_TIMEOUT_MS, 'head'), -1)
    const snapshot = await settle(reader.record.snapshot('deletion/2'), UPDATE_TIMEOUT_MS, 'snapshot')
    assert.deepEqual(snapshot, { ok: false, error: 'RECORD_NOT_FOUND' })
  })

  suite.test('recreated record starts empty', async () => {
    const deleter = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const doomed = await readyRecord(deleter, 'deletion/3')
    await withTimeout(doomed.setWithAck({ n: 1 }), UPDATE_TIMEOUT_MS, 'first write ack')
    await withTimeout(doomed.setWithAck('n', 2), UPDATE_TIMEOUT_MS, 'second write ack')
    const watched = await readyRecord(watcher, 'deletion/3')
    let deleted = false
    watched.on('delete', () => { deleted = true })
    await withTimeout(doomed.delete(), UPDATE_TIMEOUT_MS, 'delete() to resolve')
    await waitFor(() => deleted, UPDATE_TIMEOUT_MS, 'the watcher\'s delete event')

    const reborn = await readyRecord(deleter, 'deletion/3')
    const rewatched = await readyRecord(watcher, 'deletion/3')

    assert.deepEqual({ data: reborn.get(), version: reborn.version }, { data: {}, version: 0 })
    assert.deepEqual({ data: rewatched.get(), version: rewatched.version }, { data: {}, version: 0 })
    reborn.set({ again: true })
    await waitForData(rewatched, { again: true }, 'the recreated record on the other client')
    assert.equal(rewatched.version, 1)
  })

  suite.test('delete leaves other records alone', async () => {
    const deleter = await suite.pool.login({ username: 'ada' })
    const neighbour = await readyRecord(deleter, 'deletion/neighbour')
    await withTimeout(neighbour.setWithAck({ stays: true }), UPDATE_TIMEOUT_MS, 'the neighbour write ack')
    const doomed = await readyRecord(deleter, 'deletion/4')

    await withTimeout(doomed.delete(), UPDATE_TIMEOUT_MS, 'delete() to resolve')

    const reader = await suite.pool.login({ username: 'bob' })
    const snapshot = await withTimeout(reader.record.snapshot('deletion/neighbour'), UPDATE_TIMEOUT_MS, 'snapshot')
    assert.deepEqual(snapshot, { stays: true }, 'deleting one record changed another')
  })
})
