import { execa, type Options } from 'execa';
import { ToolError } from '../errors.js';

/** Debian/Ubuntu and Fedora package names for each external tool, for "install it with" hints. */
const PACKAGES: Record<string, { apt: string; dnf: string }> = {
  rpm: { apt: 'rpm', dnf: 'rpm' },
  rpmkeys: { apt: 'rpm', dnf: 'rpm' },
  dnf: { apt: 'dnf dnf-plugins-core', dnf: 'dnf' },
  dnf5: { apt: 'dnf', dnf: 'dnf5' },
  createrepo_c: { apt: 'createrepo-c', dnf: 'createrepo_c' },
  ostree: { apt: 'ostree', dnf: 'ostree' },
  skopeo: { apt: 'skopeo', dnf: 'skopeo' },
  python3: { apt: 'python3', dnf: 'python3' },
  // System extension images (src/sysext/).
  'mkfs.erofs': { apt: 'erofs-utils', dnf: 'erofs-utils' },
  mksquashfs: { apt: 'squashfs-tools', dnf: 'squashfs-tools' },
  rpm2archive: { apt: 'rpm2cpio', dnf: 'rpm' },
  setcap: { apt: 'libcap2-bin', dnf: 'libcap' },
  fakeroot: { apt: 'fakeroot', dnf: 'fakeroot' },
};

export function installHint(tool: string): string {
  const p = PACKAGES[tool] ?? { apt: tool, dnf: tool };
  return `install it with \`dnf install -y ${p.dnf}\` (Fedora) or \`apt-get install -y ${p.apt}\` (Debian/Ubuntu)`;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs a tool with an argument array (never a shell string). A missing binary becomes a ToolError
 * naming the install command; a non-zero exit becomes a ToolError with the tool's stderr unless
 * `allowFailure` is set.
 */
export async function run(
  file: string,
  args: readonly string[],
  options: Options & { allowFailure?: boolean } = {},
): Promise<RunResult> {
  const { allowFailure, ...execaOptions } = options;
  const result = await execa(file, args, { reject: false, stripFinalNewline: false, ...execaOptions });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  if (result.failed && result.exitCode === undefined) {
    const code = (result as { code?: string }).code;
    if (code === 'ENOENT') {
      throw new ToolError(`${file} was not found: ${installHint(toolName(file))}`);
    }
    throw new ToolError(`${file} could not be run: ${result.shortMessage ?? result.message}`);
  }
  const exitCode = result.exitCode ?? 1;
  if (exitCode !== 0 && !allowFailure) {
    throw new ToolError(
      `${toolName(file)} ${args.slice(0, 3).join(' ')}… exited with ${exitCode}: ${lastLines(stderr || stdout)}`,
    );
  }
  return { stdout, stderr, exitCode };
}

function toolName(file: string): string {
  return file.split('/').pop() ?? file;
}

export function lastLines(text: string, count = 20): string {
  return text.trim().split('\n').slice(-count).join('\n');
}
