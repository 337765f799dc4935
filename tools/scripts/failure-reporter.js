// A jest reporter that appends each failed test (file, name, the start of its message) to the file
// TESSERA_TEST_FAILURES names, so `npm test` can print every failure last, together: with two
// projects streaming at once, jest's own report of a failure is far up a long, interleaved log.
// Without TESSERA_TEST_FAILURES it does nothing.
const fs = require('node:fs');
const path = require('node:path');

const ANSI = /\u001b\[[0-9;]*m/g;
const MESSAGE_LINES = 25;

const excerpt = (message) =>
  message
    .replace(ANSI, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^\s*at .*(node_modules|node:internal|<anonymous>)/.test(line))
    .slice(0, MESSAGE_LINES)
    .map((line) => `      ${line}`)
    .join('\n');

class FailureReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
    this.file = process.env.TESSERA_TEST_FAILURES;
  }

  onTestResult(test, result) {
    if (!this.file || (result.numFailingTests === 0 && !result.testExecError)) return;
    const name = test.context.config.displayName?.name ?? '';
    const lines = [`${name ? `[${name}] ` : ''}${path.relative(process.cwd(), result.testFilePath)}`];
    if (result.testExecError) lines.push(`  suite failed to run\n${excerpt(result.testExecError.message ?? String(result.testExecError))}`);
    for (const assertion of result.testResults) {
      if (assertion.status !== 'failed') continue;
      lines.push(`  ✕ ${assertion.fullName} (${assertion.duration ?? '?'} ms)`);
      lines.push(excerpt(assertion.failureMessages.join('\n')));
    }
    fs.appendFileSync(this.file, `${lines.join('\n')}\n\n`);
  }
}

module.exports = FailureReporter;
