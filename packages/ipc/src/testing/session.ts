/**
 * Runs contract cases without vitest: one `ContractSession` holds the instance under test, a
 * second instance on the same store, and the run's random key prefix. `runIpcContract` drives
 * it from vitest; `runContractCases` drives it anywhere else (e.g. inside a cluster worker,
 * which then reports the results to the test process).
 */
import { randomBytes } from 'node:crypto'
import type { Ipc } from '../types.js'
import type { CaseContext, ContractCase } from './cases/index.js'
import { contractCases } from './cases/index.js'

export interface ContractCaseResult {
  group: string
  name: string
  ok: boolean
  /** The failure message (and stack) when `ok` is false. */
  error?: string
  ms: number
}

/** `group > name`, unique per case. */
export function caseId(contractCase: Pick<ContractCase, 'group' | 'name'>): string {
  return `${contractCase.group} > ${contractCase.name}`
}

export class ContractSession {
  /** Every key of this run starts with it, so runs sharing one Redis never collide. */
  readonly prefix = `tidesync-contract:${Date.now().toString(36)}${randomBytes(4).toString('hex')}`
  private readonly extra = new Set<Ipc>()

  private constructor(
    readonly ipc: Ipc,
    readonly other: Ipc,
    private readonly makeIpc: () => Promise<Ipc>,
  ) {}

  static async open(makeIpc: () => Promise<Ipc>): Promise<ContractSession> {
    const ipc = await makeIpc()
    return new ContractSession(ipc, await makeIpc(), makeIpc)
  }

  context(contractCase: ContractCase): CaseContext {
    const index = contractCases.indexOf(contractCase)
    const base = `${this.prefix}:${index >= 0 ? index : caseId(contractCase)}`
    return {
      ipc: this.ipc,
      other: this.other,
      key: (name = 'k') => `${base}:${name}`,
      makeIpc: async () => {
        const ipc = await this.makeIpc()
        this.extra.add(ipc)
        return ipc
      },
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.ipc, this.other, ...this.extra].map((ipc) => ipc.close()))
  }
}

export interface RunContractCasesOptions {
  /** Which cases to run. @default every case */
  filter?: (contractCase: ContractCase) => boolean
}

/** Runs the contract's cases one after the other and reports each result (never throws). */
export async function runContractCases(
  makeIpc: () => Promise<Ipc>,
  options: RunContractCasesOptions = {},
): Promise<ContractCaseResult[]> {
  const session = await ContractSession.open(makeIpc)
  const results: ContractCaseResult[] = []
  try {
    for (const contractCase of contractCases) {
      if (options.filter && !options.filter(contractCase)) continue
      const started = Date.now()
      try {
        await contractCase.run(session.context(contractCase))
        results.push({
          group: contractCase.group,
          name: contractCase.name,
          ok: true,
          ms: Date.now() - started,
        })
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
        results.push({
          group: contractCase.group,
          name: contractCase.name,
          ok: false,
          error: message,
          ms: Date.now() - started,
        })
      }
    }
  } finally {
    await session.close()
  }
  return results
}
