import { buildBackendContext, claimsContext } from './backend-context';

describe('backend context', () => {
  it('reads tier and permissions (else roles) from the token', () => {
    expect(claimsContext({ sub: 'u', tier: 'pro', permissions: ['read', 'write'] })).toEqual({ user_tier: 'pro', user_permissions: ['read', 'write'] });
    expect(claimsContext({ sub: 'u', roles: 'admin editor' })).toEqual({ user_permissions: ['admin', 'editor'] });
    expect(claimsContext({ sub: 'u', tier: '' })).toEqual({});
  });

  it('layers defaults, claims, then the user’s entry, and keeps the ui_ namespace out', () => {
    const ctx = buildBackendContext({
      defaults: { user_tier: 'free', support_priority: 'normal', ui_theme: 'dark' },
      claims: { sub: 'u', tier: 'pro' },
      user: { internal_customer_id: 'C-1', support_priority: 'high', ui_user_tier: 'enterprise' },
    });
    expect(ctx).toEqual({ user_tier: 'pro', support_priority: 'high', internal_customer_id: 'C-1' });
  });
});
