/**
 * s3rver in a process of its own for the S3 tests (it runs on koa, whose dependencies jest's
 * module resolution for file-type cannot load): PORT, DIR and BUCKET from the environment.
 */
import S3rver from 's3rver';

const server = new S3rver({ address: '127.0.0.1', port: Number(process.env.PORT), silent: true, directory: process.env.DIR!, configureBuckets: [{ name: process.env.BUCKET!, configs: [] }] });
server.run().then(
  () => console.log('s3rver ready'),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
