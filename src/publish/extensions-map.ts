// The flat `{"name": "evr.arch"}` map at /usr/share/rpm-ostree/extensions.json in RHCOS's extensions
// image. It is what coreos-assembler's cmd-buildextend-extensions records as the extensions
// "manifest" (epoch only when non-zero) and what OpenShift's release tooling reads back out of the
// image's last layer (`oc image extract IMAGE[-1] --path /usr/share/rpm-ostree/extensions.json`).
import { compareEvr } from '../metadata/evr.js';
import type { Metadata, MetadataPackage } from '../metadata/metadata.js';

export function evra(p: Pick<MetadataPackage, 'epoch' | 'version' | 'release' | 'arch'>): string {
  return `${p.epoch > 0 ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;
}

/**
 * One entry per package name. A map cannot hold two packages of one name (a development
 * extension pinned to the base kernel beside another taking the newest kernel-devel): the entry
 * is the one `dnf install NAME` would pick, the highest EVR, and on equal EVRs the architecture
 * that sorts last (so the choice never depends on the order of metadata.json). coreos-assembler
 * keeps whichever comes last in primary.xml.
 */
export function extensionsMap(metadata: Pick<Metadata, 'packages'>): Record<string, string> {
  const chosen = new Map<string, MetadataPackage>();
  for (const p of metadata.packages) {
    const current = chosen.get(p.name);
    if (!current || compareEvr(p, current) > 0 || (compareEvr(p, current) === 0 && p.arch > current.arch)) chosen.set(p.name, p);
  }
  return Object.fromEntries([...chosen.keys()].sort().map((name) => [name, evra(chosen.get(name)!)]));
}
