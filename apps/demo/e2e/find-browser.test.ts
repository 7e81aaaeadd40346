import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  browserCandidates,
  decideBrowser,
  findBrowser,
  isExecutableFile,
  LINUX_BROWSERS,
} from './helpers/find-browser.js'

// Where the browser tests find a browser, and what they do without one. No browser is started:
// the "browsers" are small executable files in a temporary folder.
describe('finding a browser for the end-to-end tests', () => {
  const folder = mkdtempSync(join(tmpdir(), 'tidesync-find-browser-'))
  afterAll(() => rmSync(folder, { recursive: true, force: true }))

  function file(name: string, mode: number): string {
    const path = join(folder, name)
    mkdirSync(join(path, '..'), { recursive: true })
    writeFileSync(path, '#!/bin/sh\nexit 0\n')
    chmodSync(path, mode)
    return path
  }
  const fake = file('bin/chromium', 0o755)
  const notExecutable = file('plain/chromium', 0o644)
  const missing = join(folder, 'nowhere', 'chromium')
  /** Only what is inside the temporary folder counts: the machine's own browser stays out. */
  const onlyFakes = (path: string) => path.startsWith(folder) && isExecutableFile(path)
  const nothing = () => false

  it('checks for an executable file', () => {
    expect(isExecutableFile(fake)).toBe(true)
    expect(isExecutableFile(notExecutable)).toBe(false)
    expect(isExecutableFile(missing)).toBe(false)
    expect(isExecutableFile(folder)).toBe(false)
  })

  it('takes CHROMIUM_PATH first, before any usual place', () => {
    const everything = () => true
    for (const CI of [undefined, 'true']) {
      expect(
        findBrowser({ env: { CHROMIUM_PATH: fake, CI }, platform: 'linux', isExecutable: everything }),
      ).toBe(fake)
      expect(decideBrowser({ env: { CHROMIUM_PATH: fake, CI }, platform: 'linux' })).toEqual({
        run: true,
        executablePath: fake,
      })
    }
  })

  it('fails on a CHROMIUM_PATH that is not an executable file, in CI or not, instead of skipping', () => {
    for (const path of [missing, notExecutable, folder]) {
      for (const CI of [undefined, 'true']) {
        const search = {
          env: { CHROMIUM_PATH: path, CI },
          platform: 'linux' as const,
          isExecutable: onlyFakes,
        }
        expect(() => findBrowser(search)).toThrow(`CHROMIUM_PATH=${path} is not an executable file`)
        expect(() => decideBrowser(search)).toThrow(`CHROMIUM_PATH=${path} is not an executable file`)
      }
    }
  })

  it('treats an empty CHROMIUM_PATH as unset', () => {
    expect(findBrowser({ env: { CHROMIUM_PATH: '' }, platform: 'linux', isExecutable: nothing })).toBeNull()
  })

  it("looks at Debian's and other Linux distributions' places, in order", () => {
    const installed = new Set(['/usr/bin/google-chrome-stable', '/snap/bin/chromium'])
    const search = { env: {}, platform: 'linux' as const, isExecutable: (p: string) => installed.has(p) }
    expect(findBrowser(search)).toBe('/usr/bin/google-chrome-stable')
    installed.add('/usr/bin/chromium')
    expect(findBrowser(search)).toBe('/usr/bin/chromium')
    expect(LINUX_BROWSERS.slice(0, 5)).toEqual([
      '/usr/bin/chromium',
      '/usr/bin/chromium-browser',
      '/usr/bin/google-chrome',
      '/usr/bin/google-chrome-stable',
      '/snap/bin/chromium',
    ])
  })

  it("looks at macOS's application bundles on macOS only", () => {
    const chromiumApp = '/Applications/Chromium.app/Contents/MacOS/Chromium'
    const chromeApp = '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'
    const installed = new Set([chromiumApp])
    const search = { env: {}, isExecutable: (p: string) => installed.has(p) }
    expect(findBrowser({ ...search, platform: 'darwin' })).toBe(chromiumApp)
    expect(findBrowser({ ...search, platform: 'linux' })).toBeNull()
    installed.add(chromeApp)
    expect(findBrowser({ ...search, platform: 'darwin' })).toBe(chromeApp)
    expect(browserCandidates({ env: { HOME: '/Users/ann' }, platform: 'darwin' })).toContain(
      '/Users/ann/Applications/Chromium.app/Contents/MacOS/Chromium',
    )
  })

  it('finds a browser command on PATH after the usual places', () => {
    const env = { PATH: `${join(folder, 'empty')}:${join(folder, 'bin')}/` }
    expect(findBrowser({ env, platform: 'linux', isExecutable: onlyFakes })).toBe(fake)
    expect(
      findBrowser({ env: { PATH: join(folder, 'plain') }, platform: 'linux', isExecutable: onlyFakes }),
    ).toBeNull()
    const candidates = browserCandidates({ env, platform: 'linux' })
    expect(candidates.indexOf(fake)).toBeGreaterThan(candidates.indexOf('/snap/bin/chromium'))
  })

  it('skips with one line that says how to get a browser when none is found outside CI', () => {
    for (const CI of [undefined, '', 'false']) {
      const decision = decideBrowser({ env: { CI, PATH: folder }, platform: 'linux', isExecutable: nothing })
      expect(decision.run).toBe(false)
      if (decision.run) continue
      expect(decision.notice).not.toContain('\n')
      expect(decision.notice).toContain('skipping the browser end-to-end tests')
      expect(decision.notice).toContain('apt-get install chromium')
      expect(decision.notice).toContain('CHROMIUM_PATH')
    }
  })

  it('fails with the same advice when none is found under CI=true', () => {
    for (const CI of ['true', '1']) {
      const search = { env: { CI }, platform: 'linux' as const, isExecutable: nothing }
      expect(() => decideBrowser(search)).toThrow(
        /No Chromium or Chrome found.*apt-get install chromium.*CHROMIUM_PATH.*CI=true/,
      )
    }
  })
})
