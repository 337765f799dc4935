import { cacheSeedOf, mergeContext } from './context';

describe('mergeContext', () => {
  it('keeps backend values as is and prefixes client values with ui_', () => {
    expect(mergeContext({ user_tier: 'pro' }, { theme: 'dark' })).toEqual({ user_tier: 'pro', ui_theme: 'dark' });
  });
  it('never lets a client overwrite a backend value', () => {
    const merged = mergeContext({ user_tier: 'pro' }, { user_tier: 'enterprise', ui_user_tier: 'x' });
    expect(merged.user_tier).toBe('pro');
    expect(merged.ui_user_tier).toBe('x');
  });
  it('keeps existing backend values across later client updates', () => {
    const merged = mergeContext(undefined, { permissions: ['admin'] }, { permissions: ['read'] });
    expect(merged).toEqual({ permissions: ['read'], ui_permissions: ['admin'] });
  });
});

describe('cacheSeedOf', () => {
  it('is stable per chat and differs between chats', () => {
    expect(cacheSeedOf('chat-a')).toBe(cacheSeedOf('chat-a'));
    expect(cacheSeedOf('chat-a')).not.toBe(cacheSeedOf('chat-b'));
    expect(cacheSeedOf('chat-a')).toBeGreaterThan(0);
  });
});
