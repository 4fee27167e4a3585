"""The words both dnf helpers use for solver problems (dnf4-helper.py and dnf5-helper.py import it).

dnf4 and libdnf5 word the same libsolv rules differently: libdnf5 adds " from <repo>" after each
package and words a conflict with an installed package from the installed side; dnf4 names no repo.
Each helper reads its library's lines into rules with packages (NEVRA, repo or None for a base
package) and this module says them one way: every package with its repo, base packages as such.
"""
import re

NEVRA = r'(\S+?)'
FROM = r'(?: from (\S+))?'

# (rule, dnf4 line, libdnf5 line): the templates of libdnf 0.69 (Goal.cpp) and libdnf5 5.2
# (solver_problems.cpp); groups are packages (P), dependencies (D) in the order `ROLES` gives.
RULES = [
    ('nothing-provides', r'nothing provides (.+) needed by (\S+)', r'nothing provides (.+) needed by (\S+) from (\S+)', 'DP'),
    ('requires', r'package (\S+) requires (.+), but none of the providers can be installed',
     r'package (\S+) from (\S+) requires (.+), but none of the providers can be installed', 'PD'),
    ('installed-requires', None, r'installed package (\S+) requires (.+), but none of the providers can be installed', 'iD'),
    ('self-conflict', r'package (\S+) conflicts with (.+) provided by itself',
     r'package (\S+) from (\S+) conflicts with (.+) provided by itself', 'PD'),
    ('conflicts', r'package (\S+) conflicts with (.+) provided by (\S+)',
     r'package (\S+) from (\S+) conflicts with (.+) provided by (\S+) from (\S+)', 'PDP'),
    ('installed-conflicts', None, r'installed package (\S+) conflicts with (.+) provided by (\S+) from (\S+)', 'iDP'),
    ('installed-obsoletes', r'installed package (\S+) obsoletes (.+) provided by (\S+)',
     r'installed package (\S+) obsoletes (.+) provided by (\S+) from (\S+)', 'iDP'),
    ('implicit-obsoletes', r'package (\S+) implicitly obsoletes (.+) provided by (\S+)',
     r'package (\S+) from (\S+) implicitly obsoletes (.+) provided by (\S+) from (\S+)', 'PDP'),
    ('obsoletes', r'package (\S+) obsoletes (.+) provided by (\S+)',
     r'package (\S+) from (\S+) obsoletes (.+) provided by (\S+) from (\S+)', 'PDP'),
    ('both-obsolete', r'both package (\S+) and (\S+) obsolete (.+)', r'both package (\S+) from (\S+) and (\S+) from (\S+) obsolete (.+)', 'PPD'),
    ('same-name', r'cannot install both (\S+) and (\S+)', r'cannot install both (\S+) from (\S+) and (\S+) from (\S+)', 'PP'),
    ('excluded', r'package (\S+) is filtered out by exclude filtering', r'package (\S+)(?: from (\S+))? is filtered out by exclude filtering', 'P'),
    ('modular', r'package (\S+) is filtered out by modular filtering', r'package (\S+) from (\S+) is filtered out by modular filtering', 'P'),
    ('wrong-arch', r'package (\S+) does not have a compatible architecture', r'package (\S+) from (\S+) does not have a compatible architecture', 'P'),
    ('not-installable', r'package (\S+) is not installable', r'package (\S+) from (\S+) is not installable', 'P'),
    ('inferior-arch', r'(\S+) has inferior architecture', r'(\S+) from (\S+) has inferior architecture', 'P'),
    # Says nothing the other lines of the problem do not (libdnf5 even drops the package): left out.
    ('installed-problem', r'problem with installed package ?(\S*)', r'problem with installed package ?(\S*)', None),
]
COMPILED = {
    dialect: [(rule, re.compile('^' + pattern + '$'), roles) for rule, *patterns, roles in RULES
              for pattern in [patterns[dialect == 'dnf5']] if pattern]
    for dialect in ('dnf4', 'dnf5')
}
PROBLEM = re.compile(r'^(\s*)(Problem(?: \d+)?: |- )?(.*?)\s*$')
INSTALLED_REPO = '@System'


def read_line(text, dialect):
    """(rule, [('P', nevra, repo) | ('D', dep)]) for one problem line; (None, text) when not a known rule.

    A package's repo is None where the library named none (dnf4); a base package's is INSTALLED_REPO.
    """
    for rule, pattern, roles in COMPILED[dialect]:
        match = pattern.match(text)
        if not match:
            continue
        if roles is None:
            return rule, []
        groups = list(match.groups())
        items = []
        for role in roles:
            if role == 'D':
                items.append(('D', groups.pop(0)))
            elif role == 'i':
                items.append(('P', groups.pop(0), INSTALLED_REPO))
            else:
                name = groups.pop(0)
                repo = groups.pop(0) if dialect == 'dnf5' else None
                items.append(('P', name, repo))
        return rule, items
    return None, text


def pkg(item, lead=True):
    """`package NEVRA from REPO` (`NEVRA from REPO` without lead), or `base package NEVRA`."""
    _, name, repo = item
    if repo == INSTALLED_REPO:
        return 'base package %s' % name
    where = ' from %s' % repo if repo else ''
    return ('package %s%s' if lead else '%s%s') % (name, where)


