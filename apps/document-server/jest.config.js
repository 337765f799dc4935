// file-type and the packages it imports are ESM only; jest on Node 20 cannot load ESM from
// node_modules, so they are resolved by their ESM conditions and compiled to CommonJS like jose.
const preset = require('../../jest.preset.js');

const ESM = ['file-type', 'strtok3', 'token-types', '@tokenizer/inflate', 'uint8array-extras', '@borewit/text-codec'];
const esm = ESM.map((p) => p.replace('/', '\\/')).join('|');

module.exports = {
  ...preset,
  displayName: 'document-server',
  rootDir: __dirname,
  testTimeout: 120000,
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons', 'module-sync'] },
  transform: {
    ...preset.transform,
    [`/node_modules/(${esm})/.+\\.js$`]: ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(jose|${esm})/)`],
};
