"""A `bench.compare` result as the Markdown tables of docs/performance.md.

python -m bench.report bench/results/compare-latest.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_HEADER = (
    "| workload | conn. | tierserve req/s | p50 / p99 ms | IIPImage req/s | p50 / p99 ms | ratio |"
    " bytes ts / IIP | CPU ms/req ts / IIP | floor ms | ts CPU / floor |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def markdown(results: dict[str, Any]) -> str:
    """The throughput table, one row per workload and concurrency, then workload 5."""
    lines = [_HEADER]
    for key, workload in results["workloads"].items():
        for connections, row in workload.get("by_connections", {}).items():
            lines.append(_row(key, connections, row, workload["floor"]))
    full = results["workloads"].get("5-whole-full-res")
    if full:
        lines += ["", _full_resolution(full)]
    return "\n".join(lines)


def _row(key: str, connections: str, row: dict[str, Any], floor: dict[str, float] | None) -> str:
    ts, iip = row["tierserve"], row.get("iipimage")
    cells = [
        key,
        connections,
        f"{ts['rps']:,.1f}",
        f"{ts['p50_ms']:.1f} / {ts['p99_ms']:.1f}",
        f"{iip['rps']:,.1f}" if iip else "-",
        f"{iip['p50_ms']:.1f} / {iip['p99_ms']:.1f}" if iip else "-",
        f"**{row['ratio']:.2f}**" if iip else "-",
        _both(ts, iip, "bytes", ","),
        _both(ts, iip, "cpu_ms_per_request", ".2f"),
        f"{floor['cpu_ms']:.2f}" if floor else "-",
        f"{ts['cpu_over_floor']:.2f}" if floor else "-",
    ]
    return "| " + " | ".join(cells) + " |"


def _both(ts: dict[str, Any], iip: dict[str, Any] | None, field: str, spec: str) -> str:
    """`field` of tierserve, and of IIPImage after a slash when it ran the workload."""
    return f"{ts[field]:{spec}} / {iip[field]:{spec}}" if iip else f"{ts[field]:{spec}}"


def _full_resolution(full: dict[str, Any]) -> str:
    lines = [
        f"{full['title']}; floor (decode + encode, one thread) {full['floor']['cpu_ms']:,.0f} ms:",
        "",
        "| run | server | first byte ms | total ms | total / floor | bytes | worker RSS before MiB | peak MiB |"
        " growth MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for when, moment in (("fresh", "fresh workers"), ("after_load", "after the other workloads")):
        for name, label in (("tierserve", "tierserve"), ("iipimage", "IIPImage")):
            row = full[when][name]
            lines.append(
                f"| {moment} | {label} | {row['first_byte_ms']:,.0f} | {row['total_ms']:,.0f} |"
                f" {row['total_over_floor']:.2f} | {row['bytes']:,} | {row['rss_before_mib']:.0f} |"
                f" {row['peak_worker_rss_mib']:.0f} | {row['peak_growth_mib']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="a bench/results/compare-*.json file")
    print(markdown(json.loads(parser.parse_args().result.read_text())))


if __name__ == "__main__":
    main()
