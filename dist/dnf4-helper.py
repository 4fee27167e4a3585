"""The dnf4 helper: resolves every extension of each architecture with dnf4's own solver (libdnf/libsolv),
and fetches packages, gpg keys and repomd.xml with dnf4's own downloader (librepo), in one process.
What does not depend on the library (the protocol, the order of the solves, the words, the answer) is
helper_common.py's.
"""
import copy
import os
import sys

import dnf
import dnf.exceptions
import dnf.rpm
import dnf.subject
import dnf.util
import hawkey
import libdnf.repo

# Beside this file, in src/solve/ and in dist/.
from helper_common import DepsolveError, NoMatch, Resolver, config_options, expires_metadata, lost, repo_record, resolve_extensions, run_helper, threads_from_argv
from problem_words import INSTALLED_REPO, our_words, repo_load_words

def nevra(pkg):
    epoch = '%d:' % pkg.epoch if pkg.epoch else ''
    return '%s-%s%s-%s.%s' % (pkg.name, epoch, pkg.version, pkg.release, pkg.arch)


def make_base(req):
    base = dnf.Base()
    conf = base.conf
    arch = req['arch']
    for name, value in config_options(req).items():
        setattr(conf, name, value)
    conf.reposdir = [req['reposdir']]
    conf.substitutions['arch'] = arch
    conf.substitutions['basearch'] = dnf.rpm.basearch(arch)
    # Repo variables as read by the caller (vars dirs, DNF_VAR_*): the same for both backends.
    conf.substitutions.update(req.get('vars') or {})
    conf.substitutions['releasever'] = req['releasever']
    conf.arch = arch
    conf.metadata_expire = 0  # ask for repomd.xml every run; unchanged metadata is not fetched again
    conf.assumeyes = True
    conf.errorlevel = 0
    conf.debuglevel = 0
    # dnf.conf's [main] transfer options (proxy, TLS, timeouts): every repo inherits them unless it
    # sets its own, as with the user's dnf. Strings, as dnf.conf holds them.
    for name, value in (req.get('main') or {}).items():
        setattr(conf, name, value)
    base.read_all_repos()
    expire = 0 if expires_metadata(req) else -1
    for repo in base.repos.values():
        if repo.id in req['repos']:
            repo.enable()
            repo.skip_if_unavailable = False
            repo.metadata_expire = expire
            if expire == 0:
                repo._repo.expire()  # libdnf counts age 0 as fresh; a clock ahead gives a negative age
        else:
            repo.disable()
    return base


def repo_state(repo):
    return repo_record(
        repo.id, list(repo.baseurl), repo.metalink or repo.mirrorlist or '', repo._repo.getRevision(), repo._repo.getCachedir(),
        repo._repo.getLocalBaseurl() if repo._repo.isLocal() else None, repo.gpgcheck, list(repo.gpgkey))


