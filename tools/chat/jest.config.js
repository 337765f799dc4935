// `npm run chat`, tested by running it against the platform's processes (tools/scripts/test.sh runs this).
module.exports = { ...require('../../jest.preset.js'), displayName: 'tools-chat', rootDir: __dirname, testTimeout: 120_000 };