def say(rule, items):
    """One rule in our words; None to leave the line out."""
    P = [i for i in items if i[0] == 'P']
    D = [i[1] for i in items if i[0] == 'D']
    if rule == 'installed-problem':
        return None
    if rule == 'nothing-provides':
        return 'nothing provides %s needed by %s' % (D[0], pkg(P[0], lead=False))
    if rule in ('requires', 'installed-requires'):
        return '%s requires %s, but none of the providers can be installed' % (pkg(P[0]), D[0])
    if rule == 'self-conflict':
        return '%s conflicts with %s provided by itself' % (pkg(P[0]), D[0])
    if rule in ('conflicts', 'installed-conflicts'):
        return '%s conflicts with %s provided by %s' % (pkg(P[0]), D[0], pkg(P[1], lead=False))
    if rule in ('obsoletes', 'installed-obsoletes'):
        return '%s obsoletes %s provided by %s' % (pkg(P[0]), D[0], pkg(P[1], lead=False))
    if rule == 'implicit-obsoletes':
        return '%s implicitly obsoletes %s provided by %s' % (pkg(P[0]), D[0], pkg(P[1], lead=False))
    if rule == 'both-obsolete':
        return 'both %s and %s obsolete %s' % (pkg(P[0]), pkg(P[1], lead=False), D[0])
    if rule == 'same-name':
        return 'cannot install both %s and %s' % (pkg(P[0], lead=False), pkg(P[1], lead=False))
    if rule == 'excluded':
        return '%s is filtered out by exclude filtering' % pkg(P[0])
    if rule == 'modular':
        return '%s is filtered out by modular filtering' % pkg(P[0])
    if rule == 'wrong-arch':
        return '%s does not have a compatible architecture' % pkg(P[0])
    if rule == 'not-installable':
        return '%s is not installable' % pkg(P[0])
    if rule == 'inferior-arch':
        return '%s has inferior architecture' % pkg(P[0], lead=False)
    return None


def our_words(text, dialect, complete, orient=None):
    """A solver's problem text in our words, its `Problem N:` / `  - ` layout kept.

    complete(item) fills in a package's repo where the library named none (dnf4); orient(rule, items)
    may put a conflict the right way round (libdnf5 words an installed package's conflict from the
    installed side, whichever package holds the Conflicts).
    """
    lines = []
    for line in text.strip().splitlines():
        indent, lead, body = PROBLEM.match(line).groups()
        rule, items = read_line(body, dialect)
        if rule is None:
            lines.append(line.rstrip())
            continue
        items = [complete(i) if i[0] == 'P' else i for i in items]
        if orient:
            rule, items = orient(rule, items)
        words = say(rule, items)
        if words is not None:
            lines.append('%s%s%s' % (indent, lead or '', words))
    return '\n'.join(lines)


def why_base_changes(changes, needs):
    """`cannot be installed without changing the base: A requires D; the base has B (it would …)`.

    changes: what the transaction does to the base, in words; needs: (requester name, dependency,
    base NEVRAs) for each requested or pulled-in package whose dependency only a changed base package
    satisfies (none for an obsoleting package: the change itself says why).
    """
    told = sorted({'%s requires %s; the base has %s' % (who, dep, ', '.join(have)) for who, dep, have in needs})
    it_would = 'it would ' + '; '.join(changes)
    if not told:
        return 'cannot be installed without changing the base: ' + it_would
    return 'cannot be installed without changing the base: %s (%s)' % ('; '.join(told), it_would)


# A repo whose metadata could not be fetched: dnf4 "Failed to download metadata for repo 'ID': …",
# libdnf5 'Failed to download metadata (baseurl: "…") for repository "ID": …'.
REPO_ID = [re.compile(r"for repo '([^']+)'"), re.compile(r'for repository "([^"]+)"')]
DOWNLOAD_FAILED = re.compile(r'Failed to download metadata|Cannot download repomd\.xml|Usable URL not found|All mirrors were tried')


def repo_load_words(error, urls):
    """A repo that could not be loaded, named with the URLs tried: the same words under both libraries.

    urls: enabled repo id -> the URLs it is fetched from (baseurl, mirrorlist or metalink).
    """
    repo = next((m.group(1) for pattern in REPO_ID for m in [pattern.search(error)] if m), None)
    if repo is None or not DOWNLOAD_FAILED.search(error):
        return 'repository could not be loaded: %s' % error.strip()
    tried = ', '.join(urls.get(repo) or []) or 'no URL'
    return 'repository %s could not be loaded: its metadata (repodata/repomd.xml) could not be downloaded from %s%s' % (
        repo, tried, last_transfer_error(error))


def last_transfer_error(error):
    """librepo's last word on the transfer, in the same form under both libraries: an HTTP status, or
    curl's error with its text (without the URL, already named): ': HTTP 404', ': Curl error (23): …'."""
    found = [m for m in TRANSFER_ERROR.finditer(error)]
    if not found:
        return ''
    last = found[-1]
    if last.group('status'):
        return ': HTTP %s' % last.group('status')
    return ': Curl error (%s): %s' % (last.group('curl'), last.group('text').strip())


TRANSFER_ERROR = re.compile(r'Status code: (?P<status>\d{3})|Curl error \((?P<curl>\d+)\): (?P<text>[^\[\n]*?)(?: for \S+)?(?= \[|\n|$)')