class Dnf4Resolver(Resolver):
    nevra = staticmethod(nevra)

    @staticmethod
    def name_of(pkg):
        return pkg.name

    def __init__(self, base, req):
        sack = base.sack
        self.installed = sack.query().installed()
        super().__init__(base, req, self.installed)
        available = sack.query().available()
        # A copy: the set dnf returns is live and would grow with our own excludes.
        self.configured_excludes = sack.query(flags=hawkey.IGNORE_EXCLUDES).filterm(pkg=sack.get_excludes())
        self.foreign = available.filter(arch__neq=[req['arch'], 'noarch'])
        self.lock = available.filter(name=list(self.installed_by_name))
        self.by_repo = {r: available.filter(reponame=r) for r in req['repos']}
        self.template = self._template_goal()

    def _template_goal(self):
        """What dnf's Base.resolve() adds to every goal, computed once per architecture.

        Unmet weak dependencies of the base are detected against the configured excludes only: the
        per-goal excludes can only remove candidates, which the solver then cannot pick anyway.
        """
        base = self.base
        goal = hawkey.Goal(base.sack)
        goal.protect_running_kernel = base.conf.protect_running_kernel
        goal.add_protected(base.sack.query().filterm(name=base.conf.protected_packages))
        if base.conf.exclude_from_weak_autodetect:
            goal.exclude_from_weak_autodetect()
        for spec in base.conf.exclude_from_weak:
            query = dnf.subject.Subject(spec).get_best_query(base.sack, with_nevra=True, with_provides=False, with_filenames=False)
            goal.add_exclude_from_weak(query.available())
        return goal

    def _set_excludes(self, queries):
        excluded = self.base.sack.query().filterm(empty=True)
        for query in queries:
            excluded = excluded.union(query)
        self.base.sack.set_excludes(self.configured_excludes)
        self.base.sack.add_excludes(excluded)

    def _goal(self, specs, repos, locked):
        """Resolves specs on top of the base as dnf's resolve() would, without its history bookkeeping.

        Returns the solved goal; raises NoMatch, or DepsolveError with dnf's own problem text.
        """
        self._exclude(repos, locked)
        goal = copy.deepcopy(self.template)
        self.base._goal = goal  # Base.install() turns each spec into selectors on the base's goal
        for spec in specs:
            try:
                self.base.install(spec, strict=True)
            except dnf.exceptions.MarkingError:
                raise NoMatch(spec)
        conf = self.base.conf
        if not goal.run(allow_uninstall=False, force_best=conf.best, ignore_weak_deps=not conf.install_weak_deps):
            raise DepsolveError(dnf.util._format_resolve_problems(goal.problem_rules()))
        return goal

    def _installed(self, spec):
        return dnf.subject.Subject(spec).get_best_query(self.base.sack, with_provides=False).installed()

    def _available(self, spec):
        return dnf.subject.Subject(spec).get_best_query(self.base.sack, with_provides=False).available()

    def newest_key(self, pkg):
        return (EvrKey(pkg), pkg.arch != 'noarch')

    def base_changes(self, goal):
        """What a solved goal would do to base packages, in words; empty when it only adds packages.

        Obsoleted packages are counted as dnf's transaction counts them: those an install obsoletes,
        and those an update takes away beyond the one it replaces.
        """
        changes = []
        taken = {}
        all_obsoleted = set(goal.list_obsoleted())
        for verb, updates in (('upgrade', goal.list_upgrades()), ('downgrade', goal.list_downgrades()),
                              ('reinstall', goal.list_reinstalls())):
            for pkg in updates:
                changes.append(self._changed(verb, pkg))
                obs = goal.obsoleted_by_package(pkg)
                replaced = next((p for p in obs if p.name == pkg.name), obs[0] if obs else None)
                taken.update((nevra(p), p) for p in obs if p != replaced)
        for pkg in goal.list_installs():
            parallel = pkg.name in self.installed_by_name
            if parallel:
                changes.append(self._beside(pkg))
            if parallel or all_obsoleted:
                taken.update((nevra(p), p) for p in goal.obsoleted_by_package(pkg) if p in all_obsoleted or p.name == pkg.name)
        new = self.installs(goal)
        for key in sorted(taken):
            by = [nevra(p) for p in new if self._obsoletes(p, taken[key])]
            changes.append(lost('obsolete', key, by))
        changes += [lost('remove', nevra(pkg), []) for pkg in goal.list_erasures()]
        return sorted(changes)

    def _requires(self, pkg):
        return pkg.requires

    def _provides(self, pkgs, dep):
        return bool(self.base.sack.query(flags=hawkey.IGNORE_EXCLUDES).filterm(pkg=pkgs, provides=dep))

    def installs(self, goal):
        return goal.list_installs() + goal.list_upgrades() + goal.list_downgrades() + goal.list_reinstalls()

    def _obsoletes(self, new, old):
        query = self.base.sack.query(flags=hawkey.IGNORE_EXCLUDES).filterm(pkg=[new])
        return bool(query.filter(obsoletes=[old]))

    def _complete(self, item):
        """dnf4 names no repo: the package's, or INSTALLED_REPO for a base package."""
        _, name, repo = item
        if any(nevra(p) == name for p in self.installed):
            return ('P', name, INSTALLED_REPO)
        query = self.base.sack.query(flags=hawkey.IGNORE_EXCLUDES).available().filterm(nevra_strict=name)
        return ('P', name, ' or '.join(sorted({p.reponame for p in query})) or repo)

    def _our_words(self, error):
        return our_words(error, 'dnf4', self._complete)

    def _is_foreign(self, text):
        return bool(self.foreign.filter(nevra_strict=text))


class EvrKey:
    """Orders packages by epoch:version-release the way rpm does."""

    def __init__(self, pkg):
        self.pkg = pkg

    def __lt__(self, other):
        return self.pkg.evr_lt(other.pkg)

    def __eq__(self, other):
        return self.pkg.evr_eq(other.pkg)


def resolve_arch(req):
    """One architecture's answer: packages, closures and repos, or the problems found."""
    base = make_base(req)
    try:
        return resolve_with(base, req)
    finally:
        # An unclosed Base outlives the call (gc.collect() does not free it: something outside Python
        # still holds it), and the helper would keep every architecture's sack until the run ends.
        base.close()


