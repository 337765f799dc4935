// The scripts behind `npm start` and `npm test`, tested by running them (tools/scripts/test.sh runs this).
module.exports = { ...require('../../jest.preset.js'), displayName: 'tools-scripts', rootDir: __dirname, testTimeout: 60_000 };
