// Shared setup for a group of tests that run against one server.

import { after, afterEach, before, beforeEach, it } from 'node:test'
import { ClientPool } from './clients.mjs'
import { restartServer, startServer } from './server.mjs'

const TEST_TIMEOUT_MS = 15000
const OUTPUT_LINES_ON_FAILURE = 40

/**
 * Starts one server for the enclosing `describe` and gives every test a fresh
 * ClientPool that is closed after it. Returns `{ server, pool, test }`, where
 * `test(name, fn)` declares a test whose failure message ends with the last
 * lines of the server's output.
 *
 * `overrides` are the config overrides of `startServer`; `clientOptions` are
 * the default options of every client in the pool.
 *
 * `suite.restart(signal)` stops the server with `signal` ('SIGINT' or
 * 'SIGKILL'), starts it again on the same port, config and folder, and
 * replaces the pool, whose clients cannot reconnect. It returns the stopped
 * process's `{ code, signal }`.
 */
export function serverSuite (overrides = {}, clientOptions = {}) {
  const suite = { server: null, pool: null }

  before(async () => {
    suite.server = await startServer(overrides)
  })
  after(async () => {
    if (suite.server) {
      await suite.server.stop()
    }
  })
  beforeEach(() => {
    suite.pool = new ClientPool(suite.server.url, clientOptions)
  })
  afterEach(() => {
    suite.pool.closeAll()
  })

  suite.restart = async (signal = 'SIGINT') => {
    suite.pool.closeAll()
    const exit = await suite.server.halt(signal)
    suite.server = await restartServer(suite.server)
    suite.pool = new ClientPool(suite.server.url, clientOptions)
    return exit
  }

  suite.test = (name, fn, options = {}) => {
    it(name, { timeout: TEST_TIMEOUT_MS, ...options }, async (t) => {
      try {
        await fn(t)
      } catch (error) {
        if (error instanceof Error && suite.server) {
          const lines = suite.server.output().trimEnd().split('\n').slice(-OUTPUT_LINES_ON_FAILURE)
          error.message += `\n--- last ${lines.length} lines of server output ---\n${lines.join('\n')}`
        }
        throw error
      }
    })
  }
  return suite
}
