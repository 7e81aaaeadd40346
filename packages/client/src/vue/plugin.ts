import type { App, Plugin } from 'vue'
import type { TidesyncClient } from '../core/client.js'
import { TidesyncClientError } from '../core/errors.js'
import { TIDESYNC_CLIENT_KEY } from './context.js'

/** Options of `TidesyncPlugin`. */
export interface TidesyncPluginOptions {
  /** The client the app's components use. */
  client: TidesyncClient
  /**
   * Close the client when the app is unmounted.
   * @default false
   */
  closeOnUnmount?: boolean
}

/**
 * Provides a tidesync client to every component of the app. Throws a `TidesyncClientError`
 * with code `CLIENT_CONFIG` when `options.client` is missing.
 *
 * @example
 * const client = createClient({ url, schema, dbName: 'my-app' })
 * createApp(App).use(TidesyncPlugin, { client }).mount('#app')
 */
export const TidesyncPlugin: Plugin<[TidesyncPluginOptions]> = {
  install(app: App, options: TidesyncPluginOptions) {
    if (!options?.client)
      throw new TidesyncClientError(
        'CLIENT_CONFIG',
        'TidesyncPlugin needs a client: app.use(TidesyncPlugin, { client: createClient({ url, schema, dbName }) })',
      )
    app.provide(TIDESYNC_CLIENT_KEY, options.client)
    if (options.closeOnUnmount) app.onUnmount(() => void options.client.close())
  },
}
