import { afterEach, describe, expect, it, vi } from 'vitest'
import { defaultLogger } from '../index.js'
import { type SocketFixture, startSocketFixture } from './fixtures/socket-server.js'

// One prefix policy for every tidesync package: the package's default logger adds its prefix
// (`[tidesync/server]` here); messages never carry one.
describe('the default logger', () => {
  let fixture: SocketFixture | undefined
  afterEach(async () => {
    vi.restoreAllMocks()
    await fixture?.close()
    fixture = undefined
  })

  it('prints warnings and errors with the [tidesync/server] prefix, and nothing at debug or info', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const error = vi.spyOn(console, 'error').mockImplementation(() => {})
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    const info = vi.spyOn(console, 'info').mockImplementation(() => {})
    const debug = vi.spyOn(console, 'debug').mockImplementation(() => {})
    const cause = new Error('cause')
    defaultLogger.warn('careful', cause)
    defaultLogger.error('broken')
    defaultLogger.info('said')
    defaultLogger.debug('whispered')
    expect(warn.mock.calls).toEqual([['[tidesync/server] careful', cause]])
    expect(error.mock.calls).toEqual([['[tidesync/server] broken']])
    expect([...log.mock.calls, ...info.mock.calls, ...debug.mock.calls]).toEqual([])
  })

  it("is the server's logger when none is given, and the server's messages carry no prefix of their own", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    // A message limit above socket.io's own is warned about at start-up.
    fixture = await startSocketFixture({ logger: undefined, maxMessageBytes: 2e6, maxHttpBufferSize: 1e6 })
    const lines = warn.mock.calls.map(([line]) => String(line))
    const limit = lines.filter((line) =>
      line.includes('maxMessageBytes (2000000) >= socket.io maxHttpBufferSize'),
    )
    expect(limit).toHaveLength(1)
    expect(limit[0]).toMatch(/^\[tidesync\/server\] maxMessageBytes/)
    // Whatever else was printed: one prefix per line, never two.
    for (const line of lines) expect(line).not.toMatch(/^\[tidesync[^\]]*\] \[tidesync/)
  })
})
