#!/usr/bin/env python3
"""Instruction-count budgets, part of `make test`: a performance regression that CI catches.

Each line of budgets.txt (beside this file) names a probe, a program that runs one hot
path a given number of times, and its budget: the instructions it took per unit (an event,
a request) when the budget was set, and the date. Each probe is built in release and run
twice under `valgrind --tool=callgrind` (instructions retired in user space, counted by
simulation: the same on a loaded machine as on an idle one): once with 0 units and once
with `units`, both preparing the same inputs, so the difference divided by `units` is the
hot path alone, without start-up or preparation. A count more than 5% over its budget fails,
with both numbers and how to update the budget deliberately.

  python3 tests/instructions/check.py                  # every probe, as make test runs it
  python3 tests/instructions/check.py --only NAME      # one probe
  python3 tests/instructions/check.py --update NAME    # measure NAME and write it as its budget

A probe whose binary column ends in a counter name in brackets (`... [fuel]`) counts by
itself, deterministically, and is run directly, not under callgrind: the check reads the
line `<counter>: <number>` it prints (the wasm filter's probe runs the module in an
interpreter and counts its instructions as fuel and its host calls). Several builds in the
cargo column are separated by `;`; each is `cargo build --release` with its arguments, or
with `--profile` when the arguments name one (the wasm module's own build).

After the real comparisons it shows that the comparison can fail: each measured count is
compared again with a budget 10% below it, and that comparison must report a failure.
"""

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUDGETS = HERE / "budgets.txt"
# How far over its budget a count may go before the check fails.
TOLERANCE = 0.05
COLUMNS = ["probe", "budget", "measured_on", "unit", "cargo", "binary", "units"]


class BudgetError(Exception):
    """budgets.txt or a probe's run is not what this script expects: says what and where."""


def read_budgets(path=BUDGETS):
    """The probes of budgets.txt, in order, each a dict of COLUMNS (budget and units as ints)."""
    probes = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != len(COLUMNS):
            raise BudgetError(f"{path.name}:{number}: {len(fields)} fields, expected {len(COLUMNS)} "
                              f"({' | '.join(COLUMNS)})")
        probe = dict(zip(COLUMNS, fields))
        try:
            probe["budget"] = int(probe["budget"].replace(",", "").replace("_", ""))
            probe["units"] = int(probe["units"])
        except ValueError:
            raise BudgetError(f"{path.name}:{number}: budget and units must be whole numbers") from None
        probes.append(probe)
    return probes


def write_budget(name, measured, path=BUDGETS, today=None):
    """Rewrites the line of probe `name` with `measured` as its budget, dated today."""
    today = today or datetime.date.today().isoformat()
    lines = path.read_text().splitlines(keepends=True)
    for index, line in enumerate(lines):
        fields = line.split("|")
        if len(fields) == len(COLUMNS) and fields[0].strip() == name and not line.lstrip().startswith("#"):
            fields[1] = f" {measured:>11,} "
            fields[2] = f" {today} "
            lines[index] = "|".join(fields)
            path.write_text("".join(lines))
            return
    raise BudgetError(f"no probe named {name!r} in {path.name}")


def counted(probe):
    """What the probe's count is of: callgrind's `instructions`, or the counter it prints."""
    match = re.search(r"\[([^\]]+)\]\s*$", probe["binary"])
    return match.group(1) if match else "instructions"


def verdict(probe, measured, budget=None):
    """None when `measured` is within the tolerance of the budget, else the failure message."""
    budget = probe["budget"] if budget is None else budget
    if measured <= budget * (1 + TOLERANCE):
        return None
    over = measured / budget - 1
    return (f"{probe['probe']}: {measured:,} {counted(probe)} per {probe['unit']}, budget {budget:,} "
            f"(set {probe['measured_on']}): {over:+.1%}, more than the {TOLERANCE:.0%} allowed.\n"
            f"  If the cost is deliberate (a feature worth it), set the new budget and say why in the commit:\n"
            f"    python3 tests/instructions/check.py --update {probe['probe']}\n"
            f"  Otherwise find what got slower: callgrind_annotate on the probe's output, or the "
            f"probe's own breakdown (tests/instructions/README.md).")


