module.exports = { ...require('../../jest.preset.js'), displayName: 'bridge', rootDir: __dirname, testTimeout: 60000 };
