"""Resolves every extension of each architecture with dnf5's own solver (libdnf5/libsolv), in one process.

Reads one JSON request per line on stdin (one architecture each) and answers each with one JSON line
on stdout: the resolved packages and closures, or the problems found. It never downloads: the caller
fetches what it needs.
Loading the repos once and running one goal per extension is what keeps per-extension closures
cheap: starting dnf per extension would load the metadata again each time.

The dnf5 twin of dnf4-helper.py: same protocol, same behaviour, same messages, same structure where the
API allows (diff the two). The libdnf5 Python API (python3-libdnf5, `import libdnf5`) was taken from the
dnf5 sources at tag 5.2.18.0 (github.com/rpm-software-management/dnf5): the 5.2 series (Fedora 41 and later),
with fallbacks where 5.1 differs (noted inline) and compared with 5.4.4 (no change to what is used here):
include/libdnf5/base/{base,goal,goal_elements,transaction,transaction_package,log_event}.hpp,
include/libdnf5/rpm/{package,package_query,package_set,package_sack,checksum,nevra}.hpp,
include/libdnf5/repo/{repo,repo_sack,repo_query,config_repo}.hpp, include/libdnf5/conf/{config_main,vars}.hpp,
libdnf5/base/base.cpp (Base::setup), libdnf5/base/solver_problems.cpp (problem wording), bindings/libdnf5/*.i
and the binding tests in test/python3/libdnf5/ (tutorial/session/force_arch.py for the architecture).
Run against libdnf5 5.2.18.0 and 5.3.0.0 built from source (see README, Versions run); CI on Debian has only dnf4.
Problem texts go through problem_words.py, so both helpers say the same thing in the same words.
"""
import hashlib
import os
import re
import urllib.parse

import libdnf5

from helper_serve import serve  # beside this file, in src/solve/ and in dist/
from problem_words import our_words, repo_load_words, why_base_changes

ACTION = libdnf5.transaction
INBOUND = {
    ACTION.TransactionItemAction_INSTALL,
    ACTION.TransactionItemAction_UPGRADE,
    ACTION.TransactionItemAction_DOWNGRADE,
    ACTION.TransactionItemAction_REINSTALL,
}
# dnf5 has no OBSOLETE/OBSOLETED actions: an obsoleter is an INSTALL (or UPGRADE) and every package leaving
# the system for another one (upgraded, downgraded, reinstalled or obsoleted) is REPLACED, with get_replaced_by().
BASE_CHANGING = {
    ACTION.TransactionItemAction_UPGRADE: 'upgrade',
    ACTION.TransactionItemAction_DOWNGRADE: 'downgrade',
    ACTION.TransactionItemAction_REINSTALL: 'reinstall',
}
BASE_LOSING = {
    ACTION.TransactionItemAction_REPLACED: 'obsolete',
    ACTION.TransactionItemAction_REMOVE: 'remove',
}
# Marks an installed package user-installed when a spec names it; it changes nothing in the base.
REASON_CHANGE = ACTION.TransactionItemAction_REASON_CHANGE
SOLVER_PROBLEMS = (libdnf5.base.GoalProblem_SOLVER_ERROR, libdnf5.base.GoalProblem_SOLVER_PROBLEM_STRICT_RESOLVEMENT)


def nevra(pkg):
    epoch = pkg.get_epoch()
    epoch = '%s:' % epoch if epoch not in ('', '0') else ''
    return '%s-%s%s-%s.%s' % (pkg.get_name(), epoch, pkg.get_version(), pkg.get_release(), pkg.get_arch())


def nevra_name(text):
    """The name in name-[epoch:]version-release.arch (dnf4 used hawkey.split_nevra)."""
    return text.rsplit('.', 1)[0].rsplit('-', 2)[0]


class NoMatch(Exception):
    def __init__(self, spec):
        super().__init__(spec)
        self.spec = spec


class Problem(Exception):
    def __init__(self, message, extension=None):
        super().__init__(message)
        self.extension = extension


class DepsolveError(Exception):
    """dnf5 reports a failed resolve in the transaction, not with an exception: this carries its words."""


def settings_of(settings, **values):
    """Spec-matching settings: setters in 5.2, plain struct fields in 5.1."""
    for name, value in values.items():
        setter = getattr(settings, 'set_' + name, None)
        if setter:
            setter(value)
        else:
            setattr(settings, name, value)
    return settings


def option_value(option, default=''):
    """An option's value; an unset string option throws in dnf5 instead of giving ''."""
    return default if option.empty() else option.get_value()


