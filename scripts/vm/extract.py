#!/usr/bin/env python3
"""Reads a VM serial-console log written by init.sh, writes each marked
section to OUTDIR/<name>, and prints a summary: which features `sensor probe`
found and whether the smoke run produced exec/open events.

    extract.py CONSOLE_LOG OUTDIR LABEL

Exit status: 0 when every marker is present, every step exited 0 and the smoke
run saw the exec of /bin/true and the open of the touched file; 1 otherwise.
Also usable on a host probe: extract.py --probe-json FILE LABEL prints just the
feature table for that file.
"""

import json
import os
import re
import sys

BEGIN = re.compile(r"@@SENSOR-VM-BEGIN (\S+)@@")
END = re.compile(r"@@SENSOR-VM-END (\S+)@@")
STEP = re.compile(r"@@SENSOR-VM-STEP (\S+) rc=(-?\d+)@@")
SMOKE_FILE = "/tmp/sensor-vm-smoke-touched"
SMOKE_EXEC = "/bin/true"


def parse(text):
    sections, steps, markers = {}, {}, set()
    cur, buf = None, []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if "@@SENSOR-VM-START@@" in line:
            markers.add("START")
        if "@@SENSOR-VM-DONE@@" in line:
            markers.add("DONE")
        m = STEP.search(line)
        if m and cur is None:
            steps[m.group(1)] = int(m.group(2))
            continue
        m = BEGIN.search(line)
        if m and cur is None:
            cur, buf = m.group(1), []
            continue
        m = END.search(line)
        if m and cur == m.group(1):
            # init.sh adds a newline after every file: drop that one
            if buf and buf[-1] == "":
                buf.pop()
            sections[cur] = "\n".join(buf) + ("\n" if buf else "")
            cur = None
            continue
        if cur is not None:
            buf.append(line)
    return sections, steps, markers, cur


def feature_table(probe, label):
    lines = [f"  features found by `sensor probe` ({label}, kernel {probe.get('kernel', '?')}):"]
    for f in probe.get("features", []):
        mark = "yes" if f.get("available") else "no "
        lines.append(f"    {f.get('name', '?'):<15} {mark}  {f.get('detail', '')}")
    caps = probe.get("capabilities", [])
    if caps:
        lines.append("  mechanism per capability:")
        for c in caps:
            lines.append(f"    {c.get('capability', '?'):<10} {c.get('mechanism', '')}")
    return "\n".join(lines)


def summarize_events(text):
    counts, exec_seen, open_seen, bad = {}, False, False, 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            bad += 1
            continue
        t = ev.get("type", "?")
        counts[t] = counts.get(t, 0) + 1
        if t == "exec" and (ev.get("exec") or {}).get("filename") == SMOKE_EXEC:
            exec_seen = True
        if t == "open" and (ev.get("file") or {}).get("path") == SMOKE_FILE:
            open_seen = True
    return counts, exec_seen, open_seen, bad


def main(argv):
    if len(argv) == 4 and argv[1] == "--probe-json":
        with open(argv[2]) as f:
            print(feature_table(json.load(f), argv[3]))
        return 0
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    log, outdir, label = argv[1:]
    with open(log, errors="replace") as f:
        text = f.read()
    sections, steps, markers, open_section = parse(text)
    os.makedirs(outdir, exist_ok=True)
    for name, body in sections.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(body)

    problems = []
    for m in ("START", "DONE"):
        if m not in markers:
            problems.append(f"marker @@SENSOR-VM-{m}@@ missing from the console")
    if open_section:
        problems.append(f"section {open_section} was never closed (guest died while printing it?)")
    for s in ("probe", "run"):
        if s not in steps:
            problems.append(f"step {s}: no exit code on the console")
        elif steps[s] != 0:
            problems.append(f"step {s}: exit code {steps[s]}")

    print(f"== {label} ==")
    probe = None
    if "probe.json" in sections:
        try:
            probe = json.loads(sections["probe.json"])
        except ValueError as e:
            problems.append(f"probe.json is not JSON: {e}")
    if probe:
        print(feature_table(probe, "VM"))
    err = sections.get("probe.stderr", "").strip()
    if err:
        print("  probe stderr:\n    " + err.replace("\n", "\n    "))

    counts, exec_seen, open_seen, bad = summarize_events(sections.get("events.jsonl", ""))
    print("  smoke run (sensor run --no-audit --no-policy --duration-secs 5):")
    print(f"    exit code: {steps.get('run', 'missing')}; {sections.get('run.info', '').strip()}")
    print(f"    events by type: {json.dumps(counts, sort_keys=True) if counts else 'none'}")
    print(f"    exec event for {SMOKE_EXEC}: {'yes' if exec_seen else 'NO'}")
    print(f"    open event for {SMOKE_FILE}: {'yes' if open_seen else 'NO'}")
    if bad:
        problems.append(f"{bad} lines of events.jsonl are not JSON")
    if not exec_seen:
        problems.append(f"smoke run: no exec event for {SMOKE_EXEC}")
    if not open_seen:
        problems.append(f"smoke run: no open event for {SMOKE_FILE}")
    run_err = sections.get("run.stderr", "").strip()
    if run_err:
        print("  sensor run stderr:\n    " + run_err.replace("\n", "\n    "))

    summary = {
        "label": label,
        "markers": sorted(markers),
        "steps": steps,
        "probe": probe,
        "events_by_type": counts,
        "exec_event": exec_seen,
        "open_event": open_seen,
        "problems": problems,
    }
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if problems:
        print("  FAILED:\n    - " + "\n    - ".join(problems))
        return 1
    print("  OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
