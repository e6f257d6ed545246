#!/usr/bin/env bash
# Builds the book (docs/book/book.toml; pages in docs/book/, table of contents docs/SUMMARY.md)
# into target/book/ with mdbook pinned below, which it first installs from crates.io into
# target/tools/ (once; later runs reuse it). Open target/book/index.html to read it.
# tests/book.rs checks the pages themselves (table of contents, includes, links).
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.5.4
tools="$PWD/target/tools"
mdbook="$tools/bin/mdbook"
if [[ "$("$mdbook" --version 2>/dev/null)" != "mdbook v$version" ]]; then
  echo "installing mdbook $version into $tools (once)"
  # --debug: compiled unoptimised (a few times faster to build); it renders this book in seconds.
  cargo install mdbook --version "=$version" --locked --no-default-features --features search \
    --debug --root "$tools" --quiet
fi
"$mdbook" build docs/book
echo "book: $PWD/target/book/index.html"
