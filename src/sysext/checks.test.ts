import { checkAgainstBase, parseScripts } from './checks.js';

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
