// Lists (records whose data is an array of record names) and anonymous
// records (a handle that can switch between records) through the official
// client.

import assert from 'node:assert/strict'
import { describe } from 'node:test'
import { C, describeErrors, sleep, waitFor, waitForAck, withTimeout } from './helpers/clients.mjs'
import {
  QUIET_MS, READY_TIMEOUT_MS, RECORD_CLIENT_OPTIONS, UPDATE_TIMEOUT_MS,
  readyList, readyRecord, sentRecordMessages, waitForData
} from './helpers/records.mjs'
import { serverSuite } from './helpers/suite.mjs'

/** Records the entry-added, entry-removed and entry-moved events of `list` as `[event, entry, index]`. */
function listEvents (list) {
  const events = []
  for (const event of ['entry-added', 'entry-removed', 'entry-moved']) {
    list.on(event, (entry, index) => events.push([event, entry, index]))
  }
  return events
}

/** Waits until `list` has exactly `entries`. */
async function waitForEntries (list, entries) {
  try {
    await waitFor(() => JSON.stringify(list.getEntries()) === JSON.stringify(entries), UPDATE_TIMEOUT_MS,
      `list '${list.name}' to have entries ${JSON.stringify(entries)}`)
  } catch (error) {
    error.message += ` (last seen: ${JSON.stringify(list.getEntries())})`
    throw error
  }
}

describe('lists', () => {
  const suite = serverSuite({}, RECORD_CLIENT_OPTIONS)

  suite.test('new list is empty', async () => {
    const client = await suite.pool.login({ username: 'ada' })

    const list = await readyList(client, 'lists/new')

    assert.deepEqual(list.getEntries(), [])
    assert.equal(list.isEmpty(), true)
    assert.equal(list.version, 0)
    assert.deepEqual(client.errors, [], describeErrors(client))
  })

  suite.test('setEntries reaches other client', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyList(writer, 'lists/set')
    const watched = await readyList(watcher, 'lists/set')
    const seen = []
    watched.subscribe((entries) => seen.push(entries))

    written.setEntries(['users/a', 'users/b'])

    await waitFor(() => seen.length === 1, UPDATE_TIMEOUT_MS, 'the watcher\'s list callback')
    assert.deepEqual(seen, [['users/a', 'users/b']])
    assert.deepEqual(watched.getEntries(), ['users/a', 'users/b'])
    assert.equal(watched.version, 1)
    // A list is stored as a record whose data is the array.
    const reader = await suite.pool.login({ username: 'cy' })
    assert.deepEqual(await withTimeout(reader.record.snapshot('lists/set'), UPDATE_TIMEOUT_MS, 'snapshot'),
      ['users/a', 'users/b'])
  })

  suite.test('add and remove entries', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyList(writer, 'lists/edit')
    const watched = await readyList(watcher, 'lists/edit')

    written.addEntry('x')
    written.addEntry('y')
    written.addEntry('w', 0)
    written.removeEntry('x')
    written.addEntry('y')
    written.removeEntry('y', 1)

    await waitForEntries(watched, ['w', 'y'])
    assert.equal(watched.version, 6)
    const reader = await suite.pool.login({ username: 'cy' })
    const stored = await readyList(reader, 'lists/edit')
    assert.deepEqual({ entries: stored.getEntries(), version: stored.version }, { entries: ['w', 'y'], version: 6 })
  })

  suite.test('entry events on other client', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyList(writer, 'lists/events')
    const watched = await readyList(watcher, 'lists/events')
    const events = listEvents(watched)

    written.setEntries(['a', 'b'])
    await waitForEntries(watched, ['a', 'b'])
    assert.deepEqual(events.splice(0), [['entry-added', 'a', 0], ['entry-added', 'b', 1]])

    written.addEntry('c', 1)
    await waitForEntries(watched, ['a', 'c', 'b'])
    assert.deepEqual(events.splice(0), [['entry-added', 'c', 1], ['entry-moved', 'b', 2]])

    written.removeEntry('a')
    await waitForEntries(watched, ['c', 'b'])
    assert.deepEqual(events.splice(0), [['entry-removed', 'a', 0], ['entry-moved', 'c', 0], ['entry-moved', 'b', 1]])

    written.setEntries(['b', 'c'])
    await waitForEntries(watched, ['b', 'c'])
    assert.deepEqual(events.splice(0), [['entry-moved', 'b', 0], ['entry-moved', 'c', 1]])
  })

  suite.test('setEntriesWithAck resolves', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const list = await readyList(writer, 'lists/ack')

    await withTimeout(list.setEntriesWithAck(['one']), UPDATE_TIMEOUT_MS, 'the write ack')

    const reader = await suite.pool.login({ username: 'bob' })
    assert.deepEqual(await withTimeout(reader.record.snapshot('lists/ack'), UPDATE_TIMEOUT_MS, 'snapshot'), ['one'])
  })

  suite.test('invalid entries rejected by client', async () => {
    const client = await suite.pool.login({ username: 'ada' })
    const list = await readyList(client, 'lists/invalid')
    list.setEntries(['only'])

    assert.throws(() => list.setEntries('not an array'), /entries must be an array of record names/)
    assert.throws(() => list.setEntries(['ok', 7]), /entries must be an array of record names/)
    assert.throws(() => list.addEntry(7), /Entry must be a recordName/)
    assert.throws(() => list.addEntry('far', 5), /Index must be within current entries/)
    assert.throws(() => list.addEntry('negative', -1), /Index must be within current entries/)

    await sleep(QUIET_MS)
    const updates = sentRecordMessages(client, C.RECORD_ACTION.UPDATE)
    assert.equal(updates.length, 1, 'an invalid list change was sent')
    assert.deepEqual(list.getEntries(), ['only'])
  })

  suite.test('list deletion reaches other client', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const written = await readyList(writer, 'lists/delete')
    await withTimeout(written.setEntriesWithAck(['gone']), UPDATE_TIMEOUT_MS, 'the write ack')
    const watched = await readyList(watcher, 'lists/delete')
    let deleted = false
    watched.on('delete', () => { deleted = true })

    await withTimeout(written.delete(), UPDATE_TIMEOUT_MS, 'delete() to resolve')

    await waitFor(() => deleted, UPDATE_TIMEOUT_MS, 'the watcher\'s delete event')
    const recreated = await readyList(writer, 'lists/delete')
    assert.deepEqual({ entries: recreated.getEntries(), version: recreated.version }, { entries: [], version: 0 })
  })
})

