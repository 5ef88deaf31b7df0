/// <reference types="vitest/config" />
import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The backend serves dist/ itself (graphiql.html also answers browser GETs of /graphql),
// so both pages are entry points of one build. During `npm run dev`, /graphql is proxied
// to a backend given by GRAPHQL_TODOS_BACKEND (default: the uvicorn default port).
const backend = process.env.GRAPHQL_TODOS_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // Monaco (GraphiQL's editor) is big by nature; it is only loaded by graphiql.html.
    chunkSizeWarningLimit: 5000,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        graphiql: resolve(import.meta.dirname, 'graphiql.html'),
      },
    },
  },
  worker: { format: 'es' },
  server: {
    proxy: { '/graphql': { target: backend, ws: true } },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
