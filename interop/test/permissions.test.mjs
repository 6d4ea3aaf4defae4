// Valve permission rules seen through the official client: both servers load
// the same permissions.yml and users.yml, and every test checks one kind of
// action once allowed and once denied.
//
// deepstream 7.0.2 sets the expectations:
// - A denied request gets MESSAGE_DENIED, and a rule that fails while it runs
//   gets MESSAGE_PERMISSION_ERROR. The client passes the error to the
//   request's callback or promise where the request has one (snapshot, has,
//   head, write acknowledgements, delete, RPC make, presence queries).
//   Otherwise it emits an `error` event with the action name and topic
//   (subscriptions, listening, emit, notify, provide). A record also reports
//   a denied subscription, delete or unacknowledged write through its own
//   `error` event.
// - Nothing of a denied request takes effect: no record is created or
//   changed, no event or call is delivered, no listener is registered.
//
// The rules avoid the documented differences between the two servers: every
// rule returns a boolean, so truthiness does not matter, no test erases a
// path, and every bulk message carries one name.
//
// The client counts a denied write into its local version, so the server
// replies INVALID_VERSION to the next write from that record. Tests therefore
// write again only through records that had no denied write.

import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe } from 'node:test'
import { C, describeErrors, settle, sleep, waitFor, waitForAck, withTimeout } from './helpers/clients.mjs'
import {
  QUIET_MS, READY_TIMEOUT_MS, RECORD_CLIENT_OPTIONS, UPDATE_TIMEOUT_MS,
  readyRecord, recordChanges, waitForChanges
} from './helpers/records.mjs'
import { fileLoad, target } from './helpers/server.mjs'
import { serverSuite } from './helpers/suite.mjs'

const NODE_MEMORY_STORAGE = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'node-memory-storage.cjs')
const DELIVERY_TIMEOUT_MS = 2000
const DENIED = 'MESSAGE_DENIED'
const PERMISSION_ERROR = 'MESSAGE_PERMISSION_ERROR'

// Patterns by rule:
// - private/$owner/*: user.id against a `$` capture, and user.data (serverData).
// - docs/*: data and oldData on writes, user.data on delete.
// - rooms/$room/*: a cross-record lookup of members/$room.
// - members/*: only admins create and change the member lists.
// - feeds/*, shared/*: listen and notify by role.
// - updates/*: the protocol action number (UPDATE is 18, PATCH 19).
// - stamped/*, sealed/*: the steps of getRecord and setData, each checked
//   with its own action, and the read rule of a record getRecord creates.
const PERMISSIONS_YML = `
record:
  "*":
    create: true
    read: true
    write: true
    delete: false
    listen: false
    notify: false
  "private/$owner/*":
    create: "user.id === $owner"
    read: "user.id === $owner || user.data.role === 'admin'"
    write: "user.id === $owner"
  "docs/*":
    write: "typeof data.title === 'string' && data.title.length <= 20 && (oldData === null || oldData.locked !== true)"
    delete: "user.data.role === 'admin'"
  "rooms/$room/*":
    read: "_('members/' + $room).users.indexOf(user.id) !== -1"
  "members/*":
    create: "user.data.role === 'admin'"
    write: "user.data.role === 'admin'"
  "feeds/*":
    listen: "user.data.role === 'admin'"
  "shared/*":
    notify: "user.data.role === 'admin'"
  "updates/*":
    write: "action === 18"
  "stamped/*":
    create: "action === 15"
    read: "action === 3"
    write: "action === 18"
  "sealed/*":
    read: false
event:
  "*":
    publish: true
    subscribe: true
    listen: false
  "news/*":
    publish: "user.data.role === 'admin'"
  "chat/$room":
    publish: "typeof data === 'string' && data.length <= 20"
    subscribe: "$room !== 'staff' || user.data.role === 'admin'"
  "feeds/*":
    listen: "user.data.role === 'admin'"
rpc:
  "*":
    provide: true
    request: true
  "admin/*":
    provide: "user.data.role === 'admin'"
  "math/$operation":
    request: "typeof data.a === 'number' && typeof data.b === 'number' && $operation !== 'divide'"
presence:
  "*":
    allow: "user.data.role !== 'guest'"
`

