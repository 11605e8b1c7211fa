"""The allocator tuning the CLI applies: effective where glibc is, inert elsewhere, opt-out by env."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": "", **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


PROBE = """
import resource
from neurohebb.memory import retain_freed_memory
applied = retain_freed_memory() if {tune} else False
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    b = bytearray(64 << 20)  # 64 MiB: above glibc's default mmap threshold
    del b
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_large_blocks_are_reused_instead_of_faulted_in_again():
    applied, tuned = _run(PROBE.format(tune=True), {}).split()
    _, plain = _run(PROBE.format(tune=False), {}).split()
    assert applied == "True"
    # untuned: every 64 MiB block is a fresh mapping (16k pages each, 20 times); tuned: reused
    assert int(plain) > 20 * 10_000
    assert int(tuned) < int(plain) / 5


def test_environment_opt_out_leaves_the_allocator_alone():
    out = _run("from neurohebb.memory import retain_freed_memory; print(retain_freed_memory())",
               {"NEUROHEBB_SYSTEM_MALLOC": "1"})
    assert out == "False"


RELEASE = """
import resource
from neurohebb.memory import release_free_memory, retain_freed_memory
assert retain_freed_memory()
blocks = [bytearray(64 << 20) for _ in range(3)]  # 192 MiB: under the trim threshold, so kept
del blocks
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4
held = rss_kib()
release_free_memory()
print(held, rss_kib())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_release_hands_the_retained_blocks_back():
    held, released = map(int, _run(RELEASE, {}).split())
    assert held - released > 150 * 1024  # most of the 192 MiB left the resident set
