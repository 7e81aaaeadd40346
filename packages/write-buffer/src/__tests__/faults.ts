import { type Ipc, IpcUnavailableError } from '@tidesync/ipc'

type Method = keyof Ipc
/** Decides, per call, whether to fail it 'before' running it, 'after' running it (outcome unknown), or not at all. */
export type FaultRule = (args: unknown[]) => 'before' | 'after' | undefined

/**
 * Fault injection over a real IPC instance (not a mock: every call runs on the real store
 * unless a rule fails it first). Failures are `IpcUnavailableError`s, like a request timeout.
 */
export function withFaults(ipc: Ipc, rules: Partial<Record<Method, FaultRule>>): Ipc {
  return new Proxy(ipc, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      const rule = rules[property as Method]
      if (!rule) return value.bind(target)
      return async (...args: unknown[]) => {
        const when = rule(args)
        if (when === 'before') throw new IpcUnavailableError(`injected failure of ${String(property)}`, false)
        const result = await value.apply(target, args)
        if (when === 'after') throw new IpcUnavailableError(`injected timeout of ${String(property)}`, true)
        return result
      }
    },
  })
}

/** A rule that fails the first `times` calls matching `match`. */
export function failTimes(
  times: number,
  when: 'before' | 'after',
  match: (args: unknown[]) => boolean = () => true,
): FaultRule {
  let left = times
  return (args) => {
    if (left > 0 && match(args)) {
      left--
      return when
    }
    return undefined
  }
}