// Plain-text passwords: this file tests rules, and auth.test.mjs tests hashes.
// clientData differs from serverData so that a rule reading the wrong one fails.
const USERS_YML = `
alice:
  password: alice-password
  clientData:
    role: guest
  serverData:
    role: admin
bob:
  password: bob-password
  serverData:
    role: member
carol:
  password: carol-password
  serverData:
    role: guest
dave:
  password: dave-password
  serverData:
    role: member
`

/** Describes what a client reported through its `error` event, as `TOPIC/EVENT` strings. */
function reportedErrors (client) {
  return client.errors.map(({ topic, event }) => `${topic}/${event}`)
}

/**
 * Waits until `client` has emitted `expected.length` error events, waits
 * QUIET_MS more for any extra one, and checks them (`TOPIC/EVENT` strings).
 */
async function assertReportedErrors (client, expected) {
  await waitFor(() => client.errors.length >= expected.length, UPDATE_TIMEOUT_MS,
    `${expected.length} error events (so far: ${describeErrors(client)})`)
  await sleep(QUIET_MS)
  assert.deepEqual(reportedErrors(client), expected, describeErrors(client))
}

/** Collects a record's `error` events as `[error, originalAction]` pairs. */
function recordErrors (record) {
  const errors = []
  record.on('error', (error, originalAction) => errors.push([error, originalAction]))
  return errors
}

/** Returns 'pending' when `promise` has not settled after `ms`, else its outcome. */
async function stateAfter (promise, ms) {
  const outcome = promise.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error })
  )
  return Promise.race([outcome, sleep(ms).then(() => 'pending')])
}

/** Settles a request of the client within the update timeout, to `{ ok, value }` or `{ ok, error }`. */
function outcomeOf (promise, description) {
  return settle(promise, UPDATE_TIMEOUT_MS, description)
}

/** Subscribes `client` to event `name`, waits for the server's reply and returns the received data list. */
async function subscribeEvent (client, name) {
  const received = []
  client.event.subscribe(name, (data) => received.push(data))
  await waitForReply(client, C.TOPIC.EVENT, C.EVENT_ACTION.SUBSCRIBE, name)
  return received
}

/**
 * Waits until the server replied to the message in which `client` sent
 * `action` on `topic` for `name`: with an ack, or with an error whose original
 * action is `action`. Bulk messages are matched by their correlation id.
 */
async function waitForReply (client, topic, action, name) {
  const request = `${C.TOPIC[topic]} action ${action} for '${name}'`
  const sent = await waitFor(() => client.tap.sent.find((message) =>
    message.topic === topic && message.action === action &&
    (message.name === name || (message.names || []).includes(name))
  ), UPDATE_TIMEOUT_MS, `the client to send ${request}`)
  return waitFor(() => client.tap.received.find((message) =>
    message.topic === topic &&
    ((message.isAck && message.action === action) || (message.isError && message.originalAction === action)) &&
    (sent.correlationId === undefined ? message.name === name : message.correlationId === sent.correlationId)
  ), UPDATE_TIMEOUT_MS, `the reply to ${request}`)
}

/** Makes RPC `name` with `data` and resolves to the callback's `{ error, result }`. */
function makeRpc (client, name, data) {
  const call = new Promise((resolve) => {
    client.rpc.make(name, data, (error, result) => resolve({ error, result }))
  })
  return withTimeout(call, UPDATE_TIMEOUT_MS, `the result of rpc '${name}'`)
}