def resolve_with(base, req):
    try:
        base.fill_sack(load_system_repo=True, load_available_repos=True)
    except dnf.exceptions.RepoError as e:
        urls = {r.id: list(r.baseurl) or [u for u in (r.mirrorlist, r.metalink) if u] for r in base.repos.iter_enabled()}
        return {'problems': [{'message': repo_load_words(str(e), urls)}]}
    repos = {r.id: r for r in base.repos.iter_enabled()}
    return resolve_extensions(Dnf4Resolver(base, req), req['extensions'], describe,
                              lambda: [repo_state(repos[r]) for r in sorted(repos)])


def describe(pkg):
    """A resolved package as the answer gives it (see resolve_extensions)."""
    checksum_type, checksum = pkg.chksum
    return {
        'name': pkg.name, 'epoch': pkg.epoch, 'version': pkg.version, 'release': pkg.release,
        'arch': pkg.arch, 'repo': pkg.reponame, 'location': pkg.location,
        'checksum': {'type': hawkey.chksum_name(checksum_type), 'value': checksum.hex()},
        'size': pkg.downloadsize,
        'license': pkg.license or None, 'vendor': pkg.vendor or None,
        'path': pkg.localPkg() if pkg._is_local_pkg() else None,
    }


class FetchCallbacks(libdnf.repo.PackageTargetCB):
    """librepo's word on one package: every mirror that failed it, and how it ended."""

    def __init__(self):
        super().__init__()
        self.failures = []
        self.error = None

    def mirrorFailure(self, msg, url, metadata=None):
        self.failures.append({'url': url, 'message': msg})
        return 0

    def end(self, status, msg):
        if status == libdnf.repo.PackageTargetCB.TransferStatus_ERROR:
            self.error = msg or 'failed'
        return 0

    def progress(self, total, done):
        return 0


def fetch_arch(req):
    """Downloads with dnf's own downloader (librepo with each repo's options: mirrors, proxy, TLS,
    credentials, timeouts, throttle), into the files the caller names; or fetches gpg keys; or reloads
    each repo's repomd.xml. No sack is loaded: nothing is parsed."""
    base = make_base(req)
    try:
        repos = {r.id: r for r in base.repos.iter_enabled()}
        if req['op'] == 'repomd':
            return {'repos': [repomd_now(repos[r]) for r in req['repos'] if r in repos]}
        for repo in repos.values():
            if repo.metalink or repo.mirrorlist:
                # The mirrors from the metalink or mirrorlist the solve fetched (from the cache), not a new one.
                try:
                    repo.load()
                except dnf.exceptions.RepoError as e:
                    return {'error': 'repo %s: %s' % (repo.id, e)}
        if req['op'] == 'keys':
            # By index into the repo's own gpgkey list: the caller only ever sees them without user-info.
            return {'keys': [fetch_key(repos[k['repo']], list(repos[k['repo']].gpgkey)[k['index']], k['dest']) for k in req['keys']]}
        return {'packages': fetch_packages(repos, req['packages'])}
    finally:
        base.close()


def repomd_now(repo):
    """The repo's repomd.xml as dnf finds it now (metalink and mirrors included), by sha256."""
    try:
        repo.load()
    except dnf.exceptions.RepoError as e:
        return {'id': repo.id, 'error': str(e)}
    return repo_state(repo)


def fetch_key(repo, url, dest):
    try:
        with open(dest, 'w+b') as f:  # libdnf reopens the descriptor read-write
            repo._repo.downloadUrl(url, f.fileno())
        return {'ok': True}
    except (RuntimeError, OSError) as e:
        return {'ok': False, 'error': str(e)}


def fetch_packages(repos, items):
    targets = []
    callbacks = []
    for item in items:
        cb = FetchCallbacks()
        ctype = libdnf.repo.PackageTarget.checksumType(item['checksum']['type'])
        targets.append(libdnf.repo.PackageTarget(
            repos[item['repo']]._repo, item['location'], item['dest'], ctype, item['checksum']['value'],
            item['size'], None, False, 0, 0, cb))
        callbacks.append(cb)
    # failfast off: every package is tried on every mirror, and every failure is reported.
    libdnf.repo.PackageTarget.downloadPackages(libdnf.repo.VectorPPackageTarget(targets), False)
    answers = []
    for target, cb in zip(targets, callbacks):
        error = target.getErr() or cb.error
        answers.append({'ok': not error, 'error': error, 'failures': cb.failures})
    return answers


if __name__ == '__main__':
    run_helper(resolve_arch, fetch_arch, threads_from_argv(sys.argv[1:]))
