"""What every benchmark shares: finding ../shared's corpora, and the --corpus and --out options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# ../shared beside the checkout; MIDIBRIDGE_SHARED names it for a checkout that has none beside it (a git worktree).
SHARED = Path(os.environ.get("MIDIBRIDGE_SHARED") or Path(__file__).resolve().parent.parent.parent / "shared")


def corpus_parser(doc: str, *, out: Path) -> argparse.ArgumentParser:
    """The options every corpus benchmark takes: --corpus and --out."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=None, help="dir with manifest.json (default: ../shared's)")
    parser.add_argument("--out", type=Path, default=out, help="where MIDI files and reports go")
    return parser


def corpus_manifest(args) -> Path | None:
    """The corpus's manifest.json, or None (said on stdout) when there is none: benchmarks then skip."""
    candidates = (
        [args.corpus / "manifest.json"]
        if args.corpus
        else [SHARED / "corpus" / "public" / "manifest.json", SHARED / "corpus" / "manifest.json"]
    )
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        print(f"skipped: no corpus manifest at {', '.join(map(str, candidates))}; pass --corpus DIR")
    return found
