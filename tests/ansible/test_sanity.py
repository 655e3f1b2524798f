"""ansible-test sanity, ansible-core's own checks of a collection, passes on the collection as a
fresh clone has it: every test runs (none skipped for a missing program) and the only ignore
entries are those of tests/sanity/ignore-<ansible-core>.txt, each with its reason."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import ansible_test
from ansible.release import __version__ as ANSIBLE_VERSION

from helpers import ROOT, VENV_BIN, clean_copy, run

CORE = ".".join(ANSIBLE_VERSION.split(".")[:2])
IGNORES = ROOT / "tests" / "sanity" / f"ignore-{CORE}.txt"
# The controller's Python only: the other interpreters on a machine (pyenv shims, say) need not
# run under ansible-test's cleaned environment, and the modules are Rust binaries anyway.
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

# ansible-test bootstraps pip in each of its virtual environments with a get-pip script it
# downloads from a host that this project's machines cannot reach. This stand-in, saved where
# ansible-test caches that script, does the same from the interpreter's bundled pip: ensurepip,
# then the pip release ansible-test asks for (its arguments, e.g. pip==24.2). ansible-test
# clears PIP_* from the environment, hence the explicit CA bundle where the machine has one.
STANDIN = '''"""Stand-in for ansible-test's get-pip bootstrap script (tests/ansible/test_sanity.py)."""
import os
import subprocess
import sys

CA = "/etc/ssl/certs/ca-certificates.crt"
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
cert = ["--cert", CA] if os.path.exists(CA) else []
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *cert, *args])
if "--no-setuptools" in sys.argv:
    subprocess.call([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "setuptools"])
'''

# The tests that must have run (ansible-test 2.18 runs 24 on this collection).
EXPECTED = {
    "action-plugin-docs", "ansible-doc", "changelog", "compile", "empty-init", "ignores", "import",
    "line-endings", "no-assert", "no-get-exception", "no-illegal-filenames", "no-smart-quotes",
    "pep8", "pylint", "replace-urlopen", "runtime-metadata", "shebang", "shellcheck", "symlinks",
    "use-argspec-type-path", "use-compat-six", "validate-modules", "yamllint",
}


def get_pip_standin() -> Path:
    """The cached bootstrap script ansible-test looks for; the stand-in when there is none."""
    src = (Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
    pip = re.search(r"default_packages = dict\(\s*pip='([\d.]+)'", src).group(1)
    setup = (Path(ansible_test.__file__).parent / "_util" / "target" / "setup" / "requirements.py").read_text()
    assert "'~/.ansible/test/cache/get_pip_%s.py' % pip_version.replace(\".\", \"_\")" in setup
    path = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{pip.replace('.', '_')}.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(STANDIN)
    return path


def test_ignore_entries_each_say_why():
    entries = [l for l in IGNORES.read_text().splitlines() if l.strip()]
    assert entries, f"{IGNORES} is empty"
    for entry in entries:
        path, rest = entry.split(" ", 1)
        test, _sep, why = rest.partition(" # ")
        assert (ROOT / path).is_file(), entry
        assert re.fullmatch(r"[a-z0-9-]+(:[a-z0-9-]+)?", test) and why.strip(), entry


def test_ansible_test_sanity(tmp_path):
    assert get_pip_standin().is_file()
    coll = clean_copy(tmp_path)
    assert (coll / "tests" / "sanity" / IGNORES.name).is_file()
    r = run([VENV_BIN / "ansible-test", "sanity", "--venv", "--requirements", "--python", PYTHON, "--color", "no"],
            cwd=coll, timeout=900)
    out = r.stdout + r.stderr
    errors = "\n".join(l for l in out.splitlines() if l.startswith(("ERROR", "FATAL")))
    assert r.returncode == 0, errors or out[-4000:]
    ran = set(re.findall(r'Running sanity test "([\w-]+)"', out))
    assert EXPECTED <= ran, f"did not run: {sorted(EXPECTED - ran)}"
    # A test whose program is missing (shellcheck: `make setup-apt` installs it) is skipped with
    # a warning only, and would pass here without having looked at anything.
    assert not re.search(r"WARNING: .*(not found|[Ss]kipping)", out), out[-4000:]
