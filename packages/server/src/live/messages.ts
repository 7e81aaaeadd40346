/**
 * The IPC channel of a model's live messages (`LiveMessage`, from @tidesync/protocol). Every
 * server sharing the IPC and the key prefix publishes and subscribes on it.
 */
export function channelFor(keyPrefix: string, model: string): string {
  return `${keyPrefix}changes:${model}`
}
