module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'console',
  rootDir: __dirname,
  // Browser tests against the real stack: one file at a time would be too slow to start twice.
  testTimeout: 120_000,
};
