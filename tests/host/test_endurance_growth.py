"""What the endurance run calls growth: a leak under the collector's noise, not the noise."""
import random

from benchmarks import endurance


def _run(heap):
    n = len(heap)
    kinds = [endurance.KINDS[i % len(endurance.KINDS)] for i in range(n)]
    return endurance.Run(kinds=kinds, heap=heap, flash=[{"journal": 0}] * n,
                         names=[600] * n)


def _noisy(n, spread, seed=1):
    rnd = random.Random(seed)
    return [11_000 + rnd.randint(-spread, spread) for _ in range(n)]


def test_a_flat_heap_with_the_collectors_noise_has_not_grown():
    assert endurance.growth(_run(_noisy(200, 300))) == []


def test_a_fall_of_a_few_bytes_with_almost_no_noise_is_not_a_leak():
    # the CI case: a mean fall of 5 bytes when three standard errors are 4
    heap = [11_000] * 200
    for i in range(140, 200, 3):
        heap[i] -= 16
    assert endurance.growth(_run(heap)) == []


def test_one_block_lost_every_few_transactions_is_a_leak():
    heap = [h - 16 * (i // 4) for i, h in enumerate(_noisy(200, 100))]
    problems = endurance.growth(_run(heap))
    assert len(problems) == 1 and problems[0].startswith("heap free at idle fell")


def test_kilobytes_lost_are_a_leak_however_noisy_the_heap():
    heap = _noisy(200, 4000)
    heap = heap[:100] + [h - 2048 for h in heap[100:]]
    assert any(p.startswith("heap free at idle fell") for p in endurance.growth(_run(heap)))


def test_a_flash_record_or_a_name_that_grows_is_growth():
    run = _run([11_000] * 50)
    run.flash = [{"journal": 0}] * 40 + [{"journal": 48}] * 10
    run.names = [600] * 45 + [601] * 5
    problems = endurance.growth(run)
    assert problems[0].startswith("flash grew at transaction 41")
    assert problems[1] == "interned names rose from 600 to 601"
