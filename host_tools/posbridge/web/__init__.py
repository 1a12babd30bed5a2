"""The web console: the emulated terminal in a browser page (posbridge console).

    board_session.py  the emulated board, its bridge and link on one flash; power cuts
    phone.py          the cardholder's phone: the alerts of the card in use, from the outbox
    link_monitor.py   the link panel's entries, decoded and masked by link/readable.py
    upstream_issuer.py  the issuer when it is an ISO 8583 host (--upstream), the page's
                      faults on the bridge's side of the TCP link
    page_input.py     what the page may ask for, checked before anything acts on it
    hub.py            fan-out of events to every open page
    terminal.py       the one owner of the console's state: what the page sees and does
    server.py         the HTTP and websocket server, the static page in static/
    run.py            posbridge console from start to a clean stop (Ctrl-C)
"""
