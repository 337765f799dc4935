import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

const SOCKETS_THROUGH_THE_KIT = [
  { selector: "NewExpression[callee.name='WebSocketServer']", message: 'Accept sockets through the kit: hub.attach(server, endpoints).' },
  { selector: "CallExpression[callee.property.name='handleUpgrade']", message: 'Accept sockets through the kit: hub.attach(server, endpoints).' },
  { selector: "CallExpression[callee.object.name='server'][callee.property.name='on'][arguments.0.value='upgrade']", message: 'Accept sockets through the kit: hub.attach(server, endpoints).' },
];

export default [
  { ignores: ['**/node_modules/**', '**/dist/**', '**/generated/**', '**/.nx/**', '**/coverage/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: [],
          enforceBuildableLibDependency: false,
          depConstraints: [
            // Apps share through libs only: never import another app.
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:contracts', 'type:kit', 'type:client'] },
            { sourceTag: 'type:kit', onlyDependOnLibsWithTags: ['type:contracts'] },
            { sourceTag: 'type:client', onlyDependOnLibsWithTags: ['type:contracts'] },
            // Contracts depend on zod alone.
            { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: [], allowedExternalImports: ['zod'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'warn',
      'no-console': ['warn', { allow: ['error', 'warn'] }],
    },
  },
  {
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'tools/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-console': 'off' },
  },
  {
    // The kit's SocketHub owns a socket's whole life (error, pong, close, rate, order): an app that
    // accepts upgrades itself skips all of it (a socket without an error listener dies on a bad frame).
    files: ['apps/*/src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', ...SOCKETS_THROUGH_THE_KIT] },
  },
  {
    // Each route is declared once with its access rule (issue 17): routes.route(spec, handler) from
    // the kit's declareRoutes. The gateway's own few routes (the merged documents, the console;
    // health is the kit's serviceApp's) are its edge, declared `public` in its document; what it forwards is no route.
    files: ['apps/*/src/**/*.ts'],
    ignores: ['apps/gateway/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...SOCKETS_THROUGH_THE_KIT,
        {
          selector: "CallExpression[callee.object.name=/^(r|router|app)$/][callee.property.name=/^(get|post|put|patch|delete|all)$/][arguments.0.value!='/openapi.json']",
          message: 'Declare the route with its access rule: routes.route(spec, handler) from declareRoutes (@tessera/kit).',
        },
      ],
    },
  },
  {
    // The client core runs in browsers and React Native as well as Node: no Node module (with or
    // without `node:`), no `ws`, no Node-only global. Sockets, fetch and storage come from the Host.
    files: ['libs/client/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...(await import('node:module')).builtinModules.map((name) => ({ name, message: 'Node-only: the client core also runs in browsers and React Native; take it from the Host.' })),
            { name: 'ws', message: 'Node-only: the socket class comes from the Host (host.WebSocket or the global WebSocket).' },
          ],
          patterns: [{ group: ['node:*'], message: 'Node-only: the client core also runs in browsers and React Native; take it from the Host.' }],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'require', 'module', '__dirname', '__filename', 'global', 'setImmediate', 'clearImmediate'].map((name) => ({
          name,
          message: 'Node-only global: the client core also runs in browsers and React Native.',
        })),
      ],
    },
  },
  {
    // The contracts' specs check the API documents they build with the validators clients' tools use.
    files: ['libs/contracts/src/**/*.spec.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: [],
          enforceBuildableLibDependency: false,
          depConstraints: [{ sourceTag: 'type:contracts', onlyDependOnLibsWithTags: [], allowedExternalImports: ['zod', '@asyncapi/parser', '@readme/openapi-parser', 'ajv'] }],
        },
      ],
    },
  },
  {
    // The benchmarks measure the code that runs: they drive the apps' own internals (the runtime's
    // Timeline, EventWriter and turn worker) and import sources by path, because `npx tsx
    // tools/bench/…` runs from the root, where no tsconfig maps @tessera/kit/testing and the
    // client's package points at its build. Any library otherwise, through its npm scope.
    files: ['tools/bench/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: ['^(\\.\\./)+(apps|libs)/'],
          enforceBuildableLibDependency: false,
          depConstraints: [{ sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['*'] }],
        },
      ],
    },
  },
  {
    // Loaded by the Prisma CLI (not by the app): it shares tools/prisma/config.ts by path.
    files: ['**/prisma.config.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
];