describe('permission rules', () => {
  // deepstream 7.0.2's default storage keeps nothing, so a record that notify
  // drops from its cache would be gone. This plugin keeps a copy, as our
  // server's default storage does.
  const storage = target() === 'node' ? { path: NODE_MEMORY_STORAGE } : undefined
  const suite = serverSuite({
    auth: [{ type: 'file', options: { users: fileLoad('users.yml') } }],
    permission: { type: 'config', options: { permissions: fileLoad('permissions.yml') } },
    storage,
    files: { 'permissions.yml': PERMISSIONS_YML, 'users.yml': USERS_YML }
  }, RECORD_CLIENT_OPTIONS)

  /** Logs `user` in with the password from USERS_YML. */
  function login (user) {
    return suite.pool.login({ username: user, password: `${user}-password` })
  }

  // Each test uses record names of its own, because records outlive a test.
  let nameCount = 0
  function unique (prefix) {
    nameCount += 1
    return `${prefix}${Date.now().toString(36)}-${nameCount}`
  }

  suite.test('login returns clientData only', async () => {
    // The rules read serverData, which the client never receives.
    const client = suite.pool.create()

    const clientData = await withTimeout(client.login({ username: 'alice', password: 'alice-password' }),
      UPDATE_TIMEOUT_MS, 'the login of alice')

    assert.deepEqual(clientData, { role: 'guest' })
  })

  suite.test('record create by owner only', async () => {
    const bob = await login('bob')
    const alice = await login('alice')
    const ownName = unique('private/bob/own-')
    const otherName = unique('private/bob/other-')

    const own = await readyRecord(bob, ownName)
    const other = alice.record.getRecord(otherName)
    const otherErrors = recordErrors(other)

    await assertReportedErrors(alice, [`RECORD/${DENIED}`])
    assert.equal(other.isReady, false, 'a record whose create was denied became ready')
    assert.deepEqual(otherErrors, [[DENIED, 'SUBSCRIBECREATEANDREAD']])
    assert.equal(own.version, 0)
    assert.deepEqual(bob.errors, [], describeErrors(bob))
    // The denied request created nothing.
    assert.deepEqual(await outcomeOf(bob.record.has(otherName), 'has'), { ok: true, value: false })
  })

  suite.test('record read by owner or admin', async () => {
    const bob = await login('bob')
    const name = unique('private/bob/read-')
    const record = await readyRecord(bob, name)
    await withTimeout(record.setWithAck({ secret: 'bob' }), UPDATE_TIMEOUT_MS, 'the write of bob')
    const alice = await login('alice')
    const carol = await login('carol')

    const allowed = await readyRecord(alice, name)
    const denied = carol.record.getRecord(name)
    const deniedErrors = recordErrors(denied)

    assert.deepEqual(allowed.get(), { secret: 'bob' })
    await assertReportedErrors(carol, [`RECORD/${DENIED}`])
    assert.equal(denied.isReady, false, 'a record whose read was denied became ready')
    assert.deepEqual(denied.get(), {}, 'a denied read delivered data')
    assert.deepEqual(deniedErrors, [[DENIED, 'SUBSCRIBECREATEANDREAD']])
    assert.deepEqual(alice.errors, [], describeErrors(alice))
  })

  suite.test('snapshot, has and head by read rule', async () => {
    const bob = await login('bob')
    const name = unique('private/bob/query-')
    await withTimeout(bob.record.setDataWithAck(name, { secret: 'bob' }), UPDATE_TIMEOUT_MS, 'the write of bob')
    // Fresh clients, because a client serves these queries from a record it
    // already holds, without a request to the server.
    const alice = await login('alice')
    const carol = await login('carol')

    assert.deepEqual(await outcomeOf(alice.record.snapshot(name), 'snapshot'), { ok: true, value: { secret: 'bob' } })
    assert.deepEqual(await outcomeOf(alice.record.has(name), 'has'), { ok: true, value: true })
    assert.deepEqual(await outcomeOf(alice.record.head(name), 'head'), { ok: true, value: 1 })
    assert.deepEqual(await outcomeOf(carol.record.snapshot(name), 'snapshot'), { ok: false, error: DENIED })
    assert.deepEqual(await outcomeOf(carol.record.has(name), 'has'), { ok: false, error: DENIED })
    assert.deepEqual(await outcomeOf(carol.record.head(name), 'head'), { ok: false, error: DENIED })
    await sleep(QUIET_MS)
    assert.deepEqual(alice.errors, [], describeErrors(alice))
    assert.deepEqual(carol.errors, [], describeErrors(carol))
  })

  suite.test('read rule with cross-record lookup', async () => {
    const alice = await login('alice')
    const room = unique('room-')
    const name = `rooms/${room}/topic`
    await withTimeout(alice.record.setDataWithAck(`members/${room}`, { users: ['alice', 'bob'] }),
      UPDATE_TIMEOUT_MS, 'the member list')
    await withTimeout(alice.record.setDataWithAck(name, { text: 'welcome' }), UPDATE_TIMEOUT_MS, 'the topic')
    const bob = await login('bob')
    const carol = await login('carol')

    assert.deepEqual(await outcomeOf(bob.record.snapshot(name), 'snapshot'), { ok: true, value: { text: 'welcome' } })
    assert.deepEqual(await outcomeOf(carol.record.snapshot(name), 'snapshot'), { ok: false, error: DENIED })

    // The rule reads the member list as it is at the time of the request.
    await withTimeout(alice.record.setDataWithAck(`members/${room}`, { users: ['alice', 'bob', 'carol'] }),
      UPDATE_TIMEOUT_MS, 'the new member list')
    const carolAgain = await login('carol')
    assert.deepEqual(await outcomeOf(carolAgain.record.snapshot(name), 'snapshot'), { ok: true, value: { text: 'welcome' } })
  })

  suite.test('lookup of missing record fails rule', async () => {
    // _() of a record that does not exist is null, so `.users` throws.
    const bob = await login('bob')
    const name = `rooms/${unique('nowhere-')}/topic`

    const outcome = await outcomeOf(bob.record.snapshot(name), 'snapshot')

    assert.deepEqual(outcome, { ok: false, error: PERMISSION_ERROR })
    await sleep(QUIET_MS)
    assert.deepEqual(bob.errors, [], describeErrors(bob))
  })

  suite.test('member list changes by admin only', async () => {
    const alice = await login('alice')
    const bob = await login('bob')
    const listName = unique('members/')

    const bobCreate = await outcomeOf(bob.record.setDataWithAck(listName, { users: ['bob'] }), 'the create of bob')
    const aliceCreate = await outcomeOf(alice.record.setDataWithAck(listName, { users: ['alice'] }), 'the create of alice')
    const record = await readyRecord(bob, listName)
    const bobWrite = await outcomeOf(record.setWithAck({ users: ['alice', 'bob'] }), 'the write of bob')

    assert.deepEqual(bobCreate, { ok: false, error: DENIED })
    assert.deepEqual(aliceCreate, { ok: true, value: undefined })
    assert.deepEqual(bobWrite, { ok: false, error: DENIED })
    const reader = await login('dave')
    assert.deepEqual(await outcomeOf(reader.record.snapshot(listName), 'snapshot'), { ok: true, value: { users: ['alice'] } })
  })

  suite.test('write rule checks data', async () => {
    const bob = await login('bob')
    const name = unique('docs/data-')

    const valid = await outcomeOf(bob.record.setDataWithAck(name, { title: 'short' }), 'a valid write')
    const tooLong = await outcomeOf(bob.record.setDataWithAck(name, { title: 'x'.repeat(21) }), 'a long title')
    const missing = await outcomeOf(bob.record.setDataWithAck(name, { body: 'no title' }), 'a missing title')

    assert.deepEqual(valid, { ok: true, value: undefined })
    assert.deepEqual(tooLong, { ok: false, error: DENIED })
    assert.deepEqual(missing, { ok: false, error: DENIED })
    const reader = await login('dave')
    assert.deepEqual(await outcomeOf(reader.record.snapshot(name), 'snapshot'), { ok: true, value: { title: 'short' } })
  })

  suite.test('patch rule sees whole record', async () => {
    // A patch of `body` passes the title check because `data` is the record
    // after the patch, not only the patched value.
    const bob = await login('bob')
    const watcher = await login('dave')
    const name = unique('docs/patch-')
    await withTimeout(bob.record.setDataWithAck(name, { title: 'patched' }), UPDATE_TIMEOUT_MS, 'the first write')
    const record = await readyRecord(bob, name)
    const watched = await readyRecord(watcher, name)
    const changes = recordChanges(watched)

    const outcome = await outcomeOf(record.setWithAck('body', 'text'), 'the patch')

    assert.deepEqual(outcome, { ok: true, value: undefined })
    await waitForChanges(changes, 1, 'the patch at the watcher')
    assert.deepEqual(changes, [{ data: { title: 'patched', body: 'text' }, version: 2 }])
    assert.deepEqual(bob.errors, [], describeErrors(bob))
  })

  suite.test('denied set with path', async () => {
    const bob = await login('bob')
    const watcher = await login('dave')
    const name = unique('docs/path-')
    await withTimeout(bob.record.setDataWithAck(name, { title: 'before' }), UPDATE_TIMEOUT_MS, 'the first write')
    const record = await readyRecord(bob, name)
    const errors = recordErrors(record)
    const watched = await readyRecord(watcher, name)
    const changes = recordChanges(watched)

    record.set('title', 42)

    await waitFor(() => errors.length === 1, UPDATE_TIMEOUT_MS, 'the record error event')
    await sleep(QUIET_MS)
    assert.deepEqual(errors, [[DENIED, 'PATCH']])
    assert.deepEqual(bob.errors, [], 'a denied write emitted a client error event: ' + describeErrors(bob))
    assert.deepEqual(changes, [], 'the watcher saw a denied write')
    const reader = await login('carol')
    assert.deepEqual(await outcomeOf(reader.record.snapshot(name), 'snapshot'), { ok: true, value: { title: 'before' } })
  })

  suite.test('denied set without path', async () => {
    const bob = await login('bob')
    const name = unique('docs/update-')
    await withTimeout(bob.record.setDataWithAck(name, { title: 'before' }), UPDATE_TIMEOUT_MS, 'the first write')
    const record = await readyRecord(bob, name)
    const errors = recordErrors(record)

    record.set({ body: 'no title' })

    await waitFor(() => errors.length === 1, UPDATE_TIMEOUT_MS, 'the record error event')
    await sleep(QUIET_MS)
    assert.deepEqual(errors, [[DENIED, 'UPDATE']])
    assert.deepEqual(bob.errors, [], describeErrors(bob))
  })

  suite.test('setWithAck callback gets denial', async () => {
    const bob = await login('bob')
    const name = unique('docs/ack-')
    await withTimeout(bob.record.setDataWithAck(name, { title: 'before' }), UPDATE_TIMEOUT_MS, 'the first write')
    const withPath = await readyRecord(bob, name)
    const pathErrors = recordErrors(withPath)
    const other = await login('dave')
    const whole = await readyRecord(other, name)

    const pathResult = await withTimeout(new Promise((resolve) => {
      withPath.set('title', 'y'.repeat(25), (error) => resolve(error))
    }), UPDATE_TIMEOUT_MS, 'the write callback')
    const wholeResult = await outcomeOf(whole.setWithAck({ title: 'fine', body: 'x' }), 'setWithAck of dave')

    assert.equal(pathResult, DENIED)
    // dave may write: the rule limits the data, not the user.
    assert.deepEqual(wholeResult, { ok: true, value: undefined })
    await sleep(QUIET_MS)
    // An acknowledged write reports only through its callback.
    assert.deepEqual(pathErrors, [])
    assert.deepEqual(bob.errors, [], describeErrors(bob))
  })

  suite.test('write rule checks oldData', async () => {
    const bob = await login('bob')
    const name = unique('docs/locked-')
    // A new record has no old data, so this first write passes.
    const lock = await outcomeOf(bob.record.setDataWithAck(name, { title: 'frozen', locked: true }), 'the locking write')
    const editor = await login('dave')
    const record = await readyRecord(editor, name)

    const edit = await outcomeOf(record.setWithAck({ title: 'thawed', locked: false }), 'a write to the locked record')

    assert.deepEqual(lock, { ok: true, value: undefined })
    assert.deepEqual(edit, { ok: false, error: DENIED })
    const reader = await login('carol')
    assert.deepEqual(await outcomeOf(reader.record.snapshot(name), 'snapshot'),
      { ok: true, value: { title: 'frozen', locked: true } })
  })

  suite.test('record delete by role', async () => {
    const bob = await login('bob')
    const name = unique('docs/delete-')
    await withTimeout(bob.record.setDataWithAck(name, { title: 'doomed' }), UPDATE_TIMEOUT_MS, 'the first write')
    const record = await readyRecord(bob, name)
    const errors = recordErrors(record)

    const denied = await outcomeOf(record.delete(), 'the delete of bob')

    assert.deepEqual(denied, { ok: false, error: DENIED })
    assert.deepEqual(errors, [[DENIED, 'DELETE']])
    assert.deepEqual(bob.errors, [], describeErrors(bob))
    // The client would log an invalid state change when the record it failed
    // to delete is deleted after all, so bob leaves first.
    bob.close()

    const alice = await login('alice')
    const reader = await login('carol')
    assert.deepEqual(await outcomeOf(reader.record.has(name), 'has after the denied delete'), { ok: true, value: true })
    const adminRecord = await readyRecord(alice, name)
    const allowed = await outcomeOf(adminRecord.delete(), 'the delete of alice')
    assert.deepEqual(allowed, { ok: true, value: undefined })
    const laterReader = await login('dave')
    assert.deepEqual(await outcomeOf(laterReader.record.has(name), 'has after the delete'), { ok: true, value: false })
  })

  suite.test('record listen by role', async () => {
    const alice = await login('alice')
    const bob = await login('bob')
    const subscriber = await login('carol')
    const offered = { alice: [], bob: [] }
    bob.record.listen('feeds/.*', (name, response) => {
      offered.bob.push(name)
      response.accept()
    })
    await assertReportedErrors(bob, [`RECORD/${DENIED}`])
    alice.record.listen('feeds/.*', (name, response) => {
      offered.alice.push(name)
      response.accept()
    })
    await waitForAck(alice, C.TOPIC.RECORD, C.RECORD_ACTION.LISTEN, 'feeds/.*')

    const name = unique('feeds/record-')
    await readyRecord(subscriber, name)

    await waitFor(() => offered.alice.length === 1, DELIVERY_TIMEOUT_MS, 'the listener of alice to get the subscription')
    await sleep(QUIET_MS)
    assert.deepEqual(offered, { alice: [name], bob: [] })
    assert.deepEqual(alice.errors, [], describeErrors(alice))
  })

  suite.test('notify by role', async () => {
    const alice = await login('alice')
    const bob = await login('bob')
    const name = unique('shared/')
    await withTimeout(alice.record.setDataWithAck(name, { value: 1 }), UPDATE_TIMEOUT_MS, 'the first write')

    const denied = bob.record.notify([name])
    await assertReportedErrors(bob, [`RECORD/${DENIED}`])
    const allowed = await outcomeOf(alice.record.notify([name]), 'the notify of alice')

    // The client settles a notify only on its acknowledgement or a notify error.
    assert.equal(await stateAfter(denied, QUIET_MS), 'pending')
    assert.deepEqual(allowed, { ok: true, value: undefined })
    assert.deepEqual(alice.errors, [], describeErrors(alice))
    // The record is read again from the storage after the notify.
    const reader = await login('dave')
    assert.deepEqual(await outcomeOf(reader.record.snapshot(name), 'snapshot'), { ok: true, value: { value: 1 } })
  })

  suite.test('event publish by role', async () => {
    const alice = await login('alice')
    const bob = await login('bob')
    const subscriber = await login('carol')
    const name = unique('news/')
    const received = await subscribeEvent(subscriber, name)

    bob.event.emit(name, 'from bob')
    await assertReportedErrors(bob, [`EVENT/${DENIED}`])
    alice.event.emit(name, 'from alice')

    await waitFor(() => received.length === 1, DELIVERY_TIMEOUT_MS, 'the event of alice')
    await sleep(QUIET_MS)
    assert.deepEqual(received, ['from alice'])
    assert.deepEqual(alice.errors, [], describeErrors(alice))
    assert.deepEqual(subscriber.errors, [], describeErrors(subscriber))
  })

  suite.test('event publish rule checks data', async () => {
    const bob = await login('bob')
    const subscriber = await login('carol')
    const name = unique('chat/general-')
    const received = await subscribeEvent(subscriber, name)

    bob.event.emit(name, 'x'.repeat(21))
    bob.event.emit(name, 42)
    bob.event.emit(name)
    await assertReportedErrors(bob, [`EVENT/${DENIED}`, `EVENT/${DENIED}`, `EVENT/${DENIED}`])
    bob.event.emit(name, 'short')

    await waitFor(() => received.length === 1, DELIVERY_TIMEOUT_MS, 'the valid event')
    await sleep(QUIET_MS)
    assert.deepEqual(received, ['short'])
  })

  suite.test('event subscribe by capture and role', async () => {
    const alice = await login('alice')
    const bob = await login('bob')
    const emitter = await login('carol')
    const allowed = await subscribeEvent(alice, 'chat/staff')
    const denied = await subscribeEvent(bob, 'chat/staff')
    const denial = bob.tap.received.find((message) => message.isError && message.name === 'chat/staff')

    emitter.event.emit('chat/staff', 'meeting')

    await waitFor(() => allowed.length === 1, DELIVERY_TIMEOUT_MS, 'the event at alice')
    await sleep(QUIET_MS)
    assert.equal(denial?.action, C.EVENT_ACTION.MESSAGE_DENIED, 'the server did not deny the subscription of bob')
    assert.deepEqual(allowed, ['meeting'])
    assert.deepEqual(denied, [])
    assert.deepEqual(reportedErrors(bob), [`EVENT/${DENIED}`])
    assert.deepEqual(alice.errors, [], describeErrors(alice))
  })

  suite.test('event listen by role', async () => {
    const alice = await login('alice')
    const bob = await login('bob')
    const subscriber = await login('carol')
    const offered = { alice: [], bob: [] }
    bob.event.listen('feeds/.*', (name, response) => {
      offered.bob.push(name)
      response.accept()
    })
    await assertReportedErrors(bob, [`EVENT/${DENIED}`])
    alice.event.listen('feeds/.*', (name, response) => {
      offered.alice.push(name)
      response.accept()
    })
    await waitForAck(alice, C.TOPIC.EVENT, C.EVENT_ACTION.LISTEN, 'feeds/.*')

    const name = unique('feeds/event-')
    await subscribeEvent(subscriber, name)

    await waitFor(() => offered.alice.length === 1, DELIVERY_TIMEOUT_MS, 'the listener of alice to get the subscription')
    await sleep(QUIET_MS)
    assert.deepEqual(offered, { alice: [name], bob: [] })
    assert.deepEqual(alice.errors, [], describeErrors(alice))
  })

  suite.test('rpc provide by role', async () => {
    const alice = await login('alice')
    const bob = await login('bob')
    const caller = await login('carol')
    const name = unique('admin/')
    const calls = { alice: 0, bob: 0 }

    bob.rpc.provide(name, (data, response) => {
      calls.bob += 1
      response.send('bob')
    })
    await assertReportedErrors(bob, [`RPC/${DENIED}`])
    const unprovided = await makeRpc(caller, name, null)
    alice.rpc.provide(name, (data, response) => {
      calls.alice += 1
      response.send('alice')
    })
    await waitForAck(alice, C.TOPIC.RPC, C.RPC_ACTION.PROVIDE, name)
    const provided = await makeRpc(caller, name, null)

    assert.deepEqual(unprovided, { error: 'NO_RPC_PROVIDER', result: undefined })
    assert.deepEqual(provided, { error: null, result: 'alice' })
    assert.deepEqual(calls, { alice: 1, bob: 0 })
    assert.deepEqual(caller.errors, [], describeErrors(caller))
  })

  suite.test('rpc request rule checks data', async () => {
    const provider = await login('alice')
    const caller = await login('bob')
    const requests = []
    for (const operation of ['add', 'divide']) {
      provider.rpc.provide(`math/${operation}`, (data, response) => {
        requests.push([operation, data])
        response.send(operation === 'add' ? data.a + data.b : data.a / data.b)
      })
      await waitForAck(provider, C.TOPIC.RPC, C.RPC_ACTION.PROVIDE, `math/${operation}`)
    }

    const sum = await makeRpc(caller, 'math/add', { a: 1, b: 2 })
    const text = await makeRpc(caller, 'math/add', { a: '1', b: 2 })
    const divide = await makeRpc(caller, 'math/divide', { a: 1, b: 2 })
    const promised = await outcomeOf(caller.rpc.make('math/add', { a: 1 }), 'make without b')

    assert.deepEqual(sum, { error: null, result: 3 })
    assert.deepEqual(text, { error: DENIED, result: undefined })
    assert.deepEqual(divide, { error: DENIED, result: undefined })
    assert.deepEqual(promised, { ok: false, error: DENIED })
    assert.deepEqual(requests, [['add', { a: 1, b: 2 }]])
    await sleep(QUIET_MS)
    assert.deepEqual(caller.errors, [], describeErrors(caller))
  })

  suite.test('presence queries by role', async () => {
    const bob = await login('bob')
    const carol = await login('carol')

    const all = await outcomeOf(bob.presence.getAll(), 'getAll of bob')
    // erin is not a user, so she is never online.
    const some = await outcomeOf(bob.presence.getAll(['carol', 'erin']), 'getAll of some users')
    const deniedAll = await outcomeOf(carol.presence.getAll(), 'getAll of carol')
    const deniedSome = await outcomeOf(carol.presence.getAll(['bob']), 'getAll of bob by carol')

    assert.ok(all.ok, `getAll failed: ${JSON.stringify(all.error)}`)
    assert.deepEqual(all.value.filter((user) => user === 'carol'), ['carol'])
    assert.deepEqual(some, { ok: true, value: { carol: true, erin: false } })
    assert.deepEqual(deniedAll, { ok: false, error: DENIED })
    assert.deepEqual(deniedSome, { ok: false, error: DENIED })
    await sleep(QUIET_MS)
    assert.deepEqual(bob.errors, [], describeErrors(bob))
    assert.deepEqual(carol.errors, [], describeErrors(carol))
  })

  suite.test('presence subscribe by role', async () => {
    const bob = await login('bob')
    const carol = await login('carol')
    const seen = { bob: [], bobAll: [], carol: [], carolAll: [] }
    bob.presence.subscribe('dave', (user, online) => seen.bob.push([user, online]))
    await waitForAck(bob, C.TOPIC.PRESENCE, C.PRESENCE_ACTION.SUBSCRIBE, 'dave')
    bob.presence.subscribe((user, online) => seen.bobAll.push([user, online]))
    await waitForAck(bob, C.TOPIC.PRESENCE, C.PRESENCE_ACTION.SUBSCRIBE_ALL)
    carol.presence.subscribe('dave', (user, online) => seen.carol.push([user, online]))
    await assertReportedErrors(carol, [`PRESENCE/${DENIED}`])
    carol.presence.subscribe((user, online) => seen.carolAll.push([user, online]))
    await assertReportedErrors(carol, [`PRESENCE/${DENIED}`, `PRESENCE/${DENIED}`])

    await login('dave')

    const daveInAll = () => seen.bobAll.filter(([user]) => user === 'dave')
    await waitFor(() => seen.bob.length === 1 && daveInAll().length === 1, DELIVERY_TIMEOUT_MS, 'the join of dave')
    await sleep(QUIET_MS)
    assert.deepEqual(seen.bob, [['dave', true]])
    // The leaves of the previous test's users may still arrive, so only dave counts here.
    assert.deepEqual(daveInAll(), [['dave', true]])
    assert.deepEqual(seen.carol, [])
    assert.deepEqual(seen.carolAll, [])
    assert.deepEqual(bob.errors, [], describeErrors(bob))
  })

  suite.test('write rule sees action number', async () => {
    const bob = await login('bob')
    const record = await readyRecord(bob, unique('updates/'))

    const update = await outcomeOf(record.setWithAck({ count: 1 }), 'an update')
    const patch = await outcomeOf(record.setWithAck('count', 2), 'a patch')

    assert.deepEqual(update, { ok: true, value: undefined })
    assert.deepEqual(patch, { ok: false, error: DENIED })
  })

  // Both servers check the steps of getRecord and setData with the action of
  // the step: CREATE (15) and READ (3) for getRecord, CREATE and UPDATE (18)
  // for setData, also when setData has a path.
  suite.test('getRecord and setData see step actions', async () => {
    const bob = await login('bob')
    const setName = unique('stamped/set-')

    const created = bob.record.getRecord(unique('stamped/get-'))
    const createdState = await stateAfter(created.whenReady().then(() => 'ready'), READY_TIMEOUT_MS)
    const set = await outcomeOf(bob.record.setDataWithAck(setName, { a: 1 }), 'setData')
    const patched = await outcomeOf(bob.record.setDataWithAck(unique('stamped/patch-'), 'a', 1), 'setData with path')
    const reader = await login('dave')
    const existing = reader.record.getRecord(setName)
    const existingState = await stateAfter(existing.whenReady().then(() => 'ready'), READY_TIMEOUT_MS)

    assert.deepEqual(createdState, { ok: true, value: 'ready' })
    assert.deepEqual(set, { ok: true, value: undefined })
    assert.deepEqual(patched, { ok: true, value: undefined })
    assert.deepEqual(existingState, { ok: true, value: 'ready' })
  })

  // getRecord of a new record checks the create rule and then the read rule,
  // so a user who may create but not read gets MESSAGE_DENIED.
  suite.test('getRecord of new record checks read', async () => {
    const bob = await login('bob')
    const record = bob.record.getRecord(unique('sealed/'))
    const errors = recordErrors(record)

    await assertReportedErrors(bob, [`RECORD/${DENIED}`])
    assert.equal(record.isReady, false, 'a record whose read is denied became ready')
    assert.deepEqual(errors, [[DENIED, 'SUBSCRIBECREATEANDREAD']])
  })

  suite.test('guard: denied record never becomes ready', async () => {
    // The read is denied, and the client must not fall back to an empty
    // record that it could then write.
    const carol = await login('carol')
    const name = unique('private/bob/guard-')
    const record = carol.record.getRecord(name)

    const ready = await stateAfter(record.whenReady(), READY_TIMEOUT_MS / 3)

    assert.equal(ready, 'pending')
    assert.deepEqual(reportedErrors(carol), [`RECORD/${DENIED}`])
  })
})
