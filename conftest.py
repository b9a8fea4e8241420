"""pytest runs every notebook in `nbs/` as one test, through nbdev's own `test_nb`.

So `#| eval: false`, the `tst_flags` in settings.ini (`#| slow`, `#| notest`) and `skip_exec` are
honoured exactly as `nbdev_test` honours them. Switches:

    pytest                 # every notebook, skipping cells flagged `slow` (the full-size runs)
    pytest --slow          # also run the `slow` cells
    pytest -k 00_forward   # one notebook

Two more items: `nbdev-sync` fails when `nbdev_clean` or `nbdev_export` would change a file (a
notebook not cleaned, or a library module out of sync with its notebook), or when README.md is not
the rendering of `nbs/index.ipynb`; `import-modules` imports every module in a fresh interpreter and
runs pyflakes on them, so exported code cannot lean on a notebook's globals.
"""
import io, contextlib, filecmp, os, shutil, subprocess, sys, tempfile
from configparser import ConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def _cfg():
    p = ConfigParser(delimiters=['=']); p.read(ROOT/'settings.ini', encoding='utf-8')
    return p['DEFAULT']


def pytest_addoption(parser):
    g = parser.getgroup('notebooks')
    g.addoption('--slow', action='store_true', help="also run notebook cells flagged `#| slow` (full-size runs)")
    g.addoption('--flags', default='', help="space-separated nbdev tst_flags whose cells should run too")


def pytest_collect_file(parent, file_path):
    if file_path.suffix == '.ipynb' and file_path.parent == ROOT/'nbs' and not file_path.name.startswith('_'):
        return NotebookFile.from_parent(parent, path=file_path)
    if file_path == ROOT/'settings.ini':
        return SyncFile.from_parent(parent, path=file_path)


class NotebookFile(pytest.File):
    def collect(self): yield NotebookItem.from_parent(self, name=self.path.stem)


class NotebookItem(pytest.Item):
    def runtest(self):
        from nbdev.test import test_nb
        opt = self.config.getoption
        force = (['slow'] if opt('--slow') else []) + opt('--flags').split()
        skip = _cfg().get('tst_flags', '').split()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            ok, secs = test_nb(self.path, skip_flags=skip, force_flags=force, showerr=True, basepath=ROOT)
        self.user_properties.append(('seconds', secs))
        if not ok: raise NotebookFailure(err.getvalue())

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookFailure): return f"{self.path.name} failed:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self): return self.path, 0, f"notebook {self.path.name}"


class NotebookFailure(Exception): pass


class SyncFile(pytest.File):
    def collect(self):
        yield SyncItem.from_parent(self, name='nbdev-sync')
        yield ImportItem.from_parent(self, name='import-modules')


class ImportItem(pytest.Item):
    "Every library module imports in a fresh interpreter: exported code must not lean on a notebook's globals."
    def runtest(self):
        lib = _cfg().get('lib_path', 'latent_diffusion')
        mods = sorted(f"{lib}.{p.stem}" for p in (ROOT/lib).glob('*.py') if not p.stem.startswith('_'))
        code = ';'.join(f'import {m}' for m in mods)
        r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
        if r.returncode: raise SyncFailure(f'importing the library failed:\n{r.stderr[-3000:]}')
        # names used inside functions but defined only in a notebook cell fail later, at call time: pyflakes finds them
        r = subprocess.run([sys.executable, '-m', 'pyflakes', *[str(p) for p in sorted((ROOT/lib).glob('*.py'))]],
                           cwd=ROOT, capture_output=True, text=True)
        undefined = [l for l in r.stdout.splitlines() if 'undefined name' in l]
        if undefined: raise SyncFailure('exported code uses names it never defines or imports:\n' + '\n'.join(undefined))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, SyncFailure): return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self): return self.path, 0, 'import every module'


def _project_files():
    "Files git tracks plus untracked ones it does not ignore (the tree a fresh clone would have)."
    out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode: pytest.skip('not a git checkout: cannot tell which files belong to the project')
    return [f for f in out.stdout.split('\0') if f and (ROOT/f).is_file()]


class SyncItem(pytest.Item):
    def runtest(self):
        files = _project_files()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for f in files:
                (tmp/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT/f, tmp/f)
            bindir = Path(sys.executable).parent
            for cmd in ('nbdev_clean', 'nbdev_export'):
                exe = shutil.which(cmd, path=str(bindir)) or shutil.which(cmd)
                r = subprocess.run([exe], cwd=tmp, capture_output=True, text=True)
                if r.returncode: raise SyncFailure(f'{cmd} failed:\n{r.stdout}\n{r.stderr}')
            r = subprocess.run([sys.executable, str(tmp/'tools'/'build_docs.py'), '--readme-only'], cwd=tmp,
                               capture_output=True, text=True)
            if r.returncode: raise SyncFailure(f'README rendering failed:\n{r.stdout}\n{r.stderr}')
            changed = [f for f in files if (tmp/f).exists() and not filecmp.cmp(ROOT/f, tmp/f, shallow=False)]
            lib = _cfg().get('lib_path', 'latent_diffusion')
            new = [str(p.relative_to(tmp)) for p in (tmp/lib).rglob('*.py') if str(p.relative_to(tmp)) not in files]
        if changed or new:
            raise SyncFailure('nbdev_clean / nbdev_export / README rendering would change these files:\n  ' +
                              '\n  '.join(changed + [f'{n} (new, not committed)' for n in new]) +
                              '\nRun `nbdev_clean && nbdev_export && python tools/build_docs.py --readme-only` and commit.')

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, SyncFailure): return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self): return self.path, 0, 'nbdev clean/export/README sync'


class SyncFailure(Exception): pass
