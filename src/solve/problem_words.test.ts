// problem_words.py alone (no dnf needed): dnf4's and libdnf5's words for the same rule become the same
// line. messages.test.ts checks the whole path on each backend this machine has; this checks the
// libdnf5 dialect even where only dnf4 is installed (CI).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../tools/exec.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** our_words() over each text; dnf4 packages get their repo from `repos` (what the helper looks up). */
async function ourWords(dialect: 'dnf4' | 'dnf5', texts: string[], repos: Record<string, string> = {}): Promise<string[]> {
  const script = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(HERE)})`,
    'from problem_words import our_words',
    'req = json.loads(sys.stdin.read())',
    "complete = lambda item: ('P', item[1], item[2] or req['repos'].get(item[1]))",
    "print(json.dumps([our_words(t, req['dialect'], complete) for t in req['texts']]))",
  ].join('\n');
  const out = await run('/usr/bin/python3', ['-B', '-c', script], { input: JSON.stringify({ dialect, texts, repos }) });
  return JSON.parse(out.stdout) as string[];
}

const REPOS = { 'a-1-1.x86_64': 'fedora', 'b-1-1.x86_64': 'xtra', 'shell-acme-5.2-1.x86_64': '@System' };

// [what, dnf4 4.14 (libdnf 0.69), libdnf5 5.2.18, ours]
const LINES: [string, string, string, string][] = [
  ['a missing dependency', 'nothing provides libx >= 2 needed by a-1-1.x86_64', 'nothing provides libx >= 2 needed by a-1-1.x86_64 from fedora',
    'nothing provides libx >= 2 needed by a-1-1.x86_64 from fedora'],
  ['requires', 'package a-1-1.x86_64 requires b, but none of the providers can be installed',
    'package a-1-1.x86_64 from fedora requires b, but none of the providers can be installed',
    'package a-1-1.x86_64 from fedora requires b, but none of the providers can be installed'],
  ['a base package requires', 'package shell-acme-5.2-1.x86_64 requires libz = 1, but none of the providers can be installed',
    'installed package shell-acme-5.2-1.x86_64 requires libz = 1, but none of the providers can be installed',
    'base package shell-acme-5.2-1.x86_64 requires libz = 1, but none of the providers can be installed'],
  ['a conflict between two packages', 'package a-1-1.x86_64 conflicts with b provided by b-1-1.x86_64',
    'package a-1-1.x86_64 from fedora conflicts with b provided by b-1-1.x86_64 from xtra',
    'package a-1-1.x86_64 from fedora conflicts with b provided by b-1-1.x86_64 from xtra'],
  ['a package obsoleting another', 'package a-1-1.x86_64 obsoletes b provided by b-1-1.x86_64',
    'package a-1-1.x86_64 from fedora obsoletes b provided by b-1-1.x86_64 from xtra',
    'package a-1-1.x86_64 from fedora obsoletes b provided by b-1-1.x86_64 from xtra'],
  ['two packages of one name', 'cannot install both a-1-1.x86_64 and b-1-1.x86_64', 'cannot install both a-1-1.x86_64 from fedora and b-1-1.x86_64 from xtra',
    'cannot install both a-1-1.x86_64 from fedora and b-1-1.x86_64 from xtra'],
  ['an excluded package', 'package b-1-1.x86_64 is filtered out by exclude filtering', 'package b-1-1.x86_64 from xtra is filtered out by exclude filtering',
    'package b-1-1.x86_64 from xtra is filtered out by exclude filtering'],
  ['a line neither knows passes through', 'The operation would result in removing the following protected packages: dnf',
    'The operation would result in removing the following protected packages: dnf', 'The operation would result in removing the following protected packages: dnf'],
];

test.each(LINES)('%s: dnf4 and libdnf5 say it the same way', async (_what, dnf4, dnf5, ours) => {
  expect(await ourWords('dnf4', [dnf4], REPOS)).toEqual([ours]);
  expect(await ourWords('dnf5', [dnf5])).toEqual([ours]);
});

test('the layout of several problems is kept; "problem with installed package" is left out', async () => {
  const dnf4 = 'Problem 1: conflicting requests\n  - nothing provides libx needed by a-1-1.x86_64\n Problem 2: conflicting requests\n  - problem with installed package shell-acme-5.2-1.x86_64';
  const dnf5 = 'Problem 1: conflicting requests\n  - nothing provides libx needed by a-1-1.x86_64 from fedora\n Problem 2: conflicting requests\n  - problem with installed package';
  const ours = 'Problem 1: conflicting requests\n  - nothing provides libx needed by a-1-1.x86_64 from fedora\n Problem 2: conflicting requests';
  expect(await ourWords('dnf4', [dnf4], REPOS)).toEqual([ours]);
  expect(await ourWords('dnf5', [dnf5])).toEqual([ours]);
});
