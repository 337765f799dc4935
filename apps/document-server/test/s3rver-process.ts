/**
 * s3rver in a process of its own for the S3 tests (it runs on koa, whose dependencies jest's
 * module resolution for file-type cannot load): PORT, DIR and BUCKET from the environment.
 */
// s3rver ships no types; what is used of it is this.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as new (o: Record<string, unknown>) => { run(): Promise<unknown>; close(cb: () => void): void };

const server = new S3rver({ address: '127.0.0.1', port: Number(process.env.PORT), silent: true, directory: process.env.DIR!, configureBuckets: [{ name: process.env.BUCKET!, configs: [] }] });
server.run().then(
  () => console.log('s3rver ready'),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
