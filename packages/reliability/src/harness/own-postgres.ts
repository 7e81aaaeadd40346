import { type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'

/** The folder of the PostgreSQL server binaries (initdb, pg_ctl), or null. */
export function postgresBinaries(): string | null {
  const onPath = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' })
  if (onPath.status === 0 && onPath.stdout.trim()) return null
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return null
  for (const version of readdirSync(root).sort().reverse()) {
    const bin = join(root, version, 'bin')
    if (existsSync(join(bin, 'pg_ctl'))) return bin
  }
  return null
}

const binDir = postgresBinaries()
const tool = (name: string) => (binDir ? join(binDir, name) : name)
const isRoot = process.getuid?.() === 0

/** True when initdb and pg_ctl can be run (as the `postgres` user when we are root). */
export const canRunPostgres = (() => {
  const probe = spawnSync(tool('pg_ctl'), ['--version'], { stdio: 'ignore' })
  if (probe.status !== 0) return false
  return !isRoot || spawnSync('id', ['postgres'], { stdio: 'ignore' }).status === 0
})()

/**
 * A PostgreSQL server of our own: `initdb` into a temporary folder and `pg_ctl` on a spare
 * 127.0.0.1 port, so a test can stop it (connections refused) and start it again. The shared
 * server on 5432 is never touched. As root, the tools run as the `postgres` user.
 */
export class OwnPostgres {
  private running = false

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<OwnPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'rel-pg-'))
    chmodSync(dir, 0o777)
    const pg = new OwnPostgres(await freePort(), dir)
    try {
      pg.run('initdb', ['-D', pg.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync'])
      pg.start()
    } catch (error) {
      pg.remove()
      throw error
    }
    return pg
  }

  get dataDir(): string {
    return join(this.dir, 'data')
  }

  /** A URL of a database on this server. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`
  }

  /** Starts the server; returns when it accepts connections. */
  start(): void {
    this.run('pg_ctl', [
      '-D',
      this.dataDir,
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`,
      'start',
    ])
    this.running = true
  }

  /** Stops the server at once (`-m immediate`: like a crash; connections refused until start). */
  stop(): void {
    if (!this.running) return
    this.run('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'])
    this.running = false
  }

  /** Stops the server (if running) and deletes its folder. */
  destroy(): void {
    try {
      this.stop()
    } finally {
      this.remove()
    }
  }

  private remove(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }

  private run(name: string, args: string[]): SpawnSyncReturns<string> {
    const command = isRoot ? 'runuser' : tool(name)
    const argv = isRoot ? ['-u', 'postgres', '--', tool(name), ...args] : args
    const result = spawnSync(command, argv, { encoding: 'utf8', timeout: 60_000 })
    if (result.status !== 0) {
      throw new Error(
        `${name} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}`,
      )
    }
    return result
  }
}
