"""The catalogue: organisations, dataset versions, publishing, APIs, pages, import and CLI.

Kept free of imports so that `ndr verify` (an auditor's command) starts without Flask.
"""
