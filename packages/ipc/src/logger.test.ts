/**
 * One prefix policy: the default logger adds `[tidesync/ipc]`, messages never carry a prefix
 * themselves (a custom logger gets the bare message). Checked through a real path (a throwing
 * subscriber on the memory driver is logged) and over the sources, so no new message brings
 * its own prefix back. The Redis driver's connection warning is checked in redis.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryIpc } from './drivers/memory/memory-ipc.js'
import type { Logger } from './types.js'

const PREFIX = '[tidesync/ipc]'
const occurrences = (text: string) => text.split(PREFIX).length - 1

/** Publishes to a subscriber that throws; resolves once the failure was logged. */
async function logThrowingSubscriber(ipc: MemoryIpc, logged: () => boolean): Promise<void> {
  await ipc.subscribe('c', () => {
    throw new Error('expected test error')
  })
  await ipc.publish('c', 1)
  for (let i = 0; i < 100 && !logged(); i++) await new Promise((resolve) => setTimeout(resolve, 1))
  await ipc.close()
}

describe('logger prefix', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('the default logger prints the prefix exactly once', async () => {
    const printed: unknown[][] = []
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      printed.push(args)
    })
    await logThrowingSubscriber(new MemoryIpc(), () => printed.length > 0)
    expect(printed).toHaveLength(1)
    const message = String(printed[0]![0])
    expect(message).toBe(`${PREFIX} A subscriber of c failed`)
    expect(occurrences(message)).toBe(1)
  })

  it('a custom logger gets the message without a prefix', async () => {
    const messages: string[] = []
    const record = (message: string) => {
      messages.push(message)
    }
    const logger: Logger = { debug: record, info: record, warn: record, error: record }
    await logThrowingSubscriber(new MemoryIpc({ driver: 'memory', logger }), () => messages.length > 0)
    expect(messages).toEqual(['A subscriber of c failed'])
  })

  it('no code in the sources writes the prefix itself (only logger.ts adds it)', () => {
    const root = fileURLToPath(new URL('.', import.meta.url))
    const offenders: string[] = []
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name)
        if (entry.isDirectory()) walk(path)
        else if (
          entry.name.endsWith('.ts') &&
          !entry.name.endsWith('.test.ts') &&
          entry.name !== 'logger.ts'
        ) {
          // Doc comments may name the prefix; code may not.
          const code = readFileSync(path, 'utf8')
            .replace(/\/\*[\s\S]*?\*\//g, '')
            .replace(/^\s*\/\/.*$/gm, '')
          if (code.includes(PREFIX)) offenders.push(path.slice(root.length))
        }
      }
    }
    walk(root)
    expect(offenders).toEqual([])
  })
})
