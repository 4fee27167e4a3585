"""What both dnf helpers (dnf4-helper.py, dnf5-helper.py) share: the request loop, and the part of a
resolve that does not depend on the library: the errors, the order of the solves (each extension, then
the os-extensions together, then pairs to name a conflict), the words around the solver's, and the
shape of the answer. Each helper gives its library's goal, transaction and queries (see Resolver).

The request loop: one JSON request per stdin line (one architecture each), one JSON answer per stdout
line, each carrying its request's id: a solve's packages, closures and repos, or the problems found;
for a request with an `op`, what was fetched with dnf's own downloader. Loading the repos once and
running one goal per extension is what keeps per-extension closures cheap: starting dnf per extension
would load the metadata again each time. One process serves every architecture of a run, so Python
and dnf are started once. With `threads` above one, that many architectures are resolved at once:
loading repo metadata into libsolv (most of an architecture's time) runs without the GIL, so the
loads of different architectures use different cores, while Python and `import dnf` are paid once."""
import ctypes
import gc
import hashlib
import json
import os
import re
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from problem_words import why_base_changes

try:
    MALLOC_TRIM = ctypes.CDLL('libc.so.6').malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to trim
    MALLOC_TRIM = None


def threads_from_argv(argv):
    """`--threads N` (default 1)."""
    for i, arg in enumerate(argv):
        if arg == '--threads' and i + 1 < len(argv):
            return max(1, int(argv[i + 1]))
    return 1


def serve(resolve_arch, threads=1):
    answers = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # whatever dnf or its C libraries print must not corrupt the answers
    writing = threading.Lock()

    def handle(req):
        # Every request is answered, whatever fails: a pool thread's exception would otherwise be
        # kept in its future, unseen, and the caller would wait for the answer forever.
        try:
            answer = resolve_arch(req)
            answer['id'] = req.get('id')
            line = json.dumps(answer) + '\n'
            del answer
        except Exception:  # one architecture's crash must not cost the others their answers
            line = json.dumps({'error': traceback.format_exc(), 'id': req.get('id')}) + '\n'
        with writing:
            answers.write(line)
            answers.flush()
        # The architecture's sack is freed and given back to the system: glibc keeps freed memory
        # otherwise, and the helper would hold the largest sacks seen.
        gc.collect()
        if MALLOC_TRIM is not None:
            MALLOC_TRIM(0)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(handle, json.loads(line))


def run_helper(resolve_arch, fetch_arch, threads=1):
    """A helper's loop: a request with an `op` (packages, keys, repomd) is for fetch_arch, any other a solve."""
    serve(lambda req: fetch_arch(req) if req.get('op') else resolve_arch(req), threads)


def config_options(req):
    """The main options both libraries are given, by the name both use: nothing comes from the host's
    dnf.conf (its [main] transfer options come in the request's `main`)."""
    return {
        'installroot': req['installroot'],
        'cachedir': req['cachedir'],
        'logdir': req['logdir'],
        'persistdir': os.path.join(req['cachedir'], 'persist'),
        'config_file_path': os.devnull,
        'ignorearch': True,
        'install_weak_deps': req['weakDeps'],
        'skip_if_unavailable': False,
        'keepcache': True,
        'best': False,
    }


def expires_metadata(req):
    """Whether every repo's repomd.xml is asked for anew (a solve, a repomd check), or the metadata
    the solve loaded is used (packages, keys). Set on each repo: a repo's own metadata_expire (Fedora's
    files say 7d or 6h) wins over [main]."""
    return req.get('op') not in ('packages', 'keys')


