#!/usr/bin/env python3
"""The layering rules of engine/src (docs/architecture.md, "Layers"), checked.

Each top-level module may use only the modules it is allowed to (`crate::X`
paths outside comments and `#[cfg(test)]` code). Known violations are listed in DEBT: they
are allowed for now, but the list may only shrink. A new violation fails, and
so does a DEBT entry that no longer occurs (remove it, so it cannot come
back unnoticed). Inside the reactor only its I/O backend (shard/reactor/io.rs)
may name `crate::sys` or `libc` (SEAMS).

    python3 scripts/check-layers.py        # exit 1 on a violation or stale debt
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine", "src")

# Lowest first: a module may use the ones listed for it, nothing else.
ALLOWED = {
    "sys": set(),
    "ws": {"sys"},
    "http": set(),
    "protocol": {"ws"},
    "auth": {"protocol", "sys"},
    "config": {"auth", "shard"},
    # The protocol too: a connection's framing may transcode (protobuf).
    "shard": {"sys", "ws", "protocol", "http"},
    "hub": {"shard", "protocol", "config", "sys"},
    "broker": {"hub", "protocol", "config", "sys"},
    "client": {"hub", "broker", "protocol", "config", "auth", "shard", "ws", "sys", "proxy"},
    # HTTP calls to application backends: the backend thread answers shards
    # through the hub's calls.
    "proxy": {"hub", "broker", "config", "protocol", "shard", "ws", "sys", "http"},
    "api": {"hub", "broker", "protocol", "config", "shard", "sys", "http", "proxy"},
    # The client protocol over HTTP: streams, SSE, emulation.
    "transport": {"client", "hub", "protocol", "config", "shard", "sys", "http", "ws"},
    "echo": {"shard", "ws"},
    # One shard of a messaging node: client and api side by side.
    "node": {"api", "broker", "client", "hub", "shard", "ws", "transport", "proxy"},
    # The wiring: builds a node from everything.
    "cli": {"api", "broker", "client", "config", "echo", "hub", "node", "shard", "proxy"},
    "lib": set(),
    "main": set(),
}

# (from, to): why it is still there. Issue 13 removes these.
DEBT = {}


def imports():
    found = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, SRC)
            module = rel.split(os.sep)[0].removesuffix(".rs")
            text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
            # Comments name modules without using them.
            text = re.sub(r"(?m)^\s*//.*$", "", text)
            for m in re.finditer(r"\bcrate::([a-z_]+)", text):
                target = m.group(1)
                if target != module and target != "VERSION":
                    found.setdefault((module, target), set()).add(rel)
    return found


# Seams inside a module: (directory under engine/src, the one file there that
# may name these paths, the paths). The reactor reaches its sockets only
# through its I/O backend, the part an io_uring data path replaces.
SEAMS = [
    ("shard/reactor", "io.rs", ("crate::sys", "libc::")),
]


def seam_violations():
    bad = []
    for folder, owner, paths in SEAMS:
        root = os.path.join(SRC, folder)
        for f in sorted(os.listdir(root)):
            if not f.endswith(".rs") or f == owner:
                continue
            text = open(os.path.join(root, f), encoding="utf-8").read().split("#[cfg(test)]")[0]
            text = re.sub(r"(?m)^\s*//.*$", "", text)
            for p in paths:
                if p in text:
                    bad.append(f"{folder}/{f} uses {p}: only {folder}/{owner} may")
    return bad


# Sibling files known to import each other (allowed while listed; the list
# may only shrink). Session 9 ended the last five: shard/reactor.rs and
# shard/task.rs, ws/close.rs and ws/error.rs, proxy/backend.rs and
# proxy/plain.rs, client/proxy.rs and client/session.rs, hub/mesh.rs and
# hub/seam.rs.
SIBLING_DEBT = set()


def sibling_cycles():
    """Import cycles between files of one folder (not counting mod.rs, the
    folder's own root, which its files may use): `use super::x` or
    `crate::path::x` naming a sibling file x."""
    bad = []
    found = set()
    for root, _, files in os.walk(SRC):
        rel_dir = os.path.relpath(root, SRC)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "::") + "::"
        names = {f[:-3] for f in files if f.endswith(".rs") and f != "mod.rs"}
        names |= {d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "mod.rs"))}
        if rel_dir == ".":
            continue  # top-level modules: the layer rules above
        edges = {}
        for f in files:
            if not f.endswith(".rs") or f == "mod.rs":
                continue
            src = f[:-3]
            text = open(os.path.join(root, f), encoding="utf-8").read().split("#[cfg(test)]")[0]
            text = re.sub(r"(?m)^\s*//.*$", "", text)
            targets = set(re.findall(r"\bsuper::([a-z_]+)", text))
            targets |= set(re.findall(r"\bcrate::" + re.escape(prefix) + r"([a-z_]+)", text))
            # `use super::{a, b}` groups.
            for group in re.findall(r"\bsuper::\{([^}]*)\}", text):
                targets |= set(re.findall(r"(?:^|[,\s])([a-z_]+)(?:::|[,\s]|$)", group))
            edges[src] = {t for t in targets if t in names and t != src}
        for a, outs in edges.items():
            for b in outs:
                if a < b and a in edges.get(b, set()):
                    pair = (f"{rel_dir}/{a}.rs", f"{rel_dir}/{b}.rs")
                    found.add(pair)
                    if pair not in SIBLING_DEBT:
                        bad.append(f"{pair[0]} and {pair[1]} import each other")
    for pair in sorted(SIBLING_DEBT - found):
        bad.append(f"{pair[0]} and {pair[1]} no longer import each other: remove them from SIBLING_DEBT")
    return bad


def main():
    found = imports()
    bad = seam_violations() + sibling_cycles()
    for (src, dst), files in sorted(found.items()):
        if src not in ALLOWED:
            bad.append(f"{src}: a new top-level module; give it a place in ALLOWED")
        elif dst not in ALLOWED[src] and (src, dst) not in DEBT:
            bad.append(f"{src} -> {dst} is not allowed ({', '.join(sorted(files))})")
    for (src, dst), why in sorted(DEBT.items()):
        if (src, dst) not in found:
            bad.append(f"{src} -> {dst} is gone: remove it from DEBT ({why})")
    allowed_edges = sum(1 for k in found if k[1] in ALLOWED.get(k[0], set()))
    print(f"layers: {len(found)} module dependencies, {allowed_edges} allowed, {len(DEBT)} known debt")
    for b in bad:
        print("layers:", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