def build_commands(probe):
    """The cargo commands that build what the probe runs, in order."""
    commands = []
    for arguments in probe["cargo"].split(";"):
        arguments = arguments.split()
        profile = [] if "--profile" in arguments else ["--release"]
        commands.append(["cargo", "build", *profile, "--quiet", *arguments])
    return commands


def build(probe):
    for command in build_commands(probe):
        subprocess.run(command, cwd=ROOT, check=True)


# A self-counting probe's output by (binary, arguments): two budgets read one run.
_printed = {}


def self_counted(binary, args, counter):
    """The count a self-counting probe printed as `<counter>: <number>`."""
    key = (str(binary), tuple(args))
    if key not in _printed:
        run = subprocess.run([str(binary), *args], cwd=ROOT, capture_output=True, text=True)
        if run.returncode != 0:
            raise BudgetError(f"{binary} {' '.join(args)} failed ({run.returncode}):\n{run.stdout}{run.stderr}")
        _printed[key] = run.stdout
    match = re.search(rf"^{re.escape(counter)}: (\d+)$", _printed[key], re.MULTILINE)
    if not match:
        raise BudgetError(f"{binary} {' '.join(args)} printed no `{counter}: <number>` line:\n{_printed[key]}")
    return int(match.group(1))


def instructions(binary, args, out_dir):
    """Instructions the program executed (callgrind's total `Ir`)."""
    out = Path(out_dir) / f"callgrind.{binary.name}.{'-'.join(args)}"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary), *args]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        raise BudgetError(f"{' '.join(command)} failed ({run.returncode}):\n{run.stdout}{run.stderr}")
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if not match:
        raise BudgetError(f"no instruction total in {out}")
    return int(match.group(1))


def measure(probe, out_dir):
    """The count per unit of `probe`: the run of `units` less the run of none."""
    build(probe)
    counter = counted(probe)
    binary = ROOT / "target" / re.sub(r"\s*\[[^\]]+\]\s*$", "", probe["binary"])
    units = str(probe["units"])
    if counter == "instructions":
        base = instructions(binary, ["0", units], out_dir)
        full = instructions(binary, [units, units], out_dir)
    else:
        base = self_counted(binary, ["0", units], counter)
        full = self_counted(binary, [units, units], counter)
    return round((full - base) / probe["units"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="measure this probe only")
    parser.add_argument("--update", metavar="NAME", help="measure NAME and write the count as its budget")
    options = parser.parse_args()
    probes = read_budgets()
    wanted = options.update or options.only
    if wanted:
        probes = [probe for probe in probes if probe["probe"] == wanted]
        if not probes:
            raise BudgetError(f"no probe named {wanted!r} in {BUDGETS.name}")
    failures = []
    with tempfile.TemporaryDirectory(prefix="instructions-") as out_dir:
        for probe in probes:
            measured = measure(probe, out_dir)
            print(f"{probe['probe']}: {measured:,} {counted(probe)} per {probe['unit']} "
                  f"(budget {probe['budget']:,}, {measured / probe['budget'] - 1:+.1%})", flush=True)
            if options.update:
                write_budget(probe["probe"], measured)
                print(f"  budget of {probe['probe']} set to {measured:,} in {BUDGETS.relative_to(ROOT)}")
                continue
            failure = verdict(probe, measured)
            if failure:
                failures.append(failure)
            # The comparison must be able to fail: a budget 10% under this count is exceeded.
            if verdict(probe, measured, budget=int(measured * 0.9)) is None:
                failures.append(f"{probe['probe']}: a budget 10% under the measured count did not fail the check")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BudgetError, subprocess.CalledProcessError) as error:
        print(f"instruction budgets: {error}", file=sys.stderr)
        sys.exit(2)
