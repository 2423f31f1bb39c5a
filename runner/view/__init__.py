"""``flowrun view``: a read-only web page over the run log, served on 127.0.0.1 behind a token.

Imported only by ``flowrun view`` and ``flowrun logs --web``; the run path never loads it.
"""
