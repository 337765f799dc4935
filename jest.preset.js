// Shared jest setup: TypeScript through SWC (fast, no type check: `nx run-many -t typecheck` does that),
// workspace path aliases mapped like tsconfig.base.json.
const path = require('node:path');

const root = __dirname;

module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
    // ESM-only dependencies (jose 6) compiled to CommonJS: jest on Node 20 cannot require ESM.
    '/node_modules/jose/.+\\.js$': ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: {
    '^@tessera/contracts$': path.join(root, 'libs/contracts/src/index.ts'),
    '^@tessera/contracts/(.*)$': path.join(root, 'libs/contracts/src/$1'),
    '^@tessera/client$': path.join(root, 'libs/client/src/index.ts'),
    '^@tessera/client/(.*)$': path.join(root, 'libs/client/src/$1'),
    '^@tessera/kit$': path.join(root, 'libs/kit/src/index.ts'),
    '^@tessera/kit/(.*)$': path.join(root, 'libs/kit/src/$1'),
  },
  testMatch: ['**/?(*.)+(spec|test).ts'],
  testTimeout: 30000,
  // The default report, and each failure appended to $TESSERA_TEST_FAILURES (tools/scripts/test.sh prints them last).
  reporters: ['default', path.join(root, 'tools/scripts/failure-reporter.js')],
};
