#!/usr/bin/env python3
"""Checks each workspace member's `rust-version` against its locked dependency tree.

For every member, walks the resolved graph for this host (`cargo metadata --filter-platform`)
from the member through its normal and build dependencies (and, for dev-dependencies, one
level of the member's own), and reports the highest `rust-version` any locked package in that
tree declares. Fails when a member claims less than what its tree needs (the claim would be
false), or, with --exact, claims more than it needs.
Usage: python3 .ci/msrv.py [--exact]
"""
import json
import subprocess
import sys


def ver(v):
    return tuple(int(x) for x in v.split(".")) + (0,) * (3 - len(v.split(".")))


def main():
    exact = "--exact" in sys.argv
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    triple = next(l.split(": ")[1] for l in host.splitlines() if l.startswith("host: "))
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", triple],
        capture_output=True, text=True, check=True).stdout)
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    members = set(meta["workspace_members"])

    def deps(node_id, kinds):
        for d in nodes[node_id]["deps"]:
            if any(k["kind"] in kinds for k in d["dep_kinds"]):
                yield d["pkg"]

    failed = False
    for mid in sorted(members, key=lambda i: pkgs[i]["name"]):
        p = pkgs[mid]
        # Everything needed to build and test the member: its dev-dependencies, then the
        # normal and build dependencies of everything reached.
        seen, todo = set(), list(deps(mid, {None, "build", "dev"}))
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            todo.extend(deps(i, {None, "build"}))
        need, who = (0,), "-"
        for i in seen - members:  # members are checked on their own
            rv = pkgs[i].get("rust_version")
            if rv and ver(rv) > need:
                need, who = ver(rv), f'{pkgs[i]["name"]} {pkgs[i]["version"]}'
        claim = p.get("rust_version")
        need_s = ".".join(map(str, need[:2]))
        status = "ok"
        if claim is None:
            status, failed = "MISSING", True
        elif ver(claim) < need:
            status, failed = "TOO LOW", True
        elif exact and ver(claim) > need:
            status, failed = "HIGHER THAN NEEDED", True
        print(f'{p["name"]:14} rust-version {claim or "-":6} needs {need_s:6} (highest: {who}) {status}')
    sys.exit(1 if failed else 0)


main()
