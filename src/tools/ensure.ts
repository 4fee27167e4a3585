// Missing tools: installed with dnf in a Fedora-family container running as root, otherwise an
// error that names the exact command to run.
import { existsSync, readFileSync } from 'node:fs';
import { ToolError } from '../errors.js';
import { backendPackage, systemPython } from './dnf-python.js';
import { run } from './exec.js';

/** A tool, how to tell it is there, and the Fedora package that provides it. */
export interface Requirement {
  name: string;
  probe: [string, string[]];
  fedoraPackage: string;
  debianPackage: string;
}

export const REQUIREMENTS = {
  rpm: { name: 'rpm', probe: ['rpm', ['--version']], fedoraPackage: 'rpm', debianPackage: 'rpm' },
  createrepo: { name: 'createrepo_c', probe: ['createrepo_c', ['--version']], fedoraPackage: 'createrepo_c', debianPackage: 'createrepo-c' },
  ostree: { name: 'ostree', probe: ['ostree', ['--version']], fedoraPackage: 'ostree', debianPackage: 'ostree' },
  skopeo: { name: 'skopeo', probe: ['skopeo', ['--version']], fedoraPackage: 'skopeo', debianPackage: 'skopeo' },
  // Either backend will do; in a container, the one that matches the distribution's dnf is installed.
  dnf: {
    name: "dnf's Python API",
    probe: [systemPython(), ['-c', "import importlib.util as u, sys; sys.exit(not (u.find_spec('libdnf5') or u.find_spec('dnf')))"]],
    fedoraPackage: backendPackage(existsSync('/usr/bin/dnf5') ? 'dnf5' : 'dnf4'),
    debianPackage: 'python3-dnf',
  },
  // System extension images (sysext: on).
  erofs: { name: 'mkfs.erofs', probe: ['mkfs.erofs', ['--help']], fedoraPackage: 'erofs-utils', debianPackage: 'erofs-utils' },
  squashfs: { name: 'mksquashfs', probe: ['mksquashfs', ['-version']], fedoraPackage: 'squashfs-tools', debianPackage: 'squashfs-tools' },
  rpm2archive: { name: 'rpm2archive', probe: ['rpm2archive', ['--help']], fedoraPackage: 'rpm', debianPackage: 'rpm2cpio' },
  fakeroot: { name: 'fakeroot', probe: ['fakeroot', ['-v']], fedoraPackage: 'fakeroot', debianPackage: 'fakeroot' },
  setcap: { name: 'setcap', probe: ['setcap', ['-h']], fedoraPackage: 'libcap', debianPackage: 'libcap2-bin' },
} satisfies Record<string, Requirement>;

async function present(req: Requirement): Promise<boolean> {
  try {
    return (await run(req.probe[0], req.probe[1], { allowFailure: true })).exitCode === 0;
  } catch {
    return false;
  }
}

function fedoraFamily(): boolean {
  try {
    return /^ID(_LIKE)?=.*\b(fedora|rhel|centos)\b/m.test(readFileSync('/etc/os-release', 'utf8'));
  } catch {
    return false;
  }
}

export async function ensureTools(requirements: Requirement[], log: (m: string) => void): Promise<void> {
  const missing: Requirement[] = [];
  for (const req of requirements) if (!(await present(req))) missing.push(req);
  if (missing.length === 0) return;
  const names = missing.map((m) => m.name).join(', ');
  const fedora = `dnf install -y ${missing.map((m) => m.fedoraPackage).join(' ')}`;
  const dnf = ['/usr/bin/dnf5', '/usr/bin/dnf'].find((d) => existsSync(d));
  if (process.getuid?.() === 0 && fedoraFamily() && dnf) {
    log(`installing ${names}: ${fedora}`);
    await run(dnf, ['install', '-y', ...missing.map((m) => m.fedoraPackage)]);
    return;
  }
  const debian = `apt-get install -y ${missing.map((m) => m.debianPackage).join(' ')}`;
  throw new ToolError(`missing ${names}: run \`${fedora}\` (Fedora) or \`${debian}\` (Debian/Ubuntu) before this step`);
}
