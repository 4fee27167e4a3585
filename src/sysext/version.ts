// Which package's EVR names a system extension image.

interface Candidate {
  name: string;
  epoch: number;
  version: string;
  release: string;
}

export const evrOf = (p: Candidate): string => `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`;

/**
 * `version-package:` when set, else the extension's first package as listed; either must be in
 * the extension's own closure (a package the base already has does not version the image).
 */
export function selectVersion(extension: string, versionPackage: string | undefined, requested: string[], closure: Candidate[]): { evr: string } | { error: string } {
  const name = versionPackage ?? requested[0] ?? '';
  const found = closure.find((p) => p.name === name);
  if (found) return { evr: evrOf(found) };
  if (versionPackage) return { error: `version-package ${versionPackage} is not among the packages this extension adds to the base` };
  return { error: `the first package ${JSON.stringify(name)} of ${extension} is not a package this extension adds to the base: set version-package: to the package whose version names the image` };
}
