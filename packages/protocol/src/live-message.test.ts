import { describe, expect, it } from 'vitest'
import { isLiveMessage } from './live-message.js'

describe('isLiveMessage', () => {
  it('accepts version 1 messages only', () => {
    expect(isLiveMessage({ v: 1, model: 'todos', changes: [] })).toBe(true)
    expect(isLiveMessage({ v: 2, model: 'todos', changes: [] })).toBe(false)
    expect(isLiveMessage({ v: 1, model: 1, changes: [] })).toBe(false)
    expect(isLiveMessage({ v: 1, model: 'todos' })).toBe(false)
    expect(isLiveMessage(null)).toBe(false)
    expect(isLiveMessage('x')).toBe(false)
  })
})
