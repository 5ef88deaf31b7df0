/// <reference types="vitest/config" />
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { Kind, parse } from 'graphql';
import { defineConfig } from 'vite';

// The backend serves dist/ itself (graphiql.html also answers browser GETs of /graphql),
// so both pages are entry points of one build. During `npm run dev`, /graphql is proxied
// to a backend given by GRAPHQL_TODOS_BACKEND (default: the uvicorn default port).
const backend = process.env.GRAPHQL_TODOS_BACKEND ?? 'http://127.0.0.1:8000';

// The server's title limit, read from the @maxLength directive of the committed SDL (which
// `make schema` writes from graphql_todos/service.py), so the client keeps no copy of it.
function maxTitleLength(): number {
  const sdl = parse(readFileSync(resolve(import.meta.dirname, '../schema/schema.graphql'), 'utf8'));
  for (const definition of sdl.definitions) {
    if (definition.kind !== Kind.INPUT_OBJECT_TYPE_DEFINITION) continue;
    if (definition.name.value !== 'CreateTodoInput') continue;
    const title = definition.fields?.find((field) => field.name.value === 'title');
    const limit = title?.directives?.find((d) => d.name.value === 'maxLength')?.arguments?.[0]?.value;
    if (limit?.kind === Kind.INT) return Number(limit.value);
  }
  throw new Error('schema/schema.graphql: no @maxLength(value: Int) on CreateTodoInput.title');
}

export default defineConfig({
  base: '/',
  plugins: [react()],
  define: { __MAX_TITLE_LENGTH__: JSON.stringify(maxTitleLength()) },
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
        // The service worker, at the root so its scope is the whole page.
        sw: resolve(import.meta.dirname, 'src/sw.ts'),
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
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
