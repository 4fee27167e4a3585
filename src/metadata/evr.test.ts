import { run } from '../tools/exec.js';
import { compareEvr, formatEvr, parseNevra, rpmvercmp } from './evr.js';

// Expected values are rpm's own (rpmvercmp cases from rpm's test suite, rpmvercmp.at).
test.each([
  ['1.0', '1.0', 0], ['1.0', '2.0', -1], ['2.0', '1.0', 1], ['2.0.1', '2.0.1', 0], ['2.0', '2.0.1', -1],
  ['2.0.1a', '2.0.1', 1], ['5.5p1', '5.5p2', -1], ['5.5p10', '5.5p1', 1], ['10xyz', '10.1xyz', -1],
  ['xyz10', 'xyz10.1', -1], ['1.0aa', '1.0a', 1], ['10.0001', '10.1', 0], ['10.0001', '10.0039', -1],
  ['4.999.9', '5.0', -1], ['20101121', '20101122', -1], ['2_0', '2_0', 0], ['2.0', '2_0', 0], ['a', 'b', -1],
  ['1.0~rc1', '1.0', -1], ['1.0~rc1', '1.0~rc2', -1], ['1.0~rc1~git123', '1.0~rc1', -1], ['1.0^', '1.0', 1],
  ['1.0^git1', '1.0^git2', -1], ['1.0^git1', '1.01', -1], ['1.0^20160101', '1.0.1', -1], ['1.0~rc1^git1', '1.0~rc1', 1],
  ['1.0a', '1.0', 1], ['1.0', '1.0a', -1], ['5.5p1', '5.5.p1', 0], ['1b.fc17', '1.fc17', -1], ['6.0.rc1', '6.0', 1],
])('rpmvercmp(%s, %s) = %d', (a, b, expected) => {
  expect(rpmvercmp(a, b)).toBe(expected);
  expect(rpmvercmp(b, a)).toBe(-expected || 0);
});

test('epoch outranks version', () => {
  expect(compareEvr({ epoch: 2, version: '1.0', release: '1' }, { epoch: 0, version: '3.0', release: '1' })).toBe(1);
  expect(compareEvr({ epoch: 0, version: '1.0', release: '2.fc41' }, { epoch: 0, version: '1.0', release: '10.fc41' })).toBe(-1);
});

test('parseNevra and formatEvr', () => {
  expect(parseNevra('kernel-devel-6.11.4-301.fc41.x86_64')).toEqual({ name: 'kernel-devel', epoch: 0, version: '6.11.4', release: '301.fc41', arch: 'x86_64' });
  expect(parseNevra('openssl-libs-1:3.1-1.aarch64')).toMatchObject({ name: 'openssl-libs', epoch: 1, version: '3.1' });
  expect(formatEvr(parseNevra('openssl-libs-1:3.1-1.aarch64'))).toBe('1:3.1-1');
  expect(() => parseNevra('nonsense')).toThrow('not a NEVRA');
});

test('rpmvercmp agrees with rpm itself', async () => {
  const pairs: [string, string][] = [
    ['1.0', '1.0'], ['1.0', '2.0'], ['2.0.1', '2.0'], ['1.0a', '1.0'], ['1.0', '1.0.0'], ['5.5p1', '5.5p10'],
    ['10', '9'], ['010', '10'], ['1.0~rc1', '1.0'], ['1.0~rc1', '1.0~rc2'], ['1.0~rc1~git', '1.0~rc1'], ['1.0^', '1.0'],
    ['1.0^git1', '1.0^git2'], ['1.0^git1', '1.01'], ['1.0^20160101', '1.0.1'], ['a', '1'], ['fc42', 'fc9'], ['1_0', '1.0'],
    ['2.el9', '2.el9_1'], ['63.fc42', '63.fc42.1'], ['abc', 'abd'], ['1.a', '1.1'], ['1..', '1'], ['1+2', '1.2'],
  ];
  // rpm.vercmp parses EVRs; none of these has an epoch or release, so it compares versions.
  const lua = pairs.map(([a, b]) => `print(rpm.vercmp(${JSON.stringify(a)}, ${JSON.stringify(b)}) .. ' ')`).join(' ');
  const { stdout } = await run('rpm', ['--eval', `%{lua: ${lua}}`]);
  const expected = stdout.trim().split(/\s+/).map(Number);
  expect(expected).toHaveLength(pairs.length);
  expect(pairs.map(([a, b]) => rpmvercmp(a, b))).toEqual(expected);
  expect(pairs.map(([a, b]) => rpmvercmp(b, a))).toEqual(expected.map((x) => -x || 0));
  expect(compareEvr({ epoch: 0, version: '1.0', release: '2' }, { epoch: 0, version: '1.0', release: '10' })).toBe(-1);
});
