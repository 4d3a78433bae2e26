"""OpenAPI paths of the federation API, merged into /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _ok(description: str = "OK") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"type": "object"}}}}


def _origin(required: bool) -> dict[str, Any]:
    return {"name": "origin", "in": "query", "required": required,
            "schema": {"type": "string", "minLength": 1},
            "description": "A member log's origin line"}


def federation_paths() -> dict[str, Any]:
    return {
        "/api/v1/federation/members": {"get": {
            "summary": "The trust configuration: members, their cosigned heads and alarms",
            "operationId": "federationMembers", "responses": {"200": _ok()}}},
        "/api/v1/federation/members/rotate": {"post": {
            "summary": "Move a member to a new key on a statement signed by its current key",
            "operationId": "rotateMemberKey",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["origin", "statement"],
                "properties": {"origin": {"type": "string"},
                               "statement": {"type": "string",
                                             "description": "ndr.key-rotation/v1 note"}}}}}},
            "responses": {"200": _ok(), "400": _PROBLEM, "404": _PROBLEM, "415": _PROBLEM,
                          "422": _PROBLEM}}},
        "/api/v1/federation/cosigned": {"get": {
            "summary": "The newest member checkpoint this hub cosigned (for gossip)",
            "operationId": "federationCosigned", "parameters": [_origin(True)],
            "responses": {"200": _ok(), "400": _PROBLEM, "404": _PROBLEM}}},
        "/api/v1/federation/evidence": {"get": {
            "summary": "Fork evidence (ndr-witness-evidence/v1) kept by this hub",
            "operationId": "federationEvidence", "parameters": [_origin(False)],
            "responses": {"200": _ok()}}},
        "/api/v1/federation/evidence/{evidence_id}": {"get": {
            "summary": "One evidence file, for ndr verify-evidence",
            "operationId": "federationEvidenceFile",
            "parameters": [{"name": "evidence_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": _ok(), "404": _PROBLEM}}},
        "/api/v1/federation/datasets/{ref}/versions/{number}/proof": {"get": {
            "summary": "Proof chain of a federated version (ndr-federated-proof/v1)",
            "operationId": "federatedProof",
            "parameters": [{"name": "ref", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1}},
                           {"name": "number", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1,
                                       "maximum": 2**31 - 1}}],
            "responses": {"200": _ok(), "404": _PROBLEM, "503": _PROBLEM}}},
        "/api/v1/federation/refusals": {"get": {
            "summary": "Mirror report: member records refused, with the reason",
            "operationId": "mirrorRefusals", "parameters": [_origin(False)],
            "responses": {"200": _ok()}}},
        "/api/v1/federation/harvest-sources": {"get": {
            "summary": "Harvested sources (provenance not verified) and their last reports",
            "operationId": "harvestSources", "responses": {"200": _ok()}}},
    }
