import { ComposeError, ConfigError, escapeControl, escapeLines, exitCodeFor, formatComposeProblem, formatProblem } from './errors.js';

test('escapeControl escapes C0, DEL, C1 and the Unicode line separators, JSON-style', () => {
  expect(escapeControl('a\u001b[31mred\u0007\n\r\t\u0000\u007f\u0085\u009b\u2028\u2029z')).toBe(
    'a\\u001b[31mred\\u0007\\n\\r\\t\\u0000\\u007f\\u0085\\u009b\\u2028\\u2029z',
  );
  expect(escapeControl('plain text, ünïcode and emoji 🙂')).toBe('plain text, ünïcode and emoji 🙂');
  expect(escapeLines('line 1 \u001b[1m\nline 2')).toBe('line 1 \\u001b[1m\nline 2');
});

test('config and compose problems print config text escaped', () => {
  const p = { file: 'e\nx.yaml', line: 3, col: 5, path: 'extensions.a\u001b]0;title\u0007', message: 'unknown key `b\r`' };
  expect(formatProblem(p)).toBe('e\\nx.yaml:3:5: extensions.a\\u001b]0;title\\u0007: unknown key `b\\r`');
  expect(new ConfigError([p, p]).message).toBe(`2 problems in configuration:\n  ${formatProblem(p)}\n  ${formatProblem(p)}`);
  const c = { arch: 'x86_64', extension: 'ext\n::error::x', message: 'no package matches \u001b[2J' };
  expect(formatComposeProblem(c)).toBe('ext\\n::error::x on x86_64: no package matches \\u001b[2J');
  expect(new ComposeError([c]).message).toBe(formatComposeProblem(c));
  const located = { ...c, file: 'ext.yaml', line: 12, col: 3 };
  expect(formatComposeProblem(located)).toBe('ext.yaml:12:3: ext\\n::error::x on x86_64: no package matches \\u001b[2J');
  expect(formatComposeProblem(located, { where: false })).toBe(formatComposeProblem(c));
  expect(exitCodeFor(new ConfigError([p]))).toBe(2);
});
