// Records kept across a server restart by the default storage.
//
// Our server's default storage is an embedded store in one file. These
// tests set a relative path for it, which the server resolves against its
// working directory, the server's temporary folder. Each test restarts the
// server on the same config and folder.
//
// Skipped against deepstream 7.0.2: its default storage stores nothing and
// keeps records only in its in-memory cache, so every record is gone after a
// restart.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe } from 'node:test'
import { describeErrors, withTimeout } from './helpers/clients.mjs'
import {
  RECORD_CLIENT_OPTIONS, UPDATE_TIMEOUT_MS, readyList, readyRecord, recordChanges, waitForChanges
} from './helpers/records.mjs'
import { target } from './helpers/server.mjs'
import { serverSuite } from './helpers/suite.mjs'

const STORAGE_FILE = join('data', 'records.redb')
const KILLED_WRITES = 25

/** Opens `name` on a fresh client and returns its data and version. */
async function readBack (pool, name) {
  const reader = await pool.login({ username: 'reader' })
  const record = await readyRecord(reader, name)
  return { data: record.get(), version: record.version }
}

describe('records across restart', { skip: target() === 'node' && 'deepstream 7.0.2 keeps records in memory only' }, () => {
  const suite = serverSuite({ storage: { type: 'default', options: { path: STORAGE_FILE } } }, RECORD_CLIENT_OPTIONS)

  suite.test('records survive clean restart', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const whole = await readyRecord(writer, 'persist/whole')
    await withTimeout(whole.setWithAck({ text: 'grüße ✓', list: [1, { deep: true }] }), UPDATE_TIMEOUT_MS, 'write ack')
    const patched = await readyRecord(writer, 'persist/patched')
    await withTimeout(patched.setWithAck({ user: { name: 'ada', age: 36 } }), UPDATE_TIMEOUT_MS, 'write ack')
    await withTimeout(patched.setWithAck('user.name', 'bob'), UPDATE_TIMEOUT_MS, 'patch ack')
    await withTimeout(patched.eraseWithAck('user.age'), UPDATE_TIMEOUT_MS, 'erase ack')
    await withTimeout(writer.record.setDataWithAck('persist/set-data', { via: 'setData' }), UPDATE_TIMEOUT_MS, 'setData ack')
    const list = await readyList(writer, 'persist/list')
    await withTimeout(list.setEntriesWithAck(['persist/whole', 'persist/patched']), UPDATE_TIMEOUT_MS, 'list ack')
    const doomed = await readyRecord(writer, 'persist/deleted')
    await withTimeout(doomed.setWithAck({ soon: 'gone' }), UPDATE_TIMEOUT_MS, 'write ack')
    await withTimeout(doomed.delete(), UPDATE_TIMEOUT_MS, 'delete')
    assert.deepEqual(writer.errors, [], describeErrors(writer))

    const exit = await suite.restart('SIGINT')

    assert.deepEqual(exit, { code: 0, signal: null }, 'the server did not shut down cleanly on SIGINT')
    assert.ok(existsSync(join(suite.server.folder, STORAGE_FILE)),
      `no storage file at ${STORAGE_FILE} in the server's folder: storage.options.path was ignored`)
    assert.deepEqual(await readBack(suite.pool, 'persist/whole'),
      { data: { text: 'grüße ✓', list: [1, { deep: true }] }, version: 1 })
    assert.deepEqual(await readBack(suite.pool, 'persist/patched'), { data: { user: { name: 'bob' } }, version: 3 })
    assert.deepEqual(await readBack(suite.pool, 'persist/set-data'), { data: { via: 'setData' }, version: 1 })
    assert.deepEqual(await readBack(suite.pool, 'persist/list'),
      { data: ['persist/whole', 'persist/patched'], version: 1 })
    const reader = await suite.pool.login({ username: 'checker' })
    assert.equal(await withTimeout(reader.record.has('persist/deleted'), UPDATE_TIMEOUT_MS, 'has'), false,
      'a deleted record came back after the restart')
    assert.equal(await withTimeout(reader.record.head('persist/whole'), UPDATE_TIMEOUT_MS, 'head'), 1)
  })

  suite.test('acknowledged writes survive kill', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const acks = []
    for (let i = 0; i < KILLED_WRITES; i++) {
      acks.push(writer.record.setDataWithAck(`persist/killed/${i}`, { i }))
    }
    await withTimeout(Promise.all(acks), UPDATE_TIMEOUT_MS, `${KILLED_WRITES} write acks`)

    // SIGKILL gives the server no chance to flush anything, so only what was
    // durable when each ack was sent survives.
    const exit = await suite.restart('SIGKILL')

    assert.equal(exit.signal, 'SIGKILL')
    const reader = await suite.pool.login({ username: 'reader' })
    const snapshots = await withTimeout(
      Promise.all(Array.from({ length: KILLED_WRITES }, (_, i) => reader.record.snapshot(`persist/killed/${i}`))),
      UPDATE_TIMEOUT_MS, `${KILLED_WRITES} snapshots`)
    assert.deepEqual(snapshots, Array.from({ length: KILLED_WRITES }, (_, i) => ({ i })))
  })

  suite.test('versions continue after restart', async () => {
    const writer = await suite.pool.login({ username: 'ada' })
    const record = await readyRecord(writer, 'persist/versions')
    for (let i = 1; i <= 3; i++) {
      await withTimeout(record.setWithAck('step', i), UPDATE_TIMEOUT_MS, `write ack ${i}`)
    }

    await suite.restart('SIGINT')

    const after = await suite.pool.login({ username: 'ada' })
    const watcher = await suite.pool.login({ username: 'bob' })
    const reopened = await readyRecord(after, 'persist/versions')
    const watched = await readyRecord(watcher, 'persist/versions')
    const changes = recordChanges(watched)
    assert.deepEqual({ data: reopened.get(), version: reopened.version }, { data: { step: 3 }, version: 3 })

    await withTimeout(reopened.setWithAck('step', 4), UPDATE_TIMEOUT_MS, 'write ack after restart')

    await waitForChanges(changes, 1, 'the write after the restart')
    assert.deepEqual(changes, [{ data: { step: 4 }, version: 4 }])
    assert.deepEqual(after.errors, [], describeErrors(after))
  })
})
