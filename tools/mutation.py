"""Mutation testing of ``mockserver/domain`` and ``mockserver/backend`` with mutmut.

Slow (about an hour for domain/, hours for backend/ on two cores), so it is not part of CI.
Run it with the test venv and the ``mutation`` extra (``pip install -e '.[test,mutation]'``)::

    .venv/bin/python tools/mutation.py [domain|backend|all]   # a fresh run, then the report
    .venv/bin/python tools/mutation.py backend/store           # one module (or package) only
    .venv/bin/python tools/mutation.py domain --again          # re-test last run's survivors
    .venv/bin/python tools/mutation.py backend --sample 10     # every 10th mutant: an estimate
    .venv/bin/python tools/mutation.py backend --sample 10 --offset 5   # another, disjoint estimate
    .venv/bin/python tools/mutation.py all --report --diffs    # the last results, with diffs

mutmut's own settings (what is mutated, which tests run) are in ``[tool.mutmut]`` in
pyproject.toml. It copies the project into ``mutants/`` (git-ignored) and keeps its results
there. The score is detected / checked: a mutant is detected when a test fails (killed) or the
tests hang (timeout); a survivor or a mutant no test reaches is not. Mutants judged
equivalent carry ``# pragma: no mutate`` with the reason at the end of their line: mutmut does
not generate them, so they are in no count, and the report lists them. See tests/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
AREAS = {"domain": "mockserver/domain", "backend": "mockserver/backend"}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault",
          -9: "segfault", 37: "type check", None: "not checked", 2: "interrupted"}
DETECTED = {"killed", "timeout"}
SPINNER = re.compile(r"[\u2800-\u28ff] [^\r\n]*")


def area_paths(area: str) -> list[str]:
    """``all``, ``domain``, ``backend``, or one module or package below them (``domain/cron``,
    ``backend/resources``) as paths without ``.py``."""
    if area == "all":
        return list(AREAS.values())
    path = f"mockserver/{area.strip('/').removesuffix('.py')}"
    inside = any(path == top or path.startswith(top + "/") for top in AREAS.values())
    if not inside or not ((ROOT / path).is_dir() or (ROOT / f"{path}.py").is_file()):
        sys.exit(f"{area}: not all, domain, backend, or a module below them (e.g. domain/cron)")
    return [path]


def _files(base: Path, prefix: str, suffix: str) -> list[Path]:
    if (base / prefix).is_dir():
        return sorted((base / prefix).rglob(f"*{suffix}"))
    single = base / f"{prefix}{suffix}"
    return [single] if single.exists() else []


def results(area: str) -> dict[str, dict[str, str]]:
    """{source file: {mutant name: status}} from mutmut's per-file result files."""
    found: dict[str, dict[str, str]] = {}
    for prefix in area_paths(area):
        for meta in _files(MUTANTS, prefix, ".py.meta"):
            source = meta.relative_to(MUTANTS).as_posix()[: -len(".meta")]
            if not (ROOT / source).exists():
                continue  # the source file is gone; its old results mean nothing
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            found[source] = {name: STATUS.get(code, "suspicious") for name, code in codes.items()}
    return found


def equivalents(area: str) -> list[tuple[str, int, str]]:
    marked = []
    for prefix in area_paths(area):
        for source in _files(ROOT, prefix, ".py"):
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
                if "pragma: no mutate" in line:
                    reason = line.split("pragma: no mutate", 1)[1].strip(" :-—;,")
                    marked.append((source.relative_to(ROOT).as_posix(), number, reason))
    return marked


def score_line(label: str, counts: Counter) -> str:
    total = sum(counts.values()) - counts["not checked"]  # a cut-short or sampled run scores what it checked
    detected = sum(counts[s] for s in DETECTED)
    percent = f"{100 * detected / total:5.1f} %" if total else "    - "
    rest = ", ".join(f"{counts[s]} {s}" for s in ("survived", "no tests", "timeout", "suspicious", "not checked")
                     if counts[s])
    # A timeout may be a mutant that hangs, or tests cut off before they could tell (see
    # timeout_constant in pyproject.toml): the share killed of the mutants decided otherwise is
    # the stricter figure.
    decided = total - counts["timeout"]
    strict = f"{100 * counts['killed'] / decided:5.1f} %" if decided else "    - "
    return (f"{label:<48} {detected:>5} / {total:<5} {percent}   ({counts['killed']} killed{', ' if rest else ''}{rest})"
            f"   [timeouts left out: {strict}]")


def report(area: str, diffs: bool) -> int:
    found = results(area)
    if not found:
        print(f"no results for {area} in {MUTANTS}: run `python tools/mutation.py {area}` first")
        return 1
    print("\nScore: detected (killed + timeout) / mutants checked; equivalents (pragma: no mutate) are not made;"
          "\nin brackets, killed / the mutants checked that did not time out\n")
    by_area: dict[str, Counter] = defaultdict(Counter)
    for source, statuses in found.items():
        counts = Counter(statuses.values())
        if statuses:
            print(score_line(source, counts))
        by_area[next(a for a, p in AREAS.items() if source.startswith(p + "/"))].update(counts)
    print()
    for name, counts in by_area.items():
        print(score_line(f"{AREAS[name]}/ (all files)", counts))
    if len(by_area) > 1:
        print(score_line("domain + backend", sum(by_area.values(), Counter())))

    marked = equivalents(area)
    print(f"\nLines marked '# pragma: no mutate' (no mutant made): {len(marked)}")
    for source, number, reason in marked:
        print(f"  {source}:{number}: {reason}")

    unchecked = sum(status == "not checked" for statuses in found.values() for status in statuses.values())
    if unchecked:
        print(f"\n{unchecked} mutants not checked yet (the run was cut short, or covered another area)")
    undetected = {source: sorted((n for n, s in statuses.items() if s not in DETECTED | {"not checked"}),
                                 key=_natural)
                  for source, statuses in found.items()}
    print(f"\nNot detected (survived, or no test reaches them): {sum(map(len, undetected.values()))}")
    for source, names in undetected.items():
        if not names:
            continue
        print(f"\n== {source} ({len(names)})")
        for name in names:
            print(f"  {name}  [{found[source][name]}]")
            if diffs:
                print("    " + mutant_diff(name, source).replace("\n", "\n    "))
    return 0


