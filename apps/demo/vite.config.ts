import vue from '@vitejs/plugin-vue'
import { defaultClientConditions, defineConfig } from 'vite'

// The tidesync packages are bundled from their TypeScript sources (the "source" export
// condition), so the demo builds on a fresh clone without building the packages first.
// `npm run dev` serves the app with hot reload and sends the socket to a running demo server.
export default defineConfig({
  plugins: [vue()],
  resolve: { conditions: ['source', ...defaultClientConditions] },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1000 },
  server: {
    proxy: {
      '/socket.io': { target: process.env.DEMO_SERVER ?? 'http://127.0.0.1:3000', ws: true },
    },
  },
})
