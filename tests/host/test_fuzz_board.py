"""The short version of make fuzz (fuzzing/): a few thousand seeded inputs per board
decoder under MicroPython with a 64 KiB heap, in one process per target, after every
input that once crashed one (tests/fuzz_regressions/); and the same corpora through
the host's decoders. Every input ends in a value or the documented error."""
import pytest

from fuzzing import host_corpus, run

SHORT = 2000


@pytest.mark.parametrize("target", run.TARGETS)
def test_board_decoder_under_micropython_takes_hostile_input(target):
    result, items = run.fuzz(target, SHORT, seed=1)
    assert result.inputs == len(items) >= SHORT
    assert result.crashes == []
    assert result.values + result.errors == result.inputs
    assert result.values > 0 and result.errors > 0   # the corpus reaches both ends


@pytest.mark.parametrize("name", host_corpus.TARGETS)
def test_host_decoder_takes_the_same_corpora(name):
    result, _ = host_corpus.run(name, SHORT, seed=1)
    assert result.crashes == []
    assert result.values > 0 and result.errors > 0