def _natural(name: str):
    base, _, number = name.rpartition("__mutmut_")
    return base, int(number) if number.isdigit() else 0


def mutant_diff(name: str, source: str) -> str:
    """The mutant's change as a unified diff of its function (what `mutmut show` prints)."""
    os.chdir(ROOT)
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant
    except ImportError:  # another mutmut layout: ask its command line
        run = subprocess.run([mutmut_command(), "show", name], cwd=ROOT, capture_output=True, text=True)
        return "\n".join(run.stdout.splitlines()[1:]).strip()
    lines = get_diff_for_mutant(name, path=source).splitlines()
    return "\n".join(lines[2:])  # the two file-name lines say only the file, already named above


def mutmut_command() -> str:
    beside = Path(sys.executable).parent / "mutmut"
    found = str(beside) if beside.exists() else shutil.which("mutmut")
    if not found:
        sys.exit("mutmut is not installed: pip install -e '.[test,mutation]'")
    return found


def run_mutmut(names: list[str], jobs: int, *, generate_only: bool = False) -> None:
    log = MUTANTS / "mutation-run.log"
    started = time.monotonic()
    with open(log, "a") as out:
        code = subprocess.call([mutmut_command(), "run", "--max-children", str(jobs), *names], cwd=ROOT,
                               stdout=out, stderr=subprocess.STDOUT)
    lines = [line.strip() for line in SPINNER.sub("", log.read_text().replace("\r", "\n")).splitlines()]
    lines = [line for line in lines if line]
    print(f"mutmut run {' '.join(names) if len(names) < 3 else f'({len(names)} mutants)'}: exit {code}, "
          f"{time.monotonic() - started:.0f} s")
    if generate_only:
        return  # it stops, as asked, on finding no such mutant
    if code != 0:
        print("\n".join(lines[-15:]))
        explain_failure()
        sys.exit(code)


def explain_failure() -> None:
    """mutmut says only that the clean run failed; show which test fails in the copy."""
    selection = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    args = selection.get("pytest_add_cli_args_test_selection", [])
    print("\nRunning the selected tests once in mutants/ to show what fails there:")
    run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "--tb=short", "-p", "no:randomly", *args],
                         cwd=MUTANTS, capture_output=True, text=True, env={**os.environ, "MUTANT_UNDER_TEST": ""})
    print("\n".join(run.stdout.splitlines()[-40:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("area", nargs="?", default="all",
                        help="all (default), domain, backend, or one module below them, e.g. domain/cron")
    parser.add_argument("--again", action="store_true",
                        help="keep mutants/ and re-test only what the last run did not detect (and new mutants)")
    parser.add_argument("--report", action="store_true", help="only print the last run's report")
    parser.add_argument("--diffs", action="store_true", help="print each undetected mutant's diff")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="a fresh run of every N-th mutant of each file only: an estimate, much sooner")
    parser.add_argument("--offset", type=int, default=0, metavar="K",
                        help="with --sample: start at each file's K-th mutant, for a sample disjoint "
                             "from an earlier one (after killing its survivors, a new sample is the fair estimate)")
    options = parser.parse_args()
    os.chdir(ROOT)

    if not options.report:
        globs = [prefix.replace("/", ".") + ".*" for prefix in area_paths(options.area)]
        started = time.monotonic()
        sampled = MUTANTS / "mutation-sample.txt"
        if options.again and MUTANTS.exists():
            # A sample's own mutants not checked yet (a cut-short run, or timeouts that mutmut
            # forgets when its timeout settings change) are re-tested with its survivors; the
            # mutants it left out are not.
            sample = set(sampled.read_text().split()) if sampled.exists() else set()
            again = [name for statuses in results(options.area).values()
                     for name, status in statuses.items()
                     if status not in DETECTED and (status != "not checked" or name in sample)]
            if again:
                run_mutmut(again, options.jobs)
            # Code changed since the last run has new mutants, not checked yet.
            new = [name for statuses in results(options.area).values()
                   for name, status in statuses.items() if status == "not checked" and name not in sample]
            if new and sampled.exists():
                print(f"the last run was a sample: the {len(new)} mutants it left out stay unchecked")
            elif new:
                run_mutmut(new, options.jobs)
        else:
            shutil.rmtree(MUTANTS, ignore_errors=True)
            MUTANTS.mkdir()
            if options.sample:
                # mutmut makes mutants only as part of a run: ask for one that does not exist.
                run_mutmut(["mockserver.no-such-mutant"], options.jobs, generate_only=True)
                names = [name for statuses in results(options.area).values()
                         for name in sorted(statuses, key=_natural)[options.offset::options.sample]]
                if not names:
                    sys.exit(f"no mutants were made; see {MUTANTS / 'mutation-run.log'}")
                sampled.write_text("\n".join(names) + "\n")
                run_mutmut(names, options.jobs)
            else:
                run_mutmut(globs, options.jobs)
        print(f"total time {time.monotonic() - started:.0f} s")
    return report(options.area, options.diffs)


if __name__ == "__main__":
    sys.exit(main())
