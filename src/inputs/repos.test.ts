import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, UsageError } from '../errors.js';
import { loadRepos, parseRepoFile, parseRepoPair, renderRepoFile, type RepoDefinition } from './repos.js';

describe('parseRepoFile', () => {
  test('reads sections and options, skips comments, lower-cases keys, joins continuation lines', () => {
    const text = [
      '# Fedora repos',                          // 1
      '; also a comment',                        // 2
      '[fedora]',                                // 3
      'Name = Fedora $releasever',               // 4
      'baseurl=http://a.example/$basearch/',     // 5
      '        http://b.example/$basearch/',     // 6
      '\thttp://c.example/?x=1',                 // 7
      'GPGCheck=1',                              // 8
      '',                                        // 9
      '  # an indented comment',                 // 10
      '[updates-testing.x:1]',                   // 11
      'metalink=https://m.example/?repo=u&arch=$basearch', // 12
      'enabled=0',                               // 13
    ].join('\n');
    const { repos, problems } = parseRepoFile(text, 'f.repo');
    expect(problems).toEqual([]);
    expect(repos).toEqual([
      {
        id: 'fedora',
        origin: 'f.repo:3',
        options: {
          name: 'Fedora $releasever',
          baseurl: 'http://a.example/$basearch/ http://b.example/$basearch/ http://c.example/?x=1',
          gpgcheck: '1',
        },
      },
      { id: 'updates-testing.x:1', origin: 'f.repo:11', options: { metalink: 'https://m.example/?repo=u&arch=$basearch', enabled: '0' } },
    ]);
  });

  test('accepts CRLF line endings', () => {
    const { repos, problems } = parseRepoFile('[a]\r\nbaseurl=file:///r\r\n', 'a.repo');
    expect(problems).toEqual([]);
    expect(repos).toEqual([{ id: 'a', origin: 'a.repo:1', options: { baseurl: 'file:///r' } }]);
  });

  test('rejects [main] with its line, and ignores its options', () => {
    const { repos, problems } = parseRepoFile('[ok]\nbaseurl=file:///ok\n\n[main]\ngpgcheck=0\nbaseurl=file:///a\n  file:///b\n', 'm.repo');
    expect(repos.map((r) => r.id)).toEqual(['ok']);
    expect(repos[0]!.options).toEqual({ baseurl: 'file:///ok' });
    expect(problems).toEqual([
      { file: 'm.repo', line: 4, col: 2, path: 'main', message: "[main] is dnf's global section, not a repo; give the repo another id" },
    ]);
  });

  test('rejects invalid ids', () => {
    const { repos, problems } = parseRepoFile('[my repo]\nbaseurl=x\n[a/b]\n[]\n[good]\n', 'i.repo');
    expect(repos.map((r) => r.id)).toEqual(['good']);
    expect(problems).toEqual([
      { file: 'i.repo', line: 1, col: 2, path: 'my repo', message: 'invalid repo id "my repo"' },
      { file: 'i.repo', line: 3, col: 2, path: 'a/b', message: 'invalid repo id "a/b"' },
      { file: 'i.repo', line: 4, col: 2, path: '', message: 'invalid repo id ""' },
    ]);
  });

  test('reports lines that are not key=value, with their line numbers', () => {
    const { problems } = parseRepoFile('[r]\nbaseurl=file:///r\nthis is not an option\n=value\n', 'k.repo');
    expect(problems).toEqual([
      { file: 'k.repo', line: 3, col: 1, path: 'r', message: 'expected key=value, found "this…"' },
      { file: 'k.repo', line: 4, col: 1, path: 'r', message: 'expected key=value, found "…"' },
    ]);
  });

  test('reports options before the first section instead of dropping them', () => {
    const { repos, problems } = parseRepoFile('baseurl=file:///lost\n[r]\nname=r\n', 'o.repo');
    expect(repos).toEqual([{ id: 'r', origin: 'o.repo:2', options: { name: 'r' } }]);
    expect(problems).toEqual([
      { file: 'o.repo', line: 1, col: 1, path: '', message: 'option "baseurl" outside a section: put it under a [repo-id] header' },
    ]);
  });
});

