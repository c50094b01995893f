"""Start-up and connection handling every vodstack server shares (origin, edge, steering): a
ground-floor package beside ``httpsem``; aiohttp is allowed here, no server of ours is imported.

Modules:

    listen.py     bind the listening socket (the one :class:`ListenError`), the ``http://HOST:PORT`` URL
    run.py        run a server coroutine on the event loop a config names; stop on SIGTERM/SIGINT
    deadlines.py  header, body and idle deadlines on client connections (an aiohttp protocol and
                  app runner around a pure decision)
"""
