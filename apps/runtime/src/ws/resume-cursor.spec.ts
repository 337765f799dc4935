import { ResumeCursor } from './resume-cursor';

describe('ResumeCursor', () => {
  it('sends the next index, skips what the client has, and reports a gap', () => {
    const c = new ResumeCursor(5);
    expect(c.admit(5)).toBe('skip');
    expect(c.admit(3)).toBe('skip');
    expect(c.admit(6)).toBe('send');
    expect(c.admit(8)).toBe('gap');
    c.sent(6);
    expect(c.cursor).toBe(6);
    expect(c.admit(6)).toBe('skip');
    expect(c.admit(7)).toBe('send');
  });

  it('a fresh socket resumes from the client index; -1 and 0 mean "nothing applied"', () => {
    expect(new ResumeCursor(10).planResume(4, 10)).toEqual({ diverged: false, after: 4, upTo: 10, skip: undefined });
    const fromNothing = new ResumeCursor(10);
    expect(fromNothing.planResume(-1, 10)).toEqual({ diverged: false, after: 0, upTo: 10, skip: undefined });
    expect(fromNothing.cursor).toBe(0);
    expect(new ResumeCursor(10).planResume(0, 10).after).toBe(0);
  });

  it('does not send twice what this socket already sent live before the resume', () => {
    const c = new ResumeCursor(10);
    c.sent(11);
    c.sent(12);
    expect(c.planResume(4, 12)).toEqual({ diverged: false, after: 4, upTo: 12, skip: { lo: 11, hi: 12 } });
    expect(c.cursor).toBe(12);
  });

  it('a client ahead of the log has diverged: everything is sent again', () => {
    expect(new ResumeCursor(3).planResume(9, 3)).toEqual({ diverged: true, after: 0, upTo: 3 });
  });

  it('up to date: nothing to send', () => {
    const c = new ResumeCursor(7);
    const plan = c.planResume(7, 7);
    expect(plan.after).toBe(7);
    expect(plan.upTo).toBe(7);
  });
});
