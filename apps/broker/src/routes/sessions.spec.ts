import { publicSocketUrl } from './sessions';

describe('publicSocketUrl', () => {
  it('puts the runtime’s socket path on the public (gateway) URL', () => {
    expect(publicSocketUrl('ws://localhost:8080', '/ws/assistant/demo-app/c1/alice')).toBe('ws://localhost:8080/ws/assistant/demo-app/c1/alice');
    expect(publicSocketUrl('wss://api.example.com', 'ws://runtime:8000/ws/a/b/c/d')).toBe('wss://api.example.com/ws/a/b/c/d');
  });
});
