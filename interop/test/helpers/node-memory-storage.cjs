// A storage plugin for the official Node.js server that keeps records in a
// Map for the life of the process. deepstream 7.0.2's default storage stores
// nothing, so a record that drops out of its cache is gone. With this plugin
// the Node.js server keeps a second copy of every record, as our server's
// default storage does, which is what the notify tests need from the reference.
// Load it with `storage: { path: <absolute path of this file> }` in config.yml.

'use strict'

class NodeMemoryStorage {
  constructor () {
    this.description = 'interop test memory storage'
    this.records = new Map()
  }

  async whenReady () {}

  async close () {}

  set (name, version, data, callback) {
    // A deep copy, so the caller's later changes to `data` do not leak into storage.
    this.records.set(name, { version, data: JSON.parse(JSON.stringify(data)) })
    process.nextTick(() => callback(null))
  }

  get (name, callback) {
    const record = this.records.get(name)
    process.nextTick(() => {
      if (record === undefined) {
        callback(null, -1, null)
      } else {
        callback(null, record.version, JSON.parse(JSON.stringify(record.data)))
      }
    })
  }

  delete (name, callback) {
    this.records.delete(name)
    process.nextTick(() => callback(null))
  }

  deleteBulk (names, callback) {
    for (const name of names) {
      this.records.delete(name)
    }
    process.nextTick(() => callback(null))
  }
}

module.exports = NodeMemoryStorage