class NoMatch(Exception):
    """A spec names no package (once the repos not asked for are excluded)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.spec = spec


class DepsolveError(Exception):
    """The solver found no solution; carries its words (dnf4's problem rules, libdnf5's resolve log)."""


class Problem(Exception):
    """What the user is told, about one extension or (without one) the architecture."""

    def __init__(self, message, extension=None):
        super().__init__(message)
        self.extension = extension


def no_match(spec, repos, extension):
    return Problem('no package matches %s in repos %s' % (spec, ', '.join(repos)), extension)


def nevra_name(text):
    """The name in name-[epoch:]version-release.arch."""
    return text.rsplit('.', 1)[0].rsplit('-', 2)[0]


EXCLUDED = re.compile(r'(package (\S+)(?: from \S+)?) is filtered out by exclude filtering')


class Resolver:
    """One architecture's solves on top of its locked base, the same under both libraries.

    A helper's subclass sets, as its library's queries of the available packages: `foreign`, those of
    other architectures; `lock`, those that share a name with a base package; `by_repo`, each repo's. It
    gives its library's parts: `nevra(pkg)` and `name_of(pkg)`; `_set_excludes(queries)`, the packages
    no spec may bring in until the next call; `_goal(specs, repos, locked)`, the solved goal (or
    transaction), raising NoMatch or DepsolveError; `base_changes(goal)`, what it would do to the base,
    in words (see why_base_changes); `installs(goal)`, the packages it brings in; `_requires(pkg)`, its
    dependencies; `_provides(pkgs, dep)`, whether one of them provides dep; `_installed(spec)` and
    `_available(spec)`, the packages a spec names in the base and in the repos left by the excludes;
    `newest_key(pkg)`, to pick the newest; `_our_words(error)`, the solver's lines in problem_words'
    words; `_is_foreign(nevra)`, a package of another architecture.
    """

    def __init__(self, base, req, installed):
        self.base = base
        self.req = req
        self.installed_by_name = {}
        for pkg in installed:
            self.installed_by_name.setdefault(self.name_of(pkg), []).append(pkg)

    def _exclude(self, repos, locked):
        """A solve sees only the repos it names and never a package of another architecture (no
        multilib on x86_64 either). Locked, the base is never changed: nothing that shares a name with
        a base package may be installed, so no upgrade, downgrade, reinstall or parallel installonly
        version can enter a solution."""
        excluded = [pkgs for repo, pkgs in self.by_repo.items() if repo not in repos] + [self.foreign]
        if locked:
            excluded.append(self.lock)
        self._set_excludes(excluded)

    def needs(self, goal):
        """Why a goal changes the base: (package, dependency, base packages) for each package it
        installs whose dependency only the new version of a base package satisfies."""
        inbound = self.installs(goal)
        replacing = [p for p in inbound if self.name_of(p) in self.installed_by_name]
        found = []
        for requester in inbound:
            if self.name_of(requester) in self.installed_by_name:
                continue  # itself a change of the base: its own needs follow from another package's
            for dep in self._requires(requester):
                for new in replacing:
                    old = self.installed_by_name[self.name_of(new)]
                    if self._provides([new], dep) and not self._provides(old, dep):
                        found.append((self.name_of(requester), str(dep), [self.nevra(p) for p in old]))
        return found

    def _changed(self, verb, pkg):
        """A base package upgraded, downgraded or reinstalled to pkg, in words."""
        return '%s base package %s to %s' % (verb, self._have(pkg), self.nevra(pkg))

    def _beside(self, pkg):
        return "install %s beside the base's %s (a parallel version)" % (self.nevra(pkg), self._have(pkg))

    def _have(self, pkg):
        return ', '.join(self.nevra(p) for p in self.installed_by_name.get(self.name_of(pkg), []))

    def check_not_in_base(self, ext):
        for spec in ext['specs']:
            matches = self._installed(spec)
            if matches:
                raise Problem('package %s already present in base (%s)' % (spec, self.nevra(matches[0])), ext['name'])

    def solve(self, name, specs, repos):
        """The extension's closure outside the base, as packages; raises Problem with dnf's words."""
        try:
            goal = self._goal(specs, repos, locked=True)
        except NoMatch as e:
            raise no_match(e.spec, repos, name)
        except DepsolveError as locked_error:
            raise Problem(self.explain(specs, repos, str(locked_error)), name)
        changes = self.base_changes(goal)
        if changes:
            raise Problem(why_base_changes(changes, self.needs(goal)), name)
        return sorted(self.installs(goal), key=self.nevra)

    def explain(self, specs, repos, locked_error):
        """A locked solve failed: an unlocked one tells whether a base package was in the way."""
        try:
            goal = self._goal(specs, repos, locked=False)
        except (DepsolveError, NoMatch):
            return 'cannot be resolved: ' + self.lock_words(locked_error)
        changes = self.base_changes(goal)
        if changes:
            return why_base_changes(changes, self.needs(goal))
        return 'cannot be resolved: ' + self.lock_words(locked_error)

    def lock_words(self, error):
        """The solver's words made ours; dnf says a locked package is "filtered out by exclude
        filtering": say why instead."""
        lines = []
        for line in self._our_words(error).strip().splitlines():
            match = EXCLUDED.search(line)
            if match:
                have = self.installed_by_name.get(nevra_name(match.group(2)))
                if have:
                    line = line[:match.start()] + '%s is not allowed: the base has %s and is never changed' % (
                        match.group(1), ', '.join(self.nevra(p) for p in have))
                elif self._is_foreign(match.group(2)):
                    line = line[:match.start()] + '%s is for another architecture' % match.group(1)
            lines.append(line.rstrip())
        return '\n'.join(lines)

    def development(self, ext):
        """Exactly the listed packages, the newest of each (or the pinned EVR), base or not."""
        self._exclude(ext['repos'], locked=False)
        picked = []
        for spec in ext['specs']:
            found = self._available(spec)
            if not found:
                raise no_match(spec, ext['repos'], ext['name'])
            picked.append(max(found, key=self.newest_key))
        return picked


