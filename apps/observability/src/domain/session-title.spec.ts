import fc from 'fast-check';
import { observability } from '@tessera/contracts';
import { displayTitle, titleOf } from './session-title';

const MAX = observability.TITLE_MAX;

describe('titleOf', () => {
  it('keeps a short message, on one line', () => {
    expect(titleOf('  What is\n the  weather\tin Paris? ')).toBe('What is the weather in Paris?');
    expect(titleOf('')).toBeNull();
    expect(titleOf(' \n\t ')).toBeNull();
    expect(titleOf(null)).toBeNull();
  });

  it('cuts a long one at a word, and says so', () => {
    const words = 'Please summarise the quarterly report and list every risk it names with its owner and the date it is due for review by the board';
    const t = titleOf(words)!;
    expect(t.endsWith('…')).toBe(true);
    expect(Array.from(t).length).toBeLessThanOrEqual(MAX + 1);
    expect(words.startsWith(t.slice(0, -1))).toBe(true);
    expect(words[t.length - 1]).toBe(' ');
    // One long word: cut inside it.
    expect(titleOf('x'.repeat(500))).toBe(`${'x'.repeat(MAX)}…`);
  });

  it('never splits a surrogate pair', () => {
    const t = titleOf('😀'.repeat(300))!;
    expect(t).toBe(`${'😀'.repeat(MAX)}…`);
  });

  it('is a prefix of the message on one line, at most MAX characters and an ellipsis, and accepted by the contract', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), (s) => {
        const t = titleOf(s);
        const line = s.replace(/\s+/gu, ' ').trim();
        if (line === '') return expect(t).toBeNull();
        const kept = t!.endsWith('…') && t !== line ? t!.slice(0, -1) : t!;
        expect(line.startsWith(kept)).toBe(true);
        expect(Array.from(kept).length).toBeLessThanOrEqual(MAX);
        expect(t === line).toBe(Array.from(line).length <= MAX);
        expect(kept.length).toBeGreaterThan(0);
        expect(observability.Session.shape.title.safeParse(t).success).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('displayTitle', () => {
  it('is the name when there is one, else the first message', () => {
    expect(displayTitle('Nightly import', 'hello')).toBe('Nightly import');
    expect(displayTitle('', 'hello')).toBe('hello');
    expect(displayTitle('  ', null)).toBeNull();
    // An OpenTelemetry session's name is its agent's: the user's words say more.
    expect(displayTitle('invoke_agent Support', 'Where is order A-17?', 'otel')).toBe('Where is order A-17?');
    expect(displayTitle('invoke_agent Support', null, 'otel')).toBe('invoke_agent Support');
  });
});
