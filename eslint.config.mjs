import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

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
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='WebSocketServer']", message: 'Accept sockets through the kit: hub.attach(server, endpoints).' },
        { selector: "CallExpression[callee.property.name='handleUpgrade']", message: 'Accept sockets through the kit: hub.attach(server, endpoints).' },
        { selector: "CallExpression[callee.object.name='server'][callee.property.name='on'][arguments.0.value='upgrade']", message: 'Accept sockets through the kit: hub.attach(server, endpoints).' },
      ],
    },
  },
  {
    // Loaded by the Prisma CLI (not by the app): it shares tools/prisma/config.ts by path.
    files: ['**/prisma.config.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
];
