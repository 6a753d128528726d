#!/usr/bin/env python3
"""Lists public declarations in the given Swift files that have no `///` doc comment.

A declaration counts as documented when the nearest line above it, skipping attribute lines (`@inlinable`,
`@discardableResult`, ...), is a `///` comment. Exit status 1 when anything is undocumented.
"""
import re
import sys

DECL = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:public|open)\s")
ATTRIBUTE = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s*)+$")

missing = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for index, line in enumerate(lines):
        if not DECL.match(line) or line.strip().startswith("//"):
            continue
        above = index - 1
        while above >= 0 and ATTRIBUTE.match(lines[above]):
            above -= 1
        if above < 0 or not lines[above].strip().startswith("///"):
            missing.append(f"{path}:{index + 1}: {line.strip()}")

for entry in missing:
    print(entry)
if missing:
    print(f"{len(missing)} public declarations without a /// doc comment", file=sys.stderr)
    sys.exit(1)