def make_base(req):
    base = libdnf5.base.Base()
    conf = base.get_config()
    arch = req['arch']
    conf.installroot = req['installroot']
    # Set through the API (priority RUNTIME), cachedir and logdir are used as given; below COMMANDLINE,
    # Base.setup() would move them under the installroot. dnf5 writes no log file without a logger anyway.
    conf.cachedir = req['cachedir']
    conf.logdir = req['logdir']
    conf.persistdir = os.path.join(req['cachedir'], 'persist')
    # Nothing is read from the host's or the root's dnf configuration: load_config() is never called, and
    # the repos come from the request's reposdir through create_repos_from_dir() (see add_repos): with
    # use_host_config off, Base.setup() would prefix the `reposdir` option with the installroot.
    conf.use_host_config = False
    conf.config_file_path = os.devnull
    conf.plugins = False
    # Unlike dnf4, dnf5 loads no filelists unless asked: file dependencies outside primary.xml would fail.
    # A string is parsed as a list (and, since 5.2, appended to the default comps and updateinfo).
    conf.optional_metadata_types = 'filelists'
    if 'filelists' not in conf.get_optional_metadata_types_option().get_value():
        raise RuntimeError('could not ask libdnf5 for the filelists metadata')
    conf.ignorearch = True
    conf.install_weak_deps = req['weakDeps']
    conf.skip_if_unavailable = False
    conf.keepcache = True
    conf.metadata_expire = '0'  # ask for repomd.xml every run; unchanged metadata is not fetched again
    conf.best = False
    # dnf.conf's [main] transfer options (proxy, TLS, timeouts): every repo inherits them unless it
    # sets its own, as with the user's dnf5. Parsed from strings, as dnf.conf holds them.
    for name, value in (req.get('main') or {}).items():
        option = getattr(conf, 'get_%s_option' % name)()
        option.set(libdnf5.conf.Option.Priority_RUNTIME, option.from_string(value))
    # As dnf5 --forcearch does: $arch before setup(), which gives the solver its architecture and derives
    # $basearch from it.
    variables = base.get_vars()
    # Repo variables as read by the caller (vars dirs, DNF_VAR_*): the same for both backends.
    for name, value in (req.get('vars') or {}).items():
        try:
            variables.set(name, value)
        except getattr(libdnf5.exception, 'ReadOnlyVariableError', ()):
            pass  # $releasever_major/_minor: libdnf5 derives them from $releasever itself
    variables.set('arch', arch)
    variables.set('releasever', req['releasever'])
    base.setup()
    add_repos(base, req)
    return base


def add_repos(base, req):
    base.get_repo_sack().create_repos_from_dir(req['reposdir'])
    # Set on each repo: a repo's own metadata_expire (Fedora's files say 7d or 6h) wins over [main].
    # Downloads use the metadata the solve loaded; a solve or a repomd check asks for repomd.xml anew.
    expire = '-1' if req.get('op') in ('packages', 'keys') else '0'
    for repo in libdnf5.repo.RepoQuery(base):
        if repo.get_id() in req['repos']:
            repo.enable()
            repo.get_config().skip_if_unavailable = False
            repo.get_config().metadata_expire = expire
            if expire == '0':
                repo.expire()  # the age alone is not enough: a cache from this second, or a clock ahead
        else:
            repo.disable()


def load_repos(base):
    sack = base.get_repo_sack()
    if hasattr(sack, 'load_repos'):
        sack.load_repos()  # 5.2: the system repo (the base's rpmdb) and every enabled repo
    else:
        sack.update_and_load_enabled_repos(True)  # 5.0 and 5.1


def enabled_repos(base):
    query = libdnf5.repo.RepoQuery(base)
    query.filter_enabled(True)
    query.filter_type(libdnf5.repo.Repo.Type_AVAILABLE)
    return list(query)


def error_text(error):
    """The error and the errors nested in it; str() gives only the outermost."""
    try:
        return error.format(libdnf5.exception.FormatDetailLevel_Plain).strip()
    except AttributeError:
        return str(error)


def file_path(url):
    if url.startswith('file://'):
        return urllib.parse.unquote(url[len('file://'):])
    return url if url.startswith('/') else None


