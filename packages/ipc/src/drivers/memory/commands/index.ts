/**
 * Every command's body on the memory store, by name: the memory column of the command table.
 * The type makes the compiler report a command of `commands.ts` without a body here.
 * @internal
 */
import type { MemoryCommands } from '../memory-store.js'
import { checkpointCommands } from './checkpoints.js'
import { hashCommands } from './hashes.js'
import { listCommands, setCommands } from './lists-sets.js'
import { lockCommands } from './locks.js'
import { stringCommands } from './strings.js'

export const memoryCommands: MemoryCommands = {
  ...stringCommands,
  ...hashCommands,
  ...listCommands,
  ...setCommands,
  ...checkpointCommands,
  ...lockCommands,
}
