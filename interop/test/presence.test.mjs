// Presence: who is online, and join and leave notifications.
//
// Only named users log in here. deepstream 7.0.2 lists clients that log in
// without a username as a user called 'open'.

import assert from 'node:assert/strict'
import { afterEach, describe } from 'node:test'
import { C, describeErrors, sleep, waitFor, waitForAck, withTimeout } from './helpers/clients.mjs'
import { serverSuite } from './helpers/suite.mjs'

const NOTICE_TIMEOUT_MS = 3000
// Time in which a notification that should not come would have arrived.
const QUIET_MS = 300

async function subscribeAll (client) {
  const changes = []
  client.presence.subscribe((user, online) => changes.push([user, online]))
  await waitForAck(client, C.TOPIC.PRESENCE, C.PRESENCE_ACTION.SUBSCRIBE_ALL)
  return changes
}

async function subscribeUser (client, user) {
  const changes = []
  client.presence.subscribe(user, (name, online) => changes.push([name, online]))
  await waitForAck(client, C.TOPIC.PRESENCE, C.PRESENCE_ACTION.SUBSCRIBE, user)
  return changes
}

function getAll (client, users) {
  const query = users === undefined ? client.presence.getAll() : client.presence.getAll(users)
  return withTimeout(query, NOTICE_TIMEOUT_MS, 'the presence query result')
}

describe('presence', () => {
  const suite = serverSuite()

  // Each test starts with no user online, so that user lists can be compared whole.
  afterEach(async () => {
    suite.pool.closeAll()
    const probe = await suite.pool.login({ username: 'presence-probe' })
    let online = []
    await waitFor(async () => {
      online = await getAll(probe)
      return online.length === 0
    }, NOTICE_TIMEOUT_MS, 'every user of the test to go offline').catch((error) => {
      error.message += ` (still online: ${JSON.stringify(online)})`
      throw error
    })
    suite.pool.closeAll()
  })

  suite.test('subscriber sees join and leave', async () => {
    const watcher = await suite.pool.login({ username: 'ada' })
    const changes = await subscribeAll(watcher)

    const bob = await suite.pool.login({ username: 'bob' })
    await waitFor(() => changes.length === 1, NOTICE_TIMEOUT_MS, 'the join of bob')
    bob.close()
    await waitFor(() => changes.length === 2, NOTICE_TIMEOUT_MS, 'the leave of bob')

    assert.deepEqual(changes, [['bob', true], ['bob', false]])
    assert.deepEqual(watcher.errors, [], describeErrors(watcher))
  })

  suite.test('user subscription sees only that user', async () => {
    const watcher = await suite.pool.login({ username: 'ada' })
    const changes = await subscribeUser(watcher, 'bob')

    const carl = await suite.pool.login({ username: 'carl' })
    const bob = await suite.pool.login({ username: 'bob' })
    await waitFor(() => changes.length === 1, NOTICE_TIMEOUT_MS, 'the join of bob')
    carl.close()
    bob.close()
    await waitFor(() => changes.length === 2, NOTICE_TIMEOUT_MS, 'the leave of bob')
    await sleep(QUIET_MS)

    assert.deepEqual(changes, [['bob', true], ['bob', false]])
  })

  suite.test('getAll lists other users', async () => {
    const ada = await suite.pool.login({ username: 'ada' })
    await suite.pool.login({ username: 'bob' })
    await suite.pool.login({ username: 'carl' })

    const online = await getAll(ada)

    assert.deepEqual([...online].sort(), ['bob', 'carl'], 'other users, without the caller')
  })

  suite.test('getAll alone returns empty list', async () => {
    const ada = await suite.pool.login({ username: 'ada' })

    assert.deepEqual(await getAll(ada), [])
  })

  suite.test('getAll with names returns each user state', async () => {
    const ada = await suite.pool.login({ username: 'ada' })
    await suite.pool.login({ username: 'bob' })

    const states = await getAll(ada, ['bob', 'zoe', 'ada'])

    assert.deepEqual(states, { bob: true, zoe: false, ada: true })
  })

  suite.test('user online until last connection closes', async () => {
    const watcher = await suite.pool.login({ username: 'ada' })
    const changes = await subscribeAll(watcher)
    const first = await suite.pool.login({ username: 'bob' })
    const second = await suite.pool.login({ username: 'bob' })
    await waitFor(() => changes.length === 1, NOTICE_TIMEOUT_MS, 'the join of bob')

    first.close()
    await sleep(QUIET_MS)
    assert.deepEqual(await getAll(watcher, ['bob']), { bob: true }, 'offline while a connection remains')
    assert.deepEqual(changes, [['bob', true]], 'a second connection or its close was announced')

    second.close()
    await waitFor(() => changes.length === 2, NOTICE_TIMEOUT_MS, 'the leave of bob')
    assert.deepEqual(changes, [['bob', true], ['bob', false]])
    assert.deepEqual(await getAll(watcher, ['bob']), { bob: false })
  })

  suite.test('unsubscribe ends notifications', async () => {
    const watcher = await suite.pool.login({ username: 'ada' })
    const changes = []
    const callback = (user, online) => changes.push([user, online])
    watcher.presence.subscribe(callback)
    await waitForAck(watcher, C.TOPIC.PRESENCE, C.PRESENCE_ACTION.SUBSCRIBE_ALL)

    watcher.presence.unsubscribe(callback)
    await waitForAck(watcher, C.TOPIC.PRESENCE, C.PRESENCE_ACTION.UNSUBSCRIBE_ALL)
    await suite.pool.login({ username: 'bob' })
    await sleep(QUIET_MS)

    const notices = watcher.tap.received.filter((message) =>
      message.topic === C.TOPIC.PRESENCE && message.action === C.PRESENCE_ACTION.PRESENCE_JOIN_ALL)
    assert.deepEqual(notices, [], 'the server sent a join after unsubscribe')
    assert.deepEqual(changes, [])
  })
})
