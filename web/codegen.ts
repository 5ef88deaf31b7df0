import type { CodegenConfig } from '@graphql-codegen/cli';

// The committed SDL is the contract: generating from it (not from a live server) makes
// `npm run build` fail when a schema change breaks an operation the client uses.
const config: CodegenConfig = {
  schema: '../schema/schema.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**/*'],
  ignoreNoDocuments: false,
  generates: {
    'src/gql/': {
      preset: 'client',
      // persisted-documents.json: the trusted documents (TRUSTED_DOCUMENTS) the server may run.
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: {
        // Plain strings keep the `graphql` runtime out of the TodoMVC bundle.
        documentMode: 'string',
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { DateTime: 'string' },
      },
    },
  },
  silent: true,
};

export default config;
