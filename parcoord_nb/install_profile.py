"""Load parcoord_nb in every IPython kernel of this environment (or of this user).

    python -m parcoord_nb.install_profile --sys-prefix   # this virtualenv / Binder image
    python -m parcoord_nb.install_profile --user         # ~/.ipython/profile_default

It writes one small config file that adds ``parcoord_nb`` to the extensions IPython
loads at start, so ``%%parallel`` works without ``%load_ext``. ``--remove`` undoes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LINE = "c.InteractiveShellApp.extensions.append('parcoord_nb')  # added by parcoord_nb.install_profile\n"


def _target(user: bool) -> Path:
    if user:
        return Path.home() / ".ipython" / "profile_default" / "ipython_kernel_config.py"
    # IPython reads {sys.prefix}/etc/ipython/ as an environment-wide config folder.
    return Path(sys.prefix) / "etc" / "ipython" / "ipython_kernel_config.py"


def install(user: bool = False) -> Path:
    path = _target(user)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else ""
    if LINE not in text:
        path.write_text(text + ("\n" if text and not text.endswith("\n") else "") + LINE)
    return path


def remove(user: bool = False) -> Path:
    path = _target(user)
    if path.exists():
        path.write_text(path.read_text().replace(LINE, ""))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parcoord_nb.install_profile", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sys-prefix", action="store_true", help="this environment (default)")
    where.add_argument("--user", action="store_true", help="this user's default IPython profile")
    parser.add_argument("--remove", action="store_true", help="stop loading parcoord_nb by default")
    args = parser.parse_args(argv)
    path = (remove if args.remove else install)(user=args.user)
    print(f"{'removed from' if args.remove else 'parcoord_nb loads in every kernel via'} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
