import { captureSql } from './db/capture/capture-sql.js'
import { resolveModels } from './model/resolve-models.js'
import { type TidesyncTables, tidesyncTables } from './schema/metadata.js'
import type { ModelConfig } from './types.js'

/**
 * The SQL that sets change capture up for these models, one statement each, idempotent: for
 * teams that run migrations themselves (a drizzle-kit custom migration, psql). Run it after
 * the metadata tables exist (`schemaStatements()`), and again whenever a model's columns
 * change. `installTidesync` runs the same statements itself when they are missing or stale.
 *
 * @example
 * writeFileSync('drizzle/0007_tidesync_capture.sql', captureStatements({ models }).join(';\n--> statement-breakpoint\n') + ';\n')
 */
export function captureStatements(options: {
  models: Record<string, ModelConfig<never>>
  tables?: TidesyncTables
}): string[] {
  const models = resolveModels(options.models as Record<string, ModelConfig<unknown>>, true)
  return captureSql(options.tables ?? tidesyncTables, models.values())
}
