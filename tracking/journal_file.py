"""Optuna's journal file, without the half line a failed write leaves.

Optuna appends a study's records to its journal with one buffered write. When the disk fills up,
part of a line reaches the file; the next record, appended once some room is freed (redes frees
its disk reserve to record how the study ended), then continues that half line, and every later
reader of the journal fails on it with a `JSONDecodeError` (seen in test_disk_full: a traceback
instead of the one line, and a journal the next command calls damaged). Here a write that fails
part-way is cut back to where it began, under the same lock, before the error goes on.
"""

from __future__ import annotations

import json
import os
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalFileSymlinkLock


class WholeLineJournalFile(JournalFileBackend):
    """A journal file whose every write lands whole or not at all."""

    def __init__(self, file_path: str, lock_obj: JournalFileSymlinkLock | JournalFileOpenLock | None = None) -> None:
        self._whole_line_lock = lock_obj or JournalFileSymlinkLock(file_path)
        self._whole_line_path = file_path
        super().__init__(file_path, lock_obj=self._whole_line_lock)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode("utf-8")
        self._whole_line_lock.acquire()
        try:
            with open(self._whole_line_path, "ab", buffering=0) as journal:
                start = os.lseek(journal.fileno(), 0, os.SEEK_END)
                try:
                    written = 0
                    while written < len(data):  # a raw write may write part of it and say how much
                        written += journal.write(memoryview(data)[written:])
                    os.fsync(journal.fileno())
                except BaseException:
                    os.ftruncate(journal.fileno(), start)  # shrinking needs no room on a full disk
                    raise
        finally:
            self._whole_line_lock.release()
