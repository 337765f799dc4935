import { agentEnvironment } from './config';

describe('agentEnvironment', () => {
  it("passes the machine's environment and the agents' provider keys, never the platform's secrets", () => {
    const env = agentEnvironment({
      PATH: '/usr/bin',
      HOME: '/root',
      OPENAI_API_KEY: 'sk-for-agents',
      OPENCODE_DISABLE_AUTOUPDATE: '1',
      JWT_SECRET: 'platform-secret',
      SERVICE_KEY: 'service-key',
      BRIDGE_TOKEN_SECRET: 'token-secret',
      DATABASE_URL: 'postgresql://u:p@h/db',
      REDIS_URL: 'redis://h',
      INGEST_KEYS: 'app:key',
      S3_SECRET_ACCESS_KEY: 's3',
    });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/root', OPENAI_API_KEY: 'sk-for-agents', OPENCODE_DISABLE_AUTOUPDATE: '1' });
  });
});
