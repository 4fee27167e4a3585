// Turns bench results into Markdown: medians, ratios against the targets, where our time goes,
// correctness checks and growth with repository size and with the number of extensions.

export const median = (xs) => {
  const s = xs.filter((x) => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const sec = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const mib = (x) => (Number.isFinite(x) ? `${Math.round(x / 1048576)} MiB` : '–');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const range = (xs) => (xs.length > 1 ? ` (${sec(Math.min(...xs))}–${sec(Math.max(...xs))})` : '');

const KINDS = [
  ['plain', 'plain dnf pipeline (arches in turn)'],
  ['cold', 'ours, cold: 4 arches, closures + metadata'],
  ['action', 'the action, cold (`dist/action.js`, `upload: none`)'],
  ['floor', 'floor: copy resolved RPMs + createrepo_c'],
  ['rerun', 'ours, unchanged rerun (`--previous-state`)'],
  ['warm', 'ours, warm cache, no `--previous-state`'],
];

/** The kinds this size has figures for (results from before the action was measured have none for it). */
const measured = (size) => KINDS.filter(([kind]) => size.reps.every((r) => r[kind]));

/** Median of one measure of one kind over the repetitions. */
export function med(size, kind, key) {
  return median(size.reps.map((r) => r[kind]?.[key]));
}

function phaseTable(size, kind) {
  // Architectures run concurrently: what matters is when the last one reached each point.
  const marks = ['base', 'resolved', 'downloaded', 'staged', 'unchanged'];
  const per = size.reps.map((r) => {
    const out = {};
    for (const m of marks) {
      const at = Object.values(r[kind].phases ?? {}).map((p) => p[m]).filter((x) => x !== undefined);
      if (at.length) out[m] = Math.max(...at) / 1000;
    }
    out.exit = r[kind].wall;
    return out;
  });
  const names = {
    base: 'base read (ostree, rpmdb copy, rpm -qa)',
    resolved: 'dnf solve done (metadata load + one goal per extension + joint goal)',
    downloaded: 'download + verify done',
    staged: 'staged (copy, createrepo_c, metadata.json)',
    unchanged: 'state known equal to previous',
    exit: 'process exit (atomic commit, cleanup)',
  };
  const rows = [];
  let prev = 0;
  for (const m of [...marks, 'exit']) {
    const at = median(per.map((p) => p[m]));
    if (!Number.isFinite(at)) continue;
    rows.push(`| ${names[m]} | ${sec(at)} | ${sec(at - prev)} |`);
    prev = at;
  }
  return ['| phase (slowest architecture) | done at, s | phase, s |', '| --- | ---: | ---: |', ...rows].join('\n');
}

function sizeSection(size, first) {
  const lines = [];
  lines.push(`### ${size.packages.toLocaleString('en')} packages per architecture`);
  lines.push('');
  lines.push(
    `${size.rpmsPerArch} RPMs per architecture (4 architectures), base ${size.basePackages} packages, ` +
      `12 os-extensions + 1 development extension; ` +
      `${size.payloadMiBPerArch ? `payloads of ${Math.round(size.payloadMiBPerArch)} MiB per architecture in the packages any pipeline downloads` : 'empty packages (no payload)'}; ` +
      `${size.reps.length} repetitions; ` +
      `distro generated in ${sec(size.generatedIn)} s (cached afterwards).`,
  );
  lines.push('');
  lines.push('| what | wall, s (median, min–max) | CPU, s | peak RSS, process tree | peak PSS, process tree | largest process | HTTP requests | load avg before |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [kind, label] of measured(size)) {
    const walls = size.reps.map((r) => r[kind].wall);
    lines.push(
      `| ${label} | ${sec(median(walls))}${range(walls)} | ${sec(med(size, kind, 'cpu'))} | ${mib(med(size, kind, 'peakTreeRss'))} | ` +
        `${mib(med(size, kind, 'peakTreePss'))} | ${mib(med(size, kind, 'maxProcessRss'))} | ${Math.round(med(size, kind, 'httpRequests'))} | ` +
        `${median(size.reps.map((r) => r[kind].load[0])).toFixed(1)} |`,
    );
  }
  lines.push('');
  const commands = (kind) => {
    const names = [...new Set(size.reps.flatMap((r) => Object.keys(r[kind].peakByCommand ?? {})))];
    return names
      .map((n) => [n, median(size.reps.map((r) => r[kind].peakByCommand?.[n] ?? 0))])
      .filter(([, v]) => v >= 4 * 1048576)
      .sort((a, b) => b[1] - a[1])
      .map(([n, v]) => `${n} ${mib(v)}`)
      .join(', ');
  };
  lines.push(`Peak RSS per command (all processes of that name together): ours cold: ${commands('cold')}; plain: ${commands('plain')}.`);
  lines.push('');
  const w = (k) => med(size, k, 'wall');
  const c = (k) => med(size, k, 'cpu');
  const check = (x, limit) => (Number.isFinite(x) ? (x <= limit ? 'met' : '**not met**') : '–');
  lines.push('| ratio | wall | CPU | target (wall) | |');
  lines.push('| --- | ---: | ---: | ---: | --- |');
  lines.push(`| ours cold / plain | ${ratio(w('cold') / w('plain'))} | ${ratio(c('cold') / c('plain'))} | ≤ 0.5× | ${check(w('cold') / w('plain'), 0.5)} |`);
  lines.push(`| ours cold / floor | ${ratio(w('cold') / w('floor'))} | ${ratio(c('cold') / c('floor'))} | ≤ 3× | ${check(w('cold') / w('floor'), 3)} |`);
  lines.push(`| unchanged rerun / plain | ${ratio(w('rerun') / w('plain'))} | ${ratio(c('rerun') / c('plain'))} | ≤ 0.1× | ${check(w('rerun') / w('plain'), 0.1)} |`);
  lines.push(`| warm rerun (no previous state) / plain | ${ratio(w('warm') / w('plain'))} | ${ratio(c('warm') / c('plain'))} | | |`);
  const peak = med(size, 'cold', 'peakTreeRss');
  lines.push(`| ours cold, peak RSS of the whole tree | ${mib(peak)} | | ≤ 150 MiB at 10,000 | ${size.packages <= 10000 ? check(peak / 1048576, 150) : ''} |`);
  const actionPeak = med(size, 'action', 'peakTreeRss');
  if (Number.isFinite(actionPeak)) {
    lines.push(`| the action cold, peak RSS of the whole tree | ${mib(actionPeak)} | | ≤ 150 MiB at 10,000 | ${size.packages <= 10000 ? check(actionPeak / 1048576, 150) : ''} |`);
  }
  lines.push('');
  lines.push('Where our cold compose spends its time (from the CLI\'s progress lines, slowest architecture, median):');
  lines.push('');
  lines.push(phaseTable(size, 'cold'));
  lines.push('');
  lines.push('Unchanged rerun:');
  lines.push('');
  lines.push(phaseTable(size, 'rerun'));
  lines.push('');
  lines.push('Correctness:');
  lines.push('');
  for (const r of size.reps) {
    const diffs = Object.entries(r.outputDiff).filter(([, d]) => d.onlyPlain.length || d.onlyOurs.length);
    const same = diffs.length === 0;
    const per = Object.entries(r.packages).map(([a, n]) => `${a} ${n}`).join(', ');
    lines.push(
      `- run ${r.rep}: packages per arch ${per}; plain pipeline vs ours: ${same ? 'the same RPMs' : '**differ**'}; ` +
        `closures as the generator expects: ${r.closureMismatches.length === 0 ? 'yes' : `**${r.closureMismatches.length} differ**`}; ` +
        `unchanged rerun reports changed=${r.rerunChanged}; warm rerun same state: ${r.warmSameState}` +
        `${r.action ? `; the action's state the CLI's: ${r.actionSameState}` : ''}`,
    );
    for (const [arch, d] of diffs) {
      lines.push(`  - ${arch}: only plain: ${d.onlyPlain.slice(0, 10).join(', ') || '–'}; only ours: ${d.onlyOurs.slice(0, 10).join(', ') || '–'}`);
    }
    for (const m of r.closureMismatches.slice(0, 5)) lines.push(`  - ${m.arch} ${m.extension}: expected ${m.expected}, got ${m.got}`);
  }
  if (first && size.scaling?.length) {
    lines.push('');
    lines.push('Growth with the number of os-extensions (one cold run each):');
    lines.push('');
    lines.push('| os-extensions | packages per arch | plain, s | ours cold, s | ours / plain | ours peak RSS |');
    lines.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
    lines.push(`| 12 | ${size.reps[0]?.packages.x86_64} | ${sec(w('plain'))} | ${sec(w('cold'))} | ${ratio(w('cold') / w('plain'))} | ${mib(peak)} |`);
    for (const s of size.scaling) {
      lines.push(`| ${s.extensions} | ${s.packagesPerArch} | ${sec(s.plain.wall)} | ${sec(s.ours.wall)} | ${ratio(s.ours.wall / s.plain.wall)} | ${mib(s.ours.peakTreeRss)} |`);
    }
  }
  return lines.join('\n');
}

function growth(results) {
  if (results.sizes.length < 2) return '';
  const [a, ...rest] = results.sizes;
  const lines = ['### Growth with repository size', '', '| what | ' + results.sizes.map((s) => `${s.packages.toLocaleString('en')}, s`).join(' | ') + ' | ' + rest.map((s) => `×${(s.packages / a.packages).toFixed(0)} packages → time ×`).join(' | ') + ' |'];
  lines.push('| --- |' + ' ---: |'.repeat(results.sizes.length + rest.length));
  for (const [kind, label] of measured(a)) {
    const base = med(a, kind, 'wall');
    lines.push(`| ${label} | ${results.sizes.map((s) => sec(med(s, kind, 'wall'))).join(' | ')} | ${rest.map((s) => ratio(med(s, kind, 'wall') / base)).join(' | ')} |`);
  }
  lines.push(`| ours cold, peak RSS | ${results.sizes.map((s) => mib(med(s, 'cold', 'peakTreeRss'))).join(' | ')} | ${rest.map((s) => ratio(med(s, 'cold', 'peakTreeRss') / med(a, 'cold', 'peakTreeRss'))).join(' | ')} |`);
  return lines.join('\n');
}

export function markdown(results) {
  const m = results.machine;
  return [
    `## Benchmark results`,
    '',
    `${results.date}; ${m.cpus} CPUs (${m.cpuModel}), ${m.memGiB} GiB; CLI \`${results.cli}\` on Node ${m.node}` +
      `${results.git ? ` at ${results.git.commit.slice(0, 12)}${results.git.distDirty ? ' (dist/ with uncommitted changes)' : ''}` : ''}; seed ${results.seed}` +
      `${results.latencyMs ? `; the server waits ${results.latencyMs} ms before each answer, as a mirror's round trip` : ''}` +
      `${results.repoOptions?.length ? `; repo options ${results.repoOptions.map((o) => `\`${o}\``).join(', ')} (our downloads through dnf's own downloader)` : ''}.`,
    '',
    ...results.sizes.map((s, i) => sizeSection(s, i === 0) + '\n'),
    growth(results),
    '',
  ].join('\n');
}
