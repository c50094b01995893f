"""HTTP object semantics that the origin and the edge both serve by: a small pure package on the
ground floor (it imports no server, no aiohttp; both servers import it, as h11 sits under its users).

Modules:

    semantics.py      RFC 9110 decisions as pure functions: ranges, validators, conditionals,
                      cache-control (the versioned-path policy included), CORS headers,
                      ``plan_response`` -> ``ResponsePlan``, ``http_date``, ``is_playlist``
    keys.py           the object-key rule (``validate_key``, ``validate_prefix``) and its errors
                      ``InvalidKey`` (400) and ``HiddenKey`` (404)
    buffered_log.py   access-log lines formatted once and written in batches (the one module here
                      that writes: to its stream, on a loop timer)
    cmcd.py           CMCD (CTA-5004): ``CmcdData``, ``encode``, ``header_fields``, ``parse`` (the
                      player encodes, the edge parses, with the same code)
    cmsd.py           CMSD (CTA-5006): ``static_field``, ``dynamic_field`` and their parsers
"""
