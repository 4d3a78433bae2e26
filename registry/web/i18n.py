"""Language: Chinese by default, English on request; `?lang=` switches and is remembered.

The choice is kept in the signed session cookie (not guessed from Accept-Language): a citizen
who switched to English keeps English on every page, and a shared link opens in the language
its `?lang=` names.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel, get_locale

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def remember_language_choice() -> None:
    """Before each portal request: store an explicit ?lang= choice in the session."""
    wanted = request.args.get("lang")
    if wanted in LANGUAGES and session.get("lang") != wanted:
        session["lang"] = wanted


def select_locale() -> str:
    wanted = request.args.get("lang")
    if wanted in LANGUAGES:
        return wanted
    remembered = session.get("lang")
    return remembered if remembered in LANGUAGES else DEFAULT_LANGUAGE


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES \
        else DEFAULT_LANGUAGE


def configure_babel(app: Flask) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LANGUAGE
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS_DIR)
    Babel(app, locale_selector=select_locale)
