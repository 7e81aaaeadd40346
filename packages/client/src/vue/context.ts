import { hasInjectionContext, type InjectionKey, inject } from 'vue'
import type { TidesyncClient } from '../core/client.js'
import { TidesyncClientError } from '../core/errors.js'

/** The injection key under which `TidesyncPlugin` provides the client. */
export const TIDESYNC_CLIENT_KEY: InjectionKey<TidesyncClient> = Symbol('tidesync-client')

/**
 * The client given explicitly, or the one provided by `TidesyncPlugin`. Throws a
 * `TidesyncClientError` with code `CLIENT_CONFIG` that names the fix when there is none.
 */
export function useTidesyncClient(client?: TidesyncClient): TidesyncClient {
  if (client) return client
  const provided = hasInjectionContext() ? inject(TIDESYNC_CLIENT_KEY, null) : null
  if (!provided)
    throw new TidesyncClientError(
      'CLIENT_CONFIG',
      "No tidesync client found in Vue context, use 'TidesyncPlugin': app.use(TidesyncPlugin, { client }), " +
        'and call composables in setup() (or app.runWithContext()); or pass { client } to the composable',
    )
  return provided
}
