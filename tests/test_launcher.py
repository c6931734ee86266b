"""`retarget` (retarget_launcher): the app with no arguments or only its options, parsed once; retarget.cli for
--headless, a subcommand or --help; a one-line refusal for render options without --headless and for a machine
that cannot show the window. `python -m retarget` is the CLI alone."""

from __future__ import annotations

import sys

import pytest

import gui.app
import retarget.cli
import retarget_launcher


@pytest.fixture
def calls(monkeypatch):
    """Where each door was entered: the window's run(args) (counting app parses) or the CLI's dispatch(argv)."""
    seen = {"app": [], "cli": [], "parses": 0}
    make_parser = gui.app.parser

    def counting_parser():
        seen["parses"] += 1
        return make_parser()

    monkeypatch.setattr(gui.app, "parser", counting_parser)
    monkeypatch.setattr(gui.app, "run", lambda args: seen["app"].append(args) or 0)
    monkeypatch.setattr(retarget.cli, "dispatch", lambda argv: seen["cli"].append(argv) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # no X11 plugin check
    return seen


def test_no_arguments_open_the_app(calls, monkeypatch):
    monkeypatch.delenv("RETARGET_MODELS", raising=False)
    assert retarget_launcher.main([]) == 0
    assert calls["cli"] == [] and len(calls["app"]) == 1
    args = calls["app"][0]
    assert (args.models, args.device, args.landmarker, args.identity) == ("hub", None, None, None)


def test_app_options_are_parsed_once_and_reach_the_window(calls):
    argv = ["--models", "random:tiny", "--device", "cpu", "--smirk", "s.pt", "--lcm-lora", "lcm", "--identity", "me.jpg",
            "--driver", "talk.mp4"]
    assert retarget_launcher.main(argv) == 0
    assert calls["parses"] == 1 and calls["cli"] == []
    args = calls["app"][0]
    assert (args.models, args.device, str(args.smirk), args.lcm_lora, str(args.identity), str(args.driver)) == \
        ("random:tiny", "cpu", "s.pt", "lcm", "me.jpg", "talk.mp4")


@pytest.mark.parametrize("argv", [
    ["--headless", "--identity", "me.jpg", "--driver", "smile.png", "--out", "x.png"],
    ["--models", "random:tiny", "--headless"],
    ["doctor", "--models", "random:tiny"],
    ["extract", "--help"],
    ["--help"],
])
def test_headless_subcommands_and_help_go_to_the_cli(calls, argv):
    assert retarget_launcher.main(argv) == 0
    assert calls["cli"] == [argv] and calls["app"] == [] and calls["parses"] == 0


def test_render_options_without_headless_are_one_line(calls, capsys):
    assert retarget_launcher.main(["--models", "random:tiny", "--out", "x.png", "--steps", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out, --steps need --headless" in err[0]
    # The app's options, as the app's parser has them (generated from the knobs).
    assert all(flag in err[0] for flag in gui.app.option_strings())
    assert calls["app"] == [] and calls["cli"] == []


def test_an_option_nobody_takes_is_argparse_one_line(calls, capsys):
    with pytest.raises(SystemExit) as stop:
        retarget_launcher.main(["--no-such-option"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--no-such-option" in err[0]


def test_without_pyqt6_the_app_is_refused_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "PyQt6.QtWidgets", None)  # `import PyQt6.QtWidgets` raises ImportError
    monkeypatch.setattr(gui.app, "run", lambda args: pytest.fail("the window must not be opened"))
    assert retarget_launcher.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e .[gui]" in err[0] and "--headless" in err[0]


def test_app_flags_come_from_the_model_knobs():
    """One list: the app's model flags are the ModelOptions knobs' flags, with their help."""
    from retarget.config import ModelOptions
    from retarget.config.knobs import knob_fields

    knobs = {f.name: f.knob for f in knob_fields(ModelOptions)}
    actions = {a.dest: a for a in gui.app.parser()._actions}
    for name in gui.app.APP_MODEL_KNOBS:
        assert actions[name].option_strings == [knobs[name].flag] and actions[name].help == knobs[name].help
    # Every flag the app took before the launcher (the old APP_OPTIONS list), and no other.
    assert sorted(gui.app.option_strings()) == sorted(["--models", "--landmarker", "--device", "--smirk", "--lcm-lora",
                                                       "--identity", "--driver"])


@pytest.mark.parametrize("argv, says", [([], "the desktop app opens with `retarget`"),
                                        (["--models", "random:tiny"], "add --headless")])
def test_python_m_retarget_is_the_cli_alone(monkeypatch, capsys, argv, says):
    monkeypatch.setattr(gui.app, "run", lambda args: pytest.fail("the library must not open the window"))
    assert retarget.cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
