// Monaco's workers for GraphiQL, bundled by Vite into /assets/ (no CDN).
// GraphiQL ships the same code as `graphiql/setup-workers/vite`, but from inside
// node_modules the `?worker` imports reach esbuild's dependency pre-bundling, which
// cannot read them and kills `npm run dev`; from our own source Vite handles them.
import EditorWorker from 'monaco-editor/esm/vs/editor/editor.worker.js?worker';
import JsonWorker from 'monaco-editor/esm/vs/language/json/json.worker.js?worker';
import GraphQLWorker from 'monaco-graphql/esm/graphql.worker.js?worker';
// Types only: declares the global MonacoEnvironment.
import type {} from 'monaco-editor';

window.MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    switch (label) {
      case 'json':
        return new JsonWorker();
      case 'graphql':
        return new GraphQLWorker();
      default:
        return new EditorWorker();
    }
  },
};
