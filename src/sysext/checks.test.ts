import { checkAgainstBase, parseScripts, parseSysusers } from './checks.js';

const US = '\u001f';
const RS = '\u001e';

test('scriptlet bodies with tabs and newlines parse; triggers and alternatives are named', () => {
  const none = Array(6).fill('(none)');
  const text = [
    ['a-1-1.noarch', '(none)', 'echo\tone\nalternatives --set x y', ...none.slice(2), '', 'file-trigger', ''].join(US),
    ['b-1-1.noarch', ...none, '', '', ''].join(US),
  ].join(RS + '\n') + RS;
  expect(parseScripts(text)).toEqual(new Map([['a-1-1.noarch', ['pre', 'file-trigger', 'alternatives']], ['b-1-1.noarch', []]]));
});

test('directories are never shadow findings; a differing symlink is an error', () => {
  const base = new Map([
    ['/usr/bin', { digest: '', mode: 0o40755, linkTo: '' }],
    ['/usr/lib/x.so', { digest: '', mode: 0o120777, linkTo: 'x.so.1' }],
  ]);
  const f = (path: string, mode: number, linkTo = '') => ({ nevra: 'p-1-1.x86_64', path, mode, user: 'root', group: 'root', flags: 0, caps: '', linkTo, digest: '' });
  expect(checkAgainstBase([f('/usr/bin', 0o40755), f('/usr/lib/x.so', 0o120777, 'x.so.2')], base, new Map(), [])).toEqual([
    { class: 'shadow', severity: 'error', message: "p-1-1.x86_64: /usr/lib/x.so is also in the base, with different contents: the image would hide the base's file" },
  ]);
});

test('sysusers.d: fixed ids only, the first file by name wins, a u line names its group unless a g line does', () => {
  const ids = parseSysusers([
    { path: '/usr/lib/sysusers.d/b.conf', text: 'u a 5\ng c 9\n' },
    { path: '/usr/lib/sysusers.d/a.conf', text: '# comment\nu a 1 "A" /\nu! b 2:7\nu c 3\ng d -\nu e /usr/bin/e\nm a c\n' },
  ]);
  expect(ids.users).toEqual(new Map([['a', { id: 1, file: '/usr/lib/sysusers.d/a.conf' }], ['b', { id: 2, file: '/usr/lib/sysusers.d/a.conf' }], ['c', { id: 3, file: '/usr/lib/sysusers.d/a.conf' }]]));
  // b's primary group is 7 by number: sysusers makes no group b. c's group is the g line's.
  expect(ids.groups).toEqual(new Map([['c', { id: 9, file: '/usr/lib/sysusers.d/b.conf' }], ['a', { id: 1, file: '/usr/lib/sysusers.d/a.conf' }]]));
});
