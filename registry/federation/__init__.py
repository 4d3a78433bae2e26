"""Federation: a hub witnesses, anchors and mirrors its member registries (docs/federation.md).

Stages, as in the log pipeline: a member *submits* its checkpoints to witnesses
(`member.py`); the hub *witnesses* them (`witnessing.py`, the C2SP tlog-witness endpoint in
`api.py`), logs each one as a `member.checkpoint` leaf of its own log (so its anchor covers
every member), *polls* members that do not push (`poller.py`).
"""
