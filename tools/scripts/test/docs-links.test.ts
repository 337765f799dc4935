import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The README and docs/ are read on GitHub and in a clone: every relative link and image must reach
 * a file a clone has (not one git ignores, such as a test's local output), and every `#anchor` a
 * heading of the page it names. Links to the web are not followed.
 */
const ROOT = resolve(__dirname, '../../..');

function markdownFiles(): string[] {
  const out = [join(ROOT, 'README.md')];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.md')) out.push(p);
    }
  };
  walk(join(ROOT, 'docs'));
  return out;
}

/** Markdown outside fenced code blocks (a jq script's `[…](…)` is not a link). */
function prose(text: string): string {
  let fenced = false;
  return text
    .split('\n')
    .filter((line) => {
      if (!/^\s*```/.test(line)) return !fenced;
      fenced = !fenced;
      return false;
    })
    .join('\n')
    .replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchors: the heading's text, lower case, punctuation dropped, spaces as hyphens; repeats get -1, -2… */
export function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

function ignoredByGit(path: string): boolean {
  try {
    execFileSync('git', ['check-ignore', '-q', path], { cwd: ROOT, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function brokenLinks(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const problems: string[] = [];
  for (const m of prose(text).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const target = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [pathPart, anchor] = target.split('#') as [string, string | undefined];
    const path = pathPart ? resolve(dirname(file), decodeURIComponent(pathPart)) : file;
    const where = `${relative(ROOT, file)}: ${target}`;
    if (!path.startsWith(ROOT + '/') && path !== ROOT) problems.push(`${where} leaves the repository`);
    else if (ignoredByGit(path)) problems.push(`${where} names a file git ignores (a clone does not have it)`);
    else if (!existsSync(path)) problems.push(`${where} names a missing file`);
    else if (anchor !== undefined && path.endsWith('.md') && !anchorsOf(readFileSync(path, 'utf8')).has(anchor)) problems.push(`${where} names no heading of that page`);
  }
  return problems;
}

describe('README and docs links', () => {
  const files = markdownFiles();

  it('finds the pages', () => {
    expect(files.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining(['README.md', 'docs/README.md', 'docs/protocols/chat-socket.md']));
  });

  it.each(files.map((f) => [relative(ROOT, f), f]))('%s: every relative link and image resolves', (_name, file) => {
    expect(brokenLinks(file)).toEqual([]);
  });

  it('points the reader to no specification file a clone does not have', () => {
    for (const file of files) expect([relative(ROOT, file), /\b00[0-4]_[0-9a-f]{16}\.txt|shared\/spec/.test(readFileSync(file, 'utf8'))]).toEqual([relative(ROOT, file), false]);
  });

  it('reads anchors as GitHub makes them', () => {
    expect([...anchorsOf('# Who may call what\n## The console\'s token\n## `npm start`\n## A\n## A\n```\n# not a heading\n```')]).toEqual([
      'who-may-call-what',
      'the-consoles-token',
      'npm-start',
      'a',
      'a-1',
    ]);
  });

  it('catches a broken link', () => {
    expect(brokenLinks(join(ROOT, 'tools/scripts/test/fixtures/broken-links.md')).map((p) => p.replace(/^.*?: /, ''))).toEqual([
      'missing.md names a missing file',
      '../../../../docs/README.md#no-such-heading names no heading of that page',
      '../../../../apps/console/screenshots/x.png names a file git ignores (a clone does not have it)',
    ]);
  });
});
