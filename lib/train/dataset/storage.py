"""Read-only file stores, so every training dataset reads a folder or an LMDB built from that folder alike.

A store addresses files by their POSIX path relative to its root (``"airplane/airplane-10/groundtruth.txt"``;
``""`` is the root itself):

* :class:`DirectoryStore` reads a folder on disk;
* :class:`LmdbStore` reads an LMDB environment (a folder holding ``data.mdb``) written by :func:`build_lmdb`: one
  key per regular file of the source folder, the key being its relative POSIX path (UTF-8) and the value its raw
  bytes. LMDB holds files only, so folders exist there exactly when they contain a file.

An :class:`LmdbStore` opens its environment read-only (``lock=False``, ``readahead=False``) on first use in each
process (again after a fork) and holds no handle itself, so datasets holding one can be sent to DataLoader worker
processes (spawned or forked).
"""
from __future__ import annotations

import logging
import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable, Iterator

import lmdb
from tqdm import tqdm

from lib.train.dataset.base import TrainDatasetError

logger = logging.getLogger(__name__)

_PAGE = 4096
#: Commit the write transaction after this many files or bytes, whichever comes first.
_BATCH_FILES = 2000
_BATCH_BYTES = 256 << 20
_MAX_KEY_BYTES = 511  # LMDB's default maximum key size


def _clean(rel: str) -> str:
    return rel.strip("/")


class FileStore(ABC):
    """Read-only access to files by relative POSIX path."""

    @abstractmethod
    def read_bytes(self, rel: str) -> bytes:
        """The content of file ``rel``; raises :class:`FileNotFoundError` when it is absent."""

    def read_text(self, rel: str) -> str:
        """The content of file ``rel`` decoded as UTF-8 (undecodable bytes replaced)."""
        return self.read_bytes(rel).decode("utf-8", errors="replace")

    @abstractmethod
    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is a file or a folder of the store (``""``: whether the store itself exists)."""

    @abstractmethod
    def list_dir(self, rel: str) -> list[str]:
        """The sorted names of the immediate children (files and folders) of folder ``rel``.

        Raises :class:`FileNotFoundError` when ``rel`` is not a folder of the store."""

    @abstractmethod
    def describe(self) -> str:
        """The store for messages, e.g. ``"folder /data/lasot"`` or ``"LMDB /data/lasot_lmdb"``."""

    @abstractmethod
    def locate(self, rel: str) -> str:
        """Where file ``rel`` lives, for messages (a path, or ``<lmdb>::<key>``)."""


class DirectoryStore(FileStore):
    """Files of the folder ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.root)!r})"

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / _clean(rel)).read_bytes()

    def exists(self, rel: str) -> bool:
        return (self.root / _clean(rel)).exists()

    def list_dir(self, rel: str) -> list[str]:
        folder = self.root / _clean(rel)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder")
        return sorted(os.listdir(folder))

    def describe(self) -> str:
        return f"folder {self.root}"

    def locate(self, rel: str) -> str:
        return str(self.root / _clean(rel))


# Open read-only environments of this process by path: LMDB refuses to open one environment twice in a process,
# and several datasets may read the same LMDB (GOT10K_vottrain and GOT10K_votval).
_environments: dict[Path, lmdb.Environment] = {}
_environments_pid = os.getpid()


def _environment(path: Path) -> lmdb.Environment:
    """The read-only environment at ``path``, opened once per process."""
    global _environments_pid
    if _environments_pid != os.getpid():  # forked: the inherited handles belong to the parent
        for env in _environments.values():
            env.close()
        _environments.clear()
        _environments_pid = os.getpid()
    key = path.resolve()
    env = _environments.get(key)
    if env is None:
        if not (key / "data.mdb").is_file():
            raise TrainDatasetError(f"no LMDB at {path} (no data.mdb); build it with tracking/build_lmdb.py")
        try:
            env = lmdb.open(str(key), subdir=True, readonly=True, lock=False, readahead=False)
        except lmdb.Error as err:
            raise TrainDatasetError(f"cannot open the LMDB {path}: {err}") from err
        _environments[key] = env
    return env


