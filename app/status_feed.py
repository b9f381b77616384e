"""The service's side of the status front: every status answer, sent as it changes.

With ``http.status_front`` on, status polls are answered by a second process (see
``app.status_front``) from copies of the answers this feed sends over a private Unix
socket. Every ``refresh_s`` the feed sends the answers whose status changed since it last
sent them (rendered by the same code and cache as the route), the characteristics that
are gone, and, when nothing changed, an empty frame: the front counts an empty line as
a sign of life, so it stops answering from copies when the service stops sending.

The frames are those of ``app.status_frames``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Hashable
from pathlib import Path

from app.api.status_view import status_answer
from app.status_frames import Change, encode_frame
from app.wiring import Service

_log = logging.getLogger(__name__)
RENDER_CHUNK = 16  # answers rendered between two turns of the event loop


class StatusFeed:
    """Serves the status answers on a Unix socket to the front process."""

    def __init__(self, service: Service, path: Path, refresh_s: float) -> None:
        self.service = service
        self.path = path
        self.refresh_s = refresh_s
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on ``path`` (readable and writable by this user only)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._follow, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _follow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent: dict[str, Hashable] = {}  # what this front holds: the key of each answer
        try:
            while True:
                gathered_at = time.monotonic()  # before: the frame holds every edit done
                changes = await self.changes(sent)
                writer.write(encode_frame(changes, gathered_at))
                await writer.drain()  # a front that does not read slows the feed, not us
                await asyncio.sleep(self.refresh_s)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            _log.exception("status feed: stopped sending to the front")
        finally:
            writer.close()

    async def changes(self, sent: dict[str, Hashable]) -> list[Change]:
        """The answers that changed since those in ``sent`` (updated), and those gone."""
        monitor, latest = self.service.monitor, self.service.grades.latest
        computed = latest.computed_at if latest else None
        changes: list[Change] = []
        present: set[str] = set()
        for record in monitor.characteristics:
            present.add(record.id)
            key = (record, monitor.revision(record.id), computed)
            if sent.get(record.id) == key:
                continue
            body, etag = status_answer(self.service, record)
            changes.append((record.id, etag, body))
            sent[record.id] = key
            if len(changes) % RENDER_CHUNK == 0:
                await asyncio.sleep(0)  # answer waiting requests between renders
        for gone in sent.keys() - present:
            del sent[gone]
            changes.append((gone, "", b""))
        return changes
