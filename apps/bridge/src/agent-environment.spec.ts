import { agentEnvironment } from './config';

describe('agentEnvironment', () => {
  const parent = {
    PATH: '/usr/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    OPENAI_API_KEY: 'sk-for-agents',
    JWT_SECRET: 'platform-secret',
    SERVICE_KEY: 'service-key',
    BRIDGE_TOKEN_SECRET: 'token-secret',
    DATABASE_URL: 'postgresql://u:p@h/db',
    REDIS_URL: 'redis://:p@h',
    PGPASSWORD: 'p',
    INGEST_KEYS: 'app:key',
    S3_SECRET_ACCESS_KEY: 's3',
    SOME_DEPLOYMENT_SECRET: 'x',
  };

  it("passes the locale and the variables AGENT_ENV names, nothing else of the bridge's environment", () => {
    expect(agentEnvironment(parent, ['OPENAI_API_KEY'])).toEqual({ LANG: 'C.UTF-8', OPENAI_API_KEY: 'sk-for-agents' });
  });

  it("never passes the platform's secrets, even when AGENT_ENV names them", () => {
    expect(agentEnvironment(parent, Object.keys(parent).filter((k) => k !== 'SOME_DEPLOYMENT_SECRET'))).toEqual({ PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8', OPENAI_API_KEY: 'sk-for-agents' });
  });
});
