import type { Logger } from '@tidesync/server'
import { io, type Socket } from 'socket.io-client'
import { afterEach, describe, expect, inject, it, vi } from 'vitest'
import { type DemoServer, startDemoServer } from '../server/demo-server.js'
import type { ActivityEntry } from '../shared/events.js'

/** A logger that keeps what it is given. */
function recordingLogger(): Logger & { lines: Array<{ level: string; message: string }> } {
  const lines: Array<{ level: string; message: string }> = []
  const keep = (level: string) => (message: string) => {
    lines.push({ level, message })
  }
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') }
}

/** Connects as a window would, asks for the recent activity (a request with an answer), leaves. */
async function oneRequest(server: DemoServer): Promise<void> {
  const socket: Socket = io(server.url, { auth: { name: 'Tracer' }, transports: ['websocket'] })
  try {
    await new Promise<ActivityEntry[]>((resolve) => socket.emit('demo:recent-activity', resolve))
  } finally {
    socket.disconnect()
  }
}

// DEMO_TRACE=1 (`trace: true`): every socket request goes to the logger, at info.
describe('the request trace', () => {
  let server: DemoServer | undefined
  afterEach(async () => {
    vi.restoreAllMocks()
    await server?.close()
    server = undefined
  })

  async function eventually(check: () => void): Promise<void> {
    await vi.waitFor(check, { timeout: 5000, interval: 20 })
  }

  it('goes through the given logger, not the console', async () => {
    const consoleLog = vi.spyOn(console, 'log')
    const logger = recordingLogger()
    server = await startDemoServer({
      port: 0,
      dataDir: 'memory',
      staticDir: inject('staticDir'),
      serverId: 'trace',
      logger,
      trace: true,
    })
    await oneRequest(server)
    await eventually(() => expect(logger.lines.some((l) => l.message.includes('disconnected'))).toBe(true))
    const traced = logger.lines.filter((l) => l.message.startsWith('socket trace:'))
    expect(traced.map((l) => l.level)).toEqual(traced.map(() => 'info'))
    expect(traced.map((l) => l.message.replace(/^socket trace:\S+ /, '').replace(/\d+ ms/, 'N ms'))).toEqual([
      'connected (websocket)',
      'demo:recent-activity: ok in N ms',
      'disconnected: client namespace disconnect',
    ])
    expect(consoleLog).not.toHaveBeenCalled()
  })

  it("by default is printed with the demo's prefix, which no message carries itself", async () => {
    const consoleInfo = vi.spyOn(console, 'info').mockImplementation(() => {})
    server = await startDemoServer({
      port: 0,
      dataDir: 'memory',
      staticDir: inject('staticDir'),
      serverId: 'plain',
      trace: true,
    })
    await oneRequest(server)
    await eventually(() =>
      expect(consoleInfo.mock.calls.some(([line]) => String(line).includes('disconnected'))).toBe(true),
    )
    const lines = consoleInfo.mock.calls.map(([line]) => String(line))
    expect(lines.length).toBeGreaterThanOrEqual(3)
    for (const line of lines) expect(line).toMatch(/^\[tidesync\/demo\] socket plain:\S+ /)
  })
})
