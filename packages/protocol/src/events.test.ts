import { describe, expect, it } from 'vitest'
import { CLIENT_EVENTS, isServiceMethod, KNOWN_EVENTS, REQUEST_EVENTS, SERVICE_METHODS } from './events.js'

describe('event and method lists', () => {
  it('knows every client event, the stateless requests among them, and the service methods', () => {
    expect([...REQUEST_EVENTS]).toEqual(['service', 'sync:full', 'sync:pull', 'sync:push'])
    expect([...KNOWN_EVENTS].sort()).toEqual([...CLIENT_EVENTS].sort())
    expect(KNOWN_EVENTS.has('subscribe')).toBe(true)
    expect(KNOWN_EVENTS.has('changes')).toBe(false)
    expect(SERVICE_METHODS.every(isServiceMethod)).toBe(true)
    expect(isServiceMethod('drop')).toBe(false)
    expect(isServiceMethod(1)).toBe(false)
  })
})
