"""Helpers shared by the transparency log tests (importable from spawned processes too)."""

from __future__ import annotations

import types
from dataclasses import dataclass

from flask import Flask

from anchoring.log_store import LogBase, TransparencyLog
from anchoring.note import NoteSigner
from registry.database import Database
from registry.log_views import log_blueprint

ORIGIN = "registry.example.gov/log"


@dataclass
class LogEnv:
    db: Database
    log: TransparencyLog
    signer: NoteSigner

    def append(self, entries: list[bytes]) -> list[int]:
        with self.db.write() as session:
            return [leaf.index for leaf in self.log.append(session, entries)]

    def sign(self):  # type: ignore[no-untyped-def]
        with self.db.write() as session:
            return self.log.sign_checkpoint_if_grown(session)


def make_log_env(url: str, signer: NoteSigner | None = None) -> LogEnv:
    db = Database(url)
    LogBase.metadata.create_all(db.engine)
    signer = signer or NoteSigner.generate(ORIGIN)
    return LogEnv(db=db, log=TransparencyLog(ORIGIN, signer), signer=signer)


def make_app(env: LogEnv) -> Flask:
    app = Flask(__name__)
    app.register_blueprint(log_blueprint)
    app.extensions["ndr"] = types.SimpleNamespace(db=env.db, log=env.log)
    return app


@dataclass
class Served:
    url: str  # the log prefix, ending in /log/
    base: str