def lost(verb, nevra, by):
    """A base package obsoleted (by the packages named in `by`) or removed, in words."""
    return '%s base package %s%s' % (verb, nevra, ' (obsoleted by %s)' % ', '.join(by) if by else '')


def resolve_extensions(resolver, extensions, describe, repos):
    """One architecture's answer once its repos are loaded: each extension's closure, and the
    os-extensions solved together; the repos as `repos()` gives them. Or every problem found.

    Each package is as `describe(pkg)` gives it, with its NEVRA and extensions added: name, epoch,
    version, release, arch, repo, location, checksum (type and value), size; license and vendor as
    the repo metadata gives them (from the header: the SBOM reads them from here); path, where a
    package of a file:// repo is read in place (others are fetched by the caller), else None."""
    problems = []
    if not resolver.installed_by_name:
        problems.append({'message': 'the base rpmdb has no packages: dnf sees an empty base'})

    nevra = resolver.nevra
    closures = {}
    chosen = {}
    os_exts = [e for e in extensions if e['kind'] == 'os-extension']
    for ext in extensions:
        try:
            if ext['kind'] == 'development':
                pkgs = resolver.development(ext)
            else:
                resolver.check_not_in_base(ext)
                pkgs = resolver.solve(ext['name'], ext['specs'], ext['repos'])
        except Problem as p:
            problems.append({'extension': p.extension, 'message': str(p)})
            continue
        closures[ext['name']] = sorted(nevra(p) for p in pkgs)
        for pkg in pkgs:
            chosen.setdefault(nevra(pkg), (pkg, set()))[1].add(ext['name'])

    if not problems and len(os_exts) > 1:
        # rpm-ostree installs all os-extensions in one transaction: they must resolve together.
        all_specs = [s for e in os_exts for s in e['specs']]
        all_repos = sorted({r for e in os_exts for r in e['repos']})
        try:
            for pkg in resolver.solve('all extensions', all_specs, all_repos):
                chosen.setdefault(nevra(pkg), (pkg, set()))
        except Problem as joint:
            problems.extend(find_conflicts(resolver, os_exts, str(joint)))

    if problems:
        return {'problems': problems}
    packages = []
    for key in sorted(chosen):
        pkg, exts = chosen[key]
        packages.append(dict(describe(pkg), nevra=key, extensions=sorted(exts)))
    return {'packages': packages, 'closures': closures, 'repos': repos()}


def find_conflicts(resolver, os_exts, joint_error):
    """The joint solve failed: name the pairs of extensions that cannot be installed together."""
    found = []
    for i, a in enumerate(os_exts):
        for b in os_exts[i + 1:]:
            try:
                resolver.solve('%s+%s' % (a['name'], b['name']), a['specs'] + b['specs'], sorted(set(a['repos'] + b['repos'])))
            except Problem as p:
                detail = str(p).split(': ', 1)[-1]
                found.append({'extension': a['name'], 'message': 'extensions %s and %s cannot be installed together: %s' % (a['name'], b['name'], detail)})
    return found or [{'message': 'the os-extensions cannot be installed together: ' + joint_error}]


def repo_record(repo_id, baseurls, mirrors, revision, cachedir, local, gpgcheck, gpgkeys):
    """A repo as the answer describes it. mirrors: its metalink or mirrorlist ('' without); local: the
    directory of a file:// repo, else None."""
    path = repomd_path(cachedir, local)
    digest = ''
    if path:
        with open(path, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    return {
        'id': repo_id,
        # Where the repo is defined to be, as the user wrote it: a baseurl, else its metalink or
        # mirrorlist (never one mirror of those, which may be dead or rsync://).
        'url': baseurls[0] if baseurls else mirrors,
        'urls': baseurls,
        'revision': revision or None,
        'repomdSha256': digest,
        'gpgcheck': bool(gpgcheck),
        'gpgkeys': gpgkeys,
    }


def repomd_path(cachedir, local):
    """The repomd.xml the library loaded: the copy in the repo's cache, else a file:// repo's own."""
    for candidate in (os.path.join(cachedir, 'repodata', 'repomd.xml'),
                      os.path.join(local, 'repodata', 'repomd.xml') if local else None):
        if candidate and os.path.exists(candidate):
            return candidate
    return None
