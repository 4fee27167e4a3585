// Where dnf's Python API lives: the system's interpreter, and the Fedora package of each backend's
// bindings. Facts about the system, used by the solve (which runs the helpers) and by ensure.ts.
import { existsSync } from 'node:fs';

export type DnfBackend = 'dnf4' | 'dnf5';

/** dnf's Python needs the system interpreter: a python3 earlier on PATH may lack the dnf module. */
export function systemPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** The Fedora package that provides a backend's Python API, for installing it in a container. */
export function backendPackage(backend: DnfBackend): string {
  return backend === 'dnf5' ? 'python3-libdnf5' : 'python3-dnf';
}
