import type { Json } from './types.js'

/**
 * Assigns `target[key] = value` as an own data property, also when `key` is `__proto__`
 * (a plain assignment would change the prototype instead). JSON.parse does the same. Stores
 * build hash results with it, since a hash may hold a field named `__proto__`.
 * @internal
 */
export function safeAssign(target: Record<string, Json>, key: string, value: Json): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[key] = value
  }
}
