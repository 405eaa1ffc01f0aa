"""Fail when any module of the integration is under the coverage floor (default 95%)."""

import json
from pathlib import Path
import sys


def main() -> int:
    report = json.loads(Path(sys.argv[1]).read_text())
    floor = float(sys.argv[2]) if len(sys.argv) > 2 else 95.0
    low = {
        name: data["summary"]["percent_covered"]
        for name, data in report["files"].items()
        if data["summary"]["percent_covered"] < floor
    }
    for name, percent in sorted(low.items()):
        print(f"coverage {percent:.1f}% < {floor:.0f}%: {name}")
    total = report["totals"]["percent_covered"]
    print(
        f"coverage: {total:.1f}% total, {len(report['files'])} modules, {len(low)} under {floor:.0f}%"
    )
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
