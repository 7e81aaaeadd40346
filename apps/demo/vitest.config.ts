import { defineConfig } from 'vitest/config'

// End-to-end tests: a real demo server (in the test process) and an installed Chromium or Chrome
// driven by playwright-core (found by e2e/helpers/find-browser.ts in the global setup; without one
// the browser tests skip, or fail under CI=true). The workspace packages run from their
// TypeScript sources ("source").
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['e2e/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    globalSetup: ['e2e/global-setup.ts'],
    // One browser at a time: the machines that run this have two cores.
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 90_000,
  },
})
