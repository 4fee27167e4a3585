// The functional core: which extensions apply on an architecture, pinned to the base, from which repos.
import type { ComposeProblem } from '../errors.js';
import type { ExtensionsConfig } from '../inputs/extensions-yaml.js';
import type { InstalledPackage } from '../tools/rpm.js';
import type { ArchPlan, PlannedExtension } from './types.js';

export interface PlanOptions {
  releasever: string;
  weakDeps: boolean;
}

/** The EVR as a spec suffix, `[epoch:]version-release`, epoch left out when 0 as rpm-ostree writes it. */
export function evrOf(pkg: Pick<InstalledPackage, 'epoch' | 'version' | 'release'>): string {
  return `${pkg.epoch ? `${pkg.epoch}:` : ''}${pkg.version}-${pkg.release}`;
}

/**
 * Plans one architecture: applies the architecture filter, adds per-extension repos only where the
 * extension applies, and pins `match-base-evr` extensions to the base package's EVR. An extension
 * with a problem is left out of the plan, so the others are still resolved and reported on.
 */
export function planArch(
  config: ExtensionsConfig,
  arch: string,
  basePackages: InstalledPackage[],
  options: PlanOptions,
): { plan: ArchPlan; problems: ComposeProblem[] } {
  const problems: ComposeProblem[] = [];
  const byName = new Map(basePackages.map((p) => [p.name, p]));
  const extensions: PlannedExtension[] = [];
  for (const ext of config.extensions) {
    if (ext.architectures && !ext.architectures.includes(arch)) continue;
    let specs = [...ext.packages];
    if (ext.matchBaseEvr) {
      const pin = byName.get(ext.matchBaseEvr);
      if (!pin) {
        problems.push({ arch, extension: ext.name, message: `match-base-evr: package ${ext.matchBaseEvr} is not in the base` });
        continue;
      }
      specs = ext.packages.map((name) => `${name}-${evrOf(pin)}`);
    }
    const inBase = ext.kind === 'os-extension' ? ext.packages.filter((n) => byName.has(n)) : [];
    for (const name of inBase) {
      problems.push({ arch, extension: ext.name, message: `package ${name} already present in base (${byName.get(name)!.nevra})` });
    }
    if (inBase.length > 0) continue;
    extensions.push({
      name: ext.name,
      kind: ext.kind,
      requested: [...ext.packages],
      ...(ext.matchBaseEvr ? { matchBaseEvr: ext.matchBaseEvr } : {}),
      specs,
      repos: [...new Set([...config.repos, ...ext.repos])].sort(),
    });
  }
  const repos = [...new Set(extensions.flatMap((e) => e.repos))].sort();
  return { plan: { arch, releasever: options.releasever, weakDeps: options.weakDeps, repos, extensions }, problems };
}
