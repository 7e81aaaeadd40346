import { randomUUID } from 'node:crypto'
import type { SubscribeResult, Where } from '@tidesync/protocol'
import type { Socket } from 'socket.io'
import type { Core } from '../core.js'
import { TidesyncValidationError } from '../errors.js'
import type { SubscriptionRegistry } from '../live/subscriptions.js'
import { buildFilter } from '../model/scope.js'
import { assertSafePayload } from '../validation/forbidden-keys.js'
import { resolveModel } from '../validation/records.js'
import { expectObject, expectString, onlyKeys } from '../validation/shapes.js'

/** The `subscribe` / `unsubscribe` handlers of one socket, and the cleanup on disconnect. */
export function socketSubscriptions<TCtx>(
  core: Core<TCtx>,
  registry: SubscriptionRegistry,
  socket: Socket,
  ctx: TCtx,
) {
  const mine = new Map<string, string>()
  return {
    subscribe(payload: unknown): SubscribeResult {
      assertSafePayload(payload)
      const input = expectObject(payload, 'request')
      onlyKeys(input, ['model', 'where'], '')
      const model = resolveModel(core, input.model)
      const filter = buildFilter(model, input.where as Where | undefined, ctx)
      if (mine.size >= core.limits.maxSubscriptionsPerSocket) {
        throw new TidesyncValidationError(
          'PAYLOAD_TOO_LARGE',
          `at most ${core.limits.maxSubscriptionsPerSocket} subscriptions per socket`,
        )
      }
      const id = randomUUID()
      mine.set(id, model.name)
      registry.add({ id, model: model.name, filter, send: (push) => socket.emit('changes', push) })
      return { subscriptionId: id }
    },
    unsubscribe(payload: unknown): { ok: true } {
      const input = expectObject(payload, 'request')
      const id = expectString(input.subscriptionId, 'subscriptionId', 64)
      const model = mine.get(id)
      if (model) registry.remove(model, id)
      mine.delete(id)
      return { ok: true }
    },
    clear(): void {
      for (const [id, model] of mine) registry.remove(model, id)
      mine.clear()
    },
  }
}
