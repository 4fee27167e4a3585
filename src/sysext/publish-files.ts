// What sits next to the images: a JSON sidecar per image and a systemd-sysupdate transfer file
// per extension. Pure text builders; the stage writes them.
import type { BaseInfo } from '../base/types.js';
import type { Finding } from './checks.js';

export interface SidecarInput {
  extension: string;
  arch: string;
  version: string;
  image: string;
  sha256: string;
  format: string;
  base: BaseInfo;
  extensionRelease: string;
  packages: { nevra: string; sha256: string }[];
  findings: Finding[];
}

export function sidecarJson(s: SidecarInput): string {
  const b = s.base;
  const release = Object.fromEntries(s.extensionRelease.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const value = {
    extension: s.extension,
    arch: s.arch,
    version: s.version,
    image: s.image,
    sha256: s.sha256,
    format: s.format,
    base: {
      source: b.source,
      ref: b.ref,
      ...(b.commit !== undefined && { commit: b.commit }),
      ...(b.digest !== undefined && { digest: b.digest }),
      version: b.version ?? null,
      osRelease: { ID: b.osRelease['ID'] ?? 'linux', VERSION_ID: b.osRelease['VERSION_ID'] ?? null },
    },
    extensionRelease: release,
    packages: [...s.packages].sort((x, y) => (x.nevra < y.nevra ? -1 : x.nevra > y.nevra ? 1 : 0)),
    // What the host must handle: scriptlets not run, identical shadowed files, sysusers, kernel modules.
    findings: s.findings.map((f) => ({ class: f.class, message: f.message })),
  };
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * A transfer file for systemd-sysupdate: `@v` stands for the version part of the image names,
 * so a host follows newer images of the same extension, base VERSION_ID and architecture.
 */
export function transferFile(extension: string, versionId: string, arch: string, url: string | undefined): string {
  const pattern = `${extension}-@v-${versionId}-${arch}.raw`;
  return [
    `# systemd-sysupdate transfer for the ${extension} system extension (written by compose-extensions).`,
    `# On the host: /etc/sysupdate.${extension}.d/${extension}.transfer, then`,
    `#   systemd-sysupdate --component=${extension} update && systemd-sysext refresh`,
    '[Transfer]',
    '# SHA256SUMS is published unsigned: sign it (SHA256SUMS.gpg) and set Verify=yes to check it.',
    'Verify=no',
    '',
    '[Source]',
    'Type=url-file',
    `Path=${url ? url.replace(/\$\{arch\}/g, arch).replace(/\/?$/, '/') : `https://SET-sysext-url/${arch}/sysext/`}`,
    `MatchPattern=${pattern}`,
    '',
    '[Target]',
    'Type=regular-file',
    'Path=/var/lib/extensions.d/',
    `MatchPattern=${pattern}`,
    `CurrentSymlink=/var/lib/extensions/${extension}.raw`,
    '',
  ].join('\n');
}
