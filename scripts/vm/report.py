#!/usr/bin/env python3
"""Reads the result directory of one VM run (written by guest.sh through the
shared 9p directory) and prints a summary: the kernel's features, the
mechanism each capability got, every step's exit code and time, and the e2e
tests' result lines.

    report.py RESULT_DIR LABEL "cap=kind cap=kind"   (one VM run)
    report.py --probe-json FILE LABEL                 (just a probe's tables)

Exit status 0 only when the guest finished (share/done exists), every step
exited 0, the tests ran, every expected capability got the expected kind of
program, and with SENSOR_KERNEL_PREFER=tracepoint every capability still
loaded (through its tracepoint programs); 1 otherwise.
Writes RESULT_DIR/summary.json.
"""

import json
import os
import re
import sys

STEPS = ("probe", "probe-tracepoint")


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def tables(probe, label):
    lines = [f"  features found by `sensor probe` ({label}, kernel {probe.get('kernel', '?')}):"]
    for f in probe.get("features", []):
        mark = "yes" if f.get("available") else "no "
        lines.append(f"    {f.get('name', '?'):<15} {mark}  {f.get('detail', '')}")
    lines.append("  mechanism per capability:")
    for c in probe.get("capabilities", []):
        lines.append(f"    {c.get('capability', '?'):<13} {c.get('kind', '?'):<10} {c.get('mechanism', '')}")
        if c.get("fallback_reason"):
            lines.append(f"    {'':<13} {'':<10} (preferred variant not used: {c['fallback_reason']})")
    return "\n".join(lines)


def main(argv):
    if len(argv) == 4 and argv[1] == "--probe-json":
        try:
            with open(argv[2]) as f:
                print(f"== {argv[3]} ==\n" + tables(json.load(f), argv[3]))
        except (OSError, ValueError) as e:
            print(f"== {argv[3]} ==\n  no probe: {e}")
        return 0
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    outdir, label, expect = argv[1:]
    share = os.path.join(outdir, "share")
    problems = []
    print(f"== {label} ==")

    if not os.path.exists(os.path.join(share, "done")):
        problems.append("the guest did not finish (no share/done); last console lines:")
        tail = read(os.path.join(outdir, "console.log")).strip().splitlines()[-25:]
        problems.extend("    | " + l for l in tail)

    steps = {}
    for line in read(os.path.join(share, "steps")).splitlines():
        parts = line.split()
        if len(parts) == 3:
            steps[parts[0]] = (int(parts[1]), int(parts[2]))
    for s in STEPS:
        if s not in steps:
            problems.append(f"step {s} did not run")

    probe = None
    try:
        probe = json.loads(read(os.path.join(share, "probe.json")))
    except ValueError as e:
        problems.append(f"probe.json is not JSON: {e}")
    if probe:
        print(tables(probe, "VM"))
        got = {c.get("capability"): c.get("kind") for c in probe.get("capabilities", [])}
        for pair in expect.split():
            cap, _, kind = pair.partition("=")
            if got.get(cap) != kind:
                problems.append(f"capability {cap}: expected {kind}, the probe chose {got.get(cap)}")

    # with SENSOR_KERNEL_PREFER=tracepoint every capability must still load
    try:
        fallback = json.loads(read(os.path.join(share, "probe-tracepoint.json")))
        kinds = {c.get("capability"): c.get("kind") for c in fallback.get("capabilities", [])}
        print("  with SENSOR_KERNEL_PREFER=tracepoint: " + ", ".join(f"{c}={k}" for c, k in kinds.items()))
        for cap, kind in kinds.items():
            if kind not in ("tracepoint", "tp_btf"):
                problems.append(f"SENSOR_KERNEL_PREFER=tracepoint: {cap} got {kind}")
        for pair in expect.split():
            cap = pair.partition("=")[0]
            if kinds.get(cap) != "tracepoint":
                problems.append(f"SENSOR_KERNEL_PREFER=tracepoint: {cap} did not fall back ({kinds.get(cap)})")
    except ValueError as e:
        problems.append(f"probe-tracepoint.json is not JSON: {e}")

    print("  steps (exit code, seconds):")
    for name, (rc, secs) in steps.items():
        print(f"    {name:<28} rc={rc:<4} {secs:>5} s")
        if rc != 0:
            problems.append(f"step {name}: exit code {rc}")
        if name.startswith("test:"):
            log = read(os.path.join(share, f"test-{name[5:]}.log"))
            for m in re.finditer(r"^test result: .*$", log, re.M):
                print(f"      {m.group(0)}")
            if rc != 0:
                fails = re.findall(r"^---- (\S+) stdout ----$", log, re.M)
                if fails:
                    print("      failed: " + ", ".join(fails))
                print("      log: " + os.path.join(share, f"test-{name[5:]}.log"))
    if not any(n.startswith("test:") for n in steps) and os.path.exists(os.path.join(share, "done")):
        problems.append("no e2e test binary ran")

    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump({"label": label, "steps": steps, "probe": probe, "problems": problems}, f, indent=2)
    if problems:
        print("  FAILED:\n    - " + "\n    - ".join(problems))
        return 1
    print("  OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
