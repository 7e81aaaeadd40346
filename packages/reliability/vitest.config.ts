import { defineConfig } from 'vitest/config'

// Tests run against the TypeScript sources of every workspace package (the "source" export
// condition), never against compiled files in dist/. Suites share real servers and ports, so
// files run one at a time.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
})
