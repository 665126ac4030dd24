"""`python -m raftlog.protocol.generator [--schemas DIR] [--out DIR]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from raftlog.protocol.generator import DEFAULT_OUTPUT_DIR, default_schema_dir, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schemas", type=Path, default=None, help="Kafka message JSON folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT_DIR, help="output package")
    args = parser.parse_args()
    written = generate(args.schemas or default_schema_dir(), args.out)
    print(f"wrote {len(written)} files to {args.out}")


if __name__ == "__main__":
    main()
