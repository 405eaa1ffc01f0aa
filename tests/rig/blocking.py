"""What the tests' blocking-call detector (blockbuster) lets pm_dvr do on the event loop."""

from __future__ import annotations

from blockbuster import BlockBuster

from custom_components.pm_dvr.core.sync import IN_MEMORY_SQL


def allow_queue_table(bb: BlockBuster) -> BlockBuster:
    """The sync queue's table is SQLite in memory: its statements do no I/O, so they may run
    on the loop. Every other SQLite call there (the queue's file) still fails the test."""
    filename, functions = IN_MEMORY_SQL
    for name, function in bb.functions.items():
        if name.startswith("sqlite3."):
            function.can_block_in(filename, functions)
    return bb