def _close_environment(path: Path) -> None:
    env = _environments.pop(path.resolve(), None)
    if env is not None:
        env.close()


class LmdbStore(FileStore):
    """Files stored in the LMDB environment (folder) ``path`` by :func:`build_lmdb`.

    The environment is opened on first use in each process and shared by the stores of that path; the store
    itself holds only the path, so it pickles into DataLoader workers as is.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"LmdbStore({str(self.path)!r})"

    def _txn(self) -> lmdb.Transaction:
        return _environment(self.path).begin()

    def read_bytes(self, rel: str) -> bytes:
        with self._txn() as txn:
            value = txn.get(_clean(rel).encode("utf-8"))
        if value is None:
            raise FileNotFoundError(f"{self.locate(rel)}: no such key")
        return value

    def exists(self, rel: str) -> bool:
        rel = _clean(rel)
        if not rel:
            return (self.path / "data.mdb").is_file()
        key = rel.encode("utf-8")
        with self._txn() as txn:
            if txn.get(key) is not None:
                return True
            cursor = txn.cursor()
            return cursor.set_range(key + b"/") and cursor.key().startswith(key + b"/")

    def list_dir(self, rel: str) -> list[str]:
        rel = _clean(rel)
        prefix = (rel + "/").encode("utf-8") if rel else b""
        children: list[str] = []
        with self._txn() as txn:
            cursor = txn.cursor()
            found = cursor.set_range(prefix)
            while found:
                key = cursor.key()
                if not key.startswith(prefix):
                    break
                child, slash, _ = key[len(prefix):].partition(b"/")
                children.append(child.decode("utf-8"))
                # Skip the whole sub-tree of a folder: every "<child>/..." key sorts before "<child>0".
                found = cursor.set_range(prefix + child + b"0") if slash else cursor.next()
        if not children and rel:
            raise FileNotFoundError(f"{self.locate(rel)}: no such folder")
        return sorted(children)  # key order is not name order ("a-1/x" < "a.txt" < "a/x")

    def describe(self) -> str:
        return f"LMDB {self.path}"

    def locate(self, rel: str) -> str:
        return f"{self.path}::{_clean(rel)}"


def as_store(root: FileStore | str | os.PathLike) -> FileStore:
    """``root`` itself when it is a store, else a :class:`DirectoryStore` of that folder."""
    return root if isinstance(root, FileStore) else DirectoryStore(root)


def _collect_files(src_root: Path, include: Iterable[str] | None) -> list[tuple[str, Path, int]]:
    """``(key, path, size)`` of every regular file under ``src_root`` (or under its ``include`` entries)."""
    tops = [src_root] if include is None else [src_root / _clean(rel) for rel in include]
    files: list[tuple[str, Path, int]] = []
    for top in tops:
        if top.is_file():
            walked: Iterable[tuple[str, list[str], list[str]]] = [(str(top.parent), [], [top.name])]
        elif top.is_dir():
            walked = os.walk(top, followlinks=True)  # dataset chunks are often symlinked in
        else:
            raise TrainDatasetError(f"cannot build an LMDB: {top} does not exist")
        for folder, _, names in walked:
            for name in names:
                path = Path(folder) / name
                if path.is_file():
                    files.append((path.relative_to(src_root).as_posix(), path, path.stat().st_size))
    return files


def _batches(entries: list[tuple[bytes, Path, int]]) -> Iterator[list[tuple[bytes, Path, int]]]:
    """``entries`` cut into write transactions of at most ``_BATCH_FILES`` files / about ``_BATCH_BYTES``."""
    batch: list[tuple[bytes, Path, int]] = []
    batch_bytes = 0
    for entry in entries:
        batch.append(entry)
        batch_bytes += entry[2]
        if len(batch) >= _BATCH_FILES or batch_bytes >= _BATCH_BYTES:
            yield batch
            batch, batch_bytes = [], 0
    if batch:
        yield batch


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def build_lmdb(src_root: str | os.PathLike, dst_path: str | os.PathLike, *, include: Iterable[str] | None = None,
               overwrite: bool = False, progress: bool = True) -> Path:
    """Store every regular file under ``src_root`` in a new LMDB environment (folder) ``dst_path``.

    Keys are the files' POSIX paths relative to ``src_root``, values their raw bytes. ``include`` restricts the
    build to these relative files / folders (keys stay relative to ``src_root``). The environment is written to a
    temporary sibling folder and renamed into place once complete, so ``dst_path`` is either absent or whole. An
    existing ``dst_path`` is an error (:class:`FileExistsError`) unless ``overwrite``. Returns ``dst_path``.
    """
    src_root, dst_path = Path(src_root).expanduser().resolve(), Path(dst_path).expanduser().resolve()
    if not src_root.is_dir():
        raise TrainDatasetError(f"cannot build an LMDB: {src_root} is not a folder")
    if dst_path == src_root or src_root in dst_path.parents:
        raise TrainDatasetError(f"cannot build an LMDB inside its own source folder: {dst_path} is in {src_root}")
    if dst_path.exists() and not overwrite:
        raise FileExistsError(f"{dst_path} already exists; pass overwrite=True (--overwrite) to replace it")
    files = _collect_files(src_root, include)
    if not files:
        raise TrainDatasetError(f"cannot build an LMDB: no files under {src_root}")
    # Overlapping ``include`` entries list a file twice; LMDB wants each key once, in sorted order.
    entries = sorted({key.encode("utf-8"): (key.encode("utf-8"), path, size) for key, path, size in files}.values())
    too_long = [key for key, _, _ in entries if len(key) > _MAX_KEY_BYTES]
    if too_long:
        raise TrainDatasetError(f"cannot build an LMDB: {len(too_long)} paths exceed LMDB's {_MAX_KEY_BYTES}-byte "
                                f"key limit, e.g. {too_long[0].decode()}")
    total = sum(size for _, _, size in entries)
    # Values longer than a page go to overflow pages; leave room for leaf/branch pages and rounding.
    pages = sum((size + 64) // _PAGE + 1 for _, _, size in entries)
    map_size = int(pages * _PAGE * 1.25) + (64 << 20)
    logger.info("building %s from %s: %d files, %.2f GiB", dst_path, src_root, len(entries), total / 2 ** 30)

    dst_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = dst_path.with_name(f".{dst_path.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp_path, ignore_errors=True)
    try:
        env = lmdb.open(str(tmp_path), map_size=map_size, subdir=True, readahead=False, meminit=False,
                        sync=False, metasync=False)
        try:
            with tqdm(total=total, unit="B", unit_scale=True, desc=dst_path.name, disable=not progress) as bar:
                for batch in _batches(entries):
                    with env.begin(write=True) as txn:  # commits on success, aborts on an exception
                        for key, path, size in batch:
                            # Keys come in sorted order, so append mode skips the B-tree searches.
                            txn.put(key, path.read_bytes(), append=True)
                            bar.update(size)
            env.sync(True)
        finally:
            env.close()
        if dst_path.exists():
            if not overwrite:
                raise FileExistsError(f"{dst_path} appeared while building; not replacing it")
            old_path = dst_path.with_name(f".{dst_path.name}.old-{os.getpid()}")
            os.replace(dst_path, old_path)
            os.replace(tmp_path, dst_path)
            _remove(old_path)
            _close_environment(dst_path)  # a handle opened here before would keep reading the old files
        else:
            os.replace(tmp_path, dst_path)
    except BaseException:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise
    logger.info("wrote %s (%d keys)", dst_path, len(entries))
    return dst_path