describe('parseRepoPair', () => {
  test.each([
    ['local=file:///srv/repo', 'local', 'file:///srv/repo'],
    ['local=/srv/repo/$basearch', 'local', 'file:///srv/repo/$basearch'],
    ['web=http://127.0.0.1:8080/r?a=b', 'web', 'http://127.0.0.1:8080/r?a=b'],
    ['copr:x.y_z-1=https://example.org/r/', 'copr:x.y_z-1', 'https://example.org/r/'],
  ])('%s', (pair, id, baseurl) => {
    expect(parseRepoPair(pair)).toEqual({ id, origin: '--repo', options: { name: id, baseurl, gpgcheck: '0' } });
  });

  test.each([
    ['noequals', '--repo expects ID=URL, got "noequals"'],
    ['=http://x/', '--repo expects ID=URL, got "=http://x/"'],
    ['id=', '--repo expects ID=URL, got "id="'],
    ['main=http://x/', '--repo main=http://x/: invalid repo id "main"'],
    ['a b=http://x/', '--repo a b=http://x/: invalid repo id "a b"'],
    ['r=relative/path', '--repo r=relative/path: the URL must be http://, https://, file:// or an absolute path'],
    ['r=ftp://x/', '--repo r=ftp://x/: the URL must be http://, https://, file:// or an absolute path'],
  ])('rejects %s', (pair, message) => {
    expect(() => parseRepoPair(pair)).toThrow(UsageError);
    expect(() => parseRepoPair(pair)).toThrow(message);
  });
});

