#!/usr/bin/env python3
"""Fails when an #include runs against the layer order of docs/layers.md.

Usage: layering_check.py SOURCE_ROOT. Prints each offending include as
FILE:LINE: FOLDER includes LAYER (allowed: ...) and exits 1; exits 0 when
every project include of every tracked source file is allowed.
"""
import os
import re
import sys

ROW = re.compile(r"^\|\s*([a-z]+)\s*\|\s*([^|]*)\|")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
TEST_HELPER = "tests/testing.h"


def read_layers(root):
    """{folder: set of folders it may include, or None for anything}."""
    path = os.path.join(root, "docs", "layers.md")
    layers = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = ROW.match(line)
            if not m or m.group(1) == "folder":
                continue
            allowed = m.group(2).strip()
            if allowed == "(anything)":
                layers[m.group(1)] = None
            elif allowed == "(nothing)":
                layers[m.group(1)] = set()
            else:
                layers[m.group(1)] = set(allowed.split())
    if not layers:
        sys.exit(f"{path}: no layer table found")
    return layers


def is_test_file(name):
    base = os.path.basename(name)
    return base.endswith("_test.cc") or base.startswith("test_")


def check(root):
    layers = read_layers(root)
    errors = []
    checked = 0
    for folder, allowed in sorted(layers.items()):
        top = os.path.join(root, folder)
        if allowed is None or not os.path.isdir(top):
            continue
        for dirpath, dirnames, files in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in sorted(files):
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        layer = target.split("/", 1)[0]
                        if "/" not in target or layer not in layers:
                            continue  # a system or third-party header
                        checked += 1
                        if layer == folder or layer in allowed:
                            continue
                        if target == TEST_HELPER and is_test_file(rel):
                            continue
                        errors.append(
                            f"{rel}:{number}: {folder} includes {target} "
                            f"(allowed: {' '.join(sorted(allowed)) or 'none'}"
                            f"; see docs/layers.md)")
    for e in errors:
        print(e)
    print(f"layering_check: {checked} project includes, "
          f"{len(errors)} against the layer order")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else "."))
