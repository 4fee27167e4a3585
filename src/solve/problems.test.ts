import { plainWords } from './problems.js';

test('drops the solver boilerplate and keeps the reason', () => {
  expect(plainWords('cannot be resolved: Problem: conflicting requests\n  - nothing provides libqb.so.100 needed by usbguard-1.1.3-1.aarch64'))
    .toBe('nothing provides libqb.so.100 needed by usbguard-1.1.3-1.aarch64');
});

test('several problems become one line, each reason once', () => {
  const text = 'cannot be resolved: Problem 1: conflicting requests\n  - nothing provides a needed by x-1-1.noarch\n Problem 2: conflicting requests\n  - nothing provides a needed by x-1-1.noarch\n  - package y-1-1.noarch conflicts with z';
  expect(plainWords(text)).toBe('nothing provides a needed by x-1-1.noarch; package y-1-1.noarch conflicts with z');
});

test('our own messages pass through unchanged', () => {
  expect(plainWords('package libfoo already present in base (libfoo-1.0-1.x86_64)')).toBe('package libfoo already present in base (libfoo-1.0-1.x86_64)');
});

test('the solver boilerplate after our own lead goes too', () => {
  expect(plainWords('extensions a and b cannot be installed together: Problem: package a-1-1.x86_64 from r conflicts with b provided by b-1-1.x86_64 from r'))
    .toBe('extensions a and b cannot be installed together: package a-1-1.x86_64 from r conflicts with b provided by b-1-1.x86_64 from r');
});
