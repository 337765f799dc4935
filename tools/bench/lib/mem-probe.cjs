// Preloaded (`node --expose-gc --require …/mem-probe.cjs`) into a process whose memory a benchmark
// measures: on SIGUSR2 it collects garbage (twice: weak callbacks and finalizers run between) and
// writes process.memoryUsage() as JSON to $BENCH_MEM_FILE. Nothing else changes in the process.
'use strict';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS preload, loaded with --require
const { writeFileSync } = require('node:fs');
const file = process.env.BENCH_MEM_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    if (global.gc) global.gc();
    setTimeout(() => {
      if (global.gc) global.gc();
      writeFileSync(file, JSON.stringify({ at: Date.now(), ...process.memoryUsage() }));
    }, 100);
  });
}