def repomd_path(repo):
    # dnf5 copies the metadata of every repo, file:// ones included, into the repo's cache directory and
    # loads it from there; the repo's own copy is only a fallback.
    urls = repo.get_config().get_baseurl_option().get_value()
    local = file_path(urls[0]) if urls else None
    for candidate in (os.path.join(repo.get_cachedir(), 'repodata', 'repomd.xml'),
                      os.path.join(local, 'repodata', 'repomd.xml') if local else None):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def repo_state(repo):
    path = repomd_path(repo)
    digest = ''
    if path:
        with open(path, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    conf = repo.get_config()
    baseurls = list(conf.get_baseurl_option().get_value())
    # pkg_gpgcheck since 5.2.7; gpgcheck, its deprecated alias, before.
    gpgcheck = getattr(conf, 'get_pkg_gpgcheck_option', None) or conf.get_gpgcheck_option
    return {
        'id': repo.get_id(),
        # Where the repo is defined to be: a baseurl, else its metalink or mirrorlist (never one mirror).
        'url': baseurls[0] if baseurls else (option_value(conf.get_metalink_option()) or option_value(conf.get_mirrorlist_option())),
        'urls': baseurls,
        'revision': repo.get_revision() or None,
        'repomdSha256': digest,
        'gpgcheck': bool(gpgcheck().get_value()),
        'gpgkeys': list(conf.get_gpgkey_option().get_value()),
    }


def repo_urls(base):
    """Each enabled repo's id and the URLs it is fetched from (baseurl, else its mirrorlist or metalink)."""
    urls = {}
    for repo in enabled_repos(base):
        conf = repo.get_config()
        urls[repo.get_id()] = list(conf.get_baseurl_option().get_value()) or [
            u for u in (option_value(conf.get_mirrorlist_option()), option_value(conf.get_metalink_option())) if u]
    return urls


def local_path(pkg):
    """dnf4's localPkg() for a package of a file:// repo, else None (dnf5's get_package_path() is always the cache)."""
    location = pkg.get_location()
    if '://' in location:
        return file_path(location) if location.startswith('file://') else None
    xml_base = pkg.get_baseurl()
    if xml_base:
        root = file_path(xml_base) if xml_base.startswith('file://') else None
    else:
        conf = pkg.get_repo().get_config()
        if option_value(conf.get_metalink_option()) or option_value(conf.get_mirrorlist_option()):
            return None
        urls = conf.get_baseurl_option().get_value()
        root = file_path(urls[0]) if urls else None
    return os.path.join(root, location.lstrip('/')) if root else None


def resolve_problems(transaction):
    """What dnf4's DepsolveError says: the solver's problems, which dnf5 keeps in the resolve log."""
    logs = list(transaction.get_resolve_logs())
    solver = [log.to_string() for log in logs if log.get_problem() in SOLVER_PROBLEMS]
    return '\n'.join(solver or [log.to_string() for log in logs])


class Resolver:
    def __init__(self, base, req):
        self.base = base
        self.req = req
        # How Goal.add_rpm_install() reads a spec; dnf4 did not match binaries (/usr/bin/SPEC), so neither does this.
        self.install_settings = settings_of(libdnf5.base.GoalJobSettings(), with_binaries=False)
        # dnf4's Subject(spec).get_best_query(sack, with_provides=False): NEVRA forms, then file names.
        self.name_settings = settings_of(libdnf5.base.ResolveSpecSettings(), with_provides=False, with_binaries=False)
        self.installed = libdnf5.rpm.PackageQuery(base)
        self.installed.filter_installed()
        self.installed_by_name = {}
        for pkg in self.installed:
            self.installed_by_name.setdefault(pkg.get_name(), []).append(pkg)
        # dnf5 queries are sets computed when built: these hold whatever excludes come later. Configured
        # excludes (excludepkgs) are kept apart from the user excludes set below, so no copy of them is needed.
        available = libdnf5.rpm.PackageQuery(base)
        available.filter_available()
        # Never a package of another architecture (no multilib on x86_64 either).
        self.foreign = libdnf5.rpm.PackageQuery(available)
        self.foreign.filter_arch([req['arch'], 'noarch'], libdnf5.common.QueryCmp_NEQ)
        # The base is locked: nothing that shares a name with a base package may be installed, so no
        # upgrade, downgrade, reinstall or parallel installonly version can enter a solution.
        self.lock = libdnf5.rpm.PackageQuery(available)
        self.lock.filter_name(list(self.installed_by_name))
        self.by_repo = {}
        for r in req['repos']:
            self.by_repo[r] = libdnf5.rpm.PackageQuery(available)
            self.by_repo[r].filter_repo_id([r])

    def _exclude(self, repos, locked):
        excluded = libdnf5.rpm.PackageSet(self.base)
        for repo, pkgs in self.by_repo.items():
            if repo not in repos:
                excluded.update(pkgs)
        excluded.update(self.foreign)
        if locked:
            excluded.update(self.lock)
        self.base.get_rpm_package_sack().set_user_excludes(excluded)

    def _query(self, spec, settings, with_src=True):
        """The packages spec names, after the current excludes (empty when it names none)."""
        query = libdnf5.rpm.PackageQuery(self.base)
        query.resolve_pkg_spec(spec, settings, with_src)
        return query

    def _goal(self, specs, repos, locked):
        """Resolves specs on top of the base; returns the transaction or raises DepsolveError/NoMatch."""
        self._exclude(repos, locked)
        goal = libdnf5.base.Goal(self.base)
        for spec in specs:
            # dnf4's install(strict=True) raised MarkingError; dnf5 would log NOT_FOUND or EXCLUDED and solve on.
            if self._query(spec, self.install_settings, with_src=False).empty():
                raise NoMatch(spec)
            goal.add_rpm_install(spec, self.install_settings)
        goal.set_allow_erasing(False)
        transaction = goal.resolve()
        if transaction.get_problems() != libdnf5.base.GoalProblem_NO_PROBLEM:
            raise DepsolveError(resolve_problems(transaction))
        return transaction

    def check_not_in_base(self, ext):
        for spec in ext['specs']:
            matches = self._query(spec, self.name_settings)
            matches.filter_installed()
            if not matches.empty():
                raise Problem('package %s already present in base (%s)' % (spec, nevra(next(iter(matches)))), ext['name'])

    def base_changes(self, transaction):
        """What a transaction would do to base packages, in words; empty when it only adds packages."""
        changes = []
        for tsi in transaction.get_transaction_packages():
            action = tsi.get_action()
            if action == REASON_CHANGE:
                continue
            pkg = tsi.get_package()
            have = ', '.join(nevra(p) for p in self.installed_by_name.get(pkg.get_name(), []))
            if action in BASE_CHANGING:
                changes.append('%s base package %s to %s' % (BASE_CHANGING[action], have, nevra(pkg)))
            elif action in BASE_LOSING:
                replaced_by = list(tsi.get_replaced_by())
                if any(p.get_name() == pkg.get_name() for p in replaced_by):
                    continue  # the old side of an upgrade, downgrade or reinstall: told with the new side
                by = sorted(nevra(p) for p in replaced_by)
                reason = ' (obsoleted by %s)' % ', '.join(by) if by else ''
                changes.append('%s base package %s%s' % (BASE_LOSING[action], nevra(pkg), reason))
            elif have:
                changes.append("install %s beside the base's %s (a parallel version)" % (nevra(pkg), have))
        return sorted(changes)

    def needs(self, transaction):
        """Why a transaction changes the base: (package, dependency, base packages) for each package it
        installs whose dependency only the new version of a base package satisfies."""
        inbound = [tsi.get_package() for tsi in transaction.get_transaction_packages() if tsi.get_action() in INBOUND]
        replacing = [p for p in inbound if p.get_name() in self.installed_by_name]
        found = []
        for requester in inbound:
            if requester.get_name() in self.installed_by_name:
                continue  # itself a change of the base: its own needs follow from another package's
            for dep in requester.get_requires():
                text = dep.to_string()
                for new in replacing:
                    if self._provides(nevra(new), text) and not any(
                            self._provides(nevra(old), text) for old in self.installed_by_name[new.get_name()]):
                        found.append((requester.get_name(), text, [nevra(p) for p in self.installed_by_name[new.get_name()]]))
        return found

    def _provides(self, text, dep):
        query = libdnf5.rpm.PackageQuery(self.base)
        query.filter_nevra([text])
        query.filter_provides([dep])
        return not query.empty()

    def solve(self, name, specs, repos):
        """The extension's closure outside the base, as packages; raises Problem with dnf's words."""
        try:
            transaction = self._goal(specs, repos, locked=True)
        except NoMatch as e:
            raise Problem('no package matches %s in repos %s' % (e.spec, ', '.join(repos)), name)
        except DepsolveError as locked_error:
            raise Problem(self.explain(specs, repos, str(locked_error)), name)
        changes = self.base_changes(transaction)
        if changes:
            raise Problem(why_base_changes(changes, self.needs(transaction)), name)
        installs = [tsi.get_package() for tsi in transaction.get_transaction_packages() if tsi.get_action() in INBOUND]
        return sorted(installs, key=nevra)

    def explain(self, specs, repos, locked_error):
        """A locked solve failed: an unlocked one tells whether a base package was in the way."""
        try:
            transaction = self._goal(specs, repos, locked=False)
        except (DepsolveError, NoMatch):
            return 'cannot be resolved: ' + self.lock_words(locked_error)
        changes = self.base_changes(transaction)
        if changes:
            return why_base_changes(changes, self.needs(transaction))
        return 'cannot be resolved: ' + self.lock_words(locked_error)

    def _orient(self, rule, items):
        """libdnf5 words a conflict with a base package from the base's side whichever package holds the
        Conflicts; dnf4 from the side that holds it. Put it the dnf4 way round."""
        if rule != 'installed-conflicts':
            return rule, items
        base_pkg, dep, new = items
        query = libdnf5.rpm.PackageQuery(self.base)
        query.filter_nevra([new[1]])
        holds = any(c.to_string() == dep[1] for p in query for c in p.get_conflicts())
        return 'conflicts', [new, dep, base_pkg] if holds else [base_pkg, dep, new]

    def lock_words(self, error):
        """The solver's words made ours; dnf says a locked package is "filtered out by exclude
        filtering": say why instead."""
        error = our_words(error, 'dnf5', lambda item: item, self._orient)
        lines = []
        for line in error.strip().splitlines():
            match = re.search(r'(package (\S+)(?: from \S+)?) is filtered out by exclude filtering', line)
            if match:
                name = nevra_name(match.group(2))
                have = self.installed_by_name.get(name)
                if have:
                    line = line[:match.start()] + '%s is not allowed: the base has %s and is never changed' % (
                        match.group(1), ', '.join(nevra(p) for p in have))
                elif self._contains(self.foreign, match.group(2)):
                    line = line[:match.start()] + '%s is for another architecture' % match.group(1)
            lines.append(line.rstrip())
        return '\n'.join(lines)

    def _contains(self, query, text):
        found = libdnf5.rpm.PackageQuery(query)
        found.filter_nevra([text])
        return not found.empty()

    def development(self, ext):
        """Exactly the listed packages, the newest of each (or the pinned EVR), base or not."""
        self._exclude(ext['repos'], locked=False)
        picked = []
        for spec in ext['specs']:
            query = self._query(spec, self.name_settings)
            query.filter_available()
            if query.empty():
                raise Problem('no package matches %s in repos %s' % (spec, ', '.join(ext['repos'])), ext['name'])
            picked.append(max(query, key=lambda p: (EvrKey(p), p.get_arch() != 'noarch')))
        return picked


class EvrKey:
    """Orders packages by epoch:version-release the way rpm does (libdnf5::rpm::evrcmp, a template the
    bindings do not instantiate, spelled out with the exported rpmvercmp)."""

    def __init__(self, pkg):
        self.pkg = pkg

    def _cmp(self, other):
        for a, b in ((self.pkg.get_epoch() or '0', other.pkg.get_epoch() or '0'),
                     (self.pkg.get_version(), other.pkg.get_version()),
                     (self.pkg.get_release(), other.pkg.get_release())):
            result = libdnf5.rpm.rpmvercmp(a, b)
            if result:
                return result
        return 0

    def __lt__(self, other):
        return self._cmp(other) < 0

    def __eq__(self, other):
        return self._cmp(other) == 0


def resolve_arch(req):
    """One architecture's answer: packages, closures and repos, or the problems found."""
    base = make_base(req)
    problems = []
    try:
        load_repos(base)
    except libdnf5.exception.RepoError as e:
        return {'problems': [{'message': repo_load_words(error_text(e), repo_urls(base))}]}
    repos = {r.get_id(): r for r in enabled_repos(base)}
    resolver = Resolver(base, req)
    if resolver.installed.empty():
        problems.append({'message': 'the base rpmdb has no packages: dnf sees an empty base'})

    closures = {}
    chosen = {}
    os_exts = [e for e in req['extensions'] if e['kind'] == 'os-extension']
    for ext in req['extensions']:
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
        checksum = pkg.get_checksum()
        packages.append({
            'name': pkg.get_name(), 'epoch': int(pkg.get_epoch() or 0), 'version': pkg.get_version(),
            'release': pkg.get_release(), 'arch': pkg.get_arch(), 'nevra': key, 'repo': pkg.get_repo_id(),
            'location': pkg.get_location(),
            'checksum': {'type': checksum.get_type_str(), 'value': checksum.get_checksum()},
            'size': pkg.get_download_size(),
            # As the repo metadata gives them (from the header): the SBOM reads them from here.
            'license': pkg.get_license() or None, 'vendor': pkg.get_vendor() or None,
            # file:// repos are read in place; others are fetched by the caller (see fetch_arch).
            'path': local_path(pkg),
            'extensions': sorted(exts),
        })
    return {
        'packages': packages,
        'closures': closures,
        'repos': [repo_state(repos[r]) for r in sorted(repos)],
    }


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


class FetchCallbacks(libdnf5.repo.DownloadCallbacks):
    """Every mirror failure librepo reports, with its URL (which ends in the package's location)."""

    def __init__(self):
        super().__init__()
        self.failures = []

    def mirror_failure(self, user_cb_data, msg, url, metadata=None):
        self.failures.append({'url': url, 'message': msg})
        return 0


def fetch_arch(req):
    """Downloads with libdnf5's own downloaders (librepo with each repo's options: mirrors, proxy, TLS,
    credentials, timeouts, throttle) into the files the caller names; or fetches gpg keys; or reloads
    each repo's repomd.xml. The dnf4 helper's fetch_arch, in libdnf5's API."""
    base = make_base(req)
    repos = {r.get_id(): r for r in enabled_repos(base)}
    if req['op'] == 'repomd':
        return {'repos': repomd_now(base, repos, req['repos'])}
    if req['op'] == 'keys':
        # By index into the repo's own gpgkey list: the caller only ever sees them without user-info.
        return {'keys': [fetch_key(base, repos[k['repo']], list(repos[k['repo']].get_config().get_gpgkey_option().get_value())[k['index']], k['dest'])
                         for k in req['keys']]}
    return {'packages': fetch_packages(base, req['packages'])}


def repomd_now(base, repos, ids):
    """Every repo's repomd.xml as libdnf5 finds it now; load_repos() may run once per repo sack."""
    try:
        load_repos(base)
    except Exception as e:  # libdnf5 raises its own exception classes
        return [{'id': r, 'error': error_text(e)} for r in ids if r in repos]
    return [repo_state(repos[r]) for r in ids if r in repos]


def fetch_key(base, repo, url, dest):
    try:
        downloader = libdnf5.repo.FileDownloader(base)
        downloader.add(repo.get_weak_ptr(), url, dest)
        downloader.download()
        return {'ok': True}
    except Exception as e:
        return {'ok': False, 'error': error_text(e)}


def fetch_packages(base, items):
    """PackageDownloader takes packages of the sack, so the repos are loaded (from the solve's solv
    cache: no metadata is parsed again) and each item is found by its repo and location."""
    load_repos(base)
    callbacks = FetchCallbacks()
    base.set_download_callbacks(libdnf5.repo.DownloadCallbacksUniquePtr(callbacks))
    downloader = libdnf5.repo.PackageDownloader(base)
    if hasattr(downloader, 'set_fail_fast'):
        downloader.set_fail_fast(False)
    wanted = []
    for item in items:
        query = libdnf5.rpm.PackageQuery(base)
        query.filter_repo_id([item['repo']])
        query.filter_location([item['location']])
        found = [p for p in query if p.get_checksum().get_checksum() == item['checksum']['value']]
        # Each into a directory of its own: librepo names the file after the location's last part.
        folder = item['dest'] + '.d'
        os.makedirs(folder, exist_ok=True)
        if found:
            downloader.add(found[0], folder)
        wanted.append((item, found, folder))
    error = None
    try:
        downloader.download()
    except Exception as e:
        error = error_text(e)
    answers = []
    for item, found, folder in wanted:
        got = os.path.join(folder, os.path.basename(item['location']))
        if found and os.path.exists(got):
            os.rename(got, item['dest'])
            answers.append({'ok': True, 'failures': []})
            continue
        failures = [f for f in callbacks.failures if f['url'].endswith(item['location'])]
        answers.append({'ok': False, 'failures': failures,
                        'error': error or ('not in the loaded metadata' if not found else 'not downloaded')})
    return answers


def handle(req):
    return fetch_arch(req) if req.get('op') else resolve_arch(req)


if __name__ == '__main__':
    # One architecture at a time: libdnf5 5.2 resolving from several threads of one process sometimes
    # read an empty base rpmdb (33 of 720 solves with 2 threads); solverLayout() starts processes instead.
    serve(handle)
