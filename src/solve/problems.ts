// dnf's problem text, said plainly: one line, without the solver's boilerplate.

const NOISE = new Set(['conflicting requests']);

/**
 * `Problem: conflicting requests\n  - nothing provides libqb.so.100 needed by usbguard-1.1.3-1.aarch64 from fedora`
 * becomes `nothing provides libqb.so.100 needed by usbguard-1.1.3-1.aarch64 from fedora` (the helpers have already
 * put the solver's lines in our words, the same under dnf4 and dnf5: problem_words.py).
 */
export function plainWords(text: string): string {
  const lead = /^cannot be resolved: /.exec(text)?.[0] ?? '';
  const lines = text
    .slice(lead.length)
    .split('\n')
    // `Problem:` also follows our own lead (`extensions a and b cannot be installed together: Problem: …`).
    .map((l) => l.trim().replace(/^- /, '').replace(/(^|: )Problem( \d+)?: /, '$1').trim())
    .filter((l) => l && !NOISE.has(l));
  const unique = [...new Set(lines)];
  return unique.length > 0 ? unique.join('; ') : text.trim();
}
