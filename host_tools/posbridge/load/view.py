"""What a person watches: the run's figures live (rich), and the summary at its end."""
import threading

from rich.console import Console
from rich.live import Live
from rich.table import Table


def figures_table(figures, title: str, audit=None) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("terminals", str(figures.terminals))
    table.add_row("purchases answered", f"{figures.answered:,}")
    table.add_row("authorisations a second", f"{figures.rate:,.0f}")
    table.add_row("latency p50 / p90 / p99",
                  " / ".join(f"{figures.percentile(p):.1f}" for p in (50, 90, 99)) + " ms")
    table.add_row("response codes", ", ".join(f"{code}: {n:,}" for code, n in
                                              sorted(figures.outcomes.items())) or "-")
    table.add_row("errors", ", ".join(f"{kind}: {n:,}" for kind, n in
                                      sorted(figures.errors.items())) or "none")
    if figures.reversals or figures.reversals_unsent:
        table.add_row("reversals", f"{figures.reversals:,} answered, "
                                   f"{figures.reversals_unsent:,} never answered")
    if figures.conflicts:
        table.add_row("transactions run again (conflicts)", f"{figures.conflicts:,}")
    if audit is not None:
        table.add_row("double charges", str(audit.double))
        table.add_row("lost charges", str(audit.lost))
        table.add_row("charged, not seen approved", str(audit.unseen))
        table.add_row("balances", "add up" if not audit.balance_errors
                      else f"{audit.balance_errors} do not add up")
    return table


def watch(run, title: str, console: Console, live: bool = True):
    """run.run() with its figures redrawn twice a second while it lasts; its figures."""
    if not live:
        return run.run()
    done = threading.Event()
    result = []

    def work():
        try:
            result.append(run.run())
        finally:
            done.set()
    worker = threading.Thread(target=work, daemon=True)
    with Live(console=console, refresh_per_second=4, transient=True) as view:
        worker.start()
        while not done.wait(0.5):
            figures, _ = run.snapshot()
            view.update(figures_table(figures, title))
    worker.join()
    if not result:
        raise RuntimeError("the load run failed")
    return result[0]
