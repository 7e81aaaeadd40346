/**
 * The command table drives every driver, so it must stay whole: each command is a public
 * method, has contract cases, and the table's generic checks guard untrusted input (the
 * cluster primary's). Bodies per driver are held to the table by the compiler (the memory
 * map's and the Redis map's mapped types).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { COMMANDS, type CommandName, isCommandName, validateCommand } from './commands.js'
import { MemoryIpc } from './drivers/memory/memory-ipc.js'
import { IpcError } from './errors.js'

const names = Object.keys(COMMANDS) as CommandName[]

describe('command table', () => {
  it('every command is a public method of the same name', async () => {
    const ipc = new MemoryIpc()
    try {
      for (const name of names) expect(typeof ipc[name], name).toBe('function')
    } finally {
      await ipc.close()
    }
  })

  it('every command is called by the contract cases', () => {
    const dir = new URL('./testing/cases/', import.meta.url)
    const cases = readdirSync(dir)
      .map((file) => readFileSync(new URL(file, dir), 'utf8'))
      .join('\n')
    const uncalled = names.filter((name) => !new RegExp(`\\.${name}(<[^>]*>)?\\(`).test(cases))
    expect(uncalled).toEqual([])
  })

  it('knows only its own names (no prototype keys)', () => {
    for (const name of names) expect(isCommandName(name)).toBe(true)
    for (const name of [
      '__proto__',
      'toString',
      'constructor',
      'hasOwnProperty',
      'decrBy',
      'exec',
      '',
      1,
      null,
    ]) {
      expect(isCommandName(name), String(name)).toBe(false)
    }
  })

  it('refuses the wrong number of arguments for every command', () => {
    for (const name of names) {
      const arity = COMMANDS[name].arity
      for (const count of [arity - 1, arity + 1]) {
        if (count < 0) continue
        const args = Array.from({ length: count }, () => 'x')
        expect(() => validateCommand(name, args), `${name} with ${count}`).toThrow(IpcError)
      }
    }
  })

  it('checks command-form TTLs as whole milliseconds, null meaning none for set', () => {
    expect(() => validateCommand('set', ['k', 1, null])).not.toThrow()
    expect(() => validateCommand('set', ['k', 1, 1500])).not.toThrow()
    for (const ttl of [0, 1.5, -1, '10', undefined]) {
      expect(() => validateCommand('set', ['k', 1, ttl]), String(ttl)).toThrow(/ttlMs/)
      expect(() => validateCommand('expire', ['k', ttl]), String(ttl)).toThrow(/ttlMs/)
    }
    expect(() => validateCommand('expire', ['k', null])).toThrow(/ttlMs/)
    expect(() => validateCommand('lock', ['k', '', 1000])).toThrow(/token/)
  })
})
