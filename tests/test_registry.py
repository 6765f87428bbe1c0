"""The explicit registries: lazy entries, duplicates, did-you-mean, option checks."""

from __future__ import annotations

import pytest

import textenvs
from textenvs import ENCODINGS, ENVS, OptionError, get_encoding, make_env
from textenvs.registry import DuplicateIdError, Registry, UnknownIdError


def test_entries_are_imported_only_when_asked_for():
    reg: Registry[object] = Registry("thing")
    reg.register("later", "zso_not_a_module_yet:Thing")  # registering imports nothing
    reg.register("decoder", "json.decoder:JSONDecoder")
    import json.decoder

    assert reg.get("decoder") is json.decoder.JSONDecoder
    with pytest.raises(ModuleNotFoundError):
        reg.get("later")


def test_duplicate_ids_are_rejected():
    reg: Registry[object] = Registry("thing")
    reg.register("a", object)
    with pytest.raises(DuplicateIdError, match="'a' is already registered"):
        reg.register("a", object)


def test_unknown_id_suggests_the_closest():
    with pytest.raises(UnknownIdError, match=r"unknown environment 'chezz'; did you mean 'chess'\?"):
        ENVS.get("chezz")


def test_unknown_encoding_suggests_the_closest():
    with pytest.raises(UnknownIdError, match=r"did you mean 'ascii'"):
        get_encoding("chess", "asci")


def test_bad_entry_point_string_is_explained():
    reg: Registry[object] = Registry("thing")
    reg.register("x", "no_colon_here")
    with pytest.raises(ValueError, match="module:attr"):
        reg.get("x")


def test_unknown_env_option_names_it_and_suggests():
    with pytest.raises(OptionError, match=r"'oponent'.*did you mean 'opponent'"):
        make_env("chess", oponent="random")


def test_every_encoding_belongs_to_a_registered_env():
    for entry in ENCODINGS:
        env, name = entry.name.split("/", 1)
        assert env in ENVS, entry.name
        cls = entry.load()
        assert cls.env == env and cls.name == name, entry.name


def test_registering_an_encoding_makes_it_listed():
    from textenvs.chess.encodings import FenEncoding

    class LowerFen(FenEncoding):
        name = "lowerfen"

        def render_state(self, state):
            return state.fen().lower()

    textenvs.register_encoding("chess", "lowerfen", LowerFen, "FEN in lower case")
    try:
        assert "lowerfen" in textenvs.encodings_for("chess")
        assert isinstance(get_encoding("chess", "lowerfen"), LowerFen)
    finally:
        ENCODINGS.unregister("chess/lowerfen")


def test_an_entry_keeps_its_target_after_loading():
    from textenvs.registry import Registry

    reg: Registry = Registry("thing")
    reg.register("json", "json:dumps")
    entry = reg.entry("json")
    assert entry.load() is __import__("json").dumps
    assert entry.target == "json:dumps"  # what was registered, for listings and filters
