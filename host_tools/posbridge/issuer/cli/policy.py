"""`posbridge issuer policy show|check`: the bank's alert policy in force, or a file's."""
import click

from .. import codes
from ..policy import Policy
from . import common


@click.group("policy")
def policy_group():
    """The bank's alert policy."""


def _describe(policy: Policy):
    click.echo(f"policy: {policy.source}")
    rows = [
        ("alerts", ", ".join(k for k in codes.POLICY_KINDS if policy.alerts(k)) or "none"),
        ("not alerted", ", ".join(k for k in codes.POLICY_KINDS if not policy.alerts(k))
         or "none"),
        ("security", ", ".join(codes.SECURITY_KINDS) + " (always)"),
        ("threshold", policy.amount_text(policy.default_threshold)),
        ("large amount", policy.amount_text(policy.large_amount_limit)),
        ("delivery", "send" if policy.send_immediately else "queue"),
        ("language", f"{policy.language} (templates: {', '.join(sorted(policy.templates))})"),
        ("utc offset", f"{policy.utc_offset_min} min"),
        ("retry", f"{policy.retry_first_s} s doubling to {policy.retry_max_s} s"),
    ]
    for name, value in rows:
        click.echo(f"  {name:<13} {value}")


@policy_group.command("show")
def policy_show():
    """The policy in force (--policy, POSBRIDGE_ISSUER_POLICY or the defaults)."""
    _describe(common.policy())


@policy_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def policy_check(file):
    """Check a policy file; print what it says."""
    _describe(Policy.load(file))
