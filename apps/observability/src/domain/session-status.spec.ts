import { nextStatus } from './session-status';

describe('nextStatus', () => {
  it('starts, finishes and stops as the events say', () => {
    expect(nextStatus('finished', 'running')).toBe('running');
    expect(nextStatus('running', 'finished')).toBe('finished');
    expect(nextStatus('running', 'stopped')).toBe('stopped');
    expect(nextStatus('running', undefined)).toBe('running');
  });

  it('leaves stopped only for a new start or turn', () => {
    expect(nextStatus('stopped', 'finished')).toBe('stopped');
    expect(nextStatus('stopped', undefined)).toBe('stopped');
    expect(nextStatus('stopped', 'running')).toBe('running');
  });
});
