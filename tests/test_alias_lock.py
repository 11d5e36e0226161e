"""The alias lock beside a local sqlite store: opened without following a symbolic link (one
planted in a store folder others can write would have ptv2 create or touch the file it names)."""
from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from components.registry.alias_lock import alias_lock
from ptv2_core.errors import Ptv2Error


def test_a_symlinked_lock_is_refused_and_its_target_is_not_made(tmp_path):
    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    store.mkdir()
    elsewhere.mkdir()
    target = elsewhere / "planted"
    lock = store / ".ptv2-trec.alias.lock"
    lock.symlink_to(target)
    with pytest.raises(Ptv2Error) as e:
        with alias_lock(f"sqlite:///{store / 'mlflow.db'}", "ptv2-trec"):
            pytest.fail("the block ran under a symlinked lock")
    assert str(e.value) == (f"the alias lock {lock} is a symbolic link, which ptv2 never makes: remove it (someone "
                            "who can write the store's folder may have planted it) and run again")
    assert not target.exists() and lock.is_symlink()


@pytest.mark.timeout(60)  # before: the open waited for a reader for ever
def test_a_lock_that_is_no_plain_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / ".m.alias.lock")  # opening a FIFO to read would wait for a writer for ever
    with pytest.raises(Ptv2Error, match=r"alias lock .*\.m\.alias\.lock is not a plain file: remove it"):
        with alias_lock(f"sqlite:///{tmp_path / 'mlflow.db'}", "m"):
            pass


def test_the_lock_is_made_a_plain_file_and_still_serialises(tmp_path):
    uri, order = f"sqlite:///{tmp_path / 'mlflow.db'}", []

    def hold(tag: str) -> None:
        with alias_lock(uri, "m"):
            order.append(f"{tag} in")
            time.sleep(0.3)
            order.append(f"{tag} out")

    first = threading.Thread(target=hold, args=("a",))
    first.start()
    time.sleep(0.1)
    hold("b")
    first.join()
    assert order == ["a in", "a out", "b in", "b out"]
    assert stat.S_ISREG((tmp_path / ".m.alias.lock").lstat().st_mode)
