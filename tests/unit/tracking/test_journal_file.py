"""A journal write that fails part-way (a full disk) leaves the journal as it was: no half line that the next
record would continue and every reader would then fail on."""

from __future__ import annotations

import builtins
import errno
import io

import optuna
import pytest

from tracking import studies
from tracking.journal_file import WholeLineJournalFile

REAL_OPEN = builtins.open


def opening(path, file_class):
    """builtins.open, but PATH opened for appending is a FILE_CLASS."""

    def fake_open(file, mode="r", *args, **kwargs):
        if str(file) == str(path) and "a" in mode:
            return file_class(file, "a")
        return REAL_OPEN(file, mode, *args, **kwargs)

    return fake_open


class FillsUp(io.FileIO):
    """A file on a disk with ROOM bytes left: a write gets part in, then ENOSPC, as os.write does."""

    room = 0

    def write(self, data):
        if FillsUp.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        part = bytes(data[: FillsUp.room])
        FillsUp.room -= len(part)
        return super().write(part)


class Short(io.FileIO):
    def write(self, data):
        return super().write(bytes(data[:7]))  # a raw write may write fewer bytes than given


def test_a_write_that_meets_a_full_disk_is_cut_back_and_the_journal_stays_readable(tmp_path, monkeypatch):
    path = tmp_path / "optuna-journal.log"
    study = optuna.create_study(study_name="full", storage=studies.open_storage(str(path)))
    study.tell(study.ask(), 0.5)
    before = path.read_bytes()

    FillsUp.room = 20  # part of the next record fits
    monkeypatch.setattr(builtins, "open", opening(path, FillsUp))
    with pytest.raises(OSError) as raised:
        study.ask()
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # the 20 bytes that went in are gone again

    monkeypatch.setattr(builtins, "open", REAL_OPEN)  # room again (the reserve freed)
    again = optuna.load_study(study_name="full", storage=studies.open_storage(str(path)))
    again.tell(again.ask(), 0.75)
    reread = optuna.load_study(study_name="full", storage=studies.open_storage(str(path)))
    assert [t.value for t in reread.trials if t.value is not None] == [0.5, 0.75]


def test_a_record_is_written_whole_when_the_write_goes_in_parts(tmp_path, monkeypatch):
    path = tmp_path / "j.log"
    backend = WholeLineJournalFile(str(path))
    record = {"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}
    monkeypatch.setattr(builtins, "open", opening(path, Short))
    backend.append_logs([record, record])
    monkeypatch.setattr(builtins, "open", REAL_OPEN)
    assert list(backend.read_logs(0)) == [record, record]
