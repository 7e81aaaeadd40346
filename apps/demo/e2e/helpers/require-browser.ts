import { inject } from 'vitest'

/**
 * For the top of a browser test file, as `requireServer` is for a server-backed one:
 *
 * ```ts
 * const chromium = requireBrowser()
 * describe.runIf(chromium)('…', () => { … launchBrowser(chromium!) … })
 * ```
 *
 * Returns the executable the global setup found, or null when there is none (the tests skip;
 * the global setup printed why, once). Throws, failing the file, when there is none under
 * CI=true or when CHROMIUM_PATH is not an executable file.
 */
export function requireBrowser(): string | null {
  const { executablePath, error } = inject('browser')
  if (error) throw new Error(error)
  return executablePath
}