describe('anonymous records', () => {
  const suite = serverSuite({}, RECORD_CLIENT_OPTIONS)

  /** Creates the records `<prefix>/one` and `<prefix>/two`, each with a `name` field. */
  async function createTwoRecords (client, prefix) {
    const one = await readyRecord(client, `${prefix}/one`)
    const two = await readyRecord(client, `${prefix}/two`)
    await withTimeout(Promise.all([one.setWithAck({ name: 'one' }), two.setWithAck({ name: 'two' })]),
      UPDATE_TIMEOUT_MS, 'the write acks')
    return { one, two }
  }

  suite.test('setName loads named record', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    await createTwoRecords(writer, 'anonymous/load')
    const reader = await suite.pool.login({ username: 'bob' })
    const anonymous = reader.record.getAnonymousRecord()

    assert.equal(anonymous.name, '')
    assert.equal(anonymous.isReady, false)
    assert.equal(anonymous.get(), undefined)

    await withTimeout(anonymous.setName('anonymous/load/one'), READY_TIMEOUT_MS, 'setName to resolve')

    assert.equal(anonymous.name, 'anonymous/load/one')
    assert.deepEqual({ data: anonymous.get(), version: anonymous.version }, { data: { name: 'one' }, version: 1 })
  })

  suite.test('subscription follows setName', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const { one, two } = await createTwoRecords(writer, 'anonymous/switch')
    const reader = await suite.pool.login({ username: 'bob' })
    const anonymous = reader.record.getAnonymousRecord()
    const names = []
    const renamed = []
    anonymous.subscribe('name', (value) => names.push(value))
    anonymous.on('nameChanged', (name) => renamed.push(name))

    await withTimeout(anonymous.setName('anonymous/switch/one'), READY_TIMEOUT_MS, 'the first setName')
    await waitFor(() => names.length === 1, UPDATE_TIMEOUT_MS, 'the callback for the first record')
    await withTimeout(anonymous.setName('anonymous/switch/two'), READY_TIMEOUT_MS, 'the second setName')
    await waitFor(() => names.length === 2, UPDATE_TIMEOUT_MS, 'the callback for the second record')
    assert.deepEqual(names, ['one', 'two'])
    assert.deepEqual(renamed, ['anonymous/switch/one', 'anonymous/switch/two'])

    // setName discarded the first record, so its subscription on the server ends.
    await waitForAck(reader, C.TOPIC.RECORD, C.RECORD_ACTION.UNSUBSCRIBE, 'anonymous/switch/one')
    one.set('name', 'one changed')
    two.set('name', 'two changed')

    await waitForData(anonymous, { name: 'two changed' }, 'the anonymous record')
    await sleep(QUIET_MS)
    assert.deepEqual(names, ['one', 'two', 'two changed'])
    assert.equal(anonymous.version, 2)
  })

  suite.test('writes go to current record', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const { one, two } = await createTwoRecords(writer, 'anonymous/write')
    const other = await suite.pool.login({ username: 'bob' })
    const anonymous = other.record.getAnonymousRecord()
    await withTimeout(anonymous.setName('anonymous/write/one'), READY_TIMEOUT_MS, 'the first setName')
    await withTimeout(anonymous.setName('anonymous/write/two'), READY_TIMEOUT_MS, 'the second setName')

    await withTimeout(anonymous.setWithAck('written', true), UPDATE_TIMEOUT_MS, 'the write ack')

    await waitForData(two, { name: 'two', written: true }, 'the record the anonymous record points at')
    await sleep(QUIET_MS)
    assert.deepEqual(one.get(), { name: 'one' }, 'a write went to the previous record')
  })
})
