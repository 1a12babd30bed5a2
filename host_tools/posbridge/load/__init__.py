"""`posbridge load`: simulated terminals against an issuer, as fast as it answers.

    terminal.py   one simulated terminal: its provisioned key, DUKPT-protected and MAC'd
                  purchases with PIN blocks, the answer checked as the board checks it
    fleet.py      the terminals and their cards put into the issuer's database
    targets.py    where the requests go: the issuer in this process, or a TCP host
    boards.py     or simulated boards on pseudo-terminals, through a bridge in this
                  process (its issuer in process or upstream)
    run.py        the terminals driven side by side, closed loop; figures and live view
    audit.py      the ledger read at the end: every approval charged once, nothing else
"""
