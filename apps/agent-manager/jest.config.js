module.exports = { ...require('../../jest.preset.js'), displayName: 'agent-manager', rootDir: __dirname, testTimeout: 60000 };
