"""Freed memory is kept for reuse (issue 18): measured as page faults in a fresh process."""

import json
import os
import subprocess
import sys

import pytest

from ncvsd_inverse.allocator import _glibc_mallopt

PROBE = """
import json, resource, sys
import torch
import ncvsd_inverse.api  # what a command has imported when it calls retain_freed_memory
from ncvsd_inverse.allocator import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else False
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(64 * 2**20 // 4)  # 64 MB, written: every page touched
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults}))
"""


def probe(mode: str, **env) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                            env={**os.environ, **env})
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.skipif(_glibc_mallopt() is None, reason="mallopt is glibc's")
def test_retained_memory_is_reused_without_page_faults():
    pages = 64 * 2**20 // 4096
    system, retained = probe("system"), probe("retain")
    assert not system["applied"] and retained["applied"]
    # the system's malloc maps the block anew each time; the retained heap, after at most two
    # blocks' growth, serves it from pages it already has
    assert min(system["faults"][3:]) > pages // 2
    assert max(retained["faults"][3:]) < pages // 20


def test_ncvsd_malloc_system_leaves_the_allocator_alone():
    assert probe("retain", NCVSD_MALLOC="system")["applied"] is False
