import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, inject, it } from 'vitest'

const demoRoot = fileURLToPath(new URL('..', import.meta.url))

/** What `npm run demo` runs after the build: the server entry point, as a child process. */
function startMain(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--conditions=source', 'server/main.ts'], {
    cwd: demoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

describe('the demo command', () => {
  const folder = mkdtempSync(join(tmpdir(), 'tidesync-demo-main-'))
  let child: ChildProcess | undefined
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL')
    rmSync(folder, { recursive: true, force: true })
  })

  it('starts on embedded defaults with PORT=0, prints its URL, serves the app and stops cleanly', async () => {
    child = startMain({ PORT: '0', DEMO_DATA_DIR: folder, DEMO_STATIC_DIR: inject('staticDir') })
    let output = ''
    child.stderr!.on('data', (chunk) => {
      output += chunk
    })
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${output}`)), 60_000)
      child!.stdout!.on('data', (chunk) => {
        output += chunk
        const match = /running at (http:\/\/\S+)/.exec(output)
        if (match && output.includes('Ctrl+C')) {
          clearTimeout(timer)
          resolve(match[1]!)
        }
      })
      child!.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)))
    })
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(output).toContain(`PGlite in ${folder}`)

    const page = await fetch(url)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<div id="app">')
    const precache = (await (await fetch(`${url}/precache.json`)).json()) as string[]
    expect(precache).toContain('/')
    expect(precache.some((file) => file.startsWith('/assets/'))).toBe(true)
    const handshake = await fetch(`${url}/socket.io/?EIO=4&transport=polling`)
    expect(await handshake.text()).toMatch(/^0\{"sid"/)

    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const [code] = await exited
    expect(code).toBe(0)
    expect(output).toContain('flushing pending writes and stopping')
  })
})
