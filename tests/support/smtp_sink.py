#!/usr/bin/env python3
"""A real SMTP server for hookrelay's e-mail tests (Python's standard smtpd).

    smtp_sink.py OUTDIR [REPLY ...]

Listens on 127.0.0.1 on a free port and prints the port on its first line
of output. Each accepted message is written to OUTDIR as N.eml (the DATA
as received) and N.json (the envelope: mail_from, rcpt_tos). REPLY
arguments answer the first messages in order instead of 250: for example
"451 4.3.0 Try again later" or "550 5.1.1 No such user". A reply of "250"
accepts the message.
"""

import json
import os
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
try:
    import asyncore
    import smtpd
except ImportError:  # Python 3.12 removed smtpd
    sys.stderr.write("smtp_sink.py needs Python <= 3.11 (the smtpd module)\n")
    sys.exit(3)


class Sink(smtpd.SMTPServer):
    def __init__(self, outdir, replies):
        super().__init__(("127.0.0.1", 0), None, decode_data=False)
        self.outdir = outdir
        self.replies = list(replies)
        self.count = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        if self.replies:
            reply = self.replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.count += 1
        base = os.path.join(self.outdir, str(self.count))
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": mailfrom, "rcpt_tos": rcpttos}, f)
        with open(base + ".eml", "wb") as f:
            f.write(data)
        # The envelope appears last: a reader that sees it sees the message.
        os.rename(base + ".json.tmp", base + ".json")
        return None


def main():
    outdir = sys.argv[1]
    server = Sink(outdir, sys.argv[2:])
    print(server.socket.getsockname()[1], flush=True)
    asyncore.loop(timeout=0.05)


if __name__ == "__main__":
    main()
