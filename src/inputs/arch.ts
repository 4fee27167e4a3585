import { UsageError } from '../errors.js';
import { KNOWN_ARCHITECTURES } from './extensions-yaml.js';

const NODE_TO_RPM: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This machine's RPM basearch. */
export function hostArch(): string {
  return NODE_TO_RPM[process.arch] ?? process.arch;
}

/** The architectures to compose: the given ones (deduplicated, checked), or this machine's. */
export function selectArches(given: string[], what: string): string[] {
  const arches = given.length > 0 ? given : [hostArch()];
  for (const arch of arches) {
    if (!(KNOWN_ARCHITECTURES as readonly string[]).includes(arch)) {
      throw new UsageError(`${what}: unknown architecture "${arch}"; known: ${KNOWN_ARCHITECTURES.join(', ')}`);
    }
  }
  return [...new Set(arches)];
}