describe('loadRepos', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ce-repos-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('reads every .repo file in name order; a pair replaces the file repo of the same id', async () => {
    await writeFile(join(dir, 'b.repo'), '[updates]\nbaseurl=file:///updates\n');
    await writeFile(join(dir, 'a.repo'), '[fedora]\nbaseurl=file:///fedora\ngpgcheck=1\n\n[extras]\nbaseurl=file:///extras\n');
    await writeFile(join(dir, 'notes.txt'), '[ignored]\nbaseurl=file:///x\n');
    const repos = await loadRepos(dir, ['fedora=http://127.0.0.1:1/fedora', 'local=/srv/local']);
    expect(repos).toEqual([
      { id: 'fedora', origin: '--repo', options: { name: 'fedora', baseurl: 'http://127.0.0.1:1/fedora', gpgcheck: '0' } },
      { id: 'extras', origin: `${join(dir, 'a.repo')}:5`, options: { baseurl: 'file:///extras' } },
      { id: 'updates', origin: `${join(dir, 'b.repo')}:1`, options: { baseurl: 'file:///updates' } },
      { id: 'local', origin: '--repo', options: { name: 'local', baseurl: 'file:///srv/local', gpgcheck: '0' } },
    ]);
  });

  test('a duplicate id across files is a ConfigError naming both places, with every other problem', async () => {
    await writeFile(join(dir, 'a.repo'), '[fedora]\nbaseurl=file:///a\n');
    await writeFile(join(dir, 'b.repo'), '# second\n[main]\n[fedora]\nbaseurl=file:///b\n');
    const err = await loadRepos(dir, []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const a = join(dir, 'a.repo');
    const b = join(dir, 'b.repo');
    expect((err as ConfigError).problems).toEqual([
      { file: b, line: 2, col: 2, path: 'main', message: "[main] is dnf's global section, not a repo; give the repo another id" },
      { file: b, line: 3, col: 2, path: 'fedora', message: `repo "fedora" is already defined at ${a}:1` },
    ]);
    expect((err as ConfigError).message).toContain(`${b}:3:2: fedora: repo "fedora" is already defined at ${a}:1`);
  });

  test('a duplicate id within one file is caught too', async () => {
    await writeFile(join(dir, 'a.repo'), '[r]\nbaseurl=file:///1\n[r]\nbaseurl=file:///2\n');
    await expect(loadRepos(dir, [])).rejects.toThrow(`repo "r" is already defined at ${join(dir, 'a.repo')}:1`);
  });

  test('a missing directory is a UsageError; no directory means pairs only', async () => {
    const missing = join(dir, 'nope');
    const err = await loadRepos(missing, []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(new RegExp(`^cannot read repos directory ${missing}: ENOENT`));
    expect(await loadRepos(undefined, ['x=/x'])).toEqual([parseRepoPair('x=/x')]);
  });

  test('a bad pair is a UsageError', async () => {
    await expect(loadRepos(undefined, ['x'])).rejects.toThrow(UsageError);
  });
});

describe('renderRepoFile', () => {
  test('forces enabled=1 and skip_if_unavailable=0 whatever the file said', () => {
    const repos: RepoDefinition[] = [
      { id: 'fedora', origin: 'f.repo:1', options: { name: 'Fedora', baseurl: 'file:///a file:///b', enabled: '0', skip_if_unavailable: '1' } },
      { id: 'extras', origin: '--repo', options: { baseurl: 'http://x/', gpgcheck: '1', gpgkey: 'file:///k' } },
    ];
    expect(renderRepoFile(repos)).toBe(
      '[fedora]\nname=Fedora\nbaseurl=file:///a file:///b\nenabled=1\nskip_if_unavailable=0\n' +
        '\n' +
        '[extras]\nbaseurl=http://x/\ngpgcheck=1\ngpgkey=file:///k\nenabled=1\nskip_if_unavailable=0\n',
    );
    // The input is left as it was.
    expect(repos[0]!.options['enabled']).toBe('0');
  });

  test('round-trips through parseRepoFile', () => {
    const repos: RepoDefinition[] = [{ id: 'a', origin: 'x', options: { name: 'A', baseurl: 'file:///a' } }];
    const { repos: parsed, problems } = parseRepoFile(renderRepoFile(repos), 'rendered.repo');
    expect(problems).toEqual([]);
    expect(parsed.map((r) => [r.id, r.options])).toEqual([['a', { name: 'A', baseurl: 'file:///a', enabled: '1', skip_if_unavailable: '0' }]]);
  });

  test('nothing to render is an empty file', () => {
    expect(renderRepoFile([])).toBe('');
  });
});

describe('values that would change the generated .repo file are refused', () => {
  test('--repo: a newline in the URL cannot inject an option or a section (issue 15)', () => {
    const message = (pair: string) => {
      try {
        parseRepoPair(pair);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('expected a UsageError');
    };
    expect(message('x=http://a/\ngpgcheck=0')).toBe(
      '--repo x=http://a/\\ngpgcheck=0: the URL must not contain white space or control characters',
    );
    expect(message('x=http://a/\n[evil]\nbaseurl=http://evil/')).toBe(
      '--repo x=http://a/\\n[evil]\\nbaseurl=http://evil/: the URL must not contain white space or control characters',
    );
    expect(message('x=http://a/\rsslverify=0')).toBe('--repo x=http://a/\\rsslverify=0: the URL must not contain white space or control characters');
    expect(message('x=http://a/ b')).toBe('--repo x=http://a/ b: the URL must not contain white space or control characters');
    expect(message('x]\n[evil=http://a/')).toBe('--repo x]\\n[evil=http://a/: invalid repo id "x]\\n[evil"');
    expect(message('[x]=http://a/')).toBe('--repo [x]=http://a/: invalid repo id "[x]"');
  });

  test('.repo files: a control character or an invalid option name is a located problem', () => {
    const { repos, problems } = parseRepoFile(
      '[ok]\nbaseurl=http://a/\rgpgcheck=0\nname=x\u001b[31m\ngpg check=0\nbase-url=http://b/\n[bad\tid]\n',
      'f.repo',
    );
    expect(problems).toEqual([
      { file: 'f.repo', line: 2, col: 18, path: 'ok', message: 'control character U+000D in the line; a .repo line holds one key=value' },
      { file: 'f.repo', line: 3, col: 7, path: 'ok', message: 'control character U+001B in the line; a .repo line holds one key=value' },
      { file: 'f.repo', line: 4, col: 1, path: 'ok', message: 'invalid option name "gpg check": dnf options are made of a-z, 0-9 and _' },
      { file: 'f.repo', line: 5, col: 1, path: 'ok', message: 'invalid option name "base-url": dnf options are made of a-z, 0-9 and _' },
      { file: 'f.repo', line: 6, col: 2, path: 'bad\tid', message: 'invalid repo id "bad\tid"' },
    ]);
    expect(repos.map((r) => [r.id, { ...r.options }])).toEqual([['ok', {}]]);
  });

  test('renderRepoFile refuses what parsing would have refused', () => {
    const render = (id: string, options: Record<string, string>) => () => renderRepoFile([{ id, origin: 'x', options }]);
    expect(render('a', { baseurl: 'http://a/\ngpgcheck=0' })).toThrow(
      'refusing to write option "baseurl"="http://a/\\ngpgcheck=0" of repo a into a .repo file',
    );
    expect(render('a', { 'gpgcheck=0\nx': '1' })).toThrow('refusing to write option "gpgcheck=0\\nx"="1" of repo a into a .repo file');
    expect(render('a]\n[evil', { baseurl: 'http://a/' })).toThrow('refusing to write repo id "a]\\n[evil" into a .repo file');
    expect(render('main', { baseurl: 'http://a/' })).toThrow('refusing to write repo id "main" into a .repo file');
  });
});
